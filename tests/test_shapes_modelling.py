"""The modelled shape kinds extrude, sweep and revolve: volumes against closed forms (shoelace areas,
the prismatoid, the chamfered box, Pappus), closed outward-wound meshes, exact container cavities,
scenes that load, pack and render (with traced path lengths against the analytic thickness), and
one-line errors that name the field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import write
from scipy.integrate import quad

from xraybag.engine.solids.meshes import _problem, hollow, shape_mesh
from xraybag.errors import XraybagError
from xraybag.scenes.loader import load_scene
from xraybag.scenes.models import Shape
from xraybag.scenes.sample import dump_scene, sample

TOL = 0.01  # chord tolerance (mm) of the meshes below

# a pistol-frame-like concave outline, given clockwise
FRAME = [[0, 0], [0, 30], [150, 30], [150, 10], [40, 10], [25, -60], [5, -60]]
BLADE = [[0, 0], [180, 0], [215, 18], [200, 26], [0, 26]]


def shape(d: dict) -> Shape:
    return Shape.model_validate(d)


def mesh(d: dict, tolerance: float = TOL):
    m = shape_mesh(shape(d), tolerance)
    assert _problem(m, "test") is None
    assert m.is_watertight and m.is_winding_consistent and m.is_volume
    assert m.volume > 0
    return m


def shoelace(points) -> float:
    """|area| of a simple polygon (the surveyor's formula)."""
    p = np.asarray(points, dtype=float)
    x, y = p[:, 0], p[:, 1]
    return abs(sum(x[i] * y[(i + 1) % len(p)] - x[(i + 1) % len(p)] * y[i] for i in range(len(p)))) / 2


def centroid_y(points) -> float:
    p = np.asarray(points, dtype=float)
    x, y = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    return float(((y + y1) * cross).sum() / (3 * cross.sum()))


def regular(n: int, radius: float, centre=(0.0, 0.0)) -> list[list[float]]:
    a = 2 * np.pi * np.arange(n) / n
    return np.column_stack([centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a)]).tolist()


# ------------------------------------------------------------------------------------ extrude


def test_extrude_volume_is_area_times_height_and_centred():
    m = mesh({"extrude": {"outline": FRAME, "height": 12}})
    assert m.volume == pytest.approx(shoelace(FRAME) * 12, rel=1e-9)
    np.testing.assert_allclose(m.bounds, [[-75, -45, -6], [75, 45, 6]], atol=1e-9)


def test_extrude_holes_are_subtracted():
    holes = [regular(6, 8, (40, 20)), regular(6, 8, (100, 20))]
    outline = [[0, 0], [140, 0], [140, 40], [0, 40]]
    m = mesh({"extrude": {"outline": outline, "holes": holes, "height": 5}})
    area = 140 * 40 - 2 * shoelace(holes[0])
    assert m.volume == pytest.approx(area * 5, rel=1e-9)


@pytest.mark.parametrize("taper", [0.5, 0.2])
def test_uniform_taper_is_a_prismatoid(taper):
    m = mesh({"extrude": {"outline": FRAME, "height": 20, "taper": taper}})
    a = shoelace(FRAME)
    assert m.volume == pytest.approx(20 / 3 * (a + a * taper**2 + math.sqrt(a * a * taper**2)), rel=1e-9)
    np.testing.assert_allclose(m.bounds[:, 2], [-10, 10], atol=1e-12)


def test_blade_thins_to_an_edge():
    """2 mm spine at the largest y, 0.3 mm edge at the smallest: the volume is the area times the
    thickness at the centroid (the thickness is linear), and the faces are at +-t(y)/2."""
    m = mesh({"extrude": {"outline": BLADE, "height": 2, "taper": 0.15, "taper_axis": "-y"}})

    def t(y):  # y in the outline's coordinates
        return 2 * (1 - 0.85 * (26 - y) / 26)

    assert m.volume == pytest.approx(shoelace(BLADE) * t(centroid_y(BLADE)), rel=1e-9)
    y = m.vertices[:, 1] + 13  # the mesh is centred on its bounding box: y from -13 to 13
    np.testing.assert_allclose(np.abs(m.vertices[:, 2]), t(y) / 2, atol=1e-12)
    assert m.bounds[1, 2] == pytest.approx(1.0) and np.abs(m.vertices[np.isclose(y, 0), 2]).max() == pytest.approx(0.15)


