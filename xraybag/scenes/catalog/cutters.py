"""Knives, daggers, blades and scissors (PIDray and CLCXray cutters), modelled from their outlines:
blades extruded with a taper to the edge, handles with tangs, rivets and liners.

Blades lie in the x-y plane (the tip towards +x), their thickness along z.
"""

from __future__ import annotations

from xraybag.scenes.catalog._geom import bezier, circle, grow, poly, rect, rings, rounded
from xraybag.scenes.catalog._parts import X, box, cyl, extrude, obj, revolve, ring
from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register

F = "cutters"
BLADE_STEELS = ["stainless_steel", "steel"]
EDGE = 0.15  # edge thickness / spine thickness of a ground blade


def _blade(bl: float, bw: float, tip: float, belly: float = 0.55, drop: float = 0.6) -> list:
    """A single-edged blade from its heel (x = 0; edge y = 0, spine y = bw) to its tip at (bl, tip x bw):
    a straight edge curving up over the last ``1 - belly`` of the length, the spine dropping to the
    tip over the last ``1 - drop``."""
    yt = tip * bw
    edge = [(1.5, 0.0)] + bezier((belly * bl, 0), (0.85 * bl, 0), (0.97 * bl, 0.1 * bw), 10, (bl, yt))
    spine = bezier((bl, yt), (0.97 * bl, 0.55 * bw), (0.85 * bl, bw), 10, (drop * bl, bw))[1:]
    return [(0.0, 1.5)] + edge + spine + [(0.0, bw)]


def _rivets(holes, height: float, material: str = "brass", r: float = 2.2) -> list[dict]:
    return [cyl(f"rivet{i}", r, height, material, (x, y, 0)) for i, (x, y) in enumerate(holes)]


@register("chef_knife", "knife", "kitchen or chef's knife: blade ground from the spine to the edge, "
          "curving up to the tip; a bolster; a full tang between riveted scales, or a hidden tang in a "
          "moulded handle", {
              "blade_length": num(U(120, 250)),
              "blade_width": num(U(22, 50)),
              "blade_thickness": num(U(1.4, 2.8), "at the spine"),
              "handle_length": num(U(95, 135)),
              "blade_material": mat(BLADE_STEELS),
              "handle_material": mat(["pp", "acetal", "wood", "abs"]),
              "full_tang": flag(0.5, "a full tang between two riveted scales (1) or a hidden tang (0)"),
          }, F)
def chef_knife(p, rng):
    bl, bw, bt, hl = p["blade_length"], p["blade_width"], p["blade_thickness"], p["handle_length"]
    bm, hm = p["blade_material"], p["handle_material"]
    hh, ht = 24.0, max(16.0, bt + 10)  # handle height (y) and thickness (z)
    y1 = bw + 1  # the handle's top, in line with the spine
    y0 = y1 - hh
    xb = -8.0  # the bolster from xb to the heel
    x1 = xb - hl
    handle = rounded(poly([(xb, y1), (xb, y0), (xb - 0.35 * hl, y0 - 1.5), (xb - 0.75 * hl, y0 + 0.5),
                           (x1, y0 - 2.5), (x1, y1 - 1), (xb - 0.5 * hl, y1 + 1.0)]), 4.0)
    rv = [(xb - f * hl, (y0 + y1) / 2 - 0.5) for f in (0.18, 0.5, 0.82)]
    parts = []
    if p["full_tang"] > 0.5:
        outline, holes = rings(handle - sum_circles(rv, 2.35))
        st = (ht - bt) / 2
        parts += [extrude("handle", outline, st, hm, holes=holes, z=(bt + st) / 2, bevel=1.5),
                  extrude("handle_b", outline, st, hm, holes=holes, z=-(bt + st) / 2, bevel=1.5),
                  extrude("tang", outline, bt, bm, holes=holes)]
        parts += _rivets(rv, ht)
    else:
        outline, _ = rings(handle)
        parts.append(extrude("handle", outline, ht, hm, bevel=3.0, wall=3.0))
        tang, _ = rings(rect(xb - 0.8 * hl, (y0 + y1) / 2 - 4, xb - 3.4, (y0 + y1) / 2 + 4) ^ grow(handle, -3.4))
        parts.append(extrude("tang", tang, min(bt, ht - 7), bm))
    parts.append(extrude("bolster", [(xb, y0), (0, min(y0, bw - 14)), (0, bw), (xb, y1)], ht - 2, bm, bevel=1.0))
    parts.append(extrude("blade", _blade(bl, bw, 0.3), bt, bm, taper=EDGE, taper_axis="-y"))
    return obj(parts)


