"""Helical SSRB on the GPU (xraybag.engine.ct.ssrb_cuda, ``helical_ssrb(backend="cuda")``) against
the CPU's.

As for the other CUDA kernels (tests/test_ct_forward_cuda.py), numba's CUDA simulator runs in a
subprocess (NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported): :data:`SCRIPT` runs the
cases at tiny sizes (the simulator runs every GPU thread as a Python thread) and prints one JSON
line per case. The kernels are compiled to PTX for a real GPU (sm_90); the ``gpu`` test runs the
same cases at a larger size on a real GPU.
"""

from __future__ import annotations

import pytest
from helpers import json_records, ptx_of
from helpers import run_python as _run

#: ``python -c SCRIPT [SCALE]`` (SCALE multiplies the columns, views and voxels): one JSON line per
#: case. ``filter_*``: the GPU's ramp filter (direct convolution) against the CPU's filter_axis
#: (FFT) on random lines, the largest ``|gpu - cpu|`` per line over that line's largest ``|cpu|``
#: (``rel``), and both against the float64 linear convolution (``gpu_exact``, ``cpu_exact``).
#: ``slabs``: helical SSRB of a scanned cylinder in one-slice slabs on both backends, each slab's
#: plan and gathered samples compared bit for bit, and the volumes. ``stream``: the same scan
#: through a ViewStream on the GPU in the default slabs. ``falling``: a helix run downwards.
SCRIPT = """
import json, pathlib, sys, time
import numpy as np
import trimesh
import xraybag
sys.path.insert(0, str(pathlib.Path(xraybag.__file__).resolve().parents[1] / "tests"))
from ct_cuda_scenes import solid
from xraybag.engine.ct import geometry as G, recon, ssrb_cuda
from xraybag.engine.ct.filters import FILTERS, filter_axis, ramp_kernel, short_response
from xraybag.engine.ct.forward import trace_views

scale = int(sys.argv[1]) if len(sys.argv) > 1 else 1
rng = np.random.default_rng(7)
t0 = time.time()
for i, name in enumerate(FILTERS):
    T = (23 if i % 2 == 0 else 24) * scale
    cutoff = 1.0 if i in (0, 3) else 0.7
    p = (rng.normal(size=(1, 2, 3, T)) + rng.uniform(0, 3, size=(1, 2, 3, 1))).astype(np.float32)
    resp = short_response(ramp_kernel(max(64, 1 << int(np.ceil(np.log2(2 * T)))), 5.5, name, cutoff=cutoff), T)
    cpu = filter_axis(p, resp, axis=3)
    taps = ssrb_cuda.ramp_taps(resp, T)
    gpu = ssrb_cuda.filter_lines_cuda(p, taps)
    gpu = gpu.copy_to_host().reshape(3, T, 1, 2).transpose(2, 3, 0, 1)
    exact = np.stack([[[np.convolve(p[s, c, m].astype(np.float64), taps)[T - 1: 2 * T - 1] for m in range(3)]
                       for c in range(2)] for s in range(1)])
    def per_line(a, b):
        return float(np.max(np.max(np.abs(a - b), axis=-1) / np.max(np.abs(b), axis=-1)))
    print(json.dumps({"case": "filter_" + name, "T": T, "rel": per_line(gpu, cpu), "gpu_exact": per_line(gpu, exact),
                      "cpu_exact": per_line(cpu, exact), "n_taps": int(taps.size), "s": time.time() - t0}))

cyl = trimesh.creation.cylinder(radius=50, height=80, sections=48)
cyl.apply_translation([8.0, -5.0, 4.0])  # off the axis (no symmetry to hide a mirrored index), inside the fan
g = G.helical(500, 900, 4, 24 * scale, 3.0, 10.0 / scale, 8 * scale, -30, 30, 10, curved=True)
_, L = trace_views([solid(cyl, "water")], g)
sino = (0.02 * L[..., 0]).astype(np.float32)
grid = G.VolumeGrid.centred((120, 120, 30), 12.0 / scale)
def interior(vol, grid, zs):
    # the mean of vol (nz, ny, nx) over the voxels within 30 mm of the cylinder's axis, slices zs
    y, x = np.meshgrid(grid.axis("y"), grid.axis("x"), indexing="ij")
    inside = np.hypot(x - 8.0, y + 5.0) < 30.0
    return float(vol[zs][:, inside].mean())

# every slab's plan and gathered samples on both backends (one-slice slabs: the ring of views on
# the GPU wraps around)
rec = {"cpu_plan": [], "cpu_p": [], "gpu_plan": [], "gpu_p": [], "copied": []}
plan0, filt0, filtered0, volume0 = recon.ssrb_plan, recon.filter_axis, ssrb_cuda.SSRBDevice.filtered, ssrb_cuda.SSRBDevice.volume
def plan(*a):
    plan0(*a)
    rec["cpu_plan"].append(tuple(x.copy() for x in a[-5:]))
def filt(p, resp, axis):
    rec["cpu_p"].append(p.copy())
    return filt0(p, resp, axis)
def filtered(self):
    rec["gpu_plan"].append(self.plan_arrays())
    rec["gpu_p"].extend(self.gathered())
    return filtered0(self)
def volume(self, out=None):
    rec["copied"].append([self.copied_views, self.cap, self.hi])
    return volume0(self, out)
recon.ssrb_plan, recon.filter_axis = plan, filt
ssrb_cuda.SSRBDevice.filtered, ssrb_cuda.SSRBDevice.volume = filtered, volume
a = recon.helical_ssrb([sino, 2 * sino], g, grid, slab=1)
b = recon.helical_ssrb([sino, 2 * sino], g, grid, slab=1, backend="cuda")
recon.ssrb_plan, recon.filter_axis = plan0, filt0
plan_exact = len(rec["cpu_plan"]) == len(rec["gpu_plan"]) == grid.shape[0] and all(
    all(np.array_equal(x, y) for x, y in zip(c, d)) for c, d in zip(rec["cpu_plan"], rec["gpu_plan"]))
gather_exact = len(rec["cpu_p"]) == len(rec["gpu_p"]) and all(
    np.array_equal(c, d) for c, d in zip(rec["cpu_p"], rec["gpu_p"]))
top = max(float(np.abs(c).max()) for c in rec["cpu_p"])
gather_rel = max(float(np.abs(c - d).max()) for c, d in zip(rec["cpu_p"], rec["gpu_p"])) / top
print(json.dumps({"case": "slabs", "plan_exact": bool(plan_exact), "gather_exact": bool(gather_exact),
                  "gather_rel": gather_rel,
                  "slabs": len(rec["gpu_plan"]), "used": int(sum((k[0] >= 0).sum() for k, *_ in rec["cpu_plan"])),
                  "rel": float(np.abs(a - b).max() / np.abs(a).max()), "centre": interior(b[0], grid, [0, 1, 2]),
                  "centre2": interior(b[1], grid, [0, 1, 2]), "views": g.views, "copied": rec["copied"][0][0],
                  "cap": rec["copied"][0][1], "top": rec["copied"][0][2], "s": time.time() - t0}))

# the same scan streamed in chunks of 5 views, default slabs
made = []
def produce(start, stop):
    made.append((start, stop))
    return [sino[start:stop]]
vs = recon.ViewStream(produce, g.shape, 1, 5)
c = recon.helical_ssrb(vs, g, grid, backend="cuda")
chunks = [(k, min(k + 5, g.views)) for k in range(0, g.views, 5)]
print(json.dumps({"case": "stream", "rel": float(np.abs(a[0] - c[0]).max() / np.abs(a[0]).max()),
                  "same_as_arrays": bool(np.array_equal(c[0], b[0])), "once_in_order": made == chunks,
                  "peak_views": vs.peak_views, "views": g.views, "copied": rec["copied"][1][0],
                  "s": time.time() - t0}))

# a helix run downwards (the table feed negative: nothing released, the ring refilled) on a grid
# whose first and last slabs of two slices lie beyond the scan (no views: zeros)
gd = G.helical(500, 900, 4, 24 * scale, 3.0, 10.0 / scale, 8 * scale, 30, -30, -10, curved=True)
_, Ld = trace_views([solid(cyl, "water")], gd)
sd = (0.02 * Ld[..., 0]).astype(np.float32)
n = 10 * scale
v = 12.0 / scale
tall = G.VolumeGrid((6, n, n), (v, v, 30.0), (-(n - 1) * v / 2, -(n - 1) * v / 2, -75.0))
d0 = recon.helical_ssrb(sd, gd, tall, slab=2)
d1 = recon.helical_ssrb(sd, gd, tall, slab=2, backend="cuda")
print(json.dumps({"case": "falling", "rel": float(np.abs(d0 - d1).max() / np.abs(d0).max()),
                  "centre": [interior(d1, tall, [2]), interior(d1, tall, [3])],
                  "outside": [float(np.abs(d[[0, 1, 4, 5]]).max()) for d in (d0, d1)],
                  "copied": rec["copied"][-1][0], "views": gd.views, "s": time.time() - t0}))
"""

