"""The CUDA spectral pass (xraybag.engine.xray.detect_cuda) against the numba reference.

NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported, so the simulator runs in a
subprocess (as in test_trace_cuda.py). The kernel is also compiled to PTX for a real GPU; the
``gpu`` test runs the comparison on a real GPU at a realistic size (``make test-gpu``).
"""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import ptx_of
from helpers import run_python as _run

# Both passes on the same path lengths of a dual-layer detector at 160 kVp (with quantum noise: 4
# sums a pixel) and a photon-counting one (3 bins: 6 sums); then the whole detect() with noise,
# drawn from generators of the same seed.
COMPARE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from xraybag.engine.xray import detect as D
    from xraybag.engine.xray.detect_cuda import dense_signals_cuda
    from xraybag.engine.xray.devices import probe_cuda
    from xraybag.materials import default_library
    from xraybag.scenes.models import Scanner

    rows, cols = (int(x) for x in sys.argv[1:3])
    lib = default_library()
    mats = ["water", "aluminum", "hdpe", "iron", "pine", "glass"]
    rng = np.random.default_rng(7)
    L = (rng.random((rows, cols, len(mats))) * 40.0).astype(np.float32)
    L[rng.random(L.shape) < 0.6] = 0.0  # most pixels cross a few materials
    L[: rows // 4] = 0.0  # open beam
    L[:, -1, 3] = 2000.0  # 2 m of iron: nothing gets through
    out = {"pixels": rows * cols}
    for name, det in (("dual", {"type": "dual_sandwich"}),
                      ("counting", {"type": "photon_counting", "thresholds": [20, 50, 90]})):
        sc = Scanner.model_validate({"name": "v", "type": "radiograph", "spectrum": {"kvp": 160},
                                     "detector": det, "noise": True})
        resp = D.channel_response(sc, lib, 1.0, 1000.0)
        mu = D.mu_table(mats, lib, resp.energies)
        w = np.concatenate([resp.weights, resp.weights * resp.quanta], axis=1)
        L2 = L.reshape(-1, len(mats))
        cpu = D.dense_signals(L2, mu, w, stride=cols)
        gpu = dense_signals_cuda(L2, mu, w, stride=cols)
        # float64 reference of the same sums
        ref = np.exp(-(L2.astype(np.float64) @ mu)) @ w
        # float32 exponents x carry an absolute error of ~|x| ulp, so the relative error of a
        # pixel grows with its attenuation: compared per unit of (1 + the largest exponent)
        x = np.minimum((L2.astype(np.float64) @ mu).max(axis=1), 87.0)[:, None]
        live = (L2 @ mu).max(axis=1) < 80.0  # not clamped at exp(-87)
        empty = ~L2.any(axis=1)
        def rel(a, b):
            return float(np.max((np.abs(a - b) / np.abs(b) / (1.0 + x))[live]))
        out[name] = {
            "sums": w.shape[1],
            "gpu_cpu": rel(gpu, cpu),
            "gpu_ref": rel(gpu, ref),
            "cpu_ref": rel(cpu, ref),
            "gpu_cpu_unscaled": float(np.max((np.abs(gpu - cpu) / np.abs(cpu))[live])),
            "open_equal": bool(np.array_equal(gpu[empty], cpu[empty])),
            "dark": float(gpu[-1, 0] / w[:, 0].sum()),
            "dark_cpu": float(cpu[-1, 0] / w[:, 0].sum()),
        }
        assert probe_cuda()
        a = D.detect(L, mats, sc, resp, lib, np.random.default_rng(1), 1.0, spectral="numba")
        b = D.detect(L, mats, sc, resp, lib, np.random.default_rng(1), 1.0, spectral="cuda")
        diff = np.concatenate([np.abs(a[c] - b[c]).ravel() for c in a])
        out[name]["noisy_max"] = float(diff.max())
        out[name]["noisy_share_above_1e-4"] = float(np.mean(diff > 1e-4))
        # the 2D view's whole detection on the GPU (counter draws) against the CPU's, same key
        from xraybag.engine.xray.counter import draws_from
        from xraybag.engine.xray.detect_cuda import detect_view_cuda
        key = draws_from(np.random.default_rng(2))
        c = D.detect(L, mats, sc, resp, lib, None, 1.0, draws=key)
        g = detect_view_cuda(L, mats, sc, resp, lib, 1.0, key)
        other = D.detect(L, mats, sc, resp, lib, None, 1.0, draws=draws_from(np.random.default_rng(3)))
        lit = np.concatenate([(c[k] > 0.01).ravel() for k in c])  # where light gets through
        cg = np.concatenate([c[k].ravel() for k in c])
        gg = np.concatenate([g[k].ravel() for k in g])
        og = np.concatenate([other[k].ravel() for k in other])
        out[name]["view_channels"] = sorted(g) == sorted(c) and all(g[k].shape == c[k].shape for k in c)
        out[name]["view_max_abs"] = float(np.abs(gg - cg).max())
        out[name]["view_max_rel_lit"] = float((np.abs(gg - cg) / cg)[lit].max())
        out[name]["view_other_key_rel_lit"] = float(np.median((np.abs(og - cg) / cg)[lit]))
    print(json.dumps(out))
""")


def _compare(rows: int, cols: int, sim: bool) -> dict:
    proc = _run(["-c", COMPARE, str(rows), str(cols)], sim=sim, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(rec: dict) -> None:
    for name, sums in (("dual", 4), ("counting", 6)):
        r = rec[name]
        assert r["sums"] == sums
        assert r["open_equal"]  # the open beam is the same float64 on both
        # float32 rounding of the exponent, expf and the sums, per unit of exponent (the
        # simulator takes the exponential in float64 and rounds it: ~2.8e-7 at most here; an H200,
        # libdevice's expf within 2 ulp and fused multiply-adds: 7.7e-7 from the CPU and 8.0e-7
        # from float64 over 810,000 pixels, where the CPU is 2.9e-7 from float64)
        assert r["gpu_cpu"] <= 1e-6, r
        assert r["gpu_ref"] <= 1e-6, r  # against float64
        assert r["cpu_ref"] <= 3e-7, r
        assert r["dark"] < 1e-36 and r["dark_cpu"] < 1e-36  # exp(-87) at most: no light through 2 m of iron
        # the same draws: the noisy images differ only where a sum's last bits move a rounding
        assert r["noisy_share_above_1e-4"] <= 0.01, r
        # the whole 2D detection on the GPU (spectral pass, scatter, counter draws, blur) draws
        # what the CPU draws: within 0.5 % per pixel (the bound) where light gets through,
        # far under the noise itself (another key moves a typical pixel by about 1 %)
        assert r["view_channels"], r
        assert r["view_max_rel_lit"] < 5e-3, r
        assert r["view_max_abs"] < 1e-4, r
        assert r["view_other_key_rel_lit"] > 20 * r["view_max_rel_lit"], r


def test_simulated_cuda_spectral_pass_equals_numba():
    _check(_compare(24, 20, sim=True))


def test_spectral_kernel_compiles_for_a_real_gpu():
    """numba's CUDA typing and NVVM on the kernel (no GPU needed: the compute capability numba
    would ask the driver for is given)."""
    size, _ = ptx_of("""
        from xraybag.engine.xray import detect_cuda as K
        f2, d1, d2 = nt.float32[:, ::1], nt.float64[::1], nt.float64[:, ::1]
        ptx, _ = cuda.compile_ptx(K._signals_kernel.py_func, (f2, f2, f2, d1, d2), cc=(9, 0))
        print("PTX", len(ptx), ptx.count("ex2.approx"))
    """)
    assert size > 1000


def test_unknown_spectral_pass_is_refused():
    import numpy as np

    from xraybag.engine.xray.detect import SPECTRAL, channel_response, detect
    from xraybag.errors import XraybagError
    from xraybag.materials import default_library
    from xraybag.scenes.models import Scanner

    if "cuda" in SPECTRAL:
        pytest.skip("a CUDA GPU was registered")
    lib = default_library()
    sc = Scanner.model_validate({"name": "v", "type": "radiograph"})
    resp = channel_response(sc, lib, 1.0, 1000.0)
    with pytest.raises(XraybagError, match="'cuda' is not available; available: numba"):
        detect(np.zeros((2, 2, 1), np.float32), ["water"], sc, resp, lib, np.random.default_rng(0), 1.0,
               spectral="cuda")


@pytest.mark.gpu
def test_cuda_spectral_pass_equals_numba_on_a_gpu():
    """A 600 x 1350 view (a line scan's size) on the GPU."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    _check(_compare(600, 1350, sim=False))
