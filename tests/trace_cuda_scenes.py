"""Scenes on which the CUDA tracer is held to the numba reference (tests/test_trace_cuda.py).

Run as a script (``python tests/trace_cuda_scenes.py [--scale N]``) it traces every scene with both
backends in this process and prints one JSON line per scene; the tests run it with
NUMBA_ENABLE_CUDASIM=1 (numba's CUDA simulator, no GPU) and, marked ``gpu``, on a real GPU.
``--scale`` multiplies the detector's rays per axis (the simulator needs tiny detectors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xraybag.engine.xray.devices import probe_cuda
from xraybag.engine.xray.scanners import view_geometry
from xraybag.engine.xray.trace import trace
from xraybag.scenes.models import Scanner, Scene

SCENE = Scene.model_validate({"bag": {"size": [100, 80, 60], "wall": {"thickness": 0}}})


def solid(mesh, material="m", index=1):
    return SimpleNamespace(vertices=np.asarray(mesh.vertices, float), faces=np.asarray(mesh.faces),
                           material=material, object_index=index)


def geometry(kind: str, scale: int):
    if kind == "parallel":  # 24 x 16 rays at 1 mm (scale 1)
        return view_geometry(Scanner(name="p", type="radiograph", parallel=True, pitch=1.0 / scale,
                                     panel=[24, 16]), SCENE)
    if kind == "perspective":  # 24 x 16 rays at 8 mm
        return view_geometry(Scanner(name="r", type="radiograph", sod=1000, sdd=1500, pitch=8.0 / scale,
                                     panel=[192, 128]), SCENE)
    # a line scan (fan beam): 19 x 29 rays at 8 mm
    return view_geometry(Scanner(name="t", type="line_scan", pitch=8.0 / scale, tunnel=[120, 100],
                                 source_distance=400), SCENE)


def scenes(scale: int = 1) -> dict:
    """name -> (solids, geometry, closed form): the closed form maps the result to the largest
    deviation from an independent answer (mm), or is None."""
    out = {}

    box = trimesh.creation.box([8, 10, 6])  # 6 mm along the parallel rays (+z)
    box.apply_translation([0.5, 0.5, 30])  # edges on ray positions: the top-left rule decides
    g = geometry("parallel", scale)

    def box_form(tr, g=g):  # every ray inside crosses 6 mm; its 8 x 10 mm face covers 80 rays once
        p = tr.paths[..., 0]
        return float(max(np.abs(p[p > 0] - 6.0).max(initial=0.0), abs(int((p > 0).sum()) - 80 * scale**2)))

    out["box"] = ([solid(box)], g, box_form)

    outer = trimesh.creation.icosphere(subdivisions=3, radius=10)
    inner = trimesh.creation.icosphere(subdivisions=3, radius=7)
    inner.invert()
    shell = trimesh.util.concatenate([outer, inner])
    shell.apply_translation([0.3, 0.2, 30])
    g = geometry("parallel", scale)

    def shell_form(tr, g=g):  # chords of a hollow sphere, away from the faceted rims
        o, _ = g.rays()
        r = np.hypot(o[..., 0] - 0.3, o[..., 1] - 0.2)
        ref = 2 * np.sqrt(np.clip(100 - r**2, 0, None)) - 2 * np.sqrt(np.clip(49 - r**2, 0, None))
        keep = (r < 6.0) | ((r > 7.6) & (r < 9.0))
        return float(np.abs(tr.paths[..., 0][keep] - ref[keep]).max() / 0.5)  # faceting: within 0.5 mm

    out["sphere_shell"] = ([solid(shell)], g, shell_form)

    a = trimesh.creation.box([40, 30, 20])
    a.apply_translation([-5, 0, 30])
    b = trimesh.creation.cylinder(radius=15, height=40, sections=24)
    b.apply_translation([10, 5, 30])
    lid = trimesh.creation.box([20, 20, 4])  # a second part of object 2, another material
    lid.apply_translation([10, 5, 52])
    out["overlap_perspective"] = (
        [solid(a, "steel", 1), solid(b, "water", 2), solid(lid, "steel", 2)], geometry("perspective", scale), None
    )

    ann = trimesh.creation.annulus(r_min=8, r_max=20, height=30)
    ann.apply_transform(trimesh.transformations.rotation_matrix(0.7, [1, 0.3, 0]))
    ann.apply_translation([5, -5, 30])
    cube = trimesh.creation.box([20, 20, 20])
    cube.apply_translation([-20, 10, 25])
    out["fan_beam"] = ([solid(ann, "m", 1), solid(cube, "w", 2)], geometry("line", scale), None)
    return out


def compare(ref, got) -> dict:
    """Where ``got`` and the reference ``ref`` differ (both TraceResults)."""
    same_windows = [(o.index, o.r0, o.c0, o.paths.shape, o.materials) for o in ref.objects] == [
        (o.index, o.r0, o.c0, o.paths.shape, o.materials) for o in got.objects
    ]
    pairs = [(ref.paths, got.paths)] + (
        [(a.paths, b.paths) for a, b in zip(ref.objects, got.objects)] if same_windows else []
    )
    ulp = max(
        int(np.max(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)), initial=0))
        for a, b in pairs
    )
    return {
        "materials": ref.materials == got.materials,
        "windows": same_windows,
        "exact": all(np.array_equal(a, b) for a, b in pairs),
        "max_ulp": ulp,  # float32 units in the last place (non-negative values: bit patterns order)
        "max_rel": float(max(np.max(np.abs(a.astype(np.float64) - b) / np.maximum(np.abs(a), 1e-30), initial=0.0)
                             for a, b in pairs)),
        "hit_rays": int((ref.paths.sum(axis=2) > 0).sum()),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    if not probe_cuda():
        sys.exit("no CUDA GPU or simulator: run with NUMBA_ENABLE_CUDASIM=1")
    for name, (solids, g, form) in scenes(args.scale).items():
        if args.only and name not in args.only:
            continue
        ref = trace(solids, g, backend="numba")
        t = time.perf_counter()
        got = trace(solids, g, backend="cuda")
        rec = {"scene": name, "rays": [g.rows, g.cols], "cuda_s": round(time.perf_counter() - t, 3)}
        rec |= compare(ref, got)
        if form is not None:
            rec["closed_form_numba"] = form(ref)
            rec["closed_form_cuda"] = form(got)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
