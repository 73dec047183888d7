"""The ``random`` packer: a rejection sampler placing bounding boxes (the fastest and loosest)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from xraybag.engine.packing.base import (
    BASE_ROTATIONS,
    EPS,
    LARGER_THAN_BAG,
    PackReport,
    aabb,
    finish,
    fits_interior,
    fits_somehow,
)
from xraybag.engine.solids.scene import cos_sin, object_name, object_points, rotation_matrix
from xraybag.scenes.models import Pose, Scene


class _Boxes:
    """The placed AABBs as two growing (n, 3) arrays, so every test against them is one numpy call."""

    def __init__(self) -> None:
        self.lo = np.empty((0, 3))
        self.hi = np.empty((0, 3))

    def add(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo = np.vstack([self.lo, lo])
        self.hi = np.vstack([self.hi, hi])

    def floor_under(self, flo: np.ndarray, fhi: np.ndarray, gap: float) -> float:
        """The highest top (plus ``gap``) of the boxes whose footprint comes within ``gap`` of the
        footprint [flo, fhi], or the floor 0."""
        if not len(self.lo):
            return 0.0
        near = ((flo < self.hi[:, :2] + gap - EPS) & (self.lo[:, :2] < fhi + gap - EPS)).all(axis=1)
        return max(0.0, float((self.hi[near, 2] + gap).max(initial=0.0)))

    def overlaps(self, lo: np.ndarray, hi: np.ndarray, gap: float) -> bool:
        """True if the box [lo, hi] comes closer than ``gap`` to any box on all three axes."""
        return bool(((lo < self.hi + gap - EPS) & (self.lo < hi + gap - EPS)).all(axis=1).any())


class _Extents:
    """The AABB of an object's points under ``[rx, ry, yaw]`` for the resting orientations: the
    points are turned by (rx, ry) once, and only the corners of their outline seen from above (the
    convex hull in x, y, which holds every extreme point of a turn about z) are turned by the yaw."""

    def __init__(self, points: np.ndarray) -> None:
        self._base: dict[tuple[float, float], tuple[np.ndarray, float, float]] = {}
        self._points = points

    def __call__(self, rx: float, ry: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        base = self._base.get((rx, ry))
        if base is None:
            p = self._points @ rotation_matrix([rx, ry, 0.0]).T
            xy = p[:, :2]
            try:
                xy = xy[ConvexHull(xy).vertices]
            except QhullError:  # flat or tiny outlines: keep every point
                pass
            base = (np.ascontiguousarray(xy.T), float(p[:, 2].min()), float(p[:, 2].max()))
            self._base[(rx, ry)] = base
        xy, zlo, zhi = base
        c, s = cos_sin(yaw)
        x = c * xy[0] - s * xy[1]
        y = s * xy[0] + c * xy[1]
        return np.array([x.min(), y.min(), zlo]), np.array([x.max(), y.max(), zhi])


def _place_one(
    extents: _Extents,
    interior: np.ndarray,
    boxes: _Boxes,
    gap: float,
    attempts: int,
    rng: np.random.Generator,
) -> tuple[list[float], list[float], np.ndarray, np.ndarray] | None:
    """One object by rejection sampling: (position, rotation_deg, lo, hi) in the bag frame, or None."""
    sx, sy, sz = interior
    for _ in range(attempts):
        rx, ry = BASE_ROTATIONS[int(rng.integers(len(BASE_ROTATIONS)))]
        yaw = float(rng.uniform(0.0, 360.0))
        lo, hi = extents(rx, ry, yaw)
        if not fits_interior(lo, hi, interior):
            # long objects rarely fit at a random yaw: try the nearest axis-aligned yaw
            yaw = float((round(yaw / 90.0) * 90) % 360)
            lo, hi = extents(rx, ry, yaw)
            if not fits_interior(lo, hi, interior):
                continue
        rot = [rx, ry, yaw]
        # (x, y) such that the footprint lies inside the interior
        x = float(rng.uniform(-sx / 2 - lo[0], max(-sx / 2 - lo[0], sx / 2 - hi[0])))
        y = float(rng.uniform(-sy / 2 - lo[1], max(-sy / 2 - lo[1], sy / 2 - hi[1])))
        # drop: onto the highest box whose footprint comes within the gap, or onto the floor
        bottom = boxes.floor_under(np.array([x + lo[0], y + lo[1]]), np.array([x + hi[0], y + hi[1]]), gap)
        z = bottom - float(lo[2])
        if bottom + (hi[2] - lo[2]) > sz + EPS:
            continue
        pos = np.array([x, y, z])
        wlo, whi = pos + lo, pos + hi
        if boxes.overlaps(wlo, whi, gap):
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
    boxes = _Boxes()
    todo: list[tuple[float, int, np.ndarray]] = []
    for k, obj in enumerate(scene.objects):
        points = object_points(obj, name=names[k])
        if obj.pose is not None:
            lo, hi = aabb(points, [float(a) for a in obj.pose.rotation_deg])
            pos = np.array([float(p) for p in obj.pose.position])
            boxes.add(pos + lo, pos + hi)
        else:
            ext = points.max(axis=0) - points.min(axis=0)
            todo.append((obj.label is None, float(np.prod(ext)), k, points))
    todo.sort(key=lambda t: (t[0], -t[1], t[2]))
    left: dict[int, str] = {}
    for _, _, k, points in todo:
        if not fits_somehow(points, interior):
            left[k] = LARGER_THAN_BAG
            continue
        placed = _place_one(_Extents(points), interior, boxes, gap, attempts, rng)
        if placed is None:
            left[k] = f"no free space found in {attempts} attempts"
            continue
        pos, rot, wlo, whi = placed
        boxes.add(wlo, whi)
        poses[k] = Pose(position=[float(p) for p in pos], rotation_deg=[float(a) for a in rot])
    return finish(scene, names, poses, left, report)
