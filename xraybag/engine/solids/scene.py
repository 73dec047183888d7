"""The geometry of a concrete, packed scene: closed triangle solids in the bag frame.

Frames (all lengths in mm, angles in degrees):

- **bag frame**: origin at the centre of the bag's interior floor, x along the conveyor, z up. The
  bag interior spans x in [-sx/2, sx/2], y in [-sy/2, sy/2], z in [0, sz].
- **node frame**: every shape is centred on the origin of its own frame (see
  :mod:`xraybag.engine.solids.meshes`). A part's ``pose`` maps its frame into its parent's frame,
  ``x_parent = R x_part + position`` (identity when absent); a part's ``position`` is therefore
  where its own shape's centre goes in the parent frame.
- **object frame**: the object node's frame, *re-centred* so that the axis-aligned bounding box of
  all its shapes (each at its local pose) has its centre at the origin. The object's ``pose`` then
  rotates this frame about that centre and moves the centre to ``pose.position``:
  ``x_bag = R (x_obj - c) + position``, where c is the bounding-box centre before re-centring.
- Rotations: ``R = Rz @ Ry @ Rx`` from ``rotation_deg = [rx, ry, rz]`` (fixed axes x, then y, then
  z; scipy's extrinsic ``'xyz'``).

Containers become a shell solid (outer surface plus the cavity surface wound inwards, so rays
through it see only the wall) and, when filled, a liquid solid: the cavity in the bag frame cut by
the horizontal plane (along gravity, after the pose) that holds ``level`` times the cavity volume.

Sheets (``sheet: {size, thickness, plies, fittings, drape}``) become one closed solid (see
:func:`sheet_solid_parts`): the draped mid-surface is a height field ``drape[i][j]`` (bag-frame z, mm) over a regular grid of
the sheet's flat extent in its own frame, ``u_i = -size_x/2 + i size_x/(nx-1)`` (rows along x),
``v_j = -size_y/2 + j size_y/(ny-1)``; the grid spacing follows from the size and the grid shape.
The flat extent is placed by the pose: ``(x, y) = Rz(yaw) (u, v) + position[:2]`` (yaw =
``rotation_deg[2]``; the x and y rotations must be 0; ``position[2]`` is the centre of the sheet's
bounding box and is not used to build it). The bottom surface is ``drape - thickness/2``; the top
surface lies ``thickness * sqrt(1 + |grad drape|^2)`` above it (vertically; gradient by central
differences at the nodes, stretch capped at 3), which keeps the thickness normal to the surface on
slopes. On flat parts ``drape`` is exactly the mid-surface. ``plies`` multiply the thickness above
the bottom by the layers at each node (:func:`xraybag.engine.solids.fittings.ply_layers`), and each
of ``fittings`` (buttons, snaps, zips) is one more solid of the object resting on the top surface
(:func:`sheet_fittings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.optimize import brentq

from xraybag.engine.solids.fittings import fitting_mesh, ply_layers, to_bag
from xraybag.engine.solids.meshes import box_mesh, hollow, shape_mesh, to_manifold
from xraybag.errors import XraybagError
from xraybag.scenes.models import Container, Object, Scene, Shape, Sheet

FILL_RTOL = 1e-5  # relative volume accuracy of the fill level solve


@dataclass
class Solid:
    """One closed solid of one material, in the bag frame."""

    vertices: np.ndarray  # (V, 3) float64, bag frame, mm
    faces: np.ndarray  # (F, 3) int32, outward (counter-clockwise seen from outside), closed
    material: str  # material name (resolved later by the material library)
    object_index: int  # 1..N: the object this solid belongs to; 0: the bag itself
    part: str  # dotted part name for reports, e.g. "knife.blade"

    @property
    def volume(self) -> float:
        """Enclosed volume (mm3); for shells, outer minus cavity."""
        return signed_volume(self.vertices, self.faces)

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) axis-aligned bounding box (mm)."""
        return np.array([self.vertices.min(axis=0), self.vertices.max(axis=0)])


