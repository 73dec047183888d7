"""Numbers that may be distributions.

Anywhere a scene file takes a number it may instead give a distribution:

- ``{uniform: [a, b]}``: a real number drawn uniformly from [a, b];
- ``{normal: [mean, std]}``: a normal draw (truncated to the field's allowed range);
- ``{uniform_int: [a, b]}``: an integer drawn uniformly from a..b, both included;
- ``{choice: [v1, v2, ...], weights: [w1, w2, ...]}``: one of the values (weights optional).

:func:`number` builds the pydantic type of such a field with its bounds; the bounds are checked
against literal numbers at load time, against the support of ``uniform``/``uniform_int``/``choice``
at load time too, and ``normal`` draws are redrawn until they fall inside (see :meth:`Dist.draw`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

KINDS = ("uniform", "normal", "uniform_int", "choice")


@dataclass(frozen=True)
class Bounds:
    """Allowed range of a field: ``gt``/``ge``/``lt``/``le`` as in pydantic, plus integrality."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False

    def ok(self, x: float) -> bool:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return False
        if self.integer and float(x) != int(x):
            return False
        return not (
            (self.gt is not None and not x > self.gt)
            or (self.ge is not None and not x >= self.ge)
            or (self.lt is not None and not x < self.lt)
            or (self.le is not None and not x <= self.le)
        )

    def describe(self) -> str:
        word = "an integer" if self.integer else "a number"
        if self.gt == 0 and self.ge is None and self.lt is None and self.le is None:
            return "a positive integer" if self.integer else "a positive number"
        if self.ge == 0 and self.gt is None and self.lt is None and self.le is None:
            return "a non-negative integer" if self.integer else "a non-negative number"
        parts = []
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.ge is not None:
            parts.append(f">= {self.ge:g}")
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        if self.le is not None:
            parts.append(f"<= {self.le:g}")
        return word + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Dist:
    """A distribution read from a scene file; :meth:`draw` fixes it with a numpy Generator."""

    kind: str
    args: tuple
    weights: tuple | None = None
    bounds: Bounds = Bounds()

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "uniform":
            a, b = self.args
            x = float(a + (b - a) * rng.random())
        elif self.kind == "uniform_int":
            a, b = self.args
            x = int(rng.integers(int(a), int(b) + 1))
        elif self.kind == "choice":
            p = None
            if self.weights is not None:
                w = np.asarray(self.weights, dtype=float)
                p = w / w.sum()
            x = self.args[int(rng.choice(len(self.args), p=p))]
            if isinstance(x, float) and self.bounds.integer:
                x = int(x)
        else:  # normal, truncated to the bounds by redrawing
            mean, std = self.args
            for _ in range(1000):
                x = float(rng.normal(mean, std))
                if self.bounds.integer:
                    x = int(round(x))
                if self.bounds.ok(x):
                    break
            else:  # rare (parse_dist refuses a normal that seldom lands inside): draw the tail
                x = _truncated_normal(mean, std, self.bounds, rng)
        return x

    def to_yaml(self) -> dict:
        d: dict = {self.kind: list(self.args)}
        if self.weights is not None:
            d["weights"] = list(self.weights)
        return d


#: A normal must land inside its field's bounds at least this often (parse_dist refuses it otherwise).
NORMAL_MIN_CHANCE = 1e-3


def _limits(bounds: Bounds) -> tuple[float, float]:
    """The real interval a normal draw must fall in (integers: rounding to an allowed one)."""
    lo = max((b for b in (bounds.gt, bounds.ge) if b is not None), default=-math.inf)
    hi = min((b for b in (bounds.lt, bounds.le) if b is not None), default=math.inf)
    if bounds.integer and math.isfinite(lo):
        lo = math.ceil(lo) + (1 if lo == bounds.gt and lo == int(lo) else 0) - 0.5
    if bounds.integer and math.isfinite(hi):
        hi = math.floor(hi) - (1 if hi == bounds.lt and hi == int(hi) else 0) + 0.5
    return lo, hi


