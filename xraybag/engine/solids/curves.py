"""Point lists of the modelled shapes (``extrude``, ``sweep``, ``revolve``): cleaning, splines,
outlines and their insets, and the checks that their meshes will be closed and not cut into
themselves. Bad input raises ``ValueError`` whose message starts with the field it is about
(``outline: crosses or touches itself near (12, 4)``); the scene models (:mod:`xraybag.scenes.shapes`)
run these checks when a file loads, :mod:`xraybag.engine.solids.profiles` when it meshes.

**Splines** (``spline: true``): an interpolating cubic B-spline through the points (scipy's
``splprep``, chord-length parameters; periodic for closed curves), sampled span by span with every
given point kept and, between them, points spaced so that the sagitta of each chord, kappa l**2 / 8
for curvature kappa and chord length l, is at most the chord tolerance (for a tube's centre line,
that of its outer side: kappa (1 + r kappa)); at most MAX_CURVE_POINTS points per curve.

**Insets**: every vertex of a ring moves along its mitre (the bisector of its corner, by
``d / cos(turn / 2)``), which moves every edge by exactly ``d``; an inset is refused when an edge
would vanish or reverse or the rings would cross.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

MAX_CURVE_POINTS = 4000
MAX_POINTS = 4000  # given points per list
MAX_COORDINATE = 1e6  # mm
MAX_CLEARANCE_SAMPLES = 200_000
_SUBSTEPS = 64  # curvature samples per spline span
_BLOCK = 256  # segments per block of the crossing test

AXES = {"x": (1.0, 0.0), "-x": (-1.0, 0.0), "y": (0.0, 1.0), "-y": (0.0, -1.0)}


def _fmt(p) -> str:
    return "(" + ", ".join(f"{float(x):.4g}" for x in p) + ")"


# ------------------------------------------------------------------------------------ points


def points_error(points, dim: int, closed: bool) -> str | None:
    """Why ``points`` is not a usable point list of ``dim`` numbers each (or None)."""
    least = 3 if closed else 2
    if not all(len(p) == dim for p in points):
        bad = next(p for p in points if len(p) != dim)
        return f"expected points of {dim} numbers each, got {list(bad)!r}"
    if not all(math.isfinite(x) and abs(x) <= MAX_COORDINATE for p in points for x in p):
        return f"expected finite numbers within +-{MAX_COORDINATE:g} mm"
    if len(points) > MAX_POINTS:
        return f"expected at most {MAX_POINTS} points, got {len(points)}"
    n = len(clean(points, closed))
    if n < least:
        return f"expected at least {least} distinct points, got {n}"
    return None


def clean(points, closed: bool) -> np.ndarray:
    """The points as an (n, d) array without consecutive repeats (nor a last point that repeats
    the first, for a closed curve)."""
    if len(points) == 0:
        return np.zeros((0, 2))
    pts = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    pts = pts[keep]
    if closed and len(pts) > 1 and np.all(pts[0] == pts[-1]):
        pts = pts[:-1]
    return pts


def signed_area(ring: np.ndarray) -> float:
    """Shoelace area of a closed 2D ring (> 0 counter-clockwise)."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _orient(p, q, r):
    return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])


