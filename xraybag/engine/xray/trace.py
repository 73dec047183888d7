"""The geometric pass: exact path lengths through meshes for every detector ray.

For a closed, outward-oriented triangle mesh and a ray from a point outside it, the length of the
ray inside the mesh is ``sum(t_exit) - sum(t_entry)`` over the ray's hits with the mesh triangles
(the signed-depth accumulation gVirtualXray does on the GPU): no sorting, no voxels, and shells
(a bottle's wall as outer surface plus reversed inner surface) work as they are.

Rays come from a :class:`RayGeometry` (see :mod:`xraybag.engine.xray.scanners`): ray ``(i, j)`` starts
at ``origin_row[i] + origin_col[j]`` and runs along ``dir_row[i] + dir_col[j]``; ``project`` maps a
point to continuous (row, col) ray coordinates, monotone in the ray indices, such that the rays
that can hit a triangle are those whose indices lie in the bounding box of its projected vertices
(true for perspective, parallel and line-scan geometries, whose projections are linear-fractional
per axis). Each triangle is therefore tested only against the rays of its footprint.

The ray-triangle test is watertight (Woop, Benthin & Wald 2013: edge functions in a sheared ray
space computed identically for a shared edge) and breaks ties with a top-left rule, so a ray through
an edge or vertex shared by triangles facing the same way is counted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numba
import numpy as np

from xraybag.engine.xray.paths import (
    ObjectTrace,
    SparseTraceResult,
    TraceResult,
    sparse_totals,
    window_table,
)
from xraybag.engine.xray.scratch import scratch

if TYPE_CHECKING:
    from xraybag.engine.solids.scene import Solid


@dataclass
class RayGeometry:
    """The rays of one detector view (lengths in mm)."""

    rows: int
    cols: int
    origin_row: np.ndarray  # (rows, 3)
    origin_col: np.ndarray  # (cols, 3)
    dir_row: np.ndarray  # (rows, 3)
    dir_col: np.ndarray  # (cols, 3)
    project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    pixel_mm: float  # detector pixel pitch
    distance_mm: float  # typical source-to-detector distance (inverse-square law)
    extras: dict = field(default_factory=dict)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Origins and unit directions of every ray, (rows, cols, 3) each (for tests and peers)."""
        o = self.origin_row[:, None, :] + self.origin_col[None, :, :]
        d = self.dir_row[:, None, :] + self.dir_col[None, :, :]
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        return o, d


#: Plain-Python sources of the per-ray helpers, by name: compiled here for the CPU (numba.njit) and
#: by :mod:`xraybag.engine.xray.trace_cuda` as CUDA device functions, so both kernels share one
#: copy of the math (each compiled copy sees the others of its own target under the same names).
SHARED_HELPERS: dict[str, Callable] = {}


def _shared(**options):
    """``numba.njit(cache=True, nogil=True, **options)``, recording the plain function in
    :data:`SHARED_HELPERS` for the CUDA backend."""

    def wrap(fn):
        SHARED_HELPERS[fn.__name__] = fn
        return numba.njit(cache=True, nogil=True, **options)(fn)

    return wrap


@_shared()
def _top_left(ex: float, ey: float) -> bool:
    return ey > 0.0 or (ey == 0.0 and ex < 0.0)


@_shared(inline="always")
def _mul(a: float, b: float) -> float:
    """``a * b``. The CUDA copy of the helpers uses libdevice's ``dmul_rn`` here, a product that
    the compiler never fuses with an addition: NVVM fuses ``a * b - c * d`` into a multiply-add
    by default, which rounds the edge function of a shared edge differently in its two triangles
    (no longer exact negatives), so a ray through that edge would hit both or neither."""
    return a * b


