"""Everyday gadgets, household items, food and stationery: the clutter of a real carry-on, each with
the internal structure an X-ray shows (cells, boards, magnets, coils, springs, wires, foil). This
module holds the portable electronics; :mod:`gadgets_devices` and :mod:`gadgets_home` (imported at
the end) the rest of the family."""

from __future__ import annotations

import math

import numpy as np

from xraybag.scenes.catalog.registry import U, count, flag, mat, num, register
from xraybag.scenes.catalog._parts import X, Y, box, cyl, ell, obj
from xraybag.scenes.catalog._gadget_parts import arc, cable, extrude, helix, inside, inside_abs, usb_plug

F = "gadgets"


# --------------------------------------------------------------------------------- gadgets


def _slate(p, L, W, T, shell_mat, w, cells, speakers, folio, cover_glass=0.7, panel="glass"):
    """A flat device (tablet, e-reader): shell from z = 0 to T - glass, cover glass on top."""
    g = cover_glass
    hs = T - g
    hc = hs - 2 * w
    tc = hc - 1.5
    zf = w
    parts = [
        box("shell", (L, W, hs), shell_mat, (0, 0, hs / 2), wall=w),
        box("cover_glass", (L, W, g), "glass", (0, 0, hs + g / 2)),
        box("display", (L - 2 * w - 2, W - 2 * w - 2, 0.6), panel, (0, 0, hs - w - 0.1 - 0.3)),
        box("light_guide", (L - 2 * w - 2, W - 2 * w - 2, 0.5), "pmma", (0, 0, hs - w - 0.8 - 0.25)),
    ]
    x0, x1 = -L / 2 + w + 0.5, L / 2 - w - 0.5
    bw = max(18.0, 0.13 * L)
    zc = zf + 0.1 + tc / 2
    board_y = W - 2 * w - 6
    parts.append(box("board", (bw, board_y, 0.8), "fr4", (x1 - bw / 2, 0, zf + 0.1 + 0.4)))
    zs = zf + 0.9 + 0.05
    sh_h = min(1.2, tc - 0.9)
    can = box("shield0", (bw - 4, 0.3 * board_y, sh_h), "stainless_steel", (x1 - bw / 2, 0.15 * board_y, zs + sh_h / 2),
              wall=0.15)
    if sh_h - 0.3 > 0.35:
        inside(can, box("chip", (bw - 8, 0.3 * board_y - 4, sh_h - 0.45), "silicon", (0, 0, 0)))
    parts += [can, box("shield1", (bw - 4, 0.25 * board_y, 0.2), "stainless_steel",
                       (x1 - bw / 2, -0.25 * board_y, zs + 0.1))]
    parts.append(box("camera", (8, 8, min(3.0, tc - 0.95)), "alumina",
                     (x1 - bw / 2, 0.42 * board_y, zs + min(3.0, tc - 0.95) / 2)))
    parts.append(cyl("camera_lens", 3.2, 0.8, "glass", (x1 - bw / 2, 0.42 * board_y, -0.4)))
    if speakers:
        for k, sy in enumerate((-1, 1)):
            spk = box(f"speaker{k}", (12, 16, tc), "abs", (x0 + 6, sy * (W / 2 - w - 11), zc), wall=0.4)
            parts.append(inside(spk, cyl("magnet", 3.5, tc - 1.0, "magnet")))
        x0 += 13
    cx1 = x1 - bw - 1.0
    n = cells
    cl = (cx1 - x0 - (n - 1) * 1.0) / n
    for i in range(n):
        parts.append(box(f"cell{i}", (cl, W - 2 * w - 12, tc), "li_ion_cell", (x0 + cl / 2 + i * (cl + 1.0), 0, zc)))
    if folio is not None:
        ct = 1.6
        zb = -0.8 - ct / 2 - 0.05
        zt = T + ct / 2 + 0.05
        parts += [
            box("cover_front", (L + 4, W + 4, ct), folio, (0, 0, zt)),
            box("cover_back", (L + 4, W + 4, ct), folio, (0, 0, zb)),
            box("cover_spine", (ct, W + 4, zt - zb + ct), folio, (-L / 2 - 2 - ct / 2, 0, (zt + zb) / 2)),
        ]
    return obj(parts)


