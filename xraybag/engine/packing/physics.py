"""The physics packer: dense placement on the occupancy map first, then (for an object that finds
no room that way) a pybullet drop and DEBISim's PSO refinement.

Objects are placed largest first (labelled ones before the order passes 60 % of the bag; see
:func:`.dense.packing_order`), each at the best of the positions and resting orientations
:mod:`.dense` finds by searching the whole occupancy map (flat items flat, long items along the
bag, lowest top and least empty space under it, from a starting corner), checked exactly by
:mod:`.place`. A labelled object that finds no room has up to :data:`EVICT` of the last-placed
unlabelled objects taken out for it (a person makes room for what matters), which then go back
wherever they still fit; and once an object has found no room, the labelled objects still to
come are packed next. An unlabelled object that finds no room is swapped in the same way, but
kept only if everything taken out goes back in (until ``packing.swaps`` swaps have failed).
When the search found room but none of it passes the exact checks, the object is dropped as
follows (DEBISim's packer); when it found no room under the lid at all, the object is left out
("the bag is full"). A request that does not fit is packed again with fresh draws of the order's
jitter and the starting corner, its soft goods pressed (:mod:`.press`) and its slabs laid first
in every second packing and last in the third of every four (:func:`.packings.slabs_of`; up to
``packing.packings`` packings in all; unset, 4, and up to 12 while every packing left something
out below 60 % hull fill), and the packing that placed the most labelled objects,
then went furthest before leaving anything out, is kept (:func:`pack_physics`; each packing is
taken to its first left-out, and only those that can still be the best are finished). Where the
first packing still lost labelled objects, every second further one packs them earlier.

A pybullet (DIRECT, one client per call) world holds the bag's floor and walls and the placed
objects as static bodies; the new object, whose collision shape is a convex decomposition along
its parts (one convex hull per part, cached per mesh by a hash of its vertices), is dropped from a
uniformly random orientation above the contents and settles under gravity (at most
:data:`SIM_STEPS` steps, stopped early once at rest). Then DEBISim's refinement: a particle swarm
over (dx, dy, droll, dpitch, dyaw) in a window around the resting pose (+-L/2 in x and y, capped
at 80 mm; +-15 degrees of roll and pitch, +-90 of yaw), then Nelder-Mead, on an occupancy cost:
for a candidate pose the object is lowered onto the occupancy map (dz is not searched: the drop
gives the lowest z at which it overlaps no occupied column) and the cost is the height of its
centre (so it sinks), plus penalties for leaving the bag. If no candidate near the resting pose
passes the exact checks (:mod:`.place`), drop-and-slide candidates (:mod:`.heuristic`) are tried.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from xraybag.engine.packing.base import BAG_FULL, TIME_BUDGET_REASON, PackReport, finish
from xraybag.engine.packing.dense import (
    LABELLED_BY,
    dense_candidates,
    hull_volume,
    packing_order,
    why_not_dense,
)
from xraybag.engine.packing.heuristic import drop_and_slide, random_xy
from xraybag.engine.packing.packings import (
    advance,
    best_fill,
    finish_best,
    settle_labelled,
    slabs_of,
)
from xraybag.engine.packing.place import (
    PITCH,
    SUPPORT_LIMIT,
    TIME_BUDGET,
    Bag,
    Geom,
    pose_of,
    setup,
    try_candidates,
)
from xraybag.engine.packing.pso import pso
from xraybag.engine.solids.scene import rotation_matrix
from xraybag.errors import XraybagError
from xraybag.scenes.models import Scene

SIM_STEPS = 480  # at 240 Hz: 2 s of fall and settling at most


@contextlib.contextmanager
def _quiet_c_output():
    """Silence what C code writes to file descriptors 1 and 2 (pybullet's "build time" banner on
    import, its messages on connect); Python's own streams are left alone."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(os.devnull, "wb") as null:
            for fd in saved:
                os.dup2(null.fileno(), fd)
            yield
    finally:
        try:  # C's stdio buffers what it printed; write it to /dev/null before restoring the fds
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


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
            with _quiet_c_output():
                import pybullet as p
            _silence_exit_banner()
        except ImportError:
            raise XraybagError(
                "the 'physics' packer needs pybullet (pip install pybullet); "
                "the 'heuristic' packer does without"
            ) from None

        self.p = p
        with _quiet_c_output():
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
            with _quiet_c_output():
                self.p.disconnect(physicsClientId=self.cid)
        except Exception:  # noqa: BLE001 - already gone
            pass


