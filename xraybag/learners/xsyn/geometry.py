"""Box, map and latent geometry of the ``xsyn`` synthesizer: idle regions (Eq. 3), the
class-discriminative region and median point sampling of cross-attention refinement, and the
latent boxes and occluder fusion of background occlusion modelling (Eq. 5-9).

Conventions (every function here):

* A box is pixel ``[x1, y1, x2, y2]`` (floats or ints) with ``x2 > x1`` and ``y2 > y1``; the right
  and bottom edges are exclusive (COCO's ``x + w``), so its area is ``(x2 - x1) * (y2 - y1)``.
* Images, attention maps and masks are indexed ``[y, x]``; sizes are given as ``(W, H)`` where
  named ``*_wh`` and as ``(H, W)`` where named ``shape_hw``.
* A point is ``(x, y)`` = (column, row) of a pixel, as floats with integer values (the pixel
  index, not its centre ``+ 0.5``).
* Where a function needs whole pixels of a float box (:func:`pixel_box`), it takes every pixel
  the box touches: ``floor(x1), floor(y1), ceil(x2), ceil(y2)``, clipped to the map.
* A latent box is ``(x1, y1, x2, y2)`` of whole cells of the latent grid ``(W', H')`` with the same
  exclusive right/bottom edges; a latent ``z0`` has shape ``(..., H', W')``.
* Ties are broken by the lower index (box order, or raster index ``y * W + x`` of a pixel), so
  every result is deterministic.

Arrays may be numpy arrays or CPU torch tensors wherever a map or a mask is taken (they are read
through :func:`numpy.asarray`); :func:`fuse_occluder` keeps torch tensors as torch tensors (on
their device). This module imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xraybag.errors import XraybagError

Box = Sequence[float]
IntBox = tuple[int, int, int, int]


def _np(x: Any) -> np.ndarray:
    """``x`` as a numpy array (a torch tensor is detached and moved to the CPU first)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _boxes(boxes: Any, what: str) -> np.ndarray:
    """``boxes`` as an (N, 4) float array (an empty input gives (0, 4))."""
    a = np.asarray(_np(boxes), dtype=float)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim == 1 and a.shape[0] == 4:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != 4:
        raise XraybagError(f"{what} must be boxes [x1, y1, x2, y2], got shape {a.shape}", what)
    return a


def _wh(size: Sequence[float], what: str) -> tuple[int, int]:
    """A (width, height) pair of positive integers."""
    if len(size) != 2:
        raise XraybagError(f"{what} must be (width, height), got {size!r}", what)
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0 or w != size[0] or h != size[1]:
        raise XraybagError(f"{what} must be two positive integers, got {size!r}", what)
    return w, h


def _areas(a: np.ndarray) -> np.ndarray:
    """Areas of (N, 4) boxes; a box with x2 <= x1 or y2 <= y1 has area 0."""
    return np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)


# ---------------------------------------------------------------------------------------------
# IoU, small boxes and idle regions (Eq. 3)
# ---------------------------------------------------------------------------------------------


def iou_matrix(A: Any, B: Any) -> np.ndarray:
    """IoU of every box of ``A`` (N, 4) with every box of ``B`` (M, 4): an (N, M) float array.
    A pair whose union has zero area has IoU 0."""
    a, b = _boxes(A, "boxes A"), _boxes(B, "boxes B")
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    out = np.zeros_like(union)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_iou(a: Box, b: Box) -> float:
    """IoU of two boxes ``[x1, y1, x2, y2]``; 0 when their union has zero area."""
    return float(iou_matrix(np.asarray(a, float)[None], np.asarray(b, float)[None])[0, 0])


def filter_small(boxes: Any, image_wh: Sequence[float], min_ratio: float) -> np.ndarray:
    """Keep-mask (N,) of the boxes whose area is at least ``min_ratio`` of the image's ``W * H``
    (the paper drops boxes under 0.1% of the image on PIDray: ``min_ratio=0.001``)."""
    if not min_ratio >= 0:
        raise XraybagError(f"min_ratio must be >= 0, got {min_ratio}", "min_ratio")
    w, h = _wh(image_wh, "image_wh")
    return _areas(_boxes(boxes, "boxes")) >= min_ratio * w * h


