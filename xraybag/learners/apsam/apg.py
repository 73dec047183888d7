"""The Adaptive Point Generator (APG) of the XSeg paper (section 4.4), as a pure numpy function.

From one user click ``p0`` SAM gives a first soft mask ``M0``. APG then:

1. takes ``B0 = bbox(M0)`` and scales it about its centre by ``s_w, s_h ~ U(0.9, 1.1)`` (eq. 7),
   giving ``B`` (clipped to the image);
2. runs K-means with ``K = 2`` on the foreground pixels of ``M0`` that lie within ``B``, giving
   centroids ``c1, c2``;
3. if ``||c1 - c2|| > tau`` (a small threshold), the two point sets ``C1, C2`` (each foreground
   pixel in ``B`` goes to its nearest centroid) give the pair ``(p1, p2) = argmax ||p1 - p2||``
   over ``p1 in C1, p2 in C2`` (eq. 8): the farthest pair of points from the two clusters;
4. otherwise (one cluster: the object looks homogeneous) it draws ``p1, p2 ~ Uniform(B)`` (eq. 9).

What is clustered: the paper gives the centroids as points of R^2 and calls the one-cluster case
"appearance homogeneity", so :func:`adaptive_points` clusters each pixel's ``features`` (pass the
``H x W x 2`` high/low energy image, the EAE's input, whose values lie in [0, 1]; ``tau`` is then
in those units) and measures the farthest pair in pixel positions. Without ``features`` it
clusters the pixel positions themselves (``tau`` is then in pixels).

Conventions: a point is ``(x, y)`` = (column, row) of a pixel, as SAM's prompt encoder takes it
(it adds 0.5 to reach the pixel's centre); a box is ``x1, y1, x2, y2`` in pixel edges, so a mask
covering columns 3..10 has ``x1 = 3, x2 = 11``; a pixel lies in a box when its centre does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xraybag.errors import XraybagError

SCALE_RANGE = (0.9, 1.1)
#: the paper's "small threshold" on the distance of the two centroids (feature units)
TAU = 0.05


@dataclass
class APGResult:
    """``points``: float32 ``(2, 2)`` ``(x, y)`` of ``p1, p2``; ``mode``: ``clusters`` (eq. 8),
    ``uniform`` (eq. 9) or ``empty`` (``M0`` had no foreground: the click, twice); ``box``: ``B0``;
    ``box_scaled``: ``B``; ``centroids``: ``(2, F)`` (``None`` when empty)."""

    points: np.ndarray
    mode: str
    box: tuple[float, float, float, float] | None
    box_scaled: tuple[float, float, float, float] | None
    centroids: np.ndarray | None


def kmeans2(x: np.ndarray, rng: np.random.Generator, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """K-means with K = 2 on the rows of ``x`` (``N x F``): ``(centroids (2, F), assignment (N,))``.
    k-means++ seeding from ``rng``, then Lloyd steps until the assignment stops changing. When all
    rows are equal both centroids are that row."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise XraybagError(f"k-means needs a non-empty N x F array, got shape {x.shape}")
    c0 = x[rng.integers(len(x))]
    d2 = ((x - c0) ** 2).sum(1)
    c1 = x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else c0
    cent = np.stack([c0, c1])
    assign = np.full(len(x), -1)
    for _ in range(iters):
        dist = ((x[:, None, :] - cent[None]) ** 2).sum(-1)
        new = np.argmin(dist, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for k in range(2):
            if np.any(assign == k):
                cent[k] = x[assign == k].mean(0)
    return cent, assign


def _row_ends(pts: np.ndarray) -> np.ndarray:
    """The leftmost and rightmost point of each row of integer points ``(x, y)``: the farthest point
    of a set from any other point is among them (distance is convex along a row)."""
    order = np.lexsort((pts[:, 0], pts[:, 1]))
    p = pts[order]
    first = np.r_[True, p[1:, 1] != p[:-1, 1]]
    last = np.r_[p[1:, 1] != p[:-1, 1], True]
    return np.unique(np.concatenate([p[first], p[last]]), axis=0)


def farthest_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p1, p2)`` maximising ``||p1 - p2||`` over ``p1`` in ``a`` and ``p2`` in ``b`` (integer
    ``(x, y)`` points), exactly (ties broken deterministically)."""
    ca, cb = _row_ends(np.asarray(a)), _row_ends(np.asarray(b))
    best, pair = -1.0, (ca[0], cb[0])
    for start in range(0, len(ca), 512):
        chunk = ca[start : start + 512].astype(np.float64)
        d = ((chunk[:, None, :] - cb[None].astype(np.float64)) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmax(d)), d.shape)
        if d[i, j] > best:
            best, pair = float(d[i, j]), (ca[start + i], cb[j])
    return pair


def scale_box(box, sw: float, sh: float, width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` ``x1, y1, x2, y2`` scaled about its centre by ``sw`` (width) and ``sh`` (height),
    clipped to the ``width x height`` image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * sw / 2, (y2 - y1) * sh / 2
    return (max(0.0, cx - hw), max(0.0, cy - hh), min(float(width), cx + hw), min(float(height), cy + hh))


def adaptive_points(
    mask: np.ndarray,
    rng: np.random.Generator | int | None = None,
    features: np.ndarray | None = None,
    tau: float = TAU,
    scale_range: tuple[float, float] = SCALE_RANGE,
    threshold: float = 0.5,
    point: tuple[float, float] | None = None,
) -> APGResult:
    """Two prompt points from SAM's first mask ``mask`` (``H x W``, bool or soft: foreground where
    ``mask > threshold``; pass ``threshold=0`` for logits), as the module docstring describes.
    ``features``: ``H x W x F`` per-pixel features to cluster (the high/low energy image), or
    ``None`` for the pixel positions; ``rng``: a numpy Generator or seed (the box scale, k-means
    seeding and the uniform fallback draw from it); ``point``: the user's click, returned twice
    when the mask is empty (without it an empty mask is an error)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    m = np.asarray(mask)
    if m.ndim != 2:
        raise XraybagError(f"APG takes an H x W mask, got shape {m.shape}")
    h, w = m.shape
    fg = m > threshold if m.dtype != bool else m
    if features is not None:
        features = np.asarray(features, dtype=np.float64)
        features = features[..., None] if features.ndim == 2 else features
        if features.shape[:2] != (h, w):
            raise XraybagError(f"APG features are {features.shape[:2]} but the mask is {(h, w)}")
    lo, hi = (float(v) for v in scale_range)
    if not (0 < lo <= hi):
        raise XraybagError(f"APG scale range must be 0 < low <= high, got {tuple(scale_range)}")
    ys, xs = np.nonzero(fg)
    if len(xs) == 0:
        if point is None:
            raise XraybagError("APG: the first mask is empty and no click was given to fall back on")
        p = np.asarray(point, dtype=np.float32).reshape(2)
        return APGResult(np.stack([p, p]), "empty", None, None, None)

    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    sw, sh = rng.uniform(lo, hi, size=2)
    b = scale_box(box, sw, sh, w, h)
    inside = (xs + 0.5 >= b[0]) & (xs + 0.5 <= b[2]) & (ys + 0.5 >= b[1]) & (ys + 0.5 <= b[3])
    xs, ys = xs[inside], ys[inside]
    if len(xs) == 0:  # a scaled box can miss a one-pixel mask only through rounding; keep the mask
        xs, ys = np.nonzero(fg)[1], np.nonzero(fg)[0]
    pts = np.stack([xs, ys], axis=1)
    feats = pts.astype(np.float64) if features is None else features[ys, xs]
    cent, assign = kmeans2(feats, rng)
    if np.linalg.norm(cent[0] - cent[1]) > tau and np.any(assign == 0) and np.any(assign == 1):
        p1, p2 = farthest_pair(pts[assign == 0], pts[assign == 1])
        points, mode = np.stack([p1, p2]).astype(np.float32), "clusters"
    else:
        u = rng.uniform(size=(2, 2))
        points = np.stack([b[0] + u[:, 0] * (b[2] - b[0]), b[1] + u[:, 1] * (b[3] - b[1])], axis=1).astype(np.float32)
        mode = "uniform"
    return APGResult(points, mode, box, b, cent)
