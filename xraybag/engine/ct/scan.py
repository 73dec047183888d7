"""One CT scan of one packed bag: geometry checks, sinograms, decomposition, reconstruction,
labels, and the files of ``OUT/ct/<bag>/``.

Each stage is a plain function over plain data (arrays, :class:`CTGeometry`, :class:`VolumeGrid`),
so a user can run any of them alone — e.g. reconstruct sinograms from elsewhere with
:func:`xraybag.engine.ct.recon.reconstruct`.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct.geometry import CTGeometry, VolumeGrid
from xraybag.engine.ct.views import (
    CHUNK_BYTES,
    chunk_views,
    project_views,
    sinograms,
    voxel_sinograms,
)
from xraybag.errors import XraybagError

#: above this Zeff a material counts as metal (the pseudo-colour's metal class), for MAR pairs
METAL_ZEFF = 18.0


# ----------------------------------------------------------------------------- set-up and checks


def outer_box(scene) -> np.ndarray:
    """(2, 3) bag-frame box of the bag's outer surface."""
    from xraybag.engine.xray.scanners import bag_outer_bounds

    return bag_outer_bounds(scene)


def isocentre(box: np.ndarray) -> np.ndarray:
    """The bag-frame isocentre: the centre of the bag's cross-section, at the bag's middle along x."""
    return (box[0] + box[1]) / 2.0


def geometry_problem(ct, outer_size) -> tuple[str, str] | None:
    """The first reason why CT settings ``ct`` cannot scan a bag of outer size (x, y, z) mm, as
    ``(field, message)``, or None. Checked before any work starts."""
    sx, sy, sz = (float(x) for x in outer_size)
    reach = math.hypot(sy / 2.0, sz / 2.0)  # farthest point of the bag's cross-section from the axis
    if reach > ct.bore / 2.0:
        return "bore", (
            f"the bag's cross-section ({sy:g} x {sz:g} mm) reaches {reach:.0f} mm from the axis and "
            f"does not pass the {ct.bore:g} mm bore"
        )
    geom = _bare_geometry(ct, 1)
    fov = geom.fov_radius
    if reach > fov:
        need = _columns_for(ct, reach)
        return "cols", (
            f"detector too small for the bag: {ct.cols} columns of {ct.col_pitch:g} mm cover a "
            f"{fov:.0f} mm radius around the axis but the bag reaches {reach:.0f} mm; "
            f"use at least {need} columns or a larger col_pitch"
        )
    voxel = float(ct.voxel)
    if ct.geometry == "axial":
        thick = ct.row_pitch * ct.sid / ct.sdd
        step = voxel if ct.slice_step is None else float(ct.slice_step)
        if step > thick * (1 + 1e-9):
            return "slice_step", (
                f"slices {step:g} mm apart with a {thick:.3g} mm thick fan (row_pitch x sid / sdd) "
                "leave gaps between them"
            )
    if ct.geometry == "circular":
        length = sx if ct.volume is None else float(ct.volume[0])
        coll = G.collimation(geom)
        half = coll / 2.0 * (ct.sid - reach) / ct.sid  # z half-height seen in every view at the edge
        if length / 2.0 > half:
            return "rows", (
                f"detector too small for the bag: one circular rotation sees only {2 * half:.0f} mm "
                f"of the bag's {length:g} mm length at its edge; use geometry helical or more rows"
            )
    return None


def scanner_problem(scanner) -> tuple[tuple, str] | None:
    """The first reason why a CT ``scanner`` cannot run its scan on this machine whatever the bag,
    as ``(field path under the scanner, message)``, or None. Checked before any work starts.

    * A dual-energy mode (``dual_layer``, ``photon_counting``) with a monochromatic spectrum gives
      every channel the same single energy: the Compton / photoelectric decomposition has no second
      equation (its 2 x 2 system is singular), so it is refused unless ``decompose: none``.
    * ``projector: numba / cupy / astra`` must be available here (cupy and ASTRA's 3D projector
      need CUDA; ASTRA's 3D calls abort the process without it).
    """
    from xraybag.engine.ct.project import backend_problem

    ct = scanner.ct
    if (ct.mode in ("dual_layer", "photon_counting") and scanner.spectrum.mono_kev is not None
            and ct.reconstruction.decompose != "none"):
        return ("spectrum", "mono_kev"), (
            f"a monochromatic spectrum gives both channels of a {ct.mode} CT the same energy, so "
            "they cannot be decomposed into Compton and photoelectric parts; use a kvp spectrum, "
            "or ct: {mode: single} for a single-energy scan"
        )
    if ct.mode == "kvp_switching" and ct.spectra and ct.reconstruction.decompose != "none":
        monos = [s.mono_kev for s in ct.spectra.values()]
        if all(m is not None for m in monos) and len(set(monos)) == 1:
            return ("ct", "spectra"), "kvp_switching needs spectra of different energies; all are one mono_kev line"
    if ct.projector != "mesh":
        problem = backend_problem(ct.projector)
        if problem is not None:
            return ("ct", "projector"), f"projector {ct.projector!r} cannot run here: {problem}; use mesh or numba"
    return None


