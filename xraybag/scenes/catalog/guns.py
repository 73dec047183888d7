"""Guns and ammunition of PIDray: a semi-automatic pistol, a revolver and cartridges, modelled from
their silhouettes (extruded outlines with holes, revolved cartridges, swept tubes and springs).

The guns lie in the x-y plane (muzzle towards +x, top towards +y), their width along z.
"""

from __future__ import annotations

import math

from xraybag.scenes.catalog._geom import bezier, circle, grow, helix, poly, rect, rings, rounded
from xraybag.scenes.catalog._parts import X, cyl, extrude, obj, revolve, sweep
from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register

F = "threats"
CLEAR = 0.15  # mm between round parts nested in one another (more than a mesh's chord error)


# ------------------------------------------------------------------------------- cartridges


def case_profile(r_body: float, length: float, *, r_rim: float | None = None, rimmed: bool = False,
                 r_neck: float | None = None, shoulder: float = 0.8, wall: float = 0.35,
                 head: float = 2.6) -> list[tuple[float, float]]:
    """[r, z] profile of a brass case open at its mouth (z = length): the rim and extractor groove
    (or a rim standing out, ``rimmed``), the body, a shoulder at ``shoulder`` x length narrowing to
    ``r_neck`` (a bottlenecked rifle case) or a straight wall, then down the inside to the head."""
    r_rim = r_body if r_rim is None else r_rim
    if rimmed:
        out = [(0.0, 0.0), (r_rim - 0.25, 0.0), (r_rim, 0.25), (r_rim, 1.4), (r_body, 1.4)]
    else:
        g = r_body - 0.75
        out = [(0.0, 0.0), (r_rim - 0.3, 0.0), (r_rim, 0.3), (r_rim, 1.2), (g, 1.6), (g, 2.3), (r_body, 3.0)]
    inner: list[tuple[float, float]] = []
    if r_neck is not None and r_neck < r_body - 0.5:
        zs = shoulder * length
        zn = min(zs + 1.2 * (r_body - r_neck), length - 2.0)
        out += [(r_body - 0.15, zs), (r_neck, zn), (r_neck, length), (r_neck - wall, length)]
        inner = [(r_neck - wall, zn + 0.2), (r_body - 0.15 - wall, zs + 0.2)]
        r_in = r_body - wall
    else:
        r_top = r_body - 0.1
        out += [(r_top, length), (r_top - wall, length)]
        r_in = r_top - wall
    inner += [(r_in, head + 0.6), (r_in - 0.6, head), (0.0, head)]
    return out + inner


def bullet_profile(r: float, length: float, nose: float = 0.55, pointed: bool = False) -> list[tuple[float, float]]:
    """[r, z] profile of a projectile from its base (z = 0): a short bevel, the bearing surface and
    a nose over ``nose`` x length, round (pistol) or a pointed ogive (rifle)."""
    zn = (1 - nose) * length
    pts = [(0.0, 0.0), (r - 0.25, 0.0), (r, 0.3), (r, zn)]
    k = 1.35 if pointed else 2.2
    for t in (0.2, 0.4, 0.55, 0.7, 0.82, 0.92, 0.97):
        pts.append((max(0.25, r * (1 - t ** k) ** (1 / k)), zn + t * (length - zn)))
    pts.append((0.0, length))
    return pts


def cartridge(tag: str, base, axis, r_body: float, case_len: float, r_bullet: float, bullet_len: float,
              projectile: str, *, rimmed: bool = False, r_rim: float | None = None, r_neck: float | None = None,
              seat: float | None = None, pointed: bool = False, powder: bool = False) -> list[dict]:
    """A cartridge from the centre of its base along ``axis`` (see :func:`revolve`): the case, the
    projectile seated in its mouth and, with ``powder``, the powder charge inside."""
    wall = 0.35
    case = case_profile(r_body, case_len, r_rim=r_rim, rimmed=rimmed, r_neck=r_neck, wall=wall)
    mouth_in = (r_neck if r_neck is not None and r_neck < r_body - 0.5 else r_body - 0.1) - wall
    rb = min(r_bullet, mouth_in - CLEAR)
    seat = 0.35 * bullet_len if seat is None else seat
    d = _unit(axis)
    at = [float(b) for b in base]
    parts = [revolve(f"case{tag}", case, "brass", at, axis)]
    z_b = case_len - seat
    parts.append(revolve(f"projectile{tag}", bullet_profile(rb, bullet_len, pointed=pointed), projectile,
                         [a + z_b * c for a, c in zip(at, d)], axis))
    if powder:
        top = z_b - 0.2 if r_neck is None or r_neck >= r_body - 0.5 else min(z_b - 0.2, 0.8 * case_len)
        r_p = r_body - 0.1 - wall - 0.6 - CLEAR if r_neck is None else r_body - 0.15 - wall - 0.6 - CLEAR
        z0 = 2.6 + 0.2
        if top - z0 > 2:
            parts.append(revolve(f"powder{tag}", [(0, 0), (r_p, 0), (r_p, top - z0), (0, top - z0)],
                                 "black_powder", [a + z0 * c for a, c in zip(at, d)], axis))
    return parts


