"""The stand-in packer: placement inside the bag, no overlaps, determinism, left-out objects."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.packing import LARGER_THAN_BAG, PACKERS, PackReport, pack
from xraybag.engine.solids.scene import build_solids
from xraybag.errors import XraybagError
from xraybag.scenes.models import Scene

BAG = [550.0, 350.0, 220.0]


def clutter(n: int = 15, seed: int = 3) -> list[dict]:
    r = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 2:
            size = [round(float(x), 1) for x in r.uniform(30, 150, 3)]
            out.append({"name": f"box{i}", "shape": {"box": {"size": size}}, "material": "abs"})
        else:
            cyl = {"radius": round(float(r.uniform(10, 40)), 1), "height": round(float(r.uniform(30, 200)), 1)}
            out.append({"name": f"cyl{i}", "shape": {"cylinder": cyl}, "material": "pp"})
    return out


def scene(objects, method="random", gap=1.0, attempts=200) -> Scene:
    return Scene.model_validate(
        {
            "seed": 4,
            "bag": {"size": BAG},
            "objects": objects,
            "packing": {"method": method, "gap": gap, "attempts": attempts},
        }
    )


def boxes(packed: Scene) -> dict[str, np.ndarray]:
    _, infos = build_solids(packed)
    return {i.name: i.bounds for i in infos}


def assert_inside_and_disjoint(bounds: dict[str, np.ndarray], gap: float) -> None:
    lo_bag = np.array([-BAG[0] / 2, -BAG[1] / 2, 0.0])
    hi_bag = np.array([BAG[0] / 2, BAG[1] / 2, BAG[2]])
    for name, b in bounds.items():
        assert np.all(b[0] >= lo_bag - 1e-6), name
        assert np.all(b[1] <= hi_bag + 1e-6), name
    items = list(bounds.items())
    for i, (na, a) in enumerate(items):
        for nb, b in items[i + 1 :]:
            separated = np.any((a[0] >= b[1] + gap - 1e-6) | (b[0] >= a[1] + gap - 1e-6))
            assert separated, (na, nb)


def test_random_clutter_inside_disjoint_and_resting():
    packed, report = pack(scene(clutter()), rng=np.random.default_rng(11))
    assert isinstance(report, PackReport) and report.method == "random" and report.note is None
    assert report.seconds >= 0
    assert len(report.placed) + len(report.left_out) == 15
    assert len(report.placed) >= 10
    assert [o.name for o in packed.objects] == report.placed  # original order kept
    bounds = boxes(packed)
    assert_inside_and_disjoint(bounds, gap=1.0)
    # every object rests on the floor or on top of another one (plus the gap): nothing floats
    for name, b in bounds.items():
        bottom = b[0, 2]
        below = [o[1, 2] + 1.0 for n, o in bounds.items() if n != name]
        assert bottom == pytest.approx(0, abs=1e-6) or np.min(np.abs(np.array(below) - bottom)) < 1e-6
    # resting orientations only, plain floats everywhere
    for o in packed.objects:
        rx, ry, yaw = o.pose.rotation_deg
        assert (rx, ry) in {(0.0, 0.0), (90.0, 0.0), (0.0, 90.0)}
        assert 0 <= yaw < 360
        assert all(type(x) is float for x in [*o.pose.position, *o.pose.rotation_deg])
    # the packed scene is a valid concrete scene
    again = Scene.model_validate(packed.model_dump())
    assert again.objects[0].pose.position == packed.objects[0].pose.position


def test_deterministic_for_the_same_seed():
    sc = scene(clutter())
    a, ra = pack(sc, rng=np.random.default_rng(5))
    b, rb = pack(sc, rng=np.random.default_rng(5))
    c, _ = pack(sc, rng=np.random.default_rng(6))
    assert a.model_dump() == b.model_dump()
    assert ra.placed == rb.placed and ra.left_out == rb.left_out
    assert a.model_dump() != c.model_dump()
    # without a generator: the bag's own packing stream, also deterministic
    assert pack(sc)[0].model_dump() == pack(sc)[0].model_dump()
    assert sc.objects[0].pose is None  # the input scene is not modified


def test_posed_objects_untouched_and_avoided():
    fixed = {
        "name": "laptop",
        "shape": {"box": {"size": [330, 230, 20]}},
        "material": "aluminum",
        "pose": {"position": [0, 0, 10], "rotation_deg": [0, 0, 0]},
    }
    objects = [fixed, *clutter(8)]
    packed, report = pack(scene(objects), rng=np.random.default_rng(2))
    assert "laptop" not in report.placed
    laptop = next(o for o in packed.objects if o.name == "laptop")
    assert laptop.model_dump() == scene(objects).objects[0].model_dump()
    assert_inside_and_disjoint(boxes(packed), gap=1.0)


def test_object_larger_than_bag_left_out():
    objects = [
        {"name": "surfboard", "shape": {"box": {"size": [600, 400, 300]}}, "material": "foam"},
        *clutter(4),
    ]
    packed, report = pack(scene(objects), rng=np.random.default_rng(0))
    assert ("surfboard", LARGER_THAN_BAG) in report.left_out
    assert "surfboard" not in [o.name for o in packed.objects]
    assert len(packed.objects) == 4


def test_long_object_fits_lying_down_along_x():
    # 500 mm long: fits only lying along the conveyor, not at a random yaw
    objects = [{"name": "umbrella", "shape": {"cylinder": {"radius": 20, "height": 500}}, "material": "pp"}]
    packed, report = pack(scene(objects), rng=np.random.default_rng(1))
    assert report.placed == ["umbrella"]
    assert_inside_and_disjoint(boxes(packed), gap=0)


def test_full_bag_leaves_objects_out_with_a_reason():
    cube = {"shape": {"box": {"size": [200, 200, 200]}}, "material": "wood"}
    objects = [{"name": f"cube{i}", **cube} for i in range(6)]
    packed, report = pack(scene(objects, attempts=50), rng=np.random.default_rng(0))
    assert 1 <= len(packed.objects) <= 2  # 550 x 350 x 220 holds at most two 200 mm cubes
    assert len(report.left_out) == 6 - len(packed.objects)
    assert all("attempts" in reason for _, reason in report.left_out)
    assert_inside_and_disjoint(boxes(packed), gap=1.0)


def test_every_method_is_registered_and_named_in_the_report():
    sc = scene(clutter(5), method="heuristic")
    packed, report = pack(sc, rng=np.random.default_rng(3))
    assert report.method == "heuristic" and report.note is None
    assert all(o.pose is not None for o in packed.objects)
    assert set(PACKERS) == {"physics", "heuristic", "random"}


def test_unknown_method_is_an_error():
    with pytest.raises(XraybagError, match="unknown packing method 'tetris'"):
        pack(scene(clutter(2)), method="tetris")


def test_containers_and_parts_pack():
    objects = [
        {
            "name": "bottle",
            "shape": {"cylinder": {"radius": 35, "height": 200}},
            "material": "PET",
            "container": {"wall": 1.2, "fill": {"material": "water", "level": 0.5}},
        },
        {
            "name": "knife",
            "parts": [
                {"name": "blade", "shape": {"box": {"size": [120, 2, 25]}}, "material": "steel",
                 "pose": {"position": [60, 0, 0]}},
                {"name": "handle", "shape": {"cylinder": {"radius": 10, "height": 100}}, "material": "pp",
                 "pose": {"position": [-50, 0, 0], "rotation_deg": [0, 90, 0]}},
            ],
        },
        {"name": "ball", "shape": {"sphere": {"radius": 30}}, "material": "rubber"},
    ]
    packed, report = pack(scene(objects), rng=np.random.default_rng(9))
    assert report.placed == ["bottle", "knife", "ball"]
    assert_inside_and_disjoint(boxes(packed), gap=1.0)


def test_random_packer_outline_extent_is_the_aabb_of_every_vertex():
    """The compiled tries turn only the outline's convex hull by the yaw: its AABB must be that of
    all the object's vertices under rotation_matrix (scipy's convention), quarter turns included."""
    from scipy.spatial.transform import Rotation

    from xraybag.engine.packing.base import BASE_ROTATIONS
    from xraybag.engine.packing.rejection import _extent, _outlines
    from xraybag.engine.solids.scene import object_points
    from xraybag.scenes import sample
    from xraybag.scenes.loader import load_scene

    r = np.random.default_rng(8)
    objs = scene(clutter(6)).objects + sample.sample(load_scene("demo"), 0).objects  # a knife, a gun...
    for obj in objs:
        pts = object_points(obj)
        hull, corners, zr = _outlines(pts)
        assert corners.max() <= len(pts)
        for b, (rx, ry) in enumerate(BASE_ROTATIONS):
            for yaw in [0.0, 90.0, 180.0, 270.0, *r.uniform(0, 360, 20)]:
                ref = pts @ Rotation.from_euler("xyz", [rx, ry, yaw], degrees=True).as_matrix().T
                got = np.array(_extent(hull, b, float(yaw), zr))
                np.testing.assert_allclose(got[[0, 1, 4]], ref.min(axis=0), atol=1e-9)
                np.testing.assert_allclose(got[[2, 3, 5]], ref.max(axis=0), atol=1e-9)
