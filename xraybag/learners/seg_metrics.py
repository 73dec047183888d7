"""Segmentation metrics: IoU and Dice per object, their means per class and per difficulty level
(the XSeg paper's mIoU and Dice), and COCO ``segm`` mAP through pycocotools.

The paper names its metrics (Dice and IoU, reported as mIoU and Dice, each the mean of three seeds)
without writing them out; here they are the standard binary-mask definitions, scored per object as
a promptable model is (one prompt, one mask, one object):

- for a predicted mask ``P`` and the object's mask ``G``: ``IoU = |P & G| / |P | G|`` and
  ``Dice = 2 |P & G| / (|P| + |G|)`` (both 1 when ``P`` and ``G`` are empty, which cleaning
  prevents for ``G``; 0 when the object got no mask);
- per class: the mean over the class's objects; ``mIoU`` and ``mDice``: the mean over the classes
  that have objects (each class counts once, however many objects it has);
- per difficulty level (``easy``, ``hard``, ``hidden``): ``mIoU`` and ``mDice`` over that level's
  objects only (the mean over classes of the per-class means within the level);
- ``IoU_objects`` / ``Dice_objects``: the plain mean over all objects, for reference.

A result carrying ``ann_id`` (a promptable segmenter copies it from its :class:`Prompt`) is scored
against that object (the highest-scoring one when several name it). An object that no result names
is scored against the results of its image and class that carry no ``ann_id``, taking the best IoU
(and that result's Dice), so a segmenter that finds objects on its own is scored too.

Torch-free (numpy, pycocotools).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.data import DIFFICULTIES, decode_segmentation, read_json
from xraybag.learners.metrics import coco_metrics


def iou_dice(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """``(IoU, Dice)`` of two bool masks of the same shape (1, 1 when both are empty)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise XraybagError(f"masks differ in shape: predicted {pred.shape}, ground truth {gt.shape}")
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    return (inter / union if union else 1.0), (2.0 * inter / total if total else 1.0)


def load_mask_results(results: list[dict] | str | Path) -> list[dict]:
    """Mask results from a list or a JSON file: each needs ``image_id``, ``category_id``,
    ``segmentation`` (RLE or polygons) and ``score``; ``ann_id`` is kept when present, ``bbox``
    dropped (pycocotools would score the box's area instead of the mask's)."""
    where = None
    if isinstance(results, (str, Path)):
        where = str(results)
        results = read_json(results, "results file")
        if not isinstance(results, list):
            raise XraybagError("a COCO results file is a JSON list of results", where)
    out = []
    for i, r in enumerate(results):
        try:
            seg = r["segmentation"]
            if not isinstance(seg, (dict, list)) or not seg:
                raise TypeError(seg)
            d = {"image_id": int(r["image_id"]), "category_id": int(r["category_id"]),
                 "segmentation": seg, "score": float(r["score"])}
            if r.get("ann_id") is not None:
                d["ann_id"] = int(r["ann_id"])
        except (KeyError, TypeError, ValueError):
            raise XraybagError(f"results[{i}]: needs image_id, category_id, segmentation (RLE or polygons) and score",
                               where) from None
        out.append(d)
    return out


