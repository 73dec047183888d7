"""The voxelisation of :mod:`xraybag.engine.ct.voxelize` as CUDA kernels (numba.cuda).

:func:`voxelize_cuda` takes the arguments of :func:`~xraybag.engine.ct.voxelize.voxelize` and
returns the same host :class:`~xraybag.engine.ct.voxelize.Voxelized`. The preparation (vertices in
sub-ray units, the triangles' sub-ray boxes, the voxel-row buckets, the material and object boxes)
is the CPU's own :func:`~xraybag.engine.ct.voxelize._prepare`; its row buckets are split here
further by tiles of :data:`TILE` voxel columns (one warp), keeping the CPU's triangle order in
each bucket.

One CUDA thread takes one ``(x, y)`` voxel column and does what the CPU's ``_slab`` does for the
column's ``S x S`` rays, in the CPU's order (``x`` sub-position outer, ``y`` inner): the ray's
hits come from the triangles of its tile's bucket (in the CPU's order, with its box test, facing
sign, edge functions, tie rule :func:`~xraybag.engine.ct.voxelize._inside` and ``z``), are kept
in a local array of :data:`MAX_HITS`, sorted by the same insertion sort (entries before exits at
equal ``z``) and walked per material and per object with the same winding rule; the covered
intervals are added to the column's voxels of the float32 box buffers as the CPU's
``_add_interval`` adds them (a float64 sum rounded to float32, per voxel in the same order, no
atomics). The walk takes one material (object) at a time along the sorted hits instead of all at
once: each voxel still receives its material's intervals in the same order, so the sums are the
same. A second kernel, again one thread per column, clamps and stores the material fractions
(``uint8``: ``rint(255 f)`` in float32, as numpy; or float32) and picks the labels (the objects'
float32 sums in slot order, the strictly largest one, the ``>= 0.5 - 1e-6`` rule) as the CPU's
numpy code does per slab; everything stays on the GPU until the end.

A column whose ray has more than :data:`MAX_HITS` hits stops, and its whole voxel row is redone
on the CPU by ``_slab`` (the slab's buffers are copied to the host, patched and copied back):
never a silent truncation. ``stats`` (a dict, if given) counts those rows and columns.

Products go through libdevice's ``dmul_rn`` on a real GPU (NVVM would fuse them into multiply-adds:
one rounding where the CPU rounds twice), so the edge functions, facing tests, ``z`` of every hit,
voxel bounds and added lengths are the CPU's to the bit, and with them every sum: the results
should equal the CPU's exactly, and do under numba's simulator (same IEEE operations in the same
order). Divisions, sums and comparisons are IEEE on both. The edge function and the interval
integration are copies of the CPU's ``_edge`` and ``_add_interval`` with those products (the CPU
versions write plain ``*``); the tie rule ``_inside`` is the CPU's own Python compiled as a
device function.

Memory: the GPU holds the inputs, the stored fractions and labels of the whole grid, and the
float32 box buffers of one slab of ``y`` rows (``chunk_bytes``), plus each resident thread's hit
array (local memory, about ``MAX_HITS * 14`` bytes). ``max_bytes`` is held against the larger of
the host's and the GPU's estimates (:func:`estimate_bytes_cuda`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.ct import voxelize as _vox
from xraybag.engine.ct.geometry import VolumeGrid
from xraybag.engine.ct.voxelize import (
    GIB,
    Voxelized,
    _box_voxels,
    _Prep,
    _prepare,
    _slab,
    _slab_boxes,
)
from xraybag.engine.xray.trace_cuda import device_function
from xraybag.errors import XraybagError

__all__ = ["CHUNK_BYTES", "MAX_HITS", "TILE", "estimate_bytes_cuda", "voxelize_cuda"]

THREADS = 128  # threads per block
TILE = 32  # voxel columns per triangle bucket (one warp: its threads walk the same bucket)
#: hits one ray can hold on the GPU; a column with a ray of more is redone on the CPU (its row)
MAX_HITS = 128
CHUNK_BYTES = 1 << 30  # target size of the per-slab float32 box buffers on the GPU
_LOCAL_BYTES = 14  # local memory per hit slot: z (8), solid (4), sign (1), walk flags (1)
_RESIDENT_THREADS = 2048 * 144  # threads resident at once on a large GPU (local memory estimate)
_LABEL_THRESHOLD = np.float32(0.5 - 1e-6)  # the CPU's ``tot >= 0.5 - 1e-6`` on float32 sums


def _plain_mul(a, b):
    return a * b


if numba.config.ENABLE_CUDASIM:  # the simulator runs Python floats: a product is a product
    _mul = _plain_mul
    _rintf = np.rint
else:  # products NVVM never fuses into a multiply-add (see the module's docstring)
    from numba.cuda import libdevice

    _mul = libdevice.dmul_rn
    _rintf = libdevice.rintf

_inside = device_function(_vox._inside)


@cuda.jit(device=True)
def _edge(px, py, qx, qy, x, y):  # pragma: no cover - GPU / simulator
    """:func:`xraybag.engine.ct.voxelize._edge` with unfused products."""
    if px < qx or (px == qx and py < qy):
        return _mul(qx - px, y - py) - _mul(qy - py, x - px)
    return -(_mul(px - qx, y - qy) - _mul(py - qy, x - qx))


@cuda.jit(device=True)
def _add_interval(buf, off, lo0, lo1, lo2, hi0, hi1, hi2, iy, ix, a, b, zlo, dz, zmax, w):  # pragma: no cover
    """:func:`xraybag.engine.ct.voxelize._add_interval` (box ``lo``/``hi`` as scalars, ``zmax =
    zlo + nz dz`` computed on the host as the CPU computes it) with unfused products; the float32
    voxel plus the float64 length, rounded to float32, as numba's CPU ``+=`` does."""
    # (conditionals, not min / max: the CUDA target cannot compile the builtins)
    if a < zlo:  # noqa: PLR1730
        a = zlo
    if b > zmax:  # noqa: PLR1730
        b = zmax
    if b <= a:
        return
    if iy < lo1 or iy >= hi1 or ix < lo2 or ix >= hi2:
        return
    ny_b = hi1 - lo1
    nx_b = hi2 - lo2
    ka = int(math.floor((a - zlo) / dz))  # noqa: RUF046 - a float on the CUDA target
    kb = int(math.floor((b - zlo) / dz))  # noqa: RUF046
    if ka < lo0:  # noqa: PLR1730
        ka = lo0
    if kb > hi0 - 1:  # noqa: PLR1730
        kb = hi0 - 1
    for k in range(ka, kb + 1):
        c0 = zlo + _mul(numba.float64(k), dz)
        c1 = c0 + dz
        s = a if a > c0 else c0  # noqa: FURB136
        e = b if b < c1 else c1  # noqa: FURB136
        if e > s:
            i = off + ((k - lo0) * ny_b + (iy - lo1)) * nx_b + (ix - lo2)
            buf[i] = numba.float64(buf[i]) + _mul(e - s, w)


