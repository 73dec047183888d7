"""The detector filters of :mod:`xraybag.engine.xray.filters` as CUDA kernels (numba.cuda), for
stacks of CT detector views (b, rows, cols) float64 that stay on the GPU.

:func:`lowpass_cuda` is :func:`~xraybag.engine.xray.filters.lowpass` (``threads=True``): with
blocks, one CUDA thread per (image, block) for the block means (:func:`.filters._block_means_one`),
one per (image, line, pixel) for each axis of the Gaussian of the block means
(:func:`.filters.gaussian_nearest`, scipy's symmetric correlation), and one per output pixel for
the bilinear interpolation back (:func:`.filters._interpolate_one`, which on the CPU first fills a
row of the row-interpolated block means: here each thread interpolates the two entries of that
row it needs, the same products and sums), times ``scale`` plus ``shift``. Where neither axis
takes blocks (a narrow kernel, or both axes shorter than 4 blocks), the CPU's direct branch:
scipy's ``gaussian_filter`` with sigma ``(0, s, s)``, here the same symmetric correlation along
the rows, then the columns, then times ``scale`` plus ``shift``.

:func:`blur_and_add_cuda` is :func:`~xraybag.engine.xray.filters.blur_and_add`: the separable
correlation of :func:`.filters._blur_add_one` (rows first into a float64 temporary, then the
columns; one thread per pixel each), plus ``float32(noise_sigma * noise)``.

Each thread sums its terms in the CPU's order, so the results are the CPU's step by step: under
numba's simulator (Python floats) the same numbers to the bit. The host-side constants (Gaussian
weights, block centres and weights) come from the CPU module's own helpers. Products go through
libdevice's ``dmul_rn`` on a real GPU (as in :mod:`.trace_cuda`): NVVM would otherwise fuse a
product with the following addition into a multiply-add (one rounding where the CPU rounds
twice), which would move the results by an ulp here and there; with ``dmul_rn`` it cannot, so the GPU
should match the CPU to the bit as well (the tests hold it to 1e-9 relative on a real GPU). Only
divisions and sums are left as they are (IEEE-rounded on the GPU as on the CPU).

Inputs may be host arrays or numba device arrays; the results are new device arrays (the caller
keeps the data on the GPU and copies it back when it wants it).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.detect import on_device
from xraybag.engine.xray.filters import _centres, gaussian_weights

THREADS = 256  # threads per block


def _plain_mul(a, b):
    return a * b


if numba.config.ENABLE_CUDASIM:  # the simulator runs Python floats: a product is a product
    _mul = _plain_mul  # (a plain function: a device function's call costs the simulator ~10 us)
else:  # a product that NVVM never fuses into a multiply-add (see the module's docstring)
    from numba.cuda import libdevice

    _mul = libdevice.dmul_rn

# The kernels clamp indices with conditional expressions: numba's CUDA target cannot compile the
# builtin min / max (their star-argument overloads, even for two arguments), and the two-argument
# device functions of :mod:`.trace_cuda` would cost the simulator a call each.


@cuda.jit
def _correlate_sym(src, axis, w, affine, scale, shift, out):
    """Thread ``t`` = pixel ``(q, i, j)`` of ``out`` (b, rows, cols): scipy's ``correlate1d`` of
    ``src`` along ``axis`` (1 or 2) with the symmetric kernel ``w`` (odd length), 'nearest' edges,
    as :func:`.filters._correlate_nearest`: ``x[p] w[r]``, then ``(x[p + jj] + x[p - jj]) w[r +
    jj]`` added for jj = -r..-1 in that order, in float64 (a float32 ``src`` or ``out`` is read
    into and written from float64, as scipy's line buffers). With ``affine``, the sum times
    ``scale`` plus ``shift`` (numpy's ``out *= scale; out += shift``: two roundings)."""
    t = cuda.grid(1)
    b = out.shape[0]
    rows = out.shape[1]
    cols = out.shape[2]
    if t >= b * rows * cols:
        return
    j = t % cols
    i = (t // cols) % rows
    q = t // (cols * rows)
    along_rows = axis == 1
    n = rows if along_rows else cols
    p = i if along_rows else j
    r = w.shape[0] // 2
    acc = _mul(numba.float64(src[q, i, j]), w[r])
    for jj in range(-r, 0):
        lo = p + jj  # < p <= n - 1
        lo = 0 if lo < 0 else lo  # noqa: FURB136 - the CUDA target cannot compile builtin min / max
        hi = p - jj  # > p >= 0
        hi = n - 1 if hi > n - 1 else hi  # noqa: FURB136
        if along_rows:  # in float64 whatever the image's type, as scipy's line buffers
            x = numba.float64(src[q, lo, j]) + numba.float64(src[q, hi, j])
        else:
            x = numba.float64(src[q, i, lo]) + numba.float64(src[q, i, hi])
        acc += _mul(x, w[r + jj])
    if affine:
        acc = _mul(acc, scale) + shift
    out[q, i, j] = acc


@cuda.jit
def _block_means(img, fr, fc, inv, out):
    """Thread ``t`` = block ``(k, i, j)`` of ``out`` (b, nr, nc): the mean of the ``fr`` x ``fc``
    block of image ``k``, a block past the edge repeating the last row or column, summed as
    :func:`.filters._block_means_one` does (each block row's sum added to 0.0 in turn, then times
    ``inv`` = 1 / (fr fc))."""
    t = cuda.grid(1)
    b = out.shape[0]
    nr = out.shape[1]
    nc = out.shape[2]
    if t >= b * nr * nc:
        return
    rows = img.shape[1]
    cols = img.shape[2]
    j = t % nc
    i = (t // nc) % nr
    k = t // (nc * nr)
    acc = 0.0
    for r in range(i * fr, (i + 1) * fr):
        rr = r if r < rows else rows - 1
        s = 0.0
        for c in range(j * fc, (j + 1) * fc):
            s += img[k, rr, c if c < cols else cols - 1]
        acc += s
    out[k, i, j] = _mul(acc, inv)


@cuda.jit
def _interpolate(small, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out):
    """Thread ``t`` = pixel ``(q, r, c)`` of ``out`` (b, rows, cols): the bilinear interpolation of
    :func:`.filters._interpolate_one`, along the rows (the entries ``ic0[c]`` and ``ic1[c]`` of the
    CPU's ``row``), then the columns, times ``scale`` plus ``shift``."""
    t = cuda.grid(1)
    b = out.shape[0]
    rows = out.shape[1]
    cols = out.shape[2]
    if t >= b * rows * cols:
        return
    c = t % cols
    r = (t // cols) % rows
    q = t // (cols * rows)
    a0 = ir0[r]
    a1 = ir1[r]
    w = wr[r]
    j0 = ic0[c]
    j1 = ic1[c]
    w2 = wc[c]
    v0 = _mul(small[q, a0, j0], 1 - w) + _mul(small[q, a1, j0], w)
    v1 = _mul(small[q, a0, j1], 1 - w) + _mul(small[q, a1, j1], w)
    out[q, r, c] = _mul(_mul(v0, 1 - w2) + _mul(v1, w2), scale) + shift


@cuda.jit
def _blur_pass(src, axis, w, z, zsig, noisy, out):
    """Thread ``t`` = pixel ``(q, i, j)`` of ``out``: one axis (1 or 2) of
    :func:`.filters._blur_add_one`, ``w[0] x[p - radius] + w[1] x[p + 1 - radius] + ...``
    ('nearest' edges) in that order; along the columns (``axis`` 2) the ``radius`` pixels at each
    edge start from 0.0 as the CPU's edge loop does, and with ``noisy`` ``float32(zsig * z[q, i,
    j])`` is added."""
    t = cuda.grid(1)
    b = out.shape[0]
    rows = out.shape[1]
    cols = out.shape[2]
    if t >= b * rows * cols:
        return
    j = t % cols
    i = (t // cols) % rows
    q = t // (cols * rows)
    along_rows = axis == 1
    n = rows if along_rows else cols
    p = i if along_rows else j
    n_t = w.shape[0]
    radius = n_t // 2
    acc = 0.0
    for k in range(n_t):
        a = p + k - radius
        a = 0 if a < 0 else (n - 1 if a > n - 1 else a)  # noqa: FURB136
        x = src[q, a, j] if along_rows else src[q, i, a]
        if k == 0:
            acc = _mul(w[0], x)
            if not along_rows:
                lo = radius if radius < cols else cols  # noqa: FURB136
                hi = cols - radius if cols - radius > lo else lo  # noqa: FURB136
                if p < lo or p >= hi:
                    acc = 0.0 + acc  # the CPU's edge columns sum from 0.0 (-0.0 becomes 0.0)
        else:
            acc += _mul(w[k], x)
    if noisy:
        acc += numba.float64(zsig * z[q, i, j])
    out[q, i, j] = acc


def _launch(kernel, n: int, *args) -> None:
    if n > 0:
        kernel[(n + THREADS - 1) // THREADS, THREADS](*args)


def _on_gpu(a, dtype, name: str):
    """``a`` (b, rows, cols) as a device array of ``dtype``: a device array as it is (it must
    have that dtype already), a host array copied."""
    if on_device(a):
        if np.dtype(a.dtype) != np.dtype(dtype):
            raise TypeError(f"{name}: a device array of {np.dtype(dtype)} is needed, not {a.dtype}")
    else:
        a = cuda.to_device(np.ascontiguousarray(a, dtype=dtype))
    if a.ndim != 3:
        raise ValueError(f"{name}: a stack of images (b, rows, cols) is needed, not shape {a.shape}")
    return a


def _gaussian_axes(src, sigmas, affine: bool, scale: float, shift: float):
    """scipy's ``gaussian_filter(src, (0, *sigmas), mode="nearest")`` (axes of sigma <= 1e-15
    skipped, as scipy does), with ``affine`` times ``scale`` plus ``shift`` after: a new device
    array."""
    axes = [(axis, s) for axis, s in ((1, sigmas[0]), (2, sigmas[1])) if s > 1e-15]
    n = src.size
    if not axes:  # nothing to filter: scipy's copy of the input
        out = cuda.device_array(src.shape, dtype=np.float64)
        one = cuda.to_device(np.ones(1))
        _launch(_correlate_sym, n, src, 2, one, affine, float(scale), float(shift), out)
        return out
    for k, (axis, s) in enumerate(axes):
        w = cuda.to_device(gaussian_weights(s)[::-1].copy())
        out = cuda.device_array(src.shape, dtype=np.float64)
        last = k == len(axes) - 1
        _launch(_correlate_sym, n, src, axis, w, affine and last, float(scale), float(shift), out)
        src = out
    return out


def lowpass_cuda(img, sigma_px: float, scale: float = 1.0, shift: float = 0.0):
    """:func:`xraybag.engine.xray.filters.lowpass` (``threads=True``) of a stack ``img`` (b, rows,
    cols) float64, a host array or a numba device array, on the GPU: a new device array (b, rows,
    cols) float64, the CPU's numbers (see the module's docstring)."""
    img = _on_gpu(img, np.float64, "lowpass_cuda")
    _, rows, cols = img.shape
    f = int(sigma_px // 4)
    fr = f if f >= 2 and rows >= 4 * f else 1
    fc = f if f >= 2 and cols >= 4 * f else 1
    if fr == 1 and fc == 1:  # scipy's gaussian_filter with sigma (0, s, s), then scale and shift
        return _gaussian_axes(img, (sigma_px, sigma_px), scale != 1.0 or shift != 0.0, scale, shift)
    nr, nc = -(-rows // fr), -(-cols // fc)
    small = cuda.device_array((img.shape[0], nr, nc), dtype=np.float64)
    _launch(_block_means, small.size, img, fr, fc, 1.0 / (fr * fc), small)
    small = _gaussian_axes(small, (sigma_px / fr, sigma_px / fc), False, 1.0, 0.0)
    ir0, ir1, wr = (cuda.to_device(a) for a in _centres(rows, fr, nr))
    ic0, ic1, wc = (cuda.to_device(a) for a in _centres(cols, fc, nc))
    out = cuda.device_array(img.shape, dtype=np.float64)
    _launch(_interpolate, out.size, small, ir0, ir1, wr, ic0, ic1, wc, float(scale), float(shift), out)
    return out


def blur_and_add_cuda(img, sigma_px: float, noise=None, noise_sigma: float = 0.0):
    """:func:`xraybag.engine.xray.filters.blur_and_add` of a stack ``img`` (b, rows, cols)
    float64 on the GPU: the Gaussian blur ('nearest' edges, rows first then columns) plus
    ``float32(noise_sigma * noise)`` where ``noise`` (float32, the shape of ``img``; a host or
    device array) is given. ``img`` a host or a numba device array; returns a new device array
    (b, rows, cols) float64, the CPU's numbers (see the module's docstring)."""
    img = _on_gpu(img, np.float64, "blur_and_add_cuda")
    if noise is None:
        z, noisy = cuda.to_device(np.zeros((1, 1, 1), dtype=np.float32)), False
    else:
        if not on_device(noise):
            noise = np.asarray(noise, dtype=np.float32).reshape(img.shape)
        z, noisy = _on_gpu(noise, np.float32, "blur_and_add_cuda noise"), True
        if z.shape != img.shape:
            raise ValueError(f"blur_and_add_cuda: noise of shape {z.shape} for images of shape {img.shape}")
    w = cuda.to_device(gaussian_weights(sigma_px))
    n = img.size
    tmp = cuda.device_array(img.shape, dtype=np.float64)
    out = cuda.device_array(img.shape, dtype=np.float64)
    _launch(_blur_pass, n, img, 1, w, z, np.float32(noise_sigma), False, tmp)
    _launch(_blur_pass, n, tmp, 2, w, z, np.float32(noise_sigma), noisy, out)
    return out
