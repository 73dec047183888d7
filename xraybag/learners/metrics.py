"""COCO box (and, with ``iou_type="segm"``, mask) metrics with pycocotools, overall, per class and
per difficulty level.

Per difficulty level (``easy``, ``hard``, ``hidden``, the ``difficulty`` field the engine writes):
the ground truth of the other levels is marked ``iscrowd=1``, so a detection that matches one of
those objects is ignored (neither a true nor a false positive) and only objects of the level count.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.data import DIFFICULTIES, read_json

SUMMARY_KEYS = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large")


def _num(v: float) -> float | None:
    """A pycocotools statistic; -1 (nothing to score) becomes ``None``."""
    v = float(v)
    return None if v < 0 else round(v, 6)


def _prepare_gt(gt: dict) -> dict:
    gt = copy.deepcopy(gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    for a in gt.get("annotations", []):
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
    return gt


def load_results(results: list[dict] | str | Path) -> list[dict]:
    """COCO results from a list or a JSON file."""
    if isinstance(results, (str, Path)):
        path = Path(results)
        data = read_json(path, "results file")
        if not isinstance(data, list):
            raise XraybagError("a COCO results file is a JSON list of detections", str(path))
        results = data
    out = []
    for i, r in enumerate(results):
        try:
            x, y, w, h = (float(v) for v in r["bbox"])
            out.append(
                {"image_id": int(r["image_id"]), "category_id": int(r["category_id"]),
                 "bbox": [x, y, w, h], "score": float(r["score"])}
            )
        except (KeyError, TypeError, ValueError):
            raise XraybagError(f"results[{i}]: needs image_id, category_id, bbox [x, y, w, h] and score") from None
    return out


def _evaluate(gt: dict, dets: list[dict], iou_type: str = "bbox"):
    """COCOeval (``bbox`` or ``segm``) after evaluate/accumulate/summarize, or ``None`` when
    nothing to score."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not dets or not gt["annotations"]:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _summary(ev) -> dict:
    if ev is None:
        return {k: 0.0 for k in SUMMARY_KEYS}
    return {k: _num(ev.stats[i]) for i, k in enumerate(SUMMARY_KEYS)}


def _class_ap(ev, k: int, iou: float | None) -> float | None:
    # precision: [T iou thresholds, R recall, K classes, A area ranges, M max dets]; area "all",
    # maxDets 100 (the last)
    p = ev.eval["precision"]
    if iou is None:
        s = p[:, :, k, 0, -1]
    else:
        t = int(np.argmin(np.abs(ev.params.iouThrs - iou)))
        s = p[t, :, k, 0, -1]
    s = s[s > -1]
    return _num(s.mean()) if s.size else None


def coco_metrics(gt_coco: dict, results: list[dict] | str | Path, iou_type: str = "bbox") -> dict:
    """COCO box metrics of ``results`` (a list of COCO result dicts or a JSON file of them) against
    the ground truth ``gt_coco`` (a COCO dict, e.g. ``DetectionDataset.coco_subset()``).
    ``iou_type="segm"`` scores masks instead: ``results`` is then a list already checked by
    :func:`xraybag.learners.seg_metrics.load_mask_results` (a ``segmentation`` each, no ``bbox``).

    Returns ``mAP``, ``mAP50``, ``mAP75``, ``mAP_small``, ``mAP_medium``, ``mAP_large`` (fractions in
    [0, 1]; ``None`` where there is no ground truth to score, e.g. no small objects),
    ``per_class`` ``{name: {"AP", "AP50", "gt"}}``, ``per_difficulty``
    ``{easy|hard|hidden: {"mAP", "mAP50", "mAP75", ..., "gt"}}`` and counts. Results on images not
    in ``gt_coco`` are dropped; no results gives zeros.
    """
    gt = _prepare_gt(gt_coco)
    if iou_type not in ("bbox", "segm"):
        raise XraybagError(f"iou_type must be bbox or segm, got {iou_type!r}")
    dets = load_results(results) if iou_type == "bbox" else list(results)
    image_ids = {im["id"] for im in gt["images"]}
    dets = [d for d in dets if d["image_id"] in image_ids]

    ev = _evaluate(gt, dets, iou_type)
    out: dict = dict(_summary(ev))
    out["images"] = len(gt["images"])
    out["ground_truth"] = sum(1 for a in gt["annotations"] if not a.get("iscrowd"))
    out["detections"] = len(dets)

    cats = sorted(gt.get("categories", []), key=lambda c: c["id"])
    per_class = {}
    for k, c in enumerate(cats):
        n = sum(1 for a in gt["annotations"] if a["category_id"] == c["id"] and not a.get("iscrowd"))
        if ev is None:
            ap = ap50 = (0.0 if n else None)
        else:
            kk = list(ev.params.catIds).index(c["id"])
            ap, ap50 = _class_ap(ev, kk, None), _class_ap(ev, kk, 0.5)
        per_class[str(c.get("name", c["id"]))] = {"AP": ap, "AP50": ap50, "gt": n}
    out["per_class"] = per_class

    per_diff = {}
    for level in DIFFICULTIES:
        g = copy.deepcopy(gt)
        n = 0
        for a in g["annotations"]:
            if a.get("iscrowd"):
                continue
            if a.get("difficulty", "easy") == level:
                n += 1
            else:
                a["iscrowd"] = 1
        if n == 0:
            per_diff[level] = {k: None for k in SUMMARY_KEYS} | {"gt": 0}
            continue
        per_diff[level] = _summary(_evaluate(g, dets, iou_type)) | {"gt": n}
    out["per_difficulty"] = per_diff
    return out
