"""xraybag against gVirtualXray: one mesh scene, one point-source radiograph, one energy.

    python benchmarks/gvxr_compare.py [--pixels N] [--kev E] [--save DIR]

Prints one JSON object on stdout (everything the libraries log goes to stderr).

The scene: a bag (nylon shell) holding a rotated aluminium block, a PET bottle lying on its side
and 60 % full of water (a shell plus a fill solid), a PMMA sphere and a tilted titanium torus. The
torus is an STL file written here with trimesh and loaded by both simulators from that file;
xraybag's other solids (built from the scene by ``build_solids``) are written to STL files that
gvxr loads, so both trace the very same triangles.

Geometry: xraybag's ``radiograph`` scanner along +z (source below the bag), sod 1000 mm, sdd
1300 mm, an N x N panel of 256 mm (pitch 256 / N mm); gvxr gets the same source position, panel
centre, up (image rows, +x) and right (image columns, +y) vectors, pixel count and pitch, a point
source and ``setMonoChromatic(E, 'keV', N)``.

Comparisons (transmission = I / I0; gvxr: image / white image):

1. ``comparison``: gvxr with each mesh's linear attenuation coefficient set to xraybag's (xraydb)
   value, which tests the geometry and the Beer-Lambert integration. Pixels within 2 pixels of
   the shadow of any mesh silhouette edge are left out; the bar is 0.5 % per pixel.
2. ``comparison_gvxr_attenuation``: gvxr with its own attenuation data from each material's
   composition and density (an independent check of the attenuation data; reported, not
   asserted).

Also reported: per-mesh path-length differences (gvxr's L-buffer against xraybag's trace), an
orientation check (the image as it is against flipped and transposed versions), timings (xraybag
cold = first call in the process, warm = best of repeats; gvxr context, set-up, first and later
images), the device and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from peers import (  # noqa: E402
    TOLERANCE,
    Gvxr,
    compare_transmission,
    edge_mask,
    orientation_check,
    stdout_to_stderr,
    subdivide_solid,
)

EDGE_RADIUS = 2  # pixels left out on each side of a silhouette edge
PANEL_MM = 256.0


def torus_stl(path: Path) -> None:
    """A tilted torus (major radius 24 mm, tube radius 5 mm) in the bag frame, as binary STL."""
    import trimesh
    from scipy.spatial.transform import Rotation

    mesh = trimesh.creation.torus(
        major_radius=24.0, minor_radius=5.0, major_sections=96, minor_sections=32
    )
    t = np.eye(4)
    t[:3, :3] = Rotation.from_euler("xyz", [35.0, 0.0, 20.0], degrees=True).as_matrix()
    t[:3, 3] = [42.0, 40.0, 45.0]
    mesh.apply_transform(t)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    mesh.export(path)


def make_scene(torus_path: Path, pixels: int, kev: float, sod: float, sdd: float):
    """The concrete scene (every object posed) and its radiograph scanner."""
    import trimesh

    from xraybag.scenes.models import Scene

    v = np.asarray(trimesh.load(str(torus_path), force="mesh").vertices, dtype=np.float64)
    torus_centre = (v.min(axis=0) + v.max(axis=0)) / 2.0  # the pose that keeps the file's frame
    pitch = PANEL_MM / pixels
    scanner = {
        "name": "radiograph",
        "type": "radiograph",
        "axis": "z",
        "sod": sod,
        "sdd": sdd,
        "panel": [PANEL_MM, PANEL_MM],
        "pitch": pitch,
        "parallel": False,
        "spectrum": {"mono_kev": kev, "photons": 1e5},
        "detector": {"type": "integrating"},
        "noise": False,
    }
    scene = Scene.model_validate(
        {
            "seed": 1,
            "bag": {"size": [240, 240, 140], "wall": {"material": "nylon", "thickness": 1.5}},
            "objects": [
                {
                    "name": "al_block",
                    "shape": {"box": {"size": [60, 40, 15]}},
                    "material": "aluminum",
                    "pose": {"position": [-45, -42, 30], "rotation_deg": [20, 10, 35]},
                },
                {
                    "name": "bottle",
                    "shape": {"cylinder": {"radius": 22, "height": 80}},
                    "material": "PET",
                    "container": {"wall": 1.5, "fill": {"material": "water", "level": 0.6}},
                    "pose": {"position": [45, -40, 25], "rotation_deg": [90, 0, 25]},
                },
                {
                    "name": "pmma_sphere",
                    "shape": {"sphere": {"radius": 30}},
                    "material": "PMMA",
                    "pose": {"position": [-40, 42, 40], "rotation_deg": [0, 0, 0]},
                },
                {
                    "name": "ti_torus",
                    "shape": {"mesh": {"path": str(torus_path)}},
                    "material": "titanium",
                    "pose": {"position": [float(x) for x in torus_centre], "rotation_deg": [0, 0, 0]},
                },
            ],
            "scanners": [scanner],
        }
    )
    return scene, scene.scanners[0]


def check_disjoint(objects) -> None:
    """The objects' bounding boxes must not overlap (a physical scene)."""
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            if np.all(a.bounds[0] < b.bounds[1]) and np.all(b.bounds[0] < a.bounds[1]):
                raise SystemExit(f"objects {a.name} and {b.name} overlap")


