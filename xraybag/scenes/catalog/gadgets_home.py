"""The gadgets family, continued: stationery, household items and food."""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register
from xraybag.scenes.catalog._parts import X, box, cone, cyl, ell, obj, sph
from xraybag.scenes.catalog._gadget_parts import arc, circle, extrude, inside, rot_to, shifted, sweep

F = "gadgets"


def _pen(name, x0, y, z, lb, r, material, rng) -> list[dict]:
    """A ballpoint pen along +x from ``x0``: barrel holding a refill and a spring, brass
    tip, steel clip; centre height ``z`` (the barrel's axis)."""
    wb = 0.5 if material == "aluminum" else 0.8
    barrel = cyl(name, r, lb, material, (x0 + lb / 2, y, z), X, wall=wb)
    cav = lb / 2 - wb
    lr = 0.72 * lb
    z1 = cav - 0.1 - 8 - 0.1
    refill = cyl("refill", 1.6, lr, "pp", (0, 0, z1 - lr / 2))  # a plastic tube of ink
    inside(barrel, refill, cyl("spring", 2.2, 8, "steel", (0, 0, cav - 0.1 - 4), wall=0.35))
    return [barrel,
            cone(name + "_tip", 1.4, 0.4, 4, "brass", (x0 + lb + 2.05, y, z), (0, 90, 0)),
            box(name + "_clip", (0.3 * lb, 2.5, 0.6), "steel", (x0 + 2 + 0.15 * lb, y, z + r + 0.35))]


@register("pencil_case", None, "pencil case (fabric or PVC with a metal zip, or a steel tin) with ballpoint pens "
          "(barrels, refills, steel springs and clips, brass tips), highlighters (felt reservoirs), "
          "and optionally an eraser, a sharpener with its steel blade and a ruler", {
              "pens": count({"uniform_int": [1, 5]}),
              "markers": count({"uniform_int": [0, 2]}, "highlighters", ge=0),
              "eraser": flag(0.6, "an eraser (1) or none (0)"),
              "sharpener": flag(0.5, "a sharpener (1) or none (0)"),
              "ruler": flag(0.4, "a 15 cm ruler (1) or none (0)"),
              "case_material": mat(["polyester", "pvc", "nylon_fabric", "steel"], weights=[3, 2, 2, 1]),
          }, F)