def _columns_for(ct, reach: float) -> int:
    half = math.asin(min(reach / ct.sid, 1.0))
    per = ct.col_pitch / ct.sdd
    if not ct.curved:
        return int(math.ceil(2 * ct.sdd * math.tan(half) / ct.col_pitch)) + 2
    return int(math.ceil(2 * half / per)) + 2


def _bare_geometry(ct, views: int) -> CTGeometry:
    rows = 1 if ct.geometry == "axial" else int(ct.rows)
    return G.circular(ct.sid, ct.sdd, rows, int(ct.cols), ct.row_pitch, ct.col_pitch, views,
                      curved=ct.curved)


@dataclass
class CTSetup:
    geom: CTGeometry
    grid: VolumeGrid
    iso: np.ndarray  # bag-frame isocentre
    response: object  # ChannelResponse with the scan's channels


def setup(scanner, scene, library, where: str = "scanners") -> CTSetup:
    """Scan geometry, reconstruction grid and detector response for one bag (checked first)."""
    problem = scanner_problem(scanner)
    if problem:
        raise XraybagError(problem[1], ".".join([where, *problem[0]]))
    geom, grid, iso = plan(scanner.ct, scene, where)
    return CTSetup(geom, grid, iso, ct_response(scanner, geom, library))


def plan(ct, scene, where: str = "scanners") -> tuple[CTGeometry, VolumeGrid, np.ndarray]:
    """The views, the reconstruction grid and the isocentre of a scan of this bag."""
    box = outer_box(scene)
    size = box[1] - box[0]
    problem = geometry_problem(ct, size)
    if problem:
        raise XraybagError(problem[1], f"{where}.ct.{problem[0]}")
    iso = isocentre(box)
    vol = size if ct.volume is None else np.asarray(ct.volume, dtype=np.float64)
    voxel = float(ct.voxel)
    grid = VolumeGrid.centred((vol[1], vol[2], vol[0]), voxel, 0.0)  # CT x, y, z = bag y, z, x
    zb = grid.bounds()[:, 2]
    rows = 1 if ct.geometry == "axial" else int(ct.rows)
    views = int(ct.views)
    if ct.geometry == "axial":
        step = voxel if ct.slice_step is None else float(ct.slice_step)
        n = max(1, int(math.ceil((zb[1] - zb[0]) / step - 1e-9)))
        zs = (zb[0] + zb[1]) / 2.0 + (np.arange(n) - (n - 1) / 2.0) * step
        geom = G.axial(ct.sid, ct.sdd, int(ct.cols), ct.col_pitch, views, zs, curved=ct.curved,
                       row_pitch=ct.row_pitch)
    elif ct.geometry == "circular":
        geom = G.circular(ct.sid, ct.sdd, rows, int(ct.cols), ct.row_pitch, ct.col_pitch, views,
                          curved=ct.curved, z=(zb[0] + zb[1]) / 2.0)
    else:
        bare = _bare_geometry(ct, views)
        coll = G.collimation(bare)
        feed = float(ct.pitch) * coll
        margin = coll / 2.0 + feed / 2.0 + voxel  # every slice is seen from both sides of the helix
        geom = G.helical(ct.sid, ct.sdd, rows, int(ct.cols), ct.row_pitch, ct.col_pitch, views,
                         zb[0] - margin, zb[1] + margin, feed, curved=ct.curved)
    return geom, grid, iso