def _unit(axis) -> tuple[float, float, float]:
    if isinstance(axis, str):
        return {"x": (1, 0, 0), "-x": (-1, 0, 0), "y": (0, 1, 0), "-y": (0, -1, 0), "z": (0, 0, 1),
                "-z": (0, 0, -1)}[axis]
    a = math.radians(float(axis))
    return math.cos(a), math.sin(a), 0.0


def round_length(case_len: float, bullet_len: float, seat: float | None = None) -> float:
    return case_len - (0.35 * bullet_len if seat is None else seat) + bullet_len


# ----------------------------------------------------------------------------------- pistol


@register("pistol", "gun", "semi-automatic pistol: hollow steel slide with an ejection port and sights "
          "over the barrel, chamber and striker; polymer or metal frame whose grip is angled back, "
          "trigger guard and trigger; recoil spring on its guide rod; magazine of cartridges in the grip", {
              "slide_length": num(U(160, 205), "length of the slide"),
              "width": num(U(24, 32), "slide width"),
              "grip_height": num(U(85, 115), "grip height below the frame"),
              "grip_angle": num(U(14, 22), "rake of the grip from the vertical", unit="deg"),
              "slide_material": mat(["steel", "stainless_steel"]),
              "frame_material": mat(["nylon", "steel", "aluminum"], weights=[3, 1, 1]),
              "loaded": flag(0.6, "magazine fill (0: empty)"),
              "rounds": count({"uniform_int": [2, 9]}, "cartridges in the magazine when loaded"),
              "chambered": flag(0.5, "a round in the chamber when loaded"),
          }, F)
