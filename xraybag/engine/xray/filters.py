"""Image filters of the detector model as compiled passes: the scatter term's wide low-pass and the
detector blur (with the electronic noise added in the same pass).

Each is one pass over the image in float64 with no full-image temporaries, where the numpy/scipy
versions made several (padding, block means, two gathers, products and sums).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.ndimage import gaussian_filter


def lowpass(img: np.ndarray, sigma_px: float, scale: float = 1.0, shift: float = 0.0,
            threads: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Gaussian low-pass of ``img`` (sigma in pixels, edges 'nearest') over its last two axes,
    times ``scale`` plus ``shift``; a leading axis (a stack of CT views) is filtered image by image.
    Returns a new float64 array, or ``out`` (float64, C-contiguous, ``img``'s shape) filled.

    Wide kernels (the scatter term's tens of pixels) are applied on a block-averaged copy and
    interpolated back: within ~2 % of the smooth term (so ~1e-4 of a signal whose scatter is a few
    per cent) and ~7x faster than the direct convolution. An axis too short for blocks (a CT
    detector's few rows) is filtered directly. Block means (edge pixels repeated to fill the last
    block) and the bilinear interpolation from the block centres are compiled passes
    (:func:`_block_means`, :func:`_interpolate`). With ``threads`` (a stack of CT views) the
    images are spread over numba's threads, the Gaussian of the block means included
    (:func:`gaussian_nearest`, scipy's arithmetic): the same numbers, bit for bit.
    """
    img = np.asarray(img, dtype=np.float64)
    if out is not None and (out.shape != img.shape or out.dtype != np.float64 or not out.flags.c_contiguous):
        raise ValueError(f"out is {out.dtype} {out.shape}; expected C-contiguous float64 {img.shape}")
    given = out
    stack = img.ndim == 3
    if not stack:
        img = img[None]
        out = None if out is None else out[None]
    _, rows, cols = img.shape
    f = int(sigma_px // 4)
    fr = f if f >= 2 and rows >= 4 * f else 1
    fc = f if f >= 2 and cols >= 4 * f else 1
    if fr == 1 and fc == 1:
        out = gaussian_filter(img, (0.0, sigma_px, sigma_px), mode="nearest", output=out)
        if scale != 1.0 or shift != 0.0:
            out *= scale
            out += shift
        return given if given is not None else out if stack else out[0]
    small = np.empty((img.shape[0], -(-rows // fr), -(-cols // fc)))
    if threads:
        _block_means_threads(img, fr, fc, small)
        small = gaussian_nearest(small, (sigma_px / fr, sigma_px / fc))
    else:
        _block_means(img, fr, fc, small)
        small = gaussian_filter(small, (0.0, sigma_px / fr, sigma_px / fc), mode="nearest")
    ir0, ir1, wr = _centres(rows, fr, small.shape[1])
    ic0, ic1, wc = _centres(cols, fc, small.shape[2])
    out = np.empty(img.shape) if out is None else out
    interpolate = _interpolate_threads if threads else _interpolate
    interpolate(small, ir0, ir1, wr, ic0, ic1, wc, float(scale), float(shift), out)
    return given if given is not None else out if stack else out[0]


def _centres(n: int, f: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbouring block centres ((f - 1) / 2 + f k) of each of ``n`` pixels, and the weight of
    the second: linear interpolation, constant beyond the first and last centres."""
    if f == 1:
        i = np.arange(n, dtype=np.int64)
        return i, i, np.zeros(n)
    if m == 1:
        z = np.zeros(n, dtype=np.int64)
        return z, z, np.zeros(n)
    x = np.clip((np.arange(n) - (f - 1) / 2) / f, 0, m - 1)
    i0 = np.minimum(x.astype(np.intp), m - 2).astype(np.int64)
    return i0, i0 + 1, x - i0


@numba.njit(cache=True, nogil=True)
def _block_means_one(img, k, fr, fc, out):
    """Means of ``fr`` x ``fc`` blocks of image ``k`` of ``img`` (b, rows, cols); a block past
    the edge repeats the last row or column (numpy's 'edge' padding)."""
    _, rows, cols = img.shape
    _, nr, nc = out.shape
    inv = 1.0 / (fr * fc)
    full = cols // fc  # blocks inside the image along a row
    for i in range(nr):
        for j in range(nc):
            out[k, i, j] = 0.0
        for r in range(i * fr, (i + 1) * fr):
            rr = min(r, rows - 1)
            for j in range(full):
                s = 0.0
                for c in range(j * fc, (j + 1) * fc):
                    s += img[k, rr, c]
                out[k, i, j] += s
            for j in range(full, nc):
                s = 0.0
                for c in range(j * fc, (j + 1) * fc):
                    s += img[k, rr, min(c, cols - 1)]
                out[k, i, j] += s
        for j in range(nc):
            out[k, i, j] *= inv


@numba.njit(cache=True, nogil=True)
def _block_means(img, fr, fc, out):
    """:func:`_block_means_one` of every image of ``img`` into ``out``."""
    for k in range(img.shape[0]):
        _block_means_one(img, k, fr, fc, out)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _block_means_threads(img, fr, fc, out):
    """:func:`_block_means` with the images spread over numba's threads."""
    for k in numba.prange(img.shape[0]):
        _block_means_one(img, k, fr, fc, out)
    return out


@numba.njit(cache=True, nogil=True)
def _interpolate_one(small, q, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out, row):
    """Bilinear interpolation of image ``q`` of ``small`` (b, m, k) to ``out`` (b, rows, cols):
    first along the rows into ``row`` (k,), then along the columns, times ``scale`` plus ``shift``."""
    _, rows, cols = out.shape
    k = small.shape[2]
    for r in range(rows):
        a0, a1, w = ir0[r], ir1[r], wr[r]
        for j in range(k):
            row[j] = small[q, a0, j] * (1 - w) + small[q, a1, j] * w
        for c in range(cols):
            w2 = wc[c]
            out[q, r, c] = (row[ic0[c]] * (1 - w2) + row[ic1[c]] * w2) * scale + shift


@numba.njit(cache=True, nogil=True)
def _interpolate(small, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out):
    """:func:`_interpolate_one` of every image."""
    row = np.empty(small.shape[2])
    for q in range(out.shape[0]):
        _interpolate_one(small, q, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out, row)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _interpolate_threads(small, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out):
    """:func:`_interpolate` with the images spread over numba's threads."""
    for q in numba.prange(out.shape[0]):
        row = np.empty(small.shape[2])
        _interpolate_one(small, q, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out, row)
    return out


def gaussian_nearest(img: np.ndarray, sigmas: tuple[float, float]) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(img, (0, *sigmas), mode="nearest")`` of a stack of images
    (b, rows, cols) float64, the images spread over numba's threads: scipy's kernel (radius
    ``int(4 sigma + 0.5)``) and its arithmetic step by step (the symmetric correlation of
    ``correlate1d``, rows first), so the same numbers to the bit. Returns a new array."""
    img = np.ascontiguousarray(img, dtype=np.float64)
    out = np.empty(img.shape)
    src = img
    for axis, sigma in ((1, sigmas[0]), (2, sigmas[1])):
        if sigma > 1e-15:  # scipy skips the axes of a zero sigma
            _correlate_nearest(src, axis, gaussian_weights(sigma)[::-1].copy(), out)
            src = out
    if src is img:
        out[:] = img
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _correlate_nearest(img, axis, w, out):
    """scipy's ``correlate1d(img, w, axis, mode="nearest")`` for a symmetric kernel ``w`` of odd
    length along ``axis`` 1 or 2 of (b, rows, cols), image by image on numba's threads: each line
    is copied with ``len(w) // 2`` edge values at each end, then ``o = x[i] w[r] + sum over jj =
    -r..-1 of (x[i + jj] + x[i - jj]) w[r + jj]``, the terms in that order (ni_filters.c; the
    loop over the line's pixels is the inner one, so it vectorises). ``out`` may be ``img``."""
    b, rows, cols = img.shape
    r = w.size // 2
    n = rows if axis == 1 else cols
    lines = cols if axis == 1 else rows
    for q in numba.prange(b):
        ext = np.empty(n + 2 * r)
        acc = np.empty(n)
        for ln in range(lines):
            for i in range(n + 2 * r):
                x = min(max(i - r, 0), n - 1)
                ext[i] = img[q, x, ln] if axis == 1 else img[q, ln, x]
            w0 = w[r]
            for i in range(n):
                acc[i] = ext[i + r] * w0
            for jj in range(-r, 0):
                wj = w[r + jj]
                lo = ext[r + jj: r + jj + n]
                hi = ext[r - jj: r - jj + n]
                for i in range(n):
                    acc[i] += (lo[i] + hi[i]) * wj
            for i in range(n):
                if axis == 1:
                    out[q, i, ln] = acc[i]
                else:
                    out[q, ln, i] = acc[i]


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / float(sigma) ** 2 * x**2)
    return phi / phi.sum()


def blur_and_add(img: np.ndarray, sigma_px: float, noise: np.ndarray | None = None,
                 noise_sigma: float = 0.0, threads: bool = False) -> np.ndarray:
    """``gaussian_filter(img, sigma_px)`` over the last two axes (edges 'nearest'; a stack of
    images filtered image by image) plus ``noise_sigma * noise`` (float32 draws, the product
    rounded to float32 as numpy's ``noise_sigma * noise`` is): one pass, a new float64 array.
    ``threads``: the images of a stack spread over numba's threads (the same numbers)."""
    img = np.ascontiguousarray(img, dtype=np.float64)
    shape = img.shape
    img3 = img.reshape((-1,) + shape[-2:])
    if noise is None:
        z = np.zeros((0, 0, 0), dtype=np.float32)
    else:
        z = np.ascontiguousarray(noise, dtype=np.float32).reshape(img3.shape)
    out = np.empty(img3.shape)
    blur = _blur_add_threads if threads else _blur_add
    blur(img3, gaussian_weights(sigma_px), z, np.float32(noise_sigma), out)
    return out.reshape(shape)


@numba.njit(cache=True, nogil=True)
def _blur_add(img, weights, z, sigma, out):
    """:func:`_blur_add_image` of every image."""
    col = np.empty(img.shape[2])
    for q in range(img.shape[0]):
        _blur_add_image(img, q, weights, z, sigma, out, col)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _blur_add_threads(img, weights, z, sigma, out):
    """:func:`_blur_add` with the images spread over numba's threads."""
    for q in numba.prange(img.shape[0]):
        col = np.empty(img.shape[2])
        _blur_add_image(img, q, weights, z, sigma, out, col)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _blur_add_image(img, q, weights, z, sigma, out, col):
    """Image ``q``'s blur and noise: :func:`_blur_add_one5` for 5 taps, else :func:`_blur_add_one`."""
    if weights.size == 5:
        _blur_add_one5(img, q, weights, z, sigma, out, col)
    else:
        _blur_add_one(img, q, weights, z, sigma, out, col)


@numba.njit(cache=True, nogil=True)
def _blur_add_one(img, q, weights, z, sigma, out, col):
    """Separable correlation of image ``q`` with ``weights`` (odd length, 'nearest' edges), rows
    first then columns, one output row at a time (``col``: the row filtered along the first
    axis), plus ``float32(sigma * z)`` where ``z`` is not empty. The loops run over whole rows
    (1-d slices, which the compiler vectorises); the ``radius`` columns at each edge clamp their
    indices."""
    _, rows, cols = img.shape
    n_t = weights.size
    radius = n_t // 2
    noisy = z.size > 0
    lo = min(radius, cols)
    hi = max(cols - radius, lo)
    m = hi - lo
    for r in range(rows):
        for t in range(n_t):
            w = weights[t]
            src = img[q, min(max(r + t - radius, 0), rows - 1)]
            if t == 0:
                for c in range(cols):
                    col[c] = w * src[c]
            else:
                for c in range(cols):
                    col[c] += w * src[c]
        o = out[q, r]
        inner = o[lo:hi]
        for t in range(n_t):
            w = weights[t]
            shifted = col[t : t + m]
            if t == 0:
                for c in range(m):
                    inner[c] = w * shifted[c]
            else:
                for c in range(m):
                    inner[c] += w * shifted[c]
        for c in range(cols):
            if lo <= c < hi:
                continue
            acc = 0.0
            for t in range(n_t):
                acc += weights[t] * col[min(max(c + t - radius, 0), cols - 1)]
            o[c] = acc
        if noisy:
            zr = z[q, r]
            for c in range(cols):
                o[c] += np.float64(np.float32(sigma * zr[c]))


@numba.njit(cache=True, nogil=True)
def _blur_add_one5(img, q, weights, z, sigma, out, col):
    """:func:`_blur_add_one` for a kernel of 5 taps (radius 2: the detector's default blur of
    0.5 px), the same operations in the same order, each pixel's sum taken whole in one loop over
    the row instead of a pass over the row for each tap."""
    _, rows, cols = img.shape
    w0, w1, w2, w3, w4 = weights[0], weights[1], weights[2], weights[3], weights[4]
    noisy = z.size > 0
    lo = min(2, cols)
    hi = max(cols - 2, lo)
    last = rows - 1
    for r in range(rows):
        s0, s1, s2 = img[q, max(r - 2, 0)], img[q, max(r - 1, 0)], img[q, min(r, last)]
        s3, s4 = img[q, min(r + 1, last)], img[q, min(r + 2, last)]
        for c in range(cols):
            acc = w0 * s0[c]
            acc += w1 * s1[c]
            acc += w2 * s2[c]
            acc += w3 * s3[c]
            acc += w4 * s4[c]
            col[c] = acc
        o = out[q, r]
        for c in range(lo, hi):
            acc = w0 * col[c - 2]
            acc += w1 * col[c - 1]
            acc += w2 * col[c]
            acc += w3 * col[c + 1]
            acc += w4 * col[c + 2]
            o[c] = acc
        for c in range(cols):
            if lo <= c < hi:
                continue
            acc = 0.0
            for t in range(5):
                acc += weights[t] * col[min(max(c + t - 2, 0), cols - 1)]
            o[c] = acc
        if noisy:
            zr = z[q, r]
            for c in range(cols):
                o[c] += np.float64(np.float32(sigma * zr[c]))
