"""One bag, top to bottom: sample, pack, build meshes, and for each view trace, detect, label.

Each step is a plain function over plain data (see DESIGN.md, "The flow of one bag"); this module
only strings them together and keeps the timings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from xraybag.engine.annotate import ObjectLabel, label_objects
from xraybag.engine.scanners import view_geometry
from xraybag.engine.trace import RayGeometry, TraceResult, trace
from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene
from xraybag.scenes.models import Scanner, Scene
from xraybag.scenes.numbers import Dist
from xraybag.scenes.sample import STREAM_NOISE, bag_rng, sample

STREAM_PACK = 1_000_003
STREAM_SHEETS = 1_000_004  # the bag's random stream of sheet placement and draping


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
    scene: Scene, solids: list, scanner: Scanner, library, rng: np.random.Generator
) -> ViewResult:
    from xraybag.engine.colour import calibrate, low_high_channels, pseudo_colour
    from xraybag.engine.detect import channel_response, detect, to_raw

    times: dict[str, float] = {}
    t = time.perf_counter()
    geom = view_geometry(scanner, scene)
    tr = trace(solids, geom)
    times["trace"] = time.perf_counter() - t

    t = time.perf_counter()
    response = channel_response(scanner, library, geom.pixel_mm**2, geom.distance_mm)
    T = detect(tr.paths, tr.materials, scanner, response, library, rng, geom.pixel_mm)
    raw = {ch: to_raw(T[ch], scanner.detector) for ch in T}
    times["detect"] = time.perf_counter() - t

    t = time.perf_counter()
    if len(T) >= 2:  # dual-energy sandwich, or the first and last photon-counting bins
        low, high = low_high_channels(list(T))
        rgb = pseudo_colour(T[low], T[high], calibrate(scanner, library))
    else:
        total = np.mean([T[c] for c in T], axis=0)
        grey = np.clip(total, 0.0, 1.0) ** 0.5 * 255.0
        rgb = np.repeat(np.round(grey).astype(np.uint8)[:, :, None], 3, axis=2)
    e_eff = effective_energy(response)
    mu = np.array([library.get(m).mu(np.array([e_eff]))[0] for m in tr.materials])
    instance, labels = label_objects(tr, mu, scene.annotation.hard, scene.annotation.hidden)
    times["products"] = time.perf_counter() - t
    return ViewResult(scanner, T, raw, rgb, instance, labels, tr, geom, e_eff, times)


def render_bag(loaded: LoadedScene, index: int, seed: int | None = None) -> BagResult:
    """Render bag ``index`` of a loaded scene: every view, with labels."""
    from xraybag.engine.geometry import build_solids
    from xraybag.engine.packing import pack
    from xraybag.engine.sheets import drape_sheets, with_sheets, without_sheets

    seed = loaded.spec.seed if seed is None else int(seed)
    times: dict[str, float] = {}
    t = time.perf_counter()
    concrete = sample(loaded, index, seed)
    bag = concrete.bag_index
    packed, report = pack(without_sheets(concrete), rng=bag_rng(seed, bag, STREAM_PACK))
    packed, left = drape_sheets(with_sheets(concrete, packed), bag_rng(seed, bag, STREAM_SHEETS))
    report.left_out.extend(left)
    times["pack"] = time.perf_counter() - t
    t = time.perf_counter()
    solids, objects = build_solids(packed, tolerance=packed.tolerance)
    times["geometry"] = time.perf_counter() - t
    views = []
    cts = {}
    for v, scanner in enumerate(packed.scanners):
        rng = bag_rng(seed, bag, STREAM_NOISE + v)
        if scanner.type == "ct":
            from xraybag.engine.ct.scan import scan

            cts[scanner.name] = scan(solids, objects, scanner, packed, loaded.library, rng,
                                     where=f"scanners[{v}]")
            for k, sec in cts[scanner.name].seconds.items():
                times[f"{scanner.name}.{k}"] = sec
            continue
        views.append(render_view(packed, solids, scanner, loaded.library, rng))
    return BagResult(bag, seed, packed, objects, views, report, times, cts)


# ---------------------------------------------------------------------------------- memory check


def _upper(v) -> float:
    if isinstance(v, Dist):
        if v.kind in ("uniform", "uniform_int"):
            return float(v.args[1])
        if v.kind == "normal":
            return float(v.args[0] + 4 * v.args[1])
        return float(max(v.args))
    return float(v)


def memory_needed(loaded: LoadedScene) -> tuple[int, str]:
    """Peak bytes one bag of this scene can need (largest bag the distributions allow)."""
    from xraybag.engine.detect import memory_estimate
    from xraybag.scenes.loader import walk

    spec = loaded.spec
    size = [_upper(s) for s in spec.bag.size]
    wall = _upper(spec.bag.wall.thickness)
    probe = Scene.model_validate(
        {"bag": {"size": size, "wall": {"thickness": wall}}, "scanners": [s.model_dump() for s in _fixed(spec.scanners)]}
    )
    materials = {str(a) for _, n, val in walk(spec) if n == "material" for a in _names(val)}
    for t in loaded.templates.values():
        materials |= {str(a) for _, n, val in walk(t) if n == "material" for a in _names(val)}
    m = max(len(materials) + 1, 2)
    worst, what = 0, ""
    for k, s in enumerate(probe.scanners):
        if s.type == "ct":
            from xraybag.engine.ct.scan import geometry_problem, outer_box
            from xraybag.engine.ct.scan import memory_estimate as ct_memory

            box = outer_box(probe)
            problem = geometry_problem(s.ct, box[1] - box[0])
            if problem:
                raise loaded.source.error(("scanners", k, "ct", problem[0]), problem[1])
            need, desc = ct_memory(s, probe, m)
            if need > worst:
                worst, what = need, desc
            continue
        try:
            g = view_geometry(s, probe)
        except XraybagError as e:
            raise loaded.source.error(("scanners", k), e.message) from None
        need = g.rows * g.cols * m * (8 + 4) + memory_estimate(g.rows, g.cols, m, 160)
        need += g.rows * g.cols * 64  # images, masks and maps of the view
        if need > worst:
            worst, what = need, f"view {s.name!r}: {g.rows} x {g.cols} pixels, up to {m} materials"
    return worst, what


def _names(value) -> list:
    if isinstance(value, Dist):
        return list(value.args)
    return [value] if isinstance(value, str) else []


def _fixed(scanners: list[Scanner]) -> list[Scanner]:
    """Scanners with distributions replaced by their largest-image values."""
    from xraybag.scenes.sample import resolve

    out = []
    for s in scanners:
        data = resolve(s, np.random.default_rng(0))
        data["pitch"] = min(_lower(s.pitch), data["pitch"])
        out.append(Scanner.model_validate(data))
    return out


def _lower(v) -> float:
    if isinstance(v, Dist):
        if v.kind in ("uniform", "uniform_int"):
            return float(v.args[0])
        if v.kind == "normal":
            return max(float(v.args[0] - 4 * v.args[1]), 1e-3)
        return float(min(v.args))
    return float(v)


def check_memory(loaded: LoadedScene, workers: int = 1, available: int | None = None) -> int:
    """Refuse, before any work, a scene whose bags would not fit in memory."""
    import psutil

    need, what = memory_needed(loaded)
    avail = psutil.virtual_memory().available if available is None else available
    if need * max(workers, 1) > 0.8 * avail:
        raise XraybagError(
            f"a bag of this scene needs about {need / 2**30:.1f} GiB per worker ({what}) and "
            f"{max(workers, 1)} worker(s) would exceed the {avail / 2**30:.1f} GiB available; "
            "use a coarser pitch, a smaller bag or fewer workers",
            loaded.source.file,
        )
    return need
