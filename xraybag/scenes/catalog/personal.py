"""Personal items: nail clippers, glasses in a case, watch, jewellery, wallet, make-up, pills,
contact-lens case, tissues (the family ``personal``, with :mod:`.toiletries`).

Every entry has internal structure (a watch's movement, a wallet's chip cards and coins); spectacle
rims and chain links are tubes along paths (``sweep``). Labels: none (clutter).
"""

from __future__ import annotations

import math

from xraybag.scenes.catalog._parts import X, Y, box, cone, cyl, ell, obj, sph
from xraybag.scenes.catalog.personal_parts import (
    GAP,
    METALS,
    F,
    _arc,
    _ellipse,
    _is,
    _rnd,
    _stadium,
    extrude,
    revolve,
    sweep,
)
from xraybag.scenes.catalog.registry import U, count, flag, frac, mat, num, register


@register("nail_clippers", None, "nail clippers (steel): two jaws joined at the tail, cutting edges, "
          "pin and lever (stowed or turned out), sometimes a split keyring", {
              "length": num(U(55, 95)),
              "width": num(U(11, 16)),
              "metal": mat(["stainless_steel", "steel", "nickel"], weights=[4, 3, 1]),
              "lever_out": flag(0.3, "lever turned out for use (1) or stowed (0)"),
              "keyring": flag(0.3),
          }, F)
def nail_clippers(p, rng):
    L, W, m = p["length"], p["width"], p["metal"]
    t = 1.6
    g = 0.18 * W + 1.0
    xp = L / 2 - 14
    hw = W / 2
    jaw = ([(-L / 2 + hw, -hw), (L / 2 - 2.5, -0.42 * W), (L / 2 - 0.6, -0.3 * W), (L / 2, -0.12 * W),
            (L / 2, 0.12 * W), (L / 2 - 0.6, 0.3 * W), (L / 2 - 2.5, 0.42 * W)] + _arc(-L / 2 + hw, 0, hw, 90, 270, 10)[:-1])
    parts = [
        extrude("lower_jaw", jaw, t, m, t / 2),
        extrude("upper_jaw", jaw, t, m, t + g + t / 2),
        box("edges", (2.0, 0.5 * W, g), m, (L / 2 - 1.2, 0, t + g / 2)),
        box("tail", (5.0, 0.8 * W, g), m, (-L / 2 + 4.0, 0, t + g / 2)),
        cyl("pin", 1.4, g, m, (xp, 0, t + g / 2)),
        cyl("pin_top", 1.4, 1.0, m, (xp, 0, 2 * t + g + 0.5)),
    ]
    ll = 0.8 * L
    zl = 2 * t + g + 1.0 + 0.8
    lw = (W - 2) / 2
    x0, x1 = (xp - 3, xp - 3 + ll) if _is(p, "lever_out") else (xp + 3 - ll, xp + 3)
    parts.append(extrude("lever", _stadium(x0, x1, lw), 1.6, m, zl))
    if _is(p, "keyring"):
        rr = 9.0
        loop = [(-L / 2 - 1.0 - rr - 0.8 + x, y, t / 2) for x, y in _ellipse(0, 0, rr, rr, 32)]
        parts.append(sweep("ring", loop, 0.8, m, closed=True))
    return obj(parts)


@register("glasses_case", None, "spectacles or sunglasses, folded, in a hard case with a steel spring "
          "(or loose): PC, acrylic or glass lenses, metal or plastic frame (full rims or rimless), hinges "
          "and screws, temples (plastic ones with a steel core wire), nose pads", {
              "lens_radius": num(U(18, 25)),
              "bridge": num(U(14, 22)),
              "lens_material": mat(["pc", "pmma", "glass"], weights=[4, 3, 1]),
              "frame_material": mat(["stainless_steel", "titanium", "nickel", "pc", "pmma"],
                                    weights=[3, 2, 1, 3, 2]),
              "rims": flag(0.75, "full rims (1) or rimless (0)"),
              "case": flag(0.85, "in a hard case (1) or loose (0)"),
              "case_material": mat(["abs", "pp", "aluminum", "cardboard"], weights=[3, 2, 1, 2]),
          }, F)
