"""Dense placement (the physics packer's first step): orientations as a person lays items, boxes
packed to a closed-form fill, labelled objects given room, and the report's fill figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xraybag.engine.packing.base import BAG_FULL
from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.dense import (
    GAP_WEIGHT,
    _refine,
    _row_runs,
    _scan,
    packing_order,
    resting_rotations,
)
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


def test_slabs_go_first_when_asked_and_labelled_objects_before_the_bag_is_half_full():
    """A slab (a tray covering half the floor, 20 mm thick) comes before a bulkier block with
    ``slabs="first"`` and after the small tile with ``slabs="last"``; the tile and the block are not slabs. A labelled can that comes after the
    order's hull volume passes 60 % of the interior is moved to that point, and a request that stays
    under it keeps its order."""
    from xraybag.engine.packing.dense import LABELLED_BY, is_slab

    interior = np.array([400.0, 300.0, 200.0])
    can = {"name": "can", "shape": {"cylinder": {"radius": 30, "height": 100}}, "material": "aluminium",
           "label": "can"}
    objs = [box("block", [150, 150, 150]), box("tray", [300, 200, 20]), box("tile", [100, 80, 10])]
    objs += [box(f"crate{k}", [150, 150, 150]) for k in range(5)] + [can]
    sc = scene(objs, interior.tolist())
    geoms = [object_geom(o, k, o.name) for k, o in enumerate(sc.objects)]
    assert [is_slab(g, interior) for g in geoms[:3]] == [False, True, False]
    first3 = geoms[:3]
    assert [g.name for g in packing_order(first3, np.random.default_rng(0))[0]] == ["block", "tray", "tile"]
    assert [g.name for g in packing_order(first3, np.random.default_rng(0), interior, slabs="first")[0]] == [
        "tray", "block", "tile"]
    # slabs last: the bulky block and the small tile, then the tray laid over them
    assert [g.name for g in packing_order(first3, np.random.default_rng(0), interior, slabs="last")[0]] == [
        "block", "tile", "tray"]
    with pytest.raises(ValueError, match="slabs"):
        packing_order(first3, np.random.default_rng(0), interior, slabs="middle")
    labelled = {g.index: g.name == "can" for g in geoms}
    few = [geoms[0], geoms[3], geoms[-1]]  # 6.8 l of 24 l: under 60 % of the interior
    assert [g.name for g in packing_order(few, np.random.default_rng(0), interior, labelled)[0]][-1] == "can"
    order, vols = packing_order(geoms, np.random.default_rng(0), interior, labelled)
    names = [g.name for g in order]
    at = names.index("can")
    before = sum(vols[g.index] for g in order[:at])
    # the can comes where the next object would take the order past half the interior
    assert before <= LABELLED_BY * np.prod(interior) < before + vols[order[at + 1].index]
    assert at == 4 and names[-2:] == ["tray", "tile"]  # four blocks' volume, then the can
    assert [g.name for g in packing_order(geoms, np.random.default_rng(0))[0]][-2:] == ["can", "tile"]  # without


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
    assert report.hull_fill_at_first_left_out is None and report.first_left_out is None
    for o in packed.objects:  # flat: the 45 mm side vertical, resting on the floor or a brick
        v = object_geom(o, 0, o.name).vertices @ rotation_matrix(o.pose.rotation_deg).T
        assert v.max(axis=0)[2] - v.min(axis=0)[2] == pytest.approx(45, abs=0.1)
        assert float(o.pose.position[2]) == pytest.approx(22.5, abs=1) or float(o.pose.position[2]) == pytest.approx(67.5, abs=1)


def rod(name, length, radius=10.0, material="steel"):
    return {"name": name, "shape": {"cylinder": {"radius": radius, "height": length}}, "material": material}


def test_rods_longer_than_the_bag_are_laid_across_its_diagonal():
    """A 520 mm rod does not fit along a 500 x 300 mm floor but does across its diagonal (583 mm):
    six of them are all packed, turned about the vertical, flat, inside and clean; a rod that fits
    along the bag gets no diagonal turns, and one longer than the floor's diagonal is left out as
    larger than the bag, not as a full bag."""
    from xraybag.engine.packing.base import LARGER_THAN_BAG
    from xraybag.engine.packing.dense import diagonal_rotations

    interior = np.array([500.0, 300.0, 200.0])
    short = object_geom(scene([rod("short", 480)], [500, 300, 200]).objects[0], 0, "short")
    assert diagonal_rotations(short, interior, 4.0) == [[], [], []]
    long = object_geom(scene([rod("long", 520)], [500, 300, 200]).objects[0], 0, "long")
    flat = diagonal_rotations(long, interior, 4.0)[0]
    assert len(flat) == 4  # both diagonals, each upside down too
    for r in flat:
        ext = np.ptp(long.hull @ r.T, axis=0)
        assert np.all(ext[:2] <= interior[:2] - 4.0) and ext[2] == pytest.approx(20.0, abs=0.5)
        assert abs(np.linalg.det(r) - 1) < 1e-9
    # the smallest turn that fits, in steps of half a degree: L cos t + D sin t = 496 mm at
    # t = atan(D / L) + acos(496 / hypot(L, D)) for a rod of length L and diameter D
    turn = math.degrees(math.acos(abs((flat[0] @ resting_rotations(long)[0].T)[0, 0])))
    least = math.degrees(math.atan(20 / 520) + math.acos(496 / math.hypot(520, 20)))
    assert least - 0.5 <= turn <= least + 0.5

    objs = [rod(f"rod{i}", 520) for i in range(6)] + [rod("pole", 600)]
    sc = scene(objs, [500, 300, 200])
    packed, report = pack_physics(sc, np.random.default_rng(0))
    assert sorted(report.placed) == [f"rod{i}" for i in range(6)], report.left_out
    assert report.left_out == [("pole", LARGER_THAN_BAG)]
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6 and m["max_support_gap_mm"] <= 1
    for o in packed.objects:
        v = object_geom(o, 0, o.name).vertices @ rotation_matrix(o.pose.rotation_deg).T
        ext = v.max(axis=0) - v.min(axis=0)
        assert ext[2] == pytest.approx(20.0, abs=0.5)  # lying flat
        assert ext[0] < 500 and ext[1] > 100  # across the floor, not along it


def longest_rod(width, depth, diameter):
    """The longest rod of ``diameter`` that lies flat in a width x depth floor, turned: max over
    the turn t of min((W - D sin t) / cos t, (H - D cos t) / sin t), on a fine grid of turns."""
    t = np.radians(np.linspace(0.01, 89.99, 100001))
    return float(np.max(np.minimum((width - diameter * np.sin(t)) / np.cos(t),
                                   (depth - diameter * np.cos(t)) / np.sin(t))))


def test_a_rod_that_fits_the_empty_bag_only_by_a_hair_is_told_so_not_called_a_full_bag():
    """Rods near the longest that fits a 500 x 300 mm floor (565.7 mm for 20 mm thick): one that
    fits with a map column (2 mm) to spare is placed, one that fits only with less is left out with
    that reason, one longer than the floor allows as larger than the bag; none of them as a full
    bag (the empty bag's reason was "the bag is full" for rods of 559-565 mm)."""
    from xraybag.engine.packing.base import BAG_FULL, LARGER_THAN_BAG

    exact, spared = longest_rod(500, 300, 20), longest_rod(498, 298, 20)
    assert 565 < exact < 566 and 562 < spared < exact
    for length, placed in ((spared - 1.5, True), (spared + 1.0, False), (exact + 1.5, False)):
        packed, report = pack_physics(scene([rod("rod", length)], [500, 300, 200]), np.random.default_rng(0))
        assert (report.placed == ["rod"]) == placed, (length, report.left_out)
        if placed:
            m = check_packing(packed)
            assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6
        else:
            ((_, why),) = report.left_out
            assert why != BAG_FULL
            assert (why == LARGER_THAN_BAG) == (length > exact), why
            assert why == LARGER_THAN_BAG or "under 2 mm to spare" in why


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
    assert report.first_left_out == report.left_out[0][0]  # the brick taken out for the gun
    assert report.first_left_out.startswith("brick")
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6


def _scores(z, gap, hi, pull, top_max):
    top = z + hi
    return np.where(top <= top_max, top + GAP_WEIGHT * gap + pull, np.inf)


@pytest.mark.parametrize("flat", [False, True])
def test_refined_moves_are_the_full_scans_and_no_better_move_is_dropped(flat):
    """``_refine`` computes only the moves whose bound can beat the best score: those it computes
    are ``_scan``'s numbers to the bit, and the lowest score and its first position are the full
    scan's. On a flat map many moves tie, and every tied lowest move is computed."""
    rng = np.random.default_rng(3 if flat else 5)
    nx, ny = 120, 110
    safe = np.zeros((nx, ny)) if flat else np.cumsum(np.cumsum(rng.normal(0, 1, (nx, ny)), 0), 1) / 40.0
    safe = np.maximum(safe, 0.0)
    # a footprint with holes (two runs on some rows), its underside uneven
    fp = np.ones((23, 19), dtype=bool)
    fp[5:9, 7:12] = False
    fp[0, :3] = False
    ci, cj = np.nonzero(fp)
    cb = rng.uniform(0, 6, ci.size)
    sub = np.unique(np.linspace(0, ci.size - 1, 32).astype(np.int64))
    runs, rowsum = _row_runs(ci, cj, safe)
    assert len(runs) == 23 + 4  # rows 5-8 have two runs each
    i0, j0, a0, b0, ni, nj, z_floor, hi = 7, 9, 11, 13, 41, 37, 1.5, 30.0
    pull = 0.2 * ((np.arange(ni) * 2.0)[:, None] + (np.arange(nj) * 2.0)[None, :]) if not flat else \
        0.2 * (np.abs(np.arange(ni) - 20)[:, None] * 2.0 + np.abs(np.arange(nj) - 18)[None, :] * 2.0) // 4
    z_all, g_all = np.empty((ni, nj)), np.empty((ni, nj))
    _scan(safe, ci, cj, cb, i0, j0, a0, b0, ni, nj, 1, z_floor, sub, hi, np.inf, pull, np.inf, z_all, g_all)
    full = _scores(z_all, g_all, hi, pull, 1e9)
    start = float(full[ni // 2, nj // 2])  # the coarse scan's best, as search passes it
    z, g = np.empty((ni, nj)), np.empty((ni, nj))
    _refine(safe, ci, cj, cb, i0, j0, a0, b0, ni, nj, z_floor, sub, runs, rowsum,
            (hi, GAP_WEIGHT, 1e9, pull), start, 1e-6 * (1 + abs(start) + hi + float(pull.max()) + float(safe.max())), z, g)
    done = np.isfinite(z)
    assert np.array_equal(z[done], z_all[done]) and np.array_equal(g[done], g_all[done])
    refined = _scores(z, g, hi, pull, 1e9)
    assert refined.min() == full.min()
    assert full.min() < start or flat  # the refinement found a better move
    assert np.sum(full == full.min()) > (3 if flat else 0)
    assert np.argmin(refined) == np.argmin(full)
    assert np.all(done[full == full.min()])  # every tie of the lowest score is computed
    assert done.mean() < (0.9 if flat else 0.2)  # and most moves are not
    assert np.all(full[~done] > full.min())


def test_search_gives_the_same_candidates_as_scanning_every_refined_move(monkeypatch):
    """A whole bag packed with the bounded refinement and with every refined move scanned: the
    same poses to the bit."""
    from xraybag.engine.packing import dense
    from xraybag.scenes.loader import load_scene
    from xraybag.scenes.sample import sample

    sc = sample(load_scene("clcxray"), 0)
    bounded, rep = pack_physics(sc, np.random.default_rng(0))
    counted = {"moves": 0}

    def every_move(safe, ci, cj, cb, i0, j0, a0, b0, ni, nj, z_floor, sub, runs, rowsum, score_of, best, eps, z, gap):
        counted["moves"] += ni * nj
        _scan(safe, ci, cj, cb, i0, j0, a0, b0, ni, nj, 1, z_floor, sub, 0.0, np.inf, np.zeros((ni, nj)), np.inf, z, gap)

    monkeypatch.setattr(dense, "_refine", every_move)
    scanned, rep2 = pack_physics(sc, np.random.default_rng(0))
    assert counted["moves"] > 10_000  # the refinement ran
    assert rep.placed == rep2.placed and len(rep.placed) >= 20
    assert [o.pose for o in bounded.objects] == [o.pose for o in scanned.objects]


def test_an_objects_kept_columns_give_the_searches_of_a_fresh_object_as_the_bag_fills():
    """What a search keeps of an object (its rotations, its columns per rotation and grid) gives,
    search after search on a map that fills and on another bag's grid, exactly the candidates of
    the same object made afresh each time."""
    from xraybag.engine.packing.dense import dense_candidates
    from xraybag.engine.packing.place import Bag

    objs = [{"name": "kettle", "shape": {"cylinder": {"radius": 45, "height": 120}}, "material": "abs"},
            box("brick", [150, 90, 60]), box("tile", [200, 140, 12])]
    sc = scene(objs, [400, 300, 200])
    kept = object_geom(sc.objects[0], 0, "kettle")

    def same(bag):
        fresh = dense_candidates(bag, object_geom(sc.objects[0], 0, "kettle"), (-1.0, 1.0))
        got = dense_candidates(bag, kept, (-1.0, 1.0))
        assert len(got) == len(fresh) > 0
        for (s1, r1, x1, y1), (s2, r2, x2, y2) in zip(got, fresh):
            assert (s1, x1, y1) == (s2, x2, y2) and np.array_equal(r1, r2)
        return got

    bag = Bag(np.array([400.0, 300.0, 200.0]), 2.0)
    empty = same(bag)
    for k, pos in ((1, [-100, -50, 30]), (2, [60, 40, 6]), (1, [120, -80, 30])):
        bag.add(object_geom(sc.objects[k], k, objs[k]["name"]), np.eye(3), pos)
        now = same(bag)
    assert [c[1:] for c in now] != [c[1:] for c in empty]  # the filled map moved the candidates
    same(Bag(np.array([330.0, 250.0, 160.0]), 3.0))  # another grid: the object's columns there
    assert sum(1 for key in kept.cache if key[0] == "search") > len(resting_rotations(kept))  # two grids kept


def test_an_objects_exact_solid_and_collision_hulls_are_made_only_when_used():
    """An object the search finds no room for never builds its manifold or its parts' hulls; when
    they are used they are the parts' union (the volume of a mug: a cylinder and a handle, checked
    against the closed form) and the union's hull holds every part's hull."""
    from xraybag.engine.packing.dense import dense_candidates
    from xraybag.engine.packing.place import Bag, _hull

    objs = [{"name": "mug", "parts": [
        {"shape": {"cylinder": {"radius": 40, "height": 100}}, "material": "abs"},
        {"shape": {"box": {"size": [30, 10, 60]}}, "material": "abs", "pose": {"position": [55, 0, 0]}}]}]
    sc = scene(objs, [400, 300, 200])
    g = object_geom(sc.objects[0], 0, "mug")
    assert dense_candidates(Bag(np.array([400.0, 300.0, 30.0]), 2.0), g, (-1.0, 1.0)) == []  # too tall
    assert not {"manifold", "volume", "part_hulls"} & set(vars(g))
    assert g.volume == pytest.approx(np.pi * 40**2 * 100 + 30 * 10 * 60, rel=0.01)
    assert len(g.part_hulls) == 2
    assert np.array_equal(g.hull, _hull(np.vstack(g.part_hulls)))


@pytest.mark.parametrize("stride", [1, 3])
def test_rows_that_cannot_fit_under_the_lid_are_skipped_with_the_same_scores(stride):
    """``_scan`` gives z = inf to a row of moves whose every move puts the top above the lid by
    its lift over a few cells alone; every score (inf where the top is above the lid) is the
    same as with nothing skipped, and rows are skipped."""
    rng = np.random.default_rng(11)
    nx, ny = 150, 140
    # contents rising along x from the floor to above the lid, in steps of 0.5 mm a row, so that
    # rows go from fitting to not and one row's top is 0.25 mm under the lid
    safe = np.arange(nx)[:, None] * 0.5 + np.zeros(ny)
    ci, cj = np.nonzero(np.ones((20, 17), dtype=bool))
    cb = np.zeros(ci.size)
    sub = np.unique(np.linspace(0, ci.size - 1, 32).astype(np.int64))
    ni, nj, hi, top_max = 110 // stride, 115 // stride, 30.0, 79.75
    pull = rng.uniform(0, 50, (ni, nj))
    z0, g0 = np.empty((ni, nj)), np.empty((ni, nj))
    _scan(safe, ci, cj, cb, 2, 3, 0, 0, ni, nj, stride, 0.0, sub, hi, np.inf, pull, np.inf, z0, g0)
    z1, g1 = np.empty((ni, nj)), np.empty((ni, nj))
    _scan(safe, ci, cj, cb, 2, 3, 0, 0, ni, nj, stride, 0.0, sub, hi, top_max, pull, np.inf, z1, g1)
    assert np.array_equal(_scores(z0, g0, hi, pull, top_max), _scores(z1, g1, hi, pull, top_max))
    skipped = np.isinf(z1).all(axis=1)
    assert 0.2 < skipped.mean() < 0.8
    assert np.any(np.isclose(z0 + hi, top_max - 0.25) & ~skipped[:, None])  # the closest fit is kept
    assert np.array_equal(z1[~skipped], z0[~skipped]) and np.array_equal(g1[~skipped], g0[~skipped])


@pytest.mark.parametrize("stride", [1, 2])
def test_moves_that_cannot_score_below_the_cap_are_skipped_with_the_same_scores(stride):
    """With a cap (the best flat score, when the sides are searched) ``_scan`` computes only each
    row's span of moves whose top on a few cells plus their pull is below the cap: every move
    scoring below the cap has the full scan's numbers to the bit, and most moves are skipped."""
    rng = np.random.default_rng(12)
    nx, ny = 160, 150
    safe = np.maximum(np.cumsum(np.cumsum(rng.normal(0, 1, (nx, ny)), 0), 1) / 40.0, 0.0)
    fp = np.ones((21, 15), dtype=bool)
    fp[4:8, 5:9] = False
    ci, cj = np.nonzero(fp)
    cb = rng.uniform(0, 4, ci.size)
    sub = np.unique(np.linspace(0, ci.size - 1, 32).astype(np.int64))
    ni, nj, hi, lid = 120 // stride, 120 // stride, 40.0, 1e9
    pull = 0.2 * stride * (np.arange(ni)[:, None] + np.arange(nj)[None, :]) * 1.0
    z0, g0 = np.empty((ni, nj)), np.empty((ni, nj))
    _scan(safe, ci, cj, cb, 3, 2, 0, 0, ni, nj, stride, 0.0, sub, hi, lid, pull, np.inf, z0, g0)
    full = _scores(z0, g0, hi, pull, lid)
    cap = float(np.quantile(full, 0.3))
    z1, g1 = np.empty((ni, nj)), np.empty((ni, nj))
    _scan(safe, ci, cj, cb, 3, 2, 0, 0, ni, nj, stride, 0.0, sub, hi, lid, pull, cap, z1, g1)
    below = full < cap
    assert 0 < below.sum() and np.all(np.isfinite(z1[below]))
    assert np.array_equal(z1[below], z0[below]) and np.array_equal(g1[below], g0[below])
    done = np.isfinite(z1)
    assert np.array_equal(z1[done], z0[done]) and np.array_equal(g1[done], g0[done])
    assert done.mean() < 0.8  # the rest were skipped
    assert np.isinf(z1).all(axis=1).any()  # whole rows too


def test_room_is_not_made_by_taking_out_what_a_labelled_object_rests_on():
    """A labelled tray rests on an unlabelled box that covers the floor; a labelled cube finds no
    room. Taking the box out would give the cube room but leave the tray floating 45 mm up, so
    the box stays and the cube gets no room."""
    from xraybag.engine.packing import physics
    from xraybag.engine.packing.place import PITCH, setup

    sc = scene([box("floor", [190, 140, 45]), box("tray", [100, 60, 20], label="tray"),
                box("cube", [75, 75, 75], label="cube")], [200, 150, 100])
    _, deadline, timings, interior, _, todo, fixed, _, bag = setup(sc, 30.0, PITCH)
    timings["search"] = 0.0
    g = {x.name: x for x in todo}
    st = physics._Packing(bag, fixed, interior, PITCH, timings, deadline, np.random.default_rng(0), (-1.0, -1.0))
    for name in ("floor", "tray"):
        got, _ = st.place(g[name])
        st.commit(g[name], *got)
    assert st.placed[1][2][2] == pytest.approx(55.0, abs=1.0)  # the tray lies on the box
    assert st.place(g["cube"])[1] == BAG_FULL
    assert not st.still_supported([st.placed[1]], 0)
    got, evicted = st.make_room(g["cube"], {x.index: x.name != "floor" for x in todo})
    assert got is None and evicted == []
    assert [p[0].name for p in st.placed] == ["floor", "tray"]  # the map as it was


def _state(sc):
    from xraybag.engine.packing import physics
    from xraybag.engine.packing.place import PITCH, setup

    _, deadline, timings, interior, _, todo, fixed, _, bag = setup(sc, 30.0, PITCH)
    timings["search"] = 0.0
    st = physics._Packing(bag, fixed, interior, PITCH, timings, deadline, np.random.default_rng(0), (-1.0, -1.0))
    return st, {x.name: x for x in todo}


@pytest.mark.parametrize("width, back", [(120, True), (130, False)])
def test_an_object_with_no_room_is_swapped_in_only_if_what_it_displaces_goes_back(width, back):
    """A bar lies on the floor along one wall; a block 80 mm tall finds room neither beside it nor
    on it (under a 100 mm lid). Taking the bar out, the block goes on the floor; with a 30 mm strip
    left beside it the bar goes back on its side there, with 20 mm it cannot, and the bag is left
    as it was."""
    from xraybag.engine.packing.checks import check_packing
    from xraybag.engine.packing.place import pose_of

    sc = scene([box("bar", [180, 40, 25]), box("block", [190, width, 80])], [200, 150, 100])
    st, g = _state(sc)
    got, _ = st.place(g["bar"])
    st.commit(g["bar"], *got)
    before = st.bag.map.safe.copy()
    assert st.place(g["block"], drop=False)[1] == BAG_FULL
    assert st.swap_in(g["block"], {0: False, 1: False}) is back
    if not back:
        assert [p[0].name for p in st.placed] == ["bar"] and np.array_equal(st.bag.map.safe, before)
        return
    assert [p[0].name for p in st.placed] == ["block", "bar"]
    poses = {p[0].index: pose_of(p[1], p[2]) for p in st.placed}
    packed = sc.model_copy(update={"objects": [o.model_copy(update={"pose": poses[k]}) for k, o in enumerate(sc.objects)]})
    checks = check_packing(packed)
    assert checks["max_overlap_fraction"] < 1e-3 and checks["max_outside_mm"] < 1e-6
    assert checks["max_support_gap_mm"] <= 1.0
    bar = st.placed[1][1] @ np.array([0.0, 0.0, 1.0])  # the bar's short (25 mm) axis now lies flat
    assert abs(bar[2]) < 1e-6


def test_an_object_that_is_the_same_upside_down_is_searched_once_a_pair():
    """A box stands on the same columns upside down: its flipped rotations' searches would give
    exactly the places and scores of the rotations before them, so they are skipped and their
    candidates are not repeated. An L-shaped object differs upside down and is searched both ways."""
    from xraybag.engine.packing.dense import _same_columns, dense_candidates, search
    from xraybag.engine.packing.place import Bag

    objs = [box("brick", [150, 90, 60]), box("tile", [200, 140, 12]),
            {"name": "ell", "parts": [
                {"shape": {"box": {"size": [100, 60, 20]}}, "material": "abs"},
                {"shape": {"box": {"size": [30, 60, 40]}}, "material": "abs", "pose": {"position": [35, 0, 30]}}]}]
    sc = scene(objs, [400, 300, 200])
    bag = Bag(np.array([400.0, 300.0, 200.0]), 2.0)
    bag.add(object_geom(sc.objects[1], 1, "tile"), np.eye(3), [60, 40, 6])  # contents to search over
    brick = object_geom(sc.objects[0], 0, "brick")
    rots = resting_rotations(brick)
    # (a face exactly on a row of column centres may fall either way upside down: such a pair is
    # searched twice, as before)
    before = {k: search(bag, brick, rots[k - 1], (-1.0, 1.0)) for k in range(1, len(rots), 2)}  # as the search does
    twins = [k for k in before if _same_columns(brick, rots[k - 1], rots[k], bag.map)]
    assert 1 in twins  # flat, upside down
    for k in twins:
        assert search(bag, brick, rots[k], (-1.0, 1.0)) == before[k]
    cands = dense_candidates(bag, brick, (-1.0, 1.0))
    assert cands and not any(np.array_equal(c[1], rots[k]) for c in cands for k in twins)
    ell = object_geom(sc.objects[2], 2, "ell")
    er = resting_rotations(ell)
    first = search(bag, ell, er[0], (-1.0, 1.0))
    assert not _same_columns(ell, er[0], er[1], bag.map)  # upside down its foot is on top
    assert first != search(bag, ell, er[1], (-1.0, 1.0))
    # a search that stops at the bounds (a lid lower than the brick) makes no columns, and neither
    # does the check: the pair is skipped, and nothing is kept for another map
    low = Bag(np.array([400.0, 300.0, 50.0]), 2.0)
    fresh = object_geom(sc.objects[0], 0, "brick")
    assert search(low, fresh, rots[0], (-1.0, 1.0)) == [] and _same_columns(fresh, rots[0], rots[1], low.map)
    assert not any(k[0] == "same columns" or (k[0] == "search" and "columns" in v) for k, v in fresh.cache.items()
                   if isinstance(k, tuple))


def test_an_object_held_up_by_the_grown_map_beside_a_box_is_sunk_straight_onto_the_floor():
    """The drop map grows the contents' tops by a column, so a 40 mm cube set down 1 mm beside a
    30 mm high box first rests on the box's height; it is sunk onto the floor exactly (its centre
    at 20 mm, no gap left under it), not by halving steps that leave it a fraction above."""
    from xraybag.engine.packing.place import Bag

    sc = scene([box("block", [100, 100, 30]), box("cube", [40, 40, 40])], [300, 200, 100])
    block, cube = (object_geom(o, k, o.name) for k, o in enumerate(sc.objects))
    bag = Bag(np.array([300.0, 200.0, 100.0]), 2.0)
    bag.add(block, np.eye(3), [0.0, 0.0, 15.0])
    x = 50.0 + 20.0 + 1.0  # its near face 1 mm from the block's
    cost, z, fp = bag.settle(cube, np.eye(3), x, 0.0)
    assert z == pytest.approx(30.0 + 20.0, abs=1e-6)  # held up at the grown block's top
    assert bag.map.support_gap(fp, z) == pytest.approx(30.0, abs=1e-6)  # its underside 30 mm up
    sunk = bag.accept(cube, np.eye(3), x, 0.0, z, fp)
    assert sunk == pytest.approx(20.0, abs=1e-9)
    assert bag.overlap(cube, np.eye(3), [x, 0.0, sunk]) == 0.0
