"""The Xsyn generator's parts on diffusers: a GLIGEN inpainting pipeline folder, built, saved and loaded.

A pipeline is a folder in diffusers' layout, the one ``StableDiffusionGLIGENPipeline`` checkpoints use::

    model_index.json          {"_class_name": "StableDiffusionGLIGENPipeline", ...}
    unet/                     UNet2DConditionModel, attention_type "gated", in_channels 9 (inpainting)
    vae/                      AutoencoderKL
    text_encoder/             CLIPTextModel
    tokenizer/                CLIPTokenizer (vocab.json, merges.txt)
    scheduler/                DDIMScheduler
    xsyn.json                 written by xraybag: class names, per-class box areas, training state

Every part is read with ``from_pretrained(folder, subfolder=..., local_files_only=True)``: nothing is
downloaded. :func:`load_pipeline` refuses, in one line, a folder that is not such a pipeline (no
``model_index.json``, a UNet without gated attention, one that is not an inpainting UNet).

``preset="tiny"`` builds a small configuration from scratch (a ~1.3M-parameter gated UNet, a ~1M VAE
with a 4x smaller latent grid, a 2-layer CLIP text encoder) with a tokenizer made in memory for the
dataset's class names (each word of a class name is one BPE token); ``preset="paper"`` is Stable
Diffusion 1.x's shape (the GLIGEN checkpoints'), for a GPU. Imports torch, diffusers and transformers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xraybag.errors import XraybagError

PIPELINE_CLASS = "StableDiffusionGLIGENPipeline"
PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
META = "xsyn.json"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

#: preset -> the shapes of the parts
PRESETS = {
    "tiny": {"size": 64, "unet_blocks": (32, 64), "layers_per_block": 1, "head_dim": 8, "cross_dim": 64,
             "vae_blocks": (32, 64, 64), "latent_channels": 4, "text_layers": 2, "text_heads": 4,
             "max_tokens": 16, "norm_groups": 8},
    "paper": {"size": 512, "unet_blocks": (320, 640, 1280, 1280), "layers_per_block": 2, "head_dim": 8,
              "cross_dim": 768, "vae_blocks": (128, 256, 512, 512), "latent_channels": 4, "text_layers": 12,
              "text_heads": 12, "max_tokens": 77, "norm_groups": 32},
}


@dataclass
class Pipeline:
    """The loaded parts and the metadata of one pipeline folder."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: object
    meta: dict = field(default_factory=dict)

    @property
    def factor(self) -> int:
        """Pixels per latent cell."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (latent factor x the UNet's downsampling)."""
        return self.factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def scaling(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names", []))

    def to(self, device) -> Pipeline:
        for part in (self.unet, self.vae, self.text_encoder):
            part.to(device)
        return self

    def save(self, folder: Path) -> Path:
        """Write the pipeline folder (diffusers' layout plus ``xsyn.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        quiet()
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.scheduler.save_pretrained(folder / "scheduler")
        index = {"_class_name": PIPELINE_CLASS, "_diffusers_version": _version("diffusers"),
                 "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                 "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                 "scheduler": ["diffusers", "DDIMScheduler"]}
        (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        (folder / META).write_text(json.dumps(self.meta, indent=2) + "\n")
        return folder


def quiet() -> None:
    """diffusers' and transformers' progress bars and advice off (one-line errors are ours)."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


# ---------------------------------------------------------------------------------------- tokenizer
def words(name: str) -> list[str]:
    """The words CLIP's pre-tokenizer splits a class name into (``folding_knife`` -> folding, _, knife)."""
    return re.findall(r"[^\W\d_]+|\d|[^\s\w]+|_+", name.lower())


def make_tokenizer(class_names: list[str], max_tokens: int = 16):
    """A ``CLIPTokenizer`` made in memory whose vocabulary holds every byte (as CLIP's byte-level
    BPE writes it, with and without the end-of-word mark) and, through merges, each word of the class
    names as one token."""
    from transformers import CLIPTokenizer

    table = _byte_table()
    vocab: dict[str, int] = {}
    for ch in table:
        vocab.setdefault(ch, len(vocab))
    for ch in table:
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for w in sorted({w for n in class_names for w in words(n)}):
        sym = [table[b] for b in w.encode()]
        sym[-1] += "</w>"
        cur = sym[0]
        for s in sym[1:]:
            if (cur, s) not in merges:
                merges.append((cur, s))
            cur = cur + s
            vocab.setdefault(cur, len(vocab))
    for special in (BOS, EOS):
        vocab.setdefault(special, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens)


def _byte_table() -> list[str]:
    """CLIP's (GPT-2's) byte -> printable character table, as a list indexed by byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


# ---------------------------------------------------------------------------------------- build / load
def build(preset: str, class_names: list[str], seed: int = 0) -> Pipeline:
    """A fresh pipeline of ``preset``'s shapes for ``class_names`` (weights from ``seed``)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if preset not in PRESETS:
        raise XraybagError(f"option preset: {preset!r}; expected one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    torch.manual_seed(seed)
    tok = make_tokenizer(class_names, p["max_tokens"])
    n_up = len(p["unet_blocks"])
    unet = UNet2DConditionModel(
        sample_size=p["size"] // 2 ** (len(p["vae_blocks"]) - 1), in_channels=2 * p["latent_channels"] + 1,
        out_channels=p["latent_channels"], layers_per_block=p["layers_per_block"],
        block_out_channels=p["unet_blocks"],
        down_block_types=("CrossAttnDownBlock2D",) * (n_up - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n_up - 1),
        cross_attention_dim=p["cross_dim"], attention_head_dim=p["head_dim"], attention_type="gated",
        norm_num_groups=p["norm_groups"])
    nv = len(p["vae_blocks"])
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=p["latent_channels"],
                        block_out_channels=p["vae_blocks"], down_block_types=("DownEncoderBlock2D",) * nv,
                        up_block_types=("UpDecoderBlock2D",) * nv, layers_per_block=1,
                        norm_num_groups=p["norm_groups"], sample_size=p["size"])
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=p["cross_dim"], intermediate_size=4 * p["cross_dim"],
        num_hidden_layers=p["text_layers"], num_attention_heads=p["text_heads"],
        max_position_embeddings=p["max_tokens"], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, projection_dim=p["cross_dim"]))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000)
    meta = {"preset": preset, "size": p["size"], "class_names": list(class_names), "iteration": 0,
            "vae_iteration": 0}
    return Pipeline(unet, vae, text, tok, sched, meta)


