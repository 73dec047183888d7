"""The catalog's registry: parameter specs, entries, and sampling an entry into an object spec."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from xraybag.errors import XraybagError
from xraybag.scenes.numbers import Bounds, Dist, parse_dist


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its default (a number, a name, or a distribution mapping), bounds and doc."""

    default: Any
    unit: str = "mm"
    doc: str = ""
    bounds: Bounds = Bounds(gt=0)
    kind: str = "number"  # number | integer | flag | material

    def parse(self, v: Any) -> Any:
        """A fixed value or a :class:`Dist`; ``ValueError`` with a one-line message if invalid."""
        if self.kind == "material":
            d = parse_dist(v, Bounds(), "a material name", strings=True)
            if d is not None:
                if not all(isinstance(a, str) for a in d.args):
                    raise ValueError(f"choice: expected material names, got {list(d.args)!r}")
                return d
            if not isinstance(v, str):
                raise ValueError(f"expected a material name, got {v!r}")
            return v
        d = parse_dist(v, self.bounds, self.bounds.describe())
        if d is not None:
            return d
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not self.bounds.ok(v):
            raise ValueError(f"expected {self.bounds.describe()}, got {v!r}")
        return int(v) if self.bounds.integer else float(v)

    def draw(self, v: Any, rng: np.random.Generator) -> Any:
        p = self.parse(v)
        return p.draw(rng) if isinstance(p, Dist) else p

    def materials(self, v: Any = None) -> list[str]:
        """Material names this parameter can take (for load-time checks)."""
        if self.kind != "material":
            return []
        p = self.parse(self.default if v is None else v)
        return [str(a) for a in p.args] if isinstance(p, Dist) else [p]

    def describe_default(self) -> str:
        d = self.default
        if isinstance(d, dict):
            kind = next(k for k in d if k != "weights")
            args = d[kind]
            if kind == "choice":
                w = d.get("weights")
                if w is not None:
                    return "one of " + ", ".join(f"{a} ({x:g})" for a, x in zip(args, w))
                return "one of " + ", ".join(str(a) for a in args)
            return f"{kind} [{', '.join(f'{a:g}' for a in args)}]"
        return f"{d:g}" if isinstance(d, (int, float)) else str(d)


def num(default: Any, doc: str = "", unit: str = "mm", **bounds: Any) -> ParamSpec:
    """A length (or other positive number) parameter; ``bounds`` as :class:`Bounds`."""
    return ParamSpec(default, unit, doc, Bounds(**bounds) if bounds else Bounds(gt=0))


def frac(default: Any, doc: str = "") -> ParamSpec:
    return ParamSpec(default, "", doc, Bounds(gt=0, le=1))


def count(default: Any, doc: str = "", ge: int = 1) -> ParamSpec:
    return ParamSpec(default, "", doc, Bounds(ge=ge, integer=True), "integer")


def flag(p_true: float, doc: str = "") -> ParamSpec:
    """A yes/no parameter: 1 or 0, drawn as 1 with probability ``p_true``."""
    d = {"choice": [0, 1], "weights": [round(1 - p_true, 6), p_true]}
    return ParamSpec(d, "", doc, Bounds(ge=0, le=1, integer=True), "flag")


def mat(choices: list[str] | str, doc: str = "", weights: list[float] | None = None) -> ParamSpec:
    if isinstance(choices, str):
        return ParamSpec(choices, "", doc, Bounds(), "material")
    d: dict = {"choice": list(choices)}
    if weights is not None:
        d["weights"] = list(weights)
    return ParamSpec(d, "", doc, Bounds(), "material")


def U(a: float, b: float) -> dict:
    return {"uniform": [a, b]}


@dataclass
class CatalogEntry:
    """A parametric object type."""

    name: str
    label: str | None
    description: str
    params: dict[str, ParamSpec]
    build: Callable[[dict[str, Any], np.random.Generator], dict]
    family: str = ""

    def check_params(self, given: dict[str, Any], where: Callable[[str], str | None] | None = None) -> None:
        """Raise :class:`XraybagError` for an unknown parameter or a malformed value."""
        for key, v in given.items():
            if key not in self.params:
                raise unknown_param(key, list(self.params), where)
            try:
                self.params[key].parse(v)
            except ValueError as e:
                raise XraybagError(str(e), where(key) if where else f"params.{key}") from None

    def draw_params(
        self, given: dict[str, Any] | None, rng: np.random.Generator,
        where: Callable[[str], str | None] | None = None,
    ) -> dict[str, Any]:
        """Every parameter fixed: the given value or distribution, else the default's draw."""
        given = dict(given or {})
        self.check_params(given, where)
        return {n: spec.draw(given.get(n, spec.default), rng) for n, spec in self.params.items()}

    def sample(
        self, given: dict[str, Any] | None, rng: np.random.Generator,
        where: Callable[[str], str | None] | None = None,
    ) -> dict:
        """One sample: a plain object-spec dict (with the entry's label, if any)."""
        p = self.draw_params(given, rng, where)
        data = self.build(p, rng)
        if self.label is not None:
            data.setdefault("label", self.label)
        return data


def unknown_param(key: str, known: list[str], where: Callable[[str], str | None] | None) -> XraybagError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
    return XraybagError(f"unknown parameter{hint}", where(key) if where else f"params.{key}")


CATALOG: dict[str, CatalogEntry] = {}


def register(name: str, label: str | None, description: str, params: dict[str, ParamSpec], family: str = ""):
    """Decorator: add ``build(params, rng) -> dict`` to :data:`CATALOG` as ``name``."""

    def deco(fn: Callable[[dict[str, Any], np.random.Generator], dict]):
        if name in CATALOG:
            raise ValueError(f"duplicate catalog entry {name!r}")
        CATALOG[name] = CatalogEntry(name, label, description, params, fn, family)
        return fn

    return deco


def get_entry(name: str) -> CatalogEntry:
    try:
        return CATALOG[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(CATALOG), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise XraybagError(f"no catalog entry {name!r}{hint}; see 'xraybag catalog list'") from None


def sample_object(name: str, seed: int = 0, params: dict[str, Any] | None = None) -> dict:
    """One sample of entry ``name`` as a plain object dict (named, labelled, no pose)."""
    entry = get_entry(name)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0, 0]))
    data = entry.sample(params, rng)
    data["name"] = name
    return data


def object_scene(data: dict, size: float = 1000.0):
    """A concrete :class:`~xraybag.scenes.models.Scene` holding the object dict ``data`` posed at
    the centre of an empty bag without walls (for export and checks)."""
    from xraybag.scenes.models import Scene

    obj = dict(data)
    obj.setdefault("pose", {"position": [0.0, 0.0, size / 2], "rotation_deg": [0.0, 0.0, 0.0]})
    return Scene.model_validate(
        {"bag": {"size": [size, size, size], "wall": {"thickness": 0}}, "objects": [obj]}
    )


def labels() -> list[str]:
    return sorted({e.label for e in CATALOG.values() if e.label})
