"""The scene DSL: loading, positions in errors, includes, distributions, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_cli, write
from xraybag.errors import XraybagError
from xraybag.scenes.loader import load_scene
from xraybag.scenes.sample import dump_scene, sample

GOOD = """
seed: 3
materials:
  brine: {composition: {water: 0.965, NaCl: 0.035}, density: 1.025}
  ethanol_40: {formula: C2H6O, density: 0.79}
bag:
  size: [550, 350, 220]
  wall: {material: nylon, thickness: 1.5}
objects:
  - name: plate
    shape: {box: {size: [80, 60, 20]}}
    material: aluminum
    pose: {position: [0, 0, 10], rotation_deg: [0, 0, 30]}
    label: plate
  - name: bottle
    shape: {cylinder: {radius: 35, height: 220}}
    material: PET
    container: {wall: 1.2, fill: {material: brine, level: {uniform: [0.3, 0.9]}}}
    label: plastic_bottle
  - name: knife
    template: kitchen_knife
    label: knife
  - repeat: {uniform_int: [8, 16]}
    template: {choice: [book, shoe, folded_shirt, phone, charger]}
packing: {method: random}
scanners:
  - name: top
    type: line_scan
    spectrum: {kvp: 140, filtration: {Al: 1.0}}
    noise: true
