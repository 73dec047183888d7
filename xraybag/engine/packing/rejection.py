"""The ``random`` packer: a rejection sampler placing bounding boxes (the fastest and loosest)."""

from __future__ import annotations

import numba
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from xraybag.engine.packing.base import (
    BASE_ROTATIONS,
    EPS,
    LARGER_THAN_BAG,
    PackReport,
    aabb,
    finish,
    fits_somehow,
)
from xraybag.engine.solids.scene import object_name, object_points, rotation_matrix
from xraybag.scenes.models import Pose, Scene


#: tries drawn at a time (one (BATCH, 4) block of uniforms: orientation, yaw, x, y)
BATCH = 64


def _outlines(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The object's outline seen from above in each resting orientation: the convex hull of the
    (x, y) of the points turned by (rx, ry), which holds every extreme point of a turn about z.
    Returns hull (3, 2, K) padded by repeating the first corner, corners (3,), z range (3, 2)."""
    hulls, zr = [], []
    for rx, ry in BASE_ROTATIONS:
        p = points @ rotation_matrix([rx, ry, 0.0]).T
        xy = p[:, :2]
        try:
            xy = xy[ConvexHull(xy).vertices]
        except QhullError:  # flat or tiny outlines: keep every point
            pass
        hulls.append(xy)
        zr.append((p[:, 2].min(), p[:, 2].max()))
    k = max(len(h) for h in hulls)
    hull = np.empty((3, 2, k))
    for b, h in enumerate(hulls):
        hull[b, :, : len(h)] = h.T
        hull[b, :, len(h) :] = h[0][:, None]
    return hull, np.array([len(h) for h in hulls]), np.array(zr)


@numba.njit(cache=True, nogil=True)
def _extent(hull, b, yaw, zr):
    """AABB (x0, y0, x1, y1, z0, z1) of orientation ``b`` turned by ``yaw`` degrees about z
    (quarter turns exact, as :func:`rotation_matrix`)."""
    q = yaw / 90.0
    if q == np.floor(q):
        k = int(q) % 4
        c = (1.0, 0.0, -1.0, 0.0)[k]
        s = (0.0, 1.0, 0.0, -1.0)[k]
    else:
        r = np.radians(yaw)
        c = np.cos(r)
        s = np.sin(r)
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    for i in range(hull.shape[2]):
        x = c * hull[b, 0, i] - s * hull[b, 1, i]
        y = s * hull[b, 0, i] + c * hull[b, 1, i]
        x0 = min(x0, x)
        x1 = max(x1, x)
        y0 = min(y0, y)
        y1 = max(y1, y)
    return x0, y0, x1, y1, zr[b, 0], zr[b, 1]


@numba.njit(cache=True, nogil=True)
def _try(draws, hull, zr, interior, blo, bhi, gap, eps, out):
    """The tries of one block of draws, in order, until one places the object: its index (or -1);
    ``out`` gets (orientation, yaw, x, y, z)."""
    sx, sy, sz = interior[0], interior[1], interior[2]
    for t in range(draws.shape[0]):
        b = min(int(draws[t, 0] * 3.0), 2)
        yaw = 360.0 * draws[t, 1]
        x0, y0, x1, y1, z0, z1 = _extent(hull, b, yaw, zr)
        if x1 - x0 > sx + eps or y1 - y0 > sy + eps or z1 - z0 > sz + eps:
            # long objects rarely fit at a random yaw: try the nearest axis-aligned yaw
            yaw = (np.round(yaw / 90.0) * 90.0) % 360.0
            x0, y0, x1, y1, z0, z1 = _extent(hull, b, yaw, zr)
            if x1 - x0 > sx + eps or y1 - y0 > sy + eps or z1 - z0 > sz + eps:
                continue
        # (x, y) such that the footprint lies inside the interior
        xa = -sx / 2 - x0
        ya = -sy / 2 - y0
        x = xa + (max(xa, sx / 2 - x1) - xa) * draws[t, 2]
        y = ya + (max(ya, sy / 2 - y1) - ya) * draws[t, 3]
        # drop: onto the highest box whose footprint comes within the gap, or onto the floor
        bottom = 0.0
        for n in range(blo.shape[0]):
            if (x + x0 < bhi[n, 0] + gap - eps and y + y0 < bhi[n, 1] + gap - eps
                    and blo[n, 0] < x + x1 + gap - eps and blo[n, 1] < y + y1 + gap - eps):
                bottom = max(bottom, bhi[n, 2] + gap)
        if bottom + (z1 - z0) > sz + eps:
            continue
        z = bottom - z0
        clear = True
        for n in range(blo.shape[0]):
            if (x + x0 < bhi[n, 0] + gap - eps and y + y0 < bhi[n, 1] + gap - eps
                    and z + z0 < bhi[n, 2] + gap - eps and blo[n, 0] < x + x1 + gap - eps
                    and blo[n, 1] < y + y1 + gap - eps and blo[n, 2] < z + z1 + gap - eps):
                clear = False
                break
        if clear:
            out[0] = b
            out[1] = yaw
            out[2] = x
            out[3] = y
            out[4] = z
            return t
    return -1


def _place_one(
    points: np.ndarray, interior: np.ndarray, boxes: list, gap: float, attempts: int, rng: np.random.Generator
) -> tuple[list[float], list[float], np.ndarray, np.ndarray] | None:
    """One object by rejection sampling: (position, rotation_deg, lo, hi) in the bag frame, or None."""
    hull, _, zr = _outlines(points)
    blo = np.array([lo for lo, _ in boxes]).reshape(-1, 3)
    bhi = np.array([hi for _, hi in boxes]).reshape(-1, 3)
    out = np.empty(5)
    done = 0
    while done < attempts:
        draws = rng.random((min(BATCH, attempts - done), 4))
        done += len(draws)
        if _try(draws, hull, zr, interior, blo, bhi, gap, EPS, out) < 0:
            continue
        b, yaw, x, y, z = int(out[0]), float(out[1]), float(out[2]), float(out[3]), float(out[4])
        x0, y0, x1, y1, z0, z1 = _extent(hull, b, yaw, zr)
        pos = np.array([x, y, z])
        rx, ry = BASE_ROTATIONS[b]
        return [x, y, z], [rx, ry, yaw], pos + [x0, y0, z0], pos + [x1, y1, z1]
    return None


def pack_random(scene: Scene, rng: np.random.Generator) -> tuple[Scene, PackReport]:
    """The rejection sampler, a STAND-IN for the physics packer.

    Objects that have a pose stay where they are (their AABBs are obstacles). The others are
    placed labelled objects first (the annotations a dataset is made for), then largest first (by
    the volume of their bounding box; ties in scene order): each try takes four uniforms (drawn
    :data:`BATCH` tries at a time, and tried in a compiled loop) for
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
    boxes: list[tuple[np.ndarray, np.ndarray]] = []
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
