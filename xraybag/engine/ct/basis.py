"""Dual-energy basis functions: Compton / photoelectric, after Alvarez & Macovski.

Model (Alvarez & Macovski 1976, as used by DEBISim). Between the energies of a security CT
spectrum (~20-160 keV) the linear attenuation coefficient of any material is written as::

    mu(E) ~= a_c f_KN(E) + a_p f_p(E)           (1/mm)

* ``f_KN(E) = sigma_KN(E) / sigma_KN(E_ref)``: the Klein-Nishina total cross-section per electron
  (closed form, :func:`klein_nishina`), normalised to 1 at the reference energy ``E_ref``
  (:data:`REFERENCE_KEV` = 70 keV). Hence ``a_c = n_e sigma_KN(E_ref)`` is the Compton attenuation at
  ``E_ref`` and is proportional to the electron density ``n_e``.
* ``f_p(E) = (E_ref / E)^m``: the photoelectric basis, ``m`` = :data:`PHOTO_EXPONENT` = 3 (the
  textbook E^-3; the exponent is a parameter of every function here). ``a_p`` is the
  photoelectric-like attenuation at ``E_ref``; per electron it grows as ~Z^n, n ~ 3.

Coherent (Rayleigh) scattering and the binding corrections of incoherent scattering, which the
xraydb cross-sections include, have no basis function of their own: they are shared between the
two terms, which the calibration below absorbs.

Image domain (:func:`decompose_images`): reconstruct the two channels' attenuation images first,
then solve a 2x2 system per voxel with spectrum-averaged basis values; this ignores beam hardening.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CALIBRATION_AREAL_DENSITY", "CALIBRATION_ELEMENTS", "ELECTRON_REST_KEV", "PHOTO_EXPONENT",
    "REFERENCE_KEV", "THOMSON_CM2", "basis", "combine_channels", "compton_basis", "decompose_images",
    "effective_basis", "fit_basis", "klein_nishina", "photo_basis",
]

#: Electron rest energy m_e c^2 (keV), CODATA 2018.
ELECTRON_REST_KEV = 510.99895000
#: Classical electron radius r_e (cm), CODATA 2018.
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
#: Thomson cross-section 8 pi r_e^2 / 3 (cm^2): the low-energy limit of Klein-Nishina.
THOMSON_CM2 = 8.0 * math.pi / 3.0 * CLASSICAL_ELECTRON_RADIUS_CM**2
#: Reference energy (keV) where both basis functions equal 1.
REFERENCE_KEV = 70.0
#: Exponent m of the photoelectric basis (E_ref / E)^m.
PHOTO_EXPONENT = 3.0
#: Atomic numbers of the pure elements the Zeff calibration is fitted on (B..Fe).
CALIBRATION_ELEMENTS: tuple[int, ...] = tuple(range(5, 27))
#: Areal density (g/cm2) of the slabs the calibration decomposes (10 cm of water).
CALIBRATION_AREAL_DENSITY = 10.0


# ----------------------------------------------------------------------------- basis functions


def klein_nishina(energies_kev) -> np.ndarray:
    """Klein-Nishina total cross-section per free electron (cm^2) at ``energies_kev`` (keV).

    ``sigma = 2 pi r_e^2 { (1+k)/k^2 [2(1+k)/(1+2k) - ln(1+2k)/k] + ln(1+2k)/(2k)
    - (1+3k)/(1+2k)^2 }`` with ``k = E / m_e c^2``; below k = 1e-3 (0.5 keV), where the closed
    form cancels badly, its Taylor series ``sigma_T (1 - 2k + 26k^2/5 - 133k^3/10 + 1144k^4/35)``.
    """
    k = np.asarray(energies_kev, dtype=np.float64) / ELECTRON_REST_KEV
    if np.any(k < 0) or not np.all(np.isfinite(k)):
        raise ValueError("energies must be finite and >= 0 keV")
    small = k < 1e-3
    ks = np.where(small, 1.0, k)  # keep the closed form away from 0
    l2k = np.log1p(2.0 * ks)
    closed = 2.0 * math.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * (
        (1.0 + ks) / ks**2 * (2.0 * (1.0 + ks) / (1.0 + 2.0 * ks) - l2k / ks)
        + l2k / (2.0 * ks)
        - (1.0 + 3.0 * ks) / (1.0 + 2.0 * ks) ** 2
    )
    series = THOMSON_CM2 * (1.0 + k * (-2.0 + k * (26.0 / 5.0 + k * (-133.0 / 10.0 + k * 1144.0 / 35.0))))
    return np.where(small, series, closed)


def compton_basis(energies_kev, e_ref: float = REFERENCE_KEV) -> np.ndarray:
    """``f_KN(E) = sigma_KN(E) / sigma_KN(E_ref)`` (dimensionless, 1 at ``e_ref``)."""
    return klein_nishina(energies_kev) / klein_nishina(e_ref)


def photo_basis(energies_kev, e_ref: float = REFERENCE_KEV,
                exponent: float = PHOTO_EXPONENT) -> np.ndarray:
    """``f_p(E) = (E_ref / E)^m`` (dimensionless, 1 at ``e_ref``)."""
    e = np.asarray(energies_kev, dtype=np.float64)
    if np.any(e <= 0):
        raise ValueError("energies must be > 0 keV")
    return (float(e_ref) / e) ** float(exponent)


def basis(energies_kev, e_ref: float = REFERENCE_KEV,
          exponent: float = PHOTO_EXPONENT) -> np.ndarray:
    """Both basis functions: (2, E) float64, rows ``f_KN``, ``f_p``."""
    return np.stack([compton_basis(energies_kev, e_ref), photo_basis(energies_kev, e_ref, exponent)])


def _spectrum_weights(weights, n_energies: int) -> np.ndarray:
    """(E,) fitting weights from None (uniform), (E,) or (E, C) channel weights (each channel
    normalised to sum 1, then summed)."""
    if weights is None:
        return np.ones(n_energies)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = (w / w.sum(axis=0)).sum(axis=1)
    if w.shape != (n_energies,) or np.any(w < 0) or not np.all(np.isfinite(w)) or not w.sum() > 0:
        raise ValueError(f"weights: expected {n_energies} finite non-negative values, not all 0")
    return w


def fit_basis(mu_of_e, energies_kev, weights=None, *, e_ref: float = REFERENCE_KEV,
              exponent: float = PHOTO_EXPONENT):
    """Weighted least-squares coefficients ``(a_c, a_p)`` (1/mm) of ``mu(E)`` on the basis.

    Minimises ``sum_E w(E) (mu(E) - a_c f_KN(E) - a_p f_p(E))^2``. ``mu_of_e``: (..., E)
    attenuation (1/mm) on ``energies_kev`` (several materials at once along leading axes);
    ``weights``: None (uniform over the grid), (E,), or (E, C) channel weights such as
    ``ChannelResponse.weights`` (each channel normalised to sum 1, then summed). Returns two
    arrays of shape ``mu_of_e.shape[:-1]`` (floats for a single material).
    """
    e = np.asarray(energies_kev, dtype=np.float64)
    mu = np.asarray(mu_of_e, dtype=np.float64)
    if mu.shape[-1:] != e.shape or e.ndim != 1:
        raise ValueError(f"mu_of_e has shape {mu.shape}; expected (..., {e.size})")
    w = _spectrum_weights(weights, e.size)
    b = basis(e, e_ref, exponent)  # (2, E)
    gram = (b * w) @ b.T  # (2, 2)
    rhs = mu @ (b * w).T  # (..., 2)
    sol = np.linalg.solve(gram, rhs[..., None])[..., 0] if rhs.ndim > 1 else np.linalg.solve(gram, rhs)
    a_c, a_p = sol[..., 0], sol[..., 1]
    if mu.ndim == 1:
        return float(a_c), float(a_p)
    return a_c, a_p


def effective_basis(energies_kev, weights, *, e_ref: float = REFERENCE_KEV,
                    exponent: float = PHOTO_EXPONENT) -> np.ndarray:
    """(C, 2) open-beam (thin-object) averages of ``f_KN`` and ``f_p`` in each channel:
    ``sum_E w_c(E) f(E) / sum_E w_c(E)``. Row c is dp_c/dA at A = 0."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum(axis=0)
    return (basis(energies_kev, e_ref, exponent) @ w).T


