"""Voxel forward projectors (and their adjoints) for CT geometries, behind one interface.

Backends (see :data:`BACKENDS`, :func:`available_backends`):

* ``"numba"`` (always): the reference. Ray-driven **Siddon** projector (Amanatides-Woo voxel
  traversal): the weight of a voxel for a ray is the exact length (mm) of the ray inside the voxel,
  so ``forward`` is the exact line integral of the piecewise-constant volume. Rays are exactly
  those of :meth:`CTGeometry.rays` (source to the detector pixel centre), clipped to
  ``grid.bounds()`` and to the source-pixel segment. ``forward`` runs a ``prange`` over
  (view, row) pairs; ``back`` walks the same rays with the same arithmetic and scatters into
  per-thread volumes that are summed, so it is the exact transpose of ``forward`` (up to float32
  rounding).
* ``"cupy"`` (cupy imports and a CUDA device is present): the same Siddon traversal as a
  ``cupy.RawKernel`` (one thread per ray; ``back`` scatters with ``atomicAdd``).
* ``"astra"`` (astra imports and ``astra.use_cuda()`` is true): ASTRA's CUDA ``cone_vec``
  projector built from the same per-view source/detector vectors. ASTRA interpolates (Joseph-like)
  and its backprojector is voxel-driven, so it agrees with Siddon to interpolation accuracy and is
  not an exact transpose. Curved detectors are modelled as one 1-column flat "detector" per
  (view, column), so every ASTRA ray is still the source-to-pixel-centre ray. ASTRA's 3D functions
  abort the process without CUDA: they are never called unless ``astra.use_cuda()`` is true.
* ``"astra2d"`` (astra imports): ASTRA's CPU 2D ``fanflat_vec`` + ``line_fanflat`` projector (the
  exact ray/pixel intersection length, i.e. Siddon) for single-row geometries whose views share one
  ``z``: the slice of the grid containing that ``z`` is projected. Meant for cross-checking the
  numba projector on machines without a GPU.

Sinograms are ``(views, rows, cols)`` float32 line integrals (mm x volume units); volumes are
``(nz, ny, nx)`` float32 on a :class:`VolumeGrid`.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from xraybag.engine.ct.geometry import CTGeometry, VolumeGrid
from xraybag.engine.ct.siddon_cuda import siddon_kernel
from xraybag.errors import XraybagError

BACK_BUFFER_BYTES = 4 << 30  # cap on the per-thread volumes of the numba backprojector


# ----------------------------------------------------------------------------- view parameters


def _view_params(geom: CTGeometry):
    """Per-view source, central direction c and column direction e_u (V, 3) float64 each."""
    b = np.asarray(geom.angles, dtype=np.float64)
    cb, sb = np.cos(b), np.sin(b)
    src = np.stack([geom.sid * cb, geom.sid * sb, np.asarray(geom.z, dtype=np.float64)], axis=1)
    c = np.stack([-cb, -sb, np.zeros_like(b)], axis=1)
    eu = np.stack([-sb, cb, np.zeros_like(b)], axis=1)
    return np.ascontiguousarray(src), np.ascontiguousarray(c), np.ascontiguousarray(eu)


def _grid_params(grid: VolumeGrid):
    lo = np.ascontiguousarray(grid.bounds()[0], dtype=np.float64)  # (x, y, z) outer corner
    h = np.asarray(grid.voxel, dtype=np.float64)
    n = np.array(grid.shape[::-1], dtype=np.int64)  # (nx, ny, nz)
    return lo, h, n


# ----------------------------------------------------------------------------- numba Siddon


@numba.njit(cache=True, inline="always")
def _ray_dir(src, c, eu, k, u_j, v_i, sdd, curved):
    """Unit direction and source-pixel distance of ray (k, i, j) (as CTGeometry.pixels/rays)."""
    if curved:
        g = u_j / sdd
        cg, sg = math.cos(g), math.sin(g)
        hx = sdd * (cg * c[k, 0] + sg * eu[k, 0])
        hy = sdd * (cg * c[k, 1] + sg * eu[k, 1])
        hz = sdd * (cg * c[k, 2] + sg * eu[k, 2])
    else:
        hx = sdd * c[k, 0] + u_j * eu[k, 0]
        hy = sdd * c[k, 1] + u_j * eu[k, 1]
        hz = sdd * c[k, 2] + u_j * eu[k, 2]
    # pixel = src + horiz + v e_v with e_v = (0, 0, 1); direction = pixel - src
    px = src[k, 0] + hx
    py = src[k, 1] + hy
    pz = src[k, 2] + hz + v_i
    dx = px - src[k, 0]
    dy = py - src[k, 1]
    dz = pz - src[k, 2]
    L = math.sqrt(dx * dx + dy * dy + dz * dz)
    return dx / L, dy / L, dz / L, L


@numba.njit(cache=True, inline="always")
def _siddon(vol, out, mode, val, sx, sy, sz, dx, dy, dz, tmax, lo, h, n):
    """Walk one ray (unit direction) over t in [0, tmax] through the grid. mode 0: return
    sum(vol * length); mode 1: out += val * length (returns 0)."""
    s = (sx, sy, sz)
    d = (dx, dy, dz)
    t0 = 0.0
    t1 = tmax
    for a in range(3):
        if d[a] == 0.0:
            if s[a] < lo[a] or s[a] > lo[a] + n[a] * h[a]:
                return 0.0
        else:
            ta = (lo[a] - s[a]) / d[a]
            tb = (lo[a] + n[a] * h[a] - s[a]) / d[a]
            if ta > tb:
                ta, tb = tb, ta
            if ta > t0:
                t0 = ta
            if tb < t1:
                t1 = tb
    if t1 <= t0:
        return 0.0
    tm = 0.5 * (t0 + t1) if t1 - t0 < 1e-9 else t0
    idx = np.empty(3, np.int64)
    step = np.empty(3, np.int64)
    tnext = np.empty(3, np.float64)
    for a in range(3):
        p = s[a] + d[a] * tm
        i = int(math.floor((p - lo[a]) / h[a]))
        if i < 0:
            i = 0
        if i > n[a] - 1:
            i = n[a] - 1
        idx[a] = i
        if d[a] > 0.0:
            step[a] = 1
            tnext[a] = (lo[a] + (i + 1) * h[a] - s[a]) / d[a]
        elif d[a] < 0.0:
            step[a] = -1
            tnext[a] = (lo[a] + i * h[a] - s[a]) / d[a]
        else:
            step[a] = 0
            tnext[a] = np.inf
    acc = 0.0
    t = t0
    while True:
        a = 0
        if tnext[1] < tnext[a]:
            a = 1
        if tnext[2] < tnext[a]:
            a = 2
        te = tnext[a] if tnext[a] < t1 else t1
        seg = te - t
        if seg > 0.0:
            if mode == 0:
                acc += vol[idx[2], idx[1], idx[0]] * seg
            else:
                out[idx[2], idx[1], idx[0]] += val * seg
            t = te
        if tnext[a] >= t1:
            break
        idx[a] += step[a]
        if idx[a] < 0 or idx[a] >= n[a]:
            break
        if step[a] > 0:
            tnext[a] = (lo[a] + (idx[a] + 1) * h[a] - s[a]) / d[a]
        else:
            tnext[a] = (lo[a] + idx[a] * h[a] - s[a]) / d[a]
    return acc


@numba.njit(cache=True, parallel=True)
def _fp_numba(vol, sino, src, c, eu, u, v, sdd, curved, lo, h, n):
    V, R, C = sino.shape
    dummy = np.zeros((1, 1, 1), np.float32)
    for kr in numba.prange(V * R):
        k = kr // R
        i = kr - k * R
        for j in range(C):
            dx, dy, dz, L = _ray_dir(src, c, eu, k, u[j], v[i], sdd, curved)
            sino[k, i, j] = _siddon(vol, dummy, 0, 0.0, src[k, 0], src[k, 1], src[k, 2],
                                    dx, dy, dz, L, lo, h, n)


@numba.njit(cache=True, parallel=True)
def _bp_numba(sino, bufs, src, c, eu, u, v, sdd, curved, lo, h, n):
    V, R, C = sino.shape
    T = bufs.shape[0]
    dummy = np.zeros((1, 1, 1), np.float32)
    for t in numba.prange(T):
        out = bufs[t]
        for kr in range(t, V * R, T):
            k = kr // R
            i = kr - k * R
            for j in range(C):
                val = sino[k, i, j]
                if val == 0.0:
                    continue
                dx, dy, dz, L = _ray_dir(src, c, eu, k, u[j], v[i], sdd, curved)
                _siddon(dummy, out, 1, val, src[k, 0], src[k, 1], src[k, 2], dx, dy, dz, L,
                        lo, h, n)


class _NumbaBackend:
    name = "numba"

    def __init__(self, geom: CTGeometry, grid: VolumeGrid):
        self.geom, self.grid = geom, grid
        self.src, self.c, self.eu = _view_params(geom)
        self.u = np.ascontiguousarray(geom.u(), dtype=np.float64)
        self.v = np.ascontiguousarray(geom.v(), dtype=np.float64)
        self.lo, self.h, self.n = _grid_params(grid)

    def forward(self, volume: np.ndarray) -> np.ndarray:
        sino = np.zeros(self.geom.shape, dtype=np.float32)
        if sino.size and volume.size:
            _fp_numba(volume, sino, self.src, self.c, self.eu, self.u, self.v,
                      float(self.geom.sdd), bool(self.geom.curved), self.lo, self.h, self.n)
        return sino

    def back(self, sino: np.ndarray) -> np.ndarray:
        shape = self.grid.shape
        vol_bytes = max(int(np.prod(shape)) * 4, 1)
        T = max(1, min(numba.get_num_threads(), BACK_BUFFER_BYTES // vol_bytes,
                       self.geom.views * self.geom.rows))
        bufs = np.zeros((T,) + tuple(shape), dtype=np.float32)
        if sino.size and bufs.size:
            _bp_numba(sino, bufs, self.src, self.c, self.eu, self.u, self.v,
                      float(self.geom.sdd), bool(self.geom.curved), self.lo, self.h, self.n)
        if T == 1:
            return bufs[0]
        return bufs.sum(axis=0, dtype=np.float32)


# ----------------------------------------------------------------------------- cupy (CUDA)

class _CupyBackend:
    name = "cupy"

    def __init__(self, geom: CTGeometry, grid: VolumeGrid):
        import cupy as cp

        self.cp = cp
        self.geom, self.grid = geom, grid
        src, c, eu = _view_params(geom)
        self.src, self.c, self.eu = (cp.asarray(a) for a in (src, c, eu))
        self.u = cp.asarray(np.ascontiguousarray(geom.u(), dtype=np.float64))
        self.v = cp.asarray(np.ascontiguousarray(geom.v(), dtype=np.float64))
        self.lo, self.h, self.n = _grid_params(grid)

    def _launch(self, mode, vol, out, sino):
        cp = self.cp
        V, R, C = self.geom.shape
        total = V * R * C
        if total == 0:
            return
        block = 128
        grid = (total + block - 1) // block
        lo, h, n = self.lo, self.h, self.n
        siddon_kernel()(
            (grid,), (block,),
            (np.int32(mode), vol, out, sino, self.src, self.c, self.eu, self.u, self.v,
             np.int64(V), np.int64(R), np.int64(C), np.float64(self.geom.sdd),
             np.int32(1 if self.geom.curved else 0),
             np.float64(lo[0]), np.float64(lo[1]), np.float64(lo[2]),
             np.float64(h[0]), np.float64(h[1]), np.float64(h[2]),
             np.int64(n[0]), np.int64(n[1]), np.int64(n[2])))
        cp.cuda.get_current_stream().synchronize()

    def forward(self, volume: np.ndarray) -> np.ndarray:
        cp = self.cp
        vol = cp.ascontiguousarray(cp.asarray(volume, dtype=cp.float32))
        sino = cp.zeros(self.geom.shape, dtype=cp.float32)
        dummy = cp.zeros(1, dtype=cp.float32)
        self._launch(0, vol, dummy, sino)
        return cp.asnumpy(sino)

    def back(self, sino: np.ndarray) -> np.ndarray:
        cp = self.cp
        s = cp.ascontiguousarray(cp.asarray(sino, dtype=cp.float32))
        out = cp.zeros(self.grid.shape, dtype=cp.float32)
        dummy = cp.zeros(1, dtype=cp.float32)
        self._launch(1, dummy, out, s)
        return cp.asnumpy(out)


# ----------------------------------------------------------------------------- ASTRA


def _astra_pixel_frames(geom: CTGeometry):
    """Per view: source (V,3), detector centre (V,3), u (V,3), v (V,3) for a flat detector; for
    a curved one, per (view, column): source, pixel-column centre (v = 0), tangent u, v; shapes
    (V*C, 3). ASTRA's pixel (i, j) is d + (j - (cols-1)/2) u + (i - (rows-1)/2) v."""
    src, c, eu = _view_params(geom)
    ev = np.array([0.0, 0.0, 1.0])
    V, C = geom.views, geom.cols
    if not geom.curved:
        d = src + geom.sdd * c + (geom.col_offset * geom.col_pitch) * eu
        u = geom.col_pitch * eu
        v = np.broadcast_to(geom.row_pitch * ev, (V, 3))
        return src, d, u, np.ascontiguousarray(v)
    g = geom.u() / geom.sdd  # (C,)
    cg, sg = np.cos(g)[None, :, None], np.sin(g)[None, :, None]
    d = src[:, None, :] + geom.sdd * (cg * c[:, None, :] + sg * eu[:, None, :])
    u = geom.col_pitch * (-sg * c[:, None, :] + cg * eu[:, None, :])
    s = np.broadcast_to(src[:, None, :], (V, C, 3))
    v = np.broadcast_to(geom.row_pitch * ev, (V, C, 3))
    return tuple(np.ascontiguousarray(a.reshape(V * C, 3)) for a in (s, d, u, v))


