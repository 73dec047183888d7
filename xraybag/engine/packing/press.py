"""Pressing soft goods: a stack of folded clothes gives under the lid of a full bag.

An object with ``press: f`` (the scene format; the catalog's ``folded_clothes`` gives its stacks
one) may be pressed by the physics packer along its own z axis to a fraction ``s`` in [f, 1] of its
height, when a request does not fit (:func:`.physics.pack_physics`). Its parts must be boxes and
upright cylinders (the scene format checks this). Then:

* each **textile** part (material category ``textile``, not hollow) is squeezed: its height shrinks
  by ``s`` and its material becomes the same fabric at density rho / s. It keeps its mass, and the
  areal mass a vertical ray crosses in it is unchanged;
* every **other** part (a zip, buttons, a stiffener) keeps its shape and rides on what is under it;
* heights move as the object's fabric squeezes: a height z goes down by (1 - s) times the height
  of fabric (any of its textile parts) below z, so stacked layers stay stacked, and a rigid part
  under or between layers (where no fabric beside it shares its heights) holds the layers above it
  off it.

The pressed object's ``press`` becomes what is left of its give (``press / s``: 1 once pressed to
its ``press``). The pressed materials are named ``<material>_pressed_<percent>`` and defined in the concrete
scene's ``materials`` (a mixture of one material, the fabric, at the higher density), so the
concrete scene renders on its own like any other.
"""

from __future__ import annotations

from xraybag.scenes.models import MaterialDef, Object, Pose, Shape


def pressed_material(name: str, s: float) -> str:
    return f"{name}_pressed_{round(100.0 * s)}"


def _height(shape: Shape) -> float:
    p = shape.params
    return float(p.size[2]) if shape.kind == "box" else float(p.height)


def _squeezed(shape: Shape, s: float) -> Shape:
    p = shape.params
    if shape.kind == "box":
        new = p.model_copy(update={"size": [float(p.size[0]), float(p.size[1]), float(p.size[2]) * s]})
    else:
        new = p.model_copy(update={"height": float(p.height) * s})
    return shape.model_copy(update={shape.kind: new})


def _squeeze_map(spans: list[tuple[float, float]], s: float):
    """z -> its height once the union of the z ``spans`` is squeezed by ``s`` (the rest kept),
    from the lowest span's bottom up."""
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])

    def at(z: float) -> float:
        return z - (1.0 - s) * sum(max(0.0, min(z, b) - a) for a, b in merged)

    return at


def press_object(obj: Object, s: float, library) -> tuple[Object, dict[str, MaterialDef]]:
    """``obj`` pressed to ``s`` of its height (see the module notes), and the materials that the
    pressed parts are made of, by name. ``library``: the scene's material library."""
    whole = not obj.parts  # a shape of its own: the object is its one part
    parts = [obj] if whole else list(obj.parts)
    z = [0.0 if whole or p.pose is None else float(p.pose.position[2]) for p in parts]
    heights = [_height(p.shape) for p in parts]
    mats = [library.get(str(p.material)) for p in parts]
    soft = [m.category == "textile" and p.container is None for m, p in zip(mats, parts)]
    # heights taken by fabric shrink by s; a rigid part keeps its height and rides on what is under it
    at = _squeeze_map([(zc - h / 2.0, zc + h / 2.0) for zc, h, t in zip(z, heights, soft) if t], s)
    materials: dict[str, MaterialDef] = {}
    out = []
    for zc, h, textile, mat, p in zip(z, heights, soft, mats, parts):
        if textile:
            name = pressed_material(str(p.material), s)
            materials[name] = MaterialDef(
                composition={str(p.material): 1.0}, density=mat.density / s, category="textile",
                description=f"{p.material} pressed to {round(100.0 * s)} % of its thickness (its mass kept)")
            update = {"shape": _squeezed(p.shape, s), "material": name}
            new_z = at(zc)
        else:
            update = {}
            new_z = at(zc - h / 2.0) + h / 2.0
        if not whole:
            pose = p.pose or Pose(position=[0.0, 0.0, 0.0])
            update["pose"] = pose.model_copy(update={"position": [float(pose.position[0]), float(pose.position[1]), new_z]})
        out.append(p.model_copy(update=update))
    # what is left of its give: pressed to its ``press``, it gives no further
    left = min(1.0, float(obj.press) / s) if obj.press is not None else None
    if whole:
        return out[0].model_copy(update={"press": left}), materials
    return obj.model_copy(update={"parts": out, "press": left}), materials


def _with_scene_materials(library, scene, missing_only: bool):
    defs = {k: v.model_dump(exclude_none=True) for k, v in scene.materials.items()
            if not (missing_only and k in library)}
    return library.with_materials(defs) if defs else library


def with_pressed(library, scene):
    """``library`` with the materials of ``scene`` it lacks (those its packer pressed)."""
    return _with_scene_materials(library, scene, missing_only=True)


def scene_library(scene):
    """The material library a concrete scene resolves its names in: the built-in one and the
    scene's own materials (pressed ones included; a scene's material shadows a built-in one)."""
    from xraybag.materials import default_library

    return _with_scene_materials(default_library(), scene, missing_only=False)
