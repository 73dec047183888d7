"""YAML with source positions.

Scene files are read with ruamel.yaml's round-trip loader, which constructs only plain mappings,
sequences and scalars (no tags that build Python objects), and keeps the line and column of every
key and item. :func:`read_yaml` turns the document into plain Python data plus a
:class:`SourceMap`, so errors found later (by pydantic or by semantic checks) can name
``file:line:col`` and the field path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from xraybag.errors import XraybagError

MAX_FILE_BYTES = 16 * 1024 * 1024
Loc = tuple[Any, ...]


def format_loc(loc: Loc) -> str:
    """``('objects', 2, 'shape', 'box')`` -> ``objects[2].shape.box``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class SourceMap:
    """Positions (1-based line, column) of keys and values of one YAML document."""

    file: str
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def position(self, loc: Loc, key: bool = False) -> tuple[int, int] | None:
        """Position of ``loc``, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while True:
            table = self.keys if key else self.values
            if loc in table:
                return table[loc]
            if loc in self.values:
                return self.values[loc]
            if not loc:
                return None
            loc = loc[:-1]
            key = False

    def where(self, loc: Loc, key: bool = False) -> str:
        """``file:line:col: path`` for an error at ``loc``."""
        pos = self.position(loc, key)
        head = f"{self.file}:{pos[0]}:{pos[1]}" if pos else self.file
        path = format_loc(loc)
        return f"{head}: {path}" if path else head

    def error(self, loc: Loc, message: str, key: bool = False) -> XraybagError:
        return XraybagError(message, self.where(loc, key))

    def sub(self, prefix: Loc) -> "SourceMap":
        """The map of the subtree at ``prefix``, with paths relative to it."""
        n = len(prefix)
        sm = SourceMap(self.file)
        sm.keys = {k[n:]: v for k, v in self.keys.items() if k[:n] == prefix}
        sm.values = {k[n:]: v for k, v in self.values.items() if k[:n] == prefix}
        return sm


def _tag(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", None) if tag is not None else None
    return value if isinstance(value, str) else None


def _plain(node: Any, loc: Loc, sm: SourceMap) -> Any:
    tag = _tag(node)
    if tag is not None:
        raise XraybagError(
            f"YAML tags are not allowed in scene files (got {tag.replace('tag:yaml.org,2002:', '!!')})",
            sm.where(loc),
        )
    if isinstance(node, CommentedMap):
        out = {}
        for k in node:
            if not isinstance(k, (str, int, float, bool)) or k is None:
                line, col = node.lc.key(k)
                raise XraybagError(f"keys must be plain names, got {k!r}", f"{sm.file}:{line + 1}:{col + 1}")
            kl, kc = node.lc.key(k)
            vl, vc = node.lc.value(k)
            key = str(k) if not isinstance(k, str) else k
            sm.keys[loc + (key,)] = (kl + 1, kc + 1)
            sm.values[loc + (key,)] = (vl + 1, vc + 1)
            out[key] = _plain(node[k], loc + (key,), sm)
        return out
    if isinstance(node, CommentedSeq):
        out = []
        for i, item in enumerate(node):
            il, ic = node.lc.item(i)
            sm.values[loc + (i,)] = (il + 1, ic + 1)
            out.append(_plain(item, loc + (i,), sm))
        return out
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, TaggedScalar):
        raise XraybagError("YAML tags are not allowed in scene files", sm.where(loc))
    raise XraybagError(f"unsupported YAML value {node!r}", format_loc(loc) or None)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML ``text``; errors become one-line :class:`XraybagError` at ``file:line:col``."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = e.problem or e.context or "invalid YAML"
        raise XraybagError(f"invalid YAML: {problem}", where) from None
    except YAMLError as e:
        raise XraybagError(f"invalid YAML: {str(e).splitlines()[0]}", file) from None
    sm = SourceMap(file)
    sm.values[()] = (1, 1)
    return _plain(doc, (), sm), sm


def read_yaml(path: str | os.PathLike, display: str | None = None) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file. ``display`` is the name errors use (default: the path given)."""
    p = Path(path)
    name = display or str(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise XraybagError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB", name)
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XraybagError("no such file", name) from None
    except IsADirectoryError:
        raise XraybagError("is a folder, expected a YAML file", name) from None
    except UnicodeDecodeError:
        raise XraybagError("not a UTF-8 text file", name) from None
    except OSError as e:
        raise XraybagError(f"cannot read: {e.strerror}", name) from None
    return parse_yaml(text, name)