def scan_memory(scanner, scene, n_materials: int) -> tuple[int, str]:
    """Peak bytes of one scan (sinograms, volumes, the traced chunk, the written files)."""
    geom, grid, _ = plan(scanner.ct, scene)
    n_ch = {"dual_layer": 2, "single": 1}.get(scanner.ct.mode, 0)
    if scanner.ct.mode == "kvp_switching":
        n_ch = len(scanner.ct.spectra)
    elif scanner.ct.mode == "photon_counting":
        n_ch = len(scanner.detector.thresholds)
    sino = geom.views * geom.rows * geom.cols * 4
    vol = grid.nbytes32
    n_vol = n_ch + (4 if n_ch >= 2 else 0)
    chunk = min(CHUNK_BYTES, geom.views * geom.rows * geom.cols * max(n_materials, 1) * 12)
    ct = scanner.ct
    if ct.projector == "mesh" and geom.kind == "helical" and ct.reconstruction.method == "fbp":
        # streamed (see scan_prepared): a window of views, the kept sinograms, the volumes
        window = min(geom.views, 2 * _window_views(geom, grid))
        need = (window * geom.rows * geom.cols * 4 * (n_ch + 2) + (sino * n_ch if ct.sinograms else 0)
                + vol * (n_vol + 2) + 3 * chunk)
    else:
        need = sino * (n_ch + 2) * (2 if ct.sinograms else 1) + vol * (2 * n_vol + 4) + 3 * chunk
    if scanner.ct.mar_pair:
        need += vol * (n_vol + 1)
    need += voxelize_rays(grid, int(ct.supersample))
    what = (f"CT scanner {scanner.name!r}: {geom.views} views of {geom.rows} x {geom.cols}, "
            f"volume {grid.shape[2]} x {grid.shape[1]} x {grid.shape[0]} voxels")
    return int(need), what


def voxelize_rays(grid: VolumeGrid, supersample: int) -> int:
    """Bytes of the labels' voxeliser's sub-ray buffers: a row of S x S rays per voxel column in
    every thread (see :func:`xraybag.engine.ct.voxelize.voxelize`)."""
    import numba

    return int(numba.get_num_threads()) * int(grid.shape[2]) * int(supersample) ** 2 * 8


def gpu_memory(scanner, scene, n_materials: int) -> tuple[int, str]:
    """Peak GPU bytes of one scan with ``backend="cuda"`` (0 where the scan does not use the GPU:
    a voxel projector). The larger of the projection and reconstruction (a chunk's path lengths,
    sums and images; the volumes of helical FBP, which stay on the GPU, its ring of views and a
    slab's work; or the sinogram-sized arrays of the other FBPs) and of the labels (a slab of the
    voxeliser's buffers, its threads' local memory, the labels and the material fractions)."""
    from xraybag.engine.ct.views import GPU_CHUNK_BYTES

    ct = scanner.ct
    if ct.projector != "mesh":
        return 0, ""
    geom, grid, _ = plan(ct, scene)
    n_ch = max(1, {"dual_layer": 2, "single": 1}.get(ct.mode, 0) or len(ct.spectra or [])
               or len(scanner.detector.thresholds or []))
    channels = n_ch + (2 if n_ch >= 2 and ct.reconstruction.decompose == "projection" else 0)
    voxels = int(np.prod(grid.shape))
    m = max(int(n_materials), 1)
    chunk = min(GPU_CHUNK_BYTES, geom.views * geom.rows * geom.cols * m * 12)
    if geom.kind == "helical" and ct.reconstruction.method == "fbp":
        from xraybag.engine.ct.recon import HELICAL_SLAB_GPU

        window = min(geom.views, 2 * _window_views(geom, grid, HELICAL_SLAB_GPU))
        slab = HELICAL_SLAB_GPU * max(1, round(math.pi * geom.views_per_rotation / (2 * math.pi))) * geom.cols
        recon = voxels * 4 * channels + window * geom.rows * geom.cols * 4 * channels + slab * (34 + 8 * channels)
    else:
        recon = voxels * 4 * channels + geom.views * geom.rows * geom.cols * 4 * channels
    labels = (1 << 30) + (1 << 29) + voxels * (2 + m)
    need = max(chunk + recon, labels)
    what = (f"CT scanner {scanner.name!r} on the GPU: volume {grid.shape[2]} x {grid.shape[1]} x "
            f"{grid.shape[0]} voxels, {channels} channels")
    return int(need), what


