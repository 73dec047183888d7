"""Materials: elemental composition, density and X-ray attenuation.

Units: lengths mm, energies keV, densities g/cm3. Linear attenuation coefficients are in 1/mm,
mass attenuation coefficients in cm2/g. Photon cross-sections come from the Elam tables in
``xraydb`` (``mu_elam``, kind ``'total'``: photo-absorption + coherent + incoherent).

A material is defined (in the built-in ``library.yaml``, in a scene file's ``materials:``
section, or in an included materials YAML file) by a mapping::

    brine:
      composition: {water: 0.965, NaCl: 0.035}   # or  formula: C2H6O
      density: 1.023                              # g/cm3, required
      category: liquid                            # optional
      description: 3.5% salt water               # optional
      reference: CRC Handbook                     # optional
      aliases: [saline]                           # optional

Composition keys are names of materials already in the library (checked first, case-insensitive,
aliases accepted), else chemical formulas / element symbols parsed by ``xraydb.chemparse``.
Definitions are read, and libraries built, in :mod:`xraybag.materials.library`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xraydb

from xraybag.errors import XraybagError

__all__ = [
    "CATEGORIES",
    "DEF_FIELDS",
    "ENERGY_RANGE_KEV",
    "FRACTION_TOLERANCE",
    "Material",
    "MaterialDefinitionError",
    "ZEFF_EXPONENT",
    "formula_mass_fractions",
]

#: Allowed values of a material's ``category``.
CATEGORIES: tuple[str, ...] = (
    "liquid", "plastic", "textile", "paper", "wood", "food", "glass", "ceramic", "metal",
    "electronics", "tissue", "explosive", "misc",
)
#: Fields a material definition may have.
DEF_FIELDS: tuple[str, ...] = (
    "formula", "composition", "density", "category", "description", "reference", "aliases",
)
#: Mass fractions of a composition must sum to 1 within this tolerance (then normalised).
FRACTION_TOLERANCE = 1e-3
#: Exponent of the power-law effective atomic number.
ZEFF_EXPONENT = 2.94
#: Energies (keV) where the Elam tables are reliable; mu outside raises XraybagError.
ENERGY_RANGE_KEV: tuple[float, float] = (0.1, 800.0)

_AVOGADRO = 6.02214076e23  # 1/mol


class MaterialDefinitionError(XraybagError):
    """A bad material definition; ``path`` locates the offending YAML node.

    ``path`` is a tuple such as ``("materials", "brine", "composition", "Xq")`` that a caller
    holding line information can turn into a file position (then ``error.at(position)``).
    """

    def __init__(self, message: str, path: tuple[str, ...]):
        super().__init__(message)
        self.path = path


# --------------------------------------------------------------------------- elements

@functools.lru_cache(maxsize=None)
def _element_ok(symbol: str) -> bool:
    """Whether xraydb knows ``symbol`` (atomic data and Elam cross-sections)."""
    try:
        xraydb.atomic_number(symbol)
        xraydb.atomic_mass(symbol)
        xraydb.mu_elam(symbol, 50e3)
    except Exception:  # xraydb raises ValueError or IndexError for unknown elements
        return False
    return True


@functools.lru_cache(maxsize=None)
def _atomic_number(symbol: str) -> int:
    return int(xraydb.atomic_number(symbol))


@functools.lru_cache(maxsize=None)
def _atomic_mass(symbol: str) -> float:
    """Atomic mass in g/mol (xraydb's value)."""
    return float(xraydb.atomic_mass(symbol))


def formula_mass_fractions(formula: str) -> dict[str, float]:
    """Mass fractions of the elements in a chemical formula (``'C2H6O'``, ``'Ca3(PO4)2'``).

    Atomic masses are xraydb's. Raises ``ValueError`` with a short reason for anything that is
    not a formula of known elements with positive amounts.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError("empty formula")
    try:
        counts = xraydb.chemparse(formula.strip())
    except Exception as exc:  # chemparse raises ValueError with a multi-line caret message
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else "cannot parse"
        raise ValueError(reason) from None
    if not counts:
        raise ValueError("no elements")
    for symbol, count in counts.items():
        if not _element_ok(symbol):
            raise ValueError(f"unknown element '{symbol}'")
        if not count > 0:
            raise ValueError(f"amount of '{symbol}' must be > 0")
    masses = {s: float(n) * _atomic_mass(s) for s, n in counts.items()}
    total = sum(masses.values())
    return {s: m / total for s, m in masses.items()}


# --------------------------------------------------------------------------- attenuation

def _energy_grid(energies_kev: Any) -> np.ndarray:
    """Energies (keV) as a float64 array, checked to be finite and in ENERGY_RANGE_KEV."""
    grid = np.asarray(energies_kev, dtype=np.float64)
    if grid.size == 0:
        return grid
    low, high = ENERGY_RANGE_KEV
    if not np.all(np.isfinite(grid)) or grid.min() < low or grid.max() > high:
        raise XraybagError(
            f"photon energies must be finite and within {low:g}-{high:g} keV "
            f"(got {grid.min():g}-{grid.max():g} keV)"
        )
    return grid


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


#: Grids with more points than this are computed without caching.
_MAX_CACHED_GRID = 1 << 16


@functools.lru_cache(maxsize=4096)
def _element_mass_mu(symbol: str, grid_bytes: bytes) -> np.ndarray:
    """Total mass attenuation (cm2/g) of one element on a flat float64 grid (keV) given as bytes."""
    return _read_only(_element_mass_mu_uncached(symbol, np.frombuffer(grid_bytes, np.float64)))


def _element_mass_mu_uncached(symbol: str, energies_kev: np.ndarray) -> np.ndarray:
    values = xraydb.mu_elam(symbol, energies_kev * 1e3, kind="total")
    return np.asarray(values, dtype=np.float64).reshape(energies_kev.shape)


@functools.lru_cache(maxsize=2048)
def _mixture_mass_mu(fractions: tuple[tuple[str, float], ...], grid_bytes: bytes) -> np.ndarray:
    """Mass-fraction weighted total mass attenuation (cm2/g) on a flat grid given as bytes."""
    out = np.zeros(len(grid_bytes) // 8, dtype=np.float64)
    for symbol, fraction in fractions:
        out += fraction * _element_mass_mu(symbol, grid_bytes)
    return _read_only(out)


@functools.lru_cache(maxsize=2048)
def _mixture_mu(fractions: tuple[tuple[str, float], ...], density: float,
                grid_bytes: bytes) -> np.ndarray:
    """Linear attenuation (1/mm) = mass attenuation (cm2/g) x density (g/cm3) / 10."""
    return _read_only(_mixture_mass_mu(fractions, grid_bytes) * (density / 10.0))


def _attenuation(fractions: tuple[tuple[str, float], ...], density: float | None,
                 energies_kev: Any) -> np.ndarray:
    """Read-only mu (1/mm), or mu/rho (cm2/g) when ``density`` is None, in the input's shape."""
    grid = _energy_grid(energies_kev)
    flat = np.ascontiguousarray(grid.ravel())
    if flat.size == 0:
        values = np.zeros(0)
    elif flat.size <= _MAX_CACHED_GRID:
        key = flat.tobytes()
        values = (_mixture_mass_mu(fractions, key) if density is None
                  else _mixture_mu(fractions, density, key))
    else:
        values = sum(w * _element_mass_mu_uncached(s, flat) for s, w in fractions)
        values = values if density is None else values * (density / 10.0)
    return _read_only(values.reshape(grid.shape))


# --------------------------------------------------------------------------- Material

@dataclass(frozen=True)
class Material:
    """A homogeneous material.

    Attributes:
        name: canonical name (lookups are case-insensitive).
        density: g/cm3, > 0.
        mass_fractions: element symbol -> mass fraction; normalised to sum to 1 and ordered by
            atomic number on construction.
        formula: chemical formula the material was defined by, or ``None`` for a composition.
        category: one of :data:`CATEGORIES`.
        description: short free text.
        reference: source of the density / composition.
        aliases: other names the material can be looked up by.
    """

    name: str
    density: float
    mass_fractions: dict[str, float]
    formula: str | None = None
    category: str = "misc"
    description: str = ""
    reference: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("material name must be a non-empty string")
        density = float(self.density)
        if not (math.isfinite(density) and density > 0):
            raise ValueError(f"material {self.name!r}: density must be > 0 g/cm3")
        if self.category not in CATEGORIES:
            raise ValueError(f"material {self.name!r}: unknown category {self.category!r}")
        fractions = {str(s): float(f) for s, f in dict(self.mass_fractions).items() if f != 0}
        for symbol, fraction in fractions.items():
            if not _element_ok(symbol):
                raise ValueError(f"material {self.name!r}: unknown element {symbol!r}")
            if not (math.isfinite(fraction) and fraction > 0):
                raise ValueError(f"material {self.name!r}: mass fraction of {symbol} must be > 0")
        total = sum(fractions.values())
        if not fractions or abs(total - 1.0) > FRACTION_TOLERANCE:
            raise ValueError(f"material {self.name!r}: mass fractions sum to {total:g}, not 1")
        ordered = sorted(fractions, key=_atomic_number)
        object.__setattr__(self, "density", density)
        object.__setattr__(self, "mass_fractions", {s: fractions[s] / total for s in ordered})
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def __hash__(self) -> int:
        return hash((self.name, self.density, self._fractions_key))

    @classmethod
    def from_formula(cls, name: str, formula: str, density: float, **fields: Any) -> "Material":
        """A material from a chemical formula (``ValueError`` if it does not parse)."""
        return cls(name, density, formula_mass_fractions(formula), formula=formula, **fields)

    # -- attenuation ------------------------------------------------------------------------

    @functools.cached_property
    def _fractions_key(self) -> tuple[tuple[str, float], ...]:
        return tuple(self.mass_fractions.items())

    def mass_mu(self, energies_kev: Any) -> np.ndarray:
        """Total mass attenuation coefficient mu/rho in cm2/g at ``energies_kev`` (keV).

        Vectorised: returns a read-only float64 array of the input's shape (0-d for a scalar).
        """
        return _attenuation(self._fractions_key, None, energies_kev)

    def mu(self, energies_kev: Any) -> np.ndarray:
        """Total linear attenuation coefficient in 1/mm at ``energies_kev`` (keV).

        ``mu = density * sum_i w_i (mu/rho)_i / 10`` with Elam total cross-sections (coherent
        scattering included). Returns a read-only float64 array of the input's shape; results
        are cached per (composition, density, energy grid).
        """
        return _attenuation(self._fractions_key, self.density, energies_kev)

    # -- electronic properties ----------------------------------------------------------------

    @functools.cached_property
    def _electrons_per_gram_mol(self) -> dict[str, float]:
        """Z_i w_i / A_i per element (mol electrons per gram)."""
        return {s: _atomic_number(s) * w / _atomic_mass(s) for s, w in self.mass_fractions.items()}

    @functools.cached_property
    def zeff(self) -> float:
        """Power-law effective atomic number: ``(sum_i f_i Z_i^2.94)^(1/2.94)``.

        ``f_i`` is the fraction of the material's electrons belonging to element ``i``.
        """
        per_element = self._electrons_per_gram_mol
        total = sum(per_element.values())
        acc = sum(n / total * _atomic_number(s) ** ZEFF_EXPONENT
                  for s, n in per_element.items())
        return acc ** (1.0 / ZEFF_EXPONENT)

    @functools.cached_property
    def electron_density(self) -> float:
        """Electrons per cm3: ``N_A * density * sum_i w_i Z_i / A_i``."""
        return _AVOGADRO * self.density * sum(self._electrons_per_gram_mol.values())

    @property
    def relative_electron_density(self) -> float:
        """Electron density relative to water (H2O at 1.0 g/cm3, 3.343e23 electrons/cm3)."""
        return self.electron_density / _water_electron_density()

    def short_composition(self, count: int = 3) -> str:
        """The formula, or the ``count`` largest mass fractions, e.g. ``'Fe 0.70, Cr 0.19, ...'``."""
        if self.formula:
            return self.formula
        items = sorted(self.mass_fractions.items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{s} {w:.3g}" for s, w in items[:count])
        return text + (", ..." if len(items) > count else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no attenuation values)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "category": self.category,
            "description": self.description,
            "reference": self.reference,
            "formula": self.formula,
            "density": self.density,
            "mass_fractions": dict(self.mass_fractions),
            "zeff": self.zeff,
            "electron_density": self.electron_density,
            "relative_electron_density": self.relative_electron_density,
        }


@functools.lru_cache(maxsize=None)
def _water_electron_density() -> float:
    return Material.from_formula("water", "H2O", 1.0).electron_density
