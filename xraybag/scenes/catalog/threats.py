"""Threat items of PIDray: handcuffs, batons, sprayers, lighters, power banks; and explosives (the
guns are in :mod:`.guns`, the hand tools in :mod:`.tools`)."""

from __future__ import annotations

import math

from xraybag.scenes.catalog._geom import circle, helix, rect, rings, rounded
from xraybag.scenes.catalog._parts import X, box, cyl, extrude, obj, revolve, sweep
from xraybag.scenes.catalog.registry import U, flag, frac, mat, num, register

F = "threats"
CLEAR = 0.15  # mm between round parts nested in one another


@register("handcuffs", "handcuffs", "two steel cuffs: ratchet rings (teeth on the swinging strand) "
          "held by hollow lock cases with keyholes and pawls, joined by a chain of interlocking links", {
              "cuff_radius": num(U(30, 38), "mid radius of a cuff"),
              "chain_length": num(U(20, 45)),
              "metal": mat(["steel", "stainless_steel", "nickel"]),
          }, F)
def handcuffs(p, rng):
    R, m = p["cuff_radius"], p["metal"]
    ro, ri, tb = R + 4, R - 4, 4.5  # the ring's outer and inner radius, thickness
    step = 5.0  # degrees between the outline's points on the outer circle (shared with the lock case)
    k = max(1, round(math.degrees(math.asin(11.0 / ro)) / step))
    beta = k * step
    hb = ro * math.sin(math.radians(beta))  # half height of the lock case
    lx = 22.0  # the lock case's reach beyond the ring
    rw, rho, a = 1.5, 4.0, 3.0  # link wire radius, end radius and half straight (centre line)
    pitch = 2 * a + rho
    nl = max(2, round(p["chain_length"] / pitch) + 1)
    span = (nl - 1) * pitch + 2 * (a + rho + rw) + 1.0  # between the lock cases
    parts = []
    for side, tag in ((1, "right"), (-1, "left")):
        cx = side * (span / 2 + lx + ro)

        def at(ang, r, cx=cx, side=side):  # at angle ang (degrees, mirrored for the left cuff) from the centre
            t = math.radians(ang)
            return (cx + side * r * math.cos(t), r * math.sin(t))

        outer = []
        ang = 180 - beta
        teeth = (180 - beta - 60, 180 - beta - 6)
        for i in range(int(360 / step)):
            g = ang - i * step
            if teeth[0] <= g <= teeth[1]:
                outer += [at(g, ro), at(g - step / 2, ro - 1.2)]
            else:
                outer.append(at(g, ro))
        hole = [at(360 * i / 96, ri) for i in range(96)]
        parts.append(extrude(f"cuff_{tag}", outer, tb, m, holes=[hole]))
        xl = cx - side * (ro + lx)
        case = [(xl + side * 3, -hb), (xl, -hb + 3), (xl, hb - 3), (xl + side * 3, hb)] + [at(180 - beta + i * step, ro) for i in range(2 * k + 1)]
        kx = xl + side * 8
        key = rings(circle((kx, 1.0), 2.2, 24) + rect(kx - 1.2, -4.5, kx + 1.2, 1.0))[0]
        parts.append(extrude(f"lock_{tag}", case, 12.0, m, holes=[key], bevel=1.0, wall=1.2))
        px = cx - side * (ro + 1.2 + 0.5)
        parts.append(extrude(f"pawl_{tag}", [(px, -4), (px - side * 7, -4), (px - side * 7, 4), (px, 4)], 6.0,
                             "steel"))
    for i in range(nl):
        x = (i - (nl - 1) / 2) * pitch
        pts = [(x + a + rho * math.sin(t), rho * math.cos(t)) for t in [math.pi * j / 10 for j in range(11)]]
        pts += [(x - a - rho * math.sin(t), -rho * math.cos(t)) for t in [math.pi * j / 10 for j in range(11)]]
        path = [(u, v, 0.0) for u, v in pts] if i % 2 == 0 else [(u, 0.0, v) for u, v in pts]
        parts.append(sweep(f"link{i}", path, rw, m, closed=True, pos=(x, 0, 0)))
    return obj(parts)


