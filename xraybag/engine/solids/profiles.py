"""The meshes of the ``extrude``, ``sweep`` and ``revolve`` shapes, and of their cavities.

Plain numbers in (point lists prepared by :mod:`xraybag.engine.solids.curves`), closed outward-wound
triangle meshes (vertices, faces) out, in the coordinates of the scene file's points;
:func:`xraybag.engine.solids.meshes.modelled_mesh` then centres them on their bounding box.

- **Extrude**: the outline (counter-clockwise) and holes (clockwise) become a stack of layers of the
  same vertices: the bottom and top faces and, with a bevel, the layers of the bevel, inset along
  the mitres; a round bevel of size b insets the layer ``delta`` above a face by
  ``b - sqrt(b**2 - (b - delta)**2)``, a chamfer by ``b - delta``. ``taper`` scales the layers about
  the centre of the outline's bounding box, linearly from 1 at the bottom to ``taper`` at the top;
  with ``taper_axis`` the faces are instead the planes ``z = +-t(x, y) / 2`` with the thickness t
  linear along the axis. The faces are triangulated by manifold3d (ear clipping, holes included).
- **Sweep**: the centre line as a polyline (the sampled spline, or the given corners); every segment
  is a cylinder of the tube's radius whose circle (the cross-section polygon, vertices on the true
  circle) is carried from segment to segment by the smallest rotation between their directions
  (parallel transport: the tube does not twist; around a closed path the leftover angle is spread
  evenly), and consecutive cylinders meet in the plane that bisects their corner (a mitre). Open
  paths get flat caps.
- **Revolve**: the profile closed along the axis is revolved by :func:`meshes.revolve`; a
  container's cavity is the profile mirrored across the axis and offset inward by the wall
  (manifold3d's Clipper offset, round joins), so the wall is equally thick everywhere, necks too.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from xraybag.engine.solids.curves import (
    AXES,
    check_extrude,
    check_mitres,
    clean,
    mitres,
    segments3,
    signed_area,
)

# ----------------------------------------------------------------------------------- extrude


def _bevel_layers(bevel: float, shape: str, segments: int) -> list[tuple[float, float]]:
    """(height above the face, inset) from the face to the end of the bevel."""
    if bevel <= 0:
        return [(0.0, 0.0)]
    if shape == "chamfer":
        return [(0.0, bevel), (bevel, 0.0)]
    a = np.linspace(0.5 * np.pi, 0.0, max(1, segments) + 1)
    return [(bevel * (1 - math.sin(x)), bevel * (1 - math.cos(x))) for x in a]


def extrude_solid(
    rings, height: float, taper: float = 1.0, taper_axis: str | None = None,
    bevel: float = 0.0, bevel_shape: str = "round", bevel_segments: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of the extrusion of ``rings`` (outline counter-clockwise, then holes
    clockwise) from z = -height/2 to height/2, in the outline's coordinates."""
    import manifold3d

    rings = [np.asarray(r, dtype=np.float64) for r in rings]
    check_extrude(rings, height, taper, taper_axis, bevel)
    lo, hi = rings[0].min(axis=0), rings[0].max(axis=0)
    c = (lo + hi) / 2.0
    pts = np.vstack(rings)
    mit = np.vstack([mitres(r) for r in rings])
    prof = _bevel_layers(bevel, bevel_shape, bevel_segments)
    layers = [(-1.0, dz, d) for dz, d in prof] + [(1.0, dz, d) for dz, d in reversed(prof)]
    h2 = height / 2.0
    if taper_axis:
        ax = np.array(AXES[taper_axis])
        q = rings[0] @ ax
        q0, q1 = float(q.min()), float(q.max())
    out = []
    for side, dz, d in layers:
        if taper_axis:
            xy = pts + d * mit
            t = height * (1.0 - (1.0 - taper) * (xy @ ax - q0) / (q1 - q0))
            z = side * (t / 2.0 - dz)
        else:
            zl = side * (h2 - dz)
            s = 1.0 + (taper - 1.0) * (zl + h2) / height
            xy = c + s * (pts - c) + d * mit
            z = np.full(len(pts), zl)
        out.append(np.column_stack([xy, z]))
    v = np.vstack(out)
    npts = len(pts)
    faces = []
    offsets = np.cumsum([0] + [len(r) for r in rings])
    for k in range(len(layers) - 1):
        for o, m in pairwise(offsets):
            i = np.arange(o, m)
            j = np.roll(i, -1)
            lo_i, lo_j, hi_i, hi_j = k * npts + i, k * npts + j, (k + 1) * npts + i, (k + 1) * npts + j
            faces += [np.column_stack([lo_i, lo_j, hi_j]), np.column_stack([lo_i, hi_j, hi_i])]
    for k, flip in ((0, True), (len(layers) - 1, False)):
        layer = v[k * npts:(k + 1) * npts, :2]
        polys = [np.ascontiguousarray(layer[o:m]) for o, m in pairwise(offsets)]
        tri = np.asarray(manifold3d.triangulate(polys), dtype=np.int64) + k * npts
        faces.append(tri[:, ::-1] if flip else tri)
    return v, np.vstack(faces)


