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

from xraybag.engine.xray.filters import blur_and_add, lowpass
from xraybag.engine.xray.normals import standard_normal
from xraybag.engine.xray.paths import SparsePaths
from xraybag.engine.xray.scratch import scratch
from xraybag.engine.xray.spectral import (
    dense_signals,
    on_device,
    signal_array,
    sparse_signals,
)
from xraybag.errors import XraybagError
from xraybag.materials.spectra import photons_per_pixel


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


@dataclass(frozen=True)
class NoisePlan:
    """What :func:`detect`'s steps take from a scanner's noise model and its channels' response
    (the CPU's and the GPU's detection alike): which noise steps run, the sums the spectral pass
    makes (``stack``: the channels' weights, and their weights times the quanta's with quantum
    noise), and per channel the quanta's open-beam weight ``q0``."""

    quantum: bool
    electronic: bool
    scatter: object | None  # the scanner's Scatter, or None
    blur: float  # pixels
    sigma_e: float  # electronic noise in transmission units
    stack: np.ndarray  # (E, K) or (E, 2K) float64
    open_beam: np.ndarray  # (K,) float64
    q0: np.ndarray  # (K,) float64, 0 without quantum noise

    def reference(self, c: int) -> tuple[float, float]:
        """(the constant scatter signal, the flat-field reference) of channel ``c``: air reads 1."""
        ref = float(self.open_beam[c])
        if self.scatter is None:
            return 0.0, ref
        return self.scatter.offset * ref, ref * (1.0 + self.scatter.offset + self.scatter.fraction)


def noise_plan(scanner, response: ChannelResponse) -> NoisePlan:
    """The :class:`NoisePlan` of ``scanner`` with ``response``."""
    noise = scanner.noise
    enabled = bool(noise.enabled)
    quantum = enabled and bool(noise.quantum)
    electronic = enabled and noise.electronic > 0
    weights = np.asarray(response.weights, dtype=np.float64)
    quanta = np.asarray(response.quanta, dtype=np.float64)
    open_beam = np.asarray(response.open_beam, dtype=np.float64)
    q0 = (np.array([float(np.sum(weights[:, c] * quanta[:, c]) / open_beam[c]) for c in range(weights.shape[1])])
          if quantum else np.zeros(weights.shape[1]))
    return NoisePlan(
        quantum=quantum, electronic=electronic, scatter=noise.scatter if enabled else None,
        blur=float(noise.blur) if enabled else 0.0,
        sigma_e=float(noise.electronic) / float(scanner.detector.white) if electronic else 0.0,
        stack=np.concatenate([weights, weights * quanta], axis=1) if quantum else weights,
        open_beam=open_beam, q0=q0)


def detect_view(L: np.ndarray, materials: list[str], scanner, response: ChannelResponse, library,
                pixel_mm: float, draws) -> dict[str, np.ndarray]:
    """One 2D view's :func:`detect` with counter-based draws (``draws``, :mod:`.counter`) on the
    CPU: ``{channel: (rows, cols) float64}``."""
    return detect(L, materials, scanner, response, library, None, pixel_mm, draws=draws)


#: A 2D view's whole detection (:func:`detect_view`'s arguments) by backend name: the CPU's is
#: the reference; the GPU's (:func:`.detect_cuda.detect_view_cuda`, every step on the GPU, the
#: same draws) joins as "cuda" when :func:`xraybag.engine.xray.devices.probe_cuda` finds a GPU.
DETECT_VIEW = {"numba": detect_view}

#: The spectral pass by backend name: the numba CPU pass is the reference; the CUDA pass
#: (:mod:`.detect_cuda`) joins as "cuda" when :func:`xraybag.engine.xray.devices.probe_cuda`
#: finds a GPU.
SPECTRAL = {"numba": dense_signals}


