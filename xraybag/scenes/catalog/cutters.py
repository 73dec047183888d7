"""Knives, daggers, blades and scissors (PIDray and CLCXray cutters)."""

from __future__ import annotations

from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register
from xraybag.scenes.catalog._parts import X, box, cyl, obj, ring, sph
from xraybag.scenes.catalog.threats import rotz

F = "cutters"
BLADE_STEELS = ["stainless_steel", "steel"]


def _handle(hl: float, hw: float, ht: float, bt: float, tang_w: float, material: str, x: float) -> list[dict]:
    """A handle box (hollow) from x - hl to x with a steel tang inside its cavity."""
    w = min(4.0, (ht - bt) / 2 - 0.3, (hw - tang_w) / 2 - 0.3)
    return [
        box("handle", (hl, hw, ht), material, (x - hl / 2, 0, 0), wall=w),
        box("tang", (hl - 2 * w - 1, tang_w, bt), "steel", (x - hl / 2, 0, 0)),
    ]


@register("chef_knife", "knife", "kitchen or chef's knife: steel blade with a tip, bolster, tang in a "
          "plastic or wooden handle", {
              "blade_length": num(U(120, 250)),
              "blade_width": num(U(22, 50)),
              "blade_thickness": num(U(1.4, 2.8)),
              "handle_length": num(U(95, 135)),
              "blade_material": mat(BLADE_STEELS),
              "handle_material": mat(["pp", "acetal", "wood", "abs"]),
          }, F)
def chef_knife(p, rng):
    bl, bw, bt, hl = p["blade_length"], p["blade_width"], p["blade_thickness"], p["handle_length"]
    hw, ht = 22.0, max(16.0, bt + 8)
    main, tip = 0.82 * bl, 0.18 * bl
    return obj(
        _handle(hl, hw, ht, bt, min(0.5 * bw, hw - 8.6), p["handle_material"], 0),
        box("bolster", (8, hw, ht - 4), p["blade_material"], (4, 0, 0)),
        box("blade", (main, bw, bt), p["blade_material"], (8 + main / 2, 0, 0)),
        box("tip", (tip, 0.45 * bw, bt), p["blade_material"], (8 + main + tip / 2, 0.275 * bw, 0)),
    )


@register("folding_knife", "knife", "folding pocket knife: steel liners, scales, and a blade open or "
          "folded between the liners", {
              "handle_length": num(U(85, 130)),
              "blade_width": num(U(15, 28)),
              "open": flag(0.5, "blade open (1) or folded (0)"),
              "scale_material": mat(["aluminum", "pp", "wood", "e_glass"]),
              "blade_material": mat(BLADE_STEELS),
          }, F)
def folding_knife(p, rng):
    hl, bw = p["handle_length"], p["blade_width"]
    hw = bw + 6
    bt = 2.5
    bl = 0.9 * hl
    z_liner = bt / 2 + 0.5
    z_scale = bt / 2 + 1.0 + 1.5
    parts = [
        box("scale_a", (hl, hw, 3), p["scale_material"], (0, 0, z_scale)),
        box("liner_a", (hl, hw, 1), "stainless_steel", (0, 0, z_liner)),
        box("liner_b", (hl, hw, 1), "stainless_steel", (0, 0, -z_liner)),
        box("scale_b", (hl, hw, 3), p["scale_material"], (0, 0, -z_scale)),
        box("spacer", (0.5 * hl, 4, bt), "stainless_steel", (-0.25 * hl, -hw / 2 + 2, 0)),
    ]
    if p["open"] > 0.5:
        parts.append(box("blade", (bl, bw, bt), p["blade_material"], (hl / 2 + bl / 2, 0, 0)))
    else:
        parts.append(box("blade", (0.85 * hl, bw * 0.6, bt), p["blade_material"],
                         (0.025 * hl, hw / 2 - 0.3 * bw - 0.5, 0)))
    return obj(parts)