def check_folder(folder: Path) -> dict:
    """The ``unet/config.json`` of pipeline ``folder`` when it is a GLIGEN inpainting pipeline;
    otherwise a one-line :class:`XraybagError` naming the folder and what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise XraybagError("checkpoint folder does not exist", str(folder))
    if not (folder / "model_index.json").is_file():
        raise XraybagError("is not a diffusers pipeline folder (no model_index.json)", str(folder))
    missing = [p for p in PARTS if not (folder / p).is_dir()]
    if missing:
        raise XraybagError(f"is not a GLIGEN pipeline: no {', '.join(missing)} folder", str(folder))
    try:
        cfg = json.loads((folder / "unet" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise XraybagError(f"cannot read unet/config.json: {e}", str(folder)) from None
    if cfg.get("attention_type") not in ("gated", "gated-text-image"):
        raise XraybagError(f"is not a GLIGEN pipeline: its UNet's attention_type is {cfg.get('attention_type')!r}, "
                           "not 'gated'", str(folder))
    if int(cfg.get("in_channels", 0)) != 2 * int(cfg.get("out_channels", 4)) + 1:
        raise XraybagError(f"is a GLIGEN generation UNet (in_channels {cfg.get('in_channels')}), not an inpainting "
                           f"one (in_channels {2 * int(cfg.get('out_channels', 4)) + 1}: z_t, z_0 * m, m)", str(folder))
    return cfg


def load_pipeline(folder: Path) -> Pipeline:
    """Load every part of the pipeline at ``folder`` (local files only)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    check_folder(folder)
    quiet()
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True)
        text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", local_files_only=True)
        tok = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
        sched = DDIMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XraybagError(f"cannot load the GLIGEN pipeline: {first}", str(folder)) from None
    meta = {}
    if (folder / META).is_file():
        try:
            meta = json.loads((folder / META).read_text())
        except json.JSONDecodeError as e:
            raise XraybagError(f"{META} is not JSON: {e}", str(folder)) from None
    return Pipeline(unet, vae, text, tok, sched, meta)


