"""The training targets and losses of ATSS: one square anchor per location, the ATSS assigner,
box coding (RetinaNet deltas, or FCOS/GFL distances in strides), centerness, and the focal, GIoU,
quality focal and distribution focal losses. See :mod:`xraybag.learners.atss` for the detector."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou, generalized_box_iou_loss, sigmoid_focal_loss

__all__ = [
    "make_anchors", "atss_assign", "encode", "decode", "encode_distance", "decode_distance",
    "centerness_target", "focal_loss", "giou_loss", "quality_focal_loss", "distribution_focal_loss",
]

_BBOX_CLAMP = math.log(1000.0 / 16)


def make_anchors(feature_sizes, strides, scale: float = 8.0, device=None, dtype=torch.float32):
    """One square anchor per location per level.

    Location ``(i, j)`` (row, column) of a level of stride ``s`` has its centre at
    ``((j + 0.5) s, (i + 0.5) s)`` and the anchor is the ``scale * s`` square around it, in xyxy.
    Returns a list (one per level) of ``(H * W, 4)`` tensors in row-major order.
    """
    out = []
    for (h, w), s in zip(feature_sizes, strides):
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * s
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        cx, cy = cx.reshape(-1), cy.reshape(-1)
        half = 0.5 * scale * s
        out.append(torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1))
    return out


def box_centres(boxes: Tensor) -> Tensor:
    return torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], dim=1)


def atss_assign(anchors_per_level, gt_boxes: Tensor, gt_labels: Tensor | None = None,
                topk: int = 9) -> Tensor:
    """Adaptive Training Sample Selection.

    ``anchors_per_level``: list of ``(A_l, 4)`` xyxy anchors; ``gt_boxes``: ``(G, 4)`` xyxy.
    Returns ``(sum A_l,)`` long: the index of the ground truth each anchor (levels concatenated in
    order) is assigned to, ``-1`` for background. ``gt_labels`` is accepted for symmetry and unused.

    For each ground truth: on every level the ``min(topk, A_l)`` anchors with the nearest centres
    (Euclidean) are candidates; the threshold is mean + standard deviation (unbiased, n - 1) of the
    candidates' IoUs; a candidate is positive if its IoU >= threshold and its centre lies strictly
    inside the box (every side distance > 0.01). An anchor positive for several boxes goes to the
    one with the highest IoU.
    """
    anchors = torch.cat(list(anchors_per_level), dim=0)
    num_a, num_g = anchors.shape[0], gt_boxes.shape[0]
    if num_g == 0 or num_a == 0:
        return torch.full((num_a,), -1, dtype=torch.long, device=anchors.device)
    gt_boxes = gt_boxes.to(anchors)
    ious = box_iou(anchors, gt_boxes)                                    # (A, G)
    ac, gc = box_centres(anchors), box_centres(gt_boxes)
    dist = torch.cdist(ac, gc)                                           # (A, G)
    cands, start = [], 0
    for lvl in anchors_per_level:
        n = lvl.shape[0]
        if n:
            k = min(topk, n)
            _, idx = dist[start:start + n].topk(k, dim=0, largest=False)
            cands.append(idx + start)
        start += n
    cand = torch.cat(cands, dim=0)                                       # (K, G)
    cand_iou = ious.gather(0, cand)
    mean = cand_iou.mean(0)
    std = cand_iou.std(0) if cand.shape[0] > 1 else torch.zeros_like(mean)
    is_pos = cand_iou >= (mean + std)[None]
    cx, cy = ac[cand, 0], ac[cand, 1]                                    # (K, G)
    side = torch.stack([cx - gt_boxes[:, 0], cy - gt_boxes[:, 1],
                        gt_boxes[:, 2] - cx, gt_boxes[:, 3] - cy], dim=0)
    is_pos &= side.min(dim=0).values > 0.01
    masked = torch.full_like(ious, -math.inf)
    g_idx = torch.arange(num_g, device=anchors.device)[None].expand_as(cand)
    masked[cand[is_pos], g_idx[is_pos]] = ious[cand[is_pos], g_idx[is_pos]]
    best, arg = masked.max(dim=1)
    return torch.where(best > -math.inf, arg, torch.full_like(arg, -1))


def encode(anchors: Tensor, boxes: Tensor, stds=(0.1, 0.1, 0.2, 0.2)) -> Tensor:
    """Standard anchor deltas (RetinaNet / ATSS): ((gx-ax)/aw, (gy-ay)/ah, log gw/aw, log gh/ah) / stds."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    gx, gy = boxes[:, 0] + 0.5 * gw, boxes[:, 1] + 0.5 * gh
    d = torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)], 1)
    return d / d.new_tensor(stds)