@_shared(inline="always")
def ray_hit(vertices, a, b, c, o0, o1, o2, k, sh):
    """Watertight test of the ray from ``(o0, o1, o2)`` with permutation ``k`` and shear ``sh``
    (see :func:`shear_setup`) against triangle ``(a, b, c)``: ``(hit, signed distance)``, the
    distance negative for an entry (the triangle seen from outside) and positive for an exit."""
    kx = k[0]
    ky = k[1]
    kz = k[2]
    o = (o0, o1, o2)
    ox = o[kx]
    oy = o[ky]
    oz = o[kz]
    return sheared_hit(
        vertices[a, kx] - ox, vertices[a, ky] - oy, vertices[a, kz] - oz,
        vertices[b, kx] - ox, vertices[b, ky] - oy, vertices[b, kz] - oz,
        vertices[c, kx] - ox, vertices[c, ky] - oy, vertices[c, kz] - oz,
        sh[0], sh[1], sh[2],
    )


@_shared(inline="always")
def sheared_hit(ax, ay, az, bx, by, bz, cx, cy, cz, sx, sy, sz):
    """:func:`ray_hit` from the triangle's vertices relative to the ray's origin, in the ray's
    axis order (``ax = vertices[a, kx] - o[kx]``, ...): rays that share an origin and a
    permutation (a line-scan row) share these nine differences, so a kernel computes them once
    per row and the result is the same to the bit."""
    axs = ax - _mul(sx, az)
    ays = ay - _mul(sy, az)
    bxs = bx - _mul(sx, bz)
    bys = by - _mul(sy, bz)
    cxs = cx - _mul(sx, cz)
    cys = cy - _mul(sy, cz)
    # products never fused with the subtraction (see _mul): the same rounding as on the CPU, so
    # a shared edge's function in one triangle is exactly minus its function in the other
    u = _mul(cxs, bys) - _mul(cys, bxs)  # edge b -> c
    v = _mul(axs, cys) - _mul(ays, cxs)  # edge c -> a
    ww = _mul(bxs, ays) - _mul(bys, axs)  # edge a -> b
    det = u + v + ww
    if det == 0.0:
        return False, 0.0
    s = 1.0 if det > 0.0 else -1.0
    un, vn, wn = s * u, s * v, s * ww
    if un < 0.0 or vn < 0.0 or wn < 0.0:
        return False, 0.0
    if un == 0.0 and not _top_left(s * (cxs - bxs), s * (cys - bys)):
        return False, 0.0
    if vn == 0.0 and not _top_left(s * (axs - cxs), s * (ays - cys)):
        return False, 0.0
    if wn == 0.0 and not _top_left(s * (bxs - axs), s * (bys - ays)):
        return False, 0.0
    t = (_mul(u, az) + _mul(v, bz) + _mul(ww, cz)) * sz / det
    # det < 0: the triangle is seen from inside (an exit hit) for outward meshes
    return True, -s * t


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _run_hits(ax, ay, az, bx, by, bz, cx, cy, cz, sht, ri, j0, j1, dist, kind):
    """:func:`sheared_hit` for the rays ``j0 <= j < j1`` of row ``ri`` (one origin, one
    permutation; the shears ``sht[ri, :, j]``: :func:`shear_setup`'s, each component contiguous
    along the row), without a branch, so that the compiler vectorises it: ``dist[j - j0]`` is a
    hit's signed distance (the same operations in the same order: the same number) and 0 for a
    miss; ``kind[j - j0]`` is 1 where the ray meets an edge of the triangle exactly (an edge
    function is 0 and the others are not negative; ``dist`` 0 there too): the caller asks
    :func:`sheared_hit`, whose top-left rule decides. Returns how many such rays there are.
    IEEE division: a zero determinant's quotient is computed and discarded."""
    edges = 0
    for j in range(j0, j1):
        sx = sht[ri, 0, j]
        sy = sht[ri, 1, j]
        sz = sht[ri, 2, j]
        axs = ax - sx * az
        ays = ay - sy * az
        bxs = bx - sx * bz
        bys = by - sy * bz
        cxs = cx - sx * cz
        cys = cy - sy * cz
        u = cxs * bys - cys * bxs
        v = axs * cys - ays * cxs
        ww = bxs * ays - bys * axs
        det = u + v + ww
        s = 1.0 if det > 0.0 else -1.0
        un = s * u
        vn = s * v
        wn = s * ww
        inside = (det != 0.0) & (un >= 0.0) & (vn >= 0.0) & (wn >= 0.0)
        on_edge = (un == 0.0) | (vn == 0.0) | (wn == 0.0)
        t = (u * az + v * bz + ww * cz) * sz / det
        dist[j - j0] = -s * t if inside and not on_edge else 0.0
        edge = inside and on_edge
        kind[j - j0] = np.uint8(edge)
        edges += edge
    return edges


