"""Triangle meshes of the scene shapes, hollow containers, and mesh-file checks.

Every mesh here is closed (watertight), consistently wound with outward normals (counter-clockwise
seen from outside) and expressed in the shape's own frame in mm:

- ``box``: centred on the origin, edges along x, y, z (exact);
- ``cylinder`` and ``cone``: along z, centred on the origin (mid-height); a cone is a frustum with
  ``radius_bottom`` at z = -height/2 and ``radius_top`` at z = +height/2 (either may be 0);
- ``sphere`` and ``ellipsoid``: centred on the origin;
- ``mesh``: the file's mesh, scaled, with its bounding box centred on the origin;
- ``extrude``, ``sweep`` and ``revolve`` (built by :mod:`xraybag.engine.solids.profiles`): moved
  so that the centre of the mesh's bounding box is the origin (an extrusion spans z = -height/2 to
  height/2; a revolve's axis is the z axis).

Curved surfaces are tessellated with every vertex ON the true surface and enough facets that the
chord error (the largest distance between a flat facet and the true surface, the sagitta) is at most
``tolerance`` mm: a circle of radius r gets n = ceil(pi / acos(1 - tol / r)) sections, clamped to
[16, 720] and rounded up to a multiple of 4 (so the polygon touches the true bounding box);
spheres and ellipsoids are geodesic spheres (an octahedron, vertices on the axes, whose faces are
split into f x f triangles projected onto the surface) with the smallest f that meets the
tolerance, capped at f = 50 (20 000 faces; chord error about r / f**2, so the default 0.02 mm holds
up to radii of 50 mm and is 0.04 mm at 100 mm).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
import trimesh

from xraybag.engine.solids import curves, profiles
from xraybag.errors import XraybagError
from xraybag.scenes.models import Shape

MIN_SECTIONS = 16
MAX_SECTIONS = 720
MAX_GEODESIC_FREQUENCY = 50  # 8 * 50**2 = 20000 faces
MODELLED = ("extrude", "sweep", "revolve")
_MESH_CACHE_SIZE = 32
_mesh_cache: OrderedDict[tuple, trimesh.Trimesh] = OrderedDict()


# ------------------------------------------------------------------------------------- helpers


def _f(x) -> float:
    """A plain float from a concrete scene number (distributions must have been sampled)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise XraybagError(f"expected a fixed number, got {x!r}: sample the scene first")


def sections(radius: float, tolerance: float) -> int:
    """Number of polygon sections for a circle of ``radius`` mm with chord error <= ``tolerance``."""
    if radius <= 0:
        return MIN_SECTIONS
    ratio = 1.0 - tolerance / radius
    if ratio <= -1.0:
        return MIN_SECTIONS
    n = math.ceil(math.pi / math.acos(max(-1.0, min(1.0, ratio))))
    n = 4 * math.ceil(n / 4)
    return int(min(MAX_SECTIONS, max(MIN_SECTIONS, n)))


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(
        np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), process=False
    )


