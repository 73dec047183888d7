"""Dual-energy decomposition: Compton / photoelectric basis line integrals, Zeff and electron density.

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

Projection domain (:class:`Decomposer`). A ray through path lengths L_m measures, in channel c
(``low``, ``high``: the two layers of a sandwich detector or the two spectra of kVp switching),
``p_c = -ln(sum_E w_c(E) exp(-sum_m mu_m(E) L_m) / sum_E w_c(E))`` with ``w_c`` the open-beam
photons x detector response (:func:`xraybag.engine.detect.channel_response`). With the basis
model the pair ``(p_low, p_high)`` is a function of the two basis line integrals
``A_c = integral a_c dl`` and ``A_p = integral a_p dl`` (mm x 1/mm, dimensionless), and the
decomposition inverts it per ray: by damped Newton-Raphson (``method='newton'``), or by
interpolating a table of Newton solutions on a regular (p_low, p_high) grid (``method='table'``,
the fast default). Reconstructing ``A_c`` and ``A_p`` sinograms gives ``a_c`` and ``a_p`` volumes.

Image domain (:func:`decompose_images`): reconstruct the two channels' attenuation images first,
then solve a 2x2 system per voxel with spectrum-averaged basis values; this ignores beam hardening.

Zeff and electron density (:class:`Calibration`, :func:`calibrate`):

* ``rho_e = a_c / a_c(water)``: electron density relative to water, where ``a_c(water)`` is what
  the same decomposition gives for water (a scanner's water calibration);
* ``Zeff`` from ``a_p / a_c`` through a calibration curve fitted once on the pure elements B..Fe
  (Z = 5-26; xraydb cross-sections through :class:`~xraybag.materials.database.Material`)
  decomposed on the scanner's own channel weights, never on compounds: ``ln Zeff`` is a cubic in
  ``ln(a_p / a_c)`` (elements read back within ~0.02), continued by the power law
  ``a_p / a_c = K Zeff^n`` (the least-squares line, n ~ 3.2) outside the elements' range. For a
  mixture, a_p / a_c is the electron-fraction weighted mean of its elements' values, so this Zeff
  is close to a power-law Zeff with exponent n; against the library's Spiers-type Zeff
  (exponent 2.94) mixtures of very different Z (PVC: H, C and Cl) read up to ~0.25 high.

Both calibrations decompose a slab of the element (or of water) of a fixed areal density
(:data:`CALIBRATION_AREAL_DENSITY`) through the projection model, i.e. with the same beam
hardening as a measured object of that size. With ``thin=True`` they use the thin-slab limit
(the spectrum-averaged basis of the image-domain method) instead.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import numba
import numpy as np

__all__ = [
    "CALIBRATION_AREAL_DENSITY",
    "CALIBRATION_ELEMENTS",
    "Calibration",
    "Decomposer",
    "ELECTRON_REST_KEV",
    "PHOTO_EXPONENT",
    "REFERENCE_KEV",
    "THOMSON_CM2",
    "basis",
    "calibrate",
    "combine_channels",
    "compton_basis",
    "decompose_images",
    "default_calibration",
    "effective_basis",
    "fit_basis",
    "klein_nishina",
    "photo_basis",
    "rho_e",
    "zeff",
    "zeff_rho_e",
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
#: Below this electron density (x water) :func:`zeff` returns 0 (air, empty space).
_AIR_RHO_E = 0.01


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
    :class:`~xraybag.engine.detect.ChannelResponse` (or an ``(energies, weights)`` pair) gives the
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


# ----------------------------------------------------------------------------- the forward model


@numba.njit(cache=True, nogil=True, fastmath=True)
def _forward(ac, ap, fc, fp, w, jac):
    """p_c = -ln(sum_E w_c exp(-ac fc - ap fp)) for c = 0, 1 (``w``: (2, E) each row summing to
    1) and the Jacobian ``jac[c, k] = dp_c / dA_k`` (the attenuated spectrum's mean of basis k).

    The exponentials are shifted by their maximum, so nothing overflows for any finite (ac, ap);
    a channel whose sum underflows (its photons all where the shifted exponential is < 1e-300)
    is summed again with its own shift. Returns (p0, p1)."""
    n_e = fc.shape[0]
    xm = -np.inf
    for e in range(n_e):
        x = -ac * fc[e] - ap * fp[e]
        if x > xm:
            xm = x
    t0 = 0.0
    t1 = 0.0
    c0 = 0.0
    c1 = 0.0
    q0 = 0.0
    q1 = 0.0
    for e in range(n_e):
        t = math.exp(-ac * fc[e] - ap * fp[e] - xm)
        a = w[0, e] * t
        b = w[1, e] * t
        t0 += a
        t1 += b
        c0 += a * fc[e]
        c1 += b * fc[e]
        q0 += a * fp[e]
        q1 += b * fp[e]
    p0 = 0.0
    p1 = 0.0
    if t0 > 1e-250 and t1 > 1e-250:
        p0 = -(xm + math.log(t0))
        p1 = -(xm + math.log(t1))
        jac[0, 0] = c0 / t0
        jac[0, 1] = q0 / t0
        jac[1, 0] = c1 / t1
        jac[1, 1] = q1 / t1
        return p0, p1
    for c in range(2):  # rare: shift each channel by its own maximum
        m = -np.inf
        for e in range(n_e):
            if w[c, e] > 0.0:
                x = -ac * fc[e] - ap * fp[e] + math.log(w[c, e])
                if x > m:
                    m = x
        tot = 0.0
        sc = 0.0
        sp = 0.0
        for e in range(n_e):
            if w[c, e] > 0.0:
                t = math.exp(-ac * fc[e] - ap * fp[e] + math.log(w[c, e]) - m)
                tot += t
                sc += t * fc[e]
                sp += t * fp[e]
        jac[c, 0] = sc / tot
        jac[c, 1] = sp / tot
        if c == 0:
            p0 = -(m + math.log(tot))
        else:
            p1 = -(m + math.log(tot))
    return p0, p1


@numba.njit(cache=True, nogil=True)
def _solve_one(p0, p1, a0c, a0p, fc, fp, w, lo_c, hi_c, lo_p, hi_p, tol, maxit):
    """Damped, box-constrained Newton for (A_c, A_p) with model(A) = (p0, p1).

    Steps are halved until the squared residual decreases (Armijo), iterates are clipped to the
    box; where a bound is active and the Newton step pushes out of the box, the free variable
    takes a Gauss-Newton step instead, so unreachable (noisy) pairs end at the least-squares
    point on the box boundary. Returns (A_c, A_p, iterations, residual norm)."""
    jac = np.empty((2, 2))
    jn = np.empty((2, 2))
    ac = min(max(a0c, lo_c), hi_c)
    ap = min(max(a0p, lo_p), hi_p)
    q0, q1 = _forward(ac, ap, fc, fp, w, jac)
    r0 = q0 - p0
    r1 = q1 - p1
    f = r0 * r0 + r1 * r1
    it = 0
    for it in range(1, maxit + 1):
        det = jac[0, 0] * jac[1, 1] - jac[0, 1] * jac[1, 0]
        if abs(det) > 1e-300:
            dc = -(jac[1, 1] * r0 - jac[0, 1] * r1) / det
            dp = -(-jac[1, 0] * r0 + jac[0, 0] * r1) / det
        else:
            dc = 0.0
            dp = 0.0
        out_c = (ac <= lo_c and dc < 0.0) or (ac >= hi_c and dc > 0.0)
        out_p = (ap <= lo_p and dp < 0.0) or (ap >= hi_p and dp > 0.0)
        if out_c and out_p:
            break
        if out_c or out_p:  # Gauss-Newton on the free variable only
            k = 1 if out_c else 0
            g = jac[0, k] * r0 + jac[1, k] * r1
            h = jac[0, k] * jac[0, k] + jac[1, k] * jac[1, k]
            d = -g / h if h > 0.0 else 0.0
            dc = d if k == 0 else 0.0
            dp = d if k == 1 else 0.0
        if abs(dc) + abs(dp) <= tol * (1.0 + abs(ac) + abs(ap)):
            break  # converged: a line search could only fail on rounding
        lam = 1.0
        accepted = False
        nc = ac
        np_ = ap
        fn = f
        n0 = q0
        n1 = q1
        small = tol * (1.0 + abs(ac) + abs(ap))
        for _ in range(10):
            nc = min(max(ac + lam * dc, lo_c), hi_c)
            np_ = min(max(ap + lam * dp, lo_p), hi_p)
            if abs(nc - ac) + abs(np_ - ap) <= small:
                break  # the (clipped) step vanished: nothing left to gain
            n0, n1 = _forward(nc, np_, fc, fp, w, jn)
            s0 = n0 - p0
            s1 = n1 - p1
            fn = s0 * s0 + s1 * s1
            if fn <= f * (1.0 - 1e-4 * lam) or fn == 0.0:
                accepted = True
                break
            lam *= 0.5
        step = abs(nc - ac) + abs(np_ - ap)
        if not accepted:
            break  # no decrease possible: at the solution (or the least-squares point on a bound)
        ac = nc
        ap = np_
        q0 = n0
        q1 = n1
        r0 = q0 - p0
        r1 = q1 - p1
        f = fn
        jac[0, 0] = jn[0, 0]
        jac[0, 1] = jn[0, 1]
        jac[1, 0] = jn[1, 0]
        jac[1, 1] = jn[1, 1]
        if step <= tol * (1.0 + abs(ac) + abs(ap)) or f == 0.0:
            break
    return ac, ap, it, math.sqrt(f)


@numba.njit(cache=True, parallel=True)
def _newton_many(p_lo, p_hi, inv0, fc, fp, w, box, pmin, pmax, tol, maxit, out_c, out_p, iters):
    """Per-ray Newton, started from the open-beam linearisation A = inv0 @ p."""
    for i in numba.prange(p_lo.shape[0]):
        a = p_lo[i]
        b = p_hi[i]
        a = pmax if a != a else min(max(a, pmin), pmax)  # NaN: -ln of a non-positive signal
        b = pmax if b != b else min(max(b, pmin), pmax)
        s_c = inv0[0, 0] * a + inv0[0, 1] * b
        s_p = inv0[1, 0] * a + inv0[1, 1] * b
        ac, ap, it, _ = _solve_one(a, b, s_c, s_p, fc, fp, w, box[0], box[1], box[2], box[3],
                                   tol, maxit)
        out_c[i] = ac
        out_p[i] = ap
        iters[i] = it


@numba.njit(cache=True, parallel=True)
def _build_table(grid, inv0, fc, fp, w, box, tol, maxit, table, resid):
    """table[i, j] = Newton solution at (p_low = grid[i], p_high = grid[j]); each row is swept
    along j with the previous node's solution as the start (continuation)."""
    n = grid.shape[0]
    for i in numba.prange(n):
        a = grid[i]
        # start the row at the diagonal-ish node from the linearisation, then walk both ways
        j0 = i
        s_c = inv0[0, 0] * a + inv0[0, 1] * grid[j0]
        s_p = inv0[1, 0] * a + inv0[1, 1] * grid[j0]
        ac, ap, _, r = _solve_one(a, grid[j0], s_c, s_p, fc, fp, w, box[0], box[1], box[2],
                                  box[3], tol, maxit)
        table[i, j0, 0] = ac
        table[i, j0, 1] = ap
        resid[i, j0] = r
        for direction in (1, -1):
            pc = table[i, j0, 0]
            pp = table[i, j0, 1]
            j = j0 + direction
            while 0 <= j < n:
                ac, ap, _, r = _solve_one(a, grid[j], pc, pp, fc, fp, w, box[0], box[1],
                                          box[2], box[3], tol, maxit)
                table[i, j, 0] = ac
                table[i, j, 1] = ap
                resid[i, j] = r
                pc = ac
                pp = ap
                j += direction


#: fastmath without 'nnan' / 'ninf', so the NaN tests of the interpolation survive.
_NO_NAN_ASSUMED = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(cache=True, nogil=True, inline="always")
def _keys(t):
    """Weights of Keys' cubic convolution (a = -1/2, Catmull-Rom) for offsets -1, 0, 1, 2 at
    fractional position t in [0, 1]: exact for quadratics, error O(h^3)."""
    t2 = t * t
    t3 = t2 * t
    return (-0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2)


@numba.njit(cache=True, parallel=True, fastmath=_NO_NAN_ASSUMED)
def _interp(p_lo, p_hi, table, pmin, pmax, inv_h, out_c, out_p):
    """Bicubic (Keys) interpolation of the (n + 2, n + 2, 2) table at each (p_low, p_high),
    clamped to [pmin, pmax]; the table has one node beyond each end of that range, so every
    point has its full 4 x 4 stencil."""
    n1 = table.shape[0] - 1
    for i in numba.prange(p_lo.shape[0]):
        a = np.float64(p_lo[i])
        b = np.float64(p_hi[i])
        # NaN (from -ln of a non-positive signal) reads as fully attenuated
        if a != a:
            a = pmax
        if b != b:
            b = pmax
        a = (min(max(a, pmin), pmax) - pmin) * inv_h
        b = (min(max(b, pmin), pmax) - pmin) * inv_h
        ia = min(int(a), n1 - 3)  # node ia + 1 sits at or below the point; stencil ia..ia+3
        ib = min(int(b), n1 - 3)
        wa0, wa1, wa2, wa3 = _keys(a - ia)
        wb0, wb1, wb2, wb3 = _keys(b - ib)
        rc = 0.0
        rp = 0.0
        for da in range(4):
            r = ia + da
            wa = wa0 if da == 0 else (wa1 if da == 1 else (wa2 if da == 2 else wa3))
            c0 = table[r, ib]
            c1 = table[r, ib + 1]
            c2 = table[r, ib + 2]
            c3 = table[r, ib + 3]
            rc += wa * (wb0 * c0[0] + wb1 * c1[0] + wb2 * c2[0] + wb3 * c3[0])
            rp += wa * (wb0 * c0[1] + wb1 * c1[1] + wb2 * c2[1] + wb3 * c3[1])
        out_c[i] = rc
        out_p[i] = rp


# ----------------------------------------------------------------------------- the decomposer


@dataclass(frozen=True)
class Calibration:
    """Maps basis coefficients to electron density and Zeff (see the module docstring).

    a_c_water: a_c (1/mm) the decomposition gives for water; ``rho_e = a_c / a_c_water``.
    k, n: ``a_p / a_c = k Zeff^n`` fitted on the pure elements ``elements``.
    element_zeff: the Zeff the calibration returns for each of those elements (a check of the fit).
    """

    a_c_water: float
    k: float
    n: float
    e_ref: float = REFERENCE_KEV
    exponent: float = PHOTO_EXPONENT
    elements: tuple[int, ...] = CALIBRATION_ELEMENTS
    element_zeff: tuple[float, ...] = field(default=(), compare=False)
    #: ln Zeff as a cubic in ln(a_p / a_c) through the elements (highest power first), and the
    #: range of ln(a_p / a_c) it was fitted on; beyond it the power law of slope 1/n continues
    curve: tuple[float, ...] = ()
    ln_ratio_range: tuple[float, float] = (0.0, 0.0)

    @property
    def max_element_error(self) -> float:
        """Largest |Zeff - Z| over the calibration elements."""
        if not self.element_zeff:
            return float("nan")
        return float(max(abs(z - e) for z, e in zip(self.element_zeff, self.elements)))

    def rho_e(self, a_c):
        return rho_e(a_c, self)

    def zeff(self, a_c, a_p, **kw):
        return zeff(a_c, a_p, self, **kw)


def _out_dtype(*arrays) -> np.dtype:
    return np.dtype(np.float32) if all(a.dtype == np.float32 for a in arrays) else np.dtype(np.float64)


class Decomposer:
    """Projection-domain dual-energy decomposition ``(p_low, p_high) -> (A_c, A_p)``.

    ``energies``: (E,) keV; ``weights``: (E, 2) open-beam photons x detector response of the low
    and high channels on that grid (``ChannelResponse.weights`` of a dual-layer detector, or
    :func:`combine_channels` of two kVp-switching responses). ``p = -ln(T)`` per channel.

    ``method``: ``'table'`` (default) interpolates bilinearly in a ``table_size`` x
    ``table_size`` grid of Newton solutions over ``p_min <= p <= p_max`` in both channels (p_min
    moved down to the next node, so that p = 0 is a node);
    ``'newton'`` solves every ray (damped Newton, tolerance ``tol`` on A, started from the
    open-beam linearisation). Inputs are clamped to ``[p_min, p_max]`` (NaN, as from -ln of a
    non-positive noisy signal, counts as ``p_max``), and solutions to the box
    ``A_c in [-1/max f_KN, 20 p_max / min<f_KN>]``, ``A_p in [-3/max f_p, 20 p_max / min<f_p>]``
    (max / min over the energies either channel sees): pairs no material can produce
    (noise) get the least-squares solution in that box, never NaN.
    """

    def __init__(self, energies, weights, method: str = "table", *, e_ref: float = REFERENCE_KEV,
                 exponent: float = PHOTO_EXPONENT, p_min: float = -0.25, p_max: float = 12.0,
                 table_size: int = 385, tol: float = 1e-12, maxit: int = 100,
                 calibration: Calibration | None = None):
        if method not in ("table", "newton"):
            raise ValueError(f"method must be 'table' or 'newton', not {method!r}")
        e = np.asarray(energies, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        if e.ndim != 1 or w.shape != (e.size, 2):
            raise ValueError(f"expected energies (E,) and weights (E, 2); got {e.shape}, {w.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)) or not np.all(w.sum(axis=0) > 0):
            raise ValueError("weights must be finite, >= 0, and each channel must see photons")
        if not (p_max > 0.0 >= p_min > -p_max) or table_size < 8:
            raise ValueError("need -p_max < p_min <= 0 < p_max and table_size >= 8")
        keep = w.sum(axis=1) > 0  # bins no channel sees change nothing
        # node spacing h such that p = 0 is a node (air decomposes to exactly 0)
        n_neg = math.ceil(-min(p_min, 0.0) * (table_size - 1) / (p_max - p_min))
        h = p_max / (table_size - 1 - n_neg)
        p_min = -n_neg * h
        self.energies = e
        self.weights = w
        self.method = method
        self.e_ref = float(e_ref)
        self.exponent = float(exponent)
        self.p_min = float(p_min)
        self.p_max = float(p_max)
        self.table_size = int(table_size)
        self.tol = float(tol)
        self.maxit = int(maxit)
        self._calibration = calibration
        self._fc = np.ascontiguousarray(compton_basis(e[keep], self.e_ref))
        self._fp = np.ascontiguousarray(photo_basis(e[keep], self.e_ref, self.exponent))
        self._w = np.ascontiguousarray((w[keep] / w[keep].sum(axis=0)).T)  # (2, E'), rows sum 1
        self.effective = effective_basis(e[keep], w[keep], e_ref=self.e_ref, exponent=self.exponent)
        self._inv0 = np.linalg.inv(self.effective)
        self.box = np.array([
            -1.0 / self._fc.max(), 20.0 * self.p_max / self.effective[:, 0].min(),
            -10.0 / self._fp.max(), 20.0 * self.p_max / self.effective[:, 1].min(),
        ])
        self._table: np.ndarray | None = None
        self.table_residual: np.ndarray | None = None

    # -- model ---------------------------------------------------------------------------

    def forward(self, a_c, a_p):
        """Noise-free ``(p_low, p_high)`` of basis line integrals (the model the decomposition
        inverts); float64 arrays of the broadcast shape."""
        a_c, a_p = np.broadcast_arrays(np.asarray(a_c, np.float64), np.asarray(a_p, np.float64))
        x = -(a_c[..., None] * self._fc + a_p[..., None] * self._fp)  # (..., E')
        out = []
        for c in range(2):
            with np.errstate(divide="ignore"):
                s = x + np.log(self._w[c])  # -inf where a channel sees no photons
            m = s.max(axis=-1, keepdims=True)
            out.append(-(m[..., 0] + np.log(np.exp(s - m).sum(axis=-1))))
        return out[0], out[1]

    # -- table ---------------------------------------------------------------------------

    @property
    def grid(self) -> np.ndarray:
        """(table_size + 2,) node values of p (both channels): ``table_size`` nodes from p_min to
        p_max and one more beyond each end (the bicubic stencil's margin)."""
        h = (self.p_max - self.p_min) / (self.table_size - 1)
        return self.p_min + h * np.arange(-1, self.table_size + 1)

    @property
    def table(self) -> np.ndarray:
        """(n + 2, n + 2, 2) Newton solutions ``(A_c, A_p)`` at ``(p_low = grid[i], p_high =
        grid[j])`` (n = table_size), built on first use (~10 us per node and core)."""
        if self._table is None:
            n = self.table_size + 2
            table = np.empty((n, n, 2))
            resid = np.empty((n, n))
            _build_table(self.grid, self._inv0, self._fc, self._fp, self._w, self.box,
                         self.tol, self.maxit, table, resid)
            table.flags.writeable = False
            self._table = table
            self.table_residual = resid
        return self._table

    # -- decomposition -----------------------------------------------------------------

    def decompose(self, p_low, p_high, method: str | None = None):
        """Basis line integrals ``(A_c, A_p)`` of every ray (arrays of the inputs' broadcast
        shape; float32 if both inputs are float32, else float64)."""
        method = self.method if method is None else method
        lo = np.asarray(p_low)
        hi = np.asarray(p_high)
        if lo.shape != hi.shape:
            lo, hi = np.broadcast_arrays(lo, hi)
        dtype = _out_dtype(lo, hi)
        if not (lo.dtype.kind == "f" and lo.dtype == hi.dtype):
            lo = lo.astype(np.float64)
            hi = hi.astype(np.float64)
        flat_lo = np.ascontiguousarray(lo).reshape(-1)
        flat_hi = np.ascontiguousarray(hi).reshape(-1)
        out_c = np.empty(flat_lo.size, dtype=dtype)
        out_p = np.empty(flat_lo.size, dtype=dtype)
        if method == "table":
            table = self.table
            inv_h = (self.table_size - 1) / (self.p_max - self.p_min)
            _interp(flat_lo, flat_hi, table, self.p_min, self.p_max, inv_h, out_c, out_p)
        elif method == "newton":
            iters = np.empty(flat_lo.size, dtype=np.int32)
            _newton_many(flat_lo.astype(np.float64), flat_hi.astype(np.float64), self._inv0,
                         self._fc, self._fp, self._w, self.box, self.p_min, self.p_max,
                         self.tol, self.maxit, out_c, out_p, iters)
            self.last_iterations = iters
        else:
            raise ValueError(f"method must be 'table' or 'newton', not {method!r}")
        return out_c.reshape(lo.shape), out_p.reshape(lo.shape)

    # -- calibration ------------------------------------------------------------------

    @property
    def calibration(self) -> Calibration:
        """The :class:`Calibration` of this scanner (computed by :func:`calibrate` on first use)."""
        if self._calibration is None:
            self._calibration = calibrate(self.energies, self.weights, e_ref=self.e_ref,
                                          exponent=self.exponent)
        return self._calibration

    def zeff_rho_e(self, a_c, a_p, **kw):
        """``(zeff, rho_e)`` of basis coefficients with this scanner's calibration."""
        return zeff_rho_e(a_c, a_p, self.calibration, **kw)


# ----------------------------------------------------------------------------- calibration


def _element_material(z: int):
    import xraydb

    from xraybag.materials.database import Material

    symbol = xraydb.atomic_symbol(int(z))
    return Material.from_formula(symbol, symbol, 1.0)


def calibrate(energies, weights, *, e_ref: float = REFERENCE_KEV, exponent: float = PHOTO_EXPONENT,
              elements=CALIBRATION_ELEMENTS, areal_density: float = CALIBRATION_AREAL_DENSITY,
              thin: bool = False) -> Calibration:
    """Water and pure-element calibration of ``(E, 2)`` channel weights (module docstring).

    Each calibration material (water, then every element of ``elements``, at unit density) is a
    slab of ``areal_density`` g/cm2: its noise-free ``(p_low, p_high)`` from its xraydb
    attenuation is decomposed by Newton (``thin=False``), or its channel-averaged attenuation by
    :func:`decompose_images` (``thin=True``, the thin-slab limit). ``a_c_water`` is water's a_c;
    ``k``, ``n`` the least-squares line ``ln(a_p / a_c) = ln k + n ln Z`` over the elements.
    """
    from xraybag.materials.database import Material

    e = np.asarray(energies, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    mats = [Material.from_formula("water", "H2O", 1.0)] + [_element_material(z) for z in elements]
    mu = np.stack([m.mu(e) for m in mats])  # (M, E) 1/mm at 1 g/cm3
    if thin:
        wn = w / w.sum(axis=0)
        mu_ch = mu @ wn  # (M, 2)
        a_c, a_p = decompose_images(mu_ch[:, 0], mu_ch[:, 1], e, w, e_ref=e_ref, exponent=exponent)
    else:
        # its own solver: calibration slabs may exceed a decomposer's p_max
        dec = Decomposer(e, w, "newton", e_ref=e_ref, exponent=exponent, p_max=60.0)
        length = 10.0 * float(areal_density)  # mm at 1 g/cm3
        wn = w / w.sum(axis=0)
        t = np.exp(-mu * length) @ wn  # (M, 2)
        with np.errstate(divide="ignore"):
            p = -np.log(t)
        a_c, a_p = dec.decompose(p[:, 0], p[:, 1], method="newton")
        a_c, a_p = a_c / length, a_p / length
    z = np.asarray(elements, dtype=np.float64)
    ratio = a_p[1:] / a_c[1:]
    if np.any(ratio <= 0):
        raise ValueError("calibration: an element decomposed with a_p <= 0; check the spectra")
    n, ln_k = np.polyfit(np.log(z), np.log(ratio), 1)
    k = math.exp(ln_k)
    lr = np.log(ratio)
    curve = np.polyfit(lr, np.log(z), CURVE_DEGREE)
    cal = Calibration(a_c_water=float(a_c[0]), k=float(k), n=float(n), e_ref=float(e_ref),
                      exponent=float(exponent), elements=tuple(int(v) for v in elements),
                      curve=tuple(float(c) for c in curve),
                      ln_ratio_range=(float(lr.min()), float(lr.max())))
    fitted = _zeff_of_ratio(ratio, cal)
    return replace(cal, element_zeff=tuple(float(v) for v in fitted))


#: degree of the calibration curve ln Zeff(ln(a_p / a_c)) through the pure elements: a straight
#: line (the power law a_p / a_c = k Zeff^n) leaves up to 0.17 on the elements, a cubic 0.02
CURVE_DEGREE = 3


def _zeff_of_ratio(ratio, cal: Calibration) -> np.ndarray:
    """Zeff of positive ratios a_p / a_c through the calibration curve (power law outside it)."""
    lr = np.log(ratio)
    if not cal.curve:
        return np.exp((lr - math.log(cal.k)) / cal.n)
    lo, hi = cal.ln_ratio_range
    inner = np.clip(lr, lo, hi)
    return np.exp(np.polyval(cal.curve, inner) + (lr - inner) / cal.n)


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """Calibration of the default dual-energy scanner: 160 kVp, 2 mm Al, ``dual_sandwich``
    detector with its default layers. Used where a function gets ``calibration=None``."""
    from xraybag.engine.detect import channel_response
    from xraybag.materials.database import default_library
    from xraybag.scenes.models import Detector, Scanner, Spectrum

    scanner = Scanner(name="ct", type="radiograph", spectrum=Spectrum(kvp=160, filtration={"Al": 2.0}),
                      detector=Detector(type="dual_sandwich"), noise=False)
    response = channel_response(scanner, default_library(), 1.0, 1000.0)
    return calibrate(response.energies, response.weights)


def rho_e(a_c, calibration: Calibration | None = None):
    """Electron density relative to water, ``a_c / a_c_water`` (same shape and float dtype as
    ``a_c``; not clipped, so noise around air stays unbiased)."""
    cal = default_calibration() if calibration is None else calibration
    a = np.asarray(a_c)
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    out = (a.astype(np.float64) / cal.a_c_water).astype(dtype)
    return out[()]


def zeff(a_c, a_p, calibration: Calibration | None = None, *, min_rho_e: float = _AIR_RHO_E):
    """Effective atomic number from ``a_p / a_c`` through the calibration curve (vectorised, float
    dtype of the inputs).

    0 where the electron density is below ``min_rho_e`` (x water; air, empty space) and where
    ``a_p <= 0`` (noise); never NaN for finite inputs.
    """
    cal = default_calibration() if calibration is None else calibration
    ac = np.asarray(a_c)
    ap = np.asarray(a_p)
    dtype = _out_dtype(ac, ap)
    ac64 = ac.astype(np.float64)
    ap64 = ap.astype(np.float64)
    ok = (ac64 > min_rho_e * cal.a_c_water) & (ap64 > 0)
    ratio = np.divide(ap64, ac64, out=np.ones(np.broadcast(ac64, ap64).shape), where=ok)
    out = np.where(ok, _zeff_of_ratio(ratio, cal), 0.0).astype(dtype)
    return out[()]


def zeff_rho_e(a_c, a_p, calibration: Calibration | None = None, *, min_rho_e: float = _AIR_RHO_E):
    """``(zeff(a_c, a_p), rho_e(a_c))`` with one calibration."""
    return zeff(a_c, a_p, calibration, min_rho_e=min_rho_e), rho_e(a_c, calibration)
