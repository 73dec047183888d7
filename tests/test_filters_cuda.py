"""The CUDA detector filters (xraybag.engine.xray.filters_cuda) against the numba ones and closed forms.

As for the tracers (tests/test_ct_forward_cuda.py), numba's CUDA simulator runs in a subprocess
(NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported): :data:`SCRIPT` filters small stacks
with both and prints one JSON line per case. Under the simulator (Python floats) the GPU's
arithmetic is the CPU's step by step, so the results are the same to the bit. The kernels are
compiled to PTX for a real GPU, with no fused multiply-add (libdevice's ``dmul_rn``); the ``gpu``
test runs the comparison on a real GPU at 4x the size.
"""

from __future__ import annotations

import pytest
from helpers import json_records, ptx_of
from helpers import run_python as _run

#: ``python -c SCRIPT GROUP [SCALE]``: GROUP one of :data:`GROUPS`, SCALE multiplying rows and
#: columns; one JSON line per case: ``rel`` (max |gpu - cpu| / max |cpu|), ``exact`` (bitwise),
#: ``dev`` (the result is a device array), ``const`` (|out - expected| for a constant image)
SCRIPT = """
import json, sys, time
import numpy as np
from numba import cuda
from xraybag.engine.xray import filters as F
from xraybag.engine.xray.filters_cuda import blur_and_add_cuda, lowpass_cuda

group, scale = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
rng = np.random.default_rng(0)
a = rng.random((3, 16 * scale, 40 * scale)) * 100 - 20
b = rng.random((2, 30 * scale, 50 * scale)) * 100 - 20
za = rng.standard_normal(a.shape, dtype=np.float32)

def record(case, gpu, cpu, **extra):
    out = gpu.copy_to_host()
    rel = float(np.max(np.abs(out - cpu)) / np.max(np.abs(cpu)))
    print(json.dumps({"case": case, "rel": rel, "exact": bool(np.array_equal(out, cpu)),
                      "dev": hasattr(gpu, "copy_to_host"), "shape": list(out.shape), **extra}))

t0 = time.time()
if group == "lowpass_blocks":
    s = 12.0 * scale  # f = 3 * scale: blocks on both axes of b (a partial last column), on the columns of a
    record("lowpass_blocks", lowpass_cuda(b, s, 0.7, 0.3), F.lowpass(b, s, 0.7, 0.3, threads=True))
    record("lowpass_blocks_cols", lowpass_cuda(a, s, 0.7, 0.3), F.lowpass(a, s, 0.7, 0.3, threads=True))
    out = lowpass_cuda(np.full((1, 12, 20), 3.25), 8.0, 0.5, 1.0).copy_to_host()  # 2 x 2 blocks
    print(json.dumps({"case": "lowpass_const_blocks", "const": float(np.max(np.abs(out - 2.625)))}))
elif group == "lowpass_direct":  # f < 2: scipy's gaussian_filter; the image given as a device array
    record("lowpass_direct", lowpass_cuda(cuda.to_device(a), 1.5, 2.5, -4.0),
           F.lowpass(a, 1.5, 2.5, -4.0, threads=True))
    out = lowpass_cuda(np.full((1, 12, 20), 3.25), 1.5, 0.5, 1.0).copy_to_host()
    print(json.dumps({"case": "lowpass_const_direct", "const": float(np.max(np.abs(out - 2.625)))}))
elif group == "blur":
    record("blur_0.5", blur_and_add_cuda(b, 0.5), F.blur_and_add(b, 0.5, threads=True))
    narrow = a[:1, :5, :7].copy()  # radius 8 > 7 columns: every column an edge column
    record("blur_narrow", blur_and_add_cuda(narrow, 2.0), F.blur_and_add(narrow, 2.0, threads=True))
    out = blur_and_add_cuda(np.full((1, 9, 11), -7.5), 2.0).copy_to_host()
    print(json.dumps({"case": "blur_const", "const": float(np.max(np.abs(out + 7.5)))}))
elif group == "blur_noise":  # the draws on the GPU already, or on the host
    record("blur_2.0_noise", blur_and_add_cuda(a, 2.0, cuda.to_device(za), 3e-3),
           F.blur_and_add(a, 2.0, za, 3e-3, threads=True))
    a1, z1 = a[:1].copy(), za[:1].copy()
    record("blur_0.5_noise", blur_and_add_cuda(a1, 0.5, z1, 0.25), F.blur_and_add(a1, 0.5, z1, 0.25, threads=True))
print(json.dumps({"case": "seconds", "value": time.time() - t0}))
"""

