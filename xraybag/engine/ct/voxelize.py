"""Voxelisation of packed solids on a CT grid, with partial volumes at the surfaces.

Every ``(x, y)`` voxel column is sampled by ``S x S`` rays parallel to ``z`` (``S`` =
``supersample``) at the sub-positions ``x_i = x0 + (i + (s + 0.5) / S - 0.5) dx`` (likewise in
``y``). For each ray the exact entry and exit points with every solid are found by scan
conversion: each triangle is projected onto the ``x, y`` plane and the rays inside its projection
get a hit (the ``z`` of the triangle there and the facing sign: a triangle whose outward normal
points to ``-z`` is an entry, to ``+z`` an exit). The inside test uses edge functions computed
identically for the two triangles sharing an edge and a symbolic-perturbation tie rule, so a ray
through a shared edge or vertex is counted exactly once (or, at a silhouette fold, as an
entry/exit pair of zero length): closed meshes give balanced hits for every ray. The hits of a ray
are sorted in ``z`` and walked with a winding number per material and per object; the covered
``z`` intervals are integrated exactly over every voxel's ``z`` extent. Fractions are therefore
exact along ``z`` and supersampled (``S^2`` samples) in ``x`` and ``y``.

Overlapping solids of the same material count once (union); solids of different materials that
overlap would add up (packed scenes do not have them). Object ``0`` (the bag) contributes to the
material fractions but never to the labels.

The work runs in slabs of ``y`` rows (memory: the per-slab float32 buffers of every material's and
object's bounding box) with a numba ``prange`` over the rows of a slab. Per-material fractions are
stored cropped to the material's bounding box, as ``uint8`` (``round(255 f)``, the default) or
``float32``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from xraybag.engine.ct.geometry import VolumeGrid
from xraybag.errors import XraybagError

GIB = float(1 << 30)
CHUNK_BYTES = 256 << 20  # target size of the per-slab buffers


# ----------------------------------------------------------------------------- result


@dataclass
class Voxelized:
    """Labels and per-material volume fractions of a scene on a :class:`VolumeGrid`."""

    grid: VolumeGrid
    labels: np.ndarray  # (nz, ny, nx) uint16: dominant object (if objects fill >= half), else 0
    materials: list[str]  # sorted
    fractions: list[tuple[tuple[int, int, int], np.ndarray]]  # per material: (lo (z, y, x), box)

    def _index(self, material: str) -> int:
        try:
            return self.materials.index(material)
        except ValueError:
            raise XraybagError(f"material {material!r} is not in the voxelised scene "
                               f"(materials: {', '.join(self.materials) or 'none'})") from None

    def box(self, material: str) -> tuple[VolumeGrid, np.ndarray]:
        """(cropped grid, float32 fraction array on it) of one material's bounding box."""
        lo, arr = self.fractions[self._index(material)]
        hi = tuple(l + n for l, n in zip(lo, arr.shape))
        return self.grid.crop(lo, hi), _as_float(arr)

    def fraction(self, material: str) -> np.ndarray:
        """Full-size float32 fraction volume of one material (for tests and small grids)."""
        lo, arr = self.fractions[self._index(material)]
        out = np.zeros(self.grid.shape, dtype=np.float32)
        out[_slices(lo, arr.shape)] = _as_float(arr)
        return out

    def mu(self, mu_per_material: dict[str, float]) -> np.ndarray:
        """Full float32 volume of ``sum_m fraction_m * mu_m`` (materials missing from the dict
        raise)."""
        out = np.zeros(self.grid.shape, dtype=np.float32)
        for name, (lo, arr) in zip(self.materials, self.fractions):
            if name not in mu_per_material:
                raise XraybagError(f"no attenuation given for material {name!r}")
            out[_slices(lo, arr.shape)] += np.float32(mu_per_material[name]) * _as_float(arr)
        return out

    def volume(self, material: str) -> float:
        """Total volume (mm3) of one material on the grid."""
        _, arr = self.fractions[self._index(material)]
        return float(_as_float(arr).sum(dtype=np.float64)) * float(np.prod(self.grid.voxel))


def _as_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(1.0 / 255.0)
    return arr.astype(np.float32, copy=False)


def _slices(lo, shape) -> tuple[slice, slice, slice]:
    return tuple(slice(int(l), int(l) + int(n)) for l, n in zip(lo, shape))


# ----------------------------------------------------------------------------- preparation


