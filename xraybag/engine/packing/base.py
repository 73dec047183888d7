"""What every packer shares: the report, the resting orientations, the fit test and the finish.

Lengths in mm, angles in degrees, bag frame (origin at the centre of the interior floor, z up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xraybag.engine.solids.scene import rotation_matrix
from xraybag.scenes.models import Object, Pose, Scene

#: the orientations that rest an object on a face of its bounding box (before the yaw about z)
BASE_ROTATIONS = ((0.0, 0.0), (90.0, 0.0), (0.0, 90.0))
LARGER_THAN_BAG = "larger than the bag interior"
BAG_FULL = "no room left under the lid (the bag is full)"
TIME_BUDGET_REASON = "time budget"
EPS = 1e-9
#: how far (mm) a posed object may reach past the bag interior (rounding of rotated vertices)
OUTSIDE_TOLERANCE = 1e-6


@dataclass
class PackReport:
    """What a packer did. ``placed``: the objects it gave a pose (objects that came with a pose are
    kept as they are and not listed); ``left_out``: (name, reason) of objects dropped from the
    scene; ``seconds``: wall time; ``note``: anything the packer wants to say."""

    method: str
    placed: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None
    #: seconds spent per stage, e.g. {"decomposition": .., "simulation": .., "refinement": ..}
    timings: dict[str, float] = field(default_factory=dict)
    #: the placed objects' convex hull volumes over the interior volume, at the end and when the
    #: first object was left out (None: nothing was; packers that do not measure it leave both None)
    hull_fill: float | None = None
    hull_fill_at_first_left_out: float | None = None
    #: the object whose leaving out gave ``hull_fill_at_first_left_out`` (its name), so a low
    #: figure can be traced to the object that did not fit
    first_left_out: str | None = None


Packer = Callable[[Scene, np.random.Generator], tuple[Scene, PackReport]]

Box = tuple[np.ndarray, np.ndarray]  # (lo, hi) corners of an AABB, bag frame, mm


def aabb(points: np.ndarray, rotation_deg: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the points rotated by ``rotation_deg``, relative to the pose position."""
    p = points @ rotation_matrix(rotation_deg).T
    return p.min(axis=0), p.max(axis=0)


def fits_interior(lo: np.ndarray, hi: np.ndarray, interior: np.ndarray) -> bool:
    return bool(np.all(hi - lo <= interior + EPS))


def finish(
    scene: Scene, names: list[str], poses: dict[int, Pose], left: dict[int, str], report: PackReport
) -> tuple[Scene, PackReport]:
    """The packed scene of a packer: object ``k`` gets ``poses[k]``, or is left out with the
    reason ``left[k]`` (recorded in ``report``), or keeps its own pose; order is kept."""
    objects: list[Object] = []
    for k, obj in enumerate(scene.objects):
        if k in left:
            report.left_out.append((names[k], left[k]))
        elif k in poses:
            objects.append(obj.model_copy(update={"pose": poses[k]}))
            report.placed.append(names[k])
        else:
            objects.append(obj)
    return scene.model_copy(update={"objects": objects}), report


def fits_somehow(points: np.ndarray, interior: np.ndarray) -> bool:
    """Whether some resting orientation (yaw in steps of 5 degrees) fits the empty interior."""
    for rx, ry in BASE_ROTATIONS:
        for yaw in range(0, 180, 5):
            lo, hi = aabb(points, [rx, ry, float(yaw)])
            if fits_interior(lo, hi, interior):
                return True
    return False


def outside_bag(points: np.ndarray, pose: Pose, interior: np.ndarray) -> tuple[float, str]:
    """How far (mm) an object at ``pose`` reaches out of the bag interior (0 inside), and which
    side: ``points`` are its vertices in its re-centred frame (:func:`object_points`)."""
    lo, hi = aabb(points, [float(a) for a in pose.rotation_deg])
    pos = np.array([float(p) for p in pose.position])
    lo, hi = pos + lo, pos + hi
    sx, sy, sz = (float(s) for s in interior)
    sides = {"-x": -sx / 2 - lo[0], "+x": hi[0] - sx / 2, "-y": -sy / 2 - lo[1], "+y": hi[1] - sy / 2,
             "floor (-z)": -lo[2], "top (+z)": hi[2] - sz}
    side = max(sides, key=sides.get)
    return max(0.0, float(sides[side])), side
