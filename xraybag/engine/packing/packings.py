"""The bookkeeping of the physics packer's several packings of a request that does not fit
(:func:`.physics.pack_physics`): which order each lays its slabs in, running each to its first
left-out, and finishing only those that can still be the best.

A packing is a generator (:func:`.physics._attempt`): it yields when it first leaves an object
out (labelled objects placed or still to come, fill then, whether it was for the time budget,
labelled objects still to come), yields again once it has tried the labelled objects, and returns
(poses, left out with reasons, fill at the first left-out or None, final fill, first left-out).
"""

from __future__ import annotations

from xraybag.engine.packing.base import TIME_BUDGET_REASON


def slabs_of(attempt: int) -> str | None:
    """Where packing ``attempt`` (0: the first) lays the slabs (:func:`.dense.packing_order`): the
    first packing in the plain order, then slabs first in every second one and last in the third of
    every four (plain, first, last, first, plain, ...). Slabs first suits a bag whose floor they
    cover; slabs last one whose bulky items need the floor side by side, which a slab laid across
    them early would bridge (in the benchmark's requests that do not fit, the third packing laid
    last raised the worst fill at the first left-out from 0.53 to 0.59)."""
    return "first" if attempt % 2 == 1 else ("last" if attempt % 4 == 2 else None)


def advance(run, attempt: int, paused: dict, done: dict) -> None:
    """Run packing ``attempt`` on to its first left-out (into ``paused``: the generator and what it
    yielded) or to its end (into ``done``)."""
    try:
        paused[attempt] = (run, next(run))
    except StopIteration as stop:
        done[attempt] = stop.value


def best_fill(paused: dict, done: dict) -> float:
    """The highest fill at the first left-out of the packings so far (paused or done)."""
    return max([reach[1] for _, reach in paused.values()] + [d[2] for d in done.values()])


def settle_labelled(paused: dict, done: dict, labelled: dict[int, bool]) -> int:
    """Run paused packing 0 on until it has tried its labelled objects (or to its end, into
    ``done``); its labelled objects left out. What it can reach is then known exactly."""
    run, (_, fill_first, budget, _) = paused[0]
    try:
        lost = next(run)
    except StopIteration as stop:
        del paused[0]
        done[0] = stop.value
        return sum(1 for k in done[0][1] if labelled.get(k))
    paused[0] = (run, (sum(labelled.values()) - lost, fill_first, budget, 0))
    return lost


def finish_packing(paused: dict, k: int, done: dict) -> None:
    """Run paused packing ``k`` to its end (from ``paused`` into ``done``)."""
    run = paused.pop(k)[0]
    try:
        while True:
            next(run)
    except StopIteration as stop:
        done[k] = stop.value


def finish_best(paused: dict, done: dict, labelled: dict[int, bool]) -> tuple[tuple, int]:
    """The best packing (:func:`rank`) and its number, finishing the paused ones that lead: the
    leader by (labelled objects placed or still to come, fill at the first left-out) is finished,
    and so on while one of the paused could still beat the best finished one. A further packing
    cut short by the time budget is not a whole packing and is not kept (the first one is always
    eligible). The packings left paused are closed (their worlds disconnected)."""
    def whole(k: int) -> bool:
        return k == 0 or TIME_BUDGET_REASON not in done[k][1].values()

    try:
        while paused:
            lead = max(paused, key=lambda k: (paused[k][1][:2], -k))
            ranked = [rank(done[k], labelled) for k in done if whole(k)]
            if ranked and paused[lead][1][:2] < max(ranked)[:2]:
                break  # no paused packing can reach the best finished one
            finish_packing(paused, lead, done)
    finally:
        for run, _ in paused.values():
            run.close()
    kept = max((k for k in done if whole(k)), key=lambda k: (rank(done[k], labelled), -k))
    return done[kept], kept


def rank(got, labelled: dict[int, bool]) -> tuple:
    """Labelled objects placed, fill at the first left-out (1 if none), final fill: higher is better."""
    poses, _, fill_first, fill_final, _ = got
    return (sum(1 for k in poses if labelled.get(k)), 1.0 if fill_first is None else fill_first, fill_final)
