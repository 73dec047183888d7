"""Measuring a packed scene on the objects' true meshes: the figures the tests and the packing
benchmark report."""

from __future__ import annotations

import math

import numpy as np

from xraybag.engine.packing.occupancy import column_extents
from xraybag.engine.packing.place import PITCH, TOLERANCE, object_geom
from xraybag.engine.solids.scene import object_name, rotation_matrix
from xraybag.scenes.models import Scene


def check_packing(scene: Scene, tolerance: float = TOLERANCE, pitch: float = PITCH / 2) -> dict:
    """Measure a packed scene on the objects' true (outer) meshes.

    Returns ``max_overlap_fraction`` (largest intersection volume of two objects over the smaller
    one's volume, manifold3d), ``max_outside_mm`` (how far any object's mesh leaves the interior),
    ``max_support_gap_mm`` (over objects: the smallest vertical gap, over the columns of a grid of
    ``pitch`` mm under the object, between its lowest surface and the floor or the top of an object
    below it; 0 where it rests inside another object's vertical span) and ``objects``. Sheets are
    ignored.
    """
    interior = np.array([float(x) for x in scene.bag.size])
    sx, sy, sz = interior
    items = []
    for k, obj in enumerate(scene.objects):
        if getattr(obj, "sheet", None) is not None or obj.pose is None:
            continue
        g = object_geom(obj, k, object_name(obj, k + 1), tolerance)
        rot = rotation_matrix(obj.pose.rotation_deg)
        pos = np.array([float(p) for p in obj.pose.position])
        v = g.placed(rot, pos)
        items.append((g, g.world_manifold(rot, pos), v, v.min(axis=0), v.max(axis=0)))
    overlap, outside = 0.0, 0.0
    for i, (g, m, v, lo, hi) in enumerate(items):
        outside = max(outside, -sx / 2 - lo[0], hi[0] - sx / 2, -sy / 2 - lo[1], hi[1] - sy / 2,
                      -lo[2], hi[2] - sz)
        for g2, m2, _, lo2, hi2 in items[i + 1:]:
            if np.all(lo < hi2) and np.all(lo2 < hi):
                inter = (m ^ m2).volume()
                overlap = max(overlap, inter / max(min(g.volume, g2.volume), 1e-12))
    # columns on a grid that contains the packer's column centres (pitch halved, shifted)
    x0, y0 = -sx / 2 - pitch / 2, -sy / 2 - pitch / 2
    nx, ny = int(math.ceil(sx / pitch)) + 2, int(math.ceil(sy / pitch)) + 2
    cols = []
    for g, _, v, lo, hi in items:
        i0 = max(0, int(math.floor((lo[0] - x0) / pitch)) - 1)
        i1 = min(nx, int(math.ceil((hi[0] - x0) / pitch)) + 1)
        j0 = max(0, int(math.floor((lo[1] - y0) / pitch)) - 1)
        j1 = min(ny, int(math.ceil((hi[1] - y0) / pitch)) + 1)
        b, t = column_extents(v, g.faces, x0 + i0 * pitch, y0 + j0 * pitch, pitch, i1 - i0, j1 - j0)
        cols.append((i0, j0, b, t))
    support = 0.0
    for a, (i0, j0, b, t) in enumerate(cols):
        below = np.zeros_like(b)  # the floor
        inside = np.zeros(b.shape, dtype=bool)
        for c, (k0, l0, b2, t2) in enumerate(cols):
            if c == a:
                continue
            ia, ib = max(i0, k0), min(i0 + b.shape[0], k0 + b2.shape[0])
            ja, jb = max(j0, l0), min(j0 + b.shape[1], l0 + b2.shape[1])
            if ia >= ib or ja >= jb:
                continue
            sa = (slice(ia - i0, ib - i0), slice(ja - j0, jb - j0))
            sb = (slice(ia - k0, ib - k0), slice(ja - l0, jb - l0))
            ba, tb, bb = b[sa], t2[sb], b2[sb]
            under = tb <= ba + 0.5
            below[sa] = np.maximum(below[sa], np.where(under & np.isfinite(tb), tb, -np.inf))
            inside[sa] |= (bb <= ba) & (ba <= tb)
        m = np.isfinite(b)
        if m.any():
            gap = np.where(inside, 0.0, b - below)[m]
            support = max(support, float(max(0.0, gap.min())))
    return {
        "max_overlap_fraction": float(overlap),
        "max_outside_mm": float(max(0.0, outside)),
        "max_support_gap_mm": float(support),
        "objects": len(items),
    }
