"""The counter-based noise draws of :mod:`.counter` on a GPU (numba.cuda): the same functions
(Philox4x32-10, the ziggurat, Poisson by inversion, the quantum draw) compiled as CUDA device
functions from the CPU's code (:func:`xraybag.engine.xray.trace_cuda.device_function`), one
thread per pixel. The words and the integer parts are the same bits as on the CPU; the float
parts (``exp``, ``log1p``, ``sqrt`` in a wedge, the tail or a dim pixel's Poisson terms) are
libdevice's, within an ulp or two of the CPU's, and NVVM may fuse multiply-adds: a pixel whose
draw sits on a rounding boundary can differ by one quantum (the tests bound it).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from xraybag.engine.xray import counter
from xraybag.engine.xray.detect import on_device
from xraybag.engine.xray.trace_cuda import device_function

THREADS = 128

_philox = device_function(counter.philox)
_ziggurat_rest = device_function(counter.ziggurat_rest, philox=_philox)
_ziggurat = device_function(counter.ziggurat, ziggurat_rest=_ziggurat_rest)
_poisson = device_function(counter.poisson, philox=_philox, _unit=device_function(counter._unit))
_count = device_function(counter.count, poisson=_poisson)
_quantum = device_function(counter.quantum, moments=device_function(counter.moments), count=_count)
_draws = device_function(counter.draws, ziggurat=_ziggurat)
_noise_pixel = device_function(counter.noise_pixel, draws=_draws, quantum=_quantum)


@cuda.jit
def _noise_kernel(sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
                  out, ze):  # pragma: no cover - runs on a GPU / the simulator
    i = cuda.grid(1)
    if i >= sums.shape[0]:
        return
    view = i // per_view
    p = i - view * per_view
    w0, w1, w2, w3 = _philox(p, first_view + view, 4 * c, 0, k0, k1)
    _noise_pixel(i, p, first_view + view, w0, w1, w2, w3, sums, c_mean, c_var, extra, q0, ref, c,
                 k0, k1, out, ze)


def channel_noise_cuda(sums, c: int, c_mean: int, c_var: int, extra, q0: float, ref: float,
                       per_view: int, draws, quantum_noise: bool, electronic: bool):
    """:func:`xraybag.engine.xray.counter.channel_noise` on the GPU: ``sums`` (n, 2C) float64 and
    ``extra`` (n,) float64 or None, on the GPU or the host; returns device arrays (quantum
    signal / ``ref`` (n,) float64 or None, electronic normals (n,) float32 or None)."""
    d_sums = sums if on_device(sums) else cuda.to_device(np.ascontiguousarray(sums, np.float64))
    n = d_sums.shape[0]
    out = cuda.device_array(n if quantum_noise else 0, dtype=np.float64)
    ze = cuda.device_array(n if electronic else 0, dtype=np.float32)
    if extra is None:
        d_extra = cuda.device_array(0, dtype=np.float64)
    elif on_device(extra):
        d_extra = extra.reshape(n) if extra.ndim != 1 else extra
    else:
        d_extra = cuda.to_device(np.ascontiguousarray(extra, dtype=np.float64).reshape(-1))
    if n:
        _noise_kernel[(n + THREADS - 1) // THREADS, THREADS](
            d_sums, int(c_mean), int(c_var), d_extra, float(q0), float(ref), int(per_view),
            int(draws.first_view), int(c), int(draws.key0), int(draws.key1), out, ze)
    return (out if quantum_noise else None), (ze if electronic else None)