@register("baton", "baton", "telescopic baton: nested steel tubes (collapsed inside the handle or "
          "extended), a grip sleeve over the handle tube, an end cap and a steel ball tip on its shank", {
              "length": num(U(200, 480), "overall length (short: collapsed)"),
              "grip_radius": num(U(13, 16)),
              "grip_material": mat(["rubber", "nylon", "leather"]),
          }, F)
def baton(p, rng):
    L, rg = p["length"], p["grip_radius"]
    r1 = rg - 3.0  # handle tube
    r2 = r1 - 1.2 - CLEAR  # middle tube
    r3 = r2 - 1.0 - CLEAR  # tip tube
    rt = r3 + 1.0  # ball
    cap, ov = 8.0, 22.0
    collapsed = L < 280
    hl = L - cap - 14 if collapsed else min(220.0, max(160.0, 0.42 * L))
    parts = [
        revolve("end_cap", [(0, 0), (rg - 0.5, 0), (rg - 0.5, 4), (rg - 2.5, 7), (0, cap)], "steel", (0, 0, 0), "-x"),
        sweep("grip", [(0, 0, 0), (0.62 * hl, 0, 0)], rg, p["grip_material"], inner_radius=r1 + CLEAR),
        sweep("handle_tube", [(0, 0, 0), (hl, 0, 0)], r1, "steel", inner_radius=r1 - 1.2),
    ]
    if collapsed:
        m0, m1 = 2.0, hl - 1.0
        t0, t1 = 3.0, hl + 0.3
    else:
        rest = L - hl - cap - 12
        lm = (rest + 2 * ov) / 2
        m0, m1 = hl - ov, hl - ov + lm
        t0, t1 = m1 - ov, m1 - ov + lm
    parts += [sweep("middle_tube", [(m0, 0, 0), (m1, 0, 0)], r2, "steel", inner_radius=r2 - 1.0),
              sweep("tip_tube", [(t0, 0, 0), (t1, 0, 0)], r3, "steel", inner_radius=r3 - 1.0)]
    zc = 10 + math.sqrt(rt * rt - r3 * r3)
    t_back = math.degrees(math.asin(r3 / rt))
    rs = r3 - 1.0 - CLEAR  # the shank in the tip tube's bore
    ball = [(0, 0), (rs, 0), (rs, 10.0), (r3, 10.0)]
    ball += [(rt * math.sin(math.radians(t)), zc - rt * math.cos(math.radians(t))) for t in range(10, 180, 10)
             if t > t_back + 2]
    ball.append((0, zc + rt))
    parts.append(revolve("tip", ball, "steel", (t1 - 10.0, 0, 0), "x"))
    return obj(parts)


@register("pepper_spray", "sprayer", "pepper or defence spray: aluminium aerosol can (domed base, "
          "shoulder, valve cup) with the liquid, plastic actuator with its nozzle, belt clip", {
              "radius": num(U(12, 20)),
              "height": num(U(70, 130)),
              "liquid": mat(["water", "isopropanol", "vegetable_oil", "ethanol"]),
              "level": frac(U(0.3, 0.9)),
              "can_material": mat(["aluminum", "steel"], weights=[3, 1]),
          }, F)
def pepper_spray(p, rng):
    r, h = p["radius"], p["height"]
    d = 0.25 * r  # the dome pushed into the base
    rc = 0.65 * r  # valve cup
    sh = 0.3 * r + 4  # shoulder
    prof = [(0, d), (0.35 * r, 0.9 * d), (0.65 * r, 0.6 * d), (0.85 * r, 0.25 * d), (r - 1.8, 0), (r - 0.6, 0.2),
            (r, 1.5), (r, h - sh), (0.96 * r, h - 0.6 * sh), (0.85 * r, h - 0.3 * sh), (rc + 1.2, h - 2.5),
            (rc + 1.2, h - 1.0), (rc, h), (rc - 1.5, h - 1.2), (0, h - 1.2)]
    ra, ha = rc + 1.0, 14.0
    act = rounded(circle((0, 0), ra, 64) + rect(ra - 3, -2.5, ra + 5, 2.5), 1.0)
    return obj(
        revolve("can", prof, p["can_material"], (0, 0, 0), "z", wall=0.45, fill=p["liquid"], level=p["level"]),
        extrude("actuator", rings(act)[0], ha, "pp", z=h + ha / 2, bevel=1.5),
        extrude("clip", [(-r - 3.5, 0.2 * h), (-r - 2.0, 0.2 * h), (-r - 2.0, 0.78 * h), (-r, 0.78 * h),
                         (-r, 0.82 * h), (-r - 3.5, 0.82 * h)], 10.0, "pp",
                pos=(-r - 1.75, 0, 0.51 * h), rot=(90, 0, 0)),
    )


