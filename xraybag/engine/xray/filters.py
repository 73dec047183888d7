"""Image filters of the detector model as compiled passes: the scatter term's wide low-pass and the
detector blur (with the electronic noise added in the same pass).

Each is one pass over the image in float64 with no full-image temporaries, where the numpy/scipy
versions made several (padding, block means, two gathers, products and sums).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.ndimage import gaussian_filter


def lowpass(img: np.ndarray, sigma_px: float, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """Gaussian low-pass of ``img`` (sigma in pixels, edges 'nearest') over its last two axes,
    times ``scale`` plus ``shift``; a leading axis (a stack of CT views) is filtered image by image.
    Returns a new float64 array.

    Wide kernels (the scatter term's tens of pixels) are applied on a block-averaged copy and
    interpolated back: within ~2 % of the smooth term (so ~1e-4 of a signal whose scatter is a few
    per cent) and ~7x faster than the direct convolution. An axis too short for blocks (a CT
    detector's few rows) is filtered directly. Block means (edge pixels repeated to fill the last
    block) and the bilinear interpolation from the block centres are compiled passes
    (:func:`_block_means`, :func:`_interpolate`).
    """
    img = np.asarray(img, dtype=np.float64)
    stack = img.ndim == 3
    if not stack:
        img = img[None]
    _, rows, cols = img.shape
    f = int(sigma_px // 4)
    fr = f if f >= 2 and rows >= 4 * f else 1
    fc = f if f >= 2 and cols >= 4 * f else 1
    if fr == 1 and fc == 1:
        out = gaussian_filter(img, (0.0, sigma_px, sigma_px), mode="nearest")
        if scale != 1.0 or shift != 0.0:
            out *= scale
            out += shift
        return out if stack else out[0]
    small = _block_means(img, fr, fc, np.empty((img.shape[0], -(-rows // fr), -(-cols // fc))))
    small = gaussian_filter(small, (0.0, sigma_px / fr, sigma_px / fc), mode="nearest")
    ir0, ir1, wr = _centres(rows, fr, small.shape[1])
    ic0, ic1, wc = _centres(cols, fc, small.shape[2])
    out = np.empty(img.shape)
    _interpolate(small, ir0, ir1, wr, ic0, ic1, wc, float(scale), float(shift), out,
                 np.empty(small.shape[2]))
    return out if stack else out[0]


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
def _block_means(img, fr, fc, out):
    """Means of ``fr`` x ``fc`` blocks of each image of ``img`` (b, rows, cols); a block past the
    edge repeats the last row or column (numpy's 'edge' padding)."""
    b, rows, cols = img.shape
    _, nr, nc = out.shape
    inv = 1.0 / (fr * fc)
    full = cols // fc  # blocks inside the image along a row
    for k in range(b):
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
    return out


@numba.njit(cache=True, nogil=True)
def _interpolate(small, ir0, ir1, wr, ic0, ic1, wc, scale, shift, out, row):
    """Bilinear interpolation of ``small`` (b, m, k) to ``out`` (b, rows, cols): first along the
    rows into ``row`` (k,), then along the columns, times ``scale`` plus ``shift``."""
    b, rows, cols = out.shape
    k = small.shape[2]
    for q in range(b):
        for r in range(rows):
            a0, a1, w = ir0[r], ir1[r], wr[r]
            for j in range(k):
                row[j] = small[q, a0, j] * (1 - w) + small[q, a1, j] * w
            for c in range(cols):
                w2 = wc[c]
                out[q, r, c] = (row[ic0[c]] * (1 - w2) + row[ic1[c]] * w2) * scale + shift
    return out


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / float(sigma) ** 2 * x**2)
    return phi / phi.sum()


def blur_and_add(img: np.ndarray, sigma_px: float, noise: np.ndarray | None = None,
                 noise_sigma: float = 0.0) -> np.ndarray:
    """``gaussian_filter(img, sigma_px)`` over the last two axes (edges 'nearest'; a stack of
    images filtered image by image) plus ``noise_sigma * noise`` (float32 draws, the product
    rounded to float32 as numpy's ``noise_sigma * noise`` is): one pass, a new float64 array."""
    img = np.ascontiguousarray(img, dtype=np.float64)
    shape = img.shape
    img3 = img.reshape((-1,) + shape[-2:])
    if noise is None:
        z = np.zeros((0, 0, 0), dtype=np.float32)
    else:
        z = np.ascontiguousarray(noise, dtype=np.float32).reshape(img3.shape)
    out = np.empty(img3.shape)
    _blur_add(img3, gaussian_weights(sigma_px), z, np.float32(noise_sigma), out,
              np.empty(shape[-1]))
    return out.reshape(shape)


@numba.njit(cache=True, nogil=True)
def _blur_add(img, weights, z, sigma, out, col):
    """Separable correlation with ``weights`` (odd length, 'nearest' edges), rows first then
    columns, one output row at a time (``col``: the row filtered along the first axis), plus
    ``float32(sigma * z)`` where ``z`` is not empty. The loops run over whole rows (1-d slices, which
    the compiler vectorises); the ``radius`` columns at each edge clamp their indices."""
    b, rows, cols = img.shape
    n_t = weights.size
    radius = n_t // 2
    noisy = z.size > 0
    lo = min(radius, cols)
    hi = max(cols - radius, lo)
    m = hi - lo
    for q in range(b):
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
    return out
