"""Threat items of PIDray: guns, bullets, tools, handcuffs, batons, sprayers, lighters, power banks;
and sheet explosives."""

from __future__ import annotations

import math

from xraybag.scenes.catalog.registry import U, flag, count, frac, mat, num, register
from xraybag.scenes.catalog._parts import X, Y, box, cone, cyl, obj, ring, sph

F = "threats"


def rotz(parts: list[dict], deg: float, about=(0.0, 0.0)) -> list[dict]:
    """Rotate parts about the z axis through ``about`` (positions and orientations)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    for p in parts:
        x, y, z = p["pose"]["position"]
        x, y = x - about[0], y - about[1]
        p["pose"]["position"] = [about[0] + c * x - s * y, about[1] + s * x + c * y, z]
        p["pose"]["rotation_deg"][2] += deg
    return parts


@register("pistol", "gun", "semi-automatic pistol: hollow steel slide over the barrel, polymer or "
          "metal frame, grip holding a magazine of cartridges, trigger and guard", {
              "slide_length": num(U(160, 205), "length of the slide"),
              "width": num(U(24, 32), "slide width"),
              "grip_height": num(U(85, 115), "grip height below the frame"),
              "slide_material": mat(["steel", "stainless_steel"]),
              "frame_material": mat(["nylon", "steel", "aluminum"], weights=[3, 1, 1]),
              "loaded": flag(0.6, "magazine fill (0: empty)"),
          }, F)
def pistol(p, rng):
    L, w, gh = p["slide_length"], p["width"], p["grip_height"]
    hs = 30.0
    gl, gx = 52.0, -L / 2 + 26 + 6
    fz = -hs / 2 - 6  # frame centre (12 high)
    gz = fz - 6 - gh / 2
    mag = [w - 2 - 8 - 1, gh - 8 - 1]
    parts = [
        box("slide", (L, w, hs), p["slide_material"], (0, 0, 0), wall=3),
        cyl("barrel", 6.5, L - 14, "steel", (2, 0, 0), X),
        box("frame", (0.8 * L, w - 2, 12), p["frame_material"], (-L / 2 + 0.4 * L, 0, fz)),
        box("grip", (gl, w - 2, gh), p["frame_material"], (gx, 0, gz), wall=4),
        box("magazine", (gl - 9, mag[0], mag[1]), "steel", (gx, 0, gz), wall=0.8),
        box("trigger", (4, 6, 12), "steel", (gx + gl / 2 + 12, 0, fz - 6 - 6)),
        box("guard", (30, 8, 3), p["frame_material"], (gx + gl / 2 + 15, 0, fz - 6 - 19.5)),
        box("guard_front", (3, 8, 18), p["frame_material"], (gx + gl / 2 + 28.5, 0, fz - 6 - 9)),
    ]
    if p["loaded"] > 0.5:
        parts.append(box("cartridges", (gl - 12, mag[0] - 3, mag[1] * 0.8), "brass",
                         (gx, 0, gz - mag[1] * 0.1 + 1.0)))
    return obj(parts)


@register("revolver", "gun", "revolver: steel barrel and frame around a cylinder, wood or rubber grip "
          "with a steel core", {
              "barrel_length": num(U(55, 160), "barrel length"),
              "drum_radius": num(U(17, 21), "cylinder (drum) radius"),
              "grip_height": num(U(80, 105)),
              "metal": mat(["steel", "stainless_steel"]),
              "grip_material": mat(["wood", "rubber", "nylon"]),
          }, F)
def revolver(p, rng):
    rd, bl = p["drum_radius"], p["barrel_length"]
    fh = 2 * rd + 8
    fl = 2 * rd + 34
    rb = 8.0
    return obj(
        box("frame", (fl, fh, fh), p["metal"], (0, 0, 0), wall=3),
        cyl("drum", rd, fl - 8, p["metal"], (0, 0, 0), X, wall=5),
        cyl("barrel", rb, bl, p["metal"], (fl / 2 + bl / 2, 0, rd + 4 - rb), X, wall=rb - 4.5),
        box("grip", (36, 28, p["grip_height"]), p["grip_material"], (-fl / 2 + 10, 0, -fh / 2 - p["grip_height"] / 2), wall=4),
        box("grip_core", (24, 10, p["grip_height"] - 10), p["metal"], (-fl / 2 + 10, 0, -fh / 2 - p["grip_height"] / 2)),
        box("hammer", (10, 6, 12), p["metal"], (-fl / 2 - 5, 0, fh / 2 - 8)),
    )


@register("bullet", "bullet", "cartridges: brass case with powder, lead or copper projectile", {
    "calibre": num({"choice": [5.56, 7.62, 9.0, 11.43]}, "projectile diameter"),
    "case_length": num(U(18, 50), "length of the case"),
    "rounds": count({"uniform_int": [1, 6]}, "cartridges side by side"),
    "projectile_material": mat(["lead", "copper", "brass"]),
}, F)
def bullet(p, rng):
    c, cl = p["calibre"], p["case_length"]
    r = c / 2 + 0.6
    pl = 1.4 * c
    parts = []
    for i in range(p["rounds"]):
        y = (2 * r + 1) * i
        parts += [
            cyl(f"case{i}", r, cl, "brass", (0, y, 0), wall=0.5, fill="black_powder", level=0.85),
            cone(f"projectile{i}", c / 2, c / 5, pl, p["projectile_material"], (0, y, cl / 2 + pl / 2)),
        ]
    return obj(parts)


@register("handcuffs", "handcuffs", "two steel cuffs (segmented rings) with lock housings, "
          "joined by a chain", {
              "cuff_radius": num(U(30, 38), "mid radius of a cuff"),
              "chain_length": num(U(20, 45)),
              "metal": mat(["steel", "stainless_steel", "nickel"]),
          }, F)
def handcuffs(p, rng):
    R, cl, m = p["cuff_radius"], p["chain_length"], p["metal"]
    w = 5.0
    cx = R + w / 2 + cl / 2 + 1
    parts = ring("left", R, w, 4, m, (-cx, 0, 0), n=16) + ring("right", R, w, 4, m, (cx, 0, 0), n=16)
    x0 = -cx + R + w / 2 + 1
    link = (2 * cx - 2 * (R + w / 2 + 1)) / 3
    for i in range(3):
        parts.append(box(f"link{i}", (link, 4, 4), m, (x0 + link * (i + 0.5), 0, 0)))
    parts += [
        box("lock_left", (14, 22, 10), m, (-cx - R - w / 2 - 1.5 - 7, 0, 0)),
        box("lock_right", (14, 22, 10), m, (cx + R + w / 2 + 1.5 + 7, 0, 0)),
    ]
    return obj(parts)


@register("baton", "baton", "telescopic baton: rubber grip around a steel tube, steel shafts, ball tip", {
    "length": num(U(200, 480), "overall length (short: collapsed)"),
    "grip_radius": num(U(13, 16)),
    "grip_material": mat(["rubber", "nylon", "leather"]),
}, F)
def baton(p, rng):
    L, rg = p["length"], p["grip_radius"]
    hl = min(190.0, 0.5 * L)
    parts = [
        cyl("grip", rg, hl, p["grip_material"], (hl / 2, 0, 0), X, wall=2.5),
        cyl("tube", rg - 3.5, hl - 7, "steel", (hl / 2, 0, 0), X, wall=1.5),
    ]
    rest = L - hl - 16
    x = hl
    if rest > 30:
        s = rest / 2
        parts += [cyl("shaft1", 8, s, "steel", (x + s / 2, 0, 0), X, wall=1.5),
                  cyl("shaft2", 6, s, "steel", (x + 1.5 * s, 0, 0), X)]
        x += rest
    parts.append(sph("tip", 8, "steel", (x + 8, 0, 0)))
    return obj(parts)


@register("pepper_spray", "sprayer", "pepper or defence spray: aluminium can with liquid, plastic "
          "actuator and nozzle", {
              "radius": num(U(12, 20)),
              "height": num(U(70, 130)),
              "liquid": mat(["water", "isopropanol", "vegetable_oil", "ethanol"]),
              "level": frac(U(0.3, 0.9)),
              "can_material": mat(["aluminum", "steel"], weights=[3, 1]),
          }, F)
def pepper_spray(p, rng):
    r, h = p["radius"], p["height"]
    return obj(
        cyl("can", r, h, p["can_material"], (0, 0, 0), wall=0.5, fill=p["liquid"], level=p["level"]),
        cyl("actuator", 0.8 * r, 16, "pp", (0, 0, h / 2 + 8)),
        box("nozzle", (10, 4, 4), "pp", (0.8 * r + 5, 0, h / 2 + 10)),
        box("clip", (2, 10, 0.5 * h), "pp", (-r - 1, 0, 0.1 * h)),
    )


@register("lighter", "lighter", "pocket lighter: plastic tank of liquefied gas, steel hood with the "
          "flint wheel", {
              "width": num(U(22, 27)),
              "height": num(U(55, 72)),
              "depth": num(U(10, 13)),
              "body_material": mat(["pp", "abs", "pmma", "brass"], weights=[3, 2, 1, 1]),
              "level": frac(U(0.2, 0.95), "gas fill"),
          }, F)
def lighter(p, rng):
    w, h, d = p["width"], p["height"], p["depth"]
    metal_body = p["body_material"] == "brass"
    return obj(
        box("body", (w, d, h), p["body_material"], (0, 0, 0), wall=0.6 if metal_body else 1.2,
            fill="gasoline", level=p["level"]),  # gasoline stands in for butane
        box("hood", (w, d, 12), "steel", (0, 0, h / 2 + 6), wall=0.5),
        cyl("wheel", 4, 6, "steel", (w / 4, 0, h / 2 + 6), Y),
        cyl("valve", 1.5, 8, "brass", (-w / 4, 0, h / 2 + 6)),
    )


@register("battery_pack", "power_bank", "power bank: plastic or aluminium shell holding lithium-ion "
          "cells (pouch or 18650) and a charging board", {
              "length": num(U(90, 150)),
              "width": num(U(60, 82)),
              "thickness": num(U(14, 26)),
              "shell_material": mat(["abs", "pc", "aluminum"]),
              "cylindrical": flag(0.5, "18650 cells where they fit (1) or a pouch (0)"),
          }, F)
def battery_pack(p, rng):
    L, W, T = p["length"], p["width"], p["thickness"]
    wall = 1.5
    ci = L / 2 - wall  # cavity half length
    cell_len = L - 2 * wall - 1 - 16 - 0.5
    cx = -ci + 0.5 + cell_len / 2
    parts = [box("shell", (L, W, T), p["shell_material"], (0, 0, 0), wall=wall)]
    n = int((W - 2 * wall - 1) // 18.6)
    if p["cylindrical"] > 0.5 and T - 2 * wall >= 18.6 and n >= 1 and cell_len >= 65:
        for i in range(n):
            y = (i - (n - 1) / 2) * 18.6
            parts.append(cyl(f"cell{i}", 9, 65, "li_ion_cell", (-ci + 0.5 + 32.5, y, 0), X))
        bx = -ci + 0.5 + 65 + 0.5
    else:
        parts.append(box("cells", (cell_len, W - 2 * wall - 1, T - 2 * wall - 1), "li_ion_cell", (cx, 0, 0)))
        bx = cx + cell_len / 2 + 0.5
    bl = ci - 0.5 - bx
    parts.append(box("board", (bl, W - 2 * wall - 2, 1.6), "fr4", (bx + bl / 2, 0, 0)))
    return obj(parts)


@register("claw_hammer", "hammer", "claw hammer: steel head with face and claw, handle of wood, "
          "fibreglass or steel with a rubber grip", {
              "handle_length": num(U(240, 330)),
              "head_width": num(U(95, 130), "head length across the handle"),
              "handle_material": mat(["wood", "e_glass", "steel"]),
          }, F)
def claw_hammer(p, rng):
    hl, hw = p["handle_length"], p["head_width"]
    gl = 100.0
    free = hl - gl
    return obj(
        box("grip", (gl, 30, 36), "rubber", (-gl / 2, 0, 0), wall=3),
        box("grip_core", (gl - 7, 23, 29), p["handle_material"], (-gl / 2, 0, 0)),
        box("handle", (free, 24, 30), p["handle_material"], (free / 2, 0, 0)),
        box("head", (28, 0.55 * hw, 28), "steel", (free + 14, 0, 0)),
        cyl("face", 14, 0.15 * hw, "steel", (free + 14, 0.275 * hw + 0.075 * hw, 0), Y),
        box("claw", (24, 0.3 * hw, 12), "steel", (free + 14, -0.275 * hw - 0.15 * hw, 4)),
    )


@register("spanner", "wrench", "combination spanner: forged steel shaft, open-end jaws and a ring end", {
    "length": num(U(120, 230), "shaft length"),
    "opening": num(U(8, 24), "jaw opening"),
    "metal": mat(["steel", "stainless_steel"]),
}, F)
def spanner(p, rng):
    L, o, m = p["length"], p["opening"], p["metal"]
    sw = 0.7 * o + 8
    jl = 0.9 * o + 8
    R = 0.5 * o + 6
    rw = 6.0
    parts = [
        box("shaft", (L, sw, 6), m, (0, 0, 0)),
        box("jaw_base", (8, o + 16, 7), m, (L / 2 + 4, 0, 0)),
        box("jaw_a", (jl, 8, 7), m, (L / 2 + 8 + jl / 2, o / 2 + 4, 0)),
        box("jaw_b", (jl, 8, 7), m, (L / 2 + 8 + jl / 2, -o / 2 - 4, 0)),
    ]
    parts += ring("ring", R, rw, 7, m, (-L / 2 - R - rw / 2, 0, 0), n=12)
    return obj(parts)


@register("pliers", "pliers", "combination pliers: two steel halves crossing at the pivot, "
          "plastic-coated handles", {
              "jaw_length": num(U(30, 55)),
              "handle_length": num(U(100, 150)),
              "opening_deg": num(U(3, 14), "half-angle between the halves", unit="deg"),
              "grip_material": mat(["pvc", "pp", "rubber"]),
          }, F)
def pliers(p, rng):
    jl, hl, a = p["jaw_length"], p["handle_length"], p["opening_deg"]
    t = 6.0
    gl = hl - 30

    def half(tag: str, z: float) -> list[dict]:
        return [
            box(f"jaw_{tag}", (jl, 11, t), "steel", (jl / 2, 0, z)),
            box(f"neck_{tag}", (30, 12, t), "steel", (-15, 0, z)),
            box(f"grip_{tag}", (gl, 15, t + 4), p["grip_material"], (-30 - gl / 2, 0, z), wall=1.5),
            box(f"handle_{tag}", (gl - 4, 11, t), "steel", (-30 - gl / 2, 0, z)),
        ]

    return obj(rotz(half("a", (t + 4) / 2), a) + rotz(half("b", -(t + 4) / 2), -a))


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
