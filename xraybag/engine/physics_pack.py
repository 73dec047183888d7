"""The physics and heuristic packers, and the packing checks.

Both packers place the objects of a concrete scene one at a time (labelled objects first, then
largest first) onto a column occupancy map of the bag (:class:`xraybag.engine.occupancy.HeightMap`,
exact vertical extents of the TRUE meshes at column centres, grown by one column against slivers):

- ``'physics'`` (:func:`pack_physics`): a pybullet (DIRECT, one client per call) world holds the
  bag's floor and walls and the placed objects as static bodies; the new object, whose collision
  shape is a convex decomposition along its parts (one convex hull per part, cached per mesh by a
  hash of its vertices), is dropped from a uniformly random orientation above the contents and
  settles under gravity (at most :data:`SIM_STEPS` steps, stopped early once at rest). Then
  DEBISim's refinement: a particle swarm over (dx, dy, droll, dpitch, dyaw) in a window around the
  resting pose (+-L/2 in x and y, capped at 80 mm; +-15 degrees of roll and pitch, +-90 of yaw), then
  Nelder-Mead, on an occupancy cost: for a candidate pose the object is lowered onto the occupancy
  map (dz is not searched: the drop gives the lowest z at which it overlaps no occupied column) and
  the cost is the height of its centre (so it sinks), plus penalties for leaving the bag. If no
  candidate near the resting pose passes the checks, drop-and-slide candidates (below) are tried.
- ``'heuristic'`` (:func:`pack_heuristic`): DEBISim's drop-and-slide rules without the physics
  engine: the object rests on a face of its bounding box at a random yaw, is dropped at random (x, y)
  and slides sideways (8 directions, steps halved down to the column pitch) while that lowers it;
  the best of a few drops that passes the checks is kept.

The occupancy map is 2.5-D (the top of the contents per column): an object never ends up under an
overhang. Neither packer keeps ``packing.gap`` (objects rest on each other) or reads
``packing.attempts``.

Every accepted pose passes exact checks on the true meshes: intersection volume (manifold3d) with
each neighbour <= :data:`OVERLAP_LIMIT` of the smaller volume, inside the bag (AABB of the mesh),
and a vertical gap of at most :data:`SUPPORT_LIMIT` mm to the floor or an object below at some
column (a floating object is sunk by bisection while the intersections stay small). Objects that
fail are left out with a reason. A time budget per bag bounds the work: what is not placed when it
runs out is left out ("time budget"). Objects that come with a pose are obstacles and are kept as
they are; sheets are skipped (draped later).

:func:`check_packing` measures a packed scene (the figures the tests and the benchmark report).
Lengths in mm, angles in degrees, bag frame.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field

import contextlib
import os
import sys
import numpy as np
from scipy.optimize import minimize
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from xraybag.engine.geometry import apply, local_bounds, object_name, object_nodes, rotation_matrix
from xraybag.engine.meshes import to_manifold
from xraybag.engine.occupancy import HeightMap, column_extents
from xraybag.engine.packing import LARGER_THAN_BAG, PackReport, _fits_somehow, finish
from xraybag.errors import XraybagError
from xraybag.scenes.models import Object, Pose, Scene

TOLERANCE = 0.2  # mm chord error of the meshes the packers and the checks use
PITCH = 2.0  # mm, column pitch of the occupancy map
OVERLAP_LIMIT = 0.003  # accepted intersection volume / smaller volume when placing (checks: 0.005)
SUPPORT_LIMIT = 0.8  # mm, accepted gap below a placed object (checks: 1 mm)
TIME_BUDGET = 30.0  # s per bag
SIM_STEPS = 480  # at 240 Hz: 2 s of fall and settling at most
TIME_BUDGET_REASON = "time budget"

_HULL_CACHE: dict[str, np.ndarray] = {}


# ----------------------------------------------------------------------------- object geometry


@dataclass
class Geom:
    """One object's outer surfaces in its re-centred object frame (see geometry.py)."""

    index: int  # position in scene.objects
    name: str
    vertices: np.ndarray  # (V, 3) all parts
    faces: np.ndarray  # (F, 3)
    manifold: object  # manifold3d.Manifold, union of the parts
    volume: float
    hull: np.ndarray  # convex hull vertices of all parts (fit tests)
    part_hulls: list[np.ndarray]  # convex hull vertices per part: the collision shape
    extent: float = field(init=False)

    def __post_init__(self) -> None:
        self.extent = float(np.linalg.norm(self.vertices.max(axis=0) - self.vertices.min(axis=0)))

    def placed(self, rot: np.ndarray, pos) -> np.ndarray:
        return self.vertices @ rot.T + np.asarray(pos, dtype=float)

    def world_manifold(self, rot: np.ndarray, pos):
        m = np.zeros((3, 4))
        m[:, :3] = rot
        m[:, 3] = pos
        return self.manifold.transform(m)


