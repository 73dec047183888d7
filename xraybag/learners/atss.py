"""ATSS detector in plain PyTorch + torchvision (no mmcv / mmdet).

Zhang et al. 2020, "Bridging the gap between anchor-based and anchor-free detection via Adaptive
Training Sample Selection": a RetinaNet-like one-stage detector with ONE square anchor per location
(side ``octave_scale * stride``), an FPN with levels P3-P7 (strides 8..128), a head of two conv
towers (GroupNorm + ReLU), and the ATSS assigner (per level the ``topk`` anchors nearest to each
ground truth by centre distance are candidates; IoU threshold = mean + std of the candidates' IoUs;
positives must also have their centre inside the box; an anchor claimed by several boxes keeps the
highest-IoU one).

Losses (as in the paper and its reference configuration):

* ``loss_cls``: sigmoid focal loss (alpha 0.25, gamma 2) summed over all anchors and classes,
  divided by the number of positives;
* ``loss_bbox``: GIoU loss of the decoded boxes of the positives, weighted by their centerness
  target, divided by the sum of those targets, times ``giou_weight`` (2);
* ``loss_centerness``: binary cross-entropy of the centerness branch on the positives / #positives.

With ``quality="gfl"`` the classification score is instead trained as a joint class-quality score
with the quality focal loss of GFL (target = IoU of the predicted box with its ground truth) and the
centerness branch is not used.

Box encoding
------------
``box_coder="delta"`` (default, what ATSS uses, inherited from RetinaNet): standard anchor deltas
``(dx, dy, dw, dh) = ((gx - ax) / aw, (gy - ay) / ah, log(gw / aw), log(gh / ah))`` divided by
``box_stds = (0.1, 0.1, 0.2, 0.2)``. ``box_coder="distance"``: FCOS-style distances
``(l, t, r, b)`` from the anchor centre to the box sides in units of the level's stride, used with
``reg_bins > 0`` for a GFL-style discretised distribution (``reg_bins + 1`` logits per side over the
values ``0..reg_bins`` strides, expectation decoding, distribution focal loss), which is the
regression representation LAreg needs.

Label-aware (LA) hooks
----------------------
``ATSS.la`` is ``None`` by default. When set to an object (typically an ``nn.Module``, so that its
parameters are registered) with methods ``cls`` and ``reg``, the head calls, for every FPN level::

    cls_feat = la.cls(cls_feat, head.cls_out, cls_targets)   # before cls_logits = head.cls_out(cls_feat)
    reg_feat = la.reg(reg_feat, reg_fn, reg_targets)         # before bbox_pred = scale(reg_out(reg_feat))

* ``cls_feat`` / ``reg_feat``: ``(N, C, H, W)`` output of the class / regression tower;
* ``head.cls_out`` / ``reg_fn``: the final 3x3 ``nn.Conv2d`` / ``reg_out`` followed by the level's
  learnable Scale, i.e. the function of the second prediction (``cls_out`` gives
  ``num_classes`` logits per location; ``reg_out`` gives 4 deltas, or ``4 * (reg_bins + 1)`` logits
  laid out side-major ``[l0..lK, t0..tK, r0..rK, b0..bK]`` when ``reg_bins > 0``);
* ``cls_targets``: ``LongTensor (N, H, W)``, the class index assigned by ATSS to each location,
  ``-1`` for background; ``None`` at test time (use pseudo-labels then);
* ``reg_targets``: ``FloatTensor (N, 4, H, W)``, distances ``(l, t, r, b)`` from the location's
  anchor centre to the sides of its assigned ground-truth box, in units of the level's stride
  (the same scale as the ``reg_bins`` values), ``-1`` at background locations; ``None`` at test time;
* both return the adjusted feature map, same shape.

The centerness branch reads the (adjusted) ``reg_feat``. At test time, when ``la`` is set, the head
runs under ``torch.enable_grad()``; the feature given to the hook may not require grad (the backbone
ran under ``no_grad``), so the hook should do ``x = feat.detach().requires_grad_()`` before asking
``torch.autograd.grad``. Outputs are detached before post-processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork, batched_nms, box_iou
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from xraybag.learners.atss_targets import (
    atss_assign,
    box_centres,
    centerness_target,
    decode,
    decode_distance,
    distribution_focal_loss,
    encode,
    encode_distance,
    focal_loss,
    giou_loss,
    make_anchors,
    quality_focal_loss,
)
from xraybag.learners.backbones import BACKBONES, group_norm, make_backbone

__all__ = [
    "ATSSConfig", "ATSS", "ATSSHead", "make_anchors", "atss_assign", "encode", "decode",
    "encode_distance", "decode_distance", "centerness_target", "focal_loss", "giou_loss",
    "quality_focal_loss", "distribution_focal_loss", "postprocess", "make_optimizer",
    "lr_multiplier",
]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass
class ATSSConfig:
    """Everything that defines an ATSS model and its training schedule (paper preset = default)."""

    num_classes: int = 80
    in_channels: int = 3                 # 3 for RGB / CLCXray encoding; 2 for raw low/high
    backbone: str = "resnet50"           # resnet18 | resnet34 | resnet50 | regnet_x_400mf ...
    backbone_norm: str = "bn"            # bn | frozen_bn | gn
    backbone_weights: str | None = None  # local state-dict file; never downloaded
    fpn_channels: int = 256
    num_convs: int = 4                   # convs per head tower
    # input
    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32
    image_mean: tuple[float, ...] | None = None   # None: ImageNet for 3 channels, 0.5 otherwise
    image_std: tuple[float, ...] | None = None    # None: ImageNet for 3 channels, 0.25 otherwise
    # anchors and assignment
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    octave_scale: float = 8.0
    topk: int = 9
    box_coder: str = "delta"             # delta | distance
    box_stds: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    reg_bins: int = 0                    # >0: GFL-style distribution (needs box_coder="distance")
    quality: str = "centerness"          # centerness | gfl
    # losses
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    giou_weight: float = 2.0
    centerness_weight: float = 1.0
    dfl_weight: float = 0.25
    qfl_beta: float = 2.0
    # inference
    score_thresh: float = 0.05
    nms_iou: float = 0.6
    pre_nms_topk: int = 1000
    max_detections: int = 100
    # schedule
    optimizer: str = "sgd"               # sgd (the paper's) | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 12
    lr_steps: tuple[int, ...] = (8, 11)
    lr_gamma: float = 0.1
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3
    batch_size: int = 2
    # label-aware mechanism options (stored; the LA module reads them)
    la_cls: bool = False
    la_reg: bool = False
    la_a: float = 1.0
    la_b: float = 1.0
    la_c: float = 1.0
    la_score: str = "logit"             # y of LA: logit | sigmoid
    la_second_order: bool = True        # differentiate through LA's weights in training
    la_pseudo_thr: float | None = 0.05  # test-time pseudo-labels only where the top score >= this
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"ATSSConfig.backbone: unknown backbone {self.backbone!r} "
                             f"(one of {', '.join(BACKBONES)})")
        if self.backbone_norm not in ("bn", "frozen_bn", "gn"):
            raise ValueError(f"ATSSConfig.backbone_norm: unknown {self.backbone_norm!r}")
        if self.quality not in ("centerness", "gfl"):
            raise ValueError(f"ATSSConfig.quality: unknown {self.quality!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"ATSSConfig.optimizer: unknown {self.optimizer!r} (sgd or adamw)")
        if self.box_coder not in ("delta", "distance"):
            raise ValueError(f"ATSSConfig.box_coder: unknown {self.box_coder!r}")
        if self.reg_bins and self.box_coder != "distance":
            raise ValueError("ATSSConfig.reg_bins > 0 needs box_coder='distance'")
        if self.num_classes < 1 or self.in_channels < 1:
            raise ValueError("ATSSConfig: num_classes and in_channels must be >= 1")
        if len(self.strides) != 5:
            raise ValueError("ATSSConfig.strides: five levels P3-P7 expected")

    @classmethod
    def paper(cls, **kw) -> "ATSSConfig":
        """The paper's setting (ResNet-50, FPN 256, 800/1333, SGD 0.01, 12 epochs)."""
        return cls(**kw)

    @classmethod
    def cpu_small(cls, **kw) -> "ATSSConfig":
        """A small model that learns from scratch on a CPU: RegNetX-400MF with GroupNorm (a third
        of ResNet-18's time per image), FPN 64, two convs per tower, images of 256/384 px with
        anchors of 4 strides (the objects of a 2 mm line scan are small), AdamW (lr 1e-3, weight
        decay 0.05; it gets further than SGD in a short schedule from scratch), 16 epochs."""
        base = dict(backbone="regnet_x_400mf", backbone_norm="gn", fpn_channels=64, num_convs=2,
                    min_size=256, max_size=384, octave_scale=4.0, optimizer="adamw", lr=1e-3,
                    weight_decay=0.05, epochs=16, lr_steps=(11, 15), warmup_iters=300)
        base.update(kw)
        return cls(**base)

    def replace(self, **kw) -> "ATSSConfig":
        return replace(self, **kw)

    def norm_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.image_mean is not None and self.image_std is not None:
            mean, std = tuple(self.image_mean), tuple(self.image_std)
        elif self.in_channels == 3:
            mean, std = _IMAGENET_MEAN, _IMAGENET_STD
        else:
            mean, std = (0.5,) * self.in_channels, (0.25,) * self.in_channels
        if len(mean) != self.in_channels or len(std) != self.in_channels:
            raise ValueError("ATSSConfig.image_mean/std: one value per input channel expected")
        return mean, std


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------