@dataclass
class ObjectInfo:
    """What the annotation writers need to know about one object."""

    index: int  # 1..N in scene order
    name: str
    label: str | None
    materials: list[str]  # materials of its parts (first = the main one, for annotations)
    position: list[float]  # pose of the object (bbox centre, bag frame)
    rotation_deg: list[float]
    volume: float  # mm3 of material (containers: walls + fill)
    bounds: np.ndarray  # (2, 3) world AABB


@dataclass
class Node:
    """One shape of an object, placed in the (not yet re-centred) object frame."""

    shape: Shape
    material: str
    container: Container | None
    part: str
    transform: np.ndarray  # (4, 4): node frame -> object frame
    _outer: trimesh.Trimesh | None = field(default=None, repr=False)

    def outer(self, tolerance: float) -> trimesh.Trimesh:
        """The shape's outer surface in its own frame (cached)."""
        if self._outer is None:
            self._outer = shape_mesh(self.shape, tolerance)
        return self._outer


# ---------------------------------------------------------------------------------- transforms


def _num(x, what: str) -> float:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise XraybagError(f"{what}: expected a fixed number, got {x!r} (sample the scene first)")


def cos_sin(deg: float) -> tuple[float, float]:
    """cos and sin of an angle in degrees; exact (0, +-1) at multiples of 90 degrees."""
    if deg % 90.0 == 0.0:
        return ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[int(deg // 90.0) % 4]
    r = math.radians(deg)
    return math.cos(r), math.sin(r)


def rotation_matrix(rotation_deg) -> np.ndarray:
    """R = Rz @ Ry @ Rx for rotations (degrees) about the fixed x, y, z axes.

    Written out in closed form (the packers call it thousands of times per bag; scipy's
    ``Rotation.from_euler`` costs 40 us a call): it agrees with scipy to 1e-15, and quarter turns
    are exact, so an axis-aligned pose maps a box onto a box.
    """
    ca, sa = cos_sin(float(rotation_deg[0]))
    cb, sb = cos_sin(float(rotation_deg[1]))
    cc, sc = cos_sin(float(rotation_deg[2]))
    return np.array([
        [cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa],
        [sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa],
        [-sb, cb * sa, cb * ca],
    ])


def pose_matrix(position, rotation_deg) -> np.ndarray:
    """The 4x4 transform ``x -> R x + position``."""
    m = np.eye(4)
    m[:3, :3] = rotation_matrix(rotation_deg)
    m[:3, 3] = [float(p) for p in position]
    return m


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) through a 4x4 affine transform."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed enclosed volume of a closed triangle mesh (mm3; positive when outward-wound)."""
    t = vertices[faces]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


# ------------------------------------------------------------------------------- object trees


def object_name(obj: Object, index: int) -> str:
    """The object's name (objects of concrete scenes always have one)."""
    return obj.name if obj.name else f"object{index}"


def object_nodes(obj: Object, name: str) -> list[Node]:
    """The shapes of an object's tree, each with its transform into the object frame."""
    nodes: list[Node] = []

    def walk(node, part: str, transform: np.ndarray, where: str) -> None:
        if node.shape is not None:
            material = node.material
            if not isinstance(material, str):
                raise XraybagError(f"{where}.material: expected a material name, got {material!r}")
            nodes.append(Node(node.shape, material, node.container, part, transform))
        for i, child in enumerate(node.parts):
            cwhere = f"{where}.parts[{i}]"
            local = np.eye(4)
            if child.pose is not None:
                pos = [_num(x, f"{cwhere}.pose.position") for x in child.pose.position]
                rot = [_num(x, f"{cwhere}.pose.rotation_deg") for x in child.pose.rotation_deg]
                local = pose_matrix(pos, rot)
            walk(child, f"{part}.{child.name or f'part{i}'}", transform @ local, cwhere)

    walk(obj, name, np.eye(4), f"object {name!r}")
    return nodes


def local_bounds(nodes: list[Node], tolerance: float) -> np.ndarray:
    """(2, 3) AABB of all the nodes' outer surfaces in the object frame (before re-centring)."""
    pts = np.vstack([apply(n.transform, n.outer(tolerance).vertices) for n in nodes])
    return np.array([pts.min(axis=0), pts.max(axis=0)])


def object_transform(obj: Object, nodes: list[Node], tolerance: float, name: str) -> np.ndarray:
    """4x4 transform object frame -> bag frame: re-centre on the AABB, rotate, translate."""
    if obj.pose is None:
        raise XraybagError(f"object {name!r} has no pose: pack the scene first")
    pos = [_num(x, f"object {name!r}: pose.position") for x in obj.pose.position]
    rot = [_num(x, f"object {name!r}: pose.rotation_deg") for x in obj.pose.rotation_deg]
    lo, hi = local_bounds(nodes, tolerance)
    recentre = np.eye(4)
    recentre[:3, 3] = -(lo + hi) / 2.0
    return pose_matrix(pos, rot) @ recentre


def object_points(obj: Object, tolerance: float = 0.02, name: str | None = None) -> np.ndarray:
    """Vertices of an object's outer surfaces in its re-centred object frame (its convex hull's).

    The AABB of ``R @ points + position`` is the world AABB of the object at that pose (the packer
    uses this; :func:`build_solids` produces exactly these vertices).
    """
    name = name or object_name(obj, 0)
    if obj.sheet is not None:
        return sheet_points(obj, name)
    nodes = object_nodes(obj, name)
    if not nodes:
        raise XraybagError(f"object {name!r} has no shape")
    pts = np.vstack([apply(n.transform, n.outer(tolerance).vertices) for n in nodes])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pts = pts - (lo + hi) / 2.0
    if len(pts) > 64:
        try:
            from scipy.spatial import ConvexHull

            pts = pts[ConvexHull(pts).vertices]
        except Exception:  # noqa: BLE001 - flat or degenerate point sets: keep them all
            pass
    return pts


# ------------------------------------------------------------------------------------ solids


def _solid(mesh_v: np.ndarray, faces: np.ndarray, material: str, index: int, part: str) -> Solid:
    return Solid(
        np.ascontiguousarray(mesh_v, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int32),
        material,
        index,
        part,
    )


def shell(outer_v, outer_f, inner_v, inner_f) -> tuple[np.ndarray, np.ndarray]:
    """One closed shell: the outer surface plus the inner surface wound inwards."""
    v = np.vstack([outer_v, inner_v])
    f = np.vstack([np.asarray(outer_f), np.asarray(inner_f)[:, ::-1] + len(outer_v)])
    return v, f


def fill_cavity(
    vertices: np.ndarray, faces: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """The part of a closed cavity (bag frame) below the horizontal plane holding ``level`` of it.

    Returns (vertices, faces, z of the liquid surface). The plane height is solved (Brent) so that
    the liquid volume is ``level`` times the cavity volume to a relative ``FILL_RTOL``.
    """
    m = to_manifold(trimesh.Trimesh(vertices, faces, process=False))
    total = m.volume()
    z0, z1 = float(vertices[:, 2].min()), float(vertices[:, 2].max())
    if level >= 1.0:
        mesh = m.to_mesh64()
        return np.asarray(mesh.vert_properties[:, :3]), np.asarray(mesh.tri_verts), z1
    target = level * total
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    h = brentq(lambda h: volume_below(tri, h) - target, z0, z1, xtol=1e-9 * max(1.0, z1 - z0),
               rtol=1e-12, maxiter=200)
    liquid = m.trim_by_plane([0.0, 0.0, -1.0], -h)  # keeps z <= h
    if abs(liquid.volume() - target) > FILL_RTOL * 10 * total:  # pragma: no cover - defensive
        raise XraybagError(f"could not solve the fill level {level:g}")
    mesh = liquid.to_mesh64()
    return np.asarray(mesh.vert_properties[:, :3], dtype=np.float64), np.asarray(mesh.tri_verts), h


def volume_below(tri: np.ndarray, h: float) -> float:
    """Volume of a closed, outward-oriented triangle mesh ``tri`` (faces, 3 corners, xyz) below the
    plane z = ``h``, in closed form: by the divergence theorem with the field (0, 0, z - h), which
    is zero on the cut, the volume is the sum over the faces' parts below the plane of their signed
    projected area on xy times (their mean z - h) (z is linear on a face). A face crossing the
    plane is split at the plane along its two edges that cross it."""
    z = tri[:, :, 2]
    below = z < h
    n_below = below.sum(axis=1)

    def part(a, b, c):  # signed xy area of triangles (a, b, c) times (their mean z - h)
        area = 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
        return area * ((a[:, 2] + b[:, 2] + c[:, 2]) / 3.0 - h)

    total = float(part(*(tri[n_below == 3, k] for k in range(3))).sum())
    for odd_below in (True, False):  # one corner below, or one above
        cut = tri[n_below == (1 if odd_below else 2)]
        if not len(cut):
            continue
        odd = np.argmax(cut[:, :, 2] < h if odd_below else cut[:, :, 2] >= h, axis=1)
        rows = np.arange(len(cut))
        a, b, c = (cut[rows, (odd + k) % 3] for k in range(3))  # the odd corner first (same turn)
        pb = a + ((h - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None] * (b - a)
        pc = a + ((h - a[:, 2]) / (c[:, 2] - a[:, 2]))[:, None] * (c - a)
        corner = float(part(a, pb, pc).sum())  # the odd corner's triangle, cut at the plane
        total += corner if odd_below else float(part(a, b, c).sum()) - corner
    return total


def bag_solid(scene: Scene) -> Solid | None:
    """The bag's walls as one closed shell (object_index 0), or None for a wall of thickness 0."""
    t = _num(scene.bag.wall.thickness, "bag.wall.thickness")
    if t <= 0:
        return None
    size = np.array([_num(x, "bag.size") for x in scene.bag.size])
    centre = np.array([0.0, 0.0, size[2] / 2.0])
    outer, inner = box_mesh(size + 2 * t), box_mesh(size)
    v, f = shell(outer.vertices + centre, outer.faces, inner.vertices + centre, inner.faces)
    material = scene.bag.wall.material
    if not isinstance(material, str):
        raise XraybagError(f"bag.wall.material: expected a material name, got {material!r}")
    return _solid(v, f, material, 0, "bag")


def bag_solids(scene: Scene) -> list[Solid]:
    """The bag's solids (object_index 0): its shell's parts (:mod:`.shells`), or the box wall."""
    if scene.bag.shell is None:
        bag = bag_solid(scene)
        return [] if bag is None else [bag]
    from xraybag.engine.solids.shells import shell_parts

    size = [_num(x, "bag.size") for x in scene.bag.size]
    return [_solid(p.vertices, p.faces, p.material, 0, p.name)
            for p in shell_parts(str(scene.bag.shell), scene.bag.params, size)]


def object_solids(obj: Object, index: int, tolerance: float = 0.02) -> tuple[list[Solid], ObjectInfo]:
    """The solids of one posed object (bag frame) and its :class:`ObjectInfo`."""
    name = object_name(obj, index)
    if obj.sheet is not None:
        return _sheet_object(obj, index, name)
    nodes = object_nodes(obj, name)
    if not nodes:
        raise XraybagError(f"object {name!r} has no shape")
    to_bag = object_transform(obj, nodes, tolerance, name)
    solids: list[Solid] = []
    materials: list[str] = []
    for node in nodes:
        t = to_bag @ node.transform
        if np.linalg.det(t[:3, :3]) < 0:  # pragma: no cover - poses are rotations only
            raise XraybagError(f"{node.part}: mirrored transforms are not supported")
        if node.container is None:
            m = node.outer(tolerance)
            solids.append(_solid(apply(t, m.vertices), m.faces, node.material, index, node.part))
            materials.append(node.material)
            continue
        wall = _num(node.container.wall, f"{node.part}.container.wall")
        try:
            outer, inner = hollow(node.shape, wall, tolerance)
        except XraybagError as e:
            raise XraybagError(f"object {name!r}, part {node.part!r}: {e.message}", e.where) from None
        inner_v = apply(t, inner.vertices)
        v, f = shell(apply(t, outer.vertices), outer.faces, inner_v, inner.faces)
        solids.append(_solid(v, f, node.material, index, node.part))
        materials.append(node.material)
        fill = node.container.fill
        if fill is not None:
            if not isinstance(fill.material, str):
                raise XraybagError(f"{node.part}.container.fill.material: expected a material name")
            level = _num(fill.level, f"{node.part}.container.fill.level")
            lv, lf, _ = fill_cavity(inner_v, np.asarray(inner.faces), level)
            solids.append(_solid(lv, lf, fill.material, index, f"{node.part}.fill"))
            materials.append(fill.material)
    pts = np.vstack([s.vertices for s in solids])
    info = ObjectInfo(
        index=index,
        name=name,
        label=obj.label,
        materials=list(dict.fromkeys(materials)),
        position=[float(x) for x in obj.pose.position],
        rotation_deg=[float(x) for x in obj.pose.rotation_deg],
        volume=float(sum(s.volume for s in solids)),
        bounds=np.array([pts.min(axis=0), pts.max(axis=0)]),
    )
    return solids, info


# ------------------------------------------------------------------------------------ sheets


def sheet_grid(sheet: Sheet, n: tuple[int, int], where: str = "sheet") -> tuple[np.ndarray, np.ndarray]:
    """The node coordinates (u along x, v along y; sheet frame, mm) of an (nx, ny) drape grid."""
    sx, sy = (_num(x, f"{where}.size") for x in sheet.size)
    nx, ny = n
    if nx < 2 or ny < 2:
        raise XraybagError(f"{where}.drape: expected at least 2 x 2 heights, got {nx} x {ny}")
    return np.linspace(-sx / 2.0, sx / 2.0, nx), np.linspace(-sy / 2.0, sy / 2.0, ny)


SLOPE_STRETCH_MAX = 3.0  # cap of the vertical stretch of a sheet's thickness (slopes up to 70.5 deg)


def sheet_stretch(u: np.ndarray, v: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """``sqrt(1 + |grad h|^2)`` at the nodes (central differences, one-sided at the edges), capped
    at SLOPE_STRETCH_MAX: the vertical thickness over the normal thickness of the surface there."""
    gu, gv = np.gradient(np.asarray(heights, dtype=np.float64), u, v, edge_order=1)
    return np.minimum(np.sqrt(1.0 + gu * gu + gv * gv), SLOPE_STRETCH_MAX)


def sheet_top(u: np.ndarray, v: np.ndarray, heights: np.ndarray, thickness: float, layers=1.0) -> np.ndarray:
    """Bag-frame z of a draped sheet's top surface at the nodes: its bottom ``heights - thickness/2``
    plus ``thickness * layers * sheet_stretch``."""
    h = np.asarray(heights, dtype=np.float64)
    return h - thickness / 2.0 + thickness * np.asarray(layers) * sheet_stretch(u, v, h)


def sheet_mesh(
    u: np.ndarray, v: np.ndarray, heights: np.ndarray, thickness: float,
    position=(0.0, 0.0), yaw_deg: float = 0.0, layers=1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-wound mesh of a draped sheet (bag frame).

    ``heights`` (nx, ny): bag-frame z of the mid-surface at the nodes ``(u_i, v_j)`` of the sheet
    frame. The bottom surface is ``heights - thickness/2``; the top surface lies
    ``thickness * sheet_stretch`` above it (``sqrt(1 + |grad h|^2)``, at most SLOPE_STRETCH_MAX), so
    the thickness normal to the surface is kept on slopes (a vertical ray through a slope sees
    ``thickness / cos(slope)``, as through a real sheet) while the bottom never moves; ``layers``
    (a number or (nx, ny) per node, see :func:`ply_layers`) multiplies the thickness above it. Top and
    bottom are joined by side walls along the four edges; each grid cell is split along its
    (i, j)-(i+1, j+1) diagonal.
    """
    h = np.asarray(heights, dtype=np.float64)
    nx, ny = h.shape
    uu, vv = np.meshgrid(u, v, indexing="ij")
    c, s_ = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    x = c * uu - s_ * vv + float(position[0])
    y = s_ * uu + c * vv + float(position[1])
    bottom = h - thickness / 2.0
    top = np.stack([x, y, sheet_top(u, v, h, thickness, layers)], axis=-1).reshape(-1, 3)
    bot = np.stack([x, y, bottom], axis=-1).reshape(-1, 3)
    vid = np.arange(nx * ny).reshape(nx, ny)
    a, b = vid[:-1, :-1].ravel(), vid[1:, :-1].ravel()
    cc, d = vid[1:, 1:].ravel(), vid[:-1, 1:].ravel()
    # top, counter-clockwise seen from above (u, v right-handed): (a, b, cc), (a, cc, d)
    tf = np.vstack([np.stack([a, b, cc], 1), np.stack([a, cc, d], 1)])
    bf = tf[:, ::-1] + nx * ny
    # boundary loop of the grid, counter-clockwise seen from above
    ring = np.concatenate([vid[:, 0], vid[-1, 1:], vid[-2::-1, -1], vid[0, -2:0:-1]])
    r0, r1 = ring, np.roll(ring, -1)
    off = nx * ny
    # outward side walls: going counter-clockwise, the outside is on the right
    side = np.vstack([np.stack([r0, r0 + off, r1], 1), np.stack([r1, r0 + off, r1 + off], 1)])
    return np.vstack([top, bot]), np.vstack([tf, bf, side]).astype(np.int32)


def _draped(obj: Object, name: str):
    """(u, v, heights, thickness, layers, position (x, y), yaw) of a draped sheet object."""
    sheet = obj.sheet
    where = f"object {name!r}: sheet"
    if sheet.drape is None or obj.pose is None:
        raise XraybagError(f"object {name!r}: the sheet is not draped yet (drape the sheets first)")
    h = np.array(sheet.drape, dtype=np.float64)
    if h.ndim != 2 or not np.all(np.isfinite(h)):
        raise XraybagError(f"{where}.drape: expected rows of equal length of finite heights")
    u, v = sheet_grid(sheet, h.shape, where)
    rot = [_num(x, f"object {name!r}: pose.rotation_deg") for x in obj.pose.rotation_deg]
    if abs(rot[0]) > 1e-9 or abs(rot[1]) > 1e-9:
        raise XraybagError(f"object {name!r}: a sheet's pose rotates about z only")
    pos = [_num(x, f"object {name!r}: pose.position") for x in obj.pose.position]
    t = _num(sheet.thickness, f"{where}.thickness")
    return u, v, h, t, sheet_layers(sheet, u, v, where), pos[:2], rot[2]


def sheet_layers(sheet: Sheet, u: np.ndarray, v: np.ndarray, where: str = "sheet") -> np.ndarray | float:
    """Layers of fabric at the drape nodes (1 without plies; see :func:`ply_layers`)."""
    if not sheet.plies:
        return 1.0
    plies = [(*(_num(x, f"{where}.plies.{k}.min") for x in p.min), *(_num(x, f"{where}.plies.{k}.max") for x in p.max),
              _num(p.layers, f"{where}.plies.{k}.layers")) for k, p in enumerate(sheet.plies)]
    return ply_layers(plies, u, v)


def sheet_solid_parts(obj: Object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The closed mesh (vertices, faces) of a draped sheet object (bag frame)."""
    u, v, h, t, layers, pos, yaw = _draped(obj, name)
    return sheet_mesh(u, v, h, t, pos, yaw, layers)


def sheet_fittings(obj: Object, name: str) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(part name, material, vertices, faces) of each fitting of a draped sheet (bag frame)."""
    if not obj.sheet.fittings:
        return []
    u, v, h, t, layers, pos, yaw = _draped(obj, name)
    top = sheet_top(u, v, h, t, layers)
    out = []
    for k, fit in enumerate(obj.sheet.fittings):
        w = f"object {name!r}: sheet.fittings.{k}"
        if not isinstance(fit.material, str):
            raise XraybagError(f"{w}.material: expected a material name, got {fit.material!r}")
        fv, ff = fitting_mesh(
            fit.kind, [_num(x, f"{w}.at") for x in fit.at], None if fit.to is None else [_num(x, f"{w}.to") for x in fit.to],
            _num(fit.size, f"{w}.size"), _num(fit.height, f"{w}.height"), _num(fit.pitch, f"{w}.pitch"), u, v, top)
        out.append((f"{name}.{fit.kind}{k}", fit.material, to_bag(fv, pos, yaw), ff))
    return out


def sheet_points(obj: Object, name: str) -> np.ndarray:
    """A sheet's points for :func:`object_points`: the draped mesh's vertices in the frame of its
    pose (``R @ points + position`` gives them back), or, before draping, the corners of the flat
    sheet (size x size x thickness) centred on the origin."""
    sheet = obj.sheet
    if sheet.drape is None or obj.pose is None:
        sx, sy = (_num(x, f"object {name!r}: sheet.size") for x in sheet.size)
        t = _num(sheet.thickness, f"object {name!r}: sheet.thickness")
        return np.array([[a * sx / 2, b * sy / 2, c * t / 2] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    v = np.vstack([sheet_solid_parts(obj, name)[0], *(fv for _, _, fv, _ in sheet_fittings(obj, name))])
    pos = np.array([_num(x, f"object {name!r}: pose.position") for x in obj.pose.position])
    rot = rotation_matrix([_num(x, "pose.rotation_deg") for x in obj.pose.rotation_deg])
    return (v - pos) @ rot


def _sheet_object(obj: Object, index: int, name: str) -> tuple[list[Solid], ObjectInfo]:
    material = obj.material
    if not isinstance(material, str):
        raise XraybagError(f"object {name!r}.material: expected a material name, got {material!r}")
    v, f = sheet_solid_parts(obj, name)
    solids = [_solid(v, f, material, index, name)]
    solids += [_solid(fv, ff, m, index, part) for part, m, fv, ff in sheet_fittings(obj, name)]
    info = ObjectInfo(
        index=index,
        name=name,
        label=obj.label,
        materials=list(dict.fromkeys(s.material for s in solids)),
        position=[float(x) for x in obj.pose.position],
        rotation_deg=[float(x) for x in obj.pose.rotation_deg],
        volume=sum(s.volume for s in solids),
        bounds=np.array([np.min([s.bounds[0] for s in solids], axis=0), np.max([s.bounds[1] for s in solids], axis=0)]),
    )
    return solids, info


def build_solids(scene: Scene, tolerance: float = 0.02) -> tuple[list[Solid], list[ObjectInfo]]:
    """All solids of a packed concrete scene in the bag frame, and one :class:`ObjectInfo` each.

    Objects are numbered 1..N in scene order; the bag's wall (if its thickness is > 0) is the
    solid with ``object_index`` 0, listed first. Every object must have a pose (run the packer
    first); an object's pose rotates its tree about the centre of the tree's bounding box (in the
    object frame, parts at their local poses) and puts that centre at ``pose.position`` (see the
    module notes). Curved shapes are tessellated to a chord error of ``tolerance`` mm.
    """
    solids: list[Solid] = bag_solids(scene)
    infos: list[ObjectInfo] = []
    for k, obj in enumerate(scene.objects, start=1):
        s, info = object_solids(obj, k, tolerance)
        solids += s
        infos.append(info)
    return solids, infos
