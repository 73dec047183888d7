"""The CT forward model: exact path lengths on the meshes for every ray of every view, then
spectra, detector response and noise per energy channel.

Geometry first, once (DESIGN.md, "one geometric pass"): for every ray the path length through each
material, computed on the packed scene's meshes with the same watertight signed-depth tracer as
the 2D scanners (:func:`xraybag.engine.xray.trace.ray_hit`) — no voxels, so no voxel aliasing in the
sinograms. The spectral step is then a dense product per ray, done by
:func:`xraybag.engine.xray.detect.detect`.

The CT tracer works column by column. The rays of one detector column all lie in one plane
through the source that contains the rotation axis direction (for a flat panel and for a
cylindrical arc alike), so per triangle the columns it can touch come from its vertices' fan angles,
and per column the rows it can touch from the triangle's section by that plane, mapped exactly to
the row coordinate. Each candidate ray is then tested exactly. A helical view's rays fill a thin
slab around the source's z (16 rows: about +-17 mm), so only the faces whose z range meets that
slab are visited, and only their vertices are moved to the view's frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np

from xraybag.engine.ct.geometry import CTGeometry
from xraybag.engine.xray.trace import ray_hit, sheared_hit

_EPS = 1e-6


@numba.njit(cache=True, nogil=True)
def _shear_one(d0, d1, d2, k, sh):
    """Permutation and shear of the watertight test for one unit direction (as shear_setup)."""
    a0, a1, a2 = abs(d0), abs(d1), abs(d2)
    kz = 0
    if a1 > a0 and a1 >= a2:
        kz = 1
    elif a2 > a0 and a2 > a1:
        kz = 2
    kx = (kz + 1) % 3
    ky = (kx + 1) % 3
    d = (d0, d1, d2)
    dz = d[kz]
    if dz < 0:
        kx, ky = ky, kx
    k[0] = kx
    k[1] = ky
    k[2] = kz
    sh[0] = d[kx] / dz
    sh[1] = d[ky] / dz
    sh[2] = 1.0 / dz


@numba.njit(cache=True, nogil=True, inline="always")
def _crossing(dp, dq, ap, bp, hp, aq, bq, hq, cj, sj, dj):
    """Detector height (mm, before scaling to rows) where edge p -> q meets a column plane: the
    vertex p itself when it lies on the plane, the strict crossing otherwise; NaN if none."""
    if dp == 0.0:
        pa, pb, ph = ap, bp, hp
    elif dq == 0.0 or (dp > 0.0) == (dq > 0.0):
        return np.nan  # no strict crossing (an on-plane q is kept as its own vertex)
    else:
        t = dp / (dp - dq)
        pa = ap + t * (aq - ap)
        pb = bp + t * (bq - bp)
        ph = hp + t * (hq - hp)
    depth = cj * pa + sj * pb
    if depth <= 0.0:
        return np.nan
    return ph * dj / depth


@numba.njit(cache=True, nogil=True)
def column_constants(u, sdd, curved):
    """Per detector column ``j``: ``cos`` and ``sin`` of its fan angle, and the distance from the
    source to the detector along its horizontal direction (the same for every view)."""
    cols = u.shape[0]
    cg = np.empty(cols)
    sg = np.empty(cols)
    dj = np.empty(cols)
    for j in range(cols):
        g = u[j] / sdd if curved else math.atan2(u[j], sdd)
        cg[j] = math.cos(g)
        sg[j] = math.sin(g)
        dj[j] = sdd if curved else sdd / cg[j]
    return cg, sg, dj


@numba.njit(parallel=True, cache=True)
def _trace_views(vertices, faces, slots, zlo, zhi, order, szlo, short_h, tall, reach, src, cvec, evec, cg, sg, dj, v,
                 sdd, curved, col_pitch, row_pitch, col_offset, n_slots, scratch, out):
    """Path lengths of views ``src.shape[0]`` into ``out`` (views, rows, cols, n_slots) float32;
    ``cg, sg, dj`` from :func:`column_constants`.

    Only the faces whose z range ``[zlo, zhi]`` meets ``z_source -+ reach`` are visited (and only
    their vertices are moved to the view frame): every point a ray of the view can reach lies in
    that slab (see :func:`trace_views`), so the others cannot be hit. They are found from
    ``order`` (the faces no taller than ``short_h``, by ``zlo``; ``szlo`` their ``zlo``), where a
    face that meets the slab starts at most ``short_h`` below it, and ``tall`` (the others), and
    visited in their own order, so that each ray's sum is added in the same order however they
    are found. ``scratch`` (:func:`_scratch`) holds each thread's working arrays for the whole
    chunk, so that a view does not allocate them."""
    nviews = src.shape[0]
    nf = faces.shape[0]
    rows = v.shape[0]
    cols = cg.shape[0]
    ccol = (cols - 1) / 2.0 - col_offset
    crow = (rows - 1) / 2.0
    near_all, need_all, frame_all, kk_all, sh_all, acc_all = scratch
    for k in numba.prange(nviews):
        t = numba.get_thread_id()
        near, need, kk, sh, acc = near_all[t], need_all[t], kk_all[t], sh_all[t], acc_all[t]
        va, vb, vh, vc = frame_all[t, 0], frame_all[t, 1], frame_all[t, 2], frame_all[t, 3]
        sx, sy, sz = src[k, 0], src[k, 1], src[k, 2]
        o = (sx, sy, sz)
        c0, c1 = cvec[k, 0], cvec[k, 1]
        e0, e1 = evec[k, 0], evec[k, 1]
        # per ray: permutation and shear of the watertight test; a column whose rays share one
        # permutation (all but those at 45 degrees) shares the vertices' differences to the source
        same = np.ones(cols, dtype=np.bool_)
        for j in range(cols):
            h0 = cg[j] * c0 + sg[j] * e0
            h1 = cg[j] * c1 + sg[j] * e1
            for i in range(rows):
                d0 = dj[j] * h0
                d1 = dj[j] * h1
                d2 = v[i]
                n = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
                _shear_one(d0 / n, d1 / n, d2 / n, kk[i, j], sh[i, j])
                if kk[i, j, 0] != kk[0, j, 0] or kk[i, j, 1] != kk[0, j, 1] or kk[i, j, 2] != kk[0, j, 2]:
                    same[j] = False
        # the faces the view's rays can reach, and their vertices in the view frame: depth a
        # (along c), lateral b (along e_u), height h
        z_lo = sz - reach
        z_hi = sz + reach
        near[:] = False
        need[:] = False
        s0 = np.searchsorted(szlo, z_lo - short_h)
        nw = np.searchsorted(szlo, z_hi, side="right") - s0
        for q in range(nw + tall.shape[0]):
            f = order[s0 + q] if q < nw else tall[q - nw]
            if zhi[f] < z_lo or zlo[f] > z_hi:
                continue
            near[f] = True
            for e in range(3):
                p = faces[f, e]
                if need[p]:
                    continue
                need[p] = True
                x = vertices[p, 0] - sx
                y = vertices[p, 1] - sy
                va[p] = x * c0 + y * c1
                vb[p] = x * e0 + y * e1
                vh[p] = vertices[p, 2] - sz
                if curved:
                    vc[p] = math.atan2(vb[p], va[p]) * sdd / col_pitch + ccol
                else:
                    vc[p] = vb[p] / va[p] * sdd / col_pitch + ccol
        acc[:] = 0.0
        for f in range(nf):
            if not near[f]:
                continue
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            lo = min(vc[a], vc[b], vc[c])
            hi = max(vc[a], vc[b], vc[c])
            j0 = max(int(math.ceil(lo - _EPS)), 0)
            j1 = min(int(math.floor(hi + _EPS)), cols - 1)
            if j0 > j1:
                continue
            slot = slots[f]
            a0, b0, h0 = va[a], vb[a], vh[a]
            a1, b1, h1 = va[b], vb[b], vh[b]
            a2, b2, h2 = va[c], vb[c], vh[c]
            t0 = 1e-9 * (abs(a0) + abs(b0) + 1.0)
            t1 = 1e-9 * (abs(a1) + abs(b1) + 1.0)
            t2 = 1e-9 * (abs(a2) + abs(b2) + 1.0)
            for j in range(j0, j1 + 1):
                # the plane of column j: normal n = -sin g c + cos g e_u through the source;
                # signed distances of the vertices to it (|d| <= tol counts as on the plane)
                cj, sj, dj_ = cg[j], sg[j], dj[j]
                d0 = -sj * a0 + cj * b0
                d1 = -sj * a1 + cj * b1
                d2 = -sj * a2 + cj * b2
                if abs(d0) <= t0:
                    d0 = 0.0
                if abs(d1) <= t1:
                    d1 = 0.0
                if abs(d2) <= t2:
                    d2 = 0.0
                rlo = np.inf
                rhi = -np.inf
                r = _crossing(d0, d1, a0, b0, h0, a1, b1, h1, cj, sj, dj_)
                if r == r:
                    rlo = min(rlo, r)
                    rhi = max(rhi, r)
                r = _crossing(d1, d2, a1, b1, h1, a2, b2, h2, cj, sj, dj_)
                if r == r:
                    rlo = min(rlo, r)
                    rhi = max(rhi, r)
                r = _crossing(d2, d0, a2, b2, h2, a0, b0, h0, cj, sj, dj_)
                if r == r:
                    rlo = min(rlo, r)
                    rhi = max(rhi, r)
                rlo = rlo / row_pitch + crow
                rhi = rhi / row_pitch + crow
                if rlo > rhi:
                    continue
                i0 = max(int(math.ceil(rlo - _EPS)), 0)
                i1 = min(int(math.floor(rhi + _EPS)), rows - 1)
                if not same[j]:
                    for i in range(i0, i1 + 1):
                        hit, st = ray_hit(vertices, a, b, c, sx, sy, sz, kk[i, j], sh[i, j])
                        if hit:
                            acc[i, j, slot] += st
                    continue
                # ray_hit's differences, once for the column's rows: the same numbers
                kx, ky, kz = kk[0, j, 0], kk[0, j, 1], kk[0, j, 2]
                ox, oy, oz = o[kx], o[ky], o[kz]
                ax, ay, az = vertices[a, kx] - ox, vertices[a, ky] - oy, vertices[a, kz] - oz
                bx, by, bz = vertices[b, kx] - ox, vertices[b, ky] - oy, vertices[b, kz] - oz
                qx, qy, qz = vertices[c, kx] - ox, vertices[c, ky] - oy, vertices[c, kz] - oz
                for i in range(i0, i1 + 1):
                    hit, st = sheared_hit(ax, ay, az, bx, by, bz, qx, qy, qz, sh[i, j, 0], sh[i, j, 1], sh[i, j, 2])
                    if hit:
                        acc[i, j, slot] += st
        # every value is stored, zeros included: a conditional store compiles to a masked vector
        # store, which costs a microcode assist each time it meets a page not yet written (the
        # output's untouched zero pages: 5 ms a view where no ray hits anything)
        for i in range(rows):
            for j in range(cols):
                for m in range(n_slots):
                    x = acc[i, j, m]
                    out[k, i, j, m] = x if x > 1e-9 else 0.0


def _scratch(nf: int, nv: int, rows: int, cols: int, n_slots: int) -> tuple:
    """Working arrays of :func:`_trace_views`, one of each per thread of numba's pool: which faces
    and vertices a view reaches, the vertices in its frame, the rays' permutations and shears,
    and its sums."""
    t = numba.get_num_threads()
    return (np.zeros((t, nf), dtype=np.bool_), np.zeros((t, nv), dtype=np.bool_), np.empty((t, 4, nv)),
            np.empty((t, rows, cols, 3), dtype=np.int64), np.empty((t, rows, cols, 3)),
            np.empty((t, rows, cols, n_slots)))


@dataclass
class Mesh:
    """Every solid of a scan as one mesh, with a material slot per face and each face's z range:
    made once per scan (:func:`mesh_of`) and shared by all its chunks of views. ``device`` holds
    copies made for a GPU (:mod:`.forward_cuda`), so they are sent once too."""

    materials: list
    vertices: np.ndarray  # (nv, 3) float64
    faces: np.ndarray  # (nf, 3) int64
    slots: np.ndarray  # (nf,) int64
    zlo: np.ndarray
    zhi: np.ndarray
    radius: float  # the farthest vertex's distance from the rotation axis
    device: dict = field(default_factory=dict)
    windows: dict = field(default_factory=dict)

    def window(self, short_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(order, szlo, tall)`` for :func:`_trace_views`: the faces no taller than ``short_h``
        sorted by ``zlo`` (stable), their ``zlo``, and the taller faces; made once per height."""
        if short_h not in self.windows:
            short = (self.zhi - self.zlo) <= short_h
            idx = np.flatnonzero(short)
            order = np.ascontiguousarray(idx[np.argsort(self.zlo[idx], kind="stable")], dtype=np.int64)
            self.windows[short_h] = (order, np.ascontiguousarray(self.zlo[order]),
                                     np.flatnonzero(~short).astype(np.int64))
        return self.windows[short_h]