def revolve(profile: list[tuple[float, float]], n: int) -> trimesh.Trimesh:
    """A closed surface of revolution about z.

    ``profile`` is a list of (r, z) points (mm) from the bottom pole to the top pole, going round the
    outside of the solid; the first and last points must have r = 0 (on the axis). Points with r = 0
    become single vertices, the others rings of ``n`` vertices at angles 2 pi k / n (k = 0 is on +x,
    so for n divisible by 4 the polygon touches the true circle on the x and y axes).
    """
    pts = [(float(r), float(z)) for r, z in profile]
    clean = [pts[0]]
    for p in pts[1:]:
        if p != clean[-1]:
            clean.append(p)
    if clean[0][0] != 0.0 or clean[-1][0] != 0.0:
        raise ValueError("profile must start and end on the axis (r = 0)")
    ang = 2.0 * np.pi * np.arange(n) / n
    c, s = np.cos(ang), np.sin(ang)
    verts: list[np.ndarray] = []
    rings: list[np.ndarray | int] = []  # index array of a ring, or one index of a pole
    count = 0
    for r, z in clean:
        if r == 0.0:
            verts.append(np.array([[0.0, 0.0, z]]))
            rings.append(count)
            count += 1
        else:
            verts.append(np.column_stack([r * c, r * s, np.full(n, z)]))
            rings.append(np.arange(count, count + n))
            count += n
    faces = []
    for lo, hi in zip(rings[:-1], rings[1:]):
        lo_pole, hi_pole = np.isscalar(lo), np.isscalar(hi)
        if lo_pole and hi_pole:
            continue  # a segment along the axis has no surface
        if lo_pole:
            faces.append(np.column_stack([np.full(n, lo), np.roll(hi, -1), hi]))
        elif hi_pole:
            faces.append(np.column_stack([lo, np.roll(lo, -1), np.full(n, hi)]))
        else:
            lo1, hi1 = np.roll(lo, -1), np.roll(hi, -1)
            faces.append(np.column_stack([lo, lo1, hi1]))
            faces.append(np.column_stack([lo, hi1, hi]))
    return _mesh(np.vstack(verts), np.vstack(faces))


def _octahedron() -> tuple[np.ndarray, np.ndarray]:
    """The unit octahedron (vertices on the axes), outward-wound."""
    v = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=float)
    faces = []
    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                x, y, z = (0 if sx > 0 else 3), (1 if sy > 0 else 4), (2 if sz > 0 else 5)
                faces.append((x, y, z) if sx * sy * sz > 0 else (x, z, y))
    return v, np.array(faces)