@register("tablet", None, "tablet: aluminium or plastic back shell holding one to three li-ion cells, a board "
          "with a steel shield can over the chip, speakers with magnets and a camera; glass over the display; "
          "optionally in a folio case", {
              "length": num(U(200, 285)),
              "width": num(U(135, 200)),
              "thickness": num(U(6, 9)),
              "cells": count({"uniform_int": [1, 3]}, "battery cells side by side"),
              "back_material": mat(["aluminum", "pc", "abs"], weights=[4, 1, 1]),
              "folio": flag(0.35, "in a folio case (1) or bare (0)"),
              "folio_material": mat(["pvc", "leather", "polyester"]),
          }, F)
def tablet(p, rng):
    w = 0.8 if p["back_material"] == "aluminum" else 1.1
    return _slate(p, p["length"], p["width"], p["thickness"], p["back_material"], w, p["cells"], True,
                  p["folio_material"] if p["folio"] else None)


@register("e_reader", None, "e-reader: plastic shell with one li-ion cell, a board with a shield can, an "
          "e-ink panel under a front light and glass or plastic cover; optionally in a folio case", {
              "length": num(U(155, 200)),
              "width": num(U(108, 142)),
              "thickness": num(U(7.5, 10)),
              "shell_material": mat(["pc", "abs", "aluminum"], weights=[3, 2, 1]),
              "cover": mat(["glass", "pmma"], "cover over the panel"),
              "folio": flag(0.5, "in a folio case (1) or bare (0)"),
              "folio_material": mat(["pvc", "leather", "polyester", "cardboard"]),
          }, F)
def e_reader(p, rng):
    w = 0.8 if p["shell_material"] == "aluminum" else 1.2
    d = _slate(p, p["length"], p["width"], p["thickness"], p["shell_material"], w, 1, False,
               p["folio_material"] if p["folio"] else None)
    for q in d["parts"]:
        if q["name"] == "cover_glass":
            q["material"] = p["cover"]
    return d


@register("earbuds_case", None, "wireless earbuds in their charging case: case cell and board, two buds (each "
          "a shell holding a driver magnet and a button cell), steel hinge pin, lid magnets", {
              "width": num(U(48, 70), "case width"),
              "depth": num(U(24, 31), "case depth"),
              "bud_size": num(U(6, 8.5), "bud half-depth"),
              "cell_thickness": num(U(2.5, 4.5), "the case's cell"),
              "case_material": mat(["pc", "abs", "pp"]),
          }, F)
def earbuds_case(p, rng):
    Wc, Dc, b, tcell = p["width"], p["depth"], p["bud_size"], p["cell_thickness"]
    w = 1.0
    b = min(b, Dc / 2 - w - 2.5)
    a = min(1.2 * b, (Wc / 2 - w - 1.3) / 2)
    c = 0.8 * b
    Hc = 2 * w + 0.1 + 1.0 + 0.1 + tcell + 0.2 + 2 * c + 0.6
    zb = -Hc / 2 + w
    z_cell = zb + 1.2 + tcell / 2
    z_bud = zb + 1.2 + tcell + 0.2 + c
    parts = [box("case", (Wc, Dc, Hc), p["case_material"], (0, 0, 0), wall=w)]
    inner = [
        box("board", (Wc - 2 * w - 2, Dc - 2 * w - 2, 1.0), "fr4", (0, 0, zb + 0.1 + 0.5)),
        box("cell", (0.6 * Wc, Dc - 2 * w - 4, tcell), "li_ion_cell", (0, 0, z_cell)),
        cyl("hinge_pin", 0.8, Wc - 2 * w - 2, "steel", (0, -(Dc / 2 - w - 1.0), Hc / 2 - w - 1.0), X),
        box("lid_magnet0", (5, 1.6, 1.6), "magnet", (-Wc / 4, Dc / 2 - w - 1.0, Hc / 2 - w - 1.0)),
        box("lid_magnet1", (5, 1.6, 1.6), "magnet", (Wc / 4, Dc / 2 - w - 1.0, Hc / 2 - w - 1.0)),
    ]
    for k, sx in enumerate((-1, 1)):
        bud = ell(f"bud{k}", (a, b, c), "pc", (sx * (a + 0.8), 0, z_bud), wall=0.7)
        inside(bud, cyl("driver_magnet", 0.4 * b, 0.3 * c, "magnet", (0, 0, -0.45 * c)),
                cyl("cell", 0.5 * b, 0.4 * c, "li_ion_cell", (0, 0, 0.2 * c)))
        inner.append(bud)
    inside(parts[0], inner)
    return obj(parts)


