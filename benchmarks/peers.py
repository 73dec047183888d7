"""Checks against peer simulators: gVirtualXray (``gvxr``) on the same meshes and geometry.

Used by ``benchmarks/gvxr_compare.py`` and ``tests/test_gvxr.py``. Nothing here is needed to render
bags; ``gvxr`` is imported lazily and only by :class:`Gvxr`.

gVirtualXray conventions (gvxr 2.1, found by experiment and checked by the benchmark with an
asymmetric scene):

- ``computeXRayImage()`` returns a (height, width) array: row index along the detector's *up*
  vector, column index along its *right* vector (both increasing), pixel centres on the same
  symmetric grid as xraybag's radiograph (``(k - (n - 1) / 2) * pitch`` from the panel centre).
- The panel only sees the beam when ``right x up`` points back towards the source; a panel set up
  the other way round gives an empty (all-white) image, silently. :meth:`Gvxr.set_geometry`
  therefore uses ``right = v`` when ``v x u`` faces the source and ``right = -v`` (columns reversed
  afterwards) otherwise.
- Images are energy per pixel (``setMonoChromatic(E, 'keV', N)``: N photons of E per pixel, in
  MeV); ``getWhiteImage()`` is the open beam, so ``image / white`` is the transmission.
- Linear attenuation coefficients are given in cm^-1 and L-buffers (``computeLBuffer``) come back
  in cm; xraybag's are in mm^-1 and mm.
- The C++ library logs to the process's standard output (file descriptor 1) and Mesa to standard
  error; :func:`stdout_to_stderr` keeps such lines off stdout.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

#: The comparison's tolerance on transmission (relative, per pixel away from edges).
TOLERANCE = 0.005


# ------------------------------------------------------------------------------ availability


_PROBE = r"""
import sys
from gvxrPython3 import gvxr
gvxr.useLogFile("{log}")
gvxr.createNewContext("EGL")
gvxr.setSourcePosition(0.0, 0.0, -100.0, "mm")
gvxr.usePointSource()
gvxr.setMonoChromatic(60.0, "keV", 1000)
gvxr.setDetectorPosition(0.0, 0.0, 100.0, "mm")
gvxr.setDetectorUpVector(0.0, 1.0, 0.0)
gvxr.setDetectorRightVector(-1.0, 0.0, 0.0)
gvxr.setDetectorNumberOfPixels(8, 8)
gvxr.setDetectorPixelSize(1.0, 1.0, "mm")
gvxr.makeCuboid("probe", 2.0, 2.0, 2.0, "mm")
gvxr.setLinearAttenuationCoefficient("probe", 1.0, "cm-1")
gvxr.addPolygonMeshAsInnerSurface("probe")
img = gvxr.computeXRayImage()
sys.__stderr__.write("renderer: %s\n" % gvxr.getOpenGlRenderer())
print("GVXR-OK", min(min(r) for r in img))
"""


def gvxr_available(timeout: float = 120.0) -> tuple[bool, str]:
    """Whether gvxr imports and renders an image through a headless EGL context.

    Runs in a subprocess: a failed OpenGL context can abort the process that made it. Returns
    ``(ok, reason)``; ``reason`` says what failed (or names the renderer when it worked).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        code = _PROBE.replace("{log}", os.path.join(tmp, "gvxr.log").replace("\\", "/"))
        try:
            p = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return False, f"gvxr EGL probe timed out after {timeout:g} s"
    if p.returncode != 0 or "GVXR-OK" not in p.stdout:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return False, f"gvxr EGL probe failed (exit code {p.returncode}): " + " | ".join(tail)
    renderer = [ln for ln in p.stderr.splitlines() if ln.startswith("renderer:")]
    return True, renderer[-1] if renderer else "ok"


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (C/C++ libraries included) to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# ------------------------------------------------------------------------------ edges


