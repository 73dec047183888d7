"""Pseudo-colour: step-wedge calibration, classes, colours, and the CLCXray encoding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from specks import speckled

from xraybag.engine.xray.calibration import (
    _hue,
    _rgb_direct,
    calibrate_colour,
    classify_direct,
    low_high_channels,
)
from xraybag.engine.xray.colour import (
    BACKGROUND,
    INORGANIC,
    METAL,
    ORGANIC,
    _remove_scatter,
    classify,
    clcxray_encoding,
    pseudo_colour,
)
from xraybag.engine.xray.detect import channel_response, detect
from xraybag.materials import default_library
from xraybag.scenes.models import Scanner

WEDGES = [
    ("polyethylene", [10, 20, 40, 70, 100, 150], ORGANIC),
    ("water", [10, 20, 40, 70, 100, 150], ORGANIC),
    ("aluminum", [2, 5, 10, 15, 20, 30], INORGANIC),
    ("iron", [1, 2, 3, 5, 8], METAL),
    ("lead", [0.5, 1, 2, 3, 4], METAL),
]


@pytest.fixture(scope="module")
def library():
    return default_library()  # holds the detector materials (csi, cdwo4, gos, copper)


@pytest.fixture(scope="module")
def quiet():
    return Scanner(name="top", type="line_scan", noise=False)


@pytest.fixture(scope="module")
def calibration(quiet, library):
    return calibrate_colour(quiet, library)


def wedge(material, steps, scanner, library, rng=None, size=1):
    """Transmissions of a step wedge: one (size x size) block per step, side by side."""
    resp = channel_response(scanner, library, 1.0, 1000.0)
    L = np.repeat(np.asarray(steps, dtype=np.float32), size)[None, :, None]
    L = np.repeat(L, size, axis=0)
    out = detect(L, [material], scanner, resp, library, rng or np.random.default_rng(0), scanner.pitch)
    return out["low"], out["high"]


@pytest.mark.parametrize("material,steps,expected", WEDGES)
def test_step_wedges_classes(material, steps, expected, quiet, library, calibration):
    t_low, t_high = wedge(material, steps, quiet, library)
    classes, zeff = classify(t_low, t_high, calibration)
    assert classes.dtype == np.uint8 and zeff.dtype == np.float32
    assert classes.tolist() == [[expected] * len(steps)], zeff


@pytest.mark.parametrize("material,steps,expected", WEDGES)
def test_step_wedges_colours(material, steps, expected, quiet, library, calibration):
    t_low, t_high = wedge(material, steps, quiet, library)
    rgb = pseudo_colour(t_low, t_high, calibration).astype(int)[0]
    assert rgb.shape == (len(steps), 3)
    r, g, b = rgb.T
    if expected == ORGANIC:  # orange: red > green > blue
        assert np.all(r > g) and np.all(g > b)
    elif expected == INORGANIC:
        assert np.all(g > r) and np.all(g > b)
    else:
        assert np.all(b > r) and np.all(b > g)
    # brightness falls with thickness
    assert np.all(np.diff(rgb.sum(axis=1)) < 0)


def test_zeff_of_references(quiet, library, calibration):
    for material, steps, z in [("water", [20, 100], 7.42), ("aluminum", [5, 20], 13.0), ("iron", [1, 4], 26.0)]:
        _, zeff = classify(*wedge(material, steps, quiet, library), calibration)
        assert np.allclose(zeff, z, atol=0.6), (material, zeff)


def test_background_is_white(calibration):
    ones = np.ones((4, 6))
    rgb = pseudo_colour(ones, ones, calibration)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 6, 3)
    assert np.all(rgb == 255)
    classes, zeff = classify(ones * 0.999, ones * 0.9995, calibration)
    assert np.all(classes == BACKGROUND) and np.all(zeff == 0)


def test_starved_pixels_are_dark_metal(calibration):
    t = np.full((2, 2), 1e-5)
    classes, _ = classify(t, t, calibration)
    assert np.all(classes == METAL)
    rgb = pseudo_colour(t, t, calibration).astype(int)
    assert np.all(rgb[..., 2] > rgb[..., 0]) and np.all(rgb.sum(axis=-1) < 200)


def test_noisy_blocks_majority_class(library):
    """With the full default noise model, uniform blocks still read as their class."""
    sc = Scanner(name="top", type="line_scan")
    cal = calibrate_colour(sc, library)
    assert cal.denoise_px > 0 and cal.scatter_fraction > 0
    rng = np.random.default_rng(11)
    for material, thick, expected in [("water", 60, ORGANIC), ("aluminum", 10, INORGANIC), ("iron", 6, METAL)]:
        t_low, t_high = wedge(material, [thick], sc, library, rng, size=60)
        classes, _ = classify(t_low, t_high, cal)
        inner = classes[10:-10, 10:-10]
        assert np.mean(inner == expected) > 0.97, (material, np.bincount(inner.ravel(), minlength=4))


def test_calibration_is_cached(quiet, library, calibration):
    assert calibrate_colour(quiet, library) is calibration
    other = Scanner(name="x", type="line_scan", noise=False, spectrum={"kvp": 100})
    assert calibrate_colour(other, library) is not calibration


def test_photon_counting_and_single_channel(library):
    pc = Scanner(name="p", type="radiograph", noise=False,
                 detector={"type": "photon_counting", "thresholds": [20, 45, 70]})
    cal = calibrate_colour(pc, library)
    assert (cal.low_channel, cal.high_channel) == ("bin0", "bin2")
    resp = channel_response(pc, library, 1.0, 1000.0)
    out = detect(np.full((1, 1, 1), 10, np.float32), ["aluminum"], pc, resp, library,
                 np.random.default_rng(0), 1.0)
    classes, _ = classify(out["bin0"], out["bin2"], cal)
    assert classes[0, 0] == INORGANIC
    with pytest.raises(ValueError):
        calibrate_colour(Scanner(name="i", type="radiograph", detector={"type": "integrating"}), library)
    assert low_high_channels(["low", "high"]) == ("low", "high")


def test_clcxray_encoding_hand_computed():
    high = np.array([[60000, 30000], [0, 65535]], dtype=np.uint16)
    low = np.array([[60000, 15000], [100, 0]], dtype=np.uint16)
    enc = clcxray_encoding(high, low)
    assert enc.dtype == np.uint8 and enc.shape == (2, 2, 3)

    def c3(r):
        return int(np.clip(np.rint(510 / (1 + np.exp(-r)) - 255), 0, 255))

    # channel 0 = high / 256, channel 1 = low / 256 (integer division)
    assert enc[..., 0].tolist() == [[234, 117], [0, 255]]
    assert enc[..., 1].tolist() == [[234, 58], [0, 0]]
    # channel 2 = 510 sigmoid(high / low) - 255; R = 1 -> 118, R = 2 -> 194, R = 0 -> 0
    assert enc[0, 0, 2] == c3(1.0) == 118
    assert enc[0, 1, 2] == c3(2.0) == 194
    assert enc[1, 0, 2] == 0
    assert enc[1, 1, 2] == c3(65535.0) == 255  # zero low pixel taken as 1


# ------------------------------------------------------------------------------ look-up tables

LUT_SCANNERS = {
    "default": dict(type="line_scan"),
    "100kvp": dict(type="line_scan", spectrum={"kvp": 100}),
    "photon_counting": dict(
        type="radiograph", detector={"type": "photon_counting", "thresholds": [20, 45, 70]}
    ),
}


def direct_classify(t_low, t_high, cal):
    """classify() without its tables (nor scatter or denoise): the per-pixel algorithm."""
    floor = 0.1 * cal.starvation
    lo = -np.log(np.maximum(t_low, floor))
    hi = -np.log(np.maximum(t_high, floor))
    h = np.clip(hi, cal.h_grid[0], cal.h_grid[-1])
    classes, zeff, captured = classify_direct(h, lo / h, cal)
    starved = t_high < cal.starvation
    background = (lo < cal.background) & ~starved
    classes = np.where(starved, METAL, np.where(background, BACKGROUND, classes))
    zeff = np.where(starved | background, 0.0, zeff)
    return classes, zeff, captured


def random_pixels(cal, rng, shape=(300, 400)):
    """Transmissions at random (h, R): h log-uniform over 0.02..6 (background to starved), R from
    just below the lightest ladder curve to just above the heaviest at that h."""
    h = np.exp(rng.uniform(np.log(0.02), np.log(6.0), shape))
    log_grid = np.log(cal.h_grid)
    bottom = np.interp(np.log(h), log_grid, cal.ladder_r[0])
    top = np.interp(np.log(h), log_grid, cal.ladder_r[-1])
    r = bottom + (top - bottom) * rng.uniform(-0.05, 1.05, shape)
    # float32-representable, as the tables' float32 passes see them
    t_high = np.exp(-h).astype(np.float32).astype(np.float64)
    t_low = np.exp(-r * h).astype(np.float32).astype(np.float64)
    return t_low, t_high


@pytest.mark.parametrize("kind", LUT_SCANNERS)
def test_tables_match_direct_algorithm(kind, library):
    cal = calibrate_colour(Scanner(name="t", noise=False, **LUT_SCANNERS[kind]), library)
    t_low, t_high = random_pixels(cal, np.random.default_rng(5))
    classes, zeff = classify(t_low, t_high, cal, clean=False)  # pixel by pixel, as the reference
    ref_classes, ref_zeff, captured = direct_classify(t_low, t_high, cal)
    agree = classes == ref_classes
    confusion = np.bincount(classes[~agree] * 4 + ref_classes[~agree], minlength=16)
    assert agree.mean() >= 0.995, confusion
    assert np.all(zeff[ref_classes == BACKGROUND] == 0)
    # Zeff: bilinear in the cell, exact along R; only kinks, the capture band's edges and (above
    # Z 20) nearly coinciding heavy curves make it differ by more than 0.05
    ladder = agree & (captured < 0) & (ref_zeff > 0)
    err = np.abs(zeff - ref_zeff)[ladder]
    light = ref_zeff[ladder] <= 20
    assert np.mean(err[light] > 0.05) <= 1e-3, np.percentile(err[light], [99, 99.9, 100])
    assert np.median(err) < 0.01
    assert np.all(zeff[agree & (ref_zeff == 82)] == 82)
    # colours: hue rounded to a degree, h in 1.2 % bins
    rgb = pseudo_colour(t_low, t_high, cal, clean=False).astype(int)
    ref_rgb = _rgb_direct(_hue(ref_classes, ref_zeff), -np.log(np.clip(t_high, 1e-12, 1.0)))
    diff = np.abs(rgb - ref_rgb).max(axis=-1)[agree]
    assert np.mean(diff <= 2) >= 0.999 and diff.max() <= 8, np.bincount(diff)


def test_colour_follows_classify_on_noisy_views(library):
    """pseudo_colour shows classify's class and Zeff (scatter, noise and denoising included)."""
    sc = Scanner(name="top", type="line_scan")
    cal = calibrate_colour(sc, library)
    rng = np.random.default_rng(3)
    blocks = [wedge(m, [t], sc, library, rng, size=40) for m, t in
              [("water", 60), ("aluminum", 10), ("iron", 6), ("lead", 2), ("air", 1)]]
    t_low = np.hstack([b[0] for b in blocks])
    t_high = np.hstack([b[1] for b in blocks])
    classes, zeff = classify(t_low, t_high, cal)
    assert set(np.unique(classes)) == {BACKGROUND, ORGANIC, INORGANIC, METAL}
    rgb = pseudo_colour(t_low, t_high, cal).astype(int)
    expected = _rgb_direct(_hue(classes, zeff), -np.log(np.clip(t_high, 1e-12, 1.0)))
    assert np.abs(rgb - expected).max() <= 3


