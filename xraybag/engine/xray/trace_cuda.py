"""The mesh tracer of :mod:`xraybag.engine.xray.trace` as a CUDA kernel (numba.cuda): ``BACKENDS["cuda"]``.

Same inputs, same :class:`~xraybag.engine.xray.trace.TraceResult`. The CPU kernel loops over faces
and, per face, over the rows and columns of its footprint; here one CUDA thread takes one
(face, footprint row) pair, so a large triangle is spread over as many threads as it has rows.
All objects of a view go in one launch: every face knows its object's window in one flat float64
buffer, and hits are added there with ``cuda.atomic.add``. A second kernel sums the windows into
the view's (rows, cols, M) path lengths on the GPU, in the CPU's order (:func:`_finish_total`), and
they stay there for the GPU's detection and labels (:class:`DeviceTraceResult`; ``paths`` brings
them to the host when asked for); only the objects' own windows come back. The objects' windows
and the faces' footprints are the CPU code of :mod:`.trace`, and the per-ray math (the watertight
test, the fan mapping) is its plain-Python source compiled a second time as CUDA device functions
(:data:`~xraybag.engine.xray.trace.SHARED_HELPERS`), whose products go through libdevice's
``dmul_rn`` (NVVM would otherwise fuse them into multiply-adds, and the edge functions of a
shared edge would no longer be exact negatives in its two triangles: on an H200 that broke the
watertight test for rays through shared edges). A row's columns come from
``trace._row_columns``, a helper copy of the row loop that the CPU kernel keeps inline for speed;
the tests hold both backends to the same results. The fan mapping's angle is libdevice's atan2
here (within an ulp of the CPU's); it only sets which columns are tested, so a difference could
matter only for a ray within that ulp of a footprint's edge.

The sums agree with the CPU's to rounding: atomic additions come in any order, so a ray with
more than two hits on one material may differ from the CPU in the last bit of its float64 sum
(and, rarely, by one unit of the float32 result).
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray import trace as _trace
from xraybag.engine.xray.paths import (
    LazyTraceResult,
    ObjectTrace,
    TraceResult,
    own_lengths,
    window_table,
)
from xraybag.engine.xray.trace import (
    SHARED_HELPERS,
    RayGeometry,
    _face_box,
    plan_objects,
    ray_constants,
)

THREADS = 128  # threads per block


def _numpy_for_cuda():
    """What the shared helpers take from numpy, as CUDA device code has it: numba's CUDA target
    has no ``np.floor``, ``np.ceil`` or ``np.arctan2``, so these are libdevice's (float in,
    float out, like numpy's; floor and ceil are exact, atan2 within an ulp of the CPU's). The
    simulator runs the helpers as Python and keeps numpy itself."""
    if numba.config.ENABLE_CUDASIM:
        return np
    from numba.cuda import libdevice

    mod = types.ModuleType("xraybag_numpy_for_cuda")
    mod.floor, mod.ceil, mod.arctan2 = libdevice.floor, libdevice.ceil, libdevice.atan2
    mod.pi, mod.inf = np.pi, np.inf
    return mod


def _min2(a, b):
    return b if b < a else a  # noqa: FURB136 - Python's min(a, b), which the CUDA target lacks


def _max2(a, b):
    return b if b > a else a  # noqa: FURB136 - Python's max(a, b), which the CUDA target lacks


def _device_functions() -> dict:
    """The shared helpers compiled as CUDA device functions, each calling the others' device
    versions: plain-Python copies of them over a copy of :mod:`.trace`'s globals, where ``np``
    is :func:`_numpy_for_cuda` and ``min``/``max`` the two-argument device functions above
    (numba's CUDA target cannot compile the builtins' star-argument overloads)."""
    g = dict(vars(_trace))
    g["np"] = _numpy_for_cuda()
    g["min"] = cuda.jit(device=True)(_min2)
    g["max"] = cuda.jit(device=True)(_max2)
    for name, fn in SHARED_HELPERS.items():
        clone = types.FunctionType(fn.__code__, g, name, fn.__defaults__, fn.__closure__)
        g[name] = cuda.jit(device=True)(clone)
    if not numba.config.ENABLE_CUDASIM:  # products NVVM never fuses into a multiply-add
        from numba.cuda import libdevice

        g["_mul"] = libdevice.dmul_rn
    return g


_DEVICE = _device_functions()


def device_function(fn, **names):
    """A numba CPU function's plain Python (its ``py_func``) compiled as a CUDA device function,
    over a copy of its module's globals with the two-argument ``min`` / ``max`` above (the CUDA
    target has no star-argument builtins) and ``names`` (other device functions it calls) put in:
    the CT kernels share their per-ray and per-voxel helpers with the CPU kernels this way."""
    py = getattr(fn, "py_func", fn)
    g = dict(py.__globals__) | {"min": _DEVICE["min"], "max": _DEVICE["max"]} | names
    return cuda.jit(device=True)(types.FunctionType(py.__code__, g, py.__name__, py.__defaults__, py.__closure__))


_ray_hit = _DEVICE["ray_hit"]
_row_columns = _DEVICE["_row_columns"]


@cuda.jit
def _trace_rows(vertices, faces, vrow, vcol, boxes, span, item_face, item_row, fslot, fobj, win,
                origin_row, origin_col, kk, sh, fan, out):
    """Thread ``t`` traces row ``item_row[t]`` of face ``item_face[t]``: the face's columns
    ``boxes[f, 2:4]`` cut down to the row (as the CPU's ``_trace_faces`` does), each hit added to
    ``out[win[o, 5] + ((i - r0) * w + (j - c0)) * slots + slot]`` of the face's object ``o``
    (``win[o]`` = r0, c0, h, w, slots, offset)."""
    t = cuda.grid(1)
    if t >= item_face.shape[0]:
        return
    f = item_face[t]
    i = item_row[t]
    a = faces[f, 0]
    b = faces[f, 1]
    c = faces[f, 2]
    is_fan = fan.shape[0] > 0
    ja, jb = _row_columns(vertices, (a, b, c), i, vrow, vcol, origin_row, origin_col, fan, is_fan,
                          span[f, 0], span[f, 1], boxes[f, 2], boxes[f, 3])
    ri = i if kk.shape[0] > 1 else 0
    o = fobj[f]
    r0 = win[o, 0]
    c0 = win[o, 1]
    w = win[o, 3]
    nk = win[o, 4]
    base = win[o, 5] + fslot[f]
    for j in range(ja, jb + 1):
        hit, st = _ray_hit(
            vertices, a, b, c,
            origin_row[i, 0] + origin_col[j, 0],
            origin_row[i, 1] + origin_col[j, 1],
            origin_row[i, 2] + origin_col[j, 2],
            kk[ri, j], sh[ri, j],
        )
        if hit:
            cuda.atomic.add(out, base + ((i - r0) * w + (j - c0)) * nk, st)


@cuda.jit
def _finish_total(flat, win, mat_off, mats, total):  # pragma: no cover - runs on a GPU / the simulator
    """Thread ``t`` = pixel ``(r, c)``: :func:`.paths.sparse_totals`' sums for that pixel. Its
    materials start at 0; then every object whose window holds it, in order, adds each of its
    slots' path lengths (those of 1e-9 mm or more) in float64, rounded to float32 each time, as
    the CPU adds the objects one after another (so the same numbers)."""
    t = cuda.grid(1)
    rows = total.shape[0]
    cols = total.shape[1]
    if t >= rows * cols:
        return
    r = t // cols
    c = t % cols
    for m in range(total.shape[2]):
        total[r, c, m] = numba.float32(0.0)
    for o in range(win.shape[0]):
        r0 = win[o, 0]
        c0 = win[o, 1]
        if r < r0 or r >= r0 + win[o, 2] or c < c0 or c >= c0 + win[o, 3]:
            continue
        nk = win[o, 4]
        base = win[o, 5] + ((r - r0) * win[o, 3] + (c - c0)) * nk
        for k in range(nk):
            v = flat[base + k]
            if v < 1e-9:
                continue
            m = mats[mat_off[o] + k]
            total[r, c, m] = numba.float32(numba.float64(total[r, c, m]) + v)


@dataclass
class DeviceWindows:
    """The objects' windows as the CUDA tracer left them on the GPU, for the labels' pass there
    (:mod:`.annotate_cuda`): ``flat`` the float64 buffer, ``win`` the (objects, 6) table (r0, c0,
    h, w, slots, offset), ``mat_off`` / ``mats`` each object's materials (slot k of object o is
    material ``mats[mat_off[o] + k]``; ``mats`` on the host too); the labelled objects (index > 0)
    are :attr:`DeviceTraceResult.objects` in the same order, at rows ``labelled`` of ``win``."""

    flat: object
    win: object
    mat_off: object
    mats: np.ndarray
    labelled: np.ndarray  # (n,) rows of win, one per DeviceTraceResult.objects entry


class DeviceTraceResult(LazyTraceResult):
    """A :class:`~xraybag.engine.xray.trace.TraceResult` whose path lengths stay on the GPU
    (``device_paths``, (rows, cols, M) float32, for the GPU's detection and labels); ``paths``
    copies them to the host on first use. The objects' windows are on the host."""

    def __init__(self, materials: list[str], device_paths, objects: list, seconds: float = 0.0,
                 device_windows: DeviceWindows | None = None):
        self.device_paths = device_paths
        self.device_windows = device_windows
        super().__init__(materials, None, objects, seconds)

    def device_attenuation(self, mu) -> np.ndarray:
        """:func:`xraybag.engine.xray.annotate.attenuation` taken on the GPU: the (rows, cols)
        float32 image on the host."""
        from xraybag.engine.xray.annotate_cuda import attenuation_device

        return attenuation_device(self.device_paths, mu).copy_to_host()

    def device_labels(self, mu, hard: float, hidden: float):
        """:func:`xraybag.engine.xray.annotate.label_objects` on the GPU (over the windows the
        tracer left there): the instance map and labels."""
        from xraybag.engine.xray.annotate_cuda import label_objects_cuda

        return label_objects_cuda(self, mu, hard, hidden)

    def _make_paths(self) -> np.ndarray:
        return self.device_paths.copy_to_host()


@numba.njit(cache=True, nogil=True)
def _face_boxes(faces, vrow, vcol, fobj, win, rows, cols):
    """Every face's footprint as the CPU kernel computes it (:func:`.trace._face_box`, on the
    CPU here too, so both agree even where a projected vertex is not finite): rows and columns
    (n, 4) = i0, i1, j0, j1, and the projected column range (n, 2) = clo, chi."""
    n = faces.shape[0]
    boxes = np.empty((n, 4), dtype=np.int64)
    span = np.empty((n, 2), dtype=np.float64)
    for f in range(n):
        o = fobj[f]
        i0, i1, j0, j1, clo, chi = _face_box(
            vrow, vcol, faces[f, 0], faces[f, 1], faces[f, 2], win[o, 0], win[o, 1], win[o, 2], win[o, 3], rows, cols
        )
        boxes[f, 0] = i0
        boxes[f, 1] = i1
        boxes[f, 2] = j0
        boxes[f, 3] = j1
        span[f, 0] = clo
        span[f, 1] = chi
    return boxes, span


def trace_cuda(solids: list, geometry: RayGeometry) -> TraceResult:
    """:func:`.trace.trace_numba` on the GPU: the same result, to the rounding of atomic sums,
    as a :class:`DeviceTraceResult` whose total path lengths stay on the GPU (the objects' own
    windows come back, 4 bytes a slot of each object's window)."""
    t0 = time.perf_counter()
    g = geometry
    materials, mindex, plans = plan_objects(solids, g)
    objects: list = []
    if not plans:
        total = np.zeros((g.rows, g.cols, len(materials)), dtype=np.float32)
        return TraceResult(materials, total, objects, time.perf_counter() - t0)
    kk, sh, fan = ray_constants(g)

    # every part of every object as one mesh; win[o] = r0, c0, h, w, slots, offset in the buffer
    verts, faces, vrow, vcol, fslot, fobj = [], [], [], [], [], []
    win, offset, mats, mat_off = window_table(plans)
    nv = 0
    for o, plan in enumerate(plans):
        for s, (pr, pc) in zip(plan.parts, plan.projected):
            f = np.asarray(s.faces, dtype=np.int64)
            verts.append(np.asarray(s.vertices, dtype=np.float64))
            faces.append(f + nv)
            vrow.append(np.asarray(pr, dtype=np.float64))
            vcol.append(np.asarray(pc, dtype=np.float64))
            fslot.append(np.full(len(f), plan.local[mindex[s.material]], dtype=np.int64))
            fobj.append(np.full(len(f), o, dtype=np.int64))
            nv += len(s.vertices)
    vertices = np.ascontiguousarray(np.concatenate(verts))
    faces_a = np.ascontiguousarray(np.concatenate(faces).reshape(-1, 3))
    vrow_a, vcol_a = np.concatenate(vrow), np.concatenate(vcol)
    fslot_a, fobj_a = np.concatenate(fslot), np.concatenate(fobj)
    boxes, span = _face_boxes(faces_a, vrow_a, vcol_a, fobj_a, win, g.rows, g.cols)

    # the work: one item per (face, footprint row)
    live = np.flatnonzero((boxes[:, 0] <= boxes[:, 1]) & (boxes[:, 2] <= boxes[:, 3]))
    counts = boxes[live, 1] - boxes[live, 0] + 1
    n_items = int(counts.sum())
    flat = np.zeros(offset, dtype=np.float64)
    if n_items:
        starts = np.cumsum(counts) - counts
        item_face = np.repeat(live, counts)
        item_row = np.arange(n_items, dtype=np.int64) - np.repeat(starts - boxes[live, 0], counts)
        d = cuda.to_device
        out = d(flat)
        blocks = (n_items + THREADS - 1) // THREADS
        _trace_rows[blocks, THREADS](
            d(vertices), d(faces_a), d(vrow_a), d(vcol_a), d(boxes), d(span), d(item_face), d(item_row),
            d(fslot_a), d(fobj_a), d(win), d(np.ascontiguousarray(g.origin_row, dtype=np.float64)),
            d(np.ascontiguousarray(g.origin_col, dtype=np.float64)), d(np.ascontiguousarray(kk)),
            d(np.ascontiguousarray(sh)), d(fan), out,
        )
        flat = out.copy_to_host()
    else:
        out = cuda.to_device(flat)
    # the total on the GPU (never on the host unless asked for); the objects' windows here
    d_total = cuda.device_array((g.rows, g.cols, len(materials)), dtype=np.float32)
    n_px = g.rows * g.cols
    d_win, d_mat_off = cuda.to_device(win), cuda.to_device(mat_off)
    if n_px:
        _finish_total[(n_px + THREADS - 1) // THREADS, THREADS](out, d_win, d_mat_off, cuda.to_device(mats), d_total)
    own_all = np.empty(offset, dtype=np.float32)
    own_lengths(flat, own_all)
    for o, plan in enumerate(plans):
        _, _, h, w, k, off = (int(x) for x in win[o])
        if plan.index > 0:
            objects.append(ObjectTrace(plan.index, plan.r0, plan.c0, own_all[off : off + h * w * k].reshape(h, w, k),
                                       plan.mats))
    labelled = np.array([o for o, plan in enumerate(plans) if plan.index > 0], dtype=np.int64)
    windows = DeviceWindows(out, d_win, d_mat_off, mats, labelled)
    return DeviceTraceResult(materials, d_total, objects, time.perf_counter() - t0, windows)