#: when a labelled object finds no room, up to this many of the last-placed unlabelled objects are
#: taken out again to make room for it (and put back wherever they still fit)
EVICT = 4


class _Packing:
    """The state of one bag being packed: the occupancy map, the placed objects in order, and
    (built only when an object needs a drop) the pybullet world."""

    def __init__(self, bag: Bag, fixed, interior, pitch, timings, deadline, rng, corner):
        self.bag, self.fixed, self.interior, self.pitch = bag, fixed, interior, pitch
        self.timings, self.deadline, self.rng, self.corner = timings, deadline, rng, corner
        self.placed: list[tuple[Geom, np.ndarray, list, object]] = []
        self.world: _World | None = None
        for g, rot, pos in fixed:
            bag.add(g, rot, pos)

    def commit(self, g: Geom, rot, pos, fp) -> None:
        self.bag.add(g, rot, pos, fp)
        self.placed.append((g, rot, pos, fp))
        if self.world is not None:
            self.world.body(g, rot, pos, 0.0)

    def bag_of(self, keep: list, check_from: int | None = None) -> Bag | None:
        """A map holding only the fixed objects and ``keep`` (in placing order); None if an object
        of ``keep`` from position ``check_from`` on no longer rests on what is below it there
        (taking objects out must not leave one that was placed on them floating)."""
        bag = Bag(self.interior, self.pitch)
        for g, rot, pos in self.fixed:
            bag.add(g, rot, pos)
        for k, (g, rot, pos, fp) in enumerate(keep):
            if check_from is not None and k >= check_from and bag.map.support_gap(fp, float(pos[2])) > SUPPORT_LIMIT:
                return None
            bag.add(g, rot, pos, fp)
        return bag

    def rebuild(self, keep: list, bag: Bag | None = None) -> None:
        """The map (and world) holding only the fixed objects and ``keep`` (``bag``: that map,
        already made by :meth:`bag_of`)."""
        self.bag = self.bag_of(keep) if bag is None else bag
        self.placed = list(keep)
        if self.world is not None:
            self.world.close()
            self.world = None

    def place(self, g: Geom, drop: bool = True):
        """Find a pose for ``g``: (rot, pos, fp), or None and the reason."""
        if time.perf_counter() > self.deadline:
            return None, TIME_BUDGET_REASON
        ts = time.perf_counter()
        cands = dense_candidates(self.bag, g, self.corner, self.deadline)
        got = try_candidates(self.bag, g, cands, self.deadline)
        self.timings["search"] += time.perf_counter() - ts
        if got is not None:
            return got, None
        if time.perf_counter() > self.deadline:
            return None, TIME_BUDGET_REASON
        if not cands or not drop:
            # no orientation has room anywhere under the lid: a drop cannot find any either
            return None, BAG_FULL
        got = self.drop(g)
        if got is None:
            return None, TIME_BUDGET_REASON if time.perf_counter() > self.deadline else "no free space found"
        return got, None

    def drop(self, g: Geom):
        """DEBISim's way: a pybullet drop from a random orientation, then PSO + Nelder-Mead."""
        bag, interior, rng, deadline = self.bag, self.interior, self.rng, self.deadline
        if self.world is None:
            self.world = _World(interior)
            for gg, rr, pp in self.fixed:
                self.world.body(gg, rr, pp, 0.0)
            for gg, rr, pp, _ in self.placed:
                self.world.body(gg, rr, pp, 0.0)
        t0 = time.perf_counter()
        r = g.extent / 2.0
        rot0 = Rotation.from_quat(rng.normal(size=4)).as_matrix()
        x0, y0 = random_xy(g, rot0, interior, rng)
        z0 = float(bag.map.safe.max()) + r + 5.0
        rot_s, pos_s = self.world.drop(g, rot0, [x0, y0, z0])
        if not (np.all(np.isfinite(pos_s)) and np.all(np.isfinite(rot_s))):
            rot_s, pos_s = rot0, np.array([x0, y0, z0])  # the simulation blew up: start where it began
        pos_s[:2] = np.clip(pos_s[:2], -interior[:2] / 2, interior[:2] / 2)
        t1 = time.perf_counter()
        self.timings["simulation"] += t1 - t0
        # refinement: PSO over (dx, dy, droll, dpitch, dyaw), then Nelder-Mead
        w = min(g.extent / 2.0, 80.0)
        lo = np.array([-w, -w, -15.0, -15.0, -90.0])
        hi = -lo

        def rot_of(q):
            return rotation_matrix(q[2:5]) @ rot_s

        def cost(q):
            return bag.settle(g, rot_of(q), pos_s[0] + q[0], pos_s[1] + q[1])[0]

        seen, best = pso(cost, lo, hi, rng, deadline=deadline)
        res = minimize(cost, best, method="Nelder-Mead",
                       options={"maxfev": 40, "initial_simplex": best + np.vstack(
                           [np.zeros(5), np.diag([4.0, 4.0, 3.0, 3.0, 5.0])]), "xatol": 0.5, "fatol": 0.1})
        seen.append((float(res.fun), np.asarray(res.x)))
        cands = [(c, rot_of(q), pos_s[0] + q[0], pos_s[1] + q[1]) for c, q in seen]
        got = try_candidates(bag, g, cands, deadline)
        if got is None and time.perf_counter() < deadline:
            # the swarm found no room near where it fell: drop-and-slide elsewhere
            got = try_candidates(bag, g, drop_and_slide(bag, g, rng, 6, deadline), deadline)
        self.timings["refinement"] += time.perf_counter() - t1
        return got

    def still_supported(self, keep: list, start: int) -> bool:
        """Whether every object of ``keep`` from position ``start`` on still rests on the fixed
        objects and ``keep``'s earlier ones (:meth:`bag_of`)."""
        return self.bag_of(keep, start) is not None

    def _take_outs(self, everything: list, labelled: dict[int, bool]):
        """The sets of last-placed unlabelled objects of ``everything`` that may be taken out, one
        more at a time (up to :data:`EVICT`): (them, the objects kept, the kept objects' map). A set
        whose removal would leave an object placed since floating is skipped."""
        order = [k for k in range(len(everything) - 1, -1, -1) if not labelled.get(everything[k][0].index)]
        for n in range(1, min(EVICT, len(order)) + 1):
            if time.perf_counter() > self.deadline:
                return
            out = set(order[:n])
            keep = [p for k, p in enumerate(everything) if k not in out]
            bag = self.bag_of(keep, min(out))  # checked and built in one pass
            if bag is not None:
                yield [everything[k][0] for k in sorted(out)], keep, bag

    def make_room(self, g: Geom, labelled: dict[int, bool]):
        """Take out the last-placed unlabelled objects, one more at a time (up to :data:`EVICT`),
        until ``g`` fits; returns (its pose, the objects taken out) or (None, [])."""
        everything = list(self.placed)
        for out, keep, bag in self._take_outs(everything, labelled):
            self.rebuild(keep, bag)
            got, _ = self.place(g, drop=False)
            if got is not None:
                return got, out
        self.rebuild(everything)
        return None, []

    def swap_in(self, g: Geom, labelled: dict[int, bool]) -> bool:
        """Room for ``g`` by taking the last-placed unlabelled objects out (one more at a time, up
        to :data:`EVICT`) and putting them back after it, as a person repacks the top of a bag:
        kept only if every one of them goes back in (True: ``g`` and they are placed); otherwise
        the bag is as it was."""
        everything = list(self.placed)
        for out, keep, bag in self._take_outs(everything, labelled):
            self.rebuild(keep, bag)
            got, _ = self.place(g, drop=False)
            if got is None:
                continue
            self.commit(g, *got)
            for e in out:
                back, _ = self.place(e, drop=False)
                if back is None:
                    break
                self.commit(e, *back)
            else:
                return True
        self.rebuild(everything)
        return False


