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

:func:`dense_signals_cuda` runs only the noise-free sums on the GPU: the noise (scatter, quantum
draws, blur, electronic noise) stays on the CPU, drawn from the caller's generator in the same
order, so a GPU view has the same draws as a CPU view. :func:`detect_stack_cuda` (the CT's
views) runs the whole detection on the GPU with counter-based draws (:mod:`.counter`), which the
CPU's ``detect(..., draws=...)`` reproduces.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.spectral import dense_signals, on_device, spectral_operands

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
    signals_on_device(L32, mu32, wt32, open_beam).copy_to_host(out)
    return out


def signals_on_device(L32, mu32: np.ndarray, wt32: np.ndarray, open_beam: np.ndarray):
    """The spectral pass's kernel on :func:`~xraybag.engine.xray.spectral.spectral_operands`' operands
    (``L32`` on the GPU or the host): the (n, K) float64 sums as a new device array."""
    d_out = cuda.device_array((L32.shape[0], open_beam.shape[0]), dtype=np.float64)
    if L32.shape[0]:
        _signals_kernel[(L32.shape[0] + THREADS - 1) // THREADS, THREADS](
            L32 if on_device(L32) else cuda.to_device(L32), cuda.to_device(mu32), cuda.to_device(wt32),
            cuda.to_device(open_beam), d_out)
    return d_out


@cuda.jit
def _column(sums, c, out):  # pragma: no cover - runs on a GPU / the simulator
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = sums[i, c]


@cuda.jit
def _plus_over(a, extra, shift, ref, out):  # pragma: no cover - runs on a GPU / the simulator
    """``out = (a + extra) / ref`` (``extra`` empty: ``shift`` in its place), numpy's steps."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        e = extra[i] if extra.shape[0] > 0 else shift
        out[i] = (a[i] + e) / ref


@cuda.jit
def _line_integral(t, out):  # pragma: no cover - runs on a GPU / the simulator
    """``float32(-ln(max(t, 1e-6)))``, the CT's line integral of a transmission."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        v = t[i]
        if v < 1e-6:  # noqa: PLR1730 (max does not compile for CUDA)
            v = 1e-6
        out[i] = -math.log(v)


def _grid(n: int) -> tuple[int, int]:
    return max(1, (n + THREADS - 1) // THREADS), THREADS


def detect_stack_cuda(L, materials: list[str], scanner, response, library, pixel_mm: float, draws) -> dict:
    """:func:`xraybag.engine.xray.detect.detect` of a stack of views (views, rows, cols, M) with
    counter-based draws (``draws``, :mod:`.counter`), every step on the GPU: the spectral pass,
    the scatter low-pass and blur (:mod:`.filters_cuda`), the quantum and electronic draws
    (:mod:`.counter_cuda`). ``L``: float32 path lengths on the GPU or the host. Returns
    ``{channel: (views, rows, cols) float64 device array}`` of transmissions: the CPU's
    ``detect(..., draws=draws)`` to float rounding (the spectral pass's float32 exponentials,
    libdevice's functions in the draws)."""
    from xraybag.engine.xray.counter_cuda import channel_noise_cuda
    from xraybag.engine.xray.detect import mu_table, noise_plan
    from xraybag.engine.xray.filters_cuda import blur_and_add_cuda, lowpass_cuda

    dims = tuple(L.shape)
    if len(dims) != 4 or dims[-1] != len(materials):
        raise ValueError(f"L has shape {dims}; expected (views, rows, cols, {len(materials)})")
    views, rows, cols, m = dims
    n = views * rows * cols
    shape = (views, rows, cols)
    plan = noise_plan(scanner, response)
    quantum, electronic, scatter = plan.quantum, plan.electronic, plan.scatter
    channels = list(response.channels)
    n_ch = len(channels)
    mu = mu_table(materials, library, response.energies)
    L2 = L.reshape(n, m) if on_device(L) else np.ascontiguousarray(L, dtype=np.float32).reshape(n, m)
    L32, mu32, wt32, open_beam_k, out = spectral_operands(L2, mu, plan.stack)
    if L32 is None or wt32.shape[0] > MAX_SUMS:  # nothing to trace, or more sums than a thread keeps
        d_sums = cuda.to_device(out if L32 is None else dense_signals(
            L2.copy_to_host() if on_device(L2) else L2, mu, plan.stack, cols, True))
    else:
        d_sums = signals_on_device(L32, mu32, wt32, open_beam_k)
    none = cuda.device_array(0, dtype=np.float64)
    result = {}
    for c, name in enumerate(channels):
        mean = cuda.device_array(n, dtype=np.float64)
        _column[_grid(n)](d_sums, c, mean)
        shift, ref = plan.reference(c)
        extra = none
        if scatter is not None and scatter.fraction > 0:
            sigma = float(scatter.width) / float(pixel_mm)
            extra = lowpass_cuda(mean.reshape(shape), sigma, scatter.fraction, shift).reshape(n)
            shift = 0.0
        z = None
        if quantum or electronic:
            if extra.shape[0] == 0 and shift != 0.0:
                extra = cuda.to_device(np.full(n, shift))
            signal, z = channel_noise_cuda(d_sums, c, c, n_ch + c, extra if extra.shape[0] else None,
                                           float(plan.q0[c]), ref, rows * cols, draws, quantum, electronic)
        if not quantum:  # (mean + extra) / ref, as the CPU (adding 0 where there is no scatter)
            signal = cuda.device_array(n, dtype=np.float64)
            _plus_over[_grid(n)](mean, extra, shift, ref, signal)
        signal = signal.reshape(shape)
        if plan.blur > 0 or z is not None:
            signal = blur_and_add_cuda(signal, plan.blur, None if z is None else z.reshape(shape), plan.sigma_e)
        result[name] = signal
    return result


def detect_view_cuda(L, materials: list[str], scanner, response, library, pixel_mm: float,
                     draws) -> dict[str, np.ndarray]:
    """One 2D view's :func:`xraybag.engine.xray.detect.detect` with counter-based draws, every
    step on the GPU (:func:`detect_stack_cuda` of a stack of one view): ``L`` (rows, cols, M)
    float32 on the host or the GPU; returns ``{channel: (rows, cols) float64}`` on the host, the
    CPU's ``detect(..., draws=draws)`` to float rounding."""
    stack = L.reshape((1,) + tuple(L.shape))
    out = detect_stack_cuda(stack, materials, scanner, response, library, pixel_mm, draws)
    return {name: t.copy_to_host().reshape(L.shape[:2]) for name, t in out.items()}


def line_integrals_cuda(L, materials: list[str], scanner, response, library, pixel_mm: float,
                        draws) -> dict[str, np.ndarray]:
    """:func:`detect_stack_cuda`'s transmissions as the CT's line integrals
    ``float32(-ln(max(T, 1e-6)))``, taken on the GPU: ``{channel: (views, rows, cols) float32}``
    on the host (the only data that comes back)."""
    out = {}
    for name, t in detect_stack_cuda(L, materials, scanner, response, library, pixel_mm, draws).items():
        d = cuda.device_array(t.size, dtype=np.float32)
        _line_integral[_grid(t.size)](t.reshape(t.size), d)
        out[name] = d.copy_to_host().reshape(t.shape)
    return out
