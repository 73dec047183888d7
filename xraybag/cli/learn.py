"""``xraybag learn``: list, train, evaluate and run learner plugins; run synthesizers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from xraybag.cli.common import (
    ProgressBar,
    check_output_files,
    out_option,
    quiet_option,
    user_errors,
)
from xraybag.errors import XraybagError

RUN_FILE = "learn.json"

opt_option = click.option(
    "--opt", "opts", multiple=True, metavar="KEY=VALUE",
    help="A learner option (repeatable); see 'xraybag learn list'.",
)
device_option = click.option(
    "--device", default="auto", show_default=True,
    help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
)
input_option = click.option(
    "--input", "input_", default=None, type=click.Choice(["rgb", "raw", "clcxray"]),
    help="Image encoding: rgb pseudo-colour, raw low/high channels, or the CLCXray encoding "
    "[train: rgb; eval/predict: as recorded at training].",
)


def _splits(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise XraybagError(f"--splits takes three comma-separated fractions, got {text!r}") from None
    if len(parts) != 3:
        raise XraybagError(f"--splits takes three comma-separated fractions, got {text!r}")
    return parts  # type: ignore[return-value]


splits_option = click.option(
    "--splits", default=None, help="train,val,test fractions of the bags [0.8,0.1,0.1, or as at training]."
)
split_seed_option = click.option(
    "--split-seed", default=None, type=int, help="Seed of the split by bag [0, or as at training]."
)


TRAINED = ("model", "segmenter")  # the kinds that train, evaluate and predict


TRAINABLE = ("trainable synthesizer",)  # synthesizers that 'learn train' trains before they synthesize


def _learner(name: str, kinds: str | tuple[str, ...], opts: dict):
    from xraybag.learners.base import load

    cls = load(name)
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    kind = "trainable synthesizer" if cls.kind == "synthesizer" and getattr(cls, "trainable", False) else cls.kind
    if cls.kind not in kinds and kind not in kinds:
        cmd = "synthesize" if cls.kind == "synthesizer" else "train/eval/predict"
        raise XraybagError(f"learner {name!r} is a {cls.kind}; use 'xraybag learn {cmd}'")
    return cls(**opts)


def _dataset(learner, data, split: str, input_: str | None, splits, seed: int):
    """The split of ``data`` as ``learner`` reads it: a :class:`SegmentationDataset` (masks, high
    and low channels as its ``channels`` option says) for a segmenter, else a DetectionDataset."""
    if learner.kind == "segmenter":
        from xraybag.learners.seg_data import SegmentationDataset

        if input_ is not None:
            raise XraybagError(f"--input {input_} is for detectors; a segmenter reads the channels its 'channels' "
                               "option names (--opt channels=raw|pseudo_colour|auto)")
        return SegmentationDataset(data, split=split, channels=str(learner.config.get("channels", "auto")),
                                   splits=splits, seed=seed, masks=str(learner.config.get("masks", "annotations")))
    from xraybag.learners.data import DetectionDataset

    _check_input(learner, input_ or "rgb")
    return DetectionDataset(data, split=split, input=input_ or "rgb", splits=splits, seed=seed)


def _run_record(weights: Path) -> dict:
    """What ``learn train`` recorded beside the weights (empty if nothing)."""
    path = Path(weights).parent / RUN_FILE
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _setup(name, weights, data, split, input_, splits, split_seed, opts):
    """Learner, dataset and run record for eval/predict (options as at training unless given)."""
    from xraybag.learners.base import parse_opts

    weights = Path(weights)
    if not weights.exists():
        raise XraybagError("weights file does not exist", str(weights))
    rec = _run_record(weights)
    if rec.get("learner") not in (None, name):
        raise XraybagError(f"these weights were trained by learner {rec['learner']!r}, not {name!r}", str(weights))
    merged = dict(rec.get("opts", {})) | parse_opts(opts)
    learner = _learner(name, TRAINED, merged)
    learner.check()
    input_ = input_ or rec.get("input") or (None if learner.kind == "segmenter" else "rgb")
    ds = _dataset(
        learner, data, split, input_,
        splits=_splits(splits) if splits else tuple(rec.get("splits", (0.8, 0.1, 0.1))),
        seed=split_seed if split_seed is not None else int(rec.get("split_seed", 0)),
    )
    if len(ds) == 0:
        raise XraybagError(f"split {split!r} has no images (use --split or --splits)", str(data))
    return learner, ds, weights


def _predict(learner, weights: Path, ds, device: str, quiet: bool, prompts: list | None = None) -> list[dict]:
    """The learner's COCO results on ``ds`` (a segmenter's for ``prompts``, or the clicks it makes
    itself on every object when there are none), with a bar of the images it has loaded (on stderr)."""
    from xraybag.learners.base import resolve_device
    from xraybag.learners.metrics import load_results
    from xraybag.learners.seg_metrics import load_mask_results

    seen: set = set()
    with ProgressBar(quiet, "image", desc="predict") as bar:
        def on_load(im: dict) -> None:
            seen.add(im["id"])
            bar(len(seen), len(ds))

        ds.on_load = on_load
        bar(0, len(ds))
        try:
            if learner.kind == "segmenter":
                results = learner.predict(weights, ds, prompts=prompts or None, device=resolve_device(device))
            else:
                results = learner.predict(weights, ds, device=resolve_device(device))
        finally:
            ds.on_load = None
        bar(len(ds), len(ds))  # a learner may score from the records alone, without loading pixels
    if learner.kind == "segmenter":
        if prompts and len(results) != len(prompts):
            raise XraybagError(f"learner {learner.name!r} returned {len(results)} masks for {len(prompts)} prompts")
        # checked as COCO mask results; a click that names no class keeps category_id null
        kept = load_mask_results([dict(r, category_id=0) if r.get("category_id") is None else r for r in results])
        return [dict(k, category_id=r.get("category_id"), **({"bbox": [float(v) for v in r["bbox"]]} if "bbox" in r else {}))
                for k, r in zip(kept, results)]
    return load_results(results)


def _check_input(learner, input_: str) -> None:
    if input_ not in learner.inputs:
        raise XraybagError(f"learner {learner.name!r} takes input {', '.join(learner.inputs)}, not {input_!r}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def learn() -> None:
    """Learners: train, evaluate and run detectors and segmenters; synthesize datasets (plugins in
    the 'xraybag.learners' entry-point group)."""


@learn.command("list")
@user_errors
def list_learners() -> None:
    """List the installed learners with their options."""
    from xraybag.learners.base import available, load

    eps = available()
    if not eps:
        click.echo("no learners installed")
        return
    for name, ep in eps.items():
        try:
            cls = load(name)
        except XraybagError as e:
            click.echo(f"{name}  (unavailable: {e.message})")
            continue
        click.echo(f"{name}  [{cls.kind}]  {cls.description}".rstrip())
        for key, (typ, default, help_) in cls.options().items():
            tname = getattr(typ, "__name__", str(typ))
            click.echo(f"    {key} ({tname}, default {default!r}): {help_}")


@learn.command()
@click.argument("name")
@click.option("--data", required=True, multiple=True, type=click.Path(),
              help="Dataset folder (xraybag render output). Repeatable for a model (detector): the train "
              "splits of all are joined, categories matched by name to the first's.")
@click.option("--target", default=None, type=click.Path(),
              help="Trainable synthesizers that learn another set's look (cyclegan): that image set (dataset or image folder).")
@out_option("Run folder (weights, checkpoint, log).", required=True)
@input_option
@device_option
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@splits_option
@split_seed_option
@opt_option
@quiet_option
@user_errors
def train(name, data, target, out, input_, device, resume, splits, split_seed, opts, quiet):
    """Train model or segmenter NAME on the train split of --data; the weights go into --out.
    A trainable synthesizer learns from all of --data instead (cyclegan: and --target; xsyn: --data's train split)."""
    from xraybag.learners.base import parse_opts, resolve_device

    out = Path(out)
    parsed = parse_opts(opts)
    rec = _run_record(out / RUN_FILE) if resume else {}
    if resume and rec:
        if rec.get("learner") not in (None, name):
            raise XraybagError(f"this run was trained by learner {rec['learner']!r}, not {name!r}", str(out))
        parsed = dict(rec.get("opts", {})) | parsed
        input_ = input_ or rec.get("input")
        splits = splits or ",".join(str(s) for s in (rec.get("splits") or ())) or None
        split_seed = split_seed if split_seed is not None else rec.get("split_seed")
        target = target or rec.get("target")
    learner = _learner(name, TRAINED + TRAINABLE, parsed)
    learner.check()
    datasets, data = tuple(data), data[0]
    if len(datasets) > 1 and learner.kind != "model":
        raise XraybagError(f"several --data are for models (detectors); {name!r} is a "
                           f"{'trainable synthesizer' if learner.kind == 'synthesizer' else learner.kind} "
                           "and takes one")
    dev = resolve_device(device)
    if learner.kind == "synthesizer":  # learns from --data (and --target's look, when it needs one); no splits
        if target is None and getattr(learner, "needs_target", True):
            raise XraybagError(f"learner {name!r} needs --target (the image set whose look it learns)")
        if target is not None and not getattr(learner, "needs_target", True):
            raise XraybagError(f"learner {name!r} learns from --data alone; --target is for synthesizers that "
                               "learn another set's look (cyclegan)")
        if input_ or splits or split_seed is not None:
            raise XraybagError(f"--input, --splits and --split-seed are for models and segmenters, not {name!r}")
        fr, seed = None, None

        def run_training():
            return learner.train(Path(data), Path(target) if target is not None else None, out, device=dev,
                                 resume=resume, progress=not quiet)
    else:
        if target is not None:
            raise XraybagError(f"--target is for trainable synthesizers; {name!r} is a {learner.kind}")
        if learner.kind == "model":
            input_ = input_ or "rgb"
        fr = _splits(splits) if splits else (0.8, 0.1, 0.1)
        seed = int(split_seed) if split_seed is not None else 0
        train_ds, val_ds = _joined(learner, datasets, input_, fr, seed)
        if learner.kind == "segmenter" and not quiet:
            click.echo(f"train split: {train_ds.cleaning_report()}", err=True)

        def run_training():
            return learner.train(train_ds, out, val=val_ds if len(val_ds) else None, device=dev, resume=resume,
                                 progress=not quiet)
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "learner": name,
        "opts": {k: v for k, v in parsed.items()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in learner.config.items()},
        "input": input_,
        "data": str(Path(data).resolve()),
        "splits": list(fr) if fr else None,
        "split_seed": seed,
        "device": dev,
    }
    if len(datasets) > 1:
        record["datasets"] = [str(Path(d).resolve()) for d in datasets]
    if target is not None:
        record["target"] = str(Path(target).resolve())
    had_record = (out / RUN_FILE).exists()
    old_record = (out / RUN_FILE).read_text() if had_record else None
    _write_json(out / RUN_FILE, record)
    try:
        weights = run_training()
    except XraybagError:  # refused before it trained: leave no run folder behind, or the old record
        if old_record is not None:
            (out / RUN_FILE).write_text(old_record)
        elif not any(p.name != RUN_FILE for p in out.iterdir()):
            (out / RUN_FILE).unlink()
            if fresh:
                out.rmdir()
        raise
    _write_json(out / RUN_FILE, record | {"weights": str(Path(weights).name)})
    click.echo(str(weights))


