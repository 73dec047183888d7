"""CT reconstruction: filtered backprojection (fan, cone, helical) and iterative SIRT / CGLS.

All reconstructions take sinograms ``(views, rows, cols)`` of line integrals on a
:class:`~xraybag.engine.ct.geometry.CTGeometry` and return float32 volumes ``[z, y, x]`` on a
:class:`~xraybag.engine.ct.geometry.VolumeGrid`, in 1/mm. Several sinograms (e.g. low / high energy,
Compton / photoelectric) are reconstructed in one geometric pass: the backprojection kernels
accumulate every channel at once.

Methods (``reconstruct(method="fbp")`` dispatches on ``geom.kind``):

* ``"axial"`` (one detector row, one full rotation per table position): equiangular (curved) or
  equispaced (flat) fan-beam FBP of Kak & Slaney (ch. 3.4), slice by slice; each grid z-slice
  is linearly interpolated between the two nearest acquired slices (nearest slice beyond the
  ends, within half a slice thickness; zero further out).
* ``"circular"`` (cone beam, one full 360 degree rotation): Feldkamp-Davis-Kress (1984) with
  cosine pre-weighting ``D cos(gamma) cos(kappa)`` (``kappa`` = the ray's elevation), a row-wise
  ramp filter and a voxel-driven cone backprojection with distance weighting, for flat and
  cylindrical detectors. Exact on the central slice; off the mid-plane the usual FDK
  approximation errors (a few percent drop at large cone angles) apply.
* ``"helical"``: fan-to-parallel rebinning row by row (a fan ray ``(beta, gamma)`` is the parallel
  ray ``theta = beta - gamma + pi/2``, ``t = D sin(gamma)``), then *single-slice rebinning* with
  180 degree linear interpolation along z: for every grid slice ``z0`` and every parallel ray
  ``(theta, t)`` with ``theta`` in ``[0, pi)``, all measured rays on the same line (every half
  turn ``theta + n pi``, with ``t`` mirrored on odd ``n``, and every detector row) are candidates;
  each is given the z of its point closest to the rotation axis (``z_src + v D cos(gamma) / sdd``
  on a curved detector, ``z_src + v D cos(gamma)^2 / sdd`` on a flat one) and the two nearest
  candidates below and above ``z0`` are linearly interpolated. The resulting 2D parallel sinogram
  of each slice is ramp filtered and backprojected (2D parallel FBP). Rebinning and z
  interpolation are fused (bilinear in view and column, linear in z), so no rebinned copy of
  the scan is stored; slices are processed in slabs.

  Cone-angle limit (SSRB): a rebinned ray is tilted by the cone angle ``kappa`` of the row used,
  but it is treated as lying in the plane ``z0``. Where it crosses a voxel at distance ``r``
  from the axis, its true z differs from ``z0`` by about ``r tan(kappa)``; with
  ``tan(kappa) <= (rows row_pitch / 2) / sdd`` for the outermost row. This is below half a
  voxel ``dz / 2`` for every voxel within ``r < dz sdd / (rows row_pitch)``. Example: 16 rows of
  1.0 mm at sdd 1350 (tan kappa = 0.0059) and 1 mm slices keep the error under half a voxel out
  to r = 84 mm, and under one voxel to r = 169 mm; with 32 rows those radii halve. Beyond it
  the reconstruction is blurred along z and shows the classic cone-beam streaks at sharp
  z-edges; values of objects that are long along z (the interiors of bags' contents) are not
  biased. Use SIRT/CGLS with a cone-beam projector where this matters.

* ``method="sirt"``: SIRT in ASTRA's form ``x += C A^T R (b - A x)``, ``R = 1 / row sums``,
  ``C = 1 / column sums``, optional non-negativity; ``method="cgls"``: conjugate gradients on
  the normal equations. Both need a projector with ``forward(vol) -> sino`` and
  ``back(sino) -> vol``; by default :class:`xraybag.engine.ct.project.Projector`.

Conventions (as in :mod:`.geometry`): source of view ``k`` at ``(sid cos b, sid sin b, z_k)``,
central ray ``-(cos b, sin b, 0)``, columns along ``(-sin b, cos b, 0)``, rows along ``+z``.
Parallel projections are ``p(theta, t) = integral of f over the line x cos theta + y sin theta = t``.
"""


