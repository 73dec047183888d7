"""The physics packer's further packings of a request that does not fit: a request that fits is
packed once exactly as before; one that does not is packed again with fresh draws, and the
packing kept is the one that left nothing out for longest, its report and poses its own."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.packing import packings, physics
from xraybag.engine.packing.base import BAG_FULL, TIME_BUDGET_REASON
from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.physics import pack_physics
from xraybag.engine.packing.place import PITCH, setup
from xraybag.scenes.models import Scene

pytest.importorskip("pybullet")

BAG = [240.0, 170.0, 100.0]


def boxes(seed: int, n: int = 16) -> Scene:
    r = np.random.default_rng(seed)
    sizes = np.round(r.uniform([50, 40, 20], [130, 90, 60], size=(n, 3)))
    objs = [{"name": f"b{i}", "shape": {"box": {"size": [float(x) for x in s]}}, "material": "abs"}
            for i, s in enumerate(sizes)]
    return Scene.model_validate({"seed": 4, "bag": {"size": BAG}, "objects": objs})


def packed_volume(scene: Scene) -> float:
    return sum(float(np.prod(o.shape.box.size)) for o in scene.objects if o.pose is not None)


def once(monkeypatch, sc: Scene, seed: int):
    return pack_physics(sc, np.random.default_rng(seed), packings=1)


def test_a_request_that_fits_is_packed_once_as_before(monkeypatch):
    sc = boxes(0, n=6)
    packed, rep = pack_physics(sc, np.random.default_rng(0))
    single, _ = once(monkeypatch, sc, 0)
    assert not rep.left_out and rep.note is None
    assert [o.pose for o in packed.objects] == [o.pose for o in single.objects]


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_the_packing_kept_goes_furthest_and_reports_itself(monkeypatch, seed):
    sc = boxes(seed)
    packed, rep = pack_physics(sc, np.random.default_rng(seed))
    _, rep1 = once(monkeypatch, sc, seed)
    assert rep1.left_out and rep.left_out  # neither fits the whole request
    assert rep.hull_fill_at_first_left_out >= rep1.hull_fill_at_first_left_out
    if seed in (0, 4):  # on these the first draws leave a box out early and a later one does not
        assert rep.hull_fill_at_first_left_out > rep1.hull_fill_at_first_left_out + 0.03
        assert "kept packing 1" not in rep.note
    tried = int(rep.note.split()[1])  # 4, and more while every packing left something out low
    assert tried == physics.ATTEMPTS or (rep.hull_fill_at_first_left_out < physics.LOW_FILL
                                         and physics.ATTEMPTS < tried <= physics.MORE_ATTEMPTS)
    # the report is the kept packing's own: its placed boxes, its fill, clean checks
    assert len(rep.placed) + len(rep.left_out) == len(sc.objects)
    assert {o.name for o in packed.objects} == set(rep.placed)
    assert rep.first_left_out in {n for n, _ in rep.left_out}  # the kept packing's first left-out
    interior = setup(sc, 30.0, PITCH)[3]
    assert rep.hull_fill == pytest.approx(packed_volume(packed) / float(np.prod(interior)), rel=1e-6)
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6 and m["max_support_gap_mm"] <= 1


def test_the_packings_lay_their_slabs_plainly_first_last_first_and_a_request_that_fits_is_ordered_once(monkeypatch):
    """The packings of a request that does not fit take the plain order, then slabs first in every
    second one and last in the third of every four, each with the labelled objects and the bag's
    interior; a request that fits is ordered once, plainly."""
    from xraybag.engine.packing import dense

    assert [packings.slabs_of(k) for k in range(8)] == [None, "first", "last", "first"] * 2
    calls = []

    def order(todo, rng, interior=None, labelled=None, slabs=None, labelled_by=dense.LABELLED_BY):
        calls.append((slabs, labelled is not None, interior is not None))
        return dense.packing_order(todo, rng, interior, labelled, slabs, labelled_by)

    monkeypatch.setattr(physics, "packing_order", order)
    _, rep = pack_physics(boxes(0), np.random.default_rng(0), packings=5)
    assert rep.note.startswith(f"tried {len(calls)} packings") and "slabs laid first" in rep.note
    assert [c[0] for c in calls] == [None, "first", "last", "first", None][:len(calls)] and len(calls) >= 3
    assert all(c[1] and c[2] for c in calls)
    calls.clear()
    pack_physics(boxes(0, n=6), np.random.default_rng(0))
    assert calls == [(None, True, True)]


def test_labelled_objects_the_first_packing_lost_come_first_in_the_further_ones(monkeypatch):
    """A block covers the floor and leaves 50 mm under the lid; three labelled 55 mm cubes come
    after it and three flat boxes (the order's hull volume passes 60 % of the bag only then), so
    they find no room, and with one object taken out at most for each (the flat box last placed)
    none either. Every second further packing takes them before its order reaches half the first
    packing's fill at its first left-out: the cubes first, and the block, which no longer fits, is
    left out instead; the others keep the usual order."""
    from xraybag.engine.packing import dense

    def box(name, size, label=None):
        return {"name": name, "shape": {"box": {"size": size}}, "material": "abs", "label": label}

    objs = [box("block", [230, 160, 50])] + [box(f"flat{i}", [120, 55, 30]) for i in range(3)]
    objs += [box(f"cube{i}", [55, 55, 55], label="cube") for i in range(3)]
    sc = Scene.model_validate({"seed": 4, "bag": {"size": BAG}, "objects": objs})
    cuts = []

    def order(todo, rng, interior=None, labelled=None, slabs=None, labelled_by=dense.LABELLED_BY):
        got = dense.packing_order(todo, rng, interior, labelled, slabs, labelled_by)
        cuts.append((labelled_by, [g.name for g in got[0]]))
        return got

    monkeypatch.setattr(physics, "packing_order", order)
    monkeypatch.setattr(physics, "EVICT", 1)
    _, first = pack_physics(sc, np.random.default_rng(0), packings=1)
    assert sorted(n for n, _ in first.left_out) == ["cube0", "cube1", "cube2"]
    assert cuts == [(dense.LABELLED_BY, ["block", "flat1", "flat0", "flat2", "cube0", "cube1", "cube2"])]
    fill = first.hull_fill_at_first_left_out  # the block and the flat boxes: 59.7 % of the bag
    assert fill == pytest.approx((230 * 160 * 50 + 3 * 120 * 55 * 30) / np.prod(BAG), rel=1e-6)
    cuts.clear()
    packed, rep = pack_physics(sc, np.random.default_rng(0), packings=physics.ATTEMPTS)
    assert len(cuts) == physics.ATTEMPTS
    for k, (cut, names) in enumerate(cuts):
        if k % 2 == 0:
            assert cut == dense.LABELLED_BY and names[0] == "block"
        else:
            assert cut == pytest.approx(physics.LABELLED_EARLY * fill)
            assert sorted(names[:3]) == ["cube0", "cube1", "cube2"]  # the block alone passes that share
    assert rep.left_out == [("block", BAG_FULL)]
    assert {f"cube{i}" for i in range(3)} <= set(rep.placed)
    m = check_packing(packed)
    assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6 and m["max_support_gap_mm"] <= 1
    # without labelled objects still to come at the first left-out, every packing keeps the cut
    cuts.clear()
    pack_physics(boxes(0), np.random.default_rng(0))
    assert len(cuts) > 1 and {c for c, _ in cuts} == {dense.LABELLED_BY}


def test_once_an_object_is_left_out_the_labelled_objects_still_to_come_go_next(monkeypatch):
    """A block leaves 60 mm under the lid, where the 65 mm box after it finds no room: the small
    labelled cube, last in the order, is packed next, before the unlabelled box that came before it."""
    def box(name, size, label=None):
        return {"name": name, "shape": {"box": {"size": size}}, "material": "abs", "label": label}

    objs = [box("block", [230, 160, 40]), box("tall", [100, 100, 65]), box("small", [80, 60, 40]),
            box("cube", [40, 40, 40], label="cube")]
    sc = Scene.model_validate({"seed": 4, "bag": {"size": BAG}, "objects": objs})
    committed = []
    commit = physics._Packing.commit

    def spy(self, g, *a):
        committed.append(g.name)
        return commit(self, g, *a)

    monkeypatch.setattr(physics._Packing, "commit", spy)
    _, rep = pack_physics(sc, np.random.default_rng(0), packings=1, swaps=0)
    assert rep.first_left_out == "tall" and rep.left_out == [("tall", BAG_FULL)]
    assert committed == ["block", "cube", "small"]


def test_deterministic_with_further_packings():
    sc = boxes(4)
    a, ra = pack_physics(sc, np.random.default_rng(4))
    b, rb = pack_physics(sc, np.random.default_rng(4))
    assert [o.pose for o in a.objects] == [o.pose for o in b.objects] and ra.note == rb.note


def test_the_scene_sets_the_number_of_packings(tmp_path):
    """``packing.packings`` reaches the physics packer through the registry: 1 packs once; a
    value below 1 is refused with the file's line and the field."""
    from xraybag.engine.packing import PACKERS
    from xraybag.errors import XraybagError
    from xraybag.scenes.loader import load_scene

    sc = boxes(4)
    for n, tried in ((1, None), (3, "tried 3 packings")):
        s = sc.model_copy(update={"packing": sc.packing.model_copy(update={"method": "physics", "packings": n})})
        _, rep = PACKERS["physics"](s, np.random.default_rng(4))
        assert rep.left_out
        assert rep.note is None if tried is None else rep.note.startswith(tried)
    bad = tmp_path / "bad.yaml"
    bad.write_text("bag: {size: [240, 170, 100]}\npacking: {method: physics, packings: 0}\n")
    with pytest.raises(XraybagError, match=r"bad.yaml:2.*packings"):
        load_scene(str(bad))


def _two_blocks(second: float) -> Scene:
    """A 100 x 100 x 60 mm bag asked for a 90 x 90 x 30 mm block and one 90 x 90 x ``second`` mm:
    they do not fit one on the other, and every packing leaves one out with the other's fill."""
    objs = [{"name": f"b{i}", "shape": {"box": {"size": [90.0, 90.0, h]}}, "material": "abs"}
            for i, h in enumerate((30.0, second))]
    return Scene.model_validate({"seed": 1, "bag": {"size": [100.0, 100.0, 60.0]}, "objects": objs,
                                 "packing": {"method": "physics"}})


def test_unset_packings_go_on_past_four_while_every_packing_left_something_out_low(monkeypatch):
    """With ``packing.packings`` unset a request whose packings all leave something out below
    :data:`physics.LOW_FILL` is packed again past :data:`physics.ATTEMPTS`, up to
    :data:`physics.MORE_ATTEMPTS`; a set number is kept to exactly, and a packing at or above
    LOW_FILL stops at ATTEMPTS."""
    from xraybag.engine.packing import PACKERS

    sc = _two_blocks(35.0)
    _, rep = PACKERS["physics"](sc, np.random.default_rng(0))
    assert rep.hull_fill_at_first_left_out < physics.LOW_FILL
    assert rep.note.startswith(f"tried {physics.MORE_ATTEMPTS} packings")
    set4 = sc.model_copy(update={"packing": sc.packing.model_copy(update={"packings": 4})})
    _, rep4 = PACKERS["physics"](set4, np.random.default_rng(0))
    assert rep4.note.startswith("tried 4 packings")
    with monkeypatch.context() as m:  # a fill at the threshold is good enough
        m.setattr(physics, "LOW_FILL", rep.hull_fill_at_first_left_out)
        _, rep_hi = PACKERS["physics"](sc, np.random.default_rng(0))
        assert rep_hi.note.startswith(f"tried {physics.ATTEMPTS} packings")


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_swaps_go_further_before_leaving_anything_out_and_the_scene_can_turn_them_off(seed):
    """One packing of an overfull box scene: with swaps (the default, ``packing.swaps: 3``) the
    first box is left out at a higher fill than with ``swaps: 0``, and the packing is clean."""
    from xraybag.engine.packing import PACKERS

    reps = {}
    for swaps in (0, 3):
        sc = boxes(seed)
        sc = sc.model_copy(update={"packing": sc.packing.model_copy(
            update={"method": "physics", "packings": 1, "swaps": swaps})})
        packed, reps[swaps] = PACKERS["physics"](sc, np.random.default_rng(seed))
        m = check_packing(packed)
        assert m["max_overlap_fraction"] <= 0.005 and m["max_outside_mm"] <= 1e-6 and m["max_support_gap_mm"] <= 1
    assert reps[3].hull_fill_at_first_left_out > reps[0].hull_fill_at_first_left_out + 0.05


def test_a_negative_number_of_swaps_is_refused(tmp_path):
    from xraybag.errors import XraybagError
    from xraybag.scenes.loader import load_scene

    bad = tmp_path / "bad.yaml"
    bad.write_text("bag: {size: [240, 170, 100]}\npacking:\n  method: physics\n  swaps: -1\n")
    with pytest.raises(XraybagError, match=r"bad.yaml:4.*swaps"):
        load_scene(str(bad))


def _paused(k, reach, result, log):
    """A packing paused at its first left-out (``reach`` yielded), which logs ``k`` when finished."""
    def run():
        finished = False
        try:
            yield reach
            log.append(k)
            finished = True
            return result
        finally:
            if not finished:
                log.append(("closed", k))

    gen = run()
    return gen, next(gen)


def test_only_the_packings_that_can_still_be_the_best_are_finished():
    """Paused packings are finished leader first (labelled objects placed or to come, then fill at
    the first left-out) while they can still beat the best finished one; the others are closed.
    A further packing cut short by the time budget is not kept; the first always may be."""
    labelled = {0: True, 1: False, 2: False}
    log: list = []
    done = {0: ({0: "p", 1: "p"}, {2: "full"}, 0.60, 0.70, 2)}  # rank (1, 0.60, 0.70)
    paused = {
        1: _paused(1, (1, 0.65, False), ({0: "p"}, {1: "full", 2: "full"}, 0.65, 0.68, 1), log),
        2: _paused(2, (1, 0.62, False), None, log),  # below packing 1's 0.65 once that is finished
        3: _paused(3, (0, 0.90, False), None, log),  # its labelled object is out: cannot beat 1 labelled
    }
    best, kept = packings.finish_best(paused, done, labelled)
    assert kept == 1 and best[2] == 0.65
    assert log[0] == 1 and sorted(x[1] for x in log[1:]) == [2, 3]  # 2 and 3 closed unfinished
    # a tie on labelled objects and the first left-out: both finished, the final fill decides
    log.clear()
    done = {0: ({0: "p"}, {1: "full"}, 0.60, 0.70, 1)}
    paused = {1: _paused(1, (1, 0.60, False), ({0: "p"}, {1: "full"}, 0.60, 0.75, 1), log)}
    assert packings.finish_best(paused, done, labelled)[1] == 1 and log == [1]
    # cut short by the time budget: not a whole packing, the first one is kept
    log.clear()
    paused = {0: _paused(0, (1, 0.50, False), ({0: "p"}, {1: "full"}, 0.50, 0.6, 1), log),
              1: _paused(1, (1, 0.70, False), ({0: "p"}, {1: "full", 2: TIME_BUDGET_REASON}, 0.70, 0.7, 1), log)}
    best, kept = packings.finish_best(paused, {}, labelled)
    assert kept == 0 and log == [1, 0]
