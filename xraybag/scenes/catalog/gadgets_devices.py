"""The gadgets family, continued: drives, lights, speakers, calculators, watches, staplers, toy cars."""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register
from xraybag.scenes.catalog._parts import X, Y, box, cone, cyl, obj
from xraybag.scenes.catalog._gadget_parts import inside

F = "gadgets"


@register("external_drive", None, "portable drive: a 2.5-inch hard disk (aluminium chassis and platters, steel "
          "cover, spindle motor, pivot and actuator arm, voice-coil magnets) on a USB board in an aluminium or "
          "plastic enclosure, or a solid-state drive (board with flash packages and a controller under a "
          "thermal pad)", {
              "ssd": flag(0.35, "solid state (1) or hard disk (0)"),
              "platters": count({"uniform_int": [1, 2]}, "hard disk platters"),
              "platter_material": mat(["aluminum", "glass"], weights=[3, 1]),
              "ssd_length": num(U(70, 105)),
              "ssd_width": num(U(45, 62)),
              "enclosure": mat(["aluminum", "abs", "pc"], weights=[2, 2, 1]),
          }, F)
def external_drive(p, rng):
    we = 1.0 if p["enclosure"] == "aluminum" else 1.8
    if p["ssd"]:
        L, W = p["ssd_length"], p["ssd_width"]
        H = 2 * we + 5.5
        zf = -H / 2 + we
        cl = L - 2 * we - 2
        parts = [box("enclosure", (L, W, H), p["enclosure"], (0, 0, 0), wall=we)]
        inner = [box("board", (cl - 10, W - 2 * we - 4, 1.0), "fr4", (-5, 0, zf + 0.1 + 0.5))]
        zc = zf + 1.2 + 0.65
        nand = 2 if L < 85 else 3
        x = -L / 2 + we + 2 + 7
        for k in range(nand):
            inner.append(box(f"flash{k}", (12, 16, 1.3), "epoxy", (x, 0, zc)))
            x += 14.5
        inner += [box("controller", (9, 9, 1.3), "epoxy", (x, 0, zc)),
                  box("controller_die", (5, 5, 0.3), "silicon", (x, 0, zc + 0.65 + 0.15)),
                  box("thermal_pad", (x + 6 - (-L / 2 + we + 2), W - 2 * we - 10, 1.5), "silicone",
                      ((x + 6 + (-L / 2 + we + 2)) / 2, 0, zc + 0.65 + 0.3 + 0.05 + 0.75))]
        sock = box("usb_socket", (7.5, 9.0, 3.3), "stainless_steel", (cl / 2 - 4.25, 0, zf + 0.1 + 1.65), wall=0.3)
        inner.append(inside(sock, box("tongue", (6.5, 6.6, 0.7), "pp", (0, 0, 0))))
        inside(parts[0], inner)
        return obj(parts)
    # hard disk: drive frame x in [-50, 50], y in [-35, 35]
    n = int(p["platters"])
    DH = 9.5
    L, W = 100.0 + 2 * we + 12.0, 70.0 + 2 * we + 2.0
    H = DH + 1.2 + 0.2 + 0.2 + 2 * we + 0.1
    zf = -H / 2 + we
    xd = -5.0  # drive centre in the enclosure
    zd = zf + 0.1 + 1.2 + 0.2 + (DH - 0.5) / 2
    parts = [box("enclosure", (L, W, H), p["enclosure"], (0, 0, 0), wall=we)]
    chassis = box("chassis", (100, 70, DH - 0.5), "aluminum", (xd, 0, zd), wall=1.0)
    zb = -(DH - 0.5) / 2 + 1.0
    pc = (-14.0, 0.0)
    pm = p["platter_material"]
    drive = [cyl("spindle_motor", 10, 2.5, "steel", (pc[0], pc[1], zb + 0.1 + 1.25)),
             cyl("platter0", 32.5, 0.8, pm, (pc[0], pc[1], zb + 2.7 + 0.4))]
    top = zb + 3.5
    if n == 2:
        drive += [cyl("spacer", 12, 1.0, "steel", (pc[0], pc[1], top + 0.05 + 0.5)),
                  cyl("platter1", 32.5, 0.8, pm, (pc[0], pc[1], top + 1.1 + 0.4))]
        top += 1.9
    drive.append(cyl("clamp", 8, 0.8, "steel", (pc[0], pc[1], top + 0.05 + 0.4)))
    pv = np.array([32.0, -14.0])
    tgt = np.array([0.0, 14.0])
    d = (tgt - pv) / np.linalg.norm(tgt - pv)
    ang = math.degrees(math.atan2(d[1], d[0]))
    a0 = pv + d * 4.2
    arm_len = float(np.linalg.norm(tgt - a0))
    za = top + 0.1 + 0.35
    zc_top = (DH - 0.5) / 2 - 1.0
    drive += [cyl("pivot", 4.0, zc_top - zb - 0.2, "steel", (pv[0], pv[1], (zb + zc_top) / 2)),
              box("arm", (arm_len, 6, 0.7), "aluminum", (*(a0 + tgt) / 2, za), (0, 0, ang))]
    vc = pv - d * 12.0
    mt = min(1.5, zc_top - (za + 0.35) - 0.2)
    drive += [box("coil", (8, 8, 0.7), "copper", (vc[0], vc[1], za), (0, 0, ang)),
              box("vcm_magnet0", (9, 9, 2.0), "magnet", (vc[0], vc[1], zb + 0.1 + 1.0)),
              box("vcm_magnet1", (9, 9, mt), "magnet", (vc[0], vc[1], za + 0.35 + 0.1 + mt / 2))]
    inside(parts[0], [
        inside(chassis, drive),
        box("cover", (100, 70, 0.5), "steel", (xd, 0, zd + (DH - 0.5) / 2 + 0.25)),
        box("board", (L - 2 * we - 2, W - 2 * we - 2, 1.2), "fr4", (0, 0, zf + 0.1 + 0.6)),
        inside(box("usb_socket", (6, 8.5, 3.3), "steel", (xd + 50 + 0.3 + 3, 0, zf + 1.4 + 1.65), wall=0.3),
                box("tongue", (5, 6.5, 0.7), "pp", (0, 0, 0))),
    ])
    return obj(parts)