def test_scatter_removal_inverts_the_detector_model(library):
    sc = Scanner(name="s", type="line_scan", noise={"quantum": False, "electronic": 0, "blur": 0})
    cal = calibrate_colour(sc, library)
    assert cal.scatter_fraction > 0 and cal.denoise_px == 0
    quiet = Scanner(name="s", type="line_scan", noise=False)
    L = np.zeros((150, 260, 2), np.float32)
    L[30:120, 40:120, 0] = 6.0  # iron
    L[20:130, 150:230, 1] = 80.0  # water
    resp = channel_response(sc, library, 1.0, 1000.0)
    rng = np.random.default_rng(0)
    scattered = detect(L, ["iron", "water"], sc, resp, library, rng, sc.pitch)["high"]
    primary = detect(L, ["iron", "water"], quiet, resp, library, rng, quiet.pitch)["high"]
    shape = primary.shape
    corrected = _remove_scatter(scattered, cal, np.empty(shape, np.float32))
    assert np.abs(scattered - primary).max() > 0.005
    assert np.abs(corrected - primary).max() < 1e-3
    out = detect(L, ["iron", "water"], sc, resp, library, rng, sc.pitch)
    classes, _ = classify(out["low"], out["high"], cal)
    assert np.all(classes[40:110, 50:110] == METAL) and np.all(classes[30:120, 160:220] == ORGANIC)