#: an unlabelled object that finds no room is swapped in (:meth:`_Packing.swap_in`) until this
#: many swaps of a packing have failed; after that the bag is taken to be full
SWAP_FAILURES = 3


#: a request that does not fit is packed up to this many times, each with fresh draws of the order's jitter
#: and the starting corner (soft goods pressed after the first, slabs first in every second, last in the third
#: of every four: :func:`.packings.slabs_of`); kept: the most labelled objects placed, then the furthest before a left-out
ATTEMPTS = 4
#: with the default number of packings (the scene's ``packing.packings`` not set), a bag whose packings so far
#: all left something out below this hull fill is packed again with fresh draws, up to :data:`MORE_ATTEMPTS`
#: packings in all (a count, not a time: the same scene and seed give the same bag on any machine)
LOW_FILL = 0.6
MORE_ATTEMPTS = 12
#: where the first packing left labelled objects out, every second further packing takes them before
#: its order's hull volume reaches this share of the first packing's fill at its first left-out
LABELLED_EARLY = 0.5


def pack_physics(
    scene: Scene, rng: np.random.Generator, time_budget: float = TIME_BUDGET, pitch: float = PITCH,
    packings: int | None = None, swaps: int | None = None,
) -> tuple[Scene, PackReport]:
    """Dense placement, then a pybullet drop with PSO + Nelder-Mead for what it cannot place; a
    labelled object that finds no room has some unlabelled ones taken out for it (see module notes).

    Which objects end up left out of a request that does not fit depends much on the order's
    jitter and the starting corner: the fill at the first left-out of one bag ranged over
    0.53-0.64 with four draws. So when the first packing leaves anything out (for any reason but
    the time budget), the bag is packed again with fresh draws and its soft goods pressed (objects
    with ``press``: a bag that does not close is closed on its clothes), its slabs laid first in
    every second packing and last in the third of every four (:func:`.packings.slabs_of`,
    :func:`.dense.packing_order`), up to ``packings`` packings (the scene's ``packing.packings``)
    while at least twice the first one's time (to its first left-out) is left. With ``packings``
    None (the default) that is :data:`ATTEMPTS` packings, and more, up to :data:`MORE_ATTEMPTS`,
    while every packing so far left something out below :data:`LOW_FILL` of hull fill: in 32
    random 30-object catalog requests into a 400 x 280 x 170 mm bag (two bags each) this raised
    the fill at the first left-out (mean of requests) from 0.566 to 0.583 and took the bags under
    0.55 from 14 of 35 to 11, at 1.80 s per 30 objects asked against 1.46 (median of requests,
    the same run); the built-in overfull scenes, whose packings mostly reach 0.6, barely change
    (docs/performance.md). The packing kept placed the most labelled objects, then has the highest
    fill at its first left-out, then the highest final fill. Each packing is first taken to its
    first left-out only; then the one that leads is finished, and another only while it could
    still beat the finished ones (its labelled objects placed or still to come, then its fill at
    the first left-out): the rest of a packing (filling the last holes, swaps, left-outs) is half
    its time. A request that fits is packed once, exactly as before, and nothing in it is pressed.
    When labelled objects were still to come at the first packing's first left-out, that packing
    is taken on until it has tried them (they go next); if it left any out, every second further
    packing (those that lay the slabs first) takes the labelled objects before its order's hull
    volume reaches :data:`LABELLED_EARLY` of the first packing's fill at its first left-out (the
    bag began to fill up there), not 60 % of the bag. The others keep the usual order, which often
    places them all in another draw, and more densely: taking them early in every further packing
    lost 0.004 of the mean fill at the first left-out in the 30 `overfull` bags and left one bag at
    0.545 (docs/performance.md).
    ``swaps``: failed swaps a packing allows (default :data:`SWAP_FAILURES`; the scene's
    ``packing.swaps``; 0: none)."""
    _, deadline, timings, interior, names, todo, fixed, left, bag = setup(scene, time_budget, pitch, why_not_dense(pitch))
    timings["search"] = 0.0
    soft = _Soft(scene, todo, names)
    labelled = {g.index: scene.objects[g.index].label is not None for g in todo}
    volume = float(np.prod(interior))
    fixed_fill = sum(hull_volume(g) for g, _, _ in fixed)
    paused: dict[int, tuple] = {}  # packing: (its generator, what it can still reach)
    done: dict[int, tuple] = {}  # packing: its result
    first_took = 0.0
    labelled_by, first_reach = LABELLED_BY, None
    for attempt in range(MORE_ATTEMPTS if packings is None else max(1, int(packings))):
        now = time.perf_counter()
        if attempt and (any(d[2] is None for d in done.values()) or first_reach[2]
                        or deadline - now < 2.0 * first_took):
            # a packing left nothing out, or the first left out only for the time, or no time for
            # another
            break
        if packings is None and attempt >= ATTEMPTS and best_fill(paused, done) >= LOW_FILL:
            break  # a good enough packing
        run = _attempt(soft.todo(attempt), fixed, labelled, dict(left), bag if not attempt else Bag(interior, pitch),
                       interior, pitch, timings, deadline, rng, volume, fixed_fill,
                       SWAP_FAILURES if swaps is None else int(swaps), slabs=slabs_of(attempt),
                       labelled_by=labelled_by if slabs_of(attempt) == "first" else LABELLED_BY)
        advance(run, attempt, paused, done)
        if attempt == 0:
            first_took = time.perf_counter() - now
            first_reach = paused[0][1] if 0 in paused else None
            if first_reach is not None and first_reach[3]:
                # labelled objects were still to come when it first left one out: taken on until
                # it has tried them (they go next), it shows whether they all went in; where one
                # did not, every second further packing takes them before its order reaches
                # LABELLED_EARLY of its fill then
                lost = settle_labelled(paused, done, labelled)
                if lost:
                    labelled_by = min(LABELLED_BY, LABELLED_EARLY * first_reach[1])
    tried = len(paused) + len(done)
    best, kept = finish_best(paused, done, labelled)
    poses, left, fill_first, fill_final, first = best
    report = PackReport(method="physics", hull_fill=fill_final, hull_fill_at_first_left_out=fill_first,
                        first_left_out=None if first is None else names[first])
    if tried > 1:
        report.note = (f"tried {tried} packings with fresh draws of the order's jitter and the starting corner"
                       f"{soft.tried_note()}, slabs laid first in every second one and last in the third of "
                       f"every four (each taken as far as its first left-out, and finished only if it could "
                       f"still be the best); "
                       f"kept packing {kept + 1}: the most labelled objects placed, then the furthest before "
                       f"leaving anything out{soft.kept_note(kept, poses)}")
    report.timings = timings
    return finish(soft.scene(kept, poses), names, poses, left, report)


