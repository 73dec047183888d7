"""The SAM-based promptable segmenters: ``sam_finetune`` (the XSeg paper's baseline: SAM with
encoder adapters, trained on random clicks) and ``apsam`` (Adaptive Point SAM: the same plus the
Energy-Aware Encoder and the Adaptive Point Generator). See ``docs/learners.md``.

Importing this module needs neither torch nor segment-anything; training and prediction do (the
``learn`` extra).

``train`` writes ``out/weights.pt`` through :func:`xraybag.learners.training.fit` (per-iteration
losses and seconds in ``out/train_log.jsonl``, a checkpoint per epoch, ``resume``). Its ``model``
entry is the network's state dict, a SAM state dict with segment-anything's key names under
``sam.`` (plus ``eae.*`` and the adapters), and ``extra`` holds what rebuilds the network; it loads
back through the same code as an official checkpoint (:func:`~xraybag.learners.apsam.sam.load_sam_state`).
``predict`` also takes an official SAM checkpoint as ``weights`` (then the learner's own options
say which preset it is): zero-shot SAM, the paper's "SAM (frozen)".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.base import Prompt, Segmenter
from xraybag.learners.seg_data import CHANNELS, MASKS, SegmentationDataset, mask_to_rle

PRESETS = ("tiny", "vit_b", "vit_l", "vit_h")
#: AdamW learning rates: the paper's (fine-tuning SAM from its checkpoint), and ours from scratch
LR_CHECKPOINT, LR_SCRATCH = 1e-5, 2e-4


def _common_options() -> dict:
    return {
        "preset": (str, "tiny", "tiny (ViT embed 192, depth 4, 256 px: trains from scratch on a CPU) | vit_b | "
                   "vit_l | vit_h (official SAM sizes, 1024 px; give checkpoint=PATH)"),
        "checkpoint": (Path, None, "local SAM state dict to start from (segment-anything's key names, e.g. "
                       "sam_vit_b_01ec64.pth, or an xraybag weights.pt); never downloaded"),
        "image_size": (int, None, "input side in pixels, a multiple of 16 (default: the preset's; the paper "
                       "trains at 512)"),
        "adapter_dim": (int, None, "bottleneck width of the encoder adapters (default: tiny 32, vit_b 48, "
                        "vit_l 64, vit_h 80; 0: no adapters)"),
        "freeze_encoder": (bool, None, "keep the image encoder's own weights frozen and train its adapters "
                           "(default: true with a checkpoint, false without: a random encoder is trained whole)"),
        "epochs": (int, 12, "training epochs (the paper's 12)"),
        "batch_size": (int, 2, "images per iteration"),
        "lr": (float, None, f"AdamW learning rate (default {LR_CHECKPOINT:g} with a checkpoint, the paper's; "
               f"{LR_SCRATCH:g} from scratch)"),
        "weight_decay": (float, 0.01, "AdamW weight decay"),
        "warmup_iters": (int, 100, "linear warm-up iterations (the paper's 100)"),
        "focal_weight": (float, 1.0, "weight of the focal loss beside the Dice loss (SAM's is 20; 1 trains the "
                         "tiny preset from scratch far faster)"),
        "max_objects": (int, 4, "objects (one click each) per image and iteration"),
        "masks": (str, "annotations", "annotations (the annotated objects) | instances (every object of the "
                  "render's instance maps, labels/: un-annotated ones as class 'object'; a segmenter that must "
                  "segment a whole bag, as xsyn's variant A and BOM ask, learns from these)"),
        "crop": (str, "content", "content (cut each image to the scanned contents, the rows and columns that "
                 "are not empty tunnel, and the prompts, before scaling it to image_size) | none (the whole "
                 "image, as SAM does)"),
        "click": (str, "center", "the click predict makes in each object when given no prompts: center (the "
                  "point farthest from the outline) | random (a uniform pixel of the mask)"),
        "val_every": (int, 1, "score the val split (mIoU, Dice) every N epochs into train_log.jsonl (0: never)"),
        "workers": (int, 0, "data-loading worker processes"),
        "seed": (int, 0, "seed of initialisation, sampling, clicks and APG"),
    }


def with_channels(data: SegmentationDataset, channels: str) -> SegmentationDataset:
    """``data`` reading its high/low channels as ``channels`` says (a shallow copy when it differs)."""
    if channels not in CHANNELS:
        raise XraybagError(f"option 'channels' must be one of {', '.join(CHANNELS)}, got {channels!r}")
    if channels == data.channels:
        return data
    out = copy.copy(data)
    out.channels = channels
    if channels == "raw":
        for im in out.images:
            if not out._has_raw(im):
                raise XraybagError(f"channels=raw, but image id {im['id']} ({im['file_name']}) has no raw low and "
                                   "high files", str(data.ann_file))
    return out


class SAMFinetuneSegmenter(Segmenter):
    """SAM with encoder adapters, trained on one random click per object (no EAE, no APG)."""

    name = "sam_finetune"
    description = "SAM fine-tuned with encoder adapters on random point prompts (the XSeg paper's baseline)"
    promptable = True

    @classmethod
    def options(cls) -> dict:
        return _common_options()

    # -- the parts an option set switches on ------------------------------------------------------

    def parts(self) -> tuple[bool, bool]:
        """``(eae, apg)``."""
        return False, False

    def channels_option(self) -> str:
        """Where the high/low images come from. ``sam_finetune`` never looks at them (no EAE, no
        APG), so it takes the pseudo-colour max/min, which costs no extra file reads."""
        return "pseudo_colour"

    def net_config(self):
        """The :class:`~xraybag.learners.apsam.sam.SamConfig` these options describe."""
        from xraybag.learners.apsam.sam import preset_config

        return preset_config(self.preset, self.image_size, self.adapter_dim, self.parts()[0],
                             self.config.get("eae_size"))

    def check(self) -> None:
        """The options, and a ``checkpoint`` file that is not a SAM state dict, before any data is
        read (the file is kept for :meth:`build`, so it is read once)."""
        self._check()
        if self.checkpoint is not None:
            from xraybag.learners.apsam.sam import read_torch_file, sam_state_dict

            obj = read_torch_file(self.checkpoint)
            sam_state_dict(obj, str(self.checkpoint))
            self._checkpoint_obj = (str(self.checkpoint), obj)

    def _check(self) -> None:
        if self.preset not in PRESETS:
            raise XraybagError(f"option 'preset' must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        for key in ("epochs", "batch_size"):
            if int(self.config[key]) < 1:
                raise XraybagError(f"option {key!r} must be >= 1, got {self.config[key]}")
        if self.config.get("masks", "annotations") not in MASKS:
            raise XraybagError(f"option 'masks' must be one of {', '.join(MASKS)}, got {self.config['masks']!r}")

    # -- train --------------------------------------------------------------------------------

    def build(self):
        """The network of these options (:class:`~xraybag.learners.apsam.net.SamSegNet`), with the
        ``checkpoint`` loaded and the encoder frozen as asked, and a dict describing what was done."""
        import torch

        from xraybag.learners.apsam.net import SamSegNet
        from xraybag.learners.apsam.sam import load_sam_state, read_torch_file

        self._check()
        cfg = self.net_config()
        apg = self.parts()[1]
        torch.manual_seed(int(self.seed))
        net = SamSegNet(cfg, apg=apg, focal_weight=float(self.focal_weight))
        info: dict[str, Any] = {"checkpoint": None}
        if self.checkpoint is not None:
            kept = getattr(self, "_checkpoint_obj", None)
            obj = kept[1] if kept is not None and kept[0] == str(self.checkpoint) else read_torch_file(self.checkpoint)
            self._checkpoint_obj = None
            loaded = load_sam_state(net, obj, str(self.checkpoint), cfg.preset)
            info = {"checkpoint": str(self.checkpoint), "loaded": loaded["loaded"], "resized": loaded["resized"]}
        frozen = self.freeze_encoder if self.freeze_encoder is not None else self.checkpoint is not None
        net.freeze_encoder(bool(frozen))
        info["frozen_encoder"] = bool(frozen)
        info["trainable_params"] = int(sum(p.numel() for p in net.parameters() if p.requires_grad))
        info["params"] = int(sum(p.numel() for p in net.parameters()))
        return net, info

    def train(self, train: SegmentationDataset, out: Path, val: SegmentationDataset | None = None,
              device: str = "auto", resume: bool = False, progress: bool = True) -> Path:
        import torch

        from xraybag.learners.apsam.samples import PromptSamples, collate
        from xraybag.learners.base import resolve_device
        from xraybag.learners.training import EpochShuffle, TrainConfig, fit

        if len(train) == 0:
            raise XraybagError("the training split has no images")
        data = with_channels(train, self.channels_option())
        net, info = self.build()
        samples = PromptSamples(data, net.cfg.image_size, int(self.max_objects), seed=int(self.seed),
                                crop=str(self.crop))
        loader = torch.utils.data.DataLoader(samples, batch_size=int(self.batch_size), collate_fn=collate,
                                             sampler=EpochShuffle(len(samples), seed=int(self.seed)),
                                             num_workers=int(self.workers))
        lr = self.lr if self.lr is not None else (LR_CHECKPOINT if self.checkpoint is not None else LR_SCRATCH)
        tc = TrainConfig(epochs=int(self.epochs), lr=float(lr), weight_decay=float(self.weight_decay),
                         warmup_iters=int(self.warmup_iters), warmup_ratio=0.001, lr_steps=(), seed=int(self.seed))
        extra = {"sam": net.cfg.to_dict(), "apg": bool(net.apg), "channels": data.channels, "learner": self.name,
                 "crop": str(self.crop),
                 "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.config.items()},
                 "class_names": list(train.class_names), **info}

        def adamw(model, c):
            return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=c.lr,
                                     weight_decay=c.weight_decay)

        return fit(net, loader, out, tc, device=device, resume=resume, progress=progress, optimizer_factory=adamw,
                   extra=extra, on_epoch_end=self._validator(val, resolve_device(device)))

    def _validator(self, val: SegmentationDataset | None, device: str):
        every = int(self.val_every)
        if val is None or len(val) == 0 or every <= 0:
            return None
        from xraybag.learners.seg_metrics import segmentation_metrics
        from xraybag.learners.training import every_epochs

        val = with_channels(val, self.channels_option())
        gt = val.coco_subset()

        def score(model) -> dict:
            res = run_prompts(model, val, self.clicks(val), device, int(self.seed), str(self.crop))
            m = segmentation_metrics(gt, res, coco=False)
            return {"val_mIoU": m["mIoU"], "val_mDice": m["mDice"]}

        return every_epochs(every, score)

    # -- predict ------------------------------------------------------------------------------

    def load(self, weights: Path, device: str = "cpu"):
        """The network of ``weights`` (eval mode, on ``device``) and the ``extra`` stored with it. A
        file without xraybag's ``extra`` is read as a SAM checkpoint of this learner's preset."""
        from xraybag.learners.apsam.net import SamSegNet
        from xraybag.learners.apsam.sam import SamConfig, load_sam_state, read_torch_file

        self._check()
        obj = read_torch_file(weights, "weights")
        extra = obj.get("extra") if isinstance(obj, dict) else None
        apg = self.parts()[1]
        if isinstance(extra, dict) and isinstance(extra.get("sam"), dict):
            if extra.get("learner") not in (None, self.name):
                raise XraybagError(f"these weights were trained by learner {extra['learner']!r}, not {self.name!r}",
                                   str(weights))
            try:
                cfg = SamConfig.from_dict(extra["sam"])
            except (TypeError, ValueError) as e:
                raise XraybagError(f"the stored network configuration is broken ({e})", str(weights)) from None
        else:
            cfg = self.net_config()
            extra = {}
        net = SamSegNet(cfg, apg=apg)
        load_sam_state(net, obj, str(weights), cfg.preset, require=("eae.",) if cfg.eae else ())
        return net.to(device).eval(), extra

    def clicks(self, data: SegmentationDataset) -> list[Prompt]:
        """One click per (cleaned) object of ``data`` (option ``click``), from the annotations alone."""
        from xraybag.learners.apsam.samples import click_points
        from xraybag.learners.data import decode_segmentation

        rng = np.random.default_rng((int(self.seed), 17))
        out = []
        for im in data.images:
            anns = data.annotations(im["id"])
            if not anns:
                continue
            masks = np.stack([decode_segmentation(a["segmentation"], im["height"], im["width"]) for a in anns])
            for a, pt in zip(anns, click_points(masks, str(self.click), rng)):
                out.append(Prompt(image_id=int(im["id"]), points=pt[None], ann_id=int(a["id"]),
                                  category_id=int(a["category_id"])))
        return out

    def predict(self, weights: Path, data: SegmentationDataset, prompts: list[Prompt] | None = None,
                device: str = "auto") -> list[dict]:
        """One COCO result per prompt, in order (see ``docs/learners.md``); without ``prompts``, one
        click per object of ``data`` as the ``click`` option says."""
        from xraybag.learners.apsam.samples import CLICKS
        from xraybag.learners.base import resolve_device

        if self.click not in CLICKS:
            raise XraybagError(f"option 'click' must be one of {', '.join(CLICKS)}, got {self.click!r}")
        dev = resolve_device(device)
        net, extra = self.load(weights, dev)
        channels = self.channels_option()
        if channels == "auto" and extra.get("channels") in CHANNELS:
            channels = extra["channels"]
        data = with_channels(data, channels)
        if prompts is None:
            prompts = self.clicks(data)
        # as trained, unless asked otherwise
        crop = str(self.crop) if str(self.crop) != "content" else str(extra.get("crop", "content"))
        return run_prompts(net, data, list(prompts), dev, int(self.seed), crop)


class APSAMSegmenter(SAMFinetuneSegmenter):
    """Adaptive Point SAM: SAM with encoder adapters, the Energy-Aware Encoder initialising the mask
    decoder's output tokens, and the Adaptive Point Generator turning one click into two points."""

    name = "apsam"
    description = ("Adaptive Point SAM (XSeg paper): SAM + adapters + Energy-Aware Encoder on the high/low "
                   "channels + Adaptive Point Generator")

    @classmethod
    def options(cls) -> dict:
        opts = _common_options()
        opts.update({
            "eae": (bool, True, "the Energy-Aware Encoder and location initializer (section 4.3)"),
            "apg": (bool, True, "the Adaptive Point Generator (section 4.4), in training and prediction"),
            "eae_size": (int, None, "side in pixels of the EAE's (high, low) input (default: half image_size, "
                         "so its last map has the image embedding's grid)"),
            "channels": (str, "auto", "the high/low images of the EAE and APG: raw (the detector's "
                         "raw/*_high|low.tiff) | pseudo_colour (max/min of the png, the paper's eq. 4) | auto "
                         "(raw where present)"),
        })
        return opts

    def parts(self) -> tuple[bool, bool]:
        return bool(self.eae), bool(self.apg)

    def channels_option(self) -> str:
        return str(self.channels)


