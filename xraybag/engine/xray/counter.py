"""Counter-based noise draws: every pixel's draws are a function of (key, view, pixel, channel),
so they come out the same whatever runs them, in whatever order: numba's threads, chunks of
views of any size, or a GPU (:mod:`.counter_cuda` compiles these functions for CUDA).

The bits are Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC11): a 128-bit counter and a 64-bit key give four 32-bit words through ten rounds of
32 x 32 -> 64-bit products and xors. The tests check it against the Random123 known-answer
vectors. For channel ``c`` of pixel ``p`` of view ``v`` the counter is ``(p, v, 4 c, 0)``; its
four words give

- ``w0``: the first word of the quantum-noise normal,
- ``w1``: the first word of the electronic-noise normal,
- ``w2, w3``: the Poisson count of a dim pixel (a 53-bit uniform for inversion, or PTRS's first
  try).

Normals come from the same ziggurat as :mod:`.normals` (Marsaglia and Tsang, 256 layers, 32-bit
words, its tables): a word is accepted at once about 98.8 % of the time; a wedge or the tail
takes more words, from the counters ``(p, v, 4 c + 1, j)`` (quantum) or ``(p, v, 4 c + 2, j)``
(electronic), ``j = 0, 1, ...``. Poisson counts below :data:`~.detect.NORMAL_ABOVE` quanta are
drawn by inversion under :data:`INVERSION_BELOW` quanta, else by Hoermann's PTRS (numpy's
method for these means), whose rejected tries take words from ``(p, v, 4 c + 3, j)``.

The key is two 32-bit words taken from the caller's generator (:func:`draws_from`), once per
scan: a seed gives the same scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from xraybag.engine.xray.normals import FI, KI, WI, R

_MASK = np.uint64(0xFFFFFFFF)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_S32 = np.uint64(32)
_INV24 = 1.0 / 16777216.0
_INV53 = 1.0 / 9007199254740992.0
_INV32 = 1.0 / 4294967296.0
#: quanta from which a draw is Poisson's normal approximation (the value of
#: :data:`xraybag.engine.xray.detect.NORMAL_ABOVE`)
NORMAL_ABOVE = 400.0


@dataclass(frozen=True)
class CounterDraws:
    """Where a detection's counter-based draws start: the key, and the index of its first view
    (a chunk of CT views passes its first view's index in the scan)."""

    key0: int
    key1: int
    first_view: int = 0

    def at(self, first_view: int) -> CounterDraws:
        return CounterDraws(self.key0, self.key1, int(first_view))


def draws_from(rng: np.random.Generator, first_view: int = 0) -> CounterDraws:
    """A key of two 32-bit words from ``rng`` (advancing it by two draws)."""
    k0, k1 = (int(x) for x in rng.integers(0, 1 << 32, size=2, dtype=np.uint64))
    return CounterDraws(k0, k1, int(first_view))


@numba.njit(cache=True, nogil=True, inline="always")
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter ``(c0, c1, c2, c3)`` and key ``(k0, k1)`` (32-bit values
    held in uint64): four 32-bit words (uint64)."""
    c0 = np.uint64(c0) & _MASK
    c1 = np.uint64(c1) & _MASK
    c2 = np.uint64(c2) & _MASK
    c3 = np.uint64(c3) & _MASK
    k0 = np.uint64(k0) & _MASK
    k1 = np.uint64(k1) & _MASK
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = ((p1 >> _S32) ^ c1 ^ k0) & _MASK
        n2 = ((p0 >> _S32) ^ c3 ^ k1) & _MASK
        c1 = p1 & _MASK
        c3 = p0 & _MASK
        c0 = n0
        c2 = n2
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@numba.njit(cache=True, nogil=True, inline="always")
def ziggurat(w, c0, c1, c2, k0, k1):
    """A float32 standard normal from the word ``w``, and when it is not accepted at once, from
    the words of the counters ``(c0, c1, c2, j)``, ``j = 0, 1, ...`` (four a counter, in order):
    the layer's rectangle here, the rest (about 1.2 % of the draws) in :func:`ziggurat_rest`."""
    idx = np.int64(w & np.uint64(0xFF))
    rabs = np.int64((w >> np.uint64(9)) & np.uint64(0x7FFFFF))
    if rabs < np.int64(KI[idx]):
        neg = (w >> np.uint64(8)) & np.uint64(1)
        return np.float32(rabs) * WI[idx] * np.float32(1.0 - 2.0 * np.float64(neg))
    return ziggurat_rest(w, c0, c1, c2, k0, k1)


@numba.njit(cache=True, nogil=True)
def ziggurat_rest(w, c0, c1, c2, k0, k1):
    """:func:`ziggurat` from the word ``w`` on: the rectangle's test again, then a wedge's or the
    tail's, with the further words."""
    j = 0
    q = 4  # words of the current block used
    b0 = b1 = b2 = b3 = np.uint64(0)
    inv24 = np.float32(_INV24)
    r_f = np.float32(R)
    inv_r = np.float32(1.0 / R)
    while True:
        idx = np.int64(w & np.uint64(0xFF))
        rabs = np.int64((w >> np.uint64(9)) & np.uint64(0x7FFFFF))
        neg = (w >> np.uint64(8)) & np.uint64(1)
        x = np.float32(rabs) * WI[idx] * np.float32(1.0 - 2.0 * np.float64(neg))  # no branch
        if rabs < np.int64(KI[idx]):
            return x
        if q == 4:
            b0, b1, b2, b3 = philox(c0, c1, c2, j, k0, k1)
            j += 1
            q = 0
        v = b0 if q == 0 else b1 if q == 1 else b2 if q == 2 else b3
        q += 1
        if idx != 0:  # a wedge: accept under the density, else a new word
            u = np.float32(v >> np.uint64(8)) * inv24
            if (FI[idx - 1] - FI[idx]) * u + FI[idx] < np.float32(math.exp(np.float32(-0.5) * x * x)):
                return x
            if q == 4:
                b0, b1, b2, b3 = philox(c0, c1, c2, j, k0, k1)
                j += 1
                q = 0
            w = b0 if q == 0 else b1 if q == 1 else b2 if q == 2 else b3
            q += 1
            continue
        # the tail beyond R: Marsaglia's exponential method, two words a try
        while True:
            if q >= 3:
                b0, b1, b2, b3 = philox(c0, c1, c2, j, k0, k1)
                j += 1
                q = 0
            v1 = b0 if q == 0 else b1 if q == 1 else b2
            v2 = b1 if q == 0 else b2 if q == 1 else b3
            q += 2
            u1 = np.float32(v1 >> np.uint64(8)) * inv24
            u2 = np.float32(v2 >> np.uint64(8)) * inv24
            xx = -inv_r * np.float32(math.log1p(-u1))
            yy = -np.float32(math.log1p(-u2))
            if yy + yy > xx * xx:
                return -(r_f + xx) if neg else r_f + xx


#: below this many quanta a Poisson count is drawn by inversion, from it on by PTRS
INVERSION_BELOW = 10.0


@numba.njit(cache=True, nogil=True, inline="always")
def _unit(w):
    """A 32-bit word as a uniform in (0, 1)."""
    return (np.float64(w) + 0.5) * _INV32


@numba.njit(cache=True, nogil=True)
def poisson(lam, w2, w3, c0, c1, c2, k0, k1):
    """A Poisson(``lam``) count (float64) for ``lam`` under :data:`NORMAL_ABOVE`. Below
    :data:`INVERSION_BELOW`: by inversion at the 53-bit uniform of the words ``w2, w3`` (the
    least ``k`` whose cumulative probability reaches it; the terms ``p_k = p_(k-1) lam / k``
    from ``exp(-lam)``). From it on: Hoermann's transformed rejection with squeeze (PTRS,
    "The transformed rejection method for generating Poisson random variables", Insurance:
    Mathematics and Economics 12, 1993), its first try from ``w2, w3`` (32 bits each), the
    others from the counters ``(c0, c1, c2, j)``, two tries a counter."""
    if lam < INVERSION_BELOW:
        u = (np.float64(w2 >> np.uint64(5)) * 67108864.0 + np.float64(w3 >> np.uint64(6)) + 0.5) * _INV53
        p = math.exp(-lam)
        s = p
        k = 0.0
        while s < u and k < 200.0:  # 200: past any u < 1 - 2^-53 (the rounding of s)
            k += 1.0
            p *= lam / k
            s += p
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    x = w2
    y = w3
    j = 0
    q = 4  # words of the current counter used
    b0 = b1 = b2 = b3 = np.uint64(0)
    while True:
        u = _unit(x) - 0.5
        v = _unit(y)
        us = 0.5 - abs(u)
        k = float(math.floor((2.0 * a / us + b) * u + lam + 0.43))
        if us >= 0.07 and v <= vr:
            return k
        if k >= 0.0 and (us >= 0.013 or v <= us) and (
                math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
                <= -lam + k * loglam - math.lgamma(k + 1.0)):
            return k
        if q == 4:
            b0, b1, b2, b3 = philox(c0, c1, c2, j, k0, k1)
            j += 1
            q = 0
        x = b0 if q == 0 else b2
        y = b1 if q == 0 else b3
        q += 2


@numba.njit(cache=True, nogil=True, inline="always")
def moments(m, v):
    """(``lambda = m^2 / v`` quanta, one quantum's weight ``v / m``) of a signal of mean ``m``
    and variance ``v``; (0, 0) where either is not positive."""
    ok = (m > 0.0) & (v > 0.0)
    scale = v / m if ok else 0.0
    lam = m / scale if ok else 0.0
    return lam, scale


@numba.njit(cache=True, nogil=True, inline="always")
def count(lam, sl, z, w2, w3, c0, c1, c2, k0, k1):
    """The quantum count of ``lam`` quanta (``sl = sqrt(lam)``): Poisson (:func:`poisson`, from
    the words ``w2, w3`` and the counters ``(c0, c1, c2, j)``) under :data:`NORMAL_ABOVE`, else
    ``max(0, floor(lambda + sqrt(lambda) z + 1/2))``."""
    if lam < NORMAL_ABOVE:
        return poisson(lam, w2, w3, c0, c1, c2, k0, k1)
    return max(float(math.floor(np.float64(z) * sl + lam + 0.5)), 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def quantum(m, v, ref, z, w2, w3, c0, c1, c2, k0, k1):
    """A signal of mean ``m`` and variance ``v`` divided by ``ref``: ``k v / m / ref`` with ``k``
    the :func:`count` of :func:`moments`' quanta."""
    lam, scale = moments(m, v)
    return count(lam, math.sqrt(lam), z, w2, w3, c0, c1, c2, k0, k1) * scale / ref


@numba.njit(cache=True, nogil=True, inline="always")
def draws(w0, w1, p, view, c, k0, k1, need_q, need_e):
    """Channel ``c``'s normals of pixel ``p`` of view ``view`` from the first two words of its
    counter ``(p, view, 4 c, 0)``: (quantum, electronic); one not needed is 0 (no words
    drawn for it)."""
    s = 4 * c
    zq = ziggurat(w0, p, view, s + 1, k0, k1) if need_q else np.float32(0.0)
    ze = ziggurat(w1, p, view, s + 2, k0, k1) if need_e else np.float32(0.0)
    return zq, ze


@numba.njit(cache=True, nogil=True, inline="always")
def noise_pixel(i, p, view, w0, w1, w2, w3, sums, c_mean, c_var, extra, q0, ref, c, k0, k1,
                out, ze):
    """Element ``i`` of a stack of views, pixel ``p`` of view ``view`` (counted in the scan),
    channel ``c``, from its counter's words: its quantum draw divided by ``ref`` into ``out[i]``
    (when ``out`` has elements) from the mean ``sums[i, c_mean]`` and the variance
    ``sums[i, c_var]`` (plus ``extra[i]`` and its variance ``extra[i] q0`` when ``extra`` has
    elements), and its electronic normal into ``ze[i]`` (when ``ze`` has elements)."""
    need_q = out.shape[0] > 0
    need_e = ze.shape[0] > 0
    zq, z_e = draws(w0, w1, p, view, c, k0, k1, need_q, need_e)
    if need_q:
        m = sums[i, c_mean]
        v = sums[i, c_var]
        if extra.shape[0] > 0:
            e = extra[i]
            v = v + e * q0
            m = m + e
        out[i] = quantum(m, v, ref, zq, w2, w3, p, view, 4 * c + 3, k0, k1)
    if need_e:
        ze[i] = z_e


@numba.njit(cache=True, nogil=True, inline="always")
def _rectangle(w):
    """:func:`ziggurat`'s first step on the word ``w``, without a branch: (the normal its layer's
    rectangle gives, whether that value is not accepted at once)."""
    idx = w & np.uint64(0xFF)
    rabs = np.int64((w >> np.uint64(9)) & np.uint64(0x7FFFFF))
    neg = (w >> np.uint64(8)) & np.uint64(1)
    x = np.float32(rabs) * WI[idx] * np.float32(1.0 - 2.0 * np.float64(neg))
    return x, rabs >= np.int64(KI[idx])


@numba.njit(cache=True, nogil=True)
def _normals(words, row, seg, z, slow):
    """The rectangle's step of :func:`ziggurat` for the words ``words[row, :seg]``: the normals
    into ``z[:seg]``, and ``slow[:seg]`` set where a word is not accepted at once (about 1.2 %;
    :func:`ziggurat_rest` finishes those)."""
    for t in range(seg):
        z[t], slow[t] = _rectangle(words[row, t])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _noise_block(b, block, sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
                 out, ze, words, lam, scale, sl, zq, slow_q, slow_e):
    """Elements ``[b block, (b + 1) block)``, a view's run of pixels at a time: :func:`noise_pixel`'s
    numbers, in whole-block loops without branches: the counters' words, the quanta's
    :func:`moments` (from contiguous copies of the two columns; IEEE division without Python's
    zero checks, which would keep the loop from vectorising) and :func:`count`'s normal
    approximation, which the compiler vectorises, and the normals' first step (:func:`_normals`;
    its table look-ups keep it scalar) for every pixel; the few draws that need more (a normal
    not accepted at once, a Poisson count under :data:`NORMAL_ABOVE` quanta) are then redone one
    by one."""
    n = sums.shape[0]
    i0 = b * block
    i1 = min(n, i0 + block)
    need_q = out.shape[0] > 0
    need_e = ze.shape[0] > 0
    has_extra = extra.shape[0] > 0
    i = i0
    while i < i1:
        view = i // per_view
        p0 = i - view * per_view
        seg = min(i1 - i, per_view - p0)
        v = first_view + view
        s = 4 * c
        for t in range(seg):
            w0, w1, w2, w3 = philox(p0 + t, v, s, 0, k0, k1)
            words[0, t] = w0
            words[1, t] = w1
            words[2, t] = w2
            words[3, t] = w3
        if need_q:
            for t in range(seg):  # the columns, contiguous (lam and scale as scratch)
                lam[t] = sums[i + t, c_mean]
                scale[t] = sums[i + t, c_var]
            if has_extra:
                for t in range(seg):
                    e = extra[i + t]
                    scale[t] = scale[t] + e * q0
                    lam[t] = lam[t] + e
            for t in range(seg):
                lam[t], scale[t] = moments(lam[t], scale[t])
                sl[t] = math.sqrt(lam[t])
            _normals(words, 0, seg, zq, slow_q)
        if need_e:
            _normals(words, 1, seg, ze[i:], slow_e)
        for t in range(seg):
            if need_q and slow_q[t]:
                zq[t] = ziggurat_rest(words[0, t], p0 + t, v, s + 1, k0, k1)
            if need_e and slow_e[t]:
                ze[i + t] = ziggurat_rest(words[1, t], p0 + t, v, s + 2, k0, k1)
        if need_q:
            for t in range(seg):  # count()'s normal approximation, (count * scale) / ref
                k = max(float(math.floor(np.float64(zq[t]) * sl[t] + lam[t] + 0.5)), 0.0)
                out[i + t] = k * scale[t] / ref
            for t in range(seg):
                if lam[t] < NORMAL_ABOVE:
                    k = poisson(lam[t], words[2, t], words[3, t], p0 + t, v, s + 3, k0, k1)
                    out[i + t] = k * scale[t] / ref
        i += seg


_BLOCK = 4096


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _noise_threads(sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
                   out, ze):
    n = sums.shape[0]
    for b in numba.prange((n + _BLOCK - 1) // _BLOCK):
        words = np.empty((4, _BLOCK), dtype=np.uint64)
        lam = np.empty(_BLOCK)
        scale = np.empty(_BLOCK)
        sl = np.empty(_BLOCK)
        zq = np.empty(_BLOCK, dtype=np.float32)
        slow_q = np.empty(_BLOCK, dtype=np.bool_)
        slow_e = np.empty(_BLOCK, dtype=np.bool_)
        _noise_block(b, _BLOCK, sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
                     out, ze, words, lam, scale, sl, zq, slow_q, slow_e)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _noise_one(sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
               out, ze):
    n = sums.shape[0]
    words = np.empty((4, _BLOCK), dtype=np.uint64)
    lam = np.empty(_BLOCK)
    scale = np.empty(_BLOCK)
    sl = np.empty(_BLOCK)
    zq = np.empty(_BLOCK, dtype=np.float32)
    slow_q = np.empty(_BLOCK, dtype=np.bool_)
    slow_e = np.empty(_BLOCK, dtype=np.bool_)
    for b in range((n + _BLOCK - 1) // _BLOCK):
        _noise_block(b, _BLOCK, sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1,
                     out, ze, words, lam, scale, sl, zq, slow_q, slow_e)


def channel_noise(sums: np.ndarray, c: int, c_mean: int, c_var: int, extra, q0: float, ref: float,
                  per_view: int, draws: CounterDraws, quantum_noise: bool, electronic: bool,
                  threads: bool = False, out: np.ndarray | None = None,
                  ze: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Channel ``c``'s counter-based draws over ``sums`` (n, 2C) float64, n = views x
    ``per_view``: (quantum signal / ``ref`` (n,) float64 or None, electronic normals (n,) float32
    or None). ``threads``: on numba's threads (the same numbers). ``out`` and ``ze``: where to
    write the signal and the normals ((n,) float64 and float32), else new arrays."""
    n = sums.shape[0]
    out = (np.empty(n) if out is None else out.reshape(n)) if quantum_noise else np.empty(0)
    ze = (np.empty(n, np.float32) if ze is None else ze.reshape(n)) if electronic else np.empty(0, np.float32)
    ex = np.empty(0) if extra is None else np.ascontiguousarray(extra, dtype=np.float64).reshape(-1)
    run = _noise_threads if threads else _noise_one
    run(sums, int(c_mean), int(c_var), ex, float(q0), float(ref), int(per_view),
        int(draws.first_view), int(c), int(draws.key0), int(draws.key1),
        out, ze)
    return (out if quantum_noise else None), (ze if electronic else None)
