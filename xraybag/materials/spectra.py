"""Source spectra on a discrete energy grid.

A :class:`~xraybag.scenes.models.Spectrum` becomes two arrays: bin-centre energies (keV) and the
photons in each bin. Units depend on the source kind:

* ``kvp``: photons per mm2 per bin per mAs at 1 m from the focal spot (spekpy's fluence, converted
  from photons/cm2/mAs at 100 cm). Tube filters are applied: element symbols (``Al``, ``Cu``, ``Sn``
  ...) by spekpy itself, other names (materials of our library) by multiplying by
  ``exp(-mu(E) t)``.
* ``mono_kev``: one line with weight 1 (relative photons).
* ``table``: the user's rows, normalised to relative photons summing to 1.

Filtration is applied to monochromatic and table sources too (as ``exp(-mu(E) t)``; element
symbols then use xraydb's elemental attenuation at the element's nominal density).

:func:`photons_per_pixel` turns the spectrum into expected open-beam photons per detector pixel
and bin, which is what the detector model needs. spekpy is imported lazily (it is slow to import and
takes ~0.3 s per spectrum, so spectra are cached).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError

#: Bins below this energy (keV) are dropped: nothing that low crosses a tube window and a bag.
E_MIN_KEV = 5.0
#: Bins holding less than this fraction of all photons are dropped to keep the grid short.
NEGLIGIBLE = 1e-9
#: Tube charge per image row (line scan) or exposure (radiograph) when neither ``mas`` nor
#: ``photons`` is given: a 1 mA tube and a 5 ms row (1 mm pitch at 0.2 m/s belt speed).
DEFAULT_MAS = 0.005
#: Open-beam photons per pixel for ``mono_kev`` and ``table`` sources without ``photons``
#: (before filtration).
DEFAULT_PHOTONS = 1e5


@lru_cache(maxsize=1)
def element_symbols() -> frozenset[str]:
    """Chemical symbols H..U (case-sensitive): filter names that spekpy handles itself."""
    import xraydb

    return frozenset(xraydb.atomic_symbol(z) for z in range(1, 93))


#: The folder where spekpy's spectra are kept (see :func:`spectra_folder`): a spectrum found there
#: for the same arguments is read instead of asking spekpy again (about 0.9 s for the first one a
#: process makes, spekpy's import included), and one spekpy makes is written there. Set it to a
#: folder to record spectra for a machine without spekpy (a GPU host: it replays the same
#: numbers), or to an empty string to keep none.
SPECTRA_DIR_ENV = "XRAYBAG_SPECTRA_DIR"


def cache_folder(env: str, name: str) -> Path | None:
    """A folder of records kept between runs: ``$env`` if set (None when it is empty: none kept),
    else ``xraybag/name`` in the user's cache folder (``$XDG_CACHE_HOME``, or ``~/.cache``)."""
    value = os.environ.get(env)
    if value is not None:
        return Path(value) if value else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xraybag" / name


def spectra_folder() -> Path | None:
    """Where spekpy's spectra are kept: ``$XRAYBAG_SPECTRA_DIR`` if set (None when it is empty:
    no cache), else ``xraybag/spectra`` in the user's cache folder (``$XDG_CACHE_HOME``, or
    ``~/.cache``)."""
    return cache_folder(SPECTRA_DIR_ENV, "spectra")


def _spekpy_version() -> str | None:
    """spekpy's installed version (without importing it), or None where it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spekpy")
    except PackageNotFoundError:
        return None


def _read_recorded(kvp: float, th: float, dk: float, filters: tuple[tuple[str, float], ...]):
    """``(path to record at or None, the arguments as JSON, recorded (k, photons) or None)``. A
    record is taken only if its arguments are these and its spekpy version is the installed one
    (any version where spekpy is not installed: the replay case); an unreadable one is ignored."""
    args = json.dumps([float(kvp), float(th), float(dk), [[n, float(mm)] for n, mm in filters]])
    folder = spectra_folder()
    if folder is None:
        return None, args, None
    stem = f"spekpy-{hashlib.sha256(args.encode()).hexdigest()[:20]}"
    version = _spekpy_version()
    path = folder / f"{stem}-{version}.npz"
    candidates = [path] if version is not None else sorted(folder.glob(f"{stem}-*.npz"))
    for candidate in candidates:
        try:
            with np.load(candidate) as rec:
                if str(rec["args"]) == args and rec["k"].shape == rec["photons"].shape:
                    k, photons = rec["k"].astype(np.float64), rec["photons"].astype(np.float64)
                    k.flags.writeable = False
                    photons.flags.writeable = False
                    return path, args, (k, photons)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, or not ours
            continue
    return path, args, None


@lru_cache(maxsize=64)
def _spekpy_spectrum(
    kvp: float, th: float, dk: float, filters: tuple[tuple[str, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (keV) and photons per mm2 per bin per mAs at 1 m, read-only arrays: from the
    spectra folder (:func:`spectra_folder`) when spekpy made them before, else from spekpy (and
    then recorded there; a folder that cannot be written is passed over)."""
    path, args, recorded = _read_recorded(kvp, th, dk, filters)
    if recorded is not None:
        return recorded
    k, photons = _spekpy_make(kvp, th, dk, filters)
    if path is not None:
        from xraybag.engine.output.files import write_atomic

        buf = io.BytesIO()
        np.savez(buf, k=k, photons=photons, args=np.array(args))
        try:
            write_atomic(path, buf.getvalue())
        except OSError:  # a read-only or full cache: spectra are then made each time
            pass
    return k, photons


