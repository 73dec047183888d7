"""Source spectra: spekpy tube spectra, monochromatic lines, user tables, photon scaling."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.materials import default_library
from xraybag.materials.spectra import (
    DEFAULT_MAS,
    DEFAULT_PHOTONS,
    E_MIN_KEV,
    energy_grid_and_photons,
    mean_energy,
    open_beam_photons,
    photons_per_pixel,
)
from xraybag.scenes.models import Spectrum


@pytest.fixture(scope="module")
def library():
    return default_library()


def test_kvp_spectrum_grid_and_units(library):
    e, n = energy_grid_and_photons(Spectrum(kvp=140, filtration={"Al": 2.0}), library)
    assert e.ndim == 1 and e.shape == n.shape
    assert np.all(np.diff(e) > 0)
    assert e.min() >= E_MIN_KEV and e.max() <= 140
    assert np.all(n > 0)
    assert n.min() >= 1e-9 * n.sum()
    # photons per mm2 per mAs at 1 m: a few million for 140 kVp (spekpy ~ 5e8 per cm2 unfiltered)
    assert 1e5 < n.sum() < 1e8
    # 1 keV bins centred on half-integers
    assert np.allclose(np.diff(e), 1.0)


def test_max_energy_below_kvp(library):
    for kvp in (60, 100.5):
        e, _ = energy_grid_and_photons(Spectrum(kvp=kvp), library)
        assert e.max() <= kvp


def test_mean_energy_rises_with_filtration(library):
    means = [
        mean_energy(*energy_grid_and_photons(Spectrum(kvp=120, filtration={"Al": t}), library))
        for t in (0.0, 2.0, 8.0)
    ]
    assert means[0] < means[1] < means[2]
    cu = mean_energy(*energy_grid_and_photons(Spectrum(kvp=120, filtration={"Al": 2.0, "Cu": 0.5}), library))
    assert cu > means[1]


def test_library_material_filter_is_beer_lambert(library):
    bare_e, bare_n = energy_grid_and_photons(Spectrum(kvp=100), library)
    e, n = energy_grid_and_photons(Spectrum(kvp=100, filtration={"water": 10.0}), library)
    mu = library.get("water").mu(e)
    idx = np.searchsorted(bare_e, e)
    assert np.allclose(bare_e[idx], e)
    assert np.allclose(n, bare_n[idx] * np.exp(-mu * 10.0), rtol=1e-12)


def test_cached_spectra_are_independent_copies(library):
    spec = Spectrum(kvp=90)
    e1, n1 = energy_grid_and_photons(spec, library)
    n1 *= 0
    e2, n2 = energy_grid_and_photons(spec, library)
    assert n2.sum() > 0


def test_energy_bin_width(library):
    e, _ = energy_grid_and_photons(Spectrum(kvp=100, energy_bin=2.0), library)
    assert np.allclose(np.diff(e), 2.0)


def test_mono_and_table(library):
    e, n = energy_grid_and_photons(Spectrum(mono_kev=60), library)
    assert e.tolist() == [60.0] and n.tolist() == [1.0]
    e, n = energy_grid_and_photons(Spectrum(table=[[80, 1.0], [30, 3.0], [50, 0.0]]), library)
    assert e.tolist() == [30.0, 80.0]
    assert np.allclose(n, [0.75, 0.25])


def test_photon_scaling(library):
    spec = Spectrum(kvp=140, mas=0.01)
    e, n = photons_per_pixel(spec, library, 1.0, 1000.0)
    _, per_mas = energy_grid_and_photons(spec, library)
    assert np.allclose(n, per_mas * 0.01)
    _, n2 = photons_per_pixel(spec, library, 2.0, 500.0)
    assert np.allclose(n2, n * 2.0 * 4.0)
    assert open_beam_photons(spec, 2.0, 500.0) == pytest.approx(n2.sum())
    # default tube charge
    _, nd = photons_per_pixel(Spectrum(kvp=140), library, 1.0, 1000.0)
    assert np.allclose(nd, per_mas * DEFAULT_MAS)


def test_photons_override(library):
    spec = Spectrum(kvp=140, mas=5.0, photons=2e4)
    _, n = photons_per_pixel(spec, library, 1.0, 800.0)
    assert n.sum() == pytest.approx(2e4)
    assert open_beam_photons(spec, 1.0, 800.0) == 2e4
    _, n = photons_per_pixel(Spectrum(table=[[40, 1], [60, 1]], photons=1000), library, 1.0, 1000.0)
    assert np.allclose(n, [500, 500])


def test_mono_default_photons_and_filter(library):
    assert open_beam_photons(Spectrum(mono_kev=60), 1.0, 1000.0) == DEFAULT_PHOTONS
    spec = Spectrum(mono_kev=60, filtration={"Cu": 0.2})
    import xraydb

    mu = xraydb.mu_elam("Cu", 60000.0) * xraydb.atomic_density("Cu") / 10.0
    assert open_beam_photons(spec, 1.0, 1000.0) == pytest.approx(DEFAULT_PHOTONS * np.exp(-mu * 0.2))


def test_user_errors_are_one_line(library):
    from xraybag.errors import XraybagError

    with pytest.raises(ValueError, match="kvp"):  # the model keeps kvp within spekpy's range
        Spectrum(kvp=1000)
    # spekpy's refusal (anything the model lets past) is still one line
    with pytest.raises(XraybagError, match="spekpy cannot make kvp=1000"):
        energy_grid_and_photons(Spectrum(kvp=100).model_copy(update={"kvp": 1000.0}), library)
    with pytest.raises(XraybagError, match="no photons"):
        energy_grid_and_photons(Spectrum(mono_kev=60, filtration={"lead": 1000}), library)
    with pytest.raises(XraybagError, match="all photon weights are zero"):
        energy_grid_and_photons(Spectrum(table=[[50, 0]]), library)
    with pytest.raises(XraybagError, match="unknown material"):
        energy_grid_and_photons(Spectrum(mono_kev=60, filtration={"unobtainium": 1}), library)


def test_recorded_spectra_replay_without_spekpy(tmp_path, monkeypatch):
    """With XRAYBAG_SPECTRA_DIR set, spekpy's spectrum is recorded there and read back, bit for
    bit, where spekpy cannot be imported (a GPU host), whether or not its package is listed as
    installed; other arguments still need spekpy."""
    import sys

    from xraybag.materials import spectra as S

    monkeypatch.setenv(S.SPECTRA_DIR_ENV, str(tmp_path / "spectra"))
    S._spekpy_spectrum.cache_clear()
    args = (120.0, 12.0, 0.5, (("Al", 2.0),))
    try:
        k, photons = S._spekpy_spectrum(*args)
        files = list((tmp_path / "spectra").glob("spekpy-*.npz"))
        assert len(files) == 1 and files[0].name.endswith(f"-{S._spekpy_version()}.npz")
        monkeypatch.setitem(sys.modules, "spekpy", None)  # "import spekpy" now fails
        for version in (S._spekpy_version(), None):  # listed as installed, or not at all
            monkeypatch.setattr(S, "_spekpy_version", lambda v=version: v)
            S._spekpy_spectrum.cache_clear()
            k2, photons2 = S._spekpy_spectrum(*args)
            assert np.array_equal(k, k2) and np.array_equal(photons, photons2) and not k2.flags.writeable
        with pytest.raises(ImportError):
            S._spekpy_spectrum(100.0, 12.0, 0.5, ())
    finally:
        S._spekpy_spectrum.cache_clear()


def test_spectra_are_kept_in_the_user_cache_unless_turned_off(tmp_path, monkeypatch):
    """By default spectra are kept in $XDG_CACHE_HOME/xraybag/spectra, and read back the same;
    XRAYBAG_SPECTRA_DIR="" keeps none; a record of another spekpy version or an unreadable file
    is not used (spekpy's own numbers are, and the record is made again)."""
    from xraybag.materials import spectra as S

    args = (90.0, 12.0, 0.5, (("Cu", 0.1),))
    try:
        monkeypatch.setenv(S.SPECTRA_DIR_ENV, "")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert S.spectra_folder() is None
        S._spekpy_spectrum.cache_clear()
        _, photons = S._spekpy_spectrum(*args)
        assert not (tmp_path / "cache").exists()

        monkeypatch.delenv(S.SPECTRA_DIR_ENV)
        folder = tmp_path / "cache" / "xraybag" / "spectra"
        assert S.spectra_folder() == folder
        S._spekpy_spectrum.cache_clear()
        assert np.array_equal(S._spekpy_spectrum(*args)[1], photons)
        (record,) = folder.glob("spekpy-*.npz")
        S._spekpy_spectrum.cache_clear()
        assert np.array_equal(S._spekpy_spectrum(*args)[1], photons)  # read from the record

        # another version's record (here with other numbers) is passed over
        stale = record.with_name(record.name.replace(f"-{S._spekpy_version()}.npz", "-0.0.npz"))
        record.rename(stale)
        with np.load(stale) as rec:
            np.savez(stale, k=rec["k"], photons=rec["photons"] * 2, args=rec["args"])
        S._spekpy_spectrum.cache_clear()
        assert np.array_equal(S._spekpy_spectrum(*args)[1], photons)
        # an unreadable record is passed over and made again
        record.write_bytes(b"not a record")
        S._spekpy_spectrum.cache_clear()
        assert np.array_equal(S._spekpy_spectrum(*args)[1], photons)
        with np.load(record) as rec:
            assert np.array_equal(rec["photons"], photons)
        # so is one cut short (a zip without its directory)
        record.write_bytes(record.read_bytes()[:200])
        S._spekpy_spectrum.cache_clear()
        assert np.array_equal(S._spekpy_spectrum(*args)[1], photons)
    finally:
        S._spekpy_spectrum.cache_clear()
