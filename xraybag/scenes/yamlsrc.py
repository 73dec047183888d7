"""YAML with source positions.

Scene files are read with ruamel.yaml's round-trip loader, which constructs only plain mappings,
sequences and scalars (no tags that build Python objects), and keeps the line and column of every
key and item. :func:`read_yaml` turns the document into plain Python data plus a
:class:`SourceMap`, so errors found later (by pydantic or by semantic checks) can name
``file:line:col`` and the field path.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar, merge_attrib
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.scanner import RoundTripScanner

from xraybag.errors import XraybagError

MAX_FILE_BYTES = 16 * 1024 * 1024
#: Limits no real scene comes near (the built-in scenes nest about 8 deep and use no aliases);
#: they refuse alias bombs ("billion laughs"), nesting deep enough to exhaust Python's stack and
#: integers Python will not convert, before anything is built.
MAX_DEPTH = 100  # nested values, counted from the top of the scene (an alias by what it stands for)
MAX_ALIAS_NODES = 100_000  # values aliases (``*name``, ``<<: *name``) add, per file or shared_budget()
MAX_NODES = 1_000_000  # values in a file, aliases counted by the size of what they stand for
MAX_INT_DIGITS = 300  # decimal digits; more do not fit a float (1.8e308), nor 4300 Python's int()
_INT_PREFIX_DIGITS = {"0x": 250, "0o": 330, "0b": 1000}  # the same, under 1024 bits, in other bases
INT_TAG = "tag:yaml.org,2002:int"
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


_ALIASED: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("xraybag_aliased", default=None)


@contextlib.contextmanager
def shared_budget() -> Any:
    """Within it, every document read shares one MAX_ALIAS_NODES budget (a scene file, the files
    it includes and its ``--set`` values), so many files cannot add up to an alias bomb."""
    if _ALIASED.get() is not None:
        yield
        return
    token = _ALIASED.set([0])
    try:
        yield
    finally:
        _ALIASED.reset(token)


class _Refused(Exception):
    """A limit of this module broken while composing: where (ruamel's mark and the path), what."""

    def __init__(self, mark: Any, loc: Loc, message: str):
        super().__init__(message)
        self.mark, self.loc, self.message = mark, loc, message


def _short_loc(loc: Loc) -> str:
    """:func:`format_loc`, with the middle of a very long path left out."""
    return format_loc(loc) if len(loc) <= 12 else f"{format_loc(loc[:6])}...{format_loc(loc[-4:])}"


def _show_tag(tag: Any) -> str:
    return str(tag).replace("tag:yaml.org,2002:", "!!")


class _LimitedComposer(Composer):
    """ruamel's composer, refusing explicit tags and whatever breaks the limits above as each node
    is made. An alias is counted by the size and height of the value it stands for (kept for
    every anchor), so nothing is expanded to count it."""

    def __init__(self, loader: Any = None, start_depth: int = 0):
        super().__init__(loader=loader)
        self.start_depth = start_depth

    def compose_document(self) -> Any:
        self._anchored: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
        self._stack: list[list[int]] = [[0, 0]]  # per open node: values so far, highest child
        self._path: list[Any] = []
        self._level, self._nodes, self._aliased = self.start_depth, 0, _ALIASED.get() or [0]
        return super().compose_document()

    def _refuse(self, mark: Any, message: str) -> None:
        raise _Refused(mark, tuple(self._path), message)

    def _count(self, mark: Any, size: int, height: int, aliased: bool) -> None:
        top = self._stack[-1]
        top[0] += size
        top[1] = max(top[1], height)
        self._nodes += size if aliased else 1  # a node's own values were counted as they were made
        if aliased:
            self._aliased[0] += size
            if self._level + height > MAX_DEPTH:
                self._refuse(mark, f"values nested more than {MAX_DEPTH} levels deep (with what this alias stands for)")
            if self._aliased[0] > MAX_ALIAS_NODES:
                self._refuse(mark, f"aliases expand to more than {MAX_ALIAS_NODES} values in the scene (an alias "
                                   "bomb?); write such values out or use fewer aliases")
        if self._nodes > MAX_NODES:
            self._refuse(mark, f"more than {MAX_NODES} values in one file (aliases counted by what they stand for)")

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        part = index.value if isinstance(index, ScalarNode) else index if isinstance(index, int) else None
        if part is not None:
            self._path.append(part)
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._anchored:
                self._refuse(event.start_mark, f"alias *{event.anchor} is inside the value it names")
            self._count(event.start_mark, *self._anchored[id(node)], aliased=True)
        else:
            self._level += 1
            if self._level > MAX_DEPTH:
                self._refuse(event.start_mark, f"values nested more than {MAX_DEPTH} levels deep")
            if event.ctag is not None and str(event.ctag) != "!":
                self._refuse(event.start_mark, f"YAML tags are not allowed in scene files (got {_show_tag(event.ctag)})")
            self._stack.append([1, 0])
            node = super().compose_node(parent, index)
            size, height = self._stack.pop()
            if isinstance(node, ScalarNode) and node.tag == INT_TAG:
                digits = node.value.lstrip("+-").replace("_", "")
                most = _INT_PREFIX_DIGITS.get(digits[:2], MAX_INT_DIGITS)
                n = len(digits) - (2 if digits[:2] in _INT_PREFIX_DIGITS else 0)
                if n > most:
                    self._refuse(node.start_mark, f"an integer of {n} digits; at most {most} are allowed")
            if node.anchor is not None:
                self._anchored[id(node)] = (size, height + 1)
            self._level -= 1
            self._count(node.start_mark, size, height + 1, aliased=False)
        if part is not None:
            self._path.pop()
        return node


class _LimitedScanner(RoundTripScanner):
    """ruamel's scanner, refusing ``[`` and ``{`` nested deeper than MAX_DEPTH as it reads them
    (it reads well ahead of the composer, and slows down with every open bracket)."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(self.reader.get_mark(), (), f"values nested more than {MAX_DEPTH} levels deep")
        super().fetch_flow_collection_start(TokenClass, to_push)


def _key_lc(node: CommentedMap, k: Any) -> tuple[int, int, int, int]:
    """0-based line and column of key ``k`` of ``node`` and of its value. A key that a merge
    (``<<: *base``) brought in is placed where the mapping it came from has it."""
    if k in (node.lc.data or {}):
        return (*node.lc.key(k), *node.lc.value(k))
    for merged in getattr(node, merge_attrib, None) or ():
        if isinstance(merged, CommentedMap) and k in merged:
            return _key_lc(merged, k)
    return (node.lc.line, node.lc.col, node.lc.line, node.lc.col)


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
            kl, kc, vl, vc = _key_lc(node, k)
            if not isinstance(k, (str, int, float, bool)) or k is None:
                raise XraybagError(f"keys must be plain names, got {k!r}", f"{sm.file}:{kl + 1}:{kc + 1}")
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


def parse_yaml(text: str, file: str, depth: int = 0) -> tuple[Any, SourceMap]:
    """Parse YAML ``text``; errors become one-line :class:`XraybagError` at ``file:line:col``.
    ``depth``: how deep in a scene the document's value goes (``--set`` values), for MAX_DEPTH."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Composer = functools.partial(_LimitedComposer, start_depth=depth)
    yaml.Scanner = _LimitedScanner
    try:
        doc = yaml.load(text)
    except _Refused as e:
        where = f"{file}:{e.mark.line + 1}:{e.mark.column + 1}"
        raise XraybagError(e.message, f"{where}: {_short_loc(e.loc)}" if e.loc else where) from None
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
