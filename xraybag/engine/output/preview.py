"""A contact sheet of a dataset: the pseudo-colour images with their boxes and labels drawn."""

from __future__ import annotations

import json
from pathlib import Path

from xraybag.errors import XraybagError

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (128, 128, 0), (0, 128, 128), (170, 110, 40)]


def _crop_to_content(img, margin: int):
    """The image cut to its non-white part (the tunnel around the bag is empty)."""
    import numpy as np

    a = np.asarray(img)
    rows = np.nonzero((a < 250).any(axis=(1, 2)))[0]
    cols = np.nonzero((a < 250).any(axis=(0, 2)))[0]
    if rows.size == 0:
        return img
    box = (max(cols[0] - margin, 0), max(rows[0] - margin, 0),
           min(cols[-1] + margin + 1, a.shape[1]), min(rows[-1] + margin + 1, a.shape[0]))
    return img.crop(box)


def contact_sheet(out: Path, path: Path | None = None, max_images: int = 16, tile: int = 400) -> Path:
    """Draw up to ``max_images`` images of dataset ``out`` in a grid; returns the PNG path."""
    from PIL import Image, ImageDraw

    ann_path = out / "annotations.json"
    if not ann_path.is_file():
        raise XraybagError("no annotations.json: not an xraybag dataset (run xraybag render)", str(out))
    coco = json.loads(ann_path.read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = coco["images"][:max_images]
    if not images:
        raise XraybagError("the dataset has no images yet", str(out))
    ncol = min(4, len(images))
    nrow = (len(images) + ncol - 1) // ncol
    sheet = Image.new("RGB", (ncol * tile, nrow * tile), "white")
    for k, im in enumerate(images):
        img = Image.open(out / im["file_name"]).convert("RGB")
        draw = ImageDraw.Draw(img)
        for a in by_image.get(im["id"], []):
            x, y, w, h = a["bbox"]
            colour = PALETTE[a["category_id"] % len(PALETTE)]
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=3)
            text = f"{cats.get(a['category_id'], '?')} {a.get('difficulty', '')}".strip()
            draw.text((x + 3, y + 2), text, fill=colour)
        img = _crop_to_content(img, margin=8)
        ImageDraw.Draw(img).text((4, 4), f"bag {im.get('bag')} {im.get('view')}", fill=(0, 0, 0))
        img.thumbnail((tile, tile))
        sheet.paste(img, ((k % ncol) * tile, (k // ncol) * tile))
    dst = path or out / "preview.png"
    dst.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dst)
    return dst
