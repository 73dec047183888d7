"""The CUDA voxelisation (xraybag.engine.ct.voxelize_cuda) against the CPU's and a closed form.

Run as a script (``python tests/test_voxelize_cuda.py [--scale N] [--only NAME] [--max-hits K]
[--fallback K] [--bag]``) this file voxelises every scene below with ``voxelize.voxelize`` and
``voxelize_cuda`` in one process and prints one JSON line per scene (what differs, the fallback
counts, timings); the tests run it under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, which must
be set before numba is imported, hence the subprocess) on tiny grids, compile the kernels to PTX
for a real GPU, and, marked ``gpu``, run it on a real GPU at 4x the resolution with a bag of 30
objects (``--bag``, which also prints the warm GPU time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xraybag.engine.ct.geometry import VolumeGrid
from xraybag.engine.solids.scene import Solid

SCRIPT = Path(__file__).resolve()
NAMES = {"touching_boxes", "nested", "thin_sheet", "empty", "outside", "box_volume", "slabs", "stack"}


# ----------------------------------------------------------------------------- scenes


def solid(mesh, material: str, index: int, shift=(0.0, 0.0, 0.0), flip: bool = False) -> Solid:
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if flip:
        faces = faces[:, ::-1]
    return Solid(np.asarray(mesh.vertices, dtype=np.float64) + np.asarray(shift, dtype=np.float64), faces, material,
                 index, material)


def box(lo, hi, material: str, index: int) -> Solid:
    import trimesh

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return solid(trimesh.creation.box(extents=hi - lo), material, index, (lo + hi) / 2)


def rotation(axis, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def scenes(scale: int = 1) -> dict:
    """name -> (solids, grid, supersample, extra arguments of both voxelisers). 1 mm voxels / scale;
    sizes in mm: the sub-rays of S = 2 sit at k / 2 + 1 / 4 mm (scale 1), where the faces below put
    vertices, edges and diagonals."""
    import trimesh

    v = 1.0 / scale
    out = {}
    # two boxes of different materials and objects sharing a face at x = 0.25, square tops whose
    # diagonals, edges and corners lie on sub-rays (the tie rule, once per ray)
    a = box([-4.75, -2.75, -2.6], [0.25, 2.25, 3.3], "al", 1)
    b = box([0.25, -2.75, -2.6], [4.25, 2.25, 3.3], "steel", 2)
    out["touching_boxes"] = ([a, b], VolumeGrid.centred((12, 10, 8), v), 2, {"dtype": "float32"})
    # a box with a spherical cavity holding a steel ball (another object), and a second ball of the
    # same material and object overlapping the first (a union: winding 2)
    shell = box([-5, -4.5, -4], [4.5, 5, 3.5], "water", 1)
    cav = trimesh.creation.icosphere(subdivisions=2, radius=2.5)
    ball = solid(cav, "steel", 2, (0.3, -0.2, 0.1))
    hole = solid(cav, "water", 1, (0.3, -0.2, 0.1), flip=True)
    shell = Solid(np.concatenate([shell.vertices, hole.vertices]),
                  np.concatenate([shell.faces, hole.faces + len(shell.vertices)]), "water", 1, "water")
    ball2 = solid(trimesh.creation.icosphere(subdivisions=1, radius=1.5), "steel", 2, (1.6, 1.1, -0.4))
    out["nested"] = ([shell, ball, ball2], VolumeGrid.centred((12, 12, 10), v), 2, {})
    # a thin rotated sheet (many rays enter and leave within one voxel), S = 3
    sheet = trimesh.creation.box(extents=[9.0, 7.0, 0.9])
    sheet.vertices = sheet.vertices @ rotation([1, 2, 0.5], 0.6).T + [0.1, -0.3, 0.2]
    out["thin_sheet"] = ([solid(sheet, "al", 3)], VolumeGrid.centred((12, 12, 12), v), 3, {"dtype": "float32"})
    out["empty"] = ([], VolumeGrid.centred((6, 5, 4), v), 2, {})
    out["outside"] = ([box([20, 20, 20], [24, 23, 22], "al", 1)], VolumeGrid.centred((6, 5, 4), v), 2, {})
    # a box whose x and y faces lie between sub-rays: its sampled volume is its volume
    out["box_volume"] = ([box([-3, -2, -1.3], [3, 3, 2.9], "pmma", 5)], VolumeGrid.centred((8, 8, 8), v), 2,
                         {"dtype": "float32"})
    # a sphere in a slab per y row (chunk_bytes=1)
    sph = ellipsoid(4.0)
    out["slabs"] = ([solid(sph, "steel", 4, (0.2, 0.1, -0.3))], VolumeGrid.centred((10, 10, 10), v), 2,
                    {"chunk_bytes": 1})
    # three stacked boxes: six hits on a ray (with --max-hits 4: rows redone on the CPU)
    stack = [box([-3, -3 + k, -4 + 2.6 * k], [3, 3 - k, -2.2 + 2.6 * k], ["al", "steel", "al"][k], k + 1)
             for k in range(3)]
    out["stack"] = (stack, VolumeGrid.centred((8, 8, 10), v), 2, {})
    return out


def ellipsoid(r: float):
    from xraybag.engine.solids.meshes import ellipsoid_mesh

    return ellipsoid_mesh([r, r, r], tolerance=0.05)


def bag(scale: int, n: int = 30, seed: int = 3) -> tuple[list, VolumeGrid]:
    """``n`` objects (spheres with a ball inside, boxes, cylinders, capsules) at random poses in a grid of
    64 x 64 x 40 mm (x scale, 1 mm / scale voxels; large at scale 4, 256 x 256 x 160 voxels)."""
    import trimesh

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        kind = k % 4
        r = float(rng.uniform(3, 8))
        if kind == 0:
            m = trimesh.creation.icosphere(subdivisions=3, radius=r)
        elif kind == 1:
            m = trimesh.creation.box(extents=rng.uniform(2, 14, 3))
        elif kind == 2:
            m = trimesh.creation.cylinder(radius=r / 2, height=2 * r, sections=48)
        else:
            m = trimesh.creation.capsule(radius=r / 2, height=r, count=[24, 24])
        m.vertices = m.vertices @ rotation(rng.normal(size=3), float(rng.uniform(0, np.pi))).T
        shift = rng.uniform([-26, -26, -14], [26, 26, 14])
        out.append(solid(m, ["al", "steel", "water", "pmma", "glass"][k % 5], k + 1, shift))
        if kind == 0:  # a nested ball of another material in the same object
            out.append(solid(trimesh.creation.icosphere(subdivisions=2, radius=r / 3), "steel", k + 1, shift))
    return out, VolumeGrid.centred((64, 64, 40), 1.0 / scale)


# ----------------------------------------------------------------------------- comparison


def compare(cpu, gpu) -> dict:
    rec = {"materials": cpu.materials, "same_materials": cpu.materials == gpu.materials,
           "labels_equal": bool(np.array_equal(cpu.labels, gpu.labels)),
           "label_diffs": int(np.count_nonzero(cpu.labels != gpu.labels)),
           "labels": sorted(int(x) for x in np.unique(cpu.labels)), "los_equal": True, "fractions_equal": True,
           "max_frac_diff": 0.0, "dtypes": [], "filled": 0}
    for (lo_c, a), (lo_g, b) in zip(cpu.fractions, gpu.fractions):
        rec["los_equal"] &= tuple(lo_c) == tuple(lo_g) and a.shape == b.shape
        rec["fractions_equal"] &= a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
        rec["dtypes"].append(str(b.dtype))
        rec["filled"] += int(np.count_nonzero(a))
        if a.shape == b.shape and a.size:
            rec["max_frac_diff"] = max(rec["max_frac_diff"],
                                       float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
    rec["equal"] = rec["same_materials"] and rec["labels_equal"] and rec["los_equal"] and rec["fractions_equal"]
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--only", action="append")
    ap.add_argument("--max-hits", type=int, default=None)
    ap.add_argument("--bag", action="store_true", help="also the bag of 30 objects (with timings)")
    ap.add_argument("--fallback", type=int, default=None,
                    help="simulator only: then 'stack' again with hit arrays of this size (stack_fallback)")
    args = ap.parse_args()
    import numba

    from xraybag.engine.ct import voxelize_cuda as V
    from xraybag.engine.ct.voxelize import voxelize

    if args.max_hits is not None:  # before the kernel is compiled (the simulator reads it per call)
        V.MAX_HITS = args.max_hits
    todo = scenes(args.scale)
    if args.bag:
        todo["bag"] = (*bag(args.scale), 2, {})
    if args.fallback is not None:
        todo["stack_fallback"] = todo["stack"]
    for name, (solids, grid, S, kw) in todo.items():
        if args.only and name not in args.only:
            continue
        if name == "stack_fallback":  # the simulator runs the kernel's Python: it reads MAX_HITS per call
            assert numba.config.ENABLE_CUDASIM, "--fallback needs the simulator (use --max-hits on a GPU)"
            V.MAX_HITS = args.fallback
        t0 = time.perf_counter()
        cpu = voxelize(solids, grid, S, **kw)
        t1 = time.perf_counter()
        stats: dict = {}
        gpu = V.voxelize_cuda(solids, grid, S, stats=stats, **kw)
        t2 = time.perf_counter()
        rec = {"scene": name, "shape": list(grid.shape), "S": S, **compare(cpu, gpu), "stats": stats,
               "t_cpu": t1 - t0, "t_gpu": t2 - t1,
               "triangles": int(sum(len(s.faces) for s in solids))}
        if name == "bag":  # a second run: the kernels compiled and the GPU warm
            t = time.perf_counter()
            V.voxelize_cuda(solids, grid, S, **kw)
            rec["t_gpu_warm"] = time.perf_counter() - t
        if name == "box_volume":
            rec["volume_cuda"] = gpu.volume("pmma")
            rec["volume_exact"] = 6.0 * 5.0 * 4.2
        print(json.dumps(rec), flush=True)


# ----------------------------------------------------------------------------- tests


def _run(*args: str, sim: bool, timeout: int = 300) -> dict:
    from helpers import json_records, run_python

    return json_records(run_python([str(SCRIPT), *args], sim=sim, timeout=timeout))


@pytest.fixture(scope="module")
def simulated():
    """Every scene voxelised on the CPU and by the CUDA kernels under numba's simulator."""
    return _run("--fallback", "4", sim=True)


