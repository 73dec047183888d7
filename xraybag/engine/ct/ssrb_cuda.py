"""Helical single-slice rebinning (SSRB) and its ramp filter as CUDA kernels (numba.cuda): the
per-slab work of :func:`xraybag.engine.ct.recon.helical_ssrb` with ``backend="cuda"``.

A slab's data stays on the GPU from the views to the volume (:class:`SSRBDevice`):

* the views: a ring of ``cap`` views per channel on the GPU (view ``k`` in slot ``k % cap``);
  each slab copies up only the views it needs that are not there yet, one channel at a time,
  from the host window of the view stream (consecutive slabs share most of their views);
* the plan: :func:`_plan` is :func:`~xraybag.engine.ct.backproject.ssrb_plan`, one thread per
  (slice, parallel angle, t), writing the same (2, S, M, T) arrays on the GPU; :func:`_used`
  reduces its view indices to the range :func:`~xraybag.engine.ct.backproject.used_views` gives
  (two ints come back, to check the view bound and say which views to copy up);
* the gather: :func:`_gather` is :func:`~xraybag.engine.ct.backproject.ssrb_gather`, one thread
  per (slice, angle, t) and all channels, into ``p`` (S, C, M, T) float32;
* the ramp filter: :func:`_ramp` is a direct linear convolution, one thread per output sample:
  ``q[j] = sum_i p[i] h[j - i]`` for ``i = 0 .. T - 1`` in order, in float64, with the float64
  spatial taps ``h[d]`` (``|d| <= T - 1``) of the CPU's response (:func:`ramp_taps`), written as
  the backprojection reads it, ``q`` (M, T, S C) float32. The CPU filters by FFT (zero padded,
  so the same linear convolution); the two agree to the FFT's float32 rounding (about 1e-6 of
  the largest value of a line);
* the backprojection: :func:`~xraybag.engine.ct.backproject_cuda.bp_parallel_device` adds into
  the volume, which is zeroed on the GPU and stays there until :meth:`SSRBDevice.volume`.

The plan's and the gather's float64 arithmetic is the CPU kernels' operation by operation (float32
operands widened as numba widens them on the CPU); their products go through libdevice's
``dmul_rn`` on a real GPU, so NVVM cannot fuse them into multiply-adds, and the plan and the
gathered samples are the CPU's to the bit (under the simulator as well). The filter's sums are
left to NVVM (a fused multiply-add only moves their rounding).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda
from scipy import fft as sfft

from xraybag.engine.ct.backproject_cuda import bp_parallel_device
from xraybag.engine.xray.detect import on_device

THREADS = 256  # threads per block
USED_THREADS = 256 * 64  # threads of the view-range reduction and the zeroing (each a strided share)


def _plain_mul(a, b):
    return a * b


if numba.config.ENABLE_CUDASIM:  # Python floats: a product is a product (and a plain call is cheap)
    _mul = _plain_mul
else:  # a product NVVM never fuses into a multiply-add (the CPU kernels round each product)
    from numba.cuda import libdevice

    _mul = libdevice.dmul_rn

_F64 = numba.float64  # float32 operands widened explicitly (the simulator's numpy would not)


def ramp_taps(resp: np.ndarray, n: int) -> np.ndarray:
    """The spatial taps ``h[d]``, ``d = -(n - 1) .. n - 1`` (index ``d + n - 1``), float64, of the
    filter :func:`~xraybag.engine.ct.filters.filter_axis` applies with ``resp`` to lines of ``n``
    samples: the kernel ``irfft(resp)`` (taken from ``resp`` rounded to float32, as filter_axis
    multiplies it) on its ``2 (resp.size - 1)`` samples. Zero padded to at least ``2 n - 1``
    samples, the FFT's circular convolution is the linear one with exactly these taps."""
    n_pad = 2 * (resp.size - 1)
    if n_pad < 2 * n - 1:
        raise ValueError(f"a response for {n_pad} samples cannot filter lines of {n} without wrapping")
    k = sfft.irfft(np.asarray(resp, dtype=np.float32).astype(np.float64), n=n_pad)
    return np.ascontiguousarray(k[np.arange(-(n - 1), n) % n_pad])


