"""Personal items and toiletries: the everyday clutter of a carry-on (toothbrush, toothpaste,
deodorants, bottles, perfume, razors, shavers, hair dryer and straightener, nail clippers, glasses,
watch, jewellery, wallet, make-up, pills, contact-lens case, hairbrush, tissues).

Every entry has internal structure (a shaver's cell, motor and foil; a watch's movement; a
wallet's chip cards and coins). Bottles and cans are solids of revolution (``revolve``: necks,
shoulders, domed bases), handles and frames extruded outlines (``extrude``), and cords, springs,
heater coils, spectacle rims and chain links tubes along paths (``sweep``). Long items are built
along z or x; the packer chooses how they lie. Labels: none (clutter), except the aerosol can
(``spray_can``, as the containers family's aerosol cans).
"""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog._parts import X, Y, box, cone, cyl, ell, obj, part, sph
from xraybag.scenes.catalog.registry import U, count, flag, frac, mat, num, register

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


def revolve(name, profile, material, base=(0, 0, 0), axis="z", **kw) -> dict:
    """A solid of revolution of [r, z] points (the ends joined to the axis; z measured from
    ``base`` along z, or along x with ``axis="x"``)."""
    zs = [q[1] for q in profile]
    zc = (min(zs) + max(zs)) / 2
    if axis == "z":
        pos, rot = (base[0], base[1], base[2] + zc), (0, 0, 0)
    else:
        pos, rot = (base[0] + zc, base[1], base[2]), X
    return part(name, {"revolve": {"profile": _pts(profile)}}, material, pos, rot, **kw)


def extrude(name, outline, height, material, z=0.0, holes=(), bevel=0.0, **kw) -> dict:
    """A prism of the outline ([x, y] points in the object frame) from z - height/2 to z + height/2."""
    a = np.asarray(outline, dtype=float)
    c = (a.min(axis=0) + a.max(axis=0)) / 2
    shape: dict = {"outline": _pts(outline), "height": float(height)}
    if holes:
        shape["holes"] = [_pts(h) for h in holes]
    if bevel:
        shape["bevel"] = float(bevel)
    return part(name, {"extrude": shape}, material, (c[0], c[1], z), **kw)