@register("flashlight", None, "flashlight: aluminium tube with AA alkaline cells or an 18650 li-ion cell (steel "
          "can), a steel spring, a head with an LED board, a reflector and a glass lens, a tail switch and a "
          "steel clip", {
              "li_ion": flag(0.35, "an 18650 li-ion cell (1) or AA alkaline cells (0)"),
              "aa_cells": count({"uniform_int": [1, 3]}),
              "head_flare": num(U(1.0, 1.7), "head radius over tube radius", unit=""),
              "head_length": num(U(18, 34)),
              "body_material": mat(["aluminum", "abs", "stainless_steel"], weights=[5, 2, 1]),
              "clip": flag(0.6, "a steel pocket clip (1) or none (0)"),
          }, F)
def flashlight(p, rng):
    bm = p["body_material"]
    w = {"aluminum": 1.2, "abs": 1.8, "stainless_steel": 0.8}[bm]
    if p["li_ion"]:
        rc, lc, nc = 9.2, 65.0, 1
    else:
        rc, lc, nc = 7.25, 50.5, int(p["aa_cells"])
    rt = rc + 0.5 + w
    spring_l = 8.0
    lt = nc * lc + (nc - 1) * 0.2 + spring_l + 0.6 + 2 * w
    rh = max(rt * p["head_flare"], rt + 0.5)
    lh = p["head_length"]
    parts = []
    tube_ = cyl("tube", rt, lt, bm, (0, 0, 0), X, wall=w)
    inner = []
    x = -lt / 2 + w + 0.1
    # the tube's children lie in its own frame, where its axis is z
    inner.append(cyl("spring", rc - 0.5, spring_l, "steel", (0, 0, x + spring_l / 2), wall=0.6))
    x += spring_l + 0.2
    for i in range(nc):
        if p["li_ion"]:
            c = cyl(f"cell{i}", rc, lc, "steel", (0, 0, x + lc / 2), wall=0.25)
            inner.append(inside(c, cyl("jelly_roll", rc - 0.35, lc - 0.7, "li_ion_cell")))
        else:
            inner.append(cyl(f"cell{i}", rc, lc, "alkaline_cell", (0, 0, x + lc / 2)))
        x += lc + 0.2
    parts.append(inside(tube_, inner))
    # head: a cone from the tube's radius to the head's, along +x
    hw = 1.2 if bm != "abs" else 1.8
    head = cone("head", rt, rh, lh, bm, (lt / 2 + lh / 2 + 0.05, 0, 0), (0, 90, 0), wall=hw)
    s = (rh - rt) / lh
    shift = hw * math.sqrt(1 + s * s)

    def r_in(z):  # the head's cavity radius at z from its bottom
        return rt + s * z - shift

    zl = lh - hw - 1.6  # lens from zl to zl + 1.5
    zr0 = hw + 1.5 + 0.2  # the reflector's bottom, above the LED board
    zr1 = zl - 0.2
    hr = zr1 - zr0
    rb_ref = min(4.0, r_in(zr0) - 0.5)
    rt_ref = r_in(zr1) - 0.5
    hinner = [
        cyl("led_board", r_in(hw + 0.05) - 0.3, 1.4, "aluminum", (0, 0, -lh / 2 + hw + 0.05 + 0.7)),
        cyl("lens", r_in(zl) - 0.3, 1.5, "glass", (0, 0, -lh / 2 + zl + 0.75)),
    ]
    if hr > 3 and rb_ref > 1.5:
        refl = cone("reflector", rb_ref, rt_ref, hr, "aluminum", (0, 0, -lh / 2 + zr0 + hr / 2), wall=0.4)
        hinner.append(inside(refl, box("led", (2.0, 2.0, 0.6), "alumina", (0, 0, -hr / 2 + 0.4 + 0.05 + 0.3))))
    parts.append(inside(head, hinner))
    # tail cap with the switch
    tl = 2 * w + 12.5
    tail = cyl("tail_cap", rt, tl, bm, (-lt / 2 - tl / 2 - 0.05, 0, 0), X, wall=w)
    parts.append(inside(tail, cyl("switch", min(5.0, rt - w - 0.5), 6, "abs", (0, 0, 0)),
                         cyl("switch_spring", min(3.5, rt - w - 0.8), 5.5, "steel", (0, 0, 0), wall=0.4)))
    tail["parts"][1]["pose"]["position"] = [0.0, 0.0, tl / 2 - w - 0.05 - 2.75]
    tail["parts"][0]["pose"]["position"] = [0.0, 0.0, -tl / 2 + w + 0.05 + 3.0]
    if p["clip"]:
        parts.append(box("clip", (0.45 * lt, 6, 0.8), "steel", (-lt / 2 + 0.225 * lt, 0, rt + 0.45)))
    return obj(parts)


