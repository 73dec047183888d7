"""Voxelisation of closed solids on a CT grid, against analytic volumes and inside tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xraybag.engine.ct.geometry import VolumeGrid
from xraybag.engine.ct.voxelize import Voxelized, estimate_bytes, voxelize
from xraybag.engine.solids.meshes import box_mesh, cylinder_mesh, ellipsoid_mesh
from xraybag.engine.solids.scene import Solid
from xraybag.errors import XraybagError


def solid(mesh, material="steel", index=1, shift=(0.0, 0.0, 0.0), flip=False) -> Solid:
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if flip:
        faces = faces[:, ::-1]
    return Solid(np.asarray(mesh.vertices, dtype=np.float64) + np.asarray(shift), faces,
                 material, index, material)


def merge(a: Solid, b: Solid) -> Solid:
    """One solid of two surfaces (an outer surface and an inward-wound cavity)."""
    return Solid(np.concatenate([a.vertices, b.vertices]),
                 np.concatenate([a.faces, b.faces + len(a.vertices)]), a.material,
                 a.object_index, a.part)


GRID = VolumeGrid.centred((64, 64, 64), 1.0)


def sampled_fraction(lo, hi, grid: VolumeGrid, axis: str, S: int) -> np.ndarray:
    """Fraction of the S sub-positions (x, y) or exact overlap (z) of each voxel inside [lo, hi]."""
    i = "xyz".index(axis)
    d = grid.voxel[i]
    c = grid.axis(axis)
    if axis == "z":
        a = np.clip(c - d / 2, lo, hi)
        b = np.clip(c + d / 2, lo, hi)
        return (b - a) / d
    sub = c[:, None] + ((np.arange(S) + 0.5) / S - 0.5)[None, :] * d
    return ((sub > lo) & (sub < hi)).mean(axis=1)


def test_box_fractions_are_exact_per_voxel():
    size, shift, S = np.array([20.3, 30.1, 10.7]), np.array([0.3, 0.1, 0.2]), 2
    v = voxelize([solid(box_mesh(size), shift=shift)], GRID, S, dtype="float32")
    lo, hi = shift - size / 2, shift + size / 2
    fx, fy, fz = (sampled_fraction(lo[i], hi[i], GRID, a, S) for i, a in enumerate("xyz"))
    ref = fz[:, None, None] * fy[None, :, None] * fx[None, None, :]
    assert np.abs(v.fraction("steel") - ref).max() < 1e-5
    assert abs(v.volume("steel") / np.prod(size) - 1) < 0.01  # x, y sampling error only


def test_ties_on_shared_edges_are_counted_once():
    # faces at +-10 mm: the sub-rays (x, y = k/2 + 0.25) run exactly through the diagonals of
    # the top and bottom faces, where two triangles meet
    v = voxelize([solid(box_mesh([20, 20, 20]))], GRID, 2, dtype="float32")
    assert abs(v.volume("steel") - 8000.0) < 1e-3
    f = v.fraction("steel")
    assert f.min() >= 0 and f.max() <= 1
    # rotated about z by 45 degrees: ties on the vertical edges' silhouettes and diagonals
    m = box_mesh([20, 20, 20])
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    m.vertices = m.vertices @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    v = voxelize([solid(m)], GRID, 4, dtype="float32")
    assert abs(v.volume("steel") / 8000.0 - 1) < 0.005
    assert v.fraction("steel").max() <= 1


def test_sphere_volume_and_labels():
    r = 20.0
    mesh = ellipsoid_mesh([r, r, r], tolerance=0.01)
    shift = (0.3, -0.2, 0.1)
    v = voxelize([solid(mesh, index=7, shift=shift)], GRID, 2, dtype="float32")
    exact = 4 / 3 * math.pi * r**3
    assert abs(v.volume("steel") / mesh.volume - 1) < 1e-3
    assert abs(v.volume("steel") / exact - 1) < 3 * 0.01 / r + 1e-3  # mesh tolerance
    f = v.fraction("steel")
    assert f.min() >= 0 and f.max() <= 1
    z, y, x = np.meshgrid(GRID.axis("z"), GRID.axis("y"), GRID.axis("x"), indexing="ij")
    dist = np.sqrt((x - shift[0]) ** 2 + (y - shift[1]) ** 2 + (z - shift[2]) ** 2)
    inside, outside = dist < r - 1.0, dist > r + 1.0
    assert np.all(v.labels[inside] == 7)
    assert np.all(v.labels[outside] == 0)
    assert np.all(f[inside] == 1) and np.all(f[outside] == 0)
    # labels follow the half-volume rule near the surface
    assert np.all((v.labels == 7) == (f >= 0.5 - 1e-6))


def test_cylinder_volume_uint8():
    r, h = 15.0, 30.0
    v = voxelize([solid(cylinder_mesh(r, h, 0.01), "water", 2)], GRID, 3)
    _, arr = v.fractions[0]
    assert arr.dtype == np.uint8
    assert abs(v.volume("water") / (math.pi * r * r * h) - 1) < 0.005


def test_shell_with_liquid():
    R, H, w = 20.0, 40.0, 2.0
    outer = solid(cylinder_mesh(R, H, 0.005), "glass", 3)
    cavity = solid(cylinder_mesh(R - w, H - 2 * w, 0.005), "glass", 3, flip=True)
    shell = merge(outer, cavity)
    liquid = solid(cylinder_mesh(R - w, H - 2 * w, 0.005), "water", 3)
    v = voxelize([shell, liquid], GRID, 2, dtype="float32")
    wall = math.pi * (R * R * H - (R - w) ** 2 * (H - 2 * w))
    assert v.materials == ["glass", "water"]
    assert abs(v.volume("glass") / wall - 1) < 0.01
    assert abs(v.volume("water") / (math.pi * (R - w) ** 2 * (H - 2 * w)) - 1) < 0.005
    total = v.fraction("glass") + v.fraction("water")
    assert total.max() <= 1 + 1e-5
    # the whole container (wall + liquid) is object 3
    z, y, x = np.meshgrid(GRID.axis("z"), GRID.axis("y"), GRID.axis("x"), indexing="ij")
    rho = np.hypot(x, y)
    deep = (rho < R - 1) & (np.abs(z) < H / 2 - 1)
    assert np.all(v.labels[deep] == 3)
    assert np.all(v.labels[(rho > R + 1) | (np.abs(z) > H / 2 + 1)] == 0)
    # an empty shell: only its wall is labelled
    v2 = voxelize([shell], GRID, 2)
    assert np.all(v2.labels[(rho < R - w - 1) & (np.abs(z) < H / 2 - w - 1)] == 0)


def test_two_objects_mu_and_crop():
    a = solid(box_mesh([10, 10, 10]), "al", 1, shift=(-15, 0, 0))
    b = solid(ellipsoid_mesh([6, 6, 6], 0.01), "steel", 2, shift=(15, 5, -3))
    v = voxelize([b, a], GRID, 2)
    assert isinstance(v, Voxelized)
    assert v.materials == ["al", "steel"]
    for (lo, arr), name in zip(v.fractions, v.materials):
        assert np.prod(arr.shape) < GRID.shape[0] * GRID.shape[1] * GRID.shape[2] / 50
        grid, box = v.box(name)
        assert box.shape == grid.shape and abs(box.sum() - v.fraction(name).sum()) < 1e-2
    mu = v.mu({"al": 0.5, "steel": 2.0})
    assert np.allclose(mu, 0.5 * v.fraction("al") + 2.0 * v.fraction("steel"), atol=1e-6)
    assert set(np.unique(v.labels)) == {0, 1, 2}
    with pytest.raises(XraybagError):
        v.mu({"al": 1.0})
    # partly outside the grid: clipped, not an error
    c = solid(box_mesh([10, 10, 10]), "al", 1, shift=(0, 0, 30))
    v = voxelize([c], GRID, 2, dtype="float32")
    assert abs(v.volume("al") - 10 * 10 * 7) < 1e-3


def test_memory_refusal():
    s = [solid(ellipsoid_mesh([20, 20, 20], 0.05))]
    need = estimate_bytes(s, GRID, 2)
    assert need > GRID.shape[0] * GRID.shape[1] * GRID.shape[2] * 2  # at least the labels
    with pytest.raises(XraybagError) as e:
        voxelize(s, GRID, 2, max_bytes=need // 2)
    msg = str(e.value)
    assert "\n" not in msg and "GiB" in msg
    assert f"{need / 2**30:.2f} GiB" in msg
    voxelize(s, GRID, 2, max_bytes=need)  # exactly enough: runs


def test_progress_and_slabs():
    calls = []
    s = [solid(ellipsoid_mesh([20, 20, 20], 0.02))]
    one = voxelize(s, GRID, 2, dtype="float32")
    many = voxelize(s, GRID, 2, dtype="float32", chunk_bytes=1,
                    progress=lambda d, n: calls.append((d, n)))
    assert calls[-1] == (64, 64) and len(calls) == 64
    assert np.array_equal(one.fraction("steel"), many.fraction("steel"))
    assert np.array_equal(one.labels, many.labels)
