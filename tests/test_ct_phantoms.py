"""Phantom validation of the whole CT chain (meshes -> sinograms -> decomposition -> volumes), in
the spirit of DEBISim's: a water cylinder with rods of reference materials, checked against xraydb
(mu), the materials' composition (Zeff, electron density) and the beam-hardening drift of an
acetal wedge (ANSI N42.45 Test I)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct.scan import CTSetup, ct_response, scan_prepared
from xraybag.engine.solids.scene import Solid
from xraybag.materials.library import default_library
from xraybag.scenes.models import CT, Scanner, Spectrum

RODS = ["hdpe", "pmma", "acetal", "ptfe", "pvc", "aluminium", "titanium"]
LOW_Z = ["hdpe", "pmma", "acetal", "ptfe", "pvc"]
ROD_R = 11.0
RING = 62.0
WATER_R = 100.0
LENGTH = 40.0  # along the conveyor (bag x = CT z)


def _along_x(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A mesh built along z, turned so that its axis is the conveyor direction (bag x)."""
    m = mesh.copy()
    m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    return m


def _solid(mesh, material, index, part) -> Solid:
    return Solid(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32),
                 material, index, part)


def rod_centres() -> list[tuple[float, float]]:
    """(bag y, bag z) of each rod: on a ring around the axis."""
    a = 2 * np.pi * np.arange(len(RODS)) / len(RODS)
    return [(RING * np.cos(t), RING * np.sin(t)) for t in a]


def rod_phantom() -> list[Solid]:
    water = trimesh.creation.cylinder(radius=WATER_R, height=LENGTH, sections=720)
    rods = []
    for (y, z) in rod_centres():
        rod = trimesh.creation.cylinder(radius=ROD_R, height=LENGTH, sections=360)
        rod.apply_translation([y, z, 0.0])  # in the cylinder's own frame (axis z)
        rods.append(rod)
    holes = trimesh.boolean.union(rods, engine="manifold")
    body = trimesh.boolean.difference([water, holes], engine="manifold")
    # turn (x, y, z) -> bag frame with the axis along x: bag (x, y, z) = (z, x, y)
    def to_bag(m):
        m = m.copy()
        m.vertices = np.asarray(m.vertices)[:, [2, 0, 1]]
        return m
    solids = [_solid(to_bag(body), "water", 1, "water")]
    for k, (rod, name) in enumerate(zip(rods, RODS)):
        solids.append(_solid(to_bag(rod), name, k + 2, name))
    return solids


def axial_setup(scanner, slices, library, cols=560, views=360, half=120) -> CTSetup:
    g = G.axial(500.0, 900.0, cols, 0.8, views, slices, curved=True, row_pitch=0.9)
    flat = G.VolumeGrid.centred((2 * half, 2 * half, 1), 1.0, 0.0)
    dz = float(slices[1] - slices[0]) if len(slices) > 1 else 1.0
    grid = G.VolumeGrid((len(slices),) + flat.shape[1:], (1.0, 1.0, dz),
                        (flat.origin[0], flat.origin[1], float(slices[0])))
    return CTSetup(g, grid, np.zeros(3), ct_response(scanner, g, library))


def rod_masks(grid: G.VolumeGrid, radius: float) -> list[np.ndarray]:
    """(ny, nx) masks of each rod's interior (CT x = bag y, CT y = bag z)."""
    x = grid.axis("x")[None, :]
    y = grid.axis("y")[:, None]
    return [np.hypot(x - cy, y - cz) < radius for (cy, cz) in rod_centres()]


@pytest.fixture(scope="module")
def library():
    return default_library()


@pytest.fixture(scope="module")
def phantom():
    return rod_phantom()