@register("headphones", None, "over-ear headphones lying flat: padded steel headband, two ear cups (driver "
          "magnet on a steel plate, cone, board or cell) on leather or PVC cushions, steel yokes", {
              "cup_radius": num(U(36, 48)),
              "cup_height": num(U(22, 32)),
              "band_radius": num(U(70, 95), "radius of the headband's arc"),
              "band_width": num(U(18, 30)),
              "cup_material": mat(["abs", "pc", "aluminum"], weights=[3, 2, 1]),
              "cushion": mat(["pvc", "leather", "polyester"]),
          }, F)
def headphones(p, rng):
    Rc, hc, bw = p["cup_radius"], p["cup_height"], p["band_width"]
    Rb = max(p["band_radius"], Rc + 4)
    cm = p["cup_material"]
    wc = 1.2 if cm == "aluminum" else 1.8
    # the headband: a padded arc (an extruded half annulus, hollow) around a spring-steel strip
    band = extrude("band", arc(Rb + 3, 0, 180, n=48) + arc(Rb - 3, 180, 0, n=48), bw, p["cushion"], wall=1.0)
    da = math.degrees(math.asin(1.4 / (Rb - 0.6)))
    strip = extrude("spring_steel", arc(Rb + 0.6, da, 180 - da, n=48) + arc(Rb - 0.6, 180 - da, da, n=48), bw - 2.6,
                    "steel")
    parts = [inside_abs(band, strip)]
    half = 0.0
    ly = 14.0
    hcush = 14.0
    for k, sx in enumerate((-1, 1)):
        x = sx * Rb
        yc = -(half + ly + Rc + 0.1)
        z_cup = hcush / 2 + 0.05
        parts.append(box(f"yoke{k}", (3, ly, 8), "steel", (x, -(half + ly / 2), 0)))
        cup = cyl(f"cup{k}", Rc, hc, cm, (x, yc, z_cup), wall=wc)
        zb = -hc / 2 + wc
        inner = [
            cyl("cone", 0.8 * Rc, 0.3, "pet", (0, 0, zb + 0.35)),
            cyl("plate", 0.45 * Rc, 2.0, "steel", (0, 0, zb + 2.0)),
            cyl("magnet", 0.3 * Rc, 5.0, "magnet", (0, 0, zb + 3.0 + 2.55)),
        ]
        top = zb + 8.2
        room = hc / 2 - wc - top - 0.2
        if k == 0:
            tc = min(6.0, room)
            inner.append(box("cell", (0.9 * Rc, 0.6 * Rc, tc), "li_ion_cell", (0, 0, top + tc / 2)))
        else:
            inner.append(box("board", (1.0 * Rc, 0.7 * Rc, 1.2), "fr4", (0, 0, top + 0.6)))
        parts.append(inside(cup, inner))
        parts.append(cyl(f"cushion{k}", Rc, hcush, p["cushion"], (x, yc, z_cup - hc / 2 - hcush / 2 - 0.05),
                         wall=0.8))
    return obj(parts)