def test_chamfer_bevel_of_a_box_is_exact():
    L, W, h, b = 60.0, 40.0, 10.0, 1.5
    m = mesh({"extrude": {"outline": [[0, 0], [L, 0], [L, W], [0, W]], "height": h, "bevel": b,
                          "bevel_shape": "chamfer"}})
    assert m.volume == pytest.approx(L * W * h - 2 * (L + W) * b * b + 8 / 3 * b**3, rel=1e-9)


def test_round_bevel_between_bounds():
    """Each face loses less than perimeter x b**2 to a bevel of b; for a box, the round bevel's
    volume is the integral of the inset cross-sections (the mesh's arc is inscribed: within the
    bevel strips' area times the chord tolerance below it)."""
    L, W, h, b = 60.0, 40.0, 10.0, 2.0
    m = mesh({"extrude": {"outline": [[0, 0], [L, 0], [L, W], [0, W]], "height": h, "bevel": b}})
    v0, perimeter = L * W * h, 2 * (L + W)
    assert v0 - 2 * perimeter * b * b < m.volume < v0

    def lost(delta):  # cross-section area lost at height delta above a face
        d = b - math.sqrt(b * b - (b - delta) ** 2)
        return L * W - (L - 2 * d) * (W - 2 * d)

    exact = v0 - 2 * quad(lost, 0, b, epsabs=1e-12)[0]
    strips = 2 * perimeter * math.pi / 2 * b
    assert exact - strips * TOL <= m.volume <= exact + 1e-9

    frame = mesh({"extrude": {"outline": FRAME, "height": 12, "bevel": 1.0}})
    v0 = shoelace(FRAME) * 12
    perimeter = sum(math.dist(FRAME[i], FRAME[(i + 1) % len(FRAME)]) for i in range(len(FRAME)))
    assert v0 - 2 * perimeter * 1.0 < frame.volume < v0


def test_spline_outline_is_smooth_and_follows_the_tolerance():
    """A closed spline through 16 points of a circle of radius 40 is the circle to within the cubic
    interpolation error 5/384 h**4 / R**3 (h the spacing); its polygon is within the chord
    tolerance of the spline, so the disk's area is matched to the perimeter times both."""
    r, n = 40.0, 16
    h = 2 * r * math.sin(math.pi / n)
    e = 5 / 384 * h**4 / r**3
    m = mesh({"extrude": {"outline": regular(n, r), "height": 5, "spline": True}})
    assert abs(m.volume - math.pi * r * r * 5) <= 2 * math.pi * r * (TOL + e) * 5
    coarse = mesh({"extrude": {"outline": regular(n, r), "height": 5, "spline": True}}, tolerance=1.0)
    assert len(coarse.vertices) < len(m.vertices)


# -------------------------------------------------------------------------------------- sweep


def test_sweep_straight_rod_and_tube():
    r, L = 6.0, 120.0
    rod = mesh({"sweep": {"path": [[0, 0, 0], [L, 0, 0]], "radius": r}})
    exact = math.pi * r * r * L
    assert exact - 2 * math.pi * r * TOL * L <= rod.volume <= exact
    np.testing.assert_allclose(rod.bounds, [[-L / 2, -r, -r], [L / 2, r, r]], atol=1e-9)

    ri = 4.5
    tube = mesh({"sweep": {"path": [[0, 0, 0], [0, 30, 40]], "radius": r, "inner_radius": ri}})
    exact = math.pi * (r * r - ri * ri) * 50
    assert abs(tube.volume - exact) <= 2 * math.pi * (r + ri) * TOL * 50