def mesh_of(solids, materials: list[str] | None = None) -> Mesh | None:
    """The :class:`Mesh` of ``solids`` (None when there is none); ``materials`` fixes the slots
    (default: the solids' materials, sorted)."""
    if materials is None:
        materials = sorted({s.material for s in solids})
    if not solids:
        return None
    mindex = {m: i for i, m in enumerate(materials)}
    vs, fs, sl = [], [], []
    offset = 0
    for s in solids:
        vs.append(np.asarray(s.vertices, dtype=np.float64))
        fs.append(np.asarray(s.faces, dtype=np.int64) + offset)
        sl.append(np.full(len(s.faces), mindex[s.material], dtype=np.int64))
        offset += len(s.vertices)
    vertices = np.ascontiguousarray(np.concatenate(vs))
    faces = np.ascontiguousarray(np.concatenate(fs))
    fz = vertices[faces, 2]
    radius = float(np.sqrt(vertices[:, 0] ** 2 + vertices[:, 1] ** 2).max())
    return Mesh(list(materials), vertices, faces, np.concatenate(sl), np.ascontiguousarray(fz.min(axis=1)),
                np.ascontiguousarray(fz.max(axis=1)), radius)


class Prepared(NamedTuple):
    """What both CT tracers (this CPU one and :mod:`.forward_cuda`) take: the scan's mesh, the
    views' geometry, source positions and frames, and the culling slab's half-height ``reach``."""

    mesh: Mesh
    geom: CTGeometry
    reach: float
    src: np.ndarray  # (views, 3)
    cvec: np.ndarray  # (views, 3): from the source to the detector's centre
    evec: np.ndarray  # (views, 3): along the detector's columns