def test_calibration_without_tables_gets_them(quiet, library, calibration):
    bare = replace(calibration, lut_rmin=None, lut_rscale=None, lut_zeff=None, lut_capture=None,
                   hue_table=None, rgb_table=None)
    t_low, t_high = random_pixels(calibration, np.random.default_rng(1), (20, 30))
    for a, b in zip(classify(t_low, t_high, bare), classify(t_low, t_high, calibration)):
        assert np.array_equal(a, b)
    rgb = pseudo_colour(t_low, t_high, calibration)
    assert np.array_equal(pseudo_colour(t_low, t_high, bare), rgb)


def test_despeckle_removes_lone_pixels_near_a_boundary_and_keeps_edges_and_wires():
    from xraybag.engine.xray.colour import despeckle

    lo, hi = 10.0, 18.0
    code = np.full((12, 16), INORGANIC, np.uint8)
    z = np.full(code.shape, 17.0, np.float32)  # near the inorganic/metal boundary
    code[:, 10:] = METAL  # an edge
    z[:, 10:] = 19.0
    code[3, 3] = METAL  # a lone pixel near the boundary: noise
    z[3, 3] = 18.5
    code[6, 4] = METAL  # a lone pixel far from the boundary: a real speck of steel
    z[6, 4] = 26.0
    code[8:11, 6] = METAL  # a 1-pixel wire, far from the boundary
    z[8:11, 6] = 26.0
    code[2, 12] = INORGANIC  # a lone pixel on the other side
    z[2, 12] = 17.9
    code[6:8, 12:14] = INORGANIC  # a 2 x 2 speck near the boundary
    z[6:8, 12:14] = 17.5
    code[0:4, 5:9] = METAL  # a 4 x 4 patch near the boundary: larger than a speck
    z[0:4, 5:9] = 18.4
    skip = np.zeros(code.shape, bool)
    out = despeckle(code, z, skip, lo, hi)
    assert out[3, 3] == INORGANIC and out[2, 12] == METAL and np.all(out[6:8, 12:14] == METAL)
    assert out[6, 4] == METAL and np.all(out[8:11, 6] == METAL) and np.all(out[0:4, 5:9] == METAL)
    changed = out != code
    assert changed.sum() == 6
    assert np.all(out[:, 9] == INORGANIC) and np.all(out[:, 10] == METAL)  # the edge does not move
    # background neighbours neither change a pixel nor count
    skip[:, :] = True
    skip[3, 3] = False
    assert despeckle(code, z, skip, lo, hi)[3, 3] == METAL