def first_crossing(rings: list[np.ndarray]) -> tuple[tuple[int, int], np.ndarray] | None:
    """The first place where the edges of closed 2D rings meet other than at the corner two
    consecutive edges share (crossing, touching, overlapping or doubling back): ((ring a, ring b),
    a point there), or None when they are simple and disjoint."""
    a = np.vstack(rings)
    b = np.vstack([np.roll(r, -1, axis=0) for r in rings])
    ring = np.concatenate([np.full(len(r), k) for k, r in enumerate(rings)])
    idx = np.concatenate([np.arange(len(r)) for r in rings])
    size = np.concatenate([np.full(len(r), len(r)) for r in rings])
    scale = max(float(np.abs(a).max()), float(np.ptp(a, axis=0).max()), 1e-9)
    eps = 1e-12 * scale * scale
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # consecutive edges doubling back on each other
    nxt = np.where(idx + 1 < size, np.arange(len(a)) + 1, np.arange(len(a)) - size + 1)
    e0 = b - a
    e1 = e0[nxt]
    cross = e0[:, 0] * e1[:, 1] - e0[:, 1] * e1[:, 0]
    back = (np.abs(cross) <= eps) & (np.einsum("ij,ij->i", e0, e1) < 0)
    if back.any():
        i = int(np.argmax(back))
        return (int(ring[i]), int(ring[i])), b[i]
    n = len(a)
    for s in range(0, n, _BLOCK):
        i = np.arange(s, min(n, s + _BLOCK))
        ov = ((lo[i, None, 0] <= hi[None, :, 0]) & (lo[None, :, 0] <= hi[i, None, 0])
              & (lo[i, None, 1] <= hi[None, :, 1]) & (lo[None, :, 1] <= hi[i, None, 1]))
        j = np.arange(n)[None, :]
        ov &= j > i[:, None]
        same = ring[i, None] == ring[None, :]
        d = (idx[None, :] - idx[i, None]) % size[i, None]
        ov &= ~(same & ((d == 1) | (d == size[i, None] - 1)))
        ii, jj = np.nonzero(ov)
        if ii.size == 0:
            continue
        ii = i[ii]
        p1, p2, q1, q2 = a[ii], b[ii], a[jj], b[jj]
        o1, o2, o3, o4 = (_orient(p1, p2, q1), _orient(p1, p2, q2), _orient(q1, q2, p1), _orient(q1, q2, p2))
        o1, o2, o3, o4 = (np.where(np.abs(o) <= eps, 0.0, o) for o in (o1, o2, o3, o4))
        hit = (o1 * o2 <= 0) & (o3 * o4 <= 0)
        # collinear pairs (all four orientations 0) meet only where their boxes overlap on the line,
        # which the box filter has checked
        if hit.any():
            k = int(np.argmax(hit))
            t = o3[k] / (o3[k] - o4[k]) if o3[k] != o4[k] else 0.0
            return (int(ring[ii[k]]), int(ring[jj[k]])), p1[k] + t * (p2[k] - p1[k])
    return None


def inside(point: np.ndarray, ring: np.ndarray) -> bool:
    """Whether a 2D point lies inside a closed ring (even-odd rule)."""
    x, y = point
    a, b = ring, np.roll(ring, -1, axis=0)
    cond = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return bool(np.count_nonzero(cond & (x < xs)) % 2)


# ----------------------------------------------------------------------------------- splines


def _spline(pts: np.ndarray, closed: bool):
    from scipy.interpolate import splprep

    data = np.vstack([pts, pts[:1]]) if closed else pts
    k = 3 if closed else min(3, len(pts) - 1)
    try:
        tck, u = splprep(data.T, s=0, k=k, per=int(closed))
    except Exception as e:  # noqa: BLE001 - FITPACK's own error class is not a ValueError
        raise ValueError(f"cannot fit a spline through the points ({e})") from None
    return tck, u


