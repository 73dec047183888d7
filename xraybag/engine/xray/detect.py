"""The spectral pass: from path lengths per material to measured detector signals.

The geometric pass gives, for every pixel of a view, the path length (mm) through each of M
materials: ``L`` of shape (rows, cols, M). Every channel's signal is then a small dense product::

    I_c = sum_E W_c(E) exp(-sum_m mu_m(E) L_m)        W_c(E) = N(E) D_c(E)

with N(E) the open-beam photons per pixel in energy bin E and D_c(E) the channel's mean response
per incident photon. It is computed as ``(L @ mu) -> exp -> @ W`` in pixel chunks (never a Python
loop over energies), so energies, channels and noise realisations reuse one geometric pass.

Detector model (:func:`channel_response`): a photon that interacts in a scintillator layer is
assumed to deposit its full energy there (no K-fluorescence escape, no partial Compton deposit, no
optical-photon statistics), so an energy-integrating layer of thickness t weighs a photon of energy
E by ``E (1 - exp(-mu(E) t))`` (keV) and a photon-counting layer by ``1 - exp(-mu(E) t)``.

Noise (:func:`detect`), in this order: scatter (a constant offset plus a smooth low-frequency
fraction of the primary), quantum noise (the exact mean and variance of the compound Poisson
signal, drawn as a scaled Poisson), detector blur (scintillator light spread), then Gaussian
electronic noise. Everything random comes from the caller's ``numpy.random.Generator`` in a fixed
order, so the same seed gives the same bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.ndimage import gaussian_filter

from xraybag.errors import XraybagError
from xraybag.materials.spectra import photons_per_pixel

#: Working memory of one chunk of the dense product (bytes).
CHUNK_BYTES = 16 * 2**20  # small chunks stay in cache and avoid page-faulting fresh memory


@dataclass
class ChannelResponse:
    """A detector's response to a source, on the source's energy grid.

    energies: (E,) keV, bin centres.
    weights: (E, C) open-beam photons per pixel in each bin times the channel's mean response per
        incident photon (keV for energy-integrating channels, counts for photon counting).
    channels: C channel names (``total``; ``low``, ``high``; ``bin0``, ``bin1``, ...).
    quanta: (E, C) the weight of one *detected* photon (keV, or 1 count); the signal's variance
        is ``sum_E weights * quanta * exp(-mu L)``.
    open_beam: (C,) noise-free open-beam signal per pixel (``weights.sum(0)``).
    photons: (E,) open-beam photons per pixel in each bin.
    """

    energies: np.ndarray
    weights: np.ndarray
    channels: list[str]
    quanta: np.ndarray
    open_beam: np.ndarray
    photons: np.ndarray | None = field(default=None)


# ------------------------------------------------------------------------------ attenuation


_MU_CACHE: OrderedDict = OrderedDict()
_MU_CACHE_SIZE = 64


def mu_table(materials, library, energies) -> np.ndarray:
    """Linear attenuation (1/mm) of each material at each energy: (M, E) float64, read-only.

    Cached per (library object, material names, energy grid); the cache keeps the library alive,
    so a new library with the same id can never read another library's entries.
    """
    energies = np.ascontiguousarray(energies, dtype=np.float64)
    names = tuple(materials)
    key = (id(library), names, energies.tobytes())
    hit = _MU_CACHE.get(key)
    if hit is not None and hit[0] is library:
        _MU_CACHE.move_to_end(key)
        return hit[1]
    table = np.empty((len(names), energies.size), dtype=np.float64)
    for i, name in enumerate(names):
        table[i] = np.asarray(library.get(name).mu(energies), dtype=np.float64)
    table.flags.writeable = False
    _MU_CACHE[key] = (library, table)
    while len(_MU_CACHE) > _MU_CACHE_SIZE:
        _MU_CACHE.popitem(last=False)
    return table


def _transmission(layer, library, energies: np.ndarray) -> np.ndarray:
    """exp(-mu(E) t) of a detector layer."""
    mu = mu_table([layer.material], library, energies)[0]
    return np.exp(-mu * float(layer.thickness))


# ------------------------------------------------------------------------------ detector response


def channel_response(scanner, library, pixel_area_mm2: float, distance_mm: float) -> ChannelResponse:
    """The response of ``scanner.detector`` to ``scanner.spectrum`` for one pixel.

    ``pixel_area_mm2``: the pixel's area facing the source; ``distance_mm``: source to detector
    (both only set the photon count, hence the noise level, unless ``spectrum.photons`` is given).

    * ``integrating``: channel ``total``, D(E) = E (1 - exp(-mu_layer t)).
    * ``dual_sandwich``: ``low`` = E (1 - exp(-mu_front t_front)); ``high`` = E exp(-mu_front
      t_front) exp(-mu_filter t_filter) (1 - exp(-mu_rear t_rear)).
    * ``photon_counting``: ``bin0``... for [t0, t1), ..., [t_last, inf): D_k(E) = (1 - exp(-mu_layer
      t)) 1[E in bin k] (counts). Photons below the first threshold are not counted.
    """
    energies, photons = photons_per_pixel(scanner.spectrum, library, pixel_area_mm2, distance_mm)
    det = scanner.detector
    e = energies
    if det.type == "integrating":
        channels = ["total"]
        prob = (1.0 - _transmission(det.layer, library, e))[:, None]
        quanta = e[:, None].copy()
    elif det.type == "dual_sandwich":
        channels = ["low", "high"]
        front = _transmission(det.front, library, e)
        behind = front * _transmission(det.filter, library, e)
        rear = 1.0 - _transmission(det.rear, library, e)
        prob = np.stack([1.0 - front, behind * rear], axis=1)
        quanta = np.repeat(e[:, None], 2, axis=1)
    elif det.type == "photon_counting":
        edges = [float(t) for t in det.thresholds] + [np.inf]
        channels = [f"bin{k}" for k in range(len(edges) - 1)]
        absorbed = 1.0 - _transmission(det.layer, library, e)
        inside = np.stack([(e >= lo) & (e < hi) for lo, hi in zip(edges, edges[1:])], axis=1)
        quanta = inside.astype(np.float64)
        prob = absorbed[:, None] * quanta
    else:  # pragma: no cover - the model forbids it
        raise ValueError(f"unknown detector type {det.type!r}")
    weights = photons[:, None] * prob * quanta
    open_beam = weights.sum(axis=0)
    empty = [c for c, ob in zip(channels, open_beam) if not ob > 0]
    if empty:
        raise XraybagError(
            f"scanner {scanner.name}: detector channel {empty[0]} receives no photons from the "
            "spectrum (check the thresholds against the source energies)"
        )
    return ChannelResponse(
        energies=energies,
        weights=weights,
        channels=channels,
        quanta=quanta,
        open_beam=open_beam,
        photons=photons,
    )


# ------------------------------------------------------------------------------ the dense product


def lowpass(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian low-pass of ``img`` (sigma in pixels, edges 'nearest') over its last two axes;
    a leading axis (a stack of CT views) is filtered image by image.

    Wide kernels (the scatter term's tens of pixels) are applied on a block-averaged copy and
    interpolated back: within ~2 % of the smooth term (so ~1e-4 of a signal whose scatter is a few
    per cent) and ~7x faster than the direct convolution. An axis too short for blocks (a CT
    detector's few rows) is filtered directly.
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
        return out if stack else out[0]
    pr, pc = (-rows) % fr, (-cols) % fc
    padded = np.pad(img, ((0, 0), (0, pr), (0, pc)), mode="edge")
    b, pr_, pc_ = padded.shape
    small = padded.reshape(b, pr_ // fr, fr, pc_ // fc, fc).mean(axis=(2, 4))
    small = gaussian_filter(small, (0.0, sigma_px / fr, sigma_px / fc), mode="nearest")
    out = _upsample(small, rows, fr, axis=1)
    out = _upsample(out, cols, fc, axis=2)
    return out if stack else out[0]


def _upsample(small: np.ndarray, n: int, f: int, axis: int) -> np.ndarray:
    """Linear interpolation of block centres ((f - 1) / 2 + f k) back to ``n`` pixels along ``axis``."""
    if f == 1:
        return small
    m = small.shape[axis]
    if m == 1:
        return np.repeat(small, n, axis=axis)
    x = np.clip((np.arange(n) - (f - 1) / 2) / f, 0, m - 1)
    i0 = np.minimum(x.astype(np.intp), m - 2)
    w = x - i0
    shape = [1, 1, 1]
    shape[axis] = n
    w = w.reshape(shape)
    return np.take(small, i0, axis=axis) * (1 - w) + np.take(small, i0 + 1, axis=axis) * w


def _chunk_pixels(n_materials: int, n_energies: int, n_out: int) -> int:
    """Pixels per chunk: float32 copies of L (2 M), exponent (E), products (K), index (8 B)."""
    per_pixel = 4 * (2 * n_materials + n_energies + n_out) + 8
    return max(1, CHUNK_BYTES // per_pixel)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _exponents(L2, mu, start, stop, stride, expo, hit, dup):
    """``expo[q] = -(L2[p] @ mu)`` for the pixels p in [start, stop) that cross anything.

    Pixels usually cross a few of the M materials, so only their non-zero path lengths are
    accumulated (a sparse product, vectorised along the energy axis). A pixel whose path lengths
    equal those of pixel ``p - stride`` (the same detector element one row earlier: a line scanner
    sees the same bag walls row after row) is not computed but listed in ``dup``. Returns the
    number of computed pixels (indices in ``hit``) and of duplicates.
    """
    n_e = mu.shape[1]
    m_all = L2.shape[1]
    q = 0
    nd = 0
    for p in range(start, stop):
        same = stride > 0 and p >= stride
        empty = True
        for m in range(m_all):
            v = L2[p, m]
            if v != 0.0:
                empty = False
            if same and v != L2[p - stride, m]:
                same = False
        if empty:
            continue
        if same:
            dup[nd] = p
            nd += 1
            continue
        first = True
        for m in range(m_all):
            v = L2[p, m]
            if v != 0.0:
                if first:
                    for e in range(n_e):
                        expo[q, e] = -v * mu[m, e]
                    first = False
                else:
                    for e in range(n_e):
                        expo[q, e] -= v * mu[m, e]
        hit[q] = p
        q += 1
    return q, nd


@numba.njit(cache=True, nogil=True)
def _copy_rows(out, dup, nd, stride):
    for d in range(nd):  # in increasing order, so chains of duplicates resolve
        p = dup[d]
        for k in range(out.shape[1]):
            out[p, k] = out[p - stride, k]


def dense_signals(L2: np.ndarray, mu: np.ndarray, weights: np.ndarray, stride: int = 0) -> np.ndarray:
    """``exp(-L2 @ mu) @ weights`` in pixel chunks: (n, M), (M, E), (E, K) -> (n, K) float64.

    The exponent and the exponentials are float32 (relative error ~1e-7 of the exponent, far below
    the 1e-4 the model promises); each chunk is bounded by :data:`CHUNK_BYTES`. Pixels that cross
    nothing get the open beam without any arithmetic; with ``stride`` (the image width), a pixel
    identical to the one a row above reuses its result (exactly the same numbers).
    """
    n, m = L2.shape
    n_e, k = weights.shape
    mu32 = np.ascontiguousarray(mu, dtype=np.float32)
    w32 = np.ascontiguousarray(weights, dtype=np.float32)
    out = np.empty((n, k), dtype=np.float64)
    out[:] = np.asarray(weights, dtype=np.float64).sum(axis=0)  # pixels crossing nothing: open beam
    if m == 0 or n == 0:
        return out
    L2 = np.ascontiguousarray(L2, dtype=np.float32)
    step = min(_chunk_pixels(m, n_e, k), n)
    expo = np.empty((step, n_e), dtype=np.float32)
    hit = np.empty(step, dtype=np.int64)
    dup = np.empty(step, dtype=np.int64)
    for start in range(0, n, step):
        q, nd = _exponents(L2, mu32, start, min(start + step, n), int(stride), expo, hit, dup)
        if q:
            x = expo[:q]
            np.exp(x, out=x)
            out[hit[:q]] = x @ w32
        if nd:
            _copy_rows(out, dup, nd, int(stride))
    return out


def detect(
    L: np.ndarray,
    materials: list[str],
    scanner,
    response: ChannelResponse,
    library,
    rng: np.random.Generator,
    pixel_mm: float,
) -> dict[str, np.ndarray]:
    """Measured transmission I/I0 of every channel: ``{channel: (..., rows, cols) float64}``.

    ``L``: (rows, cols, M) path lengths (mm) through ``materials``, or (views, rows, cols, M) for a
    stack of images (CT views; scatter and blur then act on each image alone); ``pixel_mm``: pixel pitch (mm),
    which converts the scatter width to pixels. Steps (noise steps only when ``noise.enabled``):

    1. noise-free primary signal (the dense product);
    2. scatter: ``offset * open_beam + fraction * gaussian_filter(primary, width / pixel_mm)``;
    3. quantum noise: with mean m and variance v of the compound Poisson signal (scatter counted
       with the open beam's mean quantum weight), ``k ~ Poisson(m^2 / v)``, signal ``k v / m``
       (above :data:`NORMAL_ABOVE` quanta, Poisson's normal approximation in whole quanta);
    4. blur: ``gaussian_filter(signal, noise.blur)`` (pixels);
    5. electronic noise: Gaussian, ``noise.electronic / detector.white`` in transmission units.

    Flat-field correction divides by the noise-free signal of the empty beam *as the model
    measures it*: ``open_beam * (1 + offset + fraction)`` with scatter, ``open_beam`` without, so
    air reads 1 (``detector.white`` in raw counts) as in a calibrated scanner. With
    ``noise.enabled`` false the result is the exact noise-free primary transmission and ``rng``
    is not touched. Random draws: per channel (channel order) a normal image and the Poisson draws
    of the pixels below :data:`NORMAL_ABOVE` quanta, then one Gaussian image per channel.
    """
    L = np.asarray(L)
    if L.ndim not in (3, 4) or L.shape[-1] != len(materials):
        raise ValueError(f"L has shape {L.shape}; expected ([views,] rows, cols, {len(materials)})")
    lead = L.shape[:-3]
    rows, cols, m = L.shape[-3:]
    batch = int(np.prod(lead, dtype=np.int64))
    shape = (batch, rows, cols)
    noise = scanner.noise
    enabled = bool(noise.enabled)
    quantum = enabled and bool(noise.quantum)
    scatter = noise.scatter if enabled else None
    channels = list(response.channels)
    n_ch = len(channels)
    weights = np.asarray(response.weights, dtype=np.float64)
    quanta = np.asarray(response.quanta, dtype=np.float64)
    stack = np.concatenate([weights, weights * quanta], axis=1) if quantum else weights

    mu = mu_table(materials, library, response.energies)
    sums = dense_signals(L.reshape(batch * rows * cols, m), mu, stack, stride=cols)
    open_beam = np.asarray(response.open_beam, dtype=np.float64)

    signals: list[np.ndarray] = []
    refs: list[float] = []
    for c in range(n_ch):
        mean = sums[:, c].reshape(shape)
        ref = float(open_beam[c])
        extra = None
        if scatter is not None:
            if scatter.fraction > 0:
                sigma = float(scatter.width) / float(pixel_mm)
                extra = lowpass(mean, sigma)
                extra *= scatter.fraction
                extra += scatter.offset * ref
            else:
                extra = np.full(shape, scatter.offset * ref)
            ref *= 1.0 + scatter.offset + scatter.fraction
        if quantum:
            q0 = float(np.sum(weights[:, c] * quanta[:, c]) / open_beam[c])
            signal = _quantum_transmission(sums, c, n_ch + c, extra, q0, ref, rng)
        else:
            signal = mean + extra if extra is not None else mean.copy()
            signal /= ref
        signals.append(signal.reshape(shape))
        refs.append(ref)

    out: dict[str, np.ndarray] = {}
    for c, name in enumerate(channels):
        t = signals[c]
        if enabled and noise.blur > 0:
            t = gaussian_filter(t, (0.0, float(noise.blur), float(noise.blur)), mode="nearest")
        out[name] = np.ascontiguousarray(t, dtype=np.float64).reshape(lead + (rows, cols))
    if enabled and noise.electronic > 0:
        sigma = float(noise.electronic) / float(scanner.detector.white)
        for name in channels:
            out[name] += sigma * rng.standard_normal(lead + (rows, cols), dtype=np.float32)
    return out


#: quanta per pixel from which a Poisson draw is replaced by its normal approximation rounded to
#: whole quanta (same mean and variance + 1/12; skewness 1/sqrt(lambda) <= 0.05 left out; total
#: variation distance to the Poisson law ~0.01 at 400): about 6x faster on a view of ~10^4 quanta
NORMAL_ABOVE = 400.0


@numba.njit(cache=True, nogil=True)
def _normal_quanta(sums, c_mean, c_var, extra, q0, ref, z, out, small, lam_small, scale_small):
    """The quantum-noise draw of :func:`_scaled_poisson`, pixel by pixel in one pass, for pixel
    ``p`` of channel mean ``sums[p, c_mean] (+ extra[p])`` and variance ``sums[p, c_var] (+ extra[p]
    q0)``: ``out[p] = k v / m / ref`` with ``k = max(0, rint(lambda + sqrt(lambda) z[p]))``. Pixels
    of fewer than :data:`NORMAL_ABOVE` quanta are listed in ``small`` with their lambda and
    quantum weight, for Poisson draws; returns how many. The arithmetic is numpy's, step by step."""
    n = 0
    has_extra = extra.size > 0
    for p in range(out.size):
        m = sums[p, c_mean]
        v = sums[p, c_var]
        if has_extra:
            e = extra[p]
            v = v + e * q0
            m = m + e
        if m > 0 and v > 0:
            scale = v / m
            lam = m / scale
        else:
            scale = 0.0
            lam = 0.0
        k = np.float64(z[p]) * np.sqrt(lam)
        k += lam
        k = max(np.rint(k), 0.0)
        if lam < NORMAL_ABOVE:
            small[n] = p
            lam_small[n] = lam
            scale_small[n] = scale
            n += 1
        out[p] = k * scale / ref
    return n


def _quantum_transmission(sums, c_mean: int, c_var: int, extra, q0: float, ref: float,
                          rng: np.random.Generator) -> np.ndarray:
    """:func:`_scaled_poisson` of one channel, divided by ``ref``, as one compiled pass (the same
    draws in the same order, the same numbers): ``sums`` (n, 2C) holds the channels' noise-free
    means and variances, ``extra`` the scatter signal (or None), ``q0`` its quantum weight."""
    n = sums.shape[0]
    z = rng.standard_normal(n, dtype=np.float32)
    extra = np.empty(0) if extra is None else np.ascontiguousarray(extra, dtype=np.float64).reshape(-1)
    out = np.empty(n)
    small = np.empty(n, dtype=np.int64)
    lam_small = np.empty(n)
    scale_small = np.empty(n)
    k = _normal_quanta(sums, c_mean, c_var, extra, q0, ref, z, out, small, lam_small, scale_small)
    if k:
        counts = rng.poisson(lam_small[:k])
        out[small[:k]] = counts * scale_small[:k] / ref
    return out


def _scaled_poisson(mean: np.ndarray, var: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw with the given mean and variance: ``k v / m`` with ``k ~ Poisson(m^2 / v)`` (for
    ``m^2 / v`` of :data:`NORMAL_ABOVE` or more, ``k = rint(lambda + sqrt(lambda) z)``, z standard
    normal). Draws: one float32 normal image, then Poisson draws for the pixels below the limit."""
    ok = (mean > 0) & (var > 0)
    scale = np.divide(var, mean, out=np.zeros_like(mean), where=ok)  # v / m: one quantum's weight
    lam = np.divide(mean, scale, out=np.zeros_like(mean), where=ok)  # m^2 / v quanta
    k = rng.standard_normal(lam.shape, dtype=np.float32).astype(np.float64)
    k *= np.sqrt(lam)
    k += lam
    np.rint(k, out=k)
    np.maximum(k, 0.0, out=k)
    small = lam < NORMAL_ABOVE
    if small.any():
        k[small] = rng.poisson(lam[small])
    np.multiply(k, scale, out=scale)
    return scale


def to_raw(transmission: np.ndarray, detector) -> np.ndarray:
    """Raw 16-bit signal as a scanner stores it: ``round(clip(T * white, 0, 65535))`` as uint16."""
    raw = np.clip(np.asarray(transmission, dtype=np.float64) * float(detector.white), 0, 65535)
    return np.rint(raw).astype(np.uint16)


def spectral_memory(
    rows: int, cols: int, n_materials: int, n_energies: int, n_channels: int = 2
) -> int:
    """Peak bytes of :func:`detect` for a (rows, cols) view, including the float32 path-length
    array ``L`` it reads (rows * cols * n_materials * 4 bytes)."""
    n = int(rows) * int(cols)
    n_out = 2 * int(n_channels)
    chunk = min(n, _chunk_pixels(n_materials, n_energies, n_out))
    path_lengths = n * int(n_materials) * 4
    work = chunk * (4 * (2 * int(n_materials) + int(n_energies) + n_out) + 8)
    sums = n * n_out * 8
    # per channel while drawing: mean/var views, scatter, total, lambda, counts, signal; then the
    # outputs (one image per channel) and a blur temporary
    images = n * 8 * (7 + int(n_channels) + 1)
    return int(path_lengths + work + sums + images)