"""


def load_text(tmp_path, text, name="bag.yaml"):
    return load_scene(write(tmp_path / name, text))


def error_of(tmp_path, text, name="bag.yaml") -> str:
    with pytest.raises(XraybagError) as e:
        load_text(tmp_path, text, name)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_design_example_loads(tmp_path):
    loaded = load_text(tmp_path, GOOD)
    assert loaded.categories == ["knife", "plastic_bottle", "plate"]
    assert "brine" in loaded.library


@pytest.mark.parametrize(
    "snippet, where, words",
    [
        # wrong number of sizes, at the size value
        ("objects:\n  - shape: {box: {size: [80, 60]}}\n    material: water\n", "bag.yaml:3:25: objects[0].shape.box.size", "expected 3 positive numbers"),
        # negative size
        ("objects:\n  - shape: {box: {size: [80, -60, 3]}}\n    material: water\n", "bag.yaml:3:25: objects[0].shape.box.size", "positive"),
        # unknown key, at the key, with a suggestion
        ("objects:\n  - shape: {sphere: {radius: 5}}\n    materail: water\n", "bag.yaml:4:5: objects[0].materail", "did you mean 'material'"),
        # wrong type
        ("objects:\n  - shape: {sphere: {radius: big}}\n    material: water\n", "bag.yaml:3:30: objects[0].shape.sphere.radius", "expected a positive number"),
        # unknown material
        ("objects:\n  - shape: {sphere: {radius: 5}}\n    material: unobtainium\n", "bag.yaml:4:15: objects[0].material", "unknown material 'unobtainium'"),
        # two shapes
        ("objects:\n  - shape: {sphere: {radius: 5}, box: {size: [1, 1, 1]}}\n    material: water\n", "bag.yaml:3:12: objects[0].shape", "exactly one"),
        # bad distribution
        ("objects:\n  - shape: {sphere: {radius: {uniform: [5]}}}\n    material: water\n", "objects[0].shape.sphere.radius", "2 numbers"),
        ("objects:\n  - shape: {sphere: {radius: {uniform: [-5, 3]}}}\n    material: water\n", "objects[0].shape.sphere.radius", "positive"),
        # unknown template
        ("objects:\n  - template: kitchen_knif\n", "bag.yaml:3:15: objects[0].template", "did you mean 'kitchen_knife'"),
        # bad material definition, at the offending composition key
        ("materials:\n  brine: {composition: {water: 0.9, Xq: 0.1}, density: 1}\n", "bag.yaml:3:37: materials.brine.composition.Xq", "neither a material nor a chemical formula"),
        # unknown scanner type
        ("scanners:\n  - {name: a, type: ct_scanner}\n", "scanners[0].type", "expected one of"),
    ],
)
def test_errors_name_file_line_column_and_field(tmp_path, snippet, where, words):
    msg = error_of(tmp_path, "bag: {size: [550, 350, 220]}\n" + snippet)
    assert where in msg, msg
    assert words in msg


def test_missing_field_and_not_a_mapping(tmp_path):
    assert "missing required field 'bag'" in error_of(tmp_path, "seed: 1\n")
    assert "expected a mapping" in error_of(tmp_path, "- 1\n- 2\n")
    msg = error_of(tmp_path, "bag: {size: [1, 2, 3]\n")
    assert "bag.yaml:2:1: invalid YAML" in msg


def test_yaml_cannot_run_code(tmp_path):
    msg = error_of(tmp_path, "bag: !!python/object/apply:os.system ['echo hi']\n")
    assert "bag.yaml:1:" in msg


def test_duplicate_keys_rejected(tmp_path):
    assert "bag.yaml:2" in error_of(tmp_path, "bag: {size: [1, 2, 3]}\nbag: {size: [1, 2, 3]}\n")


def test_include_adds_materials_and_templates(tmp_path):
    write(
        tmp_path / "lib" / "extra.yaml",
        """
        materials:
          saltwater: {composition: {water: 0.96, NaCl: 0.04}, density: 1.03}
        templates:
          jar:
            shape: {cylinder: {radius: 40, height: 100}}
            material: glass
            container: {wall: 3, fill: {material: saltwater, level: 0.5}}
            label: jar
        """,
    )
    loaded = load_text(
        tmp_path, "include: [lib/extra.yaml]\nbag: {size: [550, 350, 220]}\nobjects:\n  - template: jar\n"
    )
    assert loaded.categories == ["jar"]
    assert "saltwater" in loaded.library


def test_errors_in_included_files_point_into_them(tmp_path):
    write(tmp_path / "extra.yaml", "templates:\n  jar:\n    shape: {cylinder: {radius: 40}}\n    material: glass\n")
    msg = error_of(tmp_path, "include: [extra.yaml]\nbag: {size: [550, 350, 220]}\n")
    assert "extra.yaml:3:23: templates.jar.shape.cylinder" in msg, msg
    assert "height" in msg


def test_include_may_not_leave_the_folder(tmp_path):
    write(tmp_path / "outside.yaml", "materials: {}\n")
    msg = error_of(tmp_path, "include: [../outside.yaml]\nbag: {size: [550, 350, 220]}\n", name="scene/bag.yaml")
    assert "leaves the scene folder" in msg


def test_include_cycle(tmp_path):
    write(tmp_path / "a.yaml", "include: [b.yaml]\n")
    write(tmp_path / "b.yaml", "include: [a.yaml]\n")
    assert "cycle" in error_of(tmp_path, "include: [a.yaml]\nbag: {size: [550, 350, 220]}\n")


def test_sampling_is_deterministic_and_varies_per_bag(tmp_path):
    loaded = load_text(tmp_path, GOOD)
    a0, a0b, a1 = sample(loaded, 0), sample(loaded, 0), sample(loaded, 1)
    assert dump_scene(a0) == dump_scene(a0b)
    assert dump_scene(a0) != dump_scene(a1)
    for s in (a0, a1):
        n_clutter = len(s.objects) - 3
        assert 8 <= n_clutter <= 16
        bottle = next(o for o in s.objects if o.name == "bottle")
        assert 0.3 <= bottle.container.fill.level <= 0.9
    assert sample(loaded, 0, seed=99).objects != a0.objects


def test_distributions_follow_their_laws(tmp_path):
    text = "bag: {size: [550, 350, 220]}\nobjects:\n  - shape: {sphere: {radius: {normal: [10, 3]}}}\n    material: water\n    pose: {position: [0, 0, 50]}\n"
    loaded = load_text(tmp_path, text)
    r = np.array([sample(loaded, i).objects[0].shape.sphere.radius for i in range(2000)])
    assert abs(r.mean() - 10) < 0.3 and abs(r.std() - 3) < 0.3 and (r > 0).all()


def test_editing_one_object_keeps_the_draws_of_the_others(tmp_path):
    base = "bag: {size: [550, 350, 220]}\nobjects:\n  - shape: {sphere: {radius: {uniform: [5, 50]}}}\n    material: water\n"
    more = base + "  - shape: {sphere: {radius: {uniform: [5, 50]}}}\n    material: water\n"
    r1 = sample(load_text(tmp_path, base, "a.yaml"), 4).objects[0].shape.sphere.radius
    r2 = sample(load_text(tmp_path, more, "b.yaml"), 4).objects[0].shape.sphere.radius
    assert r1 == r2


def test_concrete_scene_round_trips(tmp_path):
    loaded = load_text(tmp_path, GOOD)
    s = sample(loaded, 5)
    text = dump_scene(s)
    again = load_scene(write(tmp_path / "concrete.yaml", text))
    assert dump_scene(sample(again, 0)) == text


def test_validate_and_schema_commands(tmp_path):
    path = write(tmp_path / "bag.yaml", GOOD)
    r = run_cli("validate", path)
    assert r.exit_code == 0, r.output
    assert "ok" in r.output
    bad = write(tmp_path / "bad.yaml", "bag: {size: [550, 350, 220]}\nobjects:\n  - shape: {box: {size: [1, 2]}}\n    material: water\n")
    r = run_cli("validate", bad)
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0
    assert "bad.yaml:3:25: objects[0].shape.box.size: expected 3 positive numbers" in r.stderr
    assert "Traceback" not in r.output
    r = run_cli("schema")
    schema = json.loads(r.output)
    assert "bag" in schema["properties"] and "objects" in schema["properties"]


def test_builtin_scene_by_name():
    loaded = load_scene("demo")
    assert {"knife", "gun"} <= set(loaded.categories)
    with pytest.raises(XraybagError, match="built-in"):
        load_scene("no_such_scene")


def test_scene_format_reference_is_generated_from_the_models():
    from pathlib import Path

    from xraybag.scenes.docs import BEGIN, END, reference

    text = (Path(__file__).parent.parent / "docs" / "scene-format.md").read_text()
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section.strip() == reference().strip(), "run: python -m xraybag.scenes.docs docs/scene-format.md"


def test_scene_format_example_is_valid(tmp_path):
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "scene-format.md").read_text()
    example = text.split("## Example\n\n```yaml\n", 1)[1].split("```", 1)[0]
    write(tmp_path / "my_templates.yaml", "templates: {}\n")
    loaded = load_text(tmp_path, example)
    assert {"plate", "plastic_bottle", "knife", "gun"} <= set(loaded.categories)


def test_builtin_name_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    """`xraybag render pidray -o pidray` twice: the second call still means the built-in scene,
    while a folder named by a path is refused with one line."""
    from xraybag.scenes.loader import builtin_dir, resolve_scene_ref

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "mine").mkdir()
    assert resolve_scene_ref("demo") == builtin_dir() / "demo.yaml"
    assert load_scene("demo").spec.objects
    r = run_cli("validate", "mine")
    assert r.exit_code == 2 and "mine: is a folder" in r.output