def curvature(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Curvature of a curve from its first and second derivatives (2D or 3D)."""
    if d1.shape[1] == 2:
        cross = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    else:
        cross = np.linalg.norm(np.cross(d1, d2), axis=1)
    speed = np.linalg.norm(d1, axis=1)
    return cross / np.maximum(speed, 1e-300) ** 3


@lru_cache(maxsize=256)
def _sampled(key: tuple, closed: bool, tolerance: float, extra_radius: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.interpolate import splev

    pts = np.array(key, dtype=np.float64)
    tck, u = _spline(pts, closed)
    spans = len(u) - 1
    w = np.linspace(0.0, 1.0, _SUBSTEPS + 1)
    t = u[:-1, None] + (u[1:] - u[:-1])[:, None] * w[None, :]
    d1 = np.array(splev(t.ravel(), tck, der=1)).T
    d2 = np.array(splev(t.ravel(), tck, der=2)).T if tck[2] >= 2 else np.zeros_like(d1)
    kappa = curvature(d1, d2).reshape(spans, -1)
    speed = np.linalg.norm(d1, axis=1).reshape(spans, -1)
    density = np.sqrt(kappa * (1.0 + extra_radius * kappa) / (8.0 * tolerance)) * speed
    cum = np.concatenate(
        [np.zeros((spans, 1)), np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(t, axis=1), axis=1)],
        axis=1,
    )
    counts = np.maximum(1, np.ceil(cum[:, -1] - 1e-9)).astype(int)
    if counts.sum() > MAX_CURVE_POINTS:
        counts = np.maximum(1, np.floor(counts * (MAX_CURVE_POINTS / counts.sum()))).astype(int)
    params, starts = [], []
    for s in range(spans):
        starts.append(len(params))
        targets = cum[s, -1] * np.arange(counts[s]) / counts[s]
        params.extend(np.interp(targets, cum[s], t[s]))
    if not closed:
        starts.append(len(params))
        params.append(u[-1])
    out = np.array(splev(np.array(params), tck)).T
    out[starts] = pts  # the given points exactly
    out.setflags(write=False)
    kmax = kappa.max(axis=1)
    kmax.setflags(write=False)
    return out, kmax


def sample_curve(
    pts: np.ndarray, closed: bool, tolerance: float, extra_radius: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(points of the spline through ``pts`` sampled to the chord ``tolerance``, the largest
    curvature on each span between consecutive given points)."""
    key = tuple(map(tuple, np.asarray(pts, dtype=np.float64).tolist()))
    return _sampled(key, closed, float(tolerance), float(extra_radius))


# ---------------------------------------------------------------------------------- outlines


def _as_key(points) -> tuple:
    return tuple(tuple(float(x) for x in p) for p in points)


def outline_rings(outline, holes, spline: bool, tolerance: float) -> list[np.ndarray]:
    """The outline (counter-clockwise) and holes (clockwise) as closed 2D rings, smoothed when
    ``spline``; raises ValueError naming the field when they cross or a hole is not inside."""
    return list(_outline_rings(_as_key(outline), tuple(_as_key(h) for h in holes), bool(spline), float(tolerance)))


@lru_cache(maxsize=128)
def _outline_rings(outline: tuple, holes: tuple, spline: bool, tolerance: float) -> tuple[np.ndarray, ...]:
    rings, names = [], []
    if sum(len(r) for r in (outline, *holes)) > 4 * MAX_POINTS:
        raise ValueError(f"holes: expected at most {4 * MAX_POINTS} points in the outline and holes together")
    for k, pts in enumerate((outline, *holes)):
        name = "outline" if k == 0 else f"holes[{k - 1}]"
        problem = points_error(pts, 2, True)
        if problem:
            raise ValueError(f"{name}: {problem}")
        ring = clean(pts, True)
        if spline:
            try:
                ring = sample_curve(ring, True, tolerance)[0].copy()
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        hit = first_crossing([ring])
        if hit:
            how = "the spline through it " if spline else ""
            raise ValueError(f"{name}: {how}crosses or touches itself near {_fmt(hit[1])}")
        area = signed_area(ring)
        scale = float(np.ptp(ring, axis=0).max())
        if abs(area) <= 1e-12 * scale * scale:
            raise ValueError(f"{name}: encloses no area (its points lie on a line)")
        if (area > 0) != (k == 0):
            ring = ring[::-1].copy()
        ring.setflags(write=False)
        rings.append(ring)
        names.append(name)
    hit = first_crossing(rings)
    if hit:
        (ka, kb), p = hit
        raise ValueError(f"{names[kb]}: touches or crosses {names[ka]} near {_fmt(p)}")
    for k in range(1, len(rings)):
        if not inside(rings[k][0], rings[0]):
            raise ValueError(f"{names[k]}: lies outside the outline")
        for j in range(1, len(rings)):
            if j != k and inside(rings[k][0], rings[j]):
                raise ValueError(f"{names[k]}: lies inside {names[j]}")
    return tuple(rings)


def mitres(ring: np.ndarray) -> np.ndarray:
    """Per vertex, the vector that moves both its edges by 1 to their left (into the material of a
    counter-clockwise outline or a clockwise hole): (n_prev + n_next) / (1 + n_prev . n_next)."""
    e = np.roll(ring, -1, axis=0) - ring
    e /= np.linalg.norm(e, axis=1)[:, None]
    n = np.column_stack([-e[:, 1], e[:, 0]])
    p = np.roll(n, 1, axis=0)
    return (p + n) / (1.0 + np.einsum("ij,ij->i", p, n))[:, None]


def _inset_ok(rings: list[np.ndarray], inset: list[np.ndarray]) -> bool:
    """Whether inset rings keep every edge's direction and stay simple and disjoint."""
    for r, s in zip(rings, inset):
        e, f = np.roll(r, -1, axis=0) - r, np.roll(s, -1, axis=0) - s
        if np.any(np.einsum("ij,ij->i", e, f) <= 0):
            return False
    return first_crossing(inset) is None


def inset_rings(rings: list[np.ndarray], d: float, scale: float = 1.0, centre=(0.0, 0.0)) -> list[np.ndarray] | None:
    """The rings scaled about ``centre`` and moved inwards by ``d`` (mitred), or None when that
    makes an edge vanish or the rings cross."""
    c = np.asarray(centre, dtype=np.float64)
    out = [c + scale * (r - c) + d * mitres(r) for r in rings]
    if d == 0.0 and scale == 1.0:
        return out
    return out if _inset_ok(rings, out) else None


def thinnest(height: float, taper: float, taper_axis: str | None) -> float:
    return height * taper if taper_axis else height


def check_extrude(rings, height: float, taper: float, taper_axis, bevel: float) -> None:
    """Raise ValueError naming the field when the bevel does not fit the extrusion."""
    if bevel <= 0:
        return
    t = thinnest(height, taper, taper_axis)
    if 2 * bevel >= t:
        raise ValueError(f"bevel: {bevel:g} mm must be less than half the thinnest part ({t:g} mm)")
    lo, hi = rings[0].min(axis=0), rings[0].max(axis=0)
    c = (lo + hi) / 2.0
    for s in ((1.0, taper) if not taper_axis else (1.0,)):
        if inset_rings(list(rings), bevel, s, c) is None:
            raise ValueError(
                f"bevel: {bevel:g} mm is too large for the outline (inset by it, an edge vanishes or "
                "the outline crosses itself or a hole); make it smaller"
            )



# ------------------------------------------------------------------------------------- paths


def path_polyline(path, spline: bool, closed: bool, radius: float, tolerance: float) -> np.ndarray:
    """The tube's centre line as a polyline: the spline sampled to ``tolerance`` on the tube's
    outer side, or the given points."""
    pts = clean(path, closed)
    if spline:
        try:
            pts = np.array(sample_curve(pts, closed, tolerance, radius)[0])
        except ValueError as e:
            raise ValueError(f"path: {e}") from None
    return pts


def segments3(poly: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    d = (np.roll(poly, -1, axis=0) - poly) if closed else np.diff(poly, axis=0)
    length = np.linalg.norm(d, axis=1)
    return d / length[:, None], length


def check_mitres(poly: np.ndarray, closed: bool, radius: float, spline: bool) -> None:
    """Each segment must hold the setbacks r tan(turn / 2) of the mitred joints at its ends."""
    d, length = segments3(poly, closed)
    m, nseg = len(poly), len(d)
    cos = np.ones(m)
    if closed:
        cos = np.einsum("ij,ij->i", np.roll(d, 1, axis=0), d)  # the corner at vertex i
    else:
        cos[1:-1] = np.einsum("ij,ij->i", d[:-1], d[1:])
    half = np.arccos(np.clip(cos, -1.0, 1.0)) / 2.0
    with np.errstate(over="ignore", invalid="ignore"):
        setback = np.where(half < np.pi / 2 - 1e-9, radius * np.tan(half), np.inf)
    ends = (np.arange(nseg) + 1) % m
    need = setback[:nseg] + setback[ends]
    bad = np.nonzero(need >= length)[0]
    if bad.size == 0:
        return
    s = int(bad[0])
    if spline:
        raise ValueError(
            f"path: the curve bends too tightly for radius {radius:g} near {_fmt(poly[s])}; "
            "spread its points or make the tube thinner"
        )
    k = s if setback[s] >= setback[ends[s]] else int(ends[s])
    raise ValueError(
        f"path: the corner at point {k} turns {math.degrees(2 * half[k]):.0f} degrees, too sharp for "
        f"radius {radius:g}: the mitred joints need {need[s]:.3g} mm of the {length[s]:.3g} mm segment "
        "beside it (use longer segments, spline: true, or a thinner tube)"
    )


def check_clearance(poly: np.ndarray, closed: bool, radius: float) -> None:
    """Parts of the path farther apart along it than half a turn of the tube must be 2 r apart."""
    from scipy.spatial import cKDTree

    d, length = segments3(poly, closed)
    h = max(radius / 4.0, float(length.sum()) / MAX_CLEARANCE_SAMPLES)
    counts = np.maximum(1, np.ceil(length / h)).astype(int)
    seg = np.repeat(np.arange(len(d)), counts)
    frac = np.concatenate([np.arange(c) / c for c in counts])
    start = np.concatenate([[0.0], np.cumsum(length)[:-1]])
    s = start[seg] + frac * length[seg]
    pts = poly[seg] + (frac * length[seg])[:, None] * d[seg]
    if not closed:
        pts, s, seg = np.vstack([pts, poly[-1:]]), np.append(s, length.sum()), np.append(seg, len(d) - 1)
    pairs = cKDTree(pts).query_pairs(2.0 * radius * (1.0 - 1e-9), output_type="ndarray")
    if len(pairs) == 0:
        return
    i, j = pairs[:, 0], pairs[:, 1]
    ds = np.abs(s[i] - s[j])
    gap = np.abs(seg[i] - seg[j])
    if closed:
        ds = np.minimum(ds, length.sum() - ds)
        gap = np.minimum(gap, len(d) - gap)
    bad = (ds > np.pi * radius * (1.0 + 1e-9)) & (gap > 1)
    if bad.any():
        k = int(np.argmax(bad))
        dist = float(np.linalg.norm(pts[i[k]] - pts[j[k]]))
        raise ValueError(
            f"path: passes within {dist:.3g} mm of itself near {_fmt(pts[i[k]])}, less than the tube's "
            f"diameter {2 * radius:g} mm"
        )


def check_path(path, spline: bool, closed: bool, radius: float, tolerance: float = 0.01) -> None:
    """Raise ValueError naming ``path`` when a tube of ``radius`` along it would cut into itself:
    a spline bending tighter than the radius, a mitred corner too sharp for its segments, or
    parts of the path closer than the tube's diameter."""
    _check_path(_as_key(path), bool(spline), bool(closed), float(radius), float(tolerance))


@lru_cache(maxsize=128)
def _check_path(path: tuple, spline: bool, closed: bool, radius: float, tolerance: float) -> None:
    pts = clean(path, closed)
    if spline:
        try:
            _, kmax = sample_curve(pts, closed, tolerance, radius)
        except ValueError as e:
            raise ValueError(f"path: {e}") from None
        k = int(np.argmax(kmax))
        if kmax[k] * radius >= 1.0:
            b = (k + 1) % len(pts)
            raise ValueError(
                f"path: the spline bends with radius {1 / kmax[k]:.3g} mm between points {k} and {b}, "
                f"tighter than the tube radius {radius:g} mm; spread the points or make the tube thinner"
            )
    poly = path_polyline(pts, spline, closed, radius, tolerance)
    check_mitres(poly, closed, radius, spline)
    check_clearance(poly, closed, radius)



# ---------------------------------------------------------------------------------- profiles


def revolve_profile(profile, spline: bool, tolerance: float) -> np.ndarray:
    """The (r, z) profile closed on the axis, from the bottom pole to the top pole, counter-
    clockwise in the (r, z) plane (the solid on its left), smoothed when ``spline``."""
    return _revolve_profile(_as_key(profile), bool(spline), float(tolerance))


@lru_cache(maxsize=128)
def _revolve_profile(profile: tuple, spline: bool, tolerance: float) -> np.ndarray:
    problem = points_error(profile, 2, False)
    if problem:
        raise ValueError(f"profile: {problem}")
    pts = clean(profile, False)
    if np.any(pts[:, 0] < 0):
        raise ValueError(f"profile: r must be >= 0, got {_fmt(pts[np.argmin(pts[:, 0])])}")
    if np.any(pts[1:-1, 0] == 0):
        raise ValueError("profile: only its first and last points may lie on the axis (r = 0)")
    scale = float(np.ptp(pts, axis=0).max())
    if spline:
        try:
            pts = np.array(sample_curve(pts, False, tolerance)[0])
        except ValueError as e:
            raise ValueError(f"profile: {e}") from None
        low = pts[1:-1, 0] <= 1e-9 * scale
        if low.any():
            z = pts[1:-1][low][0, 1]
            raise ValueError(
                f"profile: the spline through it reaches the axis near z = {z:.4g}; add points there or "
                "set spline: false"
            )
    if pts[0, 0] > 0:
        pts = np.vstack([[0.0, pts[0, 1]], pts])
    if pts[-1, 0] > 0:
        pts = np.vstack([pts, [0.0, pts[-1, 1]]])
    if pts[0, 1] == pts[-1, 1]:
        raise ValueError("profile: its ends must lie at different heights (it is closed along the axis)")
    area = signed_area(pts)
    if abs(area) <= 1e-12 * scale * scale:
        raise ValueError("profile: encloses no area")
    hit = first_crossing([pts])
    if hit:
        how = "the spline through it " if spline else ""
        raise ValueError(f"profile: {how}crosses or touches itself (or the axis) near {_fmt(hit[1])}")
    if area < 0:
        pts = pts[::-1].copy()
    pts.setflags(write=False)
    return pts
