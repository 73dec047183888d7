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
``rgb_table`` (:class:`xraybag.engine.xray.calibration.Display`). The calibration's look-up tables
make a view cost a few compiled float32 passes and gathers (~35 ms for 604 x 1234 on one core).

:func:`clcxray_encoding` is the CLCXray paper's 3-channel encoding of the raw 16-bit images.
"""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter

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
from xraybag.engine.xray.filters import gaussian_weights
from xraybag.engine.xray.scratch import scratch

__all__ = ["BACKGROUND", "INORGANIC", "METAL", "ORGANIC", "classify", "clcxray_encoding", "pseudo_colour"]

# ------------------------------------------------------------------------------ classification
#
# The per-pixel steps below are compiled passes over flat arrays, a pixel at a time, that take
# numpy's float32 steps in the order the array-at-a-time version took them (a Python float beside
# a float32 array is a float32, a numpy float64 scalar takes the step to float64 and back), with
# numpy's own logarithms between them: the same numbers, bit for bit, without a full-image
# temporary per step (fresh multi-megabyte arrays cost page faults that outweigh the arithmetic).
# The GPU's kernels (:mod:`.colour_cuda`) take the same steps.


def _remove_scatter(t: np.ndarray, cal: ColourCalibration, out: np.ndarray):
    """Invert the scanner's scatter model (flat-fielded as in ``detect``) to first order.

    Writes the corrected transmission into ``out`` (float32) and returns it. The smooth term is
    :func:`xraybag.engine.xray.detect.lowpass`, the low-pass the detector model uses for its
    scatter (linear: ``signal - o - f lowpass(signal)`` with ``signal = (1 + o + f) t``).
    """
    _unscatter_pass(np.asarray(t), cal, out, log_floor=False)
    return out


def _unscatter_pass(t: np.ndarray, cal: ColourCalibration, out: np.ndarray, log_floor: bool = True,
                    starved: np.ndarray | None = None) -> None:
    """:func:`_unscatter` of one channel into ``out`` (float32, ``t``'s shape): the scatter
    removal; with ``starved``, that mask of the corrected channel; with ``log_floor``, the
    logarithm's floor (:func:`_codes`)."""
    o, f = cal.scatter_offset, cal.scatter_fraction
    remove = not (o == 0 and f == 0)
    gain = 1.0 + o + f if remove else 1.0
    smooth = (lowpass(t, cal.scatter_sigma_px, out=scratch("colour.smooth", np.shape(t))) if remove and f > 0
              else np.empty(0))
    floor = np.float32(0.1 * cal.starvation if log_floor else np.nan)  # (NaN: no floor)
    _unscatter(np.ascontiguousarray(t).reshape(-1), smooth.reshape(-1), np.float32(gain),
               np.float32(o if remove else 0.0), -f * gain, floor, np.float32(cal.starvation),
               out.reshape(-1), np.empty(0, np.bool_) if starved is None else starved.reshape(-1))


@numba.njit(cache=True, nogil=True)
def _unscatter(t, s, gain, offset, k, floor, starvation, out, starved):
    """Flat passes of :func:`_remove_scatter` and the start of :func:`_codes`, numpy's float32
    steps one pixel at a time: ``x = f32(t) * gain - offset + f32(s * k)`` (``gain``, ``offset``,
    ``floor``, ``starvation`` float32, as numpy takes a Python float beside a float32 array; ``k``
    float64 as numpy's ``smooth *= -f * gain``; no smooth term where ``s`` is empty); where
    ``starved`` is not empty, ``starved = x < starvation``; then, unless ``floor`` is NaN,
    ``np.fmax(x, floor)`` (the floor for a NaN too)."""
    smooth = s.size > 0
    mask = starved.size > 0
    clamp = not np.isnan(floor)
    for p in range(out.size):
        x = np.float32(t[p]) * gain - offset
        if smooth:
            x = x + np.float32(s[p] * k)
        if mask:
            starved[p] = x < starvation
        if clamp and not x >= floor:
            x = floor
        out[p] = x


@numba.njit(cache=True, nogil=True)
def _negate(lo, hi, background_below, starved, background):
    """``lo = -lo``, ``hi = -hi`` (the logs' signs) and ``background = (lo < background_below) and
    not starved`` (flat arrays; ``background_below`` float32)."""
    for p in range(lo.size):
        a = -lo[p]
        lo[p] = a
        hi[p] = -hi[p]
        background[p] = a < background_below and not starved[p]


@numba.njit(cache=True, nogil=True)
def _gaussian(img, w, out):
    """scipy's ``gaussian_filter(img, sigma, mode="nearest")`` of a float32 image (rows, cols)
    into ``out`` (not ``img``) with the symmetric kernel ``w`` (:func:`.filters.gaussian_weights`):
    the first axis, then the second, each as :func:`.filters._correlate_nearest` (``x[i] w[r]``,
    then ``(x[i + jj] + x[i - jj]) w[r + jj]`` for jj = -r..-1, in float64) and each rounded to
    float32 as scipy writes a float32 output between the axes. One output row at a time, the loops
    over whole rows (so they vectorise)."""
    rows, cols = img.shape
    if cols == 0:
        return
    r = w.size // 2
    acc = np.empty(cols)
    ext = np.empty(cols + 2 * r)
    w0 = w[r]
    for i in range(rows):
        for c in range(cols):
            acc[c] = np.float64(img[i, c]) * w0
        for jj in range(-r, 0):
            a = min(max(i + jj, 0), rows - 1)
            b = min(max(i - jj, 0), rows - 1)
            wj = w[r + jj]
            for c in range(cols):
                acc[c] += (np.float64(img[a, c]) + np.float64(img[b, c])) * wj
        for c in range(cols):
            ext[r + c] = np.float64(np.float32(acc[c]))
        for c in range(r):  # 'nearest' edges
            ext[c] = ext[r]
            ext[r + cols + c] = ext[r + cols - 1]
        for c in range(cols):
            acc[c] = ext[c + r] * w0
        for jj in range(-r, 0):
            wj = w[r + jj]
            for c in range(cols):
                acc[c] += (ext[c + r + jj] + ext[c + r - jj]) * wj
        for c in range(cols):
            out[i, c] = acc[c]


@numba.njit(cache=True, nogil=True)
def _gaussian9(img, w, out):
    """:func:`_gaussian` for a kernel of 9 taps (radius 4: sigma 1 px, the denoising's), the same
    operations in the same order, each pixel's sum taken whole in one loop over the row (four
    times faster than a pass over the row for each pair of taps)."""
    rows, cols = img.shape
    if cols == 0:
        return
    ext = np.empty(cols + 8)
    w0, w1, w2, w3, w4 = w[4], w[3], w[2], w[1], w[0]  # (the weight of x[i - k] and x[i + k]: wk)
    last = rows - 1
    for i in range(rows):
        x0 = img[i]
        a1, b1 = img[max(i - 1, 0)], img[min(i + 1, last)]
        a2, b2 = img[max(i - 2, 0)], img[min(i + 2, last)]
        a3, b3 = img[max(i - 3, 0)], img[min(i + 3, last)]
        a4, b4 = img[max(i - 4, 0)], img[min(i + 4, last)]
        for c in range(cols):
            acc = np.float64(x0[c]) * w0
            acc += (np.float64(a4[c]) + np.float64(b4[c])) * w4
            acc += (np.float64(a3[c]) + np.float64(b3[c])) * w3
            acc += (np.float64(a2[c]) + np.float64(b2[c])) * w2
            acc += (np.float64(a1[c]) + np.float64(b1[c])) * w1
            ext[4 + c] = np.float64(np.float32(acc))
        for c in range(4):  # 'nearest' edges
            ext[c] = ext[4]
            ext[4 + cols + c] = ext[3 + cols]
        o = out[i]
        for c in range(cols):
            acc = ext[c + 4] * w0
            acc += (ext[c] + ext[c + 8]) * w4
            acc += (ext[c + 1] + ext[c + 7]) * w3
            acc += (ext[c + 2] + ext[c + 6]) * w2
            acc += (ext[c + 3] + ext[c + 5]) * w1
            o[c] = acc


@numba.njit(cache=True, nogil=True)
def _ratio(lo, hi, h0, h1):
    """The first half of a pixel's look-up-table cell: ``u = clip(hi, h0, h1)`` into ``hi`` and
    ``R = lo / u`` into ``lo`` (flat float32; ``h0``, ``h1`` float32)."""
    for p in range(lo.size):
        u = hi[p]
        if u < h0:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            u = h0
        if u > h1:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            u = h1
        lo[p] = lo[p] / u
        hi[p] = u


@numba.njit(cache=True, nogil=True)
def _zeff(r, log_u, lg0, u_scale, rmin, rscale, lut_zeff, capture, organic_max, inorganic_max, code, z):
    """The rest of a pixel's cell (``log_u``: numpy's float32 log of :func:`_ratio`'s ``u``), its
    bilinear Zeff and its code (class 1..3, or a K-edge capture where that is larger), numpy's
    steps in :func:`_codes`' order: ``lg0`` and ``u_scale`` float64 (numpy scalars, so ``u`` is
    taken to float64 and rounded back at each of those two steps), the rest float32; indices
    clipped as ``take(mode="clip")`` does (flat arrays)."""
    nh = rmin.size
    nr = capture.size // nh
    n_cells = capture.size
    top = np.float32(nh - 1)
    last = np.float32(nr - 1)
    zero = np.float32(0.0)
    for p in range(r.size):
        u = np.float32(np.float64(log_u[p]) - lg0)
        u = np.float32(np.float64(u) * u_scale)
        if u < zero:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            u = zero
        if u > top:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            u = top
        i = np.int32(u)  # (u >= 0: its floor; a NaN's index is clipped below, its Zeff NaN)
        fu = u - np.float32(i)
        ic = min(max(i, 0), nh - 1)
        v = (r[p] - rmin[ic]) * rscale[ic]
        if v < zero:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            v = zero
        if v > last:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            v = last
        j = np.int32(v)
        flat = min(max(j + i * np.int32(nr), 0), n_cells - 1)
        fv = v - np.float32(j)
        c0 = lut_zeff[flat, 0]
        c2 = lut_zeff[flat, 2]
        zz = (lut_zeff[flat, 1] - c0) * fv + c0
        zh = (lut_zeff[flat, 3] - c2) * fv + c2
        zz = zz + (zh - zz) * fu
        k = np.uint8(1) + np.uint8(zz > organic_max) + np.uint8(zz > inorganic_max)
        cap = capture[flat]
        code[p] = max(k, cap)
        z[p] = zz


def _with_tables(cal: ColourCalibration) -> ColourCalibration:
    """``cal``, or (built by hand without look-up tables) a copy with them."""
    return cal if cal.lut_zeff is not None else replace(cal, **lookup_tables(cal))


def _codes(t_low: np.ndarray, t_high: np.ndarray, cal: ColourCalibration, clean: bool = True,
           temporary: bool = False):
    """Per-pixel code, Zeff and masks: ``(code, zeff, starved, background)``; with ``temporary``
    in the thread's scratch memory (for a caller that drops them before it returns).

    Code: class 1..3 from the Zeff, or ``4 + p`` where K-edge reference ``p`` captures the pixel.
    Zeff: the ladder's (float32, bilinear in the look-up-table cell; not the reference's Z where
    captured). The per-pixel steps are compiled passes (:func:`_unscatter`, :func:`_negate`,
    :func:`_ratio`, :func:`_zeff`; the 1-pixel Gaussian :func:`_gaussian`) that take numpy's
    float32 steps in numpy's order, with numpy's own logarithms between them: the numbers of the
    array-at-a-time steps, bit for bit, without their dozen full-image temporaries.
    """
    t_low, t_high = np.asarray(t_low), np.asarray(t_high)
    if t_low.shape != t_high.shape:
        raise ValueError(f"channel shapes differ: {t_low.shape} and {t_high.shape}")
    shape = t_low.shape
    # lo and hi (and their smoothed copies) are temporaries: the thread's scratch memory
    lo, hi = scratch("colour.lo", shape, np.float32), scratch("colour.hi", shape, np.float32)
    new = (lambda name, dtype: scratch(f"colour.{name}", shape, dtype)) if temporary else (
        lambda name, dtype: np.empty(shape, dtype))
    starved, background = new("starved", np.bool_), new("background", np.bool_)
    _unscatter_pass(t_low, cal, lo)
    _unscatter_pass(t_high, cal, hi, starved=starved)  # starved: T_high under the starvation level
    np.log(lo, out=lo)  # (numpy's float32 logarithm; the floor bounds the starved pixels' logs)
    np.log(hi, out=hi)
    _negate(lo.reshape(-1), hi.reshape(-1), np.float32(cal.background), starved.reshape(-1),
            background.reshape(-1))
    if cal.denoise_px > 0:
        lo = _denoised(lo, cal.denoise_px, scratch("colour.lo_smooth", shape, np.float32))
        hi = _denoised(hi, cal.denoise_px, scratch("colour.hi_smooth", shape, np.float32))
    h0, h1 = float(cal.h_grid[0]), float(cal.h_grid[-1])
    lg0 = np.log(h0)
    flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
    _ratio(flat_lo, flat_hi, np.float32(h0), np.float32(h1))
    np.log(flat_hi, out=flat_hi)
    code, z = new("code", np.uint8), new("z", np.float32)
    _zeff(flat_lo, flat_hi, lg0, (cal.lut_rmin.size - 1) / (np.log(h1) - lg0), cal.lut_rmin, cal.lut_rscale,
          cal.lut_zeff, cal.lut_capture, np.float32(cal.organic_max), np.float32(cal.inorganic_max),
          code.reshape(-1), z.reshape(-1))
    if clean:
        code = _clean(code, z, starved, background, cal, new("clean", np.uint8) if temporary else None)
    return code, z, starved, background


def _denoised(img: np.ndarray, sigma: float, out: np.ndarray | None = None) -> np.ndarray:
    """scipy's ``gaussian_filter(img, sigma, mode="nearest")`` of a float32 image into ``out``
    (C-contiguous, ``img``'s shape and dtype, not ``img``) or a new array, by :func:`_gaussian`
    for one image (scipy itself for another number of axes)."""
    out = np.empty_like(img) if out is None else out
    if img.ndim != 2:
        return gaussian_filter(img, sigma, mode="nearest", output=out)
    w = gaussian_weights(sigma)[::-1].copy()
    (_gaussian9 if w.size == 9 else _gaussian)(img, w, out)
    return out


def cleanable(shape: tuple) -> bool:
    """Whether :func:`_clean` despeckles an image of this shape (one image of at least 3 x 3)."""
    return len(shape) == 2 and min(shape) >= 3


def _clean(code: np.ndarray, z: np.ndarray, starved: np.ndarray, background: np.ndarray,
           cal: ColourCalibration, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`despeckle` of an image's codes (images of at least 3 x 3 pixels), into ``out`` when
    given."""
    if cleanable(code.shape):
        code = despeckle(code, z, starved | background, cal.organic_max, cal.inorganic_max, dark=starved, out=out)
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


#: side (pixels) of the tiles :func:`despeckle` tracks its changes in: a pass after the first
#: searches only the tiles within a speck's reach (``max_pixels`` + 1) of the last one's changes
_TILE = 32


@numba.njit(cache=True, nogil=True)
def _despeckle(code, z, skip, dark, lo, hi, margin, max_pixels, out, seen, base, tiles, changed_tiles):
    """One pass of :func:`despeckle`; returns ``(specks recoloured, searches)``. A search starts
    only at a pixel near a boundary with at least 4 of its 8 neighbours of other classes (every
    speck has one), in a tile (:data:`_TILE` pixels square) flagged in ``tiles``; it follows the
    pixel's class through 8-neighbours and gives up past ``max_pixels``. ``seen``: the search
    (``base`` + 1, + 2, ...) that reached a pixel (a value up to ``base``: an earlier pass's);
    ``changed_tiles``: flagged where a pixel was recoloured."""
    rows, cols = code.shape
    search = base
    qi = np.empty(max_pixels + 1, np.int64)
    qj = np.empty(max_pixels + 1, np.int64)
    counts = np.zeros(256, np.int64)
    changed = 0
    for i in range(rows):
        ti = i // _TILE
        for j in range(cols):
            if not tiles[ti, j // _TILE]:
                continue
            c = code[i, j]
            if c == 0 or skip[i, j] or seen[i, j] > base:
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
                        if (seen[a, b] > base or skip[a, b] or n == max_pixels
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
                    changed_tiles[qi[q] // _TILE, qj[q] // _TILE] = True
                changed += 1
    return changed, search - base


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
              dark: np.ndarray | None = None, passes: int = DESPECKLE_PASSES,
              out: np.ndarray | None = None) -> np.ndarray:
    """Class codes without specks. An 8-connected patch of one code of at most ``max_pixels``
    pixels, whose Zeff all lie within ``margin`` of a class boundary (``lo``, ``hi``; K-edge
    captures, codes 4 and up, need not), takes the code of at least 3/4 of the pixels around it;
    a lone pixel (all 8 neighbours of other codes) takes the commonest code around it when that
    holds at least half of them (ties: the class nearest its Zeff). Up to ``passes`` passes (a
    pass after the first searches only around the last one's changes: the same codes, for a
    fraction of the work). Edges stay where they are (the pixels along an edge form one
    large patch), and so do thin lines and small parts far from a boundary (a steel wire, a screw).
    ``skip`` pixels (background, starved) never change; those also in ``dark`` (starved: shown as
    metal) count as metal around a speck, the others do not count. The searches run in raster
    order, but a patch's outcome depends on the patch alone (a search never leaves its patch), so
    the GPU's pass (:func:`.colour_cuda.despeckle_cuda`, a thread per pixel) gives the same codes.
    ``out``: where to write them (uint8, ``code``'s shape, not ``code``), else a new array."""
    skip = np.asarray(skip, np.bool_)
    dark = np.zeros_like(skip) if dark is None else np.asarray(dark, np.bool_)
    z = np.asarray(z, np.float32)
    if out is None:
        out = code.copy()
    else:  # (uint8, code's shape, not code)
        out[...] = code
    # one array for every pass (its searches count on; a search marks a pixel no other has)
    seen = scratch("colour.seen", code.shape, np.int32 if code.size * passes < 2**31 else np.int64)
    seen.fill(0)
    tiles = np.ones((-(-code.shape[0] // _TILE), -(-code.shape[1] // _TILE)), np.bool_)
    base = 0
    for _ in range(passes):
        src = scratch("colour.despeckle_src", out.shape, out.dtype)
        src[...] = out
        changed_tiles = np.zeros_like(tiles)
        changed, searches = _despeckle(src, z, skip, dark, np.float32(lo), np.float32(hi), np.float32(margin),
                                       int(max_pixels), out, seen, base, tiles, changed_tiles)
        if not changed:
            break
        # A patch of the next pass can change only if a pixel in it or next to it changed in this
        # one (else it and its surroundings were the same, and so was its outcome); every pixel
        # of such a patch of at most max_pixels lies within max_pixels + 1 of that change, so
        # within k tiles of a changed tile
        k = -(-(int(max_pixels) + 1) // _TILE)
        tiles = binary_dilation(changed_tiles, np.ones((2 * k + 1, 2 * k + 1), np.bool_))
        base += searches
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
    code, zeff, starved, background = _codes(t_low, t_high, cal, clean)
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
    code, z, starved, background = _codes(t_low, t_high, cal, clean, temporary=True)
    return _colours(code, z, starved, background, np.asarray(t_high), cal)


def _colours(code, z, starved, background, t_high, cal: ColourCalibration) -> np.ndarray:
    """:func:`pseudo_colour`'s look-up from the codes, Zeff and T_high: :func:`_lookup`."""
    shape = z.shape
    out = np.empty(shape + (3,), np.uint8)
    _lookup(code.reshape(-1), z.reshape(-1), starved.reshape(-1), background.reshape(-1),
            np.ascontiguousarray(t_high).reshape(-1), cal.hue_table, T_BINS, cal.rgb_table.view(np.uint8).reshape(-1, 3),
            HUE_BINS, np.float32(HUE_PER_Z), HR_BINS, STARVED_HUE, np.float32(T_MIN), T_SHIFT, out.reshape(-1, 3),
            scratch("colour.t32", z.size, np.float32))
    return out


@numba.njit(cache=True, nogil=True)
def _lookup(code, z, starved, background, t_high, hue_table, t_bins, rgb, hue_bins, hue_per_z, hr_bins,
            starved_hue, t_min, t_shift, out, t32):
    """Each pixel's colour (flat arrays; ``rgb``: the colour table as (entries, 3) bytes), numpy's
    steps: the hue of code and Zeff (``int32(z hue_per_z) + code hue_bins``, ``hue_per_z``
    float32; starved and background pixels' fixed hues), then the colour of that hue at the bin of
    T_high's float32 bits (``T`` clipped to ``[t_min, 1]``, bits shifted right by ``t_shift``);
    every look-up's index clipped as numpy's ``take(mode="clip")``. ``t32``: (n,) float32 scratch."""
    n = code.size
    for p in range(n):
        t = np.float32(t_high[p])
        if t < t_min:  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            t = t_min
        if t > np.float32(1.0):  # noqa: PLR1730 (np.clip: a NaN stays NaN)
            t = np.float32(1.0)
        t32[p] = t
    bits = t32.view(np.int32)
    last_hue, last_bin, last_rgb = hue_table.size - 1, t_bins.size - 1, rgb.shape[0] - 1
    for p in range(n):
        i = np.int32(z[p] * hue_per_z) + np.int32(code[p]) * np.int32(hue_bins)
        hue = hue_table[min(max(i, 0), last_hue)]
        if starved[p]:
            hue = np.uint8(starved_hue)
        if background[p]:
            hue = np.uint8(0)
        k = np.int32(hue) * np.int32(hr_bins) + t_bins[min(max(bits[p] >> t_shift, 0), last_bin)]
        k = min(max(k, 0), last_rgb)
        out[p, 0] = rgb[k, 0]
        out[p, 1] = rgb[k, 1]
        out[p, 2] = rgb[k, 2]


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
