"""The ``tip`` synthesizer: a dataset of bags in, the same bags with threats composited in out
(same layout: annotations.json, images/, raw/, labels/, scenes/, clcxray/ when the input has it,
manifest.jsonl; plus ``tip.json``, the run's report: options, class counts before and after,
composites skipped).

Each composite is a new bag (indices after the last input bag): the source bag's views with one
threat composited (:mod:`.core`), its labels recomputed for the combined scene (the source
objects keep their masks; their occlusion and difficulty follow the new contents), and its
concrete scene (the source bag plus the threat at its pose: rendering it with ``xraybag render``
gives the composite again, up to the noise draw). Every composited image and threat annotation
carries ``synthetic`` (method ``tip``, threat template, seed, pose, signal model, placement,
source bag and image). The input is checked before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xraybag.engine.output.files import (
    encode_png,
    encode_tiff,
    scene_yaml,
    sha256,
    write_atomic,
)
from xraybag.engine.xray.colour import clcxray_encoding
from xraybag.errors import XraybagError
from xraybag.learners.base import Synthesizer
from xraybag.learners.tip.core import (
    SIGNALS,
    bag_with_threat,
    composite_view,
    load_bag,
    threat_info,
    threat_object,
    threat_samples,
    trace_threat,
)
from xraybag.learners.tip.output import start_output
from xraybag.learners.tip.photo import IMAGE_OPTIONS, synthesize_images
from xraybag.learners.tip.place import (
    PLACEMENTS,
    choose_pose,
    class_counts,
    draw_pose,
    fits_nowhere,
    pick_threats,
)
from xraybag.learners.tip.rawfolder import RAW_OPTIONS, synthesize_raw


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def check_input(data: Path, coco: dict) -> dict[int, list[dict]]:
    """Images by bag; every image must have its raw low/high channels and its bag's scene."""
    bags: dict[int, list[dict]] = {}
    for k, im in enumerate(coco.get("images", [])):
        where = f"{data / 'annotations.json'}: images[{k}] (id {im.get('id')})"
        raw = im.get("raw") or {}
        if not {"low", "high"} <= set(raw):
            raise XraybagError("has no raw low/high channels; tip composites into the raw signals "
                               "(render the dataset with a dual-energy scanner)", where)
        for rel in raw.values():
            if not (data / rel).is_file():
                raise XraybagError(f"raw file {rel} does not exist", where)
        scene = im.get("scene")
        if not scene or not (data / scene).is_file():
            raise XraybagError("has no concrete scene (scenes/<bag>.yaml); tip traces the threat "
                               "through the bag's own scanner views", where)
        bags.setdefault(int(im.get("bag", im["id"])), []).append(im)
    if not bags:
        raise XraybagError("holds no images", str(data / "annotations.json"))
    return bags