def shear_setup(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-ray constants of the watertight test (Woop et al.): for directions ``d`` (..., 3),
    the axis permutation (kx, ky, kz), int8, and the shear (sx, sy, sz), float64."""
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    kz = np.argmax(np.abs(d), axis=-1)
    kx = (kz + 1) % 3
    ky = (kx + 1) % 3
    dz = np.take_along_axis(d, kz[..., None], axis=-1)[..., 0]
    swap = dz < 0  # keep the winding
    kx, ky = np.where(swap, ky, kx), np.where(swap, kx, ky)
    dx = np.take_along_axis(d, kx[..., None], axis=-1)[..., 0]
    dy = np.take_along_axis(d, ky[..., None], axis=-1)[..., 0]
    k = np.stack([kx, ky, kz], axis=-1).astype(np.int8)
    sh = np.stack([dx / dz, dy / dz, 1.0 / dz], axis=-1)
    return k, sh


@_shared()
def _fan_col(y, z, fan):
    """Continuous column of a point (y, z) of a line-scan fan plane.

    ``fan`` = [source y, source z, reference angle, sign, angle of column 0, ..., of column n-1]
    (angles times ``sign`` increase with the column).
    """
    a = np.arctan2(z - fan[1], y - fan[0])
    d = a - fan[2]
    d -= 2.0 * np.pi * np.floor(d / (2.0 * np.pi) + 0.5)
    x = fan[3] * (fan[2] + d)
    n = fan.shape[0] - 4
    if x <= fan[4]:
        return -1.0 if x < fan[4] else 0.0
    if x >= fan[3 + n]:
        return float(n) if x > fan[3 + n] else float(n - 1)
    lo, hi = 0, n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fan[4 + mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo + (x - fan[4 + lo]) / (fan[4 + hi] - fan[4 + lo])


@numba.njit(cache=True, nogil=True, inline="always")
def _table_col(t, base, x, lo):
    """The continuous column of value ``x`` in the increasing table ``t[base:]`` (one entry per
    column): -1 / n below / above it (0 / n - 1 exactly at its ends), else linear between the
    entries of the interval ``lo`` with ``t[base + lo] <= x < t[base + lo + 1]``, searched by steps
    from ``lo`` (the interval of a nearby value; -1 or out of range: by bisection). The same
    interval either way, so the same value. Returns (column, interval)."""
    n = t.shape[0] - base
    if x <= t[base]:
        return (-1.0 if x < t[base] else 0.0), lo
    if x >= t[base + n - 1]:
        return (float(n) if x > t[base + n - 1] else float(n - 1)), lo
    if lo < 0 or lo > n - 2:
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if t[base + mid] <= x:
                lo = mid
            else:
                hi = mid
    else:
        while t[base + lo] > x:
            lo -= 1
        while t[base + lo + 1] <= x:
            lo += 1
    return lo + (x - t[base + lo]) / (t[base + lo + 1] - t[base + lo]), lo


@numba.njit(cache=True, nogil=True, inline="always")
def _fan_col_near(y, z, fan, lo):
    """:func:`_fan_col` with the column interval searched from ``lo`` (the interval found for a
    nearby point; -1: none) by steps instead of bisection (:func:`_table_col`): the same interval,
    so the same value. Returns (column, interval)."""
    a = np.arctan2(z - fan[1], y - fan[0])
    d = a - fan[2]
    d -= 2.0 * np.pi * np.floor(d / (2.0 * np.pi) + 0.5)
    return _table_col(fan, 4, fan[3] * (fan[2] + d), lo)


#: the span margin (columns) of a row where the fan column comes from the tangent table: linear
#: interpolation in tan instead of in the angle moves a column by at most about 3e-4 of a column
#: for 1 mm columns at 1 m (the second derivative of tan over one column's angle)
TAN_MARGIN = 1e-3


def fan_keys(fan: np.ndarray) -> np.ndarray:
    """The fan table in tangent form, for the CPU kernel: ``[source y, source z, cos m, sin m,
    sign, key_0, ..., key_{n-1}]`` with ``m`` the fan's middle angle and ``key_k = sign * tan(angle_k
    - m)``, increasing with the column. A point's key is then one division (no arctan). Empty
    when there is no fan, or when it is too wide for tangents (170 degrees or more)."""
    if fan.size < 6:
        return np.zeros(0)
    sign = float(fan[3])
    ang = sign * np.asarray(fan[4:], dtype=np.float64)  # the unwrapped element angles
    if abs(ang[-1] - ang[0]) >= np.radians(170.0):
        return np.zeros(0)
    m = 0.5 * (ang[0] + ang[-1])
    keys = sign * np.tan(ang - m)
    if not np.all(np.diff(keys) > 0):
        return np.zeros(0)
    return np.concatenate([fan[:2], [np.cos(m), np.sin(m), sign], keys])


@numba.njit(cache=True, nogil=True, inline="always")
def _key_col(x, fk, lo):
    """The column of a point of key ``x`` (``sign * tan(angle - m)``, see :func:`fan_keys`):
    interpolated linearly in the key between the elements' keys (within :data:`TAN_MARGIN` of a
    column of :func:`_fan_col`, which interpolates in the angle), the interval searched by steps
    from ``lo`` (:func:`_table_col`). Returns (column, interval)."""
    return _table_col(fk, 5, x, lo)


@numba.njit(cache=True, nogil=True, inline="always")
def _edge_keys(vertices, p, q, fk, ec, e):
    """For the edge p -> q (``x_p != x_q``), the point where it crosses the plane ``x`` in the
    fan's frame (``u`` along the fan's middle, ``v`` across it) as ``u = ec[e, 0] + (x - x_p)
    ec[e, 1]``, ``v = ec[e, 2] + (x - x_p) ec[e, 3]``: a row's key is then one division."""
    dx = vertices[q, 0] - vertices[p, 0]
    gy = (vertices[q, 1] - vertices[p, 1]) / dx
    gz = (vertices[q, 2] - vertices[p, 2]) / dx
    dy0 = vertices[p, 1] - fk[0]
    dz0 = vertices[p, 2] - fk[1]
    ec[e, 0] = fk[2] * dy0 + fk[3] * dz0
    ec[e, 1] = fk[2] * gy + fk[3] * gz
    ec[e, 2] = fk[2] * dz0 - fk[3] * dy0
    ec[e, 3] = fk[2] * gz - fk[3] * gy