@cuda.jit
def _zero(buf):  # pragma: no cover - GPU / simulator
    i = cuda.grid(1)
    if i < buf.shape[0]:
        buf[i] = 0.0


@cuda.jit
def _columns(tx, ty, tz, faces, tri_solid, tri_box, tile_ptr, tile_tri, ntiles, y_first, nrows, nx, S,
             solid_mat, solid_obj, mlo, mhi, moff, mbuf, olo, ohi, ooff, obuf, zlo, dz, zmax, w,
             bad):  # pragma: no cover - GPU / simulator
    """Thread ``t``: voxel column ``ix = t % (ntiles TILE)`` (if ``< nx``) of slab row ``r = t //
    (ntiles TILE)`` (``iy = y_first + r``): the CPU's ``_slab`` for the column's rays into the
    slab's box buffers ``mbuf`` / ``obuf`` (boxes ``mlo``/``mhi`` restricted to the slab, flat
    offsets ``moff``). A ray with more than MAX_HITS hits adds 1 to ``bad[r]`` and ends the thread
    (the row is redone on the CPU)."""
    t = cuda.grid(1)
    span = ntiles * TILE
    r = t // span
    ix = t - r * span
    if r >= nrows or ix >= nx:
        return
    iy = y_first + r
    key = iy * ntiles + ix // TILE
    e_first = tile_ptr[key]
    e_last = tile_ptr[key + 1]
    if e_last == e_first:
        return
    hz = cuda.local.array(MAX_HITS, numba.float64)
    hsd = cuda.local.array(MAX_HITS, numba.int32)
    hsg = cuda.local.array(MAX_HITS, numba.int8)
    done = cuda.local.array(MAX_HITS, numba.int8)
    for di in range(S):
        i = ix * S + di
        xx = float(i)
        for dj in range(S):
            j = iy * S + dj
            yy = float(j)
            n = 0
            for e in range(e_first, e_last):
                f = tile_tri[e]
                if i < tri_box[f, 0] or i > tri_box[f, 1] or j < tri_box[f, 2] or j > tri_box[f, 3]:
                    continue
                ia = faces[f, 0]
                ib = faces[f, 1]
                ic = faces[f, 2]
                ax = tx[ia]
                ay = ty[ia]
                az = tz[ia]
                bx = tx[ib]
                by = ty[ib]
                bz = tz[ib]
                cx = tx[ic]
                cy = ty[ic]
                cz = tz[ic]
                area = _mul(bx - ax, cy - ay) - _mul(by - ay, cx - ax)
                if area == 0.0:
                    continue
                if area > 0.0:
                    sg = -1  # normal up: the +z ray leaves the solid
                else:
                    sg = 1
                    bx, by, bz, cx, cy, cz = cx, cy, cz, bx, by, bz
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
                    z = (_mul(e1, az) + _mul(e2, bz) + _mul(e0, cz)) / tot
                else:
                    z = (az + bz + cz) / 3.0
                if n == MAX_HITS:
                    cuda.atomic.add(bad, r, 1)
                    return
                hz[n] = z
                hsd[n] = tri_solid[f]
                hsg[n] = sg
                n += 1
            if n == 0:
                continue
            # the CPU's insertion sort by z, entries before exits at equal z (the same permutation)
            for p in range(1, n):
                z = hz[p]
                sd = hsd[p]
                sg = hsg[p]
                q = p - 1
                while q >= 0 and (hz[q] > z or (hz[q] == z and hsg[q] < sg)):
                    hz[q + 1] = hz[q]
                    hsd[q + 1] = hsd[q]
                    hsg[q + 1] = hsg[q]
                    q -= 1
                hz[q + 1] = z
                hsd[q + 1] = sd
                hsg[q + 1] = sg
            for p in range(n):
                done[p] = 0
            # one material at a time: its winding along the ray, as the CPU's wm[m] / em[m]
            for p in range(n):
                if done[p] != 0:
                    continue
                m = solid_mat[hsd[p]]
                wind = 0
                ez = 0.0
                for q in range(p, n):
                    if solid_mat[hsd[q]] != m:
                        continue
                    done[q] = 1
                    old = wind
                    wind = old + int(hsg[q])
                    if old <= 0 and wind > 0:
                        ez = hz[q]
                    elif old > 0 and wind <= 0:
                        _add_interval(mbuf, moff[m], mlo[m, 0], mlo[m, 1], mlo[m, 2], mhi[m, 0], mhi[m, 1],
                                      mhi[m, 2], iy, ix, ez, hz[q], zlo, dz, zmax, w)
            # one object at a time (wo[o] / eo[o])
            for p in range(n):
                o = solid_obj[hsd[p]]
                if done[p] == 2 or o < 0:
                    continue
                wind = 0
                ez = 0.0
                for q in range(p, n):
                    if solid_obj[hsd[q]] != o:
                        continue
                    done[q] = 2
                    old = wind
                    wind = old + int(hsg[q])
                    if old <= 0 and wind > 0:
                        ez = hz[q]
                    elif old > 0 and wind <= 0:
                        _add_interval(obuf, ooff[o], olo[o, 0], olo[o, 1], olo[o, 2], ohi[o, 0], ohi[o, 1],
                                      ohi[o, 2], iy, ix, ez, hz[q], zlo, dz, zmax, w)