@pytest.mark.parametrize("spline", [False, True])
def test_sweep_closed_circle_is_a_torus(spline):
    """Pappus: 2 pi**2 R r**2. The mesh's surface is within the chord errors of the cross-section
    and of the centre line (each <= TOL) of the torus's (area 4 pi**2 R r), so the volumes differ by
    less than area x 2 TOL, plus the spline's error through 48 points of the circle (5/384 h**4 / R**3
    = 2e-4 mm)."""
    R, r = 50.0, 5.0
    if spline:
        a = 2 * np.pi * np.arange(48) / 48
    else:  # corners on the circle, as many as the chord tolerance needs on the tube's outer side
        n = math.ceil(math.pi / math.acos(1 - TOL / (R + r)))
        a = 2 * np.pi * np.arange(n) / n
    path = np.column_stack([R * np.cos(a), R * np.sin(a), np.zeros_like(a)]).tolist()
    m = mesh({"sweep": {"path": path, "radius": r, "closed": True, "spline": spline}})
    exact = 2 * math.pi**2 * R * r * r
    assert abs(m.volume - exact) <= 4 * math.pi**2 * R * r * (2 * TOL + 1e-3)
    if not spline:  # vertices on the true surface
        assert m.volume < exact


def test_sweep_mitred_corners_keep_the_volume():
    """A bent rod with square corners: the mitred joints add and remove equal wedges, so the volume
    is the section area times the centre line's length."""
    r = 5.0
    path = [[0, 0, 0], [100, 0, 0], [100, 80, 0], [100, 80, 60]]
    m = mesh({"sweep": {"path": path, "radius": r}})
    exact = math.pi * r * r * 240
    assert exact - 2 * math.pi * r * TOL * 240 <= m.volume <= exact


# ------------------------------------------------------------------------------------ revolve


def test_revolve_cylinder_profile():
    r, h = 25.0, 80.0
    m = mesh({"revolve": {"profile": [[r, 0], [r, h]]}})
    exact = math.pi * r * r * h
    assert exact - 2 * math.pi * r * TOL * h <= m.volume <= exact
    np.testing.assert_allclose(m.bounds, [[-r, -r, -h / 2], [r, r, h / 2]], atol=1e-9)
    # given from the top down, and with the axis points written out: the same solid
    m2 = mesh({"revolve": {"profile": [[0, h], [r, h], [r, 0], [0, 0]]}})
    assert m2.volume == pytest.approx(m.volume, rel=1e-12)


@pytest.mark.parametrize("spline", [False, True])
def test_revolve_sphere_profile(spline):
    """4/3 pi r**3, to the sphere's area times the chord errors (and, for a spline through 13 points
    of the half circle, its interpolation error 5/384 h**4 / r**3 = 2.5e-3 mm)."""
    r = 40.0
    n = 13 if spline else 2 * math.ceil(math.pi / math.acos(1 - TOL / r))
    a = np.linspace(-np.pi / 2, np.pi / 2, n + 1)
    prof = np.column_stack([r * np.cos(a), r * np.sin(a)])
    prof[[0, -1], 0] = 0.0
    m = mesh({"revolve": {"profile": prof.tolist(), "spline": spline}})
    exact = 4 / 3 * math.pi * r**3
    assert abs(m.volume - exact) <= 4 * math.pi * r * r * (2 * TOL + 3e-3)


def test_bottle_with_neck_and_domed_bottom():
    """The spline passes through every given point (ring vertex 0 lies on +x) and bulges a little
    between them, as an interpolating spline does; the ends are closed on the axis."""
    prof = [[0, 6], [20, 2], [33, 0], [35, 5], [35, 150], [28, 168], [14, 180], [13, 200]]
    m = mesh({"revolve": {"profile": prof, "spline": True}})
    v = m.vertices
    poles = np.sort(v[np.hypot(v[:, 0], v[:, 1]) == 0, 2])
    assert len(poles) == 2
    shift = poles[1] - 200  # the top pole closes the last point (13, 200) on the axis
    assert poles[0] - shift == pytest.approx(6, abs=1e-9)
    for r, z in prof:
        assert np.min(np.hypot(v[:, 0] - r, v[:, 1]) + np.abs(v[:, 2] - (z + shift))) < 1e-9


# --------------------------------------------------------------------------------- containers