def object_geom(obj: Object, index: int, name: str, tolerance: float = TOLERANCE) -> Geom:
    """The outer surfaces of an object's parts (containers: their outer surface)."""
    import manifold3d
    import trimesh

    nodes = object_nodes(obj, name)
    lo, hi = local_bounds(nodes, tolerance)
    c = (lo + hi) / 2.0
    vs, fs, mans, hulls, n = [], [], [], [], 0
    for node in nodes:
        m = node.outer(tolerance)
        v = apply(node.transform, np.asarray(m.vertices)) - c
        f = np.asarray(m.faces, dtype=np.int64)
        vs.append(v)
        fs.append(f + n)
        n += len(v)
        mans.append(to_manifold(trimesh.Trimesh(v, f, process=False)))
        hulls.append(_hull(v))
    man = mans[0] if len(mans) == 1 else manifold3d.Manifold.batch_boolean(mans, manifold3d.OpType.Add)
    v = np.vstack(vs)
    return Geom(index, name, v, np.vstack(fs), man, float(man.volume()), _hull(v), hulls)


def _hull(v: np.ndarray) -> np.ndarray:
    """Convex hull vertices, cached per mesh (key: hash of the vertices)."""
    key = hashlib.sha1(np.ascontiguousarray(v, dtype=np.float64).tobytes()).hexdigest()
    got = _HULL_CACHE.get(key)
    if got is None:
        try:
            got = v[ConvexHull(v).vertices]
        except Exception:  # noqa: BLE001 - flat point sets
            got = v
        _HULL_CACHE[key] = got
    return got


# ----------------------------------------------------------------------------------- the bag


class _Bag:
    """Occupancy map plus the placed objects' world manifolds, for drops and exact checks."""

    def __init__(self, interior: np.ndarray, pitch: float):
        self.interior = interior
        self.map = HeightMap(interior, pitch)
        self.placed: list[tuple[object, np.ndarray, np.ndarray, float]] = []  # manifold, lo, hi, vol

    def settle(self, g: Geom, rot: np.ndarray, x: float, y: float, base=None):
        """Lower the object (rotation ``rot``, centre above (x, y)) onto the contents.

        Returns (cost, z, footprint): cost = height of the centre, plus penalties outside the bag.
        ``base``: (x, y, footprint) of the same rotation at a position a whole number of columns
        away, reused shifted instead of voxelising again.
        """
        sx, sy, sz = self.interior
        v = g.vertices @ rot.T
        lo, hi = v.min(axis=0), v.max(axis=0)
        out = max(0.0, -sx / 2 - (x + lo[0]), x + hi[0] - sx / 2, -sy / 2 - (y + lo[1]), y + hi[1] - sy / 2)
        if out > 1e-9:
            return 1e4 + 100.0 * out, None, None
        if base is None:
            fp = self.map.footprint(v + np.array([x, y, 0.0]), g.faces)
        else:
            bx, by, bfp = base
            h = self.map.h
            fp = self.map.shifted(bfp, int(round((x - bx) / h)), int(round((y - by) / h)))
        z = max(self.map.rest_offset(fp), -lo[2])
        over = z + hi[2] - sz
        if over > 1e-9:
            return 1e3 + z + 10.0 * over, None, None
        return float(z), float(z), fp

    def overlap(self, g: Geom, rot: np.ndarray, pos) -> float:
        """Largest intersection volume with a placed object / the smaller volume."""
        wm = g.world_manifold(rot, pos)
        v = g.placed(rot, pos)
        lo, hi = v.min(axis=0), v.max(axis=0)
        worst = 0.0
        for m, plo, phi, vol in self.placed:
            if np.all(lo < phi) and np.all(plo < hi):
                inter = (wm ^ m).volume()
                worst = max(worst, inter / max(min(vol, g.volume), 1e-12))
        return worst

    def accept(self, g: Geom, rot: np.ndarray, x: float, y: float, z: float, fp):
        """Exact checks; sinks a floating object. Returns the final z or None."""
        if self.overlap(g, rot, [x, y, z]) > OVERLAP_LIMIT:
            return None
        gap = self.map.support_gap(fp, z)
        if gap > SUPPORT_LIMIT:
            # sink: the lowest z in [z - gap, z] whose intersections stay small (bisection)
            lo_z, hi_z = z - gap, z
            floor = -float((g.vertices @ rot.T)[:, 2].min())
            lo_z = max(lo_z, floor)
            for _ in range(8):
                mid = 0.5 * (lo_z + hi_z)
                if self.overlap(g, rot, [x, y, mid]) <= OVERLAP_LIMIT:
                    hi_z = mid
                else:
                    lo_z = mid
            z = hi_z
            if self.map.support_gap(fp, z) > SUPPORT_LIMIT:
                return None
        return z

    def add(self, g: Geom, rot: np.ndarray, pos, fp=None) -> None:
        v = g.placed(rot, pos)
        if fp is None:
            fp = self.map.footprint(v, g.faces)
            self.map.add(fp, 0.0)
        else:
            self.map.add(fp, float(pos[2]))
        self.placed.append((g.world_manifold(rot, pos), v.min(axis=0), v.max(axis=0), g.volume))


