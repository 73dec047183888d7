"""The CUDA decomposition and Zeff / electron density (xraybag.engine.ct.decompose_cuda) against
the CPU's ``Decomposer.decompose`` (table) and ``zeff.zeff_rho_e``, and against the known basis
line integrals the rays were made from.

As in tests/test_detect_cuda.py, numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba
is imported) runs in a subprocess: the script below prints one JSON line of measurements; the
kernels are also compiled to PTX for a real GPU; the ``gpu`` test runs the script on a real GPU at
a larger size (``make test-gpu``).
"""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import ptx_of
from helpers import run_python as _run

# A dual-layer (sandwich) detector at 160 kVp and its decomposer; rays made from known (A_c, A_p)
# of real materials (a_c in 0.05..8, Zeff 5..30 through the calibration's power law) with the
# decomposer's forward model, and rays no material makes: noise around air, p below p_min and
# above p_max, NaN, +-inf, exact zeros. Both decompositions of each set, in float64, float32 and
# mixed inputs, host and device; then Zeff / rho_e of the decomposed values per mm.
COMPARE = textwrap.dedent("""
    import json, sys, time, warnings
    from dataclasses import replace
    import numba
    import numpy as np
    from numba import cuda
    from xraybag.engine.ct import decompose as D
    from xraybag.engine.ct import zeff as Z
    from xraybag.engine.ct.decompose import Decomposer
    from xraybag.engine.ct.decompose_cuda import decompose_cuda, device_table, zeff_rho_e_cuda
    from xraybag.engine.xray.detect import channel_response
    from xraybag.materials.library import default_library
    from xraybag.scenes.models import Detector, Scanner, Spectrum

    warnings.simplefilter("ignore", RuntimeWarning)  # inf / NaN on purpose, and their float32 casts
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    sc = Scanner(name="ct", type="radiograph", spectrum=Spectrum(kvp=160, filtration={"Al": 2.0}),
                 detector=Detector(type="dual_sandwich"), noise=False)
    r = channel_response(sc, default_library(), 1.0, 1000.0)
    dec = Decomposer(r.energies, r.weights)
    cal = Z.calibration_of(dec)
    rng = np.random.default_rng(11)
    a_c = rng.uniform(0.05, 8.0, n)
    a_p = a_c * cal.k * rng.uniform(5.0, 30.0, n) ** cal.n
    p_lo, p_hi = dec.forward(a_c, a_p)
    inside = (p_lo < dec.p_max) & (p_hi < dec.p_max)
    m = max(n // 4, 64)
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, dec.p_min, dec.p_max, -5.0, 30.0, 1e300, -1e300]
    s_lo, s_hi = np.meshgrid(special, special)
    e_lo = np.concatenate([rng.normal(0.0, 0.05, m), rng.uniform(-2.0, 16.0, m), s_lo.ravel(), dec.grid])
    e_hi = np.concatenate([rng.normal(0.0, 0.05, m), rng.uniform(-2.0, 16.0, m), s_hi.ravel(), dec.grid[::-1]])

    def ordered(x):  # float bit patterns as integers in the order of the values
        i = x.view(np.int32 if x.dtype == np.float32 else np.int64).astype(np.int64)
        return np.where(i < 0, -(i & (2 ** (8 * x.itemsize - 1) - 1)), i)

    def diff(ref, got):
        assert ref.dtype == got.dtype and ref.shape == got.shape, (ref.dtype, got.dtype, ref.shape, got.shape)
        nan = np.isnan(ref)
        fin = ~nan
        ulp = np.abs(ordered(ref[fin]) - ordered(got[fin]))
        r64, g64 = ref[fin].astype(np.float64), got[fin].astype(np.float64)
        err = np.where(r64 == g64, 0.0, np.abs(r64 - g64))  # equal infinities: no error
        # float64 rounding (fused multiply-adds, reassociation, libdevice) and one unit of the
        # stored dtype's rounding
        bound = np.spacing(np.abs(ref[fin])).astype(np.float64) + 1e-12 * (1.0 + np.abs(r64))
        return {"dtype": str(ref.dtype), "exact": bool(np.array_equal(ref, got, equal_nan=True)),
                "equal_share": float(np.mean((ref == got) | (np.isnan(ref) & np.isnan(got)))),
                "nan_same": bool(np.array_equal(nan, np.isnan(got))), "max_ulp": int(ulp.max(initial=0)),
                "max_abs": float(err.max(initial=0.0)), "within_bound": bool(np.all((err == 0) | (err <= bound)))}

    out = {"rays": int(p_lo.size + e_lo.size), "setup_s": round(time.perf_counter() - t0, 3)}
    t = time.perf_counter()
    checks = {}
    plain_checks = {}
    fast = D._interp
    plain = numba.njit(fast.py_func)  # prange runs as range
    for name, lo, hi in (("physical", p_lo, p_hi), ("edge", e_lo, e_hi)):
        for kind, a, b in (("f64", lo, hi), ("f32", lo.astype(np.float32), hi.astype(np.float32)),
                           ("mixed", lo.astype(np.float32), hi)):
            ref = dec.decompose(a, b)
            got = decompose_cuda(dec, a, b)
            checks[f"{name}_{kind}"] = [diff(x, y) for x, y in zip(ref, got)]
            D._interp = plain  # the CPU's interpolation compiled without fastmath
            try:
                ref_plain = dec.decompose(a, b)
            finally:
                D._interp = fast
            plain_checks[f"{name}_{kind}"] = [diff(x, y) for x, y in zip(ref_plain, got)]
            if name == "physical" and kind == "f32":
                ref32, got32 = ref, got
            if name == "edge" and kind == "f64":
                out["edge_finite"] = bool(all(np.isfinite(g).all() for g in got))
    out["decompose"] = checks
    out["decompose_plain"] = plain_checks
    out["decompose_s"] = round(time.perf_counter() - t, 3)
    # device inputs (one C-contiguous 2-D, one a host array), results kept on the GPU
    k = (p_lo.size // 8) * 8
    d_lo = cuda.to_device(p_lo[:k].astype(np.float32).reshape(8, -1))
    got = decompose_cuda(dec, d_lo, p_hi[:k].astype(np.float32).reshape(8, -1), on_device=True)
    ref = decompose_cuda(dec, p_lo[:k].astype(np.float32).reshape(8, -1), p_hi[:k].astype(np.float32).reshape(8, -1))
    out["device_io"] = {"kept": all(hasattr(g, "copy_to_host") for g in got),
                        "equal": all(np.array_equal(x, g.copy_to_host()) for x, g in zip(ref, got))}
    out["table_sent_once"] = device_table(dec) is device_table(dec)
    # broadcasting, a 0-d pair, nothing at all, and Newton (on the CPU)
    b_ref = decompose_cuda(dec, p_lo[:50], np.full(50, 0.3))
    b_got = decompose_cuda(dec, p_lo[:50], 0.3)
    z_ref = dec.decompose(np.float32(1.0), np.float32(0.5))
    z_got = decompose_cuda(dec, np.float32(1.0), np.float32(0.5))
    e_got = decompose_cuda(dec, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    nw_ref = dec.decompose(p_lo[:100], p_hi[:100], method="newton")
    nw_got = decompose_cuda(dec, cuda.to_device(p_lo[:100]), p_hi[:100], method="newton")
    out["shapes"] = {
        "broadcast": all(np.array_equal(x, y) for x, y in zip(b_ref, b_got)),
        "scalar": all(y.shape == () and y.dtype == np.float32 and abs(x - y) <= np.spacing(abs(x))
                      for x, y in zip(z_ref, z_got)),
        "empty": all(y.shape == (0, 3) and y.dtype == np.float32 for y in e_got),
        "newton": all(np.array_equal(x, y) for x, y in zip(nw_ref, nw_got)),
    }
    # independent: the GPU's decomposition of noise-free rays against the (A_c, A_p) they were made of
    g64 = decompose_cuda(dec, p_lo[inside], p_hi[inside])
    out["truth"] = {
        "rays": int(inside.sum()),
        "c_rel": float(np.max(np.abs(g64[0] - a_c[inside]) / np.maximum(a_c[inside], 0.5))),
        "p_rel": float(np.max(np.abs(g64[1] - a_p[inside]) / np.maximum(a_p[inside], 0.5))),
        "c_rel_f32": float(np.max(np.abs(got32[0][inside] - a_c[inside]) / np.maximum(a_c[inside], 0.5))),
    }
    # Zeff / rho_e of the decomposed values per 20 mm, air, noise, extremes and NaN
    cal0 = replace(cal, curve=())  # the plain power law
    zc = np.concatenate([ref32[0][inside] / 20, [0.0, 1e-9, -0.01, cal.a_c_water, 1e-30, 1e30, np.inf, np.inf, np.nan, 0.5,
                                         cal.a_c_water * 0.01, 0.2]]).astype(np.float32)
    zp = np.concatenate([ref32[1][inside] / 20, [0.0, 1e-6, 0.01, -1.0, 1.0, 1e-30, 1.0, np.inf, 1.0, np.nan,
                                         1.0, 1e-12]]).astype(np.float32)
    t = time.perf_counter()
    zeff = {}
    for cname, c in (("curve", cal), ("power_law", cal0)):
        for kind, a, b in (("f32", zc, zp), ("f64", zc.astype(np.float64), zp.astype(np.float64)),
                           ("mixed", zc, zp.astype(np.float64))):
            with np.errstate(all="ignore"):
                ref = Z.zeff_rho_e(a, b, c)
            got = zeff_rho_e_cuda(a, b, c)
            zeff[f"{cname}_{kind}"] = [diff(x, y) for x, y in zip(ref, got)]
    h = zc.size // 2
    zd = zeff_rho_e_cuda(cuda.to_device(zc[:2 * h].reshape(2, h)), cuda.to_device(zp[:2 * h].reshape(2, h)), cal,
                         on_device=True)
    zr = zeff_rho_e_cuda(zc[:2 * h], zp[:2 * h], cal)
    out["zeff"] = zeff
    out["zeff_s"] = round(time.perf_counter() - t, 3)
    out["zeff_device_io"] = all(hasattr(g, "copy_to_host") and g.shape == (2, h)
                                and np.array_equal(x, g.copy_to_host().ravel(), equal_nan=True) for x, g in zip(zr, zd))
    z = zeff_rho_e_cuda(zc, zp, cal)[0]
    out["zeff_range"] = [float(np.nanmin(z[:-12])), float(np.nanmax(z[:-12]))]
    print(json.dumps(out))
""")


