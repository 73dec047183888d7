"""Packing benchmark: how much of a request gets packed, how densely, how fast, and how cleanly.

For each scene (the built-in ones, the 30-object carry-on ``carryon30.yaml``, and two requests that
do not fit: ``overfull.yaml``, which asks for three times carryon30's items, and
``overfull_pidray.yaml``, three times the pidray scene's, in its smaller cases) it packs
``--bags`` sampled bags with each of ``--methods`` on ONE core (after one untimed bag, which compiles what is not compiled yet) and prints JSON:
the share of requested objects placed, the placed objects' convex-hull volume over the bag
interior (the hull fill, computed here from the packed meshes, not taken from the packer), the
fill at the moment the first object was left out (reported by packers that track it), seconds
per bag (median, and scaled to 30 objects), the reasons for leaving objects out, and the
worst of :func:`xraybag.engine.packing.checks.check_packing` (interpenetration, outside, support
gap). ``--against REV`` runs the same measurement with the packers of an earlier commit (a ``git
worktree`` first on ``PYTHONPATH``, same interpreter) on the same bags, right after this
checkout's, so both figures come from the same machine in the same run; ``--repeats N`` runs N
rounds of both, alternated, and reports the medians of the rounds' medians (a machine whose speed
drifts over minutes moves one tree's single run against the other's by more than many changes)::

    python benchmarks/packing.py --bags 5 --against HEAD~1 [--repeats 3]

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
SCENES = ["demo", "pidray", "clcxray", "checked_ct", str(HERE / "carryon30.yaml"), str(HERE / "overfull.yaml"),
          str(HERE / "overfull_pidray.yaml")]


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


def _under_goal(scene, bag: int, fill: float, name: str | None) -> dict:
    """A bag under the fill goal at its first left-out: the bag's interior, the object then left
    out and its oriented box (long, middle, short; mm), and the largest objects of the request."""
    from xraybag.engine.packing.dense import _axes
    from xraybag.engine.packing.place import object_geom
    from xraybag.engine.solids.scene import object_name

    def box(g) -> list[int]:
        return [round(float(e)) for e in _axes(g)[1]]  # the packer's own box: long, middle, short

    geoms = [object_geom(o, k, object_name(o, k + 1)) for k, o in enumerate(scene.objects)
             if getattr(o, "sheet", None) is None and o.pose is None]
    largest = sorted(geoms, key=lambda g: -float(np.prod(box(g))))[:5]
    left = next((g for g in geoms if g.name == name), None)
    return {"bag": bag, "fill": round(fill, 4), "interior_mm": [round(float(x)) for x in scene.bag.size],
            "left_out": name, "left_out_box_mm": None if left is None else box(left),
            "largest_boxes_mm": {g.name: box(g) for g in largest}}


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
            # one untimed bag first: a tree whose kernels are not compiled yet compiles them here
            PACKERS[method](sample(loaded, bags), np.random.default_rng(bags))
            secs, per30, fills, firsts, shares, reasons, worst = [], [], [], [], [], Counter(), {}
            labelled, pressed = [0, 0], 0  # labelled objects placed, asked; bags with pressed soft goods
            under = []  # the bags under the fill goal at their first left-out, and what was left out
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
                asked = {o.name for o in sc.objects if o.label is not None and o.pose is None and o.sheet is None}
                labelled[0] += sum(1 for n in report.placed if n in asked)
                labelled[1] += len(asked)
                pressed += bool(packed.materials.keys() - sc.materials.keys())
                fills.append(hull_fill(packed))
                first = getattr(report, "hull_fill_at_first_left_out", None)
                if report.left_out:
                    firsts.append(first)
                if first is not None and first < 0.55:
                    under.append(_under_goal(sc, b, first, getattr(report, "first_left_out", None)))
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
                "labelled_placed_share": round(labelled[0] / labelled[1], 4) if labelled[1] else None,
                "bags_with_pressed_soft_goods": pressed,
                "hull_fill_mean": round(statistics.mean(fills), 4),
                "hull_fill_min": round(min(fills), 4),
                "bags_with_left_out": len(firsts),
                "hull_fill_at_first_left_out_mean": round(statistics.mean(known), 4) if known else None,
                "hull_fill_at_first_left_out_min": round(min(known), 4) if known else None,
                "hull_fill_at_first_left_out_sd": round(statistics.pstdev(known), 4) if known else None,
                "bags_under_0.55_at_first_left_out": sum(1 for f in known if f < 0.55),
                "seconds_per_bag_median": round(statistics.median(secs), 3),
                "seconds_per_30_objects_median": round(statistics.median(per30), 3),
                "under_0.55_first_left_out": under,
                "left_out_reasons": dict(reasons),
                "maxima": {k: round(v, 6) for k, v in worst.items()},
            }
    return out


def catalog_requests(n: int, seed: int, folder: Path, objects: int = 60, bag=None) -> list[str]:
    """``n`` requests nobody tuned the packer on, written as scene files into ``folder``: each a bag
    of a random carry-on size (380-620 x 250-420 x 150-280 mm; ``bag``: this size for all) asked to
    hold 6-20 entries drawn from the whole catalog, each repeated 1 to 2 ``objects`` / (entries)
    times (about ``objects`` objects a request: with 60 about half fit, with 90 most do not; 30 in
    a 400 x 280 x 170 mm bag fill it); seeded by ``seed``, so both trees of ``--against`` pack the
    same requests."""
    import yaml

    from xraybag.scenes.catalog import CATALOG

    rng = np.random.default_rng(seed)
    names = sorted(CATALOG)
    scanner = {"name": "top", "type": "line_scan", "view": "vertical",
               "spectrum": {"kvp": 140, "filtration": {"Al": 2.0}, "mas": 0.02}}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        size = [int(rng.integers(380, 621)), int(rng.integers(250, 421)), int(rng.integers(150, 281))]
        size = size if bag is None else [int(x) for x in bag]
        k = int(rng.integers(6, 21))
        items = [{"template": str(name), "repeat": int(rng.integers(1, max(2, 2 * objects // k) + 1))}
                 for name in rng.choice(names, size=k, replace=False)]
        scene = {"seed": 1000 * seed + i, "bag": {"size": size, "wall": {"material": "nylon", "thickness": 1.5}},
                 "objects": items, "packing": {"method": "physics"}, "scanners": [scanner]}
        path = folder / f"request_{seed}_{i:02d}.yaml"
        path.write_text(yaml.safe_dump(scene, sort_keys=False))
        paths.append(str(path))
    return paths


def requests_summary(res: dict) -> dict | None:
    """The catalog requests (:func:`catalog_requests`) together: their bags, the fill at the first
    left-out (mean, worst, bags under the goal), labelled objects placed, seconds per 30 objects."""
    runs = [m["physics"] for name, m in res.items() if name.startswith("request_") and "physics" in m]
    if not runs:
        return None
    firsts = [r["hull_fill_at_first_left_out_min"] for r in runs if r["hull_fill_at_first_left_out_min"] is not None]
    return {
        "requests": len(runs), "bags": sum(r["bags"] for r in runs),
        "bags_with_left_out": sum(r["bags_with_left_out"] for r in runs),
        "hull_fill_at_first_left_out_mean_of_requests": round(statistics.mean(
            r["hull_fill_at_first_left_out_mean"] for r in runs if r["hull_fill_at_first_left_out_mean"] is not None), 4)
        if firsts else None,
        "hull_fill_at_first_left_out_min": min(firsts) if firsts else None,
        "bags_under_0.55_at_first_left_out": sum(r["bags_under_0.55_at_first_left_out"] for r in runs),
        "labelled_placed_share_min": min((r["labelled_placed_share"] for r in runs if r["labelled_placed_share"] is not None),
                                         default=None),
        "requests_losing_labelled_objects": sum(1 for r in runs if (r["labelled_placed_share"] or 1.0) < 1.0),
        "hull_fill_mean_of_requests": round(statistics.mean(r["hull_fill_mean"] for r in runs), 4),
        "seconds_per_30_objects_median_of_requests": round(statistics.median(
            r["seconds_per_30_objects_median"] for r in runs), 3),
        "seconds_per_30_objects_max_of_requests": max(r["seconds_per_30_objects_median"] for r in runs),
        "worst": {k: max(r["maxima"][k] for r in runs) for k in runs[0]["maxima"]},
    }


def _inner(tree: Path, args) -> dict:
    """The measurement run by the checkout at ``tree`` (first on ``PYTHONPATH``) in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--bags", str(args.bags), "--methods",
           args.methods, "--budget", str(args.budget), "--scenes", *args.scenes, "--inner"]
    got = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(got.stdout)


