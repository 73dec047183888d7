"""CT scenes on which the CUDA mesh tracer is held to the numba one (tests/test_ct_forward_cuda.py).

Run as a script (``python tests/ct_cuda_scenes.py [--scale N]``) it traces every scene with
``forward.trace_views`` and ``forward_cuda.trace_views_cuda`` in this process and prints one JSON
line per scene; the tests run it with NUMBA_ENABLE_CUDASIM=1 (numba's CUDA simulator, no GPU)
and, marked ``gpu``, on a real GPU. ``--scale`` multiplies the views, rows and columns (the
simulator runs every GPU thread as a Python thread, so it needs tiny scans).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct.forward import trace_views
from xraybag.engine.xray.devices import cuda_problem


def solid(mesh, material="m"):
    return SimpleNamespace(vertices=np.asarray(mesh.vertices, float), faces=np.asarray(mesh.faces),
                           material=material)


def box_chords(g: G.CTGeometry, half: float) -> np.ndarray:
    """Exact chords of every ray through the cube |x|, |y|, |z| < half (slab method)."""
    out = np.empty(g.shape)
    for k in range(g.views):
        src, d = g.rays(k)
        inv = 1.0 / np.where(d == 0, 1e-300, d)
        t0, t1 = (-half - src) * inv, (half - src) * inv
        out[k] = np.maximum(np.min(np.maximum(t0, t1), axis=-1) - np.max(np.minimum(t0, t1), axis=-1), 0.0)
    return out


def scenes(scale: int = 1) -> dict:
    """name -> (solids, geometry, closed form or None, extra trace_views arguments)."""
    out = {}
    # rays aimed through a closed box's shared edges and vertices (flat detector, whole pitches):
    # every chord counted once
    box = trimesh.creation.box(extents=[60, 60, 60])
    g = G.circular(300, 600, 9 * scale, 13 * scale, 12.0 / scale, 12.0 / scale, 3 * scale, curved=False)
    out["box_edges"] = ([solid(box, "water")], g, lambda L, g=g: float(np.abs(L[..., 0] - box_chords(g, 30.0)).max()),
                        {})
    # spheres of three materials spread along z, a helical curved scan whose slabs cull some
    rng = np.random.default_rng(5)
    spheres = []
    for i, z in enumerate(np.linspace(-40, 40, 5)):
        sph = trimesh.creation.icosphere(subdivisions=1, radius=float(rng.uniform(6, 14)))
        a, r = rng.uniform(0, 2 * np.pi), rng.uniform(0, 90)
        sph.apply_translation([r * np.cos(a), r * np.sin(a), z])
        spheres.append(solid(sph, ["water", "aluminium", "pmma"][i % 3]))
    hel = G.helical(500, 900, 4 * scale, 40 * scale, 3.0 / scale, 6.0 / scale, 6 * scale, -45, 45, 30,
                    curved=True)
    out["helical_curved"] = (spheres, hel, None, {})
    out["helical_every_face"] = (spheres, hel, None, {"cull": False, "views": slice(0, 6 * scale)})
    flat = G.helical(500, 900, 4 * scale, 40 * scale, 3.0 / scale, 6.0 / scale, 6 * scale, -45, 45, 30,
                     curved=False)
    out["helical_flat_subset"] = (spheres, flat, None, {"views": slice(2 * scale, 9 * scale)})
    # a cylinder with a sphere inside it (two materials on one ray), quarter-pixel detector offset
    cyl = trimesh.creation.cylinder(radius=40, height=60, sections=24)
    ball = trimesh.creation.icosphere(subdivisions=1, radius=15)
    ball.apply_translation([10, 0, 5])
    ball.invert()  # the cylinder's water surrounds the steel ball: an inner boundary
    inner = trimesh.creation.icosphere(subdivisions=1, radius=15)
    inner.apply_translation([10, 0, 5])
    geo = G.circular(400, 700, 4 * scale, 36 * scale, 4.0 / scale, 4.0 / scale, 4 * scale, curved=True,
                     col_offset=0.25)
    out["nested_offset"] = ([solid(trimesh.util.concatenate([cyl, ball]), "water"), solid(inner, "steel")], geo,
                            None, {})
    return out


def compare(ref: np.ndarray, got: np.ndarray) -> dict:
    hit = (ref > 0).any(axis=(1, 2))  # (views, materials)
    ulp = int(np.max(np.abs(ref.view(np.int32).astype(np.int64) - got.view(np.int32).astype(np.int64)),
                     initial=0))
    return {
        "shape": ref.shape == got.shape,
        "exact": bool(np.array_equal(ref, got)),
        "max_ulp": ulp,  # float32 units in the last place (non-negative values: bit patterns order)
        "max_rel": float(np.max(np.abs(ref.astype(np.float64) - got) / np.maximum(np.abs(ref), 1e-30), initial=0.0)),
        "hit_rays": int((ref.sum(axis=-1) > 0).sum()),
        "hit_views": int((ref.reshape(ref.shape[0], -1) > 0).any(axis=1).sum()),
        "views": int(ref.shape[0]),
        # a material seen in some views and culled or missed in others
        "missed_somewhere": bool((hit.any(axis=0) & ~hit.all(axis=0)).any()),
    }


def pipeline_noise(solids, g) -> dict:
    """The CT projection with the full noise model (scatter low-pass, quantum draws, blur,
    electronic noise; counter-based draws) on both backends: the whole detection on the GPU
    against the CPU's. Transmissions: the largest relative difference, the share of pixels equal
    to 1e-9 and the noise's own size (the noisy CPU against the noise-free one)."""
    from xraybag.engine.ct.scan import CTSetup, ct_response, sinograms
    from xraybag.engine.xray.devices import probe_cuda
    from xraybag.materials.library import default_library
    from xraybag.scenes.models import CT, Scanner

    assert probe_cuda()
    lib = default_library()
    noisy = Scanner(name="ct", type="ct", noise={"scatter": {"width": 9.0}}, ct=CT(mode="dual_layer"))
    clean = Scanner(name="ct", type="ct", noise=False, ct=CT(mode="dual_layer"))
    st = CTSetup(g, G.VolumeGrid.centred((200, 200, 100), 4.0), np.zeros(3), ct_response(noisy, g, lib))
    cpu = sinograms(solids, st, noisy, lib, np.random.default_rng(3))
    gpu = sinograms(solids, st, noisy, lib, np.random.default_rng(3), backend="cuda")
    ref = sinograms(solids, st, clean, lib, np.random.default_rng(3))
    t = {c: np.exp(-cpu[c].astype(float)) for c in cpu}
    rel = {c: np.abs(np.exp(-gpu[c].astype(float)) / t[c] - 1) for c in cpu}
    return {"scene": "pipeline_noise", "channels": sorted(cpu) == sorted(gpu) and len(cpu) >= 2,
            "max_rel_transmission": max(float(r.max()) for r in rel.values()),
            "equal_share": min(float(np.mean(r < 1e-6)) for r in rel.values()),
            "noise_rel": min(float(np.std(t[c] / np.exp(-ref[c].astype(float)) - 1)) for c in cpu),
            "pixels": int(sum(r.size for r in rel.values()))}