@_shared(inline="always")
def _face_box(vrow, vcol, a, b, c, r0, c0, h, w, rows, cols):
    """The rays a triangle can hit, from its projected vertices: rows ``i0..i1`` and columns
    ``j0..j1`` (empty when ``i0 > i1`` or ``j0 > j1``) within the window ``(r0, c0, h, w)``, and
    the projected column range ``(clo, chi)``."""
    eps = 1e-6
    rlo = min(vrow[a], vrow[b], vrow[c])
    rhi = max(vrow[a], vrow[b], vrow[c])
    clo = min(vcol[a], vcol[b], vcol[c])
    chi = max(vcol[a], vcol[b], vcol[c])
    i0 = max(int(np.ceil(rlo - eps)), r0, 0)
    i1 = min(int(np.floor(rhi + eps)), r0 + h - 1, rows - 1)
    j0 = max(int(np.ceil(clo - eps)), c0, 0)
    j1 = min(int(np.floor(chi + eps)), c0 + w - 1, cols - 1)
    return i0, i1, j0, j1, clo, chi


@_shared()
def _row_columns(vertices, tri, i, vrow, vcol, origin_row, origin_col, fan, is_fan, clo, chi, j0, j1):
    """The columns ``ja..jb`` of image row ``i`` whose rays can hit triangle ``tri = (a, b, c)``
    (empty when ``ja > jb``): those between the triangle's crossings of the row's plane
    (``is_fan``: ``fan`` is not empty, a line scan).

    The CUDA kernel's copy of the row loop of :func:`_trace_faces`, which keeps that loop
    inline: calling this from there costs the CPU kernel 5-20 % (measured). tests/test_trace_cuda.py
    holds the two to the same results."""
    eps = 1e-6
    lo = np.inf
    hi = -np.inf
    for e in range(3):
        p = tri[e]
        q = tri[(e + 1) % 3]
        if is_fan:
            xr = origin_row[i, 0] + origin_col[0, 0]
            xp = vertices[p, 0]
            xq = vertices[q, 0]
            if xp == xq or (xp - xr) * (xq - xr) > 0.0:
                continue
            t = (xr - xp) / (xq - xp)
            col = _fan_col(
                vertices[p, 1] + t * (vertices[q, 1] - vertices[p, 1]),
                vertices[p, 2] + t * (vertices[q, 2] - vertices[p, 2]),
                fan,
            )
        else:
            rp = vrow[p]
            rq = vrow[q]
            if rp == rq:
                if rp == i:  # (two-argument min and max: the CUDA copy's take two)
                    lo = min(min(lo, vcol[p]), vcol[q])
                    hi = max(max(hi, vcol[p]), vcol[q])
                continue
            if (rp - i) * (rq - i) > 0.0:
                continue
            col = vcol[p] + (i - rp) / (rq - rp) * (vcol[q] - vcol[p])
        lo = min(lo, col)
        hi = max(hi, col)
    if is_fan and lo > hi:  # the row's plane misses the triangle
        return 1, 0
    if lo > hi:  # rounding at a vertex row: fall back to the bounding box
        lo, hi = clo, chi
    ja = max(int(np.ceil(lo - eps)), j0)
    jb = min(int(np.floor(hi + eps)), j1)
    return ja, jb


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trace_faces(vertices, faces, slots, vrow, vcol, origin_row, origin_col, kk, sh, fan, out, r0, c0,
                 uniform, fk, sht, run_end):
    """Accumulate signed hit distances of ``faces`` into ``out[i - r0, j - c0, slot]``.

    ``kk``, ``sh``: per-ray permutation and shear, shape (rows or 1, cols, 3); a first axis of 1
    means the direction depends on the column only (line scan, parallel beam). Each image row's
    rays lie in one plane; per row, only the columns between the triangle's crossings of that
    plane are tested. The crossings come from the projected vertices where the projection is
    projective (radiographs: triangles stay triangles), and for line scans (``fan`` non-empty)
    from the triangle's section by the plane x = x_row mapped through the fan angle.
    ``fk``: the fan's tangent table (:func:`fan_keys`; empty: the angle table ``fan`` alone).
    ``uniform`` (see :func:`uniform_rows`): the rays of a row share their origin, so the
    triangle's vertices relative to it are computed once per row and permutation (a fan has
    one or two), not per ray: the same numbers, as :func:`sheared_hit` says; a run of a row's
    rays with one permutation is tested at once (:func:`_run_hits`, ``sht``: ``sh`` with its
    components first, (rows or 1, 3, cols); ``run_end``: :func:`permutation_runs` of ``kk``).
    """
    h, w = out.shape[0], out.shape[1]
    rows, cols = origin_row.shape[0], origin_col.shape[0]
    per_row = kk.shape[0] > 1
    is_fan = fan.shape[0] > 0
    tangent = is_fan and fk.shape[0] > 0
    eps = 1e-6
    margin = TAN_MARGIN if tangent else eps
    near = np.empty(3, np.int64)  # per edge, the fan interval of its last crossing
    dist = np.empty(cols)  # a run of rays' signed distances (0: a miss) and edge flags (_run_hits)
    kind = np.empty(cols, np.uint8)
    ec = np.zeros((3, 4))  # per edge, its crossing of a row's plane in the fan's frame (tangent)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        i0, i1, j0, j1, clo, chi = _face_box(vrow, vcol, a, b, c, r0, c0, h, w, rows, cols)
        if i0 > i1 or j0 > j1:
            continue
        slot = slots[f]
        tri = (a, b, c)
        near[:] = -1
        if tangent:
            for e in range(3):
                if vertices[tri[e], 0] != vertices[tri[(e + 1) % 3], 0]:
                    _edge_keys(vertices, tri[e], tri[(e + 1) % 3], fk, ec, e)
        for i in range(i0, i1 + 1):
            # the columns where this row's plane cuts the triangle
            lo = np.inf
            hi = -np.inf
            for e in range(3):
                p = tri[e]
                q = tri[(e + 1) % 3]
                if is_fan:
                    xr = origin_row[i, 0] + origin_col[0, 0]
                    xp = vertices[p, 0]
                    xq = vertices[q, 0]
                    if xp == xq or (xp - xr) * (xq - xr) > 0.0:
                        continue
                    # an edge crosses the next row near where it crossed this one
                    keyed = False
                    if tangent:
                        uc = ec[e, 0] + (xr - xp) * ec[e, 1]
                        vc = ec[e, 2] + (xr - xp) * ec[e, 3]
                        keyed = uc > 1e-9 * abs(vc)  # less than 90 degrees off the fan's middle
                        if keyed:
                            col, near[e] = _key_col(fk[4] * vc / uc, fk, near[e])
                    if not keyed:
                        t = (xr - xp) / (xq - xp)
                        yc = vertices[p, 1] + t * (vertices[q, 1] - vertices[p, 1])
                        zc = vertices[p, 2] + t * (vertices[q, 2] - vertices[p, 2])
                        col, near[e] = _fan_col_near(yc, zc, fan, near[e])
                else:
                    rp = vrow[p]
                    rq = vrow[q]
                    if rp == rq:
                        if rp == i:
                            lo = min(lo, vcol[p], vcol[q])
                            hi = max(hi, vcol[p], vcol[q])
                        continue
                    if (rp - i) * (rq - i) > 0.0:
                        continue
                    col = vcol[p] + (i - rp) / (rq - rp) * (vcol[q] - vcol[p])
                lo = min(lo, col)
                hi = max(hi, col)
            if is_fan and lo > hi:
                continue
            if lo > hi:  # rounding at a vertex row: fall back to the bounding box
                lo, hi = clo, chi
            ja = max(int(np.ceil(lo - margin)), j0)
            jb = min(int(np.floor(hi + margin)), j1)
            ri = i if per_row else 0
            if uniform:  # one origin for the row: the differences once per run of a permutation
                o = (origin_row[i, 0] + origin_col[0, 0], origin_row[i, 1] + origin_col[0, 1],
                     origin_row[i, 2] + origin_col[0, 2])
                j = ja
                while j <= jb:
                    kx, ky, kz = kk[ri, j, 0], kk[ri, j, 1], kk[ri, j, 2]
                    e = min(run_end[ri, j], jb) + 1
                    ox, oy, oz = o[kx], o[ky], o[kz]
                    ax, ay, az = vertices[a, kx] - ox, vertices[a, ky] - oy, vertices[a, kz] - oz
                    bx, by, bz = vertices[b, kx] - ox, vertices[b, ky] - oy, vertices[b, kz] - oz
                    cx, cy, cz = vertices[c, kx] - ox, vertices[c, ky] - oy, vertices[c, kz] - oz
                    edges = _run_hits(ax, ay, az, bx, by, bz, cx, cy, cz, sht, ri, j, e, dist, kind)
                    for jj in range(j, e):  # a miss adds 0 (x + 0 is x; -0 becomes 0, which is dropped)
                        out[i - r0, jj - c0, slot] += dist[jj - j]
                    if edges > 0:  # an edge function is exactly 0: the top-left rule decides
                        for jj in range(j, e):
                            if kind[jj - j]:
                                hit, st = sheared_hit(ax, ay, az, bx, by, bz, cx, cy, cz,
                                                      sh[ri, jj, 0], sh[ri, jj, 1], sh[ri, jj, 2])
                                if hit:
                                    out[i - r0, jj - c0, slot] += st
                    j = e
                continue
            for j in range(ja, jb + 1):
                hit, st = ray_hit(
                    vertices, a, b, c,
                    origin_row[i, 0] + origin_col[j, 0],
                    origin_row[i, 1] + origin_col[j, 1],
                    origin_row[i, 2] + origin_col[j, 2],
                    kk[ri, j], sh[ri, j],
                )
                if hit:
                    out[i - r0, j - c0, slot] += st