# ------------------------------------------------------------------------------------ common


def _prepare(scene: Scene, deadline: float = math.inf):
    """(interior, names, geoms of objects to place in order, geoms of fixed objects, left-out)."""
    interior = np.array([float(x) for x in scene.bag.size])
    names = [object_name(o, k) for k, o in enumerate(scene.objects, start=1)]
    todo, fixed, left = [], [], {}
    for k, obj in enumerate(scene.objects):
        if getattr(obj, "sheet", None) is not None:
            continue  # sheets are draped after packing
        if obj.pose is None and time.perf_counter() > deadline:
            left[k] = TIME_BUDGET_REASON
            continue
        g = object_geom(obj, k, names[k])
        if obj.pose is not None:
            fixed.append((g, rotation_matrix(obj.pose.rotation_deg), [float(p) for p in obj.pose.position]))
            continue
        if not _fits_somehow(g.hull, interior):
            left[k] = LARGER_THAN_BAG
            continue
        ext = g.vertices.max(axis=0) - g.vertices.min(axis=0)
        todo.append((obj.label is None, -float(np.prod(ext)), k, g))
    todo.sort(key=lambda t: (t[0], t[1], t[2]))
    return interior, names, [t[3] for t in todo], fixed, left


def _pose(rot: np.ndarray, pos) -> Pose:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock: any of the equivalent angle triples will do
        angles = Rotation.from_matrix(rot).as_euler("xyz", degrees=True)
    return Pose(position=[float(p) for p in pos], rotation_deg=[float(a) for a in angles])


def _pose_rot(pose: Pose) -> np.ndarray:
    """The rotation a stored pose gives back (Euler round trip), so checks see what is stored."""
    return rotation_matrix(pose.rotation_deg)


def _try_candidates(bag: _Bag, g: Geom, cands, deadline: float):
    """First candidate (cost, rot, x, y) that passes the exact checks: (rot, pos, fp) or None."""
    seen = 0
    for cost, rot, x, y in sorted(cands, key=lambda c: c[0]):
        if cost >= 1e3 or seen >= 8 or time.perf_counter() > deadline:
            break
        seen += 1
        pose = _pose(rot, [x, y, 0.0])
        rot = _pose_rot(pose)
        c, z, fp = bag.settle(g, rot, x, y)
        if z is None:
            continue
        z = bag.accept(g, rot, x, y, z, fp)
        if z is not None:
            return rot, [x, y, z], fp
    return None


# --------------------------------------------------------------------------------- heuristic


def _slide(bag: _Bag, g: Geom, rot: np.ndarray, x: float, y: float, step: float, deadline: float):
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