def whole_scan() -> dict:
    """A whole helical dual-energy scan (streamed: tracing, detection with the full noise model,
    decomposition, SSRB + FBP, Zeff and electron density, labels) with ``backend="cuda"`` and on
    the CPU, the same seed: each output volume's largest difference relative to its largest
    value, and whether the labels are the same."""
    from xraybag.engine.ct.scan import CTSetup, ct_response, scan_prepared, streams
    from xraybag.engine.solids.scene import Solid
    from xraybag.engine.xray.devices import probe_cuda
    from xraybag.materials.library import default_library
    from xraybag.scenes.models import CT, Scanner

    assert probe_cuda()
    lib = default_library()
    cyl = trimesh.creation.cylinder(radius=16, height=44, sections=16)
    cyl.apply_translation([-8, 0, 0])
    rod = trimesh.creation.cylinder(radius=9, height=36, sections=8)
    rod.apply_translation([16, 4, 0])
    solids = [Solid(np.asarray(m.vertices, float), np.asarray(m.faces, np.int32), mat, i + 1, mat)
              for i, (m, mat) in enumerate([(cyl, "water"), (rod, "aluminium")])]
    scanner = Scanner(name="ct", type="ct", noise={"scatter": {"width": 30.0}}, ct=CT(mode="dual_layer"))
    g = G.helical(400, 700, 4, 24, 4.0, 4.0, 16, -12, 12, 30, curved=True)
    st = CTSetup(g, G.VolumeGrid.centred((64, 64, 24), 8.0), np.zeros(3), ct_response(scanner, g, lib))
    cpu = scan_prepared(solids, st, scanner, lib, np.random.default_rng(4))
    gpu = scan_prepared(solids, st, scanner, lib, np.random.default_rng(4), backend="cuda")
    rel = {k: float(np.max(np.abs(gpu.volumes[k].astype(float) - v)) / max(float(np.max(np.abs(v))), 1e-30))
           for k, v in cpu.volumes.items()}
    return {"scene": "whole_scan", "streamed": streams(scanner, st), "volumes": sorted(cpu.volumes),
            "same_volumes": sorted(gpu.volumes) == sorted(cpu.volumes), "rel": rel,
            "labels_equal": bool(np.array_equal(cpu.labels, gpu.labels)),
            "labelled": int(np.count_nonzero(cpu.labels)), "labels_seen": sorted(int(x) for x in np.unique(cpu.labels))}