def _compare(n: int, sim: bool) -> dict:
    proc = _run(["-c", COMPARE, str(n)], sim=sim, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(r: dict, exact: bool) -> None:
    """Every value within float64 rounding of the CPU's, plus one unit of the stored dtype
    (``within_bound``); with ``exact`` (the simulator: the same IEEE operations in the same order)
    the interpolation equals the CPU kernel's own Python compiled without fastmath to the bit, and
    the float32 results the CPU's (compiled with fastmath, which lets LLVM fuse and reorder the
    float64 sums) all but in rare roundings."""
    for group in ("decompose", "decompose_plain", "zeff"):
        for name, pair in r[group].items():
            for d in pair:
                assert d["nan_same"], (group, name, d)
                assert d["within_bound"], (group, name, d)
                if exact and group == "decompose_plain":
                    assert d["exact"], (group, name, d)
                if exact and d["dtype"] == "float32":
                    assert d["equal_share"] >= 0.99, (group, name, d)
    for kind, dtype in (("f64", "float64"), ("f32", "float32"), ("mixed", "float64")):
        assert r["decompose"][f"physical_{kind}"][0]["dtype"] == dtype
        assert r["zeff"][f"curve_{kind}"][0]["dtype"] == dtype
    assert r["zeff"]["curve_mixed"][1]["dtype"] == "float32"  # rho_e follows a_c alone, as on the CPU
    assert r["edge_finite"]  # NaN, inf and out-of-range pairs never give NaN
    assert r["device_io"] == {"kept": True, "equal": True}
    assert r["table_sent_once"]
    assert all(r["shapes"].values()), r["shapes"]
    assert r["zeff_device_io"]
    # the table's accuracy on rays made from known basis line integrals (tests/test_ct_decompose.py)
    t = r["truth"]
    assert t["rays"] > 100
    assert t["c_rel"] < 2e-3 and t["p_rel"] < 2e-3 and t["c_rel_f32"] < 2e-3, t
    assert 4.0 < r["zeff_range"][0] and r["zeff_range"][1] < 32.0


def test_simulated_cuda_decomposition_equals_the_cpus():
    _check(_compare(1200, sim=True), exact=True)


def test_kernels_compile_for_a_real_gpu():
    """numba's CUDA typing and NVVM on both kernels (no GPU needed)."""
    size, loads = ptx_of("""
        from xraybag.engine.ct import decompose_cuda as K
        f4, f8 = nt.float32[::1], nt.float64[::1]
        sig = (f4, f4, nt.float64[:, :, ::1], nt.float64, nt.float64, nt.float64, f4, f4)
        ptx, _ = cuda.compile_ptx(K._interp_kernel.py_func, sig, cc=(9, 0))
        print("PTX", len(ptx), ptx.count("ld.global.f64") + ptx.count("ld.global.nc.f64"))
    """)
    assert size > 3_000 and loads >= 8  # the stencil's rows of both channels at least
    size, stores = ptx_of("""
        from xraybag.engine.ct import decompose_cuda as K
        f4, f8 = nt.float32[::1], nt.float64[::1]
        sig = (f4, f4, nt.float64, nt.float64, f8, nt.float64, nt.float64, nt.float64, nt.float64, f4, f4)
        ptx, _ = cuda.compile_ptx(K._zeff_rho_kernel.py_func, sig, cc=(9, 0))
        print("PTX", len(ptx), ptx.count("st.global.f32"))
    """)
    assert size > 3_000 and stores >= 2


@pytest.mark.gpu
def test_cuda_decomposition_equals_the_cpus_on_a_gpu():
    """A million rays on the GPU: the CPU's values to float64 rounding and one float32 unit."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    r = _compare(1_000_000, sim=False)
    _check(r, exact=False)