def test_despeckle_lone_pixels_among_mixed_classes_captures_and_starved_pixels():
    """A lone pixel whose neighbours are of two classes takes the commoner one (a tie: the class
    nearest its Zeff); a lone pixel inside a K-edge capture takes the capture's code; starved
    neighbours count as metal when marked dark and never change; a 2-pixel speck among mixed
    classes needs 3/4 and stays."""
    from xraybag.engine.xray.colour import despeckle

    lo, hi = 10.0, 18.0
    none = np.zeros((9, 9), bool)
    code = np.full((9, 9), ORGANIC, np.uint8)
    z = np.full(code.shape, 9.0, np.float32)
    code[:, 5:] = INORGANIC
    z[:, 5:] = 11.0
    code[1:4, 4] = [INORGANIC, METAL, ORGANIC]  # around (2, 4): 4 organic, 4 inorganic
    z[2, 4] = 14.5  # nearer the inorganic range (10..18) than the organic one (<= 10)
    assert despeckle(code, z, none, lo, hi)[2, 4] == INORGANIC
    z[2, 4] = 9.8  # in the organic range
    assert despeckle(code, z, none, lo, hi)[2, 4] == ORGANIC
    code[1, 4] = ORGANIC  # 5 organic against 3 inorganic: the commoner class, though under 3/4
    z[2, 4] = 14.5
    assert despeckle(code, z, none, lo, hi)[2, 4] == ORGANIC
    # inside a K-edge capture (code 4): the lone organic pixel takes the capture's code
    cap = np.full((7, 7), METAL + 1, np.uint8)
    cap[3, 3] = ORGANIC
    assert despeckle(cap, np.full(cap.shape, 9.4, np.float32), none[:7, :7], lo, hi)[3, 3] == METAL + 1
    # a lone organic pixel with 5 starved neighbours and 3 inorganic ones
    st = np.full((7, 7), INORGANIC, np.uint8)
    zs = np.full(st.shape, 17.5, np.float32)
    starved = np.zeros(st.shape, bool)
    starved[:, :4] = True
    starved[3, 4] = False
    starved[2, 4] = starved[4, 4] = True
    st[3, 4], zs[3, 4] = ORGANIC, 10.5
    assert despeckle(st, zs, starved, lo, hi)[3, 4] == INORGANIC  # starved pixels do not count
    dark = despeckle(st, zs, starved, lo, hi, dark=starved)
    assert dark[3, 4] == METAL and np.array_equal(dark[starved], st[starved])
    # a 2-pixel speck with its surroundings split 50/50 is not a lone pixel and stays
    two = np.full((8, 8), ORGANIC, np.uint8)
    zt = np.full(two.shape, 9.5, np.float32)
    two[:, 4:] = INORGANIC
    two[3:5, 3] = METAL
    zt[3:5, 3] = 14.0
    assert np.all(despeckle(two, zt, np.zeros(two.shape, bool), lo, hi)[3:5, 3] == METAL)