def pipeline(solids, g) -> dict:
    """The CT projection (tracing, dual-layer spectral pass, no noise) with both backends, as
    ``scan`` runs it: the largest difference of line integrals and the largest relative
    difference of transmissions."""
    from xraybag.engine.ct.scan import CTSetup, ct_response, sinograms
    from xraybag.engine.xray.devices import probe_cuda
    from xraybag.materials.library import default_library
    from xraybag.scenes.models import CT, Scanner

    assert probe_cuda()
    lib = default_library()
    scanner = Scanner(name="ct", type="ct", noise=False, ct=CT(mode="dual_layer"))
    st = CTSetup(g, G.VolumeGrid.centred((200, 200, 100), 4.0), np.zeros(3), ct_response(scanner, g, lib))
    cpu = sinograms(solids, st, scanner, lib, np.random.default_rng(0))
    gpu = sinograms(solids, st, scanner, lib, np.random.default_rng(0), backend="cuda")
    rel = max(float(np.max(np.abs(np.exp(-gpu[c].astype(float)) / np.exp(-cpu[c].astype(float)) - 1))) for c in cpu)
    from xraybag.engine.ct.forward_cuda import trace_views_cuda
    from xraybag.engine.xray.detect import on_device

    kept = trace_views_cuda(solids, g, on_device=True)[1]  # what the projection hands the spectral pass
    from xraybag.engine.ct.forward import mesh_of

    mats, whole = trace_views(solids, g)
    mesh = mesh_of(solids, mats)  # one mesh, sent to the GPU once, for every chunk of views
    parts = [trace_views_cuda(solids, g, slice(a, min(a + 3, g.views)), mats, mesh=mesh)[1]
             for a in range(0, g.views, 3)]
    return {"scene": "pipeline", "channels": sorted(cpu) == sorted(gpu) and len(cpu) >= 2,
            "kept_on_device": on_device(kept) and tuple(kept.shape) == (g.views, g.rows, g.cols, 3),
            "chunks_equal": bool(np.array_equal(np.concatenate(parts), whole)) and len(parts) > 1,
            "sent_once": len(mesh.device) == 1,
            "max_line_integral": max(float(np.max(np.abs(gpu[c] - cpu[c]))) for c in cpu),
            "max_rel_transmission": rel, "attenuated": max(float(cpu[c].max()) for c in cpu)}