def decompose_images(mu_low, mu_high, energies_kev, weights, *, e_ref: float = REFERENCE_KEV,
                     exponent: float = PHOTO_EXPONENT):
    """Image-domain decomposition of two reconstructed attenuation images (1/mm) -> ``(a_c, a_p)``.

    Solves ``mu_c = a_c <f_KN>_c + a_p <f_p>_c`` per voxel with the open-beam averages of
    :func:`effective_basis` (``weights``: (E, 2) channel weights, low then high). An
    approximation: it ignores beam hardening (the spectrum seen by a voxel is hardened by
    everything in front of it, and the reconstructions carry cupping / streaks), so ``a_p`` is
    biased low in and behind thick or dense objects; the projection-domain :class:`Decomposer`
    does not have this bias. Output dtype float32 if both inputs are float32, else float64.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 2:
        raise ValueError(f"weights has shape {w.shape}; expected (E, 2) for the low, high channels")
    m = effective_basis(energies_kev, w, e_ref=e_ref, exponent=exponent)
    inv = np.linalg.inv(m)
    lo = np.asarray(mu_low)
    hi = np.asarray(mu_high)
    dtype = np.float32 if (lo.dtype == np.float32 and hi.dtype == np.float32) else np.float64
    lo64 = lo.astype(np.float64, copy=False)
    hi64 = hi.astype(np.float64, copy=False)
    a_c = (inv[0, 0] * lo64 + inv[0, 1] * hi64).astype(dtype, copy=False)
    a_p = (inv[1, 0] * lo64 + inv[1, 1] * hi64).astype(dtype, copy=False)
    return a_c, a_p


def combine_channels(*responses, channels=None):
    """Two (or more) detector responses on one energy grid: ``(energies, weights (E, K))``.

    For kVp switching: ``combine_channels(response_80kvp, response_160kvp)`` with each response a
    :class:`~xraybag.engine.xray.detect.ChannelResponse` (or an ``(energies, weights)`` pair) gives the
    (E, 2) low/high weights the :class:`Decomposer` takes. ``channels``: which channel of each
    response (index or name; default: the first, e.g. ``total``). The grids must agree where they
    overlap (same bin centres); a bin missing from a response gets weight 0.
    """
    items = []
    for i, r in enumerate(responses):
        if isinstance(r, tuple):
            e, w, names = r[0], r[1], None
        else:
            e, w, names = r.energies, r.weights, list(r.channels)
        e = np.asarray(e, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64).reshape(e.size, -1)
        pick = 0 if channels is None else channels[i]
        if isinstance(pick, str):
            if names is None or pick not in names:
                raise ValueError(f"response {i} has no channel {pick!r}")
            pick = names.index(pick)
        items.append((e, w[:, int(pick)]))
    grid = np.unique(np.concatenate([e for e, _ in items]))
    for e, _ in items:  # within its own range, a grid must hold every bin of the union
        if np.count_nonzero((grid >= e.min()) & (grid <= e.max())) != np.unique(e).size:
            raise ValueError("the responses' energy grids do not align (different bin centres)")
    out = np.zeros((grid.size, len(items)))
    for k, (e, w) in enumerate(items):
        out[np.searchsorted(grid, e), k] = w
    return grid, out


def out_dtype(*arrays) -> np.dtype:
    """float32 when every input is float32, else float64: the dtype of a decomposition's results."""
    return np.dtype(np.float32) if all(a.dtype == np.float32 for a in arrays) else np.dtype(np.float64)
