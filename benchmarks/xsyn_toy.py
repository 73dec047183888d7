"""Xsyn on the toy set (benchmarks/xsyn_toy.yaml): does the generator paint the requested class
inside the requested box, leave the rest of the image alone, and does CAR tighten the boxes?

The toy set holds one object per bag, a steel ``knife`` or a water-filled plastic ``bottle``, on the
uniform background of an empty, thin-walled bag. Three subcommands, each printing one JSON object:

``classifier``
    Trains a small CNN (four 3x3 conv layers, ~61k parameters) on crops of the annotated objects of
    a rendered dataset's pseudo-colour images: the COCO box padded by 10 % to a square, resized to
    32 x 32, random flips and quarter turns. Trains on the dataset's ``train`` split (by bag,
    :class:`xraybag.learners.data.DetectionDataset`) and prints the accuracy on ``val`` + ``test``.

``evaluate``
    Reads a dataset that the ``xsyn`` synthesizer wrote from the source dataset and reports:

    - ``classifier``: the share of painted objects whose crop (at the grounding box, as in
      training) the classifier labels as the requested class, with counts per requested class;
    - ``outside_mask``: the largest absolute difference between each generated PNG and its source
      PNG outside the image's ``edit_mask``, and how many such pixels differ (expected: 0 and 0);
    - ``extent``: the painted object's true extent (see below) against the grounding box and
      against CAR's box for each n in ``car_boxes``: mean IoU, and how many extents were empty;
    - ``extent_rule_check``: the same rule on the source's real objects against their COCO boxes.

``check-extent``
    Only the last item: the extent rule validated on a rendered dataset's real objects.

The extent rule. Inside the box padded by 25 % on each side (clipped to the image, and in a
generated image also inside its edit mask, the only pixels the generator could paint), a pixel is
object when its colour lies more than ``--threshold`` (default 32, of 255, largest channel
difference) from the background colour: the per-channel median of the pixels near the box (within
the box padded by 100 %) that are outside that candidate region (and outside the edit mask). The
empty bag's background is uniform up to noise: on the rendered toy set (200 bags) the background
pixels inside the boxes lie 1 from that median at the median, 3 at the 99th percentile and 7 at
most, the belt outside the bag 15; 99 % of the objects' own pixels lie above 53. 32 sits between
the two, and of the thresholds 8, 16, 24, 32 and 48 it is the lowest whose extents match the
renderer's boxes (from its label maps) to about a pixel (mean IoU 0.98; 16 takes in the objects'
blurred rims, 0.95; 48 starts to cut into their faint edges). ``check-extent`` prints these
figures. Of the 8-connected components of object pixels the one with the most pixels inside the
unpadded box is the object (an edge of the bag's wall cut by the padded box lies outside the box);
its bounding box is the extent.

Errors (no such folder, a record that breaks the schema, images of different sizes) are one line
on stderr, exit status 2. torch is imported only by ``classifier`` and ``evaluate``. Usage::

    python benchmarks/xsyn_toy.py classifier --data /work/data/xsyn_toy --out toy_cls.pt [--seed 0] [--epochs 40]
    python benchmarks/xsyn_toy.py evaluate --source /work/data/xsyn_toy --generated GEN --classifier toy_cls.pt
    python benchmarks/xsyn_toy.py check-extent --source /work/data/xsyn_toy
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CROP = 32  # classifier input side (px)
CROP_PAD = 0.10  # box padded by 10 % before it is squared
EXTENT_PAD = 0.25  # the painted object is looked for in the box padded by 25 % on each side
THRESHOLD = 32.0  # colour distance (largest channel difference, of 255) from the background
FORMAT = "xraybag.xsyn_toy.classifier"


class ToyError(Exception):
    """A one-line error for the user (exit status 2)."""


# -- reading ------------------------------------------------------------------------------


def read_coco(root: Path) -> dict:
    root = Path(root)
    if not root.is_dir():
        raise ToyError(f"{root}: no such folder")
    path = root / "annotations.json"
    if not path.is_file():
        raise ToyError(f"{path}: no annotations.json (not a dataset folder?)")
    try:
        coco = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ToyError(f"{path}: cannot read: {e}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
        raise ToyError(f"{path}: not a COCO dict with images, annotations and categories")
    return coco


def load_rgb(root: Path, file_name: str) -> np.ndarray:
    path = Path(root) / file_name
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise ToyError(f"{path}: cannot read image: {e}") from None


def decode_rle(rle: dict, shape: tuple[int, int], where: str) -> np.ndarray:
    """A COCO compressed RLE ``{"size": [h, w], "counts": str}`` as an H x W bool mask."""
    from pycocotools import mask as mask_utils

    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise ToyError(f"{where}: edit_mask is not a COCO RLE dict with size and counts")
    if tuple(rle["size"]) != tuple(shape):
        raise ToyError(f"{where}: edit_mask size {list(rle['size'])} is not the image's {list(shape)}")
    counts = rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"]
    try:
        return mask_utils.decode({"size": list(rle["size"]), "counts": counts}).astype(bool)
    except (TypeError, ValueError) as e:  # malformed counts
        raise ToyError(f"{where}: cannot decode edit_mask: {e}") from None


def box_of(value, where: str) -> list[float]:
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)):
        raise ToyError(f"{where}: expected a box [x, y, w, h], got {value!r}")
    x, y, w, h = (float(v) for v in value)
    if not (w > 0 and h > 0 and all(math.isfinite(v) for v in (x, y, w, h))):
        raise ToyError(f"{where}: box {list(value)} has no area")
    return [x, y, w, h]


# -- boxes and crops ----------------------------------------------------------------------


def iou(a, b) -> float:
    """IoU of two [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def pad_box(box, pad: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel bounds (x0, y0, x1, y1), end exclusive, of ``box`` grown by ``pad`` of its width and
    height on each side, clipped to the image."""
    x, y, w, h = box
    x0 = max(0, math.floor(x - pad * w))
    y0 = max(0, math.floor(y - pad * h))
    x1 = min(width, math.ceil(x + w + pad * w))
    y1 = min(height, math.ceil(y + h + pad * h))
    return x0, y0, x1, y1


def crop_box(img: np.ndarray, box, size: int = CROP, pad: float = CROP_PAD) -> np.ndarray:
    """The square around ``box`` (its longer side padded by ``pad``), edges repeated where it
    leaves the image, resized to size x size: float32 in [0, 1], H x W x 3."""
    x, y, w, h = (float(v) for v in box)
    side = max(2, round(max(w, h) * (1 + pad)))
    x0 = min(max(round(x + w / 2 - side / 2), -side), img.shape[1])
    y0 = min(max(round(y + h / 2 - side / 2), -side), img.shape[0])
    padded = np.pad(img, ((side, side), (side, side), (0, 0)), mode="edge")
    part = padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side]
    small = Image.fromarray(np.ascontiguousarray(part)).resize((size, size), Image.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255.0


# -- the painted object's extent ----------------------------------------------------------


def colour_distance(img: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.abs(img.astype(np.float32) - colour[None, None, :]).max(axis=2)


def background_colour(img: np.ndarray, box, candidates: np.ndarray, edit: np.ndarray | None) -> np.ndarray:
    """Median colour of the pixels near ``box`` (padded by 100 %) outside the candidate region and
    outside the edit mask; the whole image's such pixels when fewer than 16 are near."""
    h, w = img.shape[:2]
    ref = ~candidates if edit is None else ~candidates & ~edit
    x0, y0, x1, y1 = pad_box(box, 1.0, w, h)
    near = np.zeros_like(ref)
    near[y0:y1, x0:x1] = True
    pick = ref & near
    if pick.sum() < 16:
        pick = ref if ref.sum() >= 16 else np.ones_like(ref)
    return np.median(img[pick].astype(np.float32), axis=0)


def extent(img: np.ndarray, box, edit: np.ndarray | None = None, threshold: float = THRESHOLD):
    """The painted (or real) object's bounding box [x, y, w, h] near ``box``, or None when no
    pixel there stands out from the background (the rule is in the module docstring)."""
    from scipy import ndimage

    h, w = img.shape[:2]
    x0, y0, x1, y1 = pad_box(box, EXTENT_PAD, w, h)
    cand = np.zeros((h, w), bool)
    cand[y0:y1, x0:x1] = True
    if edit is not None:
        cand &= edit
    if not cand.any():
        return None
    bg = background_colour(img, box, cand, edit)
    obj = (colour_distance(img, bg) > threshold) & cand
    labels, n = ndimage.label(obj, structure=np.ones((3, 3), int))
    if n == 0:
        return None
    bx0, by0, bx1, by1 = pad_box(box, 0.0, w, h)
    inside = np.bincount(labels[by0:by1, bx0:bx1].ravel(), minlength=n + 1)[1:]
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    best = int(np.lexsort((sizes, inside))[-1]) + 1  # most pixels inside the box, then the largest
    rows, cols = np.nonzero(labels == best)
    return [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]


def check_extent(source: Path, threshold: float = THRESHOLD) -> dict:
    """The extent rule on the real objects of a rendered dataset against their COCO boxes."""
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    coco = read_coco(source)
    names = {c["id"]: str(c.get("name", c["id"])) for c in coco["categories"]}
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        if not a.get("iscrowd"):
            by_image.setdefault(a["image_id"], []).append(a)
    ious, per_class, empty = [], {}, 0
    background, objects = [], []
    for im in coco["images"]:
        anns = by_image.get(im["id"], [])
        if not anns:
            continue
        img = load_rgb(source, im["file_name"])
        for a in anns:
            box = box_of(a.get("bbox"), f"{source}/annotations.json: annotation {a.get('id')}")
            got = extent(img, box, None, threshold)
            value = 0.0 if got is None else iou(got, box)
            empty += got is None
            ious.append(value)
            per_class.setdefault(names.get(a["category_id"], str(a["category_id"])), []).append(value)
            # the threshold's margins: the distances from the background colour of the box's pixels
            # more than 2 px from the object (what the rule must reject; the padded box can also hold
            # an edge of the bag's wall, which the choice of component handles) and of the object's
            # own pixels (its segmentation; what it must keep)
            seg = a.get("segmentation")
            if isinstance(seg, dict) and "counts" in seg:
                rle = dict(seg, counts=seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"])
                inside = mask_utils.decode(rle).astype(bool)
                hh, ww = img.shape[:2]
                x0, y0, x1, y1 = pad_box(box, EXTENT_PAD, ww, hh)
                cand = np.zeros((hh, ww), bool)
                cand[y0:y1, x0:x1] = True
                d = colour_distance(img, background_colour(img, box, cand, None))
                x0, y0, x1, y1 = pad_box(box, 0.0, ww, hh)
                near = ~ndimage.binary_dilation(inside, iterations=2)
                background.append(d[y0:y1, x0:x1][near[y0:y1, x0:x1]])
                objects.append(d[inside])
    if not ious:
        raise ToyError(f"{source}: no annotated objects")
    bgd = np.concatenate([np.zeros(0), *background])
    obd = np.concatenate([np.zeros(0), *objects])
    return {
        "extent_rule_check": round(float(np.mean(ious)), 4),
        "objects": len(ious),
        "empty": int(empty),
        "iou_min": round(float(np.min(ious)), 4),
        "share_iou_above_0.8": round(float(np.mean(np.array(ious) > 0.8)), 4),
        "per_class": {k: {"n": len(v), "mean_iou": round(float(np.mean(v)), 4)} for k, v in sorted(per_class.items())},
        "threshold": threshold,
        "background_distance_percentiles": {p: float(np.percentile(bgd, int(p))) if bgd.size else None
                                            for p in ("50", "99", "100")},
        "object_distance_percentiles": {p: float(np.percentile(obd, int(p))) if obd.size else None
                                        for p in ("1", "5", "50")},
    }


# -- the classifier -----------------------------------------------------------------------


def build_net(n_classes: int):
    from torch import nn

    def block(i: int, o: int) -> list:
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.MaxPool2d(2), *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))


def real_crops(data: Path, split: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Crops and class indices of the annotated objects of one split (``val+test`` joins two)."""
    from xraybag.errors import XraybagError
    from xraybag.learners.data import DetectionDataset

    crops, labels = [], []
    for part in split.split("+"):
        try:
            ds = DetectionDataset(data, split=part, input="rgb")
        except XraybagError as e:
            raise ToyError(str(e)) from None
        cat_name = {c["id"]: str(c.get("name", c["id"])) for c in ds.categories}
        for im in ds.images:
            anns = [a for a in ds.annotations(im["id"]) if not a.get("iscrowd")]
            if not anns:
                continue
            img = load_rgb(data, im["file_name"])
            for a in anns:
                crops.append(crop_box(img, a["bbox"]))
                labels.append(names.index(cat_name[a["category_id"]]))
    return np.stack(crops) if crops else np.zeros((0, CROP, CROP, 3), np.float32), np.array(labels, np.int64)


def augment(x, gen):
    """Random horizontal and vertical flips and quarter turns of a N x C x H x W batch."""
    import torch

    flip_h = torch.rand(len(x), generator=gen) < 0.5
    flip_v = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip_h[:, None, None, None], x.flip(3), x)
    x = torch.where(flip_v[:, None, None, None], x.flip(2), x)
    turn = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(turn[:, None, None, None], x.transpose(2, 3), x)


def predict(model, crops: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
        return model(x).argmax(1).numpy() if len(x) else np.zeros(0, np.int64)


def train_classifier(data: Path, out: Path, seed: int = 0, epochs: int = 40) -> dict:
    import torch

    coco = read_coco(data)
    names = [str(c.get("name", c["id"])) for c in sorted(coco["categories"], key=lambda c: c["id"])]
    if len(names) < 2:
        raise ToyError(f"{data}: needs at least two categories, has {names}")
    xs, ys = real_crops(data, "train", names)
    xv, yv = real_crops(data, "val+test", names)
    if len(xs) == 0 or len(xv) == 0:
        raise ToyError(f"{data}: too few bags for a train and a held-out split ({len(xs)} and {len(xv)} crops)")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_net(len(names))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    x_all = torch.from_numpy(xs.transpose(0, 3, 1, 2).copy())
    y_all = torch.from_numpy(ys)
    loss = torch.zeros(())
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            if len(idx) < 2:
                continue
            loss = torch.nn.functional.cross_entropy(model(augment(x_all[idx], gen)), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    pred = predict(model, xv)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "class_names": names, "crop": CROP, "crop_pad": CROP_PAD,
                "state_dict": model.state_dict()}, out)
    return {
        "classifier": str(out),
        "classes": names,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train_crops": len(xs),
        "heldout_crops": len(xv),
        "heldout_accuracy": round(float(np.mean(pred == yv)), 4),
        "heldout_per_class": {n: {"n": int((yv == k).sum()), "correct": int(((yv == k) & (pred == k)).sum())}
                              for k, n in enumerate(names)},
        "final_train_loss": round(float(loss.detach()), 5),
        "epochs": epochs,
        "seed": seed,
    }


def load_classifier(path: Path):
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise ToyError(f"{path}: cannot read classifier: {e}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ToyError(f"{path}: not a classifier written by xsyn_toy.py classifier")
    model = build_net(len(ckpt["class_names"]))
    model.load_state_dict(ckpt["state_dict"])
    return model, list(ckpt["class_names"])


# -- evaluating a generated dataset -------------------------------------------------------


def _mean(values: list[float]):
    return round(float(np.mean(values)), 4) if values else None


def evaluate(source: Path, generated: Path, classifier: Path | None = None, threshold: float = THRESHOLD) -> dict:
    """The checks of the module docstring on a dataset ``xsyn`` generated from ``source``."""
    src, gen = read_coco(source), read_coco(generated)
    gfile = f"{generated}/annotations.json"
    src_by_id = {im["id"]: im for im in src["images"]}
    src_by_file = {im["file_name"]: im for im in src["images"]}
    gen_names = {c["id"]: str(c.get("name", c["id"])) for c in gen["categories"]}
    painted: dict[int, list[dict]] = {}
    for a in gen["annotations"]:
        s = a.get("synthetic")
        if isinstance(s, dict) and s.get("method") == "xsyn":
            painted.setdefault(a["image_id"], []).append(a)

    variants: dict[str, int] = {}
    outside_max, outside_count, changed_images = 0, 0, 0
    crops, requested = [], []
    iou_ground: list[float] = []
    iou_car: dict[str, list[float]] = {}
    iou_ground_paired: dict[str, list[float]] = {}
    empty = objects = 0
    for im in gen["images"]:
        s = im.get("synthetic")
        if not (isinstance(s, dict) and s.get("method") == "xsyn"):
            continue
        where = f"{gfile}: image {im.get('id')}"
        variants[str(s.get("variant"))] = variants.get(str(s.get("variant")), 0) + 1
        orig = src_by_id.get(s.get("source_image"))
        if orig is None or (s.get("source_file") and orig["file_name"] != s["source_file"]):
            orig = src_by_file.get(s.get("source_file"), orig)
        if orig is None:
            raise ToyError(f"{where}: source image {s.get('source_image')!r} ({s.get('source_file')!r}) not in {source}")
        img = load_rgb(generated, im["file_name"])
        before = load_rgb(source, orig["file_name"])
        if img.shape != before.shape:
            raise ToyError(f"{where}: image is {img.shape[1]} x {img.shape[0]}, its source {before.shape[1]} x {before.shape[0]}")
        edit = decode_rle(s.get("edit_mask"), img.shape[:2], where)
        diff = np.abs(img.astype(np.int16) - before.astype(np.int16)).max(axis=2)
        out_diff = diff[~edit]
        n_changed = int((out_diff > 0).sum())
        outside_count += n_changed
        changed_images += n_changed > 0
        outside_max = max(outside_max, int(out_diff.max()) if out_diff.size else 0)
        for a in painted.get(im["id"], []):
            sa = a["synthetic"]
            awhere = f"{gfile}: annotation {a.get('id')}"
            ground = box_of(sa.get("grounding_box"), f"{awhere}: grounding_box")
            name = sa.get("requested") or gen_names.get(a.get("category_id"))
            if not isinstance(name, str):
                raise ToyError(f"{awhere}: no requested class")
            crops.append(crop_box(img, ground))
            requested.append(name)
            objects += 1
            got = extent(img, ground, edit, threshold)
            if got is None:
                empty += 1
                continue
            iou_ground.append(iou(ground, got))
            for n, car in sorted((sa.get("car_boxes") or {}).items()):
                iou_car.setdefault(str(n), []).append(iou(box_of(car, f"{awhere}: car_boxes[{n}]"), got))
                iou_ground_paired.setdefault(str(n), []).append(iou_ground[-1])
    if not variants:
        raise ToyError(f"{gfile}: no image generated by xsyn (no 'synthetic' with method 'xsyn')")

    result: dict = {"generated": str(generated), "source": str(source), "images": sum(variants.values()),
                    "variants": variants, "painted_objects": objects}
    if classifier is not None:
        model, names = load_classifier(classifier)
        unknown = sorted(set(requested) - set(names))
        if unknown:
            raise ToyError(f"{gfile}: requested classes {unknown} unknown to the classifier ({names})")
        pred = predict(model, np.stack(crops)) if crops else np.zeros(0, np.int64)
        want = np.array([names.index(r) for r in requested], np.int64)
        blank = np.full((1, CROP, CROP, 3), np.median(before.reshape(-1, 3), axis=0) / 255.0, np.float32)
        result["classifier"] = {
            "accuracy": _mean(list(pred == want)),
            "n": len(want),
            # what an unpainted box would be called: a generator that paints nothing scores the
            # share of requests for this class
            "blank_crop_label": names[int(predict(model, blank)[0])],
            "per_class": {n: {"requested": int((want == k).sum()), "labelled_as_requested": int(((want == k) & (pred == k)).sum())}
                          for k, n in enumerate(names)},
        }
    result["outside_mask"] = {"max_abs_diff": outside_max, "differing_pixels": outside_count,
                              "images_with_changes": int(changed_images)}
    result["extent"] = {
        "objects": objects,
        "empty": empty,
        "threshold": threshold,
        "iou_grounding": _mean(iou_ground),
        "iou_car": {n: {"n": len(v), "mean_iou": _mean(v), "grounding_mean_iou_same_objects": _mean(iou_ground_paired[n]),
                        "beats_grounding": bool(np.mean(v) > np.mean(iou_ground_paired[n]))}
                    for n, v in sorted(iou_car.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])},
    }
    result["extent_rule_check"] = check_extent(source, threshold)["extent_rule_check"]
    return result


# -- command line -------------------------------------------------------------------------


def train_segmenter(data: Path, out: Path, epochs: int = 8) -> dict:
    """``sam_finetune`` (``preset=tiny``) on the toy set's masks, for CAR: the toy images are under
    the XSeg paper's 200 px cleaning side, so the dataset is opened with ``min_side=32`` (the
    command line keeps the paper's rule)."""
    import torch

    from xraybag.learners.apsam.learner import SAMFinetuneSegmenter
    from xraybag.learners.seg_data import SegmentationDataset

    torch.set_num_threads(1)
    train = SegmentationDataset(data, split="train", channels="pseudo_colour", min_side=32)
    val = SegmentationDataset(data, split="val", channels="pseudo_colour", min_side=32)
    weights = SAMFinetuneSegmenter(preset="tiny", epochs=epochs).train(train, out, val=val, progress=False)
    evals = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if '"eval"' in x]
    return {"weights": str(weights), "epochs": epochs, "val": evals[-1]["eval"] if evals else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("classifier", help="train the crop classifier on a rendered dataset")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=40)
    p = sub.add_parser("evaluate", help="score a dataset generated by xsyn from --source")
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--generated", type=Path, required=True)
    p.add_argument("--classifier", type=Path)
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p = sub.add_parser("segmenter", help="train sam_finetune (tiny) on the toy set's masks, for CAR")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=8)
    p = sub.add_parser("check-extent", help="the extent rule on a rendered dataset's real objects")
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    try:
        if args.command == "classifier":
            if args.epochs < 1:
                raise ToyError("--epochs must be at least 1")
            out = train_classifier(args.data, args.out, args.seed, args.epochs)
        elif args.command == "segmenter":
            out = train_segmenter(args.data, args.out, args.epochs)
        elif args.command == "evaluate":
            if args.classifier is not None and not args.classifier.is_file():
                raise ToyError(f"{args.classifier}: no such classifier file")
            out = evaluate(args.source, args.generated, args.classifier, args.threshold)
        else:
            out = check_extent(args.source, args.threshold)
    except ToyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