@register("usb_cable", None, "charging cable coiled in loops: copper conductors in a PVC jacket, a USB-A or "
          "USB-C plug at one end and a USB-C, Lightning or barrel plug at the other", {
              "loop_radius": num(U(28, 60)),
              "loop_aspect": num(U(0.55, 1.0), "short over long axis of the loops", unit=""),
              "loops": count({"uniform_int": [1, 2]}, "whole loops"),
              "end_angle": num(U(0, 170), "how far past the start the cable leaves the loops", unit="deg", ge=0),
              "cable_radius": num(U(1.5, 2.4)),
              "plug_a": count({"choice": [0, 1], "weights": [0.6, 0.4]}, "0 USB-A, 1 USB-C", ge=0),
              "plug_b": count({"choice": [1, 2, 3], "weights": [0.6, 0.3, 0.1]}, "1 USB-C, 2 Lightning, 3 DC barrel",
                              ge=0),
              "jacket": mat(["pvc", "rubber", "nylon_fabric"], weights=[3, 1, 1]),
          }, F)
def usb_cable(p, rng):
    R, asp, r = p["loop_radius"], p["loop_aspect"], p["cable_radius"]
    turns = p["loops"] + p["end_angle"] / 360.0
    pitch = 2 * r + 0.6
    pts = helix((0, 0, 0), R, R * asp, pitch, turns, 24, a0=-math.pi / 2)
    # straight leads off both ends, along the loop's tangent
    t0 = np.asarray(pts[0]) - np.asarray(pts[1])
    t1 = np.asarray(pts[-1]) - np.asarray(pts[-2])
    t0, t1 = t0 / np.linalg.norm(t0), t1 / np.linalg.norm(t1)
    lead = R + 4
    a = np.asarray(pts[0]) + t0 * lead
    b = np.asarray(pts[-1]) + t1 * lead
    path = [tuple(a)] + pts + [tuple(b)]
    parts = cable("cable", path, r, p["jacket"])
    parts += usb_plug("plug_a", a + t0 * 0.05, t0, int(p["plug_a"]))
    parts += usb_plug("plug_b", b + t1 * 0.05, t1, int(p["plug_b"]))
    return obj(parts)


@register("laptop_adapter", None, "laptop power brick: plastic case around a board, a transformer (steel E-core, "
          "copper windings), a capacitor, an aluminium heat sink and the inlet's brass contacts; the DC cable "
          "(copper in PVC) coiled beside it, ending in a barrel or USB-C plug", {
              "length": num(U(90, 135)),
              "width": num(U(48, 68)),
              "height": num(U(24, 34)),
              "loop_radius": num(U(32, 55), "radius of the cable's loops"),
              "turns": num(U(1.0, 1.5), "loops of the DC cable", unit=""),
              "plug": count({"choice": [1, 3], "weights": [0.4, 0.6]}, "1 USB-C, 3 DC barrel", ge=0),
              "case_material": mat(["pc", "abs"]),
              "core_material": mat(["steel", "iron"], "transformer core"),
          }, F)