@register("bluetooth_speaker", None, "cylindrical portable speaker: plastic or rubber tube holding two drivers "
          "(magnet, steel plate, cone), two 18650 li-ion cells in steel cans and a board, with a passive "
          "radiator (rubber with a steel weight) at each end", {
              "radius": num(U(28, 42)),
              "extra_length": num(U(0, 40), "length beyond the shortest that holds the parts", ge=0),
              "body_material": mat(["abs", "pc", "rubber", "silicone"], weights=[3, 2, 1, 1]),
          }, F)
def bluetooth_speaker(p, rng):
    R = p["radius"]
    w = 2.0
    Rc = R - w
    L = 2 * (36 + 1.24 * Rc + w + 1) + p["extra_length"]
    parts = [cyl("body", R, L, p["body_material"], (0, 0, 0), X, wall=w)]
    inner = []  # in the body's frame: its axis is z
    zd = L / 2 - w - 0.62 * Rc - 0.6  # the drivers' centres along the axis (z)
    for k, sz in enumerate((-1, 1)):
        z = sz * zd
        inner += [
            cyl(f"magnet{k}", 0.35 * Rc, 0.2 * Rc, "magnet", (-0.35 * Rc, 0, z), X),
            cyl(f"plate{k}", 0.38 * Rc, 0.05 * Rc, "steel", (-0.225 * Rc, 0, z), X),
            cone(f"cone{k}", 0.3 * Rc, 0.62 * Rc, 0.72 * Rc, "pet", (0.17 * Rc, 0, z), (0, 90, 0), wall=0.4),
        ]
    for k, sy in enumerate((-1, 1)):
        c = cyl(f"cell{k}", 9.2, 65, "steel", (-0.12 * Rc, sy * 9.7, 0), wall=0.25)
        inner.append(inside(c, cyl("jelly_roll", 8.85, 64.3, "li_ion_cell")))
    inner.append(box("board", (1.4, 0.7 * Rc, 70), "fr4", (-0.12 * Rc + 9.2 + 0.3 + 0.7, 0, 0)))
    inside(parts[0], inner)
    for k, sz in enumerate((-1, 1)):
        parts += [cyl(f"radiator{k}", 0.8 * R, 3, "rubber", (sz * (L / 2 + 1.55), 0, 0), X),
                  cyl(f"radiator_weight{k}", 0.35 * R, 1.5, "steel", (sz * (L / 2 + 3.1 + 0.8), 0, 0), X)]
    return obj(parts)


