"""Bag shells: the soft or hard case around the packing interior, with what outlines a real bag in
an X-ray image (zip teeth, trolley tubes, wheels and axles, frames, handles, rings and buckles).

A shell is built around the interior box ``[-L/2, L/2] x [-W/2, W/2] x [0, H]`` (the bag frame:
x along the conveyor, z up; a case lies on its back, as on a scanner's belt). Every part lies
outside that box, so the packers keep working on the box, and no part overlaps another. The main
wall is a rounded box of corner radius ``r``: its inner surface is the interior grown by
``r (1 - 1/sqrt 3)`` on every side, which is just enough for the rounded corners to clear the
interior's corners; that gap is the lining and padding of a real bag. Parts are built with
manifold3d (exact booleans and hulls), so every solid is closed and outward-wound.

:data:`BUILDERS` maps the catalog's shell names (:mod:`xraybag.scenes.catalog.bags`) to
``build(params, size, tolerance) -> list[ShellPart]``; ``params`` holds every parameter fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from xraybag.engine.solids.meshes import sections

#: how far (mm) any shell's parts may reach out of the interior box, at their largest parameters
#: (the memory estimate sizes the image with it; tests/test_shells.py holds the shells to it)
SHELL_REACH = 70.0
#: chord tolerance (mm) of the shells' curves: fabric and frames do not need the objects' 0.01 mm
SHELL_TOLERANCE = 0.1


@dataclass(frozen=True)
class ShellPart:
    name: str
    material: str
    vertices: np.ndarray  # (n, 3) float64, bag frame
    faces: np.ndarray  # (m, 3) int32, outward


def _segments(radius: float, tolerance: float) -> int:
    return sections(max(radius, 1e-3), max(tolerance, SHELL_TOLERANCE))


def _part(name: str, material: str, m) -> ShellPart:
    mesh = m.to_mesh64()
    return ShellPart(name, material, np.asarray(mesh.vert_properties[:, :3], dtype=np.float64).copy(),
                     np.asarray(mesh.tri_verts, dtype=np.int32).copy())


def _cube(size, centre=(0.0, 0.0, 0.0), rot=(0.0, 0.0, 0.0)):
    from manifold3d import Manifold

    return Manifold.cube(list(map(float, size)), center=True).rotate(list(map(float, rot))).translate(
        list(map(float, centre)))


def _cylinder(radius: float, length: float, centre, axis: str, tolerance: float, inner: float = 0.0):
    """A cylinder (a tube when ``inner`` > 0) of ``length`` along ``axis`` ('x', 'y' or 'z')."""
    from manifold3d import Manifold

    n = _segments(radius, tolerance)
    m = Manifold.cylinder(float(length), float(radius), float(radius), n, True)
    if inner > 0:
        m = m - Manifold.cylinder(float(length) + 2.0, float(inner), float(inner), n, True)
    rot = {"x": [0.0, 90.0, 0.0], "y": [90.0, 0.0, 0.0], "z": [0.0, 0.0, 0.0]}[axis]
    return m.rotate(rot).translate(list(map(float, centre)))


def rounded_box(half, radius: float, centre, tolerance: float):
    """The box of half-extents ``half`` with every edge rounded to ``radius``: the hull of eight
    spheres (exact: a hull of convex pieces)."""
    from manifold3d import Manifold

    r = float(min(radius, *half))
    n = _segments(r, tolerance)
    ball = Manifold.sphere(r, n)
    corners = [ball.translate([sx * (half[0] - r) + centre[0], sy * (half[1] - r) + centre[1],
                               sz * (half[2] - r) + centre[2]])
               for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    return Manifold.batch_hull(corners)


def _outline(hx: float, hy: float, radius: float, tolerance: float):
    """The rounded rectangle of half-extents (hx, hy) and corner ``radius`` (a CrossSection)."""
    from manifold3d import CrossSection, JoinType

    r = float(min(radius, hx, hy) * 0.999)
    core = CrossSection.square([2 * (hx - r), 2 * (hy - r)], True)
    return core.offset(r, JoinType.Round, 2.0, _segments(r, tolerance))


def band(hx: float, hy: float, radius: float, out: float, z0: float, height: float, tolerance: float):
    """A flat band hugging the rounded rectangle (hx, hy, radius) from outside: ``out`` mm thick,
    ``height`` mm tall from z0 (a frame, a zip tape)."""
    from manifold3d import JoinType

    inner = _outline(hx, hy, radius, tolerance)
    ring = inner.offset(out, JoinType.Round, 2.0, _segments(radius + out, tolerance)) - inner
    return ring.extrude(float(height)).translate([0.0, 0.0, float(z0)])


@dataclass(frozen=True)
class Case:
    """The main wall's geometry for a bag of interior ``size``: inner half-extents and centre,
    corner radius and wall thickness."""

    size: tuple[float, float, float]
    radius: float
    thickness: float

    @property
    def gap(self) -> float:
        return self.radius * (1.0 - 1.0 / math.sqrt(3.0))

    @property
    def inner_half(self) -> tuple[float, float, float]:
        return tuple(s / 2.0 + self.gap for s in self.size)

    @property
    def outer_half(self) -> tuple[float, float, float]:
        return tuple(h + self.thickness for h in self.inner_half)

    @property
    def centre(self) -> tuple[float, float, float]:
        return (0.0, 0.0, self.size[2] / 2.0)

    @property
    def bottom(self) -> float:
        """z of the outer surface's underside."""
        return self.centre[2] - self.outer_half[2]

    @property
    def top(self) -> float:
        return self.centre[2] + self.outer_half[2]

    def wall(self, tolerance: float, open_top: float | None = None):
        """The wall: the outer rounded box less the inner one (less everything above ``open_top``)."""
        outer = rounded_box(self.outer_half, self.radius + self.thickness, self.centre, tolerance)
        inner = rounded_box(self.inner_half, self.radius, self.centre, tolerance)
        wall = outer - inner
        if open_top is not None:
            wall = wall.trim_by_plane([0.0, 0.0, -1.0], -float(open_top))
        return wall


