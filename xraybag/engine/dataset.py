"""Writing datasets in the layout of DESIGN.md, bag by bag, resumably and atomically.

``OUT/manifest.jsonl`` gets one line per finished bag (after all of its files are in place), so a
run that is interrupted resumes where it stopped: bags listed there are not rendered again. Every
file is written to a temporary name in its folder and renamed into place. A bag's files depend only
on (scene, seed, bag index), never on the number of workers or their order.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from xraybag import __version__
from xraybag.engine.annotate import rle
from xraybag.engine.render import BagResult, render_bag
from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene, load_scene, resolve_scene_ref
from xraybag.scenes.sample import dump_scene

STATE_DIR = ".xraybag"


@dataclass(frozen=True)
class Options:
    save_transmission: bool = False
    encoding: tuple[str, ...] = ()  # e.g. ("clcxray",)


# ----------------------------------------------------------------------------------- file output


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def tiff_bytes(img: np.ndarray) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, img, compression="zlib", software=None, datetime=None, metadata=None)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bag_name(index: int) -> str:
    return f"{index:06d}"


# ---------------------------------------------------------------------------------- one bag out


def _scene_with_assets(result: BagResult, out: Path) -> str:
    """The concrete scene YAML, with mesh files copied under ``scenes/assets/``."""
    data = result.scene.model_copy(deep=True)
    for obj in data.objects:
        for node in [obj, *_parts(obj.parts)]:
            if node.shape is not None and node.shape.mesh is not None:
                src = Path(node.shape.mesh.path)
                content = src.read_bytes()
                name = f"{sha256(content)[:16]}{src.suffix.lower()}"
                dst = out / "scenes" / "assets" / name
                if not dst.exists():
                    write_atomic(dst, content)
                node.shape.mesh.path = f"assets/{name}"
    return dump_scene(data)


def _parts(parts: list) -> Iterable:
    for p in parts:
        yield p
        yield from _parts(p.parts)


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
                    "segmentation": rle(lab.mask),
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
    from xraybag.engine.colour import clcxray_encoding

    name = bag_name(result.index)
    files: dict[str, bytes] = {}
    for view in result.views:
        v = view.scanner.name
        files[f"images/{name}_{v}.png"] = png_bytes(view.rgb)
        for ch, raw in view.raw.items():
            files[f"raw/{name}_{v}_{ch}.tiff"] = tiff_bytes(raw)
        if opts.save_transmission:
            for ch, t in view.transmission.items():
                files[f"transmission/{name}_{v}_{ch}.tiff"] = tiff_bytes(t.astype(np.float32))
        files[f"labels/{name}_{v}.png"] = png_bytes(view.instance)
        if "clcxray" in opts.encoding and "low" in view.raw and "high" in view.raw:
            enc = clcxray_encoding(view.raw["high"], view.raw["low"])
            files[f"clcxray/{name}_{v}.png"] = png_bytes(enc)
    if result.ct:
        from xraybag.engine.ct.scan import ct_files

        for scanner in result.scene.scanners:
            if scanner.name in result.ct:
                files.update(ct_files(result.ct[scanner.name], scanner.ct, f"ct/{name}"))
    files[f"scenes/{name}.yaml"] = _scene_with_assets(result, out).encode()
    records = coco_records(result, categories, len(result.views))
    files[f"{STATE_DIR}/parts/{name}.json"] = json.dumps(records, sort_keys=True).encode()
    return files


def render_and_write(
    loaded: LoadedScene, index: int, out: Path, seed: int, categories: dict[str, int], opts: Options
) -> dict:
    """Render bag ``index`` and write its files; returns its manifest record."""
    t0 = time.perf_counter()
    result = render_bag(loaded, index, seed)
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
        "timings": timings,
    }


# ------------------------------------------------------------------------------- the whole run


_WORKER_SCENES: dict = {}


def _worker_task(ref: str, roots: tuple, index: int, out: str, seed: int, cats: dict, opts: Options) -> dict:
    key = (ref, roots)
    if key not in _WORKER_SCENES:
        _WORKER_SCENES[key] = load_scene(ref, roots)
    return render_and_write(_WORKER_SCENES[key], index, Path(out), seed, cats, opts)


def _read_manifest(path: Path) -> dict[int, dict]:
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            done[int(rec["bag"])] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by an interruption
    return done


def _check_out(out: Path, identity: dict) -> None:
    state = out / STATE_DIR / "run.json"
    if state.exists():
        old = json.loads(state.read_text())
        if {k: old.get(k) for k in ("scene_sha256", "seed")} != {k: identity[k] for k in ("scene_sha256", "seed")}:
            raise XraybagError(
                "holds a dataset of another scene or seed; choose a new output folder", str(out)
            )
    elif out.exists() and any(out.iterdir()):
        raise XraybagError("exists, is not empty and is not an xraybag dataset", str(out))


def scene_identity(loaded: LoadedScene, seed: int) -> dict:
    text = json.dumps(loaded.spec.model_dump(mode="json"), sort_keys=True)
    extra = json.dumps(
        {k: v.model_dump(mode="json") for k, v in sorted(loaded.templates.items())}, sort_keys=True
    )
    return {
        "scene_sha256": sha256((text + extra).encode()),
        "seed": seed,
        "xraybag": __version__,
    }


def render_dataset(
    ref: str,
    n: int,
    out: str | os.PathLike,
    seed: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    opts: Options = Options(),
    asset_roots: tuple = (),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render bags 0..n-1 of scene ``ref`` into ``out``; returns a summary."""
    from xraybag.engine.render import check_memory

    loaded = load_scene(ref, asset_roots)
    seed = loaded.spec.seed if seed is None else int(seed)
    first = loaded.spec.bag_index or 0
    check_memory(loaded, workers if scheduler is None else 1)
    out = Path(out)
    identity = scene_identity(loaded, seed)
    _check_out(out, identity)
    categories = {c: i + 1 for i, c in enumerate(loaded.categories)}
    write_atomic(out / STATE_DIR / "run.json", json.dumps(identity | {"categories": categories}, indent=1).encode())

    manifest = out / "manifest.jsonl"
    done = _read_manifest(manifest)
    indices = [first + k for k in range(n)]  # bag indices; concrete scenes start at their own
    todo = [k for k in range(n) if first + k not in done]  # positions, as render_bag takes them
    t0 = time.perf_counter()
    count = len(indices) - len(todo)
    if progress:
        progress(count, len(indices))
    with open(manifest, "a", encoding="utf-8") as mf:

        def record(rec: dict) -> None:
            nonlocal count
            mf.write(json.dumps(rec, sort_keys=True) + "\n")
            mf.flush()
            os.fsync(mf.fileno())
            done[rec["bag"]] = rec
            count += 1
            if progress:
                progress(count, len(indices))

        roots = tuple(str(Path(r).resolve()) for r in asset_roots)
        ref = str(resolve_scene_ref(ref).resolve())  # workers may run elsewhere (Dask)
        if scheduler:
            from distributed import Client, as_completed

            with Client(scheduler) as client:
                futures = [
                    client.submit(_worker_task, str(ref), roots, i, str(out.resolve()), seed, categories, opts, pure=False)
                    for i in todo
                ]
                for fut in as_completed(futures):
                    record(fut.result())
        elif workers > 1 and len(todo) > 1:
            from concurrent.futures import ProcessPoolExecutor, as_completed as done_first

            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [
                    pool.submit(_worker_task, str(ref), roots, i, str(out), seed, categories, opts)
                    for i in todo
                ]
                for fut in done_first(futures):
                    record(fut.result())
        else:
            for i in todo:
                record(render_and_write(loaded, i, out, seed, categories, opts))

    write_annotations(out, indices, categories, done)
    return {
        "bags": len(indices),
        "rendered": len(todo),
        "skipped": len(indices) - len(todo),
        "seconds": round(time.perf_counter() - t0, 3),
        "out": str(out),
    }


def write_annotations(out: Path, indices: list[int], categories: dict[str, int], done: dict) -> None:
    """Merge the per-bag COCO parts of every finished bag into ``annotations.json``."""
    images, annotations = [], []
    for i in sorted(done):
        part = out / STATE_DIR / "parts" / f"{bag_name(i)}.json"
        if not part.exists():
            continue
        rec = json.loads(part.read_text())
        images += rec["images"]
        annotations += rec["annotations"]
    coco = {
        "info": {"description": "xraybag synthetic X-ray dataset", "version": __version__},
        "licenses": [],
        "categories": [{"id": i, "name": c, "supercategory": "item"} for c, i in categories.items()],
        "images": images,
        "annotations": annotations,
    }
    write_atomic(out / "annotations.json", json.dumps(coco).encode())

