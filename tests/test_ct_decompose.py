"""Dual-energy decomposition (xraybag.engine.ct.decompose) against independent references:
closed-form Klein-Nishina in high precision, xraydb cross-sections through Material, and the
library's zeff / relative_electron_density."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
import xraydb

from xraybag.engine.ct import basis as B
from xraybag.engine.ct import decompose as D
from xraybag.engine.ct import zeff as Z
from xraybag.engine.xray.detect import channel_response, mu_table
from xraybag.materials.library import default_library
from xraybag.scenes.models import Detector, Scanner, Spectrum

LIB = default_library()
R_E = Decimal("2.8179403262e-13")  # classical electron radius (cm), CODATA 2018
ME = Decimal("510.99895000")  # keV


def _response(kvp, detector):
    scanner = Scanner(name="ct", type="radiograph",
                      spectrum=Spectrum(kvp=kvp, filtration={"Al": 2.0}),
                      detector=Detector(type=detector), noise=False)
    return channel_response(scanner, LIB, 1.0, 1000.0)


@pytest.fixture(scope="module")
def sandwich():
    r = _response(160, "dual_sandwich")
    return r.energies, r.weights


@pytest.fixture(scope="module")
def kvp_switching():
    return B.combine_channels(_response(80, "integrating"), _response(160, "integrating"))


@pytest.fixture(scope="module")
def dec_sandwich(sandwich):
    return D.Decomposer(*sandwich)


@pytest.fixture(scope="module")
def dec_kvp(kvp_switching):
    return D.Decomposer(*kvp_switching)


# ------------------------------------------------------------------------- 1. Klein-Nishina


def _kn_decimal(e_kev: float) -> Decimal:
    getcontext().prec = 60
    k = Decimal(repr(e_kev)) / ME
    ln = (1 + 2 * k).ln()
    pi = Decimal("3.14159265358979323846264338327950288419716939937510")
    return 2 * pi * R_E**2 * ((1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - ln / k)
                              + ln / (2 * k) - (1 + 3 * k) / (1 + 2 * k) ** 2)


def test_klein_nishina_closed_form_and_limits():
    thomson = 8 * math.pi / 3 * 2.8179403262e-13**2
    assert B.THOMSON_CM2 == pytest.approx(6.6524587321e-25, rel=1e-10)  # CODATA sigma_e
    assert B.klein_nishina(0.0) == pytest.approx(thomson, rel=1e-14)
    # Thomson limit: sigma / sigma_T -> 1 - 2k
    for e in (1e-3, 0.05, 0.3):
        k = e / 510.99895
        assert B.klein_nishina(e) / thomson == pytest.approx(1 - 2 * k + 5.2 * k * k, rel=1e-8)
    # the closed form in 60-digit decimal arithmetic, across the series/closed-form switch
    for e in (0.2, 0.6, 1.0, 10.0, 59.3, 70.0, 160.0, 510.99895, 800.0):
        assert B.klein_nishina(e) == pytest.approx(float(_kn_decimal(e)), rel=1e-11)
    # sigma_KN at k = 1 is 0.4307 sigma_T = 0.2865 barn
    assert B.klein_nishina(510.99895) * 1e24 == pytest.approx(0.2865, rel=1e-3)
    # the basis is normalised at the reference energy and decreasing
    f = B.compton_basis(np.array([20.0, B.REFERENCE_KEV, 150.0]))
    assert f[1] == pytest.approx(1.0) and f[0] > 1 > f[2]
    assert B.photo_basis(35.0) == pytest.approx((B.REFERENCE_KEV / 35.0) ** B.PHOTO_EXPONENT)


def test_klein_nishina_matches_xraydb_hydrogen_incoherent():
    """Hydrogen's incoherent cross-section per electron is free-electron Klein-Nishina once the
    binding correction has died out (>= 100 keV)."""
    e = np.array([100.0, 200.0, 400.0, 800.0])
    per_electron = xraydb.mu_elam("H", e * 1e3, kind="incoh") * xraydb.atomic_mass("H") / 6.02214076e23
    np.testing.assert_allclose(per_electron / B.klein_nishina(e), 1.0, atol=2e-3)


def test_fit_basis_recovers_exact_combination_and_water():
    e = np.arange(20.0, 150.0)
    mu = 0.02 * B.compton_basis(e) + 0.003 * B.photo_basis(e)
    a_c, a_p = B.fit_basis(mu, e)
    assert (a_c, a_p) == pytest.approx((0.02, 0.003), rel=1e-10)
    both = B.fit_basis(np.stack([mu, 2 * mu]), e, np.ones((e.size, 2)))
    np.testing.assert_allclose(both[0], [0.02, 0.04], rtol=1e-10)
    # water's Compton coefficient is n_e sigma_KN(E_ref) within the few % binding/coherent shift
    water = LIB.get("water")
    a_c, _ = B.fit_basis(water.mu(e), e)
    expected = water.electron_density * B.klein_nishina(B.REFERENCE_KEV) / 10.0
    assert a_c == pytest.approx(expected, rel=0.03)


# ------------------------------------------------------------------------- 2. round trip


def _physical_sample(dec, n, seed):
    rng = np.random.default_rng(seed)
    a_c = rng.uniform(0.05, 8.0, n)
    z = rng.uniform(5.0, 30.0, n)
    cal = Z.calibration_of(dec)
    a_p = a_c * cal.k * z**cal.n
    p_lo, p_hi = dec.forward(a_c, a_p)
    ok = (p_lo < dec.p_max) & (p_hi < dec.p_max)
    return a_c[ok], a_p[ok], p_lo[ok], p_hi[ok]


@pytest.mark.parametrize("setup", ["dec_sandwich", "dec_kvp"])
def test_round_trip_newton_and_table(setup, request):
    dec = request.getfixturevalue(setup)
    a_c, a_p, p_lo, p_hi = _physical_sample(dec, 4000, 1)
    assert a_c.size > 1500
    nc, np_ = dec.decompose(p_lo, p_hi, method="newton")
    np.testing.assert_allclose(nc, a_c, rtol=1e-6)
    np.testing.assert_allclose(np_, a_p, rtol=1e-6)
    tc, tp = dec.decompose(p_lo, p_hi)  # table (default)
    # bicubic table bound over the whole table range (up to p = 12, T = 6e-6)
    assert np.max(np.abs(tc - a_c) / np.maximum(a_c, 0.5)) < 2e-3
    assert np.max(np.abs(tp - a_p) / np.maximum(a_p, 0.5)) < 2e-3
    # and table vs Newton on the same rays, float32 input keeps float32
    fc, fp = dec.decompose(p_lo.astype(np.float32), p_hi.astype(np.float32))
    assert fc.dtype == np.float32 and fp.dtype == np.float32
    assert np.max(np.abs(fc - nc) / np.maximum(nc, 0.5)) < 2e-3


def test_table_nodes_solve_the_model(dec_sandwich):
    """Every node of the physical region reproduces its (p_low, p_high) through the model."""
    dec = dec_sandwich
    table = dec.table
    g = dec.grid
    p_lo, p_hi = dec.forward(table[..., 0], table[..., 1])
    res = np.hypot(p_lo - g[:, None], p_hi - g[None, :])
    assert np.all(np.isfinite(table))
    physical = (table[..., 0] >= 0) & (table[..., 1] >= 0)  # what a real material produces
    assert physical.sum() > 0.1 * physical.size
    assert np.max(res[physical]) < 1e-9


# ------------------------------------------------------------------------- 3. materials

LOW_Z = ["polyethylene", "pmma", "acetal", "ptfe", "pvc", "water"]
METALS = ["aluminium", "titanium"]


def _material_errors(dec, energies, weights):
    """{name: [(L, zeff error, rho_e relative error)]} of noise-free polychromatic slabs."""
    names = LOW_Z + METALS
    mu = mu_table(names, LIB, energies)  # xraydb via Material
    w = weights / weights.sum(axis=0)
    out = {}
    for i, name in enumerate(names):
        mat = LIB.get(name)
        lengths = np.array([5.0, 10.0, 20.0, 30.0] if name in METALS else [20.0, 50.0, 100.0])
        p = -np.log(np.exp(-np.outer(lengths, mu[i])) @ w)  # (L, 2)
        a_c, a_p = dec.decompose(p[:, 0], p[:, 1])
        z, rho = Z.zeff_rho_e(a_c / lengths, a_p / lengths, Z.calibration_of(dec))
        out[name] = [(L, zz - mat.zeff, r / mat.relative_electron_density - 1)
                     for L, zz, r in zip(lengths, z, rho)]
    return out


def _power_law_zeff(name, n):
    mat = LIB.get(name)
    per = mat._electrons_per_gram_mol
    tot = sum(per.values())
    return sum(v / tot * xraydb.atomic_number(s) ** n for s, v in per.items()) ** (1 / n)


@pytest.mark.parametrize("setup", ["sandwich", "kvp_switching"])
def test_materials_zeff_and_electron_density(setup, request):
    energies, weights = request.getfixturevalue(setup)
    dec = request.getfixturevalue("dec_" + ("sandwich" if setup == "sandwich" else "kvp"))
    errors = _material_errors(dec, energies, weights)
    for name, rows in errors.items():
        for L, dz, drho in rows:
            if name == "titanium":  # report only
                continue
            assert abs(drho) < 0.02, (name, L, drho)
            if name == "aluminium":
                assert abs(dz) < 0.5, (name, L, dz)
            else:
                assert abs(dz) < 0.3, (name, L, dz)
    # what is left of PVC's error is the definition of Zeff: against the power law with the
    # calibrated exponent n (not the library's 2.94) it is smaller still
    cal = Z.calibration_of(dec)
    pvc_ref_n = _power_law_zeff("pvc", cal.n)
    for L, dz, _ in errors["pvc"]:
        assert abs(LIB.get("pvc").zeff + dz - pvc_ref_n) < 0.15


def test_calibration_on_elements(dec_sandwich):
    cal = Z.calibration_of(dec_sandwich)
    assert cal.elements == tuple(range(5, 27))
    assert 2.9 < cal.n < 3.6
    assert cal.max_element_error < 0.3
    # water reads rho_e = 1 by construction; its Compton coefficient is n_e sigma_KN(E_ref)
    water = LIB.get("water")
    theory = water.electron_density * B.klein_nishina(B.REFERENCE_KEV) / 10.0
    assert cal.a_c_water == pytest.approx(theory, rel=0.03)
    assert Z.rho_e(cal.a_c_water, cal) == pytest.approx(1.0)


# ------------------------------------------------------------------------- 4. air, noise


@pytest.mark.parametrize("method", ["table", "newton"])
def test_air_zero_and_noisy_inputs(dec_sandwich, method):
    dec = dec_sandwich
    a_c, a_p = dec.decompose(np.zeros(3), np.zeros(3), method=method)
    np.testing.assert_allclose(a_c, 0.0, atol=1e-6)
    np.testing.assert_allclose(a_p, 0.0, atol=1e-6)
    rng = np.random.default_rng(3)
    p_lo = rng.normal(0.0, 0.05, 2000)
    p_hi = rng.normal(0.0, 0.05, 2000)
    # pairs no material produces, out-of-range values, NaN and inf (-ln of T <= 0)
    p_lo = np.concatenate([p_lo, [-5.0, 30.0, 0.0, 11.0, np.nan, np.inf, -np.inf, 3.0]])
    p_hi = np.concatenate([p_hi, [-5.0, 30.0, 11.0, 0.0, 1.0, np.nan, 0.5, 3.0]])
    a_c, a_p = dec.decompose(p_lo, p_hi, method=method)
    assert np.all(np.isfinite(a_c)) and np.all(np.isfinite(a_p))
    # near air the answer is small and centred
    assert abs(np.mean(a_c[:2000])) < 0.02 and np.max(np.abs(a_c[:2000])) < 1.0
    z, rho = Z.zeff_rho_e(a_c, a_p, Z.calibration_of(dec))
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(rho))
    assert np.all(z >= 0)


def test_zeff_rho_e_vectorised_and_air(dec_sandwich):
    from dataclasses import replace

    cal = replace(Z.calibration_of(dec_sandwich), curve=())  # the plain power law a_p / a_c = k Z^n
    a_c = np.array([[0.0, 1e-9, -0.01], [cal.a_c_water, 2 * cal.a_c_water, cal.a_c_water]],
                   dtype=np.float32)
    a_p = np.array([[0.0, 1e-6, 0.01], [cal.k * cal.a_c_water * 7.5**cal.n, 0.0, -1.0]],
                   dtype=np.float32)
    z, rho = Z.zeff_rho_e(a_c, a_p, cal)
    assert z.shape == rho.shape == (2, 3) and z.dtype == np.float32
    np.testing.assert_array_equal(z[0], 0.0)
    assert z[1, 0] == pytest.approx(7.5, rel=1e-5)
    assert z[1, 1] == 0.0 and z[1, 2] == 0.0
    assert rho[1, 1] == pytest.approx(2.0, rel=1e-6)
    assert float(Z.zeff(0.0, 0.0, cal)) == 0.0


# ------------------------------------------------------------------------- image domain


def test_image_domain_thin_limit_matches_projection(sandwich, dec_sandwich):
    """For a thin slab the reconstructed attenuation is the channel average of mu, and the
    image-domain solve equals the projection-domain one."""
    energies, weights = sandwich
    mu = LIB.get("pmma").mu(energies)
    w = weights / weights.sum(axis=0)
    mu_ch = (mu @ w).astype(np.float32)
    a_c, a_p = B.decompose_images(np.full((2, 2), mu_ch[0]), np.full((2, 2), mu_ch[1]),
                                  energies, weights)
    assert a_c.dtype == np.float32 and a_c.shape == (2, 2)
    length = 0.01
    p = -np.log(np.exp(-mu * length) @ w)
    pc, pp = dec_sandwich.decompose(p[0], p[1], method="newton")
    assert float(a_c[0, 0]) == pytest.approx(pc / length, rel=1e-3)
    assert float(a_p[0, 0]) == pytest.approx(pp / length, rel=1e-2)


def test_combine_channels_pads_grids():
    e1, w1 = np.array([10.0, 11.0, 12.0]), np.array([1.0, 2.0, 3.0])
    e2, w2 = np.array([11.0, 12.0, 13.0]), np.array([[4.0, 0.0], [5.0, 0.0], [6.0, 1.0]])
    e, w = B.combine_channels((e1, w1), (e2, w2))
    np.testing.assert_array_equal(e, [10, 11, 12, 13])
    np.testing.assert_array_equal(w, [[1, 0], [2, 4], [3, 5], [0, 6]])
    with pytest.raises(ValueError):
        B.combine_channels((e1, w1), (e1 + 0.25, w1))


def test_calibration_curve_reads_the_pure_elements(dec_sandwich):
    """The cubic calibration curve returns every calibration element's own Z (the power law
    alone leaves up to ~0.17), and is monotone over the elements."""
    cal = Z.calibration_of(dec_sandwich)
    assert cal.max_element_error < 0.05, cal.element_zeff
    assert np.all(np.diff(cal.element_zeff) > 0)
