"""The per-ray and per-voxel work of the dual-energy decomposition as CUDA kernels (numba.cuda).

:func:`decompose_cuda` is :meth:`Decomposer.decompose <xraybag.engine.ct.decompose.Decomposer.decompose>`
with ``method='table'``: one CUDA thread takes one ray and interpolates the decomposer's table of
Newton solutions at its ``(p_low, p_high)`` exactly as the CPU's ``_interp`` does: the reading in
float64, NaN read as ``p_max``, the clamp to ``[p_min, p_max]``, the 4 x 4 Keys (Catmull-Rom)
stencil with the CPU's own weights (``_keys``, compiled a second time as a device function) and
its order of sums, the result stored in the output dtype of the CPU (float32 when both inputs are
float32, else float64). The table is built on the CPU, as for the CPU decomposition, and copied to
the GPU once per decomposer (:func:`device_table`). ``method='newton'`` runs on the CPU (the inputs
are copied to the host and the results back where asked).

:func:`zeff_rho_e_cuda` is :func:`xraybag.engine.ct.zeff.zeff_rho_e`: one CUDA thread per voxel,
in float64 as numpy computes it (the ratio, its logarithm, the clip to the calibration curve's
range, the curve by Horner's rule as ``np.polyval``, the power-law continuation, the exponential;
0 for air and ``a_p <= 0``), stored in the CPU's dtypes.

Inputs are host arrays or numba device arrays (:func:`xraybag.engine.xray.detect.on_device`: on a GPU, or the
simulator's stand-ins); results come back as host arrays, or stay on the GPU with
``on_device=True``. Under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) the kernels run the
same IEEE operations in the same order as the CPU: the interpolation equals the CPU kernel's
Python compiled without fastmath to the bit, and Zeff / rho_e numpy's to the bit. The CPU's
``_interp`` is compiled with fastmath (``contract``, ``reassoc``), which lets LLVM fuse and reorder
its float64 sums: float64 results differ from it by float64 rounding (1.4e-14 at most in the
tests), float32 results are the same in practice. On a real GPU NVVM fuses
multiplies and adds into multiply-adds too (one rounding fewer, in other places than the CPU), and
libdevice's ``log`` / ``exp`` are within an ulp of the CPU's: float64 rounding again, invisible in
float32 results but for the rare value within an ulp of a float32 rounding boundary.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.ct.basis import out_dtype
from xraybag.engine.ct.decompose import Decomposer, _keys
from xraybag.engine.ct.zeff import AIR_RHO_E, BasisCalibration, default_calibration
from xraybag.engine.xray.detect import (
    on_device as _on_device,  # the name on_device is a keyword here
)
from xraybag.engine.xray.trace_cuda import _DEVICE, device_function

__all__ = ["decompose_cuda", "device_table", "zeff_rho_e_cuda"]

THREADS = 256  # threads per block
_min2 = _DEVICE["min"]  # two-argument min / max (the CUDA target cannot compile the builtins)
_max2 = _DEVICE["max"]
_keys_d = device_function(_keys)
#: largest argument whose exponential is finite (beyond it exp gives inf; Python's math.exp,
#: which the simulator runs, would raise instead)
_EXP_MAX = 709.782712893384


@cuda.jit
def _interp_kernel(p_lo, p_hi, table, pmin, pmax, inv_h, out_c, out_p):  # pragma: no cover - GPU / simulator
    """Thread ``i``: ray ``i``, as one iteration of the CPU's ``decompose._interp``."""
    i = cuda.grid(1)
    if i >= p_lo.shape[0]:
        return
    n1 = table.shape[0] - 1
    a = numba.float64(p_lo[i])
    b = numba.float64(p_hi[i])
    # NaN (from -ln of a non-positive signal) reads as fully attenuated
    if math.isnan(a):
        a = pmax
    if math.isnan(b):
        b = pmax
    a = (_min2(_max2(a, pmin), pmax) - pmin) * inv_h
    b = (_min2(_max2(b, pmin), pmax) - pmin) * inv_h
    ia = _min2(int(a), n1 - 3)  # node ia + 1 sits at or below the point; stencil ia..ia+3
    ib = _min2(int(b), n1 - 3)
    wa0, wa1, wa2, wa3 = _keys_d(a - ia)
    wb0, wb1, wb2, wb3 = _keys_d(b - ib)
    rc = 0.0
    rp = 0.0
    for da in range(4):
        r = ia + da
        wa = wa0 if da == 0 else (wa1 if da == 1 else (wa2 if da == 2 else wa3))
        rc += wa * (wb0 * table[r, ib, 0] + wb1 * table[r, ib + 1, 0] + wb2 * table[r, ib + 2, 0]
                    + wb3 * table[r, ib + 3, 0])
        rp += wa * (wb0 * table[r, ib, 1] + wb1 * table[r, ib + 1, 1] + wb2 * table[r, ib + 2, 1]
                    + wb3 * table[r, ib + 3, 1])
    out_c[i] = rc
    out_p[i] = rp


