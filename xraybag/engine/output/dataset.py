"""Writing datasets in the layout of DESIGN.md, bag by bag, resumably and atomically.

``OUT/manifest.jsonl`` gets one line per finished bag (after all of its files are in place), so a
run that is interrupted resumes where it stopped: bags listed there are not rendered again. Every
file is written to a temporary name in its folder and renamed into place (:mod:`.files`). A bag's
files depend only on (scene, seed, bag index), never on the number of workers or their order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from xraybag import __version__
from xraybag.engine.output.files import bag_name, sha256, write_atomic
from xraybag.engine.output.firstbag import check_count
from xraybag.engine.output.pipeline import CTProgress
from xraybag.engine.output.preflight import preflight
from xraybag.engine.output.records import STATE_DIR, Options
from xraybag.engine.output.workers import run_bags
from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene, load_scene, resolve_scene_ref


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
    overrides: tuple[str, ...] = (),
    ct_progress: CTProgress | None = None,
) -> dict:
    """Render bags 0..n-1 of scene ``ref`` into ``out``; returns a summary. ``overrides``: the
    ``--set key.path=value`` changes to the scene (they change its identity: a folder rendered
    with other values is not resumed). ``progress(bags_done, bags)``; ``ct_progress``: see
    :func:`.pipeline.render_bag`."""
    check_count(n)
    loaded = load_scene(ref, asset_roots, overrides=overrides)
    seed = loaded.spec.seed if seed is None else int(seed)
    first = loaded.spec.bag_index or 0
    preflight(loaded, workers if scheduler is None else 1, seed=seed)  # refuse a bad scene before any work
    if opts.trace_backend == "cuda":  # a CT scan runs on the GPU: its memory too
        from xraybag.engine.output.memory import check_gpu_memory

        check_gpu_memory(loaded)
    out = Path(out)
    identity = scene_identity(loaded, seed)
    _check_out(out, identity)
    categories = {c: i + 1 for i, c in enumerate(loaded.categories)}
    write_atomic(out / STATE_DIR / "run.json", json.dumps(identity | {"categories": categories}, indent=1).encode())

    manifest = out / "manifest.jsonl"
    done = _read_manifest(manifest)
    indices = range(first, first + n)  # bag indices; concrete scenes start at their own
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
        run_bags(loaded, ref, roots, todo, out, seed, categories, opts, record, workers, scheduler,
                 overrides, ct_progress)

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
