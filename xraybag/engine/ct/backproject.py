"""The numba kernels of CT reconstruction: parallel and cone backprojection, and the fused
fan-to-parallel rebinning with z interpolation of helical single-slice rebinning (see
:mod:`.recon` for the methods they serve)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange


#: pixel tiles of the parallel backprojection (rows x columns): per angle a tile reads only the
#: few detector bins it projects to, so the filtered projections are read from memory once per
#: tile instead of once per image row
BP_TILE = (32, 32)


@numba.njit(parallel=True, cache=True, fastmath=True)
def bp_parallel(q, cos_t, sin_t, t0, dt, xs, ys, rmax, scale, out, z_off):  # pragma: no cover
    """Parallel 2D backprojection of S slices at once: q (M, T, S, C) -> out[c, z_off + s, y, x]
    (+=). The detector position of a pixel does not depend on the slice, so one index / weight
    computation serves all S * C values, which lie contiguous in memory (a SIMD loop). The image
    is done in tiles of :data:`BP_TILE` pixels, each summing its angles in order (the same sums as
    row by row)."""
    M, T, S, C = q.shape
    K = S * C
    qf = q.reshape((M, T, K))
    ny = ys.size
    nx = xs.size
    dx = xs[1] - xs[0] if nx > 1 else 1.0
    ty, tx = BP_TILE
    nby = (ny + ty - 1) // ty
    nbx = (nx + tx - 1) // tx
    for job in prange(nby * nbx):
        y0 = (job // nbx) * ty
        x0 = (job % nbx) * tx
        nr = min(ty, ny - y0)
        lo = np.zeros(nr, dtype=np.int64)
        hi = np.zeros(nr, dtype=np.int64)
        empty = True
        for r in range(nr):
            y = ys[y0 + r]
            if y * y >= rmax * rmax:
                continue
            half = math.sqrt(rmax * rmax - y * y)  # x range inside the reconstruction circle
            lo[r] = max(int(math.ceil((-half - xs[0]) / dx)), 0, x0)
            hi[r] = min(int(math.floor((half - xs[0]) / dx)) + 1, nx, x0 + tx)
            if lo[r] < hi[r]:
                empty = False
        if empty:
            continue
        acc = np.zeros((nr, tx, K), dtype=np.float32)
        for m in range(M):
            c = cos_t[m]
            step = np.float32(c * dx / dt)
            for r in range(nr):
                if lo[r] >= hi[r]:
                    continue
                base = np.float32((xs[0] * c + ys[y0 + r] * sin_t[m] - t0) / dt)
                for ix in range(lo[r], hi[r]):
                    f = base + np.float32(ix) * step
                    i0 = int(f)
                    if i0 < 0 or i0 >= T - 1:
                        continue
                    w = f - np.float32(i0)
                    for k in range(K):
                        v0 = qf[m, i0, k]
                        acc[r, ix - x0, k] += v0 + w * (qf[m, i0 + 1, k] - v0)
        for r in range(nr):
            for s in range(S):
                for ch in range(C):
                    for ix in range(lo[r], hi[r]):
                        out[ch, z_off + s, y0 + r, ix] += acc[r, ix - x0, s * C + ch] * scale


@numba.njit(parallel=True, cache=True, fastmath=True)
def bp_cone(q, cosb, sinb, zsrc, xs, ys, zs, sid, sdd, u0, du, v0, dv, curved, planar,
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
def ssrb_plan(zview, z0s, dtheta, M, dbeta, gam, zc, v0, dv, R, V, h, hv,
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


@numba.njit(cache=True)
def used_views(kk):  # pragma: no cover
    """The smallest and largest view index of a plan's ``kk`` (entries >= 0), or (0, -1)."""
    lo = np.int64(2**62)
    hi = np.int64(-1)
    for v in kk.ravel():
        if v >= 0:
            lo = min(lo, np.int64(v))
            hi = max(hi, np.int64(v))
    return (lo, hi) if hi >= 0 else (np.int64(0), np.int64(-1))


@numba.njit(parallel=True, cache=True)
def ssrb_gather(sino, k_off, kk, wk, row, par, wz, col, out, ch0):  # pragma: no cover
    """out[s, ch0 + c, m, j] = the planned z interpolation of bilinear (view, column) samples of
    every channel c of ``sino`` (C, V, R, N), whose view 0 is the scan's view ``k_off``; col (2, T)
    fractional column for gamma_j (0) and -gamma_j (1). The plan is read once for all channels."""
    C = sino.shape[0]
    N = sino.shape[3]
    _, S, M, T = kk.shape
    for job in prange(S * M):
        s = job // M
        m = job % M
        val = np.empty(C)
        for j in range(T):
            val[:] = 0.0
            for a in range(2):
                k0 = kk[a, s, m, j]
                if k0 < 0:
                    continue
                k0 -= k_off
                fc = col[par[a, s, m, j], j]
                if fc < -0.5 or fc > N - 0.5:
                    continue
                fc = min(max(fc, 0.0), N - 1.0)
                c0 = min(int(fc), N - 2)
                wc = fc - c0
                w = wk[a, s, m, j]
                r = row[a, s, m, j]
                z = wz[a, s, m, j]
                for c in range(C):
                    p0 = sino[c, k0, r, c0] * (1.0 - wc) + sino[c, k0, r, c0 + 1] * wc
                    p1 = sino[c, k0 + 1, r, c0] * (1.0 - wc) + sino[c, k0 + 1, r, c0 + 1] * wc
                    val[c] += z * (p0 * (1.0 - w) + p1 * w)
            for c in range(C):
                out[s, ch0 + c, m, j] = val[c]


@numba.njit(parallel=True, cache=True)
def rebin_rows(sino, kf, col, out):  # pragma: no cover
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