@cuda.jit
def _plan(zview, z0s, dtheta, dbeta, gam, zc, v0, dv, R, V, h, hv, kk, wk, row, par, wz):
    """Thread ``t`` = (slice s, angle m, t_j) of the plan (2, S, M, T): the loop body of
    :func:`~xraybag.engine.ct.backproject.ssrb_plan` for one ``j``."""
    t = cuda.grid(1)
    S = kk.shape[1]
    M = kk.shape[2]
    T = kk.shape[3]
    if t >= S * M * T:
        return
    j = t % T
    m = (t // T) % M
    s = t // (T * M)
    npi = math.pi / dbeta  # views per half turn
    zfirst = zview[0]
    z0 = z0s[s]
    am = _mul(_F64(m), dtheta) / dbeta
    g = gam[j]
    c = zc[j]
    ka = (z0 - hv - zfirst) / h
    kb = (z0 + hv - zfirst) / h
    if ka > kb:
        ka, kb = kb, ka
    marg = abs(g) / dbeta + 2.0
    n_lo = math.floor((ka - marg - am) / npi)
    n_hi = math.ceil((kb + marg - am) / npi)
    best_b = -1e30
    best_a = 1e30
    kb_k = -1
    ka_k = -1
    kb_w = 0.0
    ka_w = 0.0
    kb_r = 0
    ka_r = 0
    kb_p = 0
    ka_p = 0
    for n in range(n_lo, n_hi + 1):
        p = n & 1
        gn = -g if p else g
        kf = am + _mul(_F64(n), npi) + gn / dbeta
        if kf < 0.0 or kf > V - 1:
            continue
        k0 = int(kf)
        k0 = V - 2 if k0 > V - 2 else k0  # noqa: FURB136 - no builtin min / max on the CUDA target
        w = kf - k0
        zsrc = _mul(zview[k0], 1.0 - w) + _mul(zview[k0 + 1], w)
        fi = ((z0 - zsrc) / c - v0) / dv
        if fi >= R - 1:
            ib = R - 1
            ia = -1
        elif fi < 0:
            ib = -1
            ia = 0
        elif R > 1:
            ib = int(fi)
            ib = R - 2 if ib > R - 2 else ib  # noqa: FURB136
            ia = ib + 1
        else:
            ib = 0
            ia = -1
        if ib >= 0:
            zb = zsrc + _mul(v0 + _mul(_F64(ib), dv), c)
            if zb > best_b:
                best_b = zb
                kb_k = k0
                kb_w = w
                kb_r = ib
                kb_p = p
        if ia >= 0:
            za = zsrc + _mul(v0 + _mul(_F64(ia), dv), c)
            if za < best_a:
                best_a = za
                ka_k = k0
                ka_w = w
                ka_r = ia
                ka_p = p
    half = _mul(_mul(0.5, dv), c)
    wb = 0.0
    wa = 0.0
    if kb_k >= 0 and ka_k >= 0:
        span = best_a - best_b
        wa = (z0 - best_b) / span if span > 0 else 0.5
        wb = 1.0 - wa
    elif kb_k >= 0 and z0 - best_b <= half:  # (the CPU's nested ifs: ka_k < 0 here either way)
        wb = 1.0
    elif ka_k >= 0 and best_a - z0 <= half:
        wa = 1.0
    kk[0, s, m, j] = kb_k if wb > 0 else -1
    kk[1, s, m, j] = ka_k if wa > 0 else -1
    wk[0, s, m, j] = kb_w
    wk[1, s, m, j] = ka_w
    row[0, s, m, j] = kb_r
    row[1, s, m, j] = ka_r
    par[0, s, m, j] = kb_p
    par[1, s, m, j] = ka_p
    wz[0, s, m, j] = wb
    wz[1, s, m, j] = wa


@cuda.jit
def _used(kk, lohi):
    """The smallest and largest entry >= 0 of ``kk`` (flat) into ``lohi`` (atomic min / max; it
    starts at (2**31 - 1, -1)): thread ``t`` scans entries ``t, t + n_threads, ...``."""
    t = cuda.grid(1)
    step = cuda.gridsize(1)
    lo = 2147483647
    hi = -1
    for i in range(t, kk.shape[0], step):
        v = kk[i]
        if v >= 0:
            lo = v if v < lo else lo  # noqa: FURB136
            hi = v if v > hi else hi  # noqa: FURB136
    if hi >= 0:
        cuda.atomic.min(lohi, 0, lo)
        cuda.atomic.max(lohi, 1, hi)


@cuda.jit
def _zero(flat):
    """``flat`` = 0, thread ``t`` setting entries ``t, t + n_threads, ...``."""
    for i in range(cuda.grid(1), flat.shape[0], cuda.gridsize(1)):
        flat[i] = 0


@cuda.jit
def _gather(views, cap, kk, wk, row, par, wz, col, p):
    """Thread ``t`` = (slice s, angle m, t_j): ``p[s, c, m, j]`` for every channel ``c``, the loop
    body of :func:`~xraybag.engine.ct.backproject.ssrb_gather` (the same float64 products and sums,
    each channel's two terms added to 0.0 in order); view ``k`` is read from slot ``k % cap`` of
    ``views`` (C, cap, R, N)."""
    t = cuda.grid(1)
    S = kk.shape[1]
    M = kk.shape[2]
    T = kk.shape[3]
    if t >= S * M * T:
        return
    C = views.shape[0]
    N = views.shape[3]
    j = t % T
    m = (t // T) % M
    s = t // (T * M)
    for ch in range(C):
        val = 0.0
        for a in range(2):
            k0 = kk[a, s, m, j]
            if k0 < 0:
                continue
            fc = col[par[a, s, m, j], j]
            if fc < -0.5 or fc > N - 0.5:
                continue
            fc = 0.0 if fc < 0.0 else fc  # noqa: FURB136
            fc = N - 1.0 if fc > N - 1.0 else fc  # noqa: FURB136
            c0 = int(fc)
            c0 = N - 2 if c0 > N - 2 else c0  # noqa: FURB136
            wc = fc - c0
            w = _F64(wk[a, s, m, j])
            r = row[a, s, m, j]
            z = _F64(wz[a, s, m, j])
            i0 = k0 % cap
            i1 = i0 + 1 if i0 + 1 < cap else 0
            p0 = _mul(_F64(views[ch, i0, r, c0]), 1.0 - wc) + _mul(_F64(views[ch, i0, r, c0 + 1]), wc)
            p1 = _mul(_F64(views[ch, i1, r, c0]), 1.0 - wc) + _mul(_F64(views[ch, i1, r, c0 + 1]), wc)
            val += _mul(z, _mul(p0, 1.0 - w) + _mul(p1, w))
        p[s, ch, m, j] = val


@cuda.jit
def _ramp(p, taps, q):
    """Thread ``t`` = sample ``j`` of line (s, c, m) of ``p`` (S, C, M, T) (``j`` fastest: a warp
    reads one sample of its line and consecutive taps): ``q[m, j, s C + c] = sum_i p[s, c, m, i]
    taps[j - i + T - 1]``, ``i`` ascending, summed in float64."""
    t = cuda.grid(1)
    S = p.shape[0]
    C = p.shape[1]
    M = p.shape[2]
    T = p.shape[3]
    if t >= S * C * M * T:
        return
    j = t % T
    line = t // T
    m = line % M
    sc = line // M  # s * C + c
    s = sc // C
    ch = sc % C
    acc = 0.0
    off = j + T - 1
    for i in range(T):
        acc += _F64(p[s, ch, m, i]) * taps[off - i]
    q[m, j, sc] = acc


def _launch(kernel, n: int, *args) -> None:
    if n > 0:
        kernel[(n + THREADS - 1) // THREADS, THREADS](*args)


def filter_lines_cuda(p, taps):
    """:func:`_ramp` on ``p`` (S, C, M, T) float32 (host or device) with ``taps`` (2 T - 1) float64:
    a device array (M, T, S C) float32."""
    S, C, M, T = p.shape
    d_p = p if on_device(p) else cuda.to_device(np.ascontiguousarray(p, dtype=np.float32))
    d_q = cuda.device_array((M, T, S * C), dtype=np.float32)
    _launch(_ramp, S * C * M * T, d_p, cuda.to_device(np.ascontiguousarray(taps, dtype=np.float64)), d_q)
    return d_q


class SSRBDevice:
    """The GPU side of helical SSRB: the scan's constants, a ring of ``cap`` views per channel, the
    slabs' plan and work arrays, and the volume ``(C, nz, ny, nx)`` (zeros at the start) that each
    slab's backprojection adds to.

    Per slab: :meth:`plan` (on the GPU; returns the views used, ``(lo, hi)``, or (0, -1)),
    :meth:`load` (the views ``[a, b)`` into the ring, copying up those not there yet), then
    :meth:`filtered` (gather and ramp filter) and :meth:`backproject`; :meth:`volume` copies the
    volume back. ``copied_views`` counts the views copied up (per channel)."""

    def __init__(self, zview, gam, zc, col, taps, cos_t, sin_t, xs, ys, zg, n_channels: int,
                 rows: int, cols: int, cap: int):
        def f64(a):
            return cuda.to_device(np.ascontiguousarray(a, dtype=np.float64))

        self.zview, self.gam, self.zc, self.col, self.taps = (f64(a) for a in (zview, gam, zc, col, taps))
        self.cos_t, self.sin_t, self.xs, self.ys, self.zg = (f64(a) for a in (cos_t, sin_t, xs, ys, zg))
        self.C, self.T = int(n_channels), int(np.size(gam))
        self.M = int(np.size(cos_t))
        self.cap = max(2, int(cap))
        self.views = cuda.device_array((self.C, self.cap, int(rows), int(cols)), dtype=np.float32)
        self.lo = self.hi = 0  # the ring holds views [lo, hi)
        self.copied_views = 0
        self.out = cuda.device_array((self.C, np.size(zg), np.size(ys), np.size(xs)), dtype=np.float32)
        flat = self.out.reshape(self.out.size)
        n = min(USED_THREADS, (flat.size + 3) // 4)  # zeros made on the GPU, nothing copied up
        if n:
            _zero[(n + THREADS - 1) // THREADS, THREADS](flat)
        self._bufs: dict[int, tuple] = {}
        self.S = 0
        self.z_first = 0

    def _work(self, S: int) -> tuple:
        if S not in self._bufs:
            shape = (2, S, self.M, self.T)
            plan = tuple(cuda.device_array(shape, dtype=d) for d in (np.int32, np.float32, np.int32, np.int8,
                                                                          np.float32))
            p = cuda.device_array((S, self.C, self.M, self.T), dtype=np.float32)
            q = cuda.device_array((self.M, self.T, S * self.C), dtype=np.float32)
            self._bufs[S] = (plan, p, q)
        return self._bufs[S]

    def plan(self, z_first: int, S: int, dtheta, dbeta, v0, dv, R, V, h, hv) -> tuple[int, int]:
        """The SSRB plan of grid slices ``z_first .. z_first + S - 1`` on the GPU; the views it
        reads lie in ``[lo, hi + 2)``: returns ``(lo, hi)`` (``(0, -1)`` when it reads none)."""
        self.S, self.z_first = int(S), int(z_first)
        (kk, wk, row, par, wz), _, _ = self._work(self.S)
        _launch(_plan, self.S * self.M * self.T, self.zview, self.zg[z_first: z_first + S], float(dtheta),
                float(dbeta), self.gam, self.zc, float(v0), float(dv), int(R), int(V), float(h), float(hv),
                kk, wk, row, par, wz)
        flat = kk.reshape(kk.size)
        lohi = cuda.to_device(np.array([2**31 - 1, -1], dtype=np.int64))
        n = min(USED_THREADS, (flat.size + 15) // 16)
        if flat.size:
            _used[(n + THREADS - 1) // THREADS, THREADS](flat, lohi)
        lo, hi = (int(v) for v in lohi.copy_to_host())
        return (lo, hi) if hi >= 0 else (0, -1)

    def load(self, src, a: int, b: int) -> None:
        """Views ``[a, b)`` (``b - a <= cap``) of every channel of ``src`` (a view stream's
        ``window``) into the ring: only those not there yet are copied up, straight from the
        host window (at most two contiguous copies per channel)."""
        if b <= a:
            return
        if b - a > self.cap:
            raise ValueError(f"views {a}..{b} do not fit a ring of {self.cap}")
        if self.lo <= a and b <= self.hi:
            return
        if self.lo <= a <= self.hi:  # a forward extension: the views from hi on are new
            first = self.hi
            self.hi = b
            self.lo = max(self.lo, b - self.cap)
        else:
            first = a
            self.lo, self.hi = a, b
        win = src.window(first, b)
        for c in range(self.C):
            host = win[c]
            k = first
            while k < b:
                slot = k % self.cap
                n = min(b - k, self.cap - slot)
                self.views[c, slot: slot + n].copy_to_device(np.ascontiguousarray(host[k - first: k - first + n]))
                k += n
        self.copied_views += b - first

    def filtered(self):
        """The gather (every channel) and the ramp filter of the slab planned last: ``q`` (M, T,
        S C) float32 on the GPU (valid until the next slab of the same size)."""
        (kk, wk, row, par, wz), p, q = self._work(self.S)
        n = self.S * self.M * self.T
        _launch(_gather, n, self.views, self.cap, kk, wk, row, par, wz, self.col, p)
        _launch(_ramp, n * self.C, p, self.taps, q)
        return q

    def gathered(self) -> np.ndarray:
        """The gathered samples ``p`` (S, C, M, T) of the slab planned last, on the host (tests)."""
        (kk, wk, row, par, wz), p, _ = self._work(self.S)
        _launch(_gather, self.S * self.M * self.T, self.views, self.cap, kk, wk, row, par, wz, self.col, p)
        return p.copy_to_host()

    def plan_arrays(self) -> tuple[np.ndarray, ...]:
        """The plan (kk, wk, row, par, wz) of the slab planned last, on the host (tests)."""
        return tuple(a.copy_to_host() for a in self._work(self.S)[0])

    def backproject(self, q, t0: float, dt: float, rmax: float, scale) -> None:
        """``q`` (M, T, S C) backprojected into the volume's slices ``z_first ..``."""
        bp_parallel_device(q, self.cos_t, self.sin_t, float(t0), float(dt), self.xs, self.ys, float(rmax),
                           np.float32(scale), self.out, self.z_first)

    def volume(self, out: np.ndarray | None = None) -> np.ndarray:
        """The volume (C, nz, ny, nx) float32 on the host (into ``out`` when given)."""
        return self.out.copy_to_host(out) if out is not None else self.out.copy_to_host()