def laptop_adapter(p, rng):
    L, W, H = p["length"], p["width"], p["height"]
    w = 2.0
    zf = -H / 2 + w
    hcomp = H - 2 * w - 2.0
    zc0 = zf + 1.8
    x0 = -L / 2 + w
    parts = [box("case", (L, W, H), p["case_material"], (0, 0, 0), wall=w)]
    inner = [box("board", (L - 2 * w - 1, W - 2 * w - 1, 1.6), "fr4", (0, 0, zf + 0.1 + 0.8))]
    # the inlet's contacts at -x
    for k, sy in enumerate((-1, 1)):
        inner.append(box(f"inlet_contact{k}", (8, 1.2, 0.45 * hcomp), "brass",
                         (x0 + 0.5 + 4, sy * 4.5, zc0 + 0.45 * hcomp / 2)))
    # E-core transformer: yokes top and bottom, three legs, windings in the two windows
    tw = 0.3 * L
    td = min(0.7 * tw, W - 2 * w - 8)
    tx = x0 + 10 + tw / 2
    ty = 0.15 * hcomp
    zt0 = zc0
    zt1 = zc0 + hcomp
    lw, cw = 0.12 * tw, 0.24 * tw
    ww = (tw - 2 * lw - cw) / 2
    cm = p["core_material"]
    leg_h = hcomp - 2 * ty
    zl = zt0 + ty + leg_h / 2
    inner += [
        box("core_bottom", (tw, td, ty), cm, (tx, 0, zt0 + ty / 2)),
        box("core_top", (tw, td, ty), cm, (tx, 0, zt1 - ty / 2)),
        box("core_leg0", (lw, td, leg_h), cm, (tx - tw / 2 + lw / 2, 0, zl)),
        box("core_leg1", (cw, td, leg_h), cm, (tx, 0, zl)),
        box("core_leg2", (lw, td, leg_h), cm, (tx + tw / 2 - lw / 2, 0, zl)),
        box("winding0", (ww - 0.2, min(td + 6, W - 2 * w - 2), leg_h - 0.2), "copper", (tx - cw / 2 - ww / 2, 0, zl)),
        box("winding1", (ww - 0.2, min(td + 6, W - 2 * w - 2), leg_h - 0.2), "copper", (tx + cw / 2 + ww / 2, 0, zl)),
    ]
    rcap = min(6.5, (W - 2 * w) / 4)
    xcap = tx + tw / 2 + 3 + rcap
    hcap = 0.9 * hcomp
    cap = cyl("capacitor", rcap, hcap, "aluminum", (xcap, -(W / 2 - w - rcap - 1.5), zc0 + hcap / 2), wall=0.4)
    inner.append(inside(cap, cyl("foil_roll", rcap - 0.6, hcap - 1.0, "paper")))
    xs = xcap + rcap + 3
    inner.append(box("heat_sink", (2.0, W - 2 * w - 4, hcomp - 1.0), "aluminum",
                     (xs + 1.0, 0, zc0 + (hcomp - 1.0) / 2)))
    inside(parts[0], inner)
    # the DC cable: out of the +x face, a short lead, loops, a lead out and the plug
    r = 1.9
    R = p["loop_radius"]
    zcab = 0.0
    parts.append(cyl("strain_relief", 3.5, 12, "pvc", (L / 2 + 6.05, 0, zcab), X))
    start = np.array([L / 2 + 12.1, 0, zcab])
    centre = (start[0] + 14 + R, 0, zcab)
    pitch = 2 * r + 0.6
    pts = [tuple(start)] + helix(centre, R, R * 0.8, pitch, p["turns"], 24, a0=math.pi)
    pts[1] = (pts[1][0], pts[1][1], zcab)
    t1 = np.asarray(pts[-1]) - np.asarray(pts[-2])
    t1 = t1 / np.linalg.norm(t1)
    b = np.asarray(pts[-1]) + t1 * (R + 6)
    pts.append(tuple(b))
    parts += cable("dc_cable", pts, r)
    parts += usb_plug("plug", b + t1 * 0.05, t1, int(p["plug"]))
    return obj(parts)


@register("travel_adapter", None, "travel plug adapter: plastic body with brass pins (two round, two flat or "
          "three rectangular), brass contact strips inside, a fuse and optionally a USB board", {
              "size": num(U(42, 58), "body edge"),
              "height": num(U(40, 62)),
              "pins": count({"uniform_int": [0, 2]}, "0 two round (EU), 1 two flat (US), 2 three rectangular (UK)",
                            ge=0),
              "usb": flag(0.5, "with USB charging ports (1) or without (0)"),
              "body_material": mat(["pc", "abs", "pp"]),
          }, F)