def _window(vrow: np.ndarray, vcol: np.ndarray, rows: int, cols: int) -> tuple[int, int, int, int]:
    r0 = max(int(np.floor(vrow.min())) - 1, 0)
    r1 = min(int(np.ceil(vrow.max())) + 1, rows - 1)
    c0 = max(int(np.floor(vcol.min())) - 1, 0)
    c1 = min(int(np.ceil(vcol.max())) + 1, cols - 1)
    return r0, max(r1 - r0 + 1, 0), c0, max(c1 - c0 + 1, 0)


def trace(solids: "list[Solid]", geometry: RayGeometry, backend: str = "numba") -> TraceResult:
    """Path lengths per material (whole image) and per object (over its window).

    ``backend`` names an entry of :data:`BACKENDS`; every backend takes the same solids and
    geometry and returns the same :class:`TraceResult` (a GPU backend registers itself there and
    is tested against the numba reference).
    """
    if backend not in BACKENDS:
        from xraybag.errors import XraybagError

        raise XraybagError(
            f"tracing backend {backend!r} is not available; available: {', '.join(sorted(BACKENDS))}"
        )
    return BACKENDS[backend](solids, geometry)


@dataclass
class ObjectPlan:
    """One object's share of a trace: its parts, their projected vertices and its window."""

    index: int
    parts: list
    projected: list  # (vrow, vcol) per part
    r0: int
    h: int
    c0: int
    w: int
    mats: list[int]  # indices into the materials, sorted
    local: dict[int, int]  # material index -> slot of the object's buffer


