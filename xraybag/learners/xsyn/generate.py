"""One ``xsyn`` generation run: grounding per image (variant M or A), inpainting with BOM, CAR on the
un-occluded results, and the output dataset.

Phases (the segmenter runs in two batches, on small dataset folders under ``out/.xsyn_work``):

1. Segments (variant A, or BOM): the segmenter prompted on a grid of points over every input
   image; distinct masks by non-maximum suppression (:func:`.car.segments`).
2. Generation: per image, the grounding (M: every annotated object of at least ``min_box_ratio`` of
   the image, its class name or its ``relabel``; A: one idle region by Eq. 3, the two largest
   segments left out, with a class whose median training box area is within a factor 4 of the
   region's, else the nearest), the inpainting, and BOM with an occluder chosen by Eq. 3 among the
   other segments (for A with the added box among the boxes to avoid, the paper's footnote).
3. CAR on the un-occluded images (the paper: "the original result is used by CAR"), for ``car_n``
   and each ``car_compare`` n.
4. The output: the occluded image when BOM found an occluder, else the painted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xraybag.learners.xsyn import car as carmod
from xraybag.learners.xsyn import geometry

AREA_FACTOR = 4.0


def _xyxy(b) -> list[float]:
    return [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])]


def _xywh(b) -> list[float]:
    return [round(float(b[0]), 3), round(float(b[1]), 3), round(float(b[2] - b[0]), 3), round(float(b[3] - b[1]), 3)]


def pick_class(area: float, class_areas: dict[str, float], allowed: list[str], rng) -> str:
    """A class for an idle region of ``area`` px: uniformly among ``allowed`` classes whose median
    training box area is within :data:`AREA_FACTOR` of it, else the one nearest in log area."""
    known = [c for c in allowed if class_areas.get(c, 0) > 0]
    if not known:
        return str(rng.choice(allowed))
    dist = {c: abs(np.log(area / class_areas[c])) for c in known}
    near = [c for c in known if dist[c] <= np.log(AREA_FACTOR)]
    return str(rng.choice(near)) if near else min(known, key=lambda c: dist[c])


class Generator:
    def __init__(self, opts, pipe, ds, seg, relabel: dict[str, str], device: str):
        self.o, self.pipe, self.ds, self.seg, self.relabel, self.device = opts, pipe, ds, seg, relabel, device
        self.names = {c["id"]: c["name"] for c in ds.categories}
        self.rng = np.random.default_rng(opts.seed)

    # ---------------------------------------------------------------- phases
    def _segments(self, images: list[dict], work: Path) -> dict[int, tuple]:
        o = self.o
        if self.seg is None or not (o.variant == "A" or o.bom):
            return {}
        carmod.write_work_set(work / "input", [(im["id"], self.ds.load_image(im)[..., :3]) for im in images],
                              self.ds.categories)
        prompts = [p for im in images for p in carmod.grid_prompts(im["id"], (im["height"], im["width"]), o.grid)]
        res = carmod.run(self.seg, o.segmenter_weights, work / "input", prompts, self.device)
        per = o.grid * o.grid
        return {im["id"]: carmod.segments(res[k * per:(k + 1) * per], (im["height"], im["width"]))
                for k, im in enumerate(images)}

    def _grounding(self, im: dict, segs):
        """(annotations painted, phrases, boxes xyxy, occluder xyxy or None), or None to skip."""
        o, w, h = self.o, im["width"], im["height"]
        anns = [a for a in self.ds.annotations(im["id"]) if not a.get("iscrowd", 0)]
        ann_boxes = np.array([_xyxy(a["bbox"]) for a in anns], np.float64).reshape(-1, 4)
        seg_boxes, seg_areas = segs if segs is not None else (np.zeros((0, 4)), np.zeros(0))
        if o.variant == "M":
            big = geometry.filter_small(ann_boxes, (w, h), o.min_box_ratio) if len(anns) else np.zeros(0, bool)
            painted = [a for a, b in zip(anns, big) if b]
            if not painted:
                return None
            phrases = [self.relabel.get(self.names[a["category_id"]], self.names[a["category_id"]]) for a in painted]
            boxes = [_xyxy(a["bbox"]) for a in painted]
            extra = ()
        else:
            idle = geometry.idle_regions(seg_boxes, seg_areas, ann_boxes, o.d, (w, h), o.min_box_ratio)
            if not len(idle):
                return None
            k = int(self.rng.choice(idle))
            lb = seg_boxes[k].tolist()
            allowed = list(o.add_classes) or self.pipe.class_names
            phrases = [pick_class((lb[2] - lb[0]) * (lb[3] - lb[1]), self.pipe.meta.get("class_areas", {}),
                                  allowed, self.rng)]
            painted, boxes, extra = [], [lb], (lb,)
        occ = None
        if o.bom and len(seg_boxes):
            cand = geometry.idle_regions(seg_boxes, seg_areas, ann_boxes, o.d, (w, h), o.min_box_ratio,
                                         extra_boxes=extra)
            if len(cand):
                occ = seg_boxes[int(self.rng.choice(cand))].tolist()
        return painted, phrases, boxes, occ

    def run(self, out: Path, work: Path) -> None:
        from xraybag.engine.output.files import sha256, write_atomic
        from xraybag.learners.seg_data import mask_to_rle
        from xraybag.learners.tip.output import start_output
        from xraybag.learners.xsyn.sampling import inpaint_windows

        o, ds = self.o, self.ds
        images = ds.images[: o.max_images] if o.max_images else list(ds.images)
        bags = {int(im.get("bag", im["id"])) for im in ds.coco["images"]}
        out_state = start_output(ds.root, out, ds.coco, bags, o.keep_original)
        segs = self._segments(images, work)
        jobs, skipped = [], []
        for im in images:
            g = self._grounding(im, segs.get(im["id"]))
            if g is None:
                skipped.append({"image": im["id"], "why": "no object to repaint" if o.variant == "M" else "no idle region"})
                continue
            painted, phrases, boxes, occ = g
            img = ds.load_image(im)[..., :3]
            res = inpaint_windows(self.pipe, img, phrases, boxes, o.dilate, o.window, occluder=occ,
                                  device=self.device, steps=o.steps, guidance=o.guidance,
                                  seed=o.seed * 1_000_003 + int(im["id"]), alpha=o.alpha, rng=self.rng)
            jobs.append({"im": im, "painted": painted, "phrases": phrases, "boxes": boxes, "occ": occ, "res": res})
        refined = self._car(jobs, work) if o.car else {}
        # the output dataset
        cats = out_state.categories
        cat_id = dict(out_state.cat_id)
        for name in sorted({p for j in jobs for p in j["phrases"]} - set(cat_id)):
            cat_id[name] = max([c["id"] for c in cats] + [0]) + 1
            cats.append({"id": cat_id[name], "name": name, "supercategory": "item"})
        ann_id = max([a["id"] for a in ds.coco["annotations"]] + [0]) + 1
        for j, job in enumerate(jobs):
            im, res = job["im"], job["res"]
            bag, iid = out_state.next_bag, out_state.next_image
            out_state.next_bag += 1
            out_state.next_image += 1
            final = res.hidden if res.hidden is not None else res.image
            rel = f"images/{bag:06d}_{im.get('view', 'view')}.png"
            blob = carmod.png_bytes(final)
            write_atomic(out / rel, blob)
            note = {"method": "xsyn", "variant": o.variant, "source_image": im["id"], "source_file": im["file_name"],
                    "checkpoint": str(o.checkpoint), "checkpoint_iteration": int(self.pipe.meta.get("iteration", 0)),
                    "seed": o.seed * 1_000_003 + int(im["id"]), "steps": o.steps, "guidance": o.guidance,
                    "prompt": " ".join(job["phrases"]), "edit_mask": mask_to_rle(res.edited),
                    "bom": ({"occluder": _xywh(job["occ"]), "alpha": o.alpha} if res.hidden is not None else None),
                    "car": ({"n": o.car_n, "region": "otsu", "segmenter": o.segmenter} if o.car else None),
                    "raw": "none: a generated pseudo-colour image has no detector channels"}
            rec = {k: v for k, v in im.items() if k not in ("raw", "labels", "scene", "synthetic")}
            out_state.images.append(dict(rec, id=iid, bag=bag, file_name=rel, synthetic=note))
            painted_ids = {a["id"] for a in job["painted"]}
            for a in ds.annotations(im["id"]):  # untouched objects: their labels as they were
                if a["id"] not in painted_ids:
                    out_state.annotations.append(dict(a, id=ann_id, image_id=iid))
                    ann_id += 1
            for k, (phrase, box) in enumerate(zip(job["phrases"], job["boxes"])):
                ref = refined.get((j, k), {})
                final_box = ref.get(o.car_n) or _xywh(box)
                syn = {"method": "xsyn", "variant": o.variant, "requested": phrase, "grounding_box": _xywh(box),
                       "car_boxes": {str(n): b for n, b in ref.items() if b is not None},
                       "occluded": res.hidden is not None}
                if job["painted"]:
                    syn["source_annotation"] = job["painted"][k]["id"]
                x, y, bw, bh = final_box
                out_state.annotations.append({
                    "id": ann_id, "image_id": iid, "category_id": cat_id[phrase], "bbox": final_box,
                    "area": round(bw * bh, 3), "iscrowd": 0,
                    "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]], "synthetic": syn})
                ann_id += 1
            out_state.manifest.append(json.dumps({"bag": bag, "synthetic": {k: v for k, v in note.items()
                                                                             if k != "edit_mask"},
                                                  "files": {rel: sha256(blob)}}, sort_keys=True))
        result = dict(ds.coco, categories=cats, images=out_state.images, annotations=out_state.annotations)
        if skipped:
            result["xsyn_skipped"] = skipped
        write_atomic(out / "annotations.json", json.dumps(result).encode())
        write_atomic(out / "manifest.jsonl",
                     ("\n".join(out_state.manifest) + "\n").encode() if out_state.manifest else b"")

    def _car(self, jobs: list[dict], work: Path) -> dict[tuple[int, int], dict[int, list[float] | None]]:
        """CAR's boxes ``[x, y, w, h]`` (None where the mask came out empty) per (job, object) and n."""
        o = self.o
        if not jobs:
            return {}
        carmod.write_work_set(work / "gen", [(j + 1, job["res"].image) for j, job in enumerate(jobs)],
                              self.ds.categories)
        ns = sorted({o.car_n, *o.compare_n()})
        keys, prompts = [], []
        for j, job in enumerate(jobs):
            for k, box in enumerate(job["boxes"]):
                for n in ns:
                    keys.append((j, k, n))
                    prompts.append(carmod.car_prompt(j + 1, job["res"].attention[k], box, n))
        results = carmod.run(self.seg, o.segmenter_weights, work / "gen", prompts, self.device)
        out: dict[tuple[int, int], dict[int, list[float] | None]] = {}
        for (j, k, n), r in zip(keys, results):
            b = carmod.clip_to(carmod.result_box(r), jobs[j]["boxes"][k], o.dilate, jobs[j]["res"].edited.shape)
            out.setdefault((j, k), {})[n] = [round(v, 3) for v in b] if b is not None else None
        return out