def detect(
    L: np.ndarray,
    materials: list[str],
    scanner,
    response: ChannelResponse,
    library,
    rng: np.random.Generator,
    pixel_mm: float,
    spectral: str = "numba",
    threads: bool = False,
    draws=None,
) -> dict[str, np.ndarray]:
    """Measured transmission I/I0 of every channel: ``{channel: (..., rows, cols) float64}``.

    ``L``: (rows, cols, M) path lengths (mm) through ``materials`` (or a view's
    :class:`~.paths.SparsePaths`, read by :func:`sparse_signals`), or (views, rows, cols, M) for a
    stack of images (CT views; scatter and blur then act on each image alone), float32 on a GPU
    (a numba device array) for the GPU's spectral pass; ``pixel_mm``: pixel pitch (mm),
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
    of the pixels below :data:`NORMAL_ABOVE` quanta, then one Gaussian image per channel (normals
    from :func:`xraybag.engine.xray.normals.standard_normal`, the generator's raw bits).
    ``spectral`` names the backend of step 1 (:data:`SPECTRAL`); the noise is drawn on the CPU
    whatever it is. ``threads``: the CPU pass on numba's threads (see :func:`dense_signals`), and
    so are the scatter low-pass, the quantum draws' arithmetic and the blur (the draws themselves
    stay in order on one thread: the same numbers and draws for any number of threads).
    ``draws`` (a :class:`xraybag.engine.xray.counter.CounterDraws`): the noise is drawn by
    counter instead (:mod:`.counter`: Philox words per view, pixel and channel, the quantum
    count of a dim pixel by inversion), ``rng`` is not touched, and a view's draws are the same
    whatever else is detected with it, on any number of threads or on a GPU.
    """
    if spectral not in SPECTRAL:
        raise XraybagError(f"spectral pass {spectral!r} is not available; available: {', '.join(sorted(SPECTRAL))}")
    if isinstance(L, SparsePaths):
        if spectral != "numba":  # the entries are the CPU pass's layout
            L = L.dense()
    elif not on_device(L):
        L = np.asarray(L)
    elif spectral == "numba":  # path lengths on a GPU stay there for the GPU's pass only
        L = L.copy_to_host()
    sparse = isinstance(L, SparsePaths)
    dims = tuple(L.shape)
    if len(dims) not in (3, 4) or dims[-1] != len(materials):
        raise ValueError(f"L has shape {dims}; expected ([views,] rows, cols, {len(materials)})")
    lead = dims[:-3]
    rows, cols, m = dims[-3:]
    batch = int(np.prod(lead, dtype=np.int64))
    shape = (batch, rows, cols)
    plan = noise_plan(scanner, response)
    quantum, electronic, scatter = plan.quantum, plan.electronic, plan.scatter
    channels = list(response.channels)
    n_ch = len(channels)

    mu = mu_table(materials, library, response.energies)
    # the sums, and the signals and normals that the blur pass takes, are temporaries of this
    # call: the thread's scratch memory, not fresh pages each view (what it returns is new)
    n_px = batch * rows * cols
    n_sums = plan.stack.shape[1]
    if sparse or spectral == "numba":  # the CPU's passes (a GPU's makes its own array)
        sums_out = signal_array(n_px, n_sums, scratch("detect.sums", (n_sums, n_px)))
        if sparse:
            sums = sparse_signals(L, mu, plan.stack, stride=cols, threads=threads, out=sums_out)
        else:
            sums = dense_signals(L.reshape(n_px, m), mu, plan.stack, stride=cols, threads=threads, out=sums_out)
    else:
        sums = SPECTRAL[spectral](L.reshape(n_px, m), mu, plan.stack, stride=cols, threads=threads)
    blurred = plan.blur > 0 or electronic  # the signals are then inputs of blur_and_add

    signals: list[np.ndarray] = []
    normals: list[np.ndarray | None] = [None] * n_ch  # counter draws: the electronic normals
    for c in range(n_ch):
        mean = sums[:, c].reshape(shape)
        shift, ref = plan.reference(c)
        extra = None
        if scatter is not None:
            if scatter.fraction > 0:
                sigma = float(scatter.width) / float(pixel_mm)
                extra = lowpass(mean, sigma, scatter.fraction, shift, threads=threads,
                                out=scratch("detect.scatter", shape))
            else:
                extra = np.full(shape, shift)
        q0 = float(plan.q0[c])
        if draws is not None and (quantum or electronic):
            from xraybag.engine.xray.counter import channel_noise

            signal, normals[c] = channel_noise(
                sums, c, c, n_ch + c, extra, q0, ref, rows * cols, draws, quantum, electronic, threads,
                out=scratch(f"detect.signal{c}", n_px) if blurred else None,
                ze=scratch(f"detect.normals{c}", n_px, np.float32) if electronic else None)
        elif quantum:
            signal = _quantum_transmission(sums, c, n_ch + c, extra, q0, ref, rng, threads)
        if not quantum:
            signal = mean + extra if extra is not None else mean.copy()
            signal /= ref
        signals.append(signal.reshape(shape))

    # blur, then electronic noise (one float32 normal image per channel, in channel order), in
    # one pass per channel
    blur, sigma_e = plan.blur, plan.sigma_e
    out: dict[str, np.ndarray] = {}
    for c, name in enumerate(channels):
        t = signals[c]
        z = normals[c] if draws is not None else standard_normal(rng, batch * rows * cols) if electronic else None
        if blur > 0 or z is not None:
            t = blur_and_add(t, blur, z, sigma_e, threads=threads)
        out[name] = np.ascontiguousarray(t, dtype=np.float64).reshape(lead + (rows, cols))
    return out