def _spekpy_make(
    kvp: float, th: float, dk: float, filters: tuple[tuple[str, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_spekpy_spectrum` from spekpy itself."""
    import spekpy

    try:
        s = spekpy.Spek(kvp=kvp, th=th, dk=dk)
        for symbol, mm in filters:
            if mm > 0:
                s.filter(symbol, mm)
        k, flu = s.get_spectrum(diff=False)  # photons / cm2 / bin, per mAs at 100 cm
    except Exception as exc:  # spekpy raises bare Exceptions and IndexErrors on bad input
        raise XraybagError(
            f"spectrum: spekpy cannot make kvp={kvp:g}, anode_angle={th:g}, energy_bin={dk:g}: {exc}"
        ) from None
    k = np.asarray(k, dtype=np.float64).copy()
    photons = np.asarray(flu, dtype=np.float64) / 100.0  # per mm2
    k.flags.writeable = False
    photons.flags.writeable = False
    return k, photons


def _filter_transmission(name: str, mm: float, energies: np.ndarray, library) -> np.ndarray:
    """exp(-mu(E) t) of a filter: an element symbol (xraydb, nominal density) or a library name."""
    if name in element_symbols():
        import xraydb

        rho = xraydb.atomic_density(name)
        mu = xraydb.mu_elam(name, energies * 1000.0) * rho / 10.0  # 1/mm
    else:
        if library is None:
            raise XraybagError(
                f"spectrum: filter {name!r} is not an element symbol and no library was given"
            )
        mu = np.asarray(library.get(name).mu(energies), dtype=np.float64)
    return np.exp(-mu * mm)


def energy_grid_and_photons(spec, library) -> tuple[np.ndarray, np.ndarray]:
    """Energies (keV, bin centres) and photons per bin of a spectrum.

    ``kvp``: photons per mm2 per bin per mAs at 1 m; ``mono_kev`` and ``table``: relative photons
    (summing to 1 before filtration). Bins below :data:`E_MIN_KEV` or holding less than
    :data:`NEGLIGIBLE` of all photons are dropped. ``library`` resolves filter names that are not
    element symbols. Returns new (writable) float64 arrays.
    """
    filtration = {k: float(v) for k, v in spec.filtration.items() if v > 0}
    symbols = element_symbols()
    if spec.kvp is not None:
        elem = tuple(sorted((k, v) for k, v in filtration.items() if k in symbols))
        other = {k: v for k, v in filtration.items() if k not in symbols}
        k, photons = _spekpy_spectrum(
            float(spec.kvp), float(spec.anode_angle), float(spec.energy_bin), elem
        )
        keep = k >= E_MIN_KEV
        energies, photons = k[keep].copy(), photons[keep].copy()
    else:
        if spec.mono_kev is not None:
            energies = np.array([float(spec.mono_kev)])
            photons = np.array([1.0])
        else:
            rows = np.asarray(spec.table, dtype=np.float64).reshape(-1, 2)
            order = np.argsort(rows[:, 0], kind="stable")
            energies, photons = rows[order, 0].copy(), rows[order, 1].copy()
            total = photons.sum()
            if not total > 0:
                raise XraybagError("spectrum: table: all photon weights are zero")
            photons /= total
        other = filtration
    for name, mm in sorted(other.items()):
        photons = photons * _filter_transmission(name, mm, energies, library)
    total = photons.sum()
    if not total > 0:
        raise XraybagError(
            f"spectrum: no photons above {E_MIN_KEV:g} keV are left after the filtration"
        )
    keep = photons >= NEGLIGIBLE * total
    return energies[keep], photons[keep]


def exposure_scale(spec, pixel_area_mm2: float, distance_mm: float) -> float:
    """Factor from :func:`energy_grid_and_photons`' units to photons per pixel (``photons`` unset).

    ``kvp``: mAs * pixel area (mm2) * (1000 mm / distance)^2 (inverse square law), with
    :data:`DEFAULT_MAS` when ``mas`` is unset; ``mono_kev``/``table``: :data:`DEFAULT_PHOTONS`.
    """
    if spec.kvp is not None:
        mas = DEFAULT_MAS if spec.mas is None else float(spec.mas)
        return mas * float(pixel_area_mm2) * (1000.0 / float(distance_mm)) ** 2
    return DEFAULT_PHOTONS


def photons_per_pixel(
    spec, library, pixel_area_mm2: float, distance_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Energies (keV) and expected open-beam photons per detector pixel in each bin.

    ``distance_mm`` is the source-to-detector distance and ``pixel_area_mm2`` the pixel's area
    seen from the source. When ``spec.photons`` is set the spectrum is scaled so that the photons
    sum to it exactly.
    """
    energies, photons = energy_grid_and_photons(spec, library)
    if spec.photons is not None:
        photons = photons * (float(spec.photons) / photons.sum())
    else:
        photons = photons * exposure_scale(spec, pixel_area_mm2, distance_mm)
    return energies, photons


def open_beam_photons(
    spec, pixel_area_mm2: float, distance_mm: float, library=None
) -> float:
    """Expected open-beam photons per pixel (all energies together).

    ``spec.photons`` when given; otherwise sum(photons) * mAs * area * (1000/distance)^2 for tube
    spectra, or :data:`DEFAULT_PHOTONS` times the filter transmission for mono/table sources.
    ``library`` is needed only when the filtration names materials of the library.
    """
    if spec.photons is not None:
        return float(spec.photons)
    return float(photons_per_pixel(spec, library, pixel_area_mm2, distance_mm)[1].sum())


def mean_energy(energies: np.ndarray, photons: np.ndarray) -> float:
    """Photon-weighted mean energy (keV)."""
    return float(np.sum(energies * photons) / np.sum(photons))