@register("calculator", None, "pocket or desk calculator: plastic case around a board, a silicone keypad over a "
          "contact sheet, a glass LCD over a coin cell (steel can), steel screws, optionally a solar cell", {
              "length": num(U(120, 175)),
              "width": num(U(72, 92)),
              "thickness": num(U(10, 18)),
              "solar": flag(0.5, "a solar cell on top (1) or none (0)"),
              "case_material": mat(["abs", "pc", "ps"]),
          }, F)
def calculator(p, rng):
    L, W, T = p["length"], p["width"], p["thickness"]
    w = 1.5
    zf = -T / 2 + w
    x0, x1 = -L / 2 + w + 0.5, L / 2 - w - 0.5
    parts = [box("case", (L, W, T), p["case_material"], (0, 0, 0), wall=w)]
    kl = 0.6 * L
    ll = 0.24 * L
    inner = [
        box("board", (L - 2 * w - 10, W - 2 * w - 10, 1.0), "fr4", (0, 0, zf + 0.1 + 0.5)),
        box("contact_sheet", (kl, W - 2 * w - 12, 0.25), "pet", (x0 + 5 + kl / 2, 0, zf + 1.2 + 0.125)),
        box("keypad", (kl, W - 2 * w - 12, 2.5), "silicone", (x0 + 5 + kl / 2, 0, zf + 1.5 + 1.25)),
        box("lcd", (ll, W - 2 * w - 14, 1.8), "glass", (x1 - 5 - ll / 2, 0, zf + 4.7 + 0.9)),
    ]
    coin = cyl("coin_cell", 10, 3.2, "steel", (x1 - 5 - ll / 2, 0, zf + 1.2 + 1.6), wall=0.25)
    inner.append(inside(coin, cyl("cell", 9.6, 2.6, "li_ion_cell")))
    for i, (sx, sy) in enumerate(((-1, -1), (-1, 1), (1, -1), (1, 1))):
        inner.append(cyl(f"screw{i}", 1.2, 5, "steel",
                         (sx * (L / 2 - w - 2.4), sy * (W / 2 - w - 2.4), zf + 0.05 + 2.5)))
    inside(parts[0], inner)
    if p["solar"]:
        parts.append(box("solar_cell", (min(36, ll), 11, 0.6), "silicon", (x1 - 5 - ll / 2, W / 2 - 12, T / 2 + 0.35)))
    return obj(parts)


@register("smartwatch", None, "smartwatch or fitness watch: metal or plastic case with a sapphire or glass "
          "cover, a display, a li-ion cell, a board with a shield, a vibration motor (steel can, magnet), a "
          "crown; silicone, leather or nylon straps with spring bars and a buckle, or a steel link bracelet", {
              "size": num(U(36, 48), "case length"),
              "height": num(U(9.5, 12.5)),
              "strap_length": num(U(65, 100), "each side"),
              "case_material": mat(["aluminum", "stainless_steel", "titanium", "pc"], weights=[3, 2, 1, 2]),
              "cover": mat(["glass", "alumina"], "alumina is sapphire"),
              "band": mat(["silicone", "leather", "nylon_fabric", "stainless_steel"], weights=[4, 2, 2, 1]),
          }, F)
