"""Garments: folded clothes as deformable sheets with hems, seams, collars, pockets, buttons and zips.

A garment is one draped sheet (:mod:`xraybag.scenes.sheets`) whose ``thickness`` is one ply of its
fabric. Plies give it the layers of a folded garment (a T-shirt folded in two is two plies
everywhere), and more where the fabric lies doubled: hems along the edges, side seams, a collar
and button placket, pockets, a waistband, sleeves folded back. Fittings ride on its top: shirt
buttons, a jeans button and rivets, the fly zip of trousers, the long zip and press studs of a
jacket. Positions are in the sheet's flat frame (u along its length, v across, mm from the centre).
"""

from __future__ import annotations

from xraybag.scenes.catalog.registry import U, count, mat, num, register

F = "clutter"
FABRICS = ["cotton", "polyester", "wool", "nylon_fabric"]

#: kind: (length range, width range, one ply's thickness range, plies everywhere) as packed
GARMENTS = {
    "tshirt": ((260, 380), (200, 280), (0.5, 0.9), 2),
    "shirt": ((260, 380), (200, 280), (0.4, 0.7), 2),
    "sweater": ((280, 400), (220, 290), (1.5, 3.5), 2),
    "trousers": ((300, 420), (180, 280), (0.8, 1.6), 3),
    "scarf": ((260, 420), (120, 240), (0.6, 2.0), 2),
    "towel": ((260, 380), (180, 280), (1.5, 3.0), 3),
    "jacket": ((300, 420), (220, 300), (1.0, 3.0), 2),
}
KINDS = list(GARMENTS)


def _ply(u0, v0, u1, v1, layers=1):
    return {"min": [float(u0), float(v0)], "max": [float(u1), float(v1)], "layers": int(layers)}


def _hems(L, W, width, edges, layers=1):
    """Bands ``width`` wide along the given edges ('u-', 'u+', 'v-', 'v+')."""
    a, b = L / 2, W / 2
    rect = {"u-": (-a, -b, -a + width, b), "u+": (a - width, -b, a, b),
            "v-": (-a, -b, a, -b + width), "v+": (-a, b - width, a, b)}
    return [_ply(*rect[e], layers) for e in edges]


def _tshirt(L, W, rng, p):
    hem = rng.uniform(12, 25)
    sleeve = rng.uniform(0.18, 0.28) * W  # sleeves folded back over the body along both sides
    plies = _hems(L, W, hem, ["u-"]) + [_ply(L / 2 - 25, -W / 4, L / 2, W / 4)]  # bottom hem, neck rib
    plies += [_ply(-L / 4, W / 2 - sleeve, L / 2 - 30, W / 2), _ply(-L / 4, -W / 2, L / 2 - 30, -W / 2 + sleeve)]
    plies += [_ply(-L / 2, s * (W / 2 - sleeve) - 4, L / 2, s * (W / 2 - sleeve) + 4) for s in (-1, 1)]  # side seams
    return plies, []


def _shirt(L, W, rng, p):
    plies, _ = _tshirt(L, W, rng, p)
    plies += [_ply(L / 2 - 40, -W / 3, L / 2, W / 3, 2), _ply(-L / 2, -12, L / 2 - 40, 12)]  # collar, placket
    n = int(rng.integers(5, 9))
    step = (L - 70) / n
    fits = [{"kind": "button", "at": [float(L / 2 - 55 - k * step), 0.0], "size": float(rng.uniform(9, 12)),
             "height": 2.0, "material": p["button_material"]} for k in range(n)]
    return plies, fits


def _sweater(L, W, rng, p):
    rib = rng.uniform(30, 60)
    return _hems(L, W, rib, ["u-"]) + [_ply(L / 2 - 30, -W / 4, L / 2, W / 4)], []