def prepare(solids, geom: CTGeometry, views=None, materials: list[str] | None = None,
            cull: bool = True, mesh: Mesh | None = None) -> Prepared | tuple:
    """The tracers' inputs (:class:`Prepared`), or ``(materials, zeros)`` where nothing is to be
    traced (no solid or no view). See :func:`trace_views` for the arguments."""
    if mesh is None:
        mesh = mesh_of(solids, materials)
    if materials is None:
        materials = mesh.materials if mesh is not None else []
    sub = geom if views is None else geom.subset(views)
    if mesh is None or sub.views == 0:
        return materials, np.zeros((sub.views, sub.rows, sub.cols, len(materials)), dtype=np.float32)
    # a point that ray (i, j) reaches lies at height |h| = |v_i| depth / dj_j above the source,
    # with dj_j >= sdd and its depth along the column at most its horizontal distance from the
    # source, itself at most sid + the farthest vertex's distance from the axis (the mesh lies in
    # the convex hull of its vertices): the slab z_source -+ reach holds every hit (1 mm margin)
    vmax = float(np.abs(sub.v()).max())
    reach = vmax * (float(sub.sid) + mesh.radius) / float(sub.sdd) + 1.0 if cull else np.inf
    b = np.asarray(sub.angles, dtype=np.float64)
    src = np.stack([sub.sid * np.cos(b), sub.sid * np.sin(b), np.asarray(sub.z, dtype=np.float64)], axis=1)
    cvec = np.stack([-np.cos(b), -np.sin(b), np.zeros_like(b)], axis=1)
    evec = np.stack([-np.sin(b), np.cos(b), np.zeros_like(b)], axis=1)
    return Prepared(mesh, sub, reach, src, cvec, evec)


