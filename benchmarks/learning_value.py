"""What synthetic data is worth on another scanner (issue 15): one detector trained on the source
scanner's labelled bags (``pidray``), scored on the held-out test split of a second vendor's
scanner (``pidray_vendor_b``), for four training sets, printed (and ``--json PATH``) as JSON.

Arms (the same detector, options and number of iterations for all; ``--seeds`` each):

- ``source``: the source's labelled bags;
- ``source+tip``: those plus ``tip`` composites of the pidray threat templates (``balance=equal``)
  into the target scanner's *unlabelled benign* bags (the target scene with its threat entries
  removed: the labels come from ``tip`` alone);
- ``source+cyclegan``: the source's bags plus the same bags translated source -> target by
  ``cyclegan`` (trained here on the source images and the target's benign images with
  ``preset=test``, ``ndf=32``, ``residual=true`` unless ``--cyclegan-weights`` names weights;
  translated in windows of the training crop, with any ``--cyclegan-opt`` synthesize options);
- ``source+xsyn-M``: the source's bags plus the same bags with every threat repainted by ``xsyn``
  (variant M, CAR and BOM), a generator trained here on the source's train split (``--xsyn-*``)
  unless ``--xsyn-checkpoint`` names one;
- ``source+xsyn-A``: the source's bags plus the target's unlabelled benign bags with one threat
  added to each by ``xsyn`` (variant A: an idle region found by the segmenter, Eq. 3);
- ``target``: the target's labelled train split (the upper bound).

The xsyn arms need a promptable segmenter for CAR, BOM and A's idle regions: ``sam_finetune``
(``preset=tiny``) trained here on every object of the source's instance maps (``masks=instances``:
the threats and the benign objects A and BOM look for; 50 epochs, about 25 minutes on one core)
unless ``--xsyn-segmenter`` names weights.

    python benchmarks/learning_value.py --work /work/data/learning_value --json docs/bench/learning_value.json

Both scenes are read at run time (the built-in YAML files) and written into ``--work`` with every
scanner's pitch times ``--pitch-scale`` (2: the source at 2 mm, the target at 1.6 mm; the ratio of
the two pitches is kept). Training goes through ``xraybag learn train`` with several ``--data``
(each used whole: ``--splits 1,0,0``); the target's labelled bags are split by bag
``--target-splits`` (train, 0, test). Each arm's epochs are chosen so that it runs ``--iters``
iterations of batch 2 (``epochs = iters / iterations per epoch``, rounded; the actual count is
reported). Metrics on the target test split: mAP50 and mAP (pycocotools, re-scored from the
written results), AP50 per class and per difficulty; then mean +- std over the seeds and paired
differences (same seed) against ``source``. Finished renders, syntheses, trainings and
evaluations in ``--work`` are reused, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pidray_learn import run  # noqa: E402  (xraybag CLI through click's CliRunner)

SOURCE, TARGET = "pidray", "pidray_vendor_b"
ARMS = ("source", "source+tip", "source+cyclegan", "source+xsyn-M", "source+xsyn-A", "target")
XSYN_ARMS = ("source+xsyn-M", "source+xsyn-A")


def load_scene(name: str):
    from ruamel.yaml import YAML

    from xraybag.scenes.loader import resolve_scene_ref

    text = resolve_scene_ref(name).read_text()
    return YAML().load(text), hashlib.sha256(text.encode()).hexdigest()[:16]


def templates_of(entry) -> set[str]:
    """The catalog templates an object entry of the scene format may draw."""
    t = entry.get("template")
    if isinstance(t, str):
        return {t}
    if isinstance(t, dict) and isinstance(t.get("choice"), list):
        return {str(c) for c in t["choice"]}
    return set()


def write_scene(data, path: Path, pitch_scale: float) -> Path:
    from ruamel.yaml import YAML

    for scanner in data["scanners"]:
        scanner["pitch"] = round(float(scanner.get("pitch", 1.0)) * pitch_scale, 6)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        YAML().dump(data, f)
    return path


def scenes(work: Path, pitch_scale: float) -> dict:
    """The source scene, the target scene and the target's benign copy (the entries that may draw a
    threat template of the source's ``threat`` entry removed), written into ``work``."""
    src, src_sha = load_scene(SOURCE)
    threats = sorted(set().union(*(templates_of(e) for e in src["objects"] if e.get("name") == "threat")))
    tgt, tgt_sha = load_scene(TARGET)
    benign, _ = load_scene(TARGET)
    removed = [e["name"] for e in benign["objects"] if templates_of(e) & set(threats)]
    benign["objects"] = [e for e in benign["objects"] if not templates_of(e) & set(threats)]
    benign["seed"] = int(benign.get("seed", 0)) + 1  # other bags than the labelled target's
    return {
        "source": write_scene(src, work / f"{SOURCE}.yaml", pitch_scale),
        "target": write_scene(tgt, work / f"{TARGET}.yaml", pitch_scale),
        "benign": write_scene(benign, work / f"{TARGET}_benign.yaml", pitch_scale),
        "threats": threats, "removed": removed, "sha": {SOURCE: src_sha, TARGET: tgt_sha},
    }