def smartwatch(p, rng):
    s, h = p["size"], p["height"]
    cx = 0.86 * s
    w = 1.0 if p["case_material"] != "pc" else 1.6
    g = 1.2
    hc = h - g
    parts = [box("case", (cx, s, hc), p["case_material"], (0, 0, 0), wall=w),
             box("cover", (cx - 1, s - 1, g), p["cover"], (0, 0, hc / 2 + g / 2))]
    zf, zt = -hc / 2 + w, hc / 2 - w
    ix, iy = cx - 2 * w - 1, s - 2 * w - 1
    tcell = max(1.5, (zt - zf) - 0.6 - 0.2 - 1.2 - 0.4)
    inner = [
        box("display", (ix, iy, 0.6), "glass", (0, 0, zt - 0.1 - 0.3)),
        box("cell", (0.7 * ix, 0.55 * iy, tcell), "li_ion_cell", (0, 0.2 * iy, zf + 0.1 + 1.1 + tcell / 2)),
        box("board", (ix, iy, 0.8), "fr4", (0, 0, zf + 0.1 + 0.4)),
        box("shield", (0.5 * ix, 0.3 * iy, 0.3), "stainless_steel", (-0.2 * ix, -0.3 * iy, zf + 0.95 + 0.15)),
    ]
    vib = box("vibration_motor", (0.3 * ix, 0.3 * iy, min(3.5, tcell)), "steel",
              (0.3 * ix, -0.3 * iy, zf + 1.1 + min(3.5, tcell) / 2), wall=0.3)
    inner.append(inside(vib, box("magnet", (0.3 * ix - 1.4, 0.3 * iy - 2.0, min(3.5, tcell) - 1.0), "magnet")))
    inside(parts[0], inner)
    parts += [cyl("sensor_window", 0.3 * s, 1.0, "glass", (0, 0, -hc / 2 - 0.55)),
              cyl("crown", 3.2, 3.5, "stainless_steel", (cx / 2 + 1.8, 0.15 * s, 0), X),
              box("button", (1.6, 7, 2.5), "stainless_steel", (cx / 2 + 0.85, -0.2 * s, 0))]
    sw = min(0.58 * s, cx - 2)
    Ls = p["strap_length"]
    band = p["band"]
    for k, sy in enumerate((-1, 1)):
        parts.append(cyl(f"spring_bar{k}", 0.75, sw + 1, "steel", (0, sy * (s / 2 + 0.8), -0.5), X))
        y0 = s / 2 + 1.65
        if band == "stainless_steel":
            nl, gap = 7, 0.4
            ll = (Ls - (nl - 1) * gap) / nl
            for i in range(nl):
                parts.append(box(f"link{k}_{i}", (sw, ll, 3.2), band, (0, sy * (y0 + i * (ll + gap) + ll / 2), -0.5)))
        else:
            t = 2.2 if band == "nylon_fabric" else 3.0
            parts.append(box(f"strap{k}", (sw, Ls, t), band, (0, sy * (y0 + Ls / 2), -0.5)))
    if band != "stainless_steel":
        yb = s / 2 + 1.65 + Ls + 0.1  # the buckle's frame beyond strap1's end
        bw = sw + 4
        parts += [box("buckle_end", (bw, 2.5, 3.6), "stainless_steel", (0, yb + 1.25, -0.5)),
                  box("buckle_side0", (2.5, 14, 3.6), "stainless_steel", (-bw / 2 + 1.25, yb + 2.5 + 7, -0.5)),
                  box("buckle_side1", (2.5, 14, 3.6), "stainless_steel", (bw / 2 - 1.25, yb + 2.5 + 7, -0.5)),
                  box("buckle_bar", (bw, 2.5, 3.6), "stainless_steel", (0, yb + 2.5 + 14 + 1.25, -0.5))]
    return obj(parts)


@register("stapler", None, "desk stapler: steel base plate on a rubber foot, steel anvil, steel magazine "
          "holding a strip of staples, the pusher and its spring, hinge brackets and pin, and a plastic, zinc "
          "or steel top with the driver blade and a leaf spring", {
              "length": num(U(110, 190)),
              "width": num(U(28, 40), "base width"),
              "handle_material": mat(["abs", "zinc", "steel", "pp"], weights=[3, 2, 2, 1]),
              "staples_left": num(U(0.1, 0.9), "fraction of the magazine holding staples", unit=""),
          }, F)