def idle_regions(seg_boxes: Any, seg_areas: Any, ann_boxes: Any, d: float,
                 image_wh: Sequence[float], min_ratio: float, drop_largest: int = 2,
                 extra_boxes: Any = ()) -> np.ndarray:
    """Indices (ascending, int) of the segments that are idle regions (Eq. 3).

    ``seg_boxes`` (K, 4) are the boxes of the masks a segmenter found over the whole image and
    ``seg_areas`` (K,) their mask areas. The ``drop_largest`` largest masks by area (background
    and whole bag; on equal areas the lower index counts as larger) are dropped, then the boxes
    that :func:`filter_small` drops, then every box whose IoU with some annotation box (or some
    box of ``extra_boxes``: the occluder's reformulation of Eq. 3 with the added item's box) is
    ``>= d``. Empty inputs give an empty array."""
    seg = _boxes(seg_boxes, "seg_boxes")
    areas = np.asarray(_np(seg_areas), dtype=float).reshape(-1)
    if len(areas) != len(seg):
        raise XraybagError(f"{len(seg)} segment boxes but {len(areas)} mask areas", "seg_areas")
    if int(drop_largest) != drop_largest or drop_largest < 0:
        raise XraybagError(f"drop_largest must be an integer >= 0, got {drop_largest}",
                           "drop_largest")
    keep = filter_small(seg, image_wh, min_ratio)
    keep[np.argsort(-areas, kind="stable")[:int(drop_largest)]] = False
    others = np.concatenate([_boxes(ann_boxes, "ann_boxes"), _boxes(extra_boxes, "extra_boxes")])
    if len(others):
        keep &= np.all(iou_matrix(seg, others) < d, axis=1)
    return np.flatnonzero(keep).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Cross-attention refinement: the discriminative region and median point sampling
# ---------------------------------------------------------------------------------------------


def pixel_box(box: Box, shape_hw: Sequence[int]) -> IntBox:
    """The whole pixels a box touches, ``(floor x1, floor y1, ceil x2, ceil y2)``, clipped to a map
    of ``shape_hw`` (H, W). The result may be empty (x2 <= x1) when the box lies off the map."""
    if len(box) != 4:
        raise XraybagError(f"a box must be [x1, y1, x2, y2], got {box!r}", "box")
    h, w = int(shape_hw[0]), int(shape_hw[1])
    x1, y1 = math.floor(float(box[0])), math.floor(float(box[1]))
    x2, y2 = math.ceil(float(box[2])), math.ceil(float(box[3]))
    return (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))


def _map2d(att: Any, what: str = "att") -> np.ndarray:
    a = _np(att)
    if a.ndim != 2 or a.size == 0:
        raise XraybagError(f"{what} must be a non-empty 2-D map [y, x], got shape {a.shape}", what)
    return a


def otsu_threshold(values: Any) -> float | None:
    """Otsu's threshold of ``values``, exact over their sorted unique values: the ``t`` among
    them (all but the largest) that maximises the between-class variance
    ``w0 * w1 * (mu0 - mu1) ** 2`` of the classes ``<= t`` and ``> t`` (the lowest such ``t`` on
    equal variances). None when all values are equal (or there are none)."""
    v = np.sort(np.asarray(_np(values), dtype=float).reshape(-1))
    if v.size == 0 or v[0] == v[-1]:
        return None
    uniq, counts = np.unique(v, return_counts=True)
    n = v.size
    c0 = np.cumsum(counts)[:-1]  # pixels <= uniq[i], for i up to the second largest value
    s0 = np.cumsum(uniq * counts)[:-1]
    total = float(np.sum(v))
    w0, w1 = c0 / n, (n - c0) / n
    mu0, mu1 = s0 / c0, (total - s0) / (n - c0)
    var = w0 * w1 * (mu0 - mu1) ** 2
    return float(uniq[int(np.argmax(var))])


def otsu_region(att: Any, box: Box) -> np.ndarray:
    """r_i: the pixels of the whole-pixel ``box`` (:func:`pixel_box`) whose activation is above
    Otsu's threshold (:func:`otsu_threshold`) of the activations inside the box; the whole box
    when they are all equal. A bool mask of ``att``'s shape, False outside the box."""
    a = _map2d(att)
    x1, y1, x2, y2 = pixel_box(box, a.shape)
    if x2 <= x1 or y2 <= y1:
        raise XraybagError(f"box {list(box)} has no pixel inside the {a.shape[1]}x{a.shape[0]} map",
                           "box")
    out = np.zeros(a.shape, dtype=bool)
    inside = np.asarray(a[y1:y2, x1:x2], dtype=float)
    t = otsu_threshold(inside)
    out[y1:y2, x1:x2] = True if t is None else inside > t
    return out


