"""Colour tables of scanner displays (``scanners[].colour``): the default stays the engine's
standard colours, another table changes hues, saturation, brightness and background as it says,
bad values are one-line errors."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from helpers import run_cli, write
from xraybag.engine.xray import calibration as C
from xraybag.engine.xray.calibration import Display, _display_hue, calibrate_colour
from xraybag.engine.xray.colour import INORGANIC, METAL, ORGANIC, classify, pseudo_colour
from xraybag.engine.xray.detect import channel_response, detect
from xraybag.errors import XraybagError
from xraybag.materials import default_library
from xraybag.scenes.colours import TABLES
from xraybag.scenes.loader import load_scene
from xraybag.scenes.models import Scanner
from xraybag.scenes.sample import dump_scene, sample

# (material, thicknesses in mm, class); the standard table shows the classes at 30, 120, 225 degrees
WEDGES = [("water", [20, 60, 120], ORGANIC), ("aluminum", [5, 12, 25], INORGANIC), ("iron", [1, 2, 4], METAL)]


@pytest.fixture(scope="module")
def library():
    return default_library()


def wedge(material, steps, scanner, library):
    resp = channel_response(scanner, library, 1.0, 1000.0)
    L = np.asarray(steps, dtype=np.float32)[None, :, None]
    out = detect(L, [material], scanner, resp, library, np.random.default_rng(0), scanner.pitch)
    return out["low"], out["high"]


def expected_rgb(hue, h, sat_max, sat_scale, dark_max, dark_scale, background=(255, 255, 255)):
    """The colour a table specifies for a pixel of hue ``hue`` at h = -ln T_high, by colorsys."""
    s = sat_max * (1 - np.exp(-h / sat_scale))
    v = 1 - dark_max * (1 - np.exp(-h / dark_scale))
    rgb = np.array(colorsys.hsv_to_rgb(hue / 360.0, s, v))
    return rgb * np.asarray(background) / 255.0 * 255.0


def check_wedges(scanner, library, hues, params, background=(255, 255, 255)):
    cal = calibrate_colour(scanner, library)
    for (material, steps, cls), hue in zip(WEDGES, hues):
        t_low, t_high = wedge(material, steps, scanner, library)
        assert classify(t_low, t_high, cal)[0].tolist() == [[cls] * len(steps)]
        rgb = pseudo_colour(t_low, t_high, cal).astype(float)[0]
        for k, t in enumerate(t_high[0]):
            want = expected_rgb(hue, -np.log(float(t)), *params, background)
            assert np.abs(rgb[k] - want).max() <= 2.0, (material, steps[k], rgb[k], want)


def test_default_is_the_engines_standard_colours(library):
    """No ``colour``, ``colour: standard`` and the standard table's explicit values all give the
    calibration of the engine's constants (hues 30 / 120 / 225, SAT_MAX, SAT_H, DARK_MAX, DARK_H,
    white), and its colours are those the constants specify."""
    plain = Scanner(name="t", type="line_scan", noise=False)
    named = Scanner(name="t", type="line_scan", noise=False, colour="standard")
    explicit = Scanner(name="t", type="line_scan", noise=False, colour=TABLES["standard"])
    cal = calibrate_colour(plain, library)
    assert cal.display is None
    assert calibrate_colour(named, library) is cal and calibrate_colour(explicit, library) is cal
    assert Display(**explicit.colour.resolved()) == Display()
    assert C._HUE_DEG[[0, 2, 4]].tolist() == list(C.HUES) == [30.0, 120.0, 225.0]
    check_wedges(plain, library, C.HUES, (C.SAT_MAX, C.SAT_H, C.DARK_MAX, C.DARK_H))
    ones = np.ones((2, 3))
    assert np.all(pseudo_colour(ones, ones, cal) == 255)


def test_vendor_b_shows_its_hues_curves_and_background(library):
    sc = Scanner(name="t", type="line_scan", noise=False, colour="vendor_b")
    t = TABLES["vendor_b"]
    bg = tuple(int(t["background"][i:i + 2], 16) for i in (1, 3, 5))
    params = (t["saturation"]["max"], t["saturation"]["scale"], t["brightness"]["dark"], t["brightness"]["scale"])
    assert (t["organic"], t["inorganic"], t["metal"]) != C.HUES and bg != (255, 255, 255)
    check_wedges(sc, library, (t["organic"], t["inorganic"], t["metal"]), params, bg)
    cal = calibrate_colour(sc, library)
    std = calibrate_colour(Scanner(name="t", type="line_scan", noise=False), library)
    assert cal.lut_zeff is std.lut_zeff and cal.hue_table is std.hue_table  # classes unchanged
    ones = np.ones((2, 3))
    assert pseudo_colour(ones, ones, cal).reshape(-1, 3).tolist() == [list(bg)] * 6


def test_explicit_values_replace_the_tables(library):
    sc = Scanner(name="t", type="line_scan", noise=False, colour={
        "table": "vendor_b", "organic": 300, "metal": 180, "saturation": {"max": 0.5},
        "brightness": {"scale": 1.0}, "background": "#FFFFFF"})
    t = TABLES["vendor_b"]
    check_wedges(sc, library, (300.0, t["inorganic"], 180.0), (0.5, t["saturation"]["scale"], t["brightness"]["dark"], 1.0))


def test_blends_take_the_shorter_way_round():
    d = Display(organic=350.0, inorganic=20.0, metal=200.0)
    # standard hue 75 is halfway between organic (30) and inorganic (120): 350 -> 20 via 5, not 185
    assert _display_hue(np.array([30.0, 75.0, 120.0]), d).tolist() == [350.0, 5.0, 20.0]
    # 120 -> 225 (halfway at 172.5): 20 -> 200 is 180 degrees either way; downwards (via 290) is taken
    assert _display_hue(np.array([172.5, 225.0]), d).tolist() == [290.0, 200.0]


def test_scene_without_colour_dumps_as_before_and_vendor_b_keeps_its_table(tmp_path):
    sc = Scanner(name="t", type="line_scan")
    assert "colour" not in sc.model_dump() and "colour" not in sc.model_dump(mode="json")
    loaded = load_scene("pidray_vendor_b")
    assert [s.colour.table for s in loaded.spec.scanners] == ["vendor_b", "vendor_b"]
    text = dump_scene(sample(loaded, 0))
    again = load_scene(write(tmp_path / "concrete.yaml", text))
    assert [s.colour.table for s in again.spec.scanners] == ["vendor_b", "vendor_b"]
    assert "colour" not in dump_scene(sample(load_scene("pidray"), 0))


BAD = [
    ("colour: {organic: 400}", "bag.yaml:5:23: scanners[0].colour.organic", "expected a number >= 0 and < 360, got 400"),
    ("colour: {background: red}", "bag.yaml:5:26: scanners[0].colour.background", "expected a colour '#rrggbb'"),
    ("colour: {background: '#12345'}", "scanners[0].colour.background", "expected a colour '#rrggbb'"),
    ("colour: vendor_c", "bag.yaml:5:13: scanners[0].colour", "expected one of 'standard' or 'vendor_b', got 'vendor_c'"),
    ("colour: {saturation: {max: 2}}", "scanners[0].colour.saturation.max", "expected a number >= 0 and <= 1"),
    ("colour: {hue: 20}", "scanners[0].colour.hue", "unknown key 'hue'"),
    ("type: ct\n    colour: vendor_b", "scanners[0]", "colour is for line_scan and radiograph scanners"),
]


@pytest.mark.parametrize("line, where, words", BAD)
def test_bad_colour_is_a_one_line_error(tmp_path, line, where, words):
    kind = "" if line.startswith("type:") else "type: line_scan\n    "
    text = f"bag: {{size: [550, 350, 220]}}\nscanners:\n  - name: a\n    {kind}{line}\n"
    with pytest.raises(XraybagError) as e:
        load_scene(write(tmp_path / "bag.yaml", text))
    msg = str(e.value)
    assert "\n" not in msg
    assert where in msg and words in msg, msg


def test_bad_colour_on_the_command_line_exits_2(tmp_path):
    bad = write(tmp_path / "bad.yaml", "bag: {size: [550, 350, 220]}\nscanners:\n  - {name: a, type: line_scan, colour: {metal: -5}}\n")
    r = run_cli("validate", bad)
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0
    assert "scanners[0].colour.metal: expected a number >= 0 and < 360" in r.stderr


def test_docs_example_and_a_distribution_sample(tmp_path, library):
    text = "bag: {size: [550, 350, 220]}\nscanners:\n  - {name: top, type: line_scan, colour: {metal: {uniform: [200, 260]}}}\n"
    loaded = load_scene(write(tmp_path / "bag.yaml", text))
    metals = {sample(loaded, i).scanners[0].colour.metal for i in range(4)}
    assert len(metals) == 4 and all(200 <= m <= 260 for m in metals)
    scanner = sample(loaded, 0).scanners[0].model_copy(update={"noise": Scanner(name="x", type="line_scan", noise=False).noise})
    m = scanner.colour.metal
    check_wedges(scanner, library, (30.0, 120.0, m), (C.SAT_MAX, C.SAT_H, C.DARK_MAX, C.DARK_H))
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "scene-format.md").read_text()
    example = doc.split("Colour table (`colour`", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    loaded = load_scene(write(tmp_path / "doc.yaml", "bag: {size: [550, 350, 220]}\n" + example))
    assert [s.colour.table for s in loaded.spec.scanners] == ["vendor_b", "standard"]
