"""Material libraries: definitions read from YAML into :class:`~.database.Material` objects.

:func:`material_from_def` checks one definition (its format: :mod:`xraybag.materials.database`),
:class:`MaterialLibrary` holds materials by name and alias, :func:`load_library_file` reads a
materials YAML file and :func:`default_library` is the built-in ``library.yaml``.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from xraybag.errors import XraybagError
from xraybag.materials.database import (
    CATEGORIES,
    DEF_FIELDS,
    FRACTION_TOLERANCE,
    Material,
    MaterialDefinitionError,
    formula_mass_fractions,
)

__all__ = ["MaterialLibrary", "default_library", "load_library_file", "material_from_def"]

_LIBRARY_FILE = "library.yaml"


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
    return _materials_of(data, where)


def _parse_builtin_yaml(text: str) -> dict[str, Any]:
    """The built-in ``library.yaml`` through libyaml (PyYAML's C safe loader, where PyYAML was
    built with it): 9 ms instead of ruamel's 180 ms in pure Python, a twentieth of a render's
    start-up. ruamel reads YAML 1.2 and PyYAML 1.1; the built-in file reads the same in both
    (``tests/test_materials.py`` checks it), a user's file is read by ruamel only."""
    import yaml

    return _materials_of(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)),
                         _LIBRARY_FILE)


def _materials_of(data: Any, where: str) -> dict[str, Any]:
    """The ``materials`` mapping of a parsed materials document."""
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
    defs = _parse_builtin_yaml(text)
    try:
        return MaterialLibrary().with_materials(defs, source=_LIBRARY_FILE)
    except XraybagError as exc:
        raise exc.at(_LIBRARY_FILE)