def backprojection(scale: int) -> dict:
    """The parallel backprojection on both devices: random filtered projections (both signs) of
    two slices and three channels added onto a volume that already holds values, and a helical
    FBP (SSRB) of a scanned cylinder. Differences relative to the largest value."""
    from xraybag.engine.ct.backproject import bp_parallel
    from xraybag.engine.ct.backproject_cuda import bp_parallel_cuda
    from xraybag.engine.ct.recon import helical_ssrb

    rng = np.random.default_rng(1)
    M, T, S, C, n = 18 * scale, 24 * scale, 2, 3, 12 * scale
    q = rng.normal(size=(M, T, S, C)).astype(np.float32)
    theta = np.pi * np.arange(M) / M + 0.1
    xs = ys = np.linspace(-20, 20, n)
    dt = 44.0 / (T - 1)
    start = rng.normal(size=(C, S + 3, n, n)).astype(np.float32)
    cpu, gpu = start.copy(), start.copy()
    args = (np.cos(theta), np.sin(theta), -22.0, dt, xs, ys, 21.0, np.float32(np.pi / M))
    bp_parallel(q, *args, cpu, 2)
    bp_parallel_cuda(q, *args, gpu, 2)
    outside = np.hypot(*np.meshgrid(xs, ys)) > 21.5  # left as they were on both
    rec = {"scene": "backprojection", "bp_rel": float(np.abs(gpu - cpu).max() / np.abs(cpu - start).max()),
           "bp_outside_kept": bool(np.array_equal(gpu[..., outside], start[..., outside])),
           "bp_changed": bool(np.abs(cpu[:, 2:4] - start[:, 2:4]).max() > 1.0)}
    cyl = trimesh.creation.cylinder(radius=60, height=80, sections=48)
    g = G.helical(500, 900, 4, 40 * scale, 3.0, 6.0 / scale, 8 * scale, -30, 30, 10, curved=True)
    _, L = trace_views([solid(cyl, "water")], g)
    sino = (0.02 * L[..., 0]).astype(np.float32)
    grid = G.VolumeGrid.centred((160, 160, 30), 10.0 / scale)
    a = helical_ssrb(sino, g, grid)
    b = helical_ssrb(sino, g, grid, backend="cuda")
    rec |= {"fbp_rel": float(np.abs(a - b).max() / np.abs(a).max()),
            "fbp_centre": float(a[a.shape[0] // 2, a.shape[1] // 2, a.shape[2] // 2])}
    rec |= cone_backprojection(scale)
    return rec


def cone_backprojection(scale: int) -> dict:
    """The fan / cone backprojection on both devices (random weighted projections on curved and
    flat detectors, cone and planar), then FDK (circular) and fan-beam FBP (axial) of a scanned
    water-like cylinder through ``reconstruct``. Differences relative to the largest value."""
    from xraybag.engine.ct.backproject import bp_cone
    from xraybag.engine.ct.backproject_cuda import bp_cone_cuda
    from xraybag.engine.ct.recon import reconstruct

    rng = np.random.default_rng(2)
    worst = 0.0
    n = 6 * scale
    xs = ys = np.linspace(-30, 30, n)
    zs = np.linspace(-6, 6, 3)
    for curved in (True, False):
        for planar in (False, True):
            V, R, N, C = 10 * scale, 4, 24 * scale, 2
            q = rng.normal(size=(V, R, N, C)).astype(np.float32)
            b = 2 * np.pi * np.arange(V) / V
            args = (q, np.cos(b), np.sin(b), np.linspace(-2, 2, V), xs, ys, zs, 400.0, 700.0, -60.0, 120.0 / (N - 1),
                    -6.0, 4.0, curved, planar, np.float32(2 * np.pi / V))
            cpu = np.zeros((C, zs.size, n, n), np.float32)
            gpu = cpu.copy()
            bp_cone(*args, cpu)
            bp_cone_cuda(*args, gpu)
            worst = max(worst, float(np.abs(gpu - cpu).max() / np.abs(cpu).max()))
    cyl = trimesh.creation.cylinder(radius=50, height=200, sections=48)
    out = {"cone_rel": worst}
    scans = {"fdk": G.circular(400, 700, 4, 30 * scale, 4.0, 6.0 / scale, 12 * scale),
             "fan": G.axial(400, 700, 30 * scale, 6.0 / scale, 12 * scale, [0.0])}
    grid = G.VolumeGrid.centred((120, 120, 8), 15.0 / scale)
    for name, g in scans.items():
        _, L = trace_views([solid(cyl, "water")], g)
        sino = {"mu": (0.02 * L[..., 0]).astype(np.float32)}
        a = reconstruct(sino, g, grid)["mu"]
        b = reconstruct(sino, g, grid, backend="cuda")["mu"]
        out[f"{name}_rel"] = float(np.abs(a - b).max() / np.abs(a).max())
        out[f"{name}_centre"] = float(a[a.shape[0] // 2, a.shape[1] // 2, a.shape[2] // 2])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--launch-bytes", type=int, default=None, help="split the views over several launches")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    if cuda_problem() is not None:
        sys.exit("no CUDA GPU or simulator: run with NUMBA_ENABLE_CUDASIM=1")
    from xraybag.engine.ct import forward_cuda

    if args.launch_bytes:
        forward_cuda.LAUNCH_BYTES = args.launch_bytes
    for name, (solids, g, form, extra) in scenes(args.scale).items():
        if args.only and name not in args.only:
            continue
        mats, ref = trace_views(solids, g, **({"views": extra["views"]} if "views" in extra else {}))
        t = time.perf_counter()
        mats_c, got = forward_cuda.trace_views_cuda(solids, g, **extra)
        rec = {"scene": name, "scan": list(ref.shape), "cuda_s": round(time.perf_counter() - t, 3),
               "materials": mats == mats_c,
               "launches": -(-ref.shape[0] // forward_cuda.views_per_launch(*ref.shape[1:]))} | compare(ref, got)
        if form is not None:
            rec["closed_form_numba"] = form(ref)
            rec["closed_form_cuda"] = form(got)
        print(json.dumps(rec), flush=True)
    if not args.only or "pipeline" in args.only:
        solids, g, _, extra = scenes(args.scale)["helical_flat_subset"]
        print(json.dumps(pipeline(solids, g.subset(extra["views"]))), flush=True)
    if not args.only or "pipeline_noise" in args.only:
        solids, g, _, extra = scenes(args.scale)["helical_flat_subset"]
        print(json.dumps(pipeline_noise(solids, g.subset(extra["views"]))), flush=True)
    if not args.only or "whole_scan" in args.only:
        print(json.dumps(whole_scan()), flush=True)
    if not args.only or "backprojection" in args.only:
        print(json.dumps(backprojection(args.scale)), flush=True)
    # nothing to trace: no solids, and no views
    solids, g, _, _ = scenes(args.scale)["nested_offset"]
    empty = forward_cuda.trace_views_cuda([], g)[1]
    none = forward_cuda.trace_views_cuda(solids, g, views=slice(0, 0))[1]
    print(json.dumps({"scene": "empty", "shape": [list(empty.shape), list(none.shape)],
                      "zero": bool(not empty.any())}), flush=True)


if __name__ == "__main__":
    main()
