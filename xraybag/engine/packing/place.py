"""Placing one object at a time on the bag's column occupancy map: what the heuristic and physics
packers share.

Both packers place the objects of a concrete scene one at a time (labelled objects first, then
largest first) onto a column occupancy map of the bag (:class:`.occupancy.HeightMap`, exact
vertical extents of the TRUE meshes at column centres, grown by one column against slivers). The
map is 2.5-D (the top of the contents per column): an object never ends up under an overhang.
Neither packer keeps ``packing.gap`` (objects rest on each other) or reads ``packing.attempts``.

Every accepted pose passes exact checks on the true meshes (:meth:`Bag.accept`): intersection
volume (manifold3d) with each neighbour <= :data:`OVERLAP_LIMIT` of the smaller volume, inside the
bag (AABB of the mesh), and a vertical gap of at most :data:`SUPPORT_LIMIT` mm to the floor or an
object below at some column (a floating object is sunk by bisection while the intersections stay
small). Objects that fail are left out with a reason. A time budget per bag bounds the work: what
is not placed when it runs out is left out ("time budget"). Objects that come with a pose are
obstacles and are kept as they are; sheets are skipped (draped later).

Lengths in mm, angles in degrees, bag frame.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from xraybag.engine.packing.base import (
    LARGER_THAN_BAG,
    TIME_BUDGET_REASON,
    fits_somehow,
)
from xraybag.engine.packing.occupancy import HeightMap
from xraybag.engine.solids.meshes import to_manifold
from xraybag.engine.solids.scene import (
    apply,
    local_bounds,
    object_name,
    object_nodes,
    rotation_matrix,
)
from xraybag.scenes.models import Object, Pose, Scene

TOLERANCE = 0.2  # mm chord error of the meshes the packers and the checks use
PITCH = 2.0  # mm, column pitch of the occupancy map
OVERLAP_LIMIT = 0.003  # accepted intersection volume / smaller volume when placing (checks: 0.005)
SUPPORT_LIMIT = 0.8  # mm, accepted gap below a placed object (checks: 1 mm)
TIME_BUDGET = 30.0  # s per bag

# ----------------------------------------------------------------------------- object geometry


@dataclass
class Geom:
    """One object's outer surfaces in its re-centred object frame (see geometry.py)."""

    index: int  # position in scene.objects
    name: str
    vertices: np.ndarray  # (V, 3) all parts
    faces: np.ndarray  # (F, 3)
    hull: np.ndarray  # convex hull vertices of all parts (fit tests)
    parts: list[tuple[np.ndarray, np.ndarray]] = field(repr=False)  # each part's (vertices, faces)
    extent: float = field(init=False)
    #: what the placement search derives from the shape alone (its resting rotations, its columns
    #: at each of them), kept for the object's further searches (:mod:`.dense`)
    cache: dict = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.extent = float(np.linalg.norm(self.vertices.max(axis=0) - self.vertices.min(axis=0)))

    # made when first used: an object of a request that does not fit may never reach the exact
    # checks (the manifold, its volume) or a drop (the parts' hulls)
    @cached_property
    def manifold(self):
        """manifold3d.Manifold, the union of the parts."""
        import manifold3d
        import trimesh

        mans = [to_manifold(trimesh.Trimesh(v, f, process=False)) for v, f in self.parts]
        return mans[0] if len(mans) == 1 else manifold3d.Manifold.batch_boolean(mans, manifold3d.OpType.Add)

    @cached_property
    def volume(self) -> float:
        return float(self.manifold.volume())

    @cached_property
    def part_hulls(self) -> list[np.ndarray]:
        """Convex hull vertices per part: the collision shape."""
        return [_hull(v) for v, _ in self.parts]

    def placed(self, rot: np.ndarray, pos) -> np.ndarray:
        return self.vertices @ rot.T + np.asarray(pos, dtype=float)

    def world_manifold(self, rot: np.ndarray, pos):
        m = np.zeros((3, 4))
        m[:, :3] = rot
        m[:, 3] = pos
        return self.manifold.transform(m)


def object_geom(obj: Object, index: int, name: str, tolerance: float = TOLERANCE) -> Geom:
    """The outer surfaces of an object's parts (containers: their outer surface)."""
    nodes = object_nodes(obj, name)
    lo, hi = local_bounds(nodes, tolerance)
    c = (lo + hi) / 2.0
    parts, fs, n = [], [], 0
    for node in nodes:
        m = node.outer(tolerance)
        v = apply(node.transform, np.asarray(m.vertices)) - c
        f = np.asarray(m.faces, dtype=np.int64)
        parts.append((v, f))
        fs.append(f + n)
        n += len(v)
    v = np.vstack([p[0] for p in parts])
    return Geom(index, name, v, np.vstack(fs), _hull(v), parts)


def _hull(v: np.ndarray) -> np.ndarray:
    """Convex hull vertices (in the order of ``v``); all of ``v`` for flat point sets."""
    try:
        return v[ConvexHull(v).vertices]
    except Exception:  # noqa: BLE001 - flat point sets
        return v


