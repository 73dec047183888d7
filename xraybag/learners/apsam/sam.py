"""SAM built from segment-anything's own classes, with adapters in its image encoder, its presets,
checkpoint loading, and the mask decoder run with an initial output token (imports torch and
``segment_anything``).

Presets (:data:`PRESETS`): ``vit_b``, ``vit_l``, ``vit_h`` are the official SAM models, with the
hyper-parameters of ``segment_anything/build_sam.py`` (1024 px input, patch 16, window 14, prompt
and decoder dimension 256, a two-layer two-way transformer of MLP width 2048 and 8 heads);
``tiny`` is ours, a model that trains from scratch on a CPU: ViT embed 192, depth 4, 3 heads,
window 8 with global attention in blocks 1 and 3, 256 px input, prompt/decoder dimension 128
(decoder MLP 512, 4 heads, IoU head hidden 128).

Adapters (the XSeg paper fine-tunes "with an identical adapter, keeping other parameters frozen",
fig. 4, citing the SAM adapters of medical imaging; it gives no form): each transformer block of
the image encoder gets two bottleneck adapters ``a(x) = Up(GELU(Down(x)))`` of width
``adapter_dim``, in the places of the Medical SAM Adapter: one after the attention, with its own
skip (``x = shortcut + attn + a1(attn)``), one beside the MLP, scaled by ``0.5``
(``x = x + MLP(n) + 0.5 a2(n)``, ``n = norm2(x)``). ``Up`` starts at zero, so a fresh adapter
leaves a checkpoint's encoder exactly as it was. :class:`AdapterBlock` subclasses segment-anything's
``Block``, so every SAM parameter keeps its key name (``image_encoder.blocks.3.attn.qkv.weight``);
the adapters add ``image_encoder.blocks.N.adapter_attn.*`` and ``adapter_mlp.*``.

Checkpoints (:func:`load_sam_state`): a SAM state dict with segment-anything's key names
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), possibly wrapped in a dict under
``model`` / ``state_dict`` and possibly prefixed ``module.`` or ``sam.`` (xraybag's own weights
files are such a wrapped dict, with ``eae.*`` and the adapters beside, and load through the same
code). At an ``image_size`` other than the checkpoint's, the absolute position embedding and the
relative position tables of the global-attention blocks are interpolated (as SAM adapters that
train at 512 px do). Anything else that does not fit is a one-line :class:`XraybagError` naming
the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.image_encoder import Block, window_partition, window_unpartition

from xraybag.errors import XraybagError

#: SAM's pixel normalisation (RGB, 0-255)
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
#: the keys a SAM state dict must have groups of
SAM_PARTS = ("image_encoder.", "prompt_encoder.", "mask_decoder.")
#: parts of xraybag's models that a plain SAM checkpoint does not hold
OWN_PARTS = (".adapter_attn.", ".adapter_mlp.", "eae.")


@dataclass
class SamConfig:
    """Everything that shapes the network (stored in the weights file, to rebuild it)."""

    preset: str
    image_size: int
    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    patch_size: int = 16
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256
    adapter_dim: int = 0
    adapter_scale: float = 0.5
    eae: bool = False
    eae_size: int = 0
    eae_dims: tuple[int, ...] = field(default=(32, 64, 128))

    @classmethod
    def from_dict(cls, d: dict) -> "SamConfig":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in dict(d).items() if k in names}
        for k in ("encoder_global_attn_indexes", "eae_dims"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


_VIT = dict(window_size=14, patch_size=16, prompt_embed_dim=256, decoder_mlp_dim=2048, decoder_num_heads=8,
            iou_head_hidden_dim=256, image_size=1024)
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=256, encoder_embed_dim=192, encoder_depth=4, encoder_num_heads=3,
                 encoder_global_attn_indexes=(1, 3), window_size=8, patch_size=16, prompt_embed_dim=128,
                 decoder_mlp_dim=512, decoder_num_heads=4, iou_head_hidden_dim=128, adapter_dim=32),
    "vit_b": dict(_VIT, encoder_embed_dim=768, encoder_depth=12, encoder_num_heads=12,
                  encoder_global_attn_indexes=(2, 5, 8, 11), adapter_dim=48),
    "vit_l": dict(_VIT, encoder_embed_dim=1024, encoder_depth=24, encoder_num_heads=16,
                  encoder_global_attn_indexes=(5, 11, 17, 23), adapter_dim=64),
    "vit_h": dict(_VIT, encoder_embed_dim=1280, encoder_depth=32, encoder_num_heads=16,
                  encoder_global_attn_indexes=(7, 15, 23, 31), adapter_dim=80),
}


def preset_config(preset: str, image_size: int | None = None, adapter_dim: int | None = None,
                  eae: bool = False, eae_size: int | None = None) -> SamConfig:
    """The :class:`SamConfig` of ``preset`` with the given overrides (``eae_size``, the side of the
    EAE's input, defaults to half the image size: its ``X3`` then has the image embedding's grid)."""
    if preset not in PRESETS:
        raise XraybagError(f"option 'preset' must be one of {', '.join(PRESETS)}, got {preset!r}")
    d = dict(PRESETS[preset], preset=preset, eae=bool(eae))
    if image_size is not None:
        d["image_size"] = int(image_size)
    if adapter_dim is not None:
        d["adapter_dim"] = int(adapter_dim)
    d["eae_size"] = int(eae_size) if eae_size is not None else int(d["image_size"]) // 2
    cfg = SamConfig(**d)
    if cfg.image_size < 2 * cfg.patch_size or cfg.image_size % cfg.patch_size:
        raise XraybagError(f"option 'image_size' must be a multiple of {cfg.patch_size} and at least "
                           f"{2 * cfg.patch_size}, got {cfg.image_size}")
    if cfg.eae_size < 8:
        raise XraybagError(f"option 'eae_size' must be at least 8 (three 2x2 poolings), got {cfg.eae_size}")
    if cfg.adapter_dim < 0:
        raise XraybagError(f"option 'adapter_dim' must be >= 0 (0: no adapters), got {cfg.adapter_dim}")
    return cfg


class Adapter(nn.Module):
    """``Up(GELU(Down(x)))`` (plus ``x`` with ``skip``); ``Up`` starts at zero."""

    def __init__(self, dim: int, hidden: int, skip: bool):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.skip = bool(skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.act(self.down(x)))
        return x + y if self.skip else y


class AdapterBlock(Block):
    """segment-anything's ViT block with the two adapters of the module docstring."""

    def __init__(self, *, adapter_dim: int, adapter_scale: float = 0.5, **kw: Any):
        super().__init__(**kw)
        self.adapter_attn = Adapter(kw["dim"], adapter_dim, skip=True)
        self.adapter_mlp = Adapter(kw["dim"], adapter_dim, skip=False)
        self.adapter_scale = float(adapter_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        x = shortcut + self.adapter_attn(x)
        n = self.norm2(x)
        return x + self.mlp(n) + self.adapter_scale * self.adapter_mlp(n)


def build_sam(cfg: SamConfig) -> Sam:
    """segment-anything's ``Sam`` of ``cfg`` (random weights; adapters when ``adapter_dim > 0``)."""
    norm = partial(nn.LayerNorm, eps=1e-6)
    grid = cfg.grid
    encoder = ImageEncoderViT(
        depth=0 if cfg.adapter_dim else cfg.encoder_depth, embed_dim=cfg.encoder_embed_dim, img_size=cfg.image_size,
        mlp_ratio=4, norm_layer=norm, num_heads=cfg.encoder_num_heads, patch_size=cfg.patch_size, qkv_bias=True,
        use_rel_pos=True, global_attn_indexes=cfg.encoder_global_attn_indexes, window_size=cfg.window_size,
        out_chans=cfg.prompt_embed_dim)
    if cfg.adapter_dim:
        for i in range(cfg.encoder_depth):
            encoder.blocks.append(AdapterBlock(
                adapter_dim=cfg.adapter_dim, adapter_scale=cfg.adapter_scale, dim=cfg.encoder_embed_dim,
                num_heads=cfg.encoder_num_heads, mlp_ratio=4, qkv_bias=True, norm_layer=norm, act_layer=nn.GELU,
                use_rel_pos=True, rel_pos_zero_init=True,
                window_size=cfg.window_size if i not in cfg.encoder_global_attn_indexes else 0,
                input_size=(grid, grid)))
    prompt = PromptEncoder(embed_dim=cfg.prompt_embed_dim, image_embedding_size=(grid, grid),
                           input_image_size=(cfg.image_size, cfg.image_size), mask_in_chans=16)
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=cfg.prompt_embed_dim, mlp_dim=cfg.decoder_mlp_dim,
                                      num_heads=cfg.decoder_num_heads),
        transformer_dim=cfg.prompt_embed_dim, iou_head_depth=3, iou_head_hidden_dim=cfg.iou_head_hidden_dim)
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
               pixel_mean=list(PIXEL_MEAN), pixel_std=list(PIXEL_STD))


