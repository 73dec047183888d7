"""Colour statistics of a dataset's pseudo-colour images, to hold renders beside real scanner images.

For every image (``images/*.png`` of a rendered dataset, or any folder of PNG/JPEG scanner images)
it counts the *bag pixels* (not the white background: the darkest channel under 235 or the
channels more than 20 apart) and reports over all images:

- the share of bag pixels that are orange (organic: hue 15-60 degrees), green (inorganic: 60-170)
  and blue (metal: 170-290), by HSV hue, counting only pixels with saturation above 0.15;
- the mean HSV saturation of bag pixels;
- the share of dark bag pixels (HSV value under 0.25);
- speckle: coloured bag pixels whose colour class (orange / green / blue) differs from that of
  all 8 neighbours, which are coloured too (isolated single-class pixels), per 10,000 bag pixels.

``--kid-to OTHER`` adds the Kernel Inception Distance between the set and another set (a dataset
or a folder of images), mean +- std over random subsets, with EfficientNet-Lite0 features
(:mod:`xraybag.learners.kid`; values on their own scale, to be compared with each other only).

Prints one JSON object. ``--despeckle-effect`` re-colours an xraybag dataset's raw low/high
signals with the speck removal of :func:`xraybag.engine.xray.colour.despeckle` off and on, so its
effect is measured on the same images. Bad input (no such folder, no images) is a one-line error,
exit 2. Usage::

    python benchmarks/image_stats.py DATASET_OR_FOLDER [--limit 100] [--label before]
    python benchmarks/image_stats.py DATASET_OR_FOLDER --kid-to TARGET [--kid-subsets 100]
    python benchmarks/image_stats.py DATASET --despeckle-effect
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("orange", "green", "blue")


def classes_of(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: bag mask, colour class (0 none, 1 orange, 2 green, 3 blue), saturation, value."""
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(axis=2), x.min(axis=2)
    bag = (mn < 235 / 255) | (mx - mn > 20 / 255)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.float32)
    hue = hsv[..., 0] * 360.0 / 255.0
    cls = np.zeros(rgb.shape[:2], np.uint8)
    coloured = bag & (sat > 0.15)
    cls[coloured & (hue >= 15) & (hue < 60)] = 1
    cls[coloured & (hue >= 60) & (hue < 170)] = 2
    cls[coloured & (hue >= 170) & (hue < 290)] = 3
    return bag, cls, sat, mx


def speckle(cls: np.ndarray, bag: np.ndarray) -> int:
    """Coloured pixels of a class unlike all 8 neighbours, which are coloured (interior pixels only)."""
    c = cls[1:-1, 1:-1]
    iso = (c > 0) & bag[1:-1, 1:-1]
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if (dr, dc) != (0, 0):
                n = cls[1 + dr:cls.shape[0] - 1 + dr, 1 + dc:cls.shape[1] - 1 + dc]
                iso &= (n != c) & (n > 0)
    return int(iso.sum())


def stats(paths: list[Path]) -> dict:
    total = 0
    counts = np.zeros(4, np.int64)
    sat_sum = dark = iso = 0.0
    for p in paths:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        bag, cls, sat, val = classes_of(rgb)
        n = int(bag.sum())
        total += n
        counts += np.bincount(cls[bag], minlength=4)
        sat_sum += float(sat[bag].sum())
        dark += int((bag & (val < 0.25)).sum())
        iso += speckle(cls, bag)
    t = max(total, 1)
    return {
        "images": len(paths),
        "bag_pixels": total,
        "share": {name: round(float(counts[k + 1]) / t, 4) for k, name in enumerate(CLASSES)},
        "share_uncoloured": round(float(counts[0]) / t, 4),
        "mean_saturation": round(sat_sum / t, 4),
        "dark_share": round(dark / t, 4),
        "speckle_per_10k": round(1e4 * iso / t, 2),
    }