def test_containers_have_exact_cavities():
    s = shape({"extrude": {"outline": [[0, 0], [60, 0], [60, 40], [0, 40]], "height": 20}})
    outer, inner = hollow(s, 2.0, TOL)
    assert outer.volume - inner.volume == pytest.approx(60 * 40 * 20 - 56 * 36 * 16, rel=1e-9)

    r, h, w = 30.0, 100.0, 1.5
    outer, inner = hollow(shape({"revolve": {"profile": [[r, 0], [r, h]]}}), w, TOL)
    assert _problem(inner, "cavity") is None
    exact = math.pi * (r * r * h - (r - w) ** 2 * (h - 2 * w))
    assert abs(outer.volume - inner.volume - exact) <= 2 * math.pi * r * TOL * (2 * h)

    # a bottle: the cavity is the profile offset inward, so the wall is w in the body and the neck
    prof = [[35, 0], [35, 150], [14, 175], [14, 200]]
    outer, inner = hollow(shape({"revolve": {"profile": prof}}), w, TOL)
    np.testing.assert_allclose(inner.bounds, [[-35 + w, -35 + w, -100 + w], [35 - w, 35 - w, 100 - w]], atol=1e-5)
    top = inner.vertices[inner.vertices[:, 2] > 90]
    assert np.hypot(top[:, 0], top[:, 1]).max() == pytest.approx(14 - w, abs=1e-5)

    r, L, w = 6.0, 100.0, 1.0
    outer, inner = hollow(shape({"sweep": {"path": [[0, 0, 0], [L, 0, 0]], "radius": r}}), w, TOL)
    exact = math.pi * r * r * L - math.pi * (r - w) ** 2 * (L - 2 * w)
    assert abs(outer.volume - inner.volume - exact) <= 2 * math.pi * r * TOL * 2 * L
    # a tapered extrusion takes the generic scaled cavity
    outer, inner = hollow(shape({"extrude": {"outline": regular(6, 30), "height": 20, "taper": 0.8}}), 1.0, TOL)
    assert _problem(inner, "cavity") is None and 0 < inner.volume < outer.volume


def min_wall(outer, inner) -> float:
    """The thinnest wall between a cavity and the outside of its container (manifold3d's min_gap)."""
    import manifold3d

    from xraybag.engine.solids.meshes import to_manifold

    lo, hi = outer.bounds
    box = manifold3d.Manifold.cube((hi - lo + 20).tolist(), True).translate(((lo + hi) / 2).tolist())
    return (box - to_manifold(outer)).min_gap(to_manifold(inner), 10.0)


@pytest.mark.parametrize("spec", [
    {"extrude": {"outline": FRAME, "height": 12, "holes": [regular(8, 4, (20, 20))]}},
    {"extrude": {"outline": FRAME, "height": 12, "bevel": 2, "spline": True}},
    {"revolve": {"profile": [[35, 0], [35, 150], [14, 175], [14, 200]]}},
    {"sweep": {"path": [[0, 0, 0], [100, 0, 0], [100, 80, 0], [100, 80, 60]], "radius": 5}},
], ids=["extrude", "bevelled-spline", "revolve", "sweep"])
def test_container_walls_are_the_wall_thickness(spec):
    """A concave pistol frame with a hole, a bottle with a neck, a bent rod: the thinnest wall is
    the wall given (within the chord tolerance), where a scaled copy would leave it thick or thin."""
    w = 1.5
    outer, inner = hollow(shape(spec), w, TOL)
    assert _problem(inner, "cavity") is None and 0 < inner.volume < outer.volume
    assert min_wall(outer, inner) == pytest.approx(w, abs=2 * TOL)


def test_container_errors():
    with pytest.raises(XraybagError, match="hollow already"):
        hollow(shape({"sweep": {"path": [[0, 0, 0], [10, 0, 0]], "radius": 3, "inner_radius": 2}}), 0.5)
    with pytest.raises(XraybagError, match="too thick"):
        hollow(shape({"revolve": {"profile": [[5, 0], [5, 10]]}}), 5.0)


# ------------------------------------------------------------------------------------- scenes