def decode(decoder: MaskDecoder, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
           dense: torch.Tensor, token_init: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """segment-anything's ``MaskDecoder.predict_masks`` for ``N`` prompts with their own image
    embeddings (``N x C x h x w``, not repeated inside), the mask tokens of eq. 1's ``H0 = [O_iou;
    O_mask; P]`` shifted by ``token_init`` (``N x num_mask_tokens x C``, the EAE's location
    initializer) when given. Returns all ``num_mask_tokens`` mask logits (``N x 4 x 4h x 4w``) and
    predicted IoUs (``N x 4``); index 0 is SAM's single-mask output, 1..3 its multimask outputs."""
    n = sparse.shape[0]
    iou_tok = decoder.iou_token.weight[None].expand(n, -1, -1)
    mask_tok = decoder.mask_tokens.weight[None].expand(n, -1, -1)
    if token_init is not None:
        mask_tok = mask_tok + token_init
    tokens = torch.cat([iou_tok, mask_tok, sparse], dim=1)
    src = image_embeddings + dense
    pos = image_pe.expand(n, -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos, tokens)
    iou_out = hs[:, 0, :]
    mask_out = hs[:, 1 : 1 + decoder.num_mask_tokens, :]
    up = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(mask_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
    b, c, h, w = up.shape
    masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
    return masks, decoder.iou_prediction_head(iou_out)


# -- inputs ------------------------------------------------------------------------------------------


def resized_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """The ``(h, w)`` of an image scaled so its longer side is ``size`` (SAM's ResizeLongestSide)."""
    s = size / max(h, w)
    return max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))