def test_despeckle_lowers_isolated_pixels_on_a_noisy_boundary_material(library):
    """A thin, noisy aluminium sheet (its Zeff noise reaches both class boundaries): fewer lone
    pixels, and more of the block in its own class."""
    sc = Scanner(name="top", type="line_scan")
    cal = calibrate_colour(sc, library)
    t_low, t_high = wedge("aluminum", [0.5], sc, library, np.random.default_rng(2), size=80)

    def lone(classes):
        c = classes[1:-1, 1:-1]
        iso = np.ones(c.shape, bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr, dc) != (0, 0):
                    iso &= classes[1 + dr:classes.shape[0] - 1 + dr, 1 + dc:classes.shape[1] - 1 + dc] != c
        return int(iso.sum())

    raw, _ = classify(t_low, t_high, cal, clean=False)
    clean, _ = classify(t_low, t_high, cal)
    assert lone(raw) >= 5 and lone(clean) <= lone(raw) // 3
    assert np.mean(clean == INORGANIC) > np.mean(raw == INORGANIC)


def test_lead_is_captured_as_metal_from_half_a_millimetre_and_thinner_lead_shows_as_it_looks(quiet, library,
                                                                                          calibration):
    """Thin lead's ratio sits on a light element's curve: from 0.55 g/cm2 (0.48 mm) the K-edge
    reference captures it as metal; at 0.3 mm it is shown as the light material it looks like
    (its ladder Zeff, from the calibration's own lead curve, is under the metal boundary)."""
    from xraybag.engine.xray.calibration import KEDGE_MIN_MASS

    assert KEDGE_MIN_MASS / 11.35 * 10 < 0.5  # mm of lead
    t_low, t_high = wedge("lead", [0.3, 0.5], quiet, library)
    classes, zeff = classify(t_low, t_high, calibration)
    assert classes[0, 1] == METAL and zeff[0, 1] == 82
    assert classes[0, 0] != METAL and zeff[0, 0] < calibration.inorganic_max


