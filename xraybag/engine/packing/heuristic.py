"""The heuristic packer: DEBISim's drop-and-slide rules on the occupancy map, no physics engine.

The object rests on a face of its bounding box at a random yaw, is dropped at random (x, y) and
slides sideways (8 directions, steps halved down to the column pitch) while that lowers it; the
best of a few drops that passes the exact checks of :mod:`.place` is kept.
"""

from __future__ import annotations

import time

import numpy as np

from xraybag.engine.packing.base import (
    BASE_ROTATIONS,
    TIME_BUDGET_REASON,
    PackReport,
    finish,
)
from xraybag.engine.packing.place import (
    PITCH,
    TIME_BUDGET,
    Bag,
    Geom,
    pose_of,
    setup,
    try_candidates,
)
from xraybag.engine.solids.scene import rotation_matrix
from xraybag.scenes.models import Pose, Scene


def slide(bag: Bag, g: Geom, rot: np.ndarray, x: float, y: float, step: float, deadline: float):
    """Drop at (x, y), then slide in the 8 directions (steps of ``step`` halved down to the
    column pitch) while that lowers the object. The column map is computed once per rotation."""
    h = bag.map.h
    v = g.vertices @ rot.T
    fp0 = bag.map.footprint(v + np.array([x, y, 0.0]), g.faces)
    base = (x, y, fp0)
    cost = bag.settle(g, rot, x, y, base)[0]
    dirs = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]
    step = h * max(1, int(round(step / h)))
    while step >= h - 1e-9:
        moved = False
        for dx, dy in dirs:
            if time.perf_counter() > deadline:
                return cost, x, y
            c = bag.settle(g, rot, x + dx * step, y + dy * step, base)[0]
            if c < cost - 1e-6:
                cost, x, y, moved = c, x + dx * step, y + dy * step, True
                break
        if not moved:
            step = h * (int(round(step / h)) // 2)
    return cost, x, y


def random_xy(g: Geom, rot: np.ndarray, interior: np.ndarray, rng: np.random.Generator):
    v = g.vertices @ rot.T
    lo, hi = v.min(axis=0), v.max(axis=0)
    sx, sy = interior[0], interior[1]
    x = float(rng.uniform(-sx / 2 - lo[0], max(-sx / 2 - lo[0], sx / 2 - hi[0])))
    y = float(rng.uniform(-sy / 2 - lo[1], max(-sy / 2 - lo[1], sy / 2 - hi[1])))
    return x, y


def drop_and_slide(bag: Bag, g: Geom, rng: np.random.Generator, drops: int, deadline: float):
    """Candidates (cost, rot, x, y): the object on a face of its bounding box at a random yaw,
    dropped at a random (x, y), slid down."""
    def fits(rot):
        v = g.vertices @ rot.T
        return bool(np.all(v.max(axis=0) - v.min(axis=0) <= bag.interior + 1e-9))

    cands = []
    for _ in range(drops):
        rx, ry = BASE_ROTATIONS[int(rng.integers(len(BASE_ROTATIONS)))]
        yaw = float(rng.uniform(0.0, 360.0))
        tries = [yaw] + [float((round(yaw / 90.0) * 90 + d) % 360) for d in (0, 90)]
        tries += [float((round(yaw / 90.0) * 90 + d) % 360) for rx, ry in BASE_ROTATIONS for d in (0, 90)]
        # long objects rarely fit at a random yaw: the nearest axis-aligned ones, other faces
        rot = None
        for k, a in enumerate(tries):
            bx, by = (rx, ry) if k < 3 else BASE_ROTATIONS[(k - 3) // 2]
            r = rotation_matrix([bx, by, a])
            if fits(r):
                rot = r
                break
        if rot is None:
            continue
        x, y = random_xy(g, rot, bag.interior, rng)
        cost, x, y = slide(bag, g, rot, x, y, 16 * bag.map.h, deadline)
        cands.append((cost, rot, x, y))
    return cands


def pack_heuristic(
    scene: Scene, rng: np.random.Generator, time_budget: float = TIME_BUDGET, pitch: float = PITCH,
    drops: int = 6,
) -> tuple[Scene, PackReport]:
    """DEBISim's drop-and-slide rules on the occupancy map, no physics engine (see module notes)."""
    start, deadline, timings, interior, names, todo, fixed, left, bag = setup(scene, time_budget, pitch)
    for g, rot, pos in fixed:
        bag.add(g, rot, pos)
    poses: dict[int, Pose] = {}
    t0 = time.perf_counter()
    for g in todo:
        if time.perf_counter() > deadline:
            left[g.index] = TIME_BUDGET_REASON
            continue
        got = try_candidates(bag, g, drop_and_slide(bag, g, rng, drops, deadline), deadline)
        if got is None:
            left[g.index] = TIME_BUDGET_REASON if time.perf_counter() > deadline else "no free space found"
            continue
        rot, pos, fp = got
        bag.add(g, rot, pos, fp)
        poses[g.index] = pose_of(rot, pos)
    timings["refinement"] = time.perf_counter() - t0
    report = PackReport(method="heuristic")
    report.timings = timings
    return finish(scene, names, poses, left, report)