def _resize_pad(x: torch.Tensor, size: int, fill: float, mode: str = "bilinear") -> torch.Tensor:
    """``C x H x W`` resized (longer side ``size``) and padded bottom/right to ``size x size``."""
    nh, nw = resized_shape(x.shape[1], x.shape[2], size)
    kw = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    out = torch.full((x.shape[0], size, size), float(fill))
    out[:, :nh, :nw] = F.interpolate(x[None].float(), size=(nh, nw), mode=mode, **kw)[0]
    return out


def prepare_image(rgb: np.ndarray, size: int) -> torch.Tensor:
    """``H x W x 3`` pseudo-colour in [0, 1] -> ``3 x size x size`` normalised as SAM's input
    (resized longer side, normalised, padded with zeros after normalisation, as ``Sam.preprocess``)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    nh, nw = resized_shape(x.shape[1], x.shape[2], size)
    x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0] * 255.0
    x = (x - torch.tensor(PIXEL_MEAN)[:, None, None]) / torch.tensor(PIXEL_STD)[:, None, None]
    return F.pad(x, (0, size - nw, 0, size - nh), value=0.0)


def prepare_energy(high: np.ndarray, low: np.ndarray, size: int) -> torch.Tensor:
    """``(high, low)`` in [0, 1] -> the EAE's ``2 x size x size`` input ``X0 = [I_H; I_L]``,
    padded with 1 (nothing in the beam) outside the image."""
    x = torch.from_numpy(np.stack([high, low]).astype(np.float32))
    return _resize_pad(x, size, 1.0).clamp_(0.0, 1.0)


def prepare_masks(masks: np.ndarray, size: int) -> torch.Tensor:
    """``K x H x W`` bool -> ``K x size x size`` float 0/1 in SAM's input frame (bilinear, > 0.5)."""
    if len(masks) == 0:
        return torch.zeros((0, size, size))
    x = torch.from_numpy(np.asarray(masks, dtype=np.float32))
    return (_resize_pad(x, size, 0.0) > 0.5).float()


def upscale_logits(logits: torch.Tensor, size: int, valid: tuple[int, int],
                   out: tuple[int, int] | None = None) -> torch.Tensor:
    """Decoder logits ``N x M x h x w`` -> ``size x size`` cropped to the ``valid`` (resized, unpadded)
    part, then (``out``) to the original ``H x W``: ``Sam.postprocess_masks``."""
    x = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
    x = x[..., : valid[0], : valid[1]]
    return F.interpolate(x, out, mode="bilinear", align_corners=False) if out is not None else x


# -- checkpoints -------------------------------------------------------------------------------------


