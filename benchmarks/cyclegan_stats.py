"""Does a trained Cycle-GAN move the source's image statistics towards the target's?

Translates ``--limit`` images of the source (every ``--every``-th of its pseudo-colour images) with
a ``weights.pt`` of ``xraybag learn train cyclegan``, the way ``learn synthesize cyclegan`` does
(the generator of ``--direction`` in windows of ``--tile`` px, Hann-blended; -1: the training
crop's size; weights trained with ``signals=raw`` translate each image's raw low/high and colour
them by the target's scanner, as ``synthesize`` does, so ``--source`` must then be the dataset), and
prints one JSON object with, for the source, the translated images, the target
and (``--reference``) any other image set, the statistics of ``image_stats.py``:

- shares of orange / green / blue bag pixels (fixed hue bands 15-60, 60-170, 170-290 degrees),
  the uncoloured share (saturation <= 0.15) and the mean saturation of bag pixels;
- the median hue of each band's pixels, widened to the bands of the colour classes of either
  scanner (0-60, 60-170, 170-360 degrees), since a colour table that puts organics near 15
  degrees is cut in two by the fixed band;
- the belt colour (median of each image's border pixels, mean over the images);
- the KID to the target (EfficientNet-Lite0 features; mean +- std over subsets).

``towards`` says, per statistic, whether the translated value lies nearer the target's than the
source's does. ``--reference`` is meant for the source's own bags rendered by the target's scanner
(``benchmarks/rescan.py``): what a perfect translation would give. When it holds every translated
image's bag and view (rescan.py's ``<bag>_<stem>.png`` names), only those are scored
(``reference_paired``) and ``towards_reference`` says, per statistic, whether the translated
value lies nearer the reference's than the source's does: unlike ``towards``, it is not moved by
the two sets holding different bags (the target's bags differ in contents, so no translation
that keeps the contents reaches the target's shares).

The target's statistics and KID are taken on the target's images *of the views the scored source
images hold* (``target_views``) when both sets are xraybag datasets (each image's ``view`` in
``annotations.json``): a side view and a top view of the same bag differ far more than two
scanners do (the top view holds more stacked, green material), so a side-view-only source scored
against both views of the target would read a difference of views as one of scanners.
``--views all`` takes every target image (``target_all_views`` is reported beside it either way,
without KID). Bad input: one-line error, exit 2.

    python benchmarks/cyclegan_stats.py --weights RUN/weights.pt --source SRC --target TGT \\
        [--reference SRC_ON_TGT] [--limit 40] [--every 4] [--views matched|all] [--kid-subsets 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_stats import classes_of, image_paths, kid_between, stats

from xraybag.errors import XraybagError

#: hue bands (degrees) for the median hues: organics, inorganics, metal, wide enough for both tables
WIDE_BANDS = {"orange": (0.0, 60.0), "green": (60.0, 170.0), "blue": (170.0, 360.0)}


def hue_and_belt(paths: list[Path]) -> dict:
    """Median hue of the coloured bag pixels in each of :data:`WIDE_BANDS`, and the mean belt colour."""
    from xraybag.learners.cyclegan.trainer import background_colour

    hues = {k: [] for k in WIDE_BANDS}
    belts = []
    for p in paths:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        bag, _, sat, _ = classes_of(rgb)
        hue = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.float32)[..., 0] * 360.0 / 255.0
        coloured = bag & (sat > 0.15)
        for k, (lo, hi) in WIDE_BANDS.items():
            hues[k].append(hue[coloured & (hue >= lo) & (hue < hi)])
        belts.append(background_colour(rgb.astype(np.float32)))
    return {"median_hue": {k: round(float(np.median(np.concatenate(v))), 1) if sum(map(len, v)) else None
                           for k, v in hues.items()},
            "belt_rgb": [round(float(c), 1) for c in np.mean(belts, axis=0)]}


def summary(paths: list[Path], target: list[Path] | None, subsets: int, threads: int) -> dict:
    s = stats(paths)
    out = {"images": s["images"], "share": s["share"], "share_uncoloured": s["share_uncoloured"],
           "mean_saturation": s["mean_saturation"], **hue_and_belt(paths)}
    if target is not None:
        k = kid_between(paths, target, subsets, 1000, threads)
        out["kid_to_target"] = {"mean": k["mean"], "std": k["std"]}
    return out


def scalars(s: dict) -> dict[str, float]:
    """The statistics compared in ``towards``."""
    out = {f"share_{k}": v for k, v in s["share"].items()}
    out.update(share_uncoloured=s["share_uncoloured"], mean_saturation=s["mean_saturation"])
    out.update({f"median_hue_{k}": v for k, v in s["median_hue"].items() if v is not None})
    out.update({f"belt_{c}": v for c, v in zip("rgb", s["belt_rgb"])})
    return out


def translate_set(weights: Path, paths: list[Path], out: Path, direction: str, tile: int, threads: int,
                  pixel_mm: float | None = None, identity: bool = False, detector: str = "source",
                  seed: int = 0) -> list[Path]:
    """``paths`` translated as ``learn synthesize cyclegan`` translates them (resampled to the pixel
    size the generators learnt at, from ``pixel_mm``, and back); ``identity``: through the same
    path with the generator replaced by the identity; ``detector``, ``seed``: the synthesize
    options (signals=raw weights)."""
    import torch

    from xraybag.learners.cyclegan.images import read_image, rescale, resize
    from xraybag.learners.cyclegan.networks import generator_for
    from xraybag.learners.cyclegan.synth import (
        DIRECTIONS,
        CycleGANSynthesizer,
        translate_tiled,
    )
    from xraybag.learners.cyclegan.trainer import load_checkpoint

    torch.set_num_threads(threads)
    state = load_checkpoint(weights, "weights file")
    gen = generator_for(state["config"])
    gen.load_state_dict(state[DIRECTIONS[direction]])
    gen.eval()
    if identity:
        gen = torch.nn.Identity()
    tile = int(state["config"]["size"]) if tile < 0 else tile
    scale = CycleGANSynthesizer(direction=direction).input_scale(state["config"], {"pixel_mm": pixel_mm})
    if state["config"].get("signals", "rgb") == "raw":  # the images' raw views, coloured by the other scanner
        return translate_raw_set(gen, state["config"], paths, out, direction, tile, scale, detector, seed)
    if detector != "source":
        raise ValueError("--detector target: only for weights trained with signals=raw")
    done = []
    for p in paths:
        img = read_image(p)
        if img.shape[2] != int(state["config"]["channels"]):
            raise ValueError(f"{p}: {img.shape[2]} channels; the weights translate {state['config']['channels']}")
        with torch.no_grad():
            y = resize(translate_tiled(gen, rescale(img, scale), torch.device("cpu"), tile), *img.shape[:2])
        q = out / p.name
        Image.fromarray(np.round(np.clip(y, 0, 1) * 255).astype(np.uint8).squeeze()).save(q)
        done.append(q)
    return done


def translate_raw_set(gen, cfg: dict, paths: list[Path], out: Path, direction: str, tile: int,
                      scale: float, detector: str = "source", seed: int = 0) -> list[Path]:
    """``paths`` (pseudo-colour images of an xraybag dataset) translated through their raw views
    (weights trained with ``signals=raw``), as ``learn synthesize cyclegan`` writes them (with
    options ``detector`` and ``seed``: the same noise for the same image)."""
    import numpy as np
    import torch

    from xraybag.learners.cyclegan.rawsignals import check_units, raw_views
    from xraybag.learners.cyclegan.synth import translate_raw_view

    root = paths[0].parent.parent
    check_units(cfg, "--weights")
    views, _ = raw_views(root, "--source")
    index = {Path(v.file_name).name: k for k, v in enumerate(views)}
    done = []
    for p in paths:
        if p.name not in index:
            raise ValueError(f"{p}: not an image of {root / 'annotations.json'} (signals=raw needs the dataset)")
        k = index[p.name]
        files, _ = translate_raw_view(gen, views[k], cfg, direction, torch.device("cpu"), tile, scale, detector,
                                      np.random.default_rng([seed, k]))
        (out / p.name).write_bytes(files["rgb"])
        done.append(out / p.name)
    return done


def reference_images(root: Path, source: list[Path]) -> tuple[list[Path], bool]:
    """The images of ``root``; when it holds ``rescan.py``'s ``<bag>_<stem>.png`` for every image of
    ``source``, those only, in ``source``'s order, and True (paired: the same bags and views)."""
    paths = image_paths(root, 10**9)
    from rescan import source_name

    by_stem = {source_name(p): p for p in paths}
    if all(p.name in by_stem for p in source):
        return [by_stem[p.name] for p in source], True
    return paths, False