from __future__ import annotations

import math
from typing import Callable

import numpy as np

from xraybag.engine.ct.backproject import (
    bp_cone,
    bp_parallel,
    rebin_rows,
    ssrb_gather,
    ssrb_plan,
    used_views,
)
from xraybag.engine.ct.filters import (
    FILTERS,
    check_filter,
    filter_axis,
    hounsfield,
    iso_sampling,
    modified_hounsfield,
    ramp_filter,
    ramp_kernel,
    short_response,
    voxel_cutoff,
)
from xraybag.engine.ct.geometry import CTGeometry, VolumeGrid
from xraybag.engine.ct.iterative import cgls, default_projector, sirt

__all__ = [
    "FILTERS", "reconstruct", "hounsfield", "modified_hounsfield", "ramp_kernel", "ramp_filter",
    "rebin_fan_to_parallel", "fbp_parallel_2d", "fbp_fan", "fdk", "helical_ssrb", "sirt", "cgls",
    "ViewStream",
]

Progress = Callable[[int, int], None] | None

#: grid slices per slab of helical FBP on the CPU: the backprojection computes a pixel's detector
#: position and weight once for every slice and channel of the slab, so larger slabs spread that
#: cost (about 15 MB of work arrays a slice for the DEBISim-sized bag); on the GPU, 16
HELICAL_SLAB = 32
HELICAL_SLAB_GPU = 16

# ----------------------------------------------------------------------------- helpers


def _as_channels(sinograms) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(sinograms, np.ndarray):
        return ["_"], [sinograms]
    keys = list(sinograms)
    return keys, [np.asarray(sinograms[k]) for k in keys]


def _angle_step(geom: CTGeometry) -> float:
    a = np.asarray(geom.angles, dtype=np.float64)
    if a.size < 2:
        raise ValueError("need at least two views")
    d = np.diff(a)
    step = float(np.mean(d))
    if step <= 0 or np.max(np.abs(d - step)) > 1e-6 * max(1.0, abs(step)) + 1e-9:
        raise ValueError("reconstruction needs uniformly increasing source angles")
    return step


def _column_of_gamma(geom: CTGeometry, gamma: np.ndarray) -> np.ndarray:
    """Fractional column index of the fan angle ``gamma``."""
    u = geom.sdd * gamma if geom.curved else geom.sdd * np.tan(gamma)
    u0 = float(geom.u()[0])
    return (u - u0) / geom.col_pitch


def _t_grid(geom: CTGeometry, n_t: int | None = None, dt: float | None = None):
    """Symmetric parallel-detector grid t_j = (j - (T-1)/2) dt covering the field of view."""
    D = geom.sid
    if dt is None:
        dt = D * geom.col_pitch / geom.sdd
    gmax = float(np.max(np.abs(geom.gamma())))
    if n_t is None:
        n_t = 2 * int(math.floor(D * math.sin(gmax) / dt)) + 1
    t = (np.arange(n_t) - (n_t - 1) / 2.0) * dt
    t = t[np.abs(t) < D]
    return t, float(dt)


def _rmax(t: np.ndarray, dt: float) -> float:
    return float(np.max(np.abs(t))) - dt


def _xy(grid: VolumeGrid):
    return grid.axis("x").astype(np.float64), grid.axis("y").astype(np.float64)


def _tick(progress, done, total):
    if progress is not None:
        progress(done, total)


# ----------------------------------------------------------------------------- 2D parallel


