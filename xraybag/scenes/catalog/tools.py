"""Hand tools of PIDray: claw hammer, spanner and pliers, modelled from their outlines.

The tools lie in the x-y plane, their thickness along z.
"""

from __future__ import annotations

import math

from xraybag.scenes.catalog._geom import circle, grow, pieces, poly, rect, rings, rounded, turn
from xraybag.scenes.catalog._parts import cyl, extrude, obj, revolve
from xraybag.scenes.catalog.registry import U, mat, num, register

F = "threats"


def _signed(ring) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]))


@register("claw_hammer", "hammer", "claw hammer: forged steel head (cheeks around the eye, round face on a "
          "neck, a curved claw split in two tines), the handle through the eye, a wooden grip or a "
          "fibreglass or steel core in a rubber grip", {
              "handle_length": num(U(240, 330)),
              "head_width": num(U(95, 130), "head length across the handle"),
              "handle_material": mat(["wood", "e_glass", "steel"]),
          }, F)
def claw_hammer(p, rng):
    hl, hw, hm = p["handle_length"], p["head_width"], p["handle_material"]
    e, tw, H = 0.11 * hw + 1, 13.0, 25.0  # eye half width (along y), eye and head thickness (z)
    x0 = hl - 28  # the head from x0 to hl, the eye's centre at y = 0
    parts = []
    cheek = rounded(rect(x0, -e - 4, hl, e + 4), 2.5)
    outline, _ = rings(cheek)
    for side, tag in ((1, "a"), (-1, "b")):
        parts.append(extrude(f"cheek_{tag}", outline, (H - tw) / 2, "steel", z=side * (H + tw) / 4, bevel=1.0))
    parts.append(extrude("eye_face", [(x0, e), (hl, e), (hl, e + 4), (x0, e + 4)], tw, "steel"))
    parts.append(extrude("eye_claw", [(x0, -e - 4), (hl, -e - 4), (hl, -e), (x0, -e)], tw, "steel"))
    # the face: a neck flaring to the round poll, turned about the y axis
    fl = 0.45 * hw - (e + 4)
    rn, rp = 10.0, 14.5
    prof = [(0, 0), (rn, 0), (rn, 0.25 * fl), (rp - 1, 0.25 * fl + 5), (rp, 0.25 * fl + 7), (rp, fl - 1.5),
            (rp - 1.5, fl), (0, fl)]
    parts.append(revolve("face", prof, "steel", (hl - 14, e + 4, 0), "y"))
    # the claw: a curved, tapering centre line; two tines that thin towards their tips
    cl = 0.55 * hw - (e + 4)
    R = cl / math.radians(40)
    S = (hl - 13, -e - 4)
    left, right = [], []
    n = 16
    for i in range(n + 1):
        s = cl * i / n
        t = s / R
        P = (S[0] + R * (math.cos(t) - 1), S[1] - R * math.sin(t))
        nrm = (math.cos(t), -math.sin(t))
        h = 12.5 * (1 - s / cl) + 2.5 * (s / cl)
        left.append((P[0] + h * nrm[0], P[1] + h * nrm[1]))
        right.append((P[0] - h * nrm[0], P[1] - h * nrm[1]))
    claw = left + right[::-1]
    g = 2.5
    tt = (H - g) / 2
    for side, tag in ((1, "a"), (-1, "b")):
        parts.append(extrude(f"claw_{tag}", claw, tt, "steel", z=side * (g + tt) / 2, taper=0.45,
                             taper_axis="-y"))
    # the handle through the eye, and the grip
    xg = 0.42 * hl  # top of the grip
    shaft = rounded(poly([(xg, -e), (hl - 75, -0.72 * e), (x0 - 6, -e), (hl, -e), (hl, e), (x0 - 6, e),
                          (hl - 75, 0.72 * e), (xg, e)]), 0, 30)
    outline, _ = rings(shaft ^ rect(xg, -2 * e, hl, 2 * e))
    grip = rounded(poly([(0, -e - 3), (12, -e - 2), (0.5 * xg, -e - 1), (xg, -e), (xg, e), (0.5 * xg, e + 1),
                         (12, e + 2), (0, e + 3)]), 4)
    grip_outline, _ = rings(grip)
    if hm == "wood":
        parts.insert(0, extrude("grip", grip_outline, 24.0, hm, bevel=5.0))
    else:
        parts.insert(0, extrude("grip", grip_outline, 27.0, "rubber", bevel=4.0, wall=3.0))
        core, _ = rings(grow(grip, -3.3))
        parts.insert(1, extrude("grip_core", core, 20.4, hm, bevel=2.0))
    parts.append(extrude("handle", outline, tw, hm, bevel=2.0))
    return obj(parts)


@register("spanner", "wrench", "combination spanner: a forged steel outline, the open jaw angled 15 degrees "
          "at one end, the twelve-point ring at the other, the shaft tapering between them", {
              "length": num(U(120, 230), "shaft length"),
              "opening": num(U(8, 24), "jaw opening"),
              "metal": mat(["steel", "stainless_steel"]),
          }, F)