def _joined(learner, datasets, input_, fr, seed):
    """The train and val splits of ``datasets`` (one, or several joined for a model), checked."""
    from xraybag.learners.data import ConcatDetectionDataset

    trains, vals = [], []
    for d in datasets:
        train_ds = _dataset(learner, d, "train", input_, fr, seed)
        if len(train_ds) == 0:
            raise XraybagError("the train split has no images", str(d))
        trains.append(train_ds)
        vals.append(_dataset(learner, d, "val", input_, fr, seed))
    if len(datasets) == 1:
        return trains[0], vals[0]
    vals = [v for v in vals if len(v)]
    return ConcatDetectionDataset(trains), ConcatDetectionDataset(vals) if vals else []


@learn.command("eval")
@click.argument("name")
@click.option("--weights", required=True, type=click.Path(), help="Weights file written by 'learn train'.")
@click.option("--data", required=True, type=click.Path(), help="Dataset folder.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test", "all"]))
@out_option("Output folder: metrics.json and results.json [WEIGHTS_DIR/eval_SPLIT].")
@input_option
@device_option
@splits_option
@split_seed_option
@opt_option
@quiet_option
@user_errors
def evaluate(name, weights, data, split, out, input_, device, splits, split_seed, opts, quiet):
    """Predict on a split of --data with model or segmenter NAME and score it: COCO box metrics
    (pycocotools) for a detector; mIoU and Dice per class and per difficulty, and COCO segm mAP,
    for a segmenter (a promptable one gets one click inside each object)."""
    from xraybag.learners.metrics import coco_metrics
    from xraybag.learners.seg_metrics import segmentation_metrics

    learner, ds, weights = _setup(name, weights, data, split, input_, splits, split_seed, opts)
    folder = Path(out) if out else weights.parent / f"eval_{split}"
    check_output_files(folder / "metrics.json")  # the default folder too, before predicting
    results = _predict(learner, weights, ds, device, quiet)
    metrics_path, results_path = folder / "metrics.json", folder / "results.json"
    _write_json(results_path, results)
    if learner.kind == "segmenter":
        metrics = segmentation_metrics(ds.coco_subset(), results_path)
        head = {"channels": ds.channels, "cleaning": ds.cleaning_report()}
    else:
        metrics = coco_metrics(ds.coco_subset(), results_path)
        head = {"input": ds.input}
    metrics = {"learner": name, "weights": str(weights), "data": str(data), "split": split} | head | metrics
    _write_json(metrics_path, metrics)
    click.echo(json.dumps(metrics, indent=1))