@pytest.mark.parametrize("scene", sorted(NAMES - {"empty", "outside"}))
def test_simulated_cuda_equals_cpu(simulated, scene):
    """Labels, material boxes and every fraction the CPU's, to the bit."""
    r = simulated[scene]
    assert r["filled"] > 20 and len(r["labels"]) >= 2, r
    assert r["equal"], r
    assert r["stats"]["fallback_rows"] == 0


def test_simulated_ties_and_objects(simulated):
    """Rays through the touching boxes' shared edges and vertices, the nested objects' labels."""
    r = simulated["touching_boxes"]
    assert r["materials"] == ["al", "steel"] and r["labels"] == [0, 1, 2] and r["dtypes"] == ["float32"] * 2
    r = simulated["nested"]
    assert r["materials"] == ["steel", "water"] and r["labels"] == [0, 1, 2] and r["dtypes"] == ["uint8"] * 2
    assert simulated["thin_sheet"]["S"] == 3 and simulated["slabs"]["stats"]["slabs"] == 10


def test_simulated_nothing_on_the_grid(simulated):
    for name, materials in (("empty", []), ("outside", ["al"])):
        r = simulated[name]
        assert r["equal"] and r["materials"] == materials and r["labels"] == [0] and r["filled"] == 0, r


def test_simulated_box_volume_is_exact(simulated):
    """Independent of the CPU: a box whose x / y faces lie between sub-rays has a sampled volume
    equal to its volume (z is integrated exactly)."""
    r = simulated["box_volume"]
    assert r["volume_cuda"] == pytest.approx(r["volume_exact"], rel=1e-5)


