"""Packing benchmark: physics vs heuristic on random bags of 20-40 built-in template objects.

Prints JSON: per method, seconds per bag (median, and per 30 objects), the shares of time in
decomposition / simulation / refinement, objects placed / left out, and the measured maxima of
:func:`xraybag.engine.packing.checks.check_packing` (interpenetration fraction, distance outside the
bag, support gap). Run single-threaded for the per-core figure:

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/packing.py --bags 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.heuristic import pack_heuristic
from xraybag.engine.packing.physics import pack_physics
from xraybag.scenes.loader import load_scene
from xraybag.scenes.sample import sample

TEMPLATES = ["kitchen_knife", "scissors", "handgun", "wrench", "power_bank", "plastic_bottle",
             "glass_bottle", "can", "book", "folded_shirt", "shoe", "phone", "charger", "laptop",
             "toiletry_bottle"]

SCENE = """seed: {seed}
bag: {{size: [560, 360, 230], wall: {{material: nylon, thickness: 1.5}}}}
objects:
  - repeat: {n}
    template: {{choice: [{templates}]}}
"""


def bag_scene(seed: int, n: int, folder: Path):
    path = folder / f"bag{seed}.yaml"
    path.write_text(SCENE.format(seed=seed, n=n, templates=", ".join(TEMPLATES)))
    return sample(load_scene(path), 0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=30.0, help="time budget per bag (s)")
    ap.add_argument("--methods", default="physics,heuristic")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sizes = [int(n) for n in rng.integers(20, 41, size=args.bags)]
    methods = {"physics": pack_physics, "heuristic": pack_heuristic}
    out: dict = {"bags": args.bags, "objects_per_bag": [min(sizes), max(sizes)], "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        scenes = [bag_scene(args.seed * 1000 + b, n, Path(tmp)) for b, n in enumerate(sizes)]
        for name in args.methods.split(","):
            secs, per30, stages, worst, placed, left = [], [], {}, {}, 0, 0
            for b, sc in enumerate(scenes):
                t = time.perf_counter()
                packed, report = methods[name](sc, np.random.default_rng(b), time_budget=args.budget)
                dt = time.perf_counter() - t
                secs.append(dt)
                per30.append(dt * 30.0 / max(1, len(sc.objects)))
                for k, v in report.timings.items():
                    stages[k] = stages.get(k, 0.0) + v
                m = check_packing(packed)
                for k in ("max_overlap_fraction", "max_outside_mm", "max_support_gap_mm"):
                    worst[k] = max(worst.get(k, 0.0), m[k])
                placed += len(report.placed)
                left += len(report.left_out)
                print(f"{name} bag {b}: {len(sc.objects)} objects, {dt:.2f} s, "
                      f"{len(report.left_out)} left out, {m}", file=sys.stderr)
            total = sum(stages.values()) or 1.0
            out["methods"][name] = {
                "seconds_per_bag_median": statistics.median(secs),
                "seconds_per_30_objects_median": statistics.median(per30),
                "seconds_per_bag_max": max(secs),
                "time_shares": {k: v / total for k, v in stages.items()},
                "placed": placed,
                "left_out": left,
                "maxima": worst,
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