@cuda.jit
def _finish(mbuf, mlo, mhi, moff, sy0, sny, soff, quant, store, obuf, olo, ohi, ooff, objs, y_first,
            nrows, thr, labels):  # pragma: no cover - GPU / simulator
    """Thread ``t``: voxel column ``(iy, ix) = (y_first + t // nx, t % nx)`` of the slab. Material
    fractions: the slab buffer's value clamped to 1 (float32), stored in material ``m``'s full box
    (flat at ``soff[m]``, y rows from ``sy0[m]``, ``sny[m]`` of them) as ``rint(255 f)`` when
    ``quant``, else as it is. Labels: per voxel the objects' sums added in slot order (float32),
    the object of the strictly largest one, kept where the sum is at least ``thr``."""
    t = cuda.grid(1)
    nz = labels.shape[0]
    nx = labels.shape[2]
    if t >= nrows * nx:
        return
    r = t // nx
    ix = t - r * nx
    iy = y_first + r
    one = numba.float32(1.0)
    f255 = numba.float32(255.0)
    for m in range(mlo.shape[0]):
        if iy < mlo[m, 1] or iy >= mhi[m, 1] or ix < mlo[m, 2] or ix >= mhi[m, 2]:
            continue
        nyb = mhi[m, 1] - mlo[m, 1]
        nxb = mhi[m, 2] - mlo[m, 2]
        for k in range(mlo[m, 0], mhi[m, 0]):
            kk = k - mlo[m, 0]
            v = mbuf[moff[m] + (kk * nyb + iy - mlo[m, 1]) * nxb + ix - mlo[m, 2]]
            if v > one:  # noqa: PLR1730 - np.minimum(blk, 1.0)
                v = one
            dst = soff[m] + (kk * sny[m] + iy - sy0[m]) * nxb + ix - mlo[m, 2]
            if quant:
                store[dst] = _rintf(v * f255)
            else:
                store[dst] = v
    no = olo.shape[0]
    for k in range(nz):
        tot = numba.float32(0.0)
        best = numba.float32(0.0)
        idx = 0
        for o in range(no):
            if (k < olo[o, 0] or k >= ohi[o, 0] or iy < olo[o, 1] or iy >= ohi[o, 1] or ix < olo[o, 2]
                    or ix >= ohi[o, 2]):
                continue
            v = obuf[ooff[o] + ((k - olo[o, 0]) * (ohi[o, 1] - olo[o, 1]) + iy - olo[o, 1])
                     * (ohi[o, 2] - olo[o, 2]) + ix - olo[o, 2]]
            tot += v
            if v > best:
                best = v
                idx = objs[o]
        labels[k, iy, ix] = idx if tot >= thr else 0