class _Soft:
    """The soft goods of a request (objects with ``press``, :mod:`.press`) and their pressed forms:
    the first packing takes them as they are, the further ones pressed to their ``press`` (a bag
    that does not fit is closed on its clothes)."""

    def __init__(self, scene: Scene, todo: list[Geom], names: list[str]):
        self.source, self.plain, self.names = scene, todo, names
        self.soft = [g.index for g in todo if (scene.objects[g.index].press or 1.0) < 1.0]
        self._pressed: tuple[list[Geom], dict, dict] | None = None

    def pressed(self) -> tuple[list[Geom], dict, dict]:
        """(the objects to place, soft goods pressed; the pressed objects; their materials), by index."""
        if self._pressed is None:
            from xraybag.engine.packing.place import object_geom
            from xraybag.engine.packing.press import press_object, scene_library

            library = scene_library(self.source)
            objs, mats = {}, {}
            for k in self.soft:
                objs[k], mats[k] = press_object(self.source.objects[k], float(self.source.objects[k].press), library)
            geoms = {k: object_geom(obj, k, self.names[k]) for k, obj in objs.items()}
            self._pressed = ([geoms.get(g.index, g) for g in self.plain], objs, mats)
        return self._pressed

    def todo(self, attempt: int) -> list[Geom]:
        return self.pressed()[0] if attempt and self.soft else self.plain

    def tried_note(self) -> str:
        return ", soft goods pressed in the further ones" if self.soft else ""

    def kept_note(self, kept: int, poses: dict) -> str:
        n = sum(1 for k in self.soft if k in poses)
        return f"; its {n} soft object{'s' if n > 1 else ''} pressed to their 'press'" if kept and n else ""

    def scene(self, kept: int, poses: dict) -> Scene:
        """The scene the kept packing placed: its soft goods pressed if it pressed them, with their
        materials."""
        if not kept or not self.soft:
            return self.source
        _, objs, mats = self.pressed()
        objects = [objs[k] if k in objs and k in poses else o for k, o in enumerate(self.source.objects)]
        materials = dict(self.source.materials)
        for k in objs:
            if k in poses:
                materials.update(mats[k])
        return self.source.model_copy(update={"objects": objects, "materials": materials})