@dataclass
class _Prep:
    tx: np.ndarray  # (V,) vertex x in sub-ray units
    ty: np.ndarray
    tz: np.ndarray  # (V,) vertex z, mm
    faces: np.ndarray  # (F, 3) int64, global vertex indices
    tri_solid: np.ndarray  # (F,) int32
    tri_box: np.ndarray  # (F, 4) int64: i0, i1, j0, j1 (sub-ray index ranges, inclusive)
    entry_row: np.ndarray  # bucket entries sorted by voxel row: row of each entry
    entry_tri: np.ndarray  # triangle of each entry
    solid_mat: np.ndarray  # (nsolids,) int32
    solid_obj: np.ndarray  # (nsolids,) int32, object slot or -1
    materials: list[str]
    mat_lo: np.ndarray  # (M, 3) int64 (z, y, x) voxel box, hi exclusive
    mat_hi: np.ndarray
    objects: list[int]  # object indices of the slots
    obj_lo: np.ndarray  # (O, 3)
    obj_hi: np.ndarray


def _box_of(bmin: np.ndarray, bmax: np.ndarray, grid: VolumeGrid) -> tuple[np.ndarray, np.ndarray]:
    """Voxel index box (z, y, x), hi exclusive, clipped, of a CT-frame (x, y, z) bounding box."""
    edge = grid.bounds()[0]
    d = np.asarray(grid.voxel, dtype=np.float64)
    n = np.array(grid.shape[::-1], dtype=np.int64)
    lo = np.floor((bmin - edge) / d).astype(np.int64)
    hi = np.floor((bmax - edge) / d).astype(np.int64) + 1
    lo = np.clip(lo, 0, n)
    hi = np.clip(hi, 0, n)
    hi = np.maximum(hi, lo)
    return lo[::-1].copy(), hi[::-1].copy()


def _union_boxes(boxes):
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return lo, hi


def _prepare(solids, grid: VolumeGrid, supersample: int) -> _Prep:
    S = int(supersample)
    nz, ny, nx = grid.shape
    dx, dy, _ = (float(v) for v in grid.voxel)
    edge = grid.bounds()[0]
    x0 = edge[0] + dx / (2 * S)  # first sub-ray position
    y0 = edge[1] + dy / (2 * S)
    hx, hy = dx / S, dy / S

    materials = sorted({s.material for s in solids})
    objects = sorted({int(s.object_index) for s in solids if int(s.object_index) > 0})
    mslot = {m: i for i, m in enumerate(materials)}
    oslot = {o: i for i, o in enumerate(objects)}

    verts, faces, tri_solid = [], [], []
    off = 0
    mboxes = [[] for _ in materials]
    oboxes = [[] for _ in objects]
    for k, s in enumerate(solids):
        v = np.asarray(s.vertices, dtype=np.float64).reshape(-1, 3)
        f = np.asarray(s.faces, dtype=np.int64).reshape(-1, 3)
        if v.shape[0] == 0 or f.shape[0] == 0:
            continue
        verts.append(v)
        faces.append(f + off)
        tri_solid.append(np.full(f.shape[0], k, dtype=np.int32))
        off += v.shape[0]
        b = _box_of(v.min(axis=0), v.max(axis=0), grid)
        mboxes[mslot[s.material]].append(b)
        if int(s.object_index) > 0:
            oboxes[oslot[int(s.object_index)]].append(b)
    if verts:
        v = np.concatenate(verts)
        f = np.concatenate(faces)
        ts = np.concatenate(tri_solid)
    else:
        v = np.zeros((0, 3))
        f = np.zeros((0, 3), dtype=np.int64)
        ts = np.zeros(0, dtype=np.int32)
    tx = (v[:, 0] - x0) / hx
    ty = (v[:, 1] - y0) / hy
    tz = v[:, 2].copy()

    # sub-ray index boxes of the triangles, and their voxel-row buckets
    fx, fy = tx[f], ty[f]
    i0 = np.ceil(fx.min(axis=1)).astype(np.int64) if len(f) else np.zeros(0, np.int64)
    i1 = np.floor(fx.max(axis=1)).astype(np.int64) if len(f) else np.zeros(0, np.int64)
    j0 = np.ceil(fy.min(axis=1)).astype(np.int64) if len(f) else np.zeros(0, np.int64)
    j1 = np.floor(fy.max(axis=1)).astype(np.int64) if len(f) else np.zeros(0, np.int64)
    i0 = np.maximum(i0, 0)
    i1 = np.minimum(i1, nx * S - 1)
    j0 = np.maximum(j0, 0)
    j1 = np.minimum(j1, ny * S - 1)
    ok = (i0 <= i1) & (j0 <= j1)
    idx = np.nonzero(ok)[0]
    r0 = j0[idx] // S
    r1 = j1[idx] // S
    cnt = r1 - r0 + 1
    entry_tri = np.repeat(idx, cnt)
    start = np.repeat(np.cumsum(cnt) - cnt, cnt)
    entry_row = np.repeat(r0, cnt) + (np.arange(entry_tri.size) - start)
    order = np.argsort(entry_row, kind="stable")

    def boxes(bs, count):
        lo = np.zeros((count, 3), dtype=np.int64)
        hi = np.zeros((count, 3), dtype=np.int64)
        for i, b in enumerate(bs):
            if b:
                lo[i], hi[i] = _union_boxes(b)
        return lo, hi

    mlo, mhi = boxes(mboxes, len(materials))
    olo, ohi = boxes(oboxes, len(objects))
    return _Prep(
        tx=tx, ty=ty, tz=tz, faces=f, tri_solid=ts,
        tri_box=np.stack([i0, i1, j0, j1], axis=1) if len(f) else np.zeros((0, 4), np.int64),
        entry_row=entry_row[order], entry_tri=entry_tri[order].astype(np.int64),
        solid_mat=np.array([mslot[s.material] for s in solids], dtype=np.int32),
        solid_obj=np.array([oslot.get(int(s.object_index), -1) for s in solids], dtype=np.int32),
        materials=materials, mat_lo=mlo, mat_hi=mhi, objects=objects, obj_lo=olo, obj_hi=ohi,
    )


