"""Render throughput: seconds per dual-energy view and bags per hour, at 1 mm and 0.5 mm pitch.

Runs on ONE core (numba, BLAS and OpenMP limited to one thread) so the figure is per core; the
goal is a dual-energy view of a 30-object bag at 1 mm pitch in under 0.5 s. Prints one JSON
object. Usage::

    python benchmarks/render_throughput.py [--bags 5] [--scene benchmarks/bag30.yaml] [--pitch 1 0.5]

Each pitch renders ``--bags`` bags after one warm-up bag (numba compilation and spectrum and
calibration caches are excluded from the medians, and reported separately as ``cold_s``).
A view's time is trace + detect (spectral pass and noise) + products (pseudo-colour, labels);
a bag's time adds sampling, packing, meshing and writing its files.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent


def with_pitch(loaded, pitch: float):
    """The loaded scene with every scanner at ``pitch`` mm."""
    spec = loaded.spec.model_copy(
        update={"scanners": [s.model_copy(update={"pitch": pitch}) for s in loaded.spec.scanners]}
    )
    return type(loaded)(**{**loaded.__dict__, "spec": spec})


def run(scene: str, pitch: float, bags: int) -> dict:
    from xraybag.engine.output.files import write_atomic
    from xraybag.engine.output.pipeline import render_bag
    from xraybag.engine.output.records import Options, bag_files
    from xraybag.scenes.loader import load_scene

    loaded = with_pitch(load_scene(scene), pitch)
    cats = {c: i + 1 for i, c in enumerate(loaded.categories)}
    out = Path(tempfile.mkdtemp(prefix="xraybag-bench-"))
    t = time.perf_counter()
    render_bag(loaded, 0)
    cold = time.perf_counter() - t
    views: dict[str, list[float]] = {}
    parts: dict[str, list[float]] = {}
    bag_s, objects, shapes = [], [], {}
    for i in range(1, bags + 1):
        t0 = time.perf_counter()
        result = render_bag(loaded, i)
        for rel, data in bag_files(result, out, cats, Options()).items():
            write_atomic(out / rel, data)
        bag_s.append(time.perf_counter() - t0)
        objects.append(len(result.objects))
        for v in result.views:
            name = v.scanner.name
            views.setdefault(name, []).append(sum(v.seconds.values()))
            shapes[name] = list(v.instance.shape)
            for k, s in v.seconds.items():
                parts.setdefault(f"{name}.{k}", []).append(s)
        for k, s in result.seconds.items():
            parts.setdefault(k, []).append(s)
    med_bag = statistics.median(bag_s)
    return {
        "pitch_mm": pitch,
        "bags": bags,
        "objects_per_bag": objects,
        "image_shape": shapes,
        "cold_s": round(cold, 3),
        "view_s_median": {k: round(statistics.median(v), 4) for k, v in views.items()},
        "stage_s_median": {k: round(statistics.median(v), 4) for k, v in sorted(parts.items())},
        "bag_s_median": round(med_bag, 4),
        "bags_per_hour_one_core": round(3600.0 / med_bag, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(HERE / "bag30.yaml"))
    ap.add_argument("--bags", type=int, default=5)
    ap.add_argument("--pitch", type=float, nargs="+", default=[1.0, 0.5])
    args = ap.parse_args()
    results = [run(args.scene, p, args.bags) for p in args.pitch]
    one_mm = next((r for r in results if r["pitch_mm"] == 1.0), None)
    goal = None
    if one_mm is not None:
        worst = max(one_mm["view_s_median"].values())
        goal = {"goal_view_s": 0.5, "worst_view_s_at_1mm": worst, "met": worst < 0.5}
    print(
        json.dumps(
            {
                "benchmark": "render_throughput",
                "scene": os.path.relpath(args.scene),
                "threads": 1,
                "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
                "results": results,
                "goal": goal,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
