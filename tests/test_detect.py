"""The spectral pass: detector response, noise-free transmission, noise statistics, raw values."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.xray.counter import draws_from
from xraybag.engine.xray.detect import (
    ChannelResponse,
    channel_response,
    dense_signals,
    detect,
    mu_table,
    spectral_memory,
    to_raw,
)
from xraybag.engine.xray.paths import SparsePaths
from xraybag.engine.xray.spectral import sparse_signals
from xraybag.errors import XraybagError
from xraybag.materials import default_library
from xraybag.scenes.models import Detector, Scanner


@pytest.fixture(scope="module")
def library():
    return default_library()  # holds the detector materials (csi, cdwo4, gos, copper)


def scanner(spectrum=None, detector=None, noise=False) -> Scanner:
    data = {"name": "v", "type": "radiograph", "noise": noise}
    if spectrum is not None:
        data["spectrum"] = spectrum
    if detector is not None:
        data["detector"] = detector
    return Scanner.model_validate(data)


def slab(thickness, shape=(1, 1)) -> np.ndarray:
    """(rows, cols, 1) path lengths: one material, the given thickness(es) in mm."""
    t = np.asarray(thickness, dtype=np.float32)
    return np.broadcast_to(t.reshape(-1, 1, 1) if t.ndim else t, (*shape, 1)).astype(np.float32)


@pytest.mark.parametrize(
    "det",
    [
        {"type": "integrating"},
        {"type": "dual_sandwich"},
        {"type": "integrating", "layer": {"material": "gos", "thickness": 1.0}},
        {"type": "photon_counting", "thresholds": [20]},
    ],
)
def test_mono_transmission_is_beer_lambert(library, det):
    sc = scanner({"mono_kev": 60}, det)
    resp = channel_response(sc, library, 1.0, 1000.0)
    thick = np.array([0.0, 1.0, 10.0, 100.0, 300.0], dtype=np.float32)
    L = thick.reshape(1, -1, 1)
    out = detect(L, ["water"], sc, resp, library, np.random.default_rng(0), 1.0)
    mu = float(library.get("water").mu(np.array([60.0]))[0])
    expected = np.exp(-mu * thick.astype(np.float64))
    assert set(out) == set(resp.channels)
    for ch, t in out.items():
        assert t.dtype == np.float64 and t.shape == (1, 5)
        assert np.allclose(t[0], expected, rtol=1e-4, atol=0), ch


def test_polychromatic_matches_float64_reference(library):
    sc = scanner({"kvp": 140, "filtration": {"Al": 2.0}})
    resp = channel_response(sc, library, 1.0, 900.0)
    mats = ["water", "aluminum", "iron", "hdpe"]
    rng = np.random.default_rng(3)
    L = (rng.random((7, 9, 4)) * np.array([200, 20, 5, 100])).astype(np.float32)
    L[0, 0] = 0
    out = detect(L, mats, sc, resp, library, rng, 1.0)
    mu = np.stack([library.get(m).mu(resp.energies) for m in mats])
    att = np.exp(-(L.astype(np.float64).reshape(-1, 4) @ mu))
    ref = att @ resp.weights / resp.weights.sum(axis=0)
    for c, ch in enumerate(resp.channels):
        assert np.allclose(out[ch].ravel(), ref[:, c], rtol=1e-5, atol=0)
    assert out["low"][0, 0] == pytest.approx(1.0, abs=1e-6)


def test_sandwich_response_definition(library):
    sc = scanner({"kvp": 120})
    resp = channel_response(sc, library, 1.0, 1000.0)
    e = resp.energies
    d = sc.detector
    front = np.exp(-library.get(d.front.material).mu(e) * d.front.thickness)
    filt = np.exp(-library.get(d.filter.material).mu(e) * d.filter.thickness)
    rear = np.exp(-library.get(d.rear.material).mu(e) * d.rear.thickness)
    assert resp.channels == ["low", "high"]
    assert np.allclose(resp.weights[:, 0], resp.photons * e * (1 - front))
    assert np.allclose(resp.weights[:, 1], resp.photons * e * front * filt * (1 - rear))
    assert np.allclose(resp.open_beam, resp.weights.sum(axis=0))
    assert np.allclose(resp.quanta, e[:, None])
    # the rear channel sees a harder spectrum
    mean = (e[:, None] * resp.weights).sum(0) / resp.weights.sum(0)
    assert mean[1] > mean[0] + 10


def test_photon_counting_bins(library):
    sc = scanner(
        {"table": [[30, 1.0], [70, 1.0]], "photons": 1000},
        {"type": "photon_counting", "thresholds": [20, 50]},
    )
    resp = channel_response(sc, library, 1.0, 1000.0)
    assert resp.channels == ["bin0", "bin1"]
    absorbed = 1 - np.exp(-library.get("csi").mu(resp.energies) * 2.0)
    assert np.allclose(resp.weights, [[500 * absorbed[0], 0], [0, 500 * absorbed[1]]])
    assert np.allclose(resp.quanta, [[1, 0], [0, 1]])


def test_channel_without_photons_is_an_error(library):
    sc = scanner({"mono_kev": 30}, {"type": "photon_counting", "thresholds": [20, 50]})
    with pytest.raises(XraybagError, match="bin1"):
        channel_response(sc, library, 1.0, 1000.0)


def test_beam_hardening_aluminium(library):
    for det in ({"type": "integrating"}, {"type": "dual_sandwich"}):
        sc = scanner({"kvp": 140}, det)
        resp = channel_response(sc, library, 1.0, 1000.0)
        thick = np.array([1, 2, 5, 10, 20, 30, 50], dtype=np.float64)
        out = detect(slab(thick, (7, 1)), ["aluminum"], sc, resp, library, np.random.default_rng(0), 1.0)
        for ch, t in out.items():
            mu_eff = -np.log(t[:, 0]) / thick
            assert np.all(np.diff(mu_eff) < 0), (det, ch, mu_eff)


def test_noise_off_is_deterministic_and_draws_nothing(library):
    sc = scanner({"kvp": 140})
    resp = channel_response(sc, library, 1.0, 1000.0)
    L = slab(np.linspace(0, 100, 12), (12, 5))
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    a = detect(L, ["water"], sc, resp, library, rng, 1.0)
    assert rng.bit_generator.state == state
    b = detect(L, ["water"], sc, resp, library, np.random.default_rng(99), 1.0)
    for ch in a:
        assert np.array_equal(a[ch], b[ch])


def test_same_seed_same_bytes(library):
    sc = scanner({"kvp": 140}, noise=True)  # full default noise model
    resp = channel_response(sc, library, 1.0, 1000.0)
    L = slab(np.linspace(0, 100, 40), (40, 30))
    a = detect(L, ["water"], sc, resp, library, np.random.default_rng(7), 1.0)
    b = detect(L, ["water"], sc, resp, library, np.random.default_rng(7), 1.0)
    c = detect(L, ["water"], sc, resp, library, np.random.default_rng(8), 1.0)
    for ch in a:
        assert a[ch].tobytes() == b[ch].tobytes()
        assert not np.array_equal(a[ch], c[ch])


@pytest.mark.parametrize("counter", [False, True], ids=["generator", "counter"])
def test_poisson_counts(library, counter):
    """Photon counting, quantum noise only: the counts' variance equals their mean (the draws
    from the generator in order, or by counter)."""
    sc = scanner(
        {"mono_kev": 60, "photons": 800},
        {"type": "photon_counting", "thresholds": [20]},
        noise={"quantum": True, "electronic": 0, "scatter": None, "blur": 0},
    )
    resp = channel_response(sc, library, 1.0, 1000.0)
    L = slab(30.0, (400, 300))
    rng = np.random.default_rng(1)
    t = detect(L, ["water"], sc, resp, library, rng, 1.0, draws=draws_from(rng) if counter else None)["bin0"]
    counts = t * resp.open_beam[0]
    assert np.allclose(counts, np.rint(counts), atol=1e-6)  # whole photons
    expected = resp.open_beam[0] * np.exp(-30 * library.get("water").mu(np.array([60.0]))[0])
    assert counts.mean() == pytest.approx(expected, rel=0.01)
    assert counts.var() == pytest.approx(counts.mean(), rel=0.05)


@pytest.mark.parametrize("counter", [False, True], ids=["generator", "counter"])
def test_compound_poisson_energy_integrating(library, counter):
    """Energy-integrating polychromatic signal: mean m and variance sum_E N D^2 exp(-mu L)."""
    sc = scanner(
        {"kvp": 100, "photons": 3000},
        {"type": "integrating"},
        noise={"quantum": True, "electronic": 0, "scatter": None, "blur": 0},
    )
    resp = channel_response(sc, library, 1.0, 1000.0)
    L = slab(40.0, (400, 300))
    rng = np.random.default_rng(2)
    t = detect(L, ["water"], sc, resp, library, rng, 1.0, draws=draws_from(rng) if counter else None)["total"]
    att = np.exp(-40.0 * library.get("water").mu(resp.energies))
    m = float(att @ resp.weights[:, 0])
    v = float(att @ (resp.weights[:, 0] * resp.quanta[:, 0]))
    signal = t * resp.open_beam[0]
    assert signal.mean() == pytest.approx(m, rel=0.005)
    assert signal.var() == pytest.approx(v, rel=0.05)


@pytest.mark.parametrize("counter", [False, True], ids=["generator", "counter"])
def test_electronic_noise_sigma(library, counter):
    sc = scanner(
        {"kvp": 140},
        {"white": 50000},
        noise={"quantum": False, "electronic": 40, "scatter": None, "blur": 0},
    )
    resp = channel_response(sc, library, 1.0, 1000.0)
    rng = np.random.default_rng(4)
    out = detect(slab(20.0, (300, 300)), ["water"], sc, resp, library, rng, 1.0,
                 draws=draws_from(rng) if counter else None)
    for t in out.values():
        assert (t.std() * 50000) == pytest.approx(40, rel=0.03)
    if counter:  # the channels' draws are not the same numbers
        a, b = out.values()
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_scatter_uniform_slab_and_air(library):
    sc = scanner(
        {"mono_kev": 80},
        noise={"quantum": False, "electronic": 0, "blur": 0,
               "scatter": {"offset": 0.01, "fraction": 0.05, "width": 20}},
    )
    resp = channel_response(sc, library, 1.0, 1000.0)
    mu = library.get("water").mu(np.array([80.0]))[0]
    out = detect(slab(100.0, (20, 20)), ["water"], sc, resp, library, np.random.default_rng(0), 2.0)
    tp = np.exp(-100 * mu)
    expected = (tp * 1.05 + 0.01) / 1.06
    assert np.allclose(out["low"], expected, rtol=1e-4)
    air = detect(slab(0.0, (5, 5)), ["water"], sc, resp, library, np.random.default_rng(0), 2.0)
    assert np.allclose(air["high"], 1.0)


def test_blur_spreads_an_edge(library):
    sc = scanner({"mono_kev": 60}, noise={"quantum": False, "electronic": 0, "scatter": None, "blur": 1.5})
    resp = channel_response(sc, library, 1.0, 1000.0)
    L = np.zeros((4, 20, 1), dtype=np.float32)
    L[:, 10:] = 50.0
    sharp = np.exp(-50 * library.get("water").mu(np.array([60.0]))[0])
    t = detect(L, ["water"], sc, resp, library, np.random.default_rng(0), 1.0)["low"]
    assert t[0, 0] == pytest.approx(1.0) and t[0, -1] == pytest.approx(sharp)
    assert sharp < t[0, 10] < t[0, 9] < 1.0


def test_many_materials_and_chunks(library, monkeypatch):
    import xraybag.engine.xray.spectral as spectral_module

    sc = scanner({"kvp": 80})
    resp = channel_response(sc, library, 1.0, 1000.0)
    mats = ["water", "aluminum", "hdpe"]
    L = (np.random.default_rng(0).random((33, 17, 3)) * 30).astype(np.float32)
    L[:5] = 0
    whole = detect(L, mats, sc, resp, library, np.random.default_rng(0), 1.0)
    monkeypatch.setattr(spectral_module, "CHUNK_BYTES", 4096)
    chunked = detect(L, mats, sc, resp, library, np.random.default_rng(0), 1.0)
    for ch in whole:
        assert np.array_equal(whole[ch], chunked[ch])  # blocks stand alone: the same numbers
    assert np.all(whole["low"][:5] == 1.0)


def test_spectral_pass_does_not_depend_on_threads(library, monkeypatch):
    """The compiled pass can run blocks of pixels on numba's threads; a pixel equal to the one a
    row above reuses its numbers only within a block. One thread and one block, or every thread
    and blocks of 64 pixels: the same float64 bits."""
    import numba

    import xraybag.engine.xray.spectral as spectral_module

    rng = np.random.default_rng(3)
    L2 = (rng.random((40 * 24, 4)) * 30).astype(np.float32)
    L2[rng.random(L2.shape) < 0.5] = 0.0
    L2.reshape(40, 24, 4)[10:20] = L2.reshape(40, 24, 4)[9]  # rows equal to the one above
    mu = rng.random((4, 30)) * 0.05
    w = rng.random((30, 3)) * 100
    before = numba.get_num_threads()
    try:
        runs = []
        for threads, chunk in ((1, 1 << 30), (numba.config.NUMBA_NUM_THREADS, 64 * 4 * 4)):
            numba.set_num_threads(threads)
            monkeypatch.setattr(spectral_module, "CHUNK_BYTES", chunk)
            runs.append(dense_signals(L2, mu, w, stride=24, threads=threads > 1))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(runs[0], runs[1])
    ref = np.exp(-(L2.astype(np.float64) @ mu)) @ w
    assert np.max(np.abs(runs[0] - ref) / ref) < 1e-5



@pytest.mark.parametrize("channels", [2, 3, 4])
def test_sparse_paths_give_the_dense_passs_numbers(library, monkeypatch, channels):
    """The CPU tracer's per-pixel entries (:class:`SparsePaths`) through the spectral pass: the
    dense pass's float64 bits (two, three or four channel sums), with rows equal to the one
    above and empty pixels, in blocks on threads; and a whole noisy detection
    with counter draws from them equals the one from the dense image."""
    import numba

    import xraybag.engine.xray.spectral as spectral_module

    rng = np.random.default_rng(5)
    rows, cols, m = 30, 21, 6
    L = (rng.random((rows, cols, m)) * 30).astype(np.float32)
    L[rng.random(L.shape) < 0.7] = 0.0
    L[12:18] = L[11]  # rows equal to the one above
    L[:3] = 0.0  # air
    sp = SparsePaths.from_dense(L)
    assert np.array_equal(sp.dense(), L) and sp.count.max() <= m and sp.count[:3 * cols].sum() == 0
    mu = rng.random((m, 40)) * 0.05
    w = rng.random((40, channels)) * 100
    dense = dense_signals(L.reshape(-1, m), mu, w, stride=cols)
    assert np.array_equal(sparse_signals(sp, mu, w, stride=cols), dense)
    assert np.array_equal(sparse_signals(sp, mu, w, stride=0), dense)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        monkeypatch.setattr(spectral_module, "CHUNK_BYTES", 64 * 4 * m)
        assert np.array_equal(sparse_signals(sp, mu, w, stride=cols, threads=True), dense)
    finally:
        numba.set_num_threads(before)
    sc = scanner({"kvp": 120}, noise={"enabled": True, "quantum": True, "electronic": 3.0,
                                      "scatter": {"fraction": 0.05, "width": 8.0}, "blur": 0.7})
    resp = channel_response(sc, library, 1.0, 1000.0)
    mats = ["water", "aluminum", "hdpe", "iron", "pvc", "glass"]
    key = draws_from(np.random.default_rng(2))
    a = detect(L, mats, sc, resp, library, None, 1.0, draws=key)
    b = detect(sp, mats, sc, resp, library, None, 1.0, draws=key)
    assert a.keys() == b.keys() and all(np.array_equal(a[c], b[c]) for c in a)

def test_no_materials(library):
    sc = scanner({"kvp": 80})
    resp = channel_response(sc, library, 1.0, 1000.0)
    out = detect(np.zeros((3, 4, 0), np.float32), [], sc, resp, library, np.random.default_rng(0), 1.0)
    assert all(np.allclose(t, 1.0) for t in out.values())


def test_shape_mismatch(library):
    sc = scanner({"kvp": 80})
    resp = channel_response(sc, library, 1.0, 1000.0)
    with pytest.raises(ValueError):
        detect(np.zeros((3, 4, 2), np.float32), ["water"], sc, resp, library, np.random.default_rng(0), 1.0)


def test_to_raw():
    det = Detector(white=60000)
    t = np.array([[-0.1, 0.0, 0.5, 1.0, 1.2], [1e-5, 0.99999, 1.0922, 2.0, 0.25]])
    raw = to_raw(t, det)
    assert raw.dtype == np.uint16
    assert raw.tolist() == [[0, 0, 30000, 60000, 65535], [1, 59999, 65532, 65535, 15000]]
    assert np.array_equal(to_raw(t, white=60000.0), raw)
    assert to_raw(np.array([0.5]), white=1000.0).tolist() == [500]
    # halves round to even, as np.rint; beyond the range clipped; NaN gives 0; any shape
    edge = np.array([0.5, 1.5, 2.5, 65534.5, 65535.4, 7e4, np.inf, -np.inf, -0.0, np.nan])
    assert to_raw(edge, white=1.0).tolist() == [0, 2, 2, 65534, 65535, 65535, 65535, 0, 0, 0]
    rng = np.random.default_rng(3)
    cube = rng.uniform(-0.2, 1.3, (3, 40, 7))
    with np.errstate(invalid="ignore"):
        expected = np.rint(np.clip(cube * 51234.0, 0, 65535)).astype(np.uint16)
    assert np.array_equal(to_raw(cube, white=51234.0), expected)


def test_mu_table_cached(library):
    e = np.array([30.0, 60.0, 90.0])
    a = mu_table(["water", "iron"], library, e)
    b = mu_table(["water", "iron"], library, e.copy())
    assert a is b and a.shape == (2, 3)
    assert np.allclose(a[1], library.get("iron").mu(e))
    other = library.with_materials({"water": {"formula": "H2O", "density": 2.0}})
    c = mu_table(["water", "iron"], other, e)
    assert np.allclose(c[0], 2 * a[0])


def test_dense_signals_matches_direct():
    rng = np.random.default_rng(0)
    L2 = rng.random((50, 3)).astype(np.float32) * 10
    mu = rng.random((3, 8)) * 0.1
    w = rng.random((8, 2))
    ref = np.exp(-(L2.astype(np.float64) @ mu)) @ w
    assert np.allclose(dense_signals(L2, mu, w), ref, rtol=1e-5)


def test_memory_estimate():
    small = spectral_memory(100, 100, 5, 130)
    big = spectral_memory(1000, 600, 5, 130)
    assert 0 < small < big
    n = 1000 * 600
    assert big >= n * 5 * 4 + n * 8 * 2  # at least the path lengths and two output images
    assert big < 1e9
    assert isinstance(big, int)


def test_response_dataclass_fields(library):
    resp = channel_response(scanner({"kvp": 80}, {"type": "integrating"}), library, 1.0, 1000.0)
    assert isinstance(resp, ChannelResponse)
    assert resp.channels == ["total"]
    e = resp.energies
    absorbed = 1 - np.exp(-library.get("csi").mu(e) * 2.0)
    assert np.allclose(resp.weights[:, 0], resp.photons * e * absorbed)
    assert resp.weights.shape == resp.quanta.shape == (e.size, 1)


def test_rows_repeating_the_row_above_reuse_its_numbers_exactly():
    """The line-scan shortcut: a pixel equal to the one a row above gets that pixel's numbers bit
    for bit, and the image agrees with the one computed without the shortcut and with float64.

    (Without the shortcut the product runs over more rows at once, and BLAS may then round a row
    differently in the last float32 bit, so the two images are compared to float32 rounding.)"""
    rng = np.random.default_rng(3)
    rows, cols, m = 40, 30, 5
    L = np.zeros((rows, cols, m), np.float32)
    L[:, 5:20, 0] = 3.0  # a bag wall: the same in every row
    L[10:25, 8:14, 2] = rng.random((15, 6), dtype=np.float32) * 20  # an object: varies
    L[30:, :, 4] = 1.5
    mu = rng.random((m, 50)) * 0.1
    w = rng.random((50, 3))
    a = dense_signals(L.reshape(-1, m), mu, w)
    b = dense_signals(L.reshape(-1, m), mu, w, stride=cols).reshape(rows, cols, 3)
    same = (L[1:] == L[:-1]).all(axis=-1)
    assert same.sum() > 0.8 * same.size and not same.all()
    assert np.array_equal(b[1:][same], b[:-1][same])
    assert np.allclose(a.reshape(rows, cols, 3), b, rtol=1e-6, atol=0)
    ref = np.exp(-L.reshape(-1, m).astype(np.float64) @ mu) @ w
    assert np.allclose(b.reshape(-1, 3), ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize("lam", [3.0, 90.0, 400.0, 2500.0])
def test_quantum_draws_follow_the_poisson_law(lam):
    """Whole quanta whose distribution is Poisson's (scipy.stats), below and above the limit where
    the normal approximation takes over: total variation distance under 0.02, mean and variance."""
    from scipy import stats

    from xraybag.engine.xray.detect import _scaled_poisson

    n = 200_000
    mean = np.full(n, lam * 2.5)  # 2.5: the weight of one quantum
    var = np.full(n, lam * 2.5 * 2.5)
    k = _scaled_poisson(mean, var, np.random.default_rng(5)) / 2.5
    assert np.allclose(k, np.rint(k))
    assert k.mean() == pytest.approx(lam, rel=0.01, abs=0.02)
    assert k.var() == pytest.approx(lam, rel=0.02)
    values, counts = np.unique(np.rint(k).astype(np.int64), return_counts=True)
    lo, hi = int(stats.poisson.ppf(1e-6, lam)), int(stats.poisson.ppf(1 - 1e-6, lam))
    support = np.arange(lo, hi + 1)
    emp = np.zeros(support.size)
    inside = (values >= lo) & (values <= hi)
    emp[values[inside] - lo] = counts[inside] / n
    tv = 0.5 * (np.abs(emp - stats.poisson.pmf(support, lam)).sum() + counts[~inside].sum() / n)
    assert tv < 0.02, tv


def test_dense_signals_exponentials_across_the_whole_range():
    """The compiled pass's exponential (Cephes' expf written out) against float64 numpy, from no
    attenuation to far past float32's range (exp(-x) for x up to ~1e4 underflows to 0 there),
    with 4 channels and 131 energies as a dual-energy view has, and sparse path lengths."""
    rng = np.random.default_rng(4)
    n, m, e = 4000, 6, 131
    L2 = np.zeros((n, m), np.float32)
    for p in range(n):
        k = rng.integers(1, 4)
        L2[p, rng.choice(m, k, replace=False)] = rng.uniform(0, 1, k) * 10.0 ** rng.uniform(-3, 5.5)
    L2[:10] = 0.0  # open beam
    mu = 10.0 ** rng.uniform(-3, 0.5, (m, e))
    w = rng.random((e, 4)) * 1e3
    out = dense_signals(L2, mu, w)
    expo = L2.astype(np.float64) @ mu.astype(np.float32).astype(np.float64)
    ref = np.exp(-expo) @ w
    assert np.array_equal(out[:10], np.broadcast_to(w.sum(0), (10, 4)))
    big = ref > 1e-30 * w.sum(0)  # float32 keeps ~1e-38
    assert big.mean() > 0.5 and (~big).any()
    # the float32 exponent is good to ~1e-7 of itself: so is the signal, where that term dominates
    rtol = 1e-6 + 2e-7 * expo.min(axis=1)[:, None]
    assert np.all(np.abs(out - ref) <= np.where(big, rtol * ref, np.inf))
    assert np.all(out[~big] <= 1e-29 * w.sum(0)[np.nonzero(~big)[1]])


def test_noisy_stack_does_not_depend_on_threads(library):
    """A stack of CT-like views with the full noise model (scatter low-pass, quantum draws with
    pixels under NORMAL_ABOVE quanta drawn as Poisson, blur, electronic noise): with ``threads``
    the scatter, the quantum arithmetic and the blur run on numba's threads; the same draws in the
    same order and the same bits as on one thread, for one thread and for all of them."""
    import numba

    sc = scanner({"kvp": 140}, noise={"scatter": {"width": 12.0}})
    resp = channel_response(sc, library, 4.0, 1000.0)
    rng = np.random.default_rng(7)
    L = (rng.random((5, 16, 90, 2)) * np.array([40.0, 3.0])).astype(np.float32)
    L[:, :, :20] = 0.0  # open beam
    L[:, :, 40:50, 1] = 60.0  # few quanta: Poisson draws
    mats = ["water", "iron"]
    ref = detect(L, mats, sc, resp, library, np.random.default_rng(1), 2.0)
    before = numba.get_num_threads()
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            out = detect(L, mats, sc, resp, library, np.random.default_rng(1), 2.0, threads=True)
            for ch in ref:
                assert np.array_equal(out[ch], ref[ch])
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("noise", [
    {"enabled": True, "quantum": True, "electronic": 3.0, "scatter": {"fraction": 0.05, "width": 8.0}, "blur": 0.7},
    {"enabled": True, "quantum": True, "electronic": 0, "blur": 0},  # the noisy signal is the output
    {"enabled": True, "quantum": False, "electronic": 2.0, "blur": 0},
])
def test_a_detection_keeps_its_images_when_the_next_one_runs(library, noise):
    """The spectral sums, the noisy signals and the normals live in the thread's scratch memory
    (:mod:`xraybag.engine.xray.scratch`): the images a detection returns are its own, so a second
    detection (other path lengths, the same shapes) leaves them as they were."""
    rng = np.random.default_rng(3)
    sc = scanner({"kvp": 120}, noise=noise)
    resp = channel_response(sc, library, 1.0, 1000.0)
    mats = ["water", "aluminum"]
    first_L = (rng.random((12, 9, 2)) * 20).astype(np.float32)
    key = draws_from(np.random.default_rng(2))
    first = detect(SparsePaths.from_dense(first_L), mats, sc, resp, library, None, 1.0, draws=key)
    kept = {c: t.copy() for c, t in first.items()}
    second = detect(SparsePaths.from_dense(first_L[::-1].copy()), mats, sc, resp, library, None, 1.0, draws=key)
    for c in first:
        assert not np.array_equal(first[c], second[c])
        assert np.array_equal(first[c], kept[c]) and not np.shares_memory(first[c], second[c])