def render(scene: Path, n: int, out: Path, workers: int) -> None:
    run("render", scene, "-n", n, "-o", out, "--workers", workers, "-q")


def synthesize(name: str, data: Path, out: Path, opts: list[str]) -> Path:
    """``xraybag learn synthesize`` into ``out`` (through ``out.partial``, so that an interrupted
    synthesis is redone rather than reused)."""
    import shutil

    if (out / "annotations.json").is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    run("learn", "synthesize", name, "--data", data, "-o", partial, *[x for o in opts for x in ("--opt", o)])
    partial.rename(out)
    return out


def cyclegan_weights(args, source: Path, benign: Path) -> tuple[Path, dict]:
    """The given ``--cyclegan-weights``, or a ``preset=test`` run trained here (resumed when
    interrupted) on the source images and the target's benign images."""
    if args.cyclegan_weights:
        return args.cyclegan_weights, {"weights": str(args.cyclegan_weights), "trained_here": False}
    out = args.work / f"cyclegan_run_{args.source_bags}_{args.benign_bags}_{args.cyclegan_iters}_residual"
    opts = ["preset=test", "ndf=32", "residual=true", f"iterations={args.cyclegan_iters}", "threads=1", "seed=0"]
    t = time.perf_counter()
    if not (out / "weights.pt").is_file():
        resume = ["--resume"] if (out / "checkpoint.pt").is_file() else []
        run("learn", "train", "cyclegan", "--data", source, "--target", benign, "-o", out, *resume, "-q",
            *[x for o in opts for x in ("--opt", o)])
    return out / "weights.pt", {"weights": str(out / "weights.pt"), "trained_here": True, "options": opts,
                                "data": str(source), "target": str(benign), "train_s": round(time.perf_counter() - t, 1)}


