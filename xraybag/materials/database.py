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
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
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
    "MaterialLibrary",
    "ZEFF_EXPONENT",
    "default_library",
    "formula_mass_fractions",
    "load_library_file",
    "material_from_def",
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
_LIBRARY_FILE = "library.yaml"


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


# --------------------------------------------------------------------------- definitions

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_field(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MaterialDefinitionError(f"materials.{name}.{key}: must be a string",
                                      ("materials", name, key))
    return value.strip()


def material_from_def(name: str, definition: Mapping[str, Any], library: "MaterialLibrary",
                      source: str | None = None) -> Material:
    """Build a :class:`Material` from one definition mapping (see the module docstring).

    Composition keys are resolved against ``library``. ``source`` (e.g. a file name) goes into
    the default ``reference``. Raises :class:`MaterialDefinitionError` naming the field.
    """
    if not isinstance(name, str) or not name.strip() or re.search(r"\s", name.strip()):
        raise MaterialDefinitionError(
            f"materials: material name {name!r} must be a non-empty string without spaces",
            ("materials", str(name)))
    name = name.strip()
    where = f"materials.{name}"
    path = ("materials", name)
    if not isinstance(definition, Mapping):
        raise MaterialDefinitionError(
            f"{where}: must be a mapping with 'formula' or 'composition' and 'density'", path)
    for key in definition:
        if key not in DEF_FIELDS:
            close = difflib.get_close_matches(str(key), DEF_FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise MaterialDefinitionError(f"{where}: unknown field '{key}'{hint}",
                                          path + (str(key),))

    has_formula, has_comp = "formula" in definition, "composition" in definition
    if has_formula == has_comp:
        raise MaterialDefinitionError(
            f"{where}: give exactly one of 'formula' or 'composition'", path)

    if "density" not in definition:
        raise MaterialDefinitionError(f"{where}.density: missing (g/cm3, required)",
                                      path + ("density",))
    density = definition["density"]
    if not _is_number(density) or not math.isfinite(density) or density <= 0:
        raise MaterialDefinitionError(
            f"{where}.density: must be a number > 0 (g/cm3), got {density!r}", path + ("density",))

    formula = None
    if has_formula:
        formula = definition["formula"]
        if not isinstance(formula, str):
            raise MaterialDefinitionError(f"{where}.formula: must be a string, got {formula!r}",
                                          path + ("formula",))
        formula = formula.strip()
        try:
            fractions = formula_mass_fractions(formula)
        except ValueError as exc:
            hint = (f"; for the material write composition: {{{formula}: 1.0}}"
                    if formula in library else "")
            raise MaterialDefinitionError(
                f"{where}.formula: '{formula}' is not a chemical formula ({exc}){hint}",
                path + ("formula",)) from None
    else:
        fractions = _composition_fractions(where, path, definition["composition"], library)

    category = definition.get("category", "misc")
    if category not in CATEGORIES:
        close = difflib.get_close_matches(str(category), CATEGORIES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (one of: {', '.join(CATEGORIES)})"
        raise MaterialDefinitionError(f"{where}.category: unknown category {category!r}{hint}",
                                      path + ("category",))
    description = _text_field(name, "description", definition.get("description", ""))
    default_ref = f"user-defined ({source})" if source else "user-defined"
    reference = _text_field(name, "reference", definition.get("reference", default_ref))

    aliases = definition.get("aliases", ())
    if isinstance(aliases, str):
        aliases = (aliases,)
    if not isinstance(aliases, (list, tuple)) or not all(
            isinstance(a, str) and a.strip() and not re.search(r"\s", a.strip()) for a in aliases):
        raise MaterialDefinitionError(
            f"{where}.aliases: must be a list of names without spaces", path + ("aliases",))

    return Material(name=name, density=float(density), mass_fractions=fractions, formula=formula,
                    category=category, description=description, reference=reference,
                    aliases=tuple(a.strip() for a in aliases))


def _composition_fractions(where: str, path: tuple[str, ...], composition: Any,
                           library: "MaterialLibrary") -> dict[str, float]:
    """Element mass fractions of a ``composition`` mapping (component -> mass fraction)."""
    where, path = f"{where}.composition", path + ("composition",)
    if not isinstance(composition, Mapping) or not composition:
        raise MaterialDefinitionError(
            f"{where}: must be a non-empty mapping of component -> mass fraction", path)
    weights: dict[str, float] = {}
    total = 0.0
    for component, weight in composition.items():
        key_path = path + (str(component),)
        if not isinstance(component, str):
            raise MaterialDefinitionError(f"{where}: component {component!r} must be a string",
                                          key_path)
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            raise MaterialDefinitionError(
                f"{where}: mass fraction of '{component}' must be a number >= 0, got {weight!r}",
                key_path)
        if component in library:
            parts = library.get(component).mass_fractions
        else:
            try:
                parts = formula_mass_fractions(component)
            except ValueError:
                raise MaterialDefinitionError(
                    f"{where}: '{component}' is neither a material nor a chemical formula",
                    key_path) from None
        for symbol, fraction in parts.items():
            weights[symbol] = weights.get(symbol, 0.0) + weight * fraction
        total += weight
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise MaterialDefinitionError(
            f"{where}: mass fractions sum to {total:.6g}, not 1 (tolerance {FRACTION_TOLERANCE:g})",
            path)
    return {s: w / total for s, w in weights.items() if w > 0}


# --------------------------------------------------------------------------- library

class MaterialLibrary:
    """An immutable collection of materials, looked up by case-insensitive name or alias.

    Adding materials (:meth:`with_materials`) returns a new library. A new material takes over
    its name and aliases (compared case-folded); one whose name is an existing material's name
    replaces that material under all of its aliases too, while one named like an existing alias
    takes over only that alias.
    """

    def __init__(self, materials: Iterable[Material] = ()):
        self._by_key: dict[str, Material] = {}   # case-folded name or alias -> material
        self._display: dict[str, str] = {}        # case-folded key -> key as written
        for material in materials:
            self._add(material)

    def _add(self, material: Material) -> None:
        replaced = self._by_key.get(material.name.casefold())
        if replaced is not None and replaced.name.casefold() == material.name.casefold():
            # Redefining a material replaces it under its name and all its aliases.
            for key, old in self._by_key.items():
                if old is replaced:
                    self._by_key[key] = material
        for key in (material.name, *material.aliases):
            self._by_key[key.casefold()] = material
            self._display[key.casefold()] = key

    def get(self, name: str) -> Material:
        """The material called ``name`` (case-insensitive; aliases accepted).

        Raises :class:`XraybagError` ``unknown material 'xyz' (did you mean 'abc'?)``.
        """
        material = self._by_key.get(name.strip().casefold()) if isinstance(name, str) else None
        if material is None:
            close = difflib.get_close_matches(str(name).strip().casefold(), self._by_key, n=1)
            hint = f" (did you mean '{self._display[close[0]]}'?)" if close else ""
            raise XraybagError(f"unknown material '{name}'{hint}")
        return material

    def names(self) -> list[str]:
        """Sorted canonical names of the materials reachable by their own name."""
        return sorted(m.name for key, m in self._by_key.items() if key == m.name.casefold())

    def materials(self) -> list[Material]:
        """The materials of :meth:`names`, in that order."""
        return [self.get(name) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().casefold() in self._by_key

    def __iter__(self) -> Iterator[str]:
        """Iterate over :meth:`names` (canonical names, sorted)."""
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"MaterialLibrary({len(self)} materials)"

    def with_materials(self, defs: Mapping[str, Mapping[str, Any]],
                       source: str | None = None) -> "MaterialLibrary":
        """A new library with the materials of ``defs`` (name -> definition) added in order.

        Later definitions may use earlier ones in their composition; user materials may
        shadow built-ins. ``source`` (e.g. a file name) becomes part of the default reference.
        Raises :class:`MaterialDefinitionError` (an :class:`XraybagError`) for a bad definition.
        """
        if not isinstance(defs, Mapping):
            raise MaterialDefinitionError(
                "materials: must be a mapping of material name -> definition", ("materials",))
        new = MaterialLibrary()
        new._by_key, new._display = dict(self._by_key), dict(self._display)
        for name, definition in defs.items():
            new._add(material_from_def(name, definition, new, source))
        return new


# --------------------------------------------------------------------------- loading

def _yaml_position(exc: Exception) -> str | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"{mark.line + 1}:{mark.column + 1}" if mark is not None else None


def _parse_materials_yaml(text: str, where: str) -> dict[str, Any]:
    """The ``materials`` mapping of a materials YAML document (safe loader, no code execution)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        position = _yaml_position(exc)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise XraybagError(f"invalid YAML: {problem}",
                           f"{where}:{position}" if position else where) from None
    if not isinstance(data, dict) or "materials" not in data:
        raise XraybagError("a materials file must be a mapping with a top-level 'materials:' key",
                           where)
    extra = sorted(str(k) for k in data if k != "materials")
    if extra:
        raise XraybagError(f"unknown top-level key '{extra[0]}' (a materials file has only "
                           "'materials:')", where)
    defs = data["materials"]
    if not isinstance(defs, dict):
        raise XraybagError("materials: must be a mapping of material name -> definition", where)
    return defs


def load_library_file(path: str | PathLike[str]) -> dict[str, Any]:
    """Read a materials YAML file (``materials: {name: definition}``) and return the defs.

    Pass the result to :meth:`MaterialLibrary.with_materials`. Raises :class:`XraybagError`
    (placed at the file, or file:line:column for YAML syntax errors).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise XraybagError(f"cannot read materials file: {exc.strerror or exc}",
                           str(path)) from None
    return _parse_materials_yaml(text, str(path))


@functools.lru_cache(maxsize=1)
def default_library() -> MaterialLibrary:
    """The built-in material library (``xraybag/materials/library.yaml``), loaded once."""
    text = resources.files("xraybag.materials").joinpath(_LIBRARY_FILE).read_text("utf-8")
    defs = _parse_materials_yaml(text, _LIBRARY_FILE)
    try:
        return MaterialLibrary().with_materials(defs, source=_LIBRARY_FILE)
    except XraybagError as exc:
        raise exc.at(_LIBRARY_FILE)
