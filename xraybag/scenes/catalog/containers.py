"""Liquid containers of CLCXray (cans, cartons, bottles, vacuum cups, spray cans, tins) and benign
food cans and toiletries."""

from __future__ import annotations

from xraybag.scenes.catalog.registry import U, flag, frac, mat, num, register
from xraybag.scenes.catalog._parts import box, cone, cyl, obj

F = "containers"
DRINKS = ["water", "soft_drink", "milk", "ethanol", "vinegar"]


def _bottle(r, bh, sh, rn, nh, material, wall, liquid, level, cap_material, cap_h=14.0) -> dict:
    return obj(
        cyl("body", r, bh, material, (0, 0, bh / 2), wall=wall, fill=liquid, level=level),
        cone("shoulder", r, rn, sh, material, (0, 0, bh + sh / 2), wall=wall),
        cyl("neck", rn, nh, material, (0, 0, bh + sh + nh / 2), wall=wall),
        cyl("cap", rn + 1.5, cap_h, cap_material, (0, 0, bh + sh + nh + cap_h / 2), wall=1.2),
    )


@register("drink_can", "can", "aluminium beverage can with a drink and a pull tab", {
    "radius": num(U(26, 34)),
    "height": num(U(90, 168)),
    "liquid": mat(["soft_drink", "water", "ethanol", "milk"]),
    "level": frac(U(0.75, 0.97)),
    "material": mat(["aluminum", "steel"], weights=[4, 1]),
}, F)
def drink_can(p, rng):
    r, h = p["radius"], p["height"]
    return obj(
        cyl("can", r, h, p["material"], (0, 0, 0), wall=0.3, fill=p["liquid"], level=p["level"]),
        box("tab", (20, 12, 0.6), "aluminum", (0.3 * r, 0, h / 2 + 0.3)),
    )


@register("carton_drink", "carton_drink", "paperboard drink carton (juice or milk) with a plastic cap", {
    "width": num(U(40, 95)),
    "depth": num(U(30, 95)),
    "height": num(U(90, 230)),
    "liquid": mat(["milk", "fruit", "soft_drink", "water"]),
    "level": frac(U(0.6, 0.95)),
}, F)
def carton_drink(p, rng):
    w, d, h = p["width"], p["depth"], p["height"]
    return obj(
        box("carton", (w, d, h), "cardboard", (0, 0, 0), wall=0.6, fill=p["liquid"], level=p["level"]),
        cyl("cap", min(12.0, 0.3 * min(w, d)), 10, "hdpe", (0, 0, h / 2 + 5)),
    )


@register("wine_bottle", "glass_bottle", "glass bottle (wine, spirits, sauce): body, shoulder and neck "
          "with a cap or cork", {
              "radius": num(U(30, 44)),
              "body_height": num(U(110, 210)),
              "shoulder": num(U(20, 60)),
              "neck_radius": num(U(11, 16)),
              "neck_length": num(U(35, 90)),
              "wall": num(U(2.5, 4.5)),
              "liquid": mat(["water", "ethanol", "vegetable_oil", "vinegar", "soft_drink"]),
              "level": frac(U(0.4, 0.97)),
              "glass": mat(["glass", "borosilicate_glass", "lead_glass"], weights=[6, 1, 1]),
              "cap_material": mat(["aluminum", "wood", "pp"]),
          }, F)
def wine_bottle(p, rng):
    return _bottle(p["radius"], p["body_height"], p["shoulder"], p["neck_radius"], p["neck_length"],
                   p["glass"], p["wall"], p["liquid"], p["level"], p["cap_material"])


@register("water_bottle", "plastic_bottle", "PET bottle with water, a soft drink, or a flammable or "
          "oxidising liquid", {
              "radius": num(U(28, 45)),
              "body_height": num(U(120, 230)),
              "shoulder": num(U(20, 50)),
              "neck_radius": num(U(12, 15)),
              "neck_length": num(U(12, 25)),
              "liquid": mat(["water", "soft_drink", "ethanol", "gasoline", "hydrogen_peroxide_30", "acetone"],
                            weights=[5, 3, 1, 1, 1, 1]),
              "level": frac(U(0.3, 0.97)),
              "material": mat(["pet", "hdpe"], weights=[4, 1]),
          }, F)
def water_bottle(p, rng):
    return _bottle(p["radius"], p["body_height"], p["shoulder"], p["neck_radius"], p["neck_length"],
                   p["material"], 0.4, p["liquid"], p["level"], "pp", cap_h=12.0)


@register("vacuum_cup", "vacuum_cup", "double-wall stainless steel vacuum flask (vacuum between the "
          "walls) with a drink and a plastic lid", {
              "radius": num(U(30, 45)),
              "height": num(U(140, 280)),
              "gap": num(U(2, 5), "vacuum gap between the walls"),
              "liquid": mat(["water", "milk", "soft_drink", "ethanol"]),
              "level": frac(U(0.2, 0.95)),
              "lid_material": mat(["pp", "abs", "stainless_steel"], weights=[3, 2, 1]),
          }, F)
