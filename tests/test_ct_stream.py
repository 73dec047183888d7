"""A helical scan streamed view chunk by view chunk (trace, detect, decompose, reconstruct)
against the same scan with whole sinograms held: the same volumes, sinograms and noise."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct.scan import CTSetup, ct_response, scan_prepared, streams
from xraybag.engine.solids.scene import Solid
from xraybag.materials.library import default_library
from xraybag.scenes.models import CT, CTReconstruction, Scanner, Spectrum


def _solid(mesh, material, index) -> Solid:
    return Solid(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32),
                 material, index, material)


@pytest.fixture(scope="module")
def library():
    return default_library()


def _scan(library, seed, stream, keep, units="mu"):
    # bag frame: x along the belt (CT z); a water cylinder along x and an aluminium bar
    cyl = trimesh.creation.cylinder(radius=30, height=40, sections=64)
    cyl.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    bar = trimesh.creation.box([20, 10, 10])
    bar.apply_translation([6, 12, -8])
    solids = [_solid(cyl, "water", 1), _solid(bar, "aluminium", 2)]
    ct = CT(geometry="helical", sid=400, sdd=700, bore=300, views=90, cols=100, col_pitch=2.0, rows=4,
            row_pitch=2.0, voxel=2.0, reconstruction=CTReconstruction(units=units))
    scanner = Scanner(name="ct", type="ct", spectrum=Spectrum(kvp=160, photons=2e4), ct=ct)
    g = G.helical(400, 700, 4, 100, 2.0, 2.0, 90, -40, 40, 4 * 2.0 * 400 / 700)
    grid = G.VolumeGrid.centred((80, 80, 44), 2.0, 0.0)
    st = CTSetup(g, grid, np.zeros(3), ct_response(scanner, g, library))
    assert streams(scanner, st)
    return scan_prepared(solids, st, scanner, library, np.random.default_rng(seed),
                         keep_sinograms=keep, stream=stream)


@pytest.mark.parametrize("units", ["mu", "hu"])
def test_streamed_scan_equals_whole_sinogram_scan(library, units):
    whole = _scan(library, 7, stream=False, keep=True, units=units)
    streamed = _scan(library, 7, stream=True, keep=True, units=units)
    lean = _scan(library, 7, stream=True, keep=False, units=units)
    assert set(whole.volumes) == {"mu_low", "mu_high", "compton", "photoelectric", "zeff", "rho_e"}
    assert list(streamed.volumes) == list(whole.volumes)
    for q, v in whole.volumes.items():
        assert streamed.volumes[q].dtype == v.dtype == np.float32
        np.testing.assert_allclose(streamed.volumes[q], v, rtol=0, atol=1e-6 * max(1.0, np.abs(v).max()))
        np.testing.assert_array_equal(lean.volumes[q], streamed.volumes[q])
    assert set(streamed.sinograms) == {"low", "high"} and lean.sinograms == {}
    for ch, s in whole.sinograms.items():
        np.testing.assert_array_equal(streamed.sinograms[ch], s)
    np.testing.assert_array_equal(streamed.labels, whole.labels)
    # the noise is real: another seed gives other volumes, the same seed the same ones
    other = _scan(library, 8, stream=True, keep=False, units=units)
    assert not np.array_equal(other.volumes["mu_low"], lean.volumes["mu_low"])

    # and it is a CT of the scene: the aluminium bar (CT x, y, z = bag y, z, x) well above water
    if units == "mu":
        grid = G.VolumeGrid.centred((80, 80, 44), 2.0, 0.0)
        at = lambda x, y, z: tuple(int(np.argmin(np.abs(grid.axis(a) - v))) for a, v in (("z", z), ("y", y), ("x", x)))
        mu = whole.volumes["mu_low"]
        assert mu[at(12, -8, 6)] > 1.5 * mu[at(-15, 10, 0)] > 0.01
