"""The spectral pass of :mod:`xraybag.engine.xray.detect` as a CUDA kernel (numba.cuda):
``detect.SPECTRAL["cuda"]``, registered with the CUDA tracer by
:func:`xraybag.engine.xray.devices.probe_cuda`.

Same inputs and output as :func:`~xraybag.engine.xray.detect.dense_signals`: for every pixel p,
``out[p] = weights.T @ exp(-(L2[p] @ mu))``, (n, K) float64. One CUDA thread takes one pixel: it
reads the pixel's path lengths, and for each energy sums the float32 exponent over the non-zero
path lengths, takes its exponential (libdevice's ``expf``, within 2 ulp) and adds it, weighted,
to each of the K float32 sums. A pixel that crosses nothing gets the open beam
(``weights.sum(0)`` in float64) as on the CPU. The CPU pass's exponential is Cephes' ``expf``
written out, so the two agree to float32 rounding, not bit for bit (on an H200, where NVVM
also fuses multiply-adds: 7.7e-7 per unit of exponent at most over a 600 x 1350 view, the CPU
itself 2.9e-7 from float64; the tests hold both within 1e-6); the CPU's re-use of the pixel a
row above is not needed here.

Only the noise-free sums run on the GPU: the noise (scatter, quantum draws, blur, electronic
noise) stays on the CPU, drawn from the caller's generator in the same order, so a GPU view has
the same draws as a CPU view.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.detect import dense_signals, on_device, spectral_operands

#: threads per block
THREADS = 128
#: most sums per pixel (K: a channel's mean, and its variance with quantum noise)
MAX_SUMS = 16


@cuda.jit
def _signals_kernel(L2, mu, wt, open_beam, out):  # pragma: no cover - runs on a GPU / the simulator
    p = cuda.grid(1)
    if p >= L2.shape[0]:
        return
    m_all = L2.shape[1]
    n_e = mu.shape[1]
    n_k = wt.shape[0]
    empty = True
    for m in range(m_all):
        if L2[p, m] != 0:
            empty = False
    if empty:
        for k in range(n_k):
            out[p, k] = open_beam[k]
        return
    acc = cuda.local.array(MAX_SUMS, numba.float32)
    for k in range(n_k):
        acc[k] = numba.float32(0.0)
    for e in range(n_e):
        x = numba.float32(0.0)
        for m in range(m_all):
            v = L2[p, m]
            if v != 0:
                x -= v * mu[m, e]
        if x < numba.float32(-87.0):  # as the CPU pass: exp(-87) is the least it gives
            x = numba.float32(-87.0)
        t = math.exp(x)
        for k in range(n_k):
            acc[k] += wt[k, e] * t
    for k in range(n_k):
        out[p, k] = acc[k]


def dense_signals_cuda(L2: np.ndarray, mu: np.ndarray, weights: np.ndarray, stride: int = 0,
                       threads: bool = False) -> np.ndarray:
    """:func:`xraybag.engine.xray.detect.dense_signals` on the GPU: ``exp(-L2 @ mu) @ weights``,
    (n, M), (M, E), (E, K) -> (n, K) float64 (float32 sums). ``L2`` may already be on the GPU
    (a float32 device array: the CT tracer's output), then it is read there. ``stride`` and ``threads`` are
    accepted for the same call (and passed on to the CPU pass, which takes more than
    :data:`MAX_SUMS` sums per pixel)."""
    L32, mu32, wt32, open_beam, out = spectral_operands(L2, mu, weights)
    if L32 is None:
        return out
    if wt32.shape[0] > MAX_SUMS:
        return dense_signals(L2.copy_to_host() if on_device(L2) else L2, mu, weights, stride, threads)
    d_out = cuda.device_array(out.shape, dtype=np.float64)
    _signals_kernel[(out.shape[0] + THREADS - 1) // THREADS, THREADS](
        L32 if on_device(L32) else cuda.to_device(L32), cuda.to_device(mu32), cuda.to_device(wt32),
        cuda.to_device(open_beam), d_out)
    d_out.copy_to_host(out)
    return out
