"""The CUDA tracer (xraybag.engine.xray.trace_cuda) against the numba reference and closed forms.

This process has numba loaded for the CPU, so the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, which
must be set before numba is imported) runs in a subprocess: tests/trace_cuda_scenes.py traces
each scene with both backends and prints what differs. The kernel is also compiled to PTX for a
real GPU (numba's CUDA typing and NVVM, which the simulator skips). The ``gpu`` test runs the
same comparison on a real GPU at a realistic size (``make test-gpu``).
"""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, json_records, ptx_of
from helpers import run_python as _run

from xraybag.errors import XraybagError

SCENES = ROOT / "tests" / "trace_cuda_scenes.py"


@pytest.fixture(scope="module")
def simulated():
    """Every scene traced by both backends under numba's CUDA simulator."""
    return json_records(_run([str(SCENES)], sim=True))


@pytest.mark.parametrize("scene", ["box", "sphere_shell", "overlap_perspective", "fan_beam"])
def test_simulated_cuda_equals_numba(simulated, scene):
    r = simulated[scene]
    assert r["hit_rays"] > 20  # the scene is in view
    assert r["materials"] and r["windows"]
    # atomic sums may reorder additions: within one float32 ulp (exact on these scenes so far)
    assert r["max_ulp"] <= 1
    assert r["max_rel"] <= 1.2e-7


def test_simulated_cuda_matches_closed_forms(simulated):
    box = simulated["box"]
    assert box["closed_form_cuda"] == 0.0  # 80 rays of exactly 6 mm, edges counted once
    shell = simulated["sphere_shell"]
    assert shell["closed_form_cuda"] < 1.0  # hollow-sphere chords, within the 0.5 mm faceting
    assert shell["closed_form_cuda"] == pytest.approx(shell["closed_form_numba"], rel=1e-6)


def test_kernel_compiles_for_a_real_gpu():
    """numba's CUDA typing and NVVM on the kernel and its device functions (no GPU needed: the
    compute capability numba would ask the driver for is given)."""
    size, atomics = ptx_of("""
        from xraybag.engine.xray import trace_cuda as T
        f1, f2, i1, i2 = nt.float64[::1], nt.float64[:, ::1], nt.int64[::1], nt.int64[:, ::1]
        sig = (f2, i2, f1, f1, i2, f2, i1, i1, i1, i1, i2, f2, f2, nt.int8[:, :, ::1], nt.float64[:, :, ::1], f1, f1)
        ptx, _ = cuda.compile_ptx(T._trace_rows.py_func, sig, cc=(9, 0))
        print("PTX", len(ptx), ptx.count("atom.global.add.f64"))
    """)
    assert size > 10_000 and atomics == 1


def test_finish_and_attenuation_kernels_compile_for_a_real_gpu():
    """The kernels that leave the view's total path lengths on the GPU (:func:`_finish_total`: the
    objects' windows summed per pixel in float64, as the CPU) and take the labels' attenuation
    there: numba's CUDA typing and NVVM, no GPU needed. The sums are float64 adds rounded to
    float32, never fused with a product."""
    size, fused = ptx_of("""
        from xraybag.engine.xray import annotate_cuda as A
        from xraybag.engine.xray import trace_cuda as T
        i1, i2 = nt.int64[::1], nt.int64[:, ::1]
        sig = (nt.float64[::1], i2, i1, i1, nt.float32[:, :, ::1])
        ptx, _ = cuda.compile_ptx(T._finish_total.py_func, sig, cc=(9, 0))
        sig = (nt.float32[:, ::1], nt.float32[::1], nt.float32[::1])
        ptx2, _ = cuda.compile_ptx(A._attenuation.py_func, sig, cc=(9, 0))
        print("PTX", len(ptx) + len(ptx2), ptx.count("fma.rn"))
    """)
    assert size > 2_000 and fused == 0