#: quanta per pixel from which a Poisson draw is replaced by its normal approximation rounded to
#: whole quanta (same mean and variance + 1/12; skewness 1/sqrt(lambda) <= 0.05 left out; total
#: variation distance to the Poisson law ~0.01 at 400): about 6x faster on a view of ~10^4 quanta
NORMAL_ABOVE = 400.0


@numba.njit(cache=True, nogil=True, error_model="numpy")  # IEEE division: no checks, vectorised
def _normal_quanta(sums, c_mean, c_var, extra, q0, ref, z, out, small, lam_small, scale_small):
    """The quantum-noise draw of :func:`_scaled_poisson`, pixel by pixel, for pixel ``p`` of
    channel mean ``sums[p, c_mean] (+ extra[p])`` and variance ``sums[p, c_var] (+ extra[p] q0)``:
    ``out[p] = k v / m / ref`` with ``k = max(0, rint(lambda + sqrt(lambda) z[p]))``. Pixels of
    fewer than :data:`NORMAL_ABOVE` quanta are listed in ``small`` with their lambda and quantum
    weight, for Poisson draws; returns how many. The arithmetic is numpy's, step by step; blocks
    of pixels go through branch-free loops (vectorised by the compiler) and the listing after."""
    n = 0
    has_extra = extra.size > 0
    block = 1024
    mb = np.empty(block)
    vb = np.empty(block)
    lam_b = np.empty(block)
    scale_b = np.empty(block)
    for p0 in range(0, out.size, block):
        nb = min(block, out.size - p0)
        if has_extra:
            for i in range(nb):
                e = extra[p0 + i]
                vb[i] = sums[p0 + i, c_var] + e * q0
                mb[i] = sums[p0 + i, c_mean] + e
        else:
            for i in range(nb):
                vb[i] = sums[p0 + i, c_var]
                mb[i] = sums[p0 + i, c_mean]
        for i in range(nb):
            m = mb[i]
            v = vb[i]
            ok = (m > 0) & (v > 0)
            scale = v / m if ok else 0.0
            lam = m / scale if ok else 0.0
            k = np.float64(z[p0 + i]) * np.sqrt(lam)
            k += lam
            k = max(np.rint(k), 0.0)
            out[p0 + i] = k * scale / ref
            lam_b[i] = lam
            scale_b[i] = scale
        for i in range(nb):
            if lam_b[i] < NORMAL_ABOVE:
                small[n] = p0 + i
                lam_small[n] = lam_b[i]
                scale_small[n] = scale_b[i]
                n += 1
    return n


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _normal_quanta_threads(sums, c_mean, c_var, extra, q0, ref, z, out, lam_all, scale_all):
    """:func:`_normal_quanta`'s arithmetic, the same steps pixel by pixel, on numba's threads in
    blocks of pixels; each pixel's lambda and quantum weight go to ``lam_all`` / ``scale_all``
    (the caller lists the pixels under :data:`NORMAL_ABOVE`, in order)."""
    n = out.size
    has_extra = extra.size > 0
    block = 1024
    for b in numba.prange((n + block - 1) // block):
        p0 = b * block
        for p in range(p0, min(p0 + block, n)):
            if has_extra:
                e = extra[p]
                v = sums[p, c_var] + e * q0
                m = sums[p, c_mean] + e
            else:
                v = sums[p, c_var]
                m = sums[p, c_mean]
            ok = (m > 0) & (v > 0)
            scale = v / m if ok else 0.0
            lam = m / scale if ok else 0.0
            k = np.float64(z[p]) * np.sqrt(lam)
            k += lam
            k = max(np.rint(k), 0.0)
            out[p] = k * scale / ref
            lam_all[p] = lam
            scale_all[p] = scale


def _quantum_transmission(sums, c_mean: int, c_var: int, extra, q0: float, ref: float,
                          rng: np.random.Generator, threads: bool = False) -> np.ndarray:
    """:func:`_scaled_poisson` of one channel, divided by ``ref``, as one compiled pass (the same
    draws in the same order, the same numbers): ``sums`` (n, 2C) holds the channels' noise-free
    means and variances, ``extra`` the scatter signal (or None), ``q0`` its quantum weight.
    ``threads``: the arithmetic on numba's threads (:func:`_normal_quanta_threads`); the draws are
    the same, in the same order."""
    n = sums.shape[0]
    z = standard_normal(rng, n)
    extra = np.empty(0) if extra is None else np.ascontiguousarray(extra, dtype=np.float64).reshape(-1)
    out = np.empty(n)
    if threads:
        lam = np.empty(n)
        scale = np.empty(n)
        _normal_quanta_threads(sums, c_mean, c_var, extra, q0, ref, z, out, lam, scale)
        small = np.flatnonzero(lam < NORMAL_ABOVE)
        if small.size:
            counts = rng.poisson(lam[small])
            out[small] = counts * scale[small] / ref
        return out
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
    k = standard_normal(rng, lam.size).reshape(lam.shape).astype(np.float64)
    k *= np.sqrt(lam)
    k += lam
    np.rint(k, out=k)
    np.maximum(k, 0.0, out=k)
    small = lam < NORMAL_ABOVE
    if small.any():
        k[small] = rng.poisson(lam[small])
    np.multiply(k, scale, out=scale)
    return scale


def to_raw(transmission: np.ndarray, detector=None, *, white: float | None = None) -> np.ndarray:
    """Raw 16-bit signal as a scanner stores it: ``round(clip(T * white, 0, 65535))`` as uint16,
    with ``white`` the ``detector``'s (or given: the raw counts of the open beam)."""
    if white is None:
        if detector is None:
            raise TypeError("to_raw needs a detector or white")
        white = detector.white
    t = np.ascontiguousarray(transmission, dtype=np.float64)
    out = np.empty(t.shape, dtype=np.uint16)
    _raw(t.reshape(-1), float(white), out.reshape(-1))
    return out


@numba.njit(cache=True, nogil=True)
def _raw(t, white, out):
    """:func:`to_raw`'s numpy steps in one pass: ``rint(clip(t * white, 0, 65535))`` as uint16
    (float64; a NaN gives 0, as numpy's conversion does on this machine's x86 CPUs)."""
    for p in range(t.size):
        v = t[p] * white
        if not v >= 0.0:  # below 0, and a NaN
            v = 0.0
        if v > 65535.0:  # noqa: PLR1730
            v = 65535.0
        out[p] = np.uint16(np.rint(v))


def spectral_memory(
    rows: int, cols: int, n_materials: int, n_energies: int, n_channels: int = 2
) -> int:
    """Peak bytes of :func:`detect` for a (rows, cols) view, including the float32 path-length
    array ``L`` it reads (rows * cols * n_materials * 4 bytes)."""
    n = int(rows) * int(cols)
    n_out = 2 * int(n_channels)
    path_lengths = n * int(n_materials) * 4
    work = 8 * int(n_energies)  # the compiled pass's exponent and scale of one pixel
    sums = n * n_out * 8
    # per channel while drawing: mean/var views, scatter, total, lambda, counts, signal; then the
    # outputs (one image per channel) and a blur temporary
    images = n * 8 * (7 + int(n_channels) + 1)
    return int(path_lengths + work + sums + images)
