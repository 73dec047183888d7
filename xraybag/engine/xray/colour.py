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
with ``h``, so thin organics are pale orange and thick ones dark brown-orange. That is the
``standard`` colour table; a scanner's ``colour`` (:mod:`xraybag.scenes.colours`) may choose another
(other hues, saturation and brightness curves, background), which changes only the calibration's
``rgb_table`` (:class:`xraybag.engine.xray.calibration.Display`). The calibration's look-up tables make a view cost a few float32 passes and gathers (~50 ms for 604 x 1234 on one
core).

:func:`clcxray_encoding` is the CLCXray paper's 3-channel encoding of the raw 16-bit images.
"""

from __future__ import annotations

from dataclasses import replace

import numba
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


def _codes(t_low: np.ndarray, t_high: np.ndarray, cal: ColourCalibration, clean: bool = True):
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
    if clean:
        code = _clean(code, z, starved, background, cal)
    return code, z, starved, background, (f2, i1, i2)


def cleanable(shape: tuple) -> bool:
    """Whether :func:`_clean` despeckles an image of this shape (one image of at least 3 x 3)."""
    return len(shape) == 2 and min(shape) >= 3


def _clean(code: np.ndarray, z: np.ndarray, starved: np.ndarray, background: np.ndarray,
           cal: ColourCalibration) -> np.ndarray:
    """:func:`despeckle` of an image's codes (images of at least 3 x 3 pixels)."""
    if cleanable(code.shape):
        code = despeckle(code, z, starved | background, cal.organic_max, cal.inorganic_max, dark=starved)
    return code


#: :func:`pseudo_colour` on another device, by backend name (the CPU's, "numba", is the reference
#: and is not listed): the GPU's (:func:`.colour_cuda.pseudo_colour_cuda`: the per-pixel passes and
#: the colour look-up on the GPU, the despeckling here) joins as "cuda" when
#: :func:`xraybag.engine.xray.devices.probe_cuda` finds a GPU.
PSEUDO_COLOUR: dict = {}


#: Zeff distance (Z units) from a class boundary within which a speck may take its surroundings'
#: class (noise flips classes only near a boundary; a steel wire is far from one)
DESPECKLE_MARGIN = 4.0
#: the largest speck (pixels, 8-connected) that :func:`despeckle` recolours
DESPECKLE_PIXELS = 12
#: passes of :func:`despeckle` (a pass can leave a lone pixel where the specks around it changed)
DESPECKLE_PASSES = 2


@numba.njit(cache=True, nogil=True)
def _despeckle(code, z, skip, dark, lo, hi, margin, max_pixels, out):
    """See :func:`despeckle`. A search starts only at a pixel near a boundary with at least 4 of
    its 8 neighbours of other classes (every speck has one); it follows the pixel's class through
    8-neighbours and gives up past ``max_pixels``."""
    rows, cols = code.shape
    seen = np.zeros((rows, cols), np.int64)  # the search (1, 2, ...) that reached a pixel
    search = 0
    qi = np.empty(max_pixels + 1, np.int64)
    qj = np.empty(max_pixels + 1, np.int64)
    counts = np.zeros(256, np.int64)
    changed = 0
    for i in range(rows):
        for j in range(cols):
            c = code[i, j]
            if c == 0 or skip[i, j] or seen[i, j]:
                continue
            if c <= 3 and abs(z[i, j] - lo) >= margin and abs(z[i, j] - hi) >= margin:
                continue
            other = 0
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    a, b = i + di, j + dj
                    if 0 <= a < rows and 0 <= b < cols and code[a, b] != c:
                        other += 1
            if other < 4:
                continue
            # the speck: same-class 8-neighbours, all near a boundary, at most max_pixels
            search += 1
            n = 1
            qi[0] = i
            qj[0] = j
            seen[i, j] = search
            head = 0
            small = True
            while head < n and small:
                a0, b0 = qi[head], qj[head]
                head += 1
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        a, b = a0 + di, b0 + dj
                        if a < 0 or b < 0 or a >= rows or b >= cols or code[a, b] != c or seen[a, b] == search:
                            continue
                        if (seen[a, b] or skip[a, b] or n == max_pixels
                                or (c <= 3 and abs(z[a, b] - lo) >= margin and abs(z[a, b] - hi) >= margin)):
                            small = False  # part of a patch an earlier search found too large
                            break
                        seen[a, b] = search
                        qi[n] = a
                        qj[n] = b
                        n += 1
                    if not small:
                        break
            if not small:
                continue
            counts[:] = 0
            for q in range(n):
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        a, b = qi[q] + di, qj[q] + dj
                        if a < 0 or b < 0 or a >= rows or b >= cols:
                            continue
                        if skip[a, b]:
                            if dark[a, b]:
                                counts[3] += 1
                            continue
                        k = code[a, b]
                        if k != c and k >= 1:
                            counts[k] += 1
            best = 0
            total = 0
            for k in range(1, 256):
                total += counts[k]
                if counts[k] > counts[best] or (
                        counts[k] == counts[best] and counts[k] > 0 and _zgap(z[i, j], k, lo, hi) < _zgap(z[i, j], best, lo, hi)):
                    best = k
            # a lone pixel (all 8 neighbours of other classes) takes the commonest class around it
            # (ties: the class nearest its Zeff); a larger speck needs 3/4 of its surroundings
            if total > 0 and ((n == 1 and 2 * counts[best] >= total) or 4 * counts[best] >= 3 * total):
                for q in range(n):
                    out[qi[q], qj[q]] = best
                changed += 1
    return changed


