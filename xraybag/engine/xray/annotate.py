"""Labels from the geometric pass: instance maps, masks, boxes, occlusion and difficulty.

An object's mask is where its own path length is non-zero (the amodal footprint: the whole
object, also where others cover it). Its occlusion ratio is the share of its mask where the other
objects (and the bag) attenuate more than it does, at the effective energy of the view; the
difficulty is ``easy`` below ``annotation.hard``, ``hidden`` from ``annotation.hidden``, else
``hard``. The instance map gives each pixel the object that attenuates most there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xraybag.engine.xray.trace import TraceResult

MASK_MIN_MM = 1e-3  # path lengths below this (grazing rays) are not part of a mask


@dataclass
class ObjectLabel:
    index: int  # k: the k-th object of the bag (value in the instance map)
    mask: np.ndarray  # (rows, cols) bool
    bbox: list[float]  # COCO [x, y, w, h], pixels (x = column, y = row)
    area: int
    occlusion: float
    difficulty: str


def attenuation(tr: TraceResult, mu: np.ndarray) -> np.ndarray:
    """Total line integral sum_m mu_m L_m per pixel; ``mu`` per material of ``tr`` (1/mm)."""
    return tr.paths @ np.asarray(mu, dtype=np.float32)


def label_objects(
    tr: TraceResult, mu: np.ndarray, hard: float, hidden: float
) -> tuple[np.ndarray, dict[int, ObjectLabel]]:
    """Instance map (uint16) and per-object labels of one view.

    ``mu``: attenuation per material of ``tr.materials`` at the view's effective energy (1/mm).
    """
    rows, cols = tr.paths.shape[:2]
    total = attenuation(tr, mu)
    best = np.zeros((rows, cols), dtype=np.float32)
    instance = np.zeros((rows, cols), dtype=np.uint16)
    labels: dict[int, ObjectLabel] = {}
    for ot in tr.objects:
        h, w = ot.paths.shape[:2]
        own = ot.paths @ np.asarray(mu[ot.materials], dtype=np.float32)
        length = ot.paths.sum(axis=2)
        win = (slice(ot.r0, ot.r0 + h), slice(ot.c0, ot.c0 + w))
        mask_w = length > MASK_MIN_MM
        take = mask_w & (own > best[win])
        best[win][take] = own[take]
        instance[win][take] = ot.index
        area = int(mask_w.sum())
        if area == 0:
            continue
        others = total[win] - own
        occl = float(np.mean(others[mask_w] > own[mask_w]))
        rr, cc = np.nonzero(mask_w)
        y0, y1 = rr.min() + ot.r0, rr.max() + ot.r0 + 1
        x0, x1 = cc.min() + ot.c0, cc.max() + ot.c0 + 1
        mask = np.zeros((rows, cols), dtype=bool)
        mask[win] = mask_w
        diff = "hidden" if occl >= hidden else "hard" if occl >= hard else "easy"
        labels[ot.index] = ObjectLabel(
            ot.index, mask, [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], area, occl, diff
        )
    return instance, labels


def rle(mask: np.ndarray) -> dict:
    """COCO run-length encoding (``counts`` as a string) of a boolean mask."""
    from pycocotools import mask as mask_utils

    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(enc["size"][0]), int(enc["size"][1])], "counts": enc["counts"].decode("ascii")}