FILTER_CASES = ("filter_ram-lak", "filter_shepp-logan", "filter_cosine", "filter_hann")


@pytest.fixture(scope="module")
def simulated():
    """Every case run under numba's CUDA simulator."""
    return json_records(_run(["-c", SCRIPT], sim=True, timeout=600), key="case")


@pytest.mark.parametrize("case", FILTER_CASES)
def test_simulated_ramp_filter_equals_the_ffts(simulated, case):
    """The direct convolution with the FFT filter's taps gives the CPU's filtered lines within
    1e-5 of each line's largest value (the FFT's float32 rounding, about 1e-7 here), and is the
    float64 linear convolution to float32 rounding."""
    r = simulated[case]
    assert r["n_taps"] == 2 * r["T"] - 1
    assert r["rel"] < 1e-5
    assert r["gpu_exact"] < 1e-6
    assert r["cpu_exact"] < 1e-5


def test_simulated_plan_and_gather_are_the_cpus(simulated):
    """Each slab's plan (views, weights, rows, parities, z weights) and gathered samples on the
    GPU are the CPU's to the bit (the same float64 operations); the helical volumes agree within
    1e-5 of the largest value and read the cylinder's 0.02 /mm (both channels)."""
    r = simulated["slabs"]
    assert r["slabs"] == 3 and r["used"] > 100
    assert r["plan_exact"] and r["gather_exact"]
    assert r["rel"] < 1e-5
    assert r["centre"] == pytest.approx(0.02, rel=0.05)
    assert r["centre2"] == pytest.approx(0.04, rel=0.05)
    assert r["copied"] <= r["views"] and r["top"] > r["cap"]  # each view copied up once; the ring wraps