def _window_views(geom: CTGeometry, grid: VolumeGrid, slab: int | None = None) -> int:
    """Views a streamed helical reconstruction uses for one slab of ``slab`` slices (the CPU's
    slab by default; the bound of :func:`xraybag.engine.ct.recon._ssrb_view_range`)."""
    from xraybag.engine.ct.recon import HELICAL_SLAB, _ssrb_view_range

    slab = HELICAL_SLAB if slab is None else slab

    z = grid.axis("z")
    zv = np.asarray(geom.z, dtype=np.float64)
    h = (zv[-1] - zv[0]) / max(geom.views - 1, 1)
    if abs(h) < 1e-12:
        return geom.views
    dbeta = 2 * math.pi / geom.views_per_rotation
    v0 = float(geom.v()[0])
    hv = (abs(v0) + 2 * geom.row_pitch) * geom.sid / geom.sdd
    marg = float(np.max(np.abs(geom.gamma()))) / dbeta + 2.0
    mid = max(0, z.size // 2 - slab // 2)  # a slab inside the scan (the ends are clipped)
    k0, k1 = _ssrb_view_range(float(z[mid]), float(z[min(mid + slab, z.size) - 1]), float(zv[0]), h, hv,
                              math.pi / dbeta, marg, geom.views)
    return max(k1 - k0, 1)


def ct_response(scanner, geom: CTGeometry, library):
    """The detector response per channel: the detector's own channels, or one integrating channel
    per spectrum (kVp switching), on one energy grid."""
    from xraybag.engine.xray.detect import ChannelResponse
    from xraybag.engine.xray.detect import channel_response as response_of

    area = geom.col_pitch * geom.row_pitch
    ct = scanner.ct
    if ct.mode != "kvp_switching":
        return response_of(scanner, library, area, geom.sdd)
    parts = {name: response_of(scanner.model_copy(update={"spectrum": spec}), library, area, geom.sdd)
             for name, spec in ct.spectra.items()}
    grids = [p.energies for p in parts.values()]
    energies = max(grids, key=len)
    cols_w, cols_q, photons = [], [], np.zeros(len(energies))
    for name, p in parts.items():
        idx = np.searchsorted(energies, p.energies)
        if np.any(idx >= len(energies)) or not np.allclose(energies[idx], p.energies):
            raise XraybagError(
                f"spectrum {name!r}: its energy grid does not line up with the other spectra "
                "(use the same energy_bin)", "scanners.ct.spectra"
            )
        w = np.zeros(len(energies))
        q = np.zeros(len(energies))
        w[idx] = p.weights[:, 0]
        q[idx] = p.quanta[:, 0]
        cols_w.append(w)
        cols_q.append(q)
        photons[idx] += p.photons
    weights = np.stack(cols_w, axis=1)
    return ChannelResponse(energies=energies, weights=weights, channels=list(parts),
                           quanta=np.stack(cols_q, axis=1), open_beam=weights.sum(axis=0),
                           photons=photons)


def low_high(response) -> tuple[str, str] | None:
    """The two channels used for decomposition, lower mean energy first (None if fewer than 2)."""
    names = list(response.channels)
    if len(names) < 2:
        return None
    w = response.weights
    mean = (response.energies[:, None] * w).sum(axis=0) / w.sum(axis=0)
    order = np.argsort(mean)
    return names[int(order[0])], names[int(order[-1])]


# ----------------------------------------------------------------------------- forward model


def to_ct_solids(solids, iso: np.ndarray) -> list:
    """The packed scene's solids with their vertices in the CT frame."""
    return [replace(s, vertices=G.scene_to_ct(s.vertices, iso)) for s in solids]


# ----------------------------------------------------------------------------- the whole scan


@dataclass
class CTResult:
    volumes: dict[str, np.ndarray]  # quantity -> (nz, ny, nx)
    sinograms: dict[str, np.ndarray]
    labels: np.ndarray
    geometry: dict  # geometry.json
    seconds: dict[str, float] = field(default_factory=dict)
    no_metal: "CTResult | None" = None


def scan(solids, objects, scanner, scene, library, rng, where: str = "scanners",
         progress=None, keep_sinograms: bool | None = None, backend: str = "numba") -> CTResult:
    """Scan one packed bag with a CT scanner (and, with ``ct.mar_pair``, again without metal).
    ``backend`` "cuda" runs the mesh projector and helical FBP's backprojection on the GPU."""
    ct = scanner.ct
    st = setup(scanner, scene, library, where)
    result = scan_prepared(solids, st, scanner, library, rng, progress, keep_sinograms, backend=backend)
    if ct.mar_pair:
        metal = metal_objects(solids, library)
        kept = [s for s in solids if s.object_index not in metal]
        result.no_metal = scan_prepared(kept, st, scanner, library, rng, progress, keep_sinograms,
                                        backend=backend)
        result.no_metal.geometry["removed_objects"] = sorted(int(i) for i in metal)
    return result


def metal_objects(solids, library) -> set[int]:
    """Objects with a metal part: a material of the library's category ``metal``, or any material
    whose Zeff exceeds :data:`METAL_ZEFF` (user materials without a category)."""
    def metal(name: str) -> bool:
        m = library.get(name)
        return m.category == "metal" or m.zeff > METAL_ZEFF

    return {s.object_index for s in solids if s.object_index > 0 and metal(s.material)}


def streams(scanner, st: CTSetup) -> bool:
    """Whether :func:`scan_prepared` streams views through projection, decomposition and
    reconstruction (mesh projector, helical FBP) instead of holding whole sinograms."""
    ct = scanner.ct
    return (ct.projector == "mesh" and st.geom.kind == "helical"
            and ct.reconstruction.method == "fbp" and st.geom.views > 1)


def scan_prepared(solids, st: CTSetup, scanner, library, rng, progress=None,
                  keep_sinograms=None, stream: bool | None = None, backend: str = "numba") -> CTResult:
    """Scan bag-frame ``solids`` with a prepared set-up (see :func:`setup`): sinograms,
    decomposition, reconstruction, derived volumes and labels.

    With a helical FBP scan on the meshes (see :func:`streams`; ``stream=False`` turns it off)
    the views are streamed: each chunk of views is traced, detected, decomposed and kept only
    while the reconstruction's slabs of slices need it (about one rotation plus a slab), so no
    whole sinogram is held unless ``keep_sinograms`` / ``ct.sinograms`` asks for the detector
    channels' sinograms (then those are kept whole: views x rows x cols x 4 bytes each). The
    chunks, the draws and the arithmetic are those of the unstreamed scan, so the volumes are the
    same to the bit. ``backend`` "cuda" runs on the GPU the tracing (:mod:`.forward_cuda`), the
    whole detection (:mod:`xraybag.engine.xray.detect_cuda`; the counter draws are the CPU's),
    the decomposition and Zeff (:mod:`.decompose_cuda`), helical FBP's slabs (:mod:`.ssrb_cuda`)
    or the other FBPs' backprojection (:mod:`.backproject_cuda`) and the labels
    (:mod:`.voxelize_cuda`): the CPU's numbers to float rounding."""
    from xraybag.engine.ct.decompose import Decomposer
    from xraybag.engine.ct.recon import ViewStream, helical_ssrb, reconstruct
    from xraybag.engine.ct.voxelize import voxelize

    ct = scanner.ct
    rec = ct.reconstruction
    times: dict[str, float] = {}
    solids_ct = to_ct_solids(solids, st.iso)
    keep = ct.sinograms if keep_sinograms is None else keep_sinograms
    pair = low_high(st.response)
    channels = list(st.response.channels)
    decomposer = w = None
    if pair and rec.decompose != "none":
        lo, hi = pair
        w = st.response.weights[:, [channels.index(lo), channels.index(hi)]]
        decomposer = Decomposer(st.response.energies, w)
    in_projection = decomposer is not None and rec.decompose == "projection"
    if in_projection and backend == "cuda":  # the table's interpolation on the GPU (the CPU's numbers)
        from xraybag.engine.ct.decompose_cuda import decompose_cuda

        def decompose(p_low, p_high):
            return decompose_cuda(decomposer, p_low, p_high)
    elif in_projection:
        decompose = decomposer.decompose
    if stream is None:
        stream = streams(scanner, st)

    if stream:
        from xraybag.engine.ct.forward import mesh_of
        from xraybag.engine.xray.counter import draws_from

        g = st.geom
        materials = sorted({s.material for s in solids_ct})
        mesh = mesh_of(solids_ct, materials)
        draws = draws_from(rng)  # as sinograms(): one key for the scan
        kept = {ch: np.empty(g.shape, dtype=np.float32) for ch in channels} if keep else {}
        times["projection"] = times["decomposition"] = 0.0

        def produce(start, stop):
            t = time.perf_counter()
            part = project_views(solids_ct, st, scanner, library, rng, start, stop, materials, backend, mesh,
                                 draws)
            for ch in kept:
                kept[ch][start:stop] = part[ch]
            if progress:
                progress(stop, g.views)
            arrs = [part[ch] for ch in channels]
            times["projection"] += time.perf_counter() - t
            if in_projection:
                t = time.perf_counter()
                ac, ap = decompose(part[pair[0]], part[pair[1]])
                arrs += [np.asarray(ac, dtype=np.float32), np.asarray(ap, dtype=np.float32)]
                times["decomposition"] += time.perf_counter() - t
            return arrs

        names = channels + (["compton", "photoelectric"] if in_projection else [])
        views = ViewStream(produce, g.shape, len(names), chunk_views(g, len(materials), backend))
        t = time.perf_counter()
        block = helical_ssrb(views, g, st.grid, rec.filter, backend=backend)
        times["reconstruction"] = (time.perf_counter() - t - times["projection"]
                                   - times["decomposition"])
        del views
        vols = {k: block[i] for i, k in enumerate(names)}
        sinos = kept
    else:
        t = time.perf_counter()
        if ct.projector == "mesh":
            sinos = sinograms(solids_ct, st, scanner, library, rng, progress, backend)
        else:
            sinos = voxel_sinograms(solids_ct, st, scanner, library, rng)
        times["projection"] = time.perf_counter() - t

        to_recon = dict(sinos)
        t = time.perf_counter()
        if in_projection:
            ac, ap = decompose(sinos[pair[0]], sinos[pair[1]])
            to_recon["compton"] = np.asarray(ac, dtype=np.float32)
            to_recon["photoelectric"] = np.asarray(ap, dtype=np.float32)
            del ac, ap
        times["decomposition"] = time.perf_counter() - t
        if not keep:
            sinos = {}

        t = time.perf_counter()
        vols = reconstruct(to_recon, st.geom, st.grid, method=rec.method, filter=rec.filter,
                           iterations=int(rec.iterations), backend=backend)
        del to_recon
        times["reconstruction"] = time.perf_counter() - t

    t = time.perf_counter()
    volumes, mu_water, single = derived_volumes(vols, st, rec, decomposer, w, pair, library, backend)
    del vols
    times["decomposition"] += time.perf_counter() - t

    t = time.perf_counter()
    if backend == "cuda":  # the CPU's labels and fractions, made on the GPU
        from xraybag.engine.ct.voxelize_cuda import voxelize_cuda as voxelize
    vox = voxelize(solids_ct, st.grid, supersample=int(ct.supersample))
    times["labels"] = time.perf_counter() - t

    geometry = {
        "grid": st.grid.to_json(),
        "scan": st.geom.to_json(),
        "isocentre_bag_mm": [float(x) for x in st.iso],
        "channels": list(st.response.channels),
        "decomposition_channels": list(pair) if pair else None,
        "effective_kev": {ch: round(float(e), 3) for ch, e in effective_kev(st.response).items()},
        "units": units(rec.units, list(volumes)),
        "reconstruction": rec.model_dump(),
        "projector": ct.projector,
        "materials": sorted({s.material for s in solids}),
        "hu_reference": {("mu" if single else f"mu_{ch}"): mu_water[ch] for ch in st.response.channels}
        if rec.units == "mu" else {},
    }
    return CTResult(volumes, sinos if keep else {}, vox.labels, geometry, times)


#: z slices per step when deriving volumes from volumes (bounds the float64 temporaries)
SLAB_SLICES = 8


def _by_slab(fn, *arrays, out: list[np.ndarray]) -> None:
    """``out[i][a:b] = fn(*(x[a:b] for x in arrays))[i]`` over slabs of :data:`SLAB_SLICES` z
    slices (element-wise ``fn``: the same values as on the whole volumes)."""
    nz = arrays[0].shape[0]
    for a in range(0, nz, SLAB_SLICES):
        b = min(a + SLAB_SLICES, nz)
        res = fn(*(x[a:b] for x in arrays))
        for o, r in zip(out, res):
            o[a:b] = r


def derived_volumes(vols: dict, st: CTSetup, rec, decomposer, w, pair, library, backend: str = "numba"):
    """The output volumes from the reconstructed ones: Compton / photoelectric (decomposed here
    with ``decompose: image``), Zeff and electron density, mu (or HU) per channel. Computed slab
    by slab, so no whole-volume float64 temporaries; returns ``(volumes, mu_water, single)``.
    ``backend`` "cuda": Zeff and electron density on the GPU (:mod:`.decompose_cuda`, the CPU's
    numbers)."""
    from xraybag.engine.ct.basis import decompose_images
    from xraybag.engine.ct.filters import hounsfield, modified_hounsfield
    from xraybag.engine.ct.zeff import calibration_of, zeff_rho_e

    volumes: dict[str, np.ndarray] = {}
    if pair and rec.decompose == "image":
        lo, hi = pair
        ac, ap = decompose_images(vols[lo], vols[hi], st.response.energies, w)
        vols["compton"], vols["photoelectric"] = ac, ap
    if "compton" in vols:
        ac, ap = vols.pop("compton"), vols.pop("photoelectric")
        cal = calibration_of(decomposer)
        zeff = np.empty(ac.shape, dtype=np.float32)
        rho = np.empty(ac.shape, dtype=np.float32)
        if backend == "cuda":
            from xraybag.engine.ct.decompose_cuda import zeff_rho_e_cuda as zeff_rho_e
        _by_slab(lambda c, p: zeff_rho_e(c, p, cal), ac, ap, out=[zeff, rho])
        volumes["zeff"] = zeff
        volumes["rho_e"] = rho
        volumes["compton"] = ac
        volumes["photoelectric"] = ap
    mu_water = water_mu(st.response, library)
    single = len(st.response.channels) == 1
    for ch in st.response.channels:
        v = vols.pop(ch)
        if rec.units in ("hu", "mhu"):
            conv = hounsfield if rec.units == "hu" else modified_hounsfield
            v = np.array(v, dtype=np.float32, copy=not (isinstance(v, np.ndarray) and v.dtype == np.float32
                                                         and v.flags.writeable and v.flags.c_contiguous))
            _by_slab(lambda x, f=conv, m=mu_water[ch]: (f(x, m),), v, out=[v])  # in place
        volumes["mu" if single else f"mu_{ch}"] = np.asarray(v, dtype=np.float32)
    return volumes, mu_water, single


def effective_kev(response) -> dict[str, float]:
    w = response.weights
    return {ch: float((response.energies * w[:, c]).sum() / w[:, c].sum())
            for c, ch in enumerate(response.channels)}


def water_mu(response, library) -> dict[str, float]:
    """mu of water (1/mm) at each channel's effective energy (the HU reference)."""
    water = library.get("water")
    return {ch: float(water.mu(np.array([e]))[0]) for ch, e in effective_kev(response).items()}


def units(kind: str, quantities: list[str]) -> dict[str, str]:
    mu_unit = {"mu": "1/mm", "hu": "HU", "mhu": "modified HU (HU + 1000)"}[kind]
    out = {}
    for q in quantities:
        if q.startswith("mu"):
            out[q] = mu_unit
        elif q in ("compton", "photoelectric"):
            out[q] = "1/mm (basis coefficients)"
        elif q == "zeff":
            out[q] = "effective atomic number"
        elif q == "rho_e":
            out[q] = "electron density relative to water"
    out["labels"] = "object index (0 = nothing)"
    return out


# ----------------------------------------------------------------------------- files


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def ct_files(result: CTResult, ct, prefix: str) -> dict[str, bytes]:
    """The files of one scan under ``prefix`` (e.g. ``ct/000003``), as relative path -> bytes."""
    files: dict[str, bytes] = {}
    for q, v in result.volumes.items():
        files[f"{prefix}/{q}.npy"] = npy_bytes(v)
    files[f"{prefix}/labels.npy"] = npy_bytes(result.labels.astype(np.uint16))
    for ch, s in result.sinograms.items():
        files[f"{prefix}/sino_{ch}.npy"] = npy_bytes(s)
    files[f"{prefix}/geometry.json"] = json.dumps(result.geometry, indent=1, sort_keys=True).encode()
    if ct.previews:
        from xraybag.engine.ct.products import previews

        files.update({f"{prefix}/{k}": v for k, v in previews(result.volumes, result.labels).items()})
    if ct.dicom:
        from xraybag.engine.ct.products import dicom_series

        files.update({f"{prefix}/{k}": v for k, v in dicom_series(result.volumes, result.geometry).items()})
    if result.no_metal is not None:
        files.update(ct_files(result.no_metal, ct, f"{prefix}/no_metal"))
    return files
