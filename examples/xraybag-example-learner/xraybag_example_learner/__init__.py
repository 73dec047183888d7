"""A minimal xraybag learner plugin (numpy only): a model and a synthesizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from xraybag.learners import DetectionDataset, Model, Synthesizer
from xraybag.errors import XraybagError


class MeanBoxModel(Model):
    """Predicts, for every class, its mean training box (scaled to the image) with the fraction
    of training images that contain the class as the score. A baseline, not a detector."""

    name = "mean_box"
    description = "per-class mean box at the class frequency (a numpy toy baseline)"

    @classmethod
    def options(cls):
        return {
            "min_score": (float, 0.0, "leave out classes whose frequency is below this"),
            "epochs": (int, 1, "passes over the data (the mean does not change; for demonstration)"),
        }

    def train(self, train: DetectionDataset, out: Path, val=None, device="auto", resume=False, progress=True) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        k = train.num_classes
        sums, boxes, present = np.zeros((k, 4)), np.zeros(k), np.zeros(k)
        for _ in range(self.epochs):
            sums[:], boxes[:], present[:] = 0, 0, 0
            for im in train.images:  # the annotations are enough: no need to load the pixels
                w, h = im["width"], im["height"]
                seen = set()
                for a in train.annotations(im["id"]):
                    if a.get("iscrowd"):
                        continue
                    c = train.category_id_to_label[a["category_id"]]
                    x, y, bw, bh = a["bbox"]
                    sums[c] += (x / w, y / h, (x + bw) / w, (y + bh) / h)
                    boxes[c] += 1
                    seen.add(c)
                for c in seen:
                    present[c] += 1
        model = {
            "categories": train.label_to_category_id,
            "mean_box": (sums / np.maximum(boxes, 1)[:, None]).tolist(),
            "frequency": (present / max(len(train), 1)).tolist(),
            "input": train.input,
        }
        weights = out / "weights.json"
        weights.write_text(json.dumps(model, indent=1))
        return weights

    def predict(self, weights: Path, data: DetectionDataset, device="auto") -> list[dict]:
        try:
            model = json.loads(Path(weights).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise XraybagError(f"not a mean_box weights file: {e}", str(weights)) from None
        results = []
        for im in data.images:
            w, h = im["width"], im["height"]
            for cid, box, freq in zip(model["categories"], model["mean_box"], model["frequency"]):
                if freq <= 0 or freq < self.min_score or cid not in data.category_id_to_label:
                    continue
                x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
                results.append({"image_id": im["id"], "category_id": cid,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(freq)})
        return results


def _flip_rle(seg, height: int, width: int):
    from pycocotools import mask as mask_utils

    rle = dict(seg)
    if isinstance(rle.get("counts"), str):
        rle["counts"] = rle["counts"].encode()
    m = mask_utils.decode(rle)[:, ::-1]
    out = mask_utils.encode(np.asfortranarray(m))
    out["counts"] = out["counts"].decode()
    return out


class FlipSynthesizer(Synthesizer):
    """The dataset plus a left-right mirrored copy of every bag (as new bags after the last)."""

    name = "hflip"
    description = "adds a horizontally flipped copy of every bag (images, raw, masks, boxes)"

    @classmethod
    def options(cls):
        return {"keep_original": (bool, True, "also copy the original bags into the output")}

    def synthesize(self, data: Path, out: Path, **kw) -> Path:
        from PIL import Image
        import tifffile

        data, out = Path(data), Path(out)
        coco = json.loads((data / "annotations.json").read_text())
        for sub in ("images", "raw", "clcxray", "labels"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        bags = [im.get("bag", im["id"]) for im in coco["images"]]
        bag_offset = max(bags) + 1 if bags else 0
        id_offset = max((im["id"] for im in coco["images"]), default=0)
        ann_offset = max((a["id"] for a in coco["annotations"]), default=0)
        images, annotations = [], []
        if self.keep_original:
            for im in coco["images"]:
                for rel in [im["file_name"], *im.get("raw", {}).values(), im.get("labels"),
                            f"clcxray/{Path(im['file_name']).name}"]:
                    if rel and (data / rel).is_file():
                        shutil.copyfile(data / rel, out / rel)
                images.append({k: v for k, v in im.items() if k != "scene"})
            annotations += coco["annotations"]
        by_image = {}
        for a in coco["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for im in coco["images"]:
            bag = im.get("bag", im["id"]) + bag_offset
            view = im.get("view", "view")
            stem = f"{bag:06d}_{view}"
            new = {k: v for k, v in im.items() if k not in ("scene",)}
            new.update(id=im["id"] + id_offset, bag=bag, file_name=f"images/{stem}.png", flipped_from=im["id"])
            with Image.open(data / im["file_name"]) as src:
                src.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out / new["file_name"])
            if im.get("raw"):
                new["raw"] = {}
                for ch, rel in im["raw"].items():
                    dst = f"raw/{stem}_{ch}.tiff"
                    tifffile.imwrite(out / dst, np.ascontiguousarray(tifffile.imread(data / rel)[:, ::-1]))
                    new["raw"][ch] = dst
            clc = data / "clcxray" / Path(im["file_name"]).name
            if clc.is_file():
                with Image.open(clc) as src:
                    src.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out / "clcxray" / f"{stem}.png")
            if im.get("labels") and (data / im["labels"]).is_file():
                new["labels"] = f"labels/{stem}.png"
                with Image.open(data / im["labels"]) as src:
                    src.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out / new["labels"])
            else:
                new.pop("labels", None)
            images.append(new)
            w = im["width"]
            for a in by_image.get(im["id"], []):
                x, y, bw, bh = a["bbox"]
                b = dict(a, id=a["id"] + ann_offset, image_id=new["id"], bbox=[w - x - bw, y, bw, bh])
                if isinstance(a.get("segmentation"), dict):
                    b["segmentation"] = _flip_rle(a["segmentation"], im["height"], w)
                b.pop("pose", None)  # the 3D pose of the mirrored bag is not a rotation of the original
                annotations.append(b)
        result = dict(coco, images=images, annotations=annotations)
        (out / "annotations.json").write_text(json.dumps(result))
        return out
