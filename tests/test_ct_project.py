"""Voxel forward projectors: analytic chords, adjointness, ASTRA cross-checks."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.ct.geometry import VolumeGrid, axial, circular, helical
from xraybag.engine.ct.project import (
    BACKENDS,
    Projector,
    available_backends,
    project_materials,
)
from xraybag.engine.ct.voxelize import voxelize
from xraybag.engine.solids.meshes import box_mesh, cylinder_mesh
from xraybag.engine.solids.scene import Solid
from xraybag.errors import XraybagError


def all_rays(geom):
    src = np.stack([geom.rays(k)[0] for k in range(geom.views)])  # (V, 3)
    d = np.stack([geom.rays(k)[1] for k in range(geom.views)])  # (V, R, C, 3)
    return np.broadcast_to(src[:, None, None, :], d.shape), d


def box_chord(s, d, lo, hi):
    """Length of the rays s + t d (unit d, t >= 0) inside the box [lo, hi] (slab method)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (lo - s) / d
        tb = (hi - s) / d
    t0 = np.nan_to_num(np.minimum(ta, tb), nan=-np.inf).max(axis=-1)
    t1 = np.nan_to_num(np.maximum(ta, tb), nan=np.inf).min(axis=-1)
    return np.maximum(t1 - np.maximum(t0, 0), 0)


