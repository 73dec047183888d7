"""Refusing, before any work, a scene whose bags would not fit in memory."""

from __future__ import annotations

import numpy as np

from xraybag.engine.xray.scanners import view_geometry
from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene
from xraybag.scenes.models import Scanner, Scene
from xraybag.scenes.numbers import Dist


def upper_bound(v) -> float:
    """The largest value a number or distribution can take (mean + 4 std for a normal)."""
    if isinstance(v, Dist):
        if v.kind in ("uniform", "uniform_int"):
            return float(v.args[1])
        if v.kind == "normal":
            return float(v.args[0] + 4 * v.args[1])
        return float(max(v.args))
    return float(v)


def memory_needed(loaded: LoadedScene) -> tuple[int, str]:
    """Peak bytes one bag of this scene can need (largest bag the distributions allow)."""
    need, what, _ = memory_and_field(loaded)
    return need, what


def memory_and_field(loaded: LoadedScene) -> tuple[int, str, tuple]:
    """:func:`memory_needed` and the field of the scene that asks for the most memory (the
    largest view's pitch, or its CT's voxel, views or supersample), for the error's position."""
    from xraybag.engine.xray.detect import spectral_memory

    probe, m = _largest(loaded)
    worst, what, loc = 0, "", ()
    for k, s in enumerate(probe.scanners):
        if s.type == "ct":
            from xraybag.engine.ct.scan import geometry_problem, outer_box
            from xraybag.engine.ct.scan import scan_memory as ct_memory

            box = outer_box(probe)
            problem = geometry_problem(s.ct, box[1] - box[0])
            if problem:
                raise loaded.source.error(("scanners", k, "ct", problem[0]), problem[1])
            need, desc = ct_memory(s, probe, m)
            if need > worst:
                worst, what, loc = need, desc, ("scanners", k, "ct", _ct_field(s, probe, need))
            continue
        try:
            g = view_geometry(s, probe)
        except XraybagError as e:
            raise loaded.source.error(("scanners", k), e.message) from None
        need = g.rows * g.cols * m * (8 + 4) + spectral_memory(g.rows, g.cols, m, 160)
        need += g.rows * g.cols * 64  # images, masks and maps of the view
        if need > worst:
            worst, what = need, f"view {s.name!r}: {g.rows} x {g.cols} pixels, up to {m} materials"
            loc = ("scanners", k, "pitch")
    return worst, what, loc


def _ct_field(scanner: Scanner, probe: Scene, need: int) -> str:
    """The CT setting behind most of a scan's memory: supersample (the labels' sub-rays), views
    (the sinograms) or voxel (the volumes)."""
    from xraybag.engine.ct.scan import plan, voxelize_rays

    geom, grid, _ = plan(scanner.ct, probe)
    if voxelize_rays(grid, int(scanner.ct.supersample)) > need / 2:
        return "supersample"
    return "views" if geom.views * geom.rows * geom.cols * 4 > grid.nbytes32 else "voxel"


def _largest(loaded: LoadedScene) -> tuple[Scene, int]:
    """The largest bag the scene allows (its scanners with their largest-image values), and the
    most materials a bag can hold (the bag's own included)."""
    from xraybag.scenes.loader import walk

    spec = loaded.spec
    size = [upper_bound(s) for s in spec.bag.size]
    if spec.bag.shell is not None:
        from xraybag.engine.solids.shells import SHELL_REACH

        wall = SHELL_REACH
    else:
        wall = upper_bound(spec.bag.wall.thickness)
    probe = Scene.model_validate(
        {"bag": {"size": size, "wall": {"thickness": wall}}, "scanners": [s.model_dump() for s in _fixed(spec.scanners)]}
    )
    materials = {str(a) for _, n, val in walk(spec) if n == "material" for a in _names(val)}
    for t in loaded.templates.values():
        materials |= {str(a) for _, n, val in walk(t) if n == "material" for a in _names(val)}
    return probe, max(len(materials) + 1, 2)


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

    need, what, loc = memory_and_field(loaded)
    avail = psutil.virtual_memory().available if available is None else available
    if need * max(workers, 1) > 0.8 * avail:
        raise loaded.source.error(
            loc,
            f"a bag of this scene needs about {need / 2**30:.1f} GiB per worker ({what}) and "
            f"{max(workers, 1)} worker(s) would exceed the {avail / 2**30:.1f} GiB available; "
            "use a coarser pitch or voxel, a smaller bag or fewer workers",
        )
    return need


def gpu_free_bytes() -> float:
    """Free memory of the current CUDA device (bytes; infinite under numba's simulator)."""
    from numba import cuda

    return float(cuda.current_context().get_memory_info().free)


def check_gpu_memory(loaded: LoadedScene) -> int:
    """Refuse, before any work, a scene whose CT bags would not fit in the GPU's free memory
    (``--device cuda``: the whole scan runs there); returns the bytes a bag can need."""
    if not any(s.type == "ct" for s in loaded.spec.scanners):
        return 0
    from xraybag.engine.ct.scan import gpu_memory

    probe, m = _largest(loaded)
    worst, what = 0, ""
    for s in probe.scanners:
        if s.type != "ct":
            continue
        need, desc = gpu_memory(s, probe, m)
        if need > worst:
            worst, what = need, desc
    free = gpu_free_bytes()
    if worst > 0.9 * free:
        raise XraybagError(
            f"a CT bag of this scene needs about {worst / 2**30:.1f} GiB of GPU memory ({what}) and the "
            f"GPU has {free / 2**30:.1f} GiB free; use --device cpu, a coarser voxel or a smaller bag",
            loaded.source.file,
        )
    return worst