def stapler(p, rng):
    L, Wb = p["length"], p["width"]
    hm = p["handle_material"]
    parts = [
        box("foot", (L - 6, Wb - 4, 3), "rubber", (0, 0, 1.5)),
        box("base", (L, Wb, 1.5), "steel", (0, 0, 3.75)),
        box("anvil", (12, 12, 1.0), "steel", (L / 2 - 12, 0, 5.0)),
    ]
    Lm = L - 22
    xm = -L / 2 + 12 + Lm / 2
    mag = box("magazine", (Lm, 12, 12), "steel", (xm, 0, 12.5), wall=0.6)
    cav = Lm / 2 - 0.6
    sl = max(6.0, p["staples_left"] * (Lm - 30))
    sx1 = cav - 0.1
    sx0 = sx1 - sl
    px1 = sx0 - 0.1
    px0 = px1 - 8
    spl = px0 - 0.1 - (-cav + 0.1)
    inner = [box("staples", (sl, 10.4, 9), "steel", ((sx0 + sx1) / 2, 0, -0.5)),
             box("pusher", (8, 10, 9), "pp", ((px0 + px1) / 2, 0, -0.5))]
    if spl > 2:
        inner.append(cyl("spring", 2.5, spl, "steel", ((-cav + 0.1 + px0 - 0.1) / 2, 0, 0), X, wall=0.3))
    parts.append(inside(mag, inner))
    parts += [
        box("bracket0", (14, 1.5, 14.4), "steel", (-L / 2 + 7, -(Wb / 2 - 0.75), 4.5 + 0.05 + 7.2)),
        box("bracket1", (14, 1.5, 14.4), "steel", (-L / 2 + 7, Wb / 2 - 0.75, 4.5 + 0.05 + 7.2)),
        cyl("hinge_pin", 2.0, Wb - 3.1, "steel", (-L / 2 + 5, 0, 11), Y),
    ]
    hw = 1.8 if hm in ("abs", "pp") else 1.0
    Wh = max(Wb - 4, 24.0)
    top = box("top", (L - 2, Wh, 16), hm, (1, 0, 19.0 + 8), wall=hw)
    parts.append(inside(top, [
        box("driver", (1.0, 11, 16 - 2 * hw - 0.2), "steel", ((L - 2) / 2 - hw - 8 - 0.5, 0, 0)),
        box("leaf_spring", (0.5 * L, 8, 0.8), "steel", (-0.1 * L, 0, 8 - hw - 0.5)),
    ]))
    return obj(parts)


@register("toy_car", None, "die-cast toy car: zinc-alloy body shell over a plastic interior, a zinc or plastic "
          "base, steel axles, plastic or rubber wheels, optionally a pull-back motor (steel gearbox, spring)", {
              "length": num(U(60, 95)),
              "width": num(U(26, 38)),
              "height": num(U(14, 24), "body height"),
              "wheel_radius": num(U(5, 8)),
              "body_material": mat(["zinc", "zinc", "abs"], weights=[2, 2, 1]),
              "wheel_material": mat(["abs", "pvc", "rubber"]),
              "pull_back": flag(0.3, "a pull-back motor (1) or none (0)"),
          }, F)
def toy_car(p, rng):
    L, W, H, rw = p["length"], p["width"], p["height"], p["wheel_radius"]
    ra = 1.0
    zb = rw + ra + 0.1  # the base's underside
    wbody = 1.5 if p["body_material"] == "zinc" else 1.8
    base_m = str(rng.choice(["zinc", "pp"]))
    parts = [box("base", (L - 4, W - 2, 1.5), base_m, (0, 0, zb + 0.75))]
    body = box("body", (L, W, H), p["body_material"], (0, 0, zb + 1.5 + 0.05 + H / 2), wall=wbody)
    cav = (L - 2 * wbody, W - 2 * wbody, H - 2 * wbody)
    inner = [box("interior", (0.45 * cav[0], cav[1] - 1, 0.5 * cav[2]), "pp",
                 (-0.05 * cav[0], 0, -cav[2] / 2 + 0.05 + 0.25 * cav[2]))]
    if p["pull_back"]:
        gh = min(9, 0.45 * cav[2])
        gb = box("gearbox", (0.3 * cav[0], 0.5 * cav[1], gh), "steel", (0.34 * cav[0], 0, -cav[2] / 2 + 0.05 + gh / 2),
                 wall=0.4)
        rs = min(3, 0.2 * cav[1], gh / 2 - 0.5)
        inner.append(inside(gb, cyl("spring", rs, 0.25 * cav[0], "steel", (0, 0, 0), X, wall=min(0.5, rs / 3))))
    parts.append(inside(body, inner))
    ww = 0.45 * rw + 2
    for i, sx in enumerate((-1, 1)):
        x = sx * 0.33 * L
        parts.append(cyl(f"axle{i}", ra, W + 0.2, "steel", (x, 0, rw), Y))
        for j, sy in enumerate((-1, 1)):
            parts.append(cyl(f"wheel{i}{j}", rw, ww, p["wheel_material"], (x, sy * (W / 2 + 0.1 + ww / 2), rw), Y))
    return obj(parts)