def median_points(att: Any, region: Any, n: int,
                  box: Box | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Median point sampling: ``(fg, bg)`` with ``fg`` the (k, 2) foreground points ``(x, y)`` and
    ``bg`` the (2,) background point or None.

    The pixels of ``region`` are sorted by activation (ties by raster index ``y * W + x``); the
    element at index ``(len - 1) // 2`` (the lower median) is the level-1 point and the elements
    strictly before / after it are the two sub-regions, divided the same way down to level ``n``.
    Points come level by level, within a level from the lowest-activation sub-region to the
    highest; an empty sub-region gives no point, so ``k <= 2**n - 1``. ``n = 0`` gives no points
    and no background point (the grounding box alone is the prompt).

    The background point is the pixel of minimum activation inside the whole-pixel ``box`` but
    outside ``region``; where ``box`` is None or has no such pixel, the minimum over all pixels
    outside ``region`` (ties: lowest raster index); None when ``region`` covers the whole map."""
    a = _map2d(att)
    r = _np(region)
    if r.shape != a.shape:
        raise XraybagError(f"region has shape {r.shape}, the map {a.shape}", "region")
    r = r.astype(bool)
    if int(n) != n or n < 0:
        raise XraybagError(f"n (division levels) must be an integer >= 0, got {n}", "n")
    if n == 0:
        return np.zeros((0, 2)), None
    flat = np.asarray(a, dtype=float).reshape(-1)
    idx = np.flatnonzero(r.reshape(-1))  # raster order
    order = idx[np.argsort(flat[idx], kind="stable")]
    w = a.shape[1]
    pts: list[tuple[float, float]] = []
    level = [(0, len(order))]
    for _ in range(int(n)):
        nxt: list[tuple[int, int]] = []
        for lo, hi in level:
            if hi <= lo:
                continue
            m = lo + (hi - lo - 1) // 2
            p = int(order[m])
            pts.append((float(p % w), float(p // w)))
            nxt += [(lo, m), (m + 1, hi)]
        level = nxt
    fg = np.array(pts, dtype=float).reshape(-1, 2)
    return fg, _background_point(flat, r, box, w)


def _background_point(flat: np.ndarray, region: np.ndarray, box: Box | None,
                      w: int) -> np.ndarray | None:
    """The lowest-activation pixel outside ``region`` (inside ``box`` first), or None."""
    outside = ~region
    cand = np.zeros(0, dtype=np.int64)
    if box is not None:
        x1, y1, x2, y2 = pixel_box(box, region.shape)
        in_box = np.zeros(region.shape, dtype=bool)
        in_box[y1:y2, x1:x2] = True
        cand = np.flatnonzero((outside & in_box).reshape(-1))
    if cand.size == 0:
        cand = np.flatnonzero(outside.reshape(-1))
    if cand.size == 0:
        return None
    p = int(cand[int(np.argmin(flat[cand]))])  # argmin: first of equal minima = lowest raster
    return np.array([float(p % w), float(p // w)])


# ---------------------------------------------------------------------------------------------
# Background occlusion modelling: latent boxes, Eq. 9, Eq. 5-7, the inpainting mask
# ---------------------------------------------------------------------------------------------


def to_latent_box(box: Box, factor: float, latent_wh: Sequence[int]) -> IntBox:
    """A pixel box on the latent grid ``latent_wh`` (W', H') of a model that downsamples by
    ``factor``: ``(floor(x1/f), floor(y1/f), ceil(x2/f), ceil(y2/f))`` clipped to ``[0, W']`` and
    ``[0, H']``. A box that overlaps the grid is always at least one cell wide and high there
    (floor of x1 is below ceil of x2); one wholly off the grid is an error."""
    if len(box) != 4:
        raise XraybagError(f"a box must be [x1, y1, x2, y2], got {box!r}", "box")
    if not factor > 0:
        raise XraybagError(f"the latent factor must be > 0, got {factor}", "factor")
    wl, hl = _wh(latent_wh, "latent_wh")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise XraybagError(f"box {list(box)} is empty (need x2 > x1 and y2 > y1)", "box")
    lx1, ly1 = math.floor(x1 / factor), math.floor(y1 / factor)
    lx2, ly2 = math.ceil(x2 / factor), math.ceil(y2 / factor)
    if lx2 <= 0 or ly2 <= 0 or lx1 >= wl or ly1 >= hl:
        raise XraybagError(f"box {list(box)} lies outside the {wl}x{hl} latent grid "
                           f"(factor {factor})", "box")
    return (max(lx1, 0), max(ly1, 0), min(lx2, wl), min(ly2, hl))


def _latent_box(box: Sequence[int], wl: int, hl: int, what: str) -> IntBox:
    """A latent box of whole cells, checked to be non-empty and inside (W', H')."""
    if len(box) != 4 or any(int(v) != v for v in box):
        raise XraybagError(f"{what} must be four integers (x1, y1, x2, y2), got {box!r}", what)
    x1, y1, x2, y2 = (int(v) for v in box)
    if not (0 <= x1 < x2 <= wl and 0 <= y1 < y2 <= hl):
        raise XraybagError(f"{what} {[x1, y1, x2, y2]} is empty or outside the {wl}x{hl} latent "
                           "grid", what)
    return x1, y1, x2, y2


def perturb_region(box_lat: Sequence[int], occ_wh: Sequence[int], latent_wh: Sequence[int],
                   rng: np.random.Generator) -> IntBox:
    """Eq. 9: the occluded region for latent box ``box_lat`` and an occluder of ``occ_wh``
    (w_o, h_o) cells on a (W', H') grid. ``x1' = Rand(max(x1 - w_o, 0), x2)`` (both bounds
    included), at most ``W' - 1``; ``x2' = min(x1' + w_o, W')``; likewise in y."""
    wl, hl = _wh(latent_wh, "latent_wh")
    wo, ho = _wh(occ_wh, "occ_wh")
    x1, y1, x2, y2 = _latent_box(box_lat, wl, hl, "box_lat")
    nx1 = min(int(rng.integers(max(x1 - wo, 0), x2 + 1)), wl - 1)
    ny1 = min(int(rng.integers(max(y1 - ho, 0), y2 + 1)), hl - 1)
    return (nx1, ny1, min(nx1 + wo, wl), min(ny1 + ho, hl))


def fuse_occluder(z0: Any, occ_box: Sequence[int], regions: Sequence[Sequence[int]],
                  alpha: float) -> Any:
    """Eq. 5-7: a new latent (numpy array or torch tensor, like ``z0`` of shape (..., H', W'))
    in which each region j (in order) is ``alpha * occluder + (1 - alpha) * z0`` there.

    The occluder crop for a region of (h_j, w_j) cells is the top-left ``z0[..., oy1:oy1 + h_j,
    ox1:ox1 + w_j]`` of ``occ_box``; where the occluder is smaller than the region, the region is
    cut to the occluder's size from its top-left. Both terms are read from the original ``z0``
    (no compounding); a later region overwrites an earlier one where they overlap. ``z0`` is not
    changed."""
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise XraybagError(f"alpha must be in [0, 1], got {alpha}", "alpha")
    shape = tuple(z0.shape)
    if len(shape) < 2:
        raise XraybagError(f"z0 must have shape (..., H', W'), got {shape}", "z0")
    hl, wl = int(shape[-2]), int(shape[-1])
    ox1, oy1, ox2, oy2 = _latent_box(occ_box, wl, hl, "occ_box")
    out = z0.copy() if isinstance(z0, np.ndarray) else z0.clone()
    for k, reg in enumerate(regions):
        rx1, ry1, rx2, ry2 = _latent_box(reg, wl, hl, f"regions[{k}]")
        h, w = min(ry2 - ry1, oy2 - oy1), min(rx2 - rx1, ox2 - ox1)
        occ = z0[..., oy1:oy1 + h, ox1:ox1 + w]
        here = z0[..., ry1:ry1 + h, rx1:rx1 + w]
        out[..., ry1:ry1 + h, rx1:rx1 + w] = occ * a + here * (1.0 - a)
    return out


def edit_mask(shape_hw: Sequence[int], boxes: Any, dilate: int) -> np.ndarray:
    """The inpainting region: a bool (H, W) mask, True inside each whole-pixel box
    (:func:`pixel_box`) grown by ``dilate`` pixels on every side, clipped to the image. The
    sampler's known-region mask m is its complement."""
    if len(shape_hw) != 2 or int(shape_hw[0]) <= 0 or int(shape_hw[1]) <= 0:
        raise XraybagError(f"shape_hw must be two positive integers, got {shape_hw!r}", "shape_hw")
    if int(dilate) != dilate or dilate < 0:
        raise XraybagError(f"dilate must be an integer >= 0, got {dilate}", "dilate")
    h, w = int(shape_hw[0]), int(shape_hw[1])
    out = np.zeros((h, w), dtype=bool)
    g = int(dilate)
    for b in _boxes(boxes, "boxes"):
        x1, y1, x2, y2 = pixel_box((b[0] - g, b[1] - g, b[2] + g, b[3] + g), (h, w))
        out[y1:y2, x1:x2] = True
    return out