def numpy_codes(t_low, t_high, cal):
    """:func:`_codes` (no despeckling) as whole-array numpy and scipy steps, a temporary per step:
    the reference the compiled passes must give bit for bit."""
    from scipy.ndimage import gaussian_filter

    from xraybag.engine.xray.detect import lowpass

    def unscatter(t):
        out = t.astype(np.float32)
        o, f = cal.scatter_offset, cal.scatter_fraction
        out *= 1.0 + o + f
        out -= o
        out += (lowpass(t, cal.scatter_sigma_px) * (-f * (1.0 + o + f))).astype(np.float32)
        return out

    lo, hi = unscatter(t_low), unscatter(t_high)
    starved = hi < cal.starvation
    lo, hi = (-np.log(np.fmax(a, 0.1 * cal.starvation)) for a in (lo, hi))
    background = (lo < cal.background) & ~starved
    lo = gaussian_filter(lo, cal.denoise_px, mode="nearest")
    hi = gaussian_filter(hi, cal.denoise_px, mode="nearest")
    h0, h1 = float(cal.h_grid[0]), float(cal.h_grid[-1])
    nh, nr = cal.lut_rmin.size, cal.lut_capture.size // cal.lut_rmin.size
    u = np.clip(hi, h0, h1)
    r = lo / u
    u = np.log(u)
    u -= np.log(h0)
    u *= (nh - 1) / (np.log(h1) - np.log(h0))
    u = np.clip(u, 0, nh - 1)
    i = np.floor(u).astype(np.int32)
    v = np.clip((r - cal.lut_rmin.take(i, mode="clip")) * cal.lut_rscale.take(i, mode="clip"), 0, nr - 1)
    j = np.floor(v).astype(np.int32)
    flat = j + i * nr
    fu, fv = u - np.floor(u), v - np.floor(v)
    c = cal.lut_zeff.take(flat, axis=0, mode="clip")
    z = (c[..., 1] - c[..., 0]) * fv + c[..., 0]
    z += ((c[..., 3] - c[..., 2]) * fv + c[..., 2] - z) * fu
    code = np.maximum(1 + (z > cal.organic_max) + (z > cal.inorganic_max),
                      cal.lut_capture.take(flat, mode="clip")).astype(np.uint8)
    return code, z, starved, background