SCENE = """
bag: {size: [400, 300, 150], wall: {thickness: 0}}
tolerance: 0.05
objects:
  - name: blade
    shape: {extrude: {outline: BLADE, height: 2, taper: 0.15, taper_axis: -y}}
    material: steel
    pose: {position: [-80, 100, 20]}
    label: knife
  - name: slab
    shape: {extrude: {outline: [[0, 0], [40, 0], [55, 30], [10, 35]], height: 8}}
    material: aluminum
    pose: {position: [120, 100, 20]}
    label: slab
  - name: scissors
    shape: {extrude: {outline: [[0, 0], [60, 0], [60, 25], [0, 25]], holes: [[[8, 6], [24, 6], [24, 19], [8, 19]]],
            height: 4, spline: true, bevel: 0.5}}
    material: stainless_steel
    label: scissors
  - name: cable
    shape: {sweep: {path: [[0, 0, 0], [40, 10, 0], [80, -10, 5], [120, 0, 0]], radius: 3, spline: true}}
    material: copper
    label: cable
  - name: handle
    shape: {sweep: {path: [[0, 0, 0], [0, 0, 60], [50, 0, 60], [50, 0, 0]], radius: 8, inner_radius: 6.5}}
    material: brass
  - name: bottle
    shape: {revolve: {profile: [[0, 4], [30, 0], [30, 90], [12, 105], [12, 120]], spline: true}}
    material: pet
    container: {wall: 1.0, fill: {material: water, level: 0.6}}
    label: bottle
scanners:
  - {name: top, type: radiograph, parallel: true, pitch: 1.0, panel: [400, 300], noise: false}
""".replace("BLADE", str(BLADE))


def test_scene_with_every_new_kind_loads_packs_renders_and_traces_exact_paths(tmp_path):
    from xraybag.engine.output.pipeline import render_bag

    loaded = load_scene(write(tmp_path / "bag.yaml", SCENE))
    # a sampled scene written back loads to the same scene
    concrete = sample(loaded, 0)
    again = load_scene(write(tmp_path / "again.yaml", dump_scene(concrete)))
    assert sample(again, 0) == concrete

    result = render_bag(loaded, 0)
    names = [o.name for o in result.objects]
    assert len(result.scene.objects) == 6 and {"blade", "slab", "bottle"} <= set(names)
    view = result.views[0]
    for k, lab in view.labels.items():
        assert lab.area > 0, names[k - 1]
    origins, _ = view.geometry.rays()
    steel = view.trace.materials.index("steel")
    alu = view.trace.materials.index("aluminum")
    x, y = origins[..., 0], origins[..., 1]

    # the slab (aluminium, 8 mm; no other object of it) along the beam: its height inside its outline
    lx, ly = x - 120 + 27.5, y - 100 + 17.5  # outline coordinates: the bounding box's centre is (27.5, 17.5)
    inner = (ly > 1) & (ly < 29) & (lx > ly * 10 / 35 + 1) & (lx < 40 + ly * 15 / 30 - 1)
    assert inner.sum() > 500
    np.testing.assert_allclose(view.trace.paths[..., alu][inner], 8.0, atol=1e-4)

    # the blade (steel): 2 mm at the spine, 0.3 mm at the edge, linear in between
    bx, by = x + 80 + 107.5, y - 100 + 13
    inside = (by > 1) & (by < 25) & (bx > 1) & (bx < 170)
    assert inside.sum() > 2000
    np.testing.assert_allclose(view.trace.paths[..., steel][inside], 2 * (1 - 0.85 * (26 - by[inside]) / 26), atol=1e-4)


def test_scene_format_example_of_the_modelled_shapes(tmp_path):
    """The objects of docs/scene-format.md's example load, and mesh to closed solids."""
    from pathlib import Path

    from xraybag.engine.solids.scene import object_nodes

    text = (Path(__file__).parent.parent / "docs" / "scene-format.md").read_text()
    block = text.split("Three kinds model", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    body = "\n".join("  " + line for line in block.splitlines())
    scene = sample(load_scene(write(tmp_path / "bag.yaml", f"bag: {{size: [500, 300, 200]}}\nobjects:\n{body}\n")))
    kinds = set()
    for obj in scene.objects:
        for node in object_nodes(obj, obj.name):
            kinds.add(node.shape.kind)
            m = shape_mesh(node.shape, scene.tolerance)
            assert _problem(m, node.part) is None
            if node.container is not None:
                outer, inner = hollow(node.shape, node.container.wall, scene.tolerance)
                assert _problem(inner, node.part) is None and 0 < inner.volume < outer.volume
    assert kinds == {"extrude", "sweep", "revolve"}


# ------------------------------------------------------------------------------------- errors


def error_of(tmp_path, shape_text: str) -> str:
    text = f"bag: {{size: [400, 300, 150]}}\nobjects:\n  - shape: {shape_text}\n    material: steel\n"
    with pytest.raises(XraybagError) as e:
        load_scene(write(tmp_path / "bag.yaml", text))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "bag.yaml"))
    return msg


