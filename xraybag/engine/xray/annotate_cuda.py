"""The labels' pass of :mod:`.annotate` on the GPU, over the windows the CUDA tracer left there
(:class:`xraybag.engine.xray.trace_cuda.DeviceWindows`).

One CUDA thread takes one pixel and visits the labelled objects in order, as the CPU's
:func:`.annotate._label_window` visits them one after another: each object whose window holds the
pixel gets its own attenuation there (float32, the window's float32 path lengths times ``mu``,
products never fused into the sum) and path length, its mask bit (length above
:data:`.annotate.MASK_MIN_MM`), and, where it attenuates more than every object before it, the
pixel's instance. Each object's area, the pixels the rest attenuates more (against the total
attenuation image, also taken on the GPU) and its bounding rows and columns are counted with
atomics. Only the instance
map, the masks (a byte a window pixel) and six integers an object come back; the labels are made
from them on the CPU by :func:`.annotate.object_label`, so they are the CPU's.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.annotate import MASK_MIN_MM, ObjectLabel, object_label
from xraybag.engine.xray.colour_cuda import _fmul

THREADS = 128


@cuda.jit
def _attenuation(paths, mu, out):  # pragma: no cover - runs on a GPU / the simulator
    """Thread ``t`` = pixel ``t``: ``sum_m paths[t, m] mu[m]`` in float32, materials in order."""
    t = cuda.grid(1)
    if t >= out.shape[0]:
        return
    acc = numba.float32(0.0)
    for m in range(mu.shape[0]):
        acc += paths[t, m] * mu[m]
    out[t] = acc


def attenuation_device(device_paths, mu):
    """:func:`xraybag.engine.xray.annotate.attenuation` of path lengths on the GPU (rows, cols, M)
    float32: the (rows, cols) float32 image of ``sum_m mu_m L_m``, a device array (float32 sums
    in material order, so within float32 rounding of the CPU's matrix product)."""
    rows, cols, m = device_paths.shape
    n = rows * cols
    out = cuda.device_array(n, dtype=np.float32)
    if n:
        _attenuation[(n + THREADS - 1) // THREADS, THREADS](
            device_paths.reshape(n, m), cuda.to_device(np.ascontiguousarray(mu, dtype=np.float32)), out)
    return out.reshape(rows, cols)


@cuda.jit
def _label_pixels(flat, win, mat_off, mu_k, labelled, index_of, total, mask_off, masks, instance,
                  stats):  # pragma: no cover - runs on a GPU / the simulator
    """Thread ``t`` = pixel ``(r, c)``: see the module's docstring. ``labelled[q]``: the row of
    ``win`` of labelled object ``q`` (index ``index_of[q]``), whose mask starts at
    ``masks[mask_off[q]]``; ``stats[q]``: area, covered, first row, last row + 1, first column,
    last column + 1 (in the window; initialised to 0, 0, h, 0, w, 0)."""
    t = cuda.grid(1)
    rows = instance.shape[0]
    cols = instance.shape[1]
    if t >= rows * cols:
        return
    r = t // cols
    c = t % cols
    best = numba.float32(0.0)
    inst = numba.uint16(0)
    for q in range(labelled.shape[0]):
        o = labelled[q]
        r0 = win[o, 0]
        c0 = win[o, 1]
        w = win[o, 3]
        if r < r0 or r >= r0 + win[o, 2] or c < c0 or c >= c0 + w:
            continue
        i = r - r0
        j = c - c0
        nk = win[o, 4]
        base = win[o, 5] + (i * w + j) * nk
        own = numba.float32(0.0)
        length = numba.float32(0.0)
        for k in range(nk):
            v = flat[base + k]
            x = numba.float32(0.0) if v < 1e-9 else numba.float32(v)
            own = own + _fmul(x, mu_k[mat_off[o] + k])
            length = length + x
        inside = numba.float64(length) > MASK_MIN_MM
        masks[mask_off[q] + i * w + j] = inside
        if not inside:
            continue
        if own > best:
            best = own
            inst = numba.uint16(index_of[q])
        cuda.atomic.add(stats, (q, 0), 1)
        if total[r, c] - own > own:
            cuda.atomic.add(stats, (q, 1), 1)
        cuda.atomic.min(stats, (q, 2), i)
        cuda.atomic.max(stats, (q, 3), i + 1)
        cuda.atomic.min(stats, (q, 4), j)
        cuda.atomic.max(stats, (q, 5), j + 1)
    instance[r, c] = inst


def label_objects_cuda(tr, mu, hard: float, hidden: float) -> tuple[np.ndarray, dict[int, ObjectLabel]]:
    """:func:`xraybag.engine.xray.annotate.label_objects` of a
    :class:`~xraybag.engine.xray.trace_cuda.DeviceTraceResult` (its ``device_paths`` and
    ``device_windows``) on the GPU: the instance map and labels on the host."""
    dw = tr.device_windows
    total = attenuation_device(tr.device_paths, mu)
    rows, cols = total.shape
    objects = tr.objects
    labels: dict[int, ObjectLabel] = {}
    instance = np.zeros((rows, cols), dtype=np.uint16)
    if not objects or rows * cols == 0:
        return instance, labels
    sizes = np.array([o.paths.shape[0] * o.paths.shape[1] for o in objects], dtype=np.int64)
    mask_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    stats = np.zeros((len(objects), 6), dtype=np.int64)
    stats[:, 2] = [o.paths.shape[0] for o in objects]
    stats[:, 4] = [o.paths.shape[1] for o in objects]
    mu_k = np.asarray(mu, dtype=np.float32)[dw.mats]
    d_masks = cuda.device_array(int(mask_off[-1]), dtype=np.bool_)
    d_instance = cuda.device_array((rows, cols), dtype=np.uint16)
    d_stats = cuda.to_device(stats)
    n = rows * cols
    _label_pixels[(n + THREADS - 1) // THREADS, THREADS](
        dw.flat, dw.win, dw.mat_off, cuda.to_device(mu_k), cuda.to_device(dw.labelled),
        cuda.to_device(np.array([o.index for o in objects], dtype=np.int64)),
        total, cuda.to_device(mask_off), d_masks,
        d_instance, d_stats)
    d_instance.copy_to_host(instance)
    masks = d_masks.copy_to_host()
    stats = d_stats.copy_to_host()
    for q, ot in enumerate(objects):
        h, w = ot.paths.shape[:2]
        mask_w = masks[mask_off[q]: mask_off[q + 1]].reshape(h, w)
        label = object_label(ot.index, mask_w, (ot.r0, ot.c0), (rows, cols), stats[q], hard, hidden)
        if label is not None:
            labels[ot.index] = label
    return instance, labels
