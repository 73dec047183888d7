"""Loading scene files: YAML -> validated :class:`~xraybag.scenes.models.Scene` with positions.

Every problem a user can make in a scene file is raised as one
:class:`~xraybag.errors.XraybagError` whose text is ``file:line:col: field.path: message``.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError

from xraybag.errors import XraybagError
from xraybag.scenes.models import Include, Scene, Template
from xraybag.scenes.numbers import Dist
from xraybag.scenes.yamlsrc import Loc, SourceMap, format_loc, read_yaml, shared_budget

ASSET_ROOTS_ENV = "XRAYBAG_ASSET_ROOTS"
MESH_SUFFIXES = (".stl", ".obj", ".ply", ".glb", ".gltf", ".off")
MAX_INCLUDES = 100  # files read through ``include`` for one scene, repeats counted
MAX_INCLUDE_DEPTH = 20  # a file that includes a file that includes ...


def builtin_dir() -> Path:
    return Path(str(resources.files("xraybag.scenes") / "builtin"))


def builtin_scenes() -> list[str]:
    """Names of the built-in scenes (``xraybag render demo``)."""
    return sorted(p.stem for p in builtin_dir().glob("*.yaml") if not p.stem.startswith("_"))


def scene_description(path: str | os.PathLike) -> str:
    """A scene file's one-line description: the first comment line at its top ("" if none)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            if not text:
                continue
            return text.lstrip("#").strip() if text.startswith("#") else ""
    return ""


@dataclass
class Origin:
    """Where a template (or material) was defined, for error messages."""

    source: SourceMap
    loc: Loc
    base_dir: Path


@dataclass
class LoadedScene:
    """A validated scene file with everything needed to sample and render it."""

    spec: Scene
    source: SourceMap
    base_dir: Path
    asset_roots: tuple[Path, ...]
    library: Any  # xraybag.materials.MaterialLibrary
    templates: dict[str, Template] = field(default_factory=dict)
    template_origins: dict[str, Origin] = field(default_factory=dict)
    user_materials: dict[str, Any] = field(default_factory=dict)
    name: str = "scene"

    @property
    def categories(self) -> list[str]:
        """Every label an object of this scene can carry, sorted (the COCO categories)."""
        labels = {o.label for o in self.spec.objects if o.label}
        for obj in self.spec.objects:
            if obj.label:
                continue
            names = obj.template.args if isinstance(obj.template, Dist) else [obj.template]
            for n in names:
                t = self.templates.get(n) if n else None
                if t is not None and t.label:
                    labels.add(t.label)
                elif t is None and n:
                    from xraybag.scenes.catalog import CATALOG

                    entry = CATALOG.get(n)
                    if entry is not None and entry.label:
                        labels.add(entry.label)
        return sorted(labels)

    def resolve_asset(self, path: str, where: str) -> Path:
        return resolve_asset(path, self.base_dir, self.asset_roots, where)


# ------------------------------------------------------------------------------- error messages


def _unwrap(tp: Any) -> Any:
    """The model class inside ``X | None``, ``list[X]``, ``dict[str, X]`` and ``Annotated``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else (args[0] if args else tp)
            if not models:
                return tp
        elif origin in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    cur: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        f = cur.model_fields.get(part)
        if f is None:
            # a dict key (materials.<name>) keeps the value type
            continue
        cur = _unwrap(f.annotation)
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _message(err: dict, model: type[BaseModel]) -> tuple[Loc, str, bool]:
    loc = tuple(err["loc"])
    kind = err["type"]
    msg = err["msg"]
    if kind == "extra_forbidden":
        key = loc[-1]
        parent = _model_at(model, loc[:-1])
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(str(key), list(parent.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(parent.model_fields)
            return loc, f"unknown key {key!r}{hint}; allowed: {allowed}", True
        return loc, f"unknown key {key!r}", True
    if kind == "missing":
        return loc, f"missing required field {loc[-1]!r}", False
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return loc, f"expected one of {expected}, got {err.get('input')!r}", False
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, f"expected a mapping, got {type(err.get('input')).__name__}", False
    if kind == "list_type":
        return loc, f"expected a list, got {type(err.get('input')).__name__}", False
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    return loc, msg[0].lower() + msg[1:] if msg else msg, False


def validation_error(e: ValidationError, source: SourceMap, model: type[BaseModel]) -> XraybagError:
    """The first of pydantic's errors (in file order), as one line with its position."""
    items = []
    for err in e.errors(include_url=False):
        loc, msg, key = _message(err, model)
        # pydantic puts model-level errors on the model; they refer to the mapping itself
        pos = source.position(loc, key) or (0, 0)
        items.append((pos, loc, msg, key))
    items.sort(key=lambda t: t[0])
    pos, loc, msg, key = items[0]
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    return XraybagError(msg + more, source.where(loc, key))