def _random_xy(g: Geom, rot: np.ndarray, interior: np.ndarray, rng: np.random.Generator):
    v = g.vertices @ rot.T
    lo, hi = v.min(axis=0), v.max(axis=0)
    sx, sy = interior[0], interior[1]
    x = float(rng.uniform(-sx / 2 - lo[0], max(-sx / 2 - lo[0], sx / 2 - hi[0])))
    y = float(rng.uniform(-sy / 2 - lo[1], max(-sy / 2 - lo[1], sy / 2 - hi[1])))
    return x, y


def _drop_and_slide(bag: _Bag, g: Geom, rng: np.random.Generator, drops: int, deadline: float):
    """Candidates (cost, rot, x, y): the object on a face of its bounding box at a random yaw,
    dropped at a random (x, y), slid down."""
    from xraybag.engine.packing import BASE_ROTATIONS

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
        x, y = _random_xy(g, rot, bag.interior, rng)
        cost, x, y = _slide(bag, g, rot, x, y, 16 * bag.map.h, deadline)
        cands.append((cost, rot, x, y))
    return cands


def _setup(scene: Scene, time_budget: float, pitch: float):
    """What both packers start from: the clock, the objects to place (after decomposition,
    timed) and an empty occupancy map of the bag."""
    start = time.perf_counter()
    deadline = start + time_budget
    timings = {"decomposition": 0.0, "simulation": 0.0, "refinement": 0.0}
    interior, names, todo, fixed, left = _prepare(scene, deadline)
    timings["decomposition"] = time.perf_counter() - start
    return start, deadline, timings, interior, names, todo, fixed, left, _Bag(interior, pitch)


def pack_heuristic(
    scene: Scene, rng: np.random.Generator, time_budget: float = TIME_BUDGET, pitch: float = PITCH,
    drops: int = 6,
) -> tuple[Scene, PackReport]:
    """DEBISim's drop-and-slide rules on the occupancy map, no physics engine (see module notes)."""
    start, deadline, timings, interior, names, todo, fixed, left, bag = _setup(scene, time_budget, pitch)
    for g, rot, pos in fixed:
        bag.add(g, rot, pos)
    poses: dict[int, Pose] = {}
    t0 = time.perf_counter()
    for g in todo:
        if time.perf_counter() > deadline:
            left[g.index] = TIME_BUDGET_REASON
            continue
        got = _try_candidates(bag, g, _drop_and_slide(bag, g, rng, drops, deadline), deadline)
        if got is None:
            left[g.index] = TIME_BUDGET_REASON if time.perf_counter() > deadline else "no free space found"
            continue
        rot, pos, fp = got
        bag.add(g, rot, pos, fp)
        poses[g.index] = _pose(rot, pos)
    timings["refinement"] = time.perf_counter() - t0
    report = PackReport(method="heuristic")
    report.timings = timings
    return finish(scene, names, poses, left, report)


# ----------------------------------------------------------------------------------- physics


def _pso(cost, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator, particles: int = 10,
         iterations: int = 8, deadline: float = math.inf):
    """A small particle swarm (inertia 0.6, c1 = c2 = 1.5) minimising ``cost`` in the box [lo, hi].

    Returns every evaluated (value, point) and the best point."""
    d = len(lo)
    x = rng.uniform(lo, hi, size=(particles, d))
    x[0] = 0.5 * (lo + hi)  # the resting pose itself
    v = rng.uniform(-(hi - lo), hi - lo, size=(particles, d)) * 0.2
    f = np.array([cost(p) for p in x])
    pbest, pf = x.copy(), f.copy()
    seen = [(float(fv), p.copy()) for fv, p in zip(f, x)]
    for _ in range(iterations):
        if time.perf_counter() > deadline:
            break
        g = pbest[int(np.argmin(pf))]
        r1, r2 = rng.random((particles, d)), rng.random((particles, d))
        v = 0.6 * v + 1.5 * r1 * (pbest - x) + 1.5 * r2 * (g - x)
        x = np.clip(x + v, lo, hi)
        f = np.array([cost(p) for p in x])
        better = f < pf
        pbest[better], pf[better] = x[better], f[better]
        seen += [(float(fv), p.copy()) for fv, p in zip(f, x)]
    return seen, pbest[int(np.argmin(pf))]


