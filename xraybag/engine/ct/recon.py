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

import numba
import numpy as np
from numba import prange
from scipy import fft as sfft

from .geometry import CTGeometry, VolumeGrid

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")

__all__ = [
    "FILTERS", "reconstruct", "hounsfield", "modified_hounsfield", "ramp_kernel", "ramp_filter",
    "rebin_fan_to_parallel", "fbp_parallel_2d", "fbp_fan", "fdk", "helical_ssrb", "sirt", "cgls",
]

Progress = Callable[[int, int], None] | None


# ----------------------------------------------------------------------------- HU


def hounsfield(mu, mu_water) -> np.ndarray:
    """Hounsfield units ``1000 (mu - mu_w) / mu_w`` (water 0, air -1000)."""
    mu = np.asarray(mu, dtype=np.float64)
    return (1000.0 * (mu - mu_water) / mu_water).astype(np.float32)


def modified_hounsfield(mu, mu_water) -> np.ndarray:
    """Modified Hounsfield units ``HU + 1000`` (air 0, water 1000), as used in security CT."""
    mu = np.asarray(mu, dtype=np.float64)
    return (1000.0 * mu / mu_water).astype(np.float32)


# ----------------------------------------------------------------------------- filters


def _check_filter(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key in ("ramlak", "ramp"):
        key = "ram-lak"
    if key in ("shepplogan",):
        key = "shepp-logan"
    if key == "hanning":
        key = "hann"
    if key not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose from {FILTERS}")
    return key


def ramp_kernel(n_pad: int, spacing: float, filter: str = "ram-lak",
                equiangular: bool = False, cutoff: float = 1.0) -> np.ndarray:
    """Frequency response (``n_pad // 2 + 1`` real values, for ``rfft``) of the band-limited ramp.

    Built from the spatial kernel of Kak & Slaney (3.61): ``h(0) = 1 / (4 tau^2)``,
    ``h(n tau) = -1 / (n pi tau)^2`` for odd ``n``, 0 for even ``n`` (``tau = spacing``). With
    ``equiangular`` the samples are angles and the kernel is ``(n tau / sin(n tau))^2 h(n tau)``
    (the equiangular fan-beam kernel without its factor 1/2). The window is applied in frequency
    (``f_N`` = Nyquist): Shepp-Logan ``sinc(f / (2 f_N))``, cosine ``cos(pi f / (2 f_N))``,
    Hann ``(1 + cos(pi f / f_N)) / 2``. With ``cutoff`` < 1 the window is stretched to end at
    ``cutoff * f_N`` and the response is 0 above it (band-limiting to a coarser voxel grid, see
    :func:`voxel_cutoff`).
    """
    key = _check_filter(filter)
    n = np.arange(n_pad)
    n = np.where(n > n_pad // 2, n - n_pad, n).astype(np.float64)
    h = np.zeros(n_pad)
    h[n == 0] = 1.0 / (4.0 * spacing * spacing)
    odd = (np.abs(n) % 2) == 1
    h[odd] = -1.0 / (np.pi * n[odd] * spacing) ** 2
    if equiangular:
        x = n[odd] * spacing
        h[odd] *= (x / np.sin(x)) ** 2
    resp = np.real(sfft.rfft(h)) * spacing
    f = np.arange(resp.size) / n_pad  # cycles per sample; Nyquist 0.5
    r = f / (0.5 * float(cutoff))
    resp = np.where(r <= 1.0, resp, 0.0)
    r = np.minimum(r, 1.0)
    if key == "shepp-logan":
        resp = resp * np.sinc(r / 2.0)
    elif key == "cosine":
        resp = resp * np.cos(np.pi * r / 2.0)
    elif key == "hann":
        resp = resp * 0.5 * (1.0 + np.cos(np.pi * r))
    return resp


def ramp_filter(proj: np.ndarray, spacing: float, filter: str = "ram-lak", axis: int = -1,
                equiangular: bool = False, workers: int | None = -1,
                cutoff: float = 1.0) -> np.ndarray:
    """Ramp-filter ``proj`` along ``axis``: ``spacing * sum_k p[k] h[n - k]`` (zero padded).

    ``spacing`` is the sample distance (mm; radians when ``equiangular``). Returns float32.
    """
    proj = np.asarray(proj)
    n = proj.shape[axis]
    n_pad = max(64, 1 << int(math.ceil(math.log2(2 * n))))
    resp = ramp_kernel(n_pad, spacing, filter, equiangular, cutoff)
    shape = [1] * proj.ndim
    shape[axis] = resp.size
    spec = sfft.rfft(proj.astype(np.float32, copy=False), n=n_pad, axis=axis, workers=workers)
    spec *= resp.astype(np.float32).reshape(shape)
    out = sfft.irfft(spec, n=n_pad, axis=axis, workers=workers)
    sl = [slice(None)] * proj.ndim
    sl[axis] = slice(0, n)
    return np.ascontiguousarray(out[tuple(sl)], dtype=np.float32)


def voxel_cutoff(sample_mm: float, grid: VolumeGrid) -> float:
    """The filter cut-off (fraction of the detector's Nyquist frequency) that band-limits the
    image to the grid: ``min(1, sample_mm / voxel)``, ``sample_mm`` being the detector sampling at
    the isocentre. Without it, a grid coarser than the detector sampling point-samples detail it
    cannot hold, and aliasing (moire, streaks) lands on every voxel."""
    voxel = min(float(grid.voxel[0]), float(grid.voxel[1]))
    return min(1.0, float(sample_mm) / voxel) if voxel > 0 else 1.0


def _iso_sampling(geom: CTGeometry) -> float:
    """Column sampling at the isocentre (mm)."""
    return geom.col_pitch * geom.sid / geom.sdd


# ----------------------------------------------------------------------------- numba kernels

@numba.njit(parallel=True, cache=True, fastmath=True)
def _bp_parallel(q, cos_t, sin_t, t0, dt, xs, ys, rmax, scale, out, z_off):  # pragma: no cover
    """Parallel 2D backprojection of S slices at once: q (M, T, S, C) -> out[c, z_off + s, y, x]
    (+=). The detector position of a pixel does not depend on the slice, so one index / weight
    computation serves all S * C values, which lie contiguous in memory (a SIMD loop)."""
    M, T, S, C = q.shape
    K = S * C
    qf = q.reshape((M, T, K))
    ny = ys.size
    nx = xs.size
    dx = xs[1] - xs[0] if nx > 1 else 1.0
    for iy in prange(ny):
        y = ys[iy]
        if y * y >= rmax * rmax:
            continue
        half = math.sqrt(rmax * rmax - y * y)  # x range inside the reconstruction circle
        lo = max(int(math.ceil((-half - xs[0]) / dx)), 0)
        hi = min(int(math.floor((half - xs[0]) / dx)) + 1, nx)
        acc = np.zeros((nx, K), dtype=np.float32)
        for m in range(M):
            c = cos_t[m]
            step = np.float32(c * dx / dt)
            base = np.float32((xs[0] * c + y * sin_t[m] - t0) / dt)
            for ix in range(lo, hi):
                f = base + np.float32(ix) * step
                i0 = int(f)
                if i0 < 0 or i0 >= T - 1:
                    continue
                w = f - np.float32(i0)
                for k in range(K):
                    v0 = qf[m, i0, k]
                    acc[ix, k] += v0 + w * (qf[m, i0 + 1, k] - v0)
        for s in range(S):
            for ch in range(C):
                for ix in range(lo, hi):
                    out[ch, z_off + s, iy, ix] += acc[ix, s * C + ch] * scale


@numba.njit(parallel=True, cache=True, fastmath=True)
def _bp_cone(q, cosb, sinb, zsrc, xs, ys, zs, sid, sdd, u0, du, v0, dv, curved, planar,
             scale, out):  # pragma: no cover
    """Voxel-driven fan/cone backprojection with FDK distance weights.

    q: (V, R, N, C) weighted, filtered projections; out: (C, nz, ny, nx) (+=). ``planar``:
    fan beam, row 0 only and no z dependence. Curved: weight 1/L^2 (L = in-plane source-voxel
    distance), flat: weight (D / L_par)^2.
    """
    V, R, N, C = q.shape
    nz = zs.size
    ny = ys.size
    nx = xs.size
    for job in prange(nz * ny):
        iz = job // ny
        iy = job % ny
        z = zs[iz]
        y = ys[iy]
        acc = np.zeros((nx, C), dtype=np.float32)
        for k in range(V):
            cb = cosb[k]
            sb = sinb[k]
            dzs = z - zsrc[k]
            for ix in range(nx):
                x = xs[ix]
                lpar = sid - (x * cb + y * sb)
                wt = -x * sb + y * cb
                if curved:
                    l2 = lpar * lpar + wt * wt
                    u = sdd * math.atan2(wt, lpar)
                    wgt = 1.0 / l2
                    vv = dzs * sdd / math.sqrt(l2)
                else:
                    u = sdd * wt / lpar
                    wgt = (sid / lpar) ** 2
                    vv = dzs * sdd / lpar
                fu = (u - u0) / du
                if fu < -0.5 or fu > N - 0.5:
                    continue
                fu = min(max(fu, 0.0), N - 1.0)
                j0 = min(int(fu), N - 2) if N > 1 else 0
                wu = fu - j0
                if planar or R == 1:
                    i0 = 0
                    wv = 0.0
                    i1 = 0
                else:
                    fv = (vv - v0) / dv
                    if fv < -0.5 or fv > R - 0.5:
                        continue
                    fv = min(max(fv, 0.0), R - 1.0)
                    i0 = min(int(fv), R - 2)
                    wv = fv - i0
                    i1 = i0 + 1
                j1 = j0 + 1 if N > 1 else 0
                w00 = np.float32(wgt * (1.0 - wu) * (1.0 - wv))
                w01 = np.float32(wgt * wu * (1.0 - wv))
                w10 = np.float32(wgt * (1.0 - wu) * wv)
                w11 = np.float32(wgt * wu * wv)
                for ch in range(C):
                    acc[ix, ch] += (w00 * q[k, i0, j0, ch] + w01 * q[k, i0, j1, ch]
                                    + w10 * q[k, i1, j0, ch] + w11 * q[k, i1, j1, ch])
        for ix in range(nx):
            for ch in range(C):
                out[ch, iz, iy, ix] += acc[ix, ch] * scale


@numba.njit(parallel=True, cache=True)
def _ssrb_plan(zview, z0s, dtheta, M, dbeta, gam, zc, v0, dv, R, V, h, hv,
               kk, wk, row, par, wz):  # pragma: no cover
    """For every (slice s, parallel angle m, t_j): the two measured rays (below/above z0)
    on the line (theta_m, t_j) nearest in z. Writes view index kk (-1: none), view weight wk
    (interpolation between kk and kk + 1), row, parity (0: gamma_j, 1: -gamma_j) and z weight
    wz, each (2, S, M, T)."""
    S = z0s.size
    T = gam.size
    npi = math.pi / dbeta  # views per half turn
    zfirst = zview[0]
    for job in prange(S * M):
        s = job // M
        m = job % M
        z0 = z0s[s]
        am = m * dtheta / dbeta
        for j in range(T):
            g = gam[j]
            c = zc[j]
            # candidate half turns from the linear z(k) model
            ka = (z0 - hv - zfirst) / h
            kb = (z0 + hv - zfirst) / h
            if ka > kb:
                ka, kb = kb, ka
            marg = abs(g) / dbeta + 2.0
            n_lo = int(math.floor((ka - marg - am) / npi))
            n_hi = int(math.ceil((kb + marg - am) / npi))
            best_b = -1e30
            best_a = 1e30
            kb_k = -1
            ka_k = -1
            kb_w = 0.0
            ka_w = 0.0
            kb_r = 0
            ka_r = 0
            kb_p = 0
            ka_p = 0
            for n in range(n_lo, n_hi + 1):
                p = n & 1
                gn = -g if p else g
                kf = am + n * npi + gn / dbeta
                if kf < 0.0 or kf > V - 1:
                    continue
                k0 = min(int(kf), V - 2)
                w = kf - k0
                zsrc = zview[k0] * (1.0 - w) + zview[k0 + 1] * w
                fi = ((z0 - zsrc) / c - v0) / dv
                if fi >= R - 1:
                    ib = R - 1
                    ia = -1
                elif fi < 0:
                    ib = -1
                    ia = 0
                else:
                    ib = min(int(fi), R - 2) if R > 1 else 0
                    ia = ib + 1 if R > 1 else -1
                if ib >= 0:
                    zb = zsrc + (v0 + ib * dv) * c
                    if zb > best_b:
                        best_b = zb
                        kb_k = k0
                        kb_w = w
                        kb_r = ib
                        kb_p = p
                if ia >= 0:
                    za = zsrc + (v0 + ia * dv) * c
                    if za < best_a:
                        best_a = za
                        ka_k = k0
                        ka_w = w
                        ka_r = ia
                        ka_p = p
            half = 0.5 * dv * c
            wb = 0.0
            wa = 0.0
            if kb_k >= 0 and ka_k >= 0:
                span = best_a - best_b
                wa = (z0 - best_b) / span if span > 0 else 0.5
                wb = 1.0 - wa
            elif kb_k >= 0:
                if z0 - best_b <= half:
                    wb = 1.0
            elif ka_k >= 0:
                if best_a - z0 <= half:
                    wa = 1.0
            kk[0, s, m, j] = kb_k if wb > 0 else -1
            kk[1, s, m, j] = ka_k if wa > 0 else -1
            wk[0, s, m, j] = kb_w
            wk[1, s, m, j] = ka_w
            row[0, s, m, j] = kb_r
            row[1, s, m, j] = ka_r
            par[0, s, m, j] = kb_p
            par[1, s, m, j] = ka_p
            wz[0, s, m, j] = wb
            wz[1, s, m, j] = wa


@numba.njit(parallel=True, cache=True)
def _ssrb_gather(sino, kk, wk, row, par, wz, col, out, ch):  # pragma: no cover
    """out[s, ch, m, j] = the planned z interpolation of bilinear (view, column) samples.

    sino (V, R, N); col (2, T) fractional column for gamma_j (0) and -gamma_j (1)."""
    _, S, M, T = kk.shape
    N = sino.shape[2]
    for job in prange(S * M):
        s = job // M
        m = job % M
        for j in range(T):
            val = 0.0
            for a in range(2):
                k0 = kk[a, s, m, j]
                if k0 < 0:
                    continue
                fc = col[par[a, s, m, j], j]
                if fc < -0.5 or fc > N - 0.5:
                    continue
                fc = min(max(fc, 0.0), N - 1.0)
                c0 = min(int(fc), N - 2)
                wc = fc - c0
                w = wk[a, s, m, j]
                r = row[a, s, m, j]
                p0 = sino[k0, r, c0] * (1.0 - wc) + sino[k0, r, c0 + 1] * wc
                p1 = sino[k0 + 1, r, c0] * (1.0 - wc) + sino[k0 + 1, r, c0 + 1] * wc
                val += wz[a, s, m, j] * (p0 * (1.0 - w) + p1 * w)
            out[s, ch, m, j] = val


@numba.njit(parallel=True, cache=True)
def _rebin_rows(sino, kf, col, out):  # pragma: no cover
    """out[m, i, j] = sino at fractional view kf[m, j], row i, fractional column col[j]."""
    V, R, N = sino.shape
    M, T = kf.shape
    for job in prange(M * R):
        m = job // R
        i = job % R
        for j in range(T):
            f = kf[m, j]
            fc = col[j]
            if f < 0 or f > V - 1 or fc < -0.5 or fc > N - 0.5:
                out[m, i, j] = 0.0
                continue
            k0 = min(int(f), V - 2) if V > 1 else 0
            w = f - k0
            k1 = k0 + 1 if V > 1 else 0
            fc = min(max(fc, 0.0), N - 1.0)
            c0 = min(int(fc), N - 2)
            wc = fc - c0
            p0 = sino[k0, i, c0] * (1.0 - wc) + sino[k0, i, c0 + 1] * wc
            p1 = sino[k1, i, c0] * (1.0 - wc) + sino[k1, i, c0 + 1] * wc
            out[m, i, j] = p0 * (1.0 - w) + p1 * w


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
    _bp_parallel(q, np.cos(theta), np.sin(theta), float(t[0]), dt, xs, ys, _rmax(t, dt),
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
    _rebin_rows(sino, np.ascontiguousarray(kf), np.ascontiguousarray(col), out)
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


def _bp_cone_call(q, geom, xs, ys, zs, planar, out):
    dbeta = 2 * math.pi / geom.views
    u0 = float(geom.u()[0])
    v0 = float(geom.v()[0])
    du = geom.col_pitch
    dv = geom.row_pitch
    scale = dbeta
    _bp_cone(q, np.cos(geom.angles), np.sin(geom.angles), np.asarray(geom.z, dtype=np.float64),
             xs, ys, np.asarray(zs, dtype=np.float64), float(geom.sid), float(geom.sdd), u0, du,
             v0, dv, bool(geom.curved), bool(planar), np.float32(scale), out)


def fdk(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
        progress: Progress = None) -> np.ndarray:
    """FDK cone-beam FBP of one full circular rotation (flat or curved detector).

    ``sinos``: (V, R, N) or a list of them. Returns (C, nz, ny, nx) float32 (C = len(list)) or
    (nz, ny, nx) for a single array.
    """
    single = isinstance(sinos, np.ndarray)
    lst = [sinos] if single else list(sinos)
    q = _filter_cone(lst, geom, filter, voxel_cutoff(_iso_sampling(geom), grid))
    xs, ys = _xy(grid)
    zs = grid.axis("z")
    out = np.zeros((len(lst), *grid.shape), dtype=np.float32)
    _bp_cone_call(q, geom, xs, ys, zs, planar=geom.rows == 1, out=out)
    _tick(progress, 1, 1)
    return out[0] if single else out


def fbp_fan(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
            progress: Progress = None) -> np.ndarray:
    """Fan-beam FBP (Kak & Slaney 3.4, full rotation), slice by slice for axial scans.

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
        q = _filter_cone([s[sel] for s in lst], sub, filter, voxel_cutoff(_iso_sampling(geom), grid))
        img = np.zeros((C, 1, ys.size, xs.size), dtype=np.float32)
        _bp_cone_call(q, sub, xs, ys, np.zeros(1), planar=True, out=img)
        slices[a] = img[:, 0]
        _tick(progress, n + 1, len(need))
    for iz, p in enumerate(pairs):
        for a, w in p:
            if w > 0:
                out[:, iz] += w * slices[a]
    return out[0] if single else out


# ----------------------------------------------------------------------------- helical


def helical_ssrb(sinos, geom: CTGeometry, grid: VolumeGrid, filter: str = "ram-lak",
                 slab: int | None = None, n_t: int | None = None, progress: Progress = None,
                 max_slab_bytes: int = 512 << 20) -> np.ndarray:
    """Helical FBP: fan-to-parallel rebinning + single-slice rebinning (180 degree linear
    interpolation along z) + 2D parallel FBP per grid slice (see the module docstring).

    ``sinos``: (V, R, N) or a list of them (float32 avoids a copy). Slices are done in slabs of
    ``slab`` grid slices. Returns (C, nz, ny, nx) float32, or (nz, ny, nx) for one array.
    """
    single = isinstance(sinos, np.ndarray)
    lst = [np.ascontiguousarray(s, dtype=np.float32).reshape(geom.shape)
           for s in ([sinos] if single else sinos)]
    C = len(lst)
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
    xs, ys = _xy(grid)
    zg = grid.axis("z")
    nz = zg.size
    per_slice = M * T * (2 * (4 + 4 + 4 + 1 + 4) + 4 * C * 2)
    if slab is None:
        slab = int(max(1, min(nz, max_slab_bytes // max(per_slice, 1), 16)))
    out = np.zeros((C, nz, ys.size, xs.size), dtype=np.float32)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    rmax = _rmax(t, dt)
    for z_first in range(0, nz, slab):
        z0s = np.ascontiguousarray(zg[z_first: z_first + slab], dtype=np.float64)
        S = z0s.size
        kk = np.empty((2, S, M, T), dtype=np.int32)
        wk = np.empty((2, S, M, T), dtype=np.float32)
        row = np.empty((2, S, M, T), dtype=np.int32)
        par = np.empty((2, S, M, T), dtype=np.int8)
        wz = np.empty((2, S, M, T), dtype=np.float32)
        _ssrb_plan(zview, z0s, dtheta, M, dbeta, gam, zc, v0, dv, R, V, h, hv,
                   kk, wk, row, par, wz)
        p = np.empty((S, C, M, T), dtype=np.float32)
        for c in range(C):
            _ssrb_gather(lst[c], kk, wk, row, par, wz, col, p, c)
        del kk, wk, row, par, wz
        q = np.ascontiguousarray(_filter_axis(p, resp, axis=3).transpose(2, 3, 0, 1))
        _bp_parallel(q, cos_t, sin_t, float(t[0]), dt, xs, ys, rmax, np.float32(dtheta),
                     out, z_first)
        _tick(progress, min(z_first + slab, nz), nz)
    return out[0] if single else out


def _filter_axis(p: np.ndarray, resp: np.ndarray, axis: int) -> np.ndarray:
    n = p.shape[axis]
    n_pad = 2 * (resp.size - 1)
    shape = [1] * p.ndim
    shape[axis] = resp.size
    spec = sfft.rfft(p, n=n_pad, axis=axis, workers=-1)
    spec *= resp.astype(np.float32).reshape(shape)
    out = sfft.irfft(spec, n=n_pad, axis=axis, workers=-1)
    sl = [slice(None)] * p.ndim
    sl[axis] = slice(0, n)
    return np.ascontiguousarray(out[tuple(sl)], dtype=np.float32)


# ----------------------------------------------------------------------------- iterative


def _default_projector(geom, grid):
    """ASTRA's CUDA projector when a GPU is there, else a GPU cupy one, else the numba one."""
    from .project import Projector, available_backends  # lazily: optional, heavier module

    have = available_backends()
    backend = next((b for b in ("astra", "cupy") if b in have), "numba")
    return Projector(geom, grid, backend)


def sirt(sino: np.ndarray, projector, iterations: int = 50, x0: np.ndarray | None = None,
         nonneg: bool = True, progress: Progress = None, history: list | None = None,
         eps: float = 1e-6) -> np.ndarray:
    """SIRT (ASTRA's form): ``x += C A^T R (b - A x)``, ``R = 1/(A 1)``, ``C = 1/(A^T 1)``.

    ``projector`` has ``forward(vol) -> sino`` and ``back(sino) -> vol``; ``history`` (a list)
    receives ``||b - A x||`` before every update and after the last one.
    """
    b = np.asarray(sino, dtype=np.float32)
    x = None if x0 is None else np.array(x0, dtype=np.float32)
    # row and column sums
    probe = projector.back(np.zeros_like(b))
    ones_v = np.ones_like(np.asarray(probe, dtype=np.float32))
    rs = np.asarray(projector.forward(ones_v), dtype=np.float32)
    cs = np.asarray(projector.back(np.ones_like(b)), dtype=np.float32)
    Rw = np.where(rs > eps, 1.0 / np.maximum(rs, eps), 0.0).astype(np.float32)
    Cw = np.where(cs > eps, 1.0 / np.maximum(cs, eps), 0.0).astype(np.float32)
    if x is None:
        x = np.zeros_like(ones_v)
    for it in range(int(iterations)):
        r = b - np.asarray(projector.forward(x), dtype=np.float32)
        if history is not None:
            history.append(float(np.linalg.norm(r)))
        x += Cw * np.asarray(projector.back(Rw * r), dtype=np.float32)
        if nonneg:
            np.maximum(x, 0.0, out=x)
        _tick(progress, it + 1, iterations)
    if history is not None:
        history.append(float(np.linalg.norm(b - np.asarray(projector.forward(x)))))
    return x


def cgls(sino: np.ndarray, projector, iterations: int = 20, x0: np.ndarray | None = None,
         progress: Progress = None, history: list | None = None) -> np.ndarray:
    """CGLS: conjugate gradients on ``A^T A x = A^T b`` (needs ``back`` = exact adjoint)."""
    b = np.asarray(sino, dtype=np.float64)
    if x0 is None:
        x = np.zeros_like(np.asarray(projector.back(np.zeros_like(b, dtype=np.float32)),
                                     dtype=np.float64))
        r = b.copy()
    else:
        x = np.array(x0, dtype=np.float64)
        r = b - np.asarray(projector.forward(x.astype(np.float32)), dtype=np.float64)
    s = np.asarray(projector.back(r.astype(np.float32)), dtype=np.float64)
    p = s.copy()
    gamma = float(np.vdot(s, s))
    for it in range(int(iterations)):
        if history is not None:
            history.append(float(np.linalg.norm(r)))
        if gamma <= 0:
            break
        qv = np.asarray(projector.forward(p.astype(np.float32)), dtype=np.float64)
        qq = float(np.vdot(qv, qv))
        if qq <= 0:
            break
        alpha = gamma / qq
        x += alpha * p
        r -= alpha * qv
        s = np.asarray(projector.back(r.astype(np.float32)), dtype=np.float64)
        g_new = float(np.vdot(s, s))
        p = s + (g_new / gamma) * p
        gamma = g_new
        _tick(progress, it + 1, iterations)
    if history is not None:
        history.append(float(np.linalg.norm(r)))
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- dispatcher


def reconstruct(sinograms: dict[str, np.ndarray], geom: CTGeometry, grid: VolumeGrid,
                method: str = "fbp", filter: str = "ram-lak", iterations: int = 50,
                projector=None, progress: Progress = None) -> dict[str, np.ndarray]:
    """Reconstruct every sinogram of ``sinograms`` onto ``grid`` (float32 [z, y, x], 1/mm).

    ``method``: ``"fbp"`` (by ``geom.kind``: axial fan-beam FBP, circular FDK, helical
    rebinning + SSRB), ``"sirt"`` or ``"cgls"`` (with ``projector``, default
    :class:`xraybag.engine.ct.project.Projector`). All channels share one geometric pass in FBP.
    """
    keys, arrs = _as_channels(sinograms)
    for a in arrs:
        if a.size != geom.views * geom.rows * geom.cols:
            raise ValueError(f"sinogram of shape {a.shape} does not match geometry {geom.shape}")
    method = method.lower()
    if method == "fbp":
        _check_filter(filter)
        if geom.kind == "axial":
            vols = fbp_fan(arrs, geom, grid, filter, progress)
        elif geom.kind == "circular":
            vols = fdk(arrs, geom, grid, filter, progress)
        elif geom.kind == "helical":
            vols = helical_ssrb(arrs, geom, grid, filter, progress=progress)
        else:
            raise ValueError(f"unknown geometry kind {geom.kind!r}")
        return {k: np.ascontiguousarray(vols[i], dtype=np.float32) for i, k in enumerate(keys)}
    if method in ("sirt", "cgls"):
        proj = projector if projector is not None else _default_projector(geom, grid)
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
