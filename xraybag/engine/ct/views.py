"""The CT's views of one bag: traced on the meshes (or projected on the voxelised scene) and
detected, chunk by chunk; the line integrals ``-ln(I / I0)`` of every channel that
:mod:`.scan` decomposes and reconstructs (``setup`` / ``st``: a :class:`.scan.CTSetup`). The noise is drawn by counter
(:mod:`xraybag.engine.xray.counter`) with one key per scan, so a view's draws depend on its
index only: the same in chunks of any size, on any number of threads and on a GPU.
"""

from __future__ import annotations

import numpy as np

from xraybag.engine.ct.geometry import CTGeometry

#: views traced and detected together (bounded by memory: views x rows x cols x materials floats)
CHUNK_BYTES = 256 * 2**20
#: the same on a GPU (``backend`` "cuda"), whose path lengths stay in its memory: fewer, larger
#: chunks, so fewer launches and host round trips per scan
GPU_CHUNK_BYTES = 1 << 30


def chunk_views(geom: CTGeometry, n_materials: int, backend: str = "numba") -> int:
    """Views traced and detected together: path lengths of ``n_materials`` within
    :data:`CHUNK_BYTES` (:data:`GPU_CHUNK_BYTES` on a GPU). The results do not depend on it: the
    tracer's views stand alone, and the noise is drawn by counter."""
    per_view = geom.rows * geom.cols * max(int(n_materials), 1) * 4 * 3
    budget = GPU_CHUNK_BYTES if backend == "cuda" else CHUNK_BYTES
    return max(1, min(geom.views, budget // per_view))


def project_views(solids_ct, setup, scanner, library, rng, start: int, stop: int,
                  materials: list[str], backend: str = "numba", mesh=None, draws=None) -> dict[str, np.ndarray]:
    """Line integrals ``-ln(I / I0)`` of every channel for views ``[start, stop)``, float32
    (stop - start, rows, cols): traced on the meshes and detected (noise drawn here).
    ``backend`` "cuda" traces on the GPU (:mod:`.forward_cuda`) and runs the spectral pass there.
    ``mesh``: the solids' :func:`.forward.mesh_of`, made once for all the chunks of a scan.
    The noise is drawn by counter (:mod:`xraybag.engine.xray.counter`) with the scan's key
    ``draws`` (a :class:`~xraybag.engine.xray.counter.CounterDraws`; None: a key from ``rng``),
    so view ``v``'s draws are the same in any chunk of views."""
    from xraybag.engine.xray.counter import draws_from
    from xraybag.engine.xray.detect import SPECTRAL, detect

    draws = (draws_from(rng) if draws is None else draws).at(start)

    g = setup.geom
    resp = setup.response
    if backend == "cuda":  # the path lengths stay on the GPU for its spectral pass
        from xraybag.engine.ct.forward_cuda import trace_views_cuda

        mats, L = trace_views_cuda(solids_ct, g, slice(start, stop), materials, on_device=True, mesh=mesh)
    else:
        from xraybag.engine.ct.forward import trace_views

        mats, L = trace_views(solids_ct, g, slice(start, stop), materials, mesh=mesh)
    if materials and backend == "cuda":  # the whole detection on the GPU; line integrals come back
        from xraybag.engine.xray.detect_cuda import line_integrals_cuda

        return line_integrals_cuda(L, mats, scanner, resp, library, g.col_pitch, draws)
    if materials:
        spectral = backend if backend in SPECTRAL else "numba"
        T = detect(L, mats, scanner, resp, library, rng, g.col_pitch, spectral, threads=True,  # as the tracer
                   draws=draws)
    else:
        T = {ch: np.ones(tuple(L.shape)[:3]) for ch in resp.channels}
    del L
    out = {}
    for ch in resp.channels:
        t = np.maximum(T.pop(ch), 1e-6)
        np.log(t, out=t)
        np.negative(t, out=t)
        out[ch] = t.astype(np.float32)
    return out


def sinograms(solids_ct, setup, scanner, library, rng, progress=None,
              backend: str = "numba") -> dict[str, np.ndarray]:
    """Line integrals ``-ln(I / I0)`` of every channel, float32 (views, rows, cols).

    Views are traced on the meshes and detected in chunks of :func:`chunk_views` that keep the
    path lengths within :data:`CHUNK_BYTES`; the noise is drawn by counter with one key from
    ``rng`` for the scan, so the result does not depend on the chunk size.
    """
    from xraybag.engine.ct.forward import mesh_of
    from xraybag.engine.xray.counter import draws_from
    from xraybag.engine.xray.scratch import release as release_scratch

    g = setup.geom
    materials = sorted({s.material for s in solids_ct})
    mesh = mesh_of(solids_ct, materials)
    chunk = chunk_views(g, len(materials), backend)
    draws = draws_from(rng)
    out = {ch: np.empty(g.shape, dtype=np.float32) for ch in setup.response.channels}
    for start in range(0, g.views, chunk):
        stop = min(start + chunk, g.views)
        part = project_views(solids_ct, setup, scanner, library, rng, start, stop, materials, backend, mesh,
                             draws)
        for ch, a in part.items():
            out[ch][start:stop] = a
        if progress:
            progress(stop, g.views)
    release_scratch()  # the chunks' detection temporaries (~160 MB) go back before reconstruction
    return out


def voxel_sinograms(solids_ct, st, scanner, library, rng) -> dict[str, np.ndarray]:
    """The forward model on the voxelised scene (numba / cupy / ASTRA projectors)."""
    from xraybag.engine.ct.project import project_materials
    from xraybag.engine.ct.voxelize import voxelize
    from xraybag.engine.xray.counter import draws_from
    from xraybag.engine.xray.detect import detect
    from xraybag.engine.xray.scratch import release as release_scratch

    vox = voxelize(solids_ct, st.grid, supersample=int(scanner.ct.supersample))
    mats, L = project_materials(vox, st.geom, backend=scanner.ct.projector)
    T = detect(L, mats, scanner, st.response, library, rng, st.geom.col_pitch, draws=draws_from(rng))
    release_scratch()  # the whole scan's detection temporaries
    return {ch: (-np.log(np.maximum(T[ch], 1e-6))).astype(np.float32) for ch in st.response.channels}