def _euler_xyz(deg) -> np.ndarray:
    """Rz @ Ry @ Rx (fixed axes, degrees), like geometry.rotation_matrix, without scipy's overhead."""
    a, b, c = np.radians(np.asarray(deg, dtype=float))
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx


@contextlib.contextmanager
def _quiet_stdout():
    """Silence what C code writes to file descriptor 1 (Python's own stdout is left alone)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        try:  # C's stdio buffers what it printed; write it to /dev/null before restoring fd 1
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)


_BANNER_SILENCED = False


def _silence_exit_banner() -> None:
    """pybullet leaves its "build time" banner in C's stdout buffer, which is written when the
    process exits and would land after our output (in JSON, say): at exit, once Python's own
    stdout is flushed, send file descriptor 1 to /dev/null."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    import atexit

    def hush() -> None:
        try:
            sys.stdout.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
        except (OSError, ValueError):
            pass

    atexit.register(hush)
    _BANNER_SILENCED = True


class _World:
    """A pybullet DIRECT world in metres: the bag's floor and walls, placed objects static."""

    def __init__(self, interior: np.ndarray):
        try:
            with _quiet_stdout():
                import pybullet as p
            _silence_exit_banner()
        except ImportError:
            raise XraybagError(
                "the 'physics' packer needs pybullet (pip install pybullet); "
                "the 'heuristic' packer does without"
            ) from None

        self.p = p
        with _quiet_stdout():
            self.cid = p.connect(p.DIRECT)
        p.setGravity(0, 0, -9.81, physicsClientId=self.cid)
        p.setPhysicsEngineParameter(fixedTimeStep=1 / 240, numSolverIterations=20,
                                    deterministicOverlappingPairs=1, physicsClientId=self.cid)
        sx, sy, sz = interior * 1e-3
        t = 0.05
        walls = [
            ([sx / 2 + t, sy / 2 + t, t], [0, 0, -t]),
            ([t, sy / 2 + t, sz], [sx / 2 + t, 0, sz]),
            ([t, sy / 2 + t, sz], [-sx / 2 - t, 0, sz]),
            ([sx / 2 + t, t, sz], [0, sy / 2 + t, sz]),
            ([sx / 2 + t, t, sz], [0, -sy / 2 - t, sz]),
        ]
        for half, pos in walls:
            s = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.cid)
            p.createMultiBody(0, s, basePosition=pos, physicsClientId=self.cid)

    def body(self, g: Geom, rot: np.ndarray, pos, mass: float) -> int:
        """A body whose collision shape is the convex decomposition of the object: one convex
        hull per part (the base and links fixed to it, all in the object frame)."""
        p = self.p
        shapes = [
            p.createCollisionShape(p.GEOM_MESH, vertices=(h * 1e-3).tolist(), physicsClientId=self.cid)
            for h in g.part_hulls
        ]
        q = Rotation.from_matrix(rot).as_quat()
        if mass == 0.0:  # static: one plain body per part (static multibodies step slowly)
            for s in shapes:
                p.createMultiBody(0.0, s, basePosition=(np.asarray(pos) * 1e-3).tolist(),
                                  baseOrientation=q.tolist(), physicsClientId=self.cid)
            return -1
        if len(shapes) == 1:
            return p.createMultiBody(mass, shapes[0], basePosition=(np.asarray(pos) * 1e-3).tolist(),
                                     baseOrientation=q.tolist(), physicsClientId=self.cid)
        n = len(shapes) - 1
        share = mass / (n + 1)
        return p.createMultiBody(
            share, shapes[0], basePosition=(np.asarray(pos) * 1e-3).tolist(),
            baseOrientation=q.tolist(),
            linkMasses=[share] * n, linkCollisionShapeIndices=shapes[1:],
            linkVisualShapeIndices=[-1] * n, linkPositions=[[0, 0, 0]] * n,
            linkOrientations=[[0, 0, 0, 1]] * n, linkInertialFramePositions=[[0, 0, 0]] * n,
            linkInertialFrameOrientations=[[0, 0, 0, 1]] * n, linkParentIndices=[0] * n,
            linkJointTypes=[p.JOINT_FIXED] * n, linkJointAxis=[[0, 0, 1]] * n,
            physicsClientId=self.cid,
        )

    def drop(self, g: Geom, rot: np.ndarray, pos, steps: int = SIM_STEPS):
        """Let the object fall from ``pos`` and settle; returns (rot, pos) where it came to rest."""
        p = self.p
        b = self.body(g, rot, pos, 1.0)
        for k in range(steps):
            p.stepSimulation(physicsClientId=self.cid)
            if k % 20 == 19:
                lin, ang = p.getBaseVelocity(b, physicsClientId=self.cid)
                if np.linalg.norm(lin) < 2e-3 and np.linalg.norm(ang) < 2e-2:
                    break
        x, q = p.getBasePositionAndOrientation(b, physicsClientId=self.cid)
        p.removeBody(b, physicsClientId=self.cid)
        return Rotation.from_quat(q).as_matrix(), np.array(x) * 1e3

    def close(self) -> None:
        try:
            with _quiet_stdout():
                self.p.disconnect(physicsClientId=self.cid)
        except Exception:  # noqa: BLE001 - already gone
            pass