class _AstraBackend:
    """ASTRA CUDA cone_vec (3D). Never constructed unless astra.use_cuda() is true."""

    name = "astra"

    def __init__(self, geom: CTGeometry, grid: VolumeGrid):
        import astra

        if not astra.use_cuda():  # the 3D functions would abort the process
            raise XraybagError("the astra backend needs CUDA (astra.use_cuda() is false)")
        self.astra = astra
        self.geom, self.grid = geom, grid
        s, d, u, v = _astra_pixel_frames(geom)
        self.det_cols = geom.cols if not geom.curved else 1
        vec = np.concatenate([s, d, u, v], axis=1)
        self.proj_geom = astra.create_proj_geom("cone_vec", geom.rows, self.det_cols, vec)
        b = grid.bounds()
        nz, ny, nx = grid.shape
        # ASTRA 3D volumes are (slices, rows, cols) = (z, y, x), index increasing with the world
        # coordinate along each axis
        self.vol_geom = astra.create_vol_geom(ny, nx, nz, b[0, 0], b[1, 0], b[0, 1], b[1, 1],
                                              b[0, 2], b[1, 2])

    def forward(self, volume: np.ndarray) -> np.ndarray:
        astra = self.astra
        vol = np.ascontiguousarray(volume, dtype=np.float32)
        sid, data = astra.create_sino3d_gpu(vol, self.proj_geom, self.vol_geom, returnData=True)
        astra.data3d.delete(sid)
        V, R, C = self.geom.shape
        if self.geom.curved:  # (rows, V*C, 1)
            data = data.reshape(R, V, C)
        return np.ascontiguousarray(np.transpose(data, (1, 0, 2)), dtype=np.float32)

    def back(self, sino: np.ndarray) -> np.ndarray:
        astra = self.astra
        V, R, C = self.geom.shape
        data = np.transpose(np.asarray(sino, dtype=np.float32), (1, 0, 2))  # (rows, V, C)
        if self.geom.curved:
            data = data.reshape(R, V * C, 1)
        data = np.ascontiguousarray(data)
        vid, vol = astra.create_backprojection3d_gpu(data, self.proj_geom, self.vol_geom,
                                                     returnData=True)
        astra.data3d.delete(vid)
        return np.ascontiguousarray(vol, dtype=np.float32)