@pytest.mark.parametrize("shape_text,where,what", [
    ("{extrude: {outline: [[0, 0], [10, 10], [10, 0], [0, 10]], height: 2}}",
     "objects[0].shape.extrude", "outline: crosses or touches itself near (5, 5)"),
    ("{extrude: {outline: [[0, 0], [10, 0], [10, 10]], height: 2, taper: 0}}",
     "objects[0].shape.extrude.taper", "> 0"),
    ("{extrude: {outline: [[0, 0], [10, 0], [10, 10]], holes: [[[20, 1], [22, 1], [21, 2]]], height: 2}}",
     "objects[0].shape.extrude", "holes[0]: lies outside the outline"),
    ("{extrude: {outline: [[0, 0], [10, 0], [10, 10]], height: 2, bevel: 1}}",
     "objects[0].shape.extrude", "bevel: 1 mm must be less than half"),
    ("{extrude: {outline: [[0, 0], [10], [10, 10]], height: 2}}",
     "objects[0].shape.extrude.outline", "expected points of 2 numbers each"),
    ("{sweep: {path: [[0, 0, 0], [20, 0, 0], [24, 2, 0], [20, 4, 0], [0, 4, 0]], radius: 3, spline: true}}",
     "objects[0].shape.sweep", "path: the spline bends with radius"),
    ("{sweep: {path: [[0, 0, 0], [30, 0, 0], [0, 5, 0]], radius: 3}}",
     "objects[0].shape.sweep", "path: the corner at point 1 turns"),
    ("{sweep: {path: [[0, 0, 0], [50, 0, 0], [50, 50, 0], [25, 50, 0], [25, -50, 2]], radius: 3}}",
     "objects[0].shape.sweep", "path: passes within"),
    ("{sweep: {path: [[0, 0, 0], [50, 0, 0]], radius: 3, inner_radius: 3}}",
     "objects[0].shape.sweep", "inner_radius: 3 mm must be smaller than radius 3 mm"),
    ("{revolve: {profile: [[10, 0], [-1, 5], [10, 10]]}}",
     "objects[0].shape.revolve", "profile: r must be >= 0"),
    ("{revolve: {profile: [[10, 0], [0, 5], [10, 10]]}}",
     "objects[0].shape.revolve", "profile: only its first and last points may lie on the axis"),
])
def test_bad_input_is_one_line_naming_the_field(tmp_path, shape_text, where, what):
    msg = error_of(tmp_path, shape_text)
    assert f": {where}: " in msg and what in msg, msg


def test_distributions_are_checked_when_sampled(tmp_path):
    """A radius drawn from a distribution is checked against the path when the bag is sampled."""
    text = """
    bag: {size: [400, 300, 150]}
    objects:
      - shape: {sweep: {path: [[0, 0, 0], [30, 0, 0], [0, 10, 0]], radius: {uniform: [6, 7]}}}
        material: steel
    """
    loaded = load_scene(write(tmp_path / "bag.yaml", text))
    with pytest.raises(XraybagError, match="path: the corner at point 1 turns"):
        sample(loaded, 0)


def test_cross3_gives_numpys_cross_bit_for_bit():
    """A swept tube's frames turn with ``cross3``, the one-pair cross product: the same bits as
    ``np.cross`` for ordinary, tiny, huge, zero and signed-zero components."""
    from xraybag.engine.solids.profiles import cross3

    rng = np.random.default_rng(3)
    a = rng.normal(size=(4000, 3)) * rng.choice([1e-300, 1e-8, 1.0, 1e8, 1e300], size=(4000, 1))
    b = rng.normal(size=(4000, 3))
    a[::7, 1] = 0.0
    b[::5, 2] = -0.0
    b[::11] = a[::11]  # parallel: an exact zero vector
    for x, y in zip(a, b, strict=True):
        assert cross3(x, y).tobytes() == np.cross(x, y).tobytes()
