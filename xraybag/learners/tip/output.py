"""What every ``tip`` output starts from, whatever the threats (catalog objects traced through the
bag, or threat images): the input's originals copied when they are kept, and the lists the
composites are appended to."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path


def copy_originals(data: Path, out: Path, coco: dict) -> None:
    """Copy every file the input's images name (image, raw channels, labels, scene, CLCXray) and
    the scenes' assets from ``data`` to ``out``."""
    rels = set()
    for im in coco["images"]:
        rels |= {im["file_name"], *im.get("raw", {}).values(), im.get("labels"), im.get("scene"),
                 f"clcxray/{Path(im['file_name']).name}"}
    for rel in sorted(r for r in rels if r):
        if (data / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data / rel, out / rel)
    if (data / "scenes" / "assets").is_dir():
        shutil.copytree(data / "scenes" / "assets", out / "scenes" / "assets", dirs_exist_ok=True)


@dataclass
class Output:
    """The output's categories, images, annotations and manifest lines so far, the input's
    annotations by image, and the next free bag and image ids."""

    categories: list[dict]
    cat_id: dict[str, int]
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    manifest: list[str] = field(default_factory=list)
    by_image: dict[int, list[dict]] = field(default_factory=dict)
    next_bag: int = 0
    next_image: int = 0


def start_output(data: Path, out: Path, coco: dict, bags: dict, keep_original: bool) -> Output:
    """Create ``out``; with ``keep_original`` copy the input there and start from its images,
    annotations and manifest."""
    out.mkdir(parents=True, exist_ok=True)
    categories = [dict(c) for c in coco.get("categories", [])]
    o = Output(categories, {c["name"]: c["id"] for c in categories})
    if keep_original:
        copy_originals(data, out, coco)
        o.images += coco["images"]
        o.annotations += coco.get("annotations", [])
        if (data / "manifest.jsonl").is_file():
            o.manifest += (data / "manifest.jsonl").read_text().splitlines()
    for a in coco.get("annotations", []):
        o.by_image.setdefault(a["image_id"], []).append(a)
    o.next_bag = max(bags) + 1
    o.next_image = max(im["id"] for im in coco["images"]) + 1
    return o
