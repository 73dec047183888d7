"""The paper's photographs -> X-ray -> composite path, with camera-like renders standing in for
photographs (issue 15, item 2).

    python benchmarks/photo_tip.py crops DATA -o DIR [--classes knife,gun] [--min-size 48]
    python benchmarks/photo_tip.py run -o WORK [--bags 4] [--photos 12] [--size 64] [--iterations 300]

``crops`` cuts box crops of the objects of some classes out of an xraybag dataset's pseudo-colour
images (the X-ray side, ``--target``, of a photo -> X-ray Cycle-GAN) with a labels.json.
``run`` does the whole path in WORK: renders benign bags and bags with threats (the X-ray side),
crops the threats, renders ``--photos`` shaded "photographs" of each threat template
(``xraybag catalog photos``), trains ``cyclegan`` photos -> crops, composites the translated
photos into the benign bags with ``tip`` (``threat_images``, ``translator``), and prints one JSON
line: the time of each step and the colour statistics (mean RGB, mean saturation) of the threat
pixels in the photos, in the photos translated, and in the X-ray images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BAG = """
seed: {seed}
bag: {{size: [420, 300, 140], wall: {{material: nylon, thickness: 1.5}}}}
objects:
{threats}  - {{template: hardback_book}}
  - {{template: folded_clothes}}
  - {{template: water_bottle}}
  - {{template: smartphone}}
scanners:
  - {{name: top, type: line_scan, view: vertical, pitch: 2.0, tunnel: [500, 400], source_distance: 700}}
"""
TEMPLATES = {"chef_knife": "knife", "pistol": "gun"}


def xraybag(*args) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "xraybag.cli.main", *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"xraybag {' '.join(map(str, args))} failed:\n{r.stderr}")
    return round(time.perf_counter() - t0, 1)


def colour_stats(pixels: np.ndarray) -> dict:
    """Mean RGB (0-255) and mean HSV saturation of (n, 3) pixels in [0, 1]."""
    mx, mn = pixels.max(axis=1), pixels.min(axis=1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-9), 0.0)
    return {"mean_rgb": [round(float(v) * 255, 1) for v in pixels.mean(axis=0)], "saturation": round(float(sat.mean()), 3),
            "pixels": int(len(pixels))}


def xray_object_pixels(data: Path, classes: set[str]) -> np.ndarray:
    from PIL import Image
    from pycocotools import mask as mask_utils

    coco = json.loads((data / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    ims = {im["id"]: im for im in coco["images"]}
    out = []
    for a in coco["annotations"]:
        if names[a["category_id"]] in classes:
            m = mask_utils.decode(a["segmentation"]).astype(bool)
            img = np.asarray(Image.open(data / ims[a["image_id"]]["file_name"]).convert("RGB")) / 255.0
            out.append(img[m])
    return np.concatenate(out)


def run(args) -> None:
    from xraybag.learners.tip import photo

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    times = {}
    threats = "".join(f"  - {{template: {t}}}\n" for t in TEMPLATES)
    (work / "benign.yaml").write_text(BAG.format(seed=1, threats=""))
    (work / "xray.yaml").write_text(BAG.format(seed=2, threats=threats))
    times["render_benign"] = xraybag("render", work / "benign.yaml", "-n", args.bags, "-o", work / "benign", "-q")
    times["render_xray"] = xraybag("render", work / "xray.yaml", "-n", args.bags, "-o", work / "xray", "-q")
    t0 = time.perf_counter()
    crops = photo.crop_objects(work / "xray", work / "crops", sorted(set(TEMPLATES.values())), min_size=args.crop)
    times["crops"] = round(time.perf_counter() - t0, 1)
    times["photos"] = xraybag("catalog", "photos", *TEMPLATES, "-o", work / "photos", "-n", args.photos,
                              "--size", args.size)
    times["train_cyclegan"] = xraybag(
        "learn", "train", "cyclegan", "--data", work / "photos", "--target", work / "crops", "-o", work / "run", "-q",
        "--opt", "preset=test", "--opt", f"size={args.crop}", "--opt", f"iterations={args.iterations}",
        "--opt", "threads=1")
    times["tip"] = xraybag("learn", "synthesize", "tip", "--data", work / "benign", "-o", work / "out", "--opt",
                           f"threat_images={work / 'photos'}", "--opt", f"translator={work / 'run' / 'weights.pt'}",
                           "--opt", f"copies={args.copies}")
    shots = photo.read_threat_images(work / "photos")
    moved, _ = photo.translate_threats(shots, work / "run" / "weights.pt")
    report = json.loads((work / "out" / "tip.json").read_text())
    print(json.dumps({
        "bags": args.bags, "photos_per_template": args.photos, "size": args.size, "crop": args.crop,
        "iterations": args.iterations, "crops": len(crops), "composites": report["composites"],
        "skipped": len(report["skipped"]), "objects_after": report["objects_after"], "seconds": times,
        "threat_pixels": {
            "photos": colour_stats(np.concatenate([s.rgb[s.mask] for s in shots])),
            "photos_translated": colour_stats(np.concatenate([s.rgb[s.mask] for s in moved])),
            "xray": colour_stats(xray_object_pixels(work / "xray", set(TEMPLATES.values()))),
        }}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("crops", help="box crops of some classes of a dataset")
    c.add_argument("data")
    c.add_argument("-o", "--out", required=True)
    c.add_argument("--classes", default="")
    c.add_argument("--min-size", type=int, default=48)
    r = sub.add_parser("run", help="the whole path at a small scale, with figures")
    r.add_argument("-o", "--out", required=True)
    r.add_argument("--bags", type=int, default=4)
    r.add_argument("--photos", type=int, default=12)
    r.add_argument("--size", type=int, default=64, help="photo side in px")
    r.add_argument("--crop", type=int, default=48, help="cyclegan training crop in px")
    r.add_argument("--iterations", type=int, default=300)
    r.add_argument("--copies", type=int, default=2)
    args = ap.parse_args()
    if args.cmd == "crops":
        from xraybag.errors import XraybagError
        from xraybag.learners.tip.photo import crop_objects

        try:
            recs = crop_objects(args.data, args.out, [c for c in args.classes.split(",") if c] or None,
                                min_size=args.min_size)
        except XraybagError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        print(f"wrote {len(recs)} crops and labels.json to {args.out}")
    else:
        run(args)


if __name__ == "__main__":
    main()
