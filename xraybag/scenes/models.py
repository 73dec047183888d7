"""The scene format: pydantic models of a scene file.

Lengths in mm, energies in keV, densities in g/cm3, angles in degrees. Positions are in the bag
frame: origin at the centre of the bag's interior floor, x along the conveyor, z up. A pose places
the centre of the object's bounding box. Numeric fields accept distributions (see
:mod:`xraybag.scenes.numbers`). Unknown keys are errors.

A *spec* may hold distributions, ``repeat`` and ``template``; :func:`xraybag.scenes.sample.sample`
turns it into a *concrete* scene of the same type in which every number is fixed, templates are
expanded and every object has a pose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from xraybag.scenes.colours import Colour, colour_shorthand
from xraybag.scenes.numbers import Dist, name_or_choice, number, vector
from xraybag.scenes.scanning import (  # noqa: F401 - re-exported: the scene format's scanner parts
    CT,
    CTReconstruction,
    Detector,
    Layer,
    Noise,
    Scatter,
    Spectrum,
    _noise,
)
from xraybag.scenes.shapes import Extrude, Revolve, Sweep
from xraybag.scenes.sheets import Fitting, Ply, Sheet

Pos = number(gt=0)
NonNeg = number(ge=0)
Num = number()
Fraction = number(gt=0, le=1)
Count = number(ge=0, integer=True)
Vec3 = vector(3)
Vec3Pos = vector(3, gt=0)
MaterialName = name_or_choice("a material name")
#: Objects one bag may hold (repeats included), and copies one entry may ask for: no real bag comes
#: close (the built-in scenes hold under a hundred), and every object costs time and memory.
MAX_OBJECTS = 10000
TemplateName = name_or_choice("a template name")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---------------------------------------------------------------------------------------- shapes


class Box(Strict):
    """A rectangular box centred on the origin."""

    size: Vec3Pos = Field(description="edge lengths along x, y, z (mm)")


class Cylinder(Strict):
    """A right circular cylinder along z, centred on the origin."""

    radius: Pos = Field(description="mm")
    height: Pos = Field(description="mm, along z")


class Sphere(Strict):
    radius: Pos = Field(description="mm")


class Ellipsoid(Strict):
    radii: Vec3Pos = Field(description="semi-axes along x, y, z (mm)")


class Cone(Strict):
    """A truncated cone (frustum) along z, centred on the origin."""

    radius_bottom: NonNeg = Field(description="radius at z = -height/2 (mm)")
    radius_top: NonNeg = Field(description="radius at z = +height/2 (mm)")
    height: Pos = Field(description="mm")

    @model_validator(mode="after")
    def _not_both_zero(self):
        if self.radius_bottom == 0 and self.radius_top == 0:
            raise ValueError("radius_bottom and radius_top cannot both be 0")
        return self


def _mesh_scale(s: Any) -> Any:
    def pos(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < float("inf")

    if pos(s):
        return float(s)
    if isinstance(s, list) and len(s) == 3 and all(pos(x) for x in s):
        return [float(x) for x in s]
    raise ValueError("expected a positive number or 3 positive numbers")


class Mesh(Strict):
    """A closed (watertight) triangle mesh file: STL, OBJ, PLY, GLB/GLTF, OFF."""

    path: str = Field(description="relative to the scene file; may not leave its folder or the asset roots")
    scale: Annotated[Any, BeforeValidator(_mesh_scale)] = Field(
        1.0, description="a positive number, or 3 positive numbers per axis (mesh units to mm)"
    )


SHAPE_KINDS = ("box", "cylinder", "sphere", "ellipsoid", "cone", "mesh", "extrude", "sweep", "revolve")


class Shape(Strict):
    """Exactly one of the shape kinds."""

    box: Box | None = None
    cylinder: Cylinder | None = None
    sphere: Sphere | None = None
    ellipsoid: Ellipsoid | None = None
    cone: Cone | None = None
    mesh: Mesh | None = None
    extrude: Extrude | None = None
    sweep: Sweep | None = None
    revolve: Revolve | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in SHAPE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(SHAPE_KINDS)}; got {len(given)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SHAPE_KINDS if getattr(self, k) is not None)

    @property
    def params(self) -> BaseModel:
        return getattr(self, self.kind)


# ------------------------------------------------------------------------------ objects and parts


class Pose(Strict):
    position: Vec3 = Field(description="centre of the bounding box (mm), bag frame or parent frame")
    rotation_deg: Vec3 = Field(
        [0.0, 0.0, 0.0],
        description="rotations about the fixed x, then y, then z axes (degrees): R = Rz Ry Rx",
    )


class Fill(Strict):
    material: MaterialName = Field(description="the liquid (or granular) content")
    level: Fraction = Field(
        description="fraction of the container's interior volume filled; the surface is horizontal "
        "in the bag frame, applied after the container's pose is known"
    )


class Container(Strict):
    """Makes the shape hollow with walls of the given thickness, optionally partly filled."""

    wall: Pos = Field(description="wall thickness (mm)")
    fill: Fill | None = None


def _fixed_num(*xs: Any) -> bool:
    return not any(isinstance(x, Dist) for x in xs)


def _cone_room(rb: float, rt: float, h: float, w: float) -> bool:
    """Whether a frustum has a cavity inside walls ``w`` thick (as engine.solids.meshes hollows it)."""
    s = (rt - rb) / h
    shift = w * (1.0 + s * s) ** 0.5
    z0, z1 = w, h - w
    r0, r1 = rb + s * z0 - shift, rb + s * z1 - shift
    if z1 <= z0 or (r0 <= 0 and r1 <= 0):
        return False
    if r0 < 0:
        z0 -= r0 / s
    if r1 < 0:
        z1 -= r1 / s
    return z1 - z0 > 0


def check_wall(shape: Shape | None, container: Container | None) -> None:
    """A container wall must leave a cavity: thinner than half the shape's smallest dimension
    (box, cylinder, sphere, ellipsoid, cone with fixed numbers; other shapes are checked when built)."""
    if shape is None or container is None or isinstance(container.wall, Dist):
        return
    w, kind, p = float(container.wall), shape.kind, shape.params
    if kind == "box" and _fixed_num(*p.size):
        room, what = min(p.size) > 2 * w, f"box (smallest edge {min(p.size):g} mm)"
    elif kind == "cylinder" and _fixed_num(p.radius, p.height):
        room, what = p.radius > w and p.height > 2 * w, f"cylinder (radius {p.radius:g}, height {p.height:g} mm)"
    elif kind == "sphere" and _fixed_num(p.radius):
        room, what = p.radius > w, f"sphere of radius {p.radius:g} mm"
    elif kind == "ellipsoid" and _fixed_num(*p.radii):
        room, what = min(p.radii) > w, f"ellipsoid (smallest radius {min(p.radii):g} mm)"
    elif kind == "cone" and _fixed_num(p.radius_bottom, p.radius_top, p.height):
        room = _cone_room(float(p.radius_bottom), float(p.radius_top), float(p.height), w)
        what = f"cone (radii {p.radius_bottom:g} and {p.radius_top:g}, height {p.height:g} mm)"
    else:
        return
    if not room:
        raise ValueError(f"container.wall: {w:g} mm leaves no cavity in the {what}; "
                         "a wall must be thinner than half the shape's smallest dimension")


class Part(Strict):
    """A node of an object's tree: a shape of one material, placed in its parent's frame."""

    name: str | None = None
    shape: Shape | None = None
    material: MaterialName | None = None
    pose: Pose | None = Field(None, description="local transform in the parent frame (default identity)")
    container: Container | None = None
    parts: list["Part"] = Field(default_factory=list, description="child parts")

    @model_validator(mode="after")
    def _shape_material(self):
        if self.shape is None and not self.parts:
            raise ValueError("a part needs a shape (with a material) or parts")
        if self.shape is not None and self.material is None:
            raise ValueError("a part with a shape needs a material")
        if self.shape is None and (self.material is not None or self.container is not None):
            raise ValueError("material and container need a shape")
        check_wall(self.shape, self.container)
        return self


class Template(Strict):
    """A reusable object definition (see ``templates:`` and ``template:``)."""

    shape: Shape | None = None
    material: MaterialName | None = None
    container: Container | None = None
    parts: list[Part] = Field(default_factory=list)
    label: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _body(self):
        if self.shape is None and not self.parts:
            raise ValueError("a template needs a shape (with a material) or parts")
        if self.shape is not None and self.material is None:
            raise ValueError("a shape needs a material")
        check_wall(self.shape, self.container)
        return self


class Object(Strict):
    """An object in the bag: one annotation if it has a label, whatever its parts."""

    name: str | None = None
    repeat: number(ge=0, le=MAX_OBJECTS, integer=True) | None = Field(
        None, description="expand into this many copies (clutter; up to 10000)")
    template: TemplateName | None = Field(None, description="a template name, or {choice: [...]}")
    shape: Shape | None = None
    material: MaterialName | None = None
    container: Container | None = None
    parts: list[Part] = Field(default_factory=list)
    pose: Pose | None = Field(None, description="objects without a pose are packed")
    label: str | None = Field(None, description="category name; labelled objects become annotations")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="parameters of a procedural catalog template (numbers may be distributions)",
    )
    sheet: Sheet | None = Field(None, description="a deformable sheet (needs a material)")
    press: Fraction | None = Field(
        None, description="soft goods (a stack of folded clothes): the physics packer may press the object "
        "along its own z axis to this fraction of its height when the request does not fit; its textile "
        "parts keep their mass (denser by as much) and its other parts ride on them. Boxes and upright "
        "cylinders only; none: rigid")

    @model_validator(mode="after")
    def _body(self):
        if self.press is not None and (self.parts or self.shape is not None):
            for k, part in enumerate(self.parts or [self]):
                rot = part.pose.rotation_deg[:2] if self.parts and part.pose is not None else [0, 0]
                if ((self.parts and part.parts) or part.shape is None or part.shape.kind not in ("box", "cylinder")
                        or any(not isinstance(a, Dist) and float(a) % 360 != 0 for a in rot)):
                    raise ValueError(f"press: {'parts.' + str(k) if self.parts else 'the shape'} is not a box "
                                     "or upright cylinder without parts: only those can be pressed")
        if self.sheet is not None:
            if self.shape is not None or self.parts or self.template is not None:
                raise ValueError("a sheet object has no shape, parts or template")
            if self.press is not None:
                raise ValueError("press: a sheet drapes over the contents; it is not pressed")
            if self.material is None:
                raise ValueError("a sheet needs a material")
            return self
        if self.template is None and self.shape is None and not self.parts:
            raise ValueError("an object needs a shape (with a material), parts, or a template")
        if self.shape is not None and self.material is None and self.template is None:
            raise ValueError("an object with a shape needs a material")
        check_wall(self.shape, self.container)
        return self


# ------------------------------------------------------------------------------------------- bag


class Wall(Strict):
    material: MaterialName = "nylon"
    thickness: NonNeg = Field(1.5, description="mm; 0 for no wall")


class Bag(Strict):
    """The bag: a box of walls, or a shell from the catalog built around the interior ``size`` (the
    packers fill the interior; the shell's rounded wall, zip, trolley, wheels, frame and handles lie
    outside it)."""

    size: Vec3Pos = Field(description="interior size x (conveyor), y, z (up) in mm")
    wall: Wall = Field(default_factory=Wall, description="the box's walls (bags without a shell)")
    shell: TemplateName | None = Field(
        None,
        description="a bag shell ('xraybag catalog list --family bags'): soft_carry_on, hard_suitcase, "
        "backpack, laptop_bag, tote, or {choice: [...]}; its wall material and thickness are its params",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the shell (numbers and materials may be distributions)"
    )

    @model_validator(mode="after")
    def _shell_or_wall(self):
        if self.shell is not None and "wall" in self.model_fields_set:
            raise ValueError("a bag with a shell takes its wall from the shell's params (material, thickness); "
                             "remove wall")
        if self.params and self.shell is None:
            raise ValueError("params need a shell")
        return self


class Packing(Strict):
    """How objects without a pose are placed. ``physics``: largest first, each where a search of
    the whole occupancy map finds it sits lowest with the least empty space under it, laid flat and
    along the bag as a person packs (a labelled object that finds no room has a few unlabelled ones
    taken out for it); objects whose room fails the exact checks are dropped with pybullet and
    refined by a particle-swarm search on the occupancy cost (DEBISim); ``heuristic``: DEBISim's
    drop-and-slide rules without the physics engine; ``random``: a rejection sampler of bounding
    boxes (fastest, loosest). Objects that do not fit are left out and reported."""

    method: Literal["random", "physics", "heuristic"] = Field("random", description="see above")
    attempts: number(ge=0, le=100000, integer=True) = Field(
        200, description="random: placement tries per object (up to 100000)")
    gap: NonNeg = Field(1.0, description="random: minimum clearance between bounding boxes (mm)")
    time_budget: number(gt=0, le=3600) = Field(
        30.0, description="physics, heuristic: seconds per bag (up to 3600); objects not placed by then are left out"
    )
    packings: number(ge=1, le=100, integer=True) | None = Field(
        None, description="physics: a request that does not fit is packed up to this many times with fresh "
        "draws of the order and the starting corner (soft goods pressed after the first, slabs laid first in "
        "every second one and last in the third of every four), and the packing that placed the most "
        "labelled objects, then went furthest before leaving anything out, is kept (1: once; up to 100). "
        "Unset: 4 times, and up to 12 while every packing so far left something out below 60 % hull fill"
    )
    swaps: number(ge=0, le=1000, integer=True) = Field(
        3, description="physics: an unlabelled object that finds no room is swapped in for the last-placed "
        "ones (kept only if they all go back in) until this many swaps of a packing have failed (0: never; up to 1000)")


class MaterialDef(Strict):
    formula: str | None = None
    composition: dict[str, float] | None = Field(
        None, description="mass fractions of elements, formulas or material names"
    )
    density: float = Field(gt=0, description="g/cm3")
    description: str | None = None
    reference: str | None = None
    category: str | None = None
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self):
        if (self.formula is None) == (self.composition is None):
            raise ValueError("give exactly one of formula or composition")
        return self


# -------------------------------------------------------------------------------------- scanners


class Scanner(Strict):
    """A 2D scanner view. ``line_scan``: a carry-on scanner, fan beam across the conveyor, each image
    row one fan projection as the bag moves. ``radiograph``: point source and flat panel (or a
    parallel beam)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="used in file names")
    type: Literal["line_scan", "radiograph", "ct"]
    spectrum: Spectrum = Field(default_factory=lambda: Spectrum(kvp=140, filtration={"Al": 2.0}))
    detector: Detector = Field(default_factory=Detector)
    noise: Annotated[Noise, BeforeValidator(_noise)] = Field(default_factory=Noise)
    pitch: Pos = Field(1.0, description="pixel pitch (mm): conveyor step per row and detector element size")
    # line_scan
    view: Literal["vertical", "horizontal"] = Field(
        "vertical", description="line_scan: beam upwards from below, or sideways across the tunnel"
    )
    layout: Literal["L", "straight"] = Field("L", description="line_scan: detector arm layout")
    tunnel: vector(2, gt=0) = Field([640.0, 440.0], description="line_scan: tunnel width (y), height (z) in mm")
    source_distance: Pos = Field(
        900.0, description="line_scan: source to the far detector arm (mm)"
    )
    # radiograph
    axis: Literal["z", "-z", "y", "-y", "x", "-x"] = Field(
        "z", description="radiograph: direction of the beam (z: from below, upwards)"
    )
    sod: Pos = Field(1000.0, description="radiograph: source to the bag centre (mm)")
    sdd: Pos = Field(1200.0, description="radiograph: source to detector (mm)")
    panel: vector(2, gt=0) = Field([700.0, 500.0], description="radiograph: panel width, height (mm)")
    parallel: bool = Field(False, description="radiograph: parallel beam instead of a point source")

    # ct
    ct: CT | None = Field(None, description="ct: the CT scanner (default: the checked-baggage machine)")
    colour: Annotated[Colour | None, BeforeValidator(colour_shorthand)] = Field(
        None, description="the display's colour table (pseudo-colour): a table name or [Colour](#colour); "
        "default: standard"
    )

    @model_serializer(mode="wrap")
    def _no_colour(self, handler):
        # a scanner without a colour table dumps as it did before the field existed
        data = handler(self)
        if self.colour is None and isinstance(data, dict):
            data.pop("colour", None)
        return data

    @model_validator(mode="after")
    def _geometry(self):
        if self.type == "radiograph" and not self.parallel and self.sdd <= self.sod:
            raise ValueError("sdd must be larger than sod")
        if self.type != "ct" and self.ct is not None:
            raise ValueError("ct settings are for type ct")
        if self.type == "ct" and self.colour is not None:
            raise ValueError("colour is for line_scan and radiograph scanners (CT shows grey slices)")
        if self.type == "ct":
            if self.ct is None:
                self.ct = CT()
            if "spectrum" not in self.model_fields_set:
                # 2 keV bins: a CT scan has hundreds of millions of rays, and the spectral sum
                # is its largest cost after tracing
                self.spectrum = Spectrum(kvp=160, filtration={"Al": 2.0, "Cu": 0.1}, energy_bin=2.0)
            if "detector" not in self.model_fields_set:
                kind = {"dual_layer": "dual_sandwich", "photon_counting": "photon_counting"}
                self.detector = Detector(type=kind.get(self.ct.mode, "integrating"))
            want = {"dual_layer": "dual_sandwich", "photon_counting": "photon_counting"}.get(
                self.ct.mode, "integrating"
            )
            if self.detector.type != want:
                raise ValueError(
                    f"ct mode {self.ct.mode} needs a detector of type {want} "
                    f"(the detector is {self.detector.type})"
                )
        return self


