"""One rendered bag out: its files (images, raw signals, labels, CT volumes, the concrete scene)
and its COCO records, as relative path -> bytes; and rendering plus writing one bag."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xraybag.engine.output.files import (
    bag_name,
    encode_png,
    encode_tiff,
    scene_yaml,
    sha256,
    write_atomic,
)
from xraybag.engine.output.pipeline import BagResult, CTProgress, render_bag
from xraybag.engine.xray.colour import clcxray_encoding
from xraybag.scenes.loader import LoadedScene

#: the dataset's own state (run identity, per-bag COCO parts), under OUT/
STATE_DIR = ".xraybag"


@dataclass(frozen=True)
class Options:
    save_transmission: bool = False
    encoding: tuple[str, ...] = ()  # e.g. ("clcxray",)
    trace_backend: str = "numba"  # the mesh tracer of the 2D views: "numba" (CPU) or "cuda"


def coco_records(result: BagResult, categories: dict[str, int], n_views: int) -> dict:
    """COCO images and annotations of one bag (ids depend only on the bag index)."""
    images, annotations = [], []
    name = bag_name(result.index)
    by_index = {o.index: o for o in result.objects}
    for v, view in enumerate(result.views):
        vname = view.scanner.name
        image_id = result.index * n_views + v + 1
        rows, cols = view.instance.shape
        images.append(
            {
                "id": image_id,
                "file_name": f"images/{name}_{vname}.png",
                "width": cols,
                "height": rows,
                "bag": result.index,
                "view": vname,
                "raw": {ch: f"raw/{name}_{vname}_{ch}.tiff" for ch in view.raw},
                "labels": f"labels/{name}_{vname}.png",
                "scene": f"scenes/{name}.yaml",
                "pixel_mm": view.geometry.pixel_mm,
                "effective_kev": round(view.effective_kev, 3),
            }
        )
        for k, lab in sorted(view.labels.items()):
            obj = by_index[k]
            if obj.label is None or lab.area < result.scene.annotation.min_pixels:
                continue
            annotations.append(
                {
                    "id": image_id * 10000 + k,
                    "image_id": image_id,
                    "category_id": categories[obj.label],
                    "bbox": lab.bbox,
                    "area": lab.area,
                    "segmentation": lab.rle(),
                    "iscrowd": 0,
                    "object_index": k,
                    "name": obj.name,
                    "material": obj.materials[0] if obj.materials else None,
                    "materials": list(obj.materials),
                    "occlusion": round(lab.occlusion, 6),
                    "difficulty": lab.difficulty,
                    "pose": {
                        "position": [float(x) for x in obj.position],
                        "rotation_deg": [float(x) for x in obj.rotation_deg],
                    },
                }
            )
    return {"images": images, "annotations": annotations}


def bag_files(result: BagResult, out: Path, categories: dict[str, int], opts: Options) -> dict[str, bytes]:
    """Every file of one bag, as relative path -> bytes."""
    name = bag_name(result.index)
    files: dict[str, bytes] = {}
    for view in result.views:
        v = view.scanner.name
        files[f"images/{name}_{v}.png"] = encode_png(view.rgb)
        for ch, raw in view.raw.items():
            files[f"raw/{name}_{v}_{ch}.tiff"] = encode_tiff(raw)
        if opts.save_transmission:
            for ch, t in view.transmission.items():
                files[f"transmission/{name}_{v}_{ch}.tiff"] = encode_tiff(t.astype(np.float32))
        files[f"labels/{name}_{v}.png"] = encode_png(view.instance)
        if "clcxray" in opts.encoding and "low" in view.raw and "high" in view.raw:
            enc = clcxray_encoding(view.raw["high"], view.raw["low"])
            files[f"clcxray/{name}_{v}.png"] = encode_png(enc)
    if result.ct:
        from xraybag.engine.ct.scan import ct_files

        for scanner in result.scene.scanners:
            if scanner.name in result.ct:
                files.update(ct_files(result.ct[scanner.name], scanner.ct, f"ct/{name}"))
    files[f"scenes/{name}.yaml"] = scene_yaml(result.scene, out / "scenes").encode()
    records = coco_records(result, categories, len(result.views))
    files[f"{STATE_DIR}/parts/{name}.json"] = json.dumps(records, sort_keys=True).encode()
    return files


def render_and_write(
    loaded: LoadedScene, index: int, out: Path, seed: int, categories: dict[str, int], opts: Options,
    ct_progress: CTProgress | None = None,
) -> dict:
    """Render bag ``index`` and write its files; returns its manifest record. ``ct_progress``: see
    :func:`.pipeline.render_bag`."""
    t0 = time.perf_counter()
    result = render_bag(loaded, index, seed, ct_progress, opts.trace_backend)
    t1 = time.perf_counter()
    files = bag_files(result, out, categories, opts)
    for rel, data in files.items():
        write_atomic(out / rel, data)
    timings = {k: round(v, 4) for k, v in result.seconds.items()}
    for view in result.views:
        for k, v in view.seconds.items():
            timings[f"{view.scanner.name}.{k}"] = round(v, 4)
    timings["render"] = round(t1 - t0, 4)
    timings["write"] = round(time.perf_counter() - t1, 4)
    report = result.pack_report
    return {
        "bag": result.index,
        "seed": seed,
        "files": {rel: sha256(data) for rel, data in files.items() if not rel.startswith(STATE_DIR)},
        "objects": len(result.objects),
        "left_out": [list(x) for x in getattr(report, "left_out", [])],
        "packing": getattr(report, "method", None),
        # what the packer said: how many packings it tried, which it kept, whether clothes were pressed
        **({"packing_note": report.note} if getattr(report, "note", None) else {}),
        "timings": timings,
    }