def pack_physics(
    scene: Scene, rng: np.random.Generator, time_budget: float = TIME_BUDGET, pitch: float = PITCH,
) -> tuple[Scene, PackReport]:
    """pybullet drop, then PSO + Nelder-Mead on the occupancy cost (see module notes)."""
    start, deadline, timings, interior, names, todo, fixed, left, bag = _setup(scene, time_budget, pitch)
    poses: dict[int, Pose] = {}
    world = _World(interior)
    try:
        for g, rot, pos in fixed:
            bag.add(g, rot, pos)
            world.body(g, rot, pos, 0.0)
        for g in todo:
            if time.perf_counter() > deadline:
                left[g.index] = TIME_BUDGET_REASON
                continue
            t0 = time.perf_counter()
            r = g.extent / 2.0
            rot0 = Rotation.from_quat(rng.normal(size=4)).as_matrix()
            x0, y0 = _random_xy(g, rot0, interior, rng)
            z0 = float(bag.map.safe.max()) + r + 5.0
            rot_s, pos_s = world.drop(g, rot0, [x0, y0, z0])
            if not (np.all(np.isfinite(pos_s)) and np.all(np.isfinite(rot_s))):
                rot_s, pos_s = rot0, np.array([x0, y0, z0])  # the simulation blew up: start where it began
            pos_s[:2] = np.clip(pos_s[:2], -interior[:2] / 2, interior[:2] / 2)
            t1 = time.perf_counter()
            timings["simulation"] += t1 - t0
            # refinement: PSO over (dx, dy, droll, dpitch, dyaw), then Nelder-Mead
            w = min(g.extent / 2.0, 80.0)
            lo = np.array([-w, -w, -15.0, -15.0, -90.0])
            hi = -lo

            def rot_of(q):
                return _euler_xyz(q[2:5]) @ rot_s

            def cost(q):
                return bag.settle(g, rot_of(q), pos_s[0] + q[0], pos_s[1] + q[1])[0]

            seen, best = _pso(cost, lo, hi, rng, deadline=deadline)
            res = minimize(cost, best, method="Nelder-Mead",
                           options={"maxfev": 40, "initial_simplex": best + np.vstack(
                               [np.zeros(5), np.diag([4.0, 4.0, 3.0, 3.0, 5.0])]), "xatol": 0.5, "fatol": 0.1})
            seen.append((float(res.fun), np.asarray(res.x)))
            cands = [(c, rot_of(q), pos_s[0] + q[0], pos_s[1] + q[1]) for c, q in seen]
            got = _try_candidates(bag, g, cands, deadline)
            if got is None and time.perf_counter() < deadline:
                # the swarm found no room near where it fell: drop-and-slide elsewhere
                got = _try_candidates(bag, g, _drop_and_slide(bag, g, rng, 6, deadline), deadline)
            timings["refinement"] += time.perf_counter() - t1
            if got is None:
                left[g.index] = TIME_BUDGET_REASON if time.perf_counter() > deadline else "no free space found"
                continue
            rot, pos, fp = got
            bag.add(g, rot, pos, fp)
            world.body(g, rot, pos, 0.0)
            poses[g.index] = _pose(rot, pos)
    finally:
        world.close()
    report = PackReport(method="physics")
    report.timings = timings
    return finish(scene, names, poses, left, report)