def travel_adapter(p, rng):
    s, H = p["size"], p["height"]
    w = 1.8
    parts = [box("body", (s, s, H), p["body_material"], (0, 0, 0), wall=w)]
    zp = -H / 2
    k = int(p["pins"])
    if k == 0:
        pins = [cyl(f"pin{i}", 2.4, 19, "brass", (sx * 9.5, 0, zp - 9.5)) for i, sx in enumerate((-1, 1))]
    elif k == 1:
        pins = [box(f"pin{i}", (1.6, 6.3, 16), "brass", (sx * 6.35, 0, zp - 8)) for i, sx in enumerate((-1, 1))]
    else:
        pins = [box("pin0", (4, 6, 22.7), "brass", (0, 11, zp - 11.35)),
                box("pin1", (4, 6, 17.7), "brass", (-11, -11, zp - 8.85)),
                box("pin2", (4, 6, 17.7), "brass", (11, -11, zp - 8.85))]
    parts += pins
    cz = H / 2 - w
    inner = [box(f"strip{i}", (0.8, s - 2 * w - 6, 0.35 * H), "brass",
                 (-s / 2 + w + 3 + i * (s - 2 * w - 6) / 2, 0, -H / 2 + w + 0.5 + 0.175 * H)) for i in range(3)]
    fuse = cyl("fuse", 3.2, 20, "glass", (0, -s / 2 + w + 4, cz - 4), X, wall=0.6)
    inner.append(inside(fuse, cyl("fuse_wire", 0.3, 17, "copper")))
    if p["usb"]:
        inner.append(box("usb_board", (s - 2 * w - 2, 0.45 * s, 1.2), "fr4", (0, s / 2 - w - 1 - 0.225 * s, cz - 10)))
        for i, sx in enumerate((-1, 1)):
            sock = box(f"usb_socket{i}", (12.5, 5, 9), "steel", (sx * 7.5, s / 2 - w - 4, cz - 4.5), wall=0.35)
            inner.append(inside(sock, box("tongue", (10.5, 1.8, 7.5), "pp", (0, 0, 0))))
        inner.append(box("coil", (8, 8, 6), "copper",
                         (-s / 2 + w + 6, s / 2 - w - 1 - 0.225 * s, cz - 10 - 0.6 - 3.05)))
    inside(parts[0], inner)
    return obj(parts)


@register("compact_camera", None, "compact camera: aluminium or plastic body with a li-ion battery, a board, an "
          "image sensor, a flash capacitor, a glass display and a brass tripod socket; lens barrel with glass "
          "elements, retracted or extended", {
              "length": num(U(95, 118)),
              "height": num(U(56, 68)),
              "depth": num(U(24, 34)),
              "lens_radius": num(U(14, 22)),
              "lens_length": num(U(8, 36), "barrel length (retracted to extended)"),
              "body_material": mat(["aluminum", "pc", "abs"], weights=[2, 2, 1]),
          }, F)
def compact_camera(p, rng):
    L, H, D = p["length"], p["height"], p["depth"]
    w = 1.2
    rl = min(p["lens_radius"], H / 2 - 4)
    lb = p["lens_length"]
    zb, zt = -D / 2 + w, D / 2 - w
    parts = [box("body", (L, H, D), p["body_material"], (0, 0, 0), wall=w)]
    bx = 10.0  # battery thickness (along x)
    xb = -L / 2 + w + 1 + bx / 2
    by = min(44.0, H - 2 * w - 3)
    bz = D - 2 * w - 1.0
    xr0 = xb + bx / 2 + 1.0  # right of the battery
    xr1 = L / 2 - w - 0.5
    xl = min(xr1 - rl - 2, xr0 + (xr1 - xr0) * 0.55)  # lens axis
    inner = [
        box("battery", (bx, by, bz), "li_ion_cell", (xb, 0, 0)),
        box("display", (xr1 - xr0, H - 2 * w - 6, 1.4), "glass", ((xr0 + xr1) / 2, 0, zb + 0.1 + 0.7)),
        box("board", (xr1 - xr0, H - 2 * w - 2, 1.0), "fr4", ((xr0 + xr1) / 2, 0, zb + 1.7 + 0.5)),
        box("sensor_package", (20, 16, 1.5), "alumina", (xl, 0, zb + 2.8 + 0.75)),
        box("sensor", (12, 9, 0.5), "silicon", (xl, 0, zb + 4.35 + 0.25)),
        cyl("tripod_socket", 3.0, 5.0, "brass", (xl, -(H / 2 - w - 2.6), zt - 3.0), Y),
    ]
    rcap = 4.0
    xcap = xr0 + 1 + 11
    if xcap + 11 < xl - 12:
        c = cyl("flash_capacitor", rcap, 22, "aluminum", (xcap, H / 2 - w - rcap - 0.5, zt - rcap - 0.5), X, wall=0.3)
        inner.append(inside(c, cyl("foil_roll", rcap - 0.5, 21, "paper")))
    inside(parts[0], inner)
    barrel = cyl("lens_barrel", rl, lb, "aluminum" if p["body_material"] == "aluminum" else "pc",
                 (xl, 0, D / 2 + lb / 2 + 0.05), wall=1.0)
    room = lb - 2.0
    n = max(1, min(4, int((room - 0.4) / 2.6)))
    step = room / n
    els = []
    for i in range(n):
        t = min(2.2, step - 0.4)
        els.append(cyl(f"element{i}", rl - 1.0 - 0.3 - 1.5 * (i % 2), t, "glass",
                       (0, 0, -room / 2 + step * (i + 0.5))))
    parts.append(inside(barrel, els))
    return obj(parts)