# ----------------------------------------------------------------------------- host side


def _tile_lists(p: _Prep, S: int, ny: int, ntiles: int) -> tuple[np.ndarray, np.ndarray]:
    """The CPU's row buckets split by tiles of TILE voxel columns: (ptr (ny ntiles + 1,) int64,
    triangles int32), bucket ``iy * ntiles + tile``; each bucket keeps the CPU's (ascending)
    triangle order."""
    tri = p.entry_tri
    if tri.size == 0:
        return np.zeros(ny * ntiles + 1, np.int64), np.zeros(0, np.int32)
    c0 = (p.tri_box[tri, 0] // S) // TILE
    c1 = (p.tri_box[tri, 1] // S) // TILE
    cnt = c1 - c0 + 1
    rep = np.repeat(np.arange(tri.size), cnt)
    start = np.repeat(np.cumsum(cnt) - cnt, cnt)
    key = p.entry_row[rep] * ntiles + c0[rep] + (np.arange(rep.size) - start)
    order = np.argsort(key, kind="stable")  # entries are sorted by row, ascending triangles in each
    counts = np.bincount(key, minlength=ny * ntiles)
    ptr = np.zeros(ny * ntiles + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, tri[rep[order]].astype(np.int32)


def _per_row_bytes(p: _Prep) -> int:
    """float32 bytes of the slab's box buffers per y row (every box in every row)."""
    per = 0
    for lo, hi in ((p.mat_lo, p.mat_hi), (p.obj_lo, p.obj_hi)):
        if len(lo):
            per += int(((hi[:, 0] - lo[:, 0]) * (hi[:, 2] - lo[:, 2])).sum()) * 4
    return max(per, 1)


def _estimate(p: _Prep, grid: VolumeGrid, itemsize: int, chunk_bytes: int,
              n_tile: int) -> tuple[int, int, int]:
    """(host peak bytes, GPU peak bytes, rows per slab)."""
    nz, ny, nx = grid.shape
    per_row = _per_row_bytes(p)
    rows = int(max(1, min(ny, chunk_bytes // per_row)))
    stored = _box_voxels(p.mat_lo, p.mat_hi) * itemsize + nz * ny * nx * 2  # fractions + labels
    inputs = p.tx.nbytes * 3 + p.faces.nbytes + p.tri_solid.nbytes + p.tri_box.nbytes
    ntiles = -(-nx // TILE)
    tiles = n_tile * 4 + (ny * ntiles + 1) * 8
    host_inputs = inputs + p.entry_row.nbytes * 3 + p.entry_tri.nbytes + n_tile * 8 * 5  # + temporaries
    host = stored + host_inputs + tiles
    device = stored + inputs + tiles + rows * per_row + _RESIDENT_THREADS * MAX_HITS * _LOCAL_BYTES
    return int(host), int(device), rows


def estimate_bytes_cuda(solids, grid: VolumeGrid, supersample: int = 2, dtype="uint8",
                        chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """(host, GPU) peak memory (bytes) :func:`voxelize_cuda` needs for these solids on this grid
    (the host's without a fallback row's copies of a slab's buffers)."""
    S = int(supersample)
    p = _prepare(solids, grid, S)
    _, ny, nx = grid.shape
    _, tri = _tile_lists(p, S, ny, -(-nx // TILE))
    host, device, _ = _estimate(p, grid, np.dtype(dtype).itemsize, int(chunk_bytes), tri.size)
    return host, device


def _launch(kernel, n: int, *args) -> None:
    if n > 0:
        kernel[(n + THREADS - 1) // THREADS, THREADS](*args)


def _zeros(n: int):
    """A float32 device array of ``max(n, 1)`` zeros (zeroed on the GPU)."""
    buf = cuda.device_array(max(int(n), 1), dtype=np.float32)
    _launch(_zero, buf.shape[0], buf)
    return buf


def _at_least_one_box(lo, hi, off):
    """Boxes padded with one empty box where there are none (the kernels take no empty arrays)."""
    if len(lo):
        return lo, hi, off
    return np.zeros((1, 3), np.int64), np.zeros((1, 3), np.int64), np.zeros(2, np.int64)


def _put_row(buf, lo, hi, off, rbuf, rlo, rhi, roff, y: int) -> None:
    """Copy row ``y`` of every box from a one-row buffer (``rbuf``, boxes ``rlo``/``rhi``) into
    a slab buffer (``buf``, boxes ``lo``/``hi``)."""
    for b in range(len(lo)):
        if not (rlo[b, 1] <= y < rhi[b, 1]):
            continue
        shape = tuple(int(v) for v in (hi[b] - lo[b]))
        if 0 in shape:
            continue
        rshape = tuple(int(v) for v in (rhi[b] - rlo[b]))
        blk = buf[off[b]:off[b + 1]].reshape(shape)
        blk[:, y - int(lo[b, 1]), :] = rbuf[roff[b]:roff[b + 1]].reshape(rshape)[:, 0, :]


def _redo_rows_on_cpu(p: _Prep, rows, S: int, nx: int, nz: int, row_ptr_all, slab, zlo: float, dz: float,
                      w: float) -> None:
    """The voxel rows ``rows`` (absolute) of a slab recomputed by the CPU's ``_slab`` and written
    over the GPU's: ``slab`` = (mlo, mhi, moff, d_mbuf, olo, ohi, ooff, d_obuf) (unpadded boxes)."""
    mlo, mhi, moff, d_mbuf, olo, ohi, ooff, d_obuf = slab
    hm = d_mbuf.copy_to_host()
    ho = d_obuf.copy_to_host()
    for y in rows:
        rlo, rhi, roff = _slab_boxes(p.mat_lo, p.mat_hi, y, y + 1)
        qlo, qhi, qoff = _slab_boxes(p.obj_lo, p.obj_hi, y, y + 1)
        rb = np.zeros(int(roff[-1]), dtype=np.float32)
        qb = np.zeros(int(qoff[-1]), dtype=np.float32)
        a, b = row_ptr_all[y], row_ptr_all[y + 1]
        _slab(p.tx, p.ty, p.tz, p.faces, p.tri_solid, p.tri_box, row_ptr_all[y:y + 2] - a, p.entry_tri[a:b], y, S,
              nx * S, p.solid_mat, p.solid_obj, rlo, rhi, roff, rb, qlo,
              qhi if len(qhi) else np.zeros((0, 3), np.int64), qoff, qb, zlo, dz, nz, w)
        _put_row(hm, mlo, mhi, moff, rb, rlo, rhi, roff, y)
        _put_row(ho, olo, ohi, ooff, qb, qlo, qhi, qoff, y)
    d_mbuf.copy_to_device(hm)
    d_obuf.copy_to_device(ho)


def voxelize_cuda(solids, grid: VolumeGrid, supersample: int = 2, max_bytes: int | None = None,
                  progress=None, dtype="uint8", chunk_bytes: int = CHUNK_BYTES,
                  stats: dict | None = None) -> Voxelized:
    """:func:`xraybag.engine.ct.voxelize.voxelize` on the GPU: the same host :class:`Voxelized`
    (labels and fractions equal to the CPU's; see the module's docstring).

    ``max_bytes``: refuse (XraybagError) before any work when the host's or the GPU's estimate
    (:func:`estimate_bytes_cuda`) exceeds it. ``progress``: ``progress(rows_done, rows_total)``
    after each slab. ``chunk_bytes``: the GPU's float32 box buffers per slab of y rows.
    ``stats``: a dict that gets ``slabs``, ``fallback_rows`` and ``fallback_columns`` (voxel rows
    redone on the CPU because a ray of theirs had more than :data:`MAX_HITS` hits).
    """
    S = int(supersample)
    if S < 1:
        raise XraybagError(f"supersample must be at least 1, got {supersample}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise XraybagError(f"fraction dtype must be uint8 or float32, got {dt}")
    p = _prepare(solids, grid, S)
    nz, ny, nx = grid.shape
    ntiles = -(-nx // TILE)
    tile_ptr, tile_tri = _tile_lists(p, S, ny, ntiles)
    host_need, dev_need, rows = _estimate(p, grid, dt.itemsize, int(chunk_bytes), tile_tri.size)
    need = max(host_need, dev_need)
    if max_bytes is not None and need > max_bytes:
        where = "GPU" if dev_need >= host_need else "host"
        raise XraybagError(
            f"voxelising {len(solids)} solids on a {'x'.join(map(str, grid.shape[::-1]))} grid "
            f"(supersample {S}) on the GPU needs about {need / GIB:.2f} GiB ({where} memory), more than "
            f"the limit of {max_bytes / GIB:.2f} GiB; use a coarser voxel, a smaller grid or a lower "
            f"supersample")
    st = stats if stats is not None else {}
    st.update(slabs=0, fallback_rows=0, fallback_columns=0)
    _, _, dz = (float(v) for v in grid.voxel)
    zlo = float(grid.bounds()[0][2])
    w = 1.0 / (dz * S * S)
    zmax = zlo + nz * dz  # as the CPU's _add_interval computes it
    shapes = [tuple(int(v) for v in (hi - lo)) for lo, hi in zip(p.mat_lo, p.mat_hi)]
    sizes = [int(np.prod(s)) for s in shapes]
    soff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def result(labels, store):
        fractions = [(tuple(int(v) for v in lo), arr) for lo, arr in zip(p.mat_lo, store)]
        return Voxelized(grid, labels, list(p.materials), fractions)

    if tile_tri.size == 0:  # no triangle meets a sub-ray: nothing on the grid
        if progress is not None:
            progress(ny, ny)
        return result(np.zeros(grid.shape, np.uint16), [np.zeros(s, dtype=dt) for s in shapes])

    d = cuda.to_device
    d_tx, d_ty, d_tz = d(p.tx), d(p.ty), d(p.tz)
    d_faces, d_tri_solid, d_tri_box = d(p.faces), d(p.tri_solid), d(p.tri_box)
    d_ptr, d_tri = d(tile_ptr), d(tile_tri)
    d_solid_mat, d_solid_obj = d(p.solid_mat), d(p.solid_obj)
    d_objs = d(np.array(p.objects or [0], dtype=np.int64))
    d_sy0 = d(np.ascontiguousarray(p.mat_lo[:, 1]))
    d_sny = d(np.ascontiguousarray(p.mat_hi[:, 1] - p.mat_lo[:, 1]))
    d_soff = d(soff)
    d_store = cuda.device_array(max(int(soff[-1]), 1), dtype=dt)
    d_labels = cuda.device_array(grid.shape, dtype=np.uint16)
    row_ptr_all = None  # the CPU's row buckets (fallback only)

    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        nrows = y1 - y0
        mlo, mhi, moff = _slab_boxes(p.mat_lo, p.mat_hi, y0, y1)
        olo, ohi, ooff = _slab_boxes(p.obj_lo, p.obj_hi, y0, y1)
        plo, phi, poff = _at_least_one_box(olo, ohi, ooff)
        d_mlo, d_mhi, d_moff = d(mlo), d(mhi), d(moff)
        d_olo, d_ohi, d_ooff = d(plo), d(phi), d(poff)
        d_mbuf = _zeros(moff[-1])
        d_obuf = _zeros(poff[-1])
        d_bad = d(np.zeros(nrows, dtype=np.int32))
        _launch(_columns, nrows * ntiles * TILE, d_tx, d_ty, d_tz, d_faces, d_tri_solid, d_tri_box, d_ptr, d_tri,
                ntiles, y0, nrows, nx, S, d_solid_mat, d_solid_obj, d_mlo, d_mhi, d_moff, d_mbuf, d_olo, d_ohi,
                d_ooff, d_obuf, zlo, dz, zmax, w, d_bad)
        bad = d_bad.copy_to_host()
        if bad.any():
            if row_ptr_all is None:
                row_ptr_all = np.searchsorted(p.entry_row, np.arange(ny + 1)).astype(np.int64)
            redo = [y0 + int(r) for r in np.flatnonzero(bad)]
            _redo_rows_on_cpu(p, redo, S, nx, nz, row_ptr_all, (mlo, mhi, moff, d_mbuf, olo, ohi, ooff, d_obuf),
                              zlo, dz, w)
            st["fallback_rows"] += len(redo)
            st["fallback_columns"] += int(bad.sum())
        _launch(_finish, nrows * nx, d_mbuf, d_mlo, d_mhi, d_moff, d_sy0, d_sny, d_soff, dt == np.uint8, d_store,
                d_obuf, d_olo, d_ohi, d_ooff, d_objs, y0, nrows, _LABEL_THRESHOLD, d_labels)
        del d_mbuf, d_obuf
        st["slabs"] += 1
        if progress is not None:
            progress(y1, ny)

    labels = d_labels.copy_to_host()
    store = [d_store[int(soff[m]):int(soff[m + 1])].copy_to_host().reshape(s) if sizes[m]
             else np.zeros(s, dtype=dt) for m, s in enumerate(shapes)]
    return result(labels, store)