def read_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """The object in a torch file (tensors, dicts, lists: ``weights_only``), or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise XraybagError(f"{what} file does not exist", str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XraybagError(f"not a torch {what} ({type(e).__name__}: {msg[:160]})", str(path)) from None


def sam_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """The SAM state dict inside ``obj`` (see the module docstring), keys without ``module.`` or
    ``sam.`` prefixes, or a one-line error at ``where`` saying what is wrong."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(k.startswith(SAM_PARTS) for k in obj if isinstance(k, str)):
            inner = next((obj[k] for k in ("model", "state_dict", "sam") if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
                continue
        break
    if not isinstance(obj, dict) or not obj:
        raise XraybagError(f"not a SAM state dict (it holds {type(obj).__name__}{' (empty)' if obj == {} else ''}, "
                           "not a dict of image_encoder.* / prompt_encoder.* / mask_decoder.* tensors)", where)
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise XraybagError(f"not a SAM state dict (entry {k!r} is a {type(v).__name__}, not a tensor)", where)
        k = k[len("module."):] if k.startswith("module.") else k
        out[k[len("sam."):] if k.startswith("sam.") else k] = v
    lacking = [p.rstrip(".") for p in SAM_PARTS if not any(k.startswith(p) for k in out)]
    if lacking:
        example = next(iter(out))
        raise XraybagError(f"not a SAM state dict: no {', '.join(p + '.*' for p in lacking)} keys (its keys look like "
                           f"{example!r})", where)
    return out


def _fit_shape(key: str, value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``value`` interpolated to ``shape`` when it is a position table at another grid size."""
    if key.endswith("pos_embed") and value.ndim == 4 and value.shape[-1] == shape[-1] and value.shape[0] == 1:
        x = F.interpolate(value.permute(0, 3, 1, 2).float(), size=tuple(shape[1:3]), mode="bicubic", align_corners=False)
        return x.permute(0, 2, 3, 1).to(value.dtype)
    if key.endswith(("rel_pos_h", "rel_pos_w")) and value.ndim == 2 and value.shape[1] == shape[1]:
        x = F.interpolate(value.T[None].float(), size=int(shape[0]), mode="linear", align_corners=False)
        return x[0].T.to(value.dtype)
    return None


def load_sam_state(model: nn.Module, obj: Any, where: str, preset: str, require: tuple[str, ...] = ()) -> dict:
    """Load the SAM state dict in ``obj`` (read from ``where``) into ``model`` (a module whose SAM
    lives under ``sam.``, EAE under ``eae.``): every SAM parameter of ``model`` must be in the file
    with its shape (position tables are interpolated to the model's grid); adapters and the EAE are
    loaded when the file has them and keep their initial values otherwise, unless their prefix is in
    ``require``. Returns ``{"loaded": n, "fresh": [...], "resized": [...]}``."""
    state = sam_state_dict(obj, where)
    target = {}
    for k, v in model.state_dict().items():
        target[k[len("sam."):] if k.startswith("sam.") else k] = v
    missing = [k for k in target if k not in state and not any(p in f".{k}" for p in OWN_PARTS)]
    if missing:
        raise XraybagError(f"not a SAM checkpoint of the {preset!r} preset: {len(missing)} of its parameters are "
                           f"missing (e.g. {missing[0]!r})", where)
    extra = [k for k in state if k not in target and not any(p in f".{k}" for p in OWN_PARTS)
             and k not in ("pixel_mean", "pixel_std")]
    if extra:
        raise XraybagError(f"not a SAM checkpoint of the {preset!r} preset: the file has {len(extra)} parameters "
                           f"it lacks (e.g. {extra[0]!r}; a checkpoint of a larger preset?)", where)
    fresh = [k for k in target if k not in state]
    for part in require:
        if any(k.startswith(part) for k in fresh):
            raise XraybagError(f"holds no {part.rstrip('.')}.* weights, which this model needs", where)
    merged, resized = {}, []
    for k, v in target.items():
        if k not in state:
            merged[k] = v
            continue
        w = state[k]
        if w.shape != v.shape:
            fitted = _fit_shape(k, w, v.shape)
            if fitted is None or fitted.shape != v.shape:
                raise XraybagError(f"{k} has shape {list(w.shape)} in the file but the {preset!r} preset needs "
                                   f"{list(v.shape)} (a checkpoint of another preset?)", where)
            w = fitted
            resized.append(k)
        merged[k] = w.to(v.dtype)
    named = {("sam." + k if not k.startswith("eae.") else k): v for k, v in merged.items()}
    model.load_state_dict(named, strict=True)
    return {"loaded": len(target) - len(fresh), "fresh": fresh, "resized": resized}