def _trousers(L, W, rng, p):
    plies = _hems(L, W, 40, ["u+"])  # waistband
    plies += _hems(L, W, rng.uniform(15, 30), ["u-"])  # turn-ups
    plies += [_ply(L / 2 - 150, -W / 2 + 10, L / 2 - 40, -W / 2 + 90), _ply(L / 2 - 150, W / 2 - 90, L / 2 - 40, W / 2 - 10)]
    plies += [_ply(-L / 2, -W / 2, L / 2, -W / 2 + 10), _ply(-L / 2, W / 2 - 10, L / 2, W / 2)]  # side seams
    zip_u = L / 2 - 45
    zip_len = min(rng.uniform(150, 200), L - 90)
    metal = p["zip_material"]
    fits = [{"kind": "zip", "at": [float(zip_u), float(0.1 * W)], "to": [float(zip_u - zip_len), float(0.1 * W)],
             "size": 5.0, "height": 1.6, "material": metal},
            {"kind": "button", "at": [float(L / 2 - 20), float(0.1 * W)], "size": 17.0, "height": 4.0,
             "material": "zinc" if metal == "acetal" else metal}]
    fits += [{"kind": "snap", "at": [float(L / 2 - u), float(s * (W / 2 - v))], "size": 8.0, "height": 2.0,
              "material": "copper"} for u, v in ((45, 15), (150, 92)) for s in (-1, 1)]
    return plies, fits


def _scarf(L, W, rng, p):
    return _hems(L, W, rng.uniform(8, 15), ["u-", "u+", "v-", "v+"]), []


def _towel(L, W, rng, p):
    return _hems(L, W, rng.uniform(30, 50), ["u-", "u+"], 2) + _hems(L, W, 10, ["v-", "v+"]), []


def _jacket(L, W, rng, p):
    plies = _hems(L, W, 30, ["u-"]) + [_ply(L / 2 - 60, -W / 3, L / 2, W / 3, 2)]  # hem band, collar
    plies += [_ply(-L / 2 + 40, -12, L / 2 - 5, 12)]  # the zip's facing
    plies += [_ply(-L / 4, s * W / 4 - 50, L / 8, s * W / 4 + 50) for s in (-1, 1)]  # pockets
    fits = [{"kind": "zip", "at": [float(L / 2 - 10), 0.0], "to": [float(-L / 2 + 45), 0.0],
             "size": float(rng.uniform(5, 8)), "height": 2.0, "material": p["zip_material"]}]
    fits += [{"kind": "snap", "at": [float(L / 8 + 8), float(s * W / 4)], "size": 12.0, "height": 3.0,
              "material": p["button_material"]} for s in (-1, 1)]
    return plies, fits


_BUILD = {"tshirt": _tshirt, "shirt": _shirt, "sweater": _sweater, "trousers": _trousers, "scarf": _scarf,
          "towel": _towel, "jacket": _jacket}


@register("garment", None, "a garment laid over the contents: a folded T-shirt, shirt, sweater, trousers, "
          "scarf, towel or jacket as a deformable sheet that drapes and crumples over what lies below, with "
          "its hems, seams, collar and pockets as extra plies and its buttons, rivets and zips", {
              "kind": count({"uniform_int": [0, len(KINDS) - 1]},
                            ", ".join(f"{k} {name}" for k, name in enumerate(KINDS)), ge=0),
              "fabric": mat(FABRICS),
              "crumple": num(U(4, 25), "height of the folds and wrinkles"),
              "fold_length": num(U(25, 70), "typical distance between folds"),
              "zip_material": mat(["brass", "nickel", "zinc", "acetal"],
                                  "teeth of a zip (trousers, jacket); acetal is a moulded plastic zip"),
              "button_material": mat(["polyester", "pmma", "abs", "nickel"],
                                     "shirt buttons and jacket press studs"),
          }, F)
def garment(p, rng):
    name = KINDS[int(p["kind"]) % len(KINDS)]
    (l0, l1), (w0, w1), (t0, t1), layers = GARMENTS[name]
    length, width = float(rng.uniform(l0, l1)), float(rng.uniform(w0, w1))
    plies, fittings = _BUILD[name](length, width, rng, p)
    plies = [_ply(-length / 2, -width / 2, length / 2, width / 2, layers - 1)] + plies
    return {"sheet": {"size": [length, width], "thickness": float(rng.uniform(t0, t1)),
                      "wrinkles": float(p["crumple"]), "wrinkle_length": float(p["fold_length"]),
                      "plies": plies, "fittings": fittings},
            "material": p["fabric"]}