def test_simulated_stream_on_the_gpu(simulated):
    """Through a ViewStream the GPU gives the arrays' volume to the bit, produces every chunk once
    and in order, holds fewer views than the scan and copies each view up once."""
    r = simulated["stream"]
    assert r["rel"] < 1e-5 and r["same_as_arrays"]
    assert r["once_in_order"]
    assert r["peak_views"] < r["views"]
    assert r["copied"] <= r["views"]


def test_simulated_falling_helix(simulated):
    """A helix scanned downwards (slabs' views move backwards: the ring is refilled), with slabs
    beyond the scan that read no views (zeros on both backends)."""
    r = simulated["falling"]
    assert r["rel"] < 1e-5
    assert r["centre"] == pytest.approx([0.02, 0.02], rel=0.05)
    assert r["outside"] == [0.0, 0.0]


def test_kernels_compile_for_a_real_gpu():
    """numba's CUDA typing and NVVM on the SSRB kernels (sm_90), and the backprojection on a slab
    of a volume on the GPU (a strided view): the plan and the gather have no fused float64
    multiply-add (their products go through dmul_rn), the filter does."""
    out = ptx_of("""
        from xraybag.engine.ct import backproject_cuda as B, ssrb_cuda as X
        f1, f2 = nt.float64[::1], nt.float64[:, ::1]
        def P(d):
            return d[:, :, :, ::1]
        sigs = {"_plan": (f1, f1, nt.float64, nt.float64, f1, f1, nt.float64, nt.float64, nt.int64, nt.int64,
                          nt.float64, nt.float64, P(nt.int32), P(nt.float32), P(nt.int32), P(nt.int8),
                          P(nt.float32)),
                "_used": (nt.int32[::1], nt.int64[::1]),
                "_zero": (nt.float32[::1],),
                "_gather": (P(nt.float32), nt.int64, P(nt.int32), P(nt.float32), P(nt.int32), P(nt.int8),
                            P(nt.float32), f2, P(nt.float32)),
                "_ramp": (P(nt.float32), f1, nt.float32[:, :, ::1])}
        fma, size, ok = {}, 0, 1
        for name, sig in sigs.items():
            ptx, _ = cuda.compile_ptx(getattr(X, name).py_func, sig, cc=(9, 0))
            size += len(ptx)
            fma[name] = ptx.count("fma.rn.f64")
            ok &= ".entry" in ptx
        ok &= fma["_plan"] == 0 and fma["_gather"] == 0 and fma["_ramp"] > 0
        sig = (nt.float32[:, :, ::1], f1, f1, nt.float64, nt.float64, f1, f1, nt.float64, nt.float32,
               nt.float32[:, :, :, :])
        ptx, _ = cuda.compile_ptx(B._bp_parallel.py_func, sig, cc=(9, 0))
        print("PTX", size + len(ptx), int(ok))
    """)
    size, ok = out
    assert size > 20_000 and ok == 1


@pytest.mark.gpu
def test_ssrb_on_a_gpu_equals_the_cpus():
    """The same cases at 4x the columns, views and voxels on a real GPU (NVVM fuses the filter's
    multiply-adds, which only moves its rounding). The plan and the gather should stay the CPU's
    bit for bit (dmul_rn, IEEE divisions); held here to 1e-6 of the largest gathered sample."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    recs = json_records(_run(["-c", SCRIPT, "4"], sim=False, timeout=600), key="case")
    for case in FILTER_CASES:
        assert recs[case]["rel"] < 1e-5 and recs[case]["gpu_exact"] < 1e-6, recs[case]
    r = recs["slabs"]
    assert r["gather_rel"] < 1e-6 and r["rel"] < 1e-5, r
    assert r["centre"] == pytest.approx(0.02, rel=0.05), r
    assert recs["stream"]["rel"] < 1e-5 and recs["stream"]["same_as_arrays"], recs["stream"]
    assert recs["falling"]["rel"] < 1e-5, recs["falling"]
