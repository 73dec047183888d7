"""The deformable sheets of the scene format: ``sheet:`` with its plies and fittings.

A sheet (a garment, a towel, a sheet explosive) is laid flat above the packed contents and draped
over them (:mod:`xraybag.engine.solids.sheets`). Its *plies* thicken it where the fabric lies
doubled (hems, seams, collars, pockets, folded-back sleeves); its *fittings* are small rigid parts
sewn on (buttons, snaps and rivets, zips) that ride on the draped top. Both are given in the sheet's
own flat frame: millimetres from the sheet's centre, u along its first size, v along its second.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xraybag.scenes.numbers import Dist, name_or_choice, number, vector

Pos = number(gt=0)
NonNeg = number(ge=0)
PlyCount = number(gt=0, integer=True)
MaterialName = name_or_choice("a material name")


class _Strict(BaseModel):  # as models.Strict (which imports this module)
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Ply(_Strict):
    """Extra layers of the sheet's own fabric over a rectangle of its flat extent: a hem, a seam, a
    collar, a pocket, a sleeve folded back. Where plies overlap their layers add up."""

    min: vector(2) = Field(description="corner (u, v) of the rectangle, mm from the sheet's centre")
    max: vector(2) = Field(description="opposite corner (u, v), mm")
    layers: PlyCount = Field(1, description="extra layers of the sheet's thickness")

    @model_validator(mode="after")
    def _corners(self):
        if not any(isinstance(x, Dist) for x in (*self.min, *self.max)):
            if self.max[0] <= self.min[0] or self.max[1] <= self.min[1]:
                raise ValueError("max must exceed min along u and v")
        return self


FITTING_KINDS = ("button", "snap", "zip")


class Fitting(_Strict):
    """A small rigid part sewn onto the sheet, resting on its draped top (never inside it).

    ``button``: a disc of diameter ``size`` and ``height`` at ``at``. ``snap``: a press stud or
    rivet (the same disc). ``zip``: a chain ``size`` mm wide and ``height`` tall from ``at`` to
    ``to``: two rows of interlocking teeth (each 2/3 of the width across, half the ``pitch`` along,
    the rows shifted by half a pitch: metal all along the middle, serrated edges), with a slider
    (2 x 1.6 sizes) just before ``at``. Fittings whose top would rise above the bag's interior are left off when the sheet is
    draped (the concrete scene keeps those that are on)."""

    kind: Literal["button", "snap", "zip"]
    at: vector(2) = Field(description="position (u, v), mm from the sheet's centre; a zip's start")
    to: vector(2) | None = Field(None, description="a zip's end (u, v), mm")
    size: Pos = Field(12.0, description="mm: a button's or snap's diameter, a zip's teeth across the line")
    height: Pos = Field(2.0, description="mm: how far it stands above the fabric")
    pitch: number(ge=0.5) = Field(3.0, description="mm: spacing of the teeth in each row of a zip (at least 0.5)")
    material: MaterialName

    @model_validator(mode="after")
    def _zip_end(self):
        if (self.kind == "zip") != (self.to is not None):
            raise ValueError("a zip needs 'to' (its end); buttons and snaps have none")
        return self


class Sheet(_Strict):
    """A deformable sheet (sheet explosive, clothing layer): laid flat above the contents and
    draped over them, keeping its thickness."""

    size: vector(2, gt=0) = Field(description="flat extent along x and y (mm)")
    thickness: Pos = Field(description="mm, of one layer (plies add layers)")
    wrinkles: NonNeg = Field(
        0.0, description="crumpling of a garment: height (mm) of smooth random folds raised on the drape "
        "(less where the bag's lid leaves less room); 0 lies smooth",
    )
    wrinkle_length: Pos = Field(40.0, description="mm: typical distance between the folds")
    plies: list[Ply] = Field(
        default_factory=list,
        description="extra layers over rectangles of the flat sheet (hems, seams, collars, pockets, folds)",
    )
    fittings: list[Fitting] = Field(
        default_factory=list, description="buttons, snaps and zips riding on the draped top")
    drape: list[list[float]] | None = Field(
        None,
        description="set in concrete scenes: heights (mm, bag frame) of the draped sheet on a regular "
        "grid spanning its flat extent (rows along x): its bottom is drape - thickness/2 and its top lies "
        "thickness * layers * sqrt(1 + |grad drape|^2) above the bottom (layers: 1 plus the plies over "
        "the node), so the thickness is kept on slopes",
    )

    @model_validator(mode="after")
    def _inside(self):
        """Plies must overlap the flat sheet and fittings lie on it (checked once the numbers are fixed)."""
        d = self.drape
        if d is not None and (len(d) < 2 or len({len(r) for r in d}) != 1 or len(d[0]) < 2
                              or not all(math.isfinite(x) for r in d for x in r)):
            raise ValueError("drape: expected a grid of finite heights: at least 2 rows of the same length (>= 2)")
        if any(isinstance(x, Dist) for x in self.size):
            return self
        a, b = self.size[0] / 2.0 + 1e-6, self.size[1] / 2.0 + 1e-6
        for k, ply in enumerate(self.plies):
            lo, hi = ply.min, ply.max
            if not any(isinstance(x, Dist) for x in (*lo, *hi)) and (lo[0] >= a or lo[1] >= b or hi[0] <= -a or hi[1] <= -b):
                raise ValueError(f"plies.{k}: the rectangle lies outside the sheet (size {self.size[0]:g} x {self.size[1]:g})")
        for k, fit in enumerate(self.fittings):
            for key in ("at", "to"):
                pt = getattr(fit, key)
                if pt is not None and not any(isinstance(x, Dist) for x in pt) and (abs(pt[0]) > a or abs(pt[1]) > b):
                    raise ValueError(f"fittings.{k}.{key}: ({pt[0]:g}, {pt[1]:g}) lies outside the sheet "
                                     f"(u within +-{self.size[0] / 2:g}, v within +-{self.size[1] / 2:g})")
        return self