def validate_model(model: type[BaseModel], data: Any, source: SourceMap) -> BaseModel:
    if not isinstance(data, dict):
        raise XraybagError(
            f"expected a mapping of fields at the top of the file, got {type(data).__name__}",
            source.where(()),
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, source, model) from None


# ------------------------------------------------------------------------------------ file paths


def asset_roots_from_env() -> tuple[Path, ...]:
    raw = os.environ.get(ASSET_ROOTS_ENV, "")
    return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)


def resolve_asset(path: str, base_dir: Path, roots: tuple[Path, ...], where: str) -> Path:
    """Resolve a file named in a scene: relative to the scene folder, else to an asset root.

    The result must lie inside the scene folder or an asset root (symbolic links are followed
    before the check), so a scene file cannot reach other files on the machine.
    """
    if not path or "\x00" in path:
        raise XraybagError("expected a file path", where)
    allowed = (base_dir.resolve(), *roots)
    p = Path(os.path.expanduser(path)) if path.startswith("~") else Path(path)
    candidates = [p] if p.is_absolute() else [allowed[0] / p, *(r / p for r in roots)]
    inside = []
    for c in candidates:
        r = c.resolve()
        if any(r == a or a in r.parents for a in allowed):
            inside.append(r)
    if not inside:
        raise XraybagError(
            f"path {path!r} leaves the scene folder and the asset roots "
            f"(set {ASSET_ROOTS_ENV} or --assets to allow a folder)",
            where,
        )
    for r in inside:
        if r.is_file():
            return r
    raise XraybagError(f"no such file {path!r}", where)


# ------------------------------------------------------------------------------------- walking


def walk(model: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, Any]]:
    """Yield ``(loc, field_name, value)`` for every field of every nested model."""
    if isinstance(model, BaseModel):
        for name in type(model).model_fields:
            value = getattr(model, name)
            yield loc + (name,), name, value
            yield from walk(value, loc + (name,))
    elif isinstance(model, list):
        for i, v in enumerate(model):
            yield from walk(v, loc + (i,))
    elif isinstance(model, dict):
        for k, v in model.items():
            yield from walk(v, loc + (k,))


def _names(value: Any) -> list[str]:
    if isinstance(value, Dist):
        return [str(a) for a in value.args]
    return [value] if isinstance(value, str) else []


MATERIAL_FIELDS = ("material",)


def check_materials(spec: BaseModel, library: Any, source: SourceMap, root: Loc = ()) -> None:
    for loc, name, value in walk(spec, root):
        if name in MATERIAL_FIELDS:
            for m in _names(value):
                try:
                    library.get(m)
                except XraybagError as e:
                    raise source.error(loc, e.message) from None
        if name == "filtration" and isinstance(value, dict):
            for filt in value:
                if not _is_filter(filt, library):
                    raise source.error(
                        loc + (filt,), f"{filt!r} is neither an element symbol nor a material", key=True
                    )


def _is_filter(name: str, library: Any) -> bool:
    import xraydb

    try:
        xraydb.atomic_number(name)
        return True
    except Exception:
        pass
    return name in library


def check_meshes(spec: BaseModel, base_dir: Path, roots: tuple[Path, ...], source: SourceMap) -> None:
    from xraybag.engine.solids.meshes import check_mesh_file

    for loc, name, value in walk(spec):
        if name == "mesh" and value is not None:
            where = source.where(loc + ("path",))
            path = resolve_asset(value.path, base_dir, roots, where)
            if path.suffix.lower() not in MESH_SUFFIXES:
                raise XraybagError(
                    f"unsupported mesh format {path.suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}",
                    where,
                )
            check_mesh_file(path, where)