def xsyn_parts(args, source: Path) -> tuple[Path, Path, dict]:
    """The xsyn pipeline folder and the segmenter weights: given, or trained here (resumed when
    interrupted): the generator on the source's train split, ``sam_finetune`` on its masks."""
    note: dict = {}
    t = time.perf_counter()
    pipe = args.xsyn_checkpoint
    if pipe is None:
        out = args.work / "xsyn_source_run"
        opts = ["size=128", f"vae_iterations={args.xsyn_vae_iters}", f"iterations={args.xsyn_iters}", "threads=1",
                "val_every=500", "checkpoint_every=100"]
        if not (out / "pipeline" / "model_index.json").is_file():
            resume = ["--resume"] if (out / "checkpoint").is_dir() else []
            run("learn", "train", "xsyn", "--data", source, "-o", out, *resume, "-q",
                *[x for o in opts for x in ("--opt", o)])
        pipe = out / "pipeline"
        note["generator"] = {"trained_here": True, "options": opts, "data": str(source)}
    seg = args.xsyn_segmenter
    if seg is None:
        out = args.work / "sam_source"
        if not (out / "weights.pt").is_file():
            _one_thread()
            from xraybag.learners.apsam.learner import SAMFinetuneSegmenter
            from xraybag.learners.seg_data import SegmentationDataset

            # every object of the instance maps, not only the annotated threats: variant A's idle
            # regions (Eq. 3) and BOM's occluders are benign objects the segmenter must segment
            data = SegmentationDataset(source, split="all", channels="pseudo_colour", masks="instances")
            SAMFinetuneSegmenter(preset="tiny", epochs=args.xsyn_seg_epochs, masks="instances", max_objects=8,
                                 val_every=0).train(data, out, progress=False)
        seg = out / "weights.pt"
        note["segmenter"] = {"trained_here": True, "learner": "sam_finetune", "preset": "tiny",
                             "epochs": args.xsyn_seg_epochs, "masks": "instances", "max_objects": 8}
    note |= {"checkpoint": str(pipe), "segmenter_weights": str(seg), "parts_s": round(time.perf_counter() - t, 1)}
    return Path(pipe), Path(seg), note


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def train_and_score(job: dict) -> dict:
    """Train one arm with one seed (unless its weights exist; resumed from a checkpoint) and score
    it on the target's test split; the row of figures (also written to RUN/row.json)."""
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.metrics import coco_metrics
    from xraybag.learners.training import read_log

    out = Path(job["run"])
    done = out / "row.json"
    rec = out / "learn.json"
    if rec.is_file():  # a run of this folder made with other data or options is not reused (nor its row)
        was = json.loads(rec.read_text())
        if was.get("datasets", [was.get("data")]) != [str(Path(d).resolve()) for d in job["data"]] or \
                was.get("opts") != dict(o.split("=", 1) for o in job["opts"]):
            sys.exit(f"learning_value: {out} holds a run with other data or options; delete it or use another --work")
    if done.is_file():
        return json.loads(done.read_text())
    t = time.perf_counter()
    if not (out / "weights.pt").is_file():
        data = [x for d in job["data"] for x in ("--data", d)]
        resume = ["--resume"] if (out / "checkpoint.pt").is_file() else []
        run("learn", "train", "atss", *data, "-o", out, "--splits", job["splits"], "--split-seed", job["split_seed"],
            *resume, "-q", *[x for o in job["opts"] for x in ("--opt", o)])
    train_s = time.perf_counter() - t
    ev = out / "eval_target"
    text = run("learn", "eval", "atss", "--weights", out / "weights.pt", "--data", job["target"], "--split", "test",
               "--splits", job["target_splits"], "--split-seed", job["split_seed"], "-o", ev, "-q")
    metrics = json.loads(text[text.index("{"):])
    test = DetectionDataset(job["target"], "test", splits=[float(v) for v in job["target_splits"].split(",")],
                            seed=int(job["split_seed"]))
    again = coco_metrics(test.coco_subset(), ev / "results.json")  # pycocotools on the written file
    log = [r for r in read_log(out) if "sec" in r]
    row = {
        "arm": job["arm"], "seed": job["seed"], "mAP50": metrics["mAP50"], "mAP": metrics["mAP"],
        "mAP50_rescored": again["mAP50"], "mAP_rescored": again["mAP"],
        "per_class_AP50": {k: v["AP50"] for k, v in metrics["per_class"].items()},
        "per_class_gt": {k: v["gt"] for k, v in metrics["per_class"].items()},
        "per_difficulty_mAP50": {k: v["mAP50"] for k, v in metrics["per_difficulty"].items()},
        "per_difficulty_gt": {k: v["gt"] for k, v in metrics["per_difficulty"].items()},
        "train_images": job["train_images"], "epochs": job["epochs"], "iterations": len(log),
        "sec_per_iter": round(statistics.median(r["sec"] for r in log), 4) if log else None,
        "train_s": round(train_s, 1), "data": job["data"],
    }
    done.write_text(json.dumps(row, indent=1))
    print(f"{job['arm']} seed {job['seed']}: mAP50 {row['mAP50']:.4f} mAP {row['mAP']:.4f} "
          f"({row['iterations']} iterations, {row['train_s']} s)", file=sys.stderr, flush=True)
    return row


def _stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"mean": round(statistics.fmean(vals), 4), "std": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
            "n": len(vals)}


