"""Liquids in containers: after the container's pose, the liquid fills the cavity up to the level
measured along gravity (-z of the bag frame); its volume matches the requested fraction of the
cavity within 1 %, its free surface is horizontal, and it stays inside the cavity."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from xraybag.engine.solids.meshes import hollow
from xraybag.engine.solids.scene import object_solids
from xraybag.scenes.models import Object

KINDS = ("cylinder", "box", "sphere", "cone", "ellipsoid", "mesh")


@pytest.fixture(scope="module")
def bottle(tmp_path_factory):
    """A closed bottle (body, shoulder, neck) as an STL file."""
    profile = [(0, 0), (40, 0), (42, 4), (42, 150), (30, 180), (14, 195), (14, 225), (0, 225)]
    r, z = np.array(profile, dtype=float).T
    path = np.c_[r, z]
    mesh = trimesh.creation.revolve(path, sections=96)
    mesh.fix_normals()
    assert mesh.is_watertight and mesh.volume > 0
    f = tmp_path_factory.mktemp("bottle") / "bottle.stl"
    mesh.export(f)
    return str(f)


def _shape(kind: str, rng: np.random.Generator, bottle: str) -> dict:
    if kind == "cylinder":
        return {"cylinder": {"radius": rng.uniform(15, 60), "height": rng.uniform(40, 250)}}
    if kind == "box":
        return {"box": {"size": list(rng.uniform(30, 200, 3))}}
    if kind == "sphere":
        return {"sphere": {"radius": rng.uniform(20, 80)}}
    if kind == "cone":
        return {"cone": {"radius_bottom": rng.uniform(20, 60), "radius_top": rng.uniform(8, 40),
                         "height": rng.uniform(40, 200)}}
    if kind == "ellipsoid":
        return {"ellipsoid": {"radii": list(rng.uniform(20, 80, 3))}}
    return {"mesh": {"path": bottle, "scale": float(rng.uniform(0.5, 1.2))}}


def _cases(n: int, seed: int):
    rng = np.random.default_rng(seed)
    for k in range(n):
        kind = KINDS[k % len(KINDS)]
        level = float(rng.uniform(0.05, 0.95))
        tilt = [float(rng.uniform(-180, 180)), float(rng.uniform(-90, 90)), float(rng.uniform(0, 360))]
        if k % 4 == 0:  # upright and plainly tipped poses too
            tilt = [0.0, float(rng.choice([0.0, 90.0, 180.0])), 0.0]
        yield kind, level, tilt, rng


def _check(kind, level, tilt, rng, bottle):
    shape = _shape(kind, rng, bottle)
    obj = Object.model_validate({
        "name": "c", "shape": shape, "material": "PET",
        "container": {"wall": float(rng.uniform(0.8, 3.0)), "fill": {"material": "water", "level": level}},
        "pose": {"position": list(rng.uniform(-100, 100, 3)), "rotation_deg": tilt},
    })
    solids, info = object_solids(obj, 1, tolerance=0.2)
    wall, liquid = solids
    assert liquid.part.endswith(".fill") and liquid.material == "water"
    _, inner = hollow(obj.shape, float(obj.container.wall), 0.2)
    cavity = float(inner.volume)
    err = liquid.volume / (level * cavity) - 1.0
    lm = trimesh.Trimesh(liquid.vertices, liquid.faces, process=False)
    assert lm.is_watertight
    # the free surface is horizontal: the liquid's top faces all lie in the plane z = top
    top = liquid.vertices[:, 2].max()
    up = lm.face_normals[:, 2] > 1 - 1e-9
    cap = lm.triangles[up][:, :, 2]
    assert np.allclose(cap, top, atol=1e-6)
    assert lm.area_faces[up].sum() > 0
    # only the cap is at the top: any other face reaching z = top is vertical (a wall)
    at_top = np.isclose(lm.triangles[:, :, 2].max(axis=1), top, atol=1e-6)
    others = lm.face_normals[at_top & ~up]
    assert np.all(np.abs(others[:, 2]) < 1 - 1e-6)
    # inside the cavity: the liquid does not overlap the wall
    wm = trimesh.Trimesh(wall.vertices, wall.faces, process=False)
    overlap = trimesh.boolean.intersection([wm, lm], engine="manifold").volume
    assert overlap <= 1e-6 * cavity + 1e-3
    return err


def test_liquid_volume_and_surface_random_poses(bottle):
    errors = [_check(*case, bottle) for case in _cases(36, 11)]
    assert max(abs(e) for e in errors) < 0.01, max(errors, key=abs)


@pytest.mark.slow
def test_liquid_volume_many_more(bottle):
    errors = [_check(*case, bottle) for case in _cases(300, 12)]
    assert max(abs(e) for e in errors) < 0.01


def test_liquid_level_extremes(bottle):
    rng = np.random.default_rng(3)
    for level in (0.05, 0.5, 0.95, 1.0):
        obj = Object.model_validate({
            "name": "b", "shape": {"cylinder": {"radius": 30, "height": 100}}, "material": "PET",
            "container": {"wall": 1.0, "fill": {"material": "water", "level": level}},
            "pose": {"position": [0, 0, 60], "rotation_deg": [37.0, 0, 0]},
        })
        solids, _ = object_solids(obj, 1, tolerance=0.01)  # the scene default
        cavity = np.pi * 29**2 * 98
        assert solids[1].volume == pytest.approx(level * cavity, rel=0.002)
    del rng


def test_volume_below_a_plane_is_manifolds_and_a_boxs_closed_form(bottle):
    """The fill level's volume function (closed form over the faces) against manifold3d's cut of
    the same meshes at heights through them (and past both ends), and a box's a b (h - z0)."""
    from xraybag.engine.solids.meshes import to_manifold
    from xraybag.engine.solids.scene import volume_below

    rng = np.random.default_rng(0)
    meshes = [trimesh.creation.icosphere(3, 40.0), trimesh.creation.cylinder(30, 100, sections=48),
              trimesh.creation.capsule(80, 20), trimesh.load(bottle)]
    for mesh in meshes:
        mesh = mesh.copy()
        mesh.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        cut = to_manifold(mesh)
        tri = mesh.vertices[mesh.faces]
        z0, z1 = mesh.vertices[:, 2].min(), mesh.vertices[:, 2].max()
        for h in np.linspace(z0 - 1.0, z1 + 1.0, 17):
            want = cut.trim_by_plane([0.0, 0.0, -1.0], -h).volume()
            assert volume_below(tri, h) == pytest.approx(want, rel=1e-12, abs=1e-9 * cut.volume())
    from xraybag.engine.solids.scene import fill_cavity

    cyl = trimesh.creation.cylinder(30, 100, sections=48)  # z from -50 to 50
    v, f, h = fill_cavity(cyl.vertices, cyl.faces, 0.25)
    assert h == pytest.approx(-25.0, abs=1e-6)  # a quarter of the height
    assert trimesh.Trimesh(v, f).volume == pytest.approx(0.25 * cyl.volume, rel=1e-6)
    box = trimesh.creation.box((30.0, 40.0, 50.0))  # z from -25 to 25
    for h in (-25.0, -10.0, 0.0, 24.0, 30.0):
        assert volume_below(box.vertices[box.faces], h) == pytest.approx(30 * 40 * (min(h, 25.0) + 25.0))
