"""Packing: give every object of a concrete scene a pose inside the bag.

:func:`pack` is the one entry point; methods are looked up in :data:`PACKERS`: ``'physics'``
(pybullet drop + PSO refinement, :mod:`.physics`), ``'heuristic'`` (DEBISim's drop-and-slide
rules, :mod:`.heuristic`) and ``'random'`` (the rejection sampler, :mod:`.rejection`: the fastest
and loosest, placing bounding boxes). :func:`pack_bag` is the whole packing stage of one bag of a
scene: sample, pack, drape the sheets, on the bag's own random streams.

Lengths in mm, angles in degrees, bag frame (origin at the centre of the interior floor, z up).
"""

from __future__ import annotations

import time

import numpy as np

from xraybag.engine.packing.base import (
    LARGER_THAN_BAG, OUTSIDE_TOLERANCE, TIME_BUDGET_REASON, Packer, PackReport, outside_bag,
)
from xraybag.engine.packing.place import TOLERANCE
from xraybag.engine.packing.rejection import pack_random
from xraybag.engine.solids.scene import _num, object_name, object_points, sheet_grid, sheet_layers
from xraybag.engine.solids.sheets import drape_grid, drape_sheets, with_sheets, without_sheets
from xraybag.errors import XraybagError
from xraybag.scenes.models import Scene
from xraybag.scenes.sample import sample
from xraybag.streams import STREAM_PACK, STREAM_SHEETS, bag_rng

__all__ = ["LARGER_THAN_BAG", "PACKERS", "PackReport", "TIME_BUDGET_REASON", "pack", "pack_bag"]


def _pack_physics(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    from xraybag.engine.packing.physics import pack_physics

    packings = scene.packing.packings  # None: the packer's default (4, and more for a bag packed badly)
    return pack_physics(scene, rng, time_budget=float(scene.packing.time_budget),
                        packings=None if packings is None else int(packings), swaps=int(scene.packing.swaps))


def _pack_heuristic(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    from xraybag.engine.packing.heuristic import pack_heuristic

    return pack_heuristic(scene, rng, time_budget=float(scene.packing.time_budget))


#: packing methods by name: pybullet drop + PSO refinement, DEBISim's drop-and-slide rules, and
#: the rejection sampler (the fastest, loosest)
PACKERS: dict[str, Packer] = {
    "physics": _pack_physics,
    "heuristic": _pack_heuristic,
    "random": pack_random,
}


def pack(
    scene: Scene, method: str | None = None, rng: np.random.Generator | None = None
) -> tuple[Scene, PackReport]:
    """Give every object of a concrete ``scene`` a pose; returns a NEW scene and a report.

    ``method`` None means ``scene.packing.method`` (a name in :data:`PACKERS`). ``rng`` None uses
    the bag's own packing stream (seeded by the scene's seed and bag index), so packing is
    deterministic either way. Objects that cannot be placed are left out of the returned scene
    and listed in the report; so are objects that come with a pose (drawn from distributions) that
    puts them partly outside the bag. Sheets are left for
    :func:`xraybag.engine.solids.sheets.drape_sheets`.
    """
    start = time.perf_counter()
    requested = method or scene.packing.method
    if requested not in PACKERS:
        known = ", ".join(sorted(PACKERS))
        raise XraybagError(f"unknown packing method {requested!r}; expected one of {known}")
    if rng is None:
        rng = bag_rng(scene.seed, scene.bag_index or 0, STREAM_PACK)
    used = requested
    scene, outside = _without_posed_outside(scene)
    packed, report = PACKERS[used](scene, rng)
    report.left_out[:0] = outside
    report.method = used
    report.seconds = time.perf_counter() - start
    return packed, report


def _without_posed_outside(scene: Scene) -> tuple[Scene, list[tuple[str, str]]]:
    """The scene without the objects whose given pose puts them outside the bag, and (name,
    reason) of each of those. (A pose written as fixed numbers is refused earlier, when the scene
    is checked; this catches poses drawn from distributions.)"""
    interior = np.array([float(s) for s in scene.bag.size])
    kept, outside = [], []
    for k, obj in enumerate(scene.objects):
        if obj.pose is not None and obj.sheet is None:
            name = object_name(obj, k + 1)
            reach, side = outside_bag(object_points(obj, tolerance=TOLERANCE, name=name), obj.pose, interior)
            if reach > OUTSIDE_TOLERANCE:
                outside.append((name, f"its pose puts it {reach:.1f} mm outside the bag ({side} side)"))
                continue
        kept.append(obj)
    if not outside:
        return scene, []
    return scene.model_copy(update={"objects": kept}), outside


#: the most of the bag's height kept free for its sheets while the rigid objects are packed
SHEET_ROOM_MAX = 0.2


def sheet_room(scene: Scene) -> float:
    """Height (mm) the rigid packing leaves under the lid for the scene's sheets that are still to
    be draped: the sum of their thickest points (thickness times the most layers of their plies),
    at most :data:`SHEET_ROOM_MAX` of the bag's height."""
    room = 0.0
    for k, obj in enumerate(scene.objects):
        sheet = obj.sheet
        if sheet is None or sheet.drape is not None:
            continue
        where = f"object {object_name(obj, k + 1)!r}: sheet"
        size = [_num(x, f"{where}.size") for x in sheet.size]
        layers = sheet_layers(sheet, *sheet_grid(sheet, drape_grid(size), where), where)
        room += _num(sheet.thickness, f"{where}.thickness") * float(np.max(layers))
    return min(room, SHEET_ROOM_MAX * float(scene.bag.size[2]))


def pack_bag(loaded, index: int, seed: int | None = None) -> tuple[Scene, PackReport]:
    """The packing stage of bag ``index`` of a loaded scene: sample it, pack it, drape its sheets,
    each on the bag's own random stream (:mod:`xraybag.streams`). The rigid objects are packed
    under a lid lowered by :func:`sheet_room`, so the sheets (clothes laid on top, as people pack)
    find room above them; the scene keeps its bag. ``render``, ``validate`` and
    ``pack`` all call this, so they see the same bag. Returns (packed concrete scene, report)."""
    seed = loaded.spec.seed if seed is None else int(seed)
    concrete = sample(loaded, index, seed)
    bag = concrete.bag_index
    rigid = without_sheets(concrete)
    room = sheet_room(concrete)
    if room > 0:  # pack under a lid lowered by the room the sheets need, then give the lid back
        size = list(rigid.bag.size)
        rigid = rigid.model_copy(update={"bag": rigid.bag.model_copy(update={"size": size[:2] + [size[2] - room]})})
    packed, report = pack(rigid, rng=bag_rng(seed, bag, STREAM_PACK))
    packed = packed.model_copy(update={"bag": concrete.bag})
    packed, left = drape_sheets(with_sheets(concrete, packed), bag_rng(seed, bag, STREAM_SHEETS))
    report.left_out.extend(left)
    return packed, report