def normal_chance(mean: float, std: float, bounds: Bounds) -> float:
    """The probability that a normal draw falls inside ``bounds``."""
    lo, hi = _limits(bounds)
    if std == 0:
        return 1.0 if bounds.ok(mean) else 0.0
    nd = NormalDist(mean, std)
    return max(nd.cdf(hi) - nd.cdf(lo), 0.0)


def _truncated_normal(mean: float, std: float, bounds: Bounds, rng: np.random.Generator) -> Any:
    """A normal draw conditioned on ``bounds`` (inverse CDF): for the rare bounds that redrawing
    does not reach in 1000 tries."""
    lo, hi = _limits(bounds)
    nd = NormalDist(mean, std)
    a, b = nd.cdf(lo), nd.cdf(hi)
    for _ in range(100):
        u = a + (b - a) * float(rng.random())
        x: Any = nd.inv_cdf(min(max(u, 1e-300), 1 - 1e-16))
        if bounds.integer:
            x = round(x)
        if bounds.ok(x):
            return x
    raise ValueError(f"normal [{mean:g}, {std:g}] almost never gives {bounds.describe()}")


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_dist(v: Any, bounds: Bounds, what: str, strings: bool = False) -> Dist | None:
    """Return a :class:`Dist` if ``v`` is a distribution mapping, ``None`` if it is not a mapping.

    Raises ``ValueError`` with a one-line message when the mapping is malformed or its support
    leaves ``bounds``.
    """
    if not isinstance(v, dict):
        return None
    keys = set(v)
    kinds = keys & set(KINDS)
    if len(kinds) != 1 or keys - {*kinds, "weights"} or ("weights" in keys and "choice" not in keys):
        raise ValueError(
            f"expected {what} or a distribution: {{uniform: [a, b]}}, {{normal: [mean, std]}}, "
            f"{{uniform_int: [a, b]}} or {{choice: [...]}}; got keys {sorted(map(str, keys))}"
        )
    kind = kinds.pop()
    args = v[kind]
    if not isinstance(args, list):
        raise ValueError(f"{kind}: expected a list, got {type(args).__name__}")
    if kind == "choice":
        if not args:
            raise ValueError("choice: expected a non-empty list")
        for a in args:
            if strings and isinstance(a, str):
                continue
            if strings and not _is_num(a):
                raise ValueError(f"choice: expected names, got {a!r}")
            if not strings and not (_is_num(a) and bounds.ok(a)):
                raise ValueError(f"choice: every value must be {bounds.describe()}, got {a!r}")
        weights = v.get("weights")
        if weights is not None:
            if (
                not isinstance(weights, list)
                or len(weights) != len(args)
                or not all(_is_num(w) and w >= 0 for w in weights)
                or sum(weights) <= 0
            ):
                raise ValueError(
                    f"choice: weights must be {len(args)} non-negative numbers with a positive sum"
                )
            weights = tuple(float(w) for w in weights)
        return Dist("choice", tuple(args), weights, bounds)
    if strings:
        raise ValueError(f"expected {what} or {{choice: [...]}}, got {kind}")
    if len(args) != 2 or not all(_is_num(a) for a in args):
        raise ValueError(f"{kind}: expected a list of 2 numbers, got {args!r}")
    a, b = (float(x) for x in args)
    if kind == "normal":
        if b < 0:
            raise ValueError("normal: the standard deviation must be >= 0")
        if b == 0 and not bounds.ok(a):
            raise ValueError(f"normal: the mean must be {bounds.describe()}")
        if normal_chance(a, b, bounds) < NORMAL_MIN_CHANCE:
            raise ValueError(
                f"normal: [{a:g}, {b:g}] almost never gives {bounds.describe()} (under "
                f"{NORMAL_MIN_CHANCE:g} of its draws); move the mean inside or narrow the deviation"
            )
    else:
        if b < a:
            raise ValueError(f"{kind}: expected [low, high] with low <= high, got {args!r}")
        if kind == "uniform_int":
            if a != int(a) or b != int(b):
                raise ValueError("uniform_int: expected 2 integers")
            a, b = int(a), int(b)
        elif bounds.integer:
            raise ValueError("expected an integer: use uniform_int rather than uniform")
        if not (bounds.ok(a) and bounds.ok(b)) and not (
            kind == "uniform" and _open_ok(a, b, bounds)
        ):
            raise ValueError(f"{kind}: both ends must be {bounds.describe()}, got {args!r}")
    return Dist(kind, (a, b), None, bounds)


