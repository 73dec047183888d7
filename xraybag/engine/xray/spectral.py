"""The spectral pass of a view's detection (:mod:`.detect`): ``exp(-L @ mu) @ W`` per pixel, one
compiled pass over the path lengths, dense (rows x cols, M) or a pixel's (material, length)
entries (:class:`~.paths.SparsePaths`, the CPU tracer's), with the same numbers either way.
"""

from __future__ import annotations

import numba
import numpy as np

#: Path-length bytes of one block of the compiled spectral pass: the unit of work of one thread
#: (it needs no buffers; a pixel is compared with the one a row above only within its block)
CHUNK_BYTES = 4 * 2**20


def _chunk_pixels(n_materials: int) -> int:
    """Pixels per block of the compiled pass: :data:`CHUNK_BYTES` of float32 path lengths."""
    return max(1, CHUNK_BYTES // (4 * max(1, n_materials)))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _channel_sums(x, y, scale, wt, out, p):
    """``out[p, k] = sum_e wt[k, e] exp(x[e])`` (float32; ``x`` (E,) float32 is overwritten, ``y``
    (E,) int32 scratch and ``scale`` the same memory seen as float32): the exponential is Cephes' ``expf`` written out (range reduction by ln 2
    and a degree-6 polynomial, relative error ~1e-7, vectorised along the energies)."""
    n_e = x.size
    for e in range(n_e):  # exp(x) = 2^j exp(r), r = x - j ln 2
        xe = max(x[e], np.float32(-87.0))
        j = np.floor(xe * np.float32(1.44269504088896341) + np.float32(0.5))
        r = xe - j * np.float32(0.693359375)
        r = r + j * np.float32(2.12194440e-4)
        poly = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
        poly = poly * r + np.float32(8.3334519073e-3)
        poly = poly * r + np.float32(4.1665795894e-2)
        poly = poly * r + np.float32(1.6666665459e-1)
        poly = poly * r + np.float32(5.0000001201e-1)
        x[e] = poly * (r * r) + r + np.float32(1.0)
        y[e] = (np.int32(j) + np.int32(127)) << 23  # the bits of 2^j
    for e in range(n_e):
        x[e] *= scale[e]
    for k in range(wt.shape[0]):
        acc = np.float32(0.0)
        for e in range(n_e):
            acc += wt[k, e] * x[e]
        out[p, k] = acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _signals(L2, bits, mu, wt, open_beam, start, stop, stride, out, x, y):
    """``out[p] = wt @ exp(-(L2[p] @ mu))`` for the pixels p in [start, stop), in one pass.

    ``bits`` is ``L2`` seen as int32, for a branch-free test of a pixel that crosses nothing (it
    gets ``open_beam``, no arithmetic) or equals the pixel ``p - stride`` bit for bit (the same
    detector element one row earlier, when that pixel is in [start, stop) too: a line scanner sees
    the same bag walls row after row; it gets that pixel's numbers, which it would compute anyway). Otherwise only the non-zero path lengths are accumulated into the
    float32 exponent ``x`` (E,), in the materials' order, and :func:`_channel_sums` makes the
    channels' float32 sums. ``y``: (E,) int32 scratch.
    """
    m_all = bits.shape[1]
    n_e = mu.shape[1]
    n_k = wt.shape[0]
    scale = y.view(np.float32)
    for p in range(start, stop):
        nz = np.int32(0)
        for m in range(m_all):
            nz |= bits[p, m]
        if nz == 0:
            for k in range(n_k):
                out[p, k] = open_beam[k]
            continue
        if stride > 0 and p - stride >= start:
            diff = np.int32(0)
            for m in range(m_all):
                diff |= bits[p, m] ^ bits[p - stride, m]
            if diff == 0:
                for k in range(n_k):
                    out[p, k] = out[p - stride, k]
                continue
        first = True
        for m in range(m_all):
            v = L2[p, m]
            if v != 0.0:
                if first:
                    for e in range(n_e):
                        x[e] = -v * mu[m, e]
                    first = False
                else:
                    for e in range(n_e):
                        x[e] -= v * mu[m, e]
        _channel_sums(x, y, scale, wt, out, p)


@numba.njit(parallel=True, cache=True, nogil=True)
def _signals_blocks(L2, bits, mu, wt, open_beam, step, stride, out):
    """:func:`_signals` over the pixels in blocks of ``step``, the blocks spread over numba's
    threads (each block stands alone, so the numbers do not depend on the threads)."""
    n = L2.shape[0]
    n_e = mu.shape[1]
    for b in numba.prange((n + step - 1) // step):
        x = np.empty(n_e, dtype=np.float32)
        y = np.empty(n_e, dtype=np.int32)
        _signals(L2, bits, mu, wt, open_beam, b * step, min(n, (b + 1) * step), stride, out, x, y)


def dense_signals(L2: np.ndarray, mu: np.ndarray, weights: np.ndarray, stride: int = 0,
                  threads: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """``exp(-L2 @ mu) @ weights``: (n, M), (M, E), (E, K) -> (n, K) float64, one compiled pass
    over ``L2`` that reads each pixel's path lengths once (:func:`_signals`).

    The exponent, the exponentials and the sums over the energies are float32 (relative error
    ~1e-6, far below the 1e-4 the model promises). Pixels that cross nothing get the open beam
    (``weights.sum(0)`` in float64) without any arithmetic; with ``stride`` (the image width), a
    pixel identical to the one a row above reuses its result (exactly the same numbers). With
    ``threads`` the blocks of pixels run on numba's threads (the same numbers); it is off by
    default because numba's default thread pool does not survive ``fork``: a worker process
    forked from a process that has started the pool would abort on its first parallel call.
    The result is laid out channel after channel (:func:`signal_array`); ``out``: such an
    array to write it into, else a new one.
    """
    out = _output(out, L2.shape[0], np.shape(weights)[1])
    L32, mu32, wt32, open_beam, out = spectral_operands(L2, mu, weights, out)
    if L32 is None:
        return out
    n = L32.shape[0]
    step = min(_chunk_pixels(L32.shape[1]), n)
    bits = L32.view(np.int32)
    if threads:
        _signals_blocks(L32, bits, mu32, wt32, open_beam, step, int(stride), out)
        return out
    x = np.empty(mu32.shape[1], dtype=np.float32)
    y = np.empty(mu32.shape[1], dtype=np.int32)
    for start in range(0, n, step):
        _signals(L32, bits, mu32, wt32, open_beam, start, min(start + step, n), int(stride), out, x, y)
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sparse_signals(start, count, mat, length, bits, mu, wt, open_beam, p0, p1, stride, out, x, y):
    """:func:`_signals` for the pixels p in [p0, p1) of :class:`~.paths.SparsePaths` (``bits``:
    ``length`` seen as int32): the same steps on a pixel's entries, which are its non-zero path
    lengths in the materials' order, so the same numbers. A pixel without entries gets the open
    beam; one whose entries equal, bit for bit, those of the pixel ``p - stride`` in [p0, p1)
    gets that pixel's numbers."""
    n_e = mu.shape[1]
    n_k = wt.shape[0]
    scale = y.view(np.float32)
    for p in range(p0, p1):
        u = count[p]
        if u == 0:
            for k in range(n_k):
                out[p, k] = open_beam[k]
            continue
        a = start[p]
        if stride > 0 and p - stride >= p0 and count[p - stride] == u:
            b = start[p - stride]
            diff = np.int32(0)
            for t in range(u):
                diff |= (mat[a + t] ^ mat[b + t]) | (bits[a + t] ^ bits[b + t])
            if diff == 0:
                for k in range(n_k):
                    out[p, k] = out[p - stride, k]
                continue
        m = mat[a]
        v = length[a]
        for e in range(n_e):
            x[e] = -v * mu[m, e]
        for t in range(1, u):
            m = mat[a + t]
            v = length[a + t]
            for e in range(n_e):
                x[e] -= v * mu[m, e]
        _channel_sums(x, y, scale, wt, out, p)


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_signals_blocks(start, count, mat, length, bits, mu, wt, open_beam, step, stride, out):
    """:func:`_sparse_signals` over the pixels in blocks of ``step`` on numba's threads."""
    n = count.shape[0]
    n_e = mu.shape[1]
    for b in numba.prange((n + step - 1) // step):
        x = np.empty(n_e, dtype=np.float32)
        y = np.empty(n_e, dtype=np.int32)
        _sparse_signals(start, count, mat, length, bits, mu, wt, open_beam, b * step, min(n, (b + 1) * step),
                        stride, out, x, y)


def sparse_signals(sp, mu: np.ndarray, weights: np.ndarray, stride: int = 0, threads: bool = False,
                   out: np.ndarray | None = None) -> np.ndarray:
    """:func:`dense_signals` of :class:`~.paths.SparsePaths` ``sp``: (rows * cols, K) float64, the
    same numbers as the dense pass over ``sp.dense()`` without reading a slot per material of
    the bag. ``threads``: blocks of pixels on numba's threads (the same numbers). ``out``: a
    :func:`signal_array` to write the result into, else a new one."""
    n = sp.rows * sp.cols
    mu32, wt32, open_beam = spectral_constants(mu, weights)
    out = _output(out, n, weights.shape[1])
    if sp.n_materials == 0 or n == 0:
        out[:] = open_beam
        return out
    bits = sp.length.view(np.int32)
    step = min(_chunk_pixels(sp.n_materials), n)
    if threads:
        _sparse_signals_blocks(sp.start, sp.count, sp.mat, sp.length, bits, mu32, wt32, open_beam, step,
                               int(stride), out)
        return out
    x = np.empty(mu32.shape[1], dtype=np.float32)
    y = np.empty(mu32.shape[1], dtype=np.int32)
    # one block: the entries need no blocks to stay in cache, and a pixel equal to the one a row
    # above then always takes its numbers (the same numbers as computing them again)
    _sparse_signals(sp.start, sp.count, sp.mat, sp.length, bits, mu32, wt32, open_beam, 0, n, int(stride),
                    out, x, y)
    return out


def on_device(a) -> bool:
    """Whether ``a`` is a numba device array (on a GPU, or numba's CUDA simulator's stand-in)."""
    return hasattr(a, "copy_to_host")


def signal_array(n: int, k: int, memory: np.ndarray | None = None) -> np.ndarray:
    """An (n, K) float64 array for a pass's sums, laid out channel after channel (the transpose
    of a C-contiguous (K, n) array, ``memory`` when given): a channel's sums are then contiguous
    for the passes that read one channel (the scatter's low-pass, the noise draws)."""
    if memory is None:
        memory = np.empty((k, n), dtype=np.float64)
    elif memory.shape != (k, n) or memory.dtype != np.float64 or not memory.flags.c_contiguous:
        raise ValueError(f"memory is {memory.dtype} {memory.shape}; expected C-contiguous float64 {(k, n)}")
    return memory.T


def _output(out: np.ndarray | None, n: int, k: int) -> np.ndarray:
    """A pass's (n, K) float64 output: ``out`` when given (checked: :func:`signal_array`'s
    layout), else a new :func:`signal_array`."""
    if out is None:
        return signal_array(n, k)
    if out.shape != (n, k) or out.dtype != np.float64 or not out.T.flags.c_contiguous:
        raise ValueError(f"out is {out.dtype} {out.shape}; expected float64 {(n, k)} laid out channel after channel")
    return out


def spectral_operands(L2: np.ndarray, mu: np.ndarray, weights: np.ndarray, out: np.ndarray | None = None):
    """What a spectral pass (CPU or GPU) takes: float32 path lengths (n, M), attenuation (M, E)
    and weights (K, E), the float64 open beam (K,), and the output (n, K) float64. With nothing to
    compute (no pixel or no material) the output is the open beam already and the operands None.
    Path lengths already on a GPU (a numba device array, float32) are passed on as they are.
    ``out``: the (n, K) float64 output to write (host memory), else a new C-contiguous array."""
    n, m = L2.shape
    mu32, wt32, open_beam = spectral_constants(mu, weights)
    out = np.empty((n, weights.shape[1]), dtype=np.float64) if out is None else out
    if m == 0 or n == 0:
        out[:] = open_beam
        return None, None, None, open_beam, out
    L32 = L2 if on_device(L2) else np.ascontiguousarray(L2, dtype=np.float32)
    return L32, mu32, wt32, open_beam, out


def spectral_constants(mu: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A spectral pass's attenuation (M, E) and weights (K, E) as float32, and its float64 open
    beam (K,)."""
    open_beam = np.asarray(weights, dtype=np.float64).sum(axis=0)
    return (np.ascontiguousarray(mu, dtype=np.float32),
            np.ascontiguousarray(np.asarray(weights).T, dtype=np.float32), open_beam)
