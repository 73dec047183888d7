"""Benign electronics: laptop, phone, charger with cable."""

from __future__ import annotations

from xraybag.scenes.catalog.registry import U, count, mat, num, register
from xraybag.scenes.catalog._parts import box, obj, ring

F = "electronics"


@register("notebook_pc", None, "laptop: metal or plastic base holding the battery, the board and a "
          "copper heat pipe; lid with the glass panel", {
              "width": num(U(280, 360)),
              "depth": num(U(190, 250)),
              "base_thickness": num(U(10, 18)),
              "lid_thickness": num(U(4, 7)),
              "shell_material": mat(["aluminum", "pc", "abs"], weights=[3, 2, 1]),
          }, F)
def notebook_pc(p, rng):
    W, D, bt, lt = p["width"], p["depth"], p["base_thickness"], p["lid_thickness"]
    wb, wl = 1.0, 0.8
    cz = -bt / 2 + wb  # cavity floor of the base
    bat_d = 0.3 * D
    board_d = 0.45 * D
    y_bat = -D / 2 + wb + 0.5 + bat_d / 2
    y_board = D / 2 - wb - 0.5 - board_d / 2
    return obj(
        box("base", (W, D, bt), p["shell_material"], (0, 0, 0), wall=wb),
        box("battery", (0.7 * W, bat_d, bt - 2 * wb - 1.5), "li_ion_cell", (0, y_bat, 0)),
        box("board", (0.6 * W, board_d, 1.6), "fr4", (0, y_board, cz + 0.2 + 0.8)),
        box("heat_pipe", (0.3 * W, 8, 2.5), "copper", (0, y_board, cz + 0.2 + 1.6 + 1.25)),
        box("lid", (W, D, lt), p["shell_material"], (0, 0, bt / 2 + lt / 2), wall=wl),
        box("panel", (W - 2 * wl - 1, D - 2 * wl - 1, lt - 2 * wl - 0.4), "glass", (0, 0, bt / 2 + lt / 2)),
    )


@register("smartphone", None, "smartphone: metal or plastic frame holding battery, board with a "
          "steel shield, camera", {
              "length": num(U(130, 168)),
              "width": num(U(64, 78)),
              "thickness": num(U(7, 10)),
              "frame_material": mat(["aluminum", "stainless_steel", "pc"], weights=[3, 1, 2]),
          }, F)
def smartphone(p, rng):
    L, W, T = p["length"], p["width"], p["thickness"]
    w = 0.8
    ci = L / 2 - w
    bat = 0.55 * L
    brd = L - 2 * w - bat - 1.5
    fz = -T / 2 + w
    return obj(
        box("frame", (L, W, T), p["frame_material"], (0, 0, 0), wall=w),
        box("battery", (bat, W - 2 * w - 4, T - 2 * w - 1), "li_ion_cell", (-ci + 0.5 + bat / 2, 0, 0)),
        box("board", (brd, W - 2 * w - 4, 1.0), "fr4", (ci - 0.5 - brd / 2, 0, fz + 0.2 + 0.5)),
        box("shield", (0.8 * brd, W - 2 * w - 12, 0.3), "stainless_steel", (ci - 0.5 - brd / 2, 0, fz + 1.2 + 0.15)),
        box("camera", (12, 12, 1.5), "glass", (ci - brd / 2, W / 4, T / 2 + 0.75)),
    )


@register("phone_charger", None, "wall charger (transformer and board in a plastic case, brass pins) "
          "and a coiled cable with copper cores", {
              "size": num(U(35, 60), "case edge"),
              "coil_radius": num(U(22, 45)),
              "turns": count({"uniform_int": [1, 3]}),
              "case_material": mat(["pc", "abs"]),
          }, F)
def phone_charger(p, rng):
    s, R = p["size"], p["coil_radius"]
    w = 1.5
    cav = s - 2 * w
    parts = [
        box("case", (s, s, 0.7 * s), p["case_material"], (0, 0, 0), wall=w),
        box("transformer", (0.45 * cav, 0.45 * cav, 0.7 * s - 2 * w - 1), "iron", (-cav / 4, 0, 0)),
        box("board", (0.45 * cav, cav - 1, 1.6), "fr4", (cav / 4, 0, -0.35 * s + w + 1.0)),
        box("pin_a", (8, 2, 16), "brass", (0, -6, 0.35 * s + 8)),
        box("pin_b", (8, 2, 16), "brass", (0, 6, 0.35 * s + 8)),
    ]
    cx = s / 2 + 6 + R + 6.5 * p["turns"]
    for t in range(p["turns"]):
        r = R + 6.5 * t
        segs = ring(f"cable{t}_", r, 4.0, 4.0, "pvc", (cx, 0, 0), n=16)
        for sgt in segs:  # a copper core inside each jacket segment
            (sx, sy, sz) = sgt["shape"]["box"]["size"]
            sgt["container"] = {"wall": 1.2}
            sgt["parts"] = [box("core", (sx - 2.6, sy - 2.6, sz - 2.6), "copper")]
        parts += segs
    return obj(parts)
