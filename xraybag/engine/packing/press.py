"""Pressing soft goods: a stack of folded clothes gives under the lid of a full bag.

An object with ``press: f`` (the scene format; the catalog's ``folded_clothes`` gives its stacks
one) may be pressed by the physics packer along its own z axis to a fraction ``s`` in [f, 1] of its
height, when a request does not fit (:func:`.physics.pack_physics`). Its parts must be boxes and
upright cylinders (the scene format checks this). Then:

* each **textile** part (material category ``textile``, not hollow) is squeezed: its height and its
  height above the object's underside shrink by ``s``, and its material becomes the same fabric at
  density rho / s. It keeps its mass, and the areal mass a vertical ray crosses in it is unchanged;
* every **other** part (a zip, buttons) keeps its shape and rides on the fabric: its underside
  moves as the fabric's at the same height does.

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


def press_object(obj: Object, s: float, library) -> tuple[Object, dict[str, MaterialDef]]:
    """``obj`` pressed to ``s`` of its height (see the module notes), and the materials that the
    pressed parts are made of, by name. ``library``: the scene's material library."""
    whole = not obj.parts  # a shape of its own: the object is its one part
    parts = [obj] if whole else list(obj.parts)
    z = [0.0 if whole or p.pose is None else float(p.pose.position[2]) for p in parts]
    lows = [zc - _height(p.shape) / 2.0 for zc, p in zip(z, parts)]
    z0 = min(lows)  # the underside: parts are squeezed towards it
    materials: dict[str, MaterialDef] = {}
    out = []
    for zc, low, p in zip(z, lows, parts):
        mat = library.get(str(p.material))
        h = _height(p.shape)
        if mat.category == "textile" and p.container is None:
            name = pressed_material(str(p.material), s)
            materials[name] = MaterialDef(
                composition={str(p.material): 1.0}, density=mat.density / s, category="textile",
                description=f"{p.material} pressed to {round(100.0 * s)} % of its thickness (its mass kept)")
            update = {"shape": _squeezed(p.shape, s), "material": name}
            new_z = z0 + s * (zc - z0)
        else:
            update = {}
            new_z = z0 + s * (low - z0) + h / 2.0  # rides on the fabric under it
        if not whole:
            pose = p.pose or Pose(position=[0.0, 0.0, 0.0])
            update["pose"] = pose.model_copy(update={"position": [float(pose.position[0]), float(pose.position[1]), new_z]})
        out.append(p.model_copy(update=update))
    # what is left of its give: pressed to its ``press``, it gives no further
    left = min(1.0, float(obj.press) / s) if obj.press is not None else None
    if whole:
        return out[0].model_copy(update={"press": left}), materials
    return obj.model_copy(update={"parts": out, "press": left}), materials


def with_pressed(library, scene):
    """``library`` with the materials of ``scene`` it lacks (those its packer pressed)."""
    defs = {k: v.model_dump(exclude_none=True) for k, v in scene.materials.items() if k not in library}
    return library.with_materials(defs) if defs else library


def scene_library(scene):
    """The material library a concrete scene resolves its names in: the built-in one and the
    scene's own materials (pressed ones included)."""
    from xraybag.materials import default_library

    defs = {k: v.model_dump(exclude_none=True) for k, v in scene.materials.items()}
    return default_library().with_materials(defs) if defs else default_library()