def test_label_kernel_compiles_for_a_real_gpu():
    """The labels' pass on the GPU (:mod:`xraybag.engine.xray.annotate_cuda`): typing and NVVM,
    its counts kept with 64-bit integer atomics, its attenuation products never fused."""
    size, atomics = ptx_of("""
        from xraybag.engine.xray import annotate_cuda as A
        i1, i2 = nt.int64[::1], nt.int64[:, ::1]
        sig = (nt.float64[::1], i2, i1, nt.float32[::1], i1, i1, nt.float32[:, ::1], i1, nt.boolean[::1],
               nt.uint16[:, ::1], i2)
        ptx, _ = cuda.compile_ptx(A._label_pixels.py_func, sig, cc=(9, 0))
        assert ptx.count("fma.rn") == 0
        print("PTX", len(ptx), ptx.count("atom.global"))
    """)
    assert size > 2_000 and atomics >= 6


def test_ray_hit_has_no_fused_multiply_add():
    """NVVM fuses ``a * b - c * d`` into a multiply-add unless told not to; in the ray test that
    makes a shared edge's function in one triangle differ from minus its function in the other, so
    a ray through the edge hits both triangles or neither (seen on an H200). The device copy of
    ``ray_hit`` has no fused double-precision multiply-add."""
    size, fused = ptx_of("""
        from xraybag.engine.xray import trace_cuda as T
        rh = T._ray_hit
        def k(vertices, o, kk, sh, out):
            hit, t = rh(vertices, 0, 1, 2, o[0], o[1], o[2], kk, sh)
            out[0] = t if hit else -1.0
        sig = (nt.float64[:, ::1], nt.float64[::1], nt.int8[::1], nt.float64[::1], nt.float64[::1])
        ptx, _ = cuda.compile_ptx(k, sig, cc=(9, 0))
        print("PTX", len(ptx), ptx.count("fma.rn.f64"))
    """)
    assert size > 5_000 and fused == 0


def test_cuda_backend_refused_without_a_gpu():
    from numba import config, cuda

    from xraybag.engine.xray.devices import cuda_problem
    from xraybag.engine.xray.trace import BACKENDS, trace

    if cuda.is_available() or config.ENABLE_CUDASIM:
        pytest.skip("a CUDA GPU is present")
    assert "numba.cuda.is_available() is false" in cuda_problem()
    with pytest.raises(XraybagError, match="'cuda' is not available; available: numba"):
        trace([], None, backend="cuda")
    assert "cuda" not in BACKENDS


@pytest.mark.gpu
def test_cuda_equals_numba_on_a_gpu():
    """The same scenes at 8x the rays per axis (up to 192 x 128 .. 152 x 232), on the GPU."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    recs = json_records(_run([str(SCENES), "--scale", "8"], sim=False, timeout=600))
    assert set(recs) == {"box", "sphere_shell", "overlap_perspective", "fan_beam"}
    for r in recs.values():
        assert r["materials"] and r["windows"], r
        assert r["max_ulp"] <= 1, r
    assert recs["box"]["closed_form_cuda"] == 0.0
    assert recs["sphere_shell"]["closed_form_cuda"] < 1.0


def test_render_device_cuda_without_a_gpu_is_refused_before_any_work(tmp_path):
    from helpers import run_cli
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    out = tmp_path / "out"
    r = run_cli("render", "demo", "-o", out, "--device", "cuda")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: --device cuda: no CUDA GPU found"), line
    assert not out.exists()  # nothing was written


def test_device_choice():
    """cpu is the numba tracer everywhere; auto takes a real GPU only, never the simulator."""
    from numba import cuda

    from xraybag.engine.xray.devices import backend_for_device

    assert backend_for_device("cpu") == "numba"
    assert backend_for_device("auto") == ("cuda" if cuda.is_available() else "numba")
    code = ("from xraybag.engine.xray.devices import backend_for_device as b; "
            "from xraybag.engine.xray.trace import BACKENDS; "
            "print(b('auto'), b('cuda'), b('cpu'), BACKENDS['cuda'].__module__)")
    proc = _run(["-c", code], sim=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["numba", "cuda", "numba", "xraybag.engine.xray.trace_cuda"]


def test_render_device_cuda_reaches_the_tracer(tmp_path, monkeypatch):
    """``render --device cuda`` traces, detects and colours every 2D view with the "cuda" backends
    (counting stand-ins for the GPU here) and writes the same files as ``--device cpu``: both
    draw the view's noise by counter from the same key."""
    from helpers import run_cli, write

    from xraybag.engine.xray import detect as D
    from xraybag.engine.xray import trace as T

    calls = []
    detected = []

    def counting(solids, geometry):
        calls.append((geometry.rows, geometry.cols))
        return T.trace_numba(solids, geometry)

    def counting_detect(L, *args):
        detected.append(L.shape[:2])
        return D.detect_view(L, *args)

    coloured = []

    def counting_colour(t_low, *args):
        coloured.append(t_low.shape)
        return C.pseudo_colour(t_low, *args)

    from xraybag.engine.xray import colour as C
    from xraybag.engine.xray import devices

    monkeypatch.setattr(devices, "probe_cuda", lambda: True)
    monkeypatch.setitem(T.BACKENDS, "cuda", counting)
    monkeypatch.setitem(D.DETECT_VIEW, "cuda", counting_detect)
    monkeypatch.setitem(C.PSEUDO_COLOUR, "cuda", counting_colour)
    scene = write(tmp_path / "plank.yaml", """
        bag: {size: [300, 200, 120]}
        objects:
          - {name: plank, shape: {box: {size: [200, 100, 20]}}, material: pine, pose: {position: [0, 0, 10]}}
        scanners: [{name: top, type: line_scan, pitch: 4}, {name: side, type: line_scan, view: horizontal, pitch: 4}]
        """)
    manifests = {}
    for device in ("cuda", "cpu"):
        r = run_cli("render", scene, "-n", 1, "-o", tmp_path / device, "-q", "--device", device)
        assert r.exit_code == 0, r.output
        manifests[device] = json.loads((tmp_path / device / "manifest.jsonl").read_text().splitlines()[0])
    assert len(calls) == 2  # both views of the --device cuda run, none of the cpu run
    assert detected == calls == coloured  # each view's detection and colour went to the GPU's stages too
    assert manifests["cuda"]["files"] == manifests["cpu"]["files"]


