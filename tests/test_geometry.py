"""Shape meshes, hollow containers, mesh-file checks and the solids of a concrete scene."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from xraybag.engine.solids.meshes import check_mesh_file, hollow, sections, shape_mesh
from xraybag.engine.solids.scene import build_solids, rotation_matrix
from xraybag.errors import XraybagError
from xraybag.scenes.models import Scene, Shape


def shape(d: dict) -> Shape:
    return Shape.model_validate(d)


def closed(v, f) -> trimesh.Trimesh:
    m = trimesh.Trimesh(v, f)
    assert m.is_watertight
    assert m.is_winding_consistent
    return m


def frustum_volume(rb: float, rt: float, h: float) -> float:
    return math.pi * h / 3.0 * (rb * rb + rb * rt + rt * rt)


SHAPES = [
    ({"box": {"size": [10, 20, 30]}}, 6000.0, [5, 10, 15]),
    ({"cylinder": {"radius": 30, "height": 100}}, math.pi * 30**2 * 100, [30, 30, 50]),
    ({"sphere": {"radius": 40}}, 4 / 3 * math.pi * 40**3, [40, 40, 40]),
    ({"ellipsoid": {"radii": [40, 25, 15]}}, 4 / 3 * math.pi * 40 * 25 * 15, [40, 25, 15]),
    ({"cone": {"radius_bottom": 30, "radius_top": 12, "height": 50}}, frustum_volume(30, 12, 50), [30, 30, 25]),
    ({"cone": {"radius_bottom": 0, "radius_top": 25, "height": 40}}, frustum_volume(0, 25, 40), [25, 25, 20]),
]


# ------------------------------------------------------------------------------- shape meshes


@pytest.mark.parametrize("spec,volume,half", SHAPES, ids=[next(iter(s[0])) for s in SHAPES])
def test_shape_mesh_closed_volume_bounds(spec, volume, half):
    m = shape_mesh(shape(spec))
    closed(m.vertices, m.faces)
    assert m.volume > 0
    if "box" in spec:
        assert m.volume == pytest.approx(volume, rel=1e-12)
    else:
        assert m.volume == pytest.approx(volume, rel=2e-3)
        assert m.volume <= volume  # vertices on the surface: the mesh is inscribed
    np.testing.assert_allclose(m.bounds, [-np.array(half), np.array(half)], atol=1e-9)


def test_cone_orientation_bottom_and_top():
    m = shape_mesh(shape({"cone": {"radius_bottom": 30, "radius_top": 0, "height": 50}}))
    bottom = m.vertices[np.isclose(m.vertices[:, 2], -25)]
    top = m.vertices[np.isclose(m.vertices[:, 2], 25)]
    assert np.hypot(bottom[:, 0], bottom[:, 1]).max() == pytest.approx(30)
    assert len(top) == 1 and np.allclose(top[0], [0, 0, 25])


@pytest.mark.parametrize("r,tol", [(40.0, 0.02), (10.0, 0.005), (3.0, 0.02)])
def test_sphere_tolerance(r, tol):
    m = shape_mesh(shape({"sphere": {"radius": r}}), tolerance=tol)
    assert np.abs(np.linalg.norm(m.vertices, axis=1) - r).max() < 1e-9
    centres = m.triangles.mean(axis=1)
    assert (r - np.linalg.norm(centres, axis=1)).max() <= tol
    assert len(m.faces) <= 20000


def test_sphere_face_cap():
    # beyond the face cap the tolerance gives way (error about r / 50**2)
    m = shape_mesh(shape({"sphere": {"radius": 200}}), tolerance=0.02)
    assert len(m.faces) <= 20000
    assert (200 - np.linalg.norm(m.triangles.mean(axis=1), axis=1)).max() < 200 / 50**2


@pytest.mark.parametrize("tol", [0.02, 0.005])
def test_cylinder_tolerance(tol):
    r, h = 30.0, 80.0
    m = shape_mesh(shape({"cylinder": {"radius": r, "height": h}}), tolerance=tol)

    def distance(p):  # distance of points inside the cylinder to its surface
        rho = np.hypot(p[:, 0], p[:, 1])
        return np.minimum(np.abs(r - rho), np.abs(h / 2 - np.abs(p[:, 2])))

    assert distance(m.vertices).max() < 1e-9
    assert distance(m.triangles.mean(axis=1)).max() <= tol
    # the largest chord error is at the middle of a side edge: r (1 - cos(pi / n))
    n = sections(r, tol)
    assert r * (1 - math.cos(math.pi / n)) <= tol


def test_sections_bounds():
    assert sections(0.01, 0.02) == 16
    assert sections(1e6, 0.02) == 720
    assert sections(30, 0.02) % 4 == 0


# ------------------------------------------------------------------------------- mesh files


def write_box(path, size=(20, 30, 40), offset=(100, 0, 0)):
    m = trimesh.creation.box(extents=size)
    m.apply_translation(offset)
    m.export(path)
    return path


def test_mesh_shape_scaled_and_centred(tmp_path):
    p = write_box(tmp_path / "box.stl")
    m = shape_mesh(shape({"mesh": {"path": str(p), "scale": [2, 1, 0.5]}}))
    np.testing.assert_allclose(m.bounds, [[-20, -15, -10], [20, 15, 10]], atol=1e-9)
    assert m.volume == pytest.approx(40 * 30 * 20)
    m.vertices[:] = 0  # a copy: the cache is not touched
    again = shape_mesh(shape({"mesh": {"path": str(p), "scale": [2, 1, 0.5]}}))
    assert again.volume == pytest.approx(40 * 30 * 20)
    uniform = shape_mesh(shape({"mesh": {"path": str(p), "scale": 10}}))
    assert uniform.volume == pytest.approx(20 * 30 * 40 * 1000)


def test_mesh_glb_concatenated(tmp_path):
    a = trimesh.creation.box(extents=[10, 10, 10])
    b = trimesh.creation.box(extents=[10, 10, 10])
    b.apply_translation([20, 0, 0])
    trimesh.Scene([a, b]).export(tmp_path / "two.glb")
    m = shape_mesh(shape({"mesh": {"path": str(tmp_path / "two.glb")}}))
    assert m.volume == pytest.approx(2000)
    np.testing.assert_allclose(m.bounds, [[-15, -5, -5], [15, 5, 5]], atol=1e-6)


def test_check_mesh_file_good(tmp_path):
    check_mesh_file(write_box(tmp_path / "good.stl"), "scene.yaml:3:5")


def test_check_mesh_file_open(tmp_path):
    m = trimesh.creation.box(extents=[10, 10, 10])
    open_box = trimesh.Trimesh(m.vertices, m.faces[:-1])
    open_box.export(tmp_path / "open.stl")
    with pytest.raises(XraybagError, match="watertight") as e:
        check_mesh_file(tmp_path / "open.stl", "scene.yaml:3:5")
    assert str(e.value).startswith("scene.yaml:3:5: mesh 'open.stl' is not watertight: ")
    assert "\n" not in str(e.value)


def test_check_mesh_file_inside_out(tmp_path):
    m = trimesh.creation.box(extents=[10, 10, 10])
    trimesh.Trimesh(m.vertices, m.faces[:, ::-1]).export(tmp_path / "inv.stl")
    with pytest.raises(XraybagError, match="inside out"):
        check_mesh_file(tmp_path / "inv.stl", "here")


def test_check_mesh_file_garbage_and_missing(tmp_path):
    (tmp_path / "junk.stl").write_bytes(bytes(range(256)) * 3 + b"\x00garbage")
    with pytest.raises(XraybagError, match="junk.stl"):
        check_mesh_file(tmp_path / "junk.stl", "here")
    (tmp_path / "empty.obj").write_bytes(b"")
    with pytest.raises(XraybagError, match="empty"):
        check_mesh_file(tmp_path / "empty.obj", "here")
    with pytest.raises(XraybagError, match="cannot read mesh 'nope.stl'"):
        check_mesh_file(tmp_path / "nope.stl", "here")


def test_mesh_shape_rejects_open_mesh(tmp_path):
    m = trimesh.creation.box(extents=[10, 10, 10])
    trimesh.Trimesh(m.vertices, m.faces[:-1]).export(tmp_path / "open.stl")
    with pytest.raises(XraybagError, match="watertight"):
        shape_mesh(shape({"mesh": {"path": str(tmp_path / "open.stl")}}))


# ------------------------------------------------------------------------------------ hollow


HOLLOW = [
    ({"box": {"size": [60, 40, 100]}}, 2.0, 60 * 40 * 100 - 56 * 36 * 96),
    ({"cylinder": {"radius": 35, "height": 200}}, 1.2, math.pi * (35**2 * 200 - 33.8**2 * 197.6)),
    ({"sphere": {"radius": 45}}, 3.0, 4 / 3 * math.pi * (45**3 - 42**3)),
    ({"ellipsoid": {"radii": [45, 30, 25]}}, 2.0, 4 / 3 * math.pi * (45 * 30 * 25 - 43 * 28 * 23)),
]


@pytest.mark.parametrize("spec,wall,volume", HOLLOW, ids=[next(iter(s[0])) for s in HOLLOW])
def test_hollow_wall_volume(spec, wall, volume):
    outer, inner = hollow(shape(spec), wall)
    closed(inner.vertices, inner.faces)
    assert outer.volume - inner.volume == pytest.approx(volume, rel=5e-3)


def test_hollow_cone_offsets_perpendicular_to_the_side():
    rb, rt, h, w = 40.0, 20.0, 60.0, 2.0
    outer, inner = hollow(shape({"cone": {"radius_bottom": rb, "radius_top": rt, "height": h}}), w)
    s = (rt - rb) / h
    shift = w * math.sqrt(1 + s * s)
    rb_in, rt_in = rb + s * w - shift, rt - s * w - shift
    expected = frustum_volume(rb, rt, h) - frustum_volume(rb_in, rt_in, h - 2 * w)
    assert outer.volume - inner.volume == pytest.approx(expected, rel=5e-3)
    assert inner.bounds[0, 2] == pytest.approx(-h / 2 + w)
    assert inner.bounds[1, 2] == pytest.approx(h / 2 - w)
    # every cavity vertex on the slanted side is w away from the outer side line
    v = inner.vertices
    rho = np.hypot(v[:, 0], v[:, 1])
    side = rho > 1
    dist = (rb + s * (v[side, 2] + h / 2) - rho[side]) / math.sqrt(1 + s * s)
    assert dist.min() == pytest.approx(w, abs=0.03)


def test_hollow_pointed_cone():
    outer, inner = hollow(shape({"cone": {"radius_bottom": 30, "radius_top": 0, "height": 50}}), 2)
    closed(inner.vertices, inner.faces)
    apex = 25 - 2 * math.sqrt(1 + 0.36) / 0.6  # the apex moves down by w / sin(half angle)
    assert inner.bounds[1, 2] == pytest.approx(apex)


def test_hollow_mesh_box_exact_and_cylinder_min_wall(tmp_path):
    write_box(tmp_path / "box.stl", size=(60, 40, 100))
    outer, inner = hollow(shape({"mesh": {"path": str(tmp_path / "box.stl")}}), 2.0)
    assert outer.volume - inner.volume == pytest.approx(60 * 40 * 100 - 56 * 36 * 96, rel=1e-9)
    # a bottle-like mesh with a narrow neck: the thinnest wall is the requested one
    body = trimesh.creation.cylinder(radius=30, height=100, sections=64)
    neck = trimesh.creation.cylinder(radius=12, height=40, sections=64)
    neck.apply_translation([0, 0, 70])
    bottle = trimesh.boolean.union([body, neck], engine="manifold")
    bottle.export(tmp_path / "bottle.stl")
    outer, inner = hollow(shape({"mesh": {"path": str(tmp_path / "bottle.stl")}}), 2.0)
    closed(inner.vertices, inner.faces)
    assert 0 < inner.volume < outer.volume
    # cavity vertices are inside the outer cylinder radii with at least the wall to spare
    v = inner.vertices
    rho = np.hypot(v[:, 0], v[:, 1])
    in_neck = v[:, 2] > outer.bounds[1, 2] - 40
    assert rho[in_neck].max() <= 12 - 2 + 1e-3


@pytest.mark.parametrize(
    "spec,wall",
    [
        ({"box": {"size": [10, 20, 30]}}, 5),
        ({"cylinder": {"radius": 3, "height": 100}}, 3),
        ({"sphere": {"radius": 4}}, 4.5),
        ({"ellipsoid": {"radii": [40, 3, 20]}}, 3),
        ({"cone": {"radius_bottom": 5, "radius_top": 5, "height": 100}}, 6),
        ({"cone": {"radius_bottom": 20, "radius_top": 20, "height": 8}}, 4),
    ],
)
def test_hollow_too_thick(spec, wall):
    with pytest.raises(XraybagError, match="too thick"):
        hollow(shape(spec), wall)


# ------------------------------------------------------------------------------------ solids


def scene(objects, wall=1.5, size=(550, 350, 220)) -> Scene:
    return Scene.model_validate(
        {"bag": {"size": list(size), "wall": {"material": "nylon", "thickness": wall}}, "objects": objects}
    )


def check_solids(solids):
    for s in solids:
        assert s.vertices.dtype == np.float64 and s.faces.dtype == np.int32
        m = closed(s.vertices, s.faces)
        assert m.volume > 0


def test_rotated_box_swaps_extents_and_position_is_bbox_centre():
    sc = scene(
        [
            {
                "name": "plate",
                "shape": {"box": {"size": [80, 60, 20]}},
                "material": "aluminum",
                "pose": {"position": [10, -20, 10], "rotation_deg": [0, 0, 90]},
                "label": "plate",
            }
        ]
    )
    solids, infos = build_solids(sc)
    check_solids(solids)
    plate = [s for s in solids if s.object_index == 1]
    assert len(plate) == 1 and plate[0].material == "aluminum" and plate[0].part == "plate"
    b = infos[0].bounds
    np.testing.assert_allclose(b[1] - b[0], [60, 80, 20], atol=1e-9)
    np.testing.assert_allclose(b.mean(axis=0), [10, -20, 10], atol=1e-9)
    assert infos[0].position == [10.0, -20.0, 10.0]
    assert infos[0].label == "plate" and infos[0].materials == ["aluminum"]
    assert infos[0].volume == pytest.approx(80 * 60 * 20)


def test_rotation_convention():
    # R = Rz Ry Rx: x first, then y, then z (fixed axes)
    r = rotation_matrix([90, 0, 90])
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # z -> -y (Rx) -> x (Rz)


def test_multi_part_knife():
    knife = {
        "name": "knife",
        "label": "knife",
        "parts": [
            {"name": "blade", "shape": {"box": {"size": [120, 2, 25]}}, "material": "steel",
             "pose": {"position": [60, 0, 0]}},
            {"name": "handle", "shape": {"cylinder": {"radius": 10, "height": 100}}, "material": "plastic",
             "pose": {"position": [-50, 0, 0], "rotation_deg": [0, 90, 0]}},
        ],
        "pose": {"position": [100, 50, 20], "rotation_deg": [0, 0, 90]},
    }
    solids, infos = build_solids(scene([knife]))
    check_solids(solids)
    parts = {s.part: s for s in solids if s.object_index == 1}
    assert set(parts) == {"knife.blade", "knife.handle"}
    assert parts["knife.blade"].material == "steel" and parts["knife.handle"].material == "plastic"
    info = infos[0]
    assert info.materials == ["steel", "plastic"]
    # the tree spans x in [-100, 120] (centre 10) in the object frame; yaw 90 maps x to y
    np.testing.assert_allclose(info.bounds, [[90, -60, 7.5], [110, 160, 32.5]], atol=1e-9)
    # the blade sits at the +x end of the tree (object x 0..120), i.e. y = 50 - 10 + 0..120
    np.testing.assert_allclose(parts["knife.blade"].bounds[:, 1], [40, 160], atol=1e-9)
    assert info.volume == pytest.approx(120 * 2 * 25 + math.pi * 100 * 100, rel=5e-3)  # r = 10: coarse


def bottle(level: float, rotation, position=(0, 0, 110)):
    return {
        "name": "bottle",
        "shape": {"cylinder": {"radius": 35, "height": 200}},
        "material": "PET",
        "container": {"wall": 1.2, "fill": {"material": "water", "level": level}},
        "pose": {"position": list(position), "rotation_deg": list(rotation)},
        "label": "plastic_bottle",
    }


@pytest.mark.parametrize("level", [0.3, 0.5, 0.85])
def test_tilted_bottle_fill(level):
    solids, infos = build_solids(scene([bottle(level, [60, 0, 0])]))
    check_solids(solids)
    parts = {s.part: s for s in solids if s.object_index == 1}
    assert set(parts) == {"bottle", "bottle.fill"}
    wall, liquid = parts["bottle"], parts["bottle.fill"]
    a, h = 35 - 1.2, 200 - 2.4
    cavity = math.pi * a * a * h
    assert wall.volume == pytest.approx(math.pi * 35 * 35 * 200 - cavity, rel=5e-3)
    assert liquid.volume == pytest.approx(level * cavity, rel=5e-3)
    assert liquid.material == "water"
    assert infos[0].materials == ["PET", "water"]
    assert infos[0].volume == pytest.approx(wall.volume + liquid.volume)
    # the liquid top is one horizontal plane
    m = trimesh.Trimesh(liquid.vertices, liquid.faces)
    top = m.face_normals[:, 2] > 1 - 1e-9
    z_top = liquid.vertices[:, 2].max()
    assert np.allclose(m.triangles[top][:, :, 2], z_top, atol=1e-6)
    assert m.area_faces[top].sum() > 0.9 * math.pi * a * a
    if level == 0.5:  # by symmetry, the surface passes through the bottle's centre
        assert z_top == pytest.approx(110, abs=1e-3)
        # and is the cylinder's oblique section: an ellipse of semi-axes a and a / cos 60
        assert m.area_faces[top].sum() == pytest.approx(math.pi * a * 2 * a, rel=3e-3)
    # the liquid is inside the cavity: below its top and within its bounds
    assert np.all(liquid.bounds[0] >= wall.bounds[0] - 1e-9)


def test_upright_full_and_bag_shell():
    solids, infos = build_solids(scene([bottle(1.0, [0, 0, 0])], wall=2.0, size=(400, 300, 200)))
    check_solids(solids)
    bag = [s for s in solids if s.object_index == 0]
    assert len(bag) == 1 and bag[0].material == "nylon" and bag[0].part == "bag"
    assert bag[0].volume == pytest.approx(404 * 304 * 204 - 400 * 300 * 200)
    np.testing.assert_allclose(bag[0].bounds, [[-202, -152, -2], [202, 152, 202]])
    liquid = next(s for s in solids if s.part == "bottle.fill")
    assert liquid.volume == pytest.approx(math.pi * 33.8**2 * 197.6, rel=5e-3)


def test_no_bag_wall_and_missing_pose():
    solids, infos = build_solids(scene([], wall=0))
    assert solids == [] and infos == []
    with pytest.raises(XraybagError, match="'loose'.*no pose"):
        build_solids(scene([{"name": "loose", "shape": {"sphere": {"radius": 5}}, "material": "x"}]))


def test_nested_parts_and_container_part():
    obj = {
        "name": "thermos",
        "parts": [
            {"name": "body", "shape": {"cylinder": {"radius": 40, "height": 150}}, "material": "steel",
             "container": {"wall": 1.0, "fill": {"material": "water", "level": 0.5}}},
            {"name": "lid", "pose": {"position": [0, 0, 85]},
             "parts": [{"name": "cap", "shape": {"cylinder": {"radius": 42, "height": 20}}, "material": "pp"}]},
        ],
        "pose": {"position": [0, 0, 100], "rotation_deg": [0, 0, 0]},
    }
    solids, infos = build_solids(scene([obj]))
    check_solids(solids)
    names = [s.part for s in solids if s.object_index == 1]
    assert names == ["thermos.body", "thermos.body.fill", "thermos.lid.cap"]
    assert infos[0].materials == ["steel", "water", "pp"]
    # the tree spans z in [-75, 95] (height 170) and is centred on the pose position
    np.testing.assert_allclose(infos[0].bounds[:, 2], [15, 185], atol=1e-9)


@pytest.mark.parametrize("freq", [1, 2, 3, 7, 16, 50])
def test_geodesic_sphere_is_closed_and_counted(freq):
    """The unit geodesic sphere of frequency f: 4 f**2 + 2 distinct points on the sphere and
    8 f**2 outward triangles, every edge shared by exactly two of them (closed, as Euler's
    V - E + F = 2 needs), the octahedron's corners on the axes."""
    from xraybag.engine.solids.meshes import _unit_geodesic

    v, f, error = _unit_geodesic(freq)
    assert v.shape == (4 * freq**2 + 2, 3) and f.shape == (8 * freq**2, 3)
    assert len(np.unique(v.round(12), axis=0)) == len(v)
    assert np.abs(np.linalg.norm(v, axis=1) - 1.0).max() < 1e-15
    m = trimesh.Trimesh(v, f, process=False)
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    assert len(v) - len(m.edges_unique) + len(f) == 2
    for corner in np.vstack([np.eye(3), -np.eye(3)]):
        assert (np.abs(v - corner).max(axis=1) == 0).sum() == 1
    # the chord error: 1 - the closest facet plane's distance, within (0, the octahedron's]
    assert 0 < error <= 1 - 1 / math.sqrt(3) + 1e-12