def run_prompts(net, data: SegmentationDataset, prompts: list[Prompt], device: str, seed: int,
                crop: str = "content") -> list[dict]:
    """``net``'s result for each prompt (checked against its image first), in order. With ``crop``
    ``content`` each image is cut to its scanned contents and its prompts first (the masks are
    pasted back into the whole image)."""
    import torch

    from xraybag.learners.apsam.samples import CROPS, content_window
    from xraybag.learners.apsam.sam import prepare_energy, prepare_image, resized_shape, upscale_logits

    if crop not in CROPS:
        raise XraybagError(f"option 'crop' must be one of {', '.join(CROPS)}, got {crop!r}")

    by_id = {int(im["id"]): k for k, im in enumerate(data.images)}
    groups: dict[int, list[int]] = {}
    for n, p in enumerate(prompts):
        if not isinstance(p, Prompt):
            raise XraybagError(f"prompt {n} is a {type(p).__name__}, not an xraybag.learners.Prompt")
        if int(p.image_id) not in by_id:
            raise XraybagError(f"prompt {n}: image id {p.image_id} is not in the {data.split!r} split")
        im = data.images[by_id[int(p.image_id)]]
        p.check(im["width"], im["height"], where=f"prompt {n} (image {p.image_id})")
        groups.setdefault(int(p.image_id), []).append(n)
    cats = {int(a["id"]): int(a["category_id"]) for a in data.coco["annotations"]}
    size = net.cfg.image_size
    results: list[dict | None] = [None] * len(prompts)
    with torch.no_grad():
        for iid, ns in groups.items():
            im = data.images[by_id[iid]]
            rgb, high, low, _mode = data.load_channels(im)
            H, W = rgb.shape[:2]
            x0, y0, x1, y1 = 0, 0, W, H
            if crop == "content":
                keep = [_prompt_box(prompts[n]) for n in ns]
                x0, y0, x1, y1 = content_window(rgb, np.array(keep, np.float64))
                rgb, high, low = rgb[y0:y1, x0:x1], high[y0:y1, x0:x1], low[y0:y1, x0:x1]
            h, w = rgb.shape[:2]
            nh, nw = resized_shape(h, w, size)
            sx, sy = nw / w, nh / h
            energy = prepare_energy(high, low, size).to(device)
            emb, tok = net.encode(prepare_image(rgb, size)[None].to(device), energy[None] if net.eae is not None else None)
            for n in ns:
                p = prompts[n]
                pts = (p.points.astype(np.float64) - (x0, y0)) * (sx, sy)
                box = None if p.box is None else (np.asarray(p.box, np.float64) - (x0, y0, x0, y0)) * (sx, sy, sx, sy)
                use_apg = net.apg and len(p.points) == 1 and int(p.point_labels[0]) == 1 and p.box is None
                r = net.segment(emb, tok, energy, (nh, nw), pts, p.point_labels, box, use_apg,
                                np.random.default_rng((seed, iid, n)))
                mask = np.zeros((H, W), dtype=bool)
                mask[y0:y1, x0:x1] = (upscale_logits(r["logits"], size, (nh, nw), (h, w))[0, 0] > 0).cpu().numpy()
                res = {"image_id": iid, "category_id": p.category_id if p.category_id is not None else cats.get(p.ann_id),
                       "segmentation": mask_to_rle(mask), "bbox": mask_bbox(mask), "score": round(r["score"], 5)}
                if p.ann_id is not None:
                    res["ann_id"] = int(p.ann_id)
                if r["apg"] is not None:
                    res["apg_points"] = [[round(float(x) / sx + x0, 2), round(float(y) / sy + y0, 2)] for x, y in r["apg"]]
                results[n] = res
    return results  # type: ignore[return-value]


def _prompt_box(p: Prompt) -> list[float]:
    """``x1, y1, x2, y2`` around a prompt's points and box (the part of the image it needs)."""
    xy = [p.points.astype(np.float64)]
    if p.box is not None:
        xy.append(np.asarray(p.box, np.float64).reshape(2, 2))
    xy = np.concatenate(xy)
    return [xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max() + 1, xy[:, 1].max() + 1]


def mask_bbox(mask: np.ndarray) -> list[float]:
    """``[x, y, w, h]`` of a bool mask (zeros when it is empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