class _Astra2DBackend:
    """ASTRA CPU fanflat_vec + line_fanflat, for single-row geometries at one z."""

    name = "astra2d"

    def __init__(self, geom: CTGeometry, grid: VolumeGrid):
        import astra

        if geom.rows != 1:
            raise XraybagError(f"the astra2d backend needs a single-row detector, got "
                               f"{geom.rows} rows")
        z = np.asarray(geom.z, dtype=np.float64)
        if z.size and np.ptp(z) > 0:
            raise XraybagError("the astra2d backend needs all views at one z")
        self.astra = astra
        self.geom, self.grid = geom, grid
        z0 = float(z[0]) if z.size else 0.0
        b = grid.bounds()
        nz, ny, nx = grid.shape
        k = int(math.floor((z0 - b[0, 2]) / grid.voxel[2]))
        self.slice = k if 0 <= k < nz else None
        s, d, u, _ = _astra_pixel_frames(geom)
        vec = np.concatenate([s[:, :2], d[:, :2], u[:, :2]], axis=1)
        self.det_cols = geom.cols if not geom.curved else 1
        self.proj_geom = astra.create_proj_geom("fanflat_vec", self.det_cols, vec)
        self.vol_geom = astra.create_vol_geom(ny, nx, b[0, 0], b[1, 0], b[0, 1], b[1, 1])
        self.pid = astra.create_projector("line_fanflat", self.proj_geom, self.vol_geom)

    def __del__(self):
        try:
            self.astra.projector.delete(self.pid)
        except Exception:
            pass

    # ASTRA 2D images have row 0 at the top (max y): flip rows to our y-up [y, x] order
    def forward(self, volume: np.ndarray) -> np.ndarray:
        astra = self.astra
        V, _, C = self.geom.shape
        if self.slice is None:
            return np.zeros(self.geom.shape, dtype=np.float32)
        img = np.ascontiguousarray(np.asarray(volume, dtype=np.float32)[self.slice, ::-1, :])
        sid, data = astra.create_sino(img, self.pid, returnData=True)
        astra.data2d.delete(sid)
        return np.ascontiguousarray(data.reshape(V, 1, C), dtype=np.float32)

    def back(self, sino: np.ndarray) -> np.ndarray:
        astra = self.astra
        V, _, C = self.geom.shape
        out = np.zeros(self.grid.shape, dtype=np.float32)
        if self.slice is None:
            return out
        data = np.ascontiguousarray(np.asarray(sino, dtype=np.float32).reshape(
            V * (C // self.det_cols), self.det_cols))
        bid, img = astra.create_backprojection(data, self.pid, returnData=True)
        astra.data2d.delete(bid)
        out[self.slice] = img[::-1, :]
        return out


# ----------------------------------------------------------------------------- registry


#: every projector backend by name; which of them run here is probed on first use
#: (:func:`backend_problem`), never at import: probing CUDA costs time and can print warnings.
BACKENDS: dict[str, type] = {
    "numba": _NumbaBackend,
    "cupy": _CupyBackend,
    "astra": _AstraBackend,
    "astra2d": _Astra2DBackend,
}


@functools.lru_cache(maxsize=None)
def backend_problem(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine (one phrase), or None when it can.

    Probed once per process, on first use: cupy needs a CUDA device; ASTRA's 3D projector needs
    ``astra.use_cuda()`` (its 3D calls abort the process without CUDA); ASTRA's 2D one needs only
    the package."""
    if name not in BACKENDS:
        return f"unknown projector backend {name!r} (known: {', '.join(BACKENDS)})"
    if name == "numba":
        return None
    if name == "cupy":
        try:
            import cupy
        except Exception:  # noqa: BLE001 - not installed, or a broken CUDA install
            return "cupy is not installed (pip install 'xraybag[gpu]' on a machine with CUDA)"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # noqa: BLE001 - no driver
            count = 0
        return None if count > 0 else "cupy finds no CUDA device on this machine"
    try:
        import astra
    except Exception:  # noqa: BLE001
        return "ASTRA is not installed (pip install astra-toolbox)"
    if name == "astra" and not astra.use_cuda():
        return "ASTRA's 3D projector needs CUDA, and this machine has none (astra.use_cuda() is false)"
    return None


def available_backends() -> list[str]:
    """The backends that run here (probed on the first call)."""
    return [name for name in BACKENDS if backend_problem(name) is None]


class Projector:
    """Forward projector ``A`` (volume -> line integrals) and its adjoint on one geometry/grid."""

    def __init__(self, geom: CTGeometry, grid: VolumeGrid, backend: str = "numba"):
        problem = backend_problem(backend)
        if problem is not None:
            raise XraybagError(f"projector backend {backend!r} is not available here: {problem} "
                               f"(available: {', '.join(available_backends())})")
        self.geom, self.grid, self.backend = geom, grid, backend
        self._impl = BACKENDS[backend](geom, grid)

    def forward(self, volume: np.ndarray) -> np.ndarray:
        """(views, rows, cols) float32: sum over each ray of volume x length (mm)."""
        volume = np.ascontiguousarray(volume, dtype=np.float32)
        if volume.shape != tuple(self.grid.shape):
            raise XraybagError(f"volume shape {volume.shape} does not match the grid "
                               f"{tuple(self.grid.shape)}")
        return self._impl.forward(volume)

    def back(self, sino: np.ndarray) -> np.ndarray:
        """(nz, ny, nx) float32: the adjoint of :meth:`forward` applied to ``sino``."""
        sino = np.ascontiguousarray(sino, dtype=np.float32)
        if sino.shape != tuple(self.geom.shape):
            raise XraybagError(f"sinogram shape {sino.shape} does not match the geometry "
                               f"{tuple(self.geom.shape)}")
        return self._impl.back(sino)


def project_materials(vox, geom: CTGeometry, backend: str = "numba"):
    """(materials, L): L (views, rows, cols, M) float32 path length (mm) of every material of a
    :class:`~xraybag.engine.ct.voxelize.Voxelized` along every ray (each material's fraction box
    projected on its cropped grid)."""
    mats = list(vox.materials)
    L = np.zeros(tuple(geom.shape) + (len(mats),), dtype=np.float32)
    for m, name in enumerate(mats):
        sub, frac = vox.box(name)
        if frac.size == 0:
            continue
        L[..., m] = Projector(geom, sub, backend).forward(frac)
    return mats, L