def glasses_case(p, rng):
    a, br = p["lens_radius"], p["bridge"]
    b = a * _rnd(rng, 0.7, 0.95)  # oval lenses
    fm, lm = p["frame_material"], p["lens_material"]
    metal = fm in METALS
    rims = _is(p, "rims")
    tl = 1.3 if lm != "glass" else 1.8  # half the lens thickness
    rr = 0.9  # metal rim wire radius
    fw = _rnd(rng, 3.5, 5.5)  # plastic frame: width around the lenses
    ft = 4.0  # plastic frame thickness
    if not rims:
        edge = a
    elif metal:
        edge = a + GAP + 2 * rr
    else:
        edge = a + 0.3 + fw
    xl = br / 2 + (a + 0.3 if rims and not metal else edge)  # lens centres at +-xl
    inner = xl + edge + 0.3  # the hinges' inner faces
    zt = _rnd(rng, 14, 22)  # depth of the folded temples behind the lenses
    z_front = max(tl, ft / 2 if rims and not metal else (rr if rims else 0.0), 1.0)
    hm = fm if metal else "stainless_steel"
    yh = 0.3 * b
    yb = 0.35 * b  # bridge height
    # local frame: the front in xy (lenses facing z), the face side and the folded temples at z > 0
    kids = []
    if rims and not metal:
        # the lens holes' ellipses grown by fw, joined by the nose bridge and a straight brow
        A, B = a + 0.3 + fw, b + 0.3 + fw
        shell = _arc(-xl, 0, A, 90, 340, 25, B) + _arc(xl, 0, A, 200, 450, 25, B)
        holes = [_ellipse(-xl, 0, a + 0.3, b + 0.3), _ellipse(xl, 0, a + 0.3, b + 0.3)]
        kids.append(extrude("front", shell, ft, fm, 0.0, holes=holes, bevel=0.8))
    else:
        xe = br / 2 - (0.3 if not rims else 0.0)
        kids.append(sweep("bridge", [(-xe + 0.8, yb, 0), (-0.5 * xe, yb + 2.5, 0), (0.5 * xe, yb + 2.5, 0), (xe - 0.8, yb, 0)],
                          0.8, fm))
    for s, nm in ((-1, "left"), (1, "right")):
        cx = s * xl
        if rims and metal:
            kids.append(sweep(f"{nm}_rim", [(cx + x, y, 0) for x, y in _ellipse(0, 0, a + GAP + rr, b + GAP + rr, 40)],
                              rr, fm, closed=True))
        kids += [
            ell(f"{nm}_lens", (a, b, tl), lm, (cx, 0, 0)),
            box(f"{nm}_pad", (6, 9, 2.5), "silicone", (s * (br / 2 - 3.5), -0.2 * b, z_front + GAP + 1.25)),
            box(f"{nm}_hinge", (5.0, 4.0, zt - 1.5), hm, (s * (inner + 2.5), yh, (zt - 1.5) / 2)),
            cyl(f"{nm}_screw", 0.9, 2.0, "steel", (s * (inner + 2.5), yh + 3.0, zt / 2 - 1.0), Y),
        ]
        # the folded temple: from its hinge across the front, the ear end bent down
        zz = zt + 1.3 + (0.0 if s < 0 else 3.6)
        x0 = s * (inner + 2.5)
        lt = 2 * inner - 3.0
        path = [(x0, yh, zz), (x0 - s * 0.65 * lt, yh, zz), (x0 - s * 0.8 * lt, yh - 3.0, zz),
                (x0 - s * 0.92 * lt, yh - 8.0, zz), (x0 - s * lt, yh - 14.0, zz)]
        if metal:
            kids.append(sweep(f"{nm}_temple", path, 0.9, fm))
        else:
            kids.append(sweep(f"{nm}_temple", path, 1.6, fm, wall=1.0, fill="steel", level=1.0))
    glasses = {"name": "glasses", "parts": kids,
               "pose": {"position": [0.0, 0.0, 0.0], "rotation_deg": [90.0, 0.0, 0.0]}}
    if not _is(p, "case"):
        return obj(glasses)
    # turned on edge: local y -> world z, local z -> world -y
    zmin, zmax = -z_front, zt + 1.3 + 3.6 + 1.6
    top = (b + 0.3 + fw) if rims and not metal else b + GAP + 2 * rr
    ymin, ymax = -top, max(top, yb + 3.3)
    half_w = inner + 5.0
    cm = p["case_material"]
    wc = {"aluminum": 0.8, "cardboard": 2.0}.get(cm, 1.5)
    cav = (2 * half_w + 4.0, (zmax - zmin) + 4.0, (ymax - ymin) + 4.0)
    cy, cz = -(zmin + zmax) / 2, (ymin + ymax) / 2
    rcase = cav[1] / 2 + wc  # a stadium in plan: rounded ends beyond the straight part holding the glasses
    outline = [(x, y + cy) for x, y in _stadium(-cav[0] / 2 - rcase, cav[0] / 2 + rcase, rcase)]
    return obj(
        extrude("case", outline, cav[2] + 2 * wc, cm, cz, wall=wc),
        box("spring", (0.5 * cav[0], 0.6, 5.0), "steel", (0, cy + cav[1] / 2 - 0.7, cz + cav[2] / 2 - 3.0)),
        glasses,
    )