def summarise(rows: dict[str, list[dict]]) -> tuple[dict, dict]:
    summary = {}
    for arm, rs in rows.items():
        classes = sorted({c for r in rs for c in r["per_class_AP50"]})
        levels = sorted({d for r in rs for d in r["per_difficulty_mAP50"]})
        summary[arm] = {
            "mAP50": _stats([r["mAP50"] for r in rs]), "mAP": _stats([r["mAP"] for r in rs]),
            "per_class_AP50": {c: _stats([r["per_class_AP50"].get(c) for r in rs]) for c in classes},
            "per_difficulty_mAP50": {d: _stats([r["per_difficulty_mAP50"].get(d) for r in rs]) for d in levels},
            "train_images": rs[0]["train_images"], "epochs": rs[0]["epochs"],
            "iterations": sorted({r["iterations"] for r in rs}),
            "sec_per_iter": _stats([r["sec_per_iter"] for r in rs]),
        }
    paired = {}
    base = {r["seed"]: r for r in rows.get("source", [])}
    for arm, rs in rows.items():
        if arm == "source" or not base:
            continue
        pairs = [(r, base[r["seed"]]) for r in rs if r["seed"] in base]
        paired[f"{arm} - source"] = {
            k: _stats([r[k] - b[k] for r, b in pairs]) for k in ("mAP50", "mAP")
        } | {"per_difficulty_mAP50": {
            d: _stats([r["per_difficulty_mAP50"][d] - b["per_difficulty_mAP50"][d] for r, b in pairs
                       if r["per_difficulty_mAP50"].get(d) is not None and b["per_difficulty_mAP50"].get(d) is not None])
            for d in ("easy", "hard", "hidden")}}
    return summary, paired