@learn.command()
@click.argument("name")
@click.option("--weights", required=True, type=click.Path(), help="Weights file written by 'learn train'.")
@click.option("--data", required=True, type=click.Path(), help="Dataset folder.")
@out_option("Output folder: results.json and images/.", required=True)
@click.option("--split", default="all", show_default=True, type=click.Choice(["train", "val", "test", "all"]))
@click.option("--score-thr", default=0.3, show_default=True, type=float, help="Draw detections scoring at least this.")
@click.option("--image", default=None, help="Segmenters: the image --points and --box are on (file name or id).")
@click.option("--points", "points", multiple=True, metavar="X,Y",
              help="Segmenters: a click on an object, in pixels of --image (repeatable: one object each).")
@click.option("--box", "boxes", multiple=True, metavar="X1,Y1,X2,Y2",
              help="Segmenters: a box around an object, in pixels of --image (repeatable: one object each).")
@click.option("--prompts", "prompts_file", default=None, type=click.Path(dir_okay=False),
              help="Segmenters: a JSON file of prompts ([{image, points, labels, box, category}, ...]).")
@input_option
@device_option
@splits_option
@split_seed_option
@opt_option
@quiet_option
@user_errors
def predict(name, weights, data, out, split, score_thr, image, points, boxes, prompts_file, input_, device,
            splits, split_seed, opts, quiet):
    """Run model NAME on --data: OUT/results.json (COCO results, every score) and OUT/images/
    (the pseudo-colour images with the detections scoring >= --score-thr drawn).

    A segmenter writes OUT/results.json (RLE masks), OUT/masks/<image>_<k>.png and OUT/images/
    (the masks over the image, with the prompts). A promptable one segments the object at each
    --points click or --box on --image, or each prompt of --prompts; without prompts it clicks
    inside every annotated object of the split."""
    from xraybag.cli.seg import cli_prompts, file_prompts, write_masks

    learner, ds, weights = _setup(name, weights, data, split, input_, splits, split_seed, opts)
    asked = bool(points or boxes or prompts_file or image)
    if learner.kind != "segmenter" or not getattr(learner, "promptable", False):
        if asked:
            raise XraybagError(f"--image, --points, --box and --prompts are for promptable segmenters; "
                               f"{name!r} is a {learner.kind}")
    prompts = cli_prompts(ds, image, points, boxes) + (file_prompts(ds, prompts_file) if prompts_file else [])
    if image and not prompts:
        raise XraybagError("--image needs --points or --box")
    results = _predict(learner, weights, ds, device, quiet, prompts)
    out = Path(out)
    if learner.kind == "segmenter":
        _write_json(out / "results.json", results)
        n = write_masks(ds, results, prompts or None, out)
        click.echo(f"{n} masks on {len({r['image_id'] for r in results})} images in {out}")
        return
    out = Path(out)
    _write_json(out / "results.json", results)
    n = draw_results(ds, results, out / "images", score_thr)
    click.echo(f"{len(results)} detections on {len(ds)} images ({n} drawn at score >= {score_thr}) in {out}")


