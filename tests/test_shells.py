"""Bag shells: closed parts that stay out of the packing interior and out of each other, the wall
seen by the tracer with its analytic path length, the DSL (names, params, errors), and rendering."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest
import trimesh

from xraybag.engine.solids.shells import BUILDERS, SHELL_REACH, rounded_box, rounded_rect_path, shell_parts
from xraybag.errors import XraybagError
from xraybag.scenes.catalog.bags import SHELLS
from xraybag.scenes.loader import load_scene


def params(name: str, seed: int, extreme: str | None = None) -> dict:
    """Every parameter of shell ``name`` drawn (or all at the low/high end of their ranges)."""
    entry = SHELLS[name]
    p = entry.draw_params({}, np.random.default_rng(seed))
    if extreme:
        for k, spec in entry.params.items():
            d = spec.default
            if isinstance(d, dict) and "uniform" in d:
                p[k] = d["uniform"][0 if extreme == "low" else 1]
            elif spec.kind == "flag":
                p[k] = 1
    return p


def manifold(part):
    from manifold3d import Manifold, Mesh

    return Manifold(Mesh(vert_properties=part.vertices.astype(np.float32), tri_verts=part.faces.astype(np.uint32)))


def test_registry_and_builders_name_the_same_shells():
    assert set(SHELLS) == set(BUILDERS)
    assert len(SHELLS) >= 5


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("case", [("draw", 0), ("draw", 1), ("low", None), ("high", None)])
def test_shell_parts_are_closed_outside_the_interior_and_apart(name, case):
    how, seed = case
    p = params(name, seed or 0, None if how == "draw" else how)
    size = (480.0, 330.0, 190.0) if how != "low" else (300.0, 200.0, 80.0)
    parts = shell_parts(name, p, size)
    interior = trimesh.creation.box(extents=size)
    interior.apply_translation([0, 0, size[2] / 2])
    from manifold3d import Manifold, Mesh

    box = Manifold(Mesh(vert_properties=interior.vertices.astype(np.float32),
                        tri_verts=interior.faces.astype(np.uint32)))
    solids = []
    for part in parts:
        mesh = trimesh.Trimesh(part.vertices, part.faces, process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent, part.name
        assert mesh.volume > 0, part.name
        m = manifold(part)
        assert (m ^ box).volume() < 1e-6 * m.volume() + 1e-3, f"{part.name} reaches into the interior"
        solids.append((part.name, m))
    for (na, a), (nb, b) in itertools.combinations(solids, 2):
        assert (a ^ b).volume() < 0.05, f"{na} overlaps {nb}"  # mm3: parts that touch, in float32
    v = np.vstack([q.vertices for q in parts])
    reach = max(np.max(-v.min(axis=0) - [size[0] / 2, size[1] / 2, 0]),
                np.max(v.max(axis=0) - [size[0] / 2, size[1] / 2, size[2]]))
    assert 0 < reach <= SHELL_REACH


def test_rounded_box_volume_is_the_closed_form():
    # a box with rounded edges: core + 3 slabs + 12 quarter cylinders + 8 sphere octants
    a, b, c, r = 100.0, 60.0, 40.0, 10.0
    m = rounded_box((a / 2, b / 2, c / 2), r, (0, 0, 0), 0.01)
    x, y, z = a - 2 * r, b - 2 * r, c - 2 * r
    exact = x * y * z + 2 * r * (x * y + y * z + x * z) + np.pi * r**2 * (x + y + z) + 4 / 3 * np.pi * r**3
    # the spheres' polygons lie inside them (inscribed), within the shells' chord tolerance
    assert exact * (1 - 6e-3) < m.volume() <= exact


def test_rounded_rect_path_is_evenly_spaced_on_the_outline():
    pts, tan = rounded_rect_path(100.0, 60.0, 20.0, 2.0)
    perimeter = 4 * (80 + 40) + 2 * np.pi * 20
    assert len(pts) == pytest.approx(perimeter / 2.0, abs=1)
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    assert np.all(steps <= 2.0 + 1e-9) and np.all(steps > 1.99)
    np.testing.assert_allclose(np.linalg.norm(tan, axis=1), 1.0)
    assert np.all(np.abs(pts[:, 0]) <= 100 + 1e-9) and np.all(np.abs(pts[:, 1]) <= 60 + 1e-9)
    # anticlockwise: the signed area of the polygon is positive
    x, y = pts[:, 0], pts[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def scene_file(tmp_path, bag: str, objects: str = "  - {shape: {box: {size: [80, 60, 40]}}, material: abs}"):
    text = "seed: 3\nbag:\n" + textwrap.indent(bag, "  ") + "\nobjects:\n" + objects + "\n"
    path = tmp_path / "scene.yaml"
    path.write_text(text)
    return path


def test_the_wall_path_length_through_the_middle_is_twice_its_thickness(tmp_path):
    from xraybag.engine.solids.scene import bag_solids
    from xraybag.engine.xray.trace import RayGeometry  # noqa: F401  (the tracer's contract)
    from xraybag.scenes.sample import sample

    path = scene_file(tmp_path, "size: [400, 300, 160]\nshell: tote\nparams: {thickness: 2.0, corner_radius: 20}")
    scene = sample(load_scene(str(path)), 0)
    solids = bag_solids(scene)
    shell = next(s for s in solids if s.part == "shell")
    mesh = trimesh.Trimesh(shell.vertices, shell.faces, process=False)
    # a ray along y through the bag's middle crosses the wall twice (the tote is open above)
    hits = mesh.ray.intersects_location([[0.0, -500.0, 80.0]], [[0.0, 1.0, 0.0]])[0]
    ys = np.sort(hits[:, 1])
    assert len(ys) == 4
    np.testing.assert_allclose([ys[1] - ys[0], ys[3] - ys[2]], [2.0, 2.0], atol=1e-6)


def test_shell_scene_loads_samples_and_renders_with_the_shell_in_the_image(tmp_path):
    from xraybag.engine.output.pipeline import render_bag

    bag = "size: [360, 260, 120]\nshell: soft_carry_on\nparams: {zip_material: brass, trolley: 1}"
    path = scene_file(tmp_path, bag)
    text = path.read_text() + textwrap.dedent("""\
        scanners:
          - {name: top, type: line_scan, view: vertical, pitch: 2}
        """)
    path.write_text(text)
    loaded = load_scene(str(path))
    result = render_bag(loaded, 0)
    view = result.views[0]
    assert result.scene.bag.shell == "soft_carry_on"
    assert set(SHELLS["soft_carry_on"].params) == set(result.scene.bag.params)
    assert {"aluminum", "brass", "steel"} <= set(view.trace.materials)
    # the trolley's aluminium and the zip's brass are in the image, outside the interior's footprint
    k = view.trace.materials.index("aluminum")
    assert view.trace.paths[..., k].max() > 2 * 1.2
    # the object is still packed inside the interior
    obj = result.scene.objects[0]
    assert 0 <= obj.pose.position[2] <= 120


def test_same_seed_same_shell_and_parts(tmp_path):
    from xraybag.scenes.sample import sample

    path = scene_file(tmp_path, "size: [400, 300, 160]\nshell: {choice: [backpack, hard_suitcase]}")
    loaded = load_scene(str(path))
    a, b = sample(loaded, 4), sample(loaded, 4)
    assert a.bag == b.bag
    assert len({sample(loaded, i).bag.shell for i in range(12)}) == 2


@pytest.mark.parametrize(("bag", "where", "says"), [
    ("size: [400, 300, 160]\nshell: soft_carryon", "bag.shell", "did you mean 'soft_carry_on'"),
    ("size: [400, 300, 160]\nshell: tote\nparams: {thikness: 2}", "bag.params.thikness", "did you mean 'thickness'"),
    ("size: [400, 300, 160]\nshell: tote\nparams: {material: unobtainium}", "bag.params.material", "unobtainium"),
    ("size: [400, 300, 160]\nshell: tote\nparams: {thickness: -1}", "bag.params.thickness", "expected"),
    ("size: [400, 300, 160]\nshell: tote\nwall: {thickness: 2}", "bag", "remove wall"),
    ("size: [400, 300, 160]\nparams: {thickness: 2}", "bag", "params need a shell"),
])
def test_bad_shell_input_is_one_line_naming_the_field(tmp_path, bag, where, says):
    path = scene_file(tmp_path, bag)
    with pytest.raises(XraybagError) as e:
        load_scene(str(path))
    msg = str(e.value)
    assert "\n" not in msg and says in msg
    assert "scene.yaml:" in msg and where in msg