def image_paths(root: Path, limit: int) -> list[Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise ValueError(f"{root}: not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        raise ValueError(f"{folder}: no PNG or JPEG images")
    return paths[:limit]


def kid_between(a: list[Path], b: list[Path], subsets: int, subset_size: int, threads: int) -> dict:
    """KID of image sets ``a`` and ``b`` (EfficientNet-Lite0 features; see :mod:`xraybag.learners.kid`)."""
    import torch

    from xraybag.learners.kid import FEATURE_SIZE, kid, lite0_features, lite0_network

    torch.set_num_threads(threads)
    net = lite0_network()
    mean, std, size = kid(lite0_features(a, net=net), lite0_features(b, net=net), subsets, subset_size)
    return {"mean": round(mean, 5), "std": round(std, 5), "subsets": subsets, "subset_size": size,
            "features": f"efficientnet_lite0 1280-d, {FEATURE_SIZE[0]} x {FEATURE_SIZE[1]} px"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a rendered dataset (its images/) or a folder of images")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--label", default=None, help="a name for this set in the output")
    ap.add_argument("--despeckle-effect", action="store_true",
                    help="an xraybag dataset: re-colour its raw signals with the speck removal off and on")
    ap.add_argument("--kid-to", type=Path, default=None, metavar="OTHER",
                    help="also the KID between this set and OTHER (a dataset or a folder of images)")
    ap.add_argument("--kid-subsets", type=int, default=100, help="KID: random subsets averaged")
    ap.add_argument("--kid-subset-size", type=int, default=1000,
                    help="KID: images per subset (at most half the smaller set)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the KID features")
    a = ap.parse_args()
    try:
        if a.despeckle_effect:
            print(json.dumps({"specks_kept": recoloured(a.root, a.limit, False),
                              "specks_removed": recoloured(a.root, a.limit, True)}, indent=1))
            return
        if a.kid_subsets < 1 or a.kid_subset_size < 2 or a.threads < 1:
            raise ValueError("--kid-subsets and --threads must be at least 1, --kid-subset-size at least 2")
        paths = image_paths(a.root, a.limit)
        other = image_paths(a.kid_to, a.limit) if a.kid_to is not None else None
        if other is not None and min(len(paths), len(other)) < 2:
            raise ValueError("KID needs at least 2 images in each set")
        out = stats(paths)
        if a.label:
            out = {"label": a.label, **out}
        if other is not None:
            out["kid"] = {"to": str(a.kid_to), **kid_between(paths, other, a.kid_subsets,
                                                              a.kid_subset_size, a.threads)}
    except (ValueError, OSError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(out, indent=1))



def recoloured(dataset: Path, limit: int, clean: bool) -> dict:
    """The same statistics for a rendered xraybag dataset's views re-coloured from their raw
    low/high signals, with the speck removal on (``clean``) or off: its effect on the same images."""
    import tifffile

    from xraybag.engine.xray.calibration import calibrate_colour
    from xraybag.engine.xray.colour import pseudo_colour
    from xraybag.scenes.loader import load_scene

    coco = json.loads((dataset / "annotations.json").read_text())
    loaded = load_scene(str(dataset / coco["images"][0]["scene"]))
    scanners = {s.name: s for s in loaded.spec.scanners}
    tmp = Path(tempfile.mkdtemp(prefix="xraybag-stats-"))
    paths = []
    for im in coco["images"][:limit]:
        sc = scanners[im["view"]]
        cal = calibrate_colour(sc, loaded.library)
        white = float(sc.detector.white)
        low = tifffile.imread(dataset / im["raw"]["low"]) / white
        high = tifffile.imread(dataset / im["raw"]["high"]) / white
        out = tmp / f"{im['id']}.png"
        Image.fromarray(pseudo_colour(low, high, cal, clean=clean)).save(out)
        paths.append(out)
    return stats(paths)


if __name__ == "__main__":
    main()
