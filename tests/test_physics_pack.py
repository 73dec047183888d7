"""The physics and heuristic packers: checks on true meshes, determinism, left-out objects."""

from __future__ import annotations

import time

import numpy as np
import pytest

from xraybag.engine.packing import LARGER_THAN_BAG, TIME_BUDGET_REASON, PackReport
from xraybag.engine.packing.base import BAG_FULL
from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.heuristic import pack_heuristic
from xraybag.engine.packing.physics import pack_physics
from xraybag.scenes.models import Scene

BAG = [400.0, 300.0, 200.0]


def _has_pybullet() -> bool:
    try:
        import pybullet  # noqa: F401
    except ImportError:
        return False
    return True


METHODS = [
    pytest.param(pack_heuristic, id="heuristic"),
    pytest.param(pack_physics, id="physics",
                 marks=pytest.mark.skipif(not _has_pybullet(), reason="pybullet is not installed")),
]


def mixed(n: int = 12, seed: int = 3) -> list[dict]:
    r = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            size = [round(float(x), 1) for x in r.uniform(30, 120, 3)]
            out.append({"name": f"box{i}", "shape": {"box": {"size": size}}, "material": "abs"})
        elif k == 1:
            cyl = {"radius": round(float(r.uniform(10, 40)), 1), "height": round(float(r.uniform(30, 150)), 1)}
            out.append({"name": f"cyl{i}", "shape": {"cylinder": cyl}, "material": "pp"})
        elif k == 2:
            sph = {"radius": round(float(r.uniform(15, 40)), 1)}
            out.append({"name": f"ball{i}", "shape": {"sphere": sph}, "material": "pp", "label": "ball"})
        else:
            out.append({
                "name": f"tool{i}",
                "label": "tool",
                "parts": [
                    {"name": "blade", "shape": {"box": {"size": [100, 30, 6]}}, "material": "steel"},
                    {"name": "grip", "shape": {"cylinder": {"radius": 11, "height": 60}}, "material": "pp",
                     "pose": {"position": [-75, 0, 0], "rotation_deg": [0, 90, 0]}},
                ],
            })
    return out


def scene(objects, bag=BAG) -> Scene:
    return Scene.model_validate({"seed": 4, "bag": {"size": bag}, "objects": objects})


def assert_good(packed: Scene) -> dict:
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005, m
    assert m["max_outside_mm"] <= 1e-6, m
    assert m["max_support_gap_mm"] <= 1.0, m
    return m


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,seed", [(10, 1), (14, 2)])
def test_packs_inside_without_overlap_and_supported(method, n, seed):
    sc = scene(mixed(n, seed))
    packed, report = method(sc, np.random.default_rng(seed))
    assert isinstance(report, PackReport)
    assert len(report.placed) + len(report.left_out) == n
    assert len(report.placed) >= n - 2, report.left_out
    assert all(o.pose is not None for o in packed.objects)
    assert {"decomposition", "simulation", "refinement"} <= set(report.timings)
    m = assert_good(packed)
    assert m["objects"] == len(report.placed)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_for_the_same_seed(method):
    sc = scene(mixed(8, 5))
    a, _ = method(sc, np.random.default_rng(7))
    b, _ = method(sc, np.random.default_rng(7))
    c, _ = method(sc, np.random.default_rng(8))
    assert a.model_dump() == b.model_dump()
    assert a.model_dump() != c.model_dump()


@pytest.mark.parametrize("method", METHODS)
def test_posed_objects_untouched_and_too_large_left_out(method):
    objs = mixed(6, 9)
    objs[0] = {**objs[0], "pose": {"position": [0.0, 0.0, 60.0], "rotation_deg": [0.0, 0.0, 10.0]}}
    objs[0]["shape"] = {"box": {"size": [80.0, 80.0, 120.0]}}
    objs.append({"name": "plank", "shape": {"box": {"size": [900, 50, 20]}}, "material": "wood"})
    sc = scene(objs)
    packed, report = method(sc, np.random.default_rng(0))
    assert ("plank", LARGER_THAN_BAG) in report.left_out
    assert "plank" not in [o.name for o in packed.objects]
    fixed = next(o for o in packed.objects if o.name == objs[0]["name"])
    assert fixed.pose.model_dump() == sc.objects[0].pose.model_dump()
    assert objs[0]["name"] not in report.placed
    assert_good(packed)


@pytest.mark.parametrize("method", METHODS)
def test_impossible_request_ends_within_the_time_budget(method):
    objs = [{"name": f"brick{i}", "shape": {"box": {"size": [40, 30, 20]}}, "material": "abs"}
            for i in range(200)]
    sc = scene(objs, bag=[150.0, 120.0, 60.0])
    t = time.perf_counter()
    packed, report = method(sc, np.random.default_rng(0), time_budget=2.0)
    assert time.perf_counter() - t < 8.0
    assert len(report.left_out) > 150
    reasons = {r for _, r in report.left_out}
    assert reasons <= {TIME_BUDGET_REASON, "no free space found", BAG_FULL}
    assert_good(packed)


def test_sheets_are_skipped():
    objs = mixed(4, 1) + [{"name": "sheet", "sheet": {"size": [200, 150], "thickness": 1.0}, "material": "PETN"}]
    sc = scene(objs)
    packed, report = pack_heuristic(sc, np.random.default_rng(0))
    sheet = next(o for o in packed.objects if o.name == "sheet")
    assert sheet.pose is None and "sheet" not in report.placed


def test_registered_through_pack():
    from xraybag.engine import packing

    sc = scene(mixed(5, 2))
    for method in ("heuristic", "physics"):
        packed, report = packing.pack(sc, method=method, rng=np.random.default_rng(0))
        assert report.method == method and report.note is None and report.seconds > 0
        assert len(report.placed) == 5
        assert_good(packed)


@pytest.mark.parametrize("method", METHODS)
def test_an_object_that_fits_only_axis_aligned_is_placed(method):
    objs = [{"name": "slab", "shape": {"box": {"size": [390, 290, 100]}}, "material": "abs"},
            {"name": "ball", "shape": {"sphere": {"radius": 20}}, "material": "pp"}]
    packed, report = method(scene(objs), np.random.default_rng(0))
    assert sorted(report.placed) == ["ball", "slab"], report.left_out
    assert_good(packed)
