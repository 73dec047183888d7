"""The geometric pass: exact path lengths through meshes for every detector ray.

For a closed, outward-oriented triangle mesh and a ray from a point outside it, the length of the
ray inside the mesh is ``sum(t_exit) - sum(t_entry)`` over the ray's hits with the mesh triangles
(the signed-depth accumulation gVirtualXray does on the GPU): no sorting, no voxels, and shells
(a bottle's wall as outer surface plus reversed inner surface) work as they are.

Rays come from a :class:`RayGeometry` (see :mod:`xraybag.engine.xray.scanners`): ray ``(i, j)`` starts
at ``origin_row[i] + origin_col[j]`` and runs along ``dir_row[i] + dir_col[j]``; ``project`` maps a
point to continuous (row, col) ray coordinates, monotone in the ray indices, such that the rays
that can hit a triangle are those whose indices lie in the bounding box of its projected vertices
(true for perspective, parallel and line-scan geometries, whose projections are linear-fractional
per axis). Each triangle is therefore tested only against the rays of its footprint.

The ray-triangle test is watertight (Woop, Benthin & Wald 2013: edge functions in a sheared ray
space computed identically for a shared edge) and breaks ties with a top-left rule, so a ray through
an edge or vertex shared by triangles facing the same way is counted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numba
import numpy as np

if TYPE_CHECKING:
    from xraybag.engine.solids.scene import Solid


@dataclass
class RayGeometry:
    """The rays of one detector view (lengths in mm)."""

    rows: int
    cols: int
    origin_row: np.ndarray  # (rows, 3)
    origin_col: np.ndarray  # (cols, 3)
    dir_row: np.ndarray  # (rows, 3)
    dir_col: np.ndarray  # (cols, 3)
    project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    pixel_mm: float  # detector pixel pitch
    distance_mm: float  # typical source-to-detector distance (inverse-square law)
    extras: dict = field(default_factory=dict)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Origins and unit directions of every ray, (rows, cols, 3) each (for tests and peers)."""
        o = self.origin_row[:, None, :] + self.origin_col[None, :, :]
        d = self.dir_row[:, None, :] + self.dir_col[None, :, :]
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        return o, d


@dataclass
class ObjectTrace:
    """Path lengths (mm) of one object over its window of the image, one plane per material."""

    index: int
    r0: int
    c0: int
    paths: np.ndarray  # (h, w, k) float32
    materials: list[int]  # indices into TraceResult.materials

    def total(self) -> np.ndarray:
        return self.paths.sum(axis=2)

    def full(self, rows: int, cols: int, weights: np.ndarray | None = None) -> np.ndarray:
        """The object's (weighted) path length as a full (rows, cols) float64 image."""
        out = np.zeros((rows, cols))
        w = np.ones(len(self.materials)) if weights is None else weights
        h, wd = self.paths.shape[:2]
        out[self.r0 : self.r0 + h, self.c0 : self.c0 + wd] = self.paths @ w
        return out


@dataclass
class TraceResult:
    materials: list[str]
    paths: np.ndarray  # (rows, cols, M) float32, mm of each material along each ray
    objects: list[ObjectTrace]
    seconds: float = 0.0


