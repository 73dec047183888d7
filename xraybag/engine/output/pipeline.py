"""One bag, top to bottom: sample, pack, build meshes, and for each view trace, detect, label.

Each step is a plain function over plain data (see DESIGN.md, "The flow of one bag"); this module
only strings them together and keeps the timings.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xraybag.engine.packing import pack_bag
from xraybag.engine.packing.press import with_pressed
from xraybag.engine.solids.scene import build_solids
from xraybag.engine.xray.annotate import ObjectLabel, label_objects
from xraybag.engine.xray.calibration import calibrate_colour, low_high_channels
from xraybag.engine.xray.colour import pseudo_colour
from xraybag.engine.xray.counter import draws_from
from xraybag.engine.xray.detect import DETECT_VIEW, channel_response, to_raw
from xraybag.engine.xray.scanners import view_geometry
from xraybag.engine.xray.trace import RayGeometry, TraceResult, trace
from xraybag.scenes.loader import LoadedScene
from xraybag.scenes.models import Scanner, Scene
from xraybag.streams import STREAM_NOISE, bag_rng

#: ``(bag index, CT scanner name, views traced, views)``
CTProgress = Callable[[int, str, int, int], None]


@dataclass
class ViewResult:
    scanner: Scanner
    transmission: dict[str, np.ndarray]  # channel -> float64 (rows, cols), measured I/I0
    raw: dict[str, np.ndarray]  # channel -> uint16
    rgb: np.ndarray  # (rows, cols, 3) uint8 pseudo-colour
    instance: np.ndarray  # (rows, cols) uint16
    labels: dict[int, ObjectLabel]
    trace: TraceResult
    geometry: RayGeometry
    effective_kev: float
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class BagResult:
    index: int
    seed: int
    scene: Scene  # concrete and packed
    objects: list  # ObjectInfo per object (index 1..N)
    views: list[ViewResult]
    pack_report: object
    seconds: dict[str, float] = field(default_factory=dict)
    ct: dict = field(default_factory=dict)  # CT scanner name -> CTResult


def effective_energy(response) -> float:
    """Mean energy (keV) of the detected open-beam signal, over all channels."""
    w = response.weights.sum(axis=1)
    return float((response.energies * w).sum() / w.sum())


def render_view(
    scene: Scene, solids: list, scanner: Scanner, library, rng: np.random.Generator, backend: str = "numba"
) -> ViewResult:
    """One radiograph or line-scan view; ``backend``: the tracer (:data:`.trace.BACKENDS`)."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    geom = view_geometry(scanner, scene)
    if backend == "cuda":  # a spawned worker registers the CUDA tracer itself
        from xraybag.engine.xray.devices import probe_cuda

        probe_cuda()
    tr = trace(solids, geom, backend)
    times["trace"] = time.perf_counter() - t

    t = time.perf_counter()
    response = channel_response(scanner, library, geom.pixel_mm**2, geom.distance_mm)
    draws = draws_from(rng)  # noise by counter: the same draws on the CPU and on a GPU
    detect_view = DETECT_VIEW[backend if backend in DETECT_VIEW else "numba"]  # the GPU's with its tracer
    paths = getattr(tr, "device_paths", None)  # the CUDA tracer's stay on the GPU
    if paths is None:  # the CPU tracer's entries (SparsePaths), else the dense image
        paths = getattr(tr, "sparse", None)
    T = detect_view(tr.paths if paths is None else paths, tr.materials, scanner, response, library,
                    geom.pixel_mm, draws)
    raw = {ch: to_raw(T[ch], scanner.detector) for ch in T}
    times["detect"] = time.perf_counter() - t

    t = time.perf_counter()
    if len(T) >= 2:  # dual-energy sandwich, or the first and last photon-counting bins
        low, high = low_high_channels(list(T))
        rgb = pseudo_colour(T[low], T[high], calibrate_colour(scanner, library), backend=backend)
    else:
        total = np.mean([T[c] for c in T], axis=0)
        grey = np.clip(total, 0.0, 1.0) ** 0.5 * 255.0
        rgb = np.repeat(np.round(grey).astype(np.uint8)[:, :, None], 3, axis=2)
    e_eff = effective_energy(response)
    mu = np.array([library.get(m).mu(np.array([e_eff]))[0] for m in tr.materials])
    instance, labels = label_objects(tr, mu, scene.annotation.hard, scene.annotation.hidden)
    times["products"] = time.perf_counter() - t
    return ViewResult(scanner, T, raw, rgb, instance, labels, tr, geom, e_eff, times)