def _catalog() -> dict:
    from xraybag.scenes.catalog import CATALOG

    return CATALOG


def check_params(obj: Any, i: int, templates: dict, library: Any, source: SourceMap) -> None:
    """``params`` of object ``i``: every key a parameter of one of its catalog templates (YAML
    templates shadow catalog entries of the same name), every value valid, materials known."""
    entries = [_catalog()[t] for t in _names(obj.template) if t not in templates and t in _catalog()]
    if not obj.params:
        return
    if not entries:
        raise source.error(("objects", i, "params"), "params need a procedural catalog template "
                           "(see 'xraybag catalog list')", key=True)
    _check_values(entries, obj.params, ("objects", i, "params"), library, source)


def _check_values(entries: list, params: dict, root: Loc, library: Any, source: SourceMap) -> None:
    """Every key of ``params`` a parameter of one of ``entries``, every value valid, materials known."""
    for key, value in params.items():
        loc = (*root, key)
        owners = [e for e in entries if key in e.params]
        if not owners:
            from xraybag.scenes.catalog import unknown_param

            known = list(dict.fromkeys(p for e in entries for p in e.params))
            raise unknown_param(key, known, lambda k: source.where(loc, key=True))
        for e in owners:
            spec = e.params[key]
            try:
                spec.parse(value)
            except ValueError as err:
                raise source.error(loc, str(err)) from None
            for m in spec.materials(value):
                try:
                    library.get(m)
                except XraybagError as err:
                    raise source.error(loc, err.message) from None