@numba.njit(cache=True, nogil=True)
def _top_left(ex: float, ey: float) -> bool:
    return ey > 0.0 or (ey == 0.0 and ex < 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def ray_hit(vertices, a, b, c, o0, o1, o2, k, sh):
    """Watertight test of the ray from ``(o0, o1, o2)`` with permutation ``k`` and shear ``sh``
    (see :func:`shear_setup`) against triangle ``(a, b, c)``: ``(hit, signed distance)``, the
    distance negative for an entry (the triangle seen from outside) and positive for an exit."""
    kx = k[0]
    ky = k[1]
    kz = k[2]
    sx = sh[0]
    sy = sh[1]
    sz = sh[2]
    o = (o0, o1, o2)
    ox = o[kx]
    oy = o[ky]
    oz = o[kz]
    az = vertices[a, kz] - oz
    bz = vertices[b, kz] - oz
    cz = vertices[c, kz] - oz
    axs = vertices[a, kx] - ox - sx * az
    ays = vertices[a, ky] - oy - sy * az
    bxs = vertices[b, kx] - ox - sx * bz
    bys = vertices[b, ky] - oy - sy * bz
    cxs = vertices[c, kx] - ox - sx * cz
    cys = vertices[c, ky] - oy - sy * cz
    u = cxs * bys - cys * bxs  # edge b -> c
    v = axs * cys - ays * cxs  # edge c -> a
    ww = bxs * ays - bys * axs  # edge a -> b
    det = u + v + ww
    if det == 0.0:
        return False, 0.0
    s = 1.0 if det > 0.0 else -1.0
    un, vn, wn = s * u, s * v, s * ww
    if un < 0.0 or vn < 0.0 or wn < 0.0:
        return False, 0.0
    if un == 0.0 and not _top_left(s * (cxs - bxs), s * (cys - bys)):
        return False, 0.0
    if vn == 0.0 and not _top_left(s * (axs - cxs), s * (ays - cys)):
        return False, 0.0
    if wn == 0.0 and not _top_left(s * (bxs - axs), s * (bys - ays)):
        return False, 0.0
    t = (u * az + v * bz + ww * cz) * sz / det
    # det < 0: the triangle is seen from inside (an exit hit) for outward meshes
    return True, -s * t


def shear_setup(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-ray constants of the watertight test (Woop et al.): for directions ``d`` (..., 3),
    the axis permutation (kx, ky, kz), int8, and the shear (sx, sy, sz), float64."""
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    kz = np.argmax(np.abs(d), axis=-1)
    kx = (kz + 1) % 3
    ky = (kx + 1) % 3
    dz = np.take_along_axis(d, kz[..., None], axis=-1)[..., 0]
    swap = dz < 0  # keep the winding
    kx, ky = np.where(swap, ky, kx), np.where(swap, kx, ky)
    dx = np.take_along_axis(d, kx[..., None], axis=-1)[..., 0]
    dy = np.take_along_axis(d, ky[..., None], axis=-1)[..., 0]
    k = np.stack([kx, ky, kz], axis=-1).astype(np.int8)
    sh = np.stack([dx / dz, dy / dz, 1.0 / dz], axis=-1)
    return k, sh


@numba.njit(cache=True, nogil=True)
def _fan_col(y, z, fan):
    """Continuous column of a point (y, z) of a line-scan fan plane.

    ``fan`` = [source y, source z, reference angle, sign, angle of column 0, ..., of column n-1]
    (angles times ``sign`` increase with the column).
    """
    a = np.arctan2(z - fan[1], y - fan[0])
    d = a - fan[2]
    d -= 2.0 * np.pi * np.floor(d / (2.0 * np.pi) + 0.5)
    x = fan[3] * (fan[2] + d)
    n = fan.shape[0] - 4
    if x <= fan[4]:
        return -1.0 if x < fan[4] else 0.0
    if x >= fan[3 + n]:
        return float(n) if x > fan[3 + n] else float(n - 1)
    lo, hi = 0, n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fan[4 + mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo + (x - fan[4 + lo]) / (fan[4 + hi] - fan[4 + lo])


@numba.njit(cache=True, nogil=True)
def _trace_faces(vertices, faces, slots, vrow, vcol, origin_row, origin_col, kk, sh, fan, out, r0, c0):
    """Accumulate signed hit distances of ``faces`` into ``out[i - r0, j - c0, slot]``.

    ``kk``, ``sh``: per-ray permutation and shear, shape (rows or 1, cols, 3); a first axis of 1
    means the direction depends on the column only (line scan, parallel beam). Each image row's
    rays lie in one plane; per row, only the columns between the triangle's crossings of that
    plane are tested. The crossings come from the projected vertices where the projection is
    projective (radiographs: triangles stay triangles), and for line scans (``fan`` non-empty)
    from the triangle's section by the plane x = x_row mapped through the fan angle.
    """
    h, w = out.shape[0], out.shape[1]
    rows, cols = origin_row.shape[0], origin_col.shape[0]
    per_row = kk.shape[0] > 1
    is_fan = fan.shape[0] > 0
    eps = 1e-6
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        rlo = min(vrow[a], vrow[b], vrow[c])
        rhi = max(vrow[a], vrow[b], vrow[c])
        clo = min(vcol[a], vcol[b], vcol[c])
        chi = max(vcol[a], vcol[b], vcol[c])
        i0 = max(int(np.ceil(rlo - eps)), r0, 0)
        i1 = min(int(np.floor(rhi + eps)), r0 + h - 1, rows - 1)
        j0 = max(int(np.ceil(clo - eps)), c0, 0)
        j1 = min(int(np.floor(chi + eps)), c0 + w - 1, cols - 1)
        if i0 > i1 or j0 > j1:
            continue
        slot = slots[f]
        tri = (a, b, c)
        for i in range(i0, i1 + 1):
            # the columns where this row's plane cuts the triangle
            lo = np.inf
            hi = -np.inf
            for e in range(3):
                p = tri[e]
                q = tri[(e + 1) % 3]
                if is_fan:
                    xr = origin_row[i, 0] + origin_col[0, 0]
                    xp = vertices[p, 0]
                    xq = vertices[q, 0]
                    if xp == xq or (xp - xr) * (xq - xr) > 0.0:
                        continue
                    t = (xr - xp) / (xq - xp)
                    col = _fan_col(
                        vertices[p, 1] + t * (vertices[q, 1] - vertices[p, 1]),
                        vertices[p, 2] + t * (vertices[q, 2] - vertices[p, 2]),
                        fan,
                    )
                else:
                    rp = vrow[p]
                    rq = vrow[q]
                    if rp == rq:
                        if rp == i:
                            lo = min(lo, vcol[p], vcol[q])
                            hi = max(hi, vcol[p], vcol[q])
                        continue
                    if (rp - i) * (rq - i) > 0.0:
                        continue
                    col = vcol[p] + (i - rp) / (rq - rp) * (vcol[q] - vcol[p])
                lo = min(lo, col)
                hi = max(hi, col)
            if is_fan and lo > hi:
                continue
            if lo > hi:  # rounding at a vertex row: fall back to the bounding box
                lo, hi = clo, chi
            ja = max(int(np.ceil(lo - eps)), j0)
            jb = min(int(np.floor(hi + eps)), j1)
            ri = i if per_row else 0
            for j in range(ja, jb + 1):
                hit, st = ray_hit(
                    vertices, a, b, c,
                    origin_row[i, 0] + origin_col[j, 0],
                    origin_row[i, 1] + origin_col[j, 1],
                    origin_row[i, 2] + origin_col[j, 2],
                    kk[ri, j], sh[ri, j],
                )
                if hit:
                    out[i - r0, j - c0, slot] += st


def _window(vrow: np.ndarray, vcol: np.ndarray, rows: int, cols: int) -> tuple[int, int, int, int]:
    r0 = max(int(np.floor(vrow.min())) - 1, 0)
    r1 = min(int(np.ceil(vrow.max())) + 1, rows - 1)
    c0 = max(int(np.floor(vcol.min())) - 1, 0)
    c1 = min(int(np.ceil(vcol.max())) + 1, cols - 1)
    return r0, max(r1 - r0 + 1, 0), c0, max(c1 - c0 + 1, 0)


def trace(solids: "list[Solid]", geometry: RayGeometry, backend: str = "numba") -> TraceResult:
    """Path lengths per material (whole image) and per object (over its window).

    ``backend`` names an entry of :data:`BACKENDS`; every backend takes the same solids and
    geometry and returns the same :class:`TraceResult` (a GPU backend registers itself there and
    is tested against the numba reference).
    """
    if backend not in BACKENDS:
        from xraybag.errors import XraybagError

        raise XraybagError(
            f"tracing backend {backend!r} is not available; available: {', '.join(sorted(BACKENDS))}"
        )
    return BACKENDS[backend](solids, geometry)


def trace_numba(solids: "list[Solid]", geometry: RayGeometry) -> TraceResult:
    """The CPU reference: per-object windows traced by the numba kernel above."""
    import time

    t0 = time.perf_counter()
    materials = sorted({s.material for s in solids})
    mindex = {m: k for k, m in enumerate(materials)}
    rows, cols = geometry.rows, geometry.cols
    total = np.zeros((rows, cols, len(materials)), dtype=np.float32)
    by_object: dict[int, list] = {}
    for s in solids:
        by_object.setdefault(s.object_index, []).append(s)
    objects: list[ObjectTrace] = []
    g = geometry
    if not np.any(g.dir_row):
        kk, sh = shear_setup(g.dir_col[None, :, :])
    else:
        kk, sh = shear_setup(g.dir_row[:, None, :] + g.dir_col[None, :, :])
    fan = np.asarray(g.extras.get("fan_table", np.zeros(0)), dtype=np.float64)
    for index in sorted(by_object):
        parts = by_object[index]
        mats = sorted({mindex[s.material] for s in parts})
        local = {m: k for k, m in enumerate(mats)}
        projected = [g.project(s.vertices) for s in parts]
        vr = np.concatenate([p[0] for p in projected])
        vc = np.concatenate([p[1] for p in projected])
        finite = np.isfinite(vr) & np.isfinite(vc)
        if not finite.any():
            continue
        r0, h, c0, w = _window(vr[finite], vc[finite], rows, cols)
        if h == 0 or w == 0:
            continue
        buf = np.zeros((h, w, len(mats)), dtype=np.float64)
        for s, (pr, pc) in zip(parts, projected):
            slots = np.full(len(s.faces), local[mindex[s.material]], dtype=np.int32)
            _trace_faces(
                np.ascontiguousarray(s.vertices, dtype=np.float64),
                np.ascontiguousarray(s.faces, dtype=np.int64),
                slots,
                np.ascontiguousarray(pr, dtype=np.float64),
                np.ascontiguousarray(pc, dtype=np.float64),
                g.origin_row, g.origin_col, kk, sh, fan,
                buf, r0, c0,
            )
        np.maximum(buf, 0.0, out=buf)  # round-off of grazing rays
        buf[buf < 1e-9] = 0.0
        view = total[r0 : r0 + h, c0 : c0 + w]
        for m, k in local.items():
            view[:, :, m] += buf[:, :, k]
        if index > 0:
            objects.append(ObjectTrace(index, r0, c0, buf.astype(np.float32), mats))
    return TraceResult(materials, total, objects, time.perf_counter() - t0)


#: Tracing backends by name. The numba CPU tracer is the reference; a cupy backend for GPUs
#: plugs in here with the same signature.
BACKENDS: dict[str, Callable[..., TraceResult]] = {"numba": trace_numba}
