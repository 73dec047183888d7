"""Toiletries: toothbrush, toothpaste, deodorants, shampoo and perfume bottles, razors, shavers, hair
dryer and straightener, hairbrush (the family ``personal``, with :mod:`.personal`).

Every entry has internal structure. Bottles and cans are solids of revolution (``revolve``: necks,
shoulders, domed bases), handles extruded outlines (``extrude``), cords, springs and heater coils
tubes along paths (``sweep``). Labels: none (clutter), except the aerosol can (``spray_can``, as
the containers family's aerosol cans).
"""

from __future__ import annotations

import math

from xraybag.scenes.catalog._parts import X, Y, box, cone, cyl, obj, sph
from xraybag.scenes.catalog.personal_parts import (
    GAP,
    F,
    _arc,
    _cell,
    _cord,
    _ellipse,
    _helix,
    _is,
    _motor,
    _rnd,
    _stadium,
    extrude,
    revolve,
)
from xraybag.scenes.catalog.registry import U, count, flag, frac, mat, num, register


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
