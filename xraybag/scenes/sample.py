"""Sampling: a scene spec (with distributions, repeats, templates) -> one concrete bag.

``sample(loaded, index)`` draws every distribution from a generator seeded by
``(scene seed, bag index, stream)`` where the stream is the object's position in the file (or the
bag / scanners), so editing one object does not change the draws of the others. The result is a
:class:`~xraybag.scenes.models.Scene` in which every number is fixed, templates are expanded, and
mesh paths are absolute; :func:`dump_scene` writes it as YAML that loads back to the same bag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene, resolve_asset
from xraybag.scenes.models import Object, Scene
from xraybag.scenes.numbers import Dist
from xraybag.streams import STREAM_BAG, STREAM_SCANNERS, bag_rng


def resolve(value: Any, rng: np.random.Generator) -> Any:
    """Plain data with every distribution drawn (models become dicts without None fields)."""
    if isinstance(value, Dist):
        return value.draw(rng)
    if isinstance(value, BaseModel):
        out = {}
        for name in type(value).model_fields:
            v = getattr(value, name)
            if v is None:
                continue
            out[name] = resolve(v, rng)
        return out
    if isinstance(value, list):
        return [resolve(v, rng) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, rng) for k, v in value.items()}
    return value


def _absolute_meshes(data: Any, base_dir: Path, loaded: LoadedScene, where: str) -> None:
    """Rewrite ``mesh.path`` values in plain data to absolute paths (checked as when loading)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "mesh" and isinstance(v, dict) and "path" in v:
                v["path"] = str(resolve_asset(v["path"], base_dir, loaded.asset_roots, where))
            else:
                _absolute_meshes(v, base_dir, loaded, where)
    elif isinstance(data, list):
        for v in data:
            _absolute_meshes(v, base_dir, loaded, where)


def expand_entry(obj: Object, k: int, loaded: LoadedScene, rng: np.random.Generator) -> list[dict]:
    """Object entry ``k`` of the scene file as plain object data, one dict per copy (``repeat``):
    its template or catalog entry expanded, every distribution drawn from ``rng``, mesh paths
    made absolute."""
    n = 1 if obj.repeat is None else int(resolve(obj.repeat, rng))
    out = []
    for i in range(n):
        data: dict[str, Any] = {}
        base_dir = loaded.base_dir
        where = loaded.source.where(("objects", k))
        tname = resolve(obj.template, rng) if obj.template is not None else None
        if tname is not None and tname not in loaded.templates:
            # a procedural catalog entry (YAML templates of the same name win)
            from xraybag.scenes.catalog import get_entry

            entry = get_entry(tname)
            given = {p: v for p, v in obj.params.items() if p in entry.params}
            data.update(entry.sample(given, rng, _param_where(loaded, k)))
        elif tname is not None:
            template = loaded.templates[tname]
            origin = loaded.template_origins[tname]
            tdata = resolve(template, rng)
            tdata.pop("description", None)
            _absolute_meshes(tdata, origin.base_dir, loaded, origin.source.where(origin.loc))
            data.update(tdata)
        own = resolve(obj, rng)
        for key in ("repeat", "template", "params"):
            own.pop(key, None)
        _absolute_meshes(own, base_dir, loaded, where)
        if "shape" in own or own.get("parts"):
            # the object's own body replaces the template's body
            for key in ("shape", "material", "container", "parts", "sheet"):
                data.pop(key, None)
        if not own.get("parts"):
            own.pop("parts", None)
        data.update(own)
        name = obj.name or tname or f"object{k}"
        data["name"] = f"{name}_{i}" if n > 1 else name
        out.append(data)
    return out


def _bag(loaded: LoadedScene, rng: np.random.Generator) -> dict:
    """The bag as plain data: a shell's name drawn and every one of its parameters fixed."""
    spec = loaded.spec.bag
    bag = resolve(spec, rng)
    if spec.shell is None:
        bag.pop("params", None)
        bag.pop("shell", None)
        return bag
    from xraybag.scenes.catalog.bags import SHELLS

    entry = SHELLS[bag["shell"]]
    given = {p: v for p, v in spec.params.items() if p in entry.params}

    def where(key: str) -> str:
        return loaded.source.where(("bag", "params", key), key=True)

    bag["params"] = entry.draw_params(given, rng, where)
    bag.pop("wall", None)
    return bag


def _param_where(loaded: LoadedScene, k: int):
    def where(key: str) -> str:
        return loaded.source.where(("objects", k, "params", key), key=True)

    return where


def sample(loaded: LoadedScene, index: int = 0, seed: int | None = None) -> Scene:
    """The concrete (unpacked) scene of bag ``index``; objects without a pose still lack one."""
    spec = loaded.spec
    seed = spec.seed if seed is None else int(seed)
    if spec.bag_index is not None:
        index = spec.bag_index + index  # a concrete scene renders its own bag
    objects: list[dict] = []
    for k, obj in enumerate(spec.objects):
        objects += expand_entry(obj, k, loaded, bag_rng(seed, index, k))
    names: dict[str, int] = {}
    for o in objects:  # unique names, in order
        base = o["name"]
        if base in names:
            names[base] += 1
            o["name"] = f"{base}~{names[base]}"
        else:
            names[base] = 0
    data = {
        "seed": seed,
        "bag_index": index,
        "materials": {
            k: v.model_dump(exclude_none=True, exclude_defaults=True) | {"density": v.density}
            for k, v in loaded.user_materials.items()
        },
        "bag": _bag(loaded, bag_rng(seed, index, STREAM_BAG)),
        "objects": objects,
        "packing": resolve(spec.packing, bag_rng(seed, index, STREAM_BAG)),
        "scanners": resolve(spec.scanners, bag_rng(seed, index, STREAM_SCANNERS)),
        "annotation": resolve(spec.annotation, bag_rng(seed, index, STREAM_BAG)),
        "tolerance": spec.tolerance,
    }
    try:
        return Scene.model_validate(data)
    except ValidationError as e:  # a draw that breaks a cross-field rule
        err = e.errors(include_url=False)[0]
        where = loaded.source.where(tuple(err["loc"]))
        raise XraybagError(f"bag {index}: a sampled value breaks a rule: {err['msg']}", where) from None


def scene_to_data(scene: Scene) -> dict:
    """Plain data of a concrete scene (no distributions left), for YAML or JSON."""
    data = resolve(scene, np.random.default_rng(0))
    for key in ("include", "templates"):
        if not data.get(key):
            data.pop(key, None)
    bag = data.get("bag", {})
    if bag.get("shell") is not None:
        bag.pop("wall", None)  # the shell's params hold its wall
    elif not bag.get("params"):
        bag.pop("params", None)
    return data


def dump_scene(scene: Scene) -> str:
    """A concrete scene as YAML text; loading it back gives the same scene, bit for bit.

    Written by libyaml's emitter (PyYAML's ``CSafeDumper``) where PyYAML was built with it: about
    10x faster than the pure-Python emitter, which it falls back to, and the same text (keys sorted,
    flow style for leaf collections, width 120)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        scene_to_data(scene), Dumper=dumper, default_flow_style=None, width=120, sort_keys=True,
        allow_unicode=True,
    )
