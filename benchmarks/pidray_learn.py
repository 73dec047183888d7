"""The PIDray-style learning figure of docs/learners.md: render the built-in ``pidray`` scene,
train the small CPU detector on it, score it on the held-out test split with pycocotools, and print
the figures as JSON (``make bench-learn``).

    python benchmarks/pidray_learn.py --work bench-out/pidray --bags 400 --pitch 2

Steps: ``xraybag render pidray`` (``--bags`` bags, both views, scanners at ``--pitch`` mm),
``xraybag learn train atss --opt preset=cpu_small`` (``--opt`` adds options), ``xraybag learn eval``
on the test split (``--run NAME`` keeps each configuration's training in its own folder beside
the shared data, e.g. ``--run lite0 --opt backbone=efficientnet_lite0``). The printed mAP50 is
re-scored from the written ``results.json`` with pycocotools and set beside chance: the model's
own detections dealt out to random test images. A finished render or training in ``--work`` is
reused (delete the folder to start again). Exit status 1 when the mAP50 does not reach ``--bar`` or
10 x chance, so the target can gate a release.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from ruamel.yaml import YAML

from xraybag.cli.main import cli


def run(*args) -> str:
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if r.exit_code != 0:
        sys.exit(f"xraybag {' '.join(map(str, args))} failed:\n{r.output}")
    return r.output


def scene_with_pitch(path: Path, name: str, pitch: float) -> Path:
    from xraybag.scenes.loader import resolve_scene_ref

    yaml = YAML()
    data = yaml.load(resolve_scene_ref(name).read_text())
    for scanner in data["scanners"]:
        scanner["pitch"] = pitch
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.dump(data, f)
    return path


def chance_results(results: list[dict], image_ids: list[int], seed: int = 0) -> list[dict]:
    """The model's own detections dealt out to random images: same classes, boxes and scores, but
    nothing seen in the image they land on. Their mAP50 is what chance scores."""
    rng = random.Random(seed)
    return [dict(r, image_id=rng.choice(image_ids)) for r in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("bench-out/pidray"))
    ap.add_argument("--scene", default="pidray")
    ap.add_argument("--bags", type=int, default=400)
    ap.add_argument("--pitch", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--opt", action="append", default=[], help="extra learner option key=value")
    ap.add_argument("--run", default="run", help="name of the training folder in --work (several "
                    "configurations can share one rendered dataset)")
    ap.add_argument("--bar", type=float, default=0.08, help="mAP50 the run must beat")
    args = ap.parse_args()

    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.metrics import coco_metrics

    data, runs = args.work / "data", args.work / args.run
    scene = scene_with_pitch(args.work / f"{args.scene}.yaml", args.scene, args.pitch)
    times = {}
    t = time.perf_counter()
    run("render", scene, "-n", args.bags, "-o", data, "--workers", args.workers, "-q")
    times["render_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    if not (runs / "weights.pt").exists():
        opts = [x for o in ["preset=cpu_small", "val_every=0", *args.opt] for x in ("--opt", o)]
        run("learn", "train", "atss", "--data", data, "--out", runs, *opts, "-q")
    times["train_s"] = round(time.perf_counter() - t, 1)
    out = run("learn", "eval", "-q", "atss", "--weights", runs / "weights.pt", "--data", data)
    metrics = json.loads(out[out.index("{"):])
    results_file = runs / "eval_test" / "results.json"
    test = DetectionDataset(data, "test")
    again = coco_metrics(test.coco_subset(), results_file)
    results = json.loads(results_file.read_text())
    chance = coco_metrics(test.coco_subset(), chance_results(results, test.image_ids))["mAP50"]
    report = {
        "scene": args.scene, "bags": args.bags, "pitch_mm": args.pitch, "options": ["preset=cpu_small", *args.opt],
        "test_images": len(test), "test_objects": len(test.coco_subset()["annotations"]),
        "mAP50": metrics["mAP50"], "mAP": metrics["mAP"], "mAP50_rescored": again["mAP50"],
        "chance_mAP50": chance, "classes": len(metrics["per_class"]), **times,
        "bar": args.bar, "passed": bool(metrics["mAP50"] > args.bar and metrics["mAP50"] > 10 * chance
                                        and again["mAP50"] == metrics["mAP50"]),
    }
    print(json.dumps(report, indent=1))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