class _Scale(nn.Module):
    def __init__(self, value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        return x * self.scale


class _ScaledConv(nn.Module):
    """``scale(conv(x))``, the head's regression output, as one module for the LA hook."""

    def __init__(self, conv: nn.Conv2d, scale: _Scale):
        super().__init__()
        self.conv, self.scale = conv, scale
        self.out_channels = conv.out_channels

    def forward(self, x):
        return self.scale(self.conv(x))


class ATSSHead(nn.Module):
    """Shared head: ``cls_tower``/``reg_tower`` (convs + GN + ReLU), ``cls_out``, ``reg_out``,
    ``ctr_out`` (centerness, from the regression features), a learnable scale per level."""

    def __init__(self, channels: int, num_classes: int, num_convs: int = 4, reg_bins: int = 0,
                 num_levels: int = 5, prior: float = 0.01):
        super().__init__()

        def tower():
            layers = []
            for _ in range(num_convs):
                layers += [nn.Conv2d(channels, channels, 3, padding=1), group_norm(channels),
                           nn.ReLU(inplace=True)]
            return nn.Sequential(*layers)

        self.cls_tower, self.reg_tower = tower(), tower()
        self.reg_dim = 4 * (reg_bins + 1) if reg_bins else 4
        self.cls_out = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.reg_out = nn.Conv2d(channels, self.reg_dim, 3, padding=1)
        self.ctr_out = nn.Conv2d(channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(_Scale(1.0) for _ in range(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior) / prior))

    def forward(self, feats, la=None, cls_targets=None, reg_targets=None):
        """Per level: lists of ``cls_logits (N, C, H, W)``, ``bbox_pred (N, reg_dim, H, W)``,
        ``centerness (N, 1, H, W)`` (logits). See the module docstring for the LA hook."""
        cls_logits, bbox_pred, ctr = [], [], []
        for lvl, x in enumerate(feats):
            cls_feat = self.cls_tower(x)
            reg_feat = self.reg_tower(x)
            if la is not None:
                ct = cls_targets[lvl] if cls_targets is not None else None
                rt = reg_targets[lvl] if reg_targets is not None else None
                cls_feat = la.cls(cls_feat, self.cls_out, ct)
                # LAreg's first prediction is the same function as the second: reg_out, then Scale
                reg_feat = la.reg(reg_feat, _ScaledConv(self.reg_out, self.scales[lvl]), rt)
            cls_logits.append(self.cls_out(cls_feat))
            bbox_pred.append(self.scales[lvl](self.reg_out(reg_feat)))
            ctr.append(self.ctr_out(reg_feat))
        return cls_logits, bbox_pred, ctr


class ATSS(nn.Module):
    """ATSS detector. ``forward(images, targets=None)``:

    * ``images``: list of ``(C, H, W)`` float tensors (values as the dataset gives them, e.g. 0..1;
      normalised with ``cfg.image_mean/std`` and resized inside);
    * ``targets``: list of ``{"boxes": (G, 4) xyxy float in the image's pixels, "labels": (G,) int64
      in [0, num_classes)}``; required in training mode;
    * training → ``{"loss_cls", "loss_bbox", "loss_centerness"}`` (``loss_dfl`` when reg_bins > 0);
    * eval → list of ``{"boxes", "scores", "labels"}`` in original image coordinates.
    """

    def __init__(self, cfg: ATSSConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = make_backbone(cfg.backbone, cfg.backbone_norm, cfg.backbone_weights,
                                      cfg.in_channels)
        self.fpn = FeaturePyramidNetwork(self.backbone.out_channels, cfg.fpn_channels,
                                         extra_blocks=LastLevelP6P7(cfg.fpn_channels, cfg.fpn_channels))
        self.head = ATSSHead(cfg.fpn_channels, cfg.num_classes, cfg.num_convs, cfg.reg_bins,
                             num_levels=len(cfg.strides))
        mean, std = cfg.norm_stats()
        self.register_buffer("image_mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(std).view(-1, 1, 1), persistent=False)
        self.la = None
        if cfg.reg_bins:
            self.register_buffer("_bin_values", torch.arange(cfg.reg_bins + 1, dtype=torch.float32),
                                 persistent=False)

    # ---------------------------------------------------------------- transform
    def _scale_for(self, h: int, w: int) -> float:
        return min(self.cfg.min_size / min(h, w), self.cfg.max_size / max(h, w))

    def transform(self, images, targets=None):
        """Normalise, resize (shorter side ``min_size``, longer ≤ ``max_size``), pad into a batch.

        Returns ``(batch (N, C, Hp, Wp), image_sizes [(h, w) resized], original_sizes, targets
        with boxes in resized pixels)``."""
        if len(images) == 0:
            raise ValueError("ATSS: empty list of images")
        out, sizes, orig, new_t = [], [], [], []
        for i, img in enumerate(images):
            if img.dim() != 3 or img.shape[0] != self.cfg.in_channels:
                raise ValueError(f"ATSS: image {i} has shape {tuple(img.shape)}; expected "
                                 f"({self.cfg.in_channels}, H, W)")
            h, w = img.shape[-2:]
            orig.append((h, w))
            x = (img.to(self.image_mean) - self.image_mean) / self.image_std
            s = self._scale_for(h, w)
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
            if (nh, nw) != (h, w):
                x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
            out.append(x)
            sizes.append((nh, nw))
            if targets is not None:
                t = dict(targets[i])
                b = t["boxes"].to(x).reshape(-1, 4)
                t["boxes"] = b * b.new_tensor([nw / w, nh / h, nw / w, nh / h])
                t["labels"] = t["labels"].to(device=x.device, dtype=torch.long).reshape(-1)
                new_t.append(t)
        d = self.cfg.size_divisible
        hp = int(math.ceil(max(s[0] for s in sizes) / d) * d)
        wp = int(math.ceil(max(s[1] for s in sizes) / d) * d)
        batch = out[0].new_zeros((len(out), self.cfg.in_channels, hp, wp))
        for i, x in enumerate(out):
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch, sizes, orig, (new_t if targets is not None else None)

    # ---------------------------------------------------------------- pieces
    def features(self, batch: Tensor) -> list[Tensor]:
        return list(self.fpn(self.backbone(batch)).values())

    def _level_info(self, feats):
        sizes = [tuple(f.shape[-2:]) for f in feats]
        anchors = make_anchors(sizes, self.cfg.strides, self.cfg.octave_scale,
                               device=feats[0].device, dtype=feats[0].dtype)
        strides = torch.cat([torch.full((a.shape[0],), float(s), device=feats[0].device)
                             for a, s in zip(anchors, self.cfg.strides)])
        return sizes, anchors, strides

    def _assign(self, anchors, targets):
        """Per image: assigned gt index (A,), labels (A,) with -1 background, matched boxes (A, 4)."""
        idx, labels, boxes = [], [], []
        for t in targets:
            gi = atss_assign(anchors, t["boxes"], t["labels"], topk=self.cfg.topk)
            pos = gi >= 0
            lab = torch.full_like(gi, -1)
            lab[pos] = t["labels"][gi[pos]]
            bx = torch.zeros((gi.shape[0], 4), device=gi.device)
            if t["boxes"].shape[0]:
                bx[pos] = t["boxes"][gi[pos]]
            idx.append(gi)
            labels.append(lab)
            boxes.append(bx)
        return torch.stack(idx), torch.stack(labels), torch.stack(boxes)

    def _level_targets(self, sizes, anchors, strides, labels, boxes):
        """Per-level LA targets: class maps (N, H, W) and distance maps (N, 4, H, W) in strides."""
        n = labels.shape[0]
        all_anchors = torch.cat(anchors)
        pts = box_centres(all_anchors)
        dist = encode_distance(pts.repeat(n, 1), boxes.reshape(-1, 4), strides.repeat(n))
        dist = dist.reshape(n, -1, 4)
        dist[labels < 0] = -1.0
        cls_t, reg_t, start = [], [], 0
        for h, w in sizes:
            k = h * w
            cls_t.append(labels[:, start:start + k].reshape(n, h, w))
            reg_t.append(dist[:, start:start + k].permute(0, 2, 1).reshape(n, 4, h, w))
            start += k
        return cls_t, reg_t

    @staticmethod
    def _flat(maps: list[Tensor]) -> Tensor:
        """[(N, C, H, W)] -> (N, sum HW, C), row-major like the anchors."""
        return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)

    def _decode(self, anchors_flat: Tensor, strides_flat: Tensor, reg: Tensor) -> Tensor:
        """reg (A, reg_dim) -> boxes (A, 4)."""
        if self.cfg.box_coder == "delta":
            return decode(anchors_flat, reg, self.cfg.box_stds)
        if self.cfg.reg_bins:
            d = F.softmax(reg.reshape(-1, 4, self.cfg.reg_bins + 1), dim=-1) @ self._bin_values
        else:
            d = F.relu(reg)
        return decode_distance(box_centres(anchors_flat), d, strides_flat)

    def train_diagnostics(self) -> dict[str, float]:
        """Figures of the LA hook since the last call (how far it moved the features), or {}."""
        fn = getattr(self.la, "diagnostics", None)
        return fn() if callable(fn) else {}

    def _run_head(self, feats, cls_t=None, reg_t=None):
        if self.la is not None and not self.training:
            with torch.enable_grad():
                outs = self.head(feats, self.la, None, None)
            return tuple([o.detach() for o in lst] for lst in outs)
        return self.head(feats, self.la, cls_t, reg_t)

    # ---------------------------------------------------------------- forward
    def forward(self, images, targets=None):
        if self.training and targets is None:
            raise ValueError("ATSS: targets are required in training mode")
        batch, sizes, orig, tt = self.transform(images, targets if self.training else None)
        feats = self.features(batch)
        lsizes, anchors, strides = self._level_info(feats)
        if self.training:
            gi, labels, boxes = self._assign(anchors, tt)
            cls_t = reg_t = None
            if self.la is not None:
                cls_t, reg_t = self._level_targets(lsizes, anchors, strides, labels, boxes)
            cls_l, reg_l, ctr_l = self._run_head(feats, cls_t, reg_t)
            return self.loss(cls_l, reg_l, ctr_l, anchors, strides, labels, boxes)
        cls_l, reg_l, ctr_l = self._run_head(feats)
        return self.postprocess(cls_l, reg_l, ctr_l, anchors, strides, sizes, orig)

    def loss(self, cls_l, reg_l, ctr_l, anchors, strides, labels, boxes) -> dict[str, Tensor]:
        cfg = self.cfg
        cls = self._flat(cls_l)                              # (N, A, C)
        reg = self._flat(reg_l)                              # (N, A, R)
        ctr = self._flat(ctr_l)[..., 0]                      # (N, A)
        all_anchors = torch.cat(anchors)
        n = cls.shape[0]
        pos = labels >= 0
        num_pos = max(float(pos.sum()), 1.0)
        a_pos = all_anchors[None].expand(n, -1, -1)[pos]
        s_pos = strides[None].expand(n, -1)[pos]
        gt_pos = boxes[pos]
        pred_boxes = self._decode(a_pos, s_pos, reg[pos])
        out = {}
        if cfg.quality == "centerness":
            onehot = torch.zeros_like(cls)
            onehot[pos, labels[pos]] = 1.0
            out["loss_cls"] = focal_loss(cls, onehot, cfg.focal_alpha, cfg.focal_gamma) / num_pos
            ctr_t = centerness_target(box_centres(a_pos), gt_pos)
            w = ctr_t
            if pos.any():
                out["loss_bbox"] = cfg.giou_weight * (giou_loss(pred_boxes, gt_pos) * w).sum() \
                    / w.sum().clamp(min=1e-6)
                out["loss_centerness"] = cfg.centerness_weight * F.binary_cross_entropy_with_logits(
                    ctr[pos], ctr_t, reduction="sum") / num_pos
            else:
                out["loss_bbox"] = reg.sum() * 0.0
                out["loss_centerness"] = ctr.sum() * 0.0
        else:
            score_t = torch.zeros_like(cls)
            if pos.any():
                iou = box_iou(pred_boxes.detach(), gt_pos).diagonal().clamp(min=0)
                score_t[pos, labels[pos]] = iou
            out["loss_cls"] = quality_focal_loss(cls, score_t, cfg.qfl_beta).sum() / num_pos
            if pos.any():
                w = cls[pos].detach().sigmoid().max(dim=1).values
                out["loss_bbox"] = cfg.giou_weight * (giou_loss(pred_boxes, gt_pos) * w).sum() \
                    / w.sum().clamp(min=1e-6)
            else:
                w = None
                out["loss_bbox"] = reg.sum() * 0.0
            out["loss_centerness"] = ctr.sum() * 0.0     # branch unused with gfl
        if cfg.reg_bins:
            if pos.any():
                k = cfg.reg_bins
                dt = encode_distance(box_centres(a_pos), gt_pos, s_pos).clamp(0, k - 1e-4)
                dfl = distribution_focal_loss(reg[pos].reshape(-1, k + 1), dt.reshape(-1))
                ww = (w if w is not None else torch.ones_like(s_pos))[:, None].expand(-1, 4).reshape(-1)
                out["loss_dfl"] = cfg.dfl_weight * (dfl * ww).sum() / ww.sum().clamp(min=1e-6)
            else:
                out["loss_dfl"] = reg.sum() * 0.0
        return out

    @torch.no_grad()
    def postprocess(self, cls_l, reg_l, ctr_l, anchors, strides, sizes, orig):
        return postprocess(self, cls_l, reg_l, ctr_l, anchors, strides, sizes, orig)

    @torch.no_grad()
    def detections(self, images) -> dict[str, Any]:
        """Raw per-level outputs (no thresholding, no NMS), for tests and analysis:
        ``scores`` (per level ``(N, C, H, W)`` sigmoid class scores), ``bbox_pred``, ``quality``
        (per level ``(N, 1, H, W)`` sigmoid centerness, ones with ``quality="gfl"``), ``anchors``
        (per level ``(H*W, 4)`` in resized pixels), ``image_sizes`` (resized) and ``original_sizes``."""
        batch, sizes, orig, _ = self.transform(images)
        feats = self.features(batch)
        _, anchors, _ = self._level_info(feats)
        cls_l, reg_l, ctr_l = self._run_head(feats)
        q = [c.sigmoid() if self.cfg.quality == "centerness" else torch.ones_like(c) for c in ctr_l]
        return {"scores": [c.sigmoid() for c in cls_l], "bbox_pred": list(reg_l), "quality": q,
                "anchors": anchors, "image_sizes": sizes, "original_sizes": orig}


def postprocess(model: ATSS, cls_l, reg_l, ctr_l, anchors, strides, sizes, orig):
    """Per image and level: class scores above ``score_thresh``, top ``pre_nms_topk``, decode, score
    = class score x centerness (centerness mode), clip, class-wise NMS (``batched_nms``), keep
    ``max_detections``, rescale to the original image."""
    cfg = model.cfg
    results = []
    n = cls_l[0].shape[0]
    level_strides = [float(s) for s in cfg.strides]
    for i in range(n):
        all_b, all_s, all_l = [], [], []
        for lvl, a in enumerate(anchors):
            sc = cls_l[lvl][i].flatten(1).t().sigmoid()                  # (HW, C)
            reg = reg_l[lvl][i].flatten(1).t()                           # (HW, R)
            flat = sc.reshape(-1)
            keep = torch.nonzero(flat > cfg.score_thresh).squeeze(1)
            if keep.numel() > cfg.pre_nms_topk:
                top = flat[keep].topk(cfg.pre_nms_topk).indices
                keep = keep[top]
            if keep.numel() == 0:
                continue
            ai = keep // sc.shape[1]
            ci = keep % sc.shape[1]
            s = flat[keep]
            if cfg.quality == "centerness":
                s = s * ctr_l[lvl][i, 0].reshape(-1)[ai].sigmoid()
            st = torch.full((ai.numel(),), level_strides[lvl], device=a.device)
            b = model._decode(a[ai], st, reg[ai])
            all_b.append(b)
            all_s.append(s)
            all_l.append(ci)
        h, w = sizes[i]
        oh, ow = orig[i]
        if all_b:
            b = torch.cat(all_b)
            s = torch.cat(all_s)
            lab = torch.cat(all_l)
            b[:, 0::2] = b[:, 0::2].clamp(0, w)
            b[:, 1::2] = b[:, 1::2].clamp(0, h)
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b, s, lab = b[ok], s[ok], lab[ok]
            k = batched_nms(b, s, lab, cfg.nms_iou)[: cfg.max_detections]
            b, s, lab = b[k], s[k], lab[k]
            b = b * b.new_tensor([ow / w, oh / h, ow / w, oh / h])
        else:
            dev = cls_l[0].device
            b, s, lab = (torch.zeros((0, 4), device=dev), torch.zeros((0,), device=dev),
                         torch.zeros((0,), dtype=torch.long, device=dev))
        results.append({"boxes": b, "scores": s, "labels": lab})
    return results


# --------------------------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, cfg: ATSSConfig) -> torch.optim.Optimizer:
    """The optimiser over the trainable parameters: SGD(lr, momentum, weight decay), the paper's,
    or AdamW(lr, weight decay) with ``optimizer="adamw"``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_multiplier(cfg: ATSSConfig, iteration: int, epoch: int) -> float:
    """Factor on ``cfg.lr`` at a global ``iteration`` (0-based) in ``epoch`` (0-based): linear warmup
    from ``warmup_ratio`` over ``warmup_iters`` iterations, then x ``lr_gamma`` for every step in
    ``lr_steps`` already reached (step e applies from the start of the (e+1)-th epoch, i.e. epoch
    index e, as in mmdet's "step=[8, 11]")."""
    f = cfg.lr_gamma ** sum(1 for s in cfg.lr_steps if epoch >= s)
    if iteration < cfg.warmup_iters:
        k = iteration / max(cfg.warmup_iters, 1)
        f *= cfg.warmup_ratio + (1 - cfg.warmup_ratio) * k
    return f
