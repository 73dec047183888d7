"""The parallel backprojection of :mod:`xraybag.engine.ct.backproject` as a CUDA kernel (numba.cuda).

:func:`bp_parallel_cuda` takes the arguments of :func:`~xraybag.engine.ct.backproject.bp_parallel`
(host arrays) and adds the same values to ``out``. One CUDA thread takes one pixel and one of the
``S * C`` values (slice and channel) that share its detector positions: consecutive threads read
consecutive values of the filtered projections, as the CPU kernel's inner SIMD loop does. Each
thread sums its angles in order in float32, with the CPU's float32 detector position, weight and
interpolation; the CPU kernel is compiled with fastmath, which lets LLVM reorder or fuse those
few operations, so the two agree to float32 rounding (a detector position that rounds to the
other side of a bin boundary moves its weight by an ulp, not its value). Pixels outside the
reconstruction circle (``rmax``) are left as they are, as on the CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

THREADS = 256  # threads per block


@cuda.jit
def _bp_parallel(qf, cos_t, sin_t, t0, dt, xs, ys, rmax, scale, out):
    """Thread ``t``: pixel ``(y, x) = divmod(t // K, nx)`` and value ``k = t % K`` (slice ``k //
    C``, channel ``k % C``) of ``qf`` (M, T, K) into ``out`` (C, S, ny, nx) (+=)."""
    t = cuda.grid(1)
    M = qf.shape[0]
    T = qf.shape[1]
    K = qf.shape[2]
    C = out.shape[0]
    ny = ys.shape[0]
    nx = xs.shape[0]
    if t >= ny * nx * K:
        return
    k = t % K
    p = t // K
    iy = p // nx
    ix = p % nx
    y = ys[iy]
    if y * y >= rmax * rmax:
        return
    dx = xs[1] - xs[0] if nx > 1 else 1.0
    half = math.sqrt(rmax * rmax - y * y)
    lo = int(math.ceil((-half - xs[0]) / dx))
    hi = int(math.floor((half - xs[0]) / dx)) + 1
    if ix < lo or ix >= hi:
        return
    fx = numba.float32(ix)
    acc = numba.float32(0.0)
    for m in range(M):
        c = cos_t[m]
        step = numba.float32(c * dx / dt)
        base = numba.float32((xs[0] * c + y * sin_t[m] - t0) / dt)
        f = base + fx * step
        i0 = int(f)
        if i0 < 0 or i0 >= T - 1:
            continue
        w = f - numba.float32(i0)
        v0 = qf[m, i0, k]
        acc += v0 + w * (qf[m, i0 + 1, k] - v0)
    s = k // C
    ch = k % C
    out[ch, s, iy, ix] += acc * scale


def bp_parallel_cuda(q, cos_t, sin_t, t0, dt, xs, ys, rmax, scale, out, z_off):
    """:func:`xraybag.engine.ct.backproject.bp_parallel` on the GPU: ``q`` (M, T, S, C) float32
    backprojected and added to ``out[c, z_off + s]``."""
    M, T, S, C = q.shape
    ny, nx = ys.size, xs.size
    n = ny * nx * S * C
    if n == 0 or M == 0:
        return
    d = cuda.to_device
    part = np.ascontiguousarray(out[:, z_off: z_off + S])
    d_out = d(part)
    _bp_parallel[(n + THREADS - 1) // THREADS, THREADS](
        d(np.ascontiguousarray(q, dtype=np.float32).reshape(M, T, S * C)),
        d(np.ascontiguousarray(cos_t, dtype=np.float64)), d(np.ascontiguousarray(sin_t, dtype=np.float64)),
        float(t0), float(dt), d(np.ascontiguousarray(xs, dtype=np.float64)),
        d(np.ascontiguousarray(ys, dtype=np.float64)), float(rmax), np.float32(scale), d_out)
    d_out.copy_to_host(part)
    out[:, z_off: z_off + S] = part
