"""Packing: give every object of a concrete scene a pose inside the bag.

:func:`pack` is the one entry point; methods are looked up in :data:`PACKERS`: ``'physics'``
(pybullet drop + PSO refinement, :mod:`xraybag.engine.physics_pack`), ``'heuristic'`` (DEBISim's
drop-and-slide rules) and ``'random'`` (the rejection sampler defined here: the fastest and
loosest, placing bounding boxes).

Lengths in mm, angles in degrees, bag frame (origin at the centre of the interior floor, z up).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xraybag.engine.geometry import object_name, object_points, rotation_matrix
from xraybag.errors import XraybagError
from xraybag.scenes.models import Object, Pose, Scene
from xraybag.scenes.sample import bag_rng

STREAM_PACKING = 1_000_003  # the bag's random stream used when the caller passes no generator
#: the orientations that rest an object on a face of its bounding box (before the yaw about z)
BASE_ROTATIONS = ((0.0, 0.0), (90.0, 0.0), (0.0, 90.0))
LARGER_THAN_BAG = "larger than the bag interior"
_EPS = 1e-9


@dataclass
class PackReport:
    """What a packer did. ``placed``: the objects it gave a pose (objects that came with a pose are
    kept as they are and not listed); ``left_out``: (name, reason) of objects dropped from the
    scene; ``seconds``: wall time; ``note``: anything the packer wants to say."""

    method: str
    placed: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None
    #: seconds spent per stage, e.g. {"decomposition": .., "simulation": .., "refinement": ..}
    timings: dict[str, float] = field(default_factory=dict)


Packer = Callable[[Scene, np.random.Generator], tuple[Scene, PackReport]]


# ------------------------------------------------------------------------------------- AABBs


Box = tuple[np.ndarray, np.ndarray]  # (lo, hi) corners of an AABB, bag frame, mm


def _overlaps(lo: np.ndarray, hi: np.ndarray, boxes: list[Box], gap: float) -> bool:
    """True if the box [lo, hi] comes closer than ``gap`` to any box on all three axes."""
    for blo, bhi in boxes:
        if np.all(lo < bhi + gap - _EPS) and np.all(blo < hi + gap - _EPS):
            return True
    return False


def _aabb(points: np.ndarray, rotation_deg: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the points rotated by ``rotation_deg``, relative to the pose position."""
    p = points @ rotation_matrix(rotation_deg).T
    return p.min(axis=0), p.max(axis=0)


def _fits(lo: np.ndarray, hi: np.ndarray, interior: np.ndarray) -> bool:
    return bool(np.all(hi - lo <= interior + _EPS))


# ------------------------------------------------------------------------------------ random


def _place_one(
    points: np.ndarray,
    interior: np.ndarray,
    boxes: list[Box],
    gap: float,
    attempts: int,
    rng: np.random.Generator,
) -> tuple[list[float], list[float], np.ndarray, np.ndarray] | None:
    """One object by rejection sampling: (position, rotation_deg, lo, hi) in the bag frame, or None."""
    sx, sy, sz = interior
    for _ in range(attempts):
        rx, ry = BASE_ROTATIONS[int(rng.integers(len(BASE_ROTATIONS)))]
        yaw = float(rng.uniform(0.0, 360.0))
        rot = [rx, ry, yaw]
        lo, hi = _aabb(points, rot)
        if not _fits(lo, hi, interior):
            # long objects rarely fit at a random yaw: try the nearest axis-aligned yaw
            rot = [rx, ry, float((round(yaw / 90.0) * 90) % 360)]
            lo, hi = _aabb(points, rot)
            if not _fits(lo, hi, interior):
                continue
        # (x, y) such that the footprint lies inside the interior
        x = float(rng.uniform(-sx / 2 - lo[0], max(-sx / 2 - lo[0], sx / 2 - hi[0])))
        y = float(rng.uniform(-sy / 2 - lo[1], max(-sy / 2 - lo[1], sy / 2 - hi[1])))
        flo = np.array([x + lo[0], y + lo[1]])
        fhi = np.array([x + hi[0], y + hi[1]])
        # drop: onto the highest box whose footprint comes within the gap, or onto the floor
        bottom = 0.0
        for blo, bhi in boxes:
            if np.all(flo < bhi[:2] + gap - _EPS) and np.all(blo[:2] < fhi + gap - _EPS):
                bottom = max(bottom, float(bhi[2]) + gap)
        z = bottom - float(lo[2])
        if bottom + (hi[2] - lo[2]) > sz + _EPS:
            continue
        pos = np.array([x, y, z])
        wlo, whi = pos + lo, pos + hi
        if _overlaps(wlo, whi, boxes, gap):
            continue
        return [x, y, z], rot, wlo, whi
    return None


