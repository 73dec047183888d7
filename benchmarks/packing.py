"""Packing benchmark: how much of a request gets packed, how densely, how fast, and how cleanly.

For each scene (the built-in ones, the 30-object carry-on ``carryon30.yaml`` and ``overfull.yaml``,
which asks for three times what fits) it packs ``--bags`` sampled bags with each of ``--methods``
on ONE core and prints JSON: the share of requested objects placed, the placed objects' convex-hull
volume over the bag interior (the hull fill, computed here from the packed meshes, not taken from
the packer), the fill at the moment the first object was left out (reported by packers that track
it), seconds per bag (median, and scaled to 30 objects), the reasons for leaving objects out, and the
worst of :func:`xraybag.engine.packing.checks.check_packing` (interpenetration, outside, support
gap). ``--against REV`` runs the same measurement with the packers of an earlier commit (a ``git
worktree`` first on ``PYTHONPATH``, same interpreter) on the same bags, right after this
checkout's, so both figures come from the same machine in the same run::

    python benchmarks/packing.py --bags 5 --against HEAD~1

Goals (the performance issue): hull fill >= 55 % before anything is left out, 30 objects in under
2 s on one core, interpenetration <= 0.5 %, support gap <= 1 mm (nothing floating).
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SCENES = ["demo", "pidray", "clcxray", "checked_ct", str(HERE / "carryon30.yaml"), str(HERE / "overfull.yaml")]


def hull_fill(scene) -> float:
    """Placed objects' convex hull volumes / interior volume (sheets excluded)."""
    from scipy.spatial import ConvexHull

    from xraybag.engine.packing.place import object_geom
    from xraybag.engine.solids.scene import object_name

    total = 0.0
    for k, obj in enumerate(scene.objects):
        if getattr(obj, "sheet", None) is not None or obj.pose is None:
            continue
        g = object_geom(obj, k, object_name(obj, k + 1))
        try:
            total += float(ConvexHull(g.hull).volume)
        except Exception:  # noqa: BLE001 - flat
            pass
    return total / float(np.prod([float(s) for s in scene.bag.size]))


def measure(scenes: list[str], bags: int, methods: list[str], budget: float) -> dict:
    from xraybag.engine.packing import PACKERS
    from xraybag.engine.packing.checks import check_packing
    from xraybag.scenes.loader import load_scene
    from xraybag.scenes.sample import sample

    out: dict = {}
    for ref in scenes:
        loaded = load_scene(ref)
        name = Path(ref).stem if ref.endswith(".yaml") else ref
        for method in methods:
            secs, per30, fills, firsts, shares, reasons, worst = [], [], [], [], [], Counter(), {}
            for b in range(bags):
                sc = sample(loaded, b)
                sc = sc.model_copy(update={"packing": sc.packing.model_copy(update={"time_budget": budget})})
                requested = sum(1 for o in sc.objects if getattr(o, "sheet", None) is None and o.pose is None)
                t = time.perf_counter()
                packed, report = PACKERS[method](sc, np.random.default_rng(b))
                dt = time.perf_counter() - t
                secs.append(dt)
                per30.append(dt * 30.0 / max(1, requested))
                shares.append(len(report.placed) / max(1, requested))
                fills.append(hull_fill(packed))
                first = getattr(report, "hull_fill_at_first_left_out", None)
                if report.left_out:
                    firsts.append(first)
                reasons.update(r for _, r in report.left_out)
                m = check_packing(packed)
                for k in ("max_overlap_fraction", "max_outside_mm", "max_support_gap_mm"):
                    worst[k] = max(worst.get(k, 0.0), m[k])
                print(f"{name} {method} bag {b}: {len(report.placed)}/{requested} placed, fill {fills[-1]:.3f}, "
                      f"first left out at {first}, {dt:.2f} s", file=sys.stderr)
            known = [f for f in firsts if f is not None]
            out.setdefault(name, {})[method] = {
                "bags": bags,
                "placed_share_mean": round(statistics.mean(shares), 4),
                "hull_fill_mean": round(statistics.mean(fills), 4),
                "hull_fill_min": round(min(fills), 4),
                "bags_with_left_out": len(firsts),
                "hull_fill_at_first_left_out_mean": round(statistics.mean(known), 4) if known else None,
                "hull_fill_at_first_left_out_min": round(min(known), 4) if known else None,
                "seconds_per_bag_median": round(statistics.median(secs), 3),
                "seconds_per_30_objects_median": round(statistics.median(per30), 3),
                "left_out_reasons": dict(reasons),
                "maxima": {k: round(v, 6) for k, v in worst.items()},
            }
    return out


def _other(rev: str, args) -> dict:
    """The same measurement with the packers of commit ``rev``."""
    root = HERE.parent
    tmp = Path(tempfile.mkdtemp(prefix="xraybag-rev-"))
    try:
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tmp / "tree"), rev],
                       check=True, capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(tmp / "tree")}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--bags", str(args.bags), "--methods",
               args.methods, "--budget", str(args.budget), "--scenes", *args.scenes, "--inner"]
        got = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tmp / "tree")
        return json.loads(got.stdout)
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tmp / "tree")],
                       check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def goals(res: dict) -> dict:
    phys = {k: v["physics"] for k, v in res.items() if "physics" in v}
    firsts = [v["hull_fill_at_first_left_out_min"] for v in phys.values()
              if v["hull_fill_at_first_left_out_min"] is not None]
    carry = phys.get("carryon30")
    return {
        "fill_before_left_out_ge_0.55": {"worst": min(firsts) if firsts else None,
                                         "met": bool(firsts) and min(firsts) >= 0.55},
        "carryon30_under_2s_one_core": {"median_s": carry and carry["seconds_per_bag_median"],
                                        "met": bool(carry) and carry["seconds_per_bag_median"] < 2.0},
        "interpenetration_le_0.005": {"worst": max(v["maxima"]["max_overlap_fraction"] for v in phys.values()),
                                      "met": max(v["maxima"]["max_overlap_fraction"] for v in phys.values()) <= 0.005},
        "support_gap_le_1mm": {"worst": max(v["maxima"]["max_support_gap_mm"] for v in phys.values()),
                               "met": max(v["maxima"]["max_support_gap_mm"] for v in phys.values()) <= 1.0},
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0, help="time budget per bag (s)")
    ap.add_argument("--methods", default="physics")
    ap.add_argument("--scenes", nargs="+", default=SCENES)
    ap.add_argument("--against", default=None, metavar="REV")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    if args.inner:
        print(json.dumps(measure(args.scenes, args.bags, methods, args.budget)))
        return
    this = measure(args.scenes, args.bags, methods, args.budget)
    out = {"benchmark": "packing", "threads": 1, "bags_per_scene": args.bags, "this": this, "goals": goals(this)}
    if args.against:
        out["against"] = {"rev": args.against, "results": _other(args.against, args)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
