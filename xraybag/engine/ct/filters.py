"""Ramp filters of filtered backprojection, and Hounsfield units.

Filters: ``ram-lak`` (the plain ramp), ``shepp-logan``, ``cosine`` and ``hann`` windows, with a
cut-off as a fraction of the detector's Nyquist frequency; the ramp is built from its spatial
kernel (Kak & Slaney, 3.61), which avoids the DC offset of a ramp sampled in frequency.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from xraybag.engine.ct.geometry import CTGeometry, VolumeGrid

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")


# ----------------------------------------------------------------------------- HU


def hounsfield(mu, mu_water) -> np.ndarray:
    """Hounsfield units ``1000 (mu - mu_w) / mu_w`` (water 0, air -1000)."""
    mu = np.asarray(mu, dtype=np.float64)
    return (1000.0 * (mu - mu_water) / mu_water).astype(np.float32)


def modified_hounsfield(mu, mu_water) -> np.ndarray:
    """Modified Hounsfield units ``HU + 1000`` (air 0, water 1000), as used in security CT."""
    mu = np.asarray(mu, dtype=np.float64)
    return (1000.0 * mu / mu_water).astype(np.float32)


# ----------------------------------------------------------------------------- filters


def check_filter(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key in ("ramlak", "ramp"):
        key = "ram-lak"
    if key in ("shepplogan",):
        key = "shepp-logan"
    if key == "hanning":
        key = "hann"
    if key not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose from {FILTERS}")
    return key


def ramp_kernel(n_pad: int, spacing: float, filter: str = "ram-lak",
                equiangular: bool = False, cutoff: float = 1.0) -> np.ndarray:
    """Frequency response (``n_pad // 2 + 1`` real values, for ``rfft``) of the band-limited ramp.

    Built from the spatial kernel of Kak & Slaney (3.61): ``h(0) = 1 / (4 tau^2)``,
    ``h(n tau) = -1 / (n pi tau)^2`` for odd ``n``, 0 for even ``n`` (``tau = spacing``). With
    ``equiangular`` the samples are angles and the kernel is ``(n tau / sin(n tau))^2 h(n tau)``
    (the equiangular fan-beam kernel without its factor 1/2). The window is applied in frequency
    (``f_N`` = Nyquist): Shepp-Logan ``sinc(f / (2 f_N))``, cosine ``cos(pi f / (2 f_N))``,
    Hann ``(1 + cos(pi f / f_N)) / 2``. With ``cutoff`` < 1 the window is stretched to end at
    ``cutoff * f_N`` and the response is 0 above it (band-limiting to a coarser voxel grid, see
    :func:`voxel_cutoff`).
    """
    key = check_filter(filter)
    n = np.arange(n_pad)
    n = np.where(n > n_pad // 2, n - n_pad, n).astype(np.float64)
    h = np.zeros(n_pad)
    h[n == 0] = 1.0 / (4.0 * spacing * spacing)
    odd = (np.abs(n) % 2) == 1
    h[odd] = -1.0 / (np.pi * n[odd] * spacing) ** 2
    if equiangular:
        x = n[odd] * spacing
        h[odd] *= (x / np.sin(x)) ** 2
    resp = np.real(sfft.rfft(h)) * spacing
    f = np.arange(resp.size) / n_pad  # cycles per sample; Nyquist 0.5
    r = f / (0.5 * float(cutoff))
    resp = np.where(r <= 1.0, resp, 0.0)
    r = np.minimum(r, 1.0)
    if key == "shepp-logan":
        resp = resp * np.sinc(r / 2.0)
    elif key == "cosine":
        resp = resp * np.cos(np.pi * r / 2.0)
    elif key == "hann":
        resp = resp * 0.5 * (1.0 + np.cos(np.pi * r))
    return resp


def ramp_filter(proj: np.ndarray, spacing: float, filter: str = "ram-lak", axis: int = -1,
                equiangular: bool = False, workers: int | None = -1,
                cutoff: float = 1.0) -> np.ndarray:
    """Ramp-filter ``proj`` along ``axis``: ``spacing * sum_k p[k] h[n - k]`` (zero padded).

    ``spacing`` is the sample distance (mm; radians when ``equiangular``). Returns float32.
    """
    proj = np.asarray(proj)
    n = proj.shape[axis]
    n_pad = max(64, 1 << int(math.ceil(math.log2(2 * n))))
    resp = ramp_kernel(n_pad, spacing, filter, equiangular, cutoff)
    shape = [1] * proj.ndim
    shape[axis] = resp.size
    spec = sfft.rfft(proj.astype(np.float32, copy=False), n=n_pad, axis=axis, workers=workers)
    spec *= resp.astype(np.float32).reshape(shape)
    out = sfft.irfft(spec, n=n_pad, axis=axis, workers=workers)
    sl = [slice(None)] * proj.ndim
    sl[axis] = slice(0, n)
    return np.ascontiguousarray(out[tuple(sl)], dtype=np.float32)


def voxel_cutoff(sample_mm: float, grid: VolumeGrid) -> float:
    """The filter cut-off (fraction of the detector's Nyquist frequency) that band-limits the
    image to the grid: ``min(1, sample_mm / voxel)``, ``sample_mm`` being the detector sampling at
    the isocentre. Without it, a grid coarser than the detector sampling point-samples detail it
    cannot hold, and aliasing (moire, streaks) lands on every voxel."""
    voxel = min(float(grid.voxel[0]), float(grid.voxel[1]))
    return min(1.0, float(sample_mm) / voxel) if voxel > 0 else 1.0


def iso_sampling(geom: CTGeometry) -> float:
    """Column sampling at the isocentre (mm)."""
    return geom.col_pitch * geom.sid / geom.sdd


def short_response(resp: np.ndarray, n: int) -> np.ndarray:
    """The same filter as ``resp`` (a :func:`ramp_kernel` response for ``2 (resp.size - 1)``
    samples) for inputs of ``n`` samples, on a shorter FFT of ``2 next_fast_len(n)`` samples.

    Zero padded to ``n_pad >= 2 n - 1``, the filter is the linear convolution with the kernel
    ``irfft(resp)`` (even, real) and only its taps ``|d| <= n - 1`` meet the data; this keeps
    exactly those taps, so the filtered values are the same up to rounding (float32 FFTs: ~1e-6
    of the largest value). Returns ``resp`` itself when the shorter FFT is not shorter."""
    n_pad = 2 * (resp.size - 1)
    n2 = 2 * sfft.next_fast_len(int(n), real=True)
    if n2 >= n_pad or n < 1:
        return resp
    k = sfft.irfft(np.asarray(resp, dtype=np.float64), n=n_pad)
    k2 = np.zeros(n2)
    k2[:n] = k[:n]
    if n > 1:
        k2[n2 - n + 1:] = k[n_pad - n + 1:]
    return np.real(sfft.rfft(k2))


def filter_axis(p: np.ndarray, resp: np.ndarray, axis: int) -> np.ndarray:
    n = p.shape[axis]
    n_pad = 2 * (resp.size - 1)
    shape = [1] * p.ndim
    shape[axis] = resp.size
    spec = sfft.rfft(p, n=n_pad, axis=axis, workers=-1)
    spec *= resp.astype(np.float32).reshape(shape)
    out = sfft.irfft(spec, n=n_pad, axis=axis, workers=-1)
    sl = [slice(None)] * p.ndim
    sl[axis] = slice(0, n)
    return np.ascontiguousarray(out[tuple(sl)], dtype=np.float32)