@register("dagger", "dagger", "double-edged dagger: symmetric blade and point, cross guard, grip over "
          "a tang, pommel", {
              "blade_length": num(U(100, 260)),
              "blade_width": num(U(20, 40)),
              "blade_thickness": num(U(3, 6)),
              "grip_length": num(U(90, 125)),
              "guard_material": mat(["steel", "brass", "stainless_steel"]),
              "grip_material": mat(["leather", "wood", "rubber", "nylon"]),
              "blade_material": mat(BLADE_STEELS),
          }, F)
def dagger(p, rng):
    bl, bw, bt, gl = p["blade_length"], p["blade_width"], p["blade_thickness"], p["grip_length"]
    main, tip = 0.8 * bl, 0.2 * bl
    return obj(
        box("blade", (main, bw, bt), p["blade_material"], (10 + main / 2, 0, 0)),
        box("point", (tip, 0.5 * bw, bt), p["blade_material"], (10 + main + tip / 2, 0, 0)),
        box("guard", (10, bw + 40, 12), p["guard_material"], (5, 0, 0)),
        cyl("grip", 13, gl, p["grip_material"], (-gl / 2, 0, 0), X, wall=3),
        box("tang", (gl - 7, 6, min(bt, 6)), "steel", (-gl / 2, 0, 0)),
        sph("pommel", 14, p["guard_material"], (-gl - 14, 0, 0)),
    )


@register("utility_knife", "blade", "box cutter: plastic body with a snap-off steel blade, partly "
          "extended", {
              "length": num(U(120, 170)),
              "extension": num(U(8, 45), "blade length out of the body"),
              "body_material": mat(["abs", "pp", "aluminum"]),
          }, F)
def utility_knife(p, rng):
    L, e = p["length"], p["extension"]
    return obj(
        box("body", (L, 20, 13), p["body_material"], (0, 0, 0), wall=1.5),
        box("blade_inside", (L - 4, 9, 0.5), "steel", (0, 0, 0)),
        box("blade", (e, 9, 0.5), "steel", (L / 2 + e / 2, 0, 0)),
        box("slider", (14, 8, 3), "steel", (0, 0, 13 / 2 + 1.5)),
    )


@register("razor_blades", "blade", "a pack of double-edge razor blades in a paper wrapper", {
    "blades": count({"uniform_int": [1, 10]}),
    "thickness": num(U(0.1, 0.25), "of one blade"),
}, F)
def razor_blades(p, rng):
    n, t = p["blades"], p["thickness"]
    parts = [box("wrapper", (45, 24, n * t + 1.0), "paper", (0, 0, 0), wall=0.3)]
    z0 = -n * t / 2
    for i in range(n):
        parts.append(box(f"blade{i}", (43, 22, t), "stainless_steel", (0, 0, z0 + t * (i + 0.5))))
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


@register("shears", "scissors", "scissors: two steel blades crossing at the pivot, finger loops of "
          "plastic or steel", {
              "blade_length": num(U(60, 130)),
              "blade_width": num(U(8, 16)),
              "opening_deg": num(U(2, 20), "half-angle of the opening", unit="deg"),
              "loop_material": mat(["pp", "abs", "stainless_steel"], weights=[3, 2, 1]),
          }, F)
def shears(p, rng):
    bl, bw, a = p["blade_length"], p["blade_width"], p["opening_deg"]
    R, lw = 13.0, 5.0

    def half(tag, side, z, lz):
        parts = [
            box(f"blade_{tag}", (bl, bw, 2), "stainless_steel", (bl / 2, 0, z)),
            box(f"shank_{tag}", (30, 7, 2), "stainless_steel", (-15, 0, z)),
        ]
        cx = -30 - R - lw / 2 - 0.5
        return parts + ring(f"loop_{tag}", R, lw, 6, p["loop_material"], (cx, side * 0.6 * R, lz), n=12)

    return obj(rotz(half("a", 1, 1.0, 3.0), a) + rotz(half("b", -1, -1.0, -3.0), -a))