def extrude_cavity(
    rings, height: float, wall: float, bevel: float, bevel_shape: str, bevel_segments: int, arc_segments: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The cavity of a straight extrusion with walls ``wall`` thick: the outline and holes offset
    into the material by ``wall`` (manifold3d's Clipper offset, round joins: the wall is ``wall``
    everywhere, thicker only at convex corners), ``height - 2 wall`` high, with the bevel reduced to
    keep the wall (round: ``bevel - wall``, chamfer: ``bevel - (2 - sqrt 2) wall``; none where
    that does not fit). An outline that the offset splits (a waist thinner than two walls) gets one
    cavity per piece. None when nothing is left."""
    import manifold3d

    if height - 2 * wall <= 0:
        return None
    section = manifold3d.CrossSection([np.ascontiguousarray(r, dtype=np.float64) for r in rings])
    inner = section.offset(-wall, manifold3d.JoinType.Round, 2.0, max(8, int(arc_segments)))
    shrink = wall if bevel_shape == "round" else (2.0 - math.sqrt(2.0)) * wall
    b = max(0.0, bevel - shrink)
    verts, faces, count = [], [], 0
    for piece in inner.decompose():
        polys = [np.asarray(p, dtype=np.float64) for p in piece.to_polygons()]
        outer = [p for p in polys if signed_area(p) > 0]
        if len(outer) != 1:
            return None
        piece_rings = outer + [p for p in polys if signed_area(p) < 0]
        try:
            v, f = extrude_solid(piece_rings, height - 2 * wall, 1.0, None, b, bevel_shape, bevel_segments)
        except ValueError:
            v, f = extrude_solid(piece_rings, height - 2 * wall)
        verts.append(v)
        faces.append(f + count)
        count += len(v)
    if not verts:
        return None
    return np.vstack(verts), np.vstack(faces)


# ------------------------------------------------------------------------------------- sweep


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross(a, b)`` of two 3-vectors, the same bits (each component one product less
    another, as numpy computes it) at a thirtieth of numpy's cost for one pair: the meshes of
    swept tubes take thousands of these one at a time."""
    a0, a1, a2 = a.tolist()
    b0, b1, b2 = b.tolist()
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _transport(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``u`` turned by the smallest rotation taking unit vector a to unit vector b."""
    v = cross3(a, b)
    c = float(np.dot(a, b))
    vu = cross3(v, u)
    out = u + vu + cross3(v, vu) / (1.0 + c)
    return out / np.linalg.norm(out)


def _frames(d: np.ndarray, length: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per segment, two unit vectors across it (u, v = d x u), parallel-transported."""
    n = len(d)
    e = np.eye(3)[int(np.argmin(np.abs(d[0])))]
    u = np.empty((n, 3))
    u[0] = e - np.dot(e, d[0]) * d[0]
    u[0] /= np.linalg.norm(u[0])
    for i in range(1, n):
        u[i] = _transport(u[i - 1], d[i - 1], d[i])
    if closed:
        back = _transport(u[-1], d[-1], d[0])
        phi = math.atan2(float(np.dot(cross3(u[0], back), d[0])), float(np.dot(u[0], back)))
        psi = -phi * np.concatenate([[0.0], np.cumsum(length)[:-1]]) / length.sum()
        w = np.cross(d, u)
        u = np.cos(psi)[:, None] * u + np.sin(psi)[:, None] * w
    return u, np.cross(d, u)


def _rings(poly, d, u, v, closed: bool, radius: float, n: int) -> np.ndarray:
    """(vertices of the path, n, 3): the tube's circle at each vertex, on the mitre plane there."""
    m, nseg = len(poly), len(d)
    ang = 2.0 * np.pi * np.arange(n) / n
    out = np.empty((m, n, 3))
    for i in range(m):
        j = min(i, nseg - 1)
        q = poly[i] + radius * (np.cos(ang)[:, None] * u[j] + np.sin(ang)[:, None] * v[j])
        if closed or 0 < i < m - 1:
            normal = d[i - 1] + d[j]
            normal /= np.linalg.norm(normal)
            q = q - d[j] * (((q - poly[i]) @ normal) / float(np.dot(d[j], normal)))[:, None]
        out[i] = q
    return out


def sweep_solid(poly, closed: bool, radius: float, inner_radius: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of a tube of ``radius`` (bore ``inner_radius``, 0: solid) along the
    polyline ``poly`` (closed: a loop), cross-sections of ``n`` vertices."""
    poly = np.asarray(poly, dtype=np.float64)
    check_mitres(poly, closed, radius, False)
    d, length = segments3(poly, closed)
    u, v = _frames(d, length, closed)
    m = len(poly)
    outer = _rings(poly, d, u, v, closed, radius, n).reshape(-1, 3)
    k = np.arange(n)
    k1 = np.roll(k, -1)
    faces = []
    links = [(i, (i + 1) % m) for i in range(len(d))]

    def surface(base: int, flip: bool) -> None:
        for a, b in links:
            ra, rb = base + a * n, base + b * n
            f = np.vstack([np.column_stack([ra + k, ra + k1, rb + k1]), np.column_stack([ra + k, rb + k1, rb + k])])
            faces.append(f[:, ::-1] if flip else f)

    surface(0, False)
    verts = [outer]
    if inner_radius > 0:
        verts.append(_rings(poly, d, u, v, closed, inner_radius, n).reshape(-1, 3))
        surface(m * n, True)
    if not closed:
        last = (m - 1) * n
        if inner_radius > 0:
            base = m * n
            start = np.vstack([np.column_stack([k, base + k, base + k1]), np.column_stack([k, base + k1, k1])])
            end = np.vstack([np.column_stack([last + k, base + last + k, base + last + k1]),
                             np.column_stack([last + k, base + last + k1, last + k1])])
            faces += [start, end[:, ::-1]]
        else:
            c0, c1 = m * n, m * n + 1
            verts.append(poly[[0, -1]])
            faces += [np.column_stack([np.full(n, c0), k1, k]), np.column_stack([np.full(n, c1), last + k, last + k1])]
    return np.vstack(verts), np.vstack(faces)


def trim_path(poly: np.ndarray, w: float) -> np.ndarray | None:
    """The open polyline with ``w`` of its length cut off at both ends (None when too short)."""
    d, length = segments3(poly, False)
    s = np.concatenate([[0.0], np.cumsum(length)])
    total = s[-1]
    if total <= 2 * w:
        return None

    def at(x: float) -> tuple[int, np.ndarray]:
        i = int(min(np.searchsorted(s, x, side="right") - 1, len(d) - 1))
        return i, poly[i] + (x - s[i]) * d[i]

    i0, p0 = at(w)
    i1, p1 = at(total - w)
    mid = poly[i0 + 1:i1 + 1]
    out = np.vstack([p0, mid, p1])
    return clean(out, False)


# ----------------------------------------------------------------------------------- revolve


def revolve_cavity_profile(profile: np.ndarray, wall: float, segments: int) -> np.ndarray | None:
    """The profile of the cavity ``wall`` inside the solid of revolution of ``profile``: its
    meridian section (the profile and its mirror image) offset inward with round joins, the r >= 0
    half. None when the wall is too thick (nothing left, or the cavity splits in pieces)."""
    import manifold3d

    p = np.asarray(profile, dtype=np.float64)
    full = np.vstack([p, (p[::-1] * [-1.0, 1.0])[1:-1]])
    section = manifold3d.CrossSection([np.ascontiguousarray(full)])
    inner = section.offset(-wall, manifold3d.JoinType.Round, 2.0, max(8, int(segments)))
    r = float(p[:, 0].max()) + 1.0
    z0, z1 = float(p[:, 1].min()) - 1.0, float(p[:, 1].max()) + 1.0
    half = manifold3d.CrossSection.square((r, z1 - z0)).translate((0.0, z0))
    polys = (inner ^ half).to_polygons()
    if len(polys) != 1:
        return None
    ring = np.asarray(polys[0], dtype=np.float64)
    if signed_area(ring) < 0:
        ring = ring[::-1]
    eps = 1e-6 * max(1.0, float(np.abs(ring).max()))
    on = ring[:, 0] <= eps
    starts = np.nonzero(on & ~np.roll(on, -1))[0]
    if len(starts) != 1:
        return None
    ring = np.roll(ring, -int(starts[0]), axis=0)
    on = np.roll(on, -int(starts[0]))
    end = int(np.nonzero(on[1:])[0][0]) + 1
    if not np.all(on[end:]):
        return None
    out = ring[: end + 1].copy()
    out[0, 0] = out[-1, 0] = 0.0
    return clean(out, False)
