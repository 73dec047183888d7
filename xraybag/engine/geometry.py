"""The geometry of a concrete, packed scene: closed triangle solids in the bag frame.

Frames (all lengths in mm, angles in degrees):

- **bag frame**: origin at the centre of the bag's interior floor, x along the conveyor, z up. The
  bag interior spans x in [-sx/2, sx/2], y in [-sy/2, sy/2], z in [0, sz].
- **node frame**: every shape is centred on the origin of its own frame (see
  :mod:`xraybag.engine.meshes`). A part's ``pose`` maps its frame into its parent's frame,
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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.optimize import brentq
from scipy.spatial.transform import Rotation

from xraybag.engine.meshes import box_mesh, hollow, shape_mesh, to_manifold
from xraybag.errors import XraybagError
from xraybag.scenes.models import Container, Object, Scene, Shape

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


def rotation_matrix(rotation_deg) -> np.ndarray:
    """R = Rz @ Ry @ Rx for rotations (degrees) about the fixed x, y, z axes."""
    return Rotation.from_euler("xyz", [float(a) for a in rotation_deg], degrees=True).as_matrix()


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

    def below(h: float):
        return m.trim_by_plane([0.0, 0.0, -1.0], -h)  # keeps z <= h

    h = brentq(lambda h: below(h).volume() - target, z0, z1, xtol=1e-9 * max(1.0, z1 - z0),
               rtol=1e-12, maxiter=200)
    liquid = below(h)
    if abs(liquid.volume() - target) > FILL_RTOL * 10 * total:  # pragma: no cover - defensive
        raise XraybagError(f"could not solve the fill level {level:g}")
    mesh = liquid.to_mesh64()
    return np.asarray(mesh.vert_properties[:, :3], dtype=np.float64), np.asarray(mesh.tri_verts), h


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


def object_solids(obj: Object, index: int, tolerance: float = 0.02) -> tuple[list[Solid], ObjectInfo]:
    """The solids of one posed object (bag frame) and its :class:`ObjectInfo`."""
    name = object_name(obj, index)
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


def build_solids(scene: Scene, tolerance: float = 0.02) -> tuple[list[Solid], list[ObjectInfo]]:
    """All solids of a packed concrete scene in the bag frame, and one :class:`ObjectInfo` each.

    Objects are numbered 1..N in scene order; the bag's wall (if its thickness is > 0) is the
    solid with ``object_index`` 0, listed first. Every object must have a pose (run the packer
    first); an object's pose rotates its tree about the centre of the tree's bounding box (in the
    object frame, parts at their local poses) and puts that centre at ``pose.position`` (see the
    module notes). Curved shapes are tessellated to a chord error of ``tolerance`` mm.
    """
    solids: list[Solid] = []
    infos: list[ObjectInfo] = []
    bag = bag_solid(scene)
    if bag is not None:
        solids.append(bag)
    for k, obj in enumerate(scene.objects, start=1):
        s, info = object_solids(obj, k, tolerance)
        solids += s
        infos.append(info)
    return solids, infos
