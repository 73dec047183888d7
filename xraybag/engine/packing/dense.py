"""Dense placement: choosing where an object goes the way a person packs a bag.

A person puts the large things in first, lays flat things flat and long things along the bag, and
puts each item where it sits lowest and leaves the least empty space under it, starting from one
corner. This module turns that into candidates for the exact checks of :mod:`.place`:

* **orientations** (:func:`resting_rotations`): the object's minimum-volume oriented bounding box
  (:mod:`.obb`, over trimesh's candidate directions) gives its long, middle and short axes; the
  candidates align them with the bag's axes, short axis vertical first (flat), long axis along
  the bag's length first, each also upside down, then the object on its sides and ends. The
  sides and ends are searched only for places that score below the best flat one (where nothing
  fits flat, everywhere): a book stood on its end in a gap beats a book laid on top of a full bag.
  A random yaw about the vertical is never used: it wastes the corners. An object that fits the
  interior only turned across the floor's diagonal (an umbrella longer than the bag) gets that
  turn, the smallest that fits (:func:`diagonal_rotations`). An object that stands
  on the same columns upside down (a box) is searched once for the pair (:func:`_same_columns`).
* **positions** (:func:`search`): for one orientation the object's column footprint is computed
  once (and kept with the object, with its rotations, for its later searches: a request that does
  not fit searches each object again and again) and moved over the whole occupancy map in whole
  columns; at every position the resting
  height is the lowest lift that clears the contents (the max over the footprint's columns of
  contents minus the object's underside, a compiled loop), and the score is the height of the
  object's top, plus half the mean empty gap left under it, plus a small pull towards the bag's
  starting corner (drawn per bag) so items pack against the walls and each other. Large
  footprints are scanned at a coarser stride first, and around the best cells every column is
  tried. Bounds spare work without changing a result: moves whose lift over a few of the
  footprint's cells already lifts the top above the lid, or (on the sides) whose top there plus
  the pull already reaches the best flat score, are not computed (they score inf anyway), and
  around a cell only the moves whose lower bound on the score can still beat the best one found
  are computed.
* **order** (:func:`packing_order`): largest hull volume first; labelled objects no later than
  the point where the order's hull volume passes 60 % of the bag's interior (what must go in is packed
  before the extras); on request, slabs first (a laptop, a tray, a large book: laid on the floor
  first they leave nothing empty under them, where after the bulky items they would bridge the
  gaps between them) or last (the bulky items fill the floor between them, the flat ones are
  laid on top). (A labelled object that finds no room later has unlabelled ones taken out
  for it: :mod:`.physics`.)

The best few (position, orientation) pairs go to :func:`.place.try_candidates`, which settles each
on the map at full resolution and keeps the first that passes the exact mesh checks.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from xraybag.engine.packing.base import LARGER_THAN_BAG, fits_somehow
from xraybag.engine.packing.obb import oriented_box
from xraybag.engine.packing.place import Bag, Geom

#: score per mm of distance from the starting corner (mm of height): 100 mm away costs 20 mm
CORNER_PULL = 0.2
#: score per mm of mean empty gap under the object
GAP_WEIGHT = 0.5
#: most footprint-cell x position evaluations per orientation before the scan strides
SCAN_BUDGET = 3e6
#: footprint cells (spread evenly) whose lift bounds a move's lift from below
BOUND_CELLS = 32
#: a slab's shortest side is under this share of its middle one (:func:`is_slab`)
SLAB_RATIO = 0.25
#: and laid flat it covers at least this share of the bag's floor
SLAB_FLOOR = 0.15
#: turns (degrees) tried for laying an object across the floor's diagonal (:func:`diagonal_rotations`)
DIAGONAL_STEP = 0.5
#: map columns to spare along x and y when laid across the diagonal: a footprint at most n - 1
#: columns wide covers at most n wherever its edge falls, so it fits a map n columns wide
DIAGONAL_MARGIN = 1
#: labelled objects are packed before the order's hull volume passes this share of the interior
LABELLED_BY = 0.6


def _axes(g: Geom) -> tuple[np.ndarray, np.ndarray]:
    """Rotation taking the object frame to its oriented bounding box's frame, and the box's extents
    (long, middle, short); made once per object."""
    if "axes" not in g.cache:
        g.cache["axes"] = _box_axes(g)
    return g.cache["axes"]


def _box_axes(g: Geom) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(g.hull, dtype=float)
    try:
        r, ext = oriented_box(pts, angle_digits=1)
    except Exception:  # noqa: BLE001 - degenerate (flat) point sets: the object's own axes
        r, ext = np.eye(3), pts.max(axis=0) - pts.min(axis=0)
    order = np.argsort(-np.asarray(ext))
    r = r[order]
    if np.linalg.det(r) < 0:
        r[2] = -r[2]
    return r, np.asarray(ext)[order]


def resting_rotations(g: Geom) -> list[np.ndarray]:
    """Rotations (object frame -> bag frame) in the order a person would try them: flat along the
    bag, flat across, upside down of each, then on its sides (made once per object, read-only)."""
    if "rotations" not in g.cache:
        rots = _resting_rotations(g)
        for r in rots:
            r.setflags(write=False)
        g.cache["rotations"] = rots
    return g.cache["rotations"]


def _resting_rotations(g: Geom) -> list[np.ndarray]:
    r0, _ = _axes(g)
    # rows: which bag axis each box axis (long, middle, short) goes to
    perms = [
        ((0, 1, 2), "flat, long axis along x"),
        ((1, 0, 2), "flat, long axis along y"),
        ((0, 2, 1), "on its side, long axis along x"),
        ((2, 0, 1), "on its side, long axis along y"),
        ((1, 2, 0), "standing, long axis up, middle along x"),
        ((2, 1, 0), "standing, long axis up, middle along y"),
    ]
    out = []
    for perm, _why in perms:
        p = np.zeros((3, 3))
        for box_axis, bag_axis in enumerate(perm):
            p[bag_axis, box_axis] = 1.0
        base = p @ r0
        if np.linalg.det(base) < 0:
            base[:, :] = np.diag([1.0, -1.0, 1.0]) @ base  # mirror y back: a proper rotation
        flip = np.diag([1.0, -1.0, -1.0])  # half a turn about x: upside down
        out += [base, flip @ base]
    return out


def diagonal_rotations(g: Geom, interior, margin: float) -> list[list[np.ndarray]]:
    """For each of :func:`resting_rotations`' three poses (flat, on its side, standing; each a pair
    along x and along y): the same pose turned about the vertical to lie across the bag's floor
    diagonally, when it fits the interior that way but neither along x nor along y (an umbrella
    longer than the bag, laid from corner to corner). The turn is the smallest (in steps of
    :data:`DIAGONAL_STEP` degrees) that leaves ``margin`` mm to spare along x and y, one way and
    the other (the two diagonals), each also upside down; [] for a pose that needs no turn or
    that no turn fits. Made once per object and interior (read-only)."""
    interior = np.asarray(interior, dtype=float)
    key = ("diagonal", interior.tobytes(), float(margin))
    if key not in g.cache:
        rots = resting_rotations(g)
        pts = np.asarray(g.hull, dtype=float)
        flip = np.diag([1.0, -1.0, -1.0])
        out = []
        for pose in range(3):
            along_x = rots[4 * pose]
            found: list[np.ndarray] = []
            v = pts @ along_x.T
            ext = np.ptp(v, axis=0)  # along y: the same pose a quarter turn about the vertical
            if ext[2] <= interior[2] and not (np.all(ext[:2] <= interior[:2] + 1e-9)
                                              or np.all(ext[1::-1] <= interior[:2] + 1e-9)):
                t = np.radians(np.arange(DIAGONAL_STEP, 90.0, DIAGONAL_STEP))
                c, s = np.cos(t), np.sin(t)
                x = v[:, :1] * c - v[:, 1:2] * s  # every turn's x and y of every hull point
                y = v[:, :1] * s + v[:, 1:2] * c
                ok = np.flatnonzero((np.ptp(x, axis=0) <= interior[0] - margin)
                                    & (np.ptp(y, axis=0) <= interior[1] - margin))
                if ok.size:
                    for sign in (1.0, -1.0):
                        base = _yaw(sign * float(t[ok[0]])) @ along_x
                        found += [base, flip @ base]
            for r in found:
                r.setflags(write=False)
            out.append(found)
        g.cache[key] = out
    return g.cache[key]


def why_not_dense(pitch: float):
    """``why_not`` for :func:`.place.prepare`, by the orientations :func:`dense_candidates` tries
    (a map of ``pitch`` mm): an object fits the empty bag when one of :func:`resting_rotations`
    fits the interior, or :func:`diagonal_rotations` has a turn that does. One that fits only
    turned with less than the diagonal's margin to spare is told so, not taken for a full bag."""
    margin = DIAGONAL_MARGIN * pitch

    def why_not(g: Geom, interior) -> str | None:
        interior = np.asarray(interior, dtype=float)
        pts = np.asarray(g.hull, dtype=float)
        if any(np.all(np.ptp(pts @ r.T, axis=0) <= interior + 1e-9) for r in resting_rotations(g)[::2]):
            return None
        if any(diagonal_rotations(g, interior, margin)):
            return None
        if fits_somehow(pts, interior):
            return f"fits the bag only turned across its floor, with under {margin:g} mm to spare"
        return LARGER_THAN_BAG

    return why_not