@register("wristwatch", None, "wristwatch: steel, titanium, gold or plastic case with the movement "
          "(quartz: board, coin cell, coil; mechanical: brass plates, balance, rotor), dial, glass or "
          "sapphire crystal, crown, lugs and spring bars; leather, silicone or nylon strap with a steel "
          "buckle, or a metal link bracelet with a clasp", {
              "case_radius": num(U(17, 23)),
              "case_height": num(U(9, 14)),
              "case_material": mat(["stainless_steel", "titanium", "gold", "pc", "brass"], weights=[5, 1, 1, 2, 1]),
              "quartz": flag(0.65, "quartz (1) or mechanical (0) movement"),
              "crystal": mat(["glass", "alumina", "pmma"], "mineral glass, sapphire or acrylic"),
              "strap": mat(["leather", "silicone", "nylon_fabric", "stainless_steel", "titanium", "gold"],
                           "a metal means a link bracelet", weights=[4, 2, 1, 4, 1, 0.5]),
              "strap_width": num(U(16, 24)),
              "strap_length": num(U(70, 110), "each side"),
          }, F)
def wristwatch(p, rng):
    r, h = p["case_radius"], p["case_height"]
    cm = p["case_material"]
    w = 1.8 if cm == "pc" else 1.2
    if not _is(p, "quartz"):
        h = max(h, 6.4 + 2 * w)
    rc, hc = r - w, h - 2 * w
    z0 = -hc / 2  # cavity floor (case centred at the origin)
    parts = [cyl("case", r, h, cm, (0, 0, 0), wall=w)]
    if _is(p, "quartz"):
        parts += [
            cyl("board", rc - 0.5, 1.0, "fr4", (0, 0, z0 + GAP + 0.5)),
            cyl("cell_can", 5.8, 2.1, "stainless_steel", (-rc / 3, 0, z0 + 1.4 + 1.05), wall=0.2),
            cyl("cell", 5.8 - 0.3, 2.1 - 0.6, "zinc", (-rc / 3, 0, z0 + 1.4 + 1.05)),
            box("coil", (7, 3, 2.0), "copper", (rc / 3, -rc / 4, z0 + 1.4 + 1.0)),
            cyl("gear_train", rc / 4, 0.8, "brass", (rc / 3, rc / 4, z0 + 1.4 + 0.4)),
        ]
        top = z0 + 3.7
    else:
        parts += [
            cyl("main_plate", rc - 0.5, 2.0, "brass", (0, 0, z0 + GAP + 1.0)),
            cyl("balance", 4.5, 0.6, "brass", (rc / 3, 0, z0 + 2.4 + 0.3)),
            box("bridge", (rc / 2, 4.0, 1.2), "brass", (-rc / 3, 0, z0 + 2.4 + 0.6)),
            box("rotor", (rc, rc / 2, 1.2), "tungsten", (0, -rc / 4 - 0.5, z0 + 4.0 + 0.6)),
        ]
        top = z0 + 5.4
    dial_z = max(top + GAP, hc / 2 - 3.0)
    parts.append(cyl("dial", rc - 0.3, 0.4, "brass", (0, 0, dial_z + 0.2)))
    parts += [
        cyl("crystal", r - 1.0, 2.0, p["crystal"], (0, 0, h / 2 + 1.0)),
        cyl("crown", 2.5, 3.0, cm, (r + 1.5, 0, 0), X),
    ]
    sw = min(p["strap_width"], 2 * r - 12)
    y0 = math.sqrt(r * r - (sw / 2) ** 2) + 0.3  # lugs start where the case has curved away
    y1 = r + 5.0  # lug ends
    st = p["strap"]
    for s in (-1, 1):
        nm = "top" if s > 0 else "bottom"
        for k in (-1, 1):
            parts.append(box(f"lug_{nm}{(k + 1) // 2}", (3.0, y1 - y0, 4.0), cm,
                             (k * (sw / 2 + 1.5), s * (y0 + y1) / 2, 0)))
        parts.append(cyl(f"spring_bar_{nm}", 0.8, sw - 0.2, "stainless_steel", (0, s * (r + 2.0), 0), X))
        ys = r + 3.1  # straps start past the spring bars
        sl = p["strap_length"]
        if st in METALS:
            ll = 8.0
            nl = max(3, min(8, int(sl / (ll + 0.3))))
            for i in range(nl):
                y = ys + i * (ll + 0.3) + ll / 2
                parts.append(box(f"link_{nm}{i}", (sw, ll, 3.5), st, (0, s * y, 0)))
            if s > 0:
                y = ys + nl * (ll + 0.3) + 10
                parts.append(box("clasp", (sw - 2, 20, 5.0), "stainless_steel", (0, y, 0), wall=0.6))
        else:
            t = 3.5 if st == "leather" else (3.0 if st == "silicone" else 1.6)
            parts.append(box(f"strap_{nm}", (sw, sl, t), st, (0, s * (ys + sl / 2), 0)))
            if s > 0:
                yb = ys + sl + 2.0 + GAP
                parts += [box("buckle_end", (sw + 6, 4.0, 3.0), "stainless_steel", (0, yb, 0)),
                          box("buckle_left", (3.0, 14, 3.0), "stainless_steel", (-(sw + 6) / 2 + 1.5, yb + 9 + GAP, 0)),
                          box("buckle_right", (3.0, 14, 3.0), "stainless_steel", ((sw + 6) / 2 - 1.5, yb + 9 + GAP, 0)),
                          box("tongue", (1.5, 14, 1.5), "stainless_steel", (0, yb + 9 + GAP, 0))]
    return obj(parts)


