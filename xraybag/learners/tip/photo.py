"""Image-domain threats for ``tip``: photographs of threats (or anything that looks like them, e.g.
their Cycle-GAN translation into X-ray appearance) composited into the pseudo-colour images of
benign bags, as the Cycle-GAN augmentation paper does (``--opt threat_images=DIR``).

A threat image is an RGB picture of one object on a plain light background, or an RGBA picture
whose alpha marks the object. Its class comes from ``DIR/labels.json`` (``{"images": [{"file",
"class", "px_per_mm" | "length_mm"}]}``, or ``{"file": "class"}``), else from its sub-folder
(``DIR/gun/a.jpg``), else from its file name without a trailing number (``gun_0003.png``). Its
scale (image pixels per mm) comes from the record's ``px_per_mm``, or from ``length_mm`` (the
object's longer side), or from the ``threat_mm`` option (the same for every image). Its mask is
its alpha (>= 0.5), or the pixels that differ from the background (the median colour of the
image's border) by more than ``background_tol`` on some channel, holes filled.

Optionally each image first goes through a Cycle-GAN generator (``translator=RUN/weights.pt``,
trained ``--data PHOTOS --target XRAY_CROPS``) at its own resolution; the mask stays the one of
the untranslated image. The image is then scaled to the bag image's pixel size (``pixel_mm`` of
the image record, or the ``pixel_mm`` option), rotated (uniform angle, mirrored with probability
1/2) and placed at a position where at least :data:`~.place.FOOTPRINT_SHARE` of its mask lies on
the bag as its pseudo-colour image shows it (mean intensity below :data:`~.place.FOOTPRINT_T` of
white). Compositing is multiplicative, as transmissions are: under the mask the bag's pixel ``p``
(8-bit) becomes ``round(p * q)`` with ``q`` the threat image's value in [0, 1] per channel;
nothing outside the mask changes. The label is the placed mask exactly (box, area, RLE).

What cannot be done from a colour image: the raw low/high signals (and the CLCXray encoding
computed from them) of a composite are not written: its image record has no ``raw`` (and no
``scene``: the bag's scene does not hold the threat), and its provenance says ``raw_composited:
false``. Train on such composites with ``--input rgb``. The threat's occlusion is the image-space
analogue of the engine's (the share of its mask where the bag's ``-log`` mean intensity exceeds
the threat's), its difficulty follows the default thresholds, and in ``labels/`` it takes the pixels
where it is darker than the bag (the bag's objects keep their masks, occlusion and difficulty).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.tip.output import start_output
from xraybag.learners.tip.place import (
    class_counts,
    in_footprint,
    pick_threats,
)

#: tip's options for image threats (merged into the tip synthesizer's options)
IMAGE_OPTIONS = {
    "threat_images": (Path, None, "a folder of threat images (photographs: RGB on a light background or RGBA); "
                                  "replaces `threats`, composites in the pseudo-colour images"),
    "threat_mm": (float, 0.0, "threat_images: the object's longer side in mm when labels.json gives no scale"),
    "pixel_mm": (float, 0.0, "threat_images: mm per image row of the bags (0: the scene's geometry, else the "
                             "image record's pixel_mm)"),
    "aspect": (float, 0.0, "threat_images: px per mm across the belt (columns) over px per mm along it (rows) "
                           "(0: from the scene's geometry at the bag's centre, else 1)"),
    "background_tol": (float, 0.1, "threat_images: how far (0-1, any channel) a pixel differs from the "
                                   "background to belong to the object (RGB images)"),
    "translator": (Path, None, "threat_images: a cyclegan weights.pt translating the images first (photo -> X-ray)"),
    "translator_direction": (str, "AtoB", "threat_images: the translator's direction (AtoB: its --data -> --target)"),
}
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MANIFEST = "labels.json"


@dataclass
class ThreatImage:
    name: str  # path relative to the folder
    cls: str
    rgb: np.ndarray  # (h, w, 3) float64 in [0, 1]
    mask: np.ndarray  # (h, w) bool
    px_per_mm: float


# ------------------------------------------------------------------------------ reading


def read_rgba(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (float in [0, 1]) and the alpha (or None) of an image file; one-line error when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float64) / 255.0
    except Exception as e:
        raise XraybagError(f"cannot read the image: {type(e).__name__}: {e}", str(path)) from None
    return (arr[:, :, :3], arr[:, :, 3]) if has_alpha else (arr, None)


def object_mask(rgb: np.ndarray, alpha: np.ndarray | None, tol: float) -> np.ndarray:
    """The object's pixels: alpha >= 0.5, or farther than ``tol`` (any channel) from the median
    colour of the image's border, with holes filled."""
    from scipy.ndimage import binary_fill_holes

    if alpha is not None:
        return alpha >= 0.5
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    bg = np.median(border, axis=0)
    return binary_fill_holes(np.abs(rgb - bg).max(axis=2) > tol)