def test_compiled_colour_passes_equal_numpys_steps_bit_for_bit(library):
    """The compiled per-pixel passes take numpy's float32 steps: codes, Zeff, masks and colours
    equal the whole-array numpy/scipy steps in every pixel and bit, on a noisy scanner with
    scatter and denoising, transmissions out of range included (noise above 1, 0, negative)."""
    from xraybag.engine.xray import calibration as K
    from xraybag.engine.xray.colour import _codes

    sc = Scanner(name="top", type="line_scan")
    cal = calibrate_colour(sc, library)
    assert cal.scatter_fraction > 0 and cal.denoise_px > 0
    rng = np.random.default_rng(11)
    t_low, t_high = random_pixels(cal, rng, (90, 130))
    t_low = t_low * rng.uniform(0.9, 1.1, t_low.shape)
    t_high = t_high * rng.uniform(0.9, 1.1, t_high.shape)
    t_low[::7, ::5] = 0.0
    t_high[::11, ::3] = -0.01
    ref = numpy_codes(t_low, t_high, cal)
    got = _codes(t_low, t_high, cal, clean=False)
    assert ref[0].dtype == got[0].dtype and ref[1].dtype == got[1].dtype == np.float32
    for a, b in zip(got, ref):
        assert np.array_equal(a, b)
    assert len(np.unique(got[0])) >= 4 and got[2].any() and got[3].any()
    # the colour look-up, from the same codes
    code, z, starved, background = ref
    hue = cal.hue_table.take((z * K.HUE_PER_Z).astype(np.int32) + code.astype(np.int32) * K.HUE_BINS,
                                         mode="clip")
    hue[starved] = K.STARVED_HUE
    hue[background] = 0
    bits = np.clip(t_high.astype(np.float32), K.T_MIN, 1.0).view(np.int32) >> K.T_SHIFT
    index = hue.astype(np.int32) * K.HR_BINS + K.T_BINS.take(bits, mode="clip")
    expected = cal.rgb_table.take(index, mode="clip").view(np.uint8).reshape(code.shape + (3,))
    assert np.array_equal(pseudo_colour(t_low, t_high, cal, clean=False), expected)


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (2, 2), (5, 40), (40, 3)])
def test_compiled_gaussian_is_scipys(shape):
    from scipy.ndimage import gaussian_filter

    from xraybag.engine.xray.colour import _denoised

    img = np.random.default_rng(len(shape) + shape[0]).normal(2.0, 1.0, shape).astype(np.float32)
    for sigma in (0.5, 1.0, 2.5):
        assert np.array_equal(_denoised(img, sigma), gaussian_filter(img, sigma, mode="nearest"))
    stack = np.stack([img, img])  # another number of axes: scipy's own
    assert np.array_equal(_denoised(stack, 1.0), gaussian_filter(stack, 1.0, mode="nearest"))