def pencil_case(p, rng):
    items = []  # (width in y, height, builder(y_centre, z_floor) -> parts, length)
    for i in range(int(p["pens"])):
        lb = float(rng.uniform(125, 142))
        r = float(rng.uniform(4.0, 5.0))
        m = str(rng.choice(["pp", "abs", "pc", "aluminum"], p=[0.4, 0.3, 0.15, 0.15]))
        items.append((2 * r + 0.5, 2 * r + 1.0, lb + 4.1,
                      lambda y, zf, x0, i=i, lb=lb, r=r, m=m: _pen(f"pen{i}", x0, y, zf + r, lb, r, m, rng)))
    for i in range(int(p["markers"])):
        lb = float(rng.uniform(100, 115))
        r = float(rng.uniform(6.5, 8.0))

        def marker(y, zf, x0, i=i, lb=lb, r=r):
            barrel = cyl(f"marker{i}", r, lb, "pp", (x0 + lb / 2, y, zf + r + 0.8), X, wall=0.9)
            inside(barrel, cyl("reservoir", r - 1.6, 0.7 * lb, "polyester", (0, 0, -0.1 * lb)))
            cap = cyl(f"marker{i}_cap", r + 0.8, 32, "pp", (x0 + lb + 16.05, y, zf + r + 0.8), X, wall=0.8)
            inside(cap, box("nib", (4.5, 4.5, 14), "polyester", (0, 0, -16 + 0.8 + 0.1 + 7)))
            return [barrel, cap]

        items.append((2 * r + 2.1, 2 * r + 1.6, lb + 32.1, marker))
    if p["eraser"]:
        el, ew, eh = float(rng.uniform(40, 62)), float(rng.uniform(16, 24)), float(rng.uniform(8, 12))
        em = str(rng.choice(["pvc", "rubber"]))
        items.append((ew, eh, el, lambda y, zf, x0, el=el, ew=ew, eh=eh, em=em:
                      [box("eraser", (el, ew, eh), em, (x0 + el / 2, y, zf + eh / 2))]))
    if p["sharpener"]:
        sm = str(rng.choice(["aluminum", "pp"]))
        items.append((16, 12.6, 25, lambda y, zf, x0, sm=sm: [
            box("sharpener", (25, 16, 12), sm, (x0 + 12.5, y, zf + 6)),
            box("sharpener_blade", (16, 8, 0.5), "steel", (x0 + 12.5, y, zf + 12.3))]))
    if p["ruler"]:
        rm = str(rng.choice(["pmma", "ps", "aluminum", "stainless_steel"], p=[0.35, 0.35, 0.15, 0.15]))
        rt = 0.8 if rm == "stainless_steel" else (1.2 if rm == "aluminum" else 2.5)
        items.append((26, rt, 160, lambda y, zf, x0, rm=rm, rt=rt:
                      [box("ruler", (160, 26, rt), rm, (x0 + 80, y, zf + rt / 2))]))
    cm = p["case_material"]
    w = {"polyester": 1.2, "nylon_fabric": 1.0, "pvc": 0.8, "steel": 0.35}[cm]
    gap = 0.8
    inner_w = sum(it[0] for it in items) + gap * (len(items) + 1)
    inner_l = max(it[2] for it in items) + 6
    inner_h = max(it[1] for it in items) + 1.0
    Lc, Wc, Hc = inner_l + 2 * w, max(inner_w, 30.0) + 2 * w, inner_h + 2 * w
    case = box("case", (Lc, Wc, Hc), cm, (0, 0, 0), wall=w)
    zf = -Hc / 2 + w + 0.05
    x0 = -Lc / 2 + w + 2
    y = -Wc / 2 + w + gap
    inner = []
    for width, _, _, build in items:
        inner += build(y + width / 2, zf, x0)
        y += width + gap
    parts = [inside(case, inner)]
    if cm != "steel":
        zm = str(rng.choice(["nickel", "brass", "pp"], p=[0.5, 0.3, 0.2]))
        parts.append(box("zip", (0.9 * Lc, 5, 1.4), zm, (0, Wc / 4, Hc / 2 + 0.75)))
    return obj(parts)


@register("spiral_notebook", None, "spiral-bound notebook: a block of paper between cardboard or PP covers, "
          "punched along the spine and bound by a steel (or plastic) wire coil through the holes", {
              "length": num(U(140, 300), "along the spine"),
              "width": num(U(95, 215)),
              "pages_thickness": num(U(3, 15)),
              "cover": mat(["cardboard", "pp"], weights=[2, 1]),
              "wire_radius": num(U(0.45, 0.75)),
              "pitch": num(U(6.35, 8.5), "coil pitch (holes per length)"),
              "wire_material": mat(["steel", "nickel", "pvc"], weights=[5, 1, 1], doc="pvc: a plastic coil"),
          }, F)
