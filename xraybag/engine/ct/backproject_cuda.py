"""The backprojections of :mod:`xraybag.engine.ct.backproject` as CUDA kernels (numba.cuda).

:func:`bp_cone_cuda` is the fan / cone backprojection of FDK and fan-beam FBP
(:func:`~xraybag.engine.ct.backproject.bp_cone`): one CUDA thread takes one voxel and one channel
and sums the views in order, with the CPU's float64 geometry, its float32 weights and float32
sums (the CPU kernel is compiled with fastmath, so the two agree to float32 rounding). Its loop
body is a copy of the CPU kernel's, which keeps it inline (as a shared helper it was about 5 %
slower there); the tests hold both to the same sums.

:func:`bp_parallel_cuda` takes the arguments of :func:`~xraybag.engine.ct.backproject.bp_parallel`
(host arrays) and adds the same values to ``out``. One CUDA thread takes one pixel and one of the
``S * C`` values (slice and channel) that share its detector positions: consecutive threads read
consecutive values of the filtered projections, as the CPU kernel's inner SIMD loop does. Each
thread sums its angles in order in float32, with the CPU's float32 detector position, weight and
interpolation; the CPU kernel is compiled with fastmath, which lets LLVM reorder or fuse those
few operations, so the two agree to float32 rounding (a detector position that rounds to the
other side of a bin boundary moves its weight by an ulp, not its value). Pixels outside the
reconstruction circle (``rmax``) are left as they are, as on the CPU. :func:`bp_parallel_device`
runs the same kernel on arrays already on the GPU (helical SSRB's filtered slabs, added into a
volume that stays there: :mod:`.ssrb_cuda`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.detect import on_device
from xraybag.engine.xray.trace_cuda import _DEVICE

THREADS = 256  # threads per block
_min2 = _DEVICE["min"]  # two-argument min / max (the CUDA target cannot compile the builtins)
_max2 = _DEVICE["max"]


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
    _add_on_gpu(_bp_parallel, n, out[:, z_off: z_off + S], (
        cuda.to_device(np.ascontiguousarray(q, dtype=np.float32).reshape(M, T, S * C)), _f64(cos_t), _f64(sin_t),
        float(t0), float(dt), _f64(xs), _f64(ys), float(rmax), np.float32(scale)))


def bp_parallel_device(qf, cos_t, sin_t, t0, dt, xs, ys, rmax, scale, out, z_off):
    """:func:`bp_parallel_cuda` on the GPU's arrays, nothing copied back: ``qf`` (M, T, S C)
    float32 device array (slice ``s``, channel ``c`` at ``s C + c``, i.e. ``q`` (M, T, S, C)
    flattened), backprojected and added to ``out[c, z_off + s]`` of the device array ``out``
    (C, nz, ny, nx) float32 in place. ``cos_t``, ``sin_t``, ``xs``, ``ys``: float64 device
    arrays (host arrays are copied up). The same kernel and sums as :func:`bp_parallel_cuda`."""
    M, _, K = qf.shape
    C = out.shape[0]
    S = K // C
    ny, nx = ys.shape[0], xs.shape[0]
    n = ny * nx * K
    if n == 0 or M == 0:
        return
    cos_t, sin_t, xs, ys = (a if on_device(a) else _f64(a) for a in (cos_t, sin_t, xs, ys))
    _bp_parallel[(n + THREADS - 1) // THREADS, THREADS](qf, cos_t, sin_t, float(t0), float(dt), xs, ys,
                                                        float(rmax), np.float32(scale), out[:, z_off: z_off + S])


@cuda.jit
def _bp_cone(q, cosb, sinb, zsrc, xs, ys, zs, sid, sdd, u0, du, v0, dv, curved, planar, scale, out):
    """Thread ``t``: voxel ``(iz, iy, ix)`` and channel ``ch`` (``t = ((iz ny + iy) nx + ix) C +
    ch``) of ``out`` (C, nz, ny, nx) (+=), from ``q`` (V, R, N, C)."""
    t = cuda.grid(1)
    V = q.shape[0]
    R = q.shape[1]
    N = q.shape[2]
    C = q.shape[3]
    nz = zs.shape[0]
    ny = ys.shape[0]
    nx = xs.shape[0]
    if t >= nz * ny * nx * C:
        return
    ch = t % C
    p = t // C
    ix = p % nx
    p = p // nx
    iy = p % ny
    iz = p // ny
    x = xs[ix]
    y = ys[iy]
    z = zs[iz]
    acc = numba.float32(0.0)
    for k in range(V):
        cb = cosb[k]
        sb = sinb[k]
        dzs = z - zsrc[k]
        lpar = sid - (x * cb + y * sb)
        wt = -x * sb + y * cb
        if curved:
            l2 = lpar * lpar + wt * wt
            u = sdd * math.atan2(wt, lpar)
            wgt = 1.0 / l2
            vv = dzs * sdd / math.sqrt(l2)
        else:
            u = sdd * wt / lpar
            wgt = (sid / lpar) ** 2
            vv = dzs * sdd / lpar
        fu = (u - u0) / du
        if fu < -0.5 or fu > N - 0.5:
            continue
        fu = _min2(_max2(fu, 0.0), N - 1.0)
        j0 = _min2(int(fu), N - 2) if N > 1 else 0
        wu = fu - j0
        if planar or R == 1:
            i0 = 0
            wv = 0.0
            i1 = 0
        else:
            fv = (vv - v0) / dv
            if fv < -0.5 or fv > R - 0.5:
                continue
            fv = _min2(_max2(fv, 0.0), R - 1.0)
            i0 = _min2(int(fv), R - 2)
            wv = fv - i0
            i1 = i0 + 1
        j1 = j0 + 1 if N > 1 else 0
        w00 = numba.float32(wgt * (1.0 - wu) * (1.0 - wv))
        w01 = numba.float32(wgt * wu * (1.0 - wv))
        w10 = numba.float32(wgt * (1.0 - wu) * wv)
        w11 = numba.float32(wgt * wu * wv)
        acc += (w00 * q[k, i0, j0, ch] + w01 * q[k, i0, j1, ch]
                + w10 * q[k, i1, j0, ch] + w11 * q[k, i1, j1, ch])
    out[ch, iz, iy, ix] += acc * scale


def bp_cone_cuda(q, cosb, sinb, zsrc, xs, ys, zs, sid, sdd, u0, du, v0, dv, curved, planar, scale, out):
    """:func:`xraybag.engine.ct.backproject.bp_cone` on the GPU: ``q`` (V, R, N, C) float32
    backprojected and added to ``out`` (C, nz, ny, nx)."""
    n = out.size
    if n == 0 or q.shape[0] == 0:
        return
    _add_on_gpu(_bp_cone, n, out, (
        cuda.to_device(np.ascontiguousarray(q, dtype=np.float32)), _f64(cosb), _f64(sinb), _f64(zsrc), _f64(xs),
        _f64(ys), _f64(zs), float(sid), float(sdd), float(u0), float(du), float(v0), float(dv), bool(curved),
        bool(planar), np.float32(scale)))


def _add_on_gpu(kernel, n: int, out: np.ndarray, args: tuple) -> None:
    """Run ``kernel`` on ``n`` threads with ``args`` and a GPU copy of ``out`` (it adds to it),
    then write the result back into ``out`` (a view of the caller's volume is updated in place)."""
    d_out = cuda.to_device(np.ascontiguousarray(out))
    kernel[(n + THREADS - 1) // THREADS, THREADS](*args, d_out)
    out[...] = d_out.copy_to_host()


def _f64(a):
    """``a`` as a contiguous float64 array on the GPU."""
    return cuda.to_device(np.ascontiguousarray(a, dtype=np.float64))