def sum_circles(centres, r: float, n: int = 24):
    out = None
    for c in centres:
        out = circle(c, r, n) if out is None else out + circle(c, r, n)
    return out


@register("folding_knife", "knife", "folding pocket knife: drop-point blade on a pivot between steel "
          "liners, open or folded into the handle; scales, back spacer with a screw, pocket clip", {
              "handle_length": num(U(85, 130)),
              "blade_width": num(U(15, 28)),
              "open": flag(0.5, "blade open (1) or folded (0)"),
              "scale_material": mat(["aluminum", "pp", "wood", "e_glass"]),
              "blade_material": mat(BLADE_STEELS),
          }, F)
def folding_knife(p, rng):
    hl, bw = p["handle_length"], p["blade_width"]
    hw, bt = bw + 6, 2.5
    rt = hw / 2 - 1.5  # the blade's round tang about the pivot
    px = -rt - 1.5  # the pivot
    bl = hl + px - 10.5  # the blade from the pivot to the tip, clear of the spacer when folded
    handle = rounded(poly([(0, -hw / 2), (0, hw / 2 - 1), (-0.5 * hl, hw / 2), (-hl, hw / 2 - 1.5),
                           (-hl, -hw / 2 + 1), (-0.5 * hl, -hw / 2 - 0.5)]), 5.0)
    sx = -hl + 5.0  # the back spacer's screw
    outline, holes = rings(handle - circle((px, 0), 2.6, 24) - circle((sx, 0), 2.0, 24))
    zl = bt / 2 + 0.2 + 0.5  # liners' centres
    zs = bt / 2 + 0.2 + 1.0 + 1.5  # scales' centres
    parts = [
        extrude("scale_a", outline, 3.0, p["scale_material"], holes=holes, z=zs, bevel=1.0),
        extrude("liner_a", outline, 1.0, "stainless_steel", holes=holes, z=zl),
        extrude("liner_b", outline, 1.0, "stainless_steel", holes=holes, z=-zl),
        extrude("scale_b", outline, 3.0, p["scale_material"], holes=holes, z=-zs, bevel=1.0),
    ]
    sp = rings(rect(-hl + 1.0, -hw / 2 + 2, -hl + 9.0, hw / 2 - 2) - circle((sx, 0), 2.0, 24))
    parts.append(extrude("spacer", sp[0], bt + 0.4, "stainless_steel", holes=sp[1]))
    blade = poly(_blade(bl - 0.5 * rt, bw, 0.45, 0.5, 0.55)).translate((0.5 * rt, -bw / 2))
    blade = rounded(blade + circle((0, 0), rt, 48), 0, 2.0) - circle((0, 0), 2.6, 24)
    opened = p["open"] > 0.5
    if not opened:
        blade = blade.rotate(180)
    outline, holes = rings(blade.translate((px, 0)))
    parts.append(extrude("blade", outline, bt, p["blade_material"], holes=holes, taper=EDGE,
                         taper_axis="-y" if opened else "y"))
    total = 2 * (zs + 1.5)
    parts += [cyl("pivot", 2.45, total, "stainless_steel", (px, 0, 0)),
              cyl("screw", 1.85, total, "stainless_steel", (sx, 0, 0))]
    parts.append(extrude("clip", [(-hl + 4, hw / 2 - 8), (-0.4 * hl, hw / 2 - 8), (-0.4 * hl + 3, hw / 2 - 5),
                                  (-0.4 * hl, hw / 2 - 2), (-hl + 4, hw / 2 - 2)], 0.8, "stainless_steel",
                         z=zs + 1.5 + 0.4))
    return obj(parts)


@register("dagger", "dagger", "double-edged dagger: blade ground from a central ridge to both edges and "
          "a point; cross guard; grip over a rat-tail tang; pommel", {
              "blade_length": num(U(100, 260)),
              "blade_width": num(U(20, 40)),
              "blade_thickness": num(U(3, 6), "at the ridge"),
              "grip_length": num(U(90, 125)),
              "guard_material": mat(["steel", "brass", "stainless_steel"]),
              "grip_material": mat(["leather", "wood", "rubber", "nylon"]),
              "blade_material": mat(BLADE_STEELS),
          }, F)