def cylinder_chord(s, d, r, zlo, zhi):
    """Length inside the z-axis cylinder of radius r between zlo and zhi."""
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = 2 * (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1])
    c = s[..., 0] ** 2 + s[..., 1] ** 2 - r * r
    disc = b * b - 4 * a * c
    ok = (disc > 0) & (a > 0)
    sq = np.sqrt(np.where(ok, disc, 0))
    t0 = np.where(ok, (-b - sq) / (2 * np.where(a > 0, a, 1)), 0)
    t1 = np.where(ok, (-b + sq) / (2 * np.where(a > 0, a, 1)), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        za = (zlo - s[..., 2]) / d[..., 2]
        zb = (zhi - s[..., 2]) / d[..., 2]
    inz = (s[..., 2] > zlo) & (s[..., 2] < zhi)
    zmin = np.where(d[..., 2] == 0, np.where(inz, -np.inf, np.inf), np.minimum(za, zb))
    zmax = np.where(d[..., 2] == 0, np.where(inz, np.inf, -np.inf), np.maximum(za, zb))
    return np.where(ok, np.maximum(np.minimum(t1, zmax) - np.maximum(t0, zmin), 0), 0)


def impact(s, d, centre):
    """Distance in x, y of each ray's line from the z-axis through ``centre`` (x, y)."""
    rx, ry = s[..., 0] - centre[0], s[..., 1] - centre[1]
    return np.abs(rx * d[..., 1] - ry * d[..., 0]) / np.hypot(d[..., 0], d[..., 1])


GRID = VolumeGrid.centred((64, 64, 40), 1.0)
CONE = circular(300, 500, 24, 96, 1.5, 1.5, 36, curved=True, z=1.3, col_offset=0.25)


def test_forward_of_voxel_aligned_box_is_exact():
    vol = np.zeros(GRID.shape, np.float32)
    vol[5:30, 10:50, 20:44] = 1.0
    e = GRID.bounds()[0]
    lo = e + np.array([20, 10, 5]) * 1.0
    hi = e + np.array([44, 50, 30]) * 1.0
    for geom in (CONE, circular(300, 500, 16, 80, 2.0, 2.0, 20, curved=False, z=-3.0)):
        sino = Projector(geom, GRID).forward(vol)
        s, d = all_rays(geom)
        ref = box_chord(s, d, lo, hi)
        assert sino.shape == geom.shape and sino.dtype == np.float32
        assert np.abs(sino - ref).max() < 1e-3 * ref.max()
        assert (ref > 10).sum() > 100


def test_forward_of_cylinder_vs_analytic_chords():
    grid = VolumeGrid.centred((50, 50, 30), 0.25)
    r, h = 20.0, 24.0
    v = voxelize([Solid(np.asarray(cylinder_mesh(r, h, 0.002).vertices),
                        np.asarray(cylinder_mesh(r, h, 0.002).faces), "pe", 1, "pe")],
                 grid, 2, dtype="float32")
    geom = circular(300, 500, 8, 64, 2.0, 1.0, 8, curved=True, z=0.7)
    sino = Projector(geom, grid).forward(v.fraction("pe"))
    s, d = all_rays(geom)
    ref = cylinder_chord(s, d, r, -h / 2, h / 2)
    sel = impact(s, d, (0, 0)) < 0.7 * r  # away from the edges (no grazing partial voxels)
    assert sel.sum() > 2000
    rel = np.abs(sino[sel] - ref[sel]) / ref[sel]
    assert rel.max() < 0.005 and np.median(rel) < 0.002
    assert np.all(sino[impact(s, d, (0, 0)) > r + 0.5] == 0)


@pytest.mark.parametrize("geom", [
    CONE,
    helical(300, 500, 8, 64, 2.0, 2.0, 12, -10.0, 10.0, 8.0, curved=False),
    axial(300, 500, 80, 1.0, 10, [-2.0, 4.3]),
])
def test_back_is_the_adjoint(geom):
    rng = np.random.default_rng(1)
    x = rng.random(GRID.shape, dtype=np.float32)
    y = rng.random(geom.shape, dtype=np.float32)
    P = Projector(geom, GRID)
    lhs = float((P.forward(x).astype(np.float64) * y).sum())
    rhs = float((x.astype(np.float64) * P.back(y)).sum())
    assert abs(lhs - rhs) / abs(lhs) < 1e-4


def phantom2d(grid):
    z, y, x = np.meshgrid(grid.axis("z"), grid.axis("y"), grid.axis("x"), indexing="ij")
    vol = ((x - 5) ** 2 + (y + 3) ** 2 < 30**2).astype(np.float32)
    vol += 2.0 * ((np.abs(x + 10) < 8) & (np.abs(y - 12) < 5))
    vol += 0.5 * (x > 20) * (y > 0) * ((x - 20) ** 2 + y**2 < 15**2)
    return vol.astype(np.float32)


@pytest.mark.skipif("astra2d" not in BACKENDS, reason="astra not installed")
@pytest.mark.parametrize("curved", [False, True])
def test_numba_matches_astra_2d(curved):
    grid = VolumeGrid((1, 90, 100), (0.8, 0.8, 1.0), (-39.6 + 2.0, -35.6, 0.4))
    geom = circular(400, 700, 1, 160, 1.0, 1.0, 60, curved=curved, z=0.4, col_offset=0.25)
    vol = phantom2d(grid)
    a = Projector(geom, grid, "numba").forward(vol)
    b = Projector(geom, grid, "astra2d").forward(vol)
    sel = a > 0.2 * a.max()
    assert sel.sum() > 1000
    assert np.abs(a[sel] - b[sel]).max() / a[sel].max() < 0.005
    assert np.median(np.abs(a[sel] - b[sel]) / a[sel]) < 1e-3
    # adjoint of the ASTRA 2D path as well (same slice)
    y = np.random.default_rng(2).random(geom.shape, dtype=np.float32)
    A = Projector(geom, grid, "astra2d")
    lhs = float((A.forward(vol).astype(np.float64) * y).sum())
    rhs = float((vol.astype(np.float64) * A.back(y)).sum())
    assert abs(lhs - rhs) / lhs < 1e-4


def test_project_materials_two_materials():
    grid = VolumeGrid.centred((80, 60, 40), 0.5)
    box = box_mesh([24, 16, 20])
    cyl = cylinder_mesh(10.0, 30.0, 0.005)
    shift_b, shift_c = np.array([-18.0, 3.0, 0.0]), np.array([17.0, -5.0, 0.0])
    solids = [Solid(np.asarray(box.vertices) + shift_b, np.asarray(box.faces), "al", 1, "b"),
              Solid(np.asarray(cyl.vertices) + shift_c, np.asarray(cyl.faces), "water", 2, "c")]
    vox = voxelize(solids, grid, 2)
    geom = circular(300, 500, 6, 96, 2.0, 1.5, 12, curved=True, z=0.3)
    mats, L = project_materials(vox, geom)
    assert mats == ["al", "water"] and L.shape == geom.shape + (2,)
    s, d = all_rays(geom)
    ref_al = box_chord(s, d, shift_b - [12, 8, 10], shift_b + [12, 8, 10])
    ref_w = cylinder_chord(s - shift_c, d, 10.0, -15.0, 15.0)
    # the box is voxel-aligned: exact
    assert np.abs(L[..., 0] - ref_al).max() < 1e-4
    assert (ref_al > 10).sum() > 300
    # the cylinder, away from its edge: partial voxels at entry and exit only
    b = impact(s, d, shift_c)
    sel = b < 0.6 * 10.0
    assert sel.sum() > 300
    err = np.abs(L[..., 1] - ref_w)
    assert np.median(err[sel] / ref_w[sel]) < 0.01 and err[sel].max() < 0.5  # mm, one voxel
    assert np.all(L[..., 1][b > 10.0 + 0.75] == 0)
    # the same as projecting the full fraction volume
    full = Projector(geom, grid).forward(vox.fraction("water"))
    assert np.allclose(full, L[..., 1], atol=1e-3)


def test_backend_errors():
    assert "numba" in available_backends()
    with pytest.raises(XraybagError):
        Projector(CONE, GRID, "nope")
    with pytest.raises(XraybagError):
        Projector(CONE, GRID).forward(np.zeros((2, 2, 2), np.float32))
    if "astra2d" in BACKENDS:
        with pytest.raises(XraybagError):
            Projector(CONE, GRID, "astra2d")


# ----------------------------------------------------------------------------- GPU


def _cupy_ok():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:
        pytest.skip("no CUDA device")


@pytest.mark.gpu
@pytest.mark.parametrize("geom", [CONE, helical(300, 500, 8, 64, 2.0, 2.0, 12, -10.0, 10.0,
                                                8.0, curved=False)])
def test_cupy_matches_numba(geom):
    _cupy_ok()
    rng = np.random.default_rng(3)
    x = rng.random(GRID.shape, dtype=np.float32)
    y = rng.random(geom.shape, dtype=np.float32)
    a, b = Projector(geom, GRID, "numba"), Projector(geom, GRID, "cupy")
    fa, fb = a.forward(x), b.forward(x)
    assert np.abs(fa - fb).max() < 1e-4 * fa.max()
    ba, bb = a.back(y), b.back(y)
    assert np.abs(ba - bb).max() < 1e-4 * ba.max()


@pytest.mark.gpu
@pytest.mark.parametrize("curved", [False, True])
def test_astra_3d_matches_numba(curved):
    astra = pytest.importorskip("astra")
    if not astra.use_cuda():
        pytest.skip("astra without CUDA")
    grid = VolumeGrid.centred((64, 64, 40), 0.5)
    z, y, x = np.meshgrid(grid.axis("z"), grid.axis("y"), grid.axis("x"), indexing="ij")
    vol = (((x - 3) ** 2 + (y + 2) ** 2 < 20**2) & (np.abs(z - 1) < 12)).astype(np.float32)
    vol += 2.0 * ((np.abs(x + 8) < 6) & (np.abs(y - 10) < 4) & (np.abs(z) < 5))
    geom = circular(300, 500, 24, 96, 1.5, 1.0, 20, curved=curved, z=0.5, col_offset=0.25)
    a = Projector(geom, grid, "numba").forward(vol)
    b = Projector(geom, grid, "astra").forward(vol)
    sel = a > 0.2 * a.max()
    assert sel.sum() > 500
    assert np.median(np.abs(a[sel] - b[sel]) / a[sel]) < 0.01
    bp = Projector(geom, grid, "astra").back(np.ones(geom.shape, np.float32))
    bn = Projector(geom, grid, "numba").back(np.ones(geom.shape, np.float32))
    inner = (x**2 + y**2 < 15**2) & (np.abs(z) < 5)
    assert np.median(np.abs(bp[inner] - bn[inner]) / bn[inner]) < 0.05