def pistol(p, rng):
    L, w, gh = p["slide_length"], p["width"], p["grip_height"]
    th = math.radians(p["grip_angle"])
    sn, cs = math.sin(th), math.cos(th)
    fm = p["frame_material"]
    hs = max(28.0, 0.16 * L)  # slide height
    sw = 2.5  # slide wall
    parts = []

    # slide: an outline with the ejection port, hollow; sights on top
    xp0 = 0.30 * L
    xp1 = xp0 + 0.17 * L + 4
    slide = rounded(poly([(0, 0), (L, 0), (L, hs - 5), (L - 7, hs), (5, hs), (0, hs - 4)]), 1.5)
    port = rounded(rect(xp0, hs - 8, xp1, hs - 2), 1.5)
    outline, holes = rings(slide - port)
    parts.append(extrude("slide", outline, w, p["slide_material"], holes=holes, bevel=0.8, wall=sw))
    parts.append(extrude("rear_sight", [(6, hs), (15, hs), (14, hs + 5), (7, hs + 5)], 8, "steel"))
    parts.append(extrude("front_sight", [(L - 17, hs), (L - 11, hs), (L - 12, hs + 4.5), (L - 15.5, hs + 4.5)],
                         3.5, "steel"))
    # barrel: the chamber under the port, the barrel to the muzzle, the striker behind
    yb = hs - 17.6
    xc0, xc1 = xp0 - 3, xp0 + 19
    xm = L - sw - 0.4
    r_case, case_len, r_bul, bul_len = 4.93, 19.15, 4.5 - CLEAR, 15.5
    parts.append(sweep("chamber", [(xc0, yb, 0), (xc1, yb, 0)], 6.8, "steel", inner_radius=r_case + CLEAR))
    parts.append(sweep("barrel", [(xc1, yb, 0), (xm, yb, 0)], 6.0, "steel", inner_radius=4.5))
    parts.append(cyl("striker", 2.5, xc0 - 0.4 - (sw + 0.4), "steel", ((xc0 - 0.4 + sw + 0.4) / 2, yb, 0), X))
    loaded = p["loaded"] > 0.5
    if loaded and p["chambered"] > 0.5:
        parts += cartridge("_chamber", (xc0 + 0.2, yb, 0), "x", r_case, case_len, r_bul, bul_len, "lead",
                           seat=6.0)

    # frame and grip: one outline below the slide, the grip raked back by the grip angle
    fh, fw = 14.0, 2.5  # frame height under the slide, frame wall
    tf = w - 2
    xf = L - 12
    xbs = 0.08 * L + 4

    def back(y):  # the back strap line at height y
        return xbs + y * sn / cs

    gd = 0.17 * L + 18  # grip depth, across the grip
    A, N = (sn, cs), (cs, -sn)  # up the grip, forward across it
    BB = (back(-fh - gh), -fh - gh)
    FB = (BB[0] + gd * N[0], BB[1] + gd * N[1])
    s_ft = (-fh - FB[1]) / cs
    FT = (FB[0] + s_ft * A[0], -fh)
    frame_pts = [(back(-9) - 9, -3.5), (back(-9) - 6, 0), (xf - 3, 0), (xf, -3), (xf, -fh + 2), (xf - 2, -fh),
                 FT, FB, BB, (back(-9), -9)]
    frame = rounded(rounded(poly(frame_pts), 0, 4.0), 2.0)
    gx0 = FT[0] + 3
    gL = 0.22 * L + 8
    gx1 = gx0 + gL
    for k in range(int((xf - 6 - (gx1 + 4)) // 7)):  # accessory rail
        x = gx1 + 6 + 7 * k
        frame = frame - rect(x, -fh - 1, x + 3, -fh + 1.0)
    outline, holes = rings(frame)
    parts.append(extrude("frame", outline, tf, fm, holes=holes, bevel=1.5, wall=fw))
    # trigger guard: a ring under the frame, the trigger hanging inside it
    gdp = 26.0
    guard = rounded(poly([(gx0, -fh), (gx1, -fh), (gx1 + 3, -fh - 12), (gx1 - 1, -fh - gdp),
                          (gx0 + 4, -fh - gdp), (gx0 - 1, -fh - gdp + 9)]), 5.0)
    inner = grow(guard, -3.5).translate((0, 2.0)) ^ rect(gx0 - 10, -fh - gdp - 10, gx1 + 10, -fh - 1.5)
    outline, holes = rings(guard - inner)
    parts.append(extrude("trigger_guard", outline, 9.0, fm, holes=holes, bevel=0.6))
    tx, ty = gx0 + 0.3 * gL, -fh - 1.5
    trig = ([(tx, ty), (tx + 5, ty)] + bezier((tx + 5, ty), (tx + 3, ty - 9), (tx + 7.5, ty - 14), 5)[1:]
            + [(tx + 5.5, ty - 15.5)] + bezier((tx + 4.5, ty - 14.5), (tx - 1.5, ty - 9), (tx, ty), 5)[:-1])
    parts.append(extrude("trigger", trig, 6.0, "steel" if fm != "nylon" else "nylon"))

    # magazine in the grip (s up the grip from its bottom, t forward from the back strap)
    def gp(s, t):
        return (BB[0] + s * A[0] + t * N[0], BB[1] + s * A[1] + t * N[1])

    c = fw + 0.6
    s1 = (-c + c * sn - BB[1]) / cs
    tm = tf - 2 * fw - 1.0
    mw = 0.8
    parts.append(extrude("magazine", [gp(c, c), gp(c, gd - c), gp(s1, gd - c), gp(s1, c)], tm, "steel", wall=mw))
    parts.append(extrude("magazine_base", [gp(-4, -1), gp(-4, gd + 1), gp(0, gd + 1), gp(0, -1)], tf - 1, fm,
                         bevel=1.0))
    if loaded:
        d = 2 * r_case
        inner_w = tm - 2 * mw
        double = inner_w >= 1.75 * d + 0.6
        a = 0.375 * d if double else 0.0
        ds = math.sqrt(d * d - (2 * a) ** 2) + 0.4 if double else d + 0.4
        s_top = s1 - mw - 0.4 - r_case
        s_low = c + mw + 8 + r_case
        n = max(0, min(p["rounds"], int((s_top - s_low) // ds) + 1))
        ang = -p["grip_angle"]
        for k in range(n):
            x, y = gp(s_top - k * ds, c + mw + 0.4)
            z = (a if k % 2 == 0 else -a)
            parts += cartridge(str(k), (x, y, z), ang, r_case, case_len, r_bul, bul_len, "lead", seat=6.0)

    # recoil spring on its guide rod, in the frame under the barrel
    mag_front = max(gp(s1, gd - c)[0], gp(c, gd - c)[0])
    xs0, xs1 = max(mag_front, FT[0]) + 2.0, xf - fw - 0.5
    ys = -6.5
    if xs1 - xs0 > 30:
        rw, R = 0.55, 3.0
        parts.append(sweep("recoil_spring", helix((xs0 + rw, ys, 0), (1, 0, 0), R, 3.6, xs1 - xs0 - 2 * rw), rw,
                           "steel"))
        parts.append(cyl("guide_rod", R - rw - 0.6, xs1 - xs0, "steel", ((xs0 + xs1) / 2, ys, 0), X))
    return obj(parts)


@register("revolver", "gun", "revolver: steel frame with the cylinder window, top strap, trigger guard "
          "and grip frame; fluted cylinder with six chambers (cartridges when loaded) on its pin; barrel "
          "with a front sight; hammer and trigger; wood, rubber or nylon grip panels with a screw", {
              "barrel_length": num(U(55, 160), "barrel length"),
              "drum_radius": num(U(17, 21), "cylinder (drum) radius"),
              "grip_height": num(U(80, 105)),
              "grip_angle": num(U(18, 30), "rake of the grip from the vertical", unit="deg"),
              "metal": mat(["steel", "stainless_steel"]),
              "grip_material": mat(["wood", "rubber", "nylon"]),
              "loaded": flag(0.6, "cartridges in the chambers"),
          }, F)
def revolver(p, rng):
    rd, bl, gh, m = p["drum_radius"], p["barrel_length"], p["grip_height"], p["metal"]
    th = math.radians(p["grip_angle"])
    sn, cs = math.sin(th), math.cos(th)
    dl = 2 * rd + 2  # cylinder length, its axis along x at y = 0 from x = 0
    chr_ = min((rd - 3.8) / 3, 5.05)  # chamber radius
    pc = rd - chr_ - 2.2  # chambers' circle
    rim_t, rim_r = 1.4, min(chr_ + 0.8, pc / 2 - 0.2)
    rb = 0.42 * rd  # barrel radius; its axis in line with the top chamber
    tf = rd + 6  # frame thickness
    parts = []

    # the cylinder: a fluted disc with the chambers and the pin's bore, extruded along x
    rf = 0.22 * rd
    drum = circle((0, 0), rd, 96)
    for k in range(6):
        a = math.radians(60 * k)
        drum = drum - circle(((rd + rf - 1.4) * math.cos(a), (rd + rf - 1.4) * math.sin(a)), rf, 32)
    drum = rounded(drum, 1.0)
    ch = [(pc * math.cos(math.radians(90 + 60 * k)), pc * math.sin(math.radians(90 + 60 * k))) for k in range(6)]
    for c in ch:
        drum = drum - circle(c, chr_, 40)
    outline, holes = rings(drum - circle((0, 0), 2.6, 24))
    parts.append(extrude("drum", outline, dl, m, holes=holes, pos=(dl / 2, 0, 0), rot=(0, 90, 0), bevel=0.5))
    x0w, x1w = -rim_t - 0.5, dl + 0.5  # the window in the frame
    parts.append(cyl("pin", 2.4, x1w - x0w, m, ((x0w + x1w) / 2, 0, 0), X))
    if p["loaded"] > 0.5:
        case_len = 0.7 * dl
        oal = dl - 1.0
        bul = (oal - case_len) / 0.65
        for k, (u, v) in enumerate(ch):  # the drum's (u, v) is the object's (-z, y)
            parts += cartridge(str(k), (-rim_t, v, -u), "x", chr_ - CLEAR, case_len, chr_ - 0.5, bul, "lead",
                               rimmed=True, r_rim=rim_r)

    # frame: window, top strap, barrel shroud, trigger guard and grip frame in one outline
    yt, yb = rd + 0.5 + 6, -rd - 0.5 - 7
    xr, xf = x0w - 9, x1w + 14
    body = poly([(xr, yt - 5), (xr + 5, yt), (xf, yt), (xf, pc - rb - 2), (x1w + 5, yb), (xr, yb)])
    A, N = (sn, cs), (cs, -sn)
    gd = 0.3 * gh + 8  # grip depth
    B0 = (xr - 5, yb + 6)  # top of the back strap

    def gp(s, t):  # s down the grip from B0, t forward across it
        return (B0[0] - s * A[0] + t * N[0], B0[1] - s * A[1] + t * N[1])

    strap = poly([gp(-6, 0.15 * gd), gp(-6, 0.85 * gd), gp(gh, 0.8 * gd), gp(gh, 0.2 * gd)])
    gx0 = gp(6, gd)[0] + 3
    gx1 = gx0 + 44
    guard = rounded(poly([(gx0 - 4, yb + 1), (gx1 + 3, yb + 1), (gx1 + 4, yb - 10), (gx1 - 4, yb - 24),
                          (gx0 + 2, yb - 24), (gx0 - 4, yb - 14)]), 6.0)
    opening = (grow(guard, -4) + rect(gx0 + 3, yb - 8, gx1 - 4, yb)) ^ rect(gx0 - 9, yb - 40, gx1 + 9, yb)
    frame = rounded(body + strap + guard, 1.5, 4.0) - opening - rounded(rect(x0w, -rd - 0.5, x1w, rd + 0.5), 1.0)
    screw = gp(0.45 * gh, 0.5 * gd)
    frame = frame - circle(screw, 2.2, 24)
    outline, holes = rings(frame)
    parts.append(extrude("frame", outline, tf, m, holes=holes, bevel=1.0))
    tx = gx0 + 0.35 * (gx1 - gx0)
    trig = ([(tx, yb), (tx + 6, yb)] + bezier((tx + 6, yb), (tx + 4, yb - 9), (tx + 9, yb - 15), 5)[1:]
            + [(tx + 6.5, yb - 16.5)] + bezier((tx + 5.5, yb - 15.5), (tx - 1, yb - 9), (tx, yb), 5)[:-1])
    parts.append(extrude("trigger", trig, 7.0, m))
    parts.append(extrude("hammer", [(xr, yt - 20), (xr, yt - 5), (xr - 5, yt + 2), (xr - 13, yt + 5),
                                    (xr - 14, yt + 1), (xr - 8, yt - 5), (xr - 7, yt - 20)], 7.0, m))
    # grip panels on both sides of the grip frame, held by a screw through them
    panel = rounded(poly([gp(-4, -2), gp(-4, gd), gp(0.5 * gh, gd + 3), gp(gh, gd), gp(gh + 6, 0.5 * gd),
                          gp(gh + 4, -4), gp(0.5 * gh, -4)]), 9.0)
    outline, holes = rings(panel - circle(screw, 2.2, 24))
    gt = 5.0
    for side, tag in ((1, "left"), (-1, "right")):
        parts.append(extrude(f"grip_{tag}", outline, gt, p["grip_material"], holes=holes,
                             z=side * (tf + gt) / 2, bevel=1.5))
    parts.append(cyl("grip_screw", 2.0, tf + 2 * gt, m, (screw[0], screw[1], 0)))

    # barrel from the frame's front, its bore for the chambers' calibre; front sight at the muzzle
    xm = xf + bl
    parts.append(sweep("barrel", [(xf, pc, 0), (xm, pc, 0)], rb, m, inner_radius=chr_ - 0.35))
    parts.append(extrude("front_sight", [(xm - 14, pc + rb), (xm - 3, pc + rb), (xm - 4, pc + rb + 6),
                                         (xm - 9, pc + rb + 6)], 3.0, m))
    return obj(parts)


@register("bullet", "bullet", "cartridges side by side: brass case (rim, extractor groove, a bottleneck "
          "for long rifle cases) holding a powder charge, the projectile seated in its mouth", {
              "calibre": num({"choice": [5.56, 7.62, 9.0, 11.43]}, "projectile diameter"),
              "case_length": num(U(18, 50), "length of the case"),
              "rounds": count({"uniform_int": [1, 6]}, "cartridges side by side"),
              "projectile_material": mat(["lead", "copper", "brass"]),
          }, F)
def bullet(p, rng):
    c, cl = p["calibre"], p["case_length"]
    rifle = cl > 2.8 * c
    if rifle:
        r_body, r_neck, bl = c / 2 + 1.7, c / 2 + 0.35 + CLEAR, 3.6 * c
        seat = 0.3 * bl
    else:
        r_body, r_neck, bl = c / 2 + 0.45, None, 1.65 * c
        seat = 0.4 * bl
    parts = []
    for i in range(p["rounds"]):
        y = (2 * r_body + 1) * i
        parts += cartridge(str(i), (0, y, 0), "x", r_body, cl, c / 2, bl, p["projectile_material"],
                           r_neck=r_neck, seat=seat, pointed=rifle, powder=True)
    return obj(parts)