def test_monochromatic_rods_reconstruct_to_xraydb_mu(library, phantom):
    scanner = Scanner(name="ct", type="ct", spectrum=Spectrum(mono_kev=60, photons=1e6), noise=False,
                      ct=CT(mode="single", geometry="axial"))
    st = axial_setup(scanner, [0.0], library)
    res = scan_prepared(phantom, st, scanner, library, np.random.default_rng(0))
    mu = res.volumes["mu"][0]
    errors = {}
    for name, mask in zip(RODS, rod_masks(st.grid, ROD_R - 3.0)):
        ref = float(library.get(name).mu(np.array([60.0]))[0])
        errors[name] = float(mu[mask].mean()) / ref - 1.0
    water_mask = rod_masks(st.grid, 0.0)[0]  # empty; water: an annulus between the rods
    x = st.grid.axis("x")[None, :]
    y = st.grid.axis("y")[:, None]
    r = np.hypot(x, y)
    water_mask = r < RING - ROD_R - 5.0
    ref_w = float(library.get("water").mu(np.array([60.0]))[0])
    errors["water"] = float(mu[water_mask].mean()) / ref_w - 1.0
    assert max(abs(e) for e in errors.values()) < 0.02, errors
    # the labels put every rod where it is
    labels = res.labels[0]
    for k, mask in enumerate(rod_masks(st.grid, ROD_R - 2.0)):
        assert np.all(labels[mask] == k + 2)


def test_dual_energy_rods_give_zeff_and_electron_density(library, phantom):
    scanner = Scanner(name="ct", type="ct", noise=False, ct=CT(geometry="axial"))
    # 720 views: the photoelectric image is dominated by titanium (a_p 120 x water's), and with
    # fewer views its angular-aliasing streaks cross the plastic rods, whose a_p is tiny
    st = axial_setup(scanner, [0.0], library, views=720)
    res = scan_prepared(phantom, st, scanner, library, np.random.default_rng(0))
    zeff = res.volumes["zeff"][0]
    rho = res.volumes["rho_e"][0]
    got = {}
    for name, mask in zip(RODS, rod_masks(st.grid, ROD_R - 3.0)):
        m = library.get(name)
        got[name] = (float(np.mean(zeff[mask])) - m.zeff,
                     float(np.mean(rho[mask])) / m.relative_electron_density - 1.0)
    for name in LOW_Z:
        assert abs(got[name][0]) < 0.3, (name, got)
    assert abs(got["aluminium"][0]) < 0.5, got
    for name in LOW_Z + ["aluminium"]:
        assert abs(got[name][1]) < 0.02, (name, got)


def acetal_wedge() -> list[Solid]:
    """A right-triangular acetal plate: its width across the bag grows along the conveyor."""
    tri = np.array([[-40.0, -70.0], [40.0, -70.0], [40.0, 70.0]])  # (bag x, bag y)
    corners = np.array([[x, y, z] for x, y in tri for z in (-15.0, 15.0)])
    plate = trimesh.convex.convex_hull(corners)  # the prism, 30 mm thick
    return [_solid(plate, "acetal", 1, "wedge")]


def _wedge_drift(library, spectrum, detector_mode):
    slices = np.linspace(-30.0, 30.0, 7)
    scanner = Scanner(name="ct", type="ct", spectrum=spectrum, noise=False,
                      ct=CT(mode=detector_mode, geometry="axial"))
    st = axial_setup(scanner, slices, library, half=100)
    res = scan_prepared(acetal_wedge(), st, scanner, library, np.random.default_rng(0))
    mu = res.volumes["mu"]
    lengths, medians = [], []
    x = st.grid.axis("x")[None, :]  # bag y
    y = st.grid.axis("y")[:, None]  # bag z
    for k, zc in enumerate(slices):
        # the plate's section at bag x = zc spans bag y from -70 to -70 + 140 (zc + 40) / 80
        top = -70.0 + 140.0 * (zc + 40.0) / 80.0
        inside = (x > -70.0 + 3) & (x < top - 3) & (np.abs(y) < 15.0 - 3)
        lengths.append(top + 70.0)
        medians.append(float(np.median(mu[k][inside])))
    return np.array(lengths), np.array(medians)


def test_polychromatic_wedge_drifts_with_path_length(library):
    """ANSI N42.45 Test I: without beam-hardening correction the median CT value of a uniform
    plate falls as its cross-section (hence the path lengths) grows; a mono beam shows no drift."""
    lengths, med = _wedge_drift(library, Spectrum(kvp=160, filtration={"Al": 2.0}), "single")
    assert np.all(np.diff(lengths) > 0)
    assert np.all(np.diff(med) < 0), med  # drift grows with the path length
    assert med[0] / med[-1] - 1.0 > 0.01, med
    _, mono = _wedge_drift(library, Spectrum(mono_kev=70, photons=1e6), "single")
    assert np.ptp(mono) / mono.mean() < 0.005, mono
