"""The built-in detection learners: ``atss`` and ``la_atss`` (ATSS with the label-aware mechanism).

Both share one code path: :class:`~xraybag.learners.atss.ATSS` trained by
:func:`~xraybag.learners.training.fit`; ``la_atss`` sets the model's ``la`` hook to
:class:`~xraybag.learners.label_aware.LabelAware` (LAcls, LAreg or both, with the ablation
coefficients a, b, c). LAreg needs the discretised distance regression the paper describes (FCOS
distances, 16 bins of one stride up to 16 strides), so with ``la_reg`` the regression branch is
``box_coder=distance, reg_bins=15`` (16 logits per side); the same branch is available to plain
``atss`` through its options, for like-for-like comparisons.

Presets: ``paper`` (ResNet-50, FPN 256, 800/1333 px, SGD lr 0.01, momentum 0.9, weight decay 1e-4,
12 epochs, steps at 8 and 11) and ``cpu_small`` (RegNetX-400MF, FPN 64, 256/384 px, AdamW, 16
epochs; for CPUs). Weights are never downloaded: ``backbone_weights`` takes a local torchvision
state dict of the backbone.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.base import Model
from xraybag.learners.data import DetectionDataset, RandomFlip, torch_collate

_PRESETS = ("paper", "cpu_small")
#: training flips of each preset: mmdet's ATSS flips left-right; a bag seen from above has no up
_PRESET_FLIP = {"paper": "h", "cpu_small": "hv"}


def _common_options() -> dict:
    return {
        "preset": (str, "paper", "paper (ResNet-50, 800/1333 px, 12 epochs) or cpu_small "
                   "(RegNetX-400MF, 256/384 px, 16 epochs)"),
        "epochs": (int, None, "training epochs (default: the preset's)"),
        "optimizer": (str, None, "sgd (the paper's: momentum 0.9, weight decay 1e-4) | adamw"),
        "lr": (float, None, "learning rate (default: the preset's)"),
        "weight_decay": (float, None, "weight decay (default: the preset's)"),
        "batch_size": (int, None, "images per iteration (default 2)"),
        "backbone": (str, None, "efficientnet_lite0 (ImageNet weights from the 'pretrained' extra) | "
                     "resnet18 | resnet34 | resnet50 | regnet_x_400mf | regnet_x_800mf | "
                     "regnet_y_400mf | regnet_y_800mf"),
        "backbone_weights": (Path, None, "local torchvision state dict of the backbone (never downloaded)"),
        "backbone_norm": (str, None, "bn | frozen_bn | gn (default: the preset's; frozen_bn for "
                          "efficientnet_lite0)"),
        "min_size": (int, None, "shorter image side after resizing"),
        "max_size": (int, None, "longer image side limit after resizing"),
        "warmup_iters": (int, None, "linear warm-up iterations"),
        "octave_scale": (float, None, "anchor side in strides (ATSS: 8)"),
        "quality": (str, None, "centerness | gfl (quality branch)"),
        "box_coder": (str, None, "delta (ATSS) | distance (FCOS distances)"),
        "reg_bins": (int, None, "with box_coder=distance: discretise distances into reg_bins+1 values"),
        "score_thresh": (float, None, "minimum score of a detection"),
        "flip": (str, None, "training flips: none | h (left-right, p 0.5) | v | hv "
                 "(default: paper h, cpu_small hv)"),
        "val_every": (int, 1, "score the val split every N epochs into train_log.jsonl (0: never)"),
        "workers": (int, 0, "data-loading worker processes"),
        "seed": (int, 0, "seed of initialisation and shuffling"),
    }


class ATSSModel(Model):
    """ATSS (Zhang et al. 2020) in PyTorch/torchvision."""

    name = "atss"
    description = "ATSS detector (ResNet + FPN, adaptive training sample selection), PyTorch"

    @classmethod
    def options(cls):
        return _common_options()

    # ------------------------------------------------------------------ configuration

    def atss_config(self, num_classes: int, in_channels: int):
        from xraybag.learners.atss import ATSSConfig

        if self.preset not in _PRESETS:
            raise XraybagError(f"option 'preset' must be one of {', '.join(_PRESETS)}, got {self.preset!r}")
        keys = ("epochs", "optimizer", "lr", "weight_decay", "batch_size", "backbone", "min_size",
                "max_size", "warmup_iters", "octave_scale", "quality", "box_coder", "reg_bins",
                "score_thresh", "backbone_norm")
        over = {k: self.config[k] for k in keys if self.config.get(k) is not None}
        if over.get("backbone") == "efficientnet_lite0" and "backbone_norm" not in over:
            over["backbone_norm"] = "frozen_bn"  # pretrained with BatchNorm; frozen as the paper's detectors
        if self.config.get("backbone_weights") is not None:
            path = Path(self.config["backbone_weights"])
            if not path.is_file():
                raise XraybagError(f"backbone_weights: no such file {str(path)!r}")
            over["backbone_weights"] = str(path)
        if "epochs" in over:  # the 1x schedule's steps (8 and 11 of 12), scaled to the epochs
            e = int(over["epochs"])
            over["lr_steps"] = tuple(sorted({max(1, round(e * 8 / 12)), max(1, round(e * 11 / 12))}))
        over.update(self._la_overrides())
        if over.get("reg_bins") and "box_coder" not in over:
            over["box_coder"] = "distance"
        base = getattr(ATSSConfig, self.preset)
        try:
            return base(num_classes=num_classes, in_channels=in_channels, **over)
        except ValueError as e:
            raise XraybagError(str(e)) from None

    def _la_overrides(self) -> dict:
        return {}

    def build(self, cfg):
        from xraybag.learners.atss import ATSS

        try:
            return ATSS(cfg)
        except ValueError as e:  # a backbone that cannot be built here (extra missing, bad weights)
            raise XraybagError(str(e)) from None

    # ------------------------------------------------------------------ train / predict

    def train(self, train: DetectionDataset, out: Path, val: DetectionDataset | None = None,
              device: str = "auto", resume: bool = False, progress: bool = True) -> Path:
        import torch

        from xraybag.learners.atss import make_optimizer
        from xraybag.learners.base import resolve_device
        from xraybag.learners.training import EpochShuffle, TrainConfig, fit

        if len(train) == 0:
            raise XraybagError("the training split has no images")
        cfg = self.atss_config(train.num_classes, train.num_channels)
        torch.manual_seed(int(self.seed))
        model = self.build(cfg)
        data = RandomFlip(train, self.flip or _PRESET_FLIP[self.preset], seed=int(self.seed))
        loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size,
                                             sampler=EpochShuffle(len(data), seed=int(self.seed)),
                                             collate_fn=torch_collate, num_workers=int(self.workers))
        tc = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum,
                         weight_decay=cfg.weight_decay, warmup_iters=cfg.warmup_iters,
                         warmup_ratio=cfg.warmup_ratio, lr_steps=tuple(cfg.lr_steps),
                         gamma=cfg.lr_gamma, seed=int(self.seed))
        extra = {"atss": asdict(cfg), "learner": self.name, "options": _jsonable(self.config),
                 "class_names": list(train.class_names),
                 "label_to_category_id": [int(c) for c in train.label_to_category_id],
                 "input": train.input}
        return fit(model, loader, out, tc, device=device, resume=resume, progress=progress,
                   optimizer_factory=lambda m, _c: make_optimizer(m, cfg), extra=extra,
                   on_epoch_end=validator(val, int(self.val_every), resolve_device(device)))

    def load(self, weights: Path, device: str = "cpu"):
        """The trained model (eval mode) and the extra data stored with it."""
        import torch

        from xraybag.learners.atss import ATSSConfig

        weights = Path(weights)
        if not weights.is_file():
            raise XraybagError(f"no such weights file {str(weights)!r}")
        try:
            state = torch.load(weights, map_location=device, weights_only=False)
            extra = state["extra"]
            cfg = ATSSConfig(**extra["atss"])
        except (KeyError, TypeError, RuntimeError, EOFError) as e:
            raise XraybagError(f"{weights}: not an ATSS weights file ({e})") from None
        model = self.build(cfg)
        model.load_state_dict(state["model"])
        model.to(device).eval()
        return model, extra

    def predict(self, weights: Path, data: DetectionDataset, device: str = "auto",
                batch_size: int = 2) -> list[dict]:
        from xraybag.learners.base import resolve_device

        dev = resolve_device(device)
        model, extra = self.load(weights, dev)
        names = extra.get("class_names")
        if names is not None and list(names) != list(data.class_names):
            raise XraybagError(
                f"the dataset's categories {list(data.class_names)} differ from the model's {names}"
            )
        return detect(model, data, dev, batch_size)


def detect(model, data: DetectionDataset, device, batch_size: int = 2) -> list[dict]:
    """COCO results of an ATSS ``model`` (in eval mode) on every image of ``data``."""
    import torch

    out: list[dict] = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            samples = [data[i] for i in range(start, min(start + batch_size, len(data)))]
            images, _ = torch_collate(samples)
            dets = model([im.to(device) for im in images])
            for s, d in zip(samples, dets):
                boxes = d["boxes"].detach().cpu().numpy().astype(np.float64)
                for b, sc, lab in zip(boxes, d["scores"].detach().cpu().numpy(),
                                      d["labels"].detach().cpu().numpy()):
                    out.append({
                        "image_id": int(s.image_id),
                        "category_id": int(data.label_to_category_id[int(lab)]),
                        "bbox": [round(float(b[0]), 2), round(float(b[1]), 2),
                                 round(float(b[2] - b[0]), 2), round(float(b[3] - b[1]), 2)],
                        "score": round(float(sc), 5),
                    })
    return out


def validator(val: DetectionDataset | None, every: int, device):
    """``fit``'s ``on_epoch_end``: every ``every`` epochs, mAP and mAP50 of the model on ``val``."""
    if val is None or len(val) == 0 or every <= 0:
        return None
    from xraybag.learners.metrics import coco_metrics
    from xraybag.learners.training import every_epochs

    gt = val.coco_subset()

    def score(model) -> dict:
        m = coco_metrics(gt, detect(model, val, device))
        return {"val_mAP": m["mAP"], "val_mAP50": m["mAP50"]}

    return every_epochs(every, score)