@cuda.jit
def _zeff_rho_kernel(ac, ap, a_c_water, thresh, curve, lo, hi, log_k, n, zeff, rho):  # pragma: no cover
    """Thread ``i``: voxel ``i``, as :func:`xraybag.engine.ct.zeff.zeff` and ``rho_e`` compute
    it in float64 (``curve`` empty: the plain power law ``a_p / a_c = k Zeff^n``)."""
    i = cuda.grid(1)
    if i >= ac.shape[0]:
        return
    c = numba.float64(ac[i])
    p = numba.float64(ap[i])
    rho[i] = c / a_c_water
    z = 0.0
    if c > thresh and p > 0.0:
        ratio = p / c
        if ratio > 0.0:
            lr = math.log(ratio)
        elif ratio == 0.0:  # underflow: Zeff 0 (Python's math.log, the simulator's, raises on 0)
            lr = -math.inf
        else:  # NaN (inf / inf), or negative with a negative threshold: NaN as on the CPU
            lr = math.nan
        if curve.shape[0] == 0:
            x = (lr - log_k) / n
        else:
            inner = _min2(_max2(lr, lo), hi)  # np.clip: NaN stays NaN
            y = 0.0
            for j in range(curve.shape[0]):  # np.polyval: Horner's rule from y = 0
                y = y * inner + curve[j]
            x = y + (lr - inner) / n
        z = math.inf if x > _EXP_MAX else math.exp(x)  # NaN stays NaN
    zeff[i] = z


# ----------------------------------------------------------------------------- host side


def _float_array(a) -> bool:
    return a.dtype in (np.float32, np.float64)


def _flat_on_device(a):
    """``a`` (host or device) as a flat, C-contiguous float32 or float64 device array: a device
    array of those dtypes is a view (no copy); anything else goes through the host (float64)."""
    if _on_device(a):
        if _float_array(a) and a.is_c_contiguous():
            return a.reshape(a.size)
        a = a.copy_to_host()
    a = np.asarray(a)
    if not _float_array(a):
        a = a.astype(np.float64)
    return cuda.to_device(np.ascontiguousarray(a).reshape(-1))


def _pair(a, b, what: str):
    """Two inputs as flat device arrays, with their common shape (host arrays are broadcast as
    the CPU functions do; device arrays must have one shape)."""
    if not _on_device(a):
        a = np.asarray(a)
    if not _on_device(b):
        b = np.asarray(b)
    if tuple(a.shape) != tuple(b.shape):
        if _on_device(a) or _on_device(b):
            raise ValueError(f"{what}: device inputs must have the same shape; got {a.shape} and {b.shape}")
        a, b = np.broadcast_arrays(a, b)
    return _flat_on_device(a), _flat_on_device(b), tuple(a.shape)


def _result(d, shape, on_device: bool):
    """A flat device result as the caller asked: on the GPU, or copied to the host (``shape``)."""
    if on_device:
        return d if shape == tuple(d.shape) else d.reshape(shape)
    return d.copy_to_host().reshape(shape)