class TIPSynthesizer(Synthesizer):
    name = "tip"
    description = ("physics threat-image projection: catalog threats traced through each bag's own "
                   "scanner views and composited into its raw low/high signals, exact labels")

    @classmethod
    def options(cls):
        return {
            "threats": (str, "pistol,revolver,chef_knife,folding_knife",
                        "comma-separated catalog or template names of the threats"),
            "copies": (int, 1, "composites made from each input bag"),
            "placement": (str, "random", "random or hidden (the most covered of `candidates` poses)"),
            "candidates": (int, 8, "poses tried per composite with placement=hidden"),
            "signal": (str, "basis", "basis (dual-energy basis fit, beam hardening), product or retrace"),
            "basis": (str, "pmma,aluminum", "the two basis materials of signal=basis (organic, inorganic)"),
            "balance": (str, "none", "none, equal (fewest-objects class first) or share"),
            "rare": (str, "", "with balance=share: the class to raise"),
            "share": (float, 0.0, "with balance=share: the share of all objects it should reach"),
            "seed": (int, 0, "seed of the threats, poses and added noise"),
            "keep_original": (bool, True, "also copy the input bags into the output"),
            **IMAGE_OPTIONS,  # threat_images: photographs of threats, composited in image space (photo.py)
            **RAW_OPTIONS,  # scanner: plain folders of raw low/high images, no scenes (rawfolder.py)
        }

    def check(self) -> None:  # options, before the data is read
        if self.signal not in SIGNALS:
            raise XraybagError(f"option signal: {self.signal!r}; expected one of {', '.join(SIGNALS)}")
        if self.placement not in PLACEMENTS:
            raise XraybagError(f"option placement: {self.placement!r}; expected one of {', '.join(PLACEMENTS)}")
        if len(self.basis_pair()) != 2:
            raise XraybagError(f"option basis: {self.basis!r}; expected two material names, e.g. pmma,aluminum")
        if self.copies < 1:
            raise XraybagError(f"option copies: {self.copies} must be at least 1")

    def check_data(self, data: Path) -> None:
        if self.scanner and self.threat_images is not None:
            raise XraybagError("options scanner and threat_images do not go together: threat images composite "
                               "into the pseudo-colour images of an xraybag dataset")
        if not self.scanner:  # with a scanner description, synthesize checks the raw folder first
            if Path(data).is_dir() and not (Path(data) / "annotations.json").is_file():
                raise XraybagError("is not an xraybag dataset (no annotations.json); for a plain folder of raw "
                                   "low/high images give --opt scanner=SCANNER.yaml", str(data))
            super().check_data(data)

    def basis_pair(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.basis.split(",") if m.strip())

    def synthesize(self, data: Path, out: Path, **kw: Any) -> Path:
        from xraybag.learners.data import read_json
        from xraybag.scenes.loader import load_scene

        self.check()
        if self.threat_images is not None:
            return synthesize_images(self, data, out)
        if self.scanner:
            return synthesize_raw(self, data, out)
        data, out = Path(data), Path(out)
        coco = read_json(data / "annotations.json", "annotations.json")
        bags = check_input(data, coco)
        if out.exists() and any(out.iterdir()):
            raise XraybagError("exists and is not empty; choose a new output folder", str(out))
        from xraybag.materials import default_library

        for m in self.basis_pair():
            try:
                default_library().get(m)
            except XraybagError as e:
                raise XraybagError(f"option basis: {e}") from None
        samples, classes = threat_samples(self.threats, self.seed)
        before, adds = class_counts(coco, bags, self.copies)
        rng = np.random.default_rng([self.seed, 7])
        order = sorted(bags)
        start = before if self.keep_original else {c: 0 for c in before}
        picks = pick_threats(classes, start, len(order) * self.copies, rng, self.balance,
                             self.rare or None, self.share, adds)
        interiors = {b: np.array([float(s) for s in load_scene(data / bags[b][0]["scene"]).spec.bag.size])
                     for b in order}
        for t, obj in samples.items():  # refuse a threat that fits no bag before writing anything
            if not any(draw_pose(obj, s, np.random.default_rng([self.seed, 3])) for s in interiors.values()):
                raise fits_nowhere(t, obj, interiors)
        plan = []  # which threat (sampled with its own seed) goes into which bag
        for n, t in enumerate(picks):
            b = order[n // self.copies]
            seed = self.seed * 1_000_003 + n
            obj = threat_object(t, seed)
            plan.append((b, t, seed, obj, draw_pose(obj, interiors[b], np.random.default_rng([seed, 1])) is not None))
        return self._write(data, out, coco, bags, plan, before)

    def _write(self, data: Path, out: Path, coco: dict, bags: dict, plan: list, before: dict) -> Path:
        o = start_output(data, out, coco, bags, self.keep_original)
        categories, cat_id, images, annotations = o.categories, o.cat_id, o.images, o.annotations
        manifest, by_image, next_bag, next_image = o.manifest, o.by_image, o.next_bag, o.next_image
        after = dict(before) if self.keep_original else {c: 0 for c in before}
        skipped, cache = [], {}
        for n, (b, t, seed, obj, fits) in enumerate(plan):
            if not fits:
                skipped.append({"bag": b, "threat": t, "why": "does not fit the bag's interior"})
                continue
            if b not in cache:
                cache = {b: load_bag(data / bags[b][0]["scene"])}
            bag = cache[b]
            ims = {im["view"]: im for im in bags[b]}
            stored = {v: {c: _read_tiff(data / ims[v]["raw"][c]).astype(np.float64)
                          / float(bag.views[v].scanner.detector.white) for c in ims[v]["raw"]}
                      for v in bag.views if v in ims}
            index = len(bag.scene.objects) + 1
            rng = np.random.default_rng([seed, 2])
            chosen = choose_pose(bag, obj, index, {v: s["low"] for v, s in stored.items()}, rng,
                                 self.placement, self.candidates)
            if chosen is None:
                skipped.append({"bag": b, "threat": t, "why": "no pose inside the bag's footprint"})
                continue
            posed, _ = chosen
            info = threat_info(posed, index, bag.scene.tolerance)
            if info.label not in cat_id:
                cat_id[info.label] = max(cat_id.values(), default=0) + 1
                categories.append({"id": cat_id[info.label], "name": info.label, "supercategory": "item"})
            new_bag = next_bag
            next_bag += 1
            stem_bag = f"{new_bag:06d}"
            provenance = {"method": "tip", "threat": t, "seed": seed, "signal": self.signal,
                          "basis": list(self.basis_pair()) if self.signal == "basis" else None,
                          "placement": self.placement, "source_bag": b,
                          "pose": {"position": [float(x) for x in posed.pose.position],
                                   "rotation_deg": [float(x) for x in posed.pose.rotation_deg]}}
            files: dict[str, bytes] = {}
            for v in bag.views:
                if v not in ims:
                    continue
                src = ims[v]
                thr = trace_threat(bag, v, posed, index)
                comp = composite_view(bag, v, stored[v], thr, rng, self.signal, self.basis_pair())
                stem = f"{stem_bag}_{v}"
                files[f"images/{stem}.png"] = encode_png(comp.rgb)
                for c, raw in comp.raw.items():
                    files[f"raw/{stem}_{c}.tiff"] = encode_tiff(raw)
                files[f"labels/{stem}.png"] = encode_png(comp.instance)
                if (data / "clcxray" / Path(src["file_name"]).name).is_file():
                    files[f"clcxray/{stem}.png"] = encode_png(clcxray_encoding(comp.raw["high"], comp.raw["low"]))
                image_id = next_image
                next_image += 1
                images.append(dict(src, id=image_id, bag=new_bag, file_name=f"images/{stem}.png",
                                   raw={c: f"raw/{stem}_{c}.tiff" for c in comp.raw},
                                   labels=f"labels/{stem}.png", scene=f"scenes/{stem_bag}.yaml",
                                   synthetic=dict(provenance, source_image=src["id"])))
                for a in by_image.get(src["id"], []):  # the bag's objects: same masks, new occlusion
                    lab = comp.labels.get(a.get("object_index"))
                    new = dict(a, id=image_id * 10000 + a.get("object_index", 0), image_id=image_id)
                    if lab is not None:
                        new.update(occlusion=round(lab.occlusion, 6), difficulty=lab.difficulty)
                    annotations.append(new)
                    if not a.get("iscrowd"):
                        name = next((c["name"] for c in categories if c["id"] == a["category_id"]), "?")
                        after[name] = after.get(name, 0) + 1
                lab = comp.labels.get(index)
                if lab is None or lab.area < bag.scene.annotation.min_pixels:
                    continue
                annotations.append({
                    "id": image_id * 10000 + index, "image_id": image_id, "category_id": cat_id[info.label],
                    "bbox": lab.bbox, "area": lab.area, "segmentation": lab.rle(), "iscrowd": 0,
                    "object_index": index, "name": info.name,
                    "material": info.materials[0] if info.materials else None,
                    "materials": list(info.materials), "occlusion": round(lab.occlusion, 6),
                    "difficulty": lab.difficulty, "pose": provenance["pose"], "synthetic": provenance,
                })
                after[info.label] = after.get(info.label, 0) + 1
            scene = bag_with_threat(bag, posed).model_copy(update={"bag_index": new_bag})
            files[f"scenes/{stem_bag}.yaml"] = scene_yaml(scene, out / "scenes").encode()
            for rel, blob in files.items():
                write_atomic(out / rel, blob)
            manifest.append(json.dumps({"bag": new_bag, "seed": seed, "synthetic": provenance,
                                        "files": {rel: sha256(blob) for rel, blob in files.items()}},
                                       sort_keys=True))
        _check_unique(annotations)
        result = dict(coco, categories=categories, images=images, annotations=annotations)
        write_atomic(out / "annotations.json", json.dumps(result).encode())
        write_atomic(out / "manifest.jsonl", ("\n".join(manifest) + "\n").encode() if manifest else b"")
        report = {"options": dict(self.config), "composites": len(plan) - len(skipped), "skipped": skipped,
                  "objects_before": before, "objects_after": after,
                  "share_after": {c: round(n / max(1, sum(after.values())), 4) for c, n in after.items()}}
        write_atomic(out / "tip.json", json.dumps(report, indent=1).encode())
        return out




def _check_unique(annotations: list[dict]) -> None:
    seen = set()
    for a in annotations:
        if a["id"] in seen:  # pragma: no cover - ids are made unique above
            raise XraybagError(f"annotation id {a['id']} would be written twice")
        seen.add(a["id"])