def spiral_notebook(p, rng):
    L, W, tp, pitch = p["length"], p["width"], p["pages_thickness"], p["pitch"]
    tc = 0.5 if p["cover"] == "pp" else float(rng.uniform(0.6, 1.5))
    rw = p["wire_radius"]
    T = tp + 2 * tc
    # the coil: a helix along y around the spine edge (x = -W/2), crossing the block at angle 0
    Rr = T / 2 + rw + 3.0
    th = math.asin(min(0.999, (T / 2 + rw + 0.3) / Rr))  # where the wire is within the block's thickness
    hd = max(5.0, Rr * (1 - math.cos(th)) + rw + 1.5)  # the holes' outer side from the spine edge
    Rr = max(Rr, (hd + rw + 1.0) / 2)
    th = math.asin(min(0.999, (T / 2 + rw + 0.3) / Rr))
    xh = -W / 2 + hd
    xc = xh - Rr
    n = int((L - 12) // pitch)
    ys = -n * pitch / 2
    per = 24
    pts = []
    for i in range(n * per + 1):
        t = -math.pi + 2 * math.pi * i / per
        pts.append((xc + Rr * math.cos(t), ys + pitch * (t + math.pi) / (2 * math.pi), Rr * math.sin(t)))
    hx0, hx1 = xh - Rr * (1 - math.cos(th)) - rw - 0.5, xh + rw + 0.5
    hy = pitch * th / (2 * math.pi) + rw + 0.5
    holes = []
    for k in range(n):
        yk = ys + pitch * (k + 0.5)
        holes.append([(hx0, yk - hy), (hx1, yk - hy), (hx1, yk + hy), (hx0, yk + hy)])
    rect = [(-W / 2, -L / 2), (W / 2, -L / 2), (W / 2, L / 2), (-W / 2, L / 2)]
    return obj(
        extrude("pages", rect, tp, "paper", 0.0, holes),
        extrude("cover_front", rect, tc, p["cover"], tp / 2 + tc / 2, holes),
        extrude("cover_back", rect, tc, "cardboard", -tp / 2 - tc / 2, holes),
        sweep("coil", pts, rw, p["wire_material"]),
    )


@register("ring_binder", None, "closed ring binder: PP or board covers and spine, a steel plate with two to "
          "four steel O rings threaded through the punched holes of a stack of paper", {
              "length": num(U(280, 320), "along the spine"),
              "width": num(U(235, 290)),
              "ring_radius": num(U(12, 30)),
              "rings": count({"choice": [2, 3, 4], "weights": [2, 3, 1]}),
              "fill": num(U(0.15, 1.0), "the paper's share of the rings' capacity", unit=""),
              "cover": mat(["pp", "cardboard", "pvc"]),
          }, F)
def ring_binder(p, rng):
    L, W, R = p["length"], p["width"], p["ring_radius"]
    tc = 1.0 if p["cover"] == "pp" else 2.2
    rw = 1.6 if R < 20 else 2.0
    n = int(p["rings"])
    ys = {2: [-40, 40], 3: [-108, 0, 108], 4: [-120, -40, 40, 120]}[n]
    xr = -W / 2 + R + rw + 8
    plate_top = tc + 1.0
    zc = plate_top + 0.05 + rw + R
    parts = [box("cover_back", (W, L, tc), p["cover"], (0, 0, tc / 2)),
             box("plate", (24, ys[-1] - ys[0] + 30, 1.0), "steel", (xr, 0, tc + 0.5))]
    for k, y in enumerate(ys):
        pts = [(xr + R * math.cos(2 * math.pi * i / 32), y, zc + R * math.sin(2 * math.pi * i / 32)) for i in range(32)]
        parts.append(sweep(f"ring{k}", pts, rw, "steel", closed=True))
    # the paper, threaded on the rings: they cross it on their outer side, through its holes
    z0 = zc - 0.8 * R
    tp = max(1.0, p["fill"] * 1.6 * R)
    cphi = math.cos(math.asin(min(1.0, max(abs(z0 - zc), abs(z0 + tp - zc)) / R)))
    xa, xb = xr - 0.35 * R, W / 2 - 4
    hx0, hx1 = xr + R * cphi - rw - 0.4, xr + R + rw + 0.4
    holes = [[(hx0, y - rw - 0.5), (hx1, y - rw - 0.5), (hx1, y + rw + 0.5), (hx0, y + rw + 0.5)] for y in ys]
    rect = [(xa, -L / 2 + 6), (xb, -L / 2 + 6), (xb, L / 2 - 6), (xa, L / 2 - 6)]
    parts.append(extrude("paper", rect, tp, "paper", z0 + tp / 2, holes))
    ztop = zc + R + rw + 0.3
    parts += [box("cover_front", (W, L, tc), p["cover"], (0, 0, ztop + tc / 2)),
              box("spine", (tc, L, ztop + tc), p["cover"], (-W / 2 - tc / 2 - 0.05, 0, (ztop + tc) / 2))]
    return obj(parts)


@register("playing_cards", None, "one or two decks of paper or plastic playing cards in tuck boxes or "
          "plastic cases, optionally still in their cellophane", {
              "decks": count({"choice": [1, 2], "weights": [3, 1]}),
              "card_material": mat(["paper", "pvc"], weights=[4, 1]),
              "case": mat(["cardboard", "pp"], weights=[3, 1]),
              "sealed": flag(0.2, "in cellophane (1) or not (0)"),
              "cards": count({"uniform_int": [52, 56]}),
          }, F)
def playing_cards(p, rng):
    t = p["cards"] * (0.3 if p["card_material"] == "paper" else 0.32)
    cw = 0.4 if p["case"] == "cardboard" else 1.2
    sx, sy, sz = 63 + 2 * cw + 1, 88 + 2 * cw + 1, t + 2 * cw + 0.6
    parts = []
    for k in range(int(p["decks"])):
        x = k * (sx + 2.0) if not p["sealed"] else k * (sx + 2.2)
        deck = box(f"box{k}", (sx, sy, sz), p["case"], (x, 0, 0), wall=cw)
        inside(deck, box("cards", (63, 88, t), p["card_material"], (0, 0, 0)))
        if p["sealed"]:
            deck = inside(box(f"cellophane{k}", (sx + 0.4, sy + 0.4, sz + 0.4), "pp", (x, 0, 0), wall=0.05),
                           shifted(deck, -x))
        parts.append(deck)
    return obj(parts)


@register("tape_roll", None, "roll of adhesive tape (packing, electrical or masking) wound on a cardboard or "
          "plastic core", {
              "outer_radius": num(U(24, 55)),
              "core_radius": num(U(12.5, 38)),
              "width": num(U(12, 50)),
              "tape": mat(["pp", "pvc", "paper", "pet"], weights=[3, 2, 2, 1]),
              "core": mat(["cardboard", "pp"], weights=[3, 1]),
          }, F)
def tape_roll(p, rng):
    Ro, wd = p["outer_radius"], p["width"]
    tcore = 2.5 if p["core"] == "cardboard" else 1.5
    Rc = min(p["core_radius"], Ro - 3.0)
    Rc = max(Rc, tcore + 3.0)
    n = 96
    return obj(extrude("tape", circle(Ro, n=n), wd, p["tape"], 0.0, [circle(Rc + 0.06, n=n)]),
               extrude("core", circle(Rc, n=n), wd, p["core"], 0.0, [circle(Rc - tcore, n=n)]))


@register("cutlery_set", None, "reusable travel cutlery in a pouch or case: stainless steel fork and spoon, "
          "optionally wooden chopsticks and a steel straw", {
              "length": num(U(160, 200), "fork and spoon"),
              "chopsticks": flag(0.4, "wooden chopsticks (1) or none (0)"),
              "straw": flag(0.4, "a steel straw (1) or none (0)"),
              "pouch": mat(["polyester", "cotton", "pp"], weights=[2, 2, 1], doc="pp: a hard case"),
          }, F)
def cutlery_set(p, rng):
    L = p["length"]
    t = 2.0
    items = []  # (width, length, builder(x0, y, z) -> parts)

    def handle(x0, y, hl, nl):  # rounded end, handle, narrowing neck (outline points)
        return (arc(6, 90, 270, (x0 + 6, y), n=10) + [(x0 + hl, y - 6), (x0 + hl + nl, y - 3)],
                [(x0 + hl + nl, y + 3), (x0 + hl, y + 6)])

    def fork(x0, y, z):
        hl, nl, bl = 0.5 * L, 0.1 * L, 0.08 * L
        xb, xe = x0 + hl + nl + bl, x0 + L
        tw, hw = 3.2, 11.0
        gap = (2 * hw - 4 * tw) / 3
        lower, upper = handle(x0, y, hl, nl)
        right = []
        for k in range(4):
            y0 = y - hw + k * (tw + gap)
            right += [(xe, y0), (xe, y0 + tw)]
            if k < 3:
                right += [(xb, y0 + tw), (xb, y0 + tw + gap)]
        head = [(x0 + hl + nl + 0.6 * bl, y - hw)] + right + [(x0 + hl + nl + 0.6 * bl, y + hw)]
        return [extrude("fork", lower + head + upper, t, "stainless_steel", z)]

    def spoon(x0, y, z):
        hl, nl = 0.52 * L, 0.12 * L
        bl = L - hl - nl
        lower, upper = handle(x0, y, hl, nl)
        return [extrude("spoon_handle", lower + upper, t, "stainless_steel", z),
                ell("spoon_bowl", (bl / 2, 17, 1.2), "stainless_steel", (x0 + hl + nl + bl / 2 + 0.05, y, z))]

    items += [(24, L, fork), (34, L, spoon)]
    if p["chopsticks"]:
        cl = 230.0
        items.append((14, cl, lambda x0, y, z: [
            cone(f"chopstick{i}", 3.2, 1.6, cl, "wood", (x0 + cl / 2, y - 3.5 + 7 * i, z), (0, 90, 0))
            for i in range(2)]))
    if p["straw"]:
        sl = 215.0
        items.append((7, sl, lambda x0, y, z:
                      [cyl("straw", 3.0, sl, "stainless_steel", (x0 + sl / 2, y, z), X, wall=0.3)]))
    pm = p["pouch"]
    w = 1.5 if pm == "pp" else 1.0
    gap = 1.0
    iw = sum(it[0] for it in items) + gap * (len(items) + 1)
    il = max(it[1] for it in items) + 6
    ih = 8.0
    pouch = box("pouch", (il + 2 * w, iw + 2 * w, ih + 2 * w), pm, (0, 0, 0), wall=w)
    inner = []
    y = -iw / 2 + gap
    for width, length, build in items:
        inner += build(-il / 2 + 3, y + width / 2, 0.0)
        y += width + gap
    return obj(inside(pouch, inner))


@register("bottle_opener", None, "flat bottle opener: a steel plate with an opening and a lip, optionally with "
          "wooden or plastic handle scales and a steel key ring", {
              "handle_length": num(U(50, 110)),
              "handle_width": num(U(14, 24)),
              "thickness": num(U(1.5, 3.2)),
              "material": mat(["steel", "stainless_steel", "zinc", "aluminum"], weights=[3, 3, 1, 1]),
              "scales": flag(0.35, "handle scales (1) or bare (0)"),
              "scale_material": mat(["wood", "abs", "rubber"]),
              "key_ring": flag(0.3, "on a steel key ring (1) or not (0)"),
          }, F)
def bottle_opener(p, rng):
    hl, hw, t, m = p["handle_length"], p["handle_width"], p["thickness"], p["material"]
    ow, oh, b = 24.0, 14.0, 6.0  # the opening (x, y) and the frame around it
    Hh = oh + 2 * b
    xf = hl + b + ow  # the opening's far side
    outline = ([(0, -hw / 2), (hl, -hw / 2), (hl, -Hh / 2), (xf, -Hh / 2)] + arc(Hh / 2, -90, 90, (xf, 0), n=16)[1:-1]
               + [(xf, Hh / 2), (hl, Hh / 2), (hl, hw / 2), (0, hw / 2)])
    x0 = hl + b
    opening = [(x0, -oh / 2), (xf, -oh / 2), (xf, -4), (xf - 3, -4), (xf - 3, 4), (xf, 4), (xf, oh / 2), (x0, oh / 2)]
    holes = [opening]
    if p["key_ring"]:
        holes.append(circle(2.2, (5.0, 0.0), n=24))
    parts = [extrude("plate", outline, t, m, 0.0, holes)]
    if p["scales"]:
        st = 3.0
        xs0 = 12.0 if p["key_ring"] else 1.0
        sl = hl - 1 - xs0
        for k, sz in enumerate((-1, 1)):
            parts.append(box(f"scale{k}", (sl, hw, st), p["scale_material"],
                             (xs0 + sl / 2, 0, sz * (t / 2 + st / 2 + 0.02))))
            for j in range(2):  # the heads of the rivets that hold the scales
                parts.append(cyl(f"rivet{j}{k}", 2.2, 0.8, "brass",
                                 (xs0 + sl * (0.25 + 0.5 * j), 0, sz * (t / 2 + st + 0.47))))
    if p["key_ring"]:
        Rk = 11.0
        pts = [(5.0 - Rk + Rk * math.cos(2 * math.pi * i / 32), 0.0, Rk * math.sin(2 * math.pi * i / 32))
               for i in range(32)]
        parts.append(sweep("key_ring", pts, 0.8, "steel", closed=True))
    return obj(parts)


# ------------------------------------------------------------------------------------------ food


@register("chocolate_bar", None, "chocolate bar: a slab with its rows of pieces, in aluminium foil and a paper "
          "sleeve, or in a plastic flow wrap", {
              "length": num(U(100, 200)),
              "width": num(U(45, 85)),
              "thickness": num(U(6, 12)),
              "rows": count({"uniform_int": [2, 3]}),
              "columns": count({"uniform_int": [3, 6]}),
              "wrapper": mat(["paper", "pp", "cardboard"], weights=[3, 2, 1]),
              "foil": flag(0.7, "aluminium foil under the wrapper (1) or none (0)"),
          }, F)
def chocolate_bar(p, rng):
    L, W, T = p["length"], p["width"], p["thickness"]
    nr, nc = int(p["rows"]), int(p["columns"])
    tb = 0.4 * T
    pl, pw = L / nc - 1.2, W / nr - 1.2
    choc = [box("slab", (L, W, tb), "chocolate", (0, 0, -T / 2 + tb / 2))]
    for i in range(nc):
        for j in range(nr):
            choc.append(box(f"piece{i}{j}", (pl, pw, T - tb), "chocolate",
                            (-L / 2 + (i + 0.5) * L / nc, -W / 2 + (j + 0.5) * W / nr, tb / 2)))
    inner = choc
    g = 0.2
    if p["foil"]:
        inner = [inside(box("foil", (L + 2 * g, W + 2 * g, T + 2 * g), "aluminum", (0, 0, 0), wall=0.03), choc)]
        g += 0.25
    ww = {"paper": 0.12, "pp": 0.05, "cardboard": 0.4}[p["wrapper"]]
    wrap = box("wrapper", (L + 2 * g + 2 * ww + 0.2, W + 2 * g + 2 * ww + 0.2, T + 2 * g + 2 * ww + 0.2), p["wrapper"],
               (0, 0, 0), wall=ww)
    return obj(inside(wrap, inner))


@register("apple", None, "apple: flesh around a core of air with seeds, and a woody stem", {
    "radius": num(U(32, 45)),
    "squash": num(U(0.8, 0.95), "height over width", unit=""),
    "seeds": count({"uniform_int": [3, 6]}, ge=0),
}, F)
def apple(p, rng):
    r = p["radius"]
    h = p["squash"] * r
    wall = 0.7 * r
    flesh = ell("flesh", (r, r, h), "fruit", (0, 0, 0), wall=wall)
    seeds = []
    rc = min(max(0.55 * (r - wall), 0.85 * int(p["seeds"])), r - wall - 3.8)
    for k in range(int(p["seeds"])):
        a = 360.0 * k / max(int(p["seeds"]), 1)
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        seeds.append(ell(f"seed{k}", (3.5, 2.0, 1.4), "protein", (rc * c, rc * s, 0), (0, 0, a)))
    inside(flesh, seeds)
    sl = float(rng.uniform(6, 14))
    return obj(flesh, cyl("stem", 1.4, sl, "wood", (0, 0, h + 0.05 + sl / 2)))


@register("orange", None, "orange or grapefruit: peel around juicy flesh with a pith at its centre", {
    "radius": num(U(30, 55)),
    "peel": num(U(2.5, 6)),
}, F)
def orange(p, rng):
    r, t = p["radius"], p["peel"]
    h = 0.94 * r
    peel = ell("peel", (r, r, h), "fruit", (0, 0, 0), wall=t)
    fr = (r - t - 0.15, r - t - 0.15, h - t - 0.15)
    fw = 0.8 * fr[2]
    flesh = ell("flesh", fr, "soft_drink", (0, 0, 0), wall=fw)  # juice: water and sugars
    inside(flesh, ell("pith", (fr[0] - fw - 0.1, fr[1] - fw - 0.1, fr[2] - fw - 0.1), "fruit"))
    return obj(inside(peel, flesh))


@register("banana", None, "banana: a curved peel around its flesh (water and sugars), a tip and a woody stalk", {
    "length": num(U(150, 230), "along the curve"),
    "radius": num(U(15, 20)),
    "curve_radius": num(U(110, 220)),
    "peel": num(U(2.0, 3.5)),
}, F)
def banana(p, rng):
    Ln, r, Rb, t = p["length"], p["radius"], p["curve_radius"], p["peel"]
    n = 12
    span = Ln / Rb  # radians
    pts = [(Rb * math.sin(-span / 2 + span * i / n), Rb * (1 - math.cos(-span / 2 + span * i / n)), 0.0)
           for i in range(n + 1)]
    parts = [sweep("peel", pts, r, "fruit", inner_radius=r - t), sweep("flesh", pts, r - t - 0.2, "soft_drink")]
    P = [np.asarray(q) for q in pts]
    d0 = (P[0] - P[1]) / np.linalg.norm(P[0] - P[1])
    d1 = (P[-1] - P[-2]) / np.linalg.norm(P[-1] - P[-2])
    parts += [cone("tip", r, 4.0, 16, "fruit", tuple(P[0] + d0 * 8.05), rot_to(d0)),
              cone("neck", r, 5.0, 22, "fruit", tuple(P[-1] + d1 * 11.05), rot_to(d1)),
              cyl("stalk", 4.5, 18, "wood", tuple(P[-1] + d1 * 31.1), rot_to(d1))]
    return obj(parts)


@register("sandwich_box", None, "lunch box (PP or steel) with one or two sandwich halves (bread, fillings of "
          "cheese, ham, vegetables, butter) on a paper napkin, and grapes", {
              "length": num(U(150, 210)),
              "width": num(U(100, 150)),
              "height": num(U(45, 70)),
              "halves": count({"uniform_int": [1, 2]}),
              "grapes": count({"uniform_int": [0, 8]}, ge=0),
              "box_material": mat(["pp", "pp", "stainless_steel", "ps"], weights=[3, 1, 1, 1]),
          }, F)
def sandwich_box(p, rng):
    L, W, H = p["length"], p["width"], p["height"]
    bm = p["box_material"]
    w = 0.6 if bm == "stainless_steel" else 1.5
    cx, cy, cz = L - 2 * w, W - 2 * w, H - 2 * w
    zf = -cz / 2
    ng = int(p["grapes"])
    rg = float(rng.uniform(8, 10))
    per_col = max(1, int((cy - 2) // (2 * rg + 0.6)))
    gcols = 0 if ng == 0 else min(2, -(-ng // per_col))
    ng = min(ng, gcols * per_col)
    xg = gcols * (2 * rg + 0.6) + (1 if gcols else 0)
    nh = int(p["halves"])
    sl = min(105.0, (cx - xg - 2 - (nh - 1) * 1.5) / nh)
    sw = min(105.0, cy - 4)
    inner = [box("napkin", (nh * sl + (nh - 1) * 1.5, sw, 0.4), "paper",
                 (-cx / 2 + 1 + (nh * sl + (nh - 1) * 1.5) / 2, 0, zf + 0.05 + 0.2))]
    room = cz - 0.45 - 1.5
    fillings = ["cheese", "soft_tissue", "fruit", "vegetable_oil"]
    for k in range(nh):
        x = -cx / 2 + 1 + sl / 2 + k * (sl + 1.5)
        tb = float(min(rng.uniform(9, 14), room / 3))
        layers = [("bread_bottom", "flour", tb)]
        nf = int(rng.integers(1, 4))
        for j, m in enumerate(rng.choice(fillings, size=nf, replace=False)):
            layers.append((f"filling{j}", str(m), float(min(rng.uniform(1.5, 6) if m != "vegetable_oil" else 0.8,
                                                            (room - 2 * tb) / nf - 0.05))))
        layers.append(("bread_top", "flour", tb))
        z = zf + 0.45
        for name, m, th in layers:
            shrink = 0 if name.startswith("bread") else 3
            inner.append(box(f"half{k}_{name}", (sl - shrink, sw - shrink, th), m, (x, 0, z + 0.02 + th / 2)))
            z += th + 0.02
    for g in range(ng):
        col, row = divmod(g, per_col)
        inner.append(sph(f"grape{g}", rg, "fruit", (cx / 2 - 0.5 - rg - col * (2 * rg + 0.6),
                                                     -cy / 2 + 1 + rg + row * (2 * rg + 0.6), zf + 0.05 + rg)))
    return obj(inside(box("box", (L, W, H), bm, (0, 0, 0), wall=w), inner))


@register("bag_of_nuts", None, "a plastic or foil bag of almonds, hazelnuts or peanuts (kernels about half fat "
          "and a quarter protein: cheese is the nearest mix in the material library)", {
              "nuts": count({"uniform_int": [12, 36]}),
              "kind": count({"uniform_int": [0, 2]}, "0 almonds, 1 hazelnuts, 2 peanuts", ge=0),
              "kernel": mat(["cheese", "vegetable_oil", "protein"], weights=[3, 1, 1]),
              "film": mat(["pet", "pp", "ldpe", "aluminum"], weights=[2, 2, 1, 1], doc="aluminum: a foil laminate"),
          }, F)
def bag_of_nuts(p, rng):
    n, kind = int(p["nuts"]), int(p["kind"])
    radii = [(11.0, 7.0, 4.5), (7.5, 7.5, 7.0), (7.0, 4.5, 4.5)][kind]
    sp = 2 * max(radii[:2]) + 0.6
    layers = 1 if n <= 16 else 2
    per = -(-n // layers)
    cols = int(math.ceil(math.sqrt(per * 1.5)))
    rows = -(-per // cols)
    c = radii[2]
    fw = 0.05 if p["film"] == "aluminum" else 0.1
    ix, iy, iz = cols * sp + 6, rows * sp + 6, layers * (2 * c + 0.3) + 3
    bag = box("bag", (ix + 2 * fw, iy + 2 * fw, iz + 2 * fw), p["film"], (0, 0, 0), wall=fw)
    nuts = []
    for i in range(n):
        layer, k = divmod(i, per)
        row, col = divmod(k, cols)
        s = float(rng.uniform(0.85, 1.0))
        pos = (-ix / 2 + 3 + (col + 0.5) * sp, -iy / 2 + 3 + (row + 0.5) * sp,
               -iz / 2 + 0.1 + c + layer * (2 * c + 0.3))
        nuts.append(ell(f"nut{i}", (radii[0] * s, radii[1] * s, c * s), p["kernel"], pos,
                        (0, 0, float(rng.uniform(0, 180)))))
    return obj(inside(bag, nuts), box("seal", (ix + 2 * fw, 8, 1.2), "ldpe", (0, iy / 2 + fw - 4, iz / 2 + fw + 0.65)))