def trace_views(solids, geom: CTGeometry, views=None, materials: list[str] | None = None,
                cull: bool = True, mesh: Mesh | None = None):
    """Path lengths (mm) through each material for the rays of ``views`` (default: all).

    ``solids``: closed meshes in the CT frame (see :func:`xraybag.engine.ct.geometry.scene_to_ct`).
    Returns ``(materials, L)`` with ``L`` float32 of shape (views, rows, cols, M). ``cull=False``
    visits every face in every view (the same path lengths, slower: for tests). ``mesh``: the
    solids' :func:`mesh_of`, made once for a scan traced in chunks of views.
    """
    p = prepare(solids, geom, views, materials, cull, mesh)
    if not isinstance(p, Prepared):
        return p
    g, m = p.geom, p.mesh
    n_slots = max(len(m.materials), 1)
    out = np.zeros((g.views, g.rows, g.cols, n_slots), dtype=np.float32)
    cg, sg, dj = column_constants(g.u(), float(g.sdd), bool(g.curved))
    order, szlo, tall = m.window(2.0 * p.reach)
    # views handed to the threads one at a time as they finish (numba's default splits the chunk
    # in equal halves up front: a thread with the costlier views, or one the system preempts,
    # kept the other waiting); each view stands alone, so the same path lengths
    with numba.parallel_chunksize(1):
        _trace_views(m.vertices, m.faces, m.slots, m.zlo, m.zhi, order, szlo, 2.0 * p.reach, tall, p.reach,
                     p.src, p.cvec, p.evec, cg, sg, dj, g.v(), float(g.sdd), bool(g.curved), float(g.col_pitch),
                     float(g.row_pitch), float(g.col_offset), len(m.materials),
                     _scratch(len(m.faces), len(m.vertices), g.rows, g.cols, n_slots), out)
    return m.materials, out