def ray_constants(g: RayGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permutation and shear of every ray (rows or 1, cols, 3) and the fan table (empty unless a
    line scan), as the kernels take them."""
    if not np.any(g.dir_row):
        kk, sh = shear_setup(g.dir_col[None, :, :])
    else:
        kk, sh = shear_setup(g.dir_row[:, None, :] + g.dir_col[None, :, :])
    fan = np.asarray(g.extras.get("fan_table", np.zeros(0)), dtype=np.float64)
    return kk, sh, fan


@numba.njit(cache=True, nogil=True)
def permutation_runs(kk):
    """``end[r, j]``: the last column of the run of columns of row ``r`` (of ``kk``, (rows or 1,
    cols, 3)) that share column ``j``'s axis permutation."""
    end = np.empty(kk.shape[:2], dtype=np.int64)
    cols = kk.shape[1]
    for r in range(kk.shape[0]):
        if cols == 0:
            continue
        end[r, cols - 1] = cols - 1
        for j in range(cols - 2, -1, -1):
            same = kk[r, j, 0] == kk[r, j + 1, 0] and kk[r, j, 1] == kk[r, j + 1, 1] and kk[r, j, 2] == kk[r, j + 1, 2]
            end[r, j] = end[r, j + 1] if same else j
    return end


def uniform_rows(g: RayGeometry) -> bool:
    """Whether every ray of an image row starts at the same point (``origin_col`` is one point:
    a line scan's fan, a radiograph's point source)."""
    return bool(np.all(g.origin_col == g.origin_col[:1]))


def plan_objects(solids: "list[Solid]", g: RayGeometry) -> tuple[list[str], dict[str, int], list[ObjectPlan]]:
    """The materials, their indices, and the objects with a non-empty window, by index."""
    materials = sorted({s.material for s in solids})
    mindex = {m: k for k, m in enumerate(materials)}
    by_object: dict[int, list] = {}
    for s in solids:
        by_object.setdefault(s.object_index, []).append(s)
    plans = []
    for index in sorted(by_object):
        parts = by_object[index]
        mats = sorted({mindex[s.material] for s in parts})
        projected = [g.project(s.vertices) for s in parts]
        vr = np.concatenate([p[0] for p in projected])
        vc = np.concatenate([p[1] for p in projected])
        finite = np.isfinite(vr) & np.isfinite(vc)
        if not finite.any():
            continue
        r0, h, c0, w = _window(vr[finite], vc[finite], g.rows, g.cols)
        if h == 0 or w == 0:
            continue
        plans.append(ObjectPlan(index, parts, projected, r0, h, c0, w, mats, {m: k for k, m in enumerate(mats)}))
    return materials, mindex, plans


def trace_numba(solids: "list[Solid]", geometry: RayGeometry) -> TraceResult:
    """The CPU reference: per-object windows traced by the numba kernel above, into one flat
    float64 buffer (:func:`window_table`); the view's path lengths as :class:`SparsePaths`."""
    import time

    t0 = time.perf_counter()
    g = geometry
    materials, mindex, plans = plan_objects(solids, g)
    kk, sh, fan = ray_constants(g)
    sht = np.ascontiguousarray(sh.transpose(0, 2, 1))
    run_end = permutation_runs(kk)
    uniform = uniform_rows(g)
    fk = fan_keys(fan)
    win, size, mats, mat_off = window_table(plans)
    flat = scratch("trace.flat", size)  # read only by sparse_totals below: the thread's scratch memory
    flat.fill(0.0)
    for o, plan in enumerate(plans):
        off = int(win[o, 5])
        buf = flat[off : off + plan.h * plan.w * len(plan.mats)].reshape(plan.h, plan.w, len(plan.mats))
        for s, (pr, pc) in zip(plan.parts, plan.projected):
            slots = np.full(len(s.faces), plan.local[mindex[s.material]], dtype=np.int32)
            _trace_faces(
                np.ascontiguousarray(s.vertices, dtype=np.float64),
                np.ascontiguousarray(s.faces, dtype=np.int64),
                slots,
                np.ascontiguousarray(pr, dtype=np.float64),
                np.ascontiguousarray(pc, dtype=np.float64),
                g.origin_row, g.origin_col, kk, sh, fan,
                buf, plan.r0, plan.c0, uniform, fk, sht, run_end,
            )
    own = np.empty(size, dtype=np.float32)  # the objects' own windows, in the same pass
    sparse = sparse_totals(flat, win, mat_off, mats, g.rows, g.cols, len(materials), own)
    objects: list[ObjectTrace] = []
    for o, plan in enumerate(plans):
        if plan.index > 0:
            _, _, h, w, k, off = (int(x) for x in win[o])
            objects.append(ObjectTrace(plan.index, plan.r0, plan.c0, own[off : off + h * w * k].reshape(h, w, k),
                                       plan.mats))
    return SparseTraceResult(materials, sparse, objects, time.perf_counter() - t0)


#: Tracing backends by name. The numba CPU tracer is the reference; the CUDA tracer
#: (:mod:`xraybag.engine.xray.trace_cuda`) joins as "cuda" once
#: :func:`xraybag.engine.xray.devices.probe_cuda` finds a GPU.
BACKENDS: dict[str, Callable[..., TraceResult]] = {"numba": trace_numba}
