"""Projection-domain dual-energy decomposition: (p_low, p_high) -> Compton / photoelectric line
integrals, with the basis model of :mod:`.basis`.

Projection domain (:class:`Decomposer`). A ray through path lengths L_m measures, in channel c
(``low``, ``high``: the two layers of a sandwich detector or the two spectra of kVp switching),
``p_c = -ln(sum_E w_c(E) exp(-sum_m mu_m(E) L_m) / sum_E w_c(E))`` with ``w_c`` the open-beam
photons x detector response (:func:`xraybag.engine.xray.detect.channel_response`). With the basis
model the pair ``(p_low, p_high)`` is a function of the two basis line integrals
``A_c = integral a_c dl`` and ``A_p = integral a_p dl`` (mm x 1/mm, dimensionless), and the
decomposition inverts it per ray: by damped Newton-Raphson (``method='newton'``), or by
interpolating a table of Newton solutions on a regular (p_low, p_high) grid (``method='table'``,
the fast default). Reconstructing ``A_c`` and ``A_p`` sinograms gives ``a_c`` and ``a_p`` volumes.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xraybag.engine.ct.basis import (
    PHOTO_EXPONENT,
    REFERENCE_KEV,
    compton_basis,
    effective_basis,
    out_dtype,
    photo_basis,
)

__all__ = ["Decomposer"]

# ----------------------------------------------------------------------------- the forward model


@numba.njit(cache=True, nogil=True, fastmath=True)
def _forward(ac, ap, fc, fp, w, jac):
    """p_c = -ln(sum_E w_c exp(-ac fc - ap fp)) for c = 0, 1 (``w``: (2, E) each row summing to
    1) and the Jacobian ``jac[c, k] = dp_c / dA_k`` (the attenuated spectrum's mean of basis k).

    The exponentials are shifted by their maximum, so nothing overflows for any finite (ac, ap);
    a channel whose sum underflows (its photons all where the shifted exponential is < 1e-300)
    is summed again with its own shift. Returns (p0, p1)."""
    n_e = fc.shape[0]
    xm = -np.inf
    for e in range(n_e):
        x = -ac * fc[e] - ap * fp[e]
        if x > xm:
            xm = x
    t0 = 0.0
    t1 = 0.0
    c0 = 0.0
    c1 = 0.0
    q0 = 0.0
    q1 = 0.0
    for e in range(n_e):
        t = math.exp(-ac * fc[e] - ap * fp[e] - xm)
        a = w[0, e] * t
        b = w[1, e] * t
        t0 += a
        t1 += b
        c0 += a * fc[e]
        c1 += b * fc[e]
        q0 += a * fp[e]
        q1 += b * fp[e]
    p0 = 0.0
    p1 = 0.0
    if t0 > 1e-250 and t1 > 1e-250:
        p0 = -(xm + math.log(t0))
        p1 = -(xm + math.log(t1))
        jac[0, 0] = c0 / t0
        jac[0, 1] = q0 / t0
        jac[1, 0] = c1 / t1
        jac[1, 1] = q1 / t1
        return p0, p1
    for c in range(2):  # rare: shift each channel by its own maximum
        m = -np.inf
        for e in range(n_e):
            if w[c, e] > 0.0:
                x = -ac * fc[e] - ap * fp[e] + math.log(w[c, e])
                if x > m:
                    m = x
        tot = 0.0
        sc = 0.0
        sp = 0.0
        for e in range(n_e):
            if w[c, e] > 0.0:
                t = math.exp(-ac * fc[e] - ap * fp[e] + math.log(w[c, e]) - m)
                tot += t
                sc += t * fc[e]
                sp += t * fp[e]
        jac[c, 0] = sc / tot
        jac[c, 1] = sp / tot
        if c == 0:
            p0 = -(m + math.log(tot))
        else:
            p1 = -(m + math.log(tot))
    return p0, p1


@numba.njit(cache=True, nogil=True)
def _solve_one(p0, p1, a0c, a0p, fc, fp, w, lo_c, hi_c, lo_p, hi_p, tol, maxit):
    """Damped, box-constrained Newton for (A_c, A_p) with model(A) = (p0, p1).

    Steps are halved until the squared residual decreases (Armijo), iterates are clipped to the
    box; where a bound is active and the Newton step pushes out of the box, the free variable
    takes a Gauss-Newton step instead, so unreachable (noisy) pairs end at the least-squares
    point on the box boundary. Returns (A_c, A_p, iterations, residual norm)."""
    jac = np.empty((2, 2))
    jn = np.empty((2, 2))
    ac = min(max(a0c, lo_c), hi_c)
    ap = min(max(a0p, lo_p), hi_p)
    q0, q1 = _forward(ac, ap, fc, fp, w, jac)
    r0 = q0 - p0
    r1 = q1 - p1
    f = r0 * r0 + r1 * r1
    it = 0
    for it in range(1, maxit + 1):
        det = jac[0, 0] * jac[1, 1] - jac[0, 1] * jac[1, 0]
        if abs(det) > 1e-300:
            dc = -(jac[1, 1] * r0 - jac[0, 1] * r1) / det
            dp = -(-jac[1, 0] * r0 + jac[0, 0] * r1) / det
        else:
            dc = 0.0
            dp = 0.0
        out_c = (ac <= lo_c and dc < 0.0) or (ac >= hi_c and dc > 0.0)
        out_p = (ap <= lo_p and dp < 0.0) or (ap >= hi_p and dp > 0.0)
        if out_c and out_p:
            break
        if out_c or out_p:  # Gauss-Newton on the free variable only
            k = 1 if out_c else 0
            g = jac[0, k] * r0 + jac[1, k] * r1
            h = jac[0, k] * jac[0, k] + jac[1, k] * jac[1, k]
            d = -g / h if h > 0.0 else 0.0
            dc = d if k == 0 else 0.0
            dp = d if k == 1 else 0.0
        if abs(dc) + abs(dp) <= tol * (1.0 + abs(ac) + abs(ap)):
            break  # converged: a line search could only fail on rounding
        lam = 1.0
        accepted = False
        nc = ac
        np_ = ap
        fn = f
        n0 = q0
        n1 = q1
        small = tol * (1.0 + abs(ac) + abs(ap))
        for _ in range(10):
            nc = min(max(ac + lam * dc, lo_c), hi_c)
            np_ = min(max(ap + lam * dp, lo_p), hi_p)
            if abs(nc - ac) + abs(np_ - ap) <= small:
                break  # the (clipped) step vanished: nothing left to gain
            n0, n1 = _forward(nc, np_, fc, fp, w, jn)
            s0 = n0 - p0
            s1 = n1 - p1
            fn = s0 * s0 + s1 * s1
            if fn <= f * (1.0 - 1e-4 * lam) or fn == 0.0:
                accepted = True
                break
            lam *= 0.5
        step = abs(nc - ac) + abs(np_ - ap)
        if not accepted:
            break  # no decrease possible: at the solution (or the least-squares point on a bound)
        ac = nc
        ap = np_
        q0 = n0
        q1 = n1
        r0 = q0 - p0
        r1 = q1 - p1
        f = fn
        jac[0, 0] = jn[0, 0]
        jac[0, 1] = jn[0, 1]
        jac[1, 0] = jn[1, 0]
        jac[1, 1] = jn[1, 1]
        if step <= tol * (1.0 + abs(ac) + abs(ap)) or f == 0.0:
            break
    return ac, ap, it, math.sqrt(f)


@numba.njit(cache=True, parallel=True)
def _newton_many(p_lo, p_hi, inv0, fc, fp, w, box, pmin, pmax, tol, maxit, out_c, out_p, iters):
    """Per-ray Newton, started from the open-beam linearisation A = inv0 @ p."""
    for i in numba.prange(p_lo.shape[0]):
        a = p_lo[i]
        b = p_hi[i]
        a = pmax if a != a else min(max(a, pmin), pmax)  # NaN: -ln of a non-positive signal
        b = pmax if b != b else min(max(b, pmin), pmax)
        s_c = inv0[0, 0] * a + inv0[0, 1] * b
        s_p = inv0[1, 0] * a + inv0[1, 1] * b
        ac, ap, it, _ = _solve_one(a, b, s_c, s_p, fc, fp, w, box[0], box[1], box[2], box[3],
                                   tol, maxit)
        out_c[i] = ac
        out_p[i] = ap
        iters[i] = it


@numba.njit(cache=True, parallel=True)
def _build_table(grid, inv0, fc, fp, w, box, tol, maxit, table, resid):
    """table[i, j] = Newton solution at (p_low = grid[i], p_high = grid[j]); each row is swept
    along j with the previous node's solution as the start (continuation)."""
    n = grid.shape[0]
    for i in numba.prange(n):
        a = grid[i]
        # start the row at the diagonal-ish node from the linearisation, then walk both ways
        j0 = i
        s_c = inv0[0, 0] * a + inv0[0, 1] * grid[j0]
        s_p = inv0[1, 0] * a + inv0[1, 1] * grid[j0]
        ac, ap, _, r = _solve_one(a, grid[j0], s_c, s_p, fc, fp, w, box[0], box[1], box[2],
                                  box[3], tol, maxit)
        table[i, j0, 0] = ac
        table[i, j0, 1] = ap
        resid[i, j0] = r
        for direction in (1, -1):
            pc = table[i, j0, 0]
            pp = table[i, j0, 1]
            j = j0 + direction
            while 0 <= j < n:
                ac, ap, _, r = _solve_one(a, grid[j], pc, pp, fc, fp, w, box[0], box[1],
                                          box[2], box[3], tol, maxit)
                table[i, j, 0] = ac
                table[i, j, 1] = ap
                resid[i, j] = r
                pc = ac
                pp = ap
                j += direction


#: fastmath without 'nnan' / 'ninf', so the NaN tests of the interpolation survive.
_NO_NAN_ASSUMED = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(cache=True, nogil=True, inline="always")
def _keys(t):
    """Weights of Keys' cubic convolution (a = -1/2, Catmull-Rom) for offsets -1, 0, 1, 2 at
    fractional position t in [0, 1]: exact for quadratics, error O(h^3)."""
    t2 = t * t
    t3 = t2 * t
    return (-0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2)


@numba.njit(cache=True, parallel=True, fastmath=_NO_NAN_ASSUMED)
def _interp(p_lo, p_hi, table, pmin, pmax, inv_h, out_c, out_p):
    """Bicubic (Keys) interpolation of the (n + 2, n + 2, 2) table at each (p_low, p_high),
    clamped to [pmin, pmax]; the table has one node beyond each end of that range, so every
    point has its full 4 x 4 stencil."""
    n1 = table.shape[0] - 1
    for i in numba.prange(p_lo.shape[0]):
        a = np.float64(p_lo[i])
        b = np.float64(p_hi[i])
        # NaN (from -ln of a non-positive signal) reads as fully attenuated
        if a != a:
            a = pmax
        if b != b:
            b = pmax
        a = (min(max(a, pmin), pmax) - pmin) * inv_h
        b = (min(max(b, pmin), pmax) - pmin) * inv_h
        ia = min(int(a), n1 - 3)  # node ia + 1 sits at or below the point; stencil ia..ia+3
        ib = min(int(b), n1 - 3)
        wa0, wa1, wa2, wa3 = _keys(a - ia)
        wb0, wb1, wb2, wb3 = _keys(b - ib)
        rc = 0.0
        rp = 0.0
        for da in range(4):
            r = ia + da
            wa = wa0 if da == 0 else (wa1 if da == 1 else (wa2 if da == 2 else wa3))
            c0 = table[r, ib]
            c1 = table[r, ib + 1]
            c2 = table[r, ib + 2]
            c3 = table[r, ib + 3]
            rc += wa * (wb0 * c0[0] + wb1 * c1[0] + wb2 * c2[0] + wb3 * c3[0])
            rp += wa * (wb0 * c0[1] + wb1 * c1[1] + wb2 * c2[1] + wb3 * c3[1])
        out_c[i] = rc
        out_p[i] = rp


class Decomposer:
    """Projection-domain dual-energy decomposition ``(p_low, p_high) -> (A_c, A_p)``.

    ``energies``: (E,) keV; ``weights``: (E, 2) open-beam photons x detector response of the low
    and high channels on that grid (``ChannelResponse.weights`` of a dual-layer detector, or
    :func:`combine_channels` of two kVp-switching responses). ``p = -ln(T)`` per channel.

    ``method``: ``'table'`` (default) interpolates bilinearly in a ``table_size`` x
    ``table_size`` grid of Newton solutions over ``p_min <= p <= p_max`` in both channels (p_min
    moved down to the next node, so that p = 0 is a node);
    ``'newton'`` solves every ray (damped Newton, tolerance ``tol`` on A, started from the
    open-beam linearisation). Inputs are clamped to ``[p_min, p_max]`` (NaN, as from -ln of a
    non-positive noisy signal, counts as ``p_max``), and solutions to the box
    ``A_c in [-1/max f_KN, 20 p_max / min<f_KN>]``, ``A_p in [-3/max f_p, 20 p_max / min<f_p>]``
    (max / min over the energies either channel sees): pairs no material can produce
    (noise) get the least-squares solution in that box, never NaN.
    """

    def __init__(self, energies, weights, method: str = "table", *, e_ref: float = REFERENCE_KEV,
                 exponent: float = PHOTO_EXPONENT, p_min: float = -0.25, p_max: float = 12.0,
                 table_size: int = 385, tol: float = 1e-12, maxit: int = 100):
        if method not in ("table", "newton"):
            raise ValueError(f"method must be 'table' or 'newton', not {method!r}")
        e = np.asarray(energies, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        if e.ndim != 1 or w.shape != (e.size, 2):
            raise ValueError(f"expected energies (E,) and weights (E, 2); got {e.shape}, {w.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)) or not np.all(w.sum(axis=0) > 0):
            raise ValueError("weights must be finite, >= 0, and each channel must see photons")
        if not (p_max > 0.0 >= p_min > -p_max) or table_size < 8:
            raise ValueError("need -p_max < p_min <= 0 < p_max and table_size >= 8")
        keep = w.sum(axis=1) > 0  # bins no channel sees change nothing
        # node spacing h such that p = 0 is a node (air decomposes to exactly 0)
        n_neg = math.ceil(-min(p_min, 0.0) * (table_size - 1) / (p_max - p_min))
        h = p_max / (table_size - 1 - n_neg)
        p_min = -n_neg * h
        self.energies = e
        self.weights = w
        self.method = method
        self.e_ref = float(e_ref)
        self.exponent = float(exponent)
        self.p_min = float(p_min)
        self.p_max = float(p_max)
        self.table_size = int(table_size)
        self.tol = float(tol)
        self.maxit = int(maxit)
        self._fc = np.ascontiguousarray(compton_basis(e[keep], self.e_ref))
        self._fp = np.ascontiguousarray(photo_basis(e[keep], self.e_ref, self.exponent))
        self._w = np.ascontiguousarray((w[keep] / w[keep].sum(axis=0)).T)  # (2, E'), rows sum 1
        self.effective = effective_basis(e[keep], w[keep], e_ref=self.e_ref, exponent=self.exponent)
        self._inv0 = np.linalg.inv(self.effective)
        self.box = np.array([
            -1.0 / self._fc.max(), 20.0 * self.p_max / self.effective[:, 0].min(),
            -10.0 / self._fp.max(), 20.0 * self.p_max / self.effective[:, 1].min(),
        ])
        self._table: np.ndarray | None = None
        self.table_residual: np.ndarray | None = None

    # -- model ---------------------------------------------------------------------------

    def forward(self, a_c, a_p):
        """Noise-free ``(p_low, p_high)`` of basis line integrals (the model the decomposition
        inverts); float64 arrays of the broadcast shape."""
        a_c, a_p = np.broadcast_arrays(np.asarray(a_c, np.float64), np.asarray(a_p, np.float64))
        x = -(a_c[..., None] * self._fc + a_p[..., None] * self._fp)  # (..., E')
        out = []
        for c in range(2):
            with np.errstate(divide="ignore"):
                s = x + np.log(self._w[c])  # -inf where a channel sees no photons
            m = s.max(axis=-1, keepdims=True)
            out.append(-(m[..., 0] + np.log(np.exp(s - m).sum(axis=-1))))
        return out[0], out[1]

    # -- table ---------------------------------------------------------------------------

    @property
    def grid(self) -> np.ndarray:
        """(table_size + 2,) node values of p (both channels): ``table_size`` nodes from p_min to
        p_max and one more beyond each end (the bicubic stencil's margin)."""
        h = (self.p_max - self.p_min) / (self.table_size - 1)
        return self.p_min + h * np.arange(-1, self.table_size + 1)

    @property
    def table(self) -> np.ndarray:
        """(n + 2, n + 2, 2) Newton solutions ``(A_c, A_p)`` at ``(p_low = grid[i], p_high =
        grid[j])`` (n = table_size), built on first use (~10 us per node and core)."""
        if self._table is None:
            n = self.table_size + 2
            table = np.empty((n, n, 2))
            resid = np.empty((n, n))
            _build_table(self.grid, self._inv0, self._fc, self._fp, self._w, self.box,
                         self.tol, self.maxit, table, resid)
            table.flags.writeable = False
            self._table = table
            self.table_residual = resid
        return self._table

    # -- decomposition -----------------------------------------------------------------

    def decompose(self, p_low, p_high, method: str | None = None):
        """Basis line integrals ``(A_c, A_p)`` of every ray (arrays of the inputs' broadcast
        shape; float32 if both inputs are float32, else float64)."""
        method = self.method if method is None else method
        lo = np.asarray(p_low)
        hi = np.asarray(p_high)
        if lo.shape != hi.shape:
            lo, hi = np.broadcast_arrays(lo, hi)
        dtype = out_dtype(lo, hi)
        if not (lo.dtype.kind == "f" and lo.dtype == hi.dtype):
            lo = lo.astype(np.float64)
            hi = hi.astype(np.float64)
        flat_lo = np.ascontiguousarray(lo).reshape(-1)
        flat_hi = np.ascontiguousarray(hi).reshape(-1)
        out_c = np.empty(flat_lo.size, dtype=dtype)
        out_p = np.empty(flat_lo.size, dtype=dtype)
        if method == "table":
            table = self.table
            inv_h = (self.table_size - 1) / (self.p_max - self.p_min)
            _interp(flat_lo, flat_hi, table, self.p_min, self.p_max, inv_h, out_c, out_p)
        elif method == "newton":
            iters = np.empty(flat_lo.size, dtype=np.int32)
            _newton_many(flat_lo.astype(np.float64), flat_hi.astype(np.float64), self._inv0,
                         self._fc, self._fp, self._w, self.box, self.p_min, self.p_max,
                         self.tol, self.maxit, out_c, out_p, iters)
            self.last_iterations = iters
        else:
            raise ValueError(f"method must be 'table' or 'newton', not {method!r}")
        return out_c.reshape(lo.shape), out_p.reshape(lo.shape)