@register("lighter", "lighter", "pocket lighter: plastic (or brass) tank of liquefied gas with the "
          "flint tube, spring and flint, the steel striker wheel, the brass burner valve, a sheet "
          "steel hood", {
              "width": num(U(22, 27)),
              "height": num(U(55, 72)),
              "depth": num(U(10, 13)),
              "body_material": mat(["pp", "abs", "pmma", "brass"], weights=[3, 2, 1, 1]),
              "level": frac(U(0.2, 0.95), "gas fill"),
          }, F)
def lighter(p, rng):
    w, h, d = p["width"], p["height"], p["depth"]  # lying on its side: the height along x
    metal_body = p["body_material"] == "brass"
    yf, yv = w / 4 - 1.0, -w / 4  # flint and valve
    body = rounded(rect(0, -w / 2, h, w / 2), 3.0) - rect(h - 24, yf - 2.5, h + 5, yf + 2.5)
    rw_, R = 0.35, 1.7
    ht = 12.0  # the hood over the top
    hood = rect(h, -w / 2 + 0.5, h + ht, w / 2 - 0.5) - rect(h - 1, -w / 2 + 1.3, h + ht - 1, w / 2 - 1.3)
    hood_o, _ = rings(hood)
    plate = [(h, -w / 2 + 0.5), (h + ht, -w / 2 + 0.5), (h + ht, w / 2 - 0.5), (h, w / 2 - 0.5)]
    return obj(
        extrude("body", rings(body)[0], d, p["body_material"], bevel=0.3 * d, wall=0.6 if metal_body else 1.2,
                fill="gasoline", level=p["level"]),  # gasoline stands in for butane
        sweep("flint_spring", helix((h - 24 + 0.3 + rw_, yf, 0), (1, 0, 0), R, 1.6, 16.0), rw_, "steel"),
        cyl("flint", 1.2, 7.5, "iron", (h + 1.0 - 3.75, yf, 0), X),
        cyl("wheel", 4.0, d - 1.2, "steel", (h + 5.0, yf, 0)),
        sweep("valve", [(h, yv, 0), (h + 7, yv, 0)], 1.6, "brass", inner_radius=0.5),
        extrude("hood", hood_o, d - 0.8, "steel"),
        extrude("hood_a", plate, 0.4, "steel", z=d / 2 - 0.2),
        extrude("hood_b", plate, 0.4, "steel", z=-d / 2 + 0.2),
    )


@register("battery_pack", "power_bank", "power bank: a rounded plastic or aluminium case (an extruded "
          "outline with bevelled edges) holding lithium-ion cells (pouch or 18650 in their steel cans), a "
          "charging board with its inductor and chips, USB-A and USB-C sockets and a button", {
              "length": num(U(90, 150)),
              "width": num(U(60, 82)),
              "thickness": num(U(14, 26)),
              "corner_radius": num(U(4, 14), "radius of the case's corners seen from above"),
              "shell_material": mat(["abs", "pc", "aluminum"]),
              "cylindrical": flag(0.5, "18650 cells where they fit (1) or a pouch (0)"),
          }, F)
