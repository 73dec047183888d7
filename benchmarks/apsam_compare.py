"""APSAM's ablation on one generated dataset (the XSeg paper's Table 4, on our data), and APSAM fed
the detector's true high/low channels against the max/min of the pseudo-colour image (the paper's
eq. 4, all a public dataset allows), printed as JSON.

Variants (each trained with the same seed, schedule and train split, then given one click inside
every object of the held-out test split, the point farthest from its outline, and scored):

- ``sam_finetune``: SAM + adapters, random point prompts (the paper's baseline);
- ``apsam_wo_eae``: APSAM without the Energy-Aware Encoder (APG only);
- ``apsam_wo_apg``: APSAM without the Adaptive Point Generator (EAE only);
- ``apsam``: APSAM, EAE and APG, on the raw high/low channels;
- ``apsam_maxmin``: APSAM with the high/low images taken as the max/min of the pseudo-colour image.

For each of ``--seeds`` it reports mIoU and mDice (means over classes of the per-object IoU and
Dice), the plain means over objects, the same on the ``hidden`` objects, the median seconds per
training iteration and the training time; then mean +- std over the seeds, and paired differences
(same seed, same data order) against ``sam_finetune`` and of ``apsam`` against ``apsam_maxmin``.

    python benchmarks/apsam_compare.py --data data/xseg --out runs/apsam --seeds 0 1 2 --jobs 2 \\
        --opt epochs=6

Runs that finished (``--out``/VARIANT_seedN/metrics.json) are read back, not retrained, so a call
with all the seeds summarises runs made by earlier calls. ``--data`` is any dataset in the layout
with masks; when the folder has no ``annotations.json`` yet, ``--bags`` bags of the built-in
``xseg`` scene (or ``--scene``) are rendered into it first. ``--jobs`` runs that many trainings
side by side, each on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

VARIANTS = {
    "sam_finetune": ("sam_finetune", {}),
    "apsam_wo_eae": ("apsam", {"eae": "false"}),
    "apsam_wo_apg": ("apsam", {"apg": "false"}),
    "apsam": ("apsam", {"channels": "raw"}),
    "apsam_maxmin": ("apsam", {"channels": "pseudo_colour"}),
}
KEYS = ("mIoU", "mDice", "IoU_objects", "Dice_objects", "hidden_mIoU", "hidden_mDice", "segm_mAP50",
        "sec_per_iter", "train_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--opt", action="append", default=[], help="key=value for every variant (e.g. epochs=6)")
    ap.add_argument("--splits", default="0.7,0.1,0.2", help="train,val,test fractions of the bags")
    ap.add_argument("--jobs", type=int, default=1, help="trainings side by side (one thread each)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scene", default="xseg", help="scene rendered into --data when it is empty")
    ap.add_argument("--bags", type=int, default=90)
    ap.add_argument("--workers", type=int, default=2, help="render worker processes")
    ap.add_argument("--time-iters", type=int, default=0, metavar="N",
                    help="only time N training iterations of every variant, taking turns on the same batches "
                         "in one process on one thread (ratios that hold under any load), and print them")
    args = ap.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"apsam_compare: unknown variant(s) {unknown} (known: {', '.join(VARIANTS)})")
    if not (args.data / "annotations.json").exists():
        from xraybag.engine.output.dataset import render_dataset

        t0 = time.perf_counter()
        render_dataset(args.scene, args.bags, args.data, workers=args.workers)
        print(f"rendered {args.bags} bags of {args.scene} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    from xraybag.learners.base import parse_opts

    common = parse_opts(args.opt)
    splits = tuple(float(v) for v in args.splits.split(","))
    if args.time_iters:
        json.dump(time_iterations(names, common, args.data, splits, args.time_iters), sys.stdout, indent=1)
        print()
        return
    tasks = [(n, s) for s in args.seeds for n in names]  # seed-major: paired runs share the load
    jobs = [(n, s, str(args.data), str(args.out), common, splits, args.device) for n, s in tasks]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs, initializer=_one_thread) as pool:
            rows_list = list(pool.map(_run, jobs))
    else:
        rows_list = [_run(j) for j in jobs]
    rows: dict[str, list[dict]] = {}
    for (name, _seed), row in zip(tasks, rows_list):
        rows.setdefault(name, []).append(row)

    summary = {name: {k: _stats([r.get(k) for r in rs]) for k in KEYS} for name, rs in rows.items()}
    paired = {}
    for a, b in [(n, "sam_finetune") for n in names if n != "sam_finetune"] + [("apsam", "apsam_maxmin")]:
        if a in rows and b in rows:
            base = {r["seed"]: r for r in rows[b]}
            paired[f"{a} - {b}"] = {k: _stats([r[k] - base[r["seed"]][k] for r in rows[a] if r["seed"] in base])
                                    for k in ("mIoU", "mDice", "hidden_mIoU")}
    first = rows[names[0]][0]
    json.dump({"benchmark": "apsam_compare", "data": str(args.data), "splits": list(splits),
               "train_images": first["train_images"], "test_images": first["test_images"],
               "test_objects": first["test_objects"], "options": common, "seeds": args.seeds,
               "summary": summary, "paired": paired, "runs": rows}, sys.stdout, indent=1)
    print()


def time_iterations(names: list[str], common: dict, data: Path, splits, n: int, seed: int = 0) -> dict:
    """Seconds per training step (forward with APG's second pass where on, backward, AdamW step) of
    each variant on the same ``n`` batches (after 2 warm-up ones), the variants taking turns batch by
    batch on one thread; the data loading (the same for all) is left out. Medians and ratios to
    ``sam_finetune``."""
    import torch

    from xraybag.learners.apsam.learner import with_channels
    from xraybag.learners.apsam.samples import PromptSamples, collate
    from xraybag.learners.base import load
    from xraybag.learners.seg_data import SegmentationDataset

    torch.set_num_threads(1)
    train = SegmentationDataset(data, "train", splits=splits)
    nets, batches = {}, {}
    for name in names:
        learner_name, extra = VARIANTS[name]
        model = load(learner_name)(**(dict(common) | extra | {"seed": str(seed)}))
        net, _info = model.build()
        net.train()
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        ds = with_channels(train, model.channels_option())
        samples = PromptSamples(ds, net.cfg.image_size, int(model.max_objects), seed=seed, crop=str(model.crop))
        batches[name] = [collate([samples[2 * i], samples[2 * i + 1]]) for i in range(n + 2)]
        nets[name] = (net, opt)
    secs: dict[str, list[float]] = {k: [] for k in nets}
    for i in range(n + 2):
        for name, (net, opt) in nets.items():
            images, targets = batches[name][i]
            t = time.perf_counter()
            loss = sum(net(images, targets).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:
                secs[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in secs.items()}
    base = med.get("sam_finetune")
    return {"benchmark": "apsam_compare.time_iters", "iterations": n, "batch_size": 2, "options": common,
            "threads": torch.get_num_threads(), "sec_per_iter_median": {k: round(v, 4) for k, v in med.items()},
            "ratio_to_sam_finetune": {k: round(v / base, 3) for k, v in med.items()} if base else None}


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _run(job) -> dict:
    """Train (unless done) and score one variant with one seed; the row of metrics."""
    name, seed, data, out, common, splits, device = job
    run = Path(out) / f"{name}_seed{seed}"
    done = run / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    from xraybag.learners.base import load
    from xraybag.learners.seg_data import SegmentationDataset
    from xraybag.learners.seg_metrics import segmentation_metrics
    from xraybag.learners.training import read_log

    learner_name, extra = VARIANTS[name]
    model = load(learner_name)(**(dict(common) | extra | {"seed": str(seed)}))
    channels = str(model.config.get("channels", "auto"))
    train = SegmentationDataset(data, "train", channels=channels, splits=splits)
    test = SegmentationDataset(data, "test", channels=channels, splits=splits)
    t0 = time.perf_counter()
    weights = model.train(train, run, device=device, resume=(run / "checkpoint.pt").exists(), progress=False)
    train_s = time.perf_counter() - t0
    results = model.predict(weights, test, device=device)
    (run / "results_test.json").write_text(json.dumps(results))
    m = segmentation_metrics(test.coco_subset(), run / "results_test.json")
    hidden = m["per_difficulty"].get("hidden") or {}
    secs = [r["sec"] for r in read_log(run) if "sec" in r]
    row = {"variant": name, "seed": seed, "mIoU": m["mIoU"], "mDice": m["mDice"],
           "IoU_objects": m["IoU_objects"], "Dice_objects": m["Dice_objects"],
           "hidden_mIoU": hidden.get("mIoU"), "hidden_mDice": hidden.get("mDice"),
           "segm_mAP50": m["coco_segm"].get("mAP50"),
           "sec_per_iter": round(statistics.median(secs), 4) if secs else None,
           "train_s": round(train_s, 1), "train_images": len(train), "test_images": len(test),
           "test_objects": m["objects"], "per_difficulty": m["per_difficulty"], "pid": os.getpid()}
    done.write_text(json.dumps(row, indent=1))
    print(f"{name} seed {seed}: mIoU {row['mIoU']} mDice {row['mDice']} ({row['train_s']} s)", file=sys.stderr)
    return row


def _stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"mean": round(statistics.fmean(vals), 4), "std": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0}


if __name__ == "__main__":
    main()