def render_bag(loaded: LoadedScene, index: int, seed: int | None = None,
               ct_progress: CTProgress | None = None, backend: str = "numba") -> BagResult:
    """Render bag ``index`` of a loaded scene: every view, with labels. ``ct_progress`` is called
    as ``ct_progress(bag, scanner_name, views_done, views)`` while a CT scanner traces its views.
    ``backend`` traces the radiograph and line-scan views, and the CT scanners' views where they
    trace the meshes (``projector: mesh``; the voxel projectors are the scanner's choice)."""
    seed = loaded.spec.seed if seed is None else int(seed)
    times: dict[str, float] = {}
    t = time.perf_counter()
    packed, report = pack_bag(loaded, index, seed)
    bag = packed.bag_index
    times["pack"] = time.perf_counter() - t
    t = time.perf_counter()
    solids, objects = build_solids(packed, tolerance=packed.tolerance)
    times["geometry"] = time.perf_counter() - t
    library = with_pressed(loaded.library, packed)  # with the fabric of clothes the packer pressed
    views = []
    cts = {}
    for v, scanner in enumerate(packed.scanners):
        with _gpu_memory_errors(loaded, v, bag, backend):  # the GPU's out-of-memory: one line
            rng = bag_rng(seed, bag, STREAM_NOISE + v)
            if scanner.type == "ct":
                from xraybag.engine.ct.scan import (
                    scan,  # the CT stack loads only for CT scanners
                )

                progress = None
                if ct_progress is not None:
                    def progress(done, total, name=scanner.name):
                        ct_progress(bag, name, done, total)
                if backend == "cuda":
                    from xraybag.engine.xray.devices import probe_cuda

                    probe_cuda()  # a spawned worker registers the GPU's spectral pass itself
                cts[scanner.name] = scan(solids, objects, scanner, packed, library, rng,
                                         where=f"scanners[{v}]", progress=progress, backend=backend)
                for k, sec in cts[scanner.name].seconds.items():
                    times[f"{scanner.name}.{k}"] = sec
                continue
            views.append(render_view(packed, solids, scanner, library, rng, backend))
    return BagResult(bag, seed, packed, objects, views, report, times, cts)


@contextmanager
def _gpu_memory_errors(loaded: LoadedScene, v: int, bag: int, backend: str):
    """Turn the GPU's out-of-memory error while rendering scanner ``v`` of a bag into a one-line
    :class:`XraybagError` placed at that scanner in the scene file (the CLI's exit status 2)."""
    try:
        yield
    except Exception as e:
        if backend != "cuda" or not out_of_gpu_memory(e):
            raise
        from xraybag.engine.output.memory import gpu_free_bytes

        try:
            free_bytes = gpu_free_bytes()
        except Exception:  # noqa: BLE001 - a context that cannot answer any more
            free_bytes = float("nan")
        free = f"{free_bytes / 2**30:.1f} GiB free now" if math.isfinite(free_bytes) else "its free memory unknown"
        raise loaded.source.error(
            ("scanners", v),
            f"bag {bag}: the GPU ran out of memory ({free}); use --device cpu, a coarser pitch or voxel, "
            "or a smaller bag",
        ) from None


def out_of_gpu_memory(e: BaseException) -> bool:
    """Whether ``e`` is a GPU allocation's out-of-memory error: the CUDA driver's
    (``CUDA_ERROR_OUT_OF_MEMORY``, code 2, as numba's ``CudaAPIError`` carries it) or cupy's."""
    if type(e).__name__ == "OutOfMemoryError" and type(e).__module__.startswith("cupy"):
        return True
    if type(e).__name__ != "CudaAPIError":
        return False
    try:
        code = int(getattr(e, "code", -1))
    except (TypeError, ValueError):
        code = -1
    return code == 2 or "OUT_OF_MEMORY" in str(e)