@register("jewellery_pouch", None, "jewellery in a fabric or leather pouch: a necklace (a chain of "
          "interlinked oval links of silver, gold or steel wire, optionally a pendant), a ring with a stone, "
          "a pair of stud earrings", {
              "links": count({"uniform_int": [14, 30]}),
              "link_length": num(U(4, 6.5)),
              "metal": mat(["silver", "gold", "stainless_steel", "brass"], weights=[4, 3, 2, 1]),
              "pendant": flag(0.5),
              "ring": flag(0.7),
              "earrings": flag(0.5),
              "pouch_material": mat(["cotton", "polyester", "leather", "nylon_fabric"], weights=[3, 3, 2, 1]),
          }, F)
def jewellery_pouch(p, rng):
    n, ll, m = p["links"], p["link_length"], p["metal"]
    wr = 0.085 * ll  # wire radius
    lw = 0.7 * ll  # link width
    gap = 0.4
    pitch = ll - 4 * wr - gap  # distance between the junctions of a link
    wp = 1.0
    hh = 14.0  # pouch cavity height
    zf = -hh / 2  # cavity floor
    zc = zf + lw / 2 + GAP  # the chain's mid-plane
    # junctions along an Archimedean spiral; each link joins two, alternately flat and upright
    turn = lw + 3.0
    r, th = 10.0, 0.0
    js = []
    for _ in range(n + 1):
        js.append((r * math.cos(th), r * math.sin(th)))
        dth = 2 * math.asin(min(1.0, pitch / (2 * r)))
        th += dth
        r += turn * dth / (2 * math.pi)
    rmax = r + lw
    link = [(x, y, 0.0) for x, y in _stadium(-(ll / 2 - wr), ll / 2 - wr, lw / 2 - wr)]
    kids = []
    for i in range(n):
        (xa, ya), (xb, yb) = js[i], js[i + 1]
        ang = math.degrees(math.atan2(yb - ya, xb - xa))
        q = sweep(f"link{i}", link, wr, m, closed=True)
        q["pose"] = {"position": [(xa + xb) / 2, (ya + yb) / 2, zc], "rotation_deg": [0.0 if i % 2 == 0 else 90.0, 0.0, ang]}
        kids.append(q)
    if _is(p, "pendant"):
        xa, ya = js[n]
        rp = _rnd(rng, 3, 5)
        d = math.hypot(xa, ya)
        k = (d + rp + lw + 1.0) / d
        kids.append(sph("pendant", rp, str(rng.choice(["glass", "alumina", m])), (xa * k, ya * k, zf + rp + GAP)))
        rmax += 2 * rp + lw + 2
    cx_chain = -rmax - 2
    for kd in kids:
        kd["pose"]["position"][0] += cx_chain
    right = 0.0
    if _is(p, "ring"):
        rr = _rnd(rng, 8, 10)
        band = [(rr + 3 + x, y, zf + 1.0 + GAP) for x, y in _ellipse(0, 0, rr, rr, 32)]
        kids += [sweep("ring", band, 1.0, m, closed=True),
                 sph("stone", 2.2, str(rng.choice(["glass", "alumina"])), (2 * rr + 3, 0, zf + 2.0 + GAP + 2.2 + 0.1))]
        right = 2 * rr + 10
    if _is(p, "earrings"):
        for k in range(2):
            x = right + 4 + 9 * k
            kids += [cyl(f"stud{k}", 3.0, 1.5, m, (x, 6, zf + GAP + 0.75)),
                     cyl(f"post{k}", 0.45, 9, m, (x, 6, zf + GAP + 1.5 + 4.5)),
                     box(f"back{k}", (5, 5, 1.0), m, (x, 6, zf + GAP + 10.5 + 0.5))]
        right += 24
    x_lo = cx_chain - rmax - 3
    x_hi = max(right, 3.0) + 3
    y_half = rmax + 3
    pouch = box("pouch", (x_hi - x_lo + 2 * wp, 2 * y_half + 2 * wp, hh + 2 * wp), p["pouch_material"],
                ((x_lo + x_hi) / 2, 0, 0), wall=wp)
    return obj([pouch] + kids)


