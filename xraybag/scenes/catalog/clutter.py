"""Benign clutter: clothes, shoes, books, umbrellas, keys, coins, belts."""

from __future__ import annotations

import math

from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register
from xraybag.scenes.catalog._parts import X, box, cone, cyl, ell, obj, ring

F = "clutter"
FABRICS = ["cotton", "polyester", "wool", "nylon_fabric"]


#: how far the lid of a full bag may press a stack of folded clothes, as a fraction of its height
#: (a modelling choice: pressed to 0.7, cotton at 0.5 g/cm3 as folded becomes 0.71 g/cm3, still
#: well under its fibre's 1.54)
FOLDED_PRESS = 0.7


@register("folded_clothes", None, "a stack of folded garments, optionally with a metal zip and buttons; soft: "
          "the physics packer may press it to 0.7 of its height in a bag that does not fit (press)", {
    "length": num(U(220, 330)),
    "width": num(U(160, 250)),
    "layers": count({"uniform_int": [1, 4]}),
    "layer_thickness": num(U(6, 22)),
    "fabric": mat(FABRICS),
    "zip": flag(0.4, "a metal zip on top (1) or none (0)"),
}, F)
def folded_clothes(p, rng):
    L, W, n, t = p["length"], p["width"], p["layers"], p["layer_thickness"]
    parts = []
    z = 0.0
    for i in range(n):
        s = 1.0 - 0.05 * i
        parts.append(box(f"layer{i}", (L * s, W * s, t), p["fabric"], (0, 0, z + t / 2)))
        z += t
    if p["zip"] > 0.5:
        parts.append(box("zip", (0.6 * L, 6, 1.5), "brass", (0, 0, z + 0.75)))
        for k in range(3):
            parts.append(cyl(f"button{k}", 6, 2.5, "nickel", (-0.3 * L + 0.3 * L * k, 0.25 * W, z + 1.25)))
    # folded fabric gives under the lid (:mod:`xraybag.engine.packing.press`)
    return {**obj(parts), "press": FOLDED_PRESS}


@register("sneaker", None, "shoe: rubber or foam sole with a steel shank, leather or fabric upper, "
          "metal eyelets", {
              "length": num(U(230, 310)),
              "width": num(U(85, 115)),
              "sole_thickness": num(U(20, 38)),
              "upper_height": num(U(45, 75)),
              "upper_material": mat(["leather", "nylon_fabric", "polyester", "pvc"]),
              "sole_material": mat(["rubber", "pvc", "ldpe"]),
          }, F)
def sneaker(p, rng):
    L, W, st, uh = p["length"], p["width"], p["sole_thickness"], p["upper_height"]
    parts = [
        box("sole", (L, W, st), p["sole_material"], (0, 0, st / 2), wall=4),
        box("shank", (0.35 * L, 15, 1.5), "steel", (-0.1 * L, 0, st / 2)),
        ell("upper", (L / 2 - 8, W / 2 - 4, uh / 2), p["upper_material"], (0, 0, st + uh / 2), wall=2.5),
    ]
    for k in range(4):
        parts.append(cyl(f"eyelet{k}", 2.5, 1.0, "nickel", (0.1 * L - 12 * k, 0, st + uh + 0.5)))
    return obj(parts)


@register("hardback_book", None, "book: paper block between cardboard covers and a spine", {
    "length": num(U(150, 260)),
    "width": num(U(105, 190)),
    "pages_thickness": num(U(8, 50)),
    "cover_thickness": num(U(0.4, 3)),
    "paper": mat(["paper", "cellulose"], weights=[4, 1]),
}, F)
def hardback_book(p, rng):
    L, W, pt, ct = p["length"], p["width"], p["pages_thickness"], p["cover_thickness"]
    return obj(
        box("pages", (L - 4, W - 3, pt), p["paper"], (0, 1.5, 0)),
        box("cover_front", (L, W, ct), "cardboard", (0, 0, pt / 2 + ct / 2)),
        box("cover_back", (L, W, ct), "cardboard", (0, 0, -pt / 2 - ct / 2)),
        box("spine", (L, ct, pt), "cardboard", (0, -W / 2 + ct / 2, 0)),
    )


