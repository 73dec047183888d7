"""Small builders of part dicts (the scene format's ``parts`` entries, numbers only).

A part's ``pos`` is where its shape's centre goes in the object frame; ``rot`` rotates the shape
about its own centre (degrees, fixed x then y then z). Cylinders and cones run along z.
"""

from __future__ import annotations

import math
from typing import Any


def _f(v) -> list[float]:
    return [float(x) for x in v]


def part(name: str, shape: dict, material: str, pos=(0, 0, 0), rot=(0, 0, 0),
         wall: float | None = None, fill: str | None = None, level: float | None = None) -> dict:
    d: dict[str, Any] = {"name": name, "shape": shape, "material": material,
                         "pose": {"position": _f(pos), "rotation_deg": _f(rot)}}
    if wall is not None:
        d["container"] = {"wall": float(wall)}
        if fill is not None:
            d["container"]["fill"] = {"material": fill, "level": float(level if level is not None else 0.9)}
    return d


def box(name, size, material, pos=(0, 0, 0), rot=(0, 0, 0), **kw) -> dict:
    return part(name, {"box": {"size": _f(size)}}, material, pos, rot, **kw)


def cyl(name, radius, height, material, pos=(0, 0, 0), rot=(0, 0, 0), **kw) -> dict:
    return part(name, {"cylinder": {"radius": float(radius), "height": float(height)}}, material, pos, rot, **kw)


def sph(name, radius, material, pos=(0, 0, 0), **kw) -> dict:
    return part(name, {"sphere": {"radius": float(radius)}}, material, pos, **kw)


def ell(name, radii, material, pos=(0, 0, 0), rot=(0, 0, 0), **kw) -> dict:
    return part(name, {"ellipsoid": {"radii": _f(radii)}}, material, pos, rot, **kw)


def cone(name, r_bottom, r_top, height, material, pos=(0, 0, 0), rot=(0, 0, 0), **kw) -> dict:
    shape = {"cone": {"radius_bottom": float(r_bottom), "radius_top": float(r_top), "height": float(height)}}
    return part(name, shape, material, pos, rot, **kw)


X = (0, 90, 0)  # a cylinder along x
Y = (90, 0, 0)  # a cylinder along y


def ring(name: str, radius: float, width: float, thickness: float, material: str, centre=(0, 0, 0),
         n: int = 12, arc: tuple[float, float] = (0, 360)) -> list[dict]:
    """A flat ring (in the xy plane) of ``n`` tangential boxes whose inner edges meet exactly, so
    that the segments touch without overlapping. ``radius`` is the mid radius; ``arc`` limits it
    to an angular range (degrees)."""
    r_in = radius - width / 2
    half = r_in * math.tan(math.pi / n)
    out = []
    a0, a1 = arc
    k = 0
    for i in range(n):
        a = 360.0 * i / n
        if not (a0 <= a <= a1):
            continue
        t = math.radians(a)
        pos = (centre[0] + radius * math.cos(t), centre[1] + radius * math.sin(t), centre[2])
        out.append(box(f"{name}{k}", (width, 2 * half, thickness), material, pos, (0, 0, a)))
        k += 1
    return out


def obj(*parts: dict | list[dict]) -> dict:
    flat: list[dict] = []
    for p in parts:
        flat += p if isinstance(p, list) else [p]
    return {"parts": flat}
