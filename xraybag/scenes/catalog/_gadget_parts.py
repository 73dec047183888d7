"""Builders shared by the gadgets family: tubes and cables along paths (``sweep``), extruded
outlines (``extrude``), arcs and circles, coils, cable plugs, and parts placed inside containers."""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog._parts import box, cyl, extrude, part, sweep  # noqa: F401 (the families import them from here)


def rot_to(d) -> tuple[float, float, float]:
    """``rotation_deg`` that turns a part's +z axis (a cylinder's or cone's axis) onto ``d``."""
    dx, dy, dz = (float(v) for v in d)
    n = math.sqrt(dx * dx + dy * dy + dz * dz)
    beta = math.degrees(math.acos(max(-1.0, min(1.0, dz / n))))
    alpha = math.degrees(math.atan2(dy, dx)) if abs(dx) + abs(dy) > 1e-12 else 0.0
    return (0.0, beta, alpha)


def helix(centre, rx: float, ry: float, pitch: float, turns: float, per_turn: int, a0: float = 0.0) -> list:
    """Points of an elliptical helix (loops of a coiled cable) rising ``pitch`` per turn along z."""
    n = max(2, int(round(turns * per_turn)))
    out = []
    for i in range(n + 1):
        t = a0 + 2 * math.pi * turns * i / n
        out.append((centre[0] + rx * math.cos(t), centre[1] + ry * math.sin(t), centre[2] + pitch * turns * i / n))
    return out


def cable(name: str, pts, radius: float, jacket: str = "pvc", core: str = "copper", bore: float = 0.5) -> list[dict]:
    """A cable along ``pts``: a jacket tube (bore ``bore`` x radius) around a conductor rod that
    clears the bore by 0.2 mm (the two are meshed separately)."""
    rb = bore * radius
    return [sweep(name, pts, radius, jacket, inner_radius=rb), sweep(name + "_core", pts, rb - 0.2, core)]


def outline_centre(outline) -> tuple[float, float]:
    a = np.asarray(outline, float)
    c = (a.min(axis=0) + a.max(axis=0)) / 2
    return float(c[0]), float(c[1])


def circle(r: float, centre=(0.0, 0.0), n: int = 72, a0: float = 0.0) -> list[tuple[float, float]]:
    return [(centre[0] + r * math.cos(a0 + 2 * math.pi * i / n), centre[1] + r * math.sin(a0 + 2 * math.pi * i / n))
            for i in range(n)]


def arc(r: float, a0: float, a1: float, centre=(0.0, 0.0), n: int = 12) -> list[tuple[float, float]]:
    """Points of an arc from angle a0 to a1 (degrees), both ends included."""
    return [(centre[0] + r * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
             centre[1] + r * math.sin(math.radians(a0 + (a1 - a0) * i / n))) for i in range(n + 1)]


def inside_abs(parent: dict, *children: dict | list[dict]) -> dict:
    """As :func:`_inside`, for children positioned in the frame the (unrotated) parent is placed in."""
    px, py, pz = parent["pose"]["position"]
    flat: list[dict] = []
    for c in children:
        flat += c if isinstance(c, list) else [c]
    return inside(parent, [shifted(c, -px, -py, -pz) for c in flat])


def shifted(q: dict, dx=0.0, dy=0.0, dz=0.0) -> dict:
    """``q`` moved by (dx, dy, dz)."""
    pos = q["pose"]["position"]
    q["pose"]["position"] = [pos[0] + dx, pos[1] + dy, pos[2] + dz]
    return q


def inside(parent: dict, *children: dict | list[dict]) -> dict:
    """Put ``children`` (positioned in the parent's frame) inside the container ``parent``."""
    flat: list[dict] = []
    for c in children:
        flat += c if isinstance(c, list) else [c]
    parent.setdefault("parts", []).extend(flat)
    return parent


def usb_plug(name: str, end, d, kind: int, jacket: str = "pvc") -> list[dict]:
    """A cable plug whose overmould starts at point ``end`` and runs along the unit vector ``d``:
    0 USB-A (steel shell 12 x 4.5 mm around a plastic tongue), 1 USB-C (stainless shell 8.3 x
    2.6 mm), 2 Lightning (nickel-plated blade), 3 DC barrel (steel sleeve around a brass pin)."""
    e, d = np.asarray(end, float), np.asarray(d, float)
    d = d / np.linalg.norm(d)
    rot = rot_to(d)
    hl, sw, sh, sl = [(22, 16, 8, 12), (16, 11, 6.5, 6.6), (14, 10, 6, 7.5), (20, 11, 11, 10)][kind]
    # the boxes are built along z and turned like a cylinder along d: their x side ends up
    # vertical for a level d, so the plug lies flat
    parts = [box(f"{name}_housing", (sh, sw, hl), jacket, tuple(e + d * hl / 2), rot)]
    c = e + d * (hl + sl / 2 + 0.05)
    if kind == 0:
        shell = box(f"{name}_shell", (4.5, 12, sl), "steel", tuple(c), rot, wall=0.3)
        parts.append(inside(shell, box("tongue", (1.8, 10.5, sl - 1.0), "pp", (-0.8, 0, 0)),
                             box("contacts", (0.2, 8, 4), "brass", (0.2, 0, sl / 2 - 2.6))))
    elif kind == 1:
        shell = box(f"{name}_shell", (2.6, 8.3, sl), "stainless_steel", tuple(c), rot, wall=0.25)
        parts.append(inside(shell, box("tongue", (0.7, 6.6, sl - 0.8), "pp", (0, 0, 0))))
    elif kind == 2:
        parts.append(box(f"{name}_blade", (1.5, 6.7, sl), "nickel", tuple(c), rot))
    else:
        sleeve = cyl(f"{name}_sleeve", 2.75, sl, "steel", tuple(c), rot, wall=0.35)
        parts.append(inside(sleeve, cyl("pin", 1.0, sl - 1.2, "brass")))
    return parts
