"""The ``random`` packer: a rejection sampler placing bounding boxes (the fastest and loosest)."""

from __future__ import annotations

import numpy as np

from xraybag.engine.packing.base import (
    BASE_ROTATIONS,
    EPS,
    LARGER_THAN_BAG,
    Box,
    PackReport,
    aabb,
    finish,
    fits_interior,
    fits_somehow,
)
from xraybag.engine.solids.scene import object_name, object_points
from xraybag.scenes.models import Pose, Scene


def _overlaps(lo: np.ndarray, hi: np.ndarray, boxes: list[Box], gap: float) -> bool:
    """True if the box [lo, hi] comes closer than ``gap`` to any box on all three axes."""
    for blo, bhi in boxes:
        if np.all(lo < bhi + gap - EPS) and np.all(blo < hi + gap - EPS):
            return True
    return False


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
        lo, hi = aabb(points, rot)
        if not fits_interior(lo, hi, interior):
            # long objects rarely fit at a random yaw: try the nearest axis-aligned yaw
            rot = [rx, ry, float((round(yaw / 90.0) * 90) % 360)]
            lo, hi = aabb(points, rot)
            if not fits_interior(lo, hi, interior):
                continue
        # (x, y) such that the footprint lies inside the interior
        x = float(rng.uniform(-sx / 2 - lo[0], max(-sx / 2 - lo[0], sx / 2 - hi[0])))
        y = float(rng.uniform(-sy / 2 - lo[1], max(-sy / 2 - lo[1], sy / 2 - hi[1])))
        flo = np.array([x + lo[0], y + lo[1]])
        fhi = np.array([x + hi[0], y + hi[1]])
        # drop: onto the highest box whose footprint comes within the gap, or onto the floor
        bottom = 0.0
        for blo, bhi in boxes:
            if np.all(flo < bhi[:2] + gap - EPS) and np.all(blo[:2] < fhi + gap - EPS):
                bottom = max(bottom, float(bhi[2]) + gap)
        z = bottom - float(lo[2])
        if bottom + (hi[2] - lo[2]) > sz + EPS:
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
            lo, hi = aabb(points, [float(a) for a in obj.pose.rotation_deg])
            pos = np.array([float(p) for p in obj.pose.position])
            boxes.append((pos + lo, pos + hi))
        else:
            ext = points.max(axis=0) - points.min(axis=0)
            todo.append((obj.label is None, float(np.prod(ext)), k, points))
    todo.sort(key=lambda t: (t[0], -t[1], t[2]))
    left: dict[int, str] = {}
    for _, _, k, points in todo:
        if not fits_somehow(points, interior):
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
