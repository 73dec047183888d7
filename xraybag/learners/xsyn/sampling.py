"""Grounded inpainting with the pipeline of :mod:`.model`: DDIM with classifier-free guidance, the
known region re-imposed before every step (the paper's Eq. 2), the class tokens' cross-attention
maps recorded for CAR, and BOM's occluder fused into the final latent (Eq. 5-9).

Conventions: an image is ``H x W x 3`` float in [0, 1]; ``keep`` is an ``H x W`` bool, True where
the image is kept (m = 1) and False where it is painted; boxes are pixel xyxy. The image is padded
(edge copies) to a multiple of the pipeline's :attr:`~.model.Pipeline.multiple` and cropped back;
the decoded result is pasted into the input only where it was painted (and where BOM fused), so
every other pixel is the input's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xraybag.learners.xsyn import geometry
from xraybag.learners.xsyn.model import (
    Pipeline,
    encode_phrases,
    encode_text,
    gligen_kwargs,
    inpaint_input,
    phrase_spans,
)

#: GLIGEN's grounding token budget (its checkpoints use 30)
MAX_OBJS = 30


class StoreCrossAttention:
    """An attention processor for the UNet's cross-attention layers (``attn2``) that computes the
    attention explicitly and, while :attr:`active`, adds the conditional half's probabilities for the
    recorded token columns to :attr:`maps` (one sum per latent resolution)."""

    def __init__(self, store: AttentionStore):
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        residual = hidden_states
        four_d = hidden_states.ndim == 4
        if four_d:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(context))
        value = attn.head_to_batch_dim(attn.to_v(context))
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], hidden_states.shape[0])
        probs = attn.get_attention_scores(query, key, mask)
        if self.store.active:
            self.store.add(probs, attn.heads)
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if four_d:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class AttentionStore:
    """Sums of cross-attention probabilities per token, for the conditional half of a CFG batch."""

    def __init__(self, tokens: list[int], latent_hw: tuple[int, int], cond_index: int):
        self.tokens = tokens
        self.latent_hw = latent_hw
        self.cond_index = cond_index  # which sample of the batch is the conditional one
        self.active = False
        self.total = torch.zeros(len(tokens), *latent_hw)
        self.count = 0

    def add(self, probs: torch.Tensor, heads: int) -> None:
        bh, q, _k = probs.shape
        batch = bh // heads
        p = probs.view(batch, heads, q, -1)[self.cond_index].mean(0)[:, self.tokens]  # q x T
        hl, wl = self.latent_hw
        scale = round((hl * wl / q) ** 0.5)
        h, w = hl // scale, wl // scale
        m = p.T.reshape(len(self.tokens), 1, h, w).float().cpu()
        if (h, w) != (hl, wl):
            m = F.interpolate(m, size=(hl, wl), mode="bilinear", align_corners=False)
        self.total += m[:, 0]
        self.count += 1

    def maps(self) -> torch.Tensor:
        return self.total / max(self.count, 1)


@dataclass
class Result:
    """The painted image (no occlusion), the BOM result (or None), the per-object attention maps at
    image size (N x H x W) and the pixel mask of everything that may differ from the input."""

    image: np.ndarray
    hidden: np.ndarray | None
    attention: np.ndarray
    edited: np.ndarray


def _pad(img: np.ndarray, keep: np.ndarray, multiple: int):
    h, w = keep.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        keep = np.pad(keep, ((0, ph), (0, pw)), mode="constant", constant_values=True)
    return img, keep


def latent_keep(keep: torch.Tensor, factor: int) -> torch.Tensor:
    """The pixel keep-mask (B x 1 x H x W, 1 = kept) on the latent grid: a cell is kept only when all
    its pixels are (so every painted pixel lies in a painted cell)."""
    return 1.0 - F.max_pool2d(1.0 - keep, factor, factor)


@torch.no_grad()
def encode_image(pipe: Pipeline, img: np.ndarray, device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().unsqueeze(0).to(device) * 2 - 1
    return pipe.vae.encode(x).latent_dist.mode() * pipe.scaling


@torch.no_grad()
def decode_latent(pipe: Pipeline, z: torch.Tensor) -> np.ndarray:
    x = pipe.vae.decode(z / pipe.scaling).sample[0]
    return ((x.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def inpaint(pipe: Pipeline, image: np.ndarray, keep: np.ndarray, phrases: list[str], boxes: list,
            device="cpu", steps: int = 25, guidance: float = 7.5, seed: int = 0,
            occluder: tuple | None = None, alpha: float = 0.3, rng: np.random.Generator | None = None,
            occluder_patch: np.ndarray | None = None) -> Result:
    """Paint ``phrases`` (class names) into ``boxes`` (pixel xyxy) where ``keep`` is False.

    ``occluder``: a pixel xyxy box of a background object; when given, BOM fuses it into every
    grounded box (each perturbed by Eq. 9 with ``rng``) in the final latent with ``alpha``, and
    :attr:`Result.hidden` is that image decoded. ``occluder_patch`` (``h x w x 3``) instead gives
    the occluder's pixels when it lies outside this image (a window of a larger one): its latent is
    the patch encoded, which equals the final latent there since an occluder lies in the kept
    region."""
    h0, w0 = keep.shape
    img, kp = _pad(np.asarray(image, np.float32), np.asarray(keep, bool), pipe.multiple)
    hp, wp = kp.shape
    f = pipe.factor
    hl, wl = hp // f, wp // f
    gen = torch.Generator().manual_seed(int(seed))
    z_in = encode_image(pipe, img, device)
    m = latent_keep(torch.from_numpy(kp.astype(np.float32))[None, None].to(device), f)
    prompt = " ".join(phrases)
    ctx = torch.cat([encode_text(pipe, [""], device), encode_text(pipe, [prompt], device)])
    emb = encode_phrases(pipe, phrases, device)
    dim = pipe.text_encoder.config.hidden_size
    boxes_norm = [[b[0] / wp, b[1] / hp, b[2] / wp, b[3] / hp] for b in boxes]
    g = gligen_kwargs([[], boxes_norm], [emb[:0], emb], MAX_OBJS, dim, device)  # uncond: no grounding
    spans = phrase_spans(pipe, phrases)
    tokens = sorted({t for s in spans for t in s})
    store = AttentionStore(tokens, (hl, wl), cond_index=1)
    procs = pipe.unet.attn_processors
    pipe.unet.set_attn_processor({k: (StoreCrossAttention(store) if k.endswith("attn2.processor") else v)
                                  for k, v in procs.items()})
    try:
        sched = pipe.scheduler
        sched.set_timesteps(steps)
        noise = torch.randn(z_in.shape, generator=gen).to(device)
        z = torch.randn(z_in.shape, generator=gen).to(device) * sched.init_noise_sigma
        store.active = bool(tokens)
        for t in sched.timesteps:
            z = z * (1 - m) + sched.add_noise(z_in, noise, t.reshape(1)) * m  # Eq. 2
            x = inpaint_input(torch.cat([z, z]), torch.cat([z_in, z_in]), torch.cat([m, m]))
            eps = pipe.unet(x, t, encoder_hidden_states=ctx, cross_attention_kwargs={"gligen": dict(g)}).sample
            e_u, e_c = eps.chunk(2)
            z = sched.step(e_u + guidance * (e_c - e_u), t, z).prev_sample
        store.active = False
    finally:
        pipe.unet.set_attn_processor(procs)
    z0 = z * (1 - m) + z_in * m
    painted = ~kp
    out = _paste(img, decode_latent(pipe, z0), painted)
    hidden = None
    edited = painted.copy()
    if (occluder is not None or occluder_patch is not None) and len(boxes):
        lat = [geometry.to_latent_box(b, f, (wl, hl)) for b in boxes]
        zsrc = z0
        if occluder_patch is not None:  # the patch's latent beside z0, the occluder box pointing into it
            patch, _ = _pad(np.asarray(occluder_patch, np.float32), np.ones(occluder_patch.shape[:2], bool), f)
            zp = encode_image(pipe, patch, device)
            ph, pw = zp.shape[-2:]
            zsrc = torch.zeros(*z0.shape[:2], max(hl, ph), wl + pw, device=z0.device, dtype=z0.dtype)
            zsrc[..., :hl, :wl] = z0
            zsrc[..., :ph, wl:] = zp
            occ = (wl, 0, wl + pw, ph)
        else:
            occ = geometry.to_latent_box(occluder, f, (wl, hl))
        ow, oh = occ[2] - occ[0], occ[3] - occ[1]
        rng = rng if rng is not None else np.random.default_rng(seed)
        regions = [geometry.perturb_region(b, (ow, oh), (wl, hl), rng) for b in lat]
        zh = geometry.fuse_occluder(zsrc, occ, regions, alpha)[..., :hl, :wl]
        for x1, y1, x2, y2 in regions:
            edited[y1 * f:y2 * f, x1 * f:x2 * f] = True
        hidden = _paste(img, decode_latent(pipe, zh), edited)[:h0, :w0]
    att = store.maps()
    if len(tokens):
        att = F.interpolate(att[None], size=(hp, wp), mode="bilinear", align_corners=False)[0]
    per_obj = np.stack([att[[tokens.index(t) for t in s]].mean(0).numpy() if s else np.zeros((hp, wp), np.float32)
                        for s in spans]) if spans else np.zeros((0, h0, w0), np.float32)
    return Result(out[:h0, :w0], hidden, per_obj[:, :h0, :w0], edited[:h0, :w0])


def _paste(img: np.ndarray, gen: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[where] = gen[where]
    return out


def inpaint_windows(pipe: Pipeline, image: np.ndarray, phrases: list[str], boxes: list, dilate: int,
                    window: int, occluder: list | None = None, seed: int = 0, **kw) -> Result:
    """:func:`inpaint` of a whole image, or, when ``window`` > 0 and the image is larger, of one
    window of ``window`` px (or larger, to hold the object's grown box) around each object in turn,
    the objects lying wholly inside it painted together; each window starts from the image as the
    earlier ones left it. BOM's occluder, read from the input's pixels, is given to each window as
    a patch. The result is the whole image's (attention maps at its size)."""
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    boxes = [list(map(float, b)) for b in boxes]
    if window <= 0 or (h <= window and w <= window):
        keep = ~geometry.edit_mask((h, w), np.asarray(boxes).reshape(-1, 4), dilate)
        return inpaint(pipe, img, keep, phrases, boxes, occluder=occluder, seed=seed, **kw)
    m = pipe.multiple
    plain, hidden = img.copy(), img.copy()
    edited = np.zeros((h, w), bool)
    att = np.zeros((len(boxes), h, w), np.float32)
    patch = None
    if occluder is not None:
        x1, y1, x2, y2 = geometry.pixel_box(occluder, (h, w))
        patch = img[y1:y2, x1:x2]
    done = [False] * len(boxes)
    any_hidden = False
    for i, b in enumerate(boxes):
        if done[i]:
            continue
        gx1, gy1, gx2, gy2 = b[0] - dilate, b[1] - dilate, b[2] + dilate, b[3] + dilate
        ww = min(w, max(window, -(-int(np.ceil(gx2 - gx1)) // m) * m))
        wh = min(h, max(window, -(-int(np.ceil(gy2 - gy1)) // m) * m))
        x0 = int(np.clip(round((gx1 + gx2 - ww) / 2), 0, w - ww))
        y0 = int(np.clip(round((gy1 + gy2 - wh) / 2), 0, h - wh))
        group = [j for j, c in enumerate(boxes) if not done[j] and
                 (j == i or (c[0] >= x0 and c[1] >= y0 and c[2] <= x0 + ww and c[3] <= y0 + wh))]
        local = [[boxes[j][0] - x0, boxes[j][1] - y0, boxes[j][2] - x0, boxes[j][3] - y0] for j in group]
        keep = ~geometry.edit_mask((wh, ww), np.asarray(local), dilate)
        res = inpaint(pipe, plain[y0:y0 + wh, x0:x0 + ww], keep, [phrases[j] for j in group], local,
                      occluder_patch=patch, seed=seed + i, **kw)
        sl = (slice(y0, y0 + wh), slice(x0, x0 + ww))
        hidden[sl] = np.where(res.edited[..., None], res.hidden if res.hidden is not None else res.image,
                              hidden[sl])
        plain[sl] = res.image
        edited[sl] |= res.edited
        any_hidden |= res.hidden is not None
        for k, j in enumerate(group):
            att[j][sl] = res.attention[k]
            done[j] = True
    return Result(plain, hidden if any_hidden else None, att, edited)
