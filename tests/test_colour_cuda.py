"""Pseudo-colour's per-pixel passes on the GPU (xraybag.engine.xray.colour_cuda) against the CPU's.

numba's CUDA simulator runs in a subprocess (NUMBA_ENABLE_CUDASIM=1 must be set before numba is
imported): :data:`SCRIPT` renders one line-scan view of a small bag (organic, inorganic and metal
objects, a block that starves the detector, open beam) on the CPU and with ``backend="cuda"``
(tracer, detection, colour passes and labels on the GPU) and compares the two; the GPU's colour
passes are also compared with the CPU's on the same transmissions. The kernels are also compiled to PTX for a real GPU, with no
fused multiply-add; the ``gpu`` test runs the comparison on a real GPU at a finer pitch.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import ptx_of
from helpers import run_python as _run

SCENE = """
bag: {size: [360, 240, 120]}
objects:
  - {name: book, shape: {box: {size: [150, 100, 30]}}, material: pine, pose: {position: [-80, -40, 15]}}
  - {name: bottle, shape: {cylinder: {radius: 35, height: 90}}, material: water, pose: {position: [60, 50, 45]}}
  - {name: plate, shape: {box: {size: [80, 60, 8]}}, material: aluminum, pose: {position: [90, -60, 4]}}
  - {name: tin, shape: {box: {size: [60, 60, 2]}}, material: iron, pose: {position: [-40, 60, 1]}}
  - {name: wire, shape: {cylinder: {radius: 5, height: 120}}, material: iron,
     pose: {position: [0, 0, 60], rotation_deg: [90, 0, 0]}}
  - {name: block, shape: {box: {size: [40, 40, 60]}}, material: iron, pose: {position: [-120, 70, 30]}}
scanners: [{name: top, type: line_scan, pitch: PITCH}]
"""

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from xraybag.engine.output.pipeline import render_view
    from xraybag.engine.solids.scene import build_solids
    from xraybag.engine.packing import pack_bag
    from xraybag.engine.xray import colour as C
    from xraybag.engine.xray.calibration import calibrate_colour, low_high_channels
    from xraybag.engine.xray.devices import probe_cuda
    from xraybag.scenes.loader import load_scene

    loaded = load_scene(sys.argv[1])
    packed, _ = pack_bag(loaded, 1, loaded.spec.seed)
    solids, _ = build_solids(packed, tolerance=packed.tolerance)
    sc = packed.scanners[0]
    cal = C._with_tables(calibrate_colour(sc, loaded.library))
    assert probe_cuda() and "cuda" in C.PSEUDO_COLOUR
    from xraybag.engine.xray.colour_cuda import codes_cuda
    t0 = time.time()
    # the whole view with backend "cuda" (the tracer, its path lengths left on the GPU, the
    # detection, the colour, the labels) and the CPU's view of the same seed
    v = render_view(packed, solids, sc, loaded.library, np.random.default_rng(6))
    w = render_view(packed, solids, sc, loaded.library, np.random.default_rng(6), "cuda")
    # the colour alone: the GPU's codes (no despeckling) and image against the CPU's, from the
    # same transmissions
    low, high = low_high_channels(list(w.transmission))
    tl, th = w.transmission[low], w.transmission[high]
    half = np.s_[:, ::2]  # (every other column: the simulator's time)
    gpu = codes_cuda(tl[half].copy(), th[half].copy(), cal, False)[:4]
    cpu = C._codes(tl[half].copy(), th[half].copy(), cal, False)
    d = np.abs(w.rgb.astype(int) - C.pseudo_colour(tl, th, cal).astype(int)).max(axis=2)
    lab = lambda view: {k: (x.bbox, x.area, x.difficulty, round(x.occlusion, 6))
                        for k, x in view.labels.items()}
    view = {
        "view_paths_on_gpu": hasattr(w.trace, "device_paths"),
        "view_max_abs_t": max(float(np.abs(w.transmission[k] - v.transmission[k]).max()) for k in v.transmission),
        "view_raw_max": max(int(np.abs(w.raw[k].astype(int) - v.raw[k].astype(int)).max()) for k in v.raw),
        "view_rgb_share_above_2": float(np.mean(np.abs(w.rgb.astype(int) - v.rgb.astype(int)).max(axis=2) > 2)),
        "view_instance_equal": bool(np.array_equal(w.instance, v.instance)),
        "view_labels_equal": lab(w) == lab(v), "view_objects": len(v.labels),
        "view_masks_equal": sorted(w.labels) == sorted(v.labels) and all(
            np.array_equal(w.labels[k].window, v.labels[k].window) for k in v.labels),
        "view_occluded": sum(x.occlusion > 0 for x in v.labels.values()),
        "view_paths_equal": bool(np.array_equal(w.trace.paths, v.trace.paths)),
    }
    lit = ~cpu[2] & ~cpu[3]  # neither starved nor background: the pixels Zeff is read for
    print(json.dumps({
        "pixels": int(tl.size), "classes": sorted(int(k) for k in np.unique(cpu[0])),
        "starved": int(cpu[2].sum()), "background": int(cpu[3].sum()),
        "masks_equal": bool(np.array_equal(cpu[2], gpu[2]) and np.array_equal(cpu[3], gpu[3])),
        "code_share_equal": float(np.mean(cpu[0] == gpu[0])),
        "zeff_max_abs": float(np.abs(cpu[1] - gpu[1])[lit].max()),
        "zeff_share_equal": float(np.mean(cpu[1] == gpu[1])),
        "rgb_share_differ": float(np.mean(d > 0)), "rgb_share_above_2": float(np.mean(d > 2)),
        "rgb_shape_equal": w.rgb.shape == v.rgb.shape, "seconds": time.time() - t0} | view))
""")