def fbp_parallel_2d(sinos, theta: np.ndarray, t: np.ndarray, grid: VolumeGrid,
                    filter: str = "ram-lak", filtered: bool = False) -> np.ndarray:
    """2D parallel-beam FBP of every slice.

    ``sinos`` (C, S, M, T) or (S, M, T) or (M, T): parallel projections ``p(theta_m, t_j)`` of
    each of S slices (S = grid.shape[0]); ``theta`` uniform over ``pi`` or ``2 pi`` (M angles),
    ``t`` uniform. Returns (C, S, ny, nx) float32 (leading dims as given).
    ``f(x, y) = dtheta sum_m q(theta_m, x cos theta_m + y sin theta_m)``, halved over 2 pi.
    """
    p = np.asarray(sinos, dtype=np.float32)
    squeeze = p.ndim
    while p.ndim < 4:
        p = p[None]
    C, S, M, T = p.shape
    theta = np.asarray(theta, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    dt = float(t[1] - t[0])
    span = M * float(theta[1] - theta[0]) if M > 1 else math.pi
    dtheta = span / M
    scale = dtheta * (math.pi / span)  # 2 pi data: each line measured twice
    q = p if filtered else ramp_filter(p, dt, filter, axis=-1, cutoff=voxel_cutoff(dt, grid))
    q = np.ascontiguousarray(q.transpose(2, 3, 1, 0))  # (M, T, S, C)
    xs, ys = _xy(grid)
    out = np.zeros((C, S, ys.size, xs.size), dtype=np.float32)
    bp_parallel(q, np.cos(theta), np.sin(theta), float(t[0]), dt, xs, ys, _rmax(t, dt),
                 np.float32(scale), out, 0)
    if squeeze == 3:
        return out[0]
    if squeeze == 2:
        return out[0, 0]
    return out


def rebin_fan_to_parallel(sino: np.ndarray, geom: CTGeometry, n_t: int | None = None,
                          dt: float | None = None, views=None):
    """Rebin fan-beam data of one rotation to parallel beam, row by row.

    The fan ray ``(beta, gamma)`` is the parallel ray ``theta = beta - gamma + pi/2``,
    ``t = sid sin(gamma)``. Output angles ``theta_m = angles[0] + pi/2 + m dbeta`` for
    ``m < views`` (default: all views, i.e. 2 pi for a full rotation), bilinear in (view,
    column). Returns ``(par (M, rows, T) float32, theta (M,), t (T,))``; rays needing a view
    outside the scan are 0.
    """
    sino = np.ascontiguousarray(sino, dtype=np.float32)
    if sino.ndim == 2:
        sino = sino[:, None, :]
    dbeta = _angle_step(geom)
    t, dt = _t_grid(geom, n_t, dt)
    gam = np.arcsin(t / geom.sid)
    M = geom.views if views is None else int(views)
    theta = geom.angles[0] + math.pi / 2 + dbeta * np.arange(M)
    # view index of (theta_m, t_j): beta = theta - pi/2 + gamma; wrap around a full rotation
    kf = np.arange(M)[:, None] + gam[None, :] / dbeta
    if geom.kind != "helical" and abs(geom.views * dbeta - 2 * math.pi) < 1e-6:
        kf = np.mod(kf, geom.views)
        sino = np.concatenate([sino, sino[:1]], axis=0)  # periodic: view V == view 0
    col = _column_of_gamma(geom, gam)
    out = np.zeros((M, sino.shape[1], t.size), dtype=np.float32)
    rebin_rows(sino, np.ascontiguousarray(kf), np.ascontiguousarray(col), out)
    return out, theta, t


# ----------------------------------------------------------------------------- fan / cone


def _cone_weights(geom: CTGeometry) -> np.ndarray:
    """(rows, cols) FDK pre-weights ``D cos(gamma) cos(kappa)``."""
    D = geom.sid
    u, v = geom.u(), geom.v()
    if geom.curved:
        g = u / geom.sdd
        w = D * np.cos(g)[None, :] * (geom.sdd / np.sqrt(geom.sdd ** 2 + v ** 2))[:, None]
    else:
        s = u * D / geom.sdd
        z = v * D / geom.sdd
        w = D / np.sqrt(D ** 2 + s[None, :] ** 2 + z[:, None] ** 2)
    return w


def _filter_cone(sinos: list[np.ndarray], geom: CTGeometry, filter: str,
                 cutoff: float = 1.0) -> np.ndarray:
    """Weighted, ramp-filtered projections (V, R, N, C), including the fan factor 1/2."""
    w = _cone_weights(geom).astype(np.float32)
    V, R, N = geom.shape
    q = np.empty((V, R, N, len(sinos)), dtype=np.float32)
    for c, s in enumerate(sinos):
        s = np.asarray(s, dtype=np.float32).reshape(V, R, N)
        if geom.curved:
            f = ramp_filter(s * w, geom.col_pitch / geom.sdd, filter, equiangular=True,
                            cutoff=cutoff)
        else:
            f = ramp_filter(s * w, geom.col_pitch * geom.sid / geom.sdd, filter, cutoff=cutoff)
        q[..., c] = 0.5 * f
    return q


def _bp_cone_call(q, geom, xs, ys, zs, planar, out, backend: str = "numba"):
    if backend == "cuda":
        from xraybag.engine.ct.backproject_cuda import bp_cone_cuda as backproject
    else:
        backproject = bp_cone
    dbeta = 2 * math.pi / geom.views
    u0 = float(geom.u()[0])
    v0 = float(geom.v()[0])
    du = geom.col_pitch
    dv = geom.row_pitch
    scale = dbeta
    backproject(q, np.cos(geom.angles), np.sin(geom.angles), np.asarray(geom.z, dtype=np.float64),
             xs, ys, np.asarray(zs, dtype=np.float64), float(geom.sid), float(geom.sdd), u0, du,
             v0, dv, bool(geom.curved), bool(planar), np.float32(scale), out)


def fdk(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
        progress: Progress = None, backend: str = "numba") -> np.ndarray:
    """FDK cone-beam FBP of one full circular rotation (flat or curved detector); ``backend``
    "cuda" backprojects on the GPU.

    ``sinos``: (V, R, N) or a list of them. Returns (C, nz, ny, nx) float32 (C = len(list)) or
    (nz, ny, nx) for a single array.
    """
    single = isinstance(sinos, np.ndarray)
    lst = [sinos] if single else list(sinos)
    q = _filter_cone(lst, geom, filter, voxel_cutoff(iso_sampling(geom), grid))
    xs, ys = _xy(grid)
    zs = grid.axis("z")
    out = np.zeros((len(lst), *grid.shape), dtype=np.float32)
    _bp_cone_call(q, geom, xs, ys, zs, planar=geom.rows == 1, out=out, backend=backend)
    _tick(progress, 1, 1)
    return out[0] if single else out


def fbp_fan(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
            progress: Progress = None, backend: str = "numba") -> np.ndarray:
    """Fan-beam FBP (Kak & Slaney 3.4, full rotation), slice by slice for axial scans; ``backend``
    "cuda" backprojects on the GPU.

    Each distinct table position of ``geom`` is reconstructed as a 2D slice; grid z-slices are
    interpolated linearly between the two nearest acquired slices (nearest beyond the ends,
    within half a slice thickness, else 0). ``sinos``: (V, 1, N) or a list. Returns
    (C, nz, ny, nx) or (nz, ny, nx).
    """
    single = isinstance(sinos, np.ndarray)
    lst = [np.asarray(s, dtype=np.float32).reshape(geom.views, geom.rows, geom.cols)
           for s in ([sinos] if single else sinos)]
    if geom.rows != 1:
        lst = [s[:, geom.rows // 2: geom.rows // 2 + 1] for s in lst]  # central row only
    zpos = np.unique(np.round(np.asarray(geom.z, dtype=np.float64), 9))
    zg = grid.axis("z")
    thick = geom.row_pitch * geom.sid / geom.sdd
    # which acquired slices are needed, and the weights of each grid slice
    idx = np.searchsorted(zpos, zg)
    pairs = []
    for iz, z in enumerate(zg):
        if z <= zpos[0]:
            pairs.append([(0, 1.0)] if zpos[0] - z <= thick / 2 + 1e-9 else [])
        elif z >= zpos[-1]:
            pairs.append([(zpos.size - 1, 1.0)] if z - zpos[-1] <= thick / 2 + 1e-9 else [])
        else:
            b = idx[iz]
            a = b - 1
            w = (z - zpos[a]) / (zpos[b] - zpos[a])
            pairs.append([(a, 1.0 - w), (b, w)])
    need = sorted({a for p in pairs for a, w in p if w > 0})
    xs, ys = _xy(grid)
    C = len(lst)
    out = np.zeros((C, *grid.shape), dtype=np.float32)
    slices = {}
    for n, a in enumerate(need):
        sel = np.flatnonzero(np.abs(geom.z - zpos[a]) < 1e-6)
        sub = geom.subset(sel)
        q = _filter_cone([s[sel] for s in lst], sub, filter, voxel_cutoff(iso_sampling(geom), grid))
        img = np.zeros((C, 1, ys.size, xs.size), dtype=np.float32)
        _bp_cone_call(q, sub, xs, ys, np.zeros(1), planar=True, out=img, backend=backend)
        slices[a] = img[:, 0]
        _tick(progress, n + 1, len(need))
    for iz, p in enumerate(pairs):
        for a, w in p:
            if w > 0:
                out[:, iz] += w * slices[a]
    return out[0] if single else out


# ----------------------------------------------------------------------------- helical


class ViewStream:
    """The views of a scan's channels, made in view order and kept only while needed.

    ``produce(start, stop)`` returns one float32 array ``(stop - start, rows, cols)`` per channel
    (e.g. trace, detect, ``-ln`` and decompose one chunk of views); it is called for consecutive
    chunks of ``chunk`` views, in order, each exactly once, so random draws made inside it follow
    the view order whatever the consumer does. :meth:`window` returns contiguous views of any
    range not yet released; :meth:`release` lets the buffer drop the views before an index. The
    buffer then holds a sliding window of views instead of whole sinograms.
    """

    def __init__(self, produce, shape, n_channels: int, chunk: int):
        self.produce = produce
        self.views, self.rows, self.cols = (int(x) for x in shape)
        self.n_channels = int(n_channels)
        self.chunk = max(1, int(chunk))
        self.base = 0  # view index of buf[:, 0]
        self.top = 0  # views produced so far
        self.keep_from = 0  # views before this are released
        self.buf = np.empty((self.n_channels, 0, self.rows, self.cols), dtype=np.float32)
        self.peak_views = 0  # most views held at once (for reports and tests)

    def _append(self, arrs) -> None:
        n = arrs[0].shape[0]
        live = self.top - self.base
        if live + n > self.buf.shape[1]:
            drop = self.keep_from - self.base
            if drop > 0:  # move the live views to the front
                keep = live - drop
                for c in range(self.n_channels):
                    self.buf[c, :keep] = self.buf[c, drop:live]
                self.base = self.keep_from
                live = keep
            if live + n > self.buf.shape[1]:
                cap = min(self.views, max(2 * self.buf.shape[1], live + n, 4 * self.chunk))
                new = np.empty((self.n_channels, cap, self.rows, self.cols), dtype=np.float32)
                new[:, :live] = self.buf[:, :live]
                self.buf = new
        for c, a in enumerate(arrs):
            self.buf[c, live: live + n] = a
        self.top += n
        self.peak_views = max(self.peak_views, self.top - self.base)

    def window(self, start: int, stop: int) -> list[np.ndarray]:
        """Views ``[start, stop)`` of every channel (contiguous arrays into the buffer; valid
        until the next call)."""
        start, stop = max(0, int(start)), min(self.views, int(stop))
        if start < self.keep_from:
            raise RuntimeError(f"views from {start} were requested after their release ({self.keep_from})")
        while self.top < stop:
            end = min(self.top + self.chunk, self.views)
            arrs = [np.asarray(a, dtype=np.float32).reshape(end - self.top, self.rows, self.cols)
                    for a in self.produce(self.top, end)]
            if len(arrs) != self.n_channels:
                raise ValueError(f"produce gave {len(arrs)} channels, expected {self.n_channels}")
            self._append(arrs)
        a, b = start - self.base, max(stop, start) - self.base
        return [self.buf[c, a:b] for c in range(self.n_channels)]

    def block(self, start: int, stop: int) -> np.ndarray:
        """Views ``[start, stop)`` of all channels as one (channels, views, rows, cols) array
        (made by :meth:`window` first; valid until the next call)."""
        self.window(start, stop)
        start, stop = max(0, int(start)), min(self.views, int(stop))
        return self.buf[:, start - self.base: max(stop, start) - self.base]

    def release(self, before: int) -> None:
        """The views before index ``before`` are no longer needed."""
        self.keep_from = max(self.keep_from, min(int(before), self.top))

    def finish(self) -> None:
        """Make the views not yet made (so every chunk is produced once) and free the buffer."""
        while self.top < self.views:
            end = min(self.top + self.chunk, self.views)
            self.produce(self.top, end)
            self.top = end
        self.buf = np.empty((self.n_channels, 0, self.rows, self.cols), dtype=np.float32)
        self.base = self.keep_from = self.top


class _ArrayViews:
    """:class:`ViewStream`'s interface over whole sinograms held in memory."""

    def __init__(self, arrs):
        self.arrs = arrs
        self.n_channels = len(arrs)

    def window(self, start, stop):
        start, stop = max(0, int(start)), int(stop)
        return [a[start:stop] for a in self.arrs]

    def release(self, before):
        pass

    def finish(self):
        pass


def _ssrb_view_range(z_lo, z_hi, zfirst, h, hv, npi, marg, V) -> tuple[int, int]:
    """Views ``[k0, k1)`` that :func:`ssrb_plan` can use for slices in ``[z_lo, z_hi]``: its
    candidate half turns ``n`` give view positions ``kf`` within ``2 marg + npi`` of the z window
    ``(z0 -+ hv - zfirst) / h`` (``marg`` its largest ``|gamma| / dbeta + 2``), and it reads
    views ``int(kf)`` and ``int(kf) + 1``."""
    ka = (z_lo - hv - zfirst) / h
    kb = (z_hi + hv - zfirst) / h
    lo = (z_lo + hv - zfirst) / h
    hi = (z_hi - hv - zfirst) / h
    kmin, kmax = min(ka, kb, lo, hi), max(ka, kb, lo, hi)
    k0 = int(math.floor(kmin - 2 * marg - npi)) - 2
    k1 = int(math.ceil(kmax + 2 * marg + npi)) + 3
    return max(0, k0), min(V, max(k1, 0))


def helical_ssrb(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
                 slab: int | None = None, n_t: int | None = None, progress: Progress = None,
                 max_slab_bytes: int = 512 << 20, backend: str = "numba") -> np.ndarray:
    """Helical FBP: fan-to-parallel rebinning + single-slice rebinning (180 degree linear
    interpolation along z) + 2D parallel FBP per grid slice (see the module docstring).
    ``backend`` "cuda" runs the slabs on the GPU (below).

    ``sinos``: (V, R, N) or a list of them (float32 avoids a copy), or a :class:`ViewStream`
    (views are then made as the slabs need them and released after, so only a window of about
    one rotation plus a slab's z range is held). Slices are done in slabs of ``slab`` grid
    slices. Returns (C, nz, ny, nx) float32, or (nz, ny, nx) for one array.

    With ``backend`` "cuda" each slab runs on the GPU (:mod:`.ssrb_cuda`): the plan, the gather
    from a ring of views on the GPU (each view is copied up once, from the host window, while
    consecutive slabs need it), the ramp filter (a direct linear convolution with the FFT
    filter's taps: the CPU's values to its float32 rounding, about 1e-6 of a line's largest) and
    the backprojection into a volume that stays on the GPU until the end.
    """
    single = isinstance(sinos, np.ndarray)
    backproject = bp_parallel
    if isinstance(sinos, ViewStream):
        src = sinos
    else:
        src = _ArrayViews([np.ascontiguousarray(s, dtype=np.float32).reshape(geom.shape)
                           for s in ([sinos] if single else sinos)])
    C = src.n_channels
    V, R, N = geom.shape
    D = geom.sid
    dbeta = _angle_step(geom)
    zview = np.ascontiguousarray(geom.z, dtype=np.float64)
    h = (zview[-1] - zview[0]) / (V - 1)
    if abs(h) < 1e-12:
        raise ValueError("helical reconstruction needs a table feed (z changes between views)")
    M = max(1, int(round(math.pi / dbeta)))
    dtheta = math.pi / M
    theta = float(geom.angles[0]) + math.pi / 2 + dtheta * np.arange(M)
    t, dt = _t_grid(geom, n_t)
    T = t.size
    gam = np.arcsin(t / D)
    zc = D * np.cos(gam) / geom.sdd
    if not geom.curved:
        zc = zc * np.cos(gam)
    col = np.ascontiguousarray(np.stack([_column_of_gamma(geom, gam),
                                         _column_of_gamma(geom, -gam)]))
    v0 = float(geom.v()[0])
    dv = geom.row_pitch
    hv = (abs(v0) + 2 * dv) * D / geom.sdd
    resp = ramp_kernel(max(64, 1 << int(math.ceil(math.log2(2 * T)))), dt, filter,
                       cutoff=voxel_cutoff(dt, grid))
    resp = short_response(resp, T)  # the same filter on a shorter FFT
    xs, ys = _xy(grid)
    zg = grid.axis("z")
    nz = zg.size
    per_slice = M * T * (2 * (4 + 4 + 4 + 1 + 4) + 4 * C * 2)
    if slab is None:
        most = HELICAL_SLAB_GPU if backend == "cuda" else HELICAL_SLAB
        slab = int(max(1, min(nz, max_slab_bytes // max(per_slice, 1), most)))
    out = np.zeros((C, nz, ys.size, xs.size), dtype=np.float32)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    rmax = _rmax(t, dt)
    npi = math.pi / dbeta
    marg = float(np.max(np.abs(gam))) / dbeta + 2.0 if T else 2.0
    rising = h > 0 and bool(np.all(np.diff(zg) > 0))  # else nothing is released
    if backend == "cuda":
        _helical_slabs_cuda(src, out, N, zview, zg, slab, (dtheta, dbeta, v0, dv, R, V, h, hv), gam, zc, col,
                            resp, (cos_t, sin_t, float(t[0]), dt, xs, ys, rmax), (npi, marg), rising,
                            progress)
        src.finish()
        return out[0] if single else out
    # the slabs' work arrays, made once: memory the process has not touched yet costs a page
    # fault and the kernel's zeroing per page, which was a third of a slab's time when each slab
    # made its own (about 0.5 GB of plan, samples, spectra and copies)
    S0 = min(slab, nz)
    bufs = {name: np.empty((2, S0, M, T), dtype=dt) for name, dt in
            (("kk", np.int32), ("wk", np.float32), ("row", np.int32), ("par", np.int8), ("wz", np.float32))}
    p_buf = np.empty((S0, C, M, T), dtype=np.float32)
    q_buf = np.empty((M, T, S0, C), dtype=np.float32)
    for z_first in range(0, nz, slab):
        z0s = np.ascontiguousarray(zg[z_first: z_first + slab], dtype=np.float64)
        S = z0s.size
        kk, wk, row, par, wz = (bufs[k] if S == S0 else bufs[k][:, :S].copy()
                                for k in ("kk", "wk", "row", "par", "wz"))
        ssrb_plan(zview, z0s, dtheta, M, dbeta, gam, zc, v0, dv, R, V, h, hv,
                   kk, wk, row, par, wz)
        k0, k1 = _ssrb_view_range(float(z0s.min()), float(z0s.max()), float(zview[0]), h, hv,
                                  npi, marg, V)
        lo, hi = used_views(kk)
        if hi >= lo and (lo < k0 or hi + 2 > k1):  # the bound lets a stream drop views: never guess
            raise RuntimeError(f"SSRB used views {lo}..{hi + 2}, outside its bound {k0}..{k1}")
        p = p_buf if S == S0 else np.empty((S, C, M, T), dtype=np.float32)
        if isinstance(src, ViewStream):  # every channel's views in one array: one pass
            ssrb_gather(src.block(k0, max(k1, k0 + 2)), k0, kk, wk, row, par, wz, col, p, 0)
        else:
            win = src.window(k0, max(k1, k0 + 2))
            for c in range(C):
                ssrb_gather(win[c][None], k0, kk, wk, row, par, wz, col, p, c)
            del win
        del kk, wk, row, par, wz
        if rising and z_first + slab < nz:  # later slabs lie higher: their views start later
            nxt = zg[z_first + slab: z_first + 2 * slab]
            src.release(_ssrb_view_range(float(nxt.min()), float(nxt.max()), float(zview[0]), h,
                                         hv, npi, marg, V)[0])
        q = q_buf if S == S0 else np.empty((M, T, S, C), dtype=np.float32)
        for s in range(S):  # slice by slice: temporaries of a few MB, reused by the allocator
            q[:, :, s, :] = filter_axis(p[s], resp, axis=2).transpose(1, 2, 0)
        del p
        backproject(q, cos_t, sin_t, float(t[0]), dt, xs, ys, rmax, np.float32(dtheta), out, z_first)
        del q
        _tick(progress, min(z_first + slab, nz), nz)
    src.finish()
    return out[0] if single else out


def _helical_slabs_cuda(src, out, cols, zview, zg, slab, plan_args, gam, zc, col, resp, bp_args, bound,
                        rising, progress) -> None:
    """The slab loop of :func:`helical_ssrb` on the GPU (:class:`.ssrb_cuda.SSRBDevice`): per slab
    the plan, the views it reads copied up (those not on the GPU yet), the gather, the ramp
    filter and the backprojection into the GPU's volume, which is copied into ``out`` at the
    end. The views a slab reads are checked against :func:`_ssrb_view_range` and released as on
    the CPU."""
    from xraybag.engine.ct.ssrb_cuda import SSRBDevice, ramp_taps

    dtheta, dbeta, v0, dv, R, V, h, hv = plan_args
    cos_t, sin_t, t0, dt, xs, ys, rmax = bp_args
    npi, marg = bound
    nz = zg.size
    zfirst = float(zview[0])

    def view_range(z_from: int) -> tuple[int, int]:
        z = zg[z_from: z_from + slab]
        return _ssrb_view_range(float(z.min()), float(z.max()), zfirst, h, hv, npi, marg, V)

    starts = range(0, nz, slab)
    ranges = [view_range(z) for z in starts]
    cap = max([k1 - k0 for k0, k1 in ranges] + [2])  # the most views a slab may read
    dev = SSRBDevice(zview, gam, zc, col, ramp_taps(resp, gam.size), cos_t, sin_t, xs, ys, zg,
                     src.n_channels, R, cols, cap)
    for z_first, (k0, k1) in zip(starts, ranges):
        S = min(slab, nz - z_first)
        lo, hi = dev.plan(z_first, S, dtheta, dbeta, v0, dv, R, V, h, hv)
        if hi >= lo and (lo < k0 or hi + 2 > k1):  # the bound lets a stream drop views: never guess
            raise RuntimeError(f"SSRB used views {lo}..{hi + 2}, outside its bound {k0}..{k1}")
        if hi >= lo:
            dev.load(src, lo, hi + 2)
        if rising and z_first + slab < nz:  # later slabs lie higher: their views start later
            src.release(view_range(z_first + slab)[0])
        dev.backproject(dev.filtered(), t0, dt, rmax, dtheta)
        _tick(progress, min(z_first + slab, nz), nz)
    dev.volume(out)


# ----------------------------------------------------------------------------- dispatcher


def reconstruct(sinograms: dict[str, np.ndarray], geom: CTGeometry, grid: VolumeGrid,
                method: str = "fbp", filter: str = "ram-lak", iterations: int = 50,
                projector=None, progress: Progress = None, backend: str = "numba") -> dict[str, np.ndarray]:
    """Reconstruct every sinogram of ``sinograms`` onto ``grid`` (float32 [z, y, x], 1/mm).

    ``method``: ``"fbp"`` (by ``geom.kind``: axial fan-beam FBP, circular FDK, helical
    rebinning + SSRB), ``"sirt"`` or ``"cgls"`` (with ``projector``, default
    :class:`xraybag.engine.ct.project.Projector`). All channels share one geometric pass in FBP.
    ``backend`` "cuda" runs FBP's backprojection (every geometry) on the GPU.
    """
    keys, arrs = _as_channels(sinograms)
    for a in arrs:
        if a.size != geom.views * geom.rows * geom.cols:
            raise ValueError(f"sinogram of shape {a.shape} does not match geometry {geom.shape}")
    method = method.lower()
    if method == "fbp":
        check_filter(filter)
        if geom.kind == "axial":
            vols = fbp_fan(arrs, geom, grid, filter, progress, backend)
        elif geom.kind == "circular":
            vols = fdk(arrs, geom, grid, filter, progress, backend)
        elif geom.kind == "helical":
            vols = helical_ssrb(arrs, geom, grid, filter, progress=progress, backend=backend)
        else:
            raise ValueError(f"unknown geometry kind {geom.kind!r}")
        return {k: np.ascontiguousarray(vols[i], dtype=np.float32) for i, k in enumerate(keys)}
    if method in ("sirt", "cgls"):
        proj = projector if projector is not None else default_projector(geom, grid)
        out = {}
        n = len(keys)
        for i, (k, a) in enumerate(zip(keys, arrs)):
            def tick(done, total, i=i):
                _tick(progress, i * total + done, n * total)

            b = np.asarray(a, dtype=np.float32).reshape(geom.shape)
            if method == "sirt":
                x = sirt(b, proj, iterations, progress=tick)
            else:
                x = cgls(b, proj, iterations, progress=tick)
            out[k] = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(grid.shape))
        return out
    raise ValueError(f"unknown method {method!r}; use 'fbp', 'sirt' or 'cgls'")