def draw_results(ds, results: list[dict], out: Path, score_thr: float) -> int:
    """Draw ``results`` on the pseudo-colour images of ``ds`` into ``out``; return boxes drawn."""
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    names = {c["id"]: str(c.get("name", c["id"])) for c in ds.categories}
    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r["score"] >= score_thr:
            by_image.setdefault(r["image_id"], []).append(r)
    palette = [(255, 0, 0), (0, 160, 255), (255, 200, 0), (0, 200, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0)]
    drawn = 0
    for im in ds.images:
        with Image.open(ds.root / im["file_name"]) as src:
            img = src.convert("RGB")
        draw = ImageDraw.Draw(img)
        for r in sorted(by_image.get(im["id"], []), key=lambda r: r["score"]):
            x, y, w, h = r["bbox"]
            colour = palette[r["category_id"] % len(palette)]
            draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
            label = f"{names.get(r['category_id'], r['category_id'])} {r['score']:.2f}"
            tx, ty = x, max(0.0, y - 12)
            bb = draw.textbbox((tx, ty), label)
            draw.rectangle(bb, fill=colour)
            draw.text((tx, ty), label, fill=(0, 0, 0))
            drawn += 1
        tmp = out / f".{Path(im['file_name']).name}.tmp"
        img.save(tmp, format="PNG")
        os.replace(tmp, out / Path(im["file_name"]).name)
    return drawn


@learn.command()
@click.argument("name")
@click.option("--data", required=True, type=click.Path(), help="Input dataset folder.")
@out_option("Output dataset folder.", required=True)
@opt_option
@user_errors
def synthesize(name, data, out, opts):
    """Run synthesizer NAME on dataset --data, writing a dataset in the same layout to --out."""
    from xraybag.learners.base import parse_opts
    from xraybag.learners.data import DetectionDataset

    learner = _learner(name, ("synthesizer",), parse_opts(opts))
    learner.check()
    learner.check_data(Path(data))  # check the input first
    if Path(out).resolve() == Path(data).resolve():
        raise XraybagError("--out must differ from --data", str(out))
    result = learner.synthesize(Path(data), Path(out))
    written = DetectionDataset(result or out, split="all")  # and what the synthesizer wrote
    click.echo(f"{len(written)} images, {len(written.coco['annotations'])} annotations in {written.root}")
