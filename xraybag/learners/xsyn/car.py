"""Xsyn's uses of a promptable segmenter: Cross-Attention Refinement (CAR) of the generated objects'
boxes, and the segments of a whole image that Eq. 3 chooses idle regions and occluders from.

Any registered promptable segmenter serves (``sam_finetune``, ``apsam`` or a plugin): it is loaded by
name through the learner registry, given its weights file, and run through its public
:meth:`~xraybag.learners.base.Segmenter.predict` on a small dataset folder of the images to segment
(written by :func:`write_work_set`), with one :class:`~xraybag.learners.base.Prompt` per object.

CAR (the paper's section IV.B): for a generated object with grounding box ``l`` and class-token
cross-attention map ``M``, the class-discriminative region ``r`` is ``M`` inside ``l`` above Otsu's
threshold (the paper segments ``M`` with SAM; a segmenter trained on X-ray images has never seen an
attention map, so Otsu's threshold on the map stands in for that one step and is named as such in
the annotations); median point sampling with ``n`` divisions gives ``2**n - 1`` foreground points
and one background point; the prompt is those points plus the box ``l``, and the box of the
segmenter's mask is the refined annotation. ``n = 0`` prompts with the box alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.base import Prompt, load
from xraybag.learners.xsyn import geometry


def load_segmenter(name: str, weights: Path | None):
    """The promptable segmenter ``name`` and its weights file, checked before any work."""
    cls = load(name)
    if cls.kind != "segmenter" or not getattr(cls, "promptable", False):
        raise XraybagError(f"option segmenter: {name!r} is not a promptable segmenter (CAR and the segments need one)")
    if weights is None:
        raise XraybagError("option segmenter_weights is required for CAR, BOM and variant A: the weights.pt of "
                           "'xraybag learn train sam_finetune|apsam' (or car=false bom=false with variant M)")
    if not Path(weights).is_file():
        raise XraybagError("option segmenter_weights: file does not exist", str(weights))
    seg = cls()
    seg.check()
    return seg


def png_bytes(img: np.ndarray) -> bytes:
    """An ``H x W x 3`` float image in [0, 1] as 8-bit PNG bytes."""
    from xraybag.engine.output.files import encode_png

    return encode_png(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))


def write_work_set(folder: Path, images: list[tuple[int, np.ndarray]], categories: list[dict]) -> None:
    """A dataset folder holding ``images`` (id, ``H x W x 3`` float in [0, 1]) as PNGs, each with a
    placeholder whole-image annotation (segmenter datasets need masks to open; prompts carry no
    ``ann_id``, so it is never scored)."""
    from xraybag.engine.output.files import write_atomic

    categories = categories or [{"id": 1, "name": "object"}]  # a set of unlabelled bags has none
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    recs, anns = [], []
    for iid, img in images:
        h, w = img.shape[:2]
        rel = f"images/{iid:06d}.png"
        write_atomic(folder / rel, png_bytes(img))
        recs.append({"id": iid, "file_name": rel, "width": w, "height": h, "bag": iid})
        anns.append({"id": iid, "image_id": iid, "category_id": categories[0]["id"], "bbox": [0, 0, w, h],
                     "area": w * h, "iscrowd": 0, "segmentation": [[0, 0, w, 0, w, h, 0, h]]})
    (folder / "annotations.json").write_text(json.dumps({"images": recs, "annotations": anns,
                                                         "categories": categories}))


def run(seg, weights: Path, folder: Path, prompts: list[Prompt], device: str) -> list[dict]:
    """The segmenter's results for ``prompts`` on the work set at ``folder`` (one per prompt)."""
    from xraybag.learners.seg_data import SegmentationDataset

    if not prompts:
        return []
    data = SegmentationDataset(folder, split="all", channels="pseudo_colour", min_side=1, aspect=(1e-6, 1e6),
                               min_area=0, min_thickness=0)
    return seg.predict(Path(weights), data, prompts=prompts, device=device)


def car_prompt(image_id: int, att: np.ndarray, box, n: int) -> Prompt:
    """The CAR prompt for one object: median points of its attention map's Otsu region (``n``
    divisions) plus a background point, and the grounding box."""
    region = geometry.otsu_region(att, box)
    fg, bg = geometry.median_points(att, region, n, box=box)
    pts = [p for p in fg] + ([bg] if bg is not None else [])
    labels = [1] * len(fg) + ([0] if bg is not None else [])
    h, w = att.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    box = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
    return Prompt(image_id=image_id, points=np.asarray(pts, np.float32).reshape(-1, 2),
                  point_labels=np.asarray(labels, np.int64), box=box)


def result_box(res: dict) -> list[float] | None:
    """``[x, y, w, h]`` of a segmenter result's mask, or None when the mask is empty."""
    b = res.get("bbox") or [0, 0, 0, 0]
    return [float(v) for v in b] if b[2] > 0 and b[3] > 0 else None


def clip_to(box: list[float] | None, grounding, dilate: int, shape_hw) -> list[float] | None:
    """A CAR box ``[x, y, w, h]`` cut to the painted region (the grounding box grown by ``dilate``,
    within the image): the painted object cannot reach past the pixels the generator changed, so
    any part of the segmenter's mask beyond them is another object. None when nothing is left."""
    if box is None:
        return None
    h, w = shape_hw
    gx1, gy1 = max(0.0, grounding[0] - dilate), max(0.0, grounding[1] - dilate)
    gx2, gy2 = min(float(w), grounding[2] + dilate), min(float(h), grounding[3] + dilate)
    x1, y1 = max(box[0], gx1), max(box[1], gy1)
    x2, y2 = min(box[0] + box[2], gx2), min(box[1] + box[3], gy2)
    return [x1, y1, x2 - x1, y2 - y1] if x2 > x1 and y2 > y1 else None


def grid_prompts(image_id: int, hw: tuple[int, int], per_side: int) -> list[Prompt]:
    """One foreground click on each node of a ``per_side`` x ``per_side`` grid (SAM's automatic mask
    generation prompts every point of such a grid)."""
    h, w = hw
    xs = (np.arange(per_side) + 0.5) * w / per_side
    ys = (np.arange(per_side) + 0.5) * h / per_side
    return [Prompt(image_id=image_id, points=[[min(np.floor(x), w - 1), min(np.floor(y), h - 1)]])
            for y in ys for x in xs]


def segments(results: list[dict], hw: tuple[int, int], min_score: float = 0.0, nms_iou: float = 0.7):
    """Boxes (xyxy) and mask areas of the distinct segments among one image's grid results: empty
    masks and scores under ``min_score`` dropped, then greedy non-maximum suppression by box IoU."""
    from pycocotools import mask as mask_utils

    cand = []
    for r in results:
        b = result_box(r)
        if b is None or float(r.get("score", 0.0)) < min_score:
            continue
        area = float(mask_utils.area(r["segmentation"]))
        cand.append((float(r.get("score", 0.0)), [b[0], b[1], b[0] + b[2], b[1] + b[3]], area))
    cand.sort(key=lambda c: -c[0])
    boxes, areas = [], []
    for _s, b, a in cand:
        if all(geometry.box_iou(b, k) <= nms_iou for k in boxes):
            boxes.append(b)
            areas.append(a)
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(areas, np.float64)