def _box_voxels(lo, hi) -> int:
    return int(np.prod(np.maximum(hi - lo, 0), axis=1).sum()) if len(lo) else 0


def _row_bytes(p: _Prep, grid: VolumeGrid) -> int:
    """Bytes of the per-slab buffers per y row (upper bound: every box in every row)."""
    nz, _, nx = grid.shape
    per = 0
    for lo, hi in ((p.mat_lo, p.mat_hi), (p.obj_lo, p.obj_hi)):
        if len(lo):
            per += int(((hi[:, 0] - lo[:, 0]) * (hi[:, 2] - lo[:, 2])).sum()) * 4
    per += nz * nx * (4 + 4 + 2)  # label slab: best, total, index
    return per


def _estimate(p: _Prep, grid: VolumeGrid, supersample: int, itemsize: int,
              chunk_bytes: int) -> tuple[int, int]:
    """(peak bytes, rows per slab)."""
    nz, ny, nx = grid.shape
    per_row = max(_row_bytes(p, grid), 1)
    rows = int(max(1, min(ny, chunk_bytes // per_row)))
    stored = _box_voxels(p.mat_lo, p.mat_hi) * itemsize + nz * ny * nx * 2  # fractions + labels
    inputs = (p.tx.nbytes * 3 + p.faces.nbytes + p.tri_solid.nbytes + p.tri_box.nbytes
              + p.entry_row.nbytes * 3 + p.entry_tri.nbytes)
    # hit buffers of the rows in flight: ~ (bbox sub-rays of the row's triangles) x 24 bytes
    S = int(supersample)
    threads = numba.get_num_threads()
    if p.entry_tri.size:
        b = p.tri_box[p.entry_tri]
        area = (b[:, 1] - b[:, 0] + 1) * np.minimum(b[:, 3] - b[:, 2] + 1, S)
        per_hits = int(area.sum() / max(ny, 1) * 4) * 24  # busiest rows ~ 4x the mean
    else:
        per_hits = 0
    hits = threads * (per_hits + nx * S * S * 8 + 64 * 1024)
    slab = rows * per_row
    quant = slab if itemsize == 1 else 0  # temporary during the copy out
    return int(stored + inputs + hits + slab + quant), rows


def estimate_bytes(solids, grid: VolumeGrid, supersample: int = 2, dtype="uint8") -> int:
    """Peak memory (bytes) :func:`voxelize` needs for these solids on this grid."""
    p = _prepare(solids, grid, supersample)
    return _estimate(p, grid, supersample, np.dtype(dtype).itemsize, CHUNK_BYTES)[0]


# ----------------------------------------------------------------------------- numba kernels


@numba.njit(cache=True)
def _edge(px, py, qx, qy, x, y):
    """Edge function of the directed edge p->q at (x, y), positive on its left; computed from
    the lexicographically smaller end so that the two directions give exact negatives."""
    if px < qx or (px == qx and py < qy):
        return (qx - px) * (y - py) - (qy - py) * (x - px)
    return -((px - qx) * (y - qy) - (py - qy) * (x - qx))


@numba.njit(cache=True)
def _inside(e, dx, dy):
    """Edge test with the tie rule of the perturbation (-d, -d eps): exact."""
    if e > 0.0:
        return True
    if e < 0.0:
        return False
    return dy > 0.0 or (dy == 0.0 and dx < 0.0)


@numba.njit(cache=True)
def _add_interval(buf, off, lo, hi, iy, ix, a, b, zlo, dz, nz, w):
    """Add the covered length of [a, b] (mm) to the voxels of column (iy, ix) of a box."""
    zmax = zlo + nz * dz
    if a < zlo:
        a = zlo
    if b > zmax:
        b = zmax
    if b <= a:
        return
    if iy < lo[1] or iy >= hi[1] or ix < lo[2] or ix >= hi[2]:
        return
    ny_b = hi[1] - lo[1]
    nx_b = hi[2] - lo[2]
    ka = int(math.floor((a - zlo) / dz))
    kb = int(math.floor((b - zlo) / dz))
    if ka < lo[0]:
        ka = lo[0]
    if kb > hi[0] - 1:
        kb = hi[0] - 1
    for k in range(ka, kb + 1):
        c0 = zlo + k * dz
        c1 = c0 + dz
        s = a if a > c0 else c0
        e = b if b < c1 else c1
        if e > s:
            buf[off + ((k - lo[0]) * ny_b + (iy - lo[1])) * nx_b + (ix - lo[2])] += (e - s) * w


@numba.njit(cache=True, parallel=True)
def _slab(tx, ty, tz, faces, tri_solid, tri_box, row_ptr, row_tri, y_first, S, nxs,
          solid_mat, solid_obj, mlo, mhi, moff, mbuf, olo, ohi, ooff, obuf, zlo, dz, nz, w):
    """Fill the float32 fraction buffers of the rows [y_first, y_first + len(row_ptr) - 1).

    Box buffers hold the slab's rows only: for box b the flat block at ``off[b]`` is
    (hi[0]-lo[0], slab rows of the box, hi[2]-lo[2]); ``mlo/mhi`` are passed with their y range
    already restricted to the slab."""
    nrows = row_ptr.shape[0] - 1
    nm = mlo.shape[0]
    no = olo.shape[0]
    nkeys = nxs * S
    for r in numba.prange(nrows):
        iy = y_first + r
        jlo = iy * S
        jhi = jlo + S - 1
        # capacity: sub-rays in the triangles' boxes within this row
        cap = 0
        for e in range(row_ptr[r], row_ptr[r + 1]):
            t = row_tri[e]
            a = tri_box[t, 2] if tri_box[t, 2] > jlo else jlo
            b = tri_box[t, 3] if tri_box[t, 3] < jhi else jhi
            if b >= a:
                cap += (b - a + 1) * (tri_box[t, 1] - tri_box[t, 0] + 1)
        if cap == 0:
            continue
        hkey = np.empty(cap, np.int64)
        hz = np.empty(cap, np.float64)
        hsg = np.empty(cap, np.int8)
        hsd = np.empty(cap, np.int32)
        n = 0
        for e in range(row_ptr[r], row_ptr[r + 1]):
            t = row_tri[e]
            ia, ib, ic = faces[t, 0], faces[t, 1], faces[t, 2]
            ax, ay, az = tx[ia], ty[ia], tz[ia]
            bx, by, bz = tx[ib], ty[ib], tz[ib]
            cx, cy, cz = tx[ic], ty[ic], tz[ic]
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if area == 0.0:
                continue
            if area > 0.0:
                sg = -1  # normal up: the +z ray leaves the solid
            else:
                sg = 1
                bx, by, bz, cx, cy, cz = cx, cy, cz, bx, by, bz
            j0 = tri_box[t, 2] if tri_box[t, 2] > jlo else jlo
            j1 = tri_box[t, 3] if tri_box[t, 3] < jhi else jhi
            sd = tri_solid[t]
            for j in range(j0, j1 + 1):
                yy = float(j)
                for i in range(tri_box[t, 0], tri_box[t, 1] + 1):
                    xx = float(i)
                    e0 = _edge(ax, ay, bx, by, xx, yy)
                    if not _inside(e0, bx - ax, by - ay):
                        continue
                    e1 = _edge(bx, by, cx, cy, xx, yy)
                    if not _inside(e1, cx - bx, cy - by):
                        continue
                    e2 = _edge(cx, cy, ax, ay, xx, yy)
                    if not _inside(e2, ax - cx, ay - cy):
                        continue
                    tot = e0 + e1 + e2
                    if tot > 0.0:
                        z = (e1 * az + e2 * bz + e0 * cz) / tot
                    else:
                        z = (az + bz + cz) / 3.0
                    hkey[n] = i * S + (j - jlo)
                    hz[n] = z
                    hsg[n] = sg
                    hsd[n] = sd
                    n += 1
        if n == 0:
            continue
        # counting sort by ray key (key // (S*S) is the voxel column)
        start = np.zeros(nkeys + 1, np.int64)
        for h in range(n):
            start[hkey[h] + 1] += 1
        for k in range(nkeys):
            start[k + 1] += start[k]
        fill = start[:-1].copy()
        order = np.empty(n, np.int64)
        for h in range(n):
            k = hkey[h]
            order[fill[k]] = h
            fill[k] += 1
        wm = np.zeros(nm, np.int64)
        wo = np.zeros(max(no, 1), np.int64)
        em = np.zeros(nm, np.float64)
        eo = np.zeros(max(no, 1), np.float64)
        for k in range(nkeys):
            s0, s1 = start[k], start[k + 1]
            if s1 == s0:
                continue
            # insertion sort of the ray's hits by z (entries before exits at equal z)
            for p in range(s0 + 1, s1):
                h = order[p]
                q = p - 1
                while q >= s0 and (hz[order[q]] > hz[h]
                                   or (hz[order[q]] == hz[h] and hsg[order[q]] < hsg[h])):
                    order[q + 1] = order[q]
                    q -= 1
                order[q + 1] = h
            ix = k // (S * S)
            for p in range(s0, s1):
                h = order[p]
                sd = hsd[h]
                z = hz[h]
                m = solid_mat[sd]
                old = wm[m]
                new = old + hsg[h]
                wm[m] = new
                if old <= 0 and new > 0:
                    em[m] = z
                elif old > 0 and new <= 0:
                    _add_interval(mbuf, moff[m], mlo[m], mhi[m], iy, ix, em[m], z, zlo, dz, nz, w)
                o = solid_obj[sd]
                if o >= 0:
                    old = wo[o]
                    new = old + hsg[h]
                    wo[o] = new
                    if old <= 0 and new > 0:
                        eo[o] = z
                    elif old > 0 and new <= 0:
                        _add_interval(obuf, ooff[o], olo[o], ohi[o], iy, ix, eo[o], z, zlo, dz,
                                      nz, w)
            for p in range(s0, s1):  # reset (an open mesh may leave a winding behind)
                sd = hsd[order[p]]
                wm[solid_mat[sd]] = 0
                if solid_obj[sd] >= 0:
                    wo[solid_obj[sd]] = 0


# ----------------------------------------------------------------------------- driver


def _slab_boxes(lo, hi, y0, y1):
    """Boxes restricted to rows [y0, y1) and their flat offsets."""
    slo, shi = lo.copy(), hi.copy()
    if len(lo):
        slo[:, 1] = np.clip(lo[:, 1], y0, y1)
        shi[:, 1] = np.clip(hi[:, 1], y0, y1)
        shi[:, 1] = np.maximum(shi[:, 1], slo[:, 1])
    sizes = np.prod(np.maximum(shi - slo, 0), axis=1) if len(lo) else np.zeros(0, np.int64)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return slo, shi, off


def voxelize(solids, grid: VolumeGrid, supersample: int = 2, max_bytes: int | None = None,
             progress=None, dtype="uint8", chunk_bytes: int = CHUNK_BYTES) -> Voxelized:
    """Labels and per-material volume fractions of closed solids (CT frame) on ``grid``.

    ``supersample`` S: S x S rays per voxel column (fractions exact along z). ``max_bytes``:
    refuse (XraybagError) before any work when :func:`estimate_bytes` exceeds it. ``progress``:
    called as ``progress(rows_done, rows_total)`` after each slab. ``dtype``: storage of the
    fraction boxes, ``"uint8"`` (round(255 f)) or ``"float32"``.
    """
    S = int(supersample)
    if S < 1:
        raise XraybagError(f"supersample must be at least 1, got {supersample}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise XraybagError(f"fraction dtype must be uint8 or float32, got {dt}")
    p = _prepare(solids, grid, S)
    need, rows = _estimate(p, grid, S, dt.itemsize, int(chunk_bytes))
    if max_bytes is not None and need > max_bytes:
        raise XraybagError(
            f"voxelising {len(solids)} solids on a {'x'.join(map(str, grid.shape[::-1]))} grid "
            f"(supersample {S}) needs about {need / GIB:.2f} GiB, more than the limit of "
            f"{max_bytes / GIB:.2f} GiB; use a coarser voxel, a smaller grid or a lower "
            f"supersample")
    nz, ny, nx = grid.shape
    dx, dy, dz = (float(v) for v in grid.voxel)
    zlo = float(grid.bounds()[0][2])
    w = 1.0 / (dz * S * S)

    labels = np.zeros(grid.shape, dtype=np.uint16)
    store = [np.zeros(tuple(int(v) for v in (hi - lo)), dtype=dt)
             for lo, hi in zip(p.mat_lo, p.mat_hi)]
    # bucket rows -> entries
    row_ptr_all = np.searchsorted(p.entry_row, np.arange(ny + 1)).astype(np.int64)

    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        mlo, mhi, moff = _slab_boxes(p.mat_lo, p.mat_hi, y0, y1)
        olo, ohi, ooff = _slab_boxes(p.obj_lo, p.obj_hi, y0, y1)
        mbuf = np.zeros(int(moff[-1]), dtype=np.float32)
        obuf = np.zeros(int(ooff[-1]), dtype=np.float32)
        a, b = row_ptr_all[y0], row_ptr_all[y1]
        row_ptr = row_ptr_all[y0:y1 + 1] - a
        if b > a:
            _slab(p.tx, p.ty, p.tz, p.faces, p.tri_solid, p.tri_box, row_ptr,
                  p.entry_tri[a:b], y0, S, nx * S, p.solid_mat, p.solid_obj,
                  mlo, mhi, moff, mbuf, olo, ohi if len(ohi) else np.zeros((0, 3), np.int64),
                  ooff, obuf, zlo, dz, nz, w)
        # materials: copy the slab rows out
        for m in range(len(p.materials)):
            shape = tuple(int(v) for v in (mhi[m] - mlo[m]))
            if 0 in shape:
                continue
            blk = mbuf[moff[m]:moff[m + 1]].reshape(shape)
            np.minimum(blk, 1.0, out=blk)
            ys = slice(int(mlo[m, 1] - p.mat_lo[m, 1]), int(mhi[m, 1] - p.mat_lo[m, 1]))
            if dt == np.uint8:
                store[m][:, ys, :] = np.rint(blk * 255.0).astype(np.uint8)
            else:
                store[m][:, ys, :] = blk
        # labels of the slab
        best = np.zeros((nz, y1 - y0, nx), dtype=np.float32)
        tot = np.zeros_like(best)
        idx = np.zeros(best.shape, dtype=np.uint16)
        for o, obj in enumerate(p.objects):
            shape = tuple(int(v) for v in (ohi[o] - olo[o]))
            if 0 in shape:
                continue
            blk = ooff[o], ooff[o + 1]
            blk = obuf[blk[0]:blk[1]].reshape(shape)
            sl = (slice(int(olo[o, 0]), int(ohi[o, 0])), slice(int(olo[o, 1] - y0),
                  int(ohi[o, 1] - y0)), slice(int(olo[o, 2]), int(ohi[o, 2])))
            tot[sl] += blk
            bsl = best[sl]
            more = blk > bsl
            bsl[more] = blk[more]
            idx[sl][more] = obj
        labels[:, y0:y1, :] = np.where(tot >= 0.5 - 1e-6, idx, 0)
        del mbuf, obuf, best, tot, idx
        if progress is not None:
            progress(y1, ny)

    fractions = [(tuple(int(v) for v in lo), arr) for lo, arr in zip(p.mat_lo, store)]
    return Voxelized(grid, labels, list(p.materials), fractions)