def battery_pack(p, rng):
    L, W, T = p["length"], p["width"], p["thickness"]
    wall = 1.0 if p["shell_material"] == "aluminum" else 1.6
    r = min(p["corner_radius"], W / 2 - 2)
    outline, _ = rings(rounded(rect(-L / 2, -W / 2, L / 2, W / 2), r))
    parts = [extrude("case", outline, T, p["shell_material"], bevel=min(2.0, T / 6), wall=wall)]
    # the cavity, with the rounded corners kept clear: cells and board stay within the straight walls
    ci, wi, ti = L / 2 - wall - r * 0.3 - 0.5, W / 2 - wall - r * 0.3 - 0.5, T / 2 - wall - 0.3
    board_len = 22.0
    cell_len = 2 * ci - board_len - 1.0
    x0 = -ci
    n = int((2 * wi) // 18.6)
    if p["cylindrical"] > 0.5 and 2 * ti >= 18.4 and n >= 1 and cell_len >= 65:
        for i in range(n):
            y = (i - (n - 1) / 2) * 18.6
            parts.append(cyl(f"cell{i}_can", 9, 65, "steel", (x0 + 32.5, y, 0), X, wall=0.25))
            parts.append(cyl(f"cell{i}", 9 - 0.25 - CLEAR, 65 - 0.5 - 2 * CLEAR, "li_ion_cell", (x0 + 32.5, y, 0), X))
        cell_end = x0 + 65
    else:
        h = min(2 * ti - 1.0, 12.0)
        parts.append(box("pouch", (cell_len, 2 * wi - 1, h), "li_ion_cell", (x0 + cell_len / 2, 0, 0)))
        parts.append(box("pouch_tabs", (3, 2 * wi - 12, 0.3), "nickel", (x0 + cell_len + 1.6, 0, 0)))
        cell_end = x0 + cell_len + 3.2
    bl = ci - cell_end - 0.5
    bx = cell_end + 0.5 + bl / 2
    zb = -ti + 3.6
    parts += [
        box("board", (bl, 2 * wi - 2, 1.6), "fr4", (bx, 0, zb)),
        # on the board: the inductor and charger chip by the cells, the sockets and button at the end
        box("inductor", (6.0, 6.0, 3.0), "iron", (cell_end + 4.0, -wi / 3, zb + 2.3)),
        box("charger_chip", (4.0, 4.0, 0.9), "epoxy", (cell_end + 3.0, wi / 4, zb + 1.25)),
        box("usb_a", (12.0, 12.0, 4.5), "stainless_steel", (ci - 6.0, wi / 3, zb + 3.1), wall=0.3),
        box("usb_c", (7.0, 8.6, 3.2), "stainless_steel", (ci - 3.5, -wi / 3, zb + 2.45), wall=0.3),
        box("button", (3.0, 4.0, 3.0), "pc", (ci - 3.0, 0, zb + 2.4)),
    ]
    return obj(parts)


@register("sheet_explosive", "explosive", "plastic sheet explosive (a deformable sheet draped over "
          "the contents)", {
              "length": num(U(100, 250)),
              "width": num(U(80, 180)),
              "thickness": num(U(2, 8)),
              "material": mat(["semtex", "c4", "petn"]),
          }, F)
def sheet_explosive(p, rng):
    return {"sheet": {"size": [p["length"], p["width"]], "thickness": p["thickness"]},
            "material": p["material"]}


@register("pipe_bomb", "explosive", "pipe bomb: steel pipe with end caps, filled with a low "
          "explosive, wires to a battery", {
              "length": num(U(120, 250)),
              "radius": num(U(15, 30)),
              "filler": mat(["black_powder", "anfo", "potassium_chlorate"]),
          }, F)
def pipe_bomb(p, rng):
    L, r = p["length"], p["radius"]
    return obj(
        cyl("pipe", r, L, "steel", (0, 0, 0), X, wall=3.5, fill=p["filler"], level=0.95),
        cyl("cap_a", r + 3, 14, "iron", (-L / 2 - 7, 0, 0), X),
        cyl("cap_b", r + 3, 14, "iron", (L / 2 + 7, 0, 0), X),
        box("battery", (50, 26, 17), "alkaline_cell", (0, 0, r + 8.5)),
        box("wire", (L / 2, 2, 2), "copper", (-L / 4, 0, r + 18)),
    )