# ------------------------------------------------------------------------------------ checks


def check_packing(scene: Scene, tolerance: float = TOLERANCE, pitch: float = PITCH / 2) -> dict:
    """Measure a packed scene on the objects' true (outer) meshes.

    Returns ``max_overlap_fraction`` (largest intersection volume of two objects over the smaller
    one's volume, manifold3d), ``max_outside_mm`` (how far any object's mesh leaves the interior),
    ``max_support_gap_mm`` (over objects: the smallest vertical gap, over the columns of a grid of
    ``pitch`` mm under the object, between its lowest surface and the floor or the top of an object
    below it; 0 where it rests inside another object's vertical span) and ``objects``. Sheets are
    ignored.
    """
    interior = np.array([float(x) for x in scene.bag.size])
    sx, sy, sz = interior
    items = []
    for k, obj in enumerate(scene.objects):
        if getattr(obj, "sheet", None) is not None or obj.pose is None:
            continue
        g = object_geom(obj, k, object_name(obj, k + 1), tolerance)
        rot = rotation_matrix(obj.pose.rotation_deg)
        pos = np.array([float(p) for p in obj.pose.position])
        v = g.placed(rot, pos)
        items.append((g, g.world_manifold(rot, pos), v, v.min(axis=0), v.max(axis=0)))
    overlap, outside = 0.0, 0.0
    for i, (g, m, v, lo, hi) in enumerate(items):
        outside = max(outside, -sx / 2 - lo[0], hi[0] - sx / 2, -sy / 2 - lo[1], hi[1] - sy / 2,
                      -lo[2], hi[2] - sz)
        for g2, m2, _, lo2, hi2 in items[i + 1:]:
            if np.all(lo < hi2) and np.all(lo2 < hi):
                inter = (m ^ m2).volume()
                overlap = max(overlap, inter / max(min(g.volume, g2.volume), 1e-12))
    # columns on a grid that contains the packer's column centres (pitch halved, shifted)
    x0, y0 = -sx / 2 - pitch / 2, -sy / 2 - pitch / 2
    nx, ny = int(math.ceil(sx / pitch)) + 2, int(math.ceil(sy / pitch)) + 2
    cols = []
    for g, _, v, lo, hi in items:
        i0 = max(0, int(math.floor((lo[0] - x0) / pitch)) - 1)
        i1 = min(nx, int(math.ceil((hi[0] - x0) / pitch)) + 1)
        j0 = max(0, int(math.floor((lo[1] - y0) / pitch)) - 1)
        j1 = min(ny, int(math.ceil((hi[1] - y0) / pitch)) + 1)
        b, t = column_extents(v, g.faces, x0 + i0 * pitch, y0 + j0 * pitch, pitch, i1 - i0, j1 - j0)
        cols.append((i0, j0, b, t))
    support = 0.0
    for a, (i0, j0, b, t) in enumerate(cols):
        below = np.zeros_like(b)  # the floor
        inside = np.zeros(b.shape, dtype=bool)
        for c, (k0, l0, b2, t2) in enumerate(cols):
            if c == a:
                continue
            ia, ib = max(i0, k0), min(i0 + b.shape[0], k0 + b2.shape[0])
            ja, jb = max(j0, l0), min(j0 + b.shape[1], l0 + b2.shape[1])
            if ia >= ib or ja >= jb:
                continue
            sa = (slice(ia - i0, ib - i0), slice(ja - j0, jb - j0))
            sb = (slice(ia - k0, ib - k0), slice(ja - l0, jb - l0))
            ba, tb, bb = b[sa], t2[sb], b2[sb]
            under = tb <= ba + 0.5
            below[sa] = np.maximum(below[sa], np.where(under & np.isfinite(tb), tb, -np.inf))
            inside[sa] |= (bb <= ba) & (ba <= tb)
        m = np.isfinite(b)
        if m.any():
            gap = np.where(inside, 0.0, b - below)[m]
            support = max(support, float(max(0.0, gap.min())))
    return {
        "max_overlap_fraction": float(overlap),
        "max_outside_mm": float(max(0.0, outside)),
        "max_support_gap_mm": float(support),
        "objects": len(items),
    }