# ---------------------------------------------------------------------------------------- text
def token_ids(pipe: Pipeline, text: str) -> torch.Tensor:
    """The padded token ids of ``text`` (1 x max length)."""
    tok = pipe.tokenizer
    ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    return ids


def phrase_spans(pipe: Pipeline, phrases: list[str]) -> list[list[int]]:
    """The token positions of each phrase in the prompt ``" ".join(phrases)`` (after the start token),
    cut at the tokenizer's length: which cross-attention columns belong to which grounded object."""
    spans, pos = [], 1
    limit = pipe.tokenizer.model_max_length - 1
    for ph in phrases:
        n = len(pipe.tokenizer(ph, add_special_tokens=False).input_ids)
        spans.append([i for i in range(pos, pos + n) if i < limit])
        pos += n
    return spans


def check_phrases(pipe: Pipeline, phrases: list[str], where: str | None = None) -> None:
    """A class name the model was not trained on is refused (its words are not in the vocabulary)."""
    known = set(pipe.class_names)
    for ph in phrases:
        if known and ph not in known:
            raise XraybagError(f"class {ph!r} is not one the model was trained on ({', '.join(sorted(known))})", where)
        unk = pipe.tokenizer.unk_token_id
        ids = pipe.tokenizer(ph, add_special_tokens=False).input_ids
        if not ids or (unk is not None and unk in ids and pipe.tokenizer.unk_token not in ph):
            raise XraybagError(f"class {ph!r} has words outside the model's vocabulary", where)


@torch.no_grad()
def encode_text(pipe: Pipeline, prompts: list[str], device) -> torch.Tensor:
    """The text encoder's last hidden states for each prompt (B x L x D)."""
    ids = torch.cat([token_ids(pipe, p) for p in prompts]).to(device)
    return pipe.text_encoder(ids).last_hidden_state


@torch.no_grad()
def encode_phrases(pipe: Pipeline, phrases: list[str], device) -> torch.Tensor:
    """GLIGEN's grounding tokens' text part: the pooled text embedding of each phrase (N x D)."""
    if not phrases:
        return torch.zeros(0, pipe.text_encoder.config.hidden_size, device=device)
    ids = torch.cat([token_ids(pipe, p) for p in phrases]).to(device)
    return pipe.text_encoder(ids).pooler_output


def gligen_kwargs(boxes_norm: list[list[list[float]]], embeddings: list[torch.Tensor], max_objs: int,
                  dim: int, device) -> dict:
    """``cross_attention_kwargs["gligen"]`` for a batch: ``boxes`` (B x max_objs x 4, xyxy in [0, 1]),
    ``positive_embeddings`` (B x max_objs x D) and ``masks`` (B x max_objs, 1 where an object is)."""
    b = len(boxes_norm)
    boxes = torch.zeros(b, max_objs, 4, device=device)
    emb = torch.zeros(b, max_objs, dim, device=device)
    masks = torch.zeros(b, max_objs, device=device)
    for i, (bx, e) in enumerate(zip(boxes_norm, embeddings)):
        n = min(len(bx), max_objs)
        if n:
            boxes[i, :n] = torch.as_tensor(bx[:n], dtype=torch.float32, device=device)
            emb[i, :n] = e[:n]
            masks[i, :n] = 1
    return {"boxes": boxes, "positive_embeddings": emb, "masks": masks}


def inpaint_input(z_t: torch.Tensor, z0: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The UNet's input ``concat(z_t, z_0 * m, m)`` along channels (the paper's z_t^inpaint);
    ``m`` (B x 1 x h x w) is 1 where the image is kept and 0 where it is painted."""
    return torch.cat([z_t, z0 * m, m], dim=1)
