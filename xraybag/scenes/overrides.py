"""``--set key.path=value``: changes to a scene file's values, applied before validation.

An override names a value by its path (mapping keys and list indices joined by dots:
``bag.size``, ``scanners.0.pitch``, ``objects.1.label``) and gives the new value as YAML, read
by the scene files' own loader (:func:`~xraybag.scenes.yamlsrc.parse_yaml`: plain data only, no
tags), so numbers, lists and distributions such as ``{uniform: [1, 2]}`` all work.

A list index must exist; a mapping key may be new (the scene model then says whether it is
allowed), and mappings missing on the way are created. Overrides apply in the order given.

Errors name the override instead of a line of the file: :class:`OverriddenSource` is the scene's
:class:`~xraybag.scenes.yamlsrc.SourceMap` with the overridden subtrees marked, so a value that
fails validation (or a later check) reads ``--set bag.size: message``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

from xraybag.errors import XraybagError
from xraybag.scenes.yamlsrc import MAX_DEPTH, Loc, SourceMap, format_loc, parse_yaml


@dataclass(frozen=True)
class Override:
    """One ``--set``: the dotted ``key`` as given, its path, and the value read as YAML."""

    key: str
    path: Loc  # as given: every part a string (indices are resolved against the data)
    value: Any

    @property
    def label(self) -> str:
        return f"--set {self.key}"


def parse_override(text: str) -> Override:
    """``'bag.size=[500, 300, 200]'`` -> :class:`Override`."""
    key, eq, raw = str(text).partition("=")
    key = key.strip()
    if not eq or not key:
        raise XraybagError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. bag.size=[500,300,200]")
    parts = tuple(p.strip() for p in key.split("."))
    if len(parts) >= MAX_DEPTH:
        raise XraybagError(f"--set {key[:60]}...: a key path of {len(parts)} parts; at most {MAX_DEPTH - 1} are allowed")
    if any(not p for p in parts):
        raise XraybagError(f"--set {key}: empty part in the key path (keys are joined by single dots)")
    if not raw.strip():
        raise XraybagError(f"--set {key}: expected a value after '='")
    value, _ = parse_yaml(raw, f"--set {key}", depth=len(parts))  # the value goes len(parts) deep
    return Override(key, parts, value)


@dataclass
class OverriddenSource(SourceMap):
    """A scene's source map that knows which subtrees came from ``--set`` (see module notes)."""

    marks: list[tuple[Loc, Loc, str]] = field(default_factory=list)  # (introduced root, path, label)

    def _mark(self, loc: Loc) -> tuple[int, Loc, str] | None:
        for k in range(len(self.marks) - 1, -1, -1):  # the last override of a place wins
            root, path, label = self.marks[k]
            if loc[: len(root)] == root:
                return k, path, label
        return None

    def position(self, loc: Loc, key: bool = False) -> tuple[int, int] | None:
        mark = self._mark(tuple(loc))
        if mark is not None:
            return (0, mark[0] + 1)  # before every line of the file, in the order given
        return super().position(loc, key)

    def where(self, loc: Loc, key: bool = False) -> str:
        loc = tuple(loc)
        mark = self._mark(loc)
        if mark is not None:
            _, path, label = mark
            return label if loc == path else f"{label}: {format_loc(loc)}"
        where = super().where(loc, key)
        inside = [label for root, _, label in self.marks if root[: len(loc)] == loc]
        return f"{where} (with {', '.join(dict.fromkeys(inside))})" if inside else where


def _step(node: Any, part: str, done: Loc, o: Override) -> Any:
    """The key or index ``part`` names in ``node`` (the value at ``done``)."""
    if isinstance(node, list):
        if not part.lstrip("-").isdigit():
            raise XraybagError(f"{format_loc(done) or 'the scene'} is a list; expected an index, got {part!r}",
                               o.label)
        i = int(part)
        if not 0 <= i < len(node):
            raise XraybagError(f"no item {i} in {format_loc(done)} (it has {len(node)}: 0..{len(node) - 1})",
                               o.label)
        return i
    if isinstance(node, dict):
        return part
    raise XraybagError(f"{format_loc(done)} is a single value ({node!r}), not a mapping or a list", o.label)


def _apply(data: Any, o: Override) -> tuple[Loc, Loc]:
    """Set ``o`` in ``data`` (in place); returns (root of what it introduced, resolved path)."""
    node, done, created = data, (), None
    for n, part in enumerate(o.path):
        k = _step(node, part, done, o)
        last = n == len(o.path) - 1
        if isinstance(node, dict) and (k not in node or (node[k] is None and not last)):
            created = created or done + (k,)  # a missing (or empty) mapping on the way is made
            if not last:
                node[k] = {}
        if last:
            node[k] = copy.deepcopy(o.value)
        node, done = node[k], done + (k,)
    return (created or done), done


def apply_overrides(data: Any, source: SourceMap, overrides: Iterable[str | Override]) -> tuple[Any, SourceMap]:
    """``data`` (a scene file read by :func:`~xraybag.scenes.yamlsrc.read_yaml`) with every
    override applied, and its source map marked with them; ``data`` itself is left unchanged."""
    parsed = [o if isinstance(o, Override) else parse_override(o) for o in overrides]
    if not parsed:
        return data, source
    if not isinstance(data, dict):
        raise XraybagError(f"expected a mapping of fields at the top of the file, got {type(data).__name__}",
                           source.where(()))
    data = copy.deepcopy(data)
    marked = OverriddenSource(source.file, dict(source.keys), dict(source.values))
    if isinstance(source, OverriddenSource):
        marked.marks = list(source.marks)
    for o in parsed:
        root, path = _apply(data, o)
        marked.marks.append((root, path, o.label))
    return data, marked


__all__ = ["Override", "OverriddenSource", "apply_overrides", "parse_override"]