def _tube_bounds(path, r: float, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of a tube of radius ``r`` along the polyline (mitred joints, flat caps),
    as the mesher builds it, with true circles."""
    P = np.asarray(path, dtype=float)
    n = len(P)
    phi = np.linspace(0.0, 2 * np.pi, 145)[:-1]
    out = [P]
    for i in range(n):
        d_in = P[i] - P[i - 1] if (closed or i > 0) else None
        d_out = P[(i + 1) % n] - P[i] if (closed or i < n - 1) else None
        axis = d_out if d_out is not None else d_in
        axis = axis / np.linalg.norm(axis)
        e = np.eye(3)[int(np.argmin(np.abs(axis)))]
        u = e - np.dot(e, axis) * axis
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        c = r * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)
        if d_in is not None and d_out is not None:
            m = d_in / np.linalg.norm(d_in) + axis
            m /= np.linalg.norm(m)
            c = c - axis * ((c @ m) / float(np.dot(axis, m)))[:, None]
        out.append(P[i] + c)
    allp = np.vstack(out)
    return allp.min(axis=0), allp.max(axis=0)


def sweep(name, path, radius, material, closed=False, **kw) -> dict:
    """A rod along ``path`` ([x, y, z] points in the object frame), placed where its points say."""
    lo, hi = _tube_bounds(path, radius, closed)
    shape = {"path": _pts(path), "radius": float(radius), "closed": bool(closed)}
    return part(name, {"sweep": shape}, material, tuple((lo + hi) / 2), **kw)


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


@register("toothbrush", None, "toothbrush: manual (PP, PC or bamboo handle, nylon bristle block, "
          "sometimes in a travel case) or electric (handle with a cell, board and motor, brush head "
          "on a stem with a steel pin)", {
              "length": num(U(170, 200), "manual brush length (electric: handle length + 25)"),
              "electric": flag(0.3, "electric (1) or manual (0)"),
              "handle_material": mat(["pp", "pc", "wood", "abs"], weights=[5, 1, 2, 2]),
              "handle_radius": num(U(12, 15), "electric handle radius"),
              "bristle_height": num(U(9, 12)),
              "travel_case": flag(0.3, "manual brush in a hollow PP travel case"),
          }, F)
def toothbrush(p, rng):
    L, bh, m = p["length"], p["bristle_height"], p["handle_material"]
    if not _is(p, "electric"):
        lh = L - 53.5
        grip = [(6.5, -6.5), (0.55 * lh, -7.0), (lh, -3.5), (lh, 3.5), (0.55 * lh, 7.0)] + _arc(6.5, 0, 6.5, 90, 270, 8)[:-1]
        head = ([(lh, -3.0), (lh + 22, -3.0), (lh + 24, -5.5)] + _arc(lh + 48, 0, 5.5, -90, 90, 8)
                + [(lh + 24, 5.5), (lh + 22, 3.0)])
        parts = [
            extrude("handle", grip, 9, m, 0.0, bevel=2.0),
            extrude("head", head, 5, m, 0.0, bevel=1.0),
            box("bristles", (24, 10, bh), "nylon", (lh + 37.5, 0, 2.5 + bh / 2)),
        ]
        if _is(p, "travel_case"):
            zc = (-4.5 + 2.5 + bh) / 2
            parts.append(extrude("case", _stadium(-2.5, lh + 55, 9.0), 7 + bh + 4, "pp", zc, wall=1.0))
        return obj(parts)
    R = p["handle_radius"]
    hh = L - 25
    w = 1.5
    rc = R - w
    zf = w  # cavity floor
    bw = 2 * math.sqrt((rc - 0.3) ** 2 - 0.8 ** 2)
    rm = min(6.0, rc - 0.3)
    prof = [(0, 0), (R - 3, 0), (R - 0.9, 0.9), (R, 3), (R, hh - 12), (R - 1.2, hh - 4), (R - 3, hh - 1),
            (R - 5, hh)]
    parts = [revolve("handle", prof, m if m != "wood" else "abs", wall=w)]
    parts += _cell("cell", 7.0, 50, "li_ion_cell", (0, 0, zf + 1.0 + 25))
    parts.append(box("board", (bw, 1.6, 30), "fr4", (0, 0, zf + 51.2 + 15)))
    parts += _motor("motor", rm, 22, (0, 0, zf + 81.4 + 11))
    parts += [
        cyl("stem", 5, 50, "pp", (0, 0, hh + 25), wall=1.2),
        cyl("pin", 1.0, 50 - 2.4 - 0.4, "steel", (0, 0, hh + 25)),
        box("head", (10, 8, 22), "pp", (0, 0, hh + 50 + 11)),
        box("bristles", (9, bh, 20), "nylon", (0, 4 + bh / 2, hh + 50 + 11)),
    ]
    return obj(parts)


@register("toothpaste_tube", None, "toothpaste tube: aluminium or plastic-laminate tube (partly "
          "squeezed), the paste, a crimped end, shoulder and nozzle under a PP cap", {
              "radius": num(U(13, 21)),
              "length": num(U(100, 190), "tube length without the cap"),
              "tube_material": mat(["ldpe", "aluminum", "pp"], weights=[5, 2, 1]),
              "paste": mat(["glycerol", "sucrose", "water"], "toothpaste approximated", weights=[4, 1, 1]),
              "level": frac(U(0.2, 0.95), "how full (squeezed tubes are emptier)"),
              "cap_material": mat(["pp", "ldpe", "hdpe"]),
          }, F)
def toothpaste_tube(p, rng):
    r, L = p["radius"], p["length"]
    w = 0.3 if p["tube_material"] == "aluminum" else 0.45
    cr = 0.9 * math.pi * r / 2  # half-width of the flat crimp
    lb = L - 16
    rcap = min(r - 1.0, _rnd(rng, 8.5, 12.0))
    hc = _rnd(rng, 12, 18)
    zs = lb + 6  # top of the shoulder
    return obj(
        box("crimp", (2 * cr, 1.4, 10), p["tube_material"], (0, 0, -5)),
        cyl("tube", r, lb, p["tube_material"], (0, 0, lb / 2), wall=w, fill=p["paste"], level=p["level"]),
        cone("shoulder", r, rcap, 6, p["tube_material"], (0, 0, lb + 3), wall=w),
        cyl("cap", rcap, hc, p["cap_material"], (0, 0, zs + hc / 2), wall=1.2),
        cyl("nozzle", 4.0, hc - 2.4 - 0.4, p["tube_material"], (0, 0, zs + hc / 2), wall=0.5),
    )


# ------------------------------------------------------------------------------ deodorants, bottles


@register("aerosol_deodorant", "spray_can", "aerosol deodorant or hairspray: aluminium can (domed "
          "base, rounded shoulder) with the liquid (the rest is propellant), tinplate valve cup holding the "
          "plastic valve housing, actuator, often under a cap; an aerosol can, so it carries the spray_can "
          "label", {
              "radius": num(U(21, 27)),
              "height": num(U(100, 170)),
              "liquid": mat(["ethanol", "isopropanol", "perfume", "water"], weights=[4, 2, 2, 1]),
              "level": frac(U(0.1, 0.6)),
              "cap": flag(0.7, "cap on (1) or off (0)"),
              "cap_material": mat(["pp", "abs", "hdpe"]),
          }, F)
def aerosol_deodorant(p, rng):
    r, h = p["radius"], p["height"]
    w = 0.45
    rv = 12.7  # valve cup
    dd = 0.3 * r  # depth of the domed base
    sh = 14.0
    prof = ([(0, dd), (0.4 * r, 0.9 * dd), (0.65 * r, 0.65 * dd), (0.82 * r, 0.3 * dd), (r - 2.5, 0),
             (r - 1.0, 0.4), (r, 2.0), (r, h - sh)]
            + [(rv + (r - rv) * math.cos(math.radians(15 * k)), h - sh + sh * math.sin(math.radians(15 * k)))
               for k in range(1, 7)])
    parts = [revolve("can", prof, "aluminum", wall=w, fill=p["liquid"], level=p["level"])]
    z0 = h
    if _is(p, "cap"):
        wc = 1.2
        hcap = 5 + 12 + 2 * wc + 1.0
        parts.append(cyl("cap", rv + 6, hcap, p["cap_material"], (0, 0, h + hcap / 2), wall=wc))
        z0 = h + wc + 0.2
    parts += [
        cyl("valve_cup", rv, 5, "steel", (0, 0, z0 + 2.5), wall=0.3),
        cyl("valve_housing", 3.5, 4.0, "pp", (0, 0, z0 + 2.5)),
        cyl("actuator", 8, 12, "pp", (0, 0, z0 + 5 + 6)),
    ]
    return obj(parts)


@register("roll_on_deodorant", None, "roll-on deodorant: PP, PET or glass body with the lotion, a "
          "ball in its housing, usually under a screw cap", {
              "radius": num(U(18, 25)),
              "height": num(U(60, 110), "body height"),
              "body_material": mat(["pp", "pet", "glass"], weights=[4, 2, 1]),
              "liquid": mat(["water", "ethanol", "glycerol"], weights=[3, 2, 1]),
              "level": frac(U(0.15, 0.9)),
              "ball_material": mat(["pp", "glass"], weights=[3, 1]),
              "cap": flag(0.8, "cap on (1) or off (0)"),
          }, F)
def roll_on_deodorant(p, rng):
    r, h = p["radius"], p["height"]
    w = 2.5 if p["body_material"] == "glass" else 1.2
    rb = min(0.72 * r, _rnd(rng, 12, 16))
    rh = rb + 1.5  # the housing
    hh = 8.0
    prof = [(0, 1.0), (r - 3, 0), (r - 1, 0.6), (r, 2.5), (r, h - 10), (r - 0.3 * (r - rh), h - 4.5),
            (rh + 1.0, h - 0.8), (rh, h)]
    parts = [revolve("body", prof, p["body_material"], wall=w, fill=p["liquid"], level=p["level"])]
    z0 = h
    if _is(p, "cap"):
        wc = 1.2
        hcap = hh + 2 * rb + 2 * wc + 1.0
        parts.append(cyl("cap", rh + 3.0, hcap, "pp", (0, 0, h + hcap / 2), wall=wc))
        z0 = h + wc + 0.2
    parts += [
        cyl("housing", rh, hh, "pp", (0, 0, z0 + hh / 2), wall=1.5),
        sph("ball", rb, p["ball_material"], (0, 0, z0 + hh + rb + 0.05)),
    ]
    return obj(parts)


@register("shampoo_bottle", None, "shampoo, shower gel, lotion or hand-gel bottle: round or flat "
          "HDPE/PET/PP body with the liquid, shoulder and neck, closed by a flip cap, a screw cap or a "
          "pump (steel spring and ball in the collar)", {
              "radius": num(U(22, 38), "body radius (flat bottles: half the width / 1.3)"),
              "height": num(U(80, 200), "body height"),
              "flat": flag(0.4, "flat oval body (1) or round (0)"),
              "material": mat(["hdpe", "pet", "pp", "ldpe"], weights=[4, 3, 2, 1]),
              "liquid": mat(["shampoo", "glycerol", "ethanol", "water"], weights=[5, 2, 1, 1]),
              "level": frac(U(0.15, 0.95)),
              "closure": count({"choice": [0, 1, 2], "weights": [0.55, 0.2, 0.25]},
                               "0 flip cap, 1 screw cap, 2 pump", ge=0),
          }, F)
def shampoo_bottle(p, rng):
    r, h = p["radius"], p["height"]
    m = p["material"]
    w = 0.6 if m == "pet" else 1.0
    rn = min(_rnd(rng, 10, 14), 0.6 * r)
    nh = 10.0
    if _is(p, "flat"):
        rn = min(rn, 0.65 * r - 4.0)
        body = extrude("body", _stadium(-1.3 * r, 1.3 * r, 0.65 * r), h, m, h / 2, bevel=3.0, wall=w,
                       fill=p["liquid"], level=p["level"])
        rs = 0.65 * r - 3.0  # the flat top inside the bevel
        sh = 0.5 * (rs - rn) + 4
        parts = [body,
                 cone("shoulder", rs, rn, sh, m, (0, 0, h + sh / 2), wall=w),
                 cyl("neck", rn, nh, m, (0, 0, h + sh + nh / 2), wall=1.0)]
    else:
        sh = 0.5 * (r - rn) + 6
        prof = ([(0, 1.5), (r - 4, 0), (r - 1.2, 0.6), (r, 3.0), (r, h)]
                + [(rn + (r - rn) * math.cos(math.radians(15 * k)), h + sh * math.sin(math.radians(15 * k)))
                   for k in range(1, 7)] + [(rn, h + sh + nh)])
        parts = [revolve("body", prof, m, wall=w, fill=p["liquid"], level=p["level"])]
    z = h + sh + nh
    closure = p["closure"]
    if closure == 0:
        ch = _rnd(rng, 16, 24)
        rc = rn + 3
        parts += [
            cyl("flip_cap", rc, ch, "pp", (0, 0, z + ch / 2), wall=1.2),
            cyl("orifice", 3, ch - 2.4 - 0.4, "pp", (0, 0, z + ch / 2), wall=0.6),
            box("hinge", (3, 6, 4), "pp", (rc + 1.5, 0, z + ch - 2)),
        ]
    elif closure == 1:
        ch = _rnd(rng, 12, 18)
        parts.append(cyl("screw_cap", rn + 2, ch, "pp", (0, 0, z + ch / 2), wall=1.4))
    else:
        wc = 1.2
        colh = 22.0
        rcol = rn + 2
        ci = colh - 2 * wc  # collar cavity height
        parts += [
            cyl("collar", rcol, colh, "pp", (0, 0, z + colh / 2), wall=wc),
            sph("ball", 1.6, "stainless_steel", (0, 0, z + wc + 0.2 + 1.6)),
            _helix("spring", 3.0, ci - 4.0, 0.35, 1.6, "stainless_steel", (0, 0, z + wc + 3.6 + (ci - 4.0) / 2)),
            cyl("stem", 2.5, 14, "pp", (0, 0, z + colh + 7)),
            box("actuator", (42, 16, 16), "pp", (8, 0, z + colh + 14 + 8), wall=1.5),
        ]
    return obj(parts)


@register("perfume_bottle", None, "perfume or aftershave: thick glass bottle (square or round, heavy "
          "base) with the perfume, metal collar holding the pump (spring, ball), actuator, often a cap",
          {
              "width": num(U(30, 70), "width or diameter"),
              "depth": num(U(18, 40), "square bottles"),
              "height": num(U(45, 110), "body height"),
              "round": flag(0.35, "round (1) or square (0)"),
              "glass_wall": num(U(2.5, 6)),
              "base": num(U(4, 12), "extra glass at the bottom"),
              "level": frac(U(0.15, 0.95)),
              "collar_material": mat(["aluminum", "brass", "zinc"], weights=[4, 1, 1]),
              "cap": flag(0.75, "cap on (1) or off (0)"),
              "cap_material": mat(["pp", "zinc", "abs", "pmma"], weights=[3, 2, 2, 1]),
          }, F)
def perfume_bottle(p, rng):
    W, D, h, gw, base = p["width"], p["depth"], p["height"], p["glass_wall"], p["base"]
    if _is(p, "round"):
        R = W / 2
        rt = min(R - 1.0, max(10.0, 0.45 * R))  # the flat top around the collar
        prof = [(0, 0), (R - 1.5, 0), (R - 0.4, 0.6), (R, 2.0), (R, h - 0.4 * (R - rt))]
        prof += [(rt + (R - rt) * math.cos(math.radians(15 * k)), h - 0.4 * (R - rt) * (1 - math.sin(math.radians(15 * k))))
                 for k in range(1, 7)]
        body = revolve("body", prof, "glass", (0, 0, base), wall=min(gw, 0.3 * rt), fill="perfume", level=p["level"])
        foot = cyl("base", R, base, "glass", (0, 0, base / 2))
        half = rt
    else:
        D = min(D, W)
        bev = min(2.0, 0.2 * D)
        outline = [(-W / 2, -D / 2), (W / 2, -D / 2), (W / 2, D / 2), (-W / 2, D / 2)]
        body = extrude("body", outline, h, "glass", base + h / 2, bevel=bev, wall=gw, fill="perfume", level=p["level"])
        foot = box("base", (W - 2 * bev, D - 2 * bev, base), "glass", (0, 0, base / 2))
        half = D / 2 - bev
    parts = [foot, body]
    z = base + h
    rcol = min(8.5, half - 0.5)
    colh = 10.0
    acth = 8.0
    if _is(p, "cap"):
        wc = 1.5 if p["cap_material"] != "zinc" else 1.2
        hcap = colh + acth + 2 * wc + 1.0
        rcap = max(rcol + wc + 1.0, min(half, _rnd(rng, 12, 22)))
        if p["cap_material"] in ("zinc", "pmma") and not _is(p, "round"):
            parts.append(box("cap", (2 * rcap, 2 * rcap, hcap), p["cap_material"], (0, 0, z + hcap / 2), wall=wc))
        else:
            parts.append(cyl("cap", rcap, hcap, p["cap_material"], (0, 0, z + hcap / 2), wall=wc))
        z += wc + 0.2
    cm = p["collar_material"]
    parts += [
        cyl("collar", rcol, colh, cm, (0, 0, z + colh / 2), wall=0.6),
        sph("ball", 1.2, "stainless_steel", (0, 0, z + 0.6 + 0.2 + 1.2)),
        _helix("spring", 2.2, colh - 1.2 - 3.2 - 0.4, 0.25, 1.1, "stainless_steel", (0, 0, z + 3.6 + (colh - 4.8) / 2)),
        cyl("actuator", min(6.5, rcol), acth, cm if cm != "zinc" else "aluminum", (0, 0, z + colh + acth / 2),
            wall=0.5),
    ]
    return obj(parts)


# ------------------------------------------------------------------------------ shaving


@register("disposable_razor", None, "razor: disposable or system handle (PP, or ABS over a zinc "
          "core), head with 1-5 thin steel blades between steel clips, sometimes under a guard cap", {
              "handle_length": num(U(85, 125)),
              "blades": count({"uniform_int": [1, 5]}),
              "system": flag(0.35, "a system razor with a heavy handle (1) or a disposable (0)"),
              "guard": flag(0.3, "a plastic guard over the head"),
              "handle_material": mat(["pp", "abs", "pc"], weights=[4, 2, 1]),
          }, F)
def disposable_razor(p, rng):
    lh = p["handle_length"]
    n = p["blades"]
    hm = p["handle_material"]
    parts = []
    if _is(p, "system"):
        g = 7.5  # half-width at the grip
        outline = [(g, -g), (0.35 * lh, -8.5), (lh, -4.5), (lh, 4.5), (0.35 * lh, 8.5)] + _arc(g, 0, g, 90, 270, 10)[:-1]
        parts += [extrude("handle", outline, 10, hm if hm != "pp" else "abs", 0.0, bevel=1.5, wall=2.0),
                  box("core", (lh - 30, 4.4, 5.6), "zinc", (lh / 2 - 2, 0, 0))]
    else:
        outline = [(5, -5), (0.35 * lh, -6.0), (lh, -4.0), (lh, 4.0), (0.35 * lh, 6.0)] + _arc(5, 0, 5, 90, 270, 8)[:-1]
        parts.append(extrude("handle", outline, 6, hm, 0.0, bevel=1.0))
    hl, hw, hd = 40.0, 12.0, 6.0
    w = 0.8
    xh = lh + hw / 2  # head centre
    cav = hw - 2 * w
    pitch = cav / n
    bw = min(2.0, pitch - 0.3)
    parts.append(box("head", (hw, hl, hd), "pp", (xh, 0, 0), wall=w))
    for i in range(n):
        x = xh - cav / 2 + pitch * (i + 0.5)
        parts.append(box(f"blade{i}", (bw, hl - 2 * w - 3.0, 0.1), "stainless_steel", (x, 0, 0)))
    for s in (-1, 1):
        parts.append(box(f"clip{(s + 1) // 2}", (cav - 0.2, 0.3, hd - 2 * w - 0.2), "stainless_steel",
                         (xh, s * (hl / 2 - w - 0.6), 0)))
    if _is(p, "guard"):
        parts.append(box("guard", (hw, hl + 4, 2.0), "pp", (xh, 0, hd / 2 + 1.0), wall=0.6))
    return obj(parts)


@register("electric_shaver", None, "electric shaver: ABS/PC body holding a li-ion or NiMH cell, "
          "board and motor; foil head (steel foil over steel cutters) or three rotary heads; sometimes "
          "a protective cap", {
              "width": num(U(45, 62)),
              "depth": num(U(30, 40)),
              "height": num(U(110, 150), "body height"),
              "rotary": flag(0.4, "three rotary heads (1) or a foil head (0)"),
              "cell": mat(["li_ion_cell", "alkaline_cell"], "li-ion, or NiMH (approximated by the alkaline "
                          "cell's composition)", weights=[3, 1]),
              "body_material": mat(["abs", "pc"]),
              "cap": flag(0.4, "protective cap over the head"),
          }, F)
def electric_shaver(p, rng):
    W, D, H = p["width"], p["depth"], p["height"]
    w = 1.8
    dc = D - 2 * w
    zf = w
    m = p["body_material"]
    cr = 9.0
    yc = -dc / 2 + cr + GAP
    parts = [box("body", (W, D, H), m, (0, 0, H / 2), wall=w)]
    parts += _cell("cell", cr, 65, p["cell"], (0, yc, zf + GAP + 32.5))
    parts.append(box("board", (W - 2 * w - 1, 1.6, 60), "fr4", (0, yc + cr + GAP + 0.8, zf + GAP + 30)))
    rm = min(10.0, dc / 2 - 0.3)
    parts += _motor("motor", rm, 25, (0, 0, zf + 66 + 12.5))
    z = H
    rot = _is(p, "rotary")
    hx, hy = (W + 10, max(D, 0.9 * W)) if rot else (W, D)
    if _is(p, "cap"):
        wc = 1.5
        hh = 22.0 if rot else 24.0
        parts.append(box("cap", (hx + 6, hy + 6, hh + 2 * wc + 1.0), "pc", (0, 0, H + (hh + 2 * wc + 1.0) / 2),
                         wall=wc))
        z += wc + 0.2
    if rot:
        parts.append(box("head", (hx, hy, 14), m, (0, 0, z + 7), wall=1.5))
        rh = 0.2 * W
        rho = (2 * rh + 1.0) / math.sqrt(3)
        for k, a in enumerate((90, 210, 330)):
            x, y = rho * math.cos(math.radians(a)), rho * math.sin(math.radians(a))
            parts += [
                cyl(f"rotor{k}_cup", rh, 7, "stainless_steel", (x, y, z + 14 + 3.5), wall=0.4),
                cyl(f"rotor{k}_cutter", rh - 2.5, 2.0, "steel", (x, y, z + 14 + 3.5)),
            ]
    else:
        parts += [
            box("head", (W - 4, D - 8, 20), m, (0, 0, z + 10), wall=1.5),
            box("cutter", (W - 10, D - 14, 4), "steel", (0, 0, z + 20 - 1.5 - 0.2 - 2)),
            box("foil", (W - 6, D - 12, 0.1), "stainless_steel", (0, 0, z + 20 + 0.05)),
            box("trimmer", (W - 14, 1.2, 10), "steel", (0, D / 2 - 4 + 0.6, z + 10)),
        ]
    return obj(parts)


# ------------------------------------------------------------------------------ hair


@register("hair_dryer", None, "travel hair dryer: ABS barrel with the inlet grille, fan, DC motor "
          "(magnet, copper winding) and the nickel-chrome heater coil wound round a mica card; handle with the "
          "switch board, folded or not; optional nozzle; coiled mains cord", {
              "barrel_radius": num(U(30, 42)),
              "barrel_length": num(U(150, 220)),
              "handle_length": num(U(85, 120)),
              "folded": flag(0.4, "handle folded along the barrel (1) or down (0)"),
              "nozzle": flag(0.4, "concentrator nozzle on the outlet"),
              "cord_radius": num(U(12, 30), "inner radius of the coiled cord"),
              "cord_turns": count({"uniform_int": [2, 5]}),
              "body_material": mat(["abs", "pc", "pp"], weights=[3, 2, 1]),
          }, F)
def hair_dryer(p, rng):
    R, L, Lh = p["barrel_radius"], p["barrel_length"], p["handle_length"]
    m = p["body_material"]
    w = 2.0
    rc = R - w
    x0 = w  # cavity starts
    parts = [cyl("barrel", R, L, m, (L / 2, 0, 0), X, wall=w),
             cyl("grille", rc - 0.3, 0.8, "steel", (x0 + 0.2 + 0.4, 0, 0), X),
             cyl("fan", rc - 2.0, 8, "pp", (x0 + 1.2 + 4, 0, 0), X)]
    rm = min(15.0, rc - 2.0)
    xm = x0 + 9.4 + 30 / 2
    parts += _motor("motor", rm, 30, (xm, 0, 0), "x")
    xh0 = xm + 15 + 5 + GAP + 2  # past the shaft stub
    lheat = min(L - w - xh0 - 2, _rnd(rng, 45, 75))
    r1 = rc - 2.5  # coil radius (to the wire)
    xc = xh0 + lheat / 2
    parts += [
        _helix("heater_coil", r1, lheat, 0.3, _rnd(rng, 2.5, 4.0), "nickel", (xc, 0, 0), "x"),
        box("mica", (lheat - 2.0, 2 * (r1 - 0.3 - 0.5), 0.4), "porcelain", (xc, 0, 0)),
    ]
    hw, hd = 32.0, 28.0
    if _is(p, "folded"):
        parts.append(box("handle", (Lh, hd, hw), m, (L - Lh / 2 - 10, 0, -R - hw / 2 - GAP), wall=w))
        parts.append(box("switch_board", (40, hd - 2 * w - 1, 1.6), "fr4", (L - Lh - 10 + w + 22, 0, -R - hw / 2)))
        exit_pt = (L - Lh, 0, -R - hw - GAP - 0.5)
    else:
        parts.append(box("handle", (hw, hd, Lh), m, (xm, 0, -R - Lh / 2 - GAP), wall=w))
        parts.append(box("switch_board", (hw - 2 * w - 1, 1.6, 40), "fr4", (xm, 0, -R - GAP - w - 22)))
        exit_pt = (xm, 0, -R - Lh - GAP - 0.5)
    if _is(p, "nozzle"):
        parts.append(cone("nozzle", R, 0.55 * R, 45, "pp", (L + 22.5, 0, 0), (0, 90, 0), wall=1.5))
    parts.append(_cord("cord", exit_pt, (0, 0, -1), (0, 1, 0), p["cord_radius"], p["cord_turns"]))
    return obj(parts)


@register("hair_straightener", None, "hair straightener: two PC/ABS arms on a steel hinge pin, each "
          "with a heating plate (aluminium, ceramic or titanium) over a ceramic heater with a nickel "
          "strip; control board in an arm; closed or slightly open; coiled cord", {
              "arm_length": num(U(220, 290)),
              "arm_width": num(U(26, 38)),
              "arm_thickness": num(U(13, 19)),
              "plate_length": num(U(80, 115)),
              "plate_material": mat(["aluminum", "alumina", "titanium"], weights=[5, 3, 1]),
              "open": flag(0.3, "arms open (1) or clipped shut (0)"),
              "open_angle": num(U(6, 16), "opening of each arm", unit="deg"),
              "cord_radius": num(U(12, 30), "inner radius of the coiled cord"),
              "cord_turns": count({"uniform_int": [2, 5]}),
              "body_material": mat(["pc", "abs", "nylon"], weights=[3, 2, 1]),
          }, F)
def hair_straightener(p, rng):
    La, Wa, T = p["arm_length"], p["arm_width"], p["arm_thickness"]
    lp = min(p["plate_length"], La - 90)
    tp = 3.0
    w = 1.6
    m = p["body_material"]
    a = p["open_angle"] if _is(p, "open") else 0.0
    x0 = 8.0  # arms start past the hinge pin
    parts = []
    for s, nm in ((1, "upper"), (-1, "lower")):
        kids = [
            box("shell", (La, Wa, T), m, (x0 + La / 2, 0, s * (0.1 + tp + T / 2)), wall=w),
            box("plate", (lp, Wa - 4, tp), p["plate_material"], (x0 + La - 6 - lp / 2, 0, s * (0.1 + tp / 2))),
            box("heater", (lp - 10, Wa - 2 * w - 6, 1.5), "alumina",
                (x0 + La - 6 - lp / 2, 0, s * (0.1 + tp + w + GAP + 0.75))),
            box("strip", (lp - 14, 4, 0.3), "nickel",
                (x0 + La - 6 - lp / 2, 0, s * (0.1 + tp + w + GAP + 1.5 + 0.15))),
        ]
        if s == 1:
            kids.append(box("board", (60, Wa - 2 * w - 2, 1.6), "fr4", (x0 + w + 10 + 30, 0, s * (0.1 + tp + T / 2))))
        parts.append({"name": nm, "parts": kids,
                      "pose": {"position": [0.0, 0.0, 0.0], "rotation_deg": [0.0, -s * a, 0.0]}})
    parts.append(cyl("hinge_pin", 3.5, Wa, "steel", (-0.5, 0, 0), Y))
    r_out = p["cord_radius"] + (2 * 2.8 + 1.5) * p["cord_turns"]
    parts.append(_cord("cord", (-4.0 - 0.5, 0, 0), (-1, 0, 0), (-1, 0, 0), p["cord_radius"], p["cord_turns"],
                       lead=r_out + 8.0))
    return obj(parts)


@register("hairbrush", None, "hairbrush: paddle (plastic or wooden head, rubber cushion, nylon or "
          "steel pins) or round (aluminium barrel with nylon bristle rows on a plastic or wooden handle)", {
              "handle_length": num(U(95, 130)),
              "head_length": num(U(85, 120)),
              "head_width": num(U(55, 80)),
              "round": flag(0.35, "round brush (1) or paddle (0)"),
              "barrel_radius": num(U(10, 22), "round brushes"),
              "pin_rows": count({"uniform_int": [3, 4]}),
              "pin_cols": count({"uniform_int": [5, 7]}),
              "pin_material": mat(["nylon", "steel", "wood"], weights=[4, 2, 1]),
              "body_material": mat(["pp", "abs", "wood"], weights=[3, 2, 2]),
          }, F)
def hairbrush(p, rng):
    lh, lb, wb = p["handle_length"], p["head_length"], p["head_width"]
    m = p["body_material"]
    if _is(p, "round"):
        rb = p["barrel_radius"]
        prof = [(0, 0), (8.5, 0), (10.5, 2.0), (12, 0.3 * lh), (11, 0.7 * lh), (9.5, lh - 3), (9.5, lh)]
        parts = [revolve("handle", prof, m, axis="x"),
                 cyl("barrel", rb, lb, "aluminum", (lh + lb / 2, 0, 0), X, wall=0.6),
                 cyl("core", rb - 0.8, lb - 1.6, "pp", (lh + lb / 2, 0, 0), X, wall=1.0)]
        bl = _rnd(rng, 10, 16)
        for k in range(8):
            ang = 360.0 * k / 8
            t = math.radians(ang)
            rr = rb + GAP + bl / 2
            parts.append(box(f"bristles{k}", (lb - 6, 1.2, bl), "nylon",
                             (lh + lb / 2, -rr * math.sin(t), rr * math.cos(t)), (ang, 0, 0)))
        return obj(parts)
    A, B = lb / 2, wb / 2
    xc = lh + A  # the head's centre
    hn = min(12.0, 0.5 * B)  # half-width of the neck
    fj = math.degrees(math.asin(hn / B))
    hb = 11.0  # half-width at the end of the handle
    outline = ([(hb, -hb), (0.6 * lh, -0.85 * hb)] + _arc(xc, 0, A, 180 + fj, 540 - fj, 40, B)
               + [(0.6 * lh, 0.85 * hb)] + _arc(hb, 0, hb, 90, 270, 10)[:-1])
    parts = [extrude("body", outline, 12, m, 0.0, bevel=2.0, wall=2.0),
             extrude("cushion", _ellipse(xc, 0, A - 6, B - 6), 3, "rubber", 6 + 1.5)]
    nr, nc = p["pin_rows"], p["pin_cols"]
    ph = _rnd(rng, 12, 18)
    pr = 0.9 if p["pin_material"] != "wood" else 1.6
    k = 0
    for i in range(nr):
        for j in range(nc):
            x = xc - (A - 10) + 2 * (A - 10) * (j + 0.5) / nc
            y = -(B - 10) + 2 * (B - 10) * (i + 0.5) / nr
            if ((x - xc) / (A - 8)) ** 2 + (y / (B - 8)) ** 2 > 1:
                continue
            parts.append(cyl(f"pin{k}", pr, ph, p["pin_material"], (x, y, 6 + 3 + ph / 2)))
            k += 1
    return obj(parts)


# ------------------------------------------------------------------------------ small metal items


@register("nail_clippers", None, "nail clippers (steel): two jaws joined at the tail, cutting edges, "
          "pin and lever (stowed or turned out), sometimes a split keyring", {
              "length": num(U(55, 95)),
              "width": num(U(11, 16)),
              "metal": mat(["stainless_steel", "steel", "nickel"], weights=[4, 3, 1]),
              "lever_out": flag(0.3, "lever turned out for use (1) or stowed (0)"),
              "keyring": flag(0.3),
          }, F)
def nail_clippers(p, rng):
    L, W, m = p["length"], p["width"], p["metal"]
    t = 1.6
    g = 0.18 * W + 1.0
    xp = L / 2 - 14
    hw = W / 2
    jaw = ([(-L / 2 + hw, -hw), (L / 2 - 2.5, -0.42 * W), (L / 2 - 0.6, -0.3 * W), (L / 2, -0.12 * W),
            (L / 2, 0.12 * W), (L / 2 - 0.6, 0.3 * W), (L / 2 - 2.5, 0.42 * W)] + _arc(-L / 2 + hw, 0, hw, 90, 270, 10)[:-1])
    parts = [
        extrude("lower_jaw", jaw, t, m, t / 2),
        extrude("upper_jaw", jaw, t, m, t + g + t / 2),
        box("edges", (2.0, 0.5 * W, g), m, (L / 2 - 1.2, 0, t + g / 2)),
        box("tail", (5.0, 0.8 * W, g), m, (-L / 2 + 4.0, 0, t + g / 2)),
        cyl("pin", 1.4, g, m, (xp, 0, t + g / 2)),
        cyl("pin_top", 1.4, 1.0, m, (xp, 0, 2 * t + g + 0.5)),
    ]
    ll = 0.8 * L
    zl = 2 * t + g + 1.0 + 0.8
    lw = (W - 2) / 2
    x0, x1 = (xp - 3, xp - 3 + ll) if _is(p, "lever_out") else (xp + 3 - ll, xp + 3)
    parts.append(extrude("lever", _stadium(x0, x1, lw), 1.6, m, zl))
    if _is(p, "keyring"):
        rr = 9.0
        loop = [(-L / 2 - 1.0 - rr - 0.8 + x, y, t / 2) for x, y in _ellipse(0, 0, rr, rr, 32)]
        parts.append(sweep("ring", loop, 0.8, m, closed=True))
    return obj(parts)


@register("glasses_case", None, "spectacles or sunglasses, folded, in a hard case with a steel spring "
          "(or loose): PC, acrylic or glass lenses, metal or plastic frame (full rims or rimless), hinges "
          "and screws, temples (plastic ones with a steel core wire), nose pads", {
              "lens_radius": num(U(18, 25)),
              "bridge": num(U(14, 22)),
              "lens_material": mat(["pc", "pmma", "glass"], weights=[4, 3, 1]),
              "frame_material": mat(["stainless_steel", "titanium", "nickel", "pc", "pmma"],
                                    weights=[3, 2, 1, 3, 2]),
              "rims": flag(0.75, "full rims (1) or rimless (0)"),
              "case": flag(0.85, "in a hard case (1) or loose (0)"),
              "case_material": mat(["abs", "pp", "aluminum", "cardboard"], weights=[3, 2, 1, 2]),
          }, F)
def glasses_case(p, rng):
    a, br = p["lens_radius"], p["bridge"]
    b = a * _rnd(rng, 0.7, 0.95)  # oval lenses
    fm, lm = p["frame_material"], p["lens_material"]
    metal = fm in METALS
    rims = _is(p, "rims")
    tl = 1.3 if lm != "glass" else 1.8  # half the lens thickness
    rr = 0.9  # metal rim wire radius
    fw = _rnd(rng, 3.5, 5.5)  # plastic frame: width around the lenses
    ft = 4.0  # plastic frame thickness
    if not rims:
        edge = a
    elif metal:
        edge = a + GAP + 2 * rr
    else:
        edge = a + 0.3 + fw
    xl = br / 2 + (a + 0.3 if rims and not metal else edge)  # lens centres at +-xl
    inner = xl + edge + 0.3  # the hinges' inner faces
    zt = _rnd(rng, 14, 22)  # depth of the folded temples behind the lenses
    z_front = max(tl, ft / 2 if rims and not metal else (rr if rims else 0.0), 1.0)
    hm = fm if metal else "stainless_steel"
    yh = 0.3 * b
    yb = 0.35 * b  # bridge height
    # local frame: the front in xy (lenses facing z), the face side and the folded temples at z > 0
    kids = []
    if rims and not metal:
        # the lens holes' ellipses grown by fw, joined by the nose bridge and a straight brow
        A, B = a + 0.3 + fw, b + 0.3 + fw
        shell = _arc(-xl, 0, A, 90, 340, 25, B) + _arc(xl, 0, A, 200, 450, 25, B)
        holes = [_ellipse(-xl, 0, a + 0.3, b + 0.3), _ellipse(xl, 0, a + 0.3, b + 0.3)]
        kids.append(extrude("front", shell, ft, fm, 0.0, holes=holes, bevel=0.8))
    else:
        xe = br / 2 - (0.3 if not rims else 0.0)
        kids.append(sweep("bridge", [(-xe + 0.8, yb, 0), (-0.5 * xe, yb + 2.5, 0), (0.5 * xe, yb + 2.5, 0), (xe - 0.8, yb, 0)],
                          0.8, fm))
    for s, nm in ((-1, "left"), (1, "right")):
        cx = s * xl
        if rims and metal:
            kids.append(sweep(f"{nm}_rim", [(cx + x, y, 0) for x, y in _ellipse(0, 0, a + GAP + rr, b + GAP + rr, 40)],
                              rr, fm, closed=True))
        kids += [
            ell(f"{nm}_lens", (a, b, tl), lm, (cx, 0, 0)),
            box(f"{nm}_pad", (6, 9, 2.5), "silicone", (s * (br / 2 - 3.5), -0.2 * b, z_front + GAP + 1.25)),
            box(f"{nm}_hinge", (5.0, 4.0, zt - 1.5), hm, (s * (inner + 2.5), yh, (zt - 1.5) / 2)),
            cyl(f"{nm}_screw", 0.9, 2.0, "steel", (s * (inner + 2.5), yh + 3.0, zt / 2 - 1.0), Y),
        ]
        # the folded temple: from its hinge across the front, the ear end bent down
        zz = zt + 1.3 + (0.0 if s < 0 else 3.6)
        x0 = s * (inner + 2.5)
        lt = 2 * inner - 3.0
        path = [(x0, yh, zz), (x0 - s * 0.65 * lt, yh, zz), (x0 - s * 0.8 * lt, yh - 3.0, zz),
                (x0 - s * 0.92 * lt, yh - 8.0, zz), (x0 - s * lt, yh - 14.0, zz)]
        if metal:
            kids.append(sweep(f"{nm}_temple", path, 0.9, fm))
        else:
            kids.append(sweep(f"{nm}_temple", path, 1.6, fm, wall=1.0, fill="steel", level=1.0))
    glasses = {"name": "glasses", "parts": kids,
               "pose": {"position": [0.0, 0.0, 0.0], "rotation_deg": [90.0, 0.0, 0.0]}}
    if not _is(p, "case"):
        return obj(glasses)
    # turned on edge: local y -> world z, local z -> world -y
    zmin, zmax = -z_front, zt + 1.3 + 3.6 + 1.6
    top = (b + 0.3 + fw) if rims and not metal else b + GAP + 2 * rr
    ymin, ymax = -top, max(top, yb + 3.3)
    half_w = inner + 5.0
    cm = p["case_material"]
    wc = {"aluminum": 0.8, "cardboard": 2.0}.get(cm, 1.5)
    cav = (2 * half_w + 4.0, (zmax - zmin) + 4.0, (ymax - ymin) + 4.0)
    cy, cz = -(zmin + zmax) / 2, (ymin + ymax) / 2
    rcase = cav[1] / 2 + wc  # a stadium in plan: rounded ends beyond the straight part holding the glasses
    outline = [(x, y + cy) for x, y in _stadium(-cav[0] / 2 - rcase, cav[0] / 2 + rcase, rcase)]
    return obj(
        extrude("case", outline, cav[2] + 2 * wc, cm, cz, wall=wc),
        box("spring", (0.5 * cav[0], 0.6, 5.0), "steel", (0, cy + cav[1] / 2 - 0.7, cz + cav[2] / 2 - 3.0)),
        glasses,
    )


@register("wristwatch", None, "wristwatch: steel, titanium, gold or plastic case with the movement "
          "(quartz: board, coin cell, coil; mechanical: brass plates, balance, rotor), dial, glass or "
          "sapphire crystal, crown, lugs and spring bars; leather, silicone or nylon strap with a steel "
          "buckle, or a metal link bracelet with a clasp", {
              "case_radius": num(U(17, 23)),
              "case_height": num(U(9, 14)),
              "case_material": mat(["stainless_steel", "titanium", "gold", "pc", "brass"], weights=[5, 1, 1, 2, 1]),
              "quartz": flag(0.65, "quartz (1) or mechanical (0) movement"),
              "crystal": mat(["glass", "alumina", "pmma"], "mineral glass, sapphire or acrylic"),
              "strap": mat(["leather", "silicone", "nylon_fabric", "stainless_steel", "titanium", "gold"],
                           "a metal means a link bracelet", weights=[4, 2, 1, 4, 1, 0.5]),
              "strap_width": num(U(16, 24)),
              "strap_length": num(U(70, 110), "each side"),
          }, F)
def wristwatch(p, rng):
    r, h = p["case_radius"], p["case_height"]
    cm = p["case_material"]
    w = 1.8 if cm == "pc" else 1.2
    if not _is(p, "quartz"):
        h = max(h, 6.4 + 2 * w)
    rc, hc = r - w, h - 2 * w
    z0 = -hc / 2  # cavity floor (case centred at the origin)
    parts = [cyl("case", r, h, cm, (0, 0, 0), wall=w)]
    if _is(p, "quartz"):
        parts += [
            cyl("board", rc - 0.5, 1.0, "fr4", (0, 0, z0 + GAP + 0.5)),
            cyl("cell_can", 5.8, 2.1, "stainless_steel", (-rc / 3, 0, z0 + 1.4 + 1.05), wall=0.2),
            cyl("cell", 5.8 - 0.3, 2.1 - 0.6, "zinc", (-rc / 3, 0, z0 + 1.4 + 1.05)),
            box("coil", (7, 3, 2.0), "copper", (rc / 3, -rc / 4, z0 + 1.4 + 1.0)),
            cyl("gear_train", rc / 4, 0.8, "brass", (rc / 3, rc / 4, z0 + 1.4 + 0.4)),
        ]
        top = z0 + 3.7
    else:
        parts += [
            cyl("main_plate", rc - 0.5, 2.0, "brass", (0, 0, z0 + GAP + 1.0)),
            cyl("balance", 4.5, 0.6, "brass", (rc / 3, 0, z0 + 2.4 + 0.3)),
            box("bridge", (rc / 2, 4.0, 1.2), "brass", (-rc / 3, 0, z0 + 2.4 + 0.6)),
            box("rotor", (rc, rc / 2, 1.2), "tungsten", (0, -rc / 4 - 0.5, z0 + 4.0 + 0.6)),
        ]
        top = z0 + 5.4
    dial_z = max(top + GAP, hc / 2 - 3.0)
    parts.append(cyl("dial", rc - 0.3, 0.4, "brass", (0, 0, dial_z + 0.2)))
    parts += [
        cyl("crystal", r - 1.0, 2.0, p["crystal"], (0, 0, h / 2 + 1.0)),
        cyl("crown", 2.5, 3.0, cm, (r + 1.5, 0, 0), X),
    ]
    sw = min(p["strap_width"], 2 * r - 12)
    y0 = math.sqrt(r * r - (sw / 2) ** 2) + 0.3  # lugs start where the case has curved away
    y1 = r + 5.0  # lug ends
    st = p["strap"]
    for s in (-1, 1):
        nm = "top" if s > 0 else "bottom"
        for k in (-1, 1):
            parts.append(box(f"lug_{nm}{(k + 1) // 2}", (3.0, y1 - y0, 4.0), cm,
                             (k * (sw / 2 + 1.5), s * (y0 + y1) / 2, 0)))
        parts.append(cyl(f"spring_bar_{nm}", 0.8, sw - 0.2, "stainless_steel", (0, s * (r + 2.0), 0), X))
        ys = r + 3.1  # straps start past the spring bars
        sl = p["strap_length"]
        if st in METALS:
            ll = 8.0
            nl = max(3, min(8, int(sl / (ll + 0.3))))
            for i in range(nl):
                y = ys + i * (ll + 0.3) + ll / 2
                parts.append(box(f"link_{nm}{i}", (sw, ll, 3.5), st, (0, s * y, 0)))
            if s > 0:
                y = ys + nl * (ll + 0.3) + 10
                parts.append(box("clasp", (sw - 2, 20, 5.0), "stainless_steel", (0, y, 0), wall=0.6))
        else:
            t = 3.5 if st == "leather" else (3.0 if st == "silicone" else 1.6)
            parts.append(box(f"strap_{nm}", (sw, sl, t), st, (0, s * (ys + sl / 2), 0)))
            if s > 0:
                yb = ys + sl + 2.0 + GAP
                parts += [box("buckle_end", (sw + 6, 4.0, 3.0), "stainless_steel", (0, yb, 0)),
                          box("buckle_left", (3.0, 14, 3.0), "stainless_steel", (-(sw + 6) / 2 + 1.5, yb + 9 + GAP, 0)),
                          box("buckle_right", (3.0, 14, 3.0), "stainless_steel", ((sw + 6) / 2 - 1.5, yb + 9 + GAP, 0)),
                          box("tongue", (1.5, 14, 1.5), "stainless_steel", (0, yb + 9 + GAP, 0))]
    return obj(parts)


@register("jewellery_pouch", None, "jewellery in a fabric or leather pouch: a necklace (a chain of "
          "interlinked oval links of silver, gold or steel wire, optionally a pendant), a ring with a stone, "
          "a pair of stud earrings", {
              "links": count({"uniform_int": [14, 30]}),
              "link_length": num(U(4, 6.5)),
              "metal": mat(["silver", "gold", "stainless_steel", "brass"], weights=[4, 3, 2, 1]),
              "pendant": flag(0.5),
              "ring": flag(0.7),
              "earrings": flag(0.5),
              "pouch_material": mat(["cotton", "polyester", "leather", "nylon_fabric"], weights=[3, 3, 2, 1]),
          }, F)
def jewellery_pouch(p, rng):
    n, ll, m = p["links"], p["link_length"], p["metal"]
    wr = 0.085 * ll  # wire radius
    lw = 0.7 * ll  # link width
    gap = 0.4
    pitch = ll - 4 * wr - gap  # distance between the junctions of a link
    wp = 1.0
    hh = 14.0  # pouch cavity height
    zf = -hh / 2  # cavity floor
    zc = zf + lw / 2 + GAP  # the chain's mid-plane
    # junctions along an Archimedean spiral; each link joins two, alternately flat and upright
    turn = lw + 3.0
    r, th = 10.0, 0.0
    js = []
    for _ in range(n + 1):
        js.append((r * math.cos(th), r * math.sin(th)))
        dth = 2 * math.asin(min(1.0, pitch / (2 * r)))
        th += dth
        r += turn * dth / (2 * math.pi)
    rmax = r + lw
    link = [(x, y, 0.0) for x, y in _stadium(-(ll / 2 - wr), ll / 2 - wr, lw / 2 - wr)]
    kids = []
    for i in range(n):
        (xa, ya), (xb, yb) = js[i], js[i + 1]
        ang = math.degrees(math.atan2(yb - ya, xb - xa))
        q = sweep(f"link{i}", link, wr, m, closed=True)
        q["pose"] = {"position": [(xa + xb) / 2, (ya + yb) / 2, zc], "rotation_deg": [0.0 if i % 2 == 0 else 90.0, 0.0, ang]}
        kids.append(q)
    if _is(p, "pendant"):
        xa, ya = js[n]
        rp = _rnd(rng, 3, 5)
        d = math.hypot(xa, ya)
        k = (d + rp + lw + 1.0) / d
        kids.append(sph("pendant", rp, str(rng.choice(["glass", "alumina", m])), (xa * k, ya * k, zf + rp + GAP)))
        rmax += 2 * rp + lw + 2
    cx_chain = -rmax - 2
    for kd in kids:
        kd["pose"]["position"][0] += cx_chain
    right = 0.0
    if _is(p, "ring"):
        rr = _rnd(rng, 8, 10)
        band = [(rr + 3 + x, y, zf + 1.0 + GAP) for x, y in _ellipse(0, 0, rr, rr, 32)]
        kids += [sweep("ring", band, 1.0, m, closed=True),
                 sph("stone", 2.2, str(rng.choice(["glass", "alumina"])), (2 * rr + 3, 0, zf + 2.0 + GAP + 2.2 + 0.1))]
        right = 2 * rr + 10
    if _is(p, "earrings"):
        for k in range(2):
            x = right + 4 + 9 * k
            kids += [cyl(f"stud{k}", 3.0, 1.5, m, (x, 6, zf + GAP + 0.75)),
                     cyl(f"post{k}", 0.45, 9, m, (x, 6, zf + GAP + 1.5 + 4.5)),
                     box(f"back{k}", (5, 5, 1.0), m, (x, 6, zf + GAP + 10.5 + 0.5))]
        right += 24
    x_lo = cx_chain - rmax - 3
    x_hi = max(right, 3.0) + 3
    y_half = rmax + 3
    pouch = box("pouch", (x_hi - x_lo + 2 * wp, 2 * y_half + 2 * wp, hh + 2 * wp), p["pouch_material"],
                ((x_lo + x_hi) / 2, 0, 0), wall=wp)
    return obj([pouch] + kids)


# ------------------------------------------------------------------------------ wallet, make-up


@register("wallet", None, "folded wallet (leather, nylon or PVC) holding banknotes, PVC cards with "
          "chip modules, and coins in the coin pocket", {
              "length": num(U(105, 125)),
              "width": num(U(85, 100)),
              "material": mat(["leather", "nylon_fabric", "pvc", "polyester"], weights=[5, 2, 1, 1]),
              "cards": count({"uniform_int": [1, 7]}),
              "chip_fraction": frac(U(0.4, 1.0), "share of the cards with a chip"),
              "notes": count({"uniform_int": [0, 12]}, ge=0),
              "coins": count({"uniform_int": [0, 6]}, ge=0),
              "coin_metal": mat(["brass", "nickel", "steel", "copper", "zinc"]),
          }, F)
def wallet(p, rng):
    L, Wd = p["length"], p["width"]
    L, Wd = max(L, 95.0), max(Wd, 62.0)
    w = 1.5 if p["material"] == "leather" else 1.0
    parts = []
    z = 0.0  # cavity floor at 0 for now; the shell is added around the stack
    if p["notes"]:
        nt = 0.11 * p["notes"]
        parts.append(box("notes", (L - 2 * w - 2, Wd - 2 * w - 2, nt), "paper", (0, 0, z + nt / 2)))
        z += nt + 0.05
    nchip = round(p["cards"] * p["chip_fraction"])
    for i in range(p["cards"]):
        dx = (i % 2) * 3.0 - 1.5
        parts.append(box(f"card{i}", (85.6, 54.0, 0.76), "pvc", (dx, -2, z + 0.38)))
        z += 0.76
        if i < nchip:
            parts.append(box(f"chip{i}", (11, 9, 0.35), "copper", (dx - 85.6 / 2 + 15, -2 + 5, z + 0.175)))
            z += 0.35
        z += 0.05
    rc = 11.0
    nc = p["coins"]
    if nc:
        z += 0.3
        per = max(1, int((L - 2 * w - 4) // (2 * rc + 1)))
        for i in range(nc):
            row, col = divmod(i, per)
            t = _rnd(rng, 1.5, 2.3)
            parts.append(cyl(f"coin{i}", rc - 0.5 * (i % 3), t, p["coin_metal"],
                             (-(L - 2 * w) / 2 + 2 + rc + col * (2 * rc + 1), -(Wd - 2 * w) / 2 + 2 + rc + row * (2 * rc + 1),
                              z + 1.2)))
        z += 2.5
    hc = z + 0.6
    for q in parts:
        q["pose"]["position"][2] -= hc / 2 - 0.3
    parts.insert(0, box("shell", (L, Wd, hc + 2 * w), p["material"], (0, 0, 0), wall=w))
    return obj(parts)


@register("makeup_bag", None, "make-up bag with a zip: lipstick (metal case, wax stick), powder "
          "compact (case, mirror, pan of pressed powder), mascara (tube, product, nylon brush on a steel "
          "rod), nail-polish bottle, steel tweezers", {
              "length": num(U(180, 240)),
              "width": num(U(100, 140)),
              "height": num(U(55, 85)),
              "material": mat(["nylon_fabric", "polyester", "pvc", "cotton", "leather"], weights=[3, 3, 2, 1, 1]),
              "lipstick": flag(0.9),
              "compact": flag(0.7),
              "mascara": flag(0.8),
              "nail_polish": flag(0.5),
              "tweezers": flag(0.5),
              "zip_metal": mat(["brass", "nickel", "pp"], "zip teeth and slider"),
          }, F)
def makeup_bag(p, rng):
    L, Wd, H = p["length"], p["width"], p["height"]
    w = 1.0
    wcv = Wd - 2 * w
    zf = -H / 2 + w + GAP
    x = 0.0  # cursor along x from the cavity's start
    items = []
    if _is(p, "lipstick"):
        r = _rnd(rng, 8, 10)
        lb, lc = _rnd(rng, 38, 48), _rnd(rng, 30, 38)
        cm = str(rng.choice(["aluminum", "zinc", "abs"]))
        xc = x + r
        y0 = -wcv / 2 + 2
        items += [cyl("lipstick_base", r, lb, cm, (xc, y0 + lb / 2, zf + r), Y, wall=0.6),
                  cyl("lipstick_stick", r - 2.0, lb - 1.6, "vegetable_oil", (xc, y0 + lb / 2, zf + r), Y),
                  cyl("lipstick_cap", r, lc, cm, (xc, y0 + lb + lc / 2, zf + r), Y, wall=0.6)]
        x += 2 * r + 2
    if _is(p, "compact"):
        rc = min(_rnd(rng, 26, 36), wcv / 2 - 1)
        hc = _rnd(rng, 10, 14)
        cm = str(rng.choice(["abs", "zinc", "brass", "pc"]))
        wc = 1.2 if cm in ("abs", "pc") else 0.7
        xc = x + rc
        zc = zf + hc / 2
        cav_top = zc + hc / 2 - wc
        items += [cyl("compact", rc, hc, cm, (xc, 0, zc), wall=wc),
                  cyl("mirror", rc - wc - 1.5, 1.5, "glass", (xc, 0, cav_top - GAP - 0.75)),
                  cyl("pan", rc - wc - 2.5, 4.0, "aluminum", (xc, 0, zc - hc / 2 + wc + GAP + 2.0), wall=0.3,
                      fill="flour", level=0.9)]
        x += 2 * rc + 2
    if _is(p, "mascara"):
        r = _rnd(rng, 7, 9)
        lt = min(_rnd(rng, 60, 80), wcv - 40)
        lc = min(_rnd(rng, 30, 45), wcv - lt - 4)
        xc = x + r
        y0 = -wcv / 2 + 2
        c0, c1 = y0 + 2.7, y0 + lt - 2.7  # the product sleeve's cavity
        lr = c1 - c0 - 25 - 0.9  # the rod
        items += [cyl("mascara_tube", r, lt, "pp", (xc, y0 + lt / 2, zf + r), Y, wall=1.0),
                  cyl("mascara_product", r - 1.2, lt - 2.4, "glycerol", (xc, y0 + lt / 2, zf + r), Y, wall=1.5),
                  cyl("mascara_brush", r - 3.2, 25, "nylon", (xc, c1 - 0.2 - 12.5, zf + r), Y),
                  cyl("mascara_rod", 0.8, lr, "stainless_steel", (xc, c0 + 0.2 + lr / 2, zf + r), Y),
                  cyl("mascara_cap", r, lc, "pp", (xc, y0 + lt + lc / 2, zf + r), Y)]
        x += 2 * r + 2
    if _is(p, "nail_polish"):
        s = _rnd(rng, 24, 32)
        hb = _rnd(rng, 28, 38)
        hcp = min(_rnd(rng, 18, 26), H - 2 * w - 2 * GAP - hb - 1)
        xc = x + s / 2
        items += [box("polish_bottle", (s, s, hb), "glass", (xc, 0, zf + hb / 2), wall=3.0, fill="acetone",
                      level=_rnd(rng, 0.3, 0.9)),
                  cyl("polish_cap", 7, hcp, "pp", (xc, 0, zf + hb + hcp / 2))]
        x += s + 2
    if _is(p, "tweezers"):
        lt = min(90.0, wcv - 4)
        xc = x + 6
        items += [box("tweezer_a", (6, lt, 0.8), "stainless_steel", (xc, 0, zf + 0.4), (0, 0, 3)),
                  box("tweezer_b", (6, lt, 0.8), "stainless_steel", (xc, 0, zf + 1.2), (0, 0, -3))]
        x += 12 + 2 * lt * math.sin(math.radians(3)) + 2
    lcav = max(L - 2 * w, x + 2)
    for it in items:
        it["pose"]["position"][0] += -lcav / 2 + 1
    parts = [box("bag", (lcav + 2 * w, Wd, H), p["material"], (0, 0, 0), wall=w),
             box("zip", (0.85 * lcav, 5, 1.0), p["zip_metal"], (0, 0, H / 2 + 0.5)),
             box("zip_pull", (12, 8, 1.5), p["zip_metal"], (0.3 * lcav, 0, H / 2 + 1.0 + 0.75))]
    return obj(parts + items)


# ------------------------------------------------------------------------------ health


@register("pill_bottle", None, "pill bottle (PP or HDPE) of tablets or capsules under a "
          "child-resistant double cap, with a cotton wad", {
              "radius": num(U(16, 28)),
              "height": num(U(50, 100)),
              "material": mat(["pp", "hdpe", "pet"], weights=[3, 3, 1]),
              "pills": count({"uniform_int": [4, 24]}),
              "capsules": flag(0.3, "capsules (1) or tablets (0)"),
              "pill_material": mat(["cellulose", "sucrose", "vegetable_oil"], "tablet or softgel",
                                   weights=[4, 2, 1]),
              "pill_size": num(U(3.5, 6), "tablet radius or capsule half-width"),
          }, F)
def pill_bottle(p, rng):
    r, h, m = p["radius"], p["height"], p["material"]
    w = 1.0
    rc, hc = r - w, h - 2 * w
    cap = _is(p, "capsules")
    ps = min(p["pill_size"], (rc - 0.5) / 2.5)
    half = (2.2 * ps, ps, ps) if cap else (ps, ps, 0.45 * ps + 0.8)  # half extents
    dx, dy = 2 * half[0] + 0.6, 2 * half[1] + 0.6
    slots = []  # a grid of places inside the cavity's circle, filled layer by layer
    for i in range(-int(rc // dx) - 1, int(rc // dx) + 2):
        for j in range(-int(rc // dy) - 1, int(rc // dy) + 2):
            x, y = i * dx, j * dy
            if math.hypot(abs(x) + half[0], abs(y) + half[1]) <= rc - 0.3:
                slots.append((x, y))
    slots.sort(key=lambda q: math.hypot(*q))
    layer_h = 2 * half[2] + 0.3
    zf = w + GAP
    n = min(p["pills"], max(1, int((hc - 0.4) // layer_h)) * len(slots))
    parts = [cyl("bottle", r, h, m, (0, 0, h / 2), wall=w)]
    for i in range(n):
        layer, k = divmod(i, len(slots))
        x, y = slots[k]
        z = zf + layer * layer_h + half[2]
        if cap:
            parts.append(ell(f"pill{i}", half, p["pill_material"], (x, y, z)))
        else:
            parts.append(cyl(f"pill{i}", half[0], 2 * half[2], p["pill_material"], (x, y, z)))
    top = zf + ((n - 1) // len(slots) + 1) * layer_h
    cw = min(8.0, h - w - top - 1.0)
    if cw > 2:
        parts.append(cyl("cotton", rc - 1.0, cw, "cotton", (0, 0, top + cw / 2 + 0.2)))
    hcap = 16.0
    parts += [cyl("outer_cap", r + 2.5, hcap, "pp", (0, 0, h + hcap / 2), wall=1.2),
              cyl("inner_cap", r + 1.0, hcap - 3.0, "pp", (0, 0, h + hcap / 2), wall=1.0)]
    return obj(parts)


@register("blister_pack", None, "blister strips of tablets or capsules (PVC base and blisters, "
          "aluminium lidding foil; some blisters emptied), loose or in a cardboard carton", {
              "strips": count({"uniform_int": [1, 2]}),
              "columns": count({"uniform_int": [3, 6]}, "blister columns (two rows each)"),
              "capsules": flag(0.3),
              "pill_size": num(U(3.5, 5.5), "tablet radius or capsule half-width"),
              "taken": count({"uniform_int": [0, 4]}, "emptied blisters", ge=0),
              "pill_material": mat(["cellulose", "sucrose", "vegetable_oil"], weights=[4, 2, 1]),
              "carton": flag(0.5),
          }, F)
def blister_pack(p, rng):
    ns = p["strips"]
    nc = p["columns"] if ns == 1 else min(p["columns"], 4)
    ps = p["pill_size"]
    cap = _is(p, "capsules")
    if cap:
        half = (2.2 * ps, ps, ps)
        bsize = (2 * half[0] + 1.6, 2 * half[1] + 1.6, 2 * half[2] + 1.2)
    else:
        half = (ps, ps, 0.45 * ps + 0.8)
        bsize = (2 * ps + 1.6, 2 * ps + 1.6, 2 * half[2] + 1.2)
    pitch_x, pitch_y = bsize[0] + 4.0, bsize[1] + 4.0
    sl, sw = nc * pitch_x + 4.0, 2 * pitch_y + 4.0
    bt, ft = 0.25, 0.03
    strip_h = ft + bt + bsize[2]
    empty = set(rng.choice(2 * nc, size=min(p["taken"], 2 * nc - 1), replace=False).tolist())
    parts = []
    for s in range(ns):
        z0 = s * (strip_h + 0.3)
        parts += [box(f"s{s}_foil", (sl, sw, ft), "aluminum", (0, 0, z0 + ft / 2)),
                  box(f"s{s}_base", (sl, sw, bt), "pvc", (0, 0, z0 + ft + bt / 2))]
        zb = z0 + ft + bt + bsize[2] / 2
        for i in range(2):
            for j in range(nc):
                x = -sl / 2 + 2.0 + pitch_x * (j + 0.5)
                y = -sw / 2 + 2.0 + pitch_y * (i + 0.5)
                k = i * nc + j
                if cap:
                    parts.append(box(f"s{s}_blister{k}", bsize, "pvc", (x, y, zb), wall=0.25))
                else:
                    parts.append(cyl(f"s{s}_blister{k}", bsize[0] / 2, bsize[2], "pvc", (x, y, zb), wall=0.25))
                if s == ns - 1 and k in empty:
                    continue
                if cap:
                    parts.append(ell(f"s{s}_pill{k}", half, p["pill_material"], (x, y, zb)))
                else:
                    parts.append(cyl(f"s{s}_pill{k}", half[0], 2 * half[2], p["pill_material"], (x, y, zb)))
    if _is(p, "carton"):
        wc = 0.5
        stack = ns * (strip_h + 0.3) - 0.3
        parts.append(box("carton", (sl + 3, sw + 3, stack + 0.6 + 2 * wc), "cardboard", (0, 0, stack / 2), wall=wc))
    return obj(parts)


@register("contact_lens_case", None, "contact-lens case (two PP wells with saline under screw caps on "
          "a base plate), optionally with a bottle of lens solution", {
              "well_radius": num(U(9, 12)),
              "well_height": num(U(10, 15)),
              "level": frac(U(0.3, 0.9)),
              "solution_bottle": flag(0.4),
              "bottle_radius": num(U(16, 24)),
              "bottle_height": num(U(55, 100)),
              "bottle_level": frac(U(0.1, 0.95)),
          }, F)
def contact_lens_case(p, rng):
    rw, hw = p["well_radius"], p["well_height"]
    xw = rw + 2.0
    parts = [box("plate", (4 * rw + 10, 2 * rw + 4, 3.0), "pp", (0, 0, 1.5))]
    for k, s in enumerate((-1, 1)):
        parts += [cyl(f"well{k}", rw, hw, "pp", (s * xw, 0, 3 + hw / 2), wall=1.0, fill="brine", level=p["level"]),
                  cyl(f"cap{k}", rw + 1.5, 8, "pp", (s * xw, 0, 3 + hw + 4), wall=1.2)]
    if _is(p, "solution_bottle"):
        rb, hb = p["bottle_radius"], p["bottle_height"]
        yb = rw + 2 + rb + 3
        rn = 8.0
        sh = 0.5 * (rb - rn) + 5
        prof = ([(0, 1.2), (rb - 3, 0), (rb - 1, 0.6), (rb, 2.5), (rb, hb)]
                + [(rn + (rb - rn) * math.cos(math.radians(15 * k)), hb + sh * math.sin(math.radians(15 * k)))
                   for k in range(1, 7)] + [(rn, hb + sh + 8)])
        zt = hb + sh + 8
        parts += [revolve("bottle", prof, "hdpe", (0, yb, 0), wall=0.8, fill="brine", level=p["bottle_level"]),
                  cyl("bottle_cap", rn + 2.5, 26, "pp", (0, yb, zt + 13), wall=1.2),
                  cone("bottle_tip", rn, 1.5, 16, "ldpe", (0, yb, zt + 1.2 + GAP + 8), wall=0.8)]
    return obj(parts)


@register("tissues_pack", None, "pocket pack of folded paper tissues in a plastic wrapper, or a pack of "
          "wet wipes (cellulose sheets and lotion) with a flip lid", {
              "length": num(U(100, 200)),
              "width": num(U(52, 110)),
              "height": num(U(18, 35)),
              "layers": count({"uniform_int": [4, 10]}),
              "wet": flag(0.3, "wet wipes (1) or dry tissues (0)"),
              "wrapper": mat(["ldpe", "pp"]),
          }, F)
def tissues_pack(p, rng):
    L, Wd, H, n = p["length"], p["width"], p["height"], p["layers"]
    wet = _is(p, "wet")
    if not wet:
        L, Wd = min(L, 120.0), min(Wd, 60.0)
    w = 0.1
    hc = H - 2 * w
    pitch = hc / n
    parts = [box("wrapper", (L, Wd, H), p["wrapper"], (0, 0, 0), wall=w)]
    for i in range(n):
        z = -hc / 2 + pitch * (i + 0.5)
        if wet:
            parts += [box(f"sheet{i}", (L - 2 * w - 2, Wd - 2 * w - 2, 0.08 * pitch), "cellulose",
                          (0, 0, z - 0.04 * pitch)),
                      box(f"lotion{i}", (L - 2 * w - 2, Wd - 2 * w - 2, 0.15 * pitch), "water",
                          (0, 0, z + 0.075 * pitch))]
        else:
            parts.append(box(f"tissue{i}", (L - 2 * w - 2, Wd - 2 * w - 2, min(0.6, 0.3 * pitch)), "paper", (0, 0, z)))
    if wet:
        parts.append(box("lid", (0.5 * L, 0.5 * Wd, 4.0), "pp", (0, 0, H / 2 + 2.0), wall=1.0))
    return obj(parts)