def check_shell(bag: Any, library: Any, source: SourceMap) -> None:
    """``bag.shell``: known shell names; ``bag.params``: parameters of one of them, valid, with
    known materials."""
    if bag.shell is None:
        return
    from xraybag.scenes.catalog.bags import SHELLS

    for name in _names(bag.shell):
        if name not in SHELLS:
            close = difflib.get_close_matches(name, list(SHELLS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(SHELLS)}"
            raise source.error(("bag", "shell"), f"unknown bag shell {name!r}{hint}")
    _check_values([SHELLS[n] for n in _names(bag.shell)], bag.params, ("bag", "params"), library, source)


# ---------------------------------------------------------------------------------------- loading


def _load_includes(
    names: list[str],
    source: SourceMap,
    base_dir: Path,
    roots: tuple[Path, ...],
    seen: set[Path],
    out: list[tuple[Include, SourceMap, Path]],
    reads: list[int] | None = None,
) -> None:
    reads = [0] if reads is None else reads  # files read so far, for MAX_INCLUDES
    for i, inc in enumerate(names):
        where = source.where(("include", i))
        path = resolve_asset(inc, base_dir, roots, where)
        if path in seen:
            raise XraybagError(f"include cycle through {inc!r}", where)
        reads[0] += 1
        if reads[0] > MAX_INCLUDES:
            raise XraybagError(f"more than {MAX_INCLUDES} included files in one scene (repeats counted)", where)
        if len(seen) >= MAX_INCLUDE_DEPTH:
            raise XraybagError(f"includes nested more than {MAX_INCLUDE_DEPTH} deep", where)
        data, sm = read_yaml(path, display=_display(path))
        spec = validate_model(Include, data, sm)
        _load_includes(spec.include, sm, path.parent, roots, seen | {path}, out, reads)
        out.append((spec, sm, path.parent))


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def resolve_scene_ref(ref: str | os.PathLike) -> Path:
    """A scene file path, or the name of a built-in scene."""
    p = Path(ref)
    builtin = builtin_dir() / f"{ref}.yaml"
    if p.is_dir() and os.sep not in str(ref) and builtin.is_file():
        return builtin  # a bare name: the built-in scene, even beside a folder of that name
    if p.exists() or p.suffix in (".yaml", ".yml") or os.sep in str(ref):
        return p
    if builtin.is_file():
        return builtin
    raise XraybagError(
        f"no such scene file or built-in scene {str(ref)!r} (built-in: {', '.join(builtin_scenes())})"
    )


def load_scene(
    ref: str | os.PathLike,
    asset_roots: tuple[str | os.PathLike, ...] = (),
    check_files: bool = True,
    overrides: tuple[str, ...] | list[str] = (),
) -> LoadedScene:
    """Load and check a scene file (or a built-in scene by name). ``overrides``: ``key.path=value``
    changes applied to the file's values before validation (:mod:`xraybag.scenes.overrides`)."""
    path = resolve_scene_ref(ref)
    is_builtin = path.parent.resolve() == builtin_dir().resolve()
    display = f"<builtin>/{path.name}" if is_builtin else str(ref)
    with shared_budget():  # the file, its --set values and its includes: one alias budget
        data, source = read_yaml(path, display=display)
        if overrides:
            from xraybag.scenes.overrides import apply_overrides

            data, source = apply_overrides(data, source, overrides)
        return load_scene_data(data, source, path.parent, asset_roots, check_files, name=path.stem)


def load_scene_data(
    data: Any,
    source: SourceMap,
    base_dir: Path,
    asset_roots: tuple[str | os.PathLike, ...] = (),
    check_files: bool = True,
    name: str = "scene",
) -> LoadedScene:
    from xraybag.materials import default_library

    roots = tuple(Path(r).resolve() for r in asset_roots) + asset_roots_from_env()
    spec: Scene = validate_model(Scene, data, source)  # type: ignore[assignment]

    library = default_library()
    templates: dict[str, Template] = {}
    origins: dict[str, Origin] = {}
    user_materials: dict[str, Any] = {}
    builtin_templates = builtin_dir() / "_templates.yaml"
    layers: list[tuple[Include, SourceMap, Path]] = []
    if builtin_templates.is_file():
        bdata, bsm = read_yaml(builtin_templates, display="<builtin>/_templates.yaml")
        layers.append((validate_model(Include, bdata, bsm), bsm, builtin_templates.parent))  # type: ignore[arg-type]
    includes: list[tuple[Include, SourceMap, Path]] = []
    with shared_budget():
        _load_includes(spec.include, source, base_dir, roots, set(), includes)
    layers += includes
    layers.append((spec, source, base_dir))  # type: ignore[arg-type]

    for inc, sm, bdir in layers:
        for mname, mdef in inc.materials.items():
            user_materials[mname] = mdef
            try:
                library = library.with_materials(
                    {mname: mdef.model_dump(exclude_none=True)}, source=sm.file
                )
            except XraybagError as e:
                loc = tuple(getattr(e, "path", None) or ("materials", mname))
                msg = e.message
                for n in range(len(loc), 0, -1):  # drop the path the message repeats
                    prefix = format_loc(loc[:n]) + ": "
                    if msg.startswith(prefix):
                        msg = msg[len(prefix):]
                        break
                raise sm.error(loc, msg, key=len(loc) == 4) from None
        for tname, t in inc.templates.items():
            templates[tname] = t
            origins[tname] = Origin(sm, ("templates", tname), bdir)

    for inc, sm, _ in layers:
        for tname, t in inc.templates.items():
            check_materials(t, library, sm, ("templates", tname))
    check_materials(spec, library, source)
    for i, obj in enumerate(spec.objects):
        for t in _names(obj.template):
            if t not in templates and t not in _catalog():
                close = difflib.get_close_matches(t, [*templates, *_catalog()], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise source.error(("objects", i, "template"), f"unknown template {t!r}{hint}")
        check_params(obj, i, templates, library, source)
    check_shell(spec.bag, library, source)
    if check_files:
        for inc, sm, bdir in layers:
            check_meshes(inc, bdir, roots, sm)

    return LoadedScene(
        spec=spec,
        source=source,
        base_dir=base_dir,
        asset_roots=roots,
        library=library,
        templates=templates,
        template_origins=origins,
        user_materials=user_materials,
        name=name,
    )


__all__ = [
    "LoadedScene",
    "load_scene",
    "load_scene_data",
    "builtin_scenes",
    "scene_description",
    "resolve_asset",
    "format_loc",
]