def _open_ok(a: float, b: float, bounds: Bounds) -> bool:
    """A uniform on [0, b] is fine for a field that must be > 0 (the chance of 0 is nil)."""
    lo = bounds.ok(a) or (bounds.gt is not None and a == bounds.gt)
    hi = bounds.ok(b) or (bounds.lt is not None and b == bounds.lt)
    return lo and hi and a < b


def _serialize(v: Any) -> Any:
    return v.to_yaml() if isinstance(v, Dist) else v


_DIST_SCHEMA = {
    "type": "object",
    "description": "a distribution, sampled per bag",
    "minProperties": 1,
    "properties": {
        "uniform": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "normal": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "uniform_int": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "choice": {"type": "array", "minItems": 1},
        "weights": {"type": "array", "items": {"type": "number"}},
    },
    "additionalProperties": False,
}


def number(
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    integer: bool = False,
    description: str | None = None,
):
    """The pydantic type of a numeric field that may also be a distribution."""
    bounds = Bounds(gt, ge, lt, le, integer)

    def check(v: Any) -> Any:
        if isinstance(v, Dist):
            return v
        d = parse_dist(v, bounds, bounds.describe())
        if d is not None:
            return d
        if not _is_num(v) or not bounds.ok(v):
            raise ValueError(f"expected {bounds.describe()}, got {v!r}")
        return int(v) if integer else float(v)

    base: dict = {"type": "integer" if integer else "number"}
    for key, val in (("exclusiveMinimum", gt), ("minimum", ge), ("exclusiveMaximum", lt), ("maximum", le)):
        if val is not None:
            base[key] = val
    schema: dict = {"anyOf": [base, _DIST_SCHEMA]}
    if description:
        schema["description"] = description
    return Annotated[Any, BeforeValidator(check), PlainSerializer(_serialize), WithJsonSchema(schema)]


def name_or_choice(what: str = "a name"):
    """A string field (material, template) that may be ``{choice: [...]}`` of strings."""

    def check(v: Any) -> Any:
        if isinstance(v, (str, Dist)):
            return v
        d = parse_dist(v, Bounds(), what, strings=True)
        if d is not None:
            if not all(isinstance(a, str) for a in d.args):
                raise ValueError(f"choice: expected names, got {list(d.args)!r}")
            return d
        raise ValueError(f"expected {what}, got {v!r}")

    schema = {"anyOf": [{"type": "string"}, _DIST_SCHEMA]}
    return Annotated[Any, BeforeValidator(check), PlainSerializer(_serialize), WithJsonSchema(schema)]


def vector(n: int, gt: float | None = None, ge: float | None = None, what: str | None = None):
    """A list of ``n`` numbers (each may be a distribution), e.g. a size or a position."""
    bounds = Bounds(gt=gt, ge=ge)
    adjective = {(0, None): "positive ", (None, 0): "non-negative "}.get((gt, ge), "")
    label = what or f"{n} {adjective}numbers"

    def check(v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or len(v) != n:
            raise ValueError(f"expected {label}")
        out = []
        for x in v:
            if isinstance(x, Dist):
                out.append(x)
                continue
            try:
                d = parse_dist(x, bounds, bounds.describe())
            except ValueError as e:
                raise ValueError(f"expected {label}: {e}") from None
            if d is not None:
                out.append(d)
            elif not _is_num(x) or not bounds.ok(x):
                raise ValueError(f"expected {label}")
            else:
                out.append(float(x))
        return out

    item = {"anyOf": [{"type": "number"}, _DIST_SCHEMA]}
    schema = {"type": "array", "items": item, "minItems": n, "maxItems": n}
    return Annotated[
        Any,
        BeforeValidator(check),
        PlainSerializer(lambda v: [_serialize(x) for x in v]),
        WithJsonSchema(schema),
    ]
