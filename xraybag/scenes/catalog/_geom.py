"""Plane geometry for the catalog's modelled parts: outlines built with manifold3d's cross sections
(unions, differences, rounded corners), arcs, curves, helices and the bounding box of a tube.

Outlines come back as ``(outline, holes)``, lists of [x, y] points (mm) ready for an ``extrude``.
"""

from __future__ import annotations

import math

import numpy as np
from manifold3d import CrossSection, JoinType

from xraybag.engine.solids.profiles import cross3

Sec = CrossSection
ARC = 48  # segments of a full circle in offsets


def poly(points) -> Sec:
    """A cross section from one closed polygon (either winding)."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    if float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) < 0:
        p = p[::-1]
    return Sec([np.ascontiguousarray(p)])


def circle(c, r: float, n: int = 48) -> Sec:
    return Sec.circle(float(r), int(n)).translate((float(c[0]), float(c[1])))


def rect(x0: float, y0: float, x1: float, y1: float) -> Sec:
    return poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def rounded(s: Sec, convex: float = 0.0, concave: float = 0.0) -> Sec:
    """Round the convex corners (radius ``convex``) and then the concave ones (``concave``)."""
    if concave > 0:
        s = s.offset(concave, JoinType.Round, 2.0, ARC).offset(-concave, JoinType.Round, 2.0, ARC)
    if convex > 0:
        s = s.offset(-convex, JoinType.Round, 2.0, ARC).offset(convex, JoinType.Round, 2.0, ARC)
    return s


def grow(s: Sec, d: float) -> Sec:
    """Offset outwards by ``d`` (inwards when negative), round joins."""
    return s.offset(float(d), JoinType.Round, 2.0, ARC)


def rings(s: Sec, simplify: float = 0.005) -> tuple[list[list[float]], list[list[list[float]]]]:
    """(outline, holes) of a cross section of one piece."""
    if simplify > 0:
        s = s.simplify(simplify)
    pieces = s.decompose()
    if len(pieces) != 1:
        raise ValueError(f"expected an outline of one piece, got {len(pieces)}")
    polys = [np.asarray(p, dtype=np.float64) for p in s.to_polygons()]
    area = [_area(p) for p in polys]
    k = int(np.argmax(area))
    return polys[k].tolist(), [p.tolist() for i, p in enumerate(polys) if i != k]


def pieces(s: Sec) -> list[tuple[list, list]]:
    """(outline, holes) of every piece of a cross section, largest first."""
    out = [rings(p) for p in s.decompose() if p.area() > 1.0]
    return sorted(out, key=lambda r: -abs(_area(np.asarray(r[0]))))


def _area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def arc(c, r: float, a0: float, a1: float, n: int) -> list[tuple[float, float]]:
    """``n + 1`` points on the circle (centre ``c``, radius ``r``) from angle a0 to a1 (degrees)."""
    return [(c[0] + r * math.cos(math.radians(a)), c[1] + r * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n + 1)]


def bezier(p0, p1, p2, n: int, p3=None) -> list[tuple[float, float]]:
    """``n + 1`` points of the quadratic (or, with ``p3``, cubic) Bezier curve from p0 to p2 (p3)."""
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    a, b, c = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    if p3 is None:
        pts = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t ** 2 * c
    else:
        d = np.asarray(p3, dtype=np.float64)
        pts = (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * d
    return [tuple(p) for p in pts]


def turn(points, deg: float, about=(0.0, 0.0)) -> list[tuple[float, float]]:
    """The points rotated by ``deg`` about ``about``."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    ax, ay = about
    return [(ax + c * (x - ax) - s * (y - ay), ay + s * (x - ax) + c * (y - ay)) for x, y in points]


def shift(points, dx: float = 0.0, dy: float = 0.0) -> list[tuple[float, float]]:
    return [(x + dx, y + dy) for x, y in points]


def mirror_y(points) -> list[tuple[float, float]]:
    """The points mirrored across the x axis (order reversed, so the winding is kept)."""
    return [(x, -y) for x, y in reversed(points)]


def helix(start, axis, radius: float, pitch: float, length: float, per_turn: int = 16) -> list[list[float]]:
    """Points of a helix (a coil spring's centre line) from ``start`` (a point on the axis) along the
    unit vector ``axis`` for ``length``, about that axis."""
    a = np.asarray(axis, dtype=np.float64)
    a /= np.linalg.norm(a)
    e = np.eye(3)[int(np.argmin(np.abs(a)))]
    u = e - np.dot(e, a) * a
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    turns = length / pitch
    n = max(2, math.ceil(turns * per_turn))
    t = np.linspace(0.0, 1.0, n + 1)
    ang = 2 * math.pi * turns * t
    p = (np.asarray(start, dtype=np.float64)[None, :] + (length * t)[:, None] * a
         + radius * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v))
    return p.tolist()


def sweep_centre(path, radius: float, closed: bool = False) -> tuple[float, float, float]:
    """The centre of the bounding box of a round tube of ``radius`` along the mitred polyline
    ``path`` (where a ``sweep`` shape puts its origin): the extremes lie on the mitred section
    ellipses at the corners and on the end caps."""
    P = np.asarray(path, float)
    d = (np.roll(P, -1, axis=0) - P) if closed else np.diff(P, axis=0)
    d /= np.linalg.norm(d, axis=1)[:, None]
    m, nseg = len(P), len(d)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for i in range(m):
        j = min(i, nseg - 1)
        e = np.eye(3)[int(np.argmin(np.abs(d[j])))]
        u = e - np.dot(e, d[j]) * d[j]
        u /= np.linalg.norm(u)
        v = cross3(d[j], u)
        if closed or 0 < i < m - 1:
            nrm = d[i - 1] + d[j]
            nrm /= np.linalg.norm(nrm)
            k = float(np.dot(d[j], nrm))
            u, v = u - d[j] * np.dot(u, nrm) / k, v - d[j] * np.dot(v, nrm) / k
        ext = radius * np.sqrt(u * u + v * v)
        lo, hi = np.minimum(lo, P[i] - ext), np.maximum(hi, P[i] + ext)
    c = (lo + hi) / 2
    return float(c[0]), float(c[1]), float(c[2])


def fit_bevel(outline, holes, height: float, bevel: float, taper: float = 1.0, taper_axis=None) -> float:
    """The largest of ``bevel``, 2/3 of it, 4/9 of it, ... (0 after four tries) that the outline
    takes (see :func:`xraybag.engine.solids.curves.check_extrude`)."""
    from xraybag.engine.solids.curves import check_extrude, outline_rings

    rings_ = outline_rings(outline, list(holes), False, 0.01)
    for _ in range(5):
        try:
            check_extrude(rings_, height, taper, taper_axis, bevel)
            return bevel
        except ValueError:
            bevel = round(bevel * 2 / 3, 3)
    return 0.0