def dagger(p, rng):
    bl, bw, bt, gl = p["blade_length"], p["blade_width"], p["blade_thickness"], p["grip_length"]
    gm = p["guard_material"]
    half = [(0, 0), (bl, 0)] + bezier((bl, 0), (0.92 * bl, 0.2 * bw), (0.75 * bl, 0.42 * bw), 8,
                                      (0.45 * bl, 0.46 * bw))[1:] + [(0, 0.5 * bw)]
    lower = [(x, -y) for x, y in reversed(half)]
    gt = 9.0  # guard thickness along x
    guard = rounded(rect(-gt, -bw / 2 - 22, 0, bw / 2 + 22) + circle((-gt / 2, bw / 2 + 22), 6.0, 32)
                    + circle((-gt / 2, -bw / 2 - 22), 6.0, 32), 0, 2.0)
    rg = [(0, 0), (11, 0), (12.5, 0.3 * gl), (13, 0.55 * gl), (12, 0.85 * gl), (11.5, gl), (0, gl)]
    pommel = [(0, 0), (9, 0), (12.5, 4), (13, 8), (11, 13), (6, 16), (0, 17)]
    return obj(
        extrude("blade", half, bt, p["blade_material"], taper=EDGE, taper_axis="y"),
        extrude("blade_b", lower, bt, p["blade_material"], taper=EDGE, taper_axis="-y"),
        extrude("guard", rings(guard)[0], 14.0, gm, bevel=2.0),
        revolve("grip", rg, p["grip_material"], (-gt, 0, 0), "-x", wall=3.0),
        cyl("tang", 3.0, gl - 6 - 1, "steel", (-gt - gl / 2, 0, 0), X),
        revolve("pommel", pommel, gm, (-gt - gl, 0, 0), "-x"),
    )


@register("utility_knife", "blade", "box cutter: two hollow body halves around the blade track, a "
          "snap-off steel blade partly extended on its carrier, the slider on top", {
              "length": num(U(120, 170)),
              "extension": num(U(8, 45), "blade length out of the body"),
              "body_material": mat(["abs", "pp", "aluminum"]),
          }, F)
def utility_knife(p, rng):
    L, e, bm = p["length"], p["extension"], p["body_material"]
    bh, T, yc = 20.0, 13.0, 11.0  # body height (y), thickness (z), the blade's centre line
    mid = 0.7  # the middle layer: the track and the blade
    body = rounded(poly([(0, 2), (2, 0), (L - 14, 0), (L, yc - 6), (L, yc + 6), (L - 10, bh), (6, bh),
                         (0, bh - 4)]), 1.5)
    li = 0.6 * L  # blade length inside the body
    xr = L - li  # the blade's rear end
    outline, _ = rings(body)
    ht = (T - mid) / 2
    parts = [extrude("body_a", outline, ht, bm, z=(mid + ht) / 2, bevel=1.5, wall=1.2),
             extrude("body_b", outline, ht, bm, z=-(mid + ht) / 2, bevel=1.5, wall=1.2)]
    track = body - rect(xr - 14.5, yc - 4.7, L + 5, yc + 4.7)
    parts.append(extrude("track", rings(track)[0], mid, bm))
    xt = L + e
    blade = [(xr, yc - 4.5), (xt, yc - 4.5), (xt - 5.2, yc + 4.5)]
    x = xt - 5.2 - 9
    notches = []
    while x > xr + 3:
        notches += [(x + 0.6, yc + 4.5), (x, yc + 4.0), (x - 0.6, yc + 4.5)]
        x -= 9
    blade += notches + [(xr, yc + 4.5)]
    parts.append(extrude("blade", blade, 0.5, "steel", taper=0.3, taper_axis="-y"))
    parts.append(extrude("carrier", rect_pts(xr - 13.5, yc - 4.5, xr - 0.5, yc + 4.5), 0.6, "steel"))
    parts.append(extrude("slider", [(xr - 12, bh), (xr + 2, bh), (xr + 1, bh + 3), (xr - 11, bh + 3)], 8.0,
                         "pp" if bm != "pp" else "abs"))
    return obj(parts)


def rect_pts(x0, y0, x1, y1) -> list:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


@register("razor_blades", "blade", "a pack of double-edge razor blades (the slotted outline with its "
          "end notches) in a paper wrapper", {
              "blades": count({"uniform_int": [1, 10]}),
              "thickness": num(U(0.1, 0.25), "of one blade"),
          }, F)
def razor_blades(p, rng):
    n, t = p["blades"], p["thickness"]
    outline = [(-21.5, -11), (-21.5, -3), (-20, -2), (-20, 2), (-21.5, 3), (-21.5, 11), (21.5, 11), (21.5, 3),
               (20, 2), (20, -2), (21.5, -3), (21.5, -11)]
    slot = rings(rect(-14, -1.1, 14, 1.1) + circle((-12, 0), 2.6, 24) + circle((0, 0), 2.6, 24)
                 + circle((12, 0), 2.6, 24))[0]
    parts = [box("wrapper", (45, 24, n * t + 1.0), "paper", (0, 0, 0), wall=0.3)]
    z0 = -n * t / 2
    for i in range(n):
        parts.append(extrude(f"blade{i}", outline, t, "stainless_steel", holes=[slot], z=z0 + t * (i + 0.5)))
    return obj(parts)