def test_simulated_rays_with_too_many_hits_fall_back_to_the_cpu(simulated):
    """Hit arrays of 4: the rows with a ray through the three stacked boxes (6 hits) are redone
    on the CPU, and the result is still the CPU's."""
    assert simulated["stack"]["equal"] and simulated["stack"]["stats"]["fallback_rows"] == 0
    r = simulated["stack_fallback"]
    assert r["equal"], r
    assert r["stats"]["fallback_rows"] >= 2 and r["stats"]["fallback_columns"] >= r["stats"]["fallback_rows"]


def test_kernels_compile_for_a_real_gpu():
    """numba's CUDA typing and NVVM on both kernels (no GPU needed): no double multiply-add in the
    column kernel (its products go through dmul_rn), the float32 rounding of the fractions."""
    from helpers import ptx_of

    fmas, rints = ptx_of("""
        from xraybag.engine.ct import voxelize_cuda as V
        f1, i1, i4, f4, i2 = nt.float64[::1], nt.int64[::1], nt.int32[::1], nt.float32[::1], nt.int64[:, ::1]
        I, F = nt.int64, nt.float64
        sig = (f1, f1, f1, i2, i4, i2, i1, i4, I, I, I, I, I, i4, i4, i2, i2, i1, f4, i2, i2, i1, f4, F, F, F, F, i4)
        ptx, _ = cuda.compile_ptx(V._columns.py_func, sig, cc=(9, 0))
        assert len(ptx) > 20_000 and ".local" in ptx and ptx.count("mul.rn.f64") >= 10
        fmas = ptx.count("fma.rn.f64")
        for store in (nt.uint8[::1], f4):
            sig = (f4, i2, i2, i1, i1, i1, i1, nt.boolean, store, f4, i2, i2, i1, i1, I, I, nt.float32,
                   nt.uint16[:, :, ::1])
            ptx, _ = cuda.compile_ptx(V._finish.py_func, sig, cc=(9, 0))
            assert len(ptx) > 5_000
        print("PTX", fmas, ptx.count("cvt.rni.f32.f32"))
    """)
    assert fmas == 0 and rints >= 1