def trimesh_path(solid, geom, i: int, j: int) -> float:
    """Path length (mm) of ray (i, j) through a solid by trimesh's float64 ray test (a third opinion)."""
    import trimesh
    from trimesh.ray.ray_triangle import RayMeshIntersector

    o, d = geom.rays()
    mesh = trimesh.Trimesh(solid.vertices, solid.faces, process=False)
    loc, _, tri = RayMeshIntersector(mesh).intersects_location(
        o[i, j][None], d[i, j][None], multiple_hits=True
    )
    if len(loc) == 0:
        return 0.0
    t = (loc - o[i, j]) @ d[i, j]
    return float(np.sum(t * np.sign(mesh.face_normals[tri] @ d[i, j])))


def convex_path(solid, geom) -> np.ndarray:
    """Exact path lengths (mm, float64) through a convex solid: each ray clipped by its face planes."""
    v = np.asarray(solid.vertices, dtype=np.float64)
    tri = v[np.asarray(solid.faces)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = np.einsum("ij,ij->i", n, tri[:, 0])
    o, d = geom.rays()
    dn = d @ n.T  # (rows, cols, F)
    gap = c - o @ n.T  # > 0: the origin is inside the face's half-space
    with np.errstate(divide="ignore", invalid="ignore"):
        t = gap / dn
    t0 = np.max(np.where(dn < 0, t, -np.inf), axis=2)
    t1 = np.min(np.where(dn > 0, t, np.inf), axis=2)
    parallel_out = np.any((dn == 0) & (gap < 0), axis=2)
    return np.where(parallel_out, 0.0, np.clip(t1 - t0, 0.0, None))


def xraybag_transmission(scene, solids, scanner, library):
    """(transmission, seconds, how) from the whole pipeline (render_view) or trace + Beer-Lambert."""
    from xraybag.engine.output.pipeline import render_view

    t = time.perf_counter()
    try:
        view = render_view(scene, solids, scanner, library, np.random.default_rng(0))
    except ImportError:  # the spectral pass is not importable: trace + exp(-mu L) at the line
        from xraybag.engine.xray.scanners import view_geometry
        from xraybag.engine.xray.trace import trace

        tr = trace(solids, view_geometry(scanner, scene))
        kev = np.array([float(scanner.spectrum.mono_kev)])
        mu = np.array([library.get(m).mu(kev)[0] for m in tr.materials])
        T = np.exp(-(tr.paths.astype(np.float64) @ mu))
        return T, {"total": time.perf_counter() - t, "trace": tr.seconds}, "trace + exp(-mu L)"
    secs = dict(view.seconds)
    secs["total"] = time.perf_counter() - t
    return view.transmission["total"], secs, "render_view (trace + detect, integrating, noise off)"


def run(args) -> dict:
    import numba
    import scipy
    import trimesh
    import xraydb

    import xraybag
    from xraybag.engine.solids.scene import build_solids
    from xraybag.engine.xray import trace as trace_module
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.engine.xray.trace import trace
    from xraybag.materials import default_library

    notes: list[str] = []
    kev = float(args.kev)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="gvxr_compare_")
    tmp = Path(tmp_ctx.name)
    torus = tmp / "ti_torus.stl"
    torus_stl(torus)
    scene, scanner = make_scene(torus, args.pixels, kev, args.sod, args.sdd)
    library = default_library()
    coarse, objects = build_solids(scene)
    check_disjoint(objects)
    # both simulators get these very triangles (see peers.subdivide: gvxr needs small ones)
    solids = [subdivide_solid(s, args.max_edge) for s in coarse]
    geom = view_geometry(scanner, scene)
    torus_solid = next(s for s in solids if s.part == "ti_torus")
    if torus_solid is not next(s for s in coarse if s.part == "ti_torus"):
        raise SystemExit("the torus was subdivided: raise --max-edge so both load the STL file as is")

    # ---------------------------------------------------------------- xraybag
    T_x, cold, how = xraybag_transmission(scene, solids, scanner, library)
    stats = getattr(trace_module._trace_faces, "stats", None)
    numba_cache = (
        "hit" if stats is not None and sum(stats.cache_hits.values()) else "miss (compiled)"
    )
    warm = []
    for _ in range(max(args.repeat, 1)):
        T_again, secs, _ = xraybag_transmission(scene, solids, scanner, library)
        warm.append(secs)
    if not np.array_equal(T_again, T_x):
        notes.append("xraybag: repeated renders differ")
    best = min(warm, key=lambda s: s["total"])

    # per-solid path lengths (diagnostics) and the pixels near silhouette edges
    paths_x = {s.part: trace([s], geom).paths[:, :, 0].astype(np.float64) for s in solids}
    near_edge = edge_mask(solids, geom, EDGE_RADIUS)
    keep = ~near_edge

    # ---------------------------------------------------------------- gvxr
    def write(s, prefix: str) -> tuple[str, Path]:
        label = prefix + s.part.replace(".", "_")
        if s is torus_solid:
            return label, torus  # the very file xraybag loaded
        p = tmp / f"{label}.stl"
        trimesh.Trimesh(s.vertices, s.faces, process=False).export(p)
        return label, p

    fine = {s.part: write(s, "") for s in solids}
    coarser = {
        s.part: (write(s, "coarse_") if f is not s else fine[s.part]) for s, f in zip(coarse, solids)
    }
    mu_x = {s.material: float(library.get(s.material).mu(np.array([kev]))[0]) for s in solids}

    t = time.perf_counter()
    gv = Gvxr("EGL", log_file=args.gvxr_log)
    gv_import, gv_context = gv.import_seconds, gv.context_seconds
    t_setup = time.perf_counter()
    gv.set_geometry(geom)
    gv.set_mono(kev, 1000)
    for s in solids:
        gv.add_mesh(fine[s.part][0], str(fine[s.part][1]))
        gv.set_mu(fine[s.part][0], mu_x[s.material])
    gv_setup = time.perf_counter() - t_setup
    img_cold = gv.transmission()
    img_warm = [gv.transmission() for _ in range(max(args.repeat, 1))]
    T_g = img_warm[-1].transmission
    if not np.array_equal(T_g, img_cold.transmission):
        notes.append("gvxr: repeated images differ")
    gv_warm = min(i.seconds for i in img_warm)
    gv_white = min(i.white_seconds for i in img_warm)

    info = gv.info()  # gvxr's settings for the main comparison (its defaults)
    lbuf = {}
    paths_g = {}
    for s in solids:
        label = fine[s.part][0]
        paths_g[s.part] = gv.path_length(label)
        d = np.abs(paths_g[s.part] - paths_x[s.part])
        lbuf[s.part] = {
            "material": s.material,
            "triangles": int(len(s.faces)),
            "triangles_gvxr": gv.triangles(label),
            "max_path_mm": float(paths_x[s.part].max()),
            "max_abs_diff_mm_away_from_edges": float(d[keep].max()),
            "max_abs_diff_mm_all_pixels": float(d.max()),
        }

    exact = convex_path(next(s for s in coarse if s.part == "al_block"), geom)
    d_exact = np.abs(paths_x["al_block"] - exact)
    lbuf["al_block"]["xraybag_vs_exact_convex_clip_mm"] = float(d_exact.max())
    lbuf["al_block"]["gvxr_vs_exact_convex_clip_mm_away_from_edges"] = float(
        np.abs(paths_g["al_block"] - exact)[keep].max()
    )

    # the scene's own (coarse) tessellation: what gvxr's per-triangle interpolation costs
    for s in coarse:
        label, p = coarser[s.part]
        if label not in gv.labels:
            gv.add_mesh(label, str(p), render=False)
            gv.set_mu(label, mu_x[s.material])
    gv.use([coarser[s.part][0] for s in coarse])
    T_coarse = gv.transmission().transmission
    coarse_paths = {}
    for s in coarse:
        label = coarser[s.part][0]
        if label != fine[s.part][0]:
            d = np.abs(gv.path_length(label) - paths_x[s.part])
            coarse_paths[s.part] = {
                "triangles": int(len(s.faces)),
                "max_abs_diff_mm_away_from_edges": float(d[keep].max()),
            }
    gv.use([fine[s.part][0] for s in solids])

    # gvxr's own attenuation data
    mu_g = {}
    for s in solids:
        m = library.get(s.material)
        label = fine[s.part][0]
        gv.set_composition(label, dict(m.mass_fractions), float(m.density))
        mu_g[s.material] = gv.mu(label, kev)
    T_gc = gv.transmission().transmission

    # the worst pixel of all (edges included), and gvxr without its L-buffer artefact filter
    rel_all = np.abs(T_g - T_x) / T_x
    wi, wj = np.unravel_index(int(np.argmax(rel_all)), rel_all.shape)
    wpart = max(paths_x, key=lambda k: abs(paths_g[k][wi, wj] - paths_x[k][wi, wj]))
    for s in solids:
        gv.set_mu(fine[s.part][0], mu_x[s.material])
    gv.gvxr.disableArtefactFiltering()
    T_nf = gv.transmission().transmission
    wlabel = fine[wpart][0]
    worst_px = {
        "pixel": [int(wi), int(wj)],
        "near_edge": bool(near_edge[wi, wj]),
        "rel_diff": float(rel_all[wi, wj]),
        "T_xraybag": float(T_x[wi, wj]),
        "T_gvxr": float(T_g[wi, wj]),
        "T_gvxr_no_artefact_filter": float(T_nf[wi, wj]),
        "solid": wpart,
        "path_mm_xraybag": float(paths_x[wpart][wi, wj]),
        "path_mm_gvxr": float(paths_g[wpart][wi, wj]),
        "path_mm_gvxr_no_artefact_filter": float(gv.path_length(wlabel)[wi, wj]),
        "path_mm_trimesh_float64": trimesh_path(next(s for s in solids if s.part == wpart), geom, wi, wj),
    }
    gv.close()
    gv_total = time.perf_counter() - t

    # ---------------------------------------------------------------- compare
    cmp_mu = compare_transmission(T_x, T_g, keep)
    cmp_mu["pixels_total"] = int(T_x.size)
    cmp_mu["pixels_near_edges_left_out"] = int(near_edge.sum())
    all_px = compare_transmission(T_x, T_g, np.ones_like(keep))
    cmp_mu["max_rel_diff_all_pixels"] = all_px["max_rel_diff"]
    cmp_mu["fraction_within_tolerance_all_pixels"] = all_px["fraction_within_tolerance"]
    cmp_mu["mu_source"] = "xraybag (xraydb, total with coherent) set in gvxr per mesh (cm-1)"
    cmp_own = compare_transmission(T_x, T_gc, keep)
    cmp_own.pop("pass", None)
    cmp_own["mu_source"] = "gvxr's own data from composition (setElement/setMixture) and density"
    cmp_own["mu_per_mm_gvxr"] = mu_g
    cmp_own["mu_ratio_gvxr_over_xraybag"] = {k: mu_g[k] / mu_x[k] for k in mu_x}
    nf_keep = compare_transmission(T_x, T_nf, keep)
    nf_all = compare_transmission(T_x, T_nf, np.ones_like(keep))
    edges = {
        "max_rel_diff_all_pixels": all_px["max_rel_diff"],
        "pixels_over_tolerance_all_pixels": int(np.sum(rel_all > TOLERANCE)),
        "worst_pixel": worst_px,
        "no_artefact_filter": {
            "what": "gvxr.disableArtefactFiltering() (its GPU L-buffer filter is on by default)",
            "max_rel_diff_away_from_edges": nf_keep["max_rel_diff"],
            "max_rel_diff_all_pixels": nf_all["max_rel_diff"],
            "pixels_over_tolerance_all_pixels": int(
                np.sum(np.abs(T_nf - T_x) / T_x > TOLERANCE)
            ),
        },
    }
    cmp_coarse = compare_transmission(T_x, T_coarse, keep)
    cmp_coarse.pop("pass", None)
    cmp_coarse["what"] = (
        "gvxr on the scene's own tessellation (no subdivision) against xraybag; the solids are "
        "the same, only gvxr's per-triangle distance interpolation changes"
    )
    cmp_coarse["triangles"] = int(sum(len(s.faces) for s in coarse))
    cmp_coarse["path_length_check"] = coarse_paths
    orient = orientation_check(T_x, T_g)

    if not orient["ok"]:
        notes.append("orientation: gvxr's image is not best aligned as it is; check up/right vectors")
    if cmp_mu["max_rel_diff"] > TOLERANCE:
        notes.append(
            f"{int(np.sum(np.abs(T_g - T_x)[keep] / T_x[keep] > TOLERANCE))} pixel(s) away from "
            f"edges exceed {TOLERANCE:.1%}"
        )
    worst = max(lbuf, key=lambda k: lbuf[k]["max_abs_diff_mm_away_from_edges"])
    notes.append(
        "geometry: largest path-length difference away from edges "
        f"{lbuf[worst]['max_abs_diff_mm_away_from_edges']:.1e} mm ({worst}); gvxr works in "
        f"float32 (mixed-precision flag {info['mixed_precision_flag']} = FP32 textures), xraybag "
        "in float64 with float32 output"
    )
    if coarse_paths:
        cw = max(coarse_paths, key=lambda k: coarse_paths[k]["max_abs_diff_mm_away_from_edges"])
        notes.append(
            "tessellation: gvxr's path lengths through large triangles are biased (the error "
            "falls with the square of the edge length, as if it interpolated the distance to the "
            f"source linearly across each triangle): with the scene's own meshes ({cw}: "
            f"{coarse_paths[cw]['triangles']} triangles) its paths are off by up to "
            f"{coarse_paths[cw]['max_abs_diff_mm_away_from_edges']:.3f} mm and the transmission "
            f"by up to {cmp_coarse['max_rel_diff']:.2%}, while xraybag's paths through the box match "
            "an exact float64 clip of each ray by the box's planes to "
            f"{lbuf['al_block']['xraybag_vs_exact_convex_clip_mm']:.1e} mm on every pixel; "
            "both simulators therefore get every solid subdivided "
            f"to edges <= {args.max_edge:g} mm (same solids, more triangles)"
        )
    w = worst_px
    edge_note = (
        "edges: both sample one ray through each pixel centre; over all pixels, edges included, "
        f"the largest relative difference is {w['rel_diff']:.3g} at pixel {tuple(w['pixel'])} "
        f"({w['solid']}: xraybag {w['path_mm_xraybag']:.4f} mm, gvxr {w['path_mm_gvxr']:.4f} mm, "
        f"gvxr without its artefact filter {w['path_mm_gvxr_no_artefact_filter']:.4f} mm, a "
        f"float64 trimesh ray test {w['path_mm_trimesh_float64']:.4f} mm); "
        f"{edges['pixels_over_tolerance_all_pixels']} pixel(s) over {TOLERANCE:.1%} with gvxr's "
        f"defaults, {edges['no_artefact_filter']['pixels_over_tolerance_all_pixels']} with its "
        "artefact filter off"
    )
    if edges["pixels_over_tolerance_all_pixels"]:
        edge_note += (
            ". A ray grazing a silhouette can get an unmatched or misplaced fragment in gvxr's "
            "float32 rasterisation (a small negative or positive path, clamped in its image); its "
            "GPU L-buffer artefact filter (on by default) seems to replace such a pixel with a "
            "value like its neighbours', which can turn a grazing miss into millimetres of material"
        )
    notes.append(edge_note)
    notes.append(
        "conventions: gvxr image rows run along the detector up vector and columns along the "
        "right vector, pixel centres at (k - (n-1)/2) pitch from the panel centre as in xraybag; "
        "right x up must point at the source or gvxr returns a blank image; gvxr's L-buffer "
        "comes back in cm"
    )
    ratios = cmp_own["mu_ratio_gvxr_over_xraybag"]
    spread = max(abs(r - 1.0) for r in ratios.values())
    notes.append(
        f"attenuation data: gvxr's mu from the compositions matches xraybag's to {spread:.1e} "
        "(relative): gvxr 2.1 tabulates the same Elam et al. cross sections as xraydb with the "
        "same interpolation, so this checks compositions, densities and units, not independent "
        "data"
    )

    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            out / "gvxr_compare.npz", xraybag=T_x, gvxr=T_g, gvxr_own_mu=T_gc,
            gvxr_coarse=T_coarse, near_edge=near_edge,
        )

    try:
        from importlib.metadata import version

        gvxr_version = version("gvxr")
    except Exception:  # noqa: BLE001
        gvxr_version = info["simple_gvxr"]
    tmp_ctx.cleanup()
    return {
        "benchmark": "gvxr_compare",
        "pixels": [geom.rows, geom.cols],
        "pitch_mm": geom.pixel_mm,
        "panel_mm": PANEL_MM,
        "sod_mm": args.sod,
        "sdd_mm": args.sdd,
        "kev": kev,
        "edge_radius_px": EDGE_RADIUS,
        "max_edge_mm": args.max_edge,
        "scene": {
            "solids": {
                s.part: {
                    "material": s.material,
                    "triangles": int(len(s.faces)),
                    "triangles_as_built": int(len(c.faces)),
                }
                for s, c in zip(solids, coarse)
            },
            "triangles": int(sum(len(s.faces) for s in solids)),
            "from_stl_file_in_both": ["ti_torus"],
        },
        "mu_per_mm": mu_x,
        "comparison": cmp_mu,
        "comparison_gvxr_attenuation": cmp_own,
        "comparison_coarse_meshes": cmp_coarse,
        "path_length_check": lbuf,
        "edges": edges,
        "orientation": orient,
        "timing_s": {
            "xraybag": {
                "how": how,
                "cold": cold["total"],
                "cold_parts": {k: v for k, v in cold.items() if k != "total"},
                "numba_cache": numba_cache,
                "warm": best["total"],
                "warm_parts": {k: v for k, v in best.items() if k != "total"},
                "repeats": len(warm),
                "threads": int(numba.get_num_threads()),
            },
            "gvxr": {
                "import": gv_import,
                "context": gv_context,
                "setup": gv_setup,
                "image_cold": img_cold.seconds,
                "image_warm": gv_warm,
                "white_image": gv_white,
                "session_total": gv_total,
            },
        },
        "device": {
            "gvxr": f"{info['renderer']} ({info['vendor']}, OpenGL {info['opengl']}, EGL)",
            "xraybag": f"CPU, numba, {os.cpu_count()} cores",
            "machine": platform.machine(),
        },
        "versions": {
            "python": platform.python_version(),
            "xraybag": getattr(xraybag, "__version__", "unknown"),
            "gvxr": gvxr_version,
            "simple_gvxr": info["simple_gvxr"],
            "core_gvxr": info["core_gvxr"],
            "numpy": np.__version__,
            "numba": numba.__version__,
            "scipy": scipy.__version__,
            "trimesh": trimesh.__version__,
            "xraydb": xraydb.__version__,
        },
        "gvxr_settings": info,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=256, help="panel pixels per side (default 256)")
    ap.add_argument("--kev", type=float, default=60.0, help="photon energy in keV (default 60)")
    ap.add_argument("--sod", type=float, default=1000.0, help="source to bag centre, mm")
    ap.add_argument("--sdd", type=float, default=1300.0, help="source to detector, mm")
    ap.add_argument(
        "--max-edge", type=float, default=20.0,
        help="subdivide every solid (for both simulators) to triangle edges <= this (mm)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="warm repeats of each timing")
    ap.add_argument("--save", help="folder for the images (npz)")
    ap.add_argument("--gvxr-log", help="gvxr's log file (default: its lines go to stderr)")
    args = ap.parse_args(argv)
    out_fd = os.dup(1)  # the JSON goes to the real stdout; everything else to stderr
    with stdout_to_stderr():
        result = run(args)
    with os.fdopen(out_fd, "w") as out:
        out.write(json.dumps(result, indent=2) + "\n")
    return 0 if result["comparison"].get("pass") else 1


if __name__ == "__main__":
    sys.exit(main())
