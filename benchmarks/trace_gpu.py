"""The mesh tracer on the GPU beside the CPU: views traced per second, one JSON object.

For every 2D scanner of the scene (radiographs and line scans; CT is not this tracer) bags
``1..--bags`` are packed and meshed once, then each view is traced ``--repeat`` times by the
numba backend (CPU, all threads numba is given) and by the CUDA backend (numba.cuda); the
medians give views per second. The first trace of each backend (compilation) is reported apart
as ``cold_s``. The CUDA results are checked against the CPU ones (``max_ulp``: largest float32
difference in units in the last place). Without a CUDA GPU the cuda entry says why and the
CPU figures are still printed.

``whole_views`` then times whole dual-energy views as ``xraybag render`` makes them
(:func:`~xraybag.engine.output.pipeline.render_view`: trace, spectral pass and noise, pseudo-colour
and labels) with each backend (with "cuda": the tracer, whose path lengths stay on the GPU, the
whole detection with its counter-based noise draws, the pseudo-colour and the labels on the GPU;
the colour's despeckling on the CPU), per stage, and how far the CUDA view is from the CPU view of the same
seed (the same noise draws): the largest per-pixel relative difference of the transmissions, the
share of pixels whose colour differs by more than 2 units, and whether the instance maps are equal.
Usage::

    python benchmarks/trace_gpu.py [--scene benchmarks/bag30.yaml] [--pitch 1] [--bags 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", default=str(HERE / "bag30.yaml"))
    ap.add_argument("--pitch", type=float, default=1.0)
    ap.add_argument("--bags", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--simulator", action="store_true",
                    help="also time the CUDA simulator (NUMBA_ENABLE_CUDASIM=1): checks this script "
                         "without a GPU, at a coarse --pitch only (it is slow)")
    args = ap.parse_args()

    from numba import config, cuda

    from xraybag.engine.packing import pack_bag
    from xraybag.engine.solids.scene import build_solids
    from xraybag.engine.xray.devices import cuda_problem, probe_cuda
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.engine.xray.trace import trace
    from xraybag.scenes.loader import load_scene

    loaded = load_scene(args.scene)
    spec = loaded.spec.model_copy(update={"scanners": [
        s.model_copy(update={"pitch": args.pitch}) for s in loaded.spec.scanners if s.type != "ct"]})
    loaded = type(loaded)(**{**loaded.__dict__, "spec": spec})

    views = []  # (scanner name, solids, geometry)
    for i in range(1, args.bags + 1):
        packed, _ = pack_bag(loaded, i, loaded.spec.seed)
        solids, _ = build_solids(packed, tolerance=packed.tolerance)
        views += [(s.name, solids, view_geometry(s, packed), packed, s) for s in packed.scanners]

    problem = cuda_problem()
    if problem is None:
        probe_cuda()
    if problem is None and config.ENABLE_CUDASIM and not args.simulator:
        problem = "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) is not a GPU"
    backends = ["numba"] + (["cuda"] if problem is None else [])
    report: dict = {
        "scene": args.scene, "pitch": args.pitch, "bags": args.bags, "repeat": args.repeat,
        "machine": platform.processor() or platform.machine(),
        "views": sorted({f"{v[0]} {v[2].rows}x{v[2].cols}" for v in views}),
        "triangles_per_bag": int(np.mean([sum(len(s.faces) for s in v[1]) for v in views])),
    }
    if problem is None and not config.ENABLE_CUDASIM:
        name = cuda.get_current_device().name
        report["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    results: dict = {b: {} for b in backends}
    reference = {}
    for b in backends:
        t = time.perf_counter()
        trace(views[0][1], views[0][2], backend=b)
        cold = time.perf_counter() - t
        per_view = []
        max_ulp = 0
        for k, (_, solids, g, _, _) in enumerate(views):
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                tr = trace(solids, g, backend=b)
                times.append(time.perf_counter() - t)
            per_view.append(statistics.median(times))
            if b == "numba":
                reference[k] = tr.paths
            else:
                a, c = reference[k].view(np.int32).astype(np.int64), tr.paths.view(np.int32).astype(np.int64)
                max_ulp = max(max_ulp, int(np.abs(a - c).max(initial=0)))
        results[b] = {"cold_s": round(cold, 3), "median_view_s": round(statistics.median(per_view), 5),
                      "views_per_s": round(len(per_view) / sum(per_view), 2)}
        if b == "cuda":
            results[b]["max_ulp_vs_numba"] = max_ulp
    if problem is not None:
        results["cuda"] = {"skipped": problem}
    elif results["cuda"]["views_per_s"]:
        report["speedup"] = round(results["cuda"]["views_per_s"] / results["numba"]["views_per_s"], 2)
    report["backends"] = results
    report["whole_views"] = whole_views(loaded, views, backends, args.repeat)
    print(json.dumps(report, indent=1))


def whole_views(loaded, views, backends, repeat: int) -> dict:
    """Whole views (render_view) per backend: median seconds per stage and views per second, and
    how far the CUDA views are from the CPU's (transmissions, colours, instance maps)."""
    from xraybag.engine.output.pipeline import render_view

    library = loaded.library
    out: dict = {}
    first: dict = {}
    for b in backends:
        _, solids, _, packed, scanner = views[0]
        render_view(packed, solids, scanner, library, np.random.default_rng(0), b)
        totals, stages = [], {}
        for k, (_, solids, _, packed, scanner) in enumerate(views):
            runs = []
            for _ in range(repeat):
                t = time.perf_counter()
                v = render_view(packed, solids, scanner, library, np.random.default_rng(k), b)
                runs.append((time.perf_counter() - t, v.seconds))
            totals.append(statistics.median(r[0] for r in runs))
            for st in runs[0][1]:
                stages.setdefault(st, []).append(statistics.median(r[1][st] for r in runs))
            if b == "numba":
                first[k] = v
            else:
                ref = first[k]
                worst = max(float(np.max(np.abs(v.transmission[c] - ref.transmission[c])
                                         / np.maximum(ref.transmission[c], 1e-6))) for c in v.transmission)
                colour = float(np.mean(np.abs(v.rgb.astype(int) - ref.rgb.astype(int)).max(axis=2) > 2))
                out["max_rel_diff_vs_cpu"] = max(out.get("max_rel_diff_vs_cpu", 0.0), worst)
                out["rgb_share_above_2_vs_cpu"] = max(out.get("rgb_share_above_2_vs_cpu", 0.0), colour)
                same = bool(np.array_equal(v.instance, ref.instance))
                out["instances_equal_cpu"] = out.get("instances_equal_cpu", True) and same
        out[b] = {"median_view_s": round(statistics.median(totals), 5),
                  "views_per_s": round(len(totals) / sum(totals), 2),
                  "stages_median_s": {st: round(statistics.median(v), 5) for st, v in stages.items()}}
    return out


if __name__ == "__main__":
    main()
