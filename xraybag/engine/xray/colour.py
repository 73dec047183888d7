"""Pseudo-colour of dual-energy images, as carry-on scanners show them.

Classes and Zeff come from the scanner's step-wedge calibration (:mod:`.calibration`). When the
scanner's noise model adds scatter, :func:`classify` first removes the modelled scatter (its
constant offset and smooth low-frequency term, with the detector model's own low-pass
:func:`xraybag.engine.xray.detect.lowpass`) so that thick metal is not lifted to a grey,
organic-looking ratio by the scatter floor. With quantum noise it also smooths both
log-attenuation images with a 1-pixel Gaussian before forming R (the ratio of an isolated object
is unchanged by a common kernel; the noise of R is not).

Colours (:func:`pseudo_colour`): background white; hue orange (organic), green (inorganic), blue
(metal), blended over one Z unit at the class boundaries; saturation grows and brightness falls
with ``h``, so thin organics are pale orange and thick ones dark brown-orange. The calibration's
look-up tables make a view cost a few float32 passes and gathers (~50 ms for 604 x 1234 on one
core).

:func:`clcxray_encoding` is the CLCXray paper's 3-channel encoding of the raw 16-bit images.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.ndimage import gaussian_filter

from xraybag.engine.xray.calibration import (
    BACKGROUND,
    HR_BINS,
    HUE_BINS,
    HUE_PER_Z,
    INORGANIC,
    METAL,
    ORGANIC,
    STARVED_HUE,
    T_BINS,
    T_MIN,
    T_SHIFT,
    ColourCalibration,
    lookup_tables,
)
from xraybag.engine.xray.detect import lowpass

__all__ = ["BACKGROUND", "INORGANIC", "METAL", "ORGANIC", "classify", "clcxray_encoding", "pseudo_colour"]

# ------------------------------------------------------------------------------ classification
#
# The per-pixel passes below work in float32 and write into a handful of work arrays (``out=``)
# rather than allocating a new image per step: fresh multi-megabyte arrays cost page faults that
# can outweigh the arithmetic.


def _remove_scatter(t: np.ndarray, cal: ColourCalibration, out: np.ndarray, scratch: np.ndarray):
    """Invert the scanner's scatter model (flat-fielded as in ``detect``) to first order.

    Writes the corrected transmission into ``out`` (float32; ``scratch`` is a float32 work array)
    and returns it. The smooth term is :func:`xraybag.engine.xray.detect.lowpass`, the low-pass the
    detector model uses for its scatter (linear: ``signal - o - f lowpass(signal)`` with
    ``signal = (1 + o + f) t``).
    """
    np.copyto(out, t, casting="unsafe")
    o, f = cal.scatter_offset, cal.scatter_fraction
    if o == 0 and f == 0:
        return out
    gain = 1.0 + o + f
    out *= gain
    out -= o
    if f > 0:
        smooth = lowpass(t, cal.scatter_sigma_px)
        smooth *= -f * gain
        np.copyto(scratch, smooth, casting="unsafe")
        out += scratch
    return out


def _cells(lo_att: np.ndarray, hi_att: np.ndarray, cal: ColourCalibration, work: tuple):
    """Flat look-up-table cell index (int32) of each pixel and its position in the cell.

    Returns ``(flat, fu, fv)`` with ``fu = u - floor u``, ``fv = v - floor v`` (float32). Overwrites
    both inputs (``fu`` is ``hi_att``, ``fv`` is ``lo_att``) and uses ``work = (f32, i32, i32)``
    (``flat`` is the last).
    """
    f1, i1, flat = work
    nh = cal.lut_rmin.size
    nr = cal.lut_capture.size // nh
    h0, h1 = float(cal.h_grid[0]), float(cal.h_grid[-1])
    lg0 = np.log(h0)
    u = np.clip(hi_att, h0, h1, out=hi_att)
    r = np.divide(lo_att, u, out=lo_att)
    np.log(u, out=u)
    u -= lg0
    u *= (nh - 1) / (np.log(h1) - lg0)
    np.clip(u, 0, nh - 1, out=u)  # float32 rounding of the clipped h's log
    np.floor(u, out=f1)
    np.copyto(i1, f1, casting="unsafe")
    fu = np.subtract(u, f1, out=u)
    v = np.subtract(r, cal.lut_rmin.take(i1, out=f1, mode="clip"), out=r)
    v *= cal.lut_rscale.take(i1, out=f1, mode="clip")
    np.clip(v, 0, nr - 1, out=v)
    np.floor(v, out=f1)
    np.copyto(flat, f1, casting="unsafe")
    fv = np.subtract(v, f1, out=v)
    i1 *= nr
    flat += i1
    return flat, fu, fv


def _with_tables(cal: ColourCalibration) -> ColourCalibration:
    """``cal``, or (built by hand without look-up tables) a copy with them."""
    return cal if cal.lut_zeff is not None else replace(cal, **lookup_tables(cal))


def _codes(t_low: np.ndarray, t_high: np.ndarray, cal: ColourCalibration):
    """Per-pixel code, Zeff and masks, and work arrays left free for the caller.

    Code: class 1..3 from the Zeff, or ``4 + p`` where K-edge reference ``p`` captures the pixel.
    Zeff: the ladder's (float32, bilinear in the look-up-table cell; not the reference's Z where
    captured). Returns ``(code, zeff, starved, background, (f32, i32, i32))``.
    """
    t_low, t_high = np.asarray(t_low), np.asarray(t_high)
    if t_low.shape != t_high.shape:
        raise ValueError(f"channel shapes differ: {t_low.shape} and {t_high.shape}")
    shape = t_low.shape
    f1, f2 = np.empty(shape, np.float32), np.empty(shape, np.float32)
    lo = _remove_scatter(t_low, cal, np.empty(shape, np.float32), f1)
    hi = _remove_scatter(t_high, cal, np.empty(shape, np.float32), f1)
    starved = hi < cal.starvation
    floor = 0.1 * cal.starvation  # bounds the logs of starved pixels (they are metal anyway)
    for a in (lo, hi):
        np.fmax(a, floor, out=a)
        np.log(a, out=a)
        np.negative(a, out=a)
    background = lo < cal.background
    background &= ~starved
    if cal.denoise_px > 0:  # in place (ndimage filters a line at a time through a buffer)
        gaussian_filter(lo, cal.denoise_px, mode="nearest", output=lo)
        gaussian_filter(hi, cal.denoise_px, mode="nearest", output=hi)
    i1, i2 = np.empty(shape, np.int32), np.empty(shape, np.int32)
    flat, fu, fv = _cells(lo, hi, cal, (f1, i1, i2))
    c = cal.lut_zeff.take(flat, axis=0, out=np.empty(shape + (4,), np.float32), mode="clip")
    z = np.subtract(c[..., 1], c[..., 0], out=f1)
    z *= fv
    z += c[..., 0]
    z_hi = np.subtract(c[..., 3], c[..., 2], out=f2)
    z_hi *= fv
    z_hi += c[..., 2]
    z_hi -= z
    z_hi *= fu
    z += z_hi
    del c
    mask = np.empty(shape, np.bool_)
    code = np.greater(z, cal.organic_max, out=np.empty(shape, np.bool_)).view(np.uint8)
    code += 1
    code += np.greater(z, cal.inorganic_max, out=mask)
    np.maximum(code, cal.lut_capture.take(flat, out=mask.view(np.uint8), mode="clip"), out=code)
    return code, z, starved, background, (f2, i1, i2)


def classify(t_low: np.ndarray, t_high: np.ndarray, calibration: ColourCalibration):
    """Material class and Zeff of every pixel.

    ``t_low``, ``t_high``: (rows, cols) measured transmissions I/I0 of the calibration's low and
    high channels. Returns ``(classes, zeff)``: uint8 classes (0 background, 1 organic,
    2 inorganic, 3 metal) and float32 Zeff (0 for background and for starved pixels).

    Zeff is interpolated bilinearly in the look-up-table cell holding the pixel's (ln h, R) and the
    class follows from it; K-edge capture is read at the cell's centre.
    """
    cal = _with_tables(calibration)
    code, zeff, starved, background, _ = _codes(t_low, t_high, cal)
    for p, zk in enumerate(cal.kedge_z):
        np.putmask(zeff, code == METAL + 1 + p, zk)
    np.minimum(code, METAL, out=code)
    np.putmask(code, starved, METAL)
    np.putmask(code, background, BACKGROUND)
    np.putmask(zeff, starved | background, 0.0)
    return code, zeff


# ------------------------------------------------------------------------------ colours


def pseudo_colour(t_low: np.ndarray, t_high: np.ndarray, calibration: ColourCalibration) -> np.ndarray:
    """Scanner-style colour image (rows, cols, 3) uint8 from the low/high transmissions.

    White background; orange organic, green inorganic, blue metal (hue blended over one Z unit
    at the class boundaries; class decides near a boundary so the colour never contradicts
    :func:`classify`). With ``h = -ln T_high`` (the measured T_high): saturation
    ``1 - exp(-h / 0.4)`` (so colours fade continuously into the white background), brightness
    ``1 - 0.85 (1 - exp(-h / 2.5))``; starved pixels are dark blue. Hue (from :func:`classify`'s
    class and Zeff) is rounded to a degree and h read in bins of 1.2 %, so a channel is within
    about two units of the exact value.
    """
    cal = _with_tables(calibration)
    code, z, starved, background, (f1, i1, i2) = _codes(t_low, t_high, cal)
    shape = z.shape
    z *= HUE_PER_Z
    np.copyto(i1, z, casting="unsafe")
    i1 += np.multiply(code, np.int32(HUE_BINS), out=i2)
    hue = cal.hue_table.take(i1, out=code, mode="clip")
    np.putmask(hue, starved, STARVED_HUE)
    np.putmask(hue, background, 0)
    # saturation / brightness bin of the measured h = -ln T_high, from T's float32 bits
    np.copyto(f1, t_high, casting="unsafe")
    bits = np.clip(f1, T_MIN, 1.0, out=f1).view(np.int32)
    bits >>= T_SHIFT
    index = np.multiply(hue, np.int32(HR_BINS), out=i1)
    index += T_BINS.take(bits, out=i2, mode="clip")
    return cal.rgb_table.take(index, mode="clip").view(np.uint8).reshape(shape + (3,))


# ------------------------------------------------------------------------------ CLCXray encoding


def clcxray_encoding(raw_high: np.ndarray, raw_low: np.ndarray) -> np.ndarray:
    """The three-channel image of the CLCXray paper (Zhao et al., TIFS 2022, Sec. III-B).

    From the two 16-bit images: channel 0 = ``raw_high // 256``, channel 1 = ``raw_low // 256``
    (integer division, so 0..255), channel 2 = ``510 * sigmoid(R) - 255`` with ``R`` "the ratio of
    the high-energy image to the low-energy image", ``R = raw_high / raw_low`` (R >= 0, so the
    value lies in [0, 255)); it is rounded and clipped to 0..255. A zero low-energy pixel is taken
    as 1 to keep R finite.
    """
    high = np.asarray(raw_high)
    low = np.asarray(raw_low)
    if high.shape != low.shape:
        raise ValueError(f"image shapes differ: {high.shape} and {low.shape}")
    hi = high.astype(np.float64)
    lo = np.maximum(low.astype(np.float64), 1.0)
    ratio = hi / lo
    c2 = 510.0 / (1.0 + np.exp(-ratio)) - 255.0
    out = np.empty(high.shape + (3,), dtype=np.uint8)
    out[..., 0] = (high.astype(np.uint32) // 256).astype(np.uint8)
    out[..., 1] = (low.astype(np.uint32) // 256).astype(np.uint8)
    out[..., 2] = np.clip(np.rint(c2), 0, 255).astype(np.uint8)
    return out
