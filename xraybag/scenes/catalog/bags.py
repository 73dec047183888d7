"""Bag shells: ``bag: {shell: NAME, params: {...}}``. Each is a parametric case built around the
bag's interior ``size`` (see :mod:`xraybag.engine.solids.shells` for the geometry): its own wall
material and thickness, rounded corners, and the zip, trolley, wheels, frame, handles and rings
that outline a real bag in an X-ray image. The parameters work as a catalog template's: drawn per
bag from their defaults unless ``params`` gives a value or a distribution."""

from __future__ import annotations

from xraybag.scenes.catalog.registry import U, CatalogEntry, flag, mat, num

#: shell name -> entry (its ``build`` is unused: the engine builds the geometry)
SHELLS: dict[str, CatalogEntry] = {}

F = "bags"


def _shell(name: str, description: str, params: dict) -> None:
    if name in SHELLS:
        raise ValueError(f"duplicate shell {name!r}")
    SHELLS[name] = CatalogEntry(name, None, description, params, lambda p, rng: {}, F)


_ZIP = mat(["brass", "aluminum", "nylon"], "zip teeth (nylon: a coil zip, one thin band)", weights=[3, 1, 3])
_HANDLE = mat(["pp", "abs", "rubber"], "handle grips")

_shell("soft_carry_on", "soft-sided carry-on lying on its back: a rounded fabric shell, a zip round the lid, "
       "a base board, telescopic aluminium trolley tubes under the back panel, two wheels on steel axles, "
       "handles fixed by metal rings, and often a spring-steel wire round the lid", {
           "material": mat(["nylon_fabric", "polyester"], "shell fabric"),
           "thickness": num(U(1.2, 2.5), "shell wall"),
           "corner_radius": num(U(20, 45), "radius of the shell's rounded edges"),
           "zip_drop": num(U(20, 45), "height of the lid zip below the top"),
           "zip_material": _ZIP,
           "frame_wire": flag(0.5, "a steel wire round the lid (1) or none (0)"),
           "trolley": flag(0.9, "trolley tubes and wheels (1) or none (0)"),
           "tube_radius": num(U(8, 11), "outer radius of the trolley tubes"),
           "wheel_radius": num(U(22, 32), "wheel radius"),
           "spinner": flag(0.3, "four spinner wheels (1) or two inline wheels (0)"),
           "board_material": mat(["hdpe", "plywood", "pp"], "the base board"),
           "handle_material": _HANDLE,
           "ring_material": mat(["steel", "zinc", "aluminum"], "the rings that hold the handles"),
       })

_shell("hard_suitcase", "hard-shell suitcase: a polycarbonate or ABS (sometimes aluminium) shell, an aluminium "
       "frame with latches or a zip with a lock at the clamshell's joint, hinges, four spinner wheels, "
       "trolley tubes and handles", {
           "material": mat(["pc", "abs", "aluminum"], "shell", weights=[6, 3, 1]),
           "thickness": num(U(2.0, 3.5), "shell wall"),
           "corner_radius": num(U(30, 60), "radius of the shell's rounded edges"),
           "aluminium_frame": flag(0.4, "an aluminium frame with latches (1) or a zip (0)"),
           "zip_material": mat(["brass", "aluminum", "nylon"], "zip teeth (when there is no frame)", weights=[2, 1, 3]),
           "tube_radius": num(U(8, 11), "outer radius of the trolley tubes"),
           "wheel_radius": num(U(22, 30), "wheel radius"),
           "handle_material": _HANDLE,
       })

_shell("backpack", "backpack lying on its back: a soft rounded shell, a zip, shoulder straps with foam pads, "
       "plastic buckles and ladder locks, sometimes an aluminium back stay", {
           "material": mat(["nylon_fabric", "polyester"], "shell fabric"),
           "thickness": num(U(1.0, 2.0), "shell wall"),
           "corner_radius": num(U(40, 70), "radius of the shell's rounded edges"),
           "zip_drop": num(U(20, 40), "height of the zip below the top"),
           "zip_material": _ZIP,
           "buckle_material": mat(["acetal", "pp", "aluminum"], "buckles and ladder locks", weights=[4, 2, 1]),
           "back_stay": flag(0.3, "an aluminium stay in the back panel (1) or none (0)"),
       })

_shell("laptop_bag", "laptop bag: foam padding inside a fabric wall, a zip, and a shoulder strap with a pad "
       "and steel snap hooks lying over the top", {
           "material": mat(["polyester", "nylon_fabric", "leather"], "shell", weights=[4, 3, 1]),
           "thickness": num(U(1.0, 2.0), "fabric wall"),
           "corner_radius": num(U(15, 30), "radius of the shell's rounded edges"),
           "padding": num(U(5, 12), "foam padding"),
           "zip_material": _ZIP,
       })

_shell("tote", "tote: an open fabric or leather bag with two straps folded over the contents and a magnetic "
       "snap", {
           "material": mat(["cotton", "polyester", "leather"], "shell"),
           "thickness": num(U(1.0, 2.5), "wall"),
           "corner_radius": num(U(10, 30), "radius of the shell's rounded edges"),
           "handle_material": mat(["cotton", "polyester", "leather"], "straps"),
       })