def zgap(z, k, lo, hi):
    """Zeff distance from ``z`` to class ``k``'s range (1: up to lo, 2: lo..hi, 3: above hi):
    the despeckling's tie-break, compiled for the CPU here and for CUDA in :mod:`.colour_cuda`."""
    if k == 1:
        d = z - lo
    elif k == 2:
        d = lo - z
        if z - hi > d:  # noqa: PLR1730 (no builtin max on CUDA)
            d = z - hi
    else:
        d = hi - z  # metal, or a K-edge capture (shown as metal)
    return d if d > 0.0 else 0.0  # noqa: FURB136 (CUDA: no builtin max)


_zgap = numba.njit(cache=True, nogil=True)(zgap)


def despeckle(code: np.ndarray, z: np.ndarray, skip: np.ndarray, lo: float, hi: float,
              margin: float = DESPECKLE_MARGIN, max_pixels: int = DESPECKLE_PIXELS,
              dark: np.ndarray | None = None) -> np.ndarray:
    """Class codes without specks. An 8-connected patch of one code of at most ``max_pixels``
    pixels, whose Zeff all lie within ``margin`` of a class boundary (``lo``, ``hi``; K-edge
    captures, codes 4 and up, need not), takes the code of at least 3/4 of the pixels around it;
    a lone pixel (all 8 neighbours of other codes) takes the commonest code around it when that
    holds at least half of them (ties: the class nearest its Zeff). Up to
    :data:`DESPECKLE_PASSES` passes. Edges stay where they are (the pixels along an edge form one
    large patch), and so do thin lines and small parts far from a boundary (a steel wire, a screw).
    ``skip`` pixels (background, starved) never change; those also in ``dark`` (starved: shown as
    metal) count as metal around a speck, the others do not count. The searches run in raster
    order, but a patch's outcome depends on the patch alone (a search never leaves its patch), so
    the GPU's pass (:func:`.colour_cuda.despeckle_cuda`, a thread per pixel) gives the same codes."""
    skip = np.asarray(skip, np.bool_)
    dark = np.zeros_like(skip) if dark is None else np.asarray(dark, np.bool_)
    z = np.asarray(z, np.float32)
    out = code.copy()
    for _ in range(DESPECKLE_PASSES):
        src = out.copy()
        if not _despeckle(src, z, skip, dark, np.float32(lo), np.float32(hi), np.float32(margin), int(max_pixels), out):
            break
    return out


def classify(t_low: np.ndarray, t_high: np.ndarray, calibration: ColourCalibration, clean: bool = True):
    """Material class and Zeff of every pixel.

    ``t_low``, ``t_high``: (rows, cols) measured transmissions I/I0 of the calibration's low and
    high channels. Returns ``(classes, zeff)``: uint8 classes (0 background, 1 organic,
    2 inorganic, 3 metal) and float32 Zeff (0 for background and for starved pixels).

    Zeff is interpolated bilinearly in the look-up-table cell holding the pixel's (ln h, R) and the
    class follows from it; K-edge capture is read at the cell's centre.
    """
    cal = _with_tables(calibration)
    code, zeff, starved, background, _ = _codes(t_low, t_high, cal, clean)
    for p, zk in enumerate(cal.kedge_z):
        np.putmask(zeff, code == METAL + 1 + p, zk)
    np.minimum(code, METAL, out=code)
    np.putmask(code, starved, METAL)
    np.putmask(code, background, BACKGROUND)
    np.putmask(zeff, starved | background, 0.0)
    return code, zeff


# ------------------------------------------------------------------------------ colours


def pseudo_colour(t_low: np.ndarray, t_high: np.ndarray, calibration: ColourCalibration,
                  clean: bool = True, backend: str = "numba") -> np.ndarray:
    """Scanner-style colour image (rows, cols, 3) uint8 from the low/high transmissions.

    White background; orange organic, green inorganic, blue metal (hue blended over one Z unit
    at the class boundaries; class decides near a boundary so the colour never contradicts
    :func:`classify`). With ``h = -ln T_high`` (the measured T_high): saturation
    ``0.9 (1 - exp(-h / 0.7))`` (so colours fade continuously into the white background and thin
    plastics stay nearly white), brightness ``1 - 0.8 (1 - exp(-h / 3))``; starved pixels are dark
    blue. Lone pixels of another class near a class boundary take their neighbours' class
    (:func:`despeckle`; ``clean=False``: every pixel on its own). Hue (from :func:`classify`'s
    class and Zeff) is rounded to a degree and h read in bins of 1.2 %, so a channel is within
    about two units of the exact value. ``backend``: where it runs (:data:`PSEUDO_COLOUR`;
    "cuda": on the GPU, to float32 rounding of the CPU's).
    """
    cal = _with_tables(calibration)
    if backend in PSEUDO_COLOUR:
        return PSEUDO_COLOUR[backend](t_low, t_high, cal, clean)
    code, z, starved, background, work = _codes(t_low, t_high, cal, clean)
    return _colours(code, z, starved, background, np.asarray(t_high), cal, work)


def _colours(code, z, starved, background, t_high, cal: ColourCalibration, work) -> np.ndarray:
    """:func:`pseudo_colour`'s look-up from the codes and Zeff (both overwritten) and T_high;
    ``work``: (float32, int32, int32) arrays of the image's shape."""
    f1, i1, i2 = work
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