def spanner(p, rng):
    L, o, m = p["length"], p["opening"], p["metal"]
    Rj, Rr = 0.8 * o + 7, 0.55 * o + 6.5
    cj, cr = (L / 2 + 0.5 * Rj, 0.0), (-L / 2 - 0.5 * Rr, 0.0)
    w1, w2 = 0.55 * o + 8, 0.5 * o + 7
    body = circle(cj, Rj, 64) + circle(cr, Rr, 64) + poly([(cj[0], -w1 / 2), (cj[0], w1 / 2),
                                                          (cr[0], w2 / 2), (cr[0], -w2 / 2)])
    body = rounded(body, 0, 12.0)
    slot = rect(0, -o / 2, 2 * Rj + 5, o / 2) + circle((0, 0), o / 2, 32)
    slot = poly(turn(slot.to_polygons()[0], 15)).translate((cj[0] + 0.15 * o, 0))
    star = []
    for k in range(24):
        a = math.radians(15 * k)
        r = o / math.sqrt(3) if k % 2 == 0 else o / 2 / math.cos(math.radians(15))
        star.append((cr[0] + r * math.cos(a), r * math.sin(a)))
    outline, holes = rings(rounded(body - slot, 1.5) - poly(star))
    t = 0.3 * o + 4.5
    return obj(extrude("spanner", outline, t, m, holes=holes, bevel=1.2))


@register("pliers", "pliers", "combination pliers: two forged steel halves crossing at a riveted joint "
          "(each half the full thickness outside the joint, half of it inside), serrated jaws with a pipe "
          "grip, handles in plastic-dipped grips", {
              "jaw_length": num(U(30, 55)),
              "handle_length": num(U(100, 150)),
              "opening_deg": num(U(3, 14), "half-angle between the halves", unit="deg"),
              "grip_material": mat(["pvc", "pp", "rubber"]),
          }, F)
def pliers(p, rng):
    jl, hl, a = p["jaw_length"], p["handle_length"], p["opening_deg"]
    t = 9.0
    rj = 10 + 0.05 * jl
    hs = 14.0
    jaw = poly([(0, 0), (jl, 0), (jl + 1, 1.5), (jl - 2, 3.5), (0.55 * jl, 0.6 * rj), (0.45 * rj, 0.88 * rj)])
    jaw = jaw - circle((0.3 * jl, 0), 0.13 * jl, 32)
    x = 0.55 * jl
    while x < jl - 2:
        jaw = jaw - poly([(x, -0.1), (x + 2.0, -0.1), (x + 1.0, 1.0)])
        x += 2.0
    arm = poly([(-0.8 * rj, -0.3), (-hl, -hs + 7), (-hl - 3, -hs - 6), (-0.6 * hl, -hs * 0.5 - 10),
                (-0.5 * rj, -0.95 * rj)])
    disc = circle((0, 0), rj, 64)
    full = rounded(jaw + arm + disc, 0.0, 3.0)
    split = sorted(pieces(full - disc), key=lambda r: -abs(_signed(r[0])))
    big = 3 * (hl + jl)  # the jaw above the x axis, the arm below it (the halves meet there when closed)
    # opened by 0.3 mm: the cut along the x axis and the disc can leave a sliver or a point where
    # the outline touches itself (about 2 % of the draws); opening stays inside the outline
    jaw_o = rings(rounded(poly(next(r[0] for r in split if sum(u for u, _ in r[0]) > 0)) ^ rect(-big, 0, big, big), 0.3))[0]
    arm_s = poly(next(r[0] for r in split if sum(u for u, _ in r[0]) < 0)) ^ rect(-big, -big, big, 0)
    xg = -0.35 * hl
    rear = arm_s ^ rect(-hl - 20, -3 * hs, xg, 3 * hs)
    grip = grow(rear, 1.5) ^ rect(-hl - 20, -3 * hs, xg, 3 * hs)
    core = grow(rear, -0.2) ^ rect(-hl - 20, -3 * hs, xg - 1.7, 3 * hs)
    parts = []
    for side, tag in ((1, "a"), (-1, "b")):
        def place(s, side=side):  # half b is half a mirrored across the x axis; both opened by the angle
            return (s if side > 0 else s.mirror((0, 1))).rotate(side * a)

        hinge = rings(place(disc - circle((0, 0), 2.6, 32)))
        parts += [
            extrude(f"jaw_{tag}", rings(place(poly(jaw_o)))[0], t, "steel", bevel=0.8),
            extrude(f"hinge_{tag}", hinge[0], t / 2, "steel", holes=hinge[1], z=side * t / 4),
            extrude(f"arm_{tag}", rings(place(arm_s ^ rect(xg, -3 * hs, rj, 3 * hs)))[0], t, "steel", bevel=0.8),
            extrude(f"grip_{tag}", rings(place(grip))[0], t + 3, p["grip_material"], bevel=1.2, wall=1.5),
            extrude(f"core_{tag}", rings(place(core))[0], t - 0.4, "steel"),
        ]
    parts.append(cyl("rivet", 2.4, t, "steel"))
    return obj(parts)