def test_render_device_cuda_out_of_gpu_memory_is_one_line_at_the_scanner(tmp_path, monkeypatch):
    """The CUDA driver's out-of-memory error in a view (here from a stand-in tracer for the side
    view) ends ``render --device cuda`` with one line placed at that scanner in the scene file and
    exit status 2, and no files of the bag; any other driver error is left as it is."""
    from helpers import run_cli, write
    from numba.cuda.cudadrv.driver import CudaAPIError

    from xraybag.engine.output import memory
    from xraybag.engine.output.pipeline import out_of_gpu_memory
    from xraybag.engine.xray import devices
    from xraybag.engine.xray import trace as T

    views = []

    def tracer(solids, geometry):
        views.append(geometry.rows)
        if len(views) == 2:  # the side view
            raise CudaAPIError(2, "Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")
        return T.trace_numba(solids, geometry)

    monkeypatch.setattr(devices, "probe_cuda", lambda: True)
    monkeypatch.setitem(T.BACKENDS, "cuda", tracer)
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: 1.5 * 2**30)
    scene = write(tmp_path / "plank.yaml", """
        bag: {size: [300, 200, 120]}
        objects:
          - {name: plank, shape: {box: {size: [200, 100, 20]}}, material: pine, pose: {position: [0, 0, 10]}}
        scanners:
          - {name: top, type: line_scan, pitch: 4}
          - {name: side, type: line_scan, view: horizontal, pitch: 4}
        """)
    out = tmp_path / "out"
    r = run_cli("render", scene, "-n", 1, "-o", out, "-q", "--device", "cuda")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert "plank.yaml:6:" in line and "scanners[1]" in line, line
    assert "bag 0: the GPU ran out of memory (1.5 GiB free now); use --device cpu" in line, line
    assert len(views) == 2 and not list(out.glob("images/**/*.png"))
    assert not (out / "manifest.jsonl").read_text().strip()  # no bag recorded
    # other driver errors, and the same error off the GPU's backend, are not this one
    assert out_of_gpu_memory(CudaAPIError(2, "Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY"))
    assert not out_of_gpu_memory(CudaAPIError(700, "CUDA_ERROR_ILLEGAL_ADDRESS"))
    assert not out_of_gpu_memory(MemoryError("host memory"))
    cupy_oom = type("OutOfMemoryError", (Exception,), {"__module__": "cupy.cuda.memory"})
    assert out_of_gpu_memory(cupy_oom("Out of memory allocating 1,024 bytes"))
