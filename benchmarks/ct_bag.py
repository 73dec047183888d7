"""Time one dual-energy CT bag end to end, DEBISim-sized, and print JSON.

The bag is bag 0 of the built-in ``checked_ct`` scene: 30 objects packed with physics in a
664 x 664 x 350 mm volume (along the belt, across, up) at 1 mm voxels, scanned by the built-in
checked-baggage machine (helical, curved 16-row detector, dual-layer, 160 kVp). Stages: packing,
meshes, dual-energy sinogram pair (mesh tracing + spectra + noise), projection-domain
decomposition, reconstruction of four volumes (mu_low, mu_high, Compton, photoelectric), Zeff and
electron density, the label volume, and (with ``--out``) writing OUT/ct/<bag>/.

DEBISim's published figures (Manerikar et al.; 24 vCPU + one RTX 2080 Ti, 30-35 objects, the same
volume and voxel size) are printed beside ours: about 8 minutes for the projection and about 20
minutes in total.

With ``--device cuda`` the scan runs on the GPU stage by stage (tracing, detection and its noise,
decomposition, Zeff, SSRB + FBP, labels; see docs/ct.md); packing and meshes stay on the CPU.

    python benchmarks/ct_bag.py [--scene checked_ct] [--threads N] [--out DIR] [--device cpu|cuda]
                                [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

DEBISIM = {"projection_s": 8 * 60, "total_s": 20 * 60, "hardware": "24 vCPU, 32 GB, GeForce RTX 2080 Ti"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scene", default="checked_ct")
    ap.add_argument("--bag", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    ap.add_argument("--out", type=Path, default=None, help="also write OUT/ct/<bag>/ and time it")
    ap.add_argument("--projector", default=None, help="override ct.projector (mesh, numba, cupy, astra)")
    ap.add_argument("--voxel", type=float, default=None, help="override ct.voxel (mm)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="render the bag this many times in one process; the last run is reported, "
                         "the others' seconds beside it (the first includes compiling the kernels)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the scan runs (cuda: every stage of a mesh CT scan on the GPU)")
    args = ap.parse_args()

    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    from xraybag.engine.output.pipeline import render_bag
    from xraybag.engine.xray.devices import backend_for_device
    from xraybag.scenes.loader import load_scene

    from xraybag.errors import XraybagError

    try:
        backend = backend_for_device(args.device)
    except XraybagError as e:
        sys.exit(f"error: {e}")

    loaded = load_scene(args.scene)
    updates = {}
    if args.projector:
        updates["projector"] = args.projector
    if args.voxel:
        updates["voxel"] = args.voxel
    if updates:
        scanners = [s.model_copy(update={"ct": s.ct.model_copy(update=updates)}) if s.type == "ct" else s
                    for s in loaded.spec.scanners]
        loaded.spec = loaded.spec.model_copy(update={"scanners": scanners})
    earlier = []  # --repeat: the runs before the last one (the first compiles the kernels)
    for _ in range(max(1, args.repeat) - 1):
        t0 = time.perf_counter()
        first = render_bag(loaded, args.bag, backend=backend)
        earlier.append({"bag_total": round(time.perf_counter() - t0, 2)}
                       | {k: round(v, 2) for k, v in next(iter(first.ct.values())).seconds.items()})
        del first
    t0 = time.perf_counter()
    result = render_bag(loaded, args.bag, backend=backend)
    t1 = time.perf_counter()
    (name, ct), = result.ct.items()
    scanner = next(s for s in result.scene.scanners if s.name == name)
    stages = {k: round(v, 2) for k, v in ct.seconds.items()}
    write_s = None
    if args.out is not None:
        from xraybag.engine.ct.scan import ct_files
        from xraybag.engine.output.files import write_atomic

        tw = time.perf_counter()
        files = ct_files(ct, scanner.ct, f"ct/{args.bag:06d}")
        for rel, data in files.items():
            write_atomic(args.out / rel, data)
        write_s = round(time.perf_counter() - tw, 2)
    scan = ct.geometry["scan"]
    grid = ct.geometry["grid"]
    ct_total = sum(ct.seconds.values())
    report = {
        "benchmark": "ct_bag",
        "scene": args.scene,
        "objects": len(result.objects),
        "left_out": len(getattr(result.pack_report, "left_out", [])),
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "python": platform.python_version()},
        "device": (args.device if scanner.ct.projector == "mesh"
                   else "cpu" if scanner.ct.projector == "numba" else scanner.ct.projector),
        "scan": {k: scan[k] for k in ("kind", "views", "rows", "cols", "views_per_rotation", "detector")}
        | {"pitch": scan.get("pitch"), "rays": scan["views"] * scan["rows"] * scan["cols"]},
        "volume_voxels_zyx": grid["shape_zyx"],
        "voxel_mm": grid["voxel_mm_xyz"][0],
        "seconds": {
            "packing": round(result.seconds.get("pack", 0.0), 2),
            "meshes": round(result.seconds.get("geometry", 0.0), 2),
            **stages,
            "ct_total": round(ct_total, 2),
            "bag_total": round(t1 - t0, 2),
            "write": write_s,
        },
        "earlier_runs_s": earlier,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "debisim_published": DEBISIM,
        "ratio_to_debisim": {
            "projection": round(stages.get("projection", 0.0) / DEBISIM["projection_s"], 3),
            "total": round((t1 - t0) / DEBISIM["total_s"], 3),
        },
        "goal": {"cpu_total_s": 480, "gpu_total_s": 20},
    }
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