# ----------------------------------------------------------------------------------- the bag


class Bag:
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

    def overlap(self, g: Geom, rot: np.ndarray, pos, limit: float = 0.0) -> float:
        """Largest intersection volume with a placed object / the smaller volume.

        The intersection lies inside the two bounding boxes' intersection, so a neighbour whose
        boxes share at most ``limit`` of the smaller volume cannot pass ``limit`` and is not
        intersected exactly (objects that touch, as packed ones do, share a box of no thickness):
        the result is exact above ``limit`` and at most ``limit`` otherwise."""
        v = g.placed(rot, pos)
        lo, hi = v.min(axis=0), v.max(axis=0)
        worst = 0.0
        wm = None
        for m, plo, phi, vol in self.placed:
            if np.all(lo < phi) and np.all(plo < hi):
                smaller = max(min(vol, g.volume), 1e-12)
                if float(np.prod(np.minimum(hi, phi) - np.maximum(lo, plo))) <= limit * smaller:
                    continue
                if wm is None:
                    wm = g.world_manifold(rot, pos)
                worst = max(worst, (wm ^ m).volume() / smaller)
        return worst

    def accept(self, g: Geom, rot: np.ndarray, x: float, y: float, z: float, fp):
        """Exact checks; sinks a floating object. Returns the final z or None."""
        if self.overlap(g, rot, [x, y, z], OVERLAP_LIMIT) > OVERLAP_LIMIT:
            return None
        gap = self.map.support_gap(fp, z)
        if gap > SUPPORT_LIMIT:
            # sink: the lowest z in [z - gap, z] whose intersections stay small: straight down
            # onto what is under it where that is clean (so every sink measured went), else by
            # bisection
            lo_z, hi_z = max(z - gap, -float((g.vertices @ rot.T)[:, 2].min())), z
            if self.overlap(g, rot, [x, y, lo_z], OVERLAP_LIMIT) <= OVERLAP_LIMIT:
                hi_z = lo_z
            else:
                for _ in range(8):
                    mid = 0.5 * (lo_z + hi_z)
                    if self.overlap(g, rot, [x, y, mid], OVERLAP_LIMIT) <= OVERLAP_LIMIT:
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


def larger_than_bag(g: Geom, interior: np.ndarray) -> str | None:
    """:data:`.base.LARGER_THAN_BAG` unless some resting orientation fits the empty interior."""
    return None if fits_somehow(g.hull, interior) else LARGER_THAN_BAG


def prepare(scene: Scene, deadline: float = math.inf, why_not=None):
    """(interior, names, geoms of objects to place in order, geoms of fixed objects, left-out).

    ``why_not(g, interior)``: why an object cannot go into the empty bag, or None (default
    :func:`larger_than_bag`)."""
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
        why = (why_not or larger_than_bag)(g, interior)
        if why is not None:
            left[k] = why
            continue
        ext = g.vertices.max(axis=0) - g.vertices.min(axis=0)
        todo.append((obj.label is None, -float(np.prod(ext)), k, g))
    todo.sort(key=lambda t: (t[0], t[1], t[2]))
    return interior, names, [t[3] for t in todo], fixed, left


def pose_of(rot: np.ndarray, pos) -> Pose:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock: any of the equivalent angle triples will do
        angles = Rotation.from_matrix(rot).as_euler("xyz", degrees=True)
    return Pose(position=[float(p) for p in pos], rotation_deg=[float(a) for a in angles])


def stored_rotation(pose: Pose) -> np.ndarray:
    """The rotation a stored pose gives back (Euler round trip), so checks see what is stored."""
    return rotation_matrix(pose.rotation_deg)


def try_candidates(bag: Bag, g: Geom, cands, deadline: float):
    """First candidate (cost, rot, x, y) that passes the exact checks: (rot, pos, fp) or None."""
    seen = 0
    for cost, rot, x, y in sorted(cands, key=lambda c: c[0]):
        if cost >= 1e3 or seen >= 8 or time.perf_counter() > deadline:
            break
        seen += 1
        pose = pose_of(rot, [x, y, 0.0])
        rot = stored_rotation(pose)
        c, z, fp = bag.settle(g, rot, x, y)
        if z is None:
            continue
        z = bag.accept(g, rot, x, y, z, fp)
        if z is not None:
            return rot, [x, y, z], fp
    return None


def setup(scene: Scene, time_budget: float, pitch: float, why_not=None):
    """What both packers start from: the clock, the objects to place (after decomposition,
    timed; ``why_not`` as in :func:`prepare`) and an empty occupancy map of the bag."""
    start = time.perf_counter()
    deadline = start + time_budget
    timings = {"decomposition": 0.0, "simulation": 0.0, "refinement": 0.0}
    interior, names, todo, fixed, left = prepare(scene, deadline, why_not)
    timings["decomposition"] = time.perf_counter() - start
    return start, deadline, timings, interior, names, todo, fixed, left, Bag(interior, pitch)