@register("game_controller", None, "game controller: plastic body and grips around a board with two thumbstick "
          "modules (steel housings), a li-ion pack or two AA cells, and a rumble motor with a steel weight in "
          "each grip; rubber stick caps, buttons and a d-pad on top", {
              "width": num(U(140, 165)),
              "depth": num(U(56, 70)),
              "height": num(U(27, 34)),
              "grip_length": num(U(28, 40)),
              "aa_cells": flag(0.35, "two AA cells (1) or a li-ion pack (0)"),
              "body_material": mat(["abs", "pc"]),
          }, F)
def game_controller(p, rng):
    Wd, D, H, gl = p["width"], p["depth"], p["height"], p["grip_length"]
    w = 1.6
    bm = p["body_material"]
    zf = -H / 2 + w
    # the silhouette: a rounded body with a grip hanging from each end (a hollow extrusion)
    rc, gr = 12.0, 16.0
    gx = Wd / 2 - 6 - gr  # the grips' axes
    yb = -D / 2 - gl + gr  # the centres of the grips' round ends
    right = ([(Wd / 2, -D / 2 + 6), (Wd / 2 - 6 + gr, yb)] + arc(gr, 0, -180, (gx, yb), n=16)[1:-1]
             + [(gx - gr, yb), (gx - gr - 6, -D / 2)])
    left = [(-x, y) for x, y in reversed(right)]
    outline = (right + left + arc(rc, 180, 90, (-Wd / 2 + rc, D / 2 - rc), n=8)
               + arc(rc, 90, 0, (Wd / 2 - rc, D / 2 - rc), n=8))
    body = extrude("body", outline, H, bm, 0.0, wall=w)
    inner = [box("board", (Wd - 2 * rc - 6, D - 2 * w - 4, 1.2), "fr4", (0, 0, zf + 0.1 + 0.6))]
    parts = []
    zb = zf + 1.4
    sticks = [(-Wd / 4, D / 8), (Wd / 9, -D / 6)]
    for k, (sx, sy) in enumerate(sticks):
        m = box(f"stick_module{k}", (16, 16, 9), "steel", (sx, sy, zb + 4.5), wall=0.5)
        inner.append(inside(m, cyl("gimbal", 5, 7.5, "pp")))
        parts.append(cyl(f"stick_cap{k}", 9, 6, "rubber", (sx, sy, H / 2 + 3.05)))
    if p["aa_cells"]:
        mid = (sticks[0][0] + sticks[1][0]) / 2
        for k, sx in enumerate((-1, 1)):  # between the sticks, along y
            inner.append(cyl(f"aa_cell{k}", 7.25, 50.5, "alkaline_cell", (mid + sx * 7.6, 0, zb + 7.3), Y))
    else:
        inner.append(box("cell_pack", (36, 18, 6), "li_ion_cell", (Wd / 4, D / 2 - w - 10, zb + 3.05)))
    for k, sx in enumerate((-1, 1)):  # a rumble motor (steel can, copper winding) and its weight in each grip
        ml = 16.0
        y0 = -D / 2 - gl / 2
        mot = cyl(f"motor{k}", 6, ml, "steel", (sx * gx, y0, 0), Y, wall=0.4)
        inner += [inside(mot, cyl("winding", 5.2, ml - 1.0, "copper")),
                  cyl(f"weight{k}", 5, 5, "steel", (sx * gx, y0 + ml / 2 + 0.3 + 2.5, 0), Y)]
    parts.insert(0, inside_abs(body, inner))
    bxc, byc = Wd / 4, D / 8
    for k, (dx, dy) in enumerate(((8, 0), (-8, 0), (0, 8), (0, -8))):
        parts.append(cyl(f"button{k}", 4.5, 3, "abs", (bxc + dx, byc + dy, H / 2 + 1.55)))
    dx, dy = -Wd / 8 + 2, -D / 6
    parts += [box("dpad_h", (20, 6.5, 3), "abs", (dx, dy, H / 2 + 1.55)),
              box("dpad_n", (6.5, 6.7, 3), "abs", (dx, dy + 3.25 + 3.4, H / 2 + 1.55)),
              box("dpad_s", (6.5, 6.7, 3), "abs", (dx, dy - 3.25 - 3.4, H / 2 + 1.55))]
    return obj(parts)