def _class_from_name(rel: Path) -> str:
    if len(rel.parts) > 1:
        return rel.parts[-2]
    return re.sub(r"[_\-. ]*\d+$", "", rel.stem)


def read_threat_images(folder: str | Path, threat_mm: float = 0.0, tol: float = 0.1) -> list[ThreatImage]:
    """Every threat image of ``folder`` with its class, mask and scale (see the module notes)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise XraybagError("option threat_images: not a folder of threat images", str(folder))
    records: list[dict] = []
    if (folder / MANIFEST).is_file():
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise XraybagError(f"cannot read: {e}", str(folder / MANIFEST)) from None
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            records = [dict(r) if isinstance(r, dict) else {} for r in data["images"]]
        elif isinstance(data, dict):
            records = [{"file": k, "class": v} for k, v in data.items()]
        for k, r in enumerate(records):
            if not isinstance(r.get("file"), str) or not (folder / r["file"]).is_file():
                raise XraybagError(f"images[{k}]: file {r.get('file')!r} does not exist", str(folder / MANIFEST))
    else:
        records = [{"file": p.relative_to(folder).as_posix()} for p in sorted(folder.rglob("*"))
                   if p.is_file() and p.suffix.lower() in EXTENSIONS
                   and not any(s.startswith(".") for s in p.relative_to(folder).parts)]
    if not records:
        raise XraybagError("option threat_images: holds no images (png, jpg, tiff) and no labels.json", str(folder))
    out = []
    for r in records:
        path = folder / r["file"]
        cls = str(r.get("class") or r.get("label") or (_class_from_name(Path(r["file"])) if "class" not in r else ""))
        if not cls:
            raise XraybagError("has no class: give it in labels.json, a sub-folder or a file-name prefix "
                               "(gun_0001.png)", str(path))
        rgb, alpha = read_rgba(path)
        mask = object_mask(rgb, alpha, tol)
        if mask.sum() < 4:
            raise XraybagError("its object mask is empty (no alpha, or nothing differs from the background by "
                               f"more than background_tol={tol:g})", str(path))
        ppm = r.get("px_per_mm")
        if not ppm:
            length = r.get("length_mm") or threat_mm
            if not length or float(length) <= 0:
                raise XraybagError("has no scale: give px_per_mm or length_mm in labels.json, or --opt threat_mm=MM "
                                   "(the object's longer side)", str(path))
            rows, cols = np.nonzero(mask)
            ppm = max(np.ptp(rows) + 1, np.ptp(cols) + 1) / float(length)
        out.append(ThreatImage(r["file"], cls, rgb, mask, float(ppm)))
    return out


def translate_threats(threats: list[ThreatImage], weights: Path, direction: str = "AtoB") -> tuple[list, str]:
    """The images through a cyclegan generator at their own size (masks unchanged) and the
    weights' sha256."""
    from xraybag.learners.cyclegan.synth import (
        DIRECTIONS,
        CycleGANSynthesizer,
        translate,
    )

    if direction not in DIRECTIONS:
        raise XraybagError(f"option translator_direction: {direction!r}; expected AtoB or BtoA")
    syn = CycleGANSynthesizer(weights=Path(weights), direction=direction)
    syn.check()
    state = syn._state
    cfg = state["config"]
    if int(cfg["channels"]) != 3:
        raise XraybagError(f"translates images of {cfg['channels']} channels; threat images are RGB", str(weights))
    import torch

    from xraybag.learners.cyclegan.networks import generator_for

    gen = generator_for(cfg)
    gen.load_state_dict(state[DIRECTIONS[direction]])
    gen.eval()
    out = []
    with torch.no_grad():
        for t in threats:
            rgb = translate(gen, t.rgb.astype(np.float32), torch.device("cpu")).astype(np.float64)
            out.append(replace(t, rgb=rgb))
    return out, hashlib.sha256(Path(weights).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ geometry


def resample(rgb: np.ndarray, mask: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask resampled to ``shape`` (rows, cols): Pillow's bilinear filter, which widens
    its support when it shrinks (no aliasing from large photographs); the mask thresholded at 0.5."""
    from PIL import Image

    def one(a: np.ndarray) -> np.ndarray:
        im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
        return np.asarray(im.resize((shape[1], shape[0]), Image.BILINEAR), dtype=np.float64)

    out = np.clip(np.stack([one(rgb[:, :, c]) for c in range(rgb.shape[2])], axis=2), 0.0, 1.0)
    return out, one(mask.astype(np.float32)) >= 0.5


def scaled(t: ThreatImage, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The image and mask resampled to ``pixel_mm`` mm per pixel, cropped to the mask's box."""
    s = 1.0 / (pixel_mm * t.px_per_mm)
    h, w = t.mask.shape
    return _crop(*resample(t.rgb, t.mask, (max(1, round(h * s)), max(1, round(w * s)))))


def _crop(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(mask)
    if not len(rows):
        return rgb[:0, :0], mask[:0, :0]
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return rgb[r0:r1, c0:c1], mask[r0:r1, c0:c1]


def rotated(rgb: np.ndarray, mask: np.ndarray, angle: float, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mirrored left-right (``flip``), then turned by ``angle`` degrees (image grows to hold it;
    bilinear image on a white surround, nearest-neighbour mask), cropped to the mask's box."""
    from scipy.ndimage import rotate

    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    if angle % 360:
        rgb = np.clip(rotate(rgb, angle, axes=(1, 0), reshape=True, order=1, cval=1.0), 0.0, 1.0)
        mask = rotate(mask.astype(np.uint8), angle, axes=(1, 0), reshape=True, order=0, cval=0) > 0
    return _crop(rgb, mask)


def stretched(rgb: np.ndarray, mask: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Columns resampled by ``aspect`` (a line scanner's magnification across the belt)."""
    if abs(aspect - 1.0) < 1e-9:
        return rgb, mask
    return _crop(*resample(rgb, mask, (mask.shape[0], max(1, round(mask.shape[1] * aspect)))))


def fits(mask: np.ndarray, shape: tuple[int, int], aspect: float = 1.0, step: float = 5.0) -> bool:
    """Whether some rotation (every ``step`` degrees) of ``mask``, stretched across by ``aspect``,
    fits in an image of ``shape``."""
    pts = np.argwhere(mask).astype(np.float64)
    for a in np.radians(np.arange(0.0, 180.0, step)):
        c, s = np.cos(a), np.sin(a)
        r = pts[:, 0] * c - pts[:, 1] * s
        q = (pts[:, 0] * s + pts[:, 1] * c) * aspect
        if np.ptp(r) + 1 <= shape[0] and np.ptp(q) + aspect <= shape[1]:
            return True
    return False


def composite_patch(bag_rgb: np.ndarray, patch: np.ndarray, mask: np.ndarray, r0: int, c0: int) -> np.ndarray:
    """``bag_rgb`` (uint8) with ``patch`` (values in [0, 1]) multiplied in under ``mask`` at row
    ``r0``, column ``c0``: ``round(p * q)``; every other pixel unchanged."""
    out = np.array(bag_rgb, copy=True)
    h, w = mask.shape
    region = out[r0:r0 + h, c0:c0 + w]
    region[mask] = np.clip(np.round(region[mask].astype(np.float64) * patch[mask]), 0, 255).astype(out.dtype)
    return out


def _att(x: np.ndarray) -> np.ndarray:
    """-log of the mean intensity (in [0, 1]) over the channels: an attenuation analogue."""
    return -np.log(np.clip(x.mean(axis=-1), 1.0 / 255.0, 1.0))


def occlusion(bag_rgb: np.ndarray, patch: np.ndarray, mask: np.ndarray, r0: int, c0: int) -> float:
    """Image-space occlusion: the share of the mask where the bag attenuates more than the threat."""
    h, w = mask.shape
    bag = bag_rgb[r0:r0 + h, c0:c0 + w].astype(np.float64) / 255.0
    return float(np.mean(_att(bag)[mask] > _att(patch)[mask]))


def place(bag_rgb: np.ndarray, sc_rgb: np.ndarray, sc_mask: np.ndarray, rng: np.random.Generator,
          placement: str = "random", candidates: int = 8, aspect: float = 1.0, angles: int = 12,
          positions: int = 60):
    """A placement ``(rgb, mask, r0, c0, angle, flip, occlusion)`` of the scaled threat whose mask
    lies on the bag (see the module notes), or None; ``hidden`` keeps the most occluded of
    ``candidates`` placements."""
    bright = bag_rgb.astype(np.float64).mean(axis=2) / 255.0
    H, W = bright.shape
    best, want = None, candidates if placement == "hidden" else 1
    for _ in range(angles * want):
        angle, flip = float(rng.uniform(0.0, 360.0)), bool(rng.random() < 0.5)
        rgb, mask = stretched(*rotated(sc_rgb, sc_mask, angle, flip), aspect)
        h, w = mask.shape
        if h > H or w > W or not mask.any():
            continue
        for _ in range(positions):
            r0, c0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
            if in_footprint(mask, bright[r0:r0 + h, c0:c0 + w]):
                occl = occlusion(bag_rgb, rgb, mask, r0, c0)
                if best is None or occl > best[6]:
                    best = (rgb, mask, r0, c0, angle, flip, occl)
                want -= 1
                break
        if want <= 0:
            break
    return best


# ------------------------------------------------------------------------------ the synthesizer path


def image_scale(data: Path, im: dict, pixel_mm: float, aspect: float, cache: dict) -> tuple[float, float]:
    """(mm per row, aspect) of a bag image: the options when given, else the bag's scene geometry
    at the bag's centre (a line scanner's rows are ``pitch`` mm apart along the belt; across it
    objects are magnified by the fan beam), else the record's ``pixel_mm`` and 1."""
    if (not pixel_mm or not aspect) and im.get("scene") and (data / im["scene"]).is_file():
        key = (im["scene"], im.get("view"))
        if key not in cache:
            cache[key] = _geometry_scale(data / im["scene"], im.get("view"))
        if cache[key] is not None:
            pixel_mm, aspect = pixel_mm or cache[key][0], aspect or cache[key][1]
    return float(pixel_mm or im.get("pixel_mm") or 0.0), float(aspect or 1.0)


def _geometry_scale(scene_path: Path, view: str | None) -> tuple[float, float] | None:
    """(mm per row, columns' px per mm over rows') at the centre of the bag, from the ray geometry
    of the scanner named ``view``."""
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.scenes.loader import load_scene

    spec = load_scene(scene_path).spec
    scanner = next((s for s in spec.scanners if s.name == view and s.type != "ct"), None)
    if scanner is None:
        return None
    geom = view_geometry(scanner, spec)
    centre = np.array([0.0, 0.0, float(spec.bag.size[2]) / 2.0])
    d_row, d_col = np.zeros(3), np.zeros(3)
    for k in range(3):
        step = np.eye(3)[k] * 0.5
        (r1,), (c1,) = geom.project((centre + step)[None])
        (r0,), (c0,) = geom.project((centre - step)[None])
        d_row[k], d_col[k] = r1 - r0, c1 - c0
    row_ppm, col_ppm = float(np.linalg.norm(d_row)), float(np.linalg.norm(d_col))
    if row_ppm <= 0 or col_ppm <= 0:
        return None
    return 1.0 / row_ppm, col_ppm / row_ppm


def synthesize_images(syn, data: Path, out: Path) -> Path:
    """``tip`` with ``threat_images``: check everything, then write the dataset (see the module notes)."""
    from xraybag.learners.data import read_json

    data, out = Path(data), Path(out)
    coco = read_json(data / "annotations.json", "annotations.json")
    if out.exists() and any(out.iterdir()):
        raise XraybagError("exists and is not empty; choose a new output folder", str(out))
    if syn.copies < 1:
        raise XraybagError(f"option copies: {syn.copies} must be at least 1")
    if syn.placement not in ("random", "hidden"):
        raise XraybagError(f"option placement: {syn.placement!r}; expected random or hidden")
    bags: dict[int, list[dict]] = {}
    sizes: dict[int, tuple[int, int, float, float]] = {}
    cache: dict = {}
    for k, im in enumerate(coco.get("images", [])):
        where = f"{data / 'annotations.json'}: images[{k}] (id {im.get('id')})"
        if not (data / im.get("file_name", "")).is_file():
            raise XraybagError(f"image file {im.get('file_name')!r} does not exist", where)
        if syn.pixel_mm < 0 or syn.aspect < 0:
            raise XraybagError("options pixel_mm and aspect must not be negative")
        pmm, aspect = image_scale(data, im, syn.pixel_mm, syn.aspect, cache)
        if pmm <= 0:
            raise XraybagError("has no pixel_mm (the bag image's pixel size); give --opt pixel_mm=MM", where)
        sizes[im["id"]] = (int(im["height"]), int(im["width"]), pmm, aspect)
        bags.setdefault(int(im.get("bag", im["id"])), []).append(im)
    if not bags:
        raise XraybagError("holds no images", str(data / "annotations.json"))
    threats = read_threat_images(syn.threat_images, syn.threat_mm, syn.background_tol)
    translator = None
    if syn.translator is not None:
        threats, sha = translate_threats(threats, Path(syn.translator), syn.translator_direction)
        translator = {"weights": str(syn.translator), "weights_sha256": sha, "direction": syn.translator_direction}
    from xraybag.scenes.models import Annotation

    ann = Annotation()
    largest = max(sizes.values(), key=lambda s: s[0] * s[1] * s[2] ** 2 / s[3])
    for t in threats:  # refuse a threat image larger than every bag image, before writing anything
        ok = False
        for h, w, pmm, aspect in set(sizes.values()):
            _, m = scaled(t, pmm)
            if m.sum() * aspect < ann.min_pixels:
                raise XraybagError(f"is {int(m.sum() * aspect)} px at the bags' {pmm:g} mm pixels, fewer than "
                                   f"{ann.min_pixels}: check its scale (px_per_mm {t.px_per_mm:g})",
                                   str(Path(syn.threat_images) / t.name))
            ok = ok or fits(m, (h, w), aspect)
        if not ok:
            rows, cols = np.nonzero(t.mask)
            mm = (np.ptp(cols) + 1) / t.px_per_mm, (np.ptp(rows) + 1) / t.px_per_mm
            raise XraybagError(f"threat image ({mm[0]:.0f} x {mm[1]:.0f} mm) is larger than every bag image "
                               f"(the largest is {largest[1] * largest[2] / largest[3]:.0f} x {largest[0] * largest[2]:.0f} mm)",
                               str(Path(syn.threat_images) / t.name))
    before, adds = class_counts(coco, bags, syn.copies)
    by_name = {t.name: t for t in threats}
    order = sorted(bags)
    start = before if syn.keep_original else {c: 0 for c in before}
    picks = pick_threats({t.name: t.cls for t in threats}, start, len(order) * syn.copies,
                         np.random.default_rng([syn.seed, 7]), syn.balance, syn.rare or None, syn.share, adds)
    plan = [(order[n // syn.copies], by_name[p], syn.seed * 1_000_003 + n) for n, p in enumerate(picks)]
    return _write(syn, data, out, coco, bags, sizes, plan, before, translator, ann)


def _write(syn, data: Path, out: Path, coco: dict, bags: dict, sizes: dict, plan: list, before: dict,
           translator: dict | None, ann) -> Path:
    from xraybag.engine.output.files import encode_png, sha256, write_atomic
    from xraybag.engine.xray.annotate import rle

    o = start_output(data, out, coco, bags, syn.keep_original)
    categories, cat_id, images, annotations = o.categories, o.cat_id, o.images, o.annotations
    manifest, by_image, next_bag, next_image = o.manifest, o.by_image, o.next_bag, o.next_image
    after = dict(before) if syn.keep_original else {c: 0 for c in before}
    skipped = []
    for b, t, seed in plan:
        rng = np.random.default_rng([seed, 2])
        views = []
        for src in bags[b]:
            bag_rgb = _read_rgb(data / src["file_name"])
            _, _, pmm, aspect = sizes[src["id"]]
            sc_rgb, sc_mask = scaled(t, pmm)
            chosen = place(bag_rgb, sc_rgb, sc_mask, rng, syn.placement, syn.candidates, aspect)
            if chosen is None:
                break
            views.append((src, bag_rgb, chosen, pmm, aspect))
        if len(views) < len(bags[b]):
            skipped.append({"bag": b, "threat_image": t.name, "why": "no placement on the bag's footprint"})
            continue
        if t.cls not in cat_id:
            cat_id[t.cls] = max(cat_id.values(), default=0) + 1
            categories.append({"id": cat_id[t.cls], "name": t.cls, "supercategory": "item"})
        new_bag, stem_bag = next_bag, f"{next_bag:06d}"
        next_bag += 1
        base = {"method": "tip", "signal": "image", "threat_image": t.name, "class": t.cls,
                "threat_px_per_mm": round(t.px_per_mm, 6), "translator": translator, "seed": seed,
                "placement": syn.placement, "source_bag": b, "raw_composited": False, "raw": "dropped"}
        files: dict[str, bytes] = {}
        for src, bag_rgb, (rgb, mask, r0, c0, angle, flip, occl), pmm, aspect in views:
            view = src.get("view") or str(src["id"])
            stem = f"{stem_bag}_{view}"
            comp = composite_patch(bag_rgb, rgb, mask, r0, c0)
            full = np.zeros(bag_rgb.shape[:2], dtype=bool)
            full[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]] = mask
            olds = by_image.get(src["id"], [])
            index = max([int(a.get("object_index", 0)) for a in olds] + [0]) + 1
            files[f"images/{stem}.png"] = encode_png(comp)
            image_id = next_image
            next_image += 1
            prov = dict(base, pose={"position_px": [c0, r0], "rotation_deg": round(angle, 3), "mirrored": flip},
                        pixel_mm=round(pmm, 6), aspect=round(aspect, 6))
            rec = {k: v for k, v in src.items() if k not in ("raw", "scene", "synthetic")}
            rec.update(id=image_id, bag=new_bag, file_name=f"images/{stem}.png", synthetic=dict(prov, source_image=src["id"]))
            if src.get("labels") and (data / src["labels"]).is_file():
                inst = _instance(data / src["labels"], bag_rgb, rgb, mask, r0, c0, index)
                files[f"labels/{stem}.png"] = encode_png(inst)
                rec["labels"] = f"labels/{stem}.png"
            else:
                rec.pop("labels", None)
            images.append(rec)
            for a in olds:
                annotations.append(dict(a, id=image_id * 10000 + int(a.get("object_index", 0)), image_id=image_id))
                if not a.get("iscrowd"):
                    name = next((c["name"] for c in categories if c["id"] == a["category_id"]), "?")
                    after[name] = after.get(name, 0) + 1
            rows, cols = np.nonzero(full)
            diff = "hidden" if occl >= ann.hidden else "hard" if occl >= ann.hard else "easy"
            annotations.append({
                "id": image_id * 10000 + index, "image_id": image_id, "category_id": cat_id[t.cls],
                "bbox": [float(cols.min()), float(rows.min()), float(np.ptp(cols) + 1), float(np.ptp(rows) + 1)],
                "area": int(full.sum()), "segmentation": rle(full), "iscrowd": 0, "object_index": index,
                "name": Path(t.name).stem, "material": None, "materials": [], "occlusion": round(occl, 6),
                "difficulty": diff, "synthetic": prov,
            })
            after[t.cls] = after.get(t.cls, 0) + 1
        for rel, blob in files.items():
            write_atomic(out / rel, blob)
        manifest.append(json.dumps({"bag": new_bag, "seed": seed, "synthetic": base,
                                    "files": {rel: sha256(blob) for rel, blob in files.items()}}, sort_keys=True))
    ids = [a["id"] for a in annotations]
    if len(ids) != len(set(ids)):  # pragma: no cover - ids are made unique above
        raise XraybagError("annotation ids would repeat")
    result = dict(coco, categories=categories, images=images, annotations=annotations)
    write_atomic(out / "annotations.json", json.dumps(result).encode())
    write_atomic(out / "manifest.jsonl", ("\n".join(manifest) + "\n").encode() if manifest else b"")
    report = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in syn.config.items()},
              "signal": "image", "composites": len(plan) - len(skipped), "skipped": skipped,
              "objects_before": before, "objects_after": after,
              "share_after": {c: round(n / max(1, sum(after.values())), 4) for c, n in after.items()}}
    write_atomic(out / "tip.json", json.dumps(report, indent=1).encode())
    return out


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _instance(path: Path, bag_rgb, rgb, mask, r0: int, c0: int, index: int) -> np.ndarray:
    """The source instance map with the threat's index where it attenuates more than the bag."""
    from PIL import Image

    with Image.open(path) as im:
        inst = np.array(im)
    h, w = mask.shape
    bag = bag_rgb[r0:r0 + h, c0:c0 + w].astype(np.float64) / 255.0
    mine = mask & (_att(rgb) > _att(bag))
    inst[r0:r0 + h, c0:c0 + w][mine] = index
    return inst




# ------------------------------------------------------------------------------ X-ray crops


def crop_objects(data: str | Path, out: str | Path, classes: list[str] | None = None, pad: int = 4,
                 min_size: int = 32) -> list[dict]:
    """Box crops of the objects of ``classes`` (all when None) from an xraybag dataset's
    pseudo-colour images into ``out`` (``CLASS_0000.png``; each at least ``min_size`` px a side,
    grown about the box, kept inside the image; objects of images smaller than that are left out)
    and ``out/labels.json``: the X-ray side (``--target``) of a photo -> X-ray Cycle-GAN."""
    from xraybag.engine.output.files import encode_png, write_atomic
    from xraybag.learners.data import read_json

    data, out = Path(data), Path(out)
    coco = read_json(data / "annotations.json", "annotations.json")
    names = {c["id"]: c["name"] for c in coco.get("categories", [])}
    if classes:
        unknown = sorted(set(classes) - set(names.values()))
        if unknown:
            raise XraybagError(f"no class {', '.join(unknown)} in {data / 'annotations.json'} "
                               f"(its classes: {', '.join(sorted(names.values()))})")
    if out.exists() and any(out.iterdir()):
        raise XraybagError("exists and is not empty; choose a new output folder", str(out))
    ims = {im["id"]: im for im in coco.get("images", [])}
    records, count, cache = [], {}, {}
    for a in coco.get("annotations", []):
        cls = names.get(a["category_id"])
        if a.get("iscrowd") or (classes and cls not in classes):
            continue
        im = ims[a["image_id"]]
        H, W = int(im["height"]), int(im["width"])
        x, y, w, h = a["bbox"]
        side_w, side_h = max(int(np.ceil(w)) + 2 * pad, min_size), max(int(np.ceil(h)) + 2 * pad, min_size)
        if side_w > W or side_h > H:
            continue
        c0 = int(np.clip(round(x + w / 2 - side_w / 2), 0, W - side_w))
        r0 = int(np.clip(round(y + h / 2 - side_h / 2), 0, H - side_h))
        if im["id"] not in cache:
            cache = {im["id"]: _read_rgb(data / im["file_name"])}
        k = count.get(cls, 0)
        count[cls] = k + 1
        name = f"{cls}_{k:04d}.png"
        write_atomic(out / name, encode_png(cache[im["id"]][r0:r0 + side_h, c0:c0 + side_w]))
        records.append({"file": name, "class": cls, "source_image": im["id"], "annotation": a["id"],
                        "box": [c0, r0, side_w, side_h], "px_per_mm": 1.0 / float(im.get("pixel_mm") or 1.0)})
    if not records:
        raise XraybagError(f"no object of {', '.join(classes or ['any class'])} fits a {min_size} px crop", str(data))
    write_atomic(out / MANIFEST, json.dumps({"images": records}, indent=1).encode())
    return records