# ------------------------------------------------------------------------------ wallet, make-up


@register("wallet", None, "folded wallet (leather, nylon or PVC) holding banknotes, PVC cards with "
          "chip modules, and coins in the coin pocket", {
              "length": num(U(105, 125)),
              "width": num(U(85, 100)),
              "material": mat(["leather", "nylon_fabric", "pvc", "polyester"], weights=[5, 2, 1, 1]),
              "cards": count({"uniform_int": [1, 7]}),
              "chip_fraction": frac(U(0.4, 1.0), "share of the cards with a chip"),
              "notes": count({"uniform_int": [0, 12]}, ge=0),
              "coins": count({"uniform_int": [0, 6]}, ge=0),
              "coin_metal": mat(["brass", "nickel", "steel", "copper", "zinc"]),
          }, F)
def wallet(p, rng):
    L, Wd = p["length"], p["width"]
    L, Wd = max(L, 95.0), max(Wd, 62.0)
    w = 1.5 if p["material"] == "leather" else 1.0
    parts = []
    z = 0.0  # cavity floor at 0 for now; the shell is added around the stack
    if p["notes"]:
        nt = 0.11 * p["notes"]
        parts.append(box("notes", (L - 2 * w - 2, Wd - 2 * w - 2, nt), "paper", (0, 0, z + nt / 2)))
        z += nt + 0.05
    nchip = round(p["cards"] * p["chip_fraction"])
    for i in range(p["cards"]):
        dx = (i % 2) * 3.0 - 1.5
        parts.append(box(f"card{i}", (85.6, 54.0, 0.76), "pvc", (dx, -2, z + 0.38)))
        z += 0.76
        if i < nchip:
            parts.append(box(f"chip{i}", (11, 9, 0.35), "copper", (dx - 85.6 / 2 + 15, -2 + 5, z + 0.175)))
            z += 0.35
        z += 0.05
    rc = 11.0
    nc = p["coins"]
    if nc:
        z += 0.3
        per = max(1, int((L - 2 * w - 4) // (2 * rc + 1)))
        for i in range(nc):
            row, col = divmod(i, per)
            t = _rnd(rng, 1.5, 2.3)
            parts.append(cyl(f"coin{i}", rc - 0.5 * (i % 3), t, p["coin_metal"],
                             (-(L - 2 * w) / 2 + 2 + rc + col * (2 * rc + 1), -(Wd - 2 * w) / 2 + 2 + rc + row * (2 * rc + 1),
                              z + 1.2)))
        z += 2.5
    hc = z + 0.6
    for q in parts:
        q["pose"]["position"][2] -= hc / 2 - 0.3
    parts.insert(0, box("shell", (L, Wd, hc + 2 * w), p["material"], (0, 0, 0), wall=w))
    return obj(parts)


@register("makeup_bag", None, "make-up bag with a zip: lipstick (metal case, wax stick), powder "
          "compact (case, mirror, pan of pressed powder), mascara (tube, product, nylon brush on a steel "
          "rod), nail-polish bottle, steel tweezers", {
              "length": num(U(180, 240)),
              "width": num(U(100, 140)),
              "height": num(U(55, 85)),
              "material": mat(["nylon_fabric", "polyester", "pvc", "cotton", "leather"], weights=[3, 3, 2, 1, 1]),
              "lipstick": flag(0.9),
              "compact": flag(0.7),
              "mascara": flag(0.8),
              "nail_polish": flag(0.5),
              "tweezers": flag(0.5),
              "zip_metal": mat(["brass", "nickel", "pp"], "zip teeth and slider"),
          }, F)
def makeup_bag(p, rng):
    L, Wd, H = p["length"], p["width"], p["height"]
    w = 1.0
    wcv = Wd - 2 * w
    zf = -H / 2 + w + GAP
    x = 0.0  # cursor along x from the cavity's start
    items = []
    if _is(p, "lipstick"):
        r = _rnd(rng, 8, 10)
        lb, lc = _rnd(rng, 38, 48), _rnd(rng, 30, 38)
        cm = str(rng.choice(["aluminum", "zinc", "abs"]))
        xc = x + r
        y0 = -wcv / 2 + 2
        items += [cyl("lipstick_base", r, lb, cm, (xc, y0 + lb / 2, zf + r), Y, wall=0.6),
                  cyl("lipstick_stick", r - 2.0, lb - 1.6, "vegetable_oil", (xc, y0 + lb / 2, zf + r), Y),
                  cyl("lipstick_cap", r, lc, cm, (xc, y0 + lb + lc / 2, zf + r), Y, wall=0.6)]
        x += 2 * r + 2
    if _is(p, "compact"):
        rc = min(_rnd(rng, 26, 36), wcv / 2 - 1)
        hc = _rnd(rng, 10, 14)
        cm = str(rng.choice(["abs", "zinc", "brass", "pc"]))
        wc = 1.2 if cm in ("abs", "pc") else 0.7
        xc = x + rc
        zc = zf + hc / 2
        cav_top = zc + hc / 2 - wc
        items += [cyl("compact", rc, hc, cm, (xc, 0, zc), wall=wc),
                  cyl("mirror", rc - wc - 1.5, 1.5, "glass", (xc, 0, cav_top - GAP - 0.75)),
                  cyl("pan", rc - wc - 2.5, 4.0, "aluminum", (xc, 0, zc - hc / 2 + wc + GAP + 2.0), wall=0.3,
                      fill="flour", level=0.9)]
        x += 2 * rc + 2
    if _is(p, "mascara"):
        r = _rnd(rng, 7, 9)
        lt = min(_rnd(rng, 60, 80), wcv - 40)
        lc = min(_rnd(rng, 30, 45), wcv - lt - 4)
        xc = x + r
        y0 = -wcv / 2 + 2
        c0, c1 = y0 + 2.7, y0 + lt - 2.7  # the product sleeve's cavity
        lr = c1 - c0 - 25 - 0.9  # the rod
        items += [cyl("mascara_tube", r, lt, "pp", (xc, y0 + lt / 2, zf + r), Y, wall=1.0),
                  cyl("mascara_product", r - 1.2, lt - 2.4, "glycerol", (xc, y0 + lt / 2, zf + r), Y, wall=1.5),
                  cyl("mascara_brush", r - 3.2, 25, "nylon", (xc, c1 - 0.2 - 12.5, zf + r), Y),
                  cyl("mascara_rod", 0.8, lr, "stainless_steel", (xc, c0 + 0.2 + lr / 2, zf + r), Y),
                  cyl("mascara_cap", r, lc, "pp", (xc, y0 + lt + lc / 2, zf + r), Y)]
        x += 2 * r + 2
    if _is(p, "nail_polish"):
        s = _rnd(rng, 24, 32)
        hb = _rnd(rng, 28, 38)
        hcp = min(_rnd(rng, 18, 26), H - 2 * w - 2 * GAP - hb - 1)
        xc = x + s / 2
        items += [box("polish_bottle", (s, s, hb), "glass", (xc, 0, zf + hb / 2), wall=3.0, fill="acetone",
                      level=_rnd(rng, 0.3, 0.9)),
                  cyl("polish_cap", 7, hcp, "pp", (xc, 0, zf + hb + hcp / 2))]
        x += s + 2
    if _is(p, "tweezers"):
        lt = min(90.0, wcv - 4)
        xc = x + 6
        items += [box("tweezer_a", (6, lt, 0.8), "stainless_steel", (xc, 0, zf + 0.4), (0, 0, 3)),
                  box("tweezer_b", (6, lt, 0.8), "stainless_steel", (xc, 0, zf + 1.2), (0, 0, -3))]
        x += 12 + 2 * lt * math.sin(math.radians(3)) + 2
    lcav = max(L - 2 * w, x + 2)
    for it in items:
        it["pose"]["position"][0] += -lcav / 2 + 1
    parts = [box("bag", (lcav + 2 * w, Wd, H), p["material"], (0, 0, 0), wall=w),
             box("zip", (0.85 * lcav, 5, 1.0), p["zip_metal"], (0, 0, H / 2 + 0.5)),
             box("zip_pull", (12, 8, 1.5), p["zip_metal"], (0.3 * lcav, 0, H / 2 + 1.0 + 0.75))]
    return obj(parts + items)


# ------------------------------------------------------------------------------ health


@register("pill_bottle", None, "pill bottle (PP or HDPE) of tablets or capsules under a "
          "child-resistant double cap, with a cotton wad", {
              "radius": num(U(16, 28)),
              "height": num(U(50, 100)),
              "material": mat(["pp", "hdpe", "pet"], weights=[3, 3, 1]),
              "pills": count({"uniform_int": [4, 24]}),
              "capsules": flag(0.3, "capsules (1) or tablets (0)"),
              "pill_material": mat(["cellulose", "sucrose", "vegetable_oil"], "tablet or softgel",
                                   weights=[4, 2, 1]),
              "pill_size": num(U(3.5, 6), "tablet radius or capsule half-width"),
          }, F)
def pill_bottle(p, rng):
    r, h, m = p["radius"], p["height"], p["material"]
    w = 1.0
    rc, hc = r - w, h - 2 * w
    cap = _is(p, "capsules")
    ps = min(p["pill_size"], (rc - 0.5) / 2.5)
    half = (2.2 * ps, ps, ps) if cap else (ps, ps, 0.45 * ps + 0.8)  # half extents
    dx, dy = 2 * half[0] + 0.6, 2 * half[1] + 0.6
    slots = []  # a grid of places inside the cavity's circle, filled layer by layer
    for i in range(-int(rc // dx) - 1, int(rc // dx) + 2):
        for j in range(-int(rc // dy) - 1, int(rc // dy) + 2):
            x, y = i * dx, j * dy
            if math.hypot(abs(x) + half[0], abs(y) + half[1]) <= rc - 0.3:
                slots.append((x, y))
    slots.sort(key=lambda q: math.hypot(*q))
    layer_h = 2 * half[2] + 0.3
    zf = w + GAP
    n = min(p["pills"], max(1, int((hc - 0.4) // layer_h)) * len(slots))
    parts = [cyl("bottle", r, h, m, (0, 0, h / 2), wall=w)]
    for i in range(n):
        layer, k = divmod(i, len(slots))
        x, y = slots[k]
        z = zf + layer * layer_h + half[2]
        if cap:
            parts.append(ell(f"pill{i}", half, p["pill_material"], (x, y, z)))
        else:
            parts.append(cyl(f"pill{i}", half[0], 2 * half[2], p["pill_material"], (x, y, z)))
    top = zf + ((n - 1) // len(slots) + 1) * layer_h
    cw = min(8.0, h - w - top - 1.0)
    if cw > 2:
        parts.append(cyl("cotton", rc - 1.0, cw, "cotton", (0, 0, top + cw / 2 + 0.2)))
    hcap = 16.0
    parts += [cyl("outer_cap", r + 2.5, hcap, "pp", (0, 0, h + hcap / 2), wall=1.2),
              cyl("inner_cap", r + 1.0, hcap - 3.0, "pp", (0, 0, h + hcap / 2), wall=1.0)]
    return obj(parts)


@register("blister_pack", None, "blister strips of tablets or capsules (PVC base and blisters, "
          "aluminium lidding foil; some blisters emptied), loose or in a cardboard carton", {
              "strips": count({"uniform_int": [1, 2]}),
              "columns": count({"uniform_int": [3, 6]}, "blister columns (two rows each)"),
              "capsules": flag(0.3),
              "pill_size": num(U(3.5, 5.5), "tablet radius or capsule half-width"),
              "taken": count({"uniform_int": [0, 4]}, "emptied blisters", ge=0),
              "pill_material": mat(["cellulose", "sucrose", "vegetable_oil"], weights=[4, 2, 1]),
              "carton": flag(0.5),
          }, F)
def blister_pack(p, rng):
    ns = p["strips"]
    nc = p["columns"] if ns == 1 else min(p["columns"], 4)
    ps = p["pill_size"]
    cap = _is(p, "capsules")
    if cap:
        half = (2.2 * ps, ps, ps)
        bsize = (2 * half[0] + 1.6, 2 * half[1] + 1.6, 2 * half[2] + 1.2)
    else:
        half = (ps, ps, 0.45 * ps + 0.8)
        bsize = (2 * ps + 1.6, 2 * ps + 1.6, 2 * half[2] + 1.2)
    pitch_x, pitch_y = bsize[0] + 4.0, bsize[1] + 4.0
    sl, sw = nc * pitch_x + 4.0, 2 * pitch_y + 4.0
    bt, ft = 0.25, 0.03
    strip_h = ft + bt + bsize[2]
    empty = set(rng.choice(2 * nc, size=min(p["taken"], 2 * nc - 1), replace=False).tolist())
    parts = []
    for s in range(ns):
        z0 = s * (strip_h + 0.3)
        parts += [box(f"s{s}_foil", (sl, sw, ft), "aluminum", (0, 0, z0 + ft / 2)),
                  box(f"s{s}_base", (sl, sw, bt), "pvc", (0, 0, z0 + ft + bt / 2))]
        zb = z0 + ft + bt + bsize[2] / 2
        for i in range(2):
            for j in range(nc):
                x = -sl / 2 + 2.0 + pitch_x * (j + 0.5)
                y = -sw / 2 + 2.0 + pitch_y * (i + 0.5)
                k = i * nc + j
                if cap:
                    parts.append(box(f"s{s}_blister{k}", bsize, "pvc", (x, y, zb), wall=0.25))
                else:
                    parts.append(cyl(f"s{s}_blister{k}", bsize[0] / 2, bsize[2], "pvc", (x, y, zb), wall=0.25))
                if s == ns - 1 and k in empty:
                    continue
                if cap:
                    parts.append(ell(f"s{s}_pill{k}", half, p["pill_material"], (x, y, zb)))
                else:
                    parts.append(cyl(f"s{s}_pill{k}", half[0], 2 * half[2], p["pill_material"], (x, y, zb)))
    if _is(p, "carton"):
        wc = 0.5
        stack = ns * (strip_h + 0.3) - 0.3
        parts.append(box("carton", (sl + 3, sw + 3, stack + 0.6 + 2 * wc), "cardboard", (0, 0, stack / 2), wall=wc))
    return obj(parts)


@register("contact_lens_case", None, "contact-lens case (two PP wells with saline under screw caps on "
          "a base plate), optionally with a bottle of lens solution", {
              "well_radius": num(U(9, 12)),
              "well_height": num(U(10, 15)),
              "level": frac(U(0.3, 0.9)),
              "solution_bottle": flag(0.4),
              "bottle_radius": num(U(16, 24)),
              "bottle_height": num(U(55, 100)),
              "bottle_level": frac(U(0.1, 0.95)),
          }, F)
def contact_lens_case(p, rng):
    rw, hw = p["well_radius"], p["well_height"]
    xw = rw + 2.0
    parts = [box("plate", (4 * rw + 10, 2 * rw + 4, 3.0), "pp", (0, 0, 1.5))]
    for k, s in enumerate((-1, 1)):
        parts += [cyl(f"well{k}", rw, hw, "pp", (s * xw, 0, 3 + hw / 2), wall=1.0, fill="brine", level=p["level"]),
                  cyl(f"cap{k}", rw + 1.5, 8, "pp", (s * xw, 0, 3 + hw + 4), wall=1.2)]
    if _is(p, "solution_bottle"):
        rb, hb = p["bottle_radius"], p["bottle_height"]
        yb = rw + 2 + rb + 3
        rn = 8.0
        sh = 0.5 * (rb - rn) + 5
        prof = ([(0, 1.2), (rb - 3, 0), (rb - 1, 0.6), (rb, 2.5), (rb, hb)]
                + [(rn + (rb - rn) * math.cos(math.radians(15 * k)), hb + sh * math.sin(math.radians(15 * k)))
                   for k in range(1, 7)] + [(rn, hb + sh + 8)])
        zt = hb + sh + 8
        parts += [revolve("bottle", prof, "hdpe", (0, yb, 0), wall=0.8, fill="brine", level=p["bottle_level"]),
                  cyl("bottle_cap", rn + 2.5, 26, "pp", (0, yb, zt + 13), wall=1.2),
                  cone("bottle_tip", rn, 1.5, 16, "ldpe", (0, yb, zt + 1.2 + GAP + 8), wall=0.8)]
    return obj(parts)


@register("tissues_pack", None, "pocket pack of folded paper tissues in a plastic wrapper, or a pack of "
          "wet wipes (cellulose sheets and lotion) with a flip lid", {
              "length": num(U(100, 200)),
              "width": num(U(52, 110)),
              "height": num(U(18, 35)),
              "layers": count({"uniform_int": [4, 10]}),
              "wet": flag(0.3, "wet wipes (1) or dry tissues (0)"),
              "wrapper": mat(["ldpe", "pp"]),
          }, F)
def tissues_pack(p, rng):
    L, Wd, H, n = p["length"], p["width"], p["height"], p["layers"]
    wet = _is(p, "wet")
    if not wet:
        L, Wd = min(L, 120.0), min(Wd, 60.0)
    w = 0.1
    hc = H - 2 * w
    pitch = hc / n
    parts = [box("wrapper", (L, Wd, H), p["wrapper"], (0, 0, 0), wall=w)]
    for i in range(n):
        z = -hc / 2 + pitch * (i + 0.5)
        if wet:
            parts += [box(f"sheet{i}", (L - 2 * w - 2, Wd - 2 * w - 2, 0.08 * pitch), "cellulose",
                          (0, 0, z - 0.04 * pitch)),
                      box(f"lotion{i}", (L - 2 * w - 2, Wd - 2 * w - 2, 0.15 * pitch), "water",
                          (0, 0, z + 0.075 * pitch))]
        else:
            parts.append(box(f"tissue{i}", (L - 2 * w - 2, Wd - 2 * w - 2, min(0.6, 0.3 * pitch)), "paper", (0, 0, z)))
    if wet:
        parts.append(box("lid", (0.5 * L, 0.5 * Wd, 4.0), "pp", (0, 0, H / 2 + 2.0), wall=1.0))
    return obj(parts)