def markdown(report: dict) -> str:
    """The docs table: mean +- std over the seeds, paired differences against ``source``."""
    def f(s):
        return "" if s is None else f"{s['mean']:.3f} +- {s['std']:.3f}"

    lines = ["| arm | train images | epochs | mAP50 | mAP | mAP50 `easy` | mAP50 `hard` | mAP50 `hidden` | "
             "mAP50 - source (paired) | mAP - source (paired) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, s in report["summary"].items():
        p = report["paired"].get(f"{arm} - source", {})
        d = s["per_difficulty_mAP50"]
        lines.append(f"| `{arm}` | {s['train_images']} | {s['epochs']} | {f(s['mAP50'])} | {f(s['mAP'])} | "
                     f"{f(d.get('easy'))} | {f(d.get('hard'))} | {f(d.get('hidden'))} | "
                     f"{f(p.get('mAP50')) or '(baseline)'} | {f(p.get('mAP')) or '(baseline)'} |")
    classes = sorted({c for s in report["summary"].values() for c in s["per_class_AP50"]})
    arms = list(report["summary"])
    gt = next(iter(report["runs"].values()))[0]["per_class_gt"]
    lines += ["", "| class (test objects) | " + " | ".join(f"`{a}`" for a in arms) + " |",
              "|---|" + "---|" * len(arms)]
    for c in (c for c in classes if gt.get(c)):
        lines.append(f"| {c} ({gt.get(c, 0)}) | " + " | ".join(
            f(report["summary"][a]["per_class_AP50"].get(c)) for a in arms) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("bench-out/learning_value"))
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of " + ", ".join(ARMS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--source-bags", type=int, default=80)
    ap.add_argument("--target-bags", type=int, default=60, help="labelled target bags (train + test)")
    ap.add_argument("--benign-bags", type=int, default=40, help="unlabelled benign target bags (tip, cyclegan)")
    ap.add_argument("--target-splits", default="0.5,0,0.5", help="train,val,test fractions of the target's bags")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--pitch-scale", type=float, default=2.0, help="every scanner's pitch times this")
    ap.add_argument("--iters", type=int, default=480, help="training iterations of every arm (epochs rounded)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tip-copies", type=int, default=1)
    ap.add_argument("--cyclegan-weights", type=Path, default=None,
                    help="cyclegan weights.pt to translate with (default: train preset=test here)")
    ap.add_argument("--cyclegan-iters", type=int, default=6000,
                    help="iterations of the cyclegan trained here (preset=test, ndf 32, residual: 15 min on one core)")
    ap.add_argument("--cyclegan-mix", choices=("source+translated", "translated"), default="source+translated",
                    help="what the cyclegan arm trains on")
    ap.add_argument("--cyclegan-opt", action="append", default=[],
                    help="extra cyclegan synthesize option key=value (e.g. detector=target with signals=raw weights)")
    ap.add_argument("--xsyn-checkpoint", type=Path, default=None,
                    help="xsyn pipeline folder to generate with (default: train preset=tiny at 128 px here)")
    ap.add_argument("--xsyn-segmenter", type=Path, default=None,
                    help="promptable segmenter weights for CAR, BOM and variant A (default: sam_finetune trained here)")
    ap.add_argument("--xsyn-iters", type=int, default=800, help="UNet iterations of the xsyn trained here")
    ap.add_argument("--xsyn-vae-iters", type=int, default=600, help="VAE iterations of the xsyn trained here")
    ap.add_argument("--xsyn-seg-epochs", type=int, default=50,
                    help="epochs of the segmenter trained here (every object of the source's instance maps)")
    ap.add_argument("--xsyn-opt", action="append", default=[], help="extra xsyn synthesize option key=value")
    ap.add_argument("--opt", action="append", default=[], help="extra detector option key=value (every arm)")
    ap.add_argument("--jobs", type=int, default=2, help="trainings side by side (one torch thread each)")
    ap.add_argument("--workers", type=int, default=2, help="render worker processes")
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON report here")
    ap.add_argument("--markdown", action="store_true", help="print the docs tables to stderr at the end")
    args = ap.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or any(a not in ARMS for a in arms):
        sys.exit(f"learning_value: --arms takes a comma-separated subset of {', '.join(ARMS)}, got {args.arms!r}")
    args.work.mkdir(parents=True, exist_ok=True)

    from xraybag.learners.data import DetectionDataset

    t0 = time.perf_counter()
    sc = scenes(args.work, args.pitch_scale)
    source, target, benign = args.work / "source", args.work / "target", args.work / "target_benign"
    times = {}
    t = time.perf_counter()
    render(sc["source"], args.source_bags, source, args.workers)
    render(sc["target"], args.target_bags, target, args.workers)
    if any(a in arms for a in ("source+tip", "source+cyclegan", "source+xsyn-A")):
        render(sc["benign"], args.benign_bags, benign, args.workers)
    times["render_s"] = round(time.perf_counter() - t, 1)
    sets = {"source": [source], "target": [target]}
    notes: dict = {}
    if "source+tip" in arms:
        t = time.perf_counter()
        tip_opts = ["threats=" + ",".join(sc["threats"]), "balance=equal", f"copies={args.tip_copies}",
                    "keep_original=false", "seed=0"]
        tip = synthesize("tip", benign, args.work / f"tip_{args.benign_bags}x{args.tip_copies}", tip_opts)
        times["tip_s"] = round(time.perf_counter() - t, 1)
        tip_report = json.loads((tip / "tip.json").read_text()) if (tip / "tip.json").is_file() else {}
        notes["tip"] = {"options": tip_opts, "composites": tip_report.get("composites"),
                        "skipped": len(tip_report.get("skipped", [])), "objects_after": tip_report.get("objects_after")}
        sets["source+tip"] = [source, tip]
    if "source+cyclegan" in arms:
        t = time.perf_counter()
        weights, notes["cyclegan"] = cyclegan_weights(args, source, benign)
        sha = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
        tag = ("_" + hashlib.sha256(" ".join(args.cyclegan_opt).encode()).hexdigest()[:8]) if args.cyclegan_opt else ""
        translated = synthesize("cyclegan", source, args.work / f"source{args.source_bags}_to_target_{sha}{tag}",
                                [f"weights={weights}", *args.cyclegan_opt])
        notes["cyclegan"] |= {"weights_sha256": sha, "translated": str(translated), "mix": args.cyclegan_mix,
                              "options": args.cyclegan_opt}
        times["cyclegan_s"] = round(time.perf_counter() - t, 1)
        sets["source+cyclegan"] = [source, translated] if args.cyclegan_mix == "source+translated" else [translated]

    if any(a in arms for a in XSYN_ARMS):
        pipe, seg, notes["xsyn"] = xsyn_parts(args, source)
        tag = hashlib.sha256((str(pipe.resolve()) + str(seg.resolve())).encode()).hexdigest()[:8]
        base = [f"checkpoint={pipe}", f"segmenter_weights={seg}", "seed=0", "threads=1", *args.xsyn_opt]
        for arm, variant, data in (("source+xsyn-M", "M", source), ("source+xsyn-A", "A", benign)):
            if arm in arms:
                t = time.perf_counter()
                made = synthesize("xsyn", data, args.work / f"xsyn_{variant}_{tag}", [f"variant={variant}", *base])
                times[f"xsyn_{variant}_s"] = round(time.perf_counter() - t, 1)
                made_coco = json.loads((made / "annotations.json").read_text())
                notes["xsyn"][variant] = {"images": len(made_coco["images"]),
                                          "skipped": len(made_coco.get("xsyn_skipped", []))}
                if not made_coco["images"]:  # nothing to train on: say so instead of training the source again
                    print(f"learning_value: xsyn variant {variant} generated no image "
                          f"({notes['xsyn'][variant]['skipped']} skipped); arm {arm} left out", file=sys.stderr)
                    arms.remove(arm)
                    continue
                sets[arm] = [source, made]
        notes["xsyn"]["options"] = base

    ts = [float(v) for v in args.target_splits.split(",")]
    common = ["preset=cpu_small", "backbone=efficientnet_lite0", "val_every=0", f"batch_size={args.batch}",
              "warmup_iters=100", *args.opt]
    jobs = []
    for seed in args.seeds:  # seed-major: runs side by side share the load alike
        for arm in arms:
            splits = args.target_splits if arm == "target" else "1,0,0"
            fr = ts if arm == "target" else [1.0, 0.0, 0.0]
            n = sum(len(DetectionDataset(d, "train", splits=fr, seed=args.split_seed)) for d in sets[arm])
            per_epoch = -(-n // args.batch)
            epochs = max(1, round(args.iters / per_epoch))
            jobs.append({"arm": arm, "seed": seed, "run": str(args.work / f"runs_{args.iters}" / f"{arm}_seed{seed}"),
                         "data": [str(d) for d in sets[arm]], "splits": splits, "split_seed": args.split_seed,
                         "target": str(target), "target_splits": args.target_splits, "train_images": n,
                         "epochs": epochs, "opts": [*common, f"epochs={epochs}", f"seed={seed}"]})
    t = time.perf_counter()
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs, initializer=_one_thread) as pool:
            done = list(pool.map(train_and_score, jobs))
    else:
        done = [train_and_score(j) for j in jobs]
    times["train_eval_s"] = round(time.perf_counter() - t, 1)
    rows: dict[str, list[dict]] = {a: [] for a in arms}
    for row in done:
        rows[row["arm"]].append(row)
    summary, paired = summarise(rows)
    test = DetectionDataset(target, "test", splits=ts, seed=args.split_seed)
    report = {
        "benchmark": "learning_value", "source_scene": SOURCE, "target_scene": TARGET, "scene_sha256": sc["sha"],
        "pitch_scale": args.pitch_scale, "bags": {"source": args.source_bags, "target_labelled": args.target_bags,
                                                  "target_benign": args.benign_bags},
        "target_splits": ts, "split_seed": args.split_seed, "benign_removed_entries": sc["removed"],
        "tip_threats": sc["threats"], "test_images": len(test), "test_objects": len(test.coco_subset()["annotations"]),
        "detector": "atss", "options": common, "iters": args.iters, "seeds": args.seeds, **notes,
        "summary": summary, "paired": paired, "runs": rows, **times,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.markdown:
        print(markdown(report), file=sys.stderr)


if __name__ == "__main__":
    main()