@register("swiss_army_knife", "swiss_army_knife", "multi-tool pocket knife: plastic scales, aluminium "
          "liners, stacked steel tools, optionally one blade open", {
              "length": num(U(58, 111)),
              "tools": count({"uniform_int": [2, 6]}, "layers of tools"),
              "open": flag(0.5, "main blade open (1) or closed (0)"),
              "scale_material": mat(["abs", "pp", "aluminum"]),
          }, F)
def swiss_army_knife(p, rng):
    L, n = p["length"], p["tools"]
    w = 0.24 * L + 6
    lt, tt, st = 0.8, 1.8, 2.5
    h = 2 * (st + lt) + n * tt
    z = -h / 2
    parts = []

    def layer(name, t, material, size=(L, w)):
        nonlocal z
        parts.append(box(name, (size[0], size[1], t), material, (0, 0, z + t / 2)))
        z += t

    layer("scale_a", st, p["scale_material"])
    layer("liner_a", lt, "aluminum")
    for i in range(n):
        if i == 0 and p["open"] > 0.5:
            bl = 0.75 * L
            parts.append(box("blade", (bl, w - 4, tt), "stainless_steel", (L / 2 + bl / 2, 0, z + tt / 2)))
            layer("spring0", tt, "stainless_steel", (L, 4))
        else:
            layer(f"tool{i}", tt, "stainless_steel", (L - 4, w - 4))
    layer("liner_b", lt, "aluminum")
    layer("scale_b", st, p["scale_material"])
    parts += (ring("keyring", 6, 1.2, 1.2, "steel", (-L / 2 - 7, 0, 0), n=8))
    return obj(parts)


@register("shears", "scissors", "scissors: two steel blades crossing at a pivot screw (each blade and its "
          "shank one piece), finger loops of plastic or steel, one of them long for several fingers", {
              "blade_length": num(U(60, 130)),
              "blade_width": num(U(8, 16)),
              "opening_deg": num(U(2, 20), "half-angle of the opening", unit="deg"),
              "loop_material": mat(["pp", "abs", "stainless_steel"], weights=[3, 2, 1]),
              "long_loop": flag(0.5, "the second loop long, for several fingers"),
          }, F)
def shears(p, rng):
    bl, bw, a = p["blade_length"], p["blade_width"], p["opening_deg"]
    lm = p["loop_material"]
    tb = 2.0
    tl = tb if lm == "stainless_steel" else 7.0
    rp = 0.55 * bw + 2  # the pivot's boss
    sl = 20.0  # the shank behind the pivot
    blade = poly([(0, 0), (bl, 0), (bl + 0.5, 1.2), (0.7 * bl, 0.8 * bw), (0.3 * bl, bw), (0, bw)])
    steel = rounded(blade + circle((0, 0), rp, 48) + poly([(0, -2), (-sl, -6), (-sl, -13), (0, -rp)]), 0, 3.0)
    steel = steel - circle((0, 0), 2.2, 24)
    parts = []
    for side, tag in ((1, "a"), (-1, "b")):
        long = side < 0 and p["long_loop"] > 0.5
        if long:
            rin, lx = 9.0, 16.0
            hole = rounded(rect(-sl - 4 - 2 * rin - lx, -9.5 - 2 * rin, -sl - 4, -9.5), rin - 0.5)
        else:
            rin, lx = 9.0, 0.0
            hole = circle((-sl - 4 - rin, -9.5 - rin), rin, 48)
        loop = grow(hole, 4.5) + rect(-sl - 6, -14, -sl, -5)
        loop = rounded(loop, 0, 3.0) ^ rect(-400, -400, -sl, 400)
        s = steel if side > 0 else steel.mirror((0, 1))
        loop = loop if side > 0 else loop.mirror((0, 1))
        hole = hole if side > 0 else hole.mirror((0, 1))
        so, sh = rings(s.rotate(side * a))
        lo, lh = rings((loop - hole).rotate(side * a))
        parts.append(extrude(f"blade_{tag}", so, tb, "stainless_steel", holes=sh, z=side * tb / 2))
        parts.append(extrude(f"handle_{tag}", lo, tl, lm, holes=lh, z=side * tl / 2, bevel=0.8 if tl > 3 else 0))
    screw = [(0, -1.2), (4, -1.2), (4, 0), (2.05, 0), (2.05, 2 * tb), (4.5, 2 * tb), (4.5, 2 * tb + 1.2),
             (3.5, 2 * tb + 1.8), (0, 2 * tb + 1.8)]
    parts.append(revolve("screw", screw, "steel", (0, 0, -tb), "z"))
    return obj(parts)