def _case(p: dict, size) -> Case:
    half_min = min(size) / 2.0
    return Case(tuple(float(s) for s in size), float(min(p["corner_radius"], 0.9 * half_min)), float(p["thickness"]))


def rounded_rect_path(hx: float, hy: float, radius: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` mm (arc length) anticlockwise round the rounded rectangle of
    half-extents (hx, hy) and corner ``radius``, and the unit tangents there."""
    r = min(radius, hx, hy) * 0.999
    ax, ay = hx - r, hy - r
    # pieces: (length, start point, direction or arc centre, start angle); anticlockwise from (hx, -ay)
    lengths = [2 * ay, 0.5 * math.pi * r, 2 * ax, 0.5 * math.pi * r, 2 * ay, 0.5 * math.pi * r, 2 * ax,
               0.5 * math.pi * r]
    total = float(sum(lengths))
    d = np.arange(0.0, total - step / 2, step)
    pts = np.empty((len(d), 2))
    tan = np.empty((len(d), 2))
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    piece = np.minimum(np.searchsorted(starts, d, side="right") - 1, 7)
    u = d - starts[piece]
    lines = {0: ((hx, -ay), (0.0, 1.0)), 2: ((ax, hy), (-1.0, 0.0)), 4: ((-hx, ay), (0.0, -1.0)),
             6: ((-ax, -hy), (1.0, 0.0))}
    arcs = {1: ((ax, ay), 0.0), 3: ((-ax, ay), 0.5 * math.pi), 5: ((-ax, -ay), math.pi), 7: ((ax, -ay), 1.5 * math.pi)}
    for k in range(8):
        sel = piece == k
        if k in lines:
            (x0, y0), (dx, dy) = lines[k]
            pts[sel] = np.column_stack([x0 + dx * u[sel], y0 + dy * u[sel]])
            tan[sel] = (dx, dy)
        else:
            (cx, cy), a0 = arcs[k]
            a = a0 + u[sel] / r
            pts[sel] = np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)])
            tan[sel] = np.column_stack([-np.sin(a), np.cos(a)])
    return pts, tan


def _teeth(path_hx: float, path_hy: float, radius: float, z: float, pitch: float, tooth: tuple) -> tuple:
    """Zip teeth (small boxes ``tooth`` = (along, across, out) mm) every ``pitch`` mm along the
    rounded rectangle (path_hx, path_hy, radius) at height z, as one mesh of separate boxes."""
    pts, t = rounded_rect_path(path_hx, path_hy, radius, pitch)
    n = np.column_stack([t[:, 1], -t[:, 0]])  # outward: the path runs anticlockwise
    a, c, o = (float(x) / 2.0 for x in tooth)
    corners = np.array([[sa, sn, sz] for sa in (-1, 1) for sn in (-1, 1) for sz in (-1, 1)], dtype=float)
    base_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                           [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    verts = []
    for k in range(len(pts)):
        centre = np.array([pts[k, 0] + n[k, 0] * o, pts[k, 1] + n[k, 1] * o, z])
        local = corners * [a, o, c]
        world = centre + local[:, :1] * np.r_[t[k], 0.0] + local[:, 1:2] * np.r_[n[k], 0.0] + local[:, 2:3] * [0, 0, 1]
        verts.append(world)
    v = np.vstack(verts)
    f = np.vstack([base_faces + 8 * k for k in range(len(pts))])
    # orient every box outward: the faces above are outward in a right-handed (t, n, z) frame
    tri = v[f[:12]]
    if np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) < 0:  # 6 x the signed volume
        f = f[:, ::-1]
    return v, f.astype(np.int32)


def zip_parts(case: Case, z: float, material: str, tolerance: float, name: str = "zip") -> list[ShellPart]:
    """A zip around the case at height z: a polyester tape with metal teeth (or a nylon coil, seen
    as one thin band) and a puller."""
    hx, hy, _ = case.outer_half
    r = case.radius + case.thickness
    parts = [_part(f"{name}_tape", "polyester", band(hx, hy, r, 0.8, z - 6.0, 12.0, tolerance))]
    if material == "nylon":
        parts.append(_part(f"{name}_coil", "nylon", band(hx + 0.9, hy + 0.9, r + 0.9, 1.6, z - 2.5, 5.0, tolerance)))
    else:
        v, f = _teeth(hx + 0.8, hy + 0.8, r + 0.8, z, 3.0, (1.8, 5.0, 1.4))
        parts.append(ShellPart(f"{name}_teeth", material, v, f))
    puller = _cube((30.0, 2.0, 10.0), (hx * 0.3, -(hy + 4.5), z))
    parts.append(_part(f"{name}_puller", "zinc" if material != "nylon" else "acetal", puller))
    return parts


def trolley_parts(case: Case, p: dict, tolerance: float) -> list[ShellPart]:
    """Two telescopic aluminium tubes under the back panel along x, the grip at +x and the wheels
    (rubber or PU tyres on steel axles) at the -x corners."""
    L, W, _ = case.size
    hx, hy, _ = case.outer_half
    ro = float(p["tube_radius"])
    z = case.bottom - ro - 0.5
    length = 2 * hx * 0.82
    parts = []
    for side, y in (("left", -(W / 2 - 35.0)), ("right", W / 2 - 35.0)):
        outer = _cylinder(ro, length, (hx * 0.18 - 0.5, y, z), "x", tolerance, ro - 1.2)
        inner = _cylinder(ro - 1.7, length * 0.95, (hx * 0.18 - 0.5, y, z), "x", tolerance, ro - 2.7)
        parts += [_part(f"trolley_tube_{side}", "aluminum", outer), _part(f"trolley_inner_{side}", "aluminum", inner)]
    grip = _cube((26.0, W - 70.0 + 2 * ro + 8.0, 2 * ro + 6.0), (hx + 14.0, 0.0, z))
    parts.append(_part("trolley_grip", "abs", grip))
    rw = float(p["wheel_radius"])
    r = case.radius + case.thickness
    a = max(0.0, (r + rw) / math.sqrt(2.0) - r) + 1.5  # clear of the rounded corner
    wx, wz = -hx - a, case.bottom - a
    ys = [-(W / 2 - 25.0), W / 2 - 25.0] if not p.get("spinner") else [-(W / 2 - 20.0), -(W / 2 - 48.0),
                                                                        W / 2 - 48.0, W / 2 - 20.0]
    width = 22.0 if not p.get("spinner") else 16.0
    for k, y in enumerate(ys):
        tyre = _cylinder(rw, width, (wx, y, wz), "y", tolerance, 4.5)
        axle = _cylinder(4.0, width + 12.0, (wx, y, wz), "y", tolerance)
        parts += [_part(f"wheel{k}", "rubber", tyre), _part(f"axle{k}", "steel", axle)]
    return parts


def handle_parts(case: Case, material: str, ring_material: str, tolerance: float, zc: float) -> list[ShellPart]:
    """A carry handle on the +y side and one on the +x end at height ``zc``: a grip on a strap,
    fixed by two rings."""
    hx, hy, hz = case.outer_half
    parts = []
    # side handle: along x on the +y face
    parts.append(_part("side_strap", "polyester", _cube((150.0, 2.0, 30.0), (0.0, hy + 1.0, zc))))
    parts.append(_part("side_grip", material, _cube((110.0, 14.0, 24.0), (0.0, hy + 9.0, zc))))
    # end handle: along y on the +x face
    parts.append(_part("end_strap", "polyester", _cube((2.0, 150.0, 30.0), (hx + 1.0, 0.0, zc))))
    parts.append(_part("end_grip", material, _cube((14.0, 110.0, 24.0), (hx + 9.0, 0.0, zc))))
    n = 0
    for centre, axis in (((-85.0, hy + 6.0, zc), "y"), ((85.0, hy + 6.0, zc), "y"),
                         ((hx + 6.0, -85.0, zc), "x"), ((hx + 6.0, 85.0, zc), "x")):
        ring = _cylinder(11.0, 3.0, centre, axis, tolerance, 8.0)
        parts.append(_part(f"ring{n}", ring_material, ring))
        n += 1
    return parts


def soft_carry_on(p: dict, size, tolerance: float) -> list[ShellPart]:
    case = _case(p, size)
    parts = [_part("shell", p["material"], case.wall(tolerance))]
    # the base board under the floor, inside the wall: the inner rounded box cut to a slab
    board_t = min(3.0, case.gap * 0.9)
    if board_t > 0.5:
        inner = rounded_box(case.inner_half, case.radius, case.centre, tolerance)
        slab = _cube((case.size[0] + 2 * case.gap, case.size[1] + 2 * case.gap, board_t), (0.0, 0.0, -board_t / 2 - 0.01))
        parts.append(_part("base_board", p["board_material"], inner ^ slab))
    parts += zip_parts(case, case.top - float(p["zip_drop"]), p["zip_material"], tolerance)
    if p["frame_wire"]:
        hx, hy, _ = case.outer_half  # a spring-steel wire round the lid, outside the wall below the zip
        parts.append(_part("frame_wire", "steel", band(hx + 0.8, hy + 0.8, case.radius + case.thickness + 0.8, 2.5,
                                                       case.top - float(p["zip_drop"]) + 8.0, 2.5, tolerance)))
    if p["trolley"]:
        parts += trolley_parts(case, p, tolerance)
    zip_z = case.top - float(p["zip_drop"])
    parts += handle_parts(case, p["handle_material"], p["ring_material"], tolerance, min(case.centre[2], zip_z - 24.0))
    return parts


def hard_suitcase(p: dict, size, tolerance: float) -> list[ShellPart]:
    case = _case(p, size)
    hx, hy, _ = case.outer_half
    r = case.radius + case.thickness
    zc = case.centre[2]
    parts = [_part("shell", p["material"], case.wall(tolerance))]
    if p["aluminium_frame"]:
        parts.append(_part("frame", "aluminum", band(hx, hy, r, 5.0, zc - 7.0, 14.0, tolerance)))
        for k, y in enumerate((-hy * 0.5, hy * 0.5)):
            parts.append(_part(f"latch{k}", "zinc", _cube((14.0, 40.0, 26.0), (hx + 12.2, y, zc))))
    else:
        parts += zip_parts(case, zc, p["zip_material"], tolerance)
        parts.append(_part("lock", "zinc", _cube((14.0, 45.0, 12.0), (hx + 9.5, 0.0, zc - 14.0))))
    for k, x in enumerate((-hx * 0.45, hx * 0.45)):  # hinges on the -y side
        parts.append(_part(f"hinge{k}", "steel", _cube((50.0, 5.0, 22.0), (x, -(hy + 8.5), zc))))
    parts += trolley_parts(case, {**p, "spinner": True}, tolerance)
    parts += handle_parts(case, p["handle_material"], "steel", tolerance, zc + 27.0)  # above the joint
    return parts


def backpack(p: dict, size, tolerance: float) -> list[ShellPart]:
    case = _case(p, size)
    hx, hy, hz = case.outer_half
    parts = [_part("shell", p["material"], case.wall(tolerance))]
    parts += zip_parts(case, case.top - float(p["zip_drop"]), p["zip_material"], tolerance)
    # shoulder straps under the back panel: foam pads in a fabric cover, a buckle and a ladder lock each
    z = case.bottom - 7.0
    for side, y in (("left", -hy * 0.45), ("right", hy * 0.45)):
        parts.append(_part(f"strap_pad_{side}", "polystyrene_foam", _cube((0.75 * 2 * hx, 55.0, 12.0), (0.05 * hx, y, z))))
        parts.append(_part(f"strap_{side}", "polyester", _cube((0.9 * 2 * hx, 38.0, 1.5), (-0.02 * hx, y, z - 7.0))))
        parts.append(_part(f"buckle_{side}", p["buckle_material"], _cube((45.0, 42.0, 8.0), (-0.82 * hx, y, z - 11.9))))
        parts.append(_part(f"ladder_{side}", p["buckle_material"], _cube((22.0, 42.0, 5.0), (0.72 * hx, y, z - 10.4))))
    if p["back_stay"]:
        parts.append(_part("back_stay", "aluminum", _cube((0.8 * 2 * hx, 25.0, 3.0), (0.0, 0.0, case.bottom - 1.6))))
    parts.append(_part("grab_loop", "polyester", _cube((3.0, 60.0, 25.0), (hx + 1.6, 0.0, case.centre[2]))))
    return parts


def laptop_bag(p: dict, size, tolerance: float) -> list[ShellPart]:
    """A padded case: foam between the lining and the fabric wall, a zip on three sides and a
    shoulder strap lying over the top with steel snap hooks at its ends."""
    pad = float(p["padding"])
    case = _case(p, size)
    foam_case = Case(case.size, case.radius, pad)  # foam from the lining out to `pad`
    outer_case = Case(case.size, case.radius, pad + case.thickness)  # the fabric outside it
    fabric = (rounded_box(outer_case.outer_half, case.radius + pad + case.thickness, case.centre, tolerance)
              - rounded_box(foam_case.outer_half, case.radius + pad, case.centre, tolerance))
    parts = [_part("padding", "polystyrene_foam", foam_case.wall(tolerance)), _part("shell", p["material"], fabric)]
    parts += zip_parts(outer_case, outer_case.top - 12.0, p["zip_material"], tolerance)
    hx, hy, _ = outer_case.outer_half
    z = outer_case.top + 1.5
    parts.append(_part("strap", "polyester", _cube((2 * hx * 0.9, 38.0, 2.0), (0.0, -hy * 0.2, z))))
    parts.append(_part("strap_pad", "polystyrene_foam", _cube((180.0, 60.0, 8.0), (0.0, -hy * 0.2, z + 5.0))))
    for k, x in enumerate((-hx * 0.9, hx * 0.9)):
        parts.append(_part(f"snap_hook{k}", "steel", _cube((42.0, 14.0, 6.0), (x, -hy * 0.2, z + 4.1))))
    return parts


def tote(p: dict, size, tolerance: float) -> list[ShellPart]:
    """An open bag: the wall without its top, two straps folded over the contents and a magnetic snap."""
    case = _case(p, size)
    hx, hy, _ = case.outer_half
    parts = [_part("shell", p["material"], case.wall(tolerance, open_top=case.size[2] - 5.0))]
    z = case.size[2] + 1.5
    for k, x in enumerate((-hx * 0.3, hx * 0.3)):
        parts.append(_part(f"handle{k}", p["handle_material"], _cube((30.0, 2 * hy * 0.9, 2.5), (x, 0.0, z))))
    parts.append(_part("snap", "magnet", _cylinder(9.0, 4.0, (0.0, hy * 0.6, z + 3.5), "z", tolerance)))
    return parts


BUILDERS: dict[str, Callable[[dict, tuple, float], list[ShellPart]]] = {
    "soft_carry_on": soft_carry_on,
    "hard_suitcase": hard_suitcase,
    "backpack": backpack,
    "laptop_bag": laptop_bag,
    "tote": tote,
}


def _key(params: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in params.items()))


@lru_cache(maxsize=16)
def _cached(name: str, key: tuple, size: tuple, tolerance: float) -> tuple[ShellPart, ...]:
    return tuple(BUILDERS[name](dict(key), size, tolerance))


def shell_parts(name: str, params: dict, size, tolerance: float = SHELL_TOLERANCE) -> list[ShellPart]:
    """The parts of shell ``name`` with fixed ``params`` around an interior of ``size`` (cached:
    the scanner geometry and the solids of a bag ask for the same shell)."""
    return list(_cached(name, _key(params), tuple(float(s) for s in size), float(tolerance)))


def shell_bounds(name: str, params: dict, size) -> np.ndarray:
    """(2, 3) box of every part of the shell."""
    parts = shell_parts(name, params, size)
    v = np.vstack([p.vertices for p in parts])
    return np.array([v.min(axis=0), v.max(axis=0)])
