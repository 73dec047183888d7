"""Pseudo-colour (:mod:`.colour`) on the GPU (numba.cuda): ``colour.PSEUDO_COLOUR["cuda"]``
(:func:`pseudo_colour_cuda`), registered with the CUDA tracer by
:func:`xraybag.engine.xray.devices.probe_cuda`.

:func:`codes_cuda` is :func:`.colour._codes` for one dual-energy view: the scatter model's
removal (its low-pass by :func:`.filters_cuda.lowpass_cuda`, the CPU's numbers), the clamped
logs and the starved and background masks, the 1-pixel Gaussian of both log images (scipy's
symmetric correlation in float64, each axis rounded to float32 as scipy writes a float32 output),
the look-up-table cell of each pixel, its bilinear ladder Zeff, class and K-edge capture. Each
step is numpy's float32 (or float64) step in the same order: float32 products go through
libdevice's ``fmul_rn`` and float64 ones through ``dmul_rn``, so NVVM never fuses them into a
multiply-add. Only the logarithms may differ (libdevice's ``logf`` and numpy's are each within an
ulp or so, not always the same float), so a pixel's Zeff is the CPU's to float32 rounding and a
pixel on a table cell's edge or a class boundary may fall on the other side. The despeckling
(:func:`despeckle_cuda`, the CPU's :func:`.colour._clean`) runs there too: the CPU searches the
pixels in raster order, but each patch's outcome depends on the patch alone, so a thread per
pixel where a search would start gives the same codes. The hue and colour look-ups
(:func:`.colour._lookup`) follow, and only the colour image comes back.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from xraybag.engine.xray.colour import (
    DESPECKLE_MARGIN,
    DESPECKLE_PASSES,
    DESPECKLE_PIXELS,
    cleanable,
    zgap,
)
from xraybag.engine.xray.detect import on_device
from xraybag.engine.xray.filters import gaussian_weights
from xraybag.engine.xray.filters_cuda import (
    THREADS,
    _correlate_sym,
    _mul,
    _plain_mul,
    lowpass_cuda,
)

if numba.config.ENABLE_CUDASIM:  # the simulator's float32 scalars multiply in float32
    _fmul = _plain_mul
else:  # a float32 product NVVM never fuses into a multiply-add
    from numba.cuda import libdevice

    _fmul = libdevice.fmul_rn

#: the natural logarithm the kernels take (libdevice's ``logf`` for a float32 on a GPU): a name of
#: its own, so a test can compile the kernels with a stand-in that has no multiply-adds of its own
_log = math.log


@cuda.jit
def _log_attenuations(t_low, t_high, s_low, s_high, remove, gain, offset, smooth_k, floor, starvation,
                      background_below, lo, hi, starved, background):  # pragma: no cover - GPU / simulator
    """Pixel ``p``: :func:`.colour._remove_scatter` of both channels (``remove``: the model adds
    scatter; ``s_*``: its low-pass, empty without a fraction), the starved mask (T_high under
    ``starvation``), ``-ln(max(t, floor))`` of both and the background mask, numpy's float32 steps
    (``gain``, ``offset``, ``floor``, ``starvation``, ``background_below`` float32 as numpy takes a
    Python float beside a float32 array; ``smooth_k`` float64, the low-pass's factor)."""
    p = cuda.grid(1)
    if p >= lo.shape[0]:
        return
    for ch in range(2):
        x = numba.float32(t_low[p] if ch == 0 else t_high[p])
        if remove:
            x = _fmul(x, gain)
            x = x - offset
            if s_low.shape[0] > 0:
                s = s_low[p] if ch == 0 else s_high[p]
                x = x + numba.float32(_mul(s, smooth_k))
        if ch == 1:
            starved[p] = x < starvation
        if not x >= floor:  # np.fmax: the floor where x is smaller (or NaN)
            x = floor
        x = -_log(x)
        if ch == 0:
            lo[p] = x
        else:
            hi[p] = x
    background[p] = (lo[p] < background_below) and not starved[p]


@cuda.jit
def _zeff(lo, hi, h0, h1, lg0, u_scale, nh, nr, rmin, rscale, lut_zeff, capture, organic_max,
          inorganic_max, code, z):  # pragma: no cover - runs on a GPU / the simulator
    """Pixel ``p``: :func:`.colour._ratio` and :func:`.colour._zeff` (the cell of (ln h, R), the
    position in it, the bilinear Zeff, class (1 organic, 2 inorganic, 3 metal) and K-edge
    capture (``max(class, capture)``)), numpy's steps: ``h0``, ``h1``, ``organic_max``,
    ``inorganic_max`` float32, ``lg0`` and ``u_scale`` float64 (numpy scalars: ``u`` is taken to
    float64 and rounded back at each of those two steps)."""
    p = cuda.grid(1)
    if p >= lo.shape[0]:
        return
    # (clamps are written out: numba's CUDA target cannot compile the builtin min / max)
    u = hi[p]
    if u < h0:  # noqa: PLR1730
        u = h0
    if u > h1:  # noqa: PLR1730
        u = h1
    r = lo[p] / u
    u = numba.float32(_log(u))
    u = numba.float32(numba.float64(u) - lg0)
    u = numba.float32(_mul(numba.float64(u), u_scale))
    top = numba.float32(nh - 1)
    if u < 0:
        u = numba.float32(0.0)
    if u > top:  # noqa: PLR1730
        u = top
    fu0 = numba.float32(math.floor(u))
    i = numba.int32(fu0)
    fu = u - fu0
    ic = 0 if i < 0 else (nh - 1 if i > nh - 1 else i)  # noqa: FURB136 - numpy's take(mode="clip")
    v = r - rmin[ic]
    v = _fmul(v, rscale[ic])
    last = numba.float32(nr - 1)
    if v < 0:
        v = numba.float32(0.0)
    if v > last:  # noqa: PLR1730
        v = last
    fv0 = numba.float32(math.floor(v))
    flat = numba.int32(fv0) + i * numba.int32(nr)
    fv = v - fv0
    n_cells = capture.shape[0]
    flat = 0 if flat < 0 else (n_cells - 1 if flat > n_cells - 1 else flat)  # noqa: FURB136
    c0 = lut_zeff[flat, 0]
    c1 = lut_zeff[flat, 1]
    c2 = lut_zeff[flat, 2]
    c3 = lut_zeff[flat, 3]
    zz = _fmul(c1 - c0, fv) + c0
    zh = _fmul(c3 - c2, fv) + c2
    zh = zh - zz
    zz = zz + _fmul(zh, fu)
    k = numba.uint8(1)
    if zz > organic_max:
        k += numba.uint8(1)
    if zz > inorganic_max:
        k += numba.uint8(1)
    cap = capture[flat]
    code[p] = cap if cap > k else k  # noqa: FURB136
    z[p] = zz


#: look-up tables already on the GPU: id(array) -> (array, device copy); the array is kept so
#: that its id is not reused while the entry lives (a few calibrations a process)
_TABLES: dict[int, tuple] = {}


def _device_table(a: np.ndarray, rgb: bool = False):
    """``a`` on the GPU, sent once per process (a calibration's tables are ~10 MB); ``rgb``: a
    colour table (``V3`` entries) as (entries, 3) bytes."""
    hit = _TABLES.get(id(a))
    if hit is None or hit[0] is not a:
        if len(_TABLES) >= 32:
            _TABLES.clear()
        host = a.view(np.uint8).reshape(-1, 3) if rgb else a
        hit = _TABLES[id(a)] = (a, cuda.to_device(np.ascontiguousarray(host)))
    return hit[1]


def _grid(n: int) -> tuple[int, int]:
    return max(1, (n + THREADS - 1) // THREADS), THREADS


def _denoise(img, sigma: float):
    """scipy's ``gaussian_filter(img, sigma, mode="nearest", output=img)`` of a float32 image
    (1, rows, cols) on the GPU: rows, then columns, each rounded to float32."""
    w = cuda.to_device(gaussian_weights(sigma)[::-1].copy())
    tmp = cuda.device_array(img.shape, dtype=np.float32)
    out = cuda.device_array(img.shape, dtype=np.float32)
    _correlate_sym[_grid(img.size)](img, 1, w, False, 1.0, 0.0, tmp)
    _correlate_sym[_grid(img.size)](tmp, 2, w, False, 1.0, 0.0, out)
    return out


def _codes_device(d_low, d_high, shape: tuple, cal):
    """The per-pixel passes of :func:`.colour._codes` (no despeckling) of one view's float64
    transmissions on the GPU (flat): device arrays ``(code, zeff, starved, background)``."""
    n = d_low.shape[0]
    o, f = cal.scatter_offset, cal.scatter_fraction
    remove = not (o == 0 and f == 0)
    gain = 1.0 + o + f
    if remove and f > 0:
        s_low = lowpass_cuda(d_low.reshape((1,) + shape), cal.scatter_sigma_px).reshape(n)
        s_high = lowpass_cuda(d_high.reshape((1,) + shape), cal.scatter_sigma_px).reshape(n)
    else:
        s_low = s_high = cuda.device_array(0, dtype=np.float64)
    lo = cuda.device_array(n, dtype=np.float32)
    hi = cuda.device_array(n, dtype=np.float32)
    starved = cuda.device_array(n, dtype=np.bool_)
    background = cuda.device_array(n, dtype=np.bool_)
    f32 = np.float32
    _log_attenuations[_grid(n)](
        d_low, d_high, s_low, s_high, remove, f32(gain), f32(o), -f * gain, f32(0.1 * cal.starvation),
        f32(cal.starvation), f32(cal.background), lo, hi, starved, background)
    if cal.denoise_px > 0:
        lo = _denoise(lo.reshape((1,) + shape), cal.denoise_px).reshape(n)
        hi = _denoise(hi.reshape((1,) + shape), cal.denoise_px).reshape(n)
    nh = cal.lut_rmin.size
    nr = cal.lut_capture.size // nh
    h0, h1 = float(cal.h_grid[0]), float(cal.h_grid[-1])
    lg0 = np.log(h0)
    d_code = cuda.device_array(n, dtype=np.uint8)
    d_z = cuda.device_array(n, dtype=np.float32)
    _zeff[_grid(n)](
        lo, hi, f32(h0), f32(h1), float(lg0), float((nh - 1) / (np.log(h1) - lg0)), nh, nr,
        _device_table(cal.lut_rmin), _device_table(cal.lut_rscale), _device_table(cal.lut_zeff),
        _device_table(cal.lut_capture), f32(cal.organic_max), f32(cal.inorganic_max), d_code, d_z)
    return d_code, d_z, starved, background


def _clean_device(d_code, d_z, d_starved, d_background, shape: tuple, cal, clean: bool = True) -> tuple:
    """:func:`.colour._clean` of :func:`_codes_device`'s arrays when ``clean`` (an image of at
    least 3 x 3 pixels): the same four device arrays, the codes despeckled."""
    if clean and cleanable(shape):
        d_code = despeckle_cuda(d_code, d_z, d_starved, d_background, shape, cal.organic_max, cal.inorganic_max)
    return d_code, d_z, d_starved, d_background


def _flat_pair(t_low, t_high) -> tuple:
    """Both channels (rows, cols) as flat float64 device arrays, with their shape."""
    if tuple(t_low.shape) != tuple(t_high.shape):
        raise ValueError(f"channel shapes differ: {tuple(t_low.shape)} and {tuple(t_high.shape)}")
    shape = tuple(t_low.shape)
    n = int(np.prod(shape, dtype=np.int64))

    def flat(t):
        if on_device(t):
            return t.reshape(n)
        return cuda.to_device(np.ascontiguousarray(t, dtype=np.float64).reshape(n))

    return flat(t_low), flat(t_high), shape


def _host(*arrays, shape: tuple) -> list[np.ndarray]:
    return [a.copy_to_host().reshape(shape) for a in arrays]


def codes_cuda(t_low, t_high, cal, clean: bool = True):
    """:func:`xraybag.engine.xray.colour._codes` of one view (rows, cols) with the per-pixel
    passes on the GPU (``t_low``, ``t_high``: float64 transmissions on the host or the GPU; ``cal``
    with its look-up tables): ``(code, zeff, starved, background)`` on the host, despeckled
    on the GPU (:func:`despeckle_cuda`) when ``clean``. Another number of axes goes to the CPU's."""
    from xraybag.engine.xray.colour import _codes

    if len(t_low.shape) != 2:
        host = [t.copy_to_host() if on_device(t) else t for t in (t_low, t_high)]
        return _codes(host[0], host[1], cal, clean)
    d_low, d_high, shape = _flat_pair(t_low, t_high)
    code, z, starved, background = _host(*_clean_device(*_codes_device(d_low, d_high, shape, cal), shape, cal,
                                                        clean), shape=shape)
    return code, z, starved, background


#: the largest speck (pixels) :func:`despeckle_cuda` can search (its per-thread queue)
SPECK_CAPACITY = 64
_QUEUE = SPECK_CAPACITY + 1  # (a local array's size must be a global constant)

_zgap = cuda.jit(device=True)(zgap)


@cuda.jit(device=True)
def _far(c, zv, lo, hi, margin):  # pragma: no cover - GPU / simulator
    """A pixel of class ``c`` (1..3) and Zeff ``zv`` too far from both boundaries to be a speck
    (a K-edge capture, ``c`` > 3, never is), as :func:`.colour._despeckle` tests it."""
    return c <= 3 and abs(zv - lo) >= margin and abs(zv - hi) >= margin


@cuda.jit(device=True)
def _neighbour(q, di, dj, rows, cols):  # pragma: no cover - GPU / simulator
    """The flat index of the pixel (di, dj) away from the flat pixel ``q``; -1 outside."""
    i = q // cols
    a = i + di
    b = q - i * cols + dj
    if a < 0 or b < 0 or a >= rows or b >= cols:
        return -1
    return a * cols + b


@cuda.jit(device=True)
def _starts(code, z, starved, background, rows, cols, p, lo, hi, margin):  # pragma: no cover
    """Whether :func:`.colour._despeckle` starts a search at the flat pixel ``p`` (before its test
    of an earlier search having reached it): a class, not skipped, near a boundary, with at least
    4 of its 8 neighbours of other codes."""
    c = code[p]
    if c == 0 or starved[p] or background[p] or _far(c, z[p], lo, hi, margin):
        return False
    other = 0
    for di in range(-1, 2):
        for dj in range(-1, 2):
            r = _neighbour(p, di, dj, rows, cols)
            if r >= 0 and code[r] != c:
                other += 1
    return other >= 4


@cuda.jit
def _despeckle_pass(code, z, starved, background, rows, cols, lo, hi, margin, max_pixels,
                    out):  # pragma: no cover - GPU / simulator
    """One pass of :func:`.colour._despeckle` (skip = starved or background, dark = starved),
    ``out`` a copy of ``code`` beforehand. The CPU's raster-order searches give each patch (the
    8-connected pixels of one code) an outcome of its own: it changes only when every pixel is
    near a boundary and not skipped, it has at most ``max_pixels``, and a search starts in it;
    it then takes the code its surroundings give, ties broken by the Zeff of its first start
    pixel in raster order (the search that reaches it first; an earlier search, failed or not,
    never reaches another patch). So here a thread at each start pixel searches its patch and,
    where the patch is a speck and the thread its first start pixel, writes its code."""
    p = cuda.grid(1)
    if p >= rows * cols:
        return
    if not _starts(code, z, starved, background, rows, cols, p, lo, hi, margin):
        return
    c = code[p]
    queue = cuda.local.array(_QUEUE, numba.int64)
    queue[0] = p
    n = 1
    head = 0
    while head < n:
        q = queue[head]
        head += 1
        for di in range(-1, 2):
            for dj in range(-1, 2):
                r = _neighbour(q, di, dj, rows, cols)
                if r < 0 or code[r] != c:
                    continue
                member = False
                for t in range(n):
                    if queue[t] == r:
                        member = True
                if member:
                    continue
                if starved[r] or background[r] or n == max_pixels or _far(c, z[r], lo, hi, margin):
                    return  # not a speck
                if r < p and _starts(code, z, starved, background, rows, cols, r, lo, hi, margin):
                    return  # an earlier start pixel's search decides it
                queue[n] = r
                n += 1
    counts = cuda.local.array(256, numba.int32)
    for k in range(256):
        counts[k] = 0
    for t in range(n):
        for di in range(-1, 2):
            for dj in range(-1, 2):
                r = _neighbour(queue[t], di, dj, rows, cols)
                if r < 0:
                    continue
                if starved[r] or background[r]:
                    if starved[r]:
                        counts[3] += 1
                    continue
                k = code[r]
                if k != c and k >= 1:
                    counts[k] += 1
    best = 0
    total = 0
    zp = z[p]
    for k in range(1, 256):
        total += counts[k]
        if counts[k] > counts[best] or (
                counts[k] == counts[best] and counts[k] > 0 and _zgap(zp, k, lo, hi) < _zgap(zp, best, lo, hi)):
            best = k
    if total > 0 and ((n == 1 and 2 * counts[best] >= total) or 4 * counts[best] >= 3 * total):
        for t in range(n):
            out[queue[t]] = best


def despeckle_cuda(d_code, d_z, d_starved, d_background, shape: tuple, lo: float, hi: float,
                   margin: float = DESPECKLE_MARGIN, max_pixels: int = DESPECKLE_PIXELS,
                   passes: int = DESPECKLE_PASSES):
    """:func:`.colour._clean` on the GPU: :func:`.colour.despeckle` of one view's flat device
    arrays (codes, Zeff, starved and background masks; ``shape`` (rows, cols)), skipping the
    starved and background pixels and counting the starved ones as metal around a speck; every
    pass runs (one that changes nothing leaves the next nothing to change, as on the CPU, which
    stops there). Returns the despeckled codes (a new device array)."""
    rows, cols = (int(x) for x in shape)
    if not 0 < max_pixels <= SPECK_CAPACITY:
        raise ValueError(f"max_pixels must be in 1..{SPECK_CAPACITY}, not {max_pixels}")
    n = rows * cols
    src = d_code
    for _ in range(passes):
        out = cuda.device_array(n, dtype=np.uint8)
        out.copy_to_device(src)
        _despeckle_pass[_grid(n)](src, d_z, d_starved, d_background, rows, cols, np.float32(lo),
                                  np.float32(hi), np.float32(margin), int(max_pixels), out)
        src = out
    return src


def _plain_bits(x):
    return np.int32(np.float32(x).view(np.int32))


if numba.config.ENABLE_CUDASIM:
    _bits = _plain_bits
else:  # a float32's bits as an int32
    _bits = libdevice.float_as_int


@cuda.jit
def _rgb(code, z, starved, background, t_high, hue_table, t_bins, rgb, hue_bins, hue_per_z, hr_bins,
         starved_hue, t_min, t_shift, out):  # pragma: no cover - runs on a GPU / the simulator
    """Pixel ``p``: :func:`.colour._lookup`, numpy's steps: the hue of code and Zeff
    (``int32(z hue_per_z) + code hue_bins``; starved and background pixels' fixed hues), then the
    colour of that hue at the bin of T_high's float32 bits (``T`` clipped to ``[t_min, 1]``,
    bits shifted right by ``t_shift``); every look-up's index clipped as numpy's ``take``."""
    p = cuda.grid(1)
    if p >= code.shape[0]:
        return
    i = numba.int32(_fmul(z[p], hue_per_z)) + numba.int32(code[p]) * numba.int32(hue_bins)
    last = hue_table.shape[0] - 1
    i = 0 if i < 0 else (last if i > last else i)  # noqa: FURB136
    hue = hue_table[i]
    if starved[p]:
        hue = numba.uint8(starved_hue)
    if background[p]:
        hue = numba.uint8(0)
    t = numba.float32(t_high[p])
    if t < t_min:  # np.clip (a NaN stays NaN, as there)  # noqa: PLR1730
        t = t_min
    if t > numba.float32(1.0):  # noqa: PLR1730
        t = numba.float32(1.0)
    b = _bits(t) >> t_shift
    last = t_bins.shape[0] - 1
    b = 0 if b < 0 else (last if b > last else b)  # noqa: FURB136
    k = numba.int32(hue) * numba.int32(hr_bins) + t_bins[b]
    last = rgb.shape[0] - 1
    k = 0 if k < 0 else (last if k > last else k)  # noqa: FURB136
    for ch in range(3):
        out[p, ch] = rgb[k, ch]


def pseudo_colour_cuda(t_low, t_high, cal, clean: bool = True) -> np.ndarray:
    """:func:`xraybag.engine.xray.colour.pseudo_colour` of one view (rows, cols) on the GPU
    (``colour.PSEUDO_COLOUR["cuda"]``): the per-pixel passes, the despeckling and the colour
    look-up there. Returns the (rows, cols, 3) uint8 image on the host."""
    from xraybag.engine.xray import calibration as K
    from xraybag.engine.xray.colour import pseudo_colour

    if len(t_low.shape) != 2:  # one view only: anything else is the CPU's
        host = [t.copy_to_host() if on_device(t) else np.asarray(t) for t in (t_low, t_high)]
        return pseudo_colour(host[0], host[1], cal, clean)
    d_low, d_high, shape = _flat_pair(t_low, t_high)
    d_code, d_z, d_starved, d_background = _clean_device(*_codes_device(d_low, d_high, shape, cal), shape, cal,
                                                         clean)
    n = d_code.shape[0]
    out = cuda.device_array((n, 3), dtype=np.uint8)
    _rgb[_grid(n)](d_code, d_z, d_starved, d_background, d_high, _device_table(cal.hue_table),
                   _device_table(K.T_BINS), _device_table(cal.rgb_table, rgb=True), K.HUE_BINS,
                   np.float32(K.HUE_PER_Z), K.HR_BINS, K.STARVED_HUE, np.float32(K.T_MIN), K.T_SHIFT, out)
    return out.copy_to_host().reshape(shape + (3,))