def test_despeckle_second_pass_around_the_first_ones_changes_equals_a_whole_pass():
    """The passes after the first search only the tiles within a speck's reach of the last pass's
    changes: the same codes as two whole passes (the kernel run on every tile twice)."""
    from xraybag.engine.xray import colour as C

    lo, hi = np.float32(10.0), np.float32(18.0)
    second, restricted = 0, 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        code, z, dark, background = speckled(rng, 150, 230)
        skip = dark | background
        z[:, 128:], code[:, 128:] = 40.0, 3  # metal far from a boundary: no specks there
        got = C.despeckle(code, z, skip, lo, hi, dark=dark)
        # reference: two whole passes of the kernel, every tile, fresh marks each pass
        tiles = np.ones((-(-150 // C._TILE), -(-230 // C._TILE)), np.bool_)
        out = code.copy()
        for _ in range(C.DESPECKLE_PASSES):
            src = out.copy()
            C._despeckle(src, z, skip, dark, lo, hi, np.float32(C.DESPECKLE_MARGIN), C.DESPECKLE_PIXELS, out,
                         np.zeros(code.shape, np.int64), 0, tiles, np.zeros_like(tiles))
        assert np.array_equal(got, out)
        one = C.despeckle(code, z, skip, lo, hi, dark=dark, passes=1)
        second += int((got != one).sum())
        changed = np.zeros_like(tiles)
        r, c = np.nonzero(one != code)
        changed[r // C._TILE, c // C._TILE] = True
        restricted += int(binary_dilation(changed, np.ones((3, 3), bool)).sum() < tiles.size)
    assert second > 0 and restricted >= 3  # the second pass changed pixels, on part of the tiles


def test_despeckle_second_pass_reaches_across_a_tile_edge():
    """A speck that only the second pass can recolour, in the tile next to the first pass's
    only change: a 4-pixel speck L (Zeff 17, metal) in column 31, the last of the first tile, and
    beside it in column 32 a 2-pixel organic speck P (Zeff 12) whose surroundings are 6 parts L
    and 8 parts the inorganic plate (not 3/4). The first pass gives L the plate's code; the
    second then gives it to P."""
    from xraybag.engine.xray import colour as C

    assert C._TILE == 32
    code = np.full((20, 64), 2, np.uint8)
    z = np.full((20, 64), 14.0, np.float32)
    code[7:11, 31], z[7:11, 31] = 3, 17.0  # L
    code[8:10, 32], z[8:10, 32] = 1, 12.0  # P
    skip = np.zeros(code.shape, bool)
    one = C.despeckle(code, z, skip, 10.0, 18.0, passes=1)
    assert np.all(one[7:11, 31] == 2) and np.all(one[8:10, 32] == 1)
    assert int((one != code).sum()) == 4  # L only
    two = C.despeckle(code, z, skip, 10.0, 18.0)
    assert np.all(two == 2)


def test_colour_images_are_their_own_when_the_next_view_is_coloured(library):
    """pseudo_colour's temporaries (logs, codes, Zeff, masks, the despeckled codes) live in the
    thread's scratch memory: the colour image and classify's classes and Zeff of one view stay as
    they were when another view (of the same shape) is coloured; despeckle into a given array
    gives the codes it returns."""
    from xraybag.engine.xray.colour import _codes, despeckle

    sc = Scanner(name="top", type="line_scan")
    cal = calibrate_colour(sc, library)
    rng = np.random.default_rng(5)
    blocks = [wedge(m, [t], sc, library, rng, size=30) for m, t in
              [("water", 60), ("aluminum", 10), ("iron", 6), ("air", 1)]]
    t_low, t_high = np.hstack([b[0] for b in blocks]), np.hstack([b[1] for b in blocks])
    rgb = pseudo_colour(t_low, t_high, cal)
    classes, zeff = classify(t_low, t_high, cal)
    kept = rgb.copy(), classes.copy(), zeff.copy()
    other = pseudo_colour(t_low[:, ::-1].copy(), t_high[:, ::-1].copy(), cal)
    classify(t_low[:, ::-1].copy(), t_high[:, ::-1].copy(), cal)
    assert not np.array_equal(other, rgb)
    assert np.array_equal(rgb, kept[0]) and np.array_equal(classes, kept[1]) and np.array_equal(zeff, kept[2])
    code, z, starved, background = _codes(t_low, t_high, cal, clean=False)
    code[14:17, 44:47], z[14:17, 44:47] = INORGANIC, np.float32(13.0)  # in the aluminium block
    code[15, 45], z[15, 45] = METAL, np.float32(cal.inorganic_max + 0.5)  # a lone pixel near a boundary
    skip = starved | background
    into = np.full(code.shape, 99, np.uint8)
    got = despeckle(code, z, skip, cal.organic_max, cal.inorganic_max, dark=starved, out=into)
    assert got is into and np.array_equal(into, despeckle(code, z, skip, cal.organic_max, cal.inorganic_max,
                                                          dark=starved))
    assert into[15, 45] == INORGANIC and code[15, 45] == METAL  # despeckled into ``into``, not ``code``