def object_scores(gt_coco: dict, results: list[dict] | str | Path) -> list[dict]:
    """IoU and Dice of every ground-truth object of ``gt_coco`` (crowd ones left out): dicts with
    ``ann_id``, ``image_id``, ``category_id``, ``difficulty``, ``iou``, ``dice``."""
    res = load_mask_results(results)
    sizes = {im["id"]: (int(im["height"]), int(im["width"])) for im in gt_coco["images"]}
    named: dict[int, dict] = {}
    free: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for r in res:
        if "ann_id" in r:
            if r["ann_id"] not in named or r["score"] > named[r["ann_id"]]["score"]:
                named[r["ann_id"]] = r
        else:
            free[(r["image_id"], r["category_id"])].append(r)
    decoded: dict[int, np.ndarray] = {}

    def mask_of(r: dict) -> np.ndarray:
        key = id(r)
        if key not in decoded:
            h, w = sizes[r["image_id"]]
            try:
                decoded[key] = decode_segmentation(r["segmentation"], h, w)
            except Exception as e:  # pycocotools raises bare Exceptions
                raise XraybagError(f"a result's segmentation for image {r['image_id']} cannot be decoded: {e}") from None
            if decoded[key].shape != (h, w):
                raise XraybagError(f"a result's mask for image {r['image_id']} is {decoded[key].shape[::-1]}, "
                                   f"the image {w} x {h}")
        return decoded[key]

    out = []
    for a in gt_coco["annotations"]:
        if a.get("iscrowd", 0):
            continue
        h, w = sizes[a["image_id"]]
        gt = decode_segmentation(a["segmentation"], h, w)
        if a["id"] in named:
            if named[a["id"]]["image_id"] != a["image_id"]:
                raise XraybagError(f"a result names object {a['id']} of image {a['image_id']} but is for image "
                                   f"{named[a['id']]['image_id']}")
            iou, dice = iou_dice(mask_of(named[a["id"]]), gt)
        else:
            pairs = [iou_dice(mask_of(r), gt) for r in free.get((a["image_id"], a["category_id"]), [])]
            iou, dice = max(pairs) if pairs else (0.0, 0.0)
        out.append({"ann_id": int(a["id"]), "image_id": int(a["image_id"]), "category_id": int(a["category_id"]),
                    "difficulty": str(a.get("difficulty", "easy")), "iou": iou, "dice": dice})
    return out


def _class_means(scores: list[dict]) -> dict[int, tuple[float, float, int]]:
    by: dict[int, list[dict]] = defaultdict(list)
    for s in scores:
        by[s["category_id"]].append(s)
    return {c: (float(np.mean([s["iou"] for s in v])), float(np.mean([s["dice"] for s in v])), len(v))
            for c, v in by.items()}


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def summarize(scores: list[dict], categories: list[dict]) -> dict:
    """``mIoU``, ``mDice``, ``IoU_objects``, ``Dice_objects``, ``objects``, ``per_class``
    ``{name: {"IoU", "Dice", "objects"}}`` and ``per_difficulty`` ``{level: {"mIoU", "mDice",
    "objects"}}`` of per-object ``scores`` (see the module docstring); ``None`` where no object."""
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in categories}
    cm = _class_means(scores)
    out: dict = {
        "mIoU": _r(np.mean([v[0] for v in cm.values()])) if cm else None,
        "mDice": _r(np.mean([v[1] for v in cm.values()])) if cm else None,
        "IoU_objects": _r(np.mean([s["iou"] for s in scores])) if scores else None,
        "Dice_objects": _r(np.mean([s["dice"] for s in scores])) if scores else None,
        "objects": len(scores),
    }
    out["per_class"] = {
        names.get(c, str(c)): {"IoU": _r(cm[c][0]) if c in cm else None, "Dice": _r(cm[c][1]) if c in cm else None,
                               "objects": cm[c][2] if c in cm else 0}
        for c in sorted(names)
    }
    per_diff = {}
    for level in DIFFICULTIES:
        lm = _class_means([s for s in scores if s["difficulty"] == level])
        per_diff[level] = {"mIoU": _r(np.mean([v[0] for v in lm.values()])) if lm else None,
                           "mDice": _r(np.mean([v[1] for v in lm.values()])) if lm else None,
                           "objects": sum(v[2] for v in lm.values())}
    out["per_difficulty"] = per_diff
    return out


def segmentation_metrics(gt_coco: dict, results: list[dict] | str | Path, coco: bool = True) -> dict:
    """The metrics of mask ``results`` against ``gt_coco`` (e.g. ``SegmentationDataset.coco_subset()``,
    the cleaned ground truth): :func:`summarize` of the per-object scores, and with ``coco`` the
    COCO ``segm`` metrics under ``coco_segm`` (``mAP``, ``mAP50``, ... ``per_class``,
    ``per_difficulty``, as :func:`xraybag.learners.metrics.coco_metrics` gives for boxes). Results on
    images not in ``gt_coco`` are dropped."""
    res = load_mask_results(results)
    ids = {im["id"] for im in gt_coco["images"]}
    res = [r for r in res if r["image_id"] in ids]
    out = summarize(object_scores(gt_coco, res), gt_coco.get("categories", []))
    if coco:
        dets = [{k: v for k, v in r.items() if k != "ann_id"} for r in res]
        out["coco_segm"] = coco_metrics(gt_coco, dets, iou_type="segm")
    return out
