"""The CT mesh tracer of :mod:`xraybag.engine.ct.forward` as a CUDA kernel (numba.cuda).

Same inputs and result as :func:`~xraybag.engine.ct.forward.trace_views`. The CPU kernel gives
each thread one view and loops over the faces in the view's slab; here one CUDA thread takes one
(view, face) pair and walks the face's detector columns and, per column, the rows its section by
the column's plane can reach, with a copy of the CPU kernel's loop body (the CPU kernel keeps it
inline: as a shared helper it was 5-10 % slower there; the tests hold both to the same path
lengths). Its per-ray helpers (``_shear_one``, ``_crossing``) are the CPU's own Python, compiled
as device functions (:func:`~xraybag.engine.xray.trace_cuda.device_function`). Every view of a chunk goes in
one launch: the faces are sorted by their lowest z once, so a view's slab is one run of that
order (found on the host with two binary searches), and a thread finds its view by a binary
search over the runs' running total. Hits are added to a float64 buffer with
``cuda.atomic.add`` and stored as float32 (below 1e-9 mm as zero) by a second kernel.

The exact ray test is the 2D tracer's device copy of :func:`xraybag.engine.xray.trace.ray_hit`
(products through libdevice's ``dmul_rn``, never fused into multiply-adds, so the test stays
watertight on a real GPU), and each ray's direction and shear are computed with those unfused
products too, from the CPU's column constants (:func:`~xraybag.engine.ct.forward.column_constants`,
computed on the host): each ray meets the same arithmetic as on the CPU. The vertices' view-frame
coordinates and the column planes' crossings only choose which rays are tested (with the CPU's
1e-6 margin); a multiply-add there could move a range's end by an ulp, never past a ray the
exact test would hit. As in the 2D kernel, atomic additions come in any order, so a ray with more
than two hits on one material may differ from the CPU in the last bit of its float64 sum.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.ct import forward as _forward
from xraybag.engine.ct.forward import Mesh, Prepared, column_constants, prepare
from xraybag.engine.xray.trace_cuda import _DEVICE, THREADS, device_function

_EPS = _forward._EPS
#: float64 sums held on the GPU per launch; a longer run of views is traced in several launches
LAUNCH_BYTES = 1 << 30

_ray_hit = _DEVICE["ray_hit"]
_mul = _DEVICE["_mul"]
_min2 = _DEVICE["min"]
_max2 = _DEVICE["max"]
_shear_one = device_function(_forward._shear_one)
_crossing = device_function(_forward._crossing)


@cuda.jit
def _trace_faces(vertices, faces, slots, zlo, zhi, order, first, cum, zwin, src, cvec, evec, cg, sg, dj,
                 v, curved, sdd, col_pitch, row_pitch, col_offset, acc):
    """Thread ``t`` traces face ``order[first[k] + t - cum[k]]`` in view ``k`` (``cum[k] <= t <
    cum[k + 1]``) into ``acc[k, i, j, slot]`` (float64), if the face's z range meets the view's
    slab ``zwin[k]``."""
    t = cuda.grid(1)
    nviews = cum.shape[0] - 1
    if t >= cum[nviews]:
        return
    lo = 0
    hi = nviews
    while hi - lo > 1:  # cum[lo] <= t < cum[hi]
        mid = (lo + hi) // 2
        if cum[mid] <= t:
            lo = mid
        else:
            hi = mid
    k = lo
    f = order[first[k] + t - cum[k]]
    if zhi[f] < zwin[k, 0] or zlo[f] > zwin[k, 1]:
        return
    rows = v.shape[0]
    cols = cg.shape[0]
    ccol = (cols - 1) / 2.0 - col_offset
    crow = (rows - 1) / 2.0
    sx = src[k, 0]
    sy = src[k, 1]
    sz = src[k, 2]
    c0 = cvec[k, 0]
    c1 = cvec[k, 1]
    e0 = evec[k, 0]
    e1 = evec[k, 1]
    a = faces[f, 0]
    b = faces[f, 1]
    c = faces[f, 2]
    # the face's vertices in the view frame: depth (along c), lateral (along e_u), height, column
    x = vertices[a, 0] - sx
    y = vertices[a, 1] - sy
    a0 = x * c0 + y * c1
    b0 = x * e0 + y * e1
    h0 = vertices[a, 2] - sz
    x = vertices[b, 0] - sx
    y = vertices[b, 1] - sy
    a1 = x * c0 + y * c1
    b1 = x * e0 + y * e1
    h1 = vertices[b, 2] - sz
    x = vertices[c, 0] - sx
    y = vertices[c, 1] - sy
    a2 = x * c0 + y * c1
    b2 = x * e0 + y * e1
    h2 = vertices[c, 2] - sz
    if curved:
        q0 = math.atan2(b0, a0) * sdd / col_pitch + ccol
        q1 = math.atan2(b1, a1) * sdd / col_pitch + ccol
        q2 = math.atan2(b2, a2) * sdd / col_pitch + ccol
    else:
        q0 = b0 / a0 * sdd / col_pitch + ccol
        q1 = b1 / a1 * sdd / col_pitch + ccol
        q2 = b2 / a2 * sdd / col_pitch + ccol
    j0 = _max2(int(math.ceil(_min2(_min2(q0, q1), q2) - _EPS)), 0)
    j1 = _min2(int(math.floor(_max2(_max2(q0, q1), q2) + _EPS)), cols - 1)
    if j0 > j1:
        return
    slot = slots[f]
    t0 = 1e-9 * (abs(a0) + abs(b0) + 1.0)
    t1 = 1e-9 * (abs(a1) + abs(b1) + 1.0)
    t2 = 1e-9 * (abs(a2) + abs(b2) + 1.0)
    kk = cuda.local.array(3, numba.int64)
    sh = cuda.local.array(3, numba.float64)
    for j in range(j0, j1 + 1):
        cj = cg[j]
        sj = sg[j]
        dj_ = dj[j]
        d0 = -sj * a0 + cj * b0
        d1 = -sj * a1 + cj * b1
        d2 = -sj * a2 + cj * b2
        if abs(d0) <= t0:
            d0 = 0.0
        if abs(d1) <= t1:
            d1 = 0.0
        if abs(d2) <= t2:
            d2 = 0.0
        rlo = math.inf
        rhi = -math.inf
        r = _crossing(d0, d1, a0, b0, h0, a1, b1, h1, cj, sj, dj_)
        if r == r:
            rlo = _min2(rlo, r)
            rhi = _max2(rhi, r)
        r = _crossing(d1, d2, a1, b1, h1, a2, b2, h2, cj, sj, dj_)
        if r == r:
            rlo = _min2(rlo, r)
            rhi = _max2(rhi, r)
        r = _crossing(d2, d0, a2, b2, h2, a0, b0, h0, cj, sj, dj_)
        if r == r:
            rlo = _min2(rlo, r)
            rhi = _max2(rhi, r)
        rlo = rlo / row_pitch + crow
        rhi = rhi / row_pitch + crow
        if rlo > rhi:
            continue
        i0 = _max2(int(math.ceil(rlo - _EPS)), 0)
        i1 = _min2(int(math.floor(rhi + _EPS)), rows - 1)
        # the ray's direction as the CPU's kernel computes it, products unfused
        g0 = _mul(cj, c0) + _mul(sj, e0)
        g1 = _mul(cj, c1) + _mul(sj, e1)
        p0 = _mul(dj_, g0)
        p1 = _mul(dj_, g1)
        for i in range(i0, i1 + 1):
            p2 = v[i]
            n = math.sqrt(_mul(p0, p0) + _mul(p1, p1) + _mul(p2, p2))
            _shear_one(p0 / n, p1 / n, p2 / n, kk, sh)
            hit, st = _ray_hit(vertices, a, b, c, sx, sy, sz, kk, sh)
            if hit:
                cuda.atomic.add(acc, (k, i, j, slot), st)


@cuda.jit
def _zero(a):
    """``a[:] = 0`` for a flat device array (no host buffer, no transfer)."""
    t = cuda.grid(1)
    if t < a.shape[0]:
        a[t] = 0


def _zeros(shape, dtype):
    """A device array of zeros."""
    a = cuda.device_array(shape, dtype=dtype)
    n = int(np.prod(shape))
    if n:
        _zero[(n + THREADS - 1) // THREADS, THREADS](a.reshape(n))
    return a


@cuda.jit
def _store(acc, out):
    """``out = acc`` as float32 where above 1e-9 mm, else 0 (the CPU kernel's store), flat."""
    t = cuda.grid(1)
    if t < acc.shape[0]:
        x = acc[t]
        out[t] = x if x > 1e-9 else 0.0


def _launch(p: Prepared, zs: np.ndarray, ext: float, consts, start: int, stop: int, out) -> None:
    """Trace views ``[start, stop)`` of ``p`` in one launch into ``out[start:stop]`` (a device
    array, zeros); ``zs``: the faces' lowest z, sorted; ``ext``: the tallest face's height."""
    g = p.geom
    cg, sg, dj, v, d_vertices, d_faces, d_slots, d_zlo, d_zhi, d_order = consts
    src = p.src[start:stop]
    zwin = np.stack([src[:, 2] - p.reach, src[:, 2] + p.reach], axis=1)
    # a face meets the slab only if zlo <= z_hi and zlo >= z_lo - (the tallest face's height)
    first = np.searchsorted(zs, zwin[:, 0] - ext, side="left").astype(np.int64)
    last = np.searchsorted(zs, zwin[:, 1], side="right").astype(np.int64)
    cum = np.zeros(len(src) + 1, dtype=np.int64)
    np.cumsum(np.maximum(last - first, 0), out=cum[1:])
    n_items = int(cum[-1])
    shape = (stop - start, g.rows, g.cols, out.shape[3])
    if n_items == 0:
        return
    acc = _zeros(shape, np.float64)
    d = cuda.to_device
    _trace_faces[(n_items + THREADS - 1) // THREADS, THREADS](
        d_vertices, d_faces, d_slots, d_zlo, d_zhi, d_order, d(first), d(cum), d(zwin),
        d(np.ascontiguousarray(src)), d(np.ascontiguousarray(p.cvec[start:stop])),
        d(np.ascontiguousarray(p.evec[start:stop])), cg, sg, dj, v, bool(g.curved), float(g.sdd),
        float(g.col_pitch), float(g.row_pitch), float(g.col_offset), acc)
    size = int(np.prod(shape))
    _store[(size + THREADS - 1) // THREADS, THREADS](acc.reshape(size), out[start:stop].reshape(size))


def views_per_launch(rows: int, cols: int, n_materials: int) -> int:
    """Views traced in one launch: their float64 sums within :data:`LAUNCH_BYTES`."""
    return max(1, LAUNCH_BYTES // (rows * cols * max(n_materials, 1) * 8))


def _on_gpu(mesh: Mesh, g) -> tuple:
    """The mesh's and the detector's constant arrays on the GPU (sent once per scan, kept in
    ``mesh.device``), the faces' lowest z in sorted order and the tallest face's height."""
    key = ("cuda", g.rows, g.cols, float(g.sdd), bool(g.curved), float(g.row_pitch), float(g.col_pitch),
           float(g.col_offset))
    if key not in mesh.device:
        mesh.device.clear()  # one detector a scan: keep no stale copies
        order = np.argsort(mesh.zlo, kind="stable").astype(np.int64)
        d = cuda.to_device
        consts = (*(d(np.ascontiguousarray(a)) for a in column_constants(g.u(), float(g.sdd), bool(g.curved))),
                  d(np.ascontiguousarray(g.v(), dtype=np.float64)), d(mesh.vertices), d(mesh.faces),
                  d(mesh.slots), d(mesh.zlo), d(mesh.zhi), d(order))
        mesh.device[key] = (consts, mesh.zlo[order], float((mesh.zhi - mesh.zlo).max()))
    return mesh.device[key]


def trace_views_cuda(solids, geom, views=None, materials: list[str] | None = None, cull: bool = True,
                     on_device: bool = False, mesh: Mesh | None = None):
    """:func:`xraybag.engine.ct.forward.trace_views` on the GPU: the same ``(materials, L)``, to
    the rounding of atomic sums. ``on_device``: ``L`` is left on the GPU (a numba device array,
    for :func:`xraybag.engine.xray.detect.detect`'s GPU pass), not copied to the host. ``mesh``:
    the solids' :func:`~xraybag.engine.ct.forward.mesh_of`, made once for a scan traced in chunks
    (its GPU copies are then made once too)."""
    p = prepare(solids, geom, views, materials, cull, mesh)
    if not isinstance(p, Prepared):
        return (p[0], cuda.to_device(p[1])) if on_device else p
    g, m = p.geom, p.mesh
    consts, zs, ext = _on_gpu(m, g)
    shape = (g.views, g.rows, g.cols, max(len(m.materials), 1))
    out = _zeros(shape, np.float32)
    step = views_per_launch(g.rows, g.cols, shape[3])
    for start in range(0, g.views, step):
        _launch(p, zs, ext, consts, start, min(start + step, g.views), out)
    return m.materials, out if on_device else out.copy_to_host()
