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


def rotz(parts: list[dict], deg: float, about=(0.0, 0.0)) -> list[dict]:
    """Rotate parts about the z axis through ``about`` (positions and orientations)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    for p in parts:
        x, y, z = p["pose"]["position"]
        x, y = x - about[0], y - about[1]
        p["pose"]["position"] = [about[0] + c * x - s * y, about[1] + s * x + c * y, z]
        p["pose"]["rotation_deg"][2] += deg
    return parts


_EXTRUDE_KEYS = ("spline", "taper", "taper_axis", "bevel", "bevel_shape")


def _split(kw: dict, keys) -> tuple[dict, dict]:
    shape = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
             for k, v in kw.items() if k in keys}
    return shape, {k: v for k, v in kw.items() if k not in keys}


def _pts(points) -> list[list[float]]:
    return [[round(float(c), 6) for c in p] for p in points]


def extrude(name, outline, height, material, z=0.0, holes=(), pos=None, rot=(0, 0, 0), **kw) -> dict:
    """An ``extrude`` part. Without ``pos`` the outline (and holes) are in object coordinates,
    extruded about the plane ``z``: the part goes where its points say (the shape is centred on the
    outline's bounding box). ``kw``: the shape's spline/taper/taper_axis/bevel/bevel_shape, and the
    part's wall/fill/level."""
    outline = _pts(outline)
    shape, rest = _split(kw, _EXTRUDE_KEYS)
    shape = {"outline": outline, "height": float(height), **shape}
    if holes:
        shape["holes"] = [_pts(h) for h in holes]
    if shape.get("bevel") and not shape.get("spline"):
        from xraybag.scenes.catalog._geom import fit_bevel

        shape["bevel"] = fit_bevel(outline, shape.get("holes", ()), shape["height"], shape["bevel"],
                                   shape.get("taper", 1.0), shape.get("taper_axis"))
        if not shape["bevel"]:
            del shape["bevel"]
    if pos is None:
        xs, ys = [p[0] for p in outline], [p[1] for p in outline]
        pos = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, z)
    return part(name, {"extrude": shape}, material, pos, rot, **rest)


def sweep(name, path, radius, material, inner_radius=0.0, closed=False, pos=None, **kw) -> dict:
    """A ``sweep`` part (a rod or tube along ``path``, [x, y, z] points in object coordinates unless
    ``pos`` is given: the part goes where the path says)."""
    path = _pts(path)
    shape = {"path": path, "radius": float(radius)}
    if inner_radius:
        shape["inner_radius"] = float(inner_radius)
    if closed:
        shape["closed"] = True
    if pos is None:
        from xraybag.scenes.catalog._geom import sweep_centre

        pos = sweep_centre(path, radius, closed)
    return part(name, {"sweep": shape}, material, pos, **kw)


def revolve(name, profile, material, base=(0, 0, 0), axis: str = "z", **kw) -> dict:
    """A ``revolve`` part: ``profile`` [r, z] points, its z = 0 at the point ``base`` of the object,
    its axis along ``axis`` (``x``, ``-x``, ``y``, ``-y``, ``z``, ``-z``, or an angle in degrees in
    the x-y plane from +x)."""
    profile = _pts(profile)
    zs = [p[1] for p in profile]
    mid = (min(zs) + max(zs)) / 2
    turns = {"z": ((0, 0, 0), (0, 0, 1)), "-z": ((180, 0, 0), (0, 0, -1)), "x": ((0, 90, 0), (1, 0, 0)),
             "-x": ((0, -90, 0), (-1, 0, 0)), "y": ((-90, 0, 0), (0, 1, 0)), "-y": ((90, 0, 0), (0, -1, 0))}
    if isinstance(axis, str):
        rot, d = turns[axis]
    else:
        a = math.radians(float(axis))
        rot, d = (0, 90, float(axis)), (math.cos(a), math.sin(a), 0.0)
    pos = [float(b) + mid * float(c) for b, c in zip(base, d)]
    return part(name, {"revolve": {"profile": profile}}, material, pos, rot, **kw)
