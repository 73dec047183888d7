"""The modelled shape kinds of the scene format: ``extrude``, ``sweep`` and ``revolve``.

Their point lists (outlines, paths, profiles) are fixed numbers in mm; their other numbers may be
distributions, as everywhere. Like every shape, each is centred on the centre of its bounding box
in its own frame (a pose places that centre), so the points only matter relative to each other.
The checks here are those the meshing makes (:mod:`xraybag.engine.solids.curves`, splines
sampled at the default chord tolerance); checks that need a number given as a distribution run
when the sampled scene is checked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xraybag.scenes.numbers import Dist, number

Pos = number(gt=0)
NonNeg = number(ge=0)
Fraction = number(gt=0, le=1)
CHECK_TOLERANCE = 0.01  # mm: the chord tolerance splines are checked at (the scene default)


class _Strict(BaseModel):  # as models.Strict (which imports this module)
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _points(value: list[list[float]], dim: int, closed: bool) -> list[list[float]]:
    from xraybag.engine.solids.curves import points_error

    problem = points_error(value, dim, closed)
    if problem:
        raise ValueError(problem)
    return value


def _fixed(*xs) -> bool:
    return not any(isinstance(x, Dist) for x in xs)


class Extrude(_Strict):
    """A prism: a closed outline in the x-y plane, with optional holes, extruded along z (blades,
    pistol frames, scissors with finger loops, wrench jaws). Optionally smoothed by a spline, tapered
    (the top face smaller, or the thickness falling across the outline to an edge) and bevelled.
    Centred, like every shape, on the centre of its bounding box: z from -height/2 to height/2, and
    the outline's coordinates matter only relative to each other."""

    outline: list[list[float]] = Field(
        description="[x, y] points (mm) of a closed polygon, in either winding (the last point joins the "
        "first); at least 3, and it may not cross or touch itself",
    )
    holes: list[list[list[float]]] = Field(
        default_factory=list,
        description="outlines of holes through the prism ([x, y] points, as outline): inside the outline, "
        "not touching it or each other",
    )
    height: Pos = Field(description="mm, along z; with taper_axis the thickness at the thick side")
    spline: bool = Field(
        False,
        description="smooth the outline and holes: closed cubic splines through their points, sampled to "
        "the scene's chord tolerance (a spline passes through every point and bulges between sparse "
        "ones: give points along straight runs)",
    )
    taper: Fraction = Field(
        1.0,
        description="without taper_axis: the scale of the top face relative to the bottom face, about "
        "the centre of the outline's bounding box (1: a straight prism); with taper_axis: the thickness "
        "at the thin side relative to height",
    )
    taper_axis: Literal["x", "-x", "y", "-y"] | None = Field(
        None,
        description="thin the prism across the outline instead: the thickness falls linearly from height "
        "at the far side against this direction to taper x height at the far side along it, symmetric "
        "about z = 0 (a kitchen-knife blade: height 2, taper 0.15, taper_axis -y: a 2 mm spine at the "
        "largest y, a 0.3 mm edge at the smallest)",
    )
    bevel: NonNeg = Field(
        0.0,
        description="mm: round or chamfer the edges of the top and bottom faces over this width and "
        "height (the outline is inset by up to bevel, mitred at its corners); 0: sharp edges",
    )
    bevel_shape: Literal["round", "chamfer"] = Field("round", description="a quarter circle or a 45 degree cut")

    @field_validator("outline")
    @classmethod
    def _outline(cls, v):
        return _points(v, 2, True)

    @field_validator("holes")
    @classmethod
    def _holes(cls, v):
        return [_points(h, 2, True) for h in v]

    @model_validator(mode="after")
    def _geometry(self):
        from xraybag.engine.solids.curves import check_extrude, outline_rings

        rings = outline_rings(self.outline, self.holes, self.spline, CHECK_TOLERANCE)
        if _fixed(self.height, self.taper, self.bevel):
            check_extrude(rings, self.height, self.taper, self.taper_axis, self.bevel)
        return self


class Sweep(_Strict):
    """A tube: a circle, or an annulus, swept along a path in 3D, with flat caps at the ends of an
    open path (cables, wires, frame tubes and trolley handles, rings). Centred on the centre of its
    bounding box (of the tube, not of the path)."""

    path: list[list[float]] = Field(
        description="[x, y, z] points (mm) of the tube's centre line, at least 2 (3 when closed); without "
        "spline its corners are mitred joints, and each segment must hold radius x tan(turn / 2) at "
        "each end",
    )
    radius: Pos = Field(description="outer radius (mm)")
    inner_radius: NonNeg = Field(
        0.0, description="mm; > 0: a hollow tube with this bore (trolley handle, frame tube); 0: a solid rod"
    )
    spline: bool = Field(
        False,
        description="a smooth curve: a cubic spline through the points, sampled to the scene's chord "
        "tolerance; its bend radius must stay above radius",
    )
    closed: bool = Field(False, description="join the last point to the first: a ring or loop, without caps")

    @field_validator("path")
    @classmethod
    def _path(cls, v):
        return _points(v, 3, False)

    @model_validator(mode="after")
    def _geometry(self):
        from xraybag.engine.solids.curves import check_path, points_error

        if self.closed:
            problem = points_error(self.path, 3, True)
            if problem:
                raise ValueError(f"path: {problem} for a closed path")
        if _fixed(self.radius, self.inner_radius) and self.inner_radius >= self.radius:
            raise ValueError(
                f"inner_radius: {self.inner_radius:g} mm must be smaller than radius {self.radius:g} mm"
            )
        if _fixed(self.radius):
            check_path(self.path, self.spline, self.closed, self.radius, CHECK_TOLERANCE)
        return self


class Revolve(_Strict):
    """A solid of revolution about z: a profile of [r, z] points turned a full circle (bottles with
    necks and shoulders, cans with domed ends, knobs). Centred on the centre of its bounding box:
    the axis is the z axis, and the profile's heights matter only relative to each other."""

    profile: list[list[float]] = Field(
        description="[r, z] points (mm, r >= 0) of the outline from the bottom to the top (or the top to "
        "the bottom); both ends are joined to the axis at their heights, so only the first and last "
        "points may lie on it (r = 0); the closed outline may not cross itself",
    )
    spline: bool = Field(
        False,
        description="a smooth outline: a cubic spline through the points, sampled to the scene's chord "
        "tolerance (the segments joining the ends to the axis stay straight; the spline bulges "
        "between sparse points: give points along straight runs)",
    )

    @field_validator("profile")
    @classmethod
    def _profile(cls, v):
        return _points(v, 2, False)

    @model_validator(mode="after")
    def _geometry(self):
        from xraybag.engine.solids.curves import revolve_profile

        revolve_profile(self.profile, self.spline, CHECK_TOLERANCE)
        return self