@register("umbrella", None, "folded umbrella: fabric canopy around the steel shaft and ribs, plastic "
          "or wooden handle and tip", {
              "length": num(U(180, 320), "folded canopy length"),
              "radius": num(U(18, 30)),
              "ribs": count({"uniform_int": [6, 10]}),
              "canopy": mat(["polyester", "nylon_fabric"]),
              "shaft_material": mat(["steel", "aluminum"]),
              "handle_material": mat(["pp", "wood", "abs"]),
          }, F)
def umbrella(p, rng):
    L, r, n = p["length"], p["radius"], p["ribs"]
    parts = [
        cyl("canopy", r, L, p["canopy"], (0, 0, 0), X, wall=2.0),
        cyl("shaft", 4, L - 6, p["shaft_material"], (0, 0, 0), X, wall=0.8),
    ]
    rr = min(r - 4, 9.0)
    for k in range(n):
        a = 2 * math.pi * k / n
        parts.append(cyl(f"rib{k}", 0.9, L - 8, "steel", (0, rr * math.cos(a), rr * math.sin(a)), X))
    parts += [
        cyl("handle", r * 0.9, 70, p["handle_material"], (-L / 2 - 35, 0, 0), X),
        cone("tip", r * 0.5, 3, 25, p["handle_material"], (L / 2 + 12.5, 0, 0), (0, 90, 0)),
    ]
    return obj(parts)


@register("keys", None, "bunch of keys on a steel split ring", {
    "keys": count({"uniform_int": [1, 6]}),
    "key_length": num(U(40, 70)),
    "ring_radius": num(U(10, 16)),
    "metal": mat(["brass", "nickel", "steel"]),
}, F)
def keys(p, rng):
    R, kl, n = p["ring_radius"], p["key_length"], p["keys"]
    parts = ring("ring", R, 1.6, 1.6, "steel", (0, 0, 0), n=12)
    r0 = R + 2.5
    for i in range(n):
        a = -60 + 120 * i / max(n - 1, 1)
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        hw, bl = 22.0, kl - 22
        z = (i - (n - 1) / 2) * 2.2
        hx = r0 + 11
        bx = r0 + 22 + bl / 2
        parts += [
            box(f"key{i}_head", (22, hw, 2.0), p["metal"], (hx * c, hx * s, z), (0, 0, a)),
            box(f"key{i}_blade", (bl, 7, 2.0), p["metal"], (bx * c, bx * s, z), (0, 0, a)),
        ]
    return obj(parts)


@register("coins", None, "a handful of coins, scattered flat or in small stacks", {
    "coins": count({"uniform_int": [2, 14]}),
    "radius": num(U(8, 14)),
    "thickness": num(U(1.4, 2.6)),
    "metal": mat(["brass", "copper", "nickel", "steel", "zinc", "aluminum"]),
}, F)
def coins(p, rng):
    n, r, t = p["coins"], p["radius"], p["thickness"]
    per_row = 4
    parts = []
    for i in range(n):
        stack, level = divmod(i, 2)
        col, row = stack % per_row, stack // per_row
        parts.append(cyl(f"coin{i}", r, t, p["metal"], (col * (2 * r + 1), row * (2 * r + 1), level * t)))
    return obj(parts)


@register("belt", None, "rolled leather belt with a metal buckle", {
    "roll_radius": num(U(30, 50)),
    "width": num(U(25, 40), "strap width"),
    "leather": mat(["leather", "nylon_fabric", "pvc"], weights=[4, 1, 1]),
    "buckle_metal": mat(["steel", "brass", "zinc", "stainless_steel"]),
}, F)
def belt(p, rng):
    R, bw = p["roll_radius"], p["width"]
    m = p["buckle_metal"]
    parts = ring("strap", R, 4.0, bw, p["leather"], (0, 0, 0), n=16)
    parts += ring("strap_inner", R - 5, 4.0, bw, p["leather"], (0, 0, 0), n=16)
    x = R + 2 + 3 + 2  # beyond the roll's outer corners
    fh = bw + 10
    fw = bw + 16
    parts += [
        box("buckle_left", (4, 4, fh), m, (x, -fw / 2 + 2, 0)),
        box("buckle_right", (4, 4, fh), m, (x, fw / 2 - 2, 0)),
        box("buckle_top", (4, fw - 8, 4), m, (x, 0, fh / 2 - 2)),
        box("buckle_bottom", (4, fw - 8, 4), m, (x, 0, -fh / 2 + 2)),
        box("buckle_bar", (4, fw - 8, 3), m, (x, 0, 0)),
    ]
    return obj(parts)