@lru_cache(maxsize=64)
def _unit_geodesic(freq: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Geodesic unit sphere of frequency ``freq``: (vertices, faces, chord error on the unit sphere).

    Each face of an octahedron (whose vertices lie on the axes, so the mesh touches its true
    bounding box) is split into freq**2 triangles and every vertex is projected onto the unit
    sphere. Shared edge vertices are keyed by their integer barycentric weights, so the mesh is
    exactly closed without any merging tolerance.
    """
    base_v, base_f = _octahedron()
    # every face's grid points (i, j), i + j <= freq, in the order the faces are split
    i, j = (a.ravel() for a in np.meshgrid(np.arange(freq + 1), np.arange(freq + 1), indexing="ij"))
    inside = i + j <= freq
    i, j = i[inside], j[inside]
    nf, ng = len(base_f), len(i)
    rows = np.arange(ng)
    # a point's integer weights on the six corners name it on every face that holds it
    w = np.zeros((nf, ng, 6), dtype=np.int64)
    for k, (a, b, c) in enumerate(base_f):
        w[k, rows, a], w[k, rows, b], w[k, rows, c] = freq - i - j, i, j
    key = (w.reshape(-1, 6) * (freq + 1) ** np.arange(6)).sum(axis=1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first)  # points numbered in the order the faces first meet them
    number = np.empty_like(order)
    number[order] = np.arange(len(order))
    ids = number[inverse].reshape(nf, ng)
    weights = w.reshape(-1, 6)[first[order]].astype(np.float64)
    p = np.zeros((len(order), 3))
    for k in range(6):  # each axis has one corner's weight at most: the sums are exact
        on = weights[:, k] > 0
        p[on, k % 3] += base_v[k, k % 3] * weights[on, k]
    p /= freq
    v = p / np.linalg.norm(p, axis=1)[:, None]
    # per face and grid point, the triangle pointing up, then the one pointing down (if any)
    at = np.full((freq + 2, freq + 2), -1)
    at[i, j] = rows
    ti, tj = i[i + j < freq], j[i + j < freq]
    up = np.stack([at[ti, tj], at[ti + 1, tj], at[ti, tj + 1]], axis=1)
    down = np.stack([at[ti + 1, tj], at[ti + 1, tj + 1], at[ti, tj + 1]], axis=1)
    has = np.stack([np.ones(len(ti), dtype=bool), ti + tj <= freq - 2], axis=1)
    local = np.stack([up, down], axis=1)[has]
    f = np.concatenate([ids[k][local] for k in range(nf)]).astype(np.int64)
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    # a facet's plane distance from the centre bounds its closest point from below, so
    # 1 - (smallest plane distance) bounds the chord error from above
    error = float(1.0 - np.min(np.einsum("ij,ij->i", normal, tri[:, 0])))
    v.setflags(write=False)
    f.setflags(write=False)
    return v, f, error


def geodesic_frequency(radius: float, tolerance: float) -> int:
    """The smallest geodesic frequency whose chord error on a sphere of ``radius`` is <= tolerance."""
    # error(f) ~ 1 / f**2 on the unit sphere; start from that estimate, correct with the measured one
    est = max(1, math.ceil(math.sqrt(radius / max(tolerance, 1e-12))))
    f = min(MAX_GEODESIC_FREQUENCY, est)
    while f < MAX_GEODESIC_FREQUENCY and radius * _unit_geodesic(f)[2] > tolerance:
        f += 1
    while f > 1 and radius * _unit_geodesic(f - 1)[2] <= tolerance:
        f -= 1
    return f


def ellipsoid_mesh(radii, tolerance: float = 0.02) -> trimesh.Trimesh:
    """A geodesic ellipsoid (sphere when the radii are equal) with vertices on the true surface."""
    radii = np.asarray(radii, dtype=np.float64)
    v, f, _ = _unit_geodesic(geodesic_frequency(float(radii.max()), tolerance))
    return _mesh(v * radii, f.copy())


def cylinder_mesh(radius: float, height: float, tolerance: float = 0.02) -> trimesh.Trimesh:
    h = height / 2.0
    return revolve([(0.0, -h), (radius, -h), (radius, h), (0.0, h)], sections(radius, tolerance))


def cone_mesh(
    radius_bottom: float, radius_top: float, height: float, tolerance: float = 0.02
) -> trimesh.Trimesh:
    h = height / 2.0
    n = sections(max(radius_bottom, radius_top), tolerance)
    return revolve([(0.0, -h), (radius_bottom, -h), (radius_top, h), (0.0, h)], n)


def box_mesh(size) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=[float(x) for x in size])


# ------------------------------------------------------------------------------------ mesh files


def _load(path: str | Path) -> trimesh.Trimesh:
    """Load a mesh file as one mesh (scenes such as GLB/GLTF are concatenated)."""
    loaded = trimesh.load(str(path), force="mesh")
    if isinstance(loaded, trimesh.Scene):  # defensive: older trimesh versions
        loaded = loaded.to_mesh() if loaded.geometry else trimesh.Trimesh()
    if not isinstance(loaded, trimesh.Trimesh):
        raise ValueError(f"not a triangle mesh ({type(loaded).__name__})")
    return loaded


def _read_error(path: str | Path, e: Exception) -> str:
    """One line saying why a mesh file could not be loaded."""
    p = Path(path)
    kind = p.suffix.lstrip(".").upper() or "mesh"
    if isinstance(e, ImportError):  # trimesh reaches for optional parsers on malformed files
        msg = f"not a valid {kind} file (or it needs the optional Python package '{e.name}')"
    elif isinstance(e, OSError) and e.strerror:
        msg = e.strerror
    else:
        text = str(e).strip()
        msg = text.splitlines()[0] if text else f"not a valid {kind} file ({type(e).__name__})"
    return f"cannot read mesh '{p.name}': {msg}"


def _problem(mesh: trimesh.Trimesh, name: str) -> str | None:
    """What is wrong with a mesh for tracing, or None."""
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        return f"mesh '{name}' is empty (no triangles)"
    if not np.all(np.isfinite(mesh.vertices)):
        return f"mesh '{name}' has non-finite vertex coordinates"
    edges = np.sort(mesh.edges, axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = int(np.sum(counts == 1))
    bad_edges = int(np.sum(counts > 2))
    if open_edges or bad_edges or not mesh.is_watertight:
        if open_edges:
            what = f"{open_edges} open edges"
        else:
            what = f"{bad_edges} edges shared by more than 2 faces"
        return (
            f"mesh '{name}' is not watertight: {what}; close it (e.g. in Blender: 3D-Print "
            f"toolbox) or use a closed mesh"
        )
    if not mesh.is_winding_consistent:
        return (
            f"mesh '{name}' has inconsistent winding (some faces point inwards); recalculate its "
            f"normals (e.g. in Blender: Mesh > Normals > Recalculate Outside)"
        )
    if not mesh.volume > 0:
        return (
            f"mesh '{name}' is inside out (negative volume {mesh.volume:.6g}); flip its normals"
        )
    return None


def check_mesh_file(path: Path, where: str) -> None:
    """Raise :class:`XraybagError` at ``where`` unless ``path`` is a closed, outward-wound mesh."""
    name = Path(path).name
    if not Path(path).is_file():
        raise XraybagError(f"cannot read mesh '{name}': no such file", where)
    try:
        mesh = _load(path)
    except Exception as e:  # noqa: BLE001 - any loader failure is the user's file
        raise XraybagError(_read_error(path, e), where) from None
    problem = _problem(mesh, name)
    if problem:
        raise XraybagError(problem, where)


def _scale_tuple(scale) -> tuple[float, float, float]:
    if isinstance(scale, (list, tuple)):
        return tuple(_f(s) for s in scale)  # type: ignore[return-value]
    s = _f(scale)
    return (s, s, s)


def load_mesh(path: str | Path, scale=1.0) -> trimesh.Trimesh:
    """The mesh of a file, scaled (per axis) and with its bounding box centred on the origin.

    Results are cached (LRU, keyed on path, modification time and scale); a copy is returned.
    Raises :class:`XraybagError` when the file cannot be read or is not a closed mesh.
    """
    p = Path(path)
    sc = _scale_tuple(scale)
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError as e:
        raise XraybagError(f"cannot read mesh '{p.name}': {e.strerror}", str(p)) from None
    key = (str(p), mtime, sc)
    mesh = _mesh_cache.get(key)
    if mesh is None:
        try:
            raw = _load(p)
        except Exception as e:  # noqa: BLE001
            raise XraybagError(_read_error(p, e), str(p)) from None
        problem = _problem(raw, p.name)
        if problem:
            raise XraybagError(problem, str(p))
        v = np.asarray(raw.vertices, dtype=np.float64) * np.array(sc)
        lo, hi = v.min(axis=0), v.max(axis=0)
        mesh = _mesh(v - (lo + hi) / 2.0, np.asarray(raw.faces, dtype=np.int64))
        _mesh_cache[key] = mesh
        while len(_mesh_cache) > _MESH_CACHE_SIZE:
            _mesh_cache.popitem(last=False)
    else:
        _mesh_cache.move_to_end(key)
    return mesh.copy()


# ------------------------------------------------------------------------------------- shapes


def shape_mesh(shape: Shape, tolerance: float = 0.02) -> trimesh.Trimesh:
    """The closed, outward-wound mesh of ``shape`` in its own frame (mm); see the module notes.
    A mesh of its own each call (:func:`_remembered`)."""
    if shape.kind == "mesh":  # load_mesh keeps the files' meshes itself
        return _shape_mesh(shape, tolerance)
    key = ("outer", shape.kind, shape.params.model_dump_json(), float(tolerance))
    return _remembered(key, lambda: (_shape_mesh(shape, tolerance),))[0]


#: Bytes of vertices and faces :func:`_remembered` keeps (the least recently used go first).
_REMEMBERED_BYTES = 64 * 2**20
_remembered_meshes: OrderedDict[tuple, tuple] = OrderedDict()
_remembered_lock = threading.Lock()
_remembered_size = [0]


def _remembered(key: tuple, make) -> tuple:
    """``make()``'s meshes (a tuple of meshes or None), kept by ``key``. A packed bag's shapes are
    meshed by the packer, by the height map its sheets drape over and by the renderer (at two
    tolerances), up to seven times each; a shape met again gets a new mesh of the vertices and faces
    kept, bit for bit, instead of being meshed again (a copy: no caller shares a mesh)."""
    with _remembered_lock:
        hit = _remembered_meshes.get(key)
        if hit is not None:
            _remembered_meshes.move_to_end(key)
    if hit is not None:
        return tuple(None if h is None else _mesh(h[0].copy(), h[1].copy()) for h in hit)
    made = make()
    kept = tuple(None if m is None else (np.array(m.vertices, dtype=np.float64), np.array(m.faces, dtype=np.int64))
                 for m in made)
    with _remembered_lock:
        if key not in _remembered_meshes:
            _remembered_meshes[key] = kept
            _remembered_size[0] += _nbytes(kept)
        while _remembered_size[0] > _REMEMBERED_BYTES and len(_remembered_meshes) > 1:
            _remembered_size[0] -= _nbytes(_remembered_meshes.popitem(last=False)[1])
    return made  # the first caller's own, as made


def _nbytes(kept: tuple) -> int:
    """Bytes of the vertices and faces of an entry of :func:`_remembered`."""
    return sum(v.nbytes + f.nbytes for v, f in (k for k in kept if k is not None))


def _shape_mesh(shape: Shape, tolerance: float) -> trimesh.Trimesh:
    """:func:`shape_mesh` itself."""
    kind, p = shape.kind, shape.params
    if kind == "box":
        return box_mesh([_f(x) for x in p.size])
    if kind == "cylinder":
        return cylinder_mesh(_f(p.radius), _f(p.height), tolerance)
    if kind == "sphere":
        r = _f(p.radius)
        return ellipsoid_mesh([r, r, r], tolerance)
    if kind == "ellipsoid":
        return ellipsoid_mesh([_f(x) for x in p.radii], tolerance)
    if kind == "cone":
        return cone_mesh(_f(p.radius_bottom), _f(p.radius_top), _f(p.height), tolerance)
    if kind == "mesh":
        return load_mesh(p.path, p.scale)
    if kind in MODELLED:
        return modelled_mesh(kind, p, tolerance)[0]
    raise ValueError(f"unknown shape kind {kind!r}")  # pragma: no cover


def modelled_mesh(
    kind: str, p, tolerance: float = 0.02, wall: float | None = None
) -> tuple[trimesh.Trimesh, trimesh.Trimesh | None]:
    """(outer surface, cavity) of an extrude, sweep or revolve, both moved so that the outer
    surface's bounding box is centred on the origin. The cavity (with a ``wall``) keeps the wall:
    the outline and holes offset by it (a straight extrusion; a tapered one gets None, for the
    generic scaled cavity), the tube thinner by it and shorter by it at open ends, the profile offset
    inward by it. Bad input raises :class:`XraybagError` naming the field (``sweep.path: ...``)."""
    try:
        inner = None
        if kind == "extrude":
            h, taper, bevel = _f(p.height), _f(p.taper), _f(p.bevel)
            rings = curves.outline_rings(p.outline, p.holes, p.spline, tolerance)
            seg = max(1, sections(bevel, tolerance) // 4)
            outer = _mesh(*profiles.extrude_solid(rings, h, taper, p.taper_axis, bevel, p.bevel_shape, seg))
            if wall is not None and taper == 1.0:
                arcs = sections(wall, tolerance)
                cavity = profiles.extrude_cavity(rings, h, wall, bevel, p.bevel_shape, seg, arcs)
                if cavity is None:
                    raise _too_thick("extrude's outline or height", wall)
                inner = _mesh(*cavity)
        elif kind == "sweep":
            r, ri = _f(p.radius), _f(p.inner_radius)
            if ri >= r:
                raise ValueError(f"inner_radius: {ri:g} mm must be smaller than radius {r:g} mm")
            curves.check_path(p.path, p.spline, p.closed, r, tolerance)
            poly = curves.path_polyline(p.path, p.spline, p.closed, r, tolerance)
            outer = _mesh(*profiles.sweep_solid(poly, p.closed, r, ri, sections(r, tolerance)))
            if wall is not None:
                if ri > 0:
                    raise XraybagError("container: a sweep with an inner_radius is hollow already")
                core = poly if p.closed else profiles.trim_path(poly, wall)
                if core is None or r - wall <= 0:
                    raise _too_thick(f"sweep of radius {r:g} mm", wall)
                n = sections(r - wall, tolerance)
                inner = _mesh(*profiles.sweep_solid(core, p.closed, r - wall, 0.0, n))
        else:
            prof = curves.revolve_profile(p.profile, p.spline, tolerance)
            outer = revolve(prof, sections(float(prof[:, 0].max()), tolerance))
            if wall is not None:
                cavity = profiles.revolve_cavity_profile(prof, wall, sections(wall, tolerance))
                if cavity is None:
                    raise _too_thick("revolve's profile (the cavity vanishes or splits)", wall)
                inner = revolve(cavity, sections(float(cavity[:, 0].max()), tolerance))
    except ValueError as e:
        raise XraybagError(f"{kind}.{e}") from None
    lo, hi = outer.bounds
    centre = (lo + hi) / 2.0
    outer.vertices -= centre
    if inner is not None:
        inner.vertices -= centre
    return outer, inner


# ----------------------------------------------------------------------------------- hollow


def _too_thick(what: str, wall: float) -> XraybagError:
    return XraybagError(f"container wall {wall:g} mm is too thick for the {what}")


def _cone_cavity(rb: float, rt: float, h: float, w: float, tolerance: float) -> trimesh.Trimesh:
    """The frustum offset inward by ``w``: from each cap and perpendicular to the slanted side."""
    s = (rt - rb) / h  # dr/dz of the side
    shift = w * math.sqrt(1.0 + s * s)  # radial shift that moves the side w along its normal

    def r_in(z: float) -> float:  # the inner side line, z from the bottom (0 .. h)
        return rb + s * z - shift

    z0, z1 = w, h - w
    if z1 <= z0:
        raise _too_thick("cone (height)", w)
    r0, r1 = r_in(z0), r_in(z1)
    if r0 <= 0 and r1 <= 0:
        raise _too_thick("cone", w)
    if r0 < 0:  # the inner side reaches the axis above the bottom cap: pointed end
        z0 = z0 + (0.0 - r0) / s
        r0 = 0.0
    if r1 < 0:
        z1 = z1 + (0.0 - r1) / s
        r1 = 0.0
    if z1 - z0 <= 0:
        raise _too_thick("cone", w)
    n = sections(max(r0, r1), tolerance)
    zb, zt = z0 - h / 2.0, z1 - h / 2.0
    return revolve([(0.0, zb), (r0, zb), (r1, zt), (0.0, zt)], n)


def to_manifold(mesh: trimesh.Trimesh):
    """A closed trimesh as a ``manifold3d.Manifold`` (float64 vertices, kept exactly)."""
    import manifold3d

    return manifold3d.Manifold(
        manifold3d.Mesh64(
            np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )


def _mesh_cavity(outer: trimesh.Trimesh, w: float) -> trimesh.Trimesh:
    """Cavity of a mesh container: the outer mesh scaled about its bounding-box centre.

    First per axis by (extent - 2 w) / extent (exact for boxes: walls of w at the bounding-box
    faces), then, if some part of the wall is still thinner than ``w`` (necks, tapers), shrunk
    uniformly further (bisection) until the minimum wall, measured by manifold3d's ``min_gap``
    between the cavity and the outside of the outer mesh, is ``w``. This never self-intersects, but
    walls end up thicker than ``w`` where the shape is far from a scaled copy of itself; model thin
    features (handles) as separate parts.
    """
    import manifold3d

    lo, hi = outer.bounds
    ext = hi - lo
    if np.any(ext - 2 * w <= 0):
        raise _too_thick("mesh", w)
    centre = (lo + hi) / 2.0
    base = (ext - 2 * w) / ext
    out_m = to_manifold(outer)
    pad = 2 * w + 1.0
    box = manifold3d.Manifold.cube((ext + 2 * pad).tolist(), True).translate(centre.tolist())
    outside = box - out_m
    v0 = outer.vertices - centre

    def cavity(k: float) -> trimesh.Trimesh:
        return _mesh(v0 * (base * k) + centre, outer.faces.copy())

    def wall(k: float) -> float:
        return outside.min_gap(to_manifold(cavity(k)), 2 * w)

    target = w * (1.0 - 1e-6)
    if wall(1.0) >= target:
        return cavity(1.0)
    # bisection on k: wall(lo_k) >= w, wall(hi_k) < w
    lo_k, hi_k = 1e-3, 1.0
    if wall(lo_k) < target:  # even a speck at the centre is not w deep (or is outside)
        raise _too_thick("mesh (its centre is not deep enough inside)", w)
    for _ in range(30):
        mid = (lo_k + hi_k) / 2.0
        if wall(mid) >= target:
            lo_k = mid
        else:
            hi_k = mid
        if hi_k - lo_k < 1e-4:
            break
    return cavity(lo_k)


def hollow(
    shape: Shape, wall: float, tolerance: float = 0.02
) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """(outer surface, inner cavity) of a container with walls ``wall`` mm thick, shape frame, mm.

    Both meshes are closed and outward-wound. The cavity is: box, size - 2 wall; cylinder, radius -
    wall and height - 2 wall; sphere, radius - wall; ellipsoid, radii - wall (the wall is exactly
    ``wall`` at the ends of the axes); cone, the frustum offset inward by ``wall`` from both caps and
    perpendicular to the slanted side (pointed where the offset side reaches the axis); mesh, the
    outer mesh scaled about its centre so that the thinnest wall is ``wall`` (see
    :func:`_mesh_cavity`); extrude, sweep and revolve: see :func:`modelled_mesh`. Raises
    :class:`XraybagError` when the wall is too thick for the shape.
    """
    if shape.kind == "mesh":  # a file's mesh: load_mesh keeps it, and its modification time
        return _hollow(shape, wall, tolerance)
    key = ("hollow", shape.kind, shape.params.model_dump_json(), _f(wall), float(tolerance))
    return _remembered(key, lambda: _hollow(shape, wall, tolerance))


def _hollow(shape: Shape, wall: float, tolerance: float) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """:func:`hollow` itself."""
    w = _f(wall)
    if w <= 0:
        raise XraybagError(f"container wall must be positive, got {w:g} mm")
    kind, p = shape.kind, shape.params
    if kind in MODELLED:
        outer, inner = modelled_mesh(kind, p, tolerance, w)
        return outer, inner if inner is not None else _mesh_cavity(outer, w)
    outer = shape_mesh(shape, tolerance)
    if kind == "box":
        size = np.array([_f(x) for x in p.size])
        if np.any(size - 2 * w <= 0):
            raise _too_thick(f"box of size {size.min():g} mm", w)
        return outer, box_mesh(size - 2 * w)
    if kind == "cylinder":
        r, h = _f(p.radius), _f(p.height)
        if r - w <= 0 or h - 2 * w <= 0:
            raise _too_thick(f"cylinder (radius {r:g} mm, height {h:g} mm)", w)
        return outer, cylinder_mesh(r - w, h - 2 * w, tolerance)
    if kind == "sphere":
        r = _f(p.radius)
        if r - w <= 0:
            raise _too_thick(f"sphere of radius {r:g} mm", w)
        return outer, ellipsoid_mesh([r - w] * 3, tolerance)
    if kind == "ellipsoid":
        radii = np.array([_f(x) for x in p.radii])
        if np.any(radii - w <= 0):
            raise _too_thick(f"ellipsoid (smallest radius {radii.min():g} mm)", w)
        return outer, ellipsoid_mesh(radii - w, tolerance)
    if kind == "cone":
        return outer, _cone_cavity(_f(p.radius_bottom), _f(p.radius_top), _f(p.height), w, tolerance)
    if kind == "mesh":
        return outer, _mesh_cavity(outer, w)
    raise ValueError(f"unknown shape kind {kind!r}")  # pragma: no cover