def _against(rev: str, args) -> tuple[list[dict], list[dict]]:
    """This checkout's and commit ``rev``'s measurements, ``args.repeats`` rounds each, the two
    alternated (this first in odd rounds, ``rev`` first in even ones) so that both see the same
    minutes of a machine whose speed drifts. With one round, this checkout's runs in-process."""
    root = HERE.parent
    tmp = Path(tempfile.mkdtemp(prefix="xraybag-rev-"))
    try:
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tmp / "tree"), rev],
                       check=True, capture_output=True)
        if args.repeats <= 1:
            return [measure(args.scenes, args.bags, args.methods.split(","), args.budget)], \
                [_inner(tmp / "tree", args)]
        ours, theirs = [], []
        for r in range(args.repeats):
            for tree in ((root, tmp / "tree") if r % 2 == 0 else (tmp / "tree", root)):
                (ours if tree == root else theirs).append(_inner(tree, args))
        return ours, theirs
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tmp / "tree")],
                       check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def merge_rounds(rounds: list[dict]) -> dict:
    """One result from several rounds of the same measurement: the first round's packings (the
    same in every round: ``same_packings`` says whether they were) and each time the median of
    the rounds' medians, with the rounds' medians beside it."""
    out = json.loads(json.dumps(rounds[0]))
    for name, methods in out.items():
        for method, res in methods.items():
            each = [r[name][method] for r in rounds]
            res["same_packings"] = all(
                {k: v for k, v in e.items() if "seconds" not in k} ==
                {k: v for k, v in each[0].items() if "seconds" not in k} for e in each)
            for key in ("seconds_per_bag_median", "seconds_per_30_objects_median"):
                res[key.replace("median", "rounds")] = [e[key] for e in each]
                res[key] = round(statistics.median(e[key] for e in each), 3)
    return out