def decode(anchors: Tensor, deltas: Tensor, stds=(0.1, 0.1, 0.2, 0.2)) -> Tensor:
    """Inverse of :func:`encode` (dw, dh clamped at log(1000/16))."""
    d = deltas * deltas.new_tensor(stds)
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    cx, cy = ax + d[:, 0] * aw, ay + d[:, 1] * ah
    w = aw * torch.exp(d[:, 2].clamp(max=_BBOX_CLAMP))
    h = ah * torch.exp(d[:, 3].clamp(max=_BBOX_CLAMP))
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def encode_distance(points: Tensor, boxes: Tensor, strides: Tensor) -> Tensor:
    """FCOS-style (l, t, r, b) from ``points`` (N, 2) to ``boxes`` sides, in units of ``strides`` (N,)."""
    s = strides.reshape(-1, 1).to(boxes)
    return torch.stack([points[:, 0] - boxes[:, 0], points[:, 1] - boxes[:, 1],
                        boxes[:, 2] - points[:, 0], boxes[:, 3] - points[:, 1]], 1) / s


def decode_distance(points: Tensor, dists: Tensor, strides: Tensor) -> Tensor:
    s = strides.reshape(-1, 1).to(dists)
    d = dists * s
    return torch.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1],
                        points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], 1)


def centerness_target(points: Tensor, boxes: Tensor) -> Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of ``points`` (N, 2) inside ``boxes`` (N, 4)."""
    l_ = points[:, 0] - boxes[:, 0]
    t_ = points[:, 1] - boxes[:, 1]
    r_ = boxes[:, 2] - points[:, 0]
    b_ = boxes[:, 3] - points[:, 1]
    lr = torch.stack([l_, r_], 1)
    tb = torch.stack([t_, b_], 1)
    c = (lr.min(1).values / lr.max(1).values.clamp(min=1e-12)) * \
        (tb.min(1).values / tb.max(1).values.clamp(min=1e-12))
    return c.clamp(min=0).sqrt()


def focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
               reduction: str = "sum") -> Tensor:
    """Sigmoid focal loss: -alpha_t (1 - p_t)^gamma log p_t, elementwise, summed by default.

    ``targets`` are 0/1 of the same shape as ``logits`` (one-hot over classes, background = all 0).
    """
    return sigmoid_focal_loss(logits, targets.to(logits), alpha=alpha, gamma=gamma, reduction=reduction)


def giou_loss(pred: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """1 - GIoU of paired xyxy boxes (torchvision's implementation)."""
    return generalized_box_iou_loss(pred, target, reduction=reduction)


def quality_focal_loss(logits: Tensor, score_targets: Tensor, beta: float = 2.0) -> Tensor:
    """GFL quality focal loss, elementwise: BCE(sigma, y) * |y - sigma|^beta (y in [0, 1])."""
    p = logits.sigmoid()
    return F.binary_cross_entropy_with_logits(logits, score_targets, reduction="none") * \
        (score_targets - p).abs().pow(beta)


def distribution_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """GFL distribution focal loss; ``logits`` (N, K+1), ``target`` (N,) in [0, K]."""
    k = logits.shape[1] - 1
    target = target.clamp(0, k - 1e-4)
    left = target.floor().long()
    wl = left.to(target) + 1 - target
    logp = F.log_softmax(logits, dim=1)
    return -(logp.gather(1, left[:, None])[:, 0] * wl
             + logp.gather(1, (left + 1)[:, None])[:, 0] * (1 - wl))
