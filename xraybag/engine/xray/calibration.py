"""The colour calibration of a dual-energy scanner: simulated step wedges and their look-up tables.

A pixel's low- and high-energy transmissions give its high-energy attenuation ``h = -ln T_high``
and the ratio ``R = ln T_low / ln T_high``. At a fixed ``h``, R grows with the effective atomic
number (photoelectric absorption ~ Z^3 / E^3 hurts the low channel more).
:func:`calibrate_colour` simulates noise-free step wedges of pure elements through the configured
spectrum and detector (the same spectral model as :mod:`xraybag.engine.xray.detect`) and
tabulates R(h) for a *ladder* of elements (H, B..Zn, where R is monotone in Z); a pixel's Zeff is
interpolated between the ladder curves at its h. Classes: background (tiny attenuation), organic
(Zeff <= 10), inorganic (10 < Zeff <= 18), metal (Zeff > 18, i.e. above the Z = 18 curve).

Two things beyond the ladder, as a vendor's step-wedge look-up table would have them:

* *K-edge references* (default: lead). A heavy element's K edge inside the high channel's band
  lowers its R until it sits on the curve of a light element (with the default 140 kVp
  sandwich detector lead reads as Z ~ 13 when thin, ~ 10.3 at 0.5 mm and ~ 8.7 at 1 mm). Its
  calibrated curve is kept, and pixels within ``capture`` Z units of it (in ladder Zeff) are
  metal with that element's Z, wherever its wedge is at least :data:`KEDGE_MIN_MASS` thick
  (thinner lead is indistinguishable from aluminium or organic/inorganic overlaps and is shown
  as such). Materials on
  that band (default scanner: apparent Z ~ 10.8 at h = 1.5, 9.4 at h = 3, 8 at h = 5) cannot be
  told from lead with two energies and are shown blue.
* *Starvation*: where ``T_high`` is below ``starvation`` the ratio is noise; such pixels are
  metal (dark blue), as scanners show impenetrable items.

Speed: the ladder interpolation, the K-edge rule and the colours are tabulated once per
calibration (:func:`lookup_tables`, a 511 x 1024 grid over (ln h, R) plus a hue x ln h colour
table), so a view costs the scatter and denoise filters and a few float32 passes and gathers
(:mod:`.colour`). The per-pixel algorithm the tables hold is kept as :func:`classify_direct`;
table and algorithm agree on >= 99.5 % of classes, on Zeff to 0.05 below Z 20 (above, where the
heavy curves nearly coincide, to within a few tenths), and colours to a couple of 8-bit units.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from xraybag.engine.xray.detect import channel_response

BACKGROUND, ORGANIC, INORGANIC, METAL = 0, 1, 2, 3

#: Elements whose R curves form the Zeff ladder (R is monotone in Z over them).
LADDER_Z = (1, *range(5, 31))
#: Heavy elements calibrated separately because their K edge makes them look light.
KEDGE_Z = (82,)
#: K-edge references capture pixels only where their wedge is at least this thick (g/cm2; 0.48 mm
#: of lead, h ~ 2.1 on the default scanner): thinner lead looks like aluminium or an organic and
#: inorganic overlap, and is shown as what it looks like. (At 0.25 g/cm2 the band also caught
#: 1.8 % of the pixels of cluttered pidray bags, almost none of them lead; at 0.55, 0.75 %.)
KEDGE_MIN_MASS = 0.55

_H_POINTS = 256
_H_MIN = 1e-3


@dataclass(frozen=True, eq=False)
class ColourCalibration:
    """A scanner's dual-energy look-up curves and tables (see the module docstring).

    h_grid: (H,) increasing high-energy attenuations -ln T_high (log-spaced).
    ladder_z: (K,) atomic numbers of the ladder; ladder_r: (K, H) R of each at each h,
        non-decreasing along K.
    kedge_z: (P,) K-edge references; kedge_zapp: (P, H) their apparent ladder Zeff at each h
        (NaN where their wedge is thinner than :data:`KEDGE_MIN_MASS`).
    low_channel, high_channel: names of the detector channels used.
    background: pixels with -ln T_low below this are background.
    starvation: pixels with T_high below this are metal (impenetrable).
    capture: half-width (Z units) of the band around a K-edge reference's apparent Zeff.
    organic_max, inorganic_max: class boundaries in Zeff.
    scatter_offset, scatter_fraction, scatter_sigma_px: the scanner's scatter model, removed by
        :func:`classify` (zero when the scanner adds no scatter).
    denoise_px: Gaussian sigma (pixels) applied to both log-attenuation images before the ratio
        is formed (1 for scanners with quantum noise, 0 for noise-free ones). Smoothing both
        logs with one kernel keeps R of an isolated object exact while averaging out noise.

    Look-up tables (filled by :func:`calibrate_colour`, or on use if absent; see
    :func:`lookup_tables`). Row band ``i`` (``i < NH``) covers ``u`` in ``[i, i + 1)`` where
    ``u = (ln h - ln h_grid[0]) / du`` runs over NH nodes evenly spaced in ``ln h`` (the
    calibration's nodes and their midpoints); in band ``i`` the ratio maps to
    ``v = (R - lut_rmin[i]) * lut_rscale[i]``, clamped to ``[0, NR - 1]``, so the ladder's span in
    that band fills the NR columns. A pixel's cell is ``(floor u, floor v)``, flat index
    ``floor(u) * NR + floor(v)``.

    lut_rmin, lut_rscale: (NH,) float32 the per-band mapping of R.
    lut_zeff: (NH * NR, 4) float32 ladder Zeff (before K-edge capture) at the cell's corners
        ``(u, v), (u, v + 1), (u + 1, v), (u + 1, v + 1)`` for bilinear interpolation.
    lut_capture: (NH * NR,) uint8 K-edge capture at the cell's centre: ``4 + p`` where reference
        ``p`` captures it (metal with Zeff ``kedge_z[p]``), else 0. A pixel's *code* is its class
        (1..3, from its interpolated Zeff) or, where captured, ``4 + p``.
    hue_table: ((4 + P) * :data:`HUE_BINS`,) uint8 hue (degrees, rounded) of code ``c`` at Zeff
        ``z``: entry ``c * HUE_BINS + floor(z * HUE_PER_Z)`` (its value at the bin's centre).
    rgb_table: (256 * :data:`HR_BINS`,) ``V3`` (r, g, b) bytes of hue ``c`` degrees (row) at bin
        ``b`` of ``ln(-ln T_high)`` (see :func:`_hr_bins`); row 0 (the background's) is white.
        The rows are the standard table's hues; a :class:`Display` maps them to its own colours.
    display: the scanner's colour table (:class:`Display`); None for the standard one.
    """

    h_grid: np.ndarray
    ladder_z: np.ndarray
    ladder_r: np.ndarray
    kedge_z: np.ndarray
    kedge_zapp: np.ndarray
    low_channel: str = "low"
    high_channel: str = "high"
    background: float = 0.04
    starvation: float = 5e-3
    capture: float = 0.5
    organic_max: float = 10.0
    inorganic_max: float = 18.0
    scatter_offset: float = 0.0
    scatter_fraction: float = 0.0
    scatter_sigma_px: float = 0.0
    denoise_px: float = 0.0
    lut_rmin: np.ndarray | None = None
    lut_rscale: np.ndarray | None = None
    lut_zeff: np.ndarray | None = None
    lut_capture: np.ndarray | None = None
    hue_table: np.ndarray | None = None
    rgb_table: np.ndarray | None = None
    display: "Display | None" = None


def low_high_channels(channels: list[str]) -> tuple[str, str]:
    """The channel pair used for colour: (``low``, ``high``), or the first and last energy bin."""
    if "low" in channels and "high" in channels:
        return "low", "high"
    if len(channels) >= 2:
        return channels[0], channels[-1]
    raise ValueError(f"pseudo-colour needs two energy channels; the detector has {channels}")


# ------------------------------------------------------------------------------ calibration


def _wedge_curve(mu_mass: np.ndarray, w_low: np.ndarray, w_high: np.ndarray, h_grid: np.ndarray):
    """R at each h of a wedge of one element, and the h of each mass thickness.

    ``mu_mass``: (E,) mass attenuation (cm2/g); ``w_low``, ``w_high``: (E,) channel weights
    normalised to sum 1. Returns (R on ``h_grid``, a function mass thickness g/cm2 -> h).
    """
    t = np.geomspace(1e-6, 1e4, 1500)  # mass thickness, g/cm2
    att = np.exp(-np.outer(t, mu_mass))
    t_low, t_high = att @ w_low, att @ w_high
    ok = (t_high > 0) & (t_low > 0) & (t_high < 1)
    h = -np.log(t_high[ok])
    r = np.log(t_low[ok]) / np.log(t_high[ok])
    return np.interp(h_grid, h, r), lambda mass: float(np.interp(mass, t[ok], h))


_CAL_CACHE: OrderedDict = OrderedDict()


def calibrate_colour(scanner, library) -> ColourCalibration:
    """Simulated step-wedge calibration of ``scanner``'s spectrum and detector (cached).

    The curves are noise-free and primary-only; the scatter model of ``scanner.noise`` (if any) is
    stored so that :func:`classify` can remove it. The look-up tables of :func:`classify` and
    :func:`pseudo_colour` are computed here. Raises ``ValueError`` for a single-channel detector.
    A calibration is also kept on disk (:data:`CALIBRATION_DIR_ENV`) and read back by the next
    process that needs it: 0.3 s of every render's start-up (and of every worker's) otherwise.
    """
    noise = scanner.noise
    scatter = noise.scatter if noise.enabled else None
    key = (
        scanner.spectrum.model_dump_json(),
        scanner.detector.model_dump_json(),
        noise.model_dump_json(),
        float(scanner.pitch),
        id(library),
    )
    display = display_of(scanner)
    if display is not None:  # the same classes; only the colour table differs
        dkey = (key, display)
        hit = _CAL_CACHE.get(dkey)
        if hit is None or hit[0] is not library:
            base = calibrate_colour(scanner.model_copy(update={"colour": None}), library)
            rgb = _rgb_table(display)
            rgb.flags.writeable = False
            hit = (library, replace(base, display=display, rgb_table=rgb))
            _cache(dkey, hit)
        return hit[1]
    hit = _CAL_CACHE.get(key)
    if hit is not None and hit[0] is library:
        _CAL_CACHE.move_to_end(key)
        return hit[1]

    response = channel_response(scanner, library, 1.0, 1000.0)
    low, high = low_high_channels(response.channels)
    w = response.weights / response.open_beam
    w_low, w_high = w[:, response.channels.index(low)], w[:, response.channels.index(high)]
    extra = {"denoise_px": 1.0 if noise.enabled and noise.quantum else 0.0}
    if scatter is not None:
        extra.update(dict(
            scatter_offset=float(scatter.offset),
            scatter_fraction=float(scatter.fraction),
            scatter_sigma_px=float(scatter.width) / float(scanner.pitch),
        ))
    record, digest = _record_path(response.energies, w_low, w_high, low, high, extra)
    cal = _read_record(record, digest) if record is not None else None
    if cal is None:
        cal = _calibrate(response.energies * 1000.0, w_low, w_high, low, high, extra)
        if record is not None:
            _write_record(record, digest, cal)
    for name in _ARRAYS:
        getattr(cal, name).flags.writeable = False
    _cache(key, (library, cal))
    return cal


def _calibrate(e_ev: np.ndarray, w_low: np.ndarray, w_high: np.ndarray, low: str, high: str,
               extra: dict) -> ColourCalibration:
    """:func:`calibrate_colour` from the channels' normalised weights on the energies ``e_ev``."""
    import xraydb

    starvation = 5e-3
    h_grid = np.geomspace(_H_MIN, -np.log(starvation) * 1.5, _H_POINTS)
    ladder_z = np.array(LADDER_Z, dtype=np.float64)
    ladder_r = np.stack(
        [_wedge_curve(xraydb.mu_elam(int(z), e_ev), w_low, w_high, h_grid)[0] for z in ladder_z]
    )
    ladder_r = np.maximum.accumulate(ladder_r, axis=0)
    kedge_z = np.array(KEDGE_Z, dtype=np.float64)
    kedge_zapp = np.zeros((kedge_z.size, h_grid.size))
    for p, z in enumerate(kedge_z):
        curve, h_of_mass = _wedge_curve(xraydb.mu_elam(int(z), e_ev), w_low, w_high, h_grid)
        kedge_zapp[p] = _zeff_from_column(curve, ladder_r, ladder_z)
        kedge_zapp[p, h_grid < h_of_mass(KEDGE_MIN_MASS)] = np.nan

    cal = ColourCalibration(
        h_grid=h_grid,
        ladder_z=ladder_z,
        ladder_r=ladder_r,
        kedge_z=kedge_z,
        kedge_zapp=kedge_zapp,
        low_channel=low,
        high_channel=high,
        starvation=starvation,
        **extra,
    )
    return replace(cal, **lookup_tables(cal))


#: The folder where calibrations are kept between runs (see :func:`_record_path`); an empty
#: string keeps none. Default: ``xraybag/calibration`` in the user's cache folder.
CALIBRATION_DIR_ENV = "XRAYBAG_CALIBRATION_DIR"
#: Records kept (the most recently used; about 10 MB each).
_KEEP_RECORDS = 16
_ARRAYS = ("h_grid", "ladder_z", "ladder_r", "kedge_z", "kedge_zapp", "lut_rmin", "lut_rscale",
           "lut_zeff", "lut_capture", "hue_table", "rgb_table")


@functools.lru_cache(maxsize=1)
def _code_identity() -> bytes:
    """What a calibration depends on besides its inputs: this module's code (its constants and
    algorithm) and the versions of xraydb (the ladder's cross-sections) and numpy."""
    from importlib.metadata import version

    return b"\0".join([Path(__file__).read_bytes(), version("xraydb").encode(), np.__version__.encode()])


def _record_path(energies, w_low, w_high, low: str, high: str, extra: dict) -> tuple[Path | None, str]:
    """Where the calibration of these channel weights is kept, and its digest. The digest covers
    every input of :func:`_calibrate` (by value: a spectrum, detector or library that gives the
    same weights gives the same record) and :func:`_code_identity`."""
    from xraybag.materials.spectra import cache_folder

    folder = cache_folder(CALIBRATION_DIR_ENV, "calibration")
    try:
        h = hashlib.sha256(_code_identity())
    except (OSError, ImportError):  # no source file or no package metadata to key the record by
        return None, ""
    for a in (energies, w_low, w_high):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update(json.dumps([low, high, sorted(extra.items())]).encode())
    digest = h.hexdigest()
    return (None if folder is None else folder / f"colour-{digest[:32]}.npz"), digest


def _read_record(path: Path, digest: str) -> ColourCalibration | None:
    """The calibration kept at ``path`` if it is the one of ``digest`` (else None: absent,
    unreadable, or not a record of ours)."""
    try:
        with np.load(path, allow_pickle=False) as rec:
            if str(rec["digest"]) != digest:
                return None
            scalars = json.loads(str(rec["scalars"]))
            cal = ColourCalibration(**{k: rec[k] for k in _ARRAYS}, **scalars)
        os.utime(path)  # used now: the last to be pruned
        return cal
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _write_record(path: Path, digest: str, cal: ColourCalibration) -> None:
    """Keep ``cal`` at ``path`` (written whole or not at all; a folder that cannot be written is
    passed over)."""
    from xraybag.engine.output.files import write_atomic

    scalars = {f.name: getattr(cal, f.name) for f in fields(cal)
               if f.name not in _ARRAYS and f.name != "display"}
    buf = io.BytesIO()
    np.savez(buf, digest=np.array(digest), scalars=np.array(json.dumps(scalars)),
             **{k: getattr(cal, k) for k in _ARRAYS})
    try:
        write_atomic(path, buf.getvalue())
        kept = sorted(path.parent.glob("colour-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_KEEP_RECORDS:]:  # 10 MB each: the least recently used go
            old.unlink(missing_ok=True)
    except OSError:
        pass


def _cache(key, entry) -> None:
    _CAL_CACHE[key] = entry
    _CAL_CACHE.move_to_end(key)
    while len(_CAL_CACHE) > 16:
        _CAL_CACHE.popitem(last=False)


# ------------------------------------------------------------------------------ direct algorithm


def _zeff_from_column(r: np.ndarray, curves: np.ndarray, ladder_z: np.ndarray) -> np.ndarray:
    """Zeff of pixels with ratio r given the ladder's R at each pixel's h: curves (K, *r.shape).

    ``curves`` may have size 1 on axes where it is constant (it broadcasts against ``r``).
    """
    k_total = curves.shape[0]
    k = np.sum(curves <= r[None], axis=0)  # ladder curves at or below the pixel
    lo = np.clip(k - 1, 0, k_total - 2)[None]
    r0 = np.take_along_axis(curves, lo, axis=0)[0]
    r1 = np.take_along_axis(curves, lo + 1, axis=0)[0]
    z0, z1 = ladder_z[lo[0]], ladder_z[lo[0] + 1]
    span = np.where(r1 > r0, r1 - r0, 1.0)
    z = z0 + (r - r0) / span * (z1 - z0)
    return np.clip(z, ladder_z[0], ladder_z[-1])


def _h_interp(h: np.ndarray, cal: ColourCalibration):
    """Indices and weights interpolating ``cal``'s curves (linear in ln h) at ``h`` (clipped)."""
    log_grid = np.log(cal.h_grid)
    n_h = log_grid.size
    h = np.clip(h, cal.h_grid[0], cal.h_grid[-1])
    u = np.clip((np.log(h) - log_grid[0]) / (log_grid[1] - log_grid[0]), 0, n_h - 1)
    i0 = np.minimum(u.astype(np.intp), n_h - 2)
    return i0, u - i0


def _ladder_zeff(h: np.ndarray, r: np.ndarray, cal: ColourCalibration) -> np.ndarray:
    """Ladder Zeff (no K-edge capture) at high attenuation ``h`` and ratio ``r`` (broadcasting)."""
    h = np.asarray(h, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    i0, wt = _h_interp(h, cal)
    curves = cal.ladder_r[:, i0] * (1 - wt) + cal.ladder_r[:, i0 + 1] * wt
    return _zeff_from_column(r, curves, cal.ladder_z)


def classify_direct(h: np.ndarray, r: np.ndarray, cal: ColourCalibration):
    """The per-pixel algorithm the look-up tables tabulate (reference for the tables' tests).

    ``h``: high-energy attenuation -ln T_high (clipped to the calibration's range), ``r``: ratio
    ``-ln T_low / h`` with that clipped h; they broadcast against each other. Background and
    starvation are per-pixel tests of :func:`classify` and are not applied. Returns
    ``(classes, zeff, captured)``: uint8 classes 1..3, float64 Zeff (the K-edge reference's Z
    where it captures the pixel) and int8 index of the capturing reference (-1 for none).
    """
    z = _ladder_zeff(h, r, cal)
    i0, wt = _h_interp(np.asarray(h, dtype=np.float64), cal)
    cls = np.where(z <= cal.organic_max, ORGANIC,
                   np.where(z <= cal.inorganic_max, INORGANIC, METAL))
    captured = np.full(z.shape, -1, dtype=np.int8)
    for p, zk in enumerate(cal.kedge_z):
        zapp = cal.kedge_zapp[p, i0] * (1 - wt) + cal.kedge_zapp[p, i0 + 1] * wt
        hit = (np.abs(z - zapp) <= cal.capture) & (zapp <= cal.inorganic_max)
        cls = np.where(hit, METAL, cls)
        z = np.where(hit, zk, z)
        captured = np.where(hit, p, captured)
    return cls.astype(np.uint8), z, captured


#: Hue (degrees) against Zeff: orange up to Z 9.5, green from 10.5 to 17.5, blue from 18.5.
_HUE_Z = np.array([0.0, 9.5, 10.5, 17.5, 18.5, 200.0])
_HUE_DEG = np.array([30.0, 30.0, 120.0, 120.0, 225.0, 225.0])


def _hue(classes: np.ndarray, zeff: np.ndarray) -> np.ndarray:
    """Hue (degrees) of pixels of the given classes and Zeff; the class decides near a boundary.

    Background pixels get 0, which :func:`_rgb_direct` and ``rgb_table`` show white.
    """
    hue = np.interp(np.asarray(zeff, dtype=np.float64), _HUE_Z, _HUE_DEG)
    hue = np.where(classes == ORGANIC, np.minimum(hue, 60.0), hue)
    hue = np.where(classes == INORGANIC, np.clip(hue, 75.0, 165.0), hue)
    hue = np.where(classes == METAL, np.maximum(hue, 200.0), hue)
    hue = np.where((classes == METAL) & (zeff == 0), 225.0, hue)
    return np.where(classes == BACKGROUND, 0.0, hue)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (hue in degrees, s and v in [0, 1]) to RGB floats in [0, 1], (..., 3)."""
    h6 = (np.asarray(h, dtype=np.float64) % 360.0) / 60.0
    c = v * s
    out = []
    for n in (5.0, 3.0, 1.0):  # r, g, b
        k = (n + h6) % 6.0
        out.append(v - c * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return np.stack(out, axis=-1)


#: Saturation ``SAT_MAX (1 - exp(-h / SAT_H))`` and brightness ``1 - DARK_MAX (1 - exp(-h / DARK_H))``
#: of a pixel of high-energy attenuation h = -ln T: a thin plastic (h ~ 0.1) is nearly white (12 %
#: saturation), colour deepens with thickness, and only thick dense objects go dark, as carry-on
#: scanners display them (their images are less saturated than full-strength hues).
SAT_MAX, SAT_H = 0.9, 0.7
DARK_MAX, DARK_H = 0.8, 3.0
#: The standard table's hues (degrees) of organic, inorganic and metal (see ``_HUE_DEG``).
HUES = (30.0, 120.0, 225.0)


@dataclass(frozen=True)
class Display:
    """A scanner display's colour table (the scene's ``scanners[].colour``, resolved): the hues of
    organic, inorganic and metal (degrees), saturation ``sat_max (1 - exp(-h / sat_scale))``,
    brightness ``1 - dark_max (1 - exp(-h / dark_scale))`` and the background (r, g, b), which
    also tints every colour (so thin objects fade into it). The defaults are the standard table."""

    organic: float = HUES[0]
    inorganic: float = HUES[1]
    metal: float = HUES[2]
    sat_max: float = SAT_MAX
    sat_scale: float = SAT_H
    dark_max: float = DARK_MAX
    dark_scale: float = DARK_H
    background: tuple[int, int, int] = (255, 255, 255)


def display_of(scanner) -> Display | None:
    """The :class:`Display` of a scanner's ``colour`` field; None for the standard table."""
    colour = getattr(scanner, "colour", None)
    if colour is None:
        return None
    display = Display(**colour.resolved())
    return None if display == Display() else display


def _display_hue(hue: np.ndarray, d: Display) -> np.ndarray:
    """A display's hue of each standard hue (the rows of ``rgb_table``): the standard's organic,
    inorganic and metal hues go to the display's, and the blends between them along the shorter
    way round the colour wheel."""
    o = d.organic
    i = o + (d.inorganic - o + 180.0) % 360.0 - 180.0
    m = i + (d.metal - d.inorganic + 180.0) % 360.0 - 180.0
    return np.interp(np.asarray(hue, dtype=np.float64), HUES, (o, i, m)) % 360.0


def _rgb_direct(hue: np.ndarray, h: np.ndarray, display: Display | None = None) -> np.ndarray:
    """uint8 colours of hue (degrees, the standard table's) at high attenuation ``h``; hue 0 is
    the background. ``display``: another colour table (None: the standard one, white background)."""
    d = display or Display()
    h = np.asarray(h, dtype=np.float64)
    sat = d.sat_max * (1.0 - np.exp(-h / d.sat_scale))
    val = 1.0 - d.dark_max * (1.0 - np.exp(-h / d.dark_scale))
    shown = hue if (d.organic, d.inorganic, d.metal) == HUES else _display_hue(hue, d)
    rgb = _hsv_to_rgb(shown, sat, val)
    rgb = np.where((np.asarray(hue) == 0)[..., None], 1.0, rgb)
    if d.background != (255, 255, 255):
        rgb = rgb * (np.asarray(d.background, dtype=np.float64) / 255.0)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ look-up tables

#: Look-up table rows: nodes evenly spaced in ln h, the calibration's nodes and their midpoints
#: (so the curves are linear in ln h across each row band).
_LUT_H = 2 * _H_POINTS - 1
#: Look-up table columns: R across the ladder's span in each row band.
_LUT_R = 1024
#: Saturation/brightness bins of ln(-ln T_high) over [ln _HR_MIN, ln -ln T_MIN].
HR_BINS = 1024
_HR_MIN = 1e-4
T_MIN = 1e-12
#: Hue of starved pixels (metal with Zeff 0).
STARVED_HUE = 225
#: Zeff bins per Z unit of ``hue_table`` (the hue changes by at most 105 degrees per Z unit).
HUE_PER_Z = 256
HUE_BINS = int(np.ceil(LADDER_Z[-1] * HUE_PER_Z)) + 2


def _hr_bins() -> tuple[float, float]:
    """(offset, scale): bin ``floor((ln max(h, _HR_MIN) - offset) * scale)`` of a measured h."""
    lo, hi = np.log(_HR_MIN), np.log(-np.log(T_MIN))
    return float(lo), float(HR_BINS / (hi - lo))


#: :func:`pseudo_colour` reads T_high's bin from its float32 bits: ``bits >> T_SHIFT`` keeps the
#: exponent and the top 10 mantissa bits (T to 0.1 %, h to 0.001).
T_SHIFT = 13


def _t_bins() -> np.ndarray:
    """int32 bin of ``rgb_table`` (see :func:`_hr_bins`) of each ``bits >> T_SHIFT`` of a float32
    T in [T_MIN, 1], taken at the middle of its range of T (entries below ``T_MIN``'s are never
    read)."""
    top = int(np.float32(1.0).view(np.int32)) >> T_SHIFT
    k = np.arange(top + 1, dtype=np.int64)
    centre = ((k << T_SHIFT) + (1 << (T_SHIFT - 1))).astype(np.int32).view(np.float32)
    h = -np.log(np.clip(centre.astype(np.float64), T_MIN, 1.0))
    offset, scale = _hr_bins()
    b = np.floor((np.log(np.maximum(h, _HR_MIN)) - offset) * scale)
    table = np.clip(b, 0, HR_BINS - 1).astype(np.int32)
    table.flags.writeable = False
    return table


T_BINS = _t_bins()


def lookup_tables(cal: ColourCalibration) -> dict:
    """The look-up tables of ``cal`` (fields ``lut_*``, ``hue_table`` and ``rgb_table``; see
    :class:`ColourCalibration`), from :func:`classify_direct`, :func:`_hue` and :func:`_rgb_direct`.

    Zeff is tabulated at the cells' corners (bilinear interpolation is exact along R and, the
    curves being linear in ln h within a row band, nearly so along h), K-edge capture at the
    cells' centres.
    """
    nh, nr = _LUT_H, _LUT_R
    lg = np.log(cal.h_grid)
    lut_lg = np.linspace(lg[0], lg[-1], nh)
    nxt = np.minimum(np.arange(nh) + 1, nh - 1)
    bottom = np.interp(lut_lg, lg, cal.ladder_r[0])
    top = np.interp(lut_lg, lg, cal.ladder_r[-1])
    rmin = np.minimum(bottom, bottom[nxt]).astype(np.float32)
    span = np.maximum(top, top[nxt]) - rmin.astype(np.float64)
    rscale = ((nr - 1) / np.maximum(span, 1e-9)).astype(np.float32)
    rstep = 1.0 / rscale.astype(np.float64)
    j = np.arange(nr, dtype=np.float64)

    r_nodes = rmin.astype(np.float64)[:, None] + j[None, :] * rstep[:, None]
    z_lo = _ladder_zeff(np.exp(lut_lg)[:, None], r_nodes, cal)
    z_hi = _ladder_zeff(np.exp(lut_lg[nxt])[:, None], r_nodes, cal)
    jn = np.minimum(np.arange(nr) + 1, nr - 1)
    zeff = np.stack([z_lo, z_lo[:, jn], z_hi, z_hi[:, jn]], axis=-1).astype(np.float32)

    u_centre = np.minimum(np.arange(nh) + 0.5, nh - 1)
    h_centre = np.exp(lg[0] + u_centre * (lg[-1] - lg[0]) / (nh - 1))
    r_centre = rmin.astype(np.float64)[:, None] + (j + 0.5)[None, :] * rstep[:, None]
    _, _, captured = classify_direct(h_centre[:, None], r_centre, cal)
    capture = np.where(captured >= 0, 4 + captured.astype(np.int64), 0).astype(np.uint8)

    codes = np.arange(METAL + 1 + cal.kedge_z.size)
    code_z = np.concatenate([np.zeros(METAL + 1), cal.kedge_z])  # Zeff of the captured codes
    z_bins = (np.arange(HUE_BINS) + 0.5) / HUE_PER_Z
    hue_z = np.where(codes[:, None] > METAL, code_z[:, None], z_bins[None, :])
    hue = np.rint(_hue(np.minimum(codes, METAL)[:, None], hue_z)).astype(np.uint8)

    return dict(
        lut_rmin=rmin,
        lut_rscale=rscale,
        lut_zeff=zeff.reshape(nh * nr, 4),
        lut_capture=capture.reshape(-1),
        hue_table=hue.reshape(-1),
        rgb_table=_rgb_table(cal.display),
    )


def _rgb_table(display: Display | None) -> np.ndarray:
    """``rgb_table`` (see :class:`ColourCalibration`) of a colour table (None: the standard one)."""
    offset, scale = _hr_bins()
    h_bins = np.exp(offset + (np.arange(HR_BINS) + 0.5) / scale)
    rgb = _rgb_direct(np.arange(256, dtype=np.float64)[:, None], h_bins[None, :], display)
    return np.ascontiguousarray(rgb).view("V3").reshape(-1)