#: the cases compared with the CPU, by group (one simulator run each, a few seconds)
GROUPS = {"lowpass_blocks": {"lowpass_blocks", "lowpass_blocks_cols"}, "lowpass_direct": {"lowpass_direct"},
          "blur": {"blur_0.5", "blur_narrow"}, "blur_noise": {"blur_2.0_noise", "blur_0.5_noise"}}


def _records(group: str, sim: bool, scale: int = 1) -> dict:
    return json_records(_run(["-c", SCRIPT, group, str(scale)], sim=sim, timeout=600), key="case")


_simulated: dict = {}


def simulated(group: str) -> dict:
    """The records of ``group`` under the simulator (run once per test session)."""
    if group not in _simulated:
        _simulated[group] = _records(group, sim=True)
    return _simulated[group]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_simulated_cuda_equals_numba(group):
    """lowpass: block means, the Gaussian of the block means and the interpolation back (blocks on
    both axes, on the columns only), and the direct branch; blur: with and without noise (host or
    device draws), sigma 0.5 and 2.0, a kernel wider than the image. The CPU's numbers, bit for
    bit (the bound of 1e-12 relative to the largest value is there to say how far they are)."""
    recs = simulated(group)
    for case in GROUPS[group]:
        r = recs[case]
        assert r["dev"], r  # a device array comes back
        assert r["rel"] <= 1e-12 and r["exact"], r


@pytest.mark.parametrize("group,case", [("lowpass_blocks", "lowpass_const_blocks"),
                                        ("lowpass_direct", "lowpass_const_direct"), ("blur", "blur_const")])
def test_simulated_filters_of_a_constant(group, case):
    """Independent of the CPU code: the low-pass of a constant c is scale c + shift (0.5 * 3.25 +
    1), the blur of a constant is the constant."""
    assert simulated(group)[case]["const"] < 1e-13


def test_kernels_compile_for_a_real_gpu_without_fused_products():
    """numba's CUDA typing and NVVM on every kernel (no GPU needed); the products are libdevice's
    ``dmul_rn`` (mul.rn.f64), never fused into a multiply-add (which would round differently from
    the CPU)."""
    size, fused = ptx_of("""
        from xraybag.engine.xray import filters_cuda as C
        f3, f1, i1 = nt.float64[:, :, ::1], nt.float64[::1], nt.int64[::1]
        sigs = ((C._correlate_sym, (f3, nt.int64, f1, nt.boolean, nt.float64, nt.float64, f3)),
                (C._block_means, (f3, nt.int64, nt.int64, nt.float64, f3)),
                (C._interpolate, (f3, i1, i1, f1, i1, i1, f1, nt.float64, nt.float64, f3)),
                (C._blur_pass, (f3, nt.int64, f1, nt.float32[:, :, ::1], nt.float32, nt.boolean, f3)))
        sizes, fused = [], 0
        for kernel, sig in sigs:
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
            assert "mul.rn.f64" in ptx, kernel
            sizes.append(len(ptx))
            fused += ptx.count("fma.rn.f64")
        print("PTX", min(sizes), fused)
    """)
    assert size > 3_000 and fused == 0


def test_bad_inputs_are_refused():
    code = """
import numpy as np
from numba import cuda
from xraybag.engine.xray.filters_cuda import blur_and_add_cuda, lowpass_cuda
for call in (lambda: lowpass_cuda(np.zeros((4, 5)), 1.0),
             lambda: lowpass_cuda(cuda.to_device(np.zeros((1, 4, 5), np.float32)), 1.0),
             lambda: blur_and_add_cuda(np.zeros((1, 4, 5)), 1.0, cuda.to_device(np.zeros((1, 4, 6), np.float32)))):
    try:
        call()
        print("accepted")
    except (TypeError, ValueError) as e:
        print("refused", type(e).__name__)
"""
    proc = _run(["-c", code], sim=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["refused", "ValueError", "refused", "TypeError", "refused", "ValueError"]


@pytest.mark.gpu
def test_cuda_equals_numba_on_a_gpu():
    """The same cases at 4x the rows and columns on a real GPU: within 1e-9 relative (the products
    are not fused, so in practice the same to the bit)."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    for group, cases in GROUPS.items():
        recs = _records(group, sim=False, scale=4)
        assert cases <= set(recs)
        for case in cases:
            assert recs[case]["dev"] and recs[case]["rel"] <= 1e-9, recs[case]
        for case in recs:
            if case.endswith("const"):
                assert recs[case]["const"] < 1e-12, recs[case]
