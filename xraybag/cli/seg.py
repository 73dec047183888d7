"""What ``xraybag learn`` does for segmenters: prompts from the command line or a JSON file, and
the masks and overlay images that ``learn predict`` writes.

Prompts (see :class:`xraybag.learners.base.Prompt`) come from ``--points X,Y`` (each click one
object), ``--box X1,Y1,X2,Y2`` (each box one object) on the image named by ``--image`` (its file
name, its name without the folder, or its id), or from ``--prompts FILE``: a JSON list (or
``{"prompts": [...]}``) of objects ``{"image": NAME_OR_ID, "points": [[x, y], ...], "labels": [1,
0, ...], "box": [x1, y1, x2, y2], "category": NAME_OR_ID}``, each one object (``labels``: 1 on the
object, 0 background; all 1 when left out; ``category`` optional). Pixels are those of the image:
x to the right, y down, from its top-left corner. A prompt outside its image is refused before
the model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xraybag.errors import XraybagError

PALETTE = [(255, 40, 40), (0, 170, 255), (255, 210, 0), (0, 220, 90), (255, 0, 255), (0, 255, 255),
           (255, 140, 0), (150, 90, 255)]


def _numbers(text: str, n: int, what: str) -> list[float]:
    try:
        vals = [float(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != n or not all(np.isfinite(vals)):
        raise XraybagError(f"{what} takes {n} comma-separated numbers, got {text!r}")
    return vals


def find_image(ds, ref: Any, where: str) -> dict:
    """The image record of dataset ``ds`` named by ``ref``: an id, a file name, or a file name
    without its folder (with or without the extension)."""
    images = ds.coco["images"]
    if isinstance(ref, bool) or ref is None:
        raise XraybagError(f"names no image (give its file name or id), got {ref!r}", where)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        hit = [im for im in images if int(im["id"]) == int(ref)]
    else:
        ref = str(ref)
        hit = [im for im in images if ref in (im["file_name"], Path(im["file_name"]).name, Path(im["file_name"]).stem)]
    if not hit:
        names = ", ".join(Path(im["file_name"]).name for im in images[:3])
        raise XraybagError(f"no image {ref!r} in the dataset (e.g. {names}{', ...' if len(images) > 3 else ''})", where)
    return hit[0]


def _category(ds, ref: Any, where: str) -> int | None:
    if ref is None:
        return None
    for c in ds.categories:
        if ref == c["id"] or str(ref) == str(c.get("name")) or (isinstance(ref, str) and ref.isdigit() and int(ref) == c["id"]):
            return int(c["id"])
    names = ", ".join(str(c.get("name", c["id"])) for c in ds.categories)
    raise XraybagError(f"no category {ref!r} in the dataset (its categories: {names})", where)


def cli_prompts(ds, image: str | None, points: tuple[str, ...], boxes: tuple[str, ...]) -> list:
    """One :class:`Prompt` per ``--points`` click and per ``--box`` on ``--image``, checked."""
    from xraybag.learners.base import Prompt

    if not points and not boxes:
        return []
    if image is None:
        raise XraybagError("--points and --box need --image (a file name or id of the dataset's images)")
    im = find_image(ds, image, "--image")
    out = []
    for i, p in enumerate(points):
        xy = _numbers(p, 2, "--points")
        out.append(Prompt(int(im["id"]), points=[xy]).check(im["width"], im["height"], f"--points {p}"))
    for b in boxes:
        box = _numbers(b, 4, "--box")
        out.append(Prompt(int(im["id"]), box=tuple(box)).check(im["width"], im["height"], f"--box {b}"))
    return out


def file_prompts(ds, path: str | Path) -> list:
    """The prompts of a JSON file (see the module docstring), each checked against its image."""
    from xraybag.learners.base import Prompt

    from xraybag.learners.data import read_json

    path = Path(path)
    data = read_json(path, "prompts file")
    if isinstance(data, dict) and "prompts" in data:
        data = data["prompts"]
    if not isinstance(data, list) or not data:
        raise XraybagError("a prompts file is a non-empty JSON list of prompts (or {\"prompts\": [...]})", str(path))
    out = []
    for i, p in enumerate(data):
        where = f"{path}: prompts[{i}]"
        if not isinstance(p, dict):
            raise XraybagError("a prompt is an object with image, points, labels, box, category", where)
        unknown = sorted(set(p) - {"image", "points", "labels", "box", "category"})
        if unknown:
            raise XraybagError(f"unknown key {unknown[0]!r} (allowed: image, points, labels, box, category)", where)
        im = find_image(ds, p.get("image"), f"{where}.image")
        try:
            pts = np.asarray(p.get("points", []), dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise XraybagError("points must be a list of [x, y] pairs", f"{where}.points") from None
        try:
            labels = np.asarray(p["labels"], dtype=np.int64).reshape(-1) if "labels" in p else np.ones(len(pts), np.int64)
        except (TypeError, ValueError):
            raise XraybagError("labels must be a list of 1 (object) or 0 (background)", f"{where}.labels") from None
        box = p.get("box")
        if box is not None:
            try:
                box = tuple(float(v) for v in box)
            except (TypeError, ValueError):
                raise XraybagError("box must be 4 numbers x1, y1, x2, y2", f"{where}.box") from None
            if len(box) != 4:
                raise XraybagError("box must be 4 numbers x1, y1, x2, y2", f"{where}.box")
        prompt = Prompt(int(im["id"]), points=pts, point_labels=labels, box=box,
                        category_id=_category(ds, p.get("category"), f"{where}.category"))
        out.append(prompt.check(im["width"], im["height"], where))
    return out


def _atomic_png(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def write_masks(ds, results: list[dict], prompts: list | None, out: Path) -> int:
    """Write ``out/masks/<image>_<k>.png`` (one 0/255 mask per result, ``k`` its order on that
    image) and ``out/images/<image>.png`` (the pseudo-colour image with the masks tinted, their
    outlines, the prompt points: green on the object, red background, and boxes); return how many
    masks were written."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    from xraybag.learners.data import decode_segmentation

    names = {c["id"]: str(c.get("name", c["id"])) for c in ds.categories}
    by_image: dict[int, list[tuple[dict, Any]]] = {}
    for i, r in enumerate(results):
        by_image.setdefault(int(r["image_id"]), []).append((r, prompts[i] if prompts else None))
    records = {int(im["id"]): im for im in ds.coco["images"]}
    written = 0
    for image_id, items in sorted(by_image.items()):
        im = records[image_id]
        stem = Path(im["file_name"]).stem
        with Image.open(ds.root / im["file_name"]) as src:
            rgb = np.asarray(src.convert("RGB")).astype(np.float32)
        h, w = rgb.shape[:2]
        edges = np.zeros((h, w), dtype=np.int32)
        for k, (r, _p) in enumerate(items):
            m = decode_segmentation(r["segmentation"], h, w)
            _atomic_png(Image.fromarray((m * 255).astype(np.uint8)), out / "masks" / f"{stem}_{k}.png")
            written += 1
            colour = np.array(PALETTE[k % len(PALETTE)], np.float32)
            rgb[m] = 0.55 * rgb[m] + 0.45 * colour
            edges[m & ~ndimage.binary_erosion(m)] = k + 1
        for k in range(len(items)):
            rgb[edges == k + 1] = PALETTE[k % len(PALETTE)]
        img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for k, (r, p) in enumerate(items):
            x, y, bw, bh = r.get("bbox", (0, 0, 0, 0))
            label = f"{names.get(r['category_id'], 'object')} {float(r['score']):.2f}"
            draw.text((x, max(0.0, y - 11)), label, fill=PALETTE[k % len(PALETTE)])
            if p is None:
                continue
            if p.box is not None:
                draw.rectangle(list(p.box), outline=(255, 255, 255), width=1)
            for (px, py), lab in zip(p.points.tolist(), p.point_labels.tolist()):
                fill = (0, 255, 0) if lab == 1 else (255, 0, 0)
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=fill, outline=(0, 0, 0))
        _atomic_png(img, out / "images" / f"{stem}.png")
    return written