def _compare(tmp_path, pitch: float, sim: bool) -> dict:
    scene = tmp_path / "bag.yaml"
    scene.write_text(SCENE.replace("PITCH", str(pitch)))
    proc = _run(["-c", SCRIPT, str(scene)], sim=sim, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(r: dict) -> None:
    # the view has every class, starved metal and open beam
    assert {1, 2, 3} <= set(r["classes"]), r  # (4: a K-edge reference's capture)
    assert r["starved"] > 0 and r["background"] > 0, r
    assert r["rgb_shape_equal"], r
    assert r["masks_equal"], r
    # the same steps in float32: only the logarithms may round differently (an ulp), which moves
    # a Zeff by float32 rounding and, rarely, a pixel across a table cell or class boundary
    assert r["zeff_max_abs"] < 1e-3, r
    assert r["code_share_equal"] >= 0.999, r
    assert r["rgb_share_above_2"] <= 1e-3, r
    # the whole view on the GPU: the same path lengths (left on the GPU, brought back on request),
    # transmissions to float rounding (the same counter draws), the same instance map, masks and
    # labels (boxes, areas, occlusion, difficulty)
    assert r["view_paths_on_gpu"] and r["view_paths_equal"], r
    assert r["view_max_abs_t"] < 1e-4 and r["view_raw_max"] <= 1, r
    assert r["view_rgb_share_above_2"] <= 1e-3, r
    assert r["view_objects"] >= 5 and r["view_instance_equal"] and r["view_labels_equal"], r
    assert r["view_masks_equal"] and r["view_occluded"] >= 1, r  # (the labels' pass on the GPU)


def test_simulated_gpu_colour_equals_cpu(tmp_path):
    _check(_compare(tmp_path, 14.0, sim=True))


DESPECKLE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from numba import cuda
    from xraybag.engine.xray import colour as C
    from xraybag.engine.xray.colour_cuda import despeckle_cuda

    sys.path.insert(0, sys.argv[1])  # the tests' folder
    from specks import speckled

    lo, hi = np.float32(10.0), np.float32(18.0)
    rows, cols = 24, 30
    out = []
    for seed in range(10):
        code, z, starved, background = speckled(np.random.default_rng(seed), rows, cols, lo, hi)
        skip = starved | background
        cpu = C.despeckle(code, z, skip, lo, hi, dark=starved)
        one = C.despeckle(code, z, skip, lo, hi, dark=starved, passes=1)  # the first pass alone
        d = [cuda.to_device(np.ascontiguousarray(a).reshape(-1)) for a in (code, z, starved, background)]
        gpu = despeckle_cuda(*d, code.shape, lo, hi).copy_to_host().reshape(code.shape)
        out.append({"changed": int((cpu != code).sum()), "second_pass": int((cpu != one).sum()),
                    "differ": int((gpu != cpu).sum())})
    print(json.dumps(out))
""")


def test_simulated_gpu_despeckle_equals_cpu():
    """The GPU's despeckling (a thread per start pixel, each patch searched alone) against the
    CPU's raster-order searches on images full of specks: the same codes, both passes."""
    proc = _run(["-c", DESPECKLE, str(Path(__file__).parent)], sim=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(r["changed"] for r in runs) > 200  # the CPU recoloured many specks
    assert sum(r["second_pass"] > 0 for r in runs) >= 2  # and its second pass changed some
    assert [r["differ"] for r in runs] == [0] * len(runs)


def test_colour_kernels_compile_for_a_real_gpu():
    """numba's CUDA typing and NVVM on both kernels (no GPU needed): no fused float32 or float64
    multiply-add in either (the products are libdevice's ``fmul_rn`` / ``dmul_rn``). libdevice's
    ``logf`` evaluates its polynomial with multiply-adds of its own, so the kernels are compiled
    with a stand-in logarithm for the count, and once with ``logf`` for the size."""
    size, fused = ptx_of("""
        from xraybag.engine.xray import colour_cuda as K
        f4, f8, b1, u1 = nt.float32[::1], nt.float64[::1], nt.boolean[::1], nt.uint8[::1]
        f32, f64, i64 = nt.float32, nt.float64, nt.int64
        sig = (f8, f8, f8, f8, nt.boolean, f32, f32, f64, f32, f32, f32, f4, f4, b1, b1)
        real, _ = cuda.compile_ptx(K._log_attenuations.py_func, sig, cc=(9, 0))
        assert real.count("fma.rn.f32") > 0  # logf's own
        K._log = cuda.jit(device=True)(lambda x: x)
        f4, f8, b1, u1 = nt.float32[::1], nt.float64[::1], nt.boolean[::1], nt.uint8[::1]
        f32, f64, i64 = nt.float32, nt.float64, nt.int64
        sig = (f8, f8, f8, f8, nt.boolean, f32, f32, f64, f32, f32, f32, f4, f4, b1, b1)
        ptx1, _ = cuda.compile_ptx(K._log_attenuations.py_func, sig, cc=(9, 0))
        sig = (f4, f4, f32, f32, f64, f64, i64, i64, f4, f4, nt.float32[:, ::1], u1, f32, f32, u1, f4)
        ptx2, _ = cuda.compile_ptx(K._zeff.py_func, sig, cc=(9, 0))
        f3 = nt.float32[:, :, ::1]  # the denoising Gaussian: float32 images, float64 sums
        ptx3, _ = cuda.compile_ptx(K._correlate_sym.py_func,
                                   (f3, i64, nt.float64[::1], nt.boolean, f64, f64, f3), cc=(9, 0))
        assert ptx3.count("cvt.rn.f32.f64") >= 1 and ptx3.count("fma.rn") == 0
        u2 = nt.uint8[:, ::1]
        sig = (u1, f4, b1, b1, f8, u1, nt.int32[::1], u2, i64, f32, i64, i64, f32, i64, u2)
        ptx4, _ = cuda.compile_ptx(K._rgb.py_func, sig, cc=(9, 0))  # the look-ups (T's bits)
        assert ptx4.count("mov.b32") >= 1
        sig = (u1, f4, b1, b1, i64, i64, f32, f32, f32, i64, u1)
        ptx5, _ = cuda.compile_ptx(K._despeckle_pass.py_func, sig, cc=(9, 0))  # the despeckling
        assert ptx5.count("ld.global.u8") >= 1
        ptx = ptx1 + ptx2
        print("PTX", len(ptx), ptx.count("fma.rn"))
    """)
    assert size > 1000
    assert fused == 0


@pytest.mark.gpu
def test_gpu_colour_equals_cpu_on_a_gpu(tmp_path):
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    _check(_compare(tmp_path, 1.0, sim=False))
