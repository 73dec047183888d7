"""Zeff and electron density from Compton / photoelectric coefficients: the scanner's calibration.

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
import weakref
from dataclasses import dataclass, field, replace

import numpy as np

from xraybag.engine.ct.basis import (
    CALIBRATION_AREAL_DENSITY,
    CALIBRATION_ELEMENTS,
    PHOTO_EXPONENT,
    REFERENCE_KEV,
    decompose_images,
    out_dtype,
)
from xraybag.engine.ct.decompose import Decomposer

__all__ = ["BasisCalibration", "calibrate_basis", "calibration_of", "default_calibration", "rho_e", "zeff", "zeff_rho_e"]

#: Below this electron density (x water) :func:`zeff` returns 0 (air, empty space).
AIR_RHO_E = 0.01


@dataclass(frozen=True)
class BasisCalibration:
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


# ----------------------------------------------------------------------------- calibration


def _element_material(z: int):
    import xraydb

    from xraybag.materials.database import Material

    symbol = xraydb.atomic_symbol(int(z))
    return Material.from_formula(symbol, symbol, 1.0)


def calibrate_basis(energies, weights, *, e_ref: float = REFERENCE_KEV, exponent: float = PHOTO_EXPONENT,
              elements=CALIBRATION_ELEMENTS, areal_density: float = CALIBRATION_AREAL_DENSITY,
              thin: bool = False) -> BasisCalibration:
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
    cal = BasisCalibration(a_c_water=float(a_c[0]), k=float(k), n=float(n), e_ref=float(e_ref),
                      exponent=float(exponent), elements=tuple(int(v) for v in elements),
                      curve=tuple(float(c) for c in curve),
                      ln_ratio_range=(float(lr.min()), float(lr.max())))
    fitted = _zeff_of_ratio(ratio, cal)
    return replace(cal, element_zeff=tuple(float(v) for v in fitted))


#: degree of the calibration curve ln Zeff(ln(a_p / a_c)) through the pure elements: a straight
#: line (the power law a_p / a_c = k Zeff^n) leaves up to 0.17 on the elements, a cubic 0.02
CURVE_DEGREE = 3


def _zeff_of_ratio(ratio, cal: BasisCalibration) -> np.ndarray:
    """Zeff of positive ratios a_p / a_c through the calibration curve (power law outside it)."""
    lr = np.log(ratio)
    if not cal.curve:
        return np.exp((lr - math.log(cal.k)) / cal.n)
    lo, hi = cal.ln_ratio_range
    inner = np.clip(lr, lo, hi)
    return np.exp(np.polyval(cal.curve, inner) + (lr - inner) / cal.n)


@functools.lru_cache(maxsize=1)
def default_calibration() -> BasisCalibration:
    """BasisCalibration of the default dual-energy scanner: 160 kVp, 2 mm Al, ``dual_sandwich``
    detector with its default layers. Used where a function gets ``calibration=None``."""
    from xraybag.engine.xray.detect import channel_response
    from xraybag.materials.library import default_library
    from xraybag.scenes.models import Detector, Scanner, Spectrum

    scanner = Scanner(name="ct", type="radiograph", spectrum=Spectrum(kvp=160, filtration={"Al": 2.0}),
                      detector=Detector(type="dual_sandwich"), noise=False)
    response = channel_response(scanner, default_library(), 1.0, 1000.0)
    return calibrate_basis(response.energies, response.weights)


def rho_e(a_c, calibration: BasisCalibration | None = None):
    """Electron density relative to water, ``a_c / a_c_water`` (same shape and float dtype as
    ``a_c``; not clipped, so noise around air stays unbiased)."""
    cal = default_calibration() if calibration is None else calibration
    a = np.asarray(a_c)
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    out = (a.astype(np.float64) / cal.a_c_water).astype(dtype)
    return out[()]


def zeff(a_c, a_p, calibration: BasisCalibration | None = None, *, min_rho_e: float = AIR_RHO_E):
    """Effective atomic number from ``a_p / a_c`` through the calibration curve (vectorised, float
    dtype of the inputs).

    0 where the electron density is below ``min_rho_e`` (x water; air, empty space) and where
    ``a_p <= 0`` (noise); never NaN for finite inputs.
    """
    cal = default_calibration() if calibration is None else calibration
    ac = np.asarray(a_c)
    ap = np.asarray(a_p)
    dtype = out_dtype(ac, ap)
    ac64 = ac.astype(np.float64)
    ap64 = ap.astype(np.float64)
    ok = (ac64 > min_rho_e * cal.a_c_water) & (ap64 > 0)
    ratio = np.divide(ap64, ac64, out=np.ones(np.broadcast(ac64, ap64).shape), where=ok)
    out = np.where(ok, _zeff_of_ratio(ratio, cal), 0.0).astype(dtype)
    return out[()]


def zeff_rho_e(a_c, a_p, calibration: BasisCalibration | None = None, *, min_rho_e: float = AIR_RHO_E):
    """``(zeff(a_c, a_p), rho_e(a_c))`` with one calibration."""
    return zeff(a_c, a_p, calibration, min_rho_e=min_rho_e), rho_e(a_c, calibration)


_OF_DECOMPOSER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def calibration_of(decomposer: Decomposer) -> BasisCalibration:
    """The :class:`BasisCalibration` of a decomposer's scanner (its energies and channel weights),
    computed by :func:`calibrate_basis` on first use and kept while the decomposer lives."""
    cal = _OF_DECOMPOSER.get(decomposer)
    if cal is None:
        cal = calibrate_basis(decomposer.energies, decomposer.weights, e_ref=decomposer.e_ref,
                              exponent=decomposer.exponent)
        _OF_DECOMPOSER[decomposer] = cal
    return cal
