"""Builders shared by the personal-items families (:mod:`.toiletries`, :mod:`.personal`): solids of
revolution, extruded outlines and tubes along paths as part dicts, cells, motors and coiled cords."""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog._parts import X, cyl, extrude, part, revolve, sweep  # noqa: F401 (the families import them from here)

F = "personal"
METALS = {"steel", "stainless_steel", "aluminum", "titanium", "gold", "silver", "brass", "nickel", "zinc",
          "copper"}
GAP = 0.2  # clearance between parts that sit next to each other


def _is(p, key) -> bool:
    return p[key] > 0.5


def _rnd(rng, a, b) -> float:
    return float(rng.uniform(a, b))


def _pts(points) -> list[list[float]]:
    return [[float(v) for v in q] for q in points]


def _arc(cx, cy, r, a0, a1, n, ry=None) -> list[tuple[float, float]]:
    """``n`` + 1 points of a circular (or, with ``ry``, elliptic) arc from a0 to a1 degrees."""
    ry = r if ry is None else ry
    return [(cx + r * math.cos(math.radians(a0 + (a1 - a0) * k / n)),
             cy + ry * math.sin(math.radians(a0 + (a1 - a0) * k / n))) for k in range(n + 1)]


def _stadium(x0, x1, hw) -> list[tuple[float, float]]:
    """A stadium outline from x0 to x1 (rounded ends of radius hw), counter-clockwise."""
    return _arc(x1 - hw, 0, hw, -90, 90, 8) + _arc(x0 + hw, 0, hw, 90, 270, 8)


def _ellipse(cx, cy, a, b, n=48) -> list[tuple[float, float]]:
    return _arc(cx, cy, a, 0, 360, n, b)[:-1]


def _helix(name, radius, length, wire, pitch, material, centre, axis="z") -> dict:
    """A coil spring or heater coil: a wire of radius ``wire`` wound at ``radius`` (to the wire's
    centre) with ``pitch`` mm per turn, ``length`` mm long overall, centred on ``centre``."""
    turns = max(1.0, (length - 2 * wire) / pitch)
    n = math.ceil(turns * 24)
    pts = []
    for k in range(n + 1):
        t = 2 * math.pi * turns * k / n
        a = -(length / 2 - wire) + (length - 2 * wire) * k / n
        u, v = radius * math.cos(t), radius * math.sin(t)
        pts.append((centre[0] + a, centre[1] + u, centre[2] + v) if axis == "x"
                   else (centre[0] + u, centre[1] + v, centre[2] + a))
    return sweep(name, pts, wire, material)


def _cell(name, r, h, chem, pos, rot=(0, 0, 0), can="steel", wall=0.25) -> list[dict]:
    """A cylindrical cell: a steel can with its homogenised chemistry inside."""
    return [cyl(f"{name}_can", r, h, can, pos, rot, wall=wall),
            cyl(f"{name}", r - wall - 0.1, h - 2 * wall - 0.2, chem, pos, rot)]


def _motor(name, r, length, centre, axis="z") -> list[dict]:
    """A small DC motor: steel can, a ring magnet (closed shell) inside it, a copper winding inside
    the magnet, and the steel shaft stub outside the can's +axis end."""
    rot = {"z": (0, 0, 0), "x": X}[axis]
    d = {"x": (1, 0, 0), "z": (0, 0, 1)}[axis]
    stub = 5.0
    wm = min(1.2, 0.3 * r)
    shaft = tuple(c + k * (length / 2 + stub / 2) for c, k in zip(centre, d))
    return [
        cyl(f"{name}_can", r, length, "steel", centre, rot, wall=0.4),
        cyl(f"{name}_magnet", r - 0.6, length - 1.2, "magnet", centre, rot, wall=wm),
        cyl(f"{name}_winding", r - 0.9 - wm, length - 1.8 - 2 * wm, "copper", centre, rot),
        cyl(f"{name}_shaft", min(1.0, 0.2 * r), stub, "steel", shaft, rot),
    ]


def _cord(name, start, exit_dir, turn_to, r0, turns, radius=2.8, core=0.75, lead=10.0, bend=8.0,
          jacket="pvc") -> dict:
    """A mains cord leaving an appliance at ``start`` along ``exit_dir``, bending (radius ``bend``)
    to the horizontal direction ``turn_to``, running ``lead`` mm and winding into a flat spiral
    (inner radius ``r0``, ``turns`` turns) in that horizontal plane: a PVC sweep whose cavity is
    filled with copper (the cores)."""
    e = np.asarray(exit_dir, dtype=float)
    h = np.asarray(turn_to, dtype=float)
    path = [np.asarray(start, dtype=float)]
    if np.allclose(e, h):
        q = path[0] + 2.0 * e
        path.append(q)
    else:
        b = path[0] + 3.0 * e
        path.append(b)
        for k in range(1, 10):  # a quarter circle in 10 degree steps
            f = math.radians(10 * k)
            path.append(b + bend * (h * (1 - math.cos(f)) + e * math.sin(f)))
        q = path[-1]
    p_end = q + lead * h
    path.append(p_end)
    pitch = 2 * radius + 1.5
    r_out = r0 + pitch * turns
    # spiral r(t) = r0 + pitch t / 2pi traversed from t = 2pi turns (outer end) inwards, turned so
    # that it leaves the outer end along h
    tang = -np.array([pitch / (2 * math.pi), r_out])  # -dp/dt at the outer end, before turning
    tang /= np.linalg.norm(tang)
    ang = math.atan2(h[1], h[0]) - math.atan2(tang[1], tang[0])
    ca, sa = math.cos(ang), math.sin(ang)
    centre = p_end[:2] - np.array([ca * r_out, sa * r_out])
    steps = int(turns * 30)
    for k in range(1, steps + 1):
        t = 2 * math.pi * turns * (1 - k / steps)
        rr = r0 + pitch * t / (2 * math.pi)
        x, y = rr * math.cos(t), rr * math.sin(t)
        path.append(np.array([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y, p_end[2]]))
    return sweep(name, path, radius, jacket, wall=radius - core, fill="copper", level=1.0)


# ------------------------------------------------------------------------------ dental care
