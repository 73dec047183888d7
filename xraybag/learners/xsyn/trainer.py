"""Training the Xsyn generator: grounded inpainting on a labelled dataset's train split.

Training crops are ``size`` x ``size`` windows of the pseudo-colour images, each around a random
object (edge copies where the image is smaller). The objects whose box lies at least half inside
the window are the grounding: their class names (the text prompt is their concatenation, the
paper's ``Y_mod``) and boxes; the inpainting mask is their boxes grown by ``dilate`` pixels.
Random left-right and top-bottom flips.

Two stages, both checkpointed to ``out/checkpoint/`` (the pipeline folder plus ``train_state.pt``
with the optimizer and the iteration) every ``checkpoint_every`` iterations, and resumable:

1. ``vae_iterations`` of the autoencoder alone (MSE + ``kl_weight`` x KL) when it is trained from
   scratch (``preset=tiny``; a loaded checkpoint's VAE is kept); then the latent scaling factor is
   set to 1 / the standard deviation of the training crops' latents, as Stable Diffusion's is.
2. ``iterations`` of the gated UNet (and its GLIGEN position net) on the noise-prediction loss,
   the VAE and the text encoder frozen; with probability ``p_uncond`` the prompt is empty and the
   grounding dropped, which classifier-free guidance needs.

``out/train_log.jsonl`` holds one line per iteration (``stage``, ``iteration``, ``loss``, ``sec``),
and every ``val_every`` iterations of stage 2 a grid ``out/val/iter_NNNNNN.png`` shows validation
images (input, mask, painted) with their own labels repainted, each object in a window of the
training size (:func:`.sampling.inpaint_windows`: a whole large image would cost far more). The final pipeline goes to
``out/pipeline/``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

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
    load_pipeline,
)
from xraybag.learners.xsyn.sampling import MAX_OBJS, inpaint_windows, latent_keep

STATE = "train_state.pt"


class Crops:
    """Random training windows of a :class:`~xraybag.learners.data.DetectionDataset` split."""

    def __init__(self, data, size: int, dilate: int, seed: int, cache: int = 512):
        self.data, self.size, self.dilate = data, int(size), int(dilate)
        self.rng = np.random.default_rng(seed)
        self.items = [(i, k) for i, im in enumerate(data.images)
                      for k, a in enumerate(a for a in data.annotations(im["id"]) if not a.get("iscrowd", 0))]
        self._cache: dict[int, tuple] = {}
        self._cache_max = cache

    def _sample(self, i: int):
        if i not in self._cache:
            if len(self._cache) >= self._cache_max:
                self._cache.pop(next(iter(self._cache)))
            s = self.data[i]
            self._cache[i] = (s.image[..., :3], s.boxes, [self.data.class_names[j] for j in s.labels])
        return self._cache[i]

    def one(self):
        i, k = self.items[self.rng.integers(len(self.items))]
        img, boxes, names = self._sample(i)
        s = self.size
        h, w = img.shape[:2]
        if h < s or w < s:
            img = np.pad(img, ((0, max(s - h, 0)), (0, max(s - w, 0)), (0, 0)), mode="edge")
            h, w = img.shape[:2]
        x1, y1, x2, y2 = boxes[k]
        lo_x, hi_x = max(0, int(np.ceil(x2)) - s), min(int(x1), w - s)
        lo_y, hi_y = max(0, int(np.ceil(y2)) - s), min(int(y1), h - s)
        ox = int(self.rng.integers(lo_x, hi_x + 1)) if hi_x >= lo_x else int(np.clip((x1 + x2 - s) / 2, 0, w - s))
        oy = int(self.rng.integers(lo_y, hi_y + 1)) if hi_y >= lo_y else int(np.clip((y1 + y2 - s) / 2, 0, h - s))
        crop = img[oy:oy + s, ox:ox + s]
        kept_boxes, kept_names = [], []
        for b, n in zip(boxes, names):
            c = np.clip(b - [ox, oy, ox, oy], 0, s)
            area = (b[2] - b[0]) * (b[3] - b[1])
            if area > 0 and (c[2] - c[0]) * (c[3] - c[1]) >= 0.5 * area and min(c[2] - c[0], c[3] - c[1]) >= 2:
                kept_boxes.append(c)
                kept_names.append(n)
        kept_boxes = np.array(kept_boxes, np.float32).reshape(-1, 4)
        if self.rng.random() < 0.5:
            crop = crop[:, ::-1]
            kept_boxes[:, [0, 2]] = s - kept_boxes[:, [2, 0]]
        if self.rng.random() < 0.5:
            crop = crop[::-1]
            kept_boxes[:, [1, 3]] = s - kept_boxes[:, [3, 1]]
        keep = ~geometry.edit_mask((s, s), kept_boxes, self.dilate)
        return np.ascontiguousarray(crop), keep, kept_boxes, kept_names

    def batch(self, n: int):
        items = [self.one() for _ in range(n)]
        x = torch.from_numpy(np.stack([c.transpose(2, 0, 1) for c, _, _, _ in items])).float() * 2 - 1
        keep = torch.from_numpy(np.stack([k for _, k, _, _ in items]).astype(np.float32))[:, None]
        return x, keep, [b for _, _, b, _ in items], [n for _, _, _, n in items]


def _save(pipe: Pipeline, folder: Path, state: dict | None = None) -> None:
    """Write ``folder`` whole or not at all (a temporary folder renamed into place)."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save(tmp)
    if state is not None:
        torch.save(state, tmp / STATE)
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def train(pipe: Pipeline, data, val, out: Path, cfg: dict, device="cpu", resume: bool = False,
          progress: bool = True) -> Path:
    """Train ``pipe`` (fresh or loaded) as the module docstring says; return ``out/pipeline``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "checkpoint"
    state = None
    if resume and (ck / STATE).is_file():
        pipe = load_pipeline(ck)
        state = torch.load(ck / STATE, map_location="cpu", weights_only=False)
    torch.manual_seed(cfg["seed"] + (state["step"] if state else 0))
    pipe.to(device)
    pipe.text_encoder.requires_grad_(False)
    crops = Crops(data, cfg["size"], cfg["dilate"], cfg["seed"] + (state["step"] if state else 0))
    if state:  # the log as it was at the checkpoint: lines written after it are trained again
        _truncate_log(out / "train_log.jsonl", state["step"], cfg["vae_iterations"])
    log = (out / "train_log.jsonl").open("a")
    step = state["step"] if state else 0
    total = cfg["vae_iterations"] + cfg["iterations"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc="xsyn", unit="it")
    # -- stage 1: the autoencoder
    if step < cfg["vae_iterations"]:
        pipe.vae.train().requires_grad_(True)
        opt = torch.optim.AdamW(pipe.vae.parameters(), lr=cfg["vae_lr"], weight_decay=0.0)
        if state and state.get("stage") == "vae":
            opt.load_state_dict(state["opt"])
        while step < cfg["vae_iterations"]:
            t0 = time.perf_counter()
            x, _, _, _ = crops.batch(cfg["batch"])
            x = x.to(device)
            post = pipe.vae.encode(x).latent_dist
            rec = pipe.vae.decode(post.sample()).sample
            loss = F.mse_loss(rec, x) + cfg["kl_weight"] * post.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            log.write(json.dumps({"stage": "vae", "iteration": step, "loss": loss.item(),
                                  "sec": time.perf_counter() - t0}) + "\n")
            if bar:
                bar.update(1)
            if step % cfg["checkpoint_every"] == 0 or step == cfg["vae_iterations"]:
                if step == cfg["vae_iterations"]:
                    _set_scaling(pipe, crops, device)
                pipe.meta["vae_iteration"] = step
                log.flush()
                _save(pipe, ck, {"stage": "vae", "step": step, "opt": opt.state_dict()})
        state = None
    # -- stage 2: the gated UNet
    pipe.vae.eval().requires_grad_(False)
    pipe.unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(pipe.unet.parameters(), lr=cfg["lr"], weight_decay=1e-2)
    if state and state.get("stage") == "unet":
        opt.load_state_dict(state["opt"])
    sched = pipe.scheduler
    dim = pipe.text_encoder.config.hidden_size
    texts: dict[str, torch.Tensor] = {}  # the text encoder is frozen: each prompt is encoded once
    phrases: dict[str, torch.Tensor] = {}

    def text(p: str) -> torch.Tensor:
        if p not in texts:
            texts[p] = encode_text(pipe, [p], device)
        return texts[p]

    def pooled(names: list[str]) -> torch.Tensor:
        for n in names:
            if n not in phrases:
                phrases[n] = encode_phrases(pipe, [n], device)[0]
        return torch.stack([phrases[n] for n in names]) if names else encode_phrases(pipe, [], device)
    gen = torch.Generator().manual_seed(cfg["seed"] + step)
    while step < total:
        t0 = time.perf_counter()
        x, keep, boxes, names = crops.batch(cfg["batch"])
        x, keep = x.to(device), keep.to(device)
        b = x.shape[0]
        with torch.no_grad():
            z0 = pipe.vae.encode(x).latent_dist.sample(generator=None) * pipe.scaling
            m = latent_keep(keep, pipe.factor)
            drop = [bool(crops.rng.random() < cfg["p_uncond"]) for _ in range(b)]
            ctx = torch.cat([text("" if d else " ".join(n)) for d, n in zip(drop, names)])
            embs = [pooled([] if d else n) for d, n in zip(drop, names)]
            s = cfg["size"]
            bnorm = [[] if d else (bx / s).tolist() for d, bx in zip(drop, boxes)]
            g = gligen_kwargs(bnorm, embs, MAX_OBJS, dim, device)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen).to(device)
        z_t = sched.add_noise(z0, noise, t)
        pred = pipe.unet(inpaint_input(z_t, z0, m), t, encoder_hidden_states=ctx,
                         cross_attention_kwargs={"gligen": g}).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pipe.unet.parameters(), 1.0)
        opt.step()
        step += 1
        log.write(json.dumps({"stage": "unet", "iteration": step - cfg["vae_iterations"], "loss": loss.item(),
                              "sec": time.perf_counter() - t0}) + "\n")
        if bar:
            bar.update(1)
        if cfg["val_every"] and (step - cfg["vae_iterations"]) % cfg["val_every"] == 0:
            pipe.unet.eval()
            _grid(pipe, val if val is not None and len(val) else data, out / "val" /
                  f"iter_{step - cfg['vae_iterations']:06d}.png", cfg, device)
            pipe.unet.train()
        if step % cfg["checkpoint_every"] == 0 or step == total:
            pipe.meta["iteration"] = step - cfg["vae_iterations"]
            log.flush()
            _save(pipe, ck, {"stage": "unet", "step": step, "opt": opt.state_dict()})
    if bar:
        bar.close()
    log.close()
    pipe.unet.eval()
    pipe.meta["iteration"] = step - cfg["vae_iterations"]
    _save(pipe, out / "pipeline")
    return out / "pipeline"


def _truncate_log(path: Path, step: int, vae_iterations: int) -> None:
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        at = rec.get("iteration", 0) + (vae_iterations if rec.get("stage") == "unet" else 0)
        if at <= step:
            keep.append(line)
    path.write_text("".join(k + "\n" for k in keep))


@torch.no_grad()
def _set_scaling(pipe: Pipeline, crops: Crops, device, n: int = 64) -> None:
    x, _, _, _ = crops.batch(n)
    z = pipe.vae.encode(x.to(device)).latent_dist.mode()
    pipe.vae.register_to_config(scaling_factor=float(1.0 / max(z.std().item(), 1e-6)))


def _grid(pipe: Pipeline, data, path: Path, cfg: dict, device) -> None:
    """Validation images repainted with their own labels: input | mask | painted, one row each."""
    from xraybag.engine.output.files import write_atomic
    from xraybag.learners.xsyn.car import png_bytes

    rows = []
    for i in range(min(cfg["val_images"], len(data))):
        s = data[i]
        img = s.image[..., :3]
        names = [data.class_names[j] for j in s.labels]
        keep = ~geometry.edit_mask(img.shape[:2], s.boxes, cfg["dilate"])
        res = inpaint_windows(pipe, img, names, s.boxes.tolist(), cfg["dilate"], cfg["size"], device=device,
                              steps=cfg["val_steps"], guidance=cfg["guidance"], seed=i)
        mask = np.repeat((~keep)[..., None], 3, axis=2).astype(np.float32)
        rows.append(np.concatenate([img, mask, res.image], axis=1))
    if not rows:
        return
    w = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 2), (0, w - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, png_bytes(grid))