def _most(v: Any) -> float:
    """The largest count a ``repeat`` can draw (a normal: its mean + 4 std, within the bound)."""
    if not isinstance(v, Dist):
        return float(v)
    if v.kind == "normal":
        return min(v.args[0] + 4 * v.args[1], MAX_OBJECTS)
    return float(max(v.args))


def _default_scanners() -> list[Scanner]:
    return [Scanner(name="top", type="line_scan")]


class Annotation(Strict):
    hard: Fraction = Field(0.3, description="occlusion ratio from which an object is 'hard'")
    hidden: Fraction = Field(0.7, description="occlusion ratio from which an object is 'hidden'")
    min_pixels: Count = Field(4, description="objects with fewer visible pixels get no annotation")


class Scene(Strict):
    """A scene file."""

    seed: int = Field(0, ge=0, description="seed of every random draw of the scene")
    bag_index: int | None = Field(
        None, ge=0, description="set in concrete scenes: the index of the bag in its dataset"
    )
    include: list[str] = Field(
        default_factory=list, description="YAML files whose materials and templates are added"
    )
    materials: dict[str, MaterialDef] = Field(default_factory=dict)
    templates: dict[str, Template] = Field(default_factory=dict)
    bag: Bag
    objects: list[Object] = Field(default_factory=list)
    packing: Packing = Field(default_factory=Packing)
    scanners: list[Scanner] = Field(default_factory=_default_scanners)
    annotation: Annotation = Field(default_factory=Annotation)
    tolerance: float = Field(
        0.01, gt=0, le=5, description="chord tolerance of curved shapes' meshes (mm)"
    )

    @field_validator("objects")
    @classmethod
    def _not_too_many(cls, objects: list[Object]) -> list[Object]:
        most = sum(1 if o.repeat is None else _most(o.repeat) for o in objects)
        if most > MAX_OBJECTS:
            raise ValueError(f"a bag could hold up to {most:.0f} objects ({len(objects)} entries with their "
                             f"repeats); at most {MAX_OBJECTS} are allowed")
        return objects

    @model_validator(mode="after")
    def _names(self):
        names = [s.name for s in self.scanners]
        if not names:
            raise ValueError("scanners: expected at least one scanner")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"scanners: duplicate name {sorted(dup)[0]!r}")
        if sum(s.type == "ct" for s in self.scanners) > 1:
            raise ValueError("scanners: at most one scanner of type ct (its volumes go to OUT/ct/<bag>/)")
        return self


class Include(Strict):
    """An included file: materials and templates only (and its own includes)."""

    include: list[str] = Field(default_factory=list)
    materials: dict[str, MaterialDef] = Field(default_factory=dict)
    templates: dict[str, Template] = Field(default_factory=dict)


Part.model_rebuild()