def vacuum_cup(p, rng):
    r, h, g = p["radius"], p["height"], p["gap"]
    wo, wi = 0.6, 0.5
    return obj(
        cyl("outer", r, h, "stainless_steel", (0, 0, 0), wall=wo),
        cyl("inner", r - wo - g, h - 2 * wo - 2 * g, "stainless_steel", (0, 0, 0), wall=wi,
            fill=p["liquid"], level=p["level"]),
        cyl("lid", r, 28, p["lid_material"], (0, 0, h / 2 + 14), wall=2 if p["lid_material"] != "stainless_steel" else 0.6),
    )


@register("spray_can", "spray_can", "aerosol can (deodorant, hairspray, paint): can with a liquid, "
          "metal dome and valve under a plastic cap", {
              "radius": num(U(22, 34)),
              "height": num(U(100, 200)),
              "liquid": mat(["ethanol", "isopropanol", "perfume", "acetone", "water"]),
              "level": frac(U(0.15, 0.8)),
              "can_material": mat(["aluminum", "steel"], weights=[3, 2]),
              "cap_material": mat(["pp", "abs", "hdpe"]),
          }, F)
def spray_can(p, rng):
    r, h = p["radius"], p["height"]
    ch = 42.0
    z_cap = h / 2 + ch / 2
    cav0 = h / 2 + 1.2  # floor of the cap's cavity
    return obj(
        cyl("can", r, h, p["can_material"], (0, 0, 0), wall=0.4, fill=p["liquid"], level=p["level"]),
        cyl("cap", r + 0.5, ch, p["cap_material"], (0, 0, z_cap), wall=1.2),
        cone("dome", r - 1.5, 0.45 * r, 12, p["can_material"], (0, 0, cav0 + 0.3 + 6), wall=0.4),
        cyl("actuator", 8, 10, "pp", (0, 0, cav0 + 0.3 + 12 + 5)),
    )


@register("tin_can", "tin", "tinplate tin (tea, biscuits, mints): round or rectangular, with dry "
          "contents", {
              "width": num(U(50, 160), "diameter or length"),
              "depth": num(U(40, 120), "rectangular tins"),
              "height": num(U(18, 110)),
              "round": flag(0.5, "round (1) or rectangular (0)"),
              "contents": mat(["sucrose", "flour", "chocolate", "cellulose", "salt"]),
              "level": frac(U(0.3, 0.95)),
              "material": mat(["steel", "tin", "aluminum"], weights=[5, 1, 2]),
          }, F)
def tin_can(p, rng):
    w, d, h = p["width"], p["depth"], p["height"]
    if p["round"] > 0.5:
        body = cyl("tin", w / 2, h, p["material"], (0, 0, 0), wall=0.3, fill=p["contents"], level=p["level"])
        lid = cyl("lid", w / 2 + 0.5, 6, p["material"], (0, 0, h / 2 + 3), wall=0.3)
    else:
        body = box("tin", (w, d, h), p["material"], (0, 0, 0), wall=0.3, fill=p["contents"], level=p["level"])
        lid = box("lid", (w + 1, d + 1, 6), p["material"], (0, 0, h / 2 + 3), wall=0.3)
    return obj(body, lid)


@register("food_can", None, "steel food can (soup, beans, fish, fruit)", {
    "radius": num(U(32, 52)),
    "height": num(U(45, 125)),
    "contents": mat(["fruit", "water", "vegetable_oil", "protein", "honey"]),
    "level": frac(U(0.85, 0.98)),
}, F)
def food_can(p, rng):
    r, h = p["radius"], p["height"]
    return obj(
        cyl("can", r, h, "steel", (0, 0, 0), wall=0.25, fill=p["contents"], level=p["level"]),
        cyl("rim_top", r + 1, 2, "steel", (0, 0, h / 2 + 1)),
    )


@register("lotion_bottle", None, "toiletry bottle (shampoo, lotion, gel) with a flip cap", {
    "width": num(U(40, 80)),
    "depth": num(U(22, 45)),
    "height": num(U(80, 190)),
    "liquid": mat(["shampoo", "glycerol", "water", "perfume"]),
    "level": frac(U(0.2, 0.95)),
    "material": mat(["hdpe", "pp", "pet", "ldpe"]),
}, F)
def lotion_bottle(p, rng):
    w, d, h = p["width"], p["depth"], p["height"]
    return obj(
        box("bottle", (w, d, h), p["material"], (0, 0, 0), wall=1.0, fill=p["liquid"], level=p["level"]),
        cyl("cap", min(15.0, d / 2), 20, "pp", (0, 0, h / 2 + 10)),
    )
