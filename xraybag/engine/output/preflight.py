"""Everything that can refuse a scene before any work starts, as one-line errors at the file, line
and field: CT scanners that cannot run here, objects whose fixed pose puts them outside the bag,
bags that would not fit in memory, and sources, detectors and first-bag objects that cannot be
built. ``render``, ``validate`` and ``pack`` call :func:`preflight` first, so a bad scene never
leaves a partial dataset behind."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from xraybag.engine.ct.scan import scanner_problem
from xraybag.engine.output.firstbag import check_first_bag
from xraybag.engine.output.memory import check_memory, upper_bound
from xraybag.engine.packing.base import OUTSIDE_TOLERANCE, outside_bag
from xraybag.engine.packing.place import TOLERANCE
from xraybag.engine.solids.scene import object_points
from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene
from xraybag.scenes.models import Object
from xraybag.scenes.numbers import Dist
from xraybag.scenes.sample import expand_entry


def preflight(loaded: LoadedScene, workers: int = 1, memory: bool = True, seed: int | None = None) -> int:
    """Run every check; returns the bytes one bag can need (0 with ``memory=False``). ``seed``: the
    run's seed (default the scene's), for the first bag built by :func:`.firstbag.check_first_bag`."""
    check_scanners(loaded)
    check_posed_objects(loaded)
    need = check_memory(loaded, workers) if memory else 0
    check_first_bag(loaded, seed)
    return need


def check_scanners(loaded: LoadedScene) -> None:
    """CT scanners whose settings cannot run on this machine (whatever the bag)."""
    for k, scanner in enumerate(loaded.spec.scanners):
        if scanner.type == "ct" and scanner.ct is not None:
            problem = scanner_problem(scanner)
            if problem:
                raise loaded.source.error(("scanners", k, *problem[0]), problem[1])


def _fixed(value) -> bool:
    """Whether ``value`` (a model, list, dict or number) holds no distribution anywhere."""
    if isinstance(value, Dist):
        return False
    if isinstance(value, BaseModel):
        return all(_fixed(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, (list, tuple)):
        return all(_fixed(v) for v in value)
    if isinstance(value, dict):
        return all(_fixed(v) for v in value.values())
    return True


def check_posed_objects(loaded: LoadedScene) -> None:
    """Objects placed with fixed numbers (``pose`` and shape without distributions, no template)
    that stick out of even the largest bag the scene allows. (Poses drawn from distributions are
    checked per bag by the packer, which leaves such an object out and says why.) Measured on the
    meshes the packers place (chord error :data:`~xraybag.engine.packing.place.TOLERANCE`), so the
    concrete scene of a packed bag (``OUT/scenes/<bag>.yaml``) is accepted as it was packed: a round
    object resting on the floor reaches a finer mesh's chord error (up to that tolerance) lower."""
    spec = loaded.spec
    largest = np.array([upper_bound(s) for s in spec.bag.size])
    rng = np.random.default_rng(0)  # nothing is drawn: the entries checked hold no distribution
    for k, entry in enumerate(spec.objects):
        if entry.pose is None or entry.sheet is not None or entry.template is not None:
            continue
        if not _fixed(entry):
            continue
        for data in expand_entry(entry, k, loaded, rng):
            obj = Object.model_validate(data)
            try:
                points = object_points(obj, tolerance=TOLERANCE, name=obj.name)
            except XraybagError as e:
                raise loaded.source.error(("objects", k), e.message) from None
            reach, side = outside_bag(points, obj.pose, largest)
            if reach > OUTSIDE_TOLERANCE:
                ext = points.max(axis=0) - points.min(axis=0)
                raise loaded.source.error(
                    ("objects", k, "pose", "position"),
                    f"places {obj.name!r} (about {ext[0]:.0f} x {ext[1]:.0f} x {ext[2]:.0f} mm before "
                    f"rotation) {reach:.1f} mm outside the bag on its {side} side (interior "
                    f"{' x '.join(f'{s:g}' for s in largest)} mm, origin at the centre of its floor); "
                    "move it, or leave out the pose to let the packer place it",
                )