def views_of(root: Path) -> dict[str, str] | None:
    """Image file name -> view, from an xraybag dataset's ``annotations.json``; None for a plain
    folder or a dataset whose images do not all name a view."""
    ann = root / "annotations.json"
    if not ann.is_file():
        return None
    coco = json.loads(ann.read_text())
    images = coco.get("images", []) if isinstance(coco, dict) else []
    out = {}
    for im in images:
        if not isinstance(im, dict) or not im.get("file_name") or not im.get("view"):
            return None
        out[Path(str(im["file_name"])).name] = str(im["view"])
    return out


def matched_target(source: list[Path], source_root: Path, target: list[Path], target_root: Path,
                   views: str = "matched") -> tuple[list[Path], dict[str, int] | None]:
    """The target images to compare the scored ``source`` images with: with ``views="matched"``
    and both sets datasets that name their views, the target's images of the views the source
    images hold, and those views' counts among the scored images; else every target image and
    None."""
    if views == "all":
        return target, None
    src_views, tgt_views = views_of(source_root), views_of(target_root)
    if src_views is None or tgt_views is None:
        return target, None
    if any(p.name not in src_views for p in source):
        return target, None
    held = Counter(src_views[p.name] for p in source)
    kept = [p for p in target if tgt_views.get(p.name) in held]
    if not kept:
        raise ValueError(f"{target_root}: no image of the scored views ({', '.join(sorted(held))})")
    return kept, dict(sorted(held.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--source", type=Path, required=True, help="dataset or image folder to translate")
    ap.add_argument("--target", type=Path, required=True, help="the target's images (dataset or folder)")
    ap.add_argument("--reference", type=Path, default=None, help="another set to score beside them")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--every", type=int, default=4, help="take every N-th source image")
    ap.add_argument("--views", default="matched", choices=("matched", "all"),
                    help="matched: compare with the target's images of the scored images' views (datasets)")
    ap.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"))
    ap.add_argument("--tile", type=int, default=-1, help="translation windows (px; -1: the training crop)")
    ap.add_argument("--kid-subsets", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--identity", action="store_true",
                    help="replace the generator by the identity (for signals=raw weights: the source's signals "
                         "coloured by the target's scanner, untranslated)")
    ap.add_argument("--detector", default="source", choices=("source", "target"),
                    help="signals=raw weights: synthesize's option detector (target: plus the blur and noise the "
                         "target's detector adds)")
    ap.add_argument("--seed", type=int, default=0, help="synthesize's option seed (the noise of --detector target)")
    ap.add_argument("--keep", type=Path, default=None, help="write the translated images here (else a temp folder)")
    a = ap.parse_args()
    try:
        if a.limit < 2 or a.every < 1 or a.kid_subsets < 1 or a.threads < 1:
            raise ValueError("--limit at least 2; --every, --kid-subsets and --threads at least 1")
        if not a.weights.is_file():
            raise ValueError(f"{a.weights}: no such weights file")
        source = image_paths(a.source, 10**9)[:: a.every][: a.limit]
        target_all = image_paths(a.target, 10**9)
        target, scored_views = matched_target(source, a.source, target_all, a.target, a.views)
        if a.keep is not None:
            a.keep.mkdir(parents=True, exist_ok=True)
        folder = a.keep or Path(tempfile.mkdtemp(prefix="xraybag-cgstats-"))
        from xraybag.learners.cyclegan.images import pixel_size

        translated = translate_set(a.weights, source, folder, a.direction, a.tile, a.threads, pixel_size(a.source),
                                   a.identity, a.detector, a.seed)
        sets = {"source": source, "translated": translated, "target": target}
        paired = False
        if a.reference is not None:
            sets["reference"], paired = reference_images(a.reference, source)
        out = {"weights": str(a.weights), "tile": a.tile, "identity": a.identity, "detector": a.detector,
               "target_views": scored_views,
               **{k: summary(v, target if k != "target" else None, a.kid_subsets, a.threads) for k, v in sets.items()}}
        if len(target) != len(target_all):
            out["target_all_views"] = summary(target_all, None, a.kid_subsets, a.threads)
    except (ValueError, OSError, XraybagError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)
    src, tr, tgt = (scalars(out[k]) for k in ("source", "translated", "target"))
    out["towards"] = {k: abs(tr[k] - tgt[k]) < abs(src[k] - tgt[k]) for k in src if k in tr and k in tgt}
    out["kid_towards"] = out["translated"]["kid_to_target"]["mean"] < out["source"]["kid_to_target"]["mean"]
    if a.reference is not None:
        out["reference_paired"] = paired
    if paired:  # the same bags and views: where a perfect translation of these images lands
        ref = scalars(out["reference"])
        out["towards_reference"] = {k: abs(tr[k] - ref[k]) < abs(src[k] - ref[k]) for k in src if k in tr and k in ref}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