def goals(res: dict) -> dict:
    """The goals over the named scenes (the catalog requests are summarised apart)."""
    phys = {k: v["physics"] for k, v in res.items() if "physics" in v and not k.startswith("request_")}
    if not phys:
        return None
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
    ap.add_argument("--repeats", type=int, default=1,
                    help="with --against: rounds of both trees, alternated (the times are the "
                         "medians of the rounds' medians)")
    ap.add_argument("--catalog-requests", type=int, default=0, metavar="N",
                    help="add N requests drawn at random from the whole catalog (seeded by "
                         "--requests-seed), packed with --bags bags each; summarised together")
    ap.add_argument("--requests-seed", type=int, default=0)
    ap.add_argument("--request-objects", type=int, default=60,
                    help="about how many objects a catalog request asks for")
    ap.add_argument("--request-bag", type=int, nargs=3, default=None, metavar=("W", "D", "H"),
                    help="every catalog request's bag interior (mm), in place of random sizes")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    if args.inner:
        print(json.dumps(measure(args.scenes, args.bags, methods, args.budget)))
        return
    with tempfile.TemporaryDirectory(prefix="xraybag-requests-") as folder:
        if args.catalog_requests:
            args.scenes = ([] if args.scenes == SCENES else args.scenes) + catalog_requests(
                args.catalog_requests, args.requests_seed, Path(folder), args.request_objects,
                args.request_bag)
        run(args, methods)


def run(args, methods: list[str]) -> None:
    if not args.against:
        this = measure(args.scenes, args.bags, methods, args.budget)
        out = {"benchmark": "packing", "threads": 1, "bags_per_scene": args.bags, "this": this,
               "goals": goals(this), "catalog_requests": requests_summary(this)}
        print(json.dumps(out, indent=1))
        return
    ours, theirs = _against(args.against, args)
    this, other = merge_rounds(ours), merge_rounds(theirs)
    ratio = {name: {m: round(other[name][m]["seconds_per_30_objects_median"]
                             / max(res["seconds_per_30_objects_median"], 1e-9), 3)
                    for m, res in methods_.items()}
             for name, methods_ in this.items()}
    out = {"benchmark": "packing", "threads": 1, "bags_per_scene": args.bags, "repeats": args.repeats,
           "this": this, "goals": goals(this), "catalog_requests": requests_summary(this),
           "against": {"rev": args.against, "results": other, "goals": goals(other),
                       "catalog_requests": requests_summary(other),
                       "seconds_ratio_against_to_this": ratio}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