class LAATSSModel(ATSSModel):
    """ATSS with the label-aware mechanism (LAcls and/or LAreg) of the CLCXray paper."""

    name = "la_atss"
    description = "ATSS + label-aware mechanism (LAcls / LAreg feature re-weighting from label gradients)"

    @classmethod
    def options(cls):
        opts = _common_options()
        opts.update({
            "la_cls": (bool, True, "LAcls: re-weight classification features (Eq. 5)"),
            "la_reg": (bool, False, "LAreg: re-weight regression features on 16 distance bins (Eq. 6)"),
            "a": (float, 1.0, "LAcls coefficient of x (Eq. 7)"),
            "b": (float, 1.0, "LAcls coefficient of w1 x, the assigned class (Eq. 7)"),
            "c": (float, 1.0, "LAcls coefficient of w2 x, the misleading class (Eq. 7)"),
            "score": (str, "logit", "y of LA: logit (the classifier's output) | sigmoid"),
            "second_order": (bool, True, "differentiate through LA's weights in training"),
            "pseudo_thr": (float, 0.05, "test time: LA's pseudo-labels only where the top score "
                           ">= this (0: every location takes its top class)"),
        })
        return opts

    def _la_overrides(self) -> dict:
        if not (self.la_cls or self.la_reg):
            raise XraybagError("la_atss needs la_cls or la_reg (plain ATSS is the 'atss' learner)")
        if self.score not in ("logit", "sigmoid"):
            raise XraybagError(f"option 'score' must be logit or sigmoid, got {self.score!r}")
        if not 0.0 <= float(self.pseudo_thr) < 1.0:
            raise XraybagError(f"option 'pseudo_thr' must lie in [0, 1), got {self.pseudo_thr}")
        over = {"la_cls": bool(self.la_cls), "la_reg": bool(self.la_reg), "la_a": float(self.a),
                "la_b": float(self.b), "la_c": float(self.c), "la_score": self.score,
                "la_second_order": bool(self.second_order),
                "la_pseudo_thr": float(self.pseudo_thr)}
        if self.la_reg:
            over.update(box_coder="distance", reg_bins=15)
        return over

    def build(self, cfg):
        model = super().build(cfg)
        if cfg.la_cls or cfg.la_reg:
            model.la = LAHook(cfg)
        return model