def _labelled_next(todo: list[Geom], labelled: dict[int, bool]) -> list[Geom]:
    """Room is running out: the labelled objects still to come go next (each part in its order)."""
    return [g for g in todo if labelled[g.index]] + [g for g in todo if not labelled[g.index]]


def _attempt(todo, fixed, labelled, left, bag, interior, pitch, timings, deadline, rng, volume,
             fixed_fill, swaps: int = SWAP_FAILURES, slabs: str | None = None, labelled_by: float = LABELLED_BY):
    """One packing, as a generator: when it first leaves an object out it yields (labelled objects
    placed or still to come, fill then, whether it was for the time budget, labelled objects still
    to come), packs those labelled objects next and then yields how many labelled objects it left
    out, and at its end returns (poses, left out with reasons, fill at the first left-out or None,
    final fill, the first left-out object's index or None). Unlabelled objects that find no room
    are swapped in until ``swaps`` swaps have failed. The order: :func:`.dense.packing_order`
    (labelled objects before the order passes ``labelled_by`` of the bag; slabs first or last:
    ``slabs``)."""
    todo, vols = packing_order(todo, rng, interior, labelled, slabs, labelled_by)
    corner = (float(rng.choice([-1.0, 1.0])), float(rng.choice([-1.0, 1.0])))
    state = _Packing(bag, fixed, interior, pitch, timings, deadline, rng, corner)
    fill_first, first, swaps_failed = None, None, 0

    def fill() -> float:
        return (fixed_fill + sum(vols[g.index] for g, *_ in state.placed)) / volume

    def reach(reason: str) -> tuple[int, float, bool, int]:
        out = sum(1 for k in left if labelled.get(k))
        to_come = sum(1 for t in todo if labelled[t.index])
        return sum(labelled.values()) - out, fill_first, reason == TIME_BUDGET_REASON, to_come

    todo, settled = list(todo), False
    try:
        while todo:
            if fill_first is not None and not settled and not labelled[todo[0].index]:
                # every labelled object has been tried since the first left-out (they went next)
                settled = True
                yield sum(1 for k in left if labelled.get(k))
            g = todo.pop(0)
            got, reason = state.place(g)
            evicted: list[Geom] = []
            if got is None and labelled[g.index] and reason != TIME_BUDGET_REASON:
                got, evicted = state.make_room(g, labelled)
            elif got is None and reason != TIME_BUDGET_REASON and swaps_failed < swaps:
                if state.swap_in(g, labelled):
                    continue
                swaps_failed += 1
            if got is None:
                left[g.index] = reason
                if fill_first is None:
                    fill_first, first = fill(), g.index
                    todo = _labelled_next(todo, labelled)
                    yield reach(reason)
                continue
            state.commit(g, *got)
            for e in evicted:  # back in wherever they still fit
                got_e, reason_e = state.place(e)
                if got_e is None:
                    left[e.index] = reason_e
                    if fill_first is None:
                        fill_first, first = fill(), e.index
                        todo = _labelled_next(todo, labelled)
                        yield reach(reason_e)
                else:
                    state.commit(e, *got_e)
    finally:
        if state.world is not None:
            state.world.close()
    poses = {g.index: pose_of(rot, pos) for g, rot, pos, _ in state.placed}
    return poses, left, fill_first, fill(), first