def _yaw(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@njit(cache=True, nogil=True)
def _scan(safe, ci, cj, cb, i0, j0, di0, dj0, ni, nj, stride, z_floor, sub, hi, top_max, pull, cap,
          out_z, out_gap):  # pragma: no cover
    """For each move (di0 + a stride, dj0 + b stride): the resting lift z (max over the
    footprint's cells of contents minus underside, at least ``z_floor``) and the mean empty gap
    under the object, n z + sum(cb) - sum(contents) over n cells.

    A row of moves at a time, cell after cell, so that each move's sum and max run alongside the
    row's other moves' (a loop over the cells per move waits on each addition); each move still
    adds its cells in their order. The lift over the cells ``sub`` alone bounds each move's lift
    from below: a move whose top (z + ``hi``) is then above ``top_max`` (the lid), or whose top
    plus its corner pull ``pull[a, b]`` is then at least ``cap`` (a score no placement needs),
    cannot be used, and only the span of moves between a row's first and last usable one is
    computed; the rest get z = inf."""
    n = ci.size
    cb_sum = 0.0
    for k in range(n):
        cb_sum += cb[k]
    below = np.empty(nj)
    z = np.empty(nj)
    for a in range(ni):
        di = di0 + a * stride
        z[:] = z_floor
        for q in range(sub.size):
            k = sub[q]
            r = i0 + di + ci[k]
            c0 = j0 + dj0 + cj[k]
            ck = cb[k]
            for b in range(nj):
                v = safe[r, c0 + b * stride] - ck
                z[b] = v if v > z[b] else z[b]  # noqa: FURB136
        b0, b1 = nj, -1  # the row's span of usable moves
        for b in range(nj):
            if z[b] + hi <= top_max and z[b] + hi + pull[a, b] < cap:
                b0 = min(b0, b)
                b1 = b
        for b in range(nj):
            if b < b0 or b > b1:
                out_z[a, b] = np.inf
                out_gap[a, b] = 0.0
        if b1 < 0:
            continue
        m = b1 - b0 + 1
        z[:m] = z_floor
        below[:m] = 0.0
        for k in range(n):
            r = i0 + di + ci[k]
            c0 = j0 + dj0 + cj[k] + b0 * stride
            ck = cb[k]
            for b in range(m):
                s = safe[r, c0 + b * stride]
                below[b] += s
                v = s - ck
                z[b] = v if v > z[b] else z[b]  # noqa: FURB136 - as the per-move loop compared
        for b in range(m):
            out_z[a, b0 + b] = z[b]
            out_gap[a, b0 + b] = (n * z[b] + cb_sum - below[b]) / n


@njit(cache=True, nogil=True)
def _refine(safe, ci, cj, cb, i0, j0, a0, b0, ni, nj, z_floor, sub, runs, rowsum, score_of, best, eps,
            out_z, out_gap):  # pragma: no cover
    """:func:`_scan` with a step of one column over the moves (a0 + a, b0 + b), for finding the
    lowest score only: a move that cannot score below the best score found so far (``best`` to
    start with) gets ``out_z = inf``; every other move gets exactly :func:`_scan`'s numbers (the
    same cells in the same order).

    A move's score is ``z + hi + w gap + pull`` (``score_of``: hi, w, the top's limit, and pull per
    move). Its lift z is at least the lift over the cells ``sub`` alone, and its gap is z minus the
    mean of (contents - underside), whose sum over the footprint's runs of cells (``runs``: row,
    first and end column) comes from the map's row sums ``rowsum``. Moves are computed in the
    order of that bound, and the rest are dropped once the bound passes the best score found
    plus ``eps`` (which covers rounding), so a move that ties with the lowest score is never dropped."""
    hi, w, top_max, pull = score_of
    n = ci.size
    cb_sum = 0.0
    for k in range(n):
        cb_sum += cb[k]
    bound = np.empty(ni * nj)
    for a in range(ni):
        for b in range(nj):
            r0 = i0 + a0 + a
            c0 = j0 + b0 + b
            zl = z_floor
            for q in range(sub.size):
                k = sub[q]
                v = safe[r0 + ci[k], c0 + cj[k]] - cb[k]
                zl = v if v > zl else zl  # noqa: FURB136
            contents = 0.0
            for q in range(runs.shape[0]):
                r = r0 + runs[q, 0]
                contents += rowsum[r, c0 + runs[q, 2]] - rowsum[r, c0 + runs[q, 1]]
            bound[a * nj + b] = (1.0 + w) * zl - w * (contents - cb_sum) / n + hi + pull[a, b]
            out_z[a, b] = np.inf
            out_gap[a, b] = 0.0
    for m in np.argsort(bound):
        if bound[m] > best + eps:
            break
        a, b = m // nj, m % nj
        r0 = i0 + a0 + a
        c0 = j0 + b0 + b
        z = z_floor
        below = 0.0
        for k in range(n):
            s = safe[r0 + ci[k], c0 + cj[k]]
            below += s
            v = s - cb[k]
            if v > z:  # noqa: PLR1730 - _scan's comparison, to the bit
                z = v
        gap = (n * z + cb_sum - below) / n
        out_z[a, b] = z
        out_gap[a, b] = gap
        score = z + hi + w * gap + pull[a, b]
        if z + hi <= top_max and score < best:
            best = score


def _row_runs(ci: np.ndarray, cj: np.ndarray, safe: np.ndarray):
    """The footprint's runs of cells along a row (row, first column, end column) and the map's
    sums along rows: :func:`_refine`'s bounds on the contents under a move."""
    return _runs(ci, cj), _row_sums(safe)


def _runs(ci: np.ndarray, cj: np.ndarray) -> np.ndarray:
    """The footprint's runs of cells along a row: (row, first column, end column)."""
    starts = np.flatnonzero(np.r_[True, (ci[1:] != ci[:-1]) | (cj[1:] != cj[:-1] + 1)])
    ends = np.r_[starts[1:], ci.size]
    return np.stack([ci[starts], cj[starts], cj[ends - 1] + 1], axis=1).astype(np.int64)


def _row_sums(safe: np.ndarray) -> np.ndarray:
    """The map's running sums along rows, a zero column first."""
    rowsum = np.zeros((safe.shape[0], safe.shape[1] + 1))
    np.cumsum(safe, axis=1, out=rowsum[:, 1:])
    return rowsum


def _near(xs: np.ndarray, c: float, lo: float, hi: float, size: float) -> np.ndarray:
    """Distance of the object's near side from the bag's starting corner's wall (``c`` < 0: the
    low wall) along one axis, for object positions ``xs`` and object extents [lo, hi]."""
    return xs + lo + size / 2 if c < 0 else size / 2 - (xs + hi)


def _shape(g: Geom, rot: np.ndarray, hmap) -> dict:
    """What :func:`search` needs of the object at rotation ``rot`` on ``hmap``'s grid that does not
    depend on the contents, made once per object, rotation and grid (in ``g.cache``): the rotated
    mesh's bounds now, its columns at x = y = 0 when first asked for."""
    key = ("search", rot.tobytes(), hmap.h, hmap.x0, hmap.y0, hmap.nx, hmap.ny)
    shape = g.cache.get(key)
    if shape is None:
        v = g.vertices @ rot.T
        shape = g.cache[key] = {"lo": v.min(axis=0), "hi": v.max(axis=0)}
    return shape


def _columns_at_origin(g: Geom, rot: np.ndarray, shape: dict, hmap):
    """The object's columns at x = y = 0 (window, rows, columns and underside of its cells) and the
    cells that bound a move's lift quickly, kept in ``shape``."""
    if "columns" not in shape:
        fp = hmap.footprint(g.vertices @ rot.T, g.faces)
        (i0, i1, j0, j1), _, _, sb, _ = fp
        ci, cj = np.nonzero(np.isfinite(sb))
        cols = ((i0, i1, j0, j1), ci.astype(np.int64), cj.astype(np.int64), sb[ci, cj].astype(np.float64))
        shape["columns"] = cols
        shape["sub"] = np.unique(np.linspace(0, max(ci.size - 1, 0), BOUND_CELLS).astype(np.int64))
    return shape["columns"]


def search(bag: Bag, g: Geom, rot: np.ndarray, corner: tuple[float, float], keep: int = 4,
           cap: float = math.inf, sums: dict | None = None):
    """The best ``keep`` positions of the object at rotation ``rot`` on the occupancy map:
    [(score, x, y)], lowest score first (see module notes); [] if it fits nowhere. Only positions
    scoring below ``cap`` are returned, and moves whose top plus corner pull (bounded from below)
    already reaches ``cap`` are not computed (a score is at least that). ``sums``: a dict shared by
    the searches of one object on one map, which keeps the map's row sums made once."""
    interior = bag.interior
    sx, sy, sz = interior
    hmap = bag.map
    h = hmap.h
    shape = _shape(g, rot, hmap)
    lo, hi = shape["lo"], shape["hi"]
    if np.any(hi - lo > interior + 1e-9) or float(-lo[2]) + float(hi[2]) >= cap:
        return []  # too big, or its top even on the floor (z = -lo[2]) is at least ``cap``
    (i0, i1, j0, j1), ci, cj, cb = _columns_at_origin(g, rot, shape, hmap)
    if ci.size == 0:
        return []
    # whole-column moves that keep the mesh inside the interior and the window on the map
    di0 = max(math.ceil((-sx / 2 - lo[0]) / h - 1e-9), -i0)
    di1 = min(math.floor((sx / 2 - hi[0]) / h + 1e-9), hmap.nx - i1)
    dj0 = max(math.ceil((-sy / 2 - lo[1]) / h - 1e-9), -j0)
    dj1 = min(math.floor((sy / 2 - hi[1]) / h + 1e-9), hmap.ny - j1)
    if di1 < di0 or dj1 < dj0:
        return []
    if cap < math.inf:  # a score is at least the top on the floor plus the pull: trim the window
        reach = (cap - (float(-lo[2]) + float(hi[2]))) / CORNER_PULL + 1e-6 * (1.0 + abs(cap))
        dis, djs = np.arange(di0, di1 + 1), np.arange(dj0, dj1 + 1)
        near_x = _near(dis * h, corner[0], lo[0], hi[0], sx)
        near_y = _near(djs * h, corner[1], lo[1], hi[1], sy)
        dis, djs = dis[near_x + near_y.min() < reach], djs[near_y + near_x.min() < reach]
        if dis.size == 0 or djs.size == 0:
            return []
        di0, di1, dj0, dj1 = int(dis[0]), int(dis[-1]), int(djs[0]), int(djs[-1])
    positions = (di1 - di0 + 1) * (dj1 - dj0 + 1)
    stride = max(1, math.ceil(math.sqrt(positions * ci.size / SCAN_BUDGET)))
    args = (hmap.safe, ci, cj, cb, i0, j0)
    z_floor = float(-lo[2])
    sub = shape["sub"]  # for quick bounds

    def scores(a0, a1, b0, b1, step, best=None, bounds=None):
        """Scores of the moves di in [a0, a1], dj in [b0, b1] every ``step`` columns; with
        ``best`` and ``bounds`` (step 1: :func:`_row_runs` and the map's highest column), moves
        that cannot score below ``best`` may get inf instead."""
        ni, nj = (a1 - a0) // step + 1, (b1 - b0) // step + 1
        z, gap = np.empty((ni, nj)), np.empty((ni, nj))
        xs = (a0 + step * np.arange(ni)) * h
        ys = (b0 + step * np.arange(nj)) * h
        # distance of the object's near side from the bag's starting corner
        pull = CORNER_PULL * (_near(xs, corner[0], lo[0], hi[0], sx)[:, None]
                              + _near(ys, corner[1], lo[1], hi[1], sy)[None, :])
        if best is None:
            # the cap, raised by a margin for rounding (a gap of zero may come out a hair below zero)
            _scan(*args, a0, b0, ni, nj, step, z_floor, sub, float(hi[2]), sz + 1e-9, pull,
                  cap + 1e-6 * (1.0 + abs(cap)), z, gap)
        else:
            # bounds on the scores pick the moves that can beat ``best``; the margin covers rounding
            runs, rowsum, highest = bounds
            eps = 1e-6 * (1.0 + abs(best) + abs(hi[2]) + float(np.max(np.abs(pull))) + highest)
            _refine(*args, a0, b0, ni, nj, z_floor, sub, runs, rowsum, (float(hi[2]), GAP_WEIGHT, sz + 1e-9, pull),
                    best, eps, z, gap)
        top = z + hi[2]
        sc = top + GAP_WEIGHT * gap + pull
        return np.where((top <= sz + 1e-9) & (sc < cap), sc, np.inf), xs, ys

    score, xs, ys = scores(di0, di1, dj0, dj1, stride)
    out = []
    for f in np.argsort(score, axis=None)[: 4 * keep]:
        a, b = divmod(int(f), score.shape[1])
        if not np.isfinite(score[a, b]):
            break
        x, y = float(xs[a]), float(ys[b])
        if any(abs(x - px) < 2 * h * stride and abs(y - py) < 2 * h * stride for _, px, py in out):
            continue  # the same spot again
        out.append((float(score[a, b]), x, y))
        if len(out) >= keep:
            break
    if stride > 1:  # each kept cell of the coarse scan, searched column by column
        if sums is None:
            sums = {}
        if "rowsum" not in sums:  # the map's row sums and highest column, once per map
            sums["rowsum"], sums["highest"] = _row_sums(hmap.safe), float(hmap.safe.max())
        if "runs" not in shape:
            shape["runs"] = _runs(ci, cj)
        bounds = (shape["runs"], sums["rowsum"], sums["highest"])
        for k, (best, x, y) in enumerate(out):
            da, db = int(round(x / h)), int(round(y / h))
            s2, x2, y2 = scores(max(di0, da - stride + 1), min(di1, da + stride - 1),
                                max(dj0, db - stride + 1), min(dj1, db + stride - 1), 1, best, bounds)
            a2, b2 = np.unravel_index(int(np.argmin(s2)), s2.shape)
            if s2[a2, b2] < best:
                out[k] = (float(s2[a2, b2]), float(x2[a2]), float(y2[b2]))
    return out


def dense_candidates(bag: Bag, g: Geom, corner: tuple[float, float], deadline: float = math.inf,
                     flat_only_first: bool = True):
    """Candidates (score, rot, x, y) for :func:`.place.try_candidates`: every resting rotation's
    best positions. With ``flat_only_first`` the sides and ends are searched only for positions
    that score below the best flat one (all of them when nothing fits flat under the lid)."""
    axis = resting_rotations(g)
    diag = diagonal_rotations(g, bag.interior, DIAGONAL_MARGIN * bag.map.h)
    # each pose along the bag, then across its diagonal where only that fits: pairs stay together
    rots = axis[:4] + diag[0] + axis[4:8] + diag[1] + axis[8:] + diag[2]
    n_flat = 4 + len(diag[0])
    cands = []
    cap = math.inf
    sums: dict = {}  # the map's row sums, shared by the rotations' searches
    for k, rot in enumerate(rots):
        if time.perf_counter() > deadline:
            break
        if flat_only_first and k == n_flat and cands:
            cap = min(c[0] for c in cands)
        if k % 2 == 1 and _same_columns(g, rots[k - 1], rot, bag.map):
            continue  # upside down it stands on the same columns: the same search, the same places
        cands += [(s, rot, x, y) for s, x, y in search(bag, g, rot, corner, cap=cap, sums=sums)]
    return cands


def _same_columns(g: Geom, a: np.ndarray, b: np.ndarray, hmap) -> bool:
    """Whether the object at rotations ``a`` and ``b`` has the same bounds and the same columns
    (cells and undersides) on ``hmap``'s grid (a box, a cylinder lying down, upside down), so that
    :func:`search` would find the same places and scores for both (kept in ``g.cache``). Called
    after the search at ``a`` on the same map: when that search stopped at the object's bounds,
    before making its columns, the one at ``b`` would too, and nothing is voxelised to find out."""
    key = ("same columns", a.tobytes(), b.tobytes(), hmap.h, hmap.x0, hmap.y0, hmap.nx, hmap.ny)
    if key not in g.cache:
        sa, sb = _shape(g, a, hmap), _shape(g, b, hmap)
        if not (np.allclose(sa["lo"], sb["lo"], rtol=0.0, atol=1e-9)
                and np.allclose(sa["hi"], sb["hi"], rtol=0.0, atol=1e-9)):
            g.cache[key] = False
        elif "columns" not in sa:
            # the search at ``a`` stopped at the bounds (too big, or above the cap), and with the
            # same bounds and cap so would this one: nothing to compare yet (not kept)
            return True
        else:
            (wa, ia, ja, ca), (wb, ib, jb, cb) = _columns_at_origin(g, a, sa, hmap), _columns_at_origin(g, b, sb, hmap)
            g.cache[key] = bool(wa == wb and np.array_equal(ia, ib) and np.array_equal(ja, jb)
                                and np.allclose(ca, cb, rtol=0.0, atol=1e-9))
    return g.cache[key]


def hull_volume(g: Geom) -> float:
    """The object's convex hull volume (kept with the object: every packing orders by it)."""
    from scipy.spatial import ConvexHull

    if "hull_volume" not in g.cache:
        try:
            g.cache["hull_volume"] = float(ConvexHull(g.hull).volume)
        except Exception:  # noqa: BLE001 - flat
            g.cache["hull_volume"] = 0.0
    return g.cache["hull_volume"]


def _slab_area(g: Geom, interior) -> float:
    """The object's flat footprint (long x middle side) if it is a slab (:func:`is_slab`), else 0."""
    long, middle, short = _axes(g)[1]
    slab = short < SLAB_RATIO * middle and long * middle >= SLAB_FLOOR * float(interior[0]) * float(interior[1])
    return float(long * middle) if slab else 0.0


def is_slab(g: Geom, interior) -> bool:
    """Whether the object is a slab (a laptop, a tray, a large book): its shortest side is under
    :data:`SLAB_RATIO` of its middle one and, laid flat, it covers at least :data:`SLAB_FLOOR` of
    the bag's floor."""
    return _slab_area(g, interior) > 0.0


def packing_order(todo: list[Geom], rng: np.random.Generator, interior=None, labelled: dict[int, bool] | None = None,
                  slabs: str | None = None, labelled_by: float = LABELLED_BY) -> tuple[list[Geom], dict[int, float]]:
    """The objects in the order a person packs them, and each object's hull volume.

    Largest hull volume first (volumes within 10 % of each other may swap: a random factor in
    [0.95, 1.05]). With ``slabs`` (and the bag's ``interior``) the slabs (:func:`is_slab`) are
    packed apart from the rest: ``"first"``, before everything else, the largest footprint first
    (laid flat on the floor they leave nothing empty under them, where after the bulky items they
    would bridge the gaps between them); ``"last"``, after everything else, the largest first (the
    bulky items fill the floor between them, and the flat ones are laid on top, as the last layer of
    a bag). With ``labelled`` (index: labelled?) and ``interior``, a labelled object that would come
    after the order's hull volume passes :data:`LABELLED_BY` of the interior is moved there (the
    labelled ones in their order): what must go in is packed before the extras, while there is
    room (``labelled_by``: that share instead). A request whose hull volume stays under that share
    keeps its order."""
    if slabs not in (None, "first", "last"):
        raise ValueError(f"slabs: 'first', 'last' or None, not {slabs!r}")
    vols = {g.index: hull_volume(g) for g in todo}
    jitter = {g.index: float(rng.uniform(0.95, 1.05)) for g in todo}
    areas = {g.index: _slab_area(g, interior) for g in todo} if slabs and interior is not None else {}
    flat = {k: a for k, a in areas.items() if a > 0.0}

    def key(g: Geom):
        k = g.index
        if slabs == "last":
            return (k in flat, -vols[k] * jitter[k], k)
        return (k not in flat, -(flat[k] if k in flat else vols[k]) * jitter[k], k)

    order = sorted(todo, key=key)
    if labelled and interior is not None:
        total, cut = 0.0, len(order)
        for i, g in enumerate(order):
            total += vols[g.index]
            if total > labelled_by * float(np.prod(interior)):
                cut = i
                break
        late = order[cut:]
        order = order[:cut] + [g for g in late if labelled.get(g.index)] + [g for g in late if not labelled.get(g.index)]
    return order, vols