def _lahook_class():
    import torch.nn as nn

    from xraybag.learners.label_aware import LabelAware

    class _LAHook(nn.Module):
        """Adapts :class:`LabelAware` to the ATSS head's hook: ``cls(feat, conv, class_targets)``
        and ``reg(feat, conv, distance_targets)`` (distances in strides, -1 at background)."""

        def __init__(self, cfg):
            super().__init__()
            # LAreg on the detector's own distribution: reg_bins + 1 values at 0..reg_bins strides
            bins = cfg.reg_bins + 1 if cfg.la_reg else 16
            self.la = LabelAware(cfg.num_classes, use_cls=cfg.la_cls, use_reg=cfg.la_reg,
                                 a=cfg.la_a, b=cfg.la_b, c=cfg.la_c, bins=bins,
                                 max_dist=bins - 1, grid="points", score=cfg.la_score,
                                 second_order=cfg.la_second_order, pseudo_thr=cfg.la_pseudo_thr)
            self._pseudo_fg = None

        def cls(self, feat, conv, labels):
            if labels is None and self.la.use_reg:  # test time: where LAreg may take pseudo-labels
                import torch

                with torch.no_grad():
                    top = conv(feat.detach()).sigmoid().amax(dim=1)
                thr = self.la.pseudo_thr or 0.0
                self._pseudo_fg = torch.where(top >= thr, 0, -1)
            return self.la.cls(feat, conv, labels)

        def reg(self, feat, conv, targets):
            import torch

            if targets is None:
                fg, self._pseudo_fg = self._pseudo_fg, None
                return self.la.reg(feat, conv, fg, None)
            labels = torch.where(targets[:, 0] >= 0, 0, -1)  # foreground / background
            return self.la.reg(feat, conv, labels, targets=targets.clamp(min=0.0))

        def diagnostics(self):
            return self.la.diagnostics()

    return _LAHook


def LAHook(cfg):  # noqa: N802 - a factory that builds the torch module lazily
    return _lahook_class()(cfg)


def _jsonable(config: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()}
