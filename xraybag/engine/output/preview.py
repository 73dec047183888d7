"""A contact sheet of a dataset: the pseudo-colour images with their boxes and labels drawn."""

from __future__ import annotations

import io
import json
from pathlib import Path

from xraybag.engine.output.files import write_atomic
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


def contact_sheet(out: Path, path: Path | None = None, max_images: int = 16, tile: int = 400,
                  view: str | None = None, boxes: bool = True) -> Path:
    """Draw up to ``max_images`` images of dataset ``out`` (of one ``view`` if given) in a grid,
    with their boxes and labels unless ``boxes`` is false; returns the PNG path."""
    from PIL import Image, ImageDraw

    ann_path = out / "annotations.json"
    if not ann_path.is_file():
        raise XraybagError("no annotations.json: not an xraybag dataset (run xraybag render)", str(out))
    try:
        coco = json.loads(ann_path.read_text())
    except json.JSONDecodeError as e:
        raise XraybagError(f"not valid JSON: {e.msg}", f"{ann_path}:{e.lineno}:{e.colno}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("categories", "images",
                                                                                      "annotations")):
        raise XraybagError("not COCO annotations (categories, images and annotations lists)", str(ann_path))
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = [im for im in coco["images"] if view is None or im.get("view") == view][:max_images]
    if not images:
        raise XraybagError("the dataset has no images yet", str(out))
    ncol = min(4, len(images))
    nrow = (len(images) + ncol - 1) // ncol
    sheet = Image.new("RGB", (ncol * tile, nrow * tile), "white")
    for k, im in enumerate(images):
        src = out / str(im.get("file_name", ""))
        try:
            img = Image.open(src).convert("RGB")
        except (OSError, ValueError) as e:  # missing, not an image, or cut short
            raise XraybagError(f"image {im.get('file_name')!r} of annotations.json cannot be read: "
                               f"{getattr(e, 'strerror', None) or e}", str(src)) from None
        draw = ImageDraw.Draw(img)
        for a in by_image.get(im["id"], []) if boxes else []:
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
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    write_atomic(dst, buf.getvalue())  # no half-written sheet
    return dst


def entry_preview(name: str, seed: int = 0, params: dict | None = None, pitch: float = 0.5):
    """A top view of one sample of catalog entry (or bag shell) ``name`` through the default
    line-scan scanner (noise on), cropped to the object: an (rows, cols, 3) uint8 image.

    The object lies as in a bag (longest side along the belt, thinnest down), alone in an empty bag
    without walls; a sheet (garment) lies flat, with its plies and fittings; a bag shell is built around an empty interior of 500 x 350 x 200 mm."""
    import numpy as np

    from xraybag.engine.output.pipeline import render_bag
    from xraybag.scenes.catalog import get_entry, sample_object
    from xraybag.scenes.catalog.bags import SHELLS
    from xraybag.scenes.loader import load_scene_data
    from xraybag.scenes.yamlsrc import SourceMap

    scanner = {"name": "top", "type": "line_scan", "view": "vertical", "pitch": float(pitch)}
    if name in SHELLS:
        SHELLS[name].check_params(params or {}, lambda k: f"--set {k}")
        drawn = SHELLS[name].draw_params(params, np.random.default_rng(np.random.SeedSequence([int(seed), 0, 0])))
        data = {"seed": int(seed), "bag": {"size": [500.0, 350.0, 200.0], "shell": name, "params": drawn},
                "objects": [], "scanners": [scanner]}
    else:
        get_entry(name).check_params(params or {}, lambda k: f"--set {k}")
        obj = sample_object(name, seed, params)
        if "sheet" in obj:  # laid flat, with its plies and fittings
            data = _flat_sheet(obj, name, seed, scanner)
        else:
            data = _lying(obj, name, seed, scanner)
    loaded = load_scene_data(data, SourceMap(f"catalog entry {name}"), Path.cwd(), check_files=False)
    view = render_bag(loaded, 0).views[0]
    # crop to what was traced (noise leaves stray non-white pixels in the empty tunnel)
    hit = view.trace.paths.sum(axis=2) > 0
    rows, cols = np.nonzero(hit.any(axis=1))[0], np.nonzero(hit.any(axis=0))[0]
    if rows.size == 0:
        return view.rgb
    m = 12
    return view.rgb[max(rows[0] - m, 0):rows[-1] + m + 1, max(cols[0] - m, 0):cols[-1] + m + 1].copy()


def catalog_sheet(names: list[str], path: Path, tile: int = 220, cols: int = 8, pitch: float = 0.5) -> Path:
    """Previews (:func:`entry_preview`) of ``names`` in a grid with their names, as one PNG."""
    from PIL import Image, ImageDraw

    rows = (len(names) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate(names):
        img = Image.fromarray(entry_preview(name, pitch=pitch))
        img.thumbnail((tile - 8, tile - 8))
        x, y = (k % cols) * tile, (k // cols) * (tile + 16)
        sheet.paste(img, (x + 4, y + 16))
        draw.text((x + 4, y + 2), name, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path


def _flat_sheet(obj: dict, name: str, seed: int, scanner: dict) -> dict:
    """A scene holding sheet entry ``obj`` laid flat on the floor (not crumpled)."""
    from xraybag.engine.solids.sheets import drape_grid

    sheet = dict(obj["sheet"])
    sx, sy = sheet["size"]
    t = sheet["thickness"]
    nx, ny = drape_grid([sx, sy])
    sheet["drape"] = [[t / 2.0] * ny for _ in range(nx)]
    sheet["wrinkles"] = 0.0
    height = 40.0
    obj = {"name": name, "sheet": sheet, "material": obj["material"],
           "pose": {"position": [0.0, 0.0, height / 2], "rotation_deg": [0.0, 0.0, 0.0]}}
    return {"seed": int(seed), "bag": {"size": [sx + 40.0, sy + 40.0, height], "wall": {"thickness": 0}},
            "objects": [obj], "scanners": [scanner]}


def _lying(obj: dict, name: str, seed: int, scanner: dict) -> dict:
    """A scene holding entry ``obj`` alone, lying as in a bag: the longest side along the belt
    (x), the thinnest down (z)."""
    import numpy as np

    from xraybag.engine.solids.scene import build_solids, rotation_matrix
    from xraybag.scenes.catalog import object_scene

    _, infos = build_solids(object_scene(obj), tolerance=0.05)
    ext = infos[0].bounds[1] - infos[0].bounds[0]
    want = np.sort(ext)[::-1]
    rot = [0.0, 0.0, 0.0]
    for r in ([a, b, c] for a in (0.0, 90.0) for b in (0.0, 90.0) for c in (0.0, 90.0)):
        if np.allclose(np.abs(rotation_matrix(r)) @ ext, want):
            rot = r
            break
    ext = want
    size = [float(max(e + 40.0, 60.0)) for e in ext]
    obj = {**obj, "pose": {"position": [0.0, 0.0, size[2] / 2], "rotation_deg": rot}}
    return {"seed": int(seed), "bag": {"size": size, "wall": {"thickness": 0}}, "objects": [obj],
            "scanners": [scanner]}