def pack_random(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    """The rejection sampler, a STAND-IN for the physics packer.

    Objects that have a pose stay where they are (their AABBs are obstacles). The others are
    placed labelled objects first (the annotations a dataset is made for), then largest first (by
    the volume of their bounding box; ties in scene order): each try draws
    one of the three orientations that rest the object on a face of its bounding box
    (``rotation_deg`` [0, 0, yaw], [90, 0, yaw] or [0, 90, yaw]), a uniform yaw in [0, 360) (snapped
    to the nearest multiple of 90 if the object does not fit the interior otherwise), and a uniform
    (x, y) that keeps the rotated AABB inside the interior; the object is then dropped: its AABB
    bottom rests on the top of the highest placed AABB whose footprint comes within ``gap`` (plus
    ``gap``), or on the floor z = 0. The try is rejected if the AABB then pokes out of the bag top
    or comes within ``gap`` of a placed AABB. After ``packing.attempts`` failed tries the object is
    left out (never forced). The returned scene keeps the original order minus the left-out
    objects; every pose holds plain floats. Same scene and same generator state, same result.
    """
    interior = np.array([float(x) for x in scene.bag.size])
    gap = float(scene.packing.gap)
    attempts = int(scene.packing.attempts)
    report = PackReport(method="random")
    names = [object_name(o, k) for k, o in enumerate(scene.objects, start=1)]
    poses: dict[int, Pose] = {}
    boxes: list[Box] = []
    todo: list[tuple[float, int, np.ndarray]] = []
    for k, obj in enumerate(scene.objects):
        points = object_points(obj, name=names[k])
        if obj.pose is not None:
            lo, hi = _aabb(points, [float(a) for a in obj.pose.rotation_deg])
            pos = np.array([float(p) for p in obj.pose.position])
            boxes.append((pos + lo, pos + hi))
        else:
            ext = points.max(axis=0) - points.min(axis=0)
            todo.append((obj.label is None, float(np.prod(ext)), k, points))
    todo.sort(key=lambda t: (t[0], -t[1], t[2]))
    left: dict[int, str] = {}
    for _, _, k, points in todo:
        if not _fits_somehow(points, interior):
            left[k] = LARGER_THAN_BAG
            continue
        placed = _place_one(points, interior, boxes, gap, attempts, rng)
        if placed is None:
            left[k] = f"no free space found in {attempts} attempts"
            continue
        pos, rot, wlo, whi = placed
        boxes.append((wlo, whi))
        poses[k] = Pose(position=[float(p) for p in pos], rotation_deg=[float(a) for a in rot])
    return finish(scene, names, poses, left, report)


def finish(
    scene: Scene, names: list[str], poses: dict[int, Pose], left: dict[int, str], report: PackReport
) -> tuple[Scene, PackReport]:
    """The packed scene of a packer: object ``k`` gets ``poses[k]``, or is left out with the
    reason ``left[k]`` (recorded in ``report``), or keeps its own pose; order is kept."""
    objects: list[Object] = []
    for k, obj in enumerate(scene.objects):
        if k in left:
            report.left_out.append((names[k], left[k]))
        elif k in poses:
            objects.append(obj.model_copy(update={"pose": poses[k]}))
            report.placed.append(names[k])
        else:
            objects.append(obj)
    return scene.model_copy(update={"objects": objects}), report


def _fits_somehow(points: np.ndarray, interior: np.ndarray) -> bool:
    """Whether some resting orientation (yaw in steps of 5 degrees) fits the empty interior."""
    for rx, ry in BASE_ROTATIONS:
        for yaw in range(0, 180, 5):
            lo, hi = _aabb(points, [rx, ry, float(yaw)])
            if _fits(lo, hi, interior):
                return True
    return False


def _pack_physics(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    from xraybag.engine.physics_pack import pack_physics

    return pack_physics(scene, rng, time_budget=float(scene.packing.time_budget))


def _pack_heuristic(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    from xraybag.engine.physics_pack import pack_heuristic

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
    and listed in the report; sheets are left for :func:`xraybag.engine.sheets.drape_sheets`.
    """
    start = time.perf_counter()
    requested = method or scene.packing.method
    if requested not in PACKERS:
        known = ", ".join(sorted(PACKERS))
        raise XraybagError(f"unknown packing method {requested!r}; expected one of {known}")
    if rng is None:
        rng = bag_rng(scene.seed, scene.bag_index or 0, STREAM_PACKING)
    used = requested
    packed, report = PACKERS[used](scene, rng)
    report.method = used
    report.seconds = time.perf_counter() - start
    return packed, report