def silhouette_edges(vertices: np.ndarray, faces: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(K, 2, 3) mesh edges between a triangle facing ``source`` and one facing away from it.

    These are the lines on the detector across which a ray's path length through the mesh is
    not smooth: the outline of its shadow and every inner fold (a shell's cavity, a torus's hole).
    Boundary edges (used by one face only) are included too.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    facing = np.einsum("ij,ij->i", normal, tri.mean(axis=1) - source) < 0.0
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    owner = np.tile(np.arange(len(f)), 3)
    key = np.sort(edges, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, owner = key[order], owner[order]
    same = np.all(key[1:] == key[:-1], axis=1)
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    counts = np.diff(np.concatenate([starts, [len(key)]]))
    keep = []
    for s, c in zip(starts, counts):
        fs = facing[owner[s : s + c]]
        if c == 1 or fs.any() != fs.all():
            keep.append(s)
    k = key[np.array(keep, dtype=np.int64)] if keep else np.zeros((0, 2), dtype=np.int64)
    return v[k]


def edge_mask(solids, geometry, radius: int = 2) -> np.ndarray:
    """(rows, cols) bool: pixels within ``radius`` pixels of the shadow of a silhouette edge.

    Each silhouette edge (see :func:`silhouette_edges`, with the radiograph's point source) is
    projected onto the detector, sampled every 0.2 pixel, and the pixels nearest its samples are
    marked; the marks are then dilated by a (2 radius + 1) square.
    """
    from scipy.ndimage import binary_dilation

    rows, cols = geometry.rows, geometry.cols
    mask = np.zeros((rows, cols), dtype=bool)
    source = np.asarray(geometry.extras["source"], dtype=np.float64)
    for s in solids:
        seg = silhouette_edges(s.vertices, s.faces, source)
        if len(seg) == 0:
            continue
        r, c = geometry.project(seg.reshape(-1, 3))
        r, c = r.reshape(-1, 2), c.reshape(-1, 2)
        ok = np.all(np.isfinite(r) & np.isfinite(c), axis=1)
        r, c = r[ok], c[ok]
        length = np.hypot(r[:, 1] - r[:, 0], c[:, 1] - c[:, 0])
        n = np.maximum(np.ceil(length / 0.2).astype(np.int64), 1)
        idx = np.repeat(np.arange(len(r)), n + 1)
        t = np.concatenate([np.linspace(0.0, 1.0, k + 1) for k in n])
        pr = np.rint(r[idx, 0] + t * (r[idx, 1] - r[idx, 0])).astype(np.int64)
        pc = np.rint(c[idx, 0] + t * (c[idx, 1] - c[idx, 0])).astype(np.int64)
        inside = (pr >= -radius) & (pr < rows + radius) & (pc >= -radius) & (pc < cols + radius)
        pr = np.clip(pr[inside], 0, rows - 1)  # edges just off the panel still reach its border
        pc = np.clip(pc[inside], 0, cols - 1)
        mask[pr, pc] = True
    if radius > 0:
        mask = binary_dilation(mask, structure=np.ones((2 * radius + 1, 2 * radius + 1), bool))
    return mask


# ------------------------------------------------------------------------------ meshes


def subdivide(vertices: np.ndarray, faces: np.ndarray, max_edge: float) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle in four (shared edge midpoints) until no edge exceeds ``max_edge`` mm.

    The solid is unchanged (planar faces are split in their plane) and stays watertight. gvxr
    needs it: its path lengths through large triangles are biased, by an error that falls with
    the square of the edge length, as if each fragment's distance to the source were interpolated
    linearly across its triangle (a rotated 60 x 40 x 15 mm box at 1 m: 0.13 mm of aluminium
    with its 12 triangles, 0.029 / 0.011 / 0.0026 / 0.0007 mm with edges <= 40 / 20 / 10 / 5
    mm). xraybag's paths are exact for any tessellation.
    """
    import trimesh

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    while len(f):
        longest = np.linalg.norm(v[f[:, [1, 2, 0]]] - v[f], axis=2).max()
        if longest <= max_edge:
            break
        v, f = trimesh.remesh.subdivide(v, f)
    return v, f


def subdivide_solid(solid, max_edge: float):
    """The same :class:`~xraybag.engine.solids.scene.Solid` with triangles of edges <= ``max_edge``."""
    from xraybag.engine.solids.scene import Solid

    v, f = subdivide(solid.vertices, solid.faces, max_edge)
    if len(f) == len(solid.faces):
        return solid
    return Solid(
        np.ascontiguousarray(v), np.ascontiguousarray(f, dtype=np.int32), solid.material,
        solid.object_index, solid.part,
    )


# ------------------------------------------------------------------------------ statistics


def compare_transmission(
    reference: np.ndarray, other: np.ndarray, keep: np.ndarray, tolerance: float = TOLERANCE
) -> dict:
    """Relative differences ``|other - reference| / reference`` over the pixels in ``keep``."""
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    keep = np.asarray(keep, dtype=bool) & (ref > 0)
    rel = np.abs(oth - ref)[keep] / ref[keep]
    attenuated = keep & (ref < 0.999)
    rel_att = np.abs(oth - ref)[attenuated] / ref[attenuated]
    if rel.size == 0:
        return {"pixels_compared": 0}
    return {
        "pixels_compared": int(rel.size),
        "pixels_attenuated": int(rel_att.size),
        "max_rel_diff": float(rel.max()),
        "p99_rel_diff": float(np.percentile(rel, 99)),
        "mean_rel_diff": float(rel.mean()),
        "fraction_within_tolerance": float(np.mean(rel <= tolerance)),
        "max_rel_diff_attenuated": float(rel_att.max()) if rel_att.size else None,
        "p99_rel_diff_attenuated": float(np.percentile(rel_att, 99)) if rel_att.size else None,
        "fraction_within_tolerance_attenuated": (
            float(np.mean(rel_att <= tolerance)) if rel_att.size else None
        ),
        "min_transmission": float(ref[keep].min()),
        "tolerance": tolerance,
        "pass": bool(rel.max() <= tolerance),
    }


def orientation_check(reference: np.ndarray, other: np.ndarray) -> dict:
    """Mean |ln T_other - ln T_ref| for the image as it is and flipped / transposed.

    An asymmetric scene makes the right orientation the only small value.
    """
    a = np.log(np.clip(np.asarray(reference, dtype=np.float64), 1e-12, None))
    b = np.log(np.clip(np.asarray(other, dtype=np.float64), 1e-12, None))
    variants = {
        "as_is": b,
        "flip_rows": b[::-1, :],
        "flip_cols": b[:, ::-1],
        "rotate_180": b[::-1, ::-1],
    }
    if b.shape[0] == b.shape[1]:
        variants["transpose"] = b.T
        variants["transpose_flipped"] = b[::-1, ::-1].T
    out = {k: float(np.mean(np.abs(v - a))) for k, v in variants.items()}
    others = [v for k, v in out.items() if k != "as_is"]
    out["ok"] = bool(out["as_is"] * 20.0 < min(others)) if others else True
    return out


# ------------------------------------------------------------------------------ gvxr


@dataclass
class GvxrImage:
    transmission: np.ndarray  # (rows, cols) float64, xraybag orientation
    seconds: float  # computeXRayImage
    white_seconds: float  # getWhiteImage


class Gvxr:
    """A gVirtualXray session set up from an xraybag point-source radiograph geometry.

    gvxr keeps global state: make one instance per process. Lengths in mm, mu in 1/mm.
    """

    def __init__(self, backend: str = "EGL", log_file: str | None = None):
        t = time.perf_counter()
        from gvxrPython3 import gvxr

        self.import_seconds = time.perf_counter() - t
        self.gvxr = gvxr
        if log_file is not None:
            gvxr.useLogFile(log_file)
        t = time.perf_counter()
        gvxr.createNewContext(backend)
        self.context_seconds = time.perf_counter() - t
        self.labels: list[str] = []
        self.flip_cols = False
        self.shape: tuple[int, int] = (0, 0)

    # -- description
    def info(self) -> dict:
        g = self.gvxr
        return {
            "simple_gvxr": g.getVersionOfSimpleGVXR(),
            "core_gvxr": g.getVersionOfCoreGVXR(),
            "renderer": g.getOpenGlRenderer(),
            "vendor": g.getOpenGlVendor(),
            "opengl": g.getOpenGlVersion(),
            "mixed_precision_flag": int(g.getMixedPrecisionFlag()),
            "artefact_filtering_cpu": bool(g.isArtefactFilteringOnCPUEnabled()),
            "artefact_filtering_gpu": bool(g.isArtefactFilteringOnGPUEnabled()),
            "oversampling": int(g.getOversamplingFactor()),
        }

    # -- set-up
    def set_geometry(self, geometry) -> None:
        """Source, panel position, orientation, pixel count and pitch of a point-source radiograph."""
        ex = geometry.extras
        if "source" not in ex or not np.allclose(geometry.dir_col @ ex["axis"], 0.0) or not np.allclose(
            geometry.origin_row, ex["source"]
        ):
            raise ValueError("gvxr comparison needs a point-source radiograph geometry")
        g = self.gvxr
        src = np.asarray(ex["source"], dtype=np.float64)
        b = np.asarray(ex["axis"], dtype=np.float64)
        u = np.asarray(ex["u"], dtype=np.float64)
        v = np.asarray(ex["v"], dtype=np.float64)
        centre = src + geometry.distance_mm * b
        self.flip_cols = bool(np.dot(np.cross(v, u), b) > 0)  # right x up must face the source
        right = -v if self.flip_cols else v
        g.setSourcePosition(*map(float, src), "mm")
        g.usePointSource()
        g.setDetectorPosition(*map(float, centre), "mm")
        g.setDetectorUpVector(*map(float, u))
        g.setDetectorRightVector(*map(float, right))
        g.setDetectorNumberOfPixels(int(geometry.cols), int(geometry.rows))
        g.setDetectorPixelSize(float(geometry.pixel_mm), float(geometry.pixel_mm), "mm")
        self.shape = (int(geometry.rows), int(geometry.cols))

    def set_mono(self, kev: float, photons: float = 1000.0) -> None:
        self.gvxr.setMonoChromatic(float(kev), "keV", int(photons))

    def add_mesh(self, label: str, path: str, render: bool = True) -> None:
        """Load an STL (or any Assimp format) file in mm; ``render``: as an inner surface now."""
        self.gvxr.loadMeshFile(label, str(path), "mm", bool(render))
        self.labels.append(label)

    def use(self, labels) -> None:
        """Render exactly these meshes (each an inner surface: its own L-buffer times its mu)."""
        self.gvxr.removePolygonMeshesFromXRayRenderer()
        for label in labels:
            self.gvxr.addPolygonMeshAsInnerSurface(label)

    def triangles(self, label: str) -> int:
        return int(self.gvxr.getNumberOfPrimitives(label))

    def set_mu(self, label: str, mu_per_mm: float) -> None:
        self.gvxr.setLinearAttenuationCoefficient(label, float(mu_per_mm) * 10.0, "cm-1")

    def set_composition(self, label: str, mass_fractions: dict[str, float], density: float) -> None:
        """gvxr's own attenuation data: an element or a mixture by mass, and the density (g/cm3)."""
        g = self.gvxr
        symbols = [s for s, w in mass_fractions.items() if w > 0]
        if len(symbols) == 1:
            g.setElement(label, symbols[0])
        else:
            g.setMixture(label, symbols, [float(mass_fractions[s]) for s in symbols])
        g.setDensity(label, float(density), "g/cm3")

    def mu(self, label: str, kev: float) -> float:
        """gvxr's linear attenuation coefficient of a mesh (1/mm)."""
        return float(self.gvxr.getLinearAttenuationCoefficient(label, float(kev), "keV")) / 10.0

    # -- images
    def _orient(self, img) -> np.ndarray:
        a = np.asarray(img, dtype=np.float64)
        if a.shape != self.shape:
            raise RuntimeError(f"gvxr returned an image of shape {a.shape}; expected {self.shape}")
        return a[:, ::-1] if self.flip_cols else a

    def transmission(self) -> GvxrImage:
        g = self.gvxr
        t = time.perf_counter()
        img = self._orient(g.computeXRayImage())
        dt = time.perf_counter() - t
        t = time.perf_counter()
        white = self._orient(g.getWhiteImage())
        dw = time.perf_counter() - t
        return GvxrImage(img / white, dt, dw)

    def path_length(self, label: str) -> np.ndarray:
        """gvxr's L-buffer of one mesh (mm), xraybag orientation (gvxr returns it in cm)."""
        lb = self._orient(self.gvxr.computeLBuffer(label))
        g = self.gvxr
        return lb * (float(g.getUnitOfLength("cm")) / float(g.getUnitOfLength("mm")))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.gvxr.terminate()