@register("computer_mouse", None, "computer mouse: plastic shell holding a board with the optical sensor and "
          "lens, two switches and a rubber scroll wheel on a steel axle; a wireless one holds an AA cell, a "
          "wired one trails its cable", {
              "length": num(U(105, 125)),
              "width": num(U(58, 70)),
              "height": num(U(34, 42)),
              "wireless": flag(0.6, "an AA cell (1) or a cable (0)"),
              "shell_material": mat(["abs", "pc"]),
          }, F)
def computer_mouse(p, rng):
    a, b, c = p["length"] / 2, p["width"] / 2, p["height"] / 2
    w = 1.5
    Rx, Ry, Rz = a - w, b - w, c - w
    parts = [ell("shell", (a, b, c), p["shell_material"], (0, 0, 0), wall=w)]
    zb = -0.4 * Rz
    rw = min(7.0, 0.42 * Rz)
    zw = zb + 0.6 + 0.3 + rw
    xw = 0.33 * Rx
    inner = [
        box("board", (1.1 * Rx, 1.2 * Ry, 1.2), "fr4", (0, 0, zb)),
        box("sensor", (6, 6, 1.5), "silicon", (0, 0, zb - 0.6 - 0.8)),
        box("lens", (10, 8, 3), "pmma", (0, 0, zb - 0.6 - 1.6 - 1.55)),
        cyl("wheel", rw, 7, "rubber", (xw, 0, zw), Y, wall=1.5),
        box("switch0", (6, 6, 4), "abs", (0.52 * Rx, 0.3 * Ry, zb + 0.6 + 2.05)),
        box("switch1", (6, 6, 4), "abs", (0.52 * Rx, -0.3 * Ry, zb + 0.6 + 2.05)),
    ]
    inside(inner[3], cyl("axle", 1.0, 3.5, "steel"))
    if p["wireless"]:
        inner.append(cyl("aa_cell", 7.25, 50.5, "alkaline_cell", (-0.3 * Rx, 0, zb + 0.6 + 0.2 + 7.25), X))
        if xw - rw < -0.3 * Rx + 25.25 + 0.2:
            inner[-1]["pose"]["position"][0] = xw - rw - 0.3 - 25.25
    inside(parts[0], inner)
    if not p["wireless"]:
        r = 1.6
        x0 = a + 0.1
        pts = [(x0, 0, 0), (x0 + 25, 0, 0), (x0 + 40, 3, 0), (x0 + 55, 12, 0), (x0 + 68, 24, 0), (x0 + 80, 40, 0),
               (x0 + 95, 75, 0)]
        parts += cable("cable", pts, r)
        parts += usb_plug("plug", np.asarray(pts[-1]) + np.array([15, 35, 0]) / np.linalg.norm([15, 35]) * 0.05,
                          (15, 35, 0), 0)
    return obj(parts)


# the rest of the family registers after these entries
from xraybag.scenes.catalog import gadgets_devices, gadgets_home  # noqa: E402, F401
