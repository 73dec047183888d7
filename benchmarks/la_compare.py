"""ATSS vs ATSS+LAcls vs ATSS+LAreg on one generated dataset (the comparison of the LA paper's
Tables III and VIII, on our data), printed as JSON.

Every variant is trained with the same seed, schedule and train split, then scored with
pycocotools on the held-out test split, overall and on its overlap-heavy part (objects of
difficulty ``hidden``), for each of ``--seeds``; the mean and standard deviation are reported with
the seconds per training iteration (LA's overhead) and, seeds being paired (variant and baseline
trained with the same seed, data order and flips), the paired differences against ``atss``
(mean +- std of variant - atss over the seeds). All variants use the same regression branch (FCOS
distances on 16 bins), as the paper ran LAcls and LAreg "with the same regression and
classification branches". ``--variants ablation`` adds the rows of the paper's Table VII: LAcls
with the assigned-class term alone (a, b, c = 0.5, 1, 0) and with the misleading-class term alone
(1.5, 0, 1). The LA diagnostics of the last training iterations (``||x_new - x|| / ||x||``) are
reported for each LA run.

    python benchmarks/la_compare.py --data data --out runs --seeds 0 1 2 --opt preset=cpu_small

Runs that finished (``--out``/VARIANT_seedN with its weights) are scored again rather than
retrained, so seeds can be trained in separate processes and summarised by one last call with all
of them. ``--data`` is any dataset in the layout; when the folder has no ``annotations.json`` yet, it is
rendered first from ``--scene`` (a built-in name or a YAML file; ``--bags``, ``--pitch`` mm).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

VARIANTS = {
    "atss": ("atss", {}),
    "atss+LAcls": ("la_atss", {"la_cls": "true", "la_reg": "false"}),
    "atss+LAreg": ("la_atss", {"la_cls": "false", "la_reg": "true"}),
}
ABLATION = {  # Table VII: a, b, c of Eq. 7
    "atss+LAcls(assigned only)": ("la_atss", {"la_cls": "true", "la_reg": "false",
                                              "a": "0.5", "b": "1", "c": "0"}),
    "atss+LAcls(misleading only)": ("la_atss", {"la_cls": "true", "la_reg": "false",
                                                "a": "1.5", "b": "0", "c": "1"}),
}
SAME_BRANCH = {"box_coder": "distance", "reg_bins": "15"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--input", default="rgb")
    ap.add_argument("--opt", action="append", default=[], help="key=value for every variant")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--scene", default="clcxray", help="scene rendered into --data when it is empty")
    ap.add_argument("--bags", type=int, default=400)
    ap.add_argument("--pitch", type=float, default=2.0, help="line-scan pixel pitch (mm) of --scene")
    ap.add_argument("--workers", type=int, default=2, help="render worker processes")
    ap.add_argument("--variants", default="main",
                    help="main (ATSS, +LAcls, +LAreg), ablation (main + Table VII rows) or a "
                         "comma-separated list of variant names")
    ap.add_argument("--time-iters", type=int, default=0, metavar="N",
                    help="only time N training iterations of every variant, round-robin on the same "
                         "batches in one process (ratios that hold under any load), and print them")
    args = ap.parse_args()
    every = VARIANTS | ABLATION
    if args.variants == "main":
        chosen = dict(VARIANTS)
    elif args.variants == "ablation":
        chosen = dict(every)
    else:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [n for n in names if n not in every]
        if unknown:
            sys.exit(f"la_compare: unknown variant(s) {unknown} (known: {', '.join(every)})")
        chosen = {n: every[n] for n in names}
    if not (args.data / "annotations.json").exists():
        render(args.scene, args.bags, args.data, args.pitch, args.workers)

    from xraybag.learners.base import load, parse_opts
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.metrics import coco_metrics
    from xraybag.learners.training import read_log

    common = SAME_BRANCH | parse_opts(args.opt)
    train = DetectionDataset(args.data, "train", input=args.input)
    if args.time_iters:
        json.dump(time_iterations(chosen, common, train, args.time_iters), sys.stdout, indent=1)
        print()
        return
    test = DetectionDataset(args.data, "test", input=args.input)
    rows: dict[str, list[dict]] = {}
    for seed in args.seeds:  # seed-major: a variant and its baseline run under the same load
        for name, (learner, extra) in chosen.items():
            opts = dict(common) | extra | {"seed": str(seed)}
            model = load(learner)(**opts)
            run = args.out / f"{name}_seed{seed}"
            done = run / "train_seconds.txt"   # a finished run is scored again, not retrained
            if done.exists() and (run / "weights.pt").exists():
                weights, train_s = run / "weights.pt", float(done.read_text())
            else:
                t0 = time.perf_counter()
                weights = model.train(train, run, device=args.device,
                                      resume=(run / "checkpoint.pt").exists(), progress=False)
                train_s = time.perf_counter() - t0
                done.write_text(f"{train_s:.1f}\n")
            results = model.predict(weights, test, device=args.device)
            (run / "results_test.json").write_text(json.dumps(results))
            m = coco_metrics(test.coco_subset(), run / "results_test.json")
            hidden = (m.get("per_difficulty") or {}).get("hidden") or {}
            rows.setdefault(name, []).append({
                "seed": seed, "mAP": m["mAP"], "mAP50": m["mAP50"], "mAP75": m["mAP75"],
                "hidden_mAP": hidden.get("mAP"), "hidden_mAP50": hidden.get("mAP50"),
                "sec_per_iter": _median_sec(read_log(run)), "train_s": round(train_s, 1),
                **_last_diagnostics(read_log(run)),
            })
            print(f"{name} seed {seed}: {rows[name][-1]}", file=sys.stderr)

    def stats(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return {"mean": round(statistics.fmean(vals), 4),
                "std": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0}

    keys = ("mAP", "mAP50", "mAP75", "hidden_mAP", "hidden_mAP50", "sec_per_iter", "la_cls_rel",
            "la_reg_rel")
    summary = {name: {k: stats([r.get(k) for r in rs]) for k in keys} for name, rs in rows.items()}
    base = {r["seed"]: r for r in rows.get("atss", [])}
    paired = {}
    for name, rs in rows.items():
        if name == "atss" or not base:
            continue
        paired[name] = {k: stats([r[k] - base[r["seed"]][k] for r in rs if r["seed"] in base
                                  and r[k] is not None and base[r["seed"]][k] is not None])
                        for k in ("mAP", "mAP50", "hidden_mAP", "hidden_mAP50")}
    json.dump({"benchmark": "la_compare", "data": str(args.data), "train_images": len(train),
               "test_images": len(test), "options": common, "seeds": args.seeds,
               "summary": summary, "paired_minus_atss": paired, "runs": rows},
              sys.stdout, indent=1)
    print()


def time_iterations(chosen: dict, common: dict, train, n: int, seed: int = 0) -> dict:
    """Seconds per training iteration (forward, backward, optimizer step) of every variant on the
    same ``n`` batches, the variants taking turns batch by batch; medians and ratios to atss."""
    import torch

    from xraybag.learners.atss import make_optimizer
    from xraybag.learners.base import load
    from xraybag.learners.data import torch_collate
    from xraybag.learners.training import _split_batch

    nets = {}
    for name, (learner, extra) in chosen.items():
        m = load(learner)(**(dict(common) | extra | {"seed": str(seed)}))
        cfg = m.atss_config(train.num_classes, train.num_channels)
        torch.manual_seed(seed)
        net = m.build(cfg)
        net.train()
        nets[name] = (net, make_optimizer(net, cfg))
    loader = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, shuffle=False,
                                         collate_fn=torch_collate)
    batches = [b for _, b in zip(range(n + 2), loader)]
    secs: dict[str, list[float]] = {k: [] for k in nets}
    for i, batch in enumerate(batches):
        images, targets = _split_batch(batch)
        for name, (net, opt) in nets.items():
            t = time.perf_counter()
            loss = sum(net(images, targets).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:  # the first two: allocator and caches warming up
                secs[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in secs.items()}
    base = med.get("atss")
    return {"benchmark": "la_compare.time_iters", "iterations": n, "batch_size": cfg.batch_size,
            "options": common, "threads": torch.get_num_threads(),
            "sec_per_iter_median": {k: round(v, 4) for k, v in med.items()},
            "ratio_to_atss": {k: round(v / base, 3) for k, v in med.items()} if base else None}


def render(scene: str, bags: int, out: Path, pitch: float, workers: int) -> None:
    """Render ``bags`` bags of ``scene`` with every scanner's pitch set to ``pitch`` into ``out``."""
    from ruamel.yaml import YAML

    from xraybag.engine.output.dataset import render_dataset
    from xraybag.scenes.loader import resolve_scene_ref

    yaml = YAML()
    data = yaml.load(resolve_scene_ref(scene).read_text())
    for scanner in data["scanners"]:
        scanner["pitch"] = pitch
    out.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}_scene.yaml"
    with open(path, "w") as f:
        yaml.dump(data, f)
    t0 = time.perf_counter()
    render_dataset(str(path), bags, out, workers=workers)
    print(f"rendered {bags} bags of {scene} at {pitch} mm in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)


def _last_diagnostics(log: list[dict], last: int = 50) -> dict:
    """Mean LA diagnostics of the last ``last`` logged iterations (none for plain ATSS)."""
    recs = [r for r in log if "la_cls_rel" in r or "la_reg_rel" in r][-last:]
    out = {}
    for k in ("la_cls_rel", "la_reg_rel"):
        vals = [r[k] for r in recs if k in r]
        if vals:
            out[k] = round(statistics.fmean(vals), 6)
    return out


def _median_sec(log: list[dict]) -> float | None:
    secs = [r["sec"] for r in log if "sec" in r]
    return round(statistics.median(secs), 4) if secs else None


if __name__ == "__main__":
    main()