def _to_host(a):
    return a.copy_to_host() if _on_device(a) else a


def device_table(decomposer: Decomposer):
    """The decomposer's (n + 2, n + 2, 2) float64 table on the GPU: built on the CPU on first use
    (:attr:`Decomposer.table`), copied once, kept on the decomposer (``_table_cuda``)."""
    table = decomposer.table
    cached = getattr(decomposer, "_table_cuda", None)
    if cached is None or cached[0] is not table:
        cached = (table, cuda.to_device(np.ascontiguousarray(table, dtype=np.float64)))
        decomposer._table_cuda = cached
    return cached[1]


def decompose_cuda(decomposer: Decomposer, p_low, p_high, method: str | None = None, *, on_device: bool = False):
    """:meth:`Decomposer.decompose` on the GPU: basis line integrals ``(A_c, A_p)`` of every ray,
    of the inputs' (broadcast) shape, float32 if both inputs are float32, else float64.

    ``p_low``, ``p_high``: host arrays (broadcast as on the CPU) or numba device arrays of one
    shape. ``method``: the decomposer's by default; ``'table'`` interpolates on the GPU (the same
    values as the CPU, see the module docstring), ``'newton'`` solves on the CPU. With
    ``on_device=True`` the results are numba device arrays, else host arrays."""
    method = decomposer.method if method is None else method
    if method not in ("table", "newton"):
        raise ValueError(f"method must be 'table' or 'newton', not {method!r}")
    if method == "newton":
        res = decomposer.decompose(_to_host(p_low), _to_host(p_high), method="newton")
        return tuple(cuda.to_device(np.ascontiguousarray(r)) for r in res) if on_device else res
    lo, hi, shape = _pair(p_low, p_high, "decompose_cuda")
    dtype = out_dtype(lo, hi)
    n = lo.shape[0]
    out_c = cuda.device_array(n, dtype=dtype)
    out_p = cuda.device_array(n, dtype=dtype)
    if n:
        inv_h = (decomposer.table_size - 1) / (decomposer.p_max - decomposer.p_min)
        _interp_kernel[(n + THREADS - 1) // THREADS, THREADS](
            lo, hi, device_table(decomposer), decomposer.p_min, decomposer.p_max, inv_h, out_c, out_p)
    return _result(out_c, shape, on_device), _result(out_p, shape, on_device)


def zeff_rho_e_cuda(a_c, a_p, calibration: BasisCalibration | None = None, *, min_rho_e: float = AIR_RHO_E,
                    on_device: bool = False):
    """:func:`xraybag.engine.ct.zeff.zeff_rho_e` on the GPU: ``(zeff, rho_e)`` of every voxel,
    both of the inputs' (broadcast) shape (the CPU's rho_e keeps ``a_c``'s shape, and 0-d
    results are numpy scalars there, 0-d arrays here); Zeff float32 if both inputs are float32,
    rho_e float32 if ``a_c`` is (else float64), as on the CPU. Inputs and ``on_device`` as for
    :func:`decompose_cuda`."""
    cal = default_calibration() if calibration is None else calibration
    ac, ap, shape = _pair(a_c, a_p, "zeff_rho_e_cuda")
    n = ac.shape[0]
    zeff = cuda.device_array(n, dtype=out_dtype(ac, ap))
    rho = cuda.device_array(n, dtype=np.float32 if ac.dtype == np.float32 else np.float64)
    if n:
        curve = np.asarray(cal.curve, dtype=np.float64)
        lo, hi = (float(v) for v in cal.ln_ratio_range)
        _zeff_rho_kernel[(n + THREADS - 1) // THREADS, THREADS](
            ac, ap, float(cal.a_c_water), min_rho_e * cal.a_c_water, cuda.to_device(curve), lo, hi,
            math.log(cal.k), float(cal.n), zeff, rho)
    return _result(zeff, shape, on_device), _result(rho, shape, on_device)