def test_memory_refusal_and_bad_arguments_before_any_gpu_work():
    """``max_bytes`` against the larger of the host's and the GPU's estimates, and the CPU's
    argument checks, raise before anything touches the GPU (none here)."""
    from xraybag.engine.ct.voxelize_cuda import estimate_bytes_cuda, voxelize_cuda
    from xraybag.errors import XraybagError

    solids = [solid(ellipsoid(20.0), "steel", 1)]
    grid = VolumeGrid.centred((64, 64, 64), 1.0)
    host, device = estimate_bytes_cuda(solids, grid, 2)
    labels = 64**3 * 2
    assert labels < host < 4 * labels and device > labels  # the GPU's also holds each thread's hit array
    with pytest.raises(XraybagError, match=r"GPU memory.*GiB") as e:
        voxelize_cuda(solids, grid, 2, max_bytes=device - 1)
    assert "\n" not in str(e.value) and f"{device / 2**30:.2f} GiB" in str(e.value)
    with pytest.raises(XraybagError, match="supersample"):
        voxelize_cuda(solids, grid, 0)
    with pytest.raises(XraybagError, match="dtype"):
        voxelize_cuda(solids, grid, 2, dtype="float64")


@pytest.mark.gpu
def test_cuda_equals_cpu_on_a_gpu():
    """The scenes at 4x the resolution, and a bag of 30 objects, on a real GPU: the CPU's labels and
    fractions to the bit; then the fallback with hit arrays of 4."""
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is false)")
    recs = _run("--scale", "4", "--bag", sim=False, timeout=900)
    assert NAMES | {"bag"} <= set(recs)
    for r in recs.values():
        assert r["equal"], r
    assert recs["box_volume"]["volume_cuda"] == pytest.approx(recs["box_volume"]["volume_exact"], rel=1e-5)
    assert len(recs["bag"]["labels"]) > 20
    r = _run("--only", "stack", "--max-hits", "4", sim=False)["stack"]
    assert r["equal"] and r["stats"]["fallback_rows"] >= 8, r


if __name__ == "__main__":
    main()
