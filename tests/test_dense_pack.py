"""Dense placement (the physics packer's first step): orientations as a person lays items, boxes
packed to a closed-form fill, labelled objects given room, and the report's fill figures."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.packing.base import BAG_FULL
from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.dense import packing_order, resting_rotations
from xraybag.engine.packing.physics import pack_physics
from xraybag.engine.packing.place import object_geom
from xraybag.engine.solids.scene import rotation_matrix
from xraybag.scenes.models import Scene

pytest.importorskip("pybullet")


def scene(objects, bag) -> Scene:
    return Scene.model_validate({"seed": 4, "bag": {"size": bag}, "objects": objects})


def box(name, size, label=None, material="abs"):
    return {"name": name, "shape": {"box": {"size": size}}, "material": material, "label": label}


def test_first_orientation_lays_a_long_flat_item_flat_along_the_bag():
    sc = scene([box("ruler", [30, 300, 8])], [400, 300, 200])
    obj = sc.objects[0]
    g = object_geom(obj, 0, "ruler")
    # turn it by an arbitrary rotation first: the orientations come from its own shape
    tilted = rotation_matrix([20, -35, 50])
    g.vertices = g.vertices @ tilted.T
    g.hull = g.hull @ tilted.T
    rots = resting_rotations(g)
    for rot, want in zip(rots[:4], ([300, 30, 8], [300, 30, 8], [30, 300, 8], [30, 300, 8])):
        v = g.vertices @ rot.T
        np.testing.assert_allclose(v.max(axis=0) - v.min(axis=0), want, atol=0.5)
        assert abs(np.linalg.det(rot) - 1) < 1e-9
    v = g.vertices @ rots[-1].T  # the last: standing on its end
    assert v.max(axis=0)[2] - v.min(axis=0)[2] == pytest.approx(300, abs=0.5)


def test_order_is_largest_first():
    objs = [box("small", [20, 20, 20]), box("large", [200, 100, 50]), box("mid", [80, 60, 40])]
    sc = scene(objs, [400, 300, 200])
    geoms = [object_geom(o, k, o.name) for k, o in enumerate(sc.objects)]
    order, vols = packing_order(geoms, np.random.default_rng(0))
    assert [g.name for g in order] == ["large", "mid", "small"]
    assert vols[1] == pytest.approx(200 * 100 * 50, rel=1e-6)


def test_bricks_that_fit_in_two_layers_are_all_packed_flat():
    """Eight 95 x 70 x 45 mm bricks fit a 200 x 150 x 100 mm bag two by two by two (80 % of it);
    a random drop fits far fewer."""
    objs = [box(f"brick{i}", [95, 70, 45]) for i in range(8)]
    sc = scene(objs, [200, 150, 100])
    packed, report = pack_physics(sc, np.random.default_rng(0))
    assert len(report.placed) == 8, report.left_out
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6 and m["max_support_gap_mm"] <= 1
    assert report.hull_fill == pytest.approx(8 * 95 * 70 * 45 / (200 * 150 * 100), rel=1e-3)
    assert report.hull_fill_at_first_left_out is None
    for o in packed.objects:  # flat: the 45 mm side vertical, resting on the floor or a brick
        v = object_geom(o, 0, o.name).vertices @ rotation_matrix(o.pose.rotation_deg).T
        assert v.max(axis=0)[2] - v.min(axis=0)[2] == pytest.approx(45, abs=0.1)
        assert float(o.pose.position[2]) == pytest.approx(22.5, abs=1) or float(o.pose.position[2]) == pytest.approx(67.5, abs=1)


def test_a_labelled_object_gets_room_and_the_bag_full_reason_is_given():
    """Six bricks fill the floor of a one-layer bag; a labelled brick comes last (it is the
    smallest): one unlabelled brick is taken out for it and left out as the bag is full."""
    objs = [box(f"brick{i}", [95, 70, 45]) for i in range(6)] + [box("gun", [90, 65, 40], label="gun")]
    sc = scene(objs, [200, 220, 60])
    packed, report = pack_physics(sc, np.random.default_rng(1))
    assert "gun" in report.placed
    assert len(report.placed) == 6
    assert [r for _, r in report.left_out] == [BAG_FULL]
    assert report.hull_fill_at_first_left_out is not None
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6
