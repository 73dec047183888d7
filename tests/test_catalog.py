"""The procedural object catalog: entries, parameters, scene integration, CLI, built-in scenes."""

from __future__ import annotations

import collections
import itertools
import json
import re

import manifold3d
import numpy as np
from PIL import Image
import pytest
import trimesh
from helpers import run_cli, write

from xraybag.engine.solids.scene import build_solids
from xraybag.errors import XraybagError
from xraybag.materials import default_library
from xraybag.scenes.catalog import (
    CATALOG,
    get_entry,
    labels,
    object_scene,
    sample_object,
)
from xraybag.scenes.loader import builtin_dir, load_scene
from xraybag.scenes.sample import dump_scene, sample

PIDRAY = ["gun", "knife", "wrench", "pliers", "scissors", "hammer", "handcuffs", "baton", "sprayer",
          "power_bank", "lighter", "bullet"]
CLCXRAY = ["blade", "dagger", "knife", "scissors", "swiss_army_knife", "can", "carton_drink",
           "glass_bottle", "plastic_bottle", "vacuum_cup", "spray_can", "tin"]
XSEG = ["gun", "bullet", "fruit_knife", "kitchen_knife", "scissors", "baton", "hammer", "pliers", "wrench",
        "handcuffs", "lighter", "razor_blade", "pressure", "plasticbottle_liquid", "glassbottle_liquid",
        "metalbottle_liquid", "powerbank", "mobile_phone", "laptop"]
BENIGN = ["folded_clothes", "sneaker", "hardback_book", "notebook_pc", "smartphone", "phone_charger",
          "umbrella", "lotion_bottle", "food_can", "keys", "coins", "belt"]


def test_catalog_covers_the_datasets():
    assert len(CATALOG) >= 30
    assert set(PIDRAY) <= set(labels())
    assert set(CLCXRAY) <= set(labels())
    assert "explosive" in labels()
    for name in BENIGN:
        assert CATALOG[name].label is None, name
    lib = default_library()
    for e in CATALOG.values():
        assert e.description and e.params, e.name
        for spec in e.params.values():
            spec.parse(spec.default)  # every default is a valid value or distribution
            for m in spec.materials():
                lib.get(m)


def _manifold(s):
    return manifold3d.Manifold(manifold3d.Mesh64(
        np.array(s.vertices, dtype=np.float64), np.array(s.faces, dtype=np.uint64)))


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_entry_builds_closed_non_overlapping_parts(name):
    lib = default_library()
    for seed in range(3):
        data = sample_object(name, seed)
        if "sheet" in data:
            assert set(data) >= {"sheet", "material"} and "parts" not in data and "shape" not in data
            lib.get(data["material"])
            continue
        solids, infos = build_solids(object_scene(data), tolerance=0.1)
        assert infos[0].label == CATALOG[name].label
        for s in solids:
            lib.get(s.material)
            assert trimesh.Trimesh(s.vertices, s.faces, process=False).is_watertight, s.part
            assert s.volume > 0, s.part
        ext = sorted(infos[0].bounds[1] - infos[0].bounds[0], reverse=True)
        assert ext[0] <= 600 and ext[1] <= 400 and ext[2] <= 250, (seed, ext)
        ms = [(s, _manifold(s)) for s in solids]
        for (a, ma), (b, mb) in itertools.combinations(ms, 2):
            if np.any(a.bounds[1] <= b.bounds[0]) or np.any(b.bounds[1] <= a.bounds[0]):
                continue
            common = (ma ^ mb).volume()
            assert common <= 0.005 * min(a.volume, b.volume), (seed, a.part, b.part, common)


def test_overlap_check_sees_overlaps():
    data = {"name": "x", "parts": [
        {"name": "a", "shape": {"box": {"size": [10, 10, 10]}}, "material": "steel"},
        {"name": "b", "shape": {"box": {"size": [10, 10, 10]}}, "material": "steel",
         "pose": {"position": [5, 0, 0]}}]}
    a, b = build_solids(object_scene(data))[0]
    assert (_manifold(a) ^ _manifold(b)).volume() == pytest.approx(500, rel=1e-6)


def test_samples_vary_and_repeat():
    knives = [json.dumps(sample_object("chef_knife", s), sort_keys=True) for s in range(6)]
    assert len(set(knives)) == 6
    assert sample_object("pistol", 3) == sample_object("pistol", 3)
    p = sample_object("chef_knife", 1, {"blade_length": 200, "blade_material": "steel"})
    blade = next(x for x in p["parts"] if x["name"] == "blade")
    assert _length(blade["shape"]["extrude"]["outline"]) == pytest.approx(200)
    assert blade["material"] == "steel"


def _length(outline) -> float:
    """The x extent of an outline ([x, y] points)."""
    xs = [pt[0] for pt in outline]
    return max(xs) - min(xs)


SCENE = """\
seed: 3
bag: {size: [550, 350, 220]}
objects:
  - template: chef_knife
    params:
      blade_length: %s
      handle_material: wood
"""


def _blade(scene, k=0):
    obj = scene.objects[k]
    return next(p for p in obj.parts if p.name == "blade")


def test_params_override_in_a_scene(tmp_path):
    path = write(tmp_path / "a.yaml", SCENE % "200")
    loaded = load_scene(path)
    for i in range(3):
        s = sample(loaded, i)
        assert s.objects[0].label == "knife" and s.objects[0].template is None
        assert _length(_blade(s).shape.extrude.outline) == pytest.approx(200.0)
        assert s.objects[0].parts[0].material == "wood"
    path = write(tmp_path / "b.yaml", SCENE % "{uniform: [150, 160]}")
    loaded = load_scene(path)
    lengths = {_length(_blade(sample(loaded, i)).shape.extrude.outline) for i in range(5)}
    assert len(lengths) == 5 and all(150 <= x <= 160 for x in lengths)
    assert loaded.categories == ["knife"]


@pytest.mark.parametrize("params, message", [
    ("{blade_lenght: 200}", r"a\.yaml:4:14: objects\[0\]\.params\.blade_lenght: unknown parameter "
                            r"\(did you mean 'blade_length'\?\)"),
    ("{blade_length: -3}", r"a\.yaml:4:\d+: objects\[0\]\.params\.blade_length: expected a positive number"),
    ("{handle_material: unobtainium}", r"objects\[0\]\.params\.handle_material: .*unobtainium"),
])
def test_param_errors(tmp_path, params, message):
    path = write(tmp_path / "a.yaml", f"""\
        bag: {{size: [550, 350, 220]}}
        objects:
          - template: chef_knife
            params: {params}
        """)
    with pytest.raises(XraybagError) as e:
        load_scene(path)
    assert re.search(message, str(e.value)), str(e.value)


def test_params_need_a_catalog_template(tmp_path):
    path = write(tmp_path / "a.yaml", """\
        bag: {size: [550, 350, 220]}
        objects:
          - template: book
            params: {size: 3}
        """)
    with pytest.raises(XraybagError, match=r"objects\[0\]\.params: params need a procedural catalog"):
        load_scene(path)


def test_unknown_param_at_sample_time():
    with pytest.raises(XraybagError, match="unknown parameter"):
        get_entry("pistol").sample({"slide_lenght": 3}, np.random.default_rng(0))


def test_yaml_template_wins_and_choice_categories(tmp_path):
    path = write(tmp_path / "a.yaml", """\
        templates:
          pistol:
            label: toy
            shape: {box: {size: [100, 50, 20]}}
            material: pp
        bag: {size: [550, 350, 220]}
        objects:
          - template: pistol
          - template: {choice: [drink_can, water_bottle, book]}
            repeat: 4
          - template: sheet_explosive
            params: {material: semtex, thickness: 3}
          - template: spanner
            label: tool
        """)
    loaded = load_scene(path)
    assert loaded.categories == ["can", "explosive", "plastic_bottle", "tool", "toy"]
    s = sample(loaded, 0)
    assert s.objects[0].label == "toy" and s.objects[0].shape.box is not None
    sheet = next(o for o in s.objects if o.sheet is not None)
    assert sheet.material == "semtex" and sheet.sheet.thickness == 3 and sheet.label == "explosive"
    assert sheet.shape is None and not sheet.parts
    assert s.objects[-1].label == "tool" and s.objects[-1].parts


@pytest.mark.parametrize("name", ["pidray", "clcxray"])
def test_concrete_catalog_bags_round_trip(name, tmp_path):
    from xraybag.scenes.catalog.bags import SHELLS

    s = sample(load_scene(name), 7)
    text = dump_scene(s)
    import yaml

    data = yaml.safe_load(text)  # objects expanded; the bag's shell keeps its drawn params (numbers only)
    assert all("template" not in o and not o.get("params") for o in data["objects"])
    assert "template" not in text
    if "shell" in data["bag"]:
        assert set(data["bag"]["params"]) == set(SHELLS[data["bag"]["shell"]].params)
    again = load_scene(write(tmp_path / "concrete.yaml", text))
    assert dump_scene(sample(again, 0)) == text


def test_builtin_templates_unchanged():
    loaded = load_scene("demo")
    assert "kitchen_knife" in loaded.templates
    s = sample(loaded, 0)
    assert any(o.name == "kitchen_knife" and o.label == "knife" for o in s.objects)


# ----------------------------------------------------------------------------------------- CLI


def test_cli_list_show_export(tmp_path):
    r = run_cli("catalog", "list")
    assert r.exit_code == 0 and "chef_knife" in r.output and "swiss_army_knife" in r.output
    r = run_cli("catalog", "list", "--json")
    rows = json.loads(r.output)
    from xraybag.scenes.catalog.bags import SHELLS

    assert len(rows) == len(CATALOG) + len(SHELLS) and {"name", "label", "params", "description"} <= set(rows[0])
    bags = json.loads(run_cli("catalog", "list", "--json", "--family", "bags").output)
    assert [b["name"] for b in bags] == list(SHELLS)
    assert "corner_radius" in run_cli("catalog", "show", "soft_carry_on").output
    for name in ("keys", "tote"):
        png = tmp_path / f"{name}.png"
        r = run_cli("catalog", "show", name, "--preview", png, "--set", "thickness=2" if name == "tote" else "keys=3")
        assert r.exit_code == 0, r.output
        img = np.asarray(Image.open(png))
        assert img.ndim == 3 and min(img.shape[:2]) > 40
        assert (img.min(axis=2) < 250).mean() > 0.05  # the object is in the picture, not just the tunnel
    r = run_cli("catalog", "show", "keys", "--preview", tmp_path / "k.png", "--set", "blade=1")
    assert r.exit_code == 2 and "blade" in r.output and not (tmp_path / "k.png").exists()
    r = run_cli("catalog", "show", "vacuum_cup")
    assert r.exit_code == 0 and "gap" in r.output and "uniform [2, 5]" in r.output
    d = json.loads(run_cli("catalog", "show", "vacuum_cup", "--json").output)
    assert d["label"] == "vacuum_cup" and any(p["name"] == "liquid" for p in d["params"])
    r = run_cli("catalog", "export", "pistol", "-o", tmp_path, "--seed", "2", "--set", "slide_length=190",
                "--set", "loaded=1")
    assert r.exit_code == 0, r.output
    scene = trimesh.load(tmp_path / "pistol.glb")
    parts = sample_object("pistol", 2, {"slide_length": 190, "loaded": 1})["parts"]
    assert len(scene.geometry) == len(parts)
    assert {f"pistol.{p['name']}" for p in parts} == set(scene.geometry)
    slide = scene.geometry["pistol.slide"]
    assert slide.metadata["material"] in ("steel", "stainless_steel")
    ext = slide.bounds[1] - slide.bounds[0]
    assert ext[0] == pytest.approx(190, abs=0.01)


@pytest.mark.parametrize("args, message", [
    (["show", "knif"], "no catalog entry 'knif'"),
    (["export", "pistol", "-o", "x", "--set", "slide_lenght=3"], "did you mean 'slide_length'"),
    (["export", "pistol", "-o", "x", "--set", "slide_length=-3"], "expected a positive number"),
])
def test_cli_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = run_cli("catalog", *args)
    assert r.exit_code == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ built-in scenes


@pytest.mark.parametrize("name, cats", [("pidray", PIDRAY), ("clcxray", CLCXRAY), ("xseg", XSEG),
                                        ("pidray_vendor_b", PIDRAY)])
def test_builtin_dataset_scenes_validate(name, cats):
    r = run_cli("validate", name)
    assert r.exit_code == 0, r.output
    assert sorted(load_scene(name).categories) == sorted(cats)


def _coarse_copy(name: str, tmp_path, pitch: float):
    text = (builtin_dir() / f"{name}.yaml").read_text()
    text = text.replace("    noise: true\n", f"    noise: true\n    pitch: {pitch}\n")
    assert text.count(f"pitch: {pitch}") == 2
    return write(tmp_path / f"{name}.yaml", text)


@pytest.mark.parametrize("name", ["pidray", "clcxray", "xseg"])
def test_builtin_dataset_scenes_render(name, tmp_path):
    path = _coarse_copy(name, tmp_path, 4)
    r = run_cli("render", path, "-n", "2", "-o", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert len(coco["images"]) == 4 and coco["annotations"]


@pytest.mark.slow
def test_pidray_200_bags_every_category_and_difficulty(tmp_path):
    path = _coarse_copy("pidray", tmp_path, 4)
    r = run_cli("render", path, "-n", "200", "-o", tmp_path / "out", "-q", "--workers", "2")
    assert r.exit_code == 0, r.output
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    seen = collections.Counter(names[a["category_id"]] for a in coco["annotations"])
    assert set(PIDRAY) <= set(seen), seen
    difficulty = collections.Counter(a["difficulty"] for a in coco["annotations"])
    assert {"easy", "hard", "hidden"} <= set(difficulty), difficulty


def test_docs_are_up_to_date():
    from pathlib import Path

    from xraybag.scenes.catalog.docs import markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"
    assert doc.read_text() == markdown(), "run: python -m xraybag.scenes.catalog.docs > docs/catalog.md"


def test_pliers_outline_never_touches_itself():
    """About 2 % of the pliers' draws once had a jaw outline touching itself (seeds 20, 30, 97 among
    them): the cut along the axis and the hinge disc left a point or a sliver."""
    entry = CATALOG["pliers"]
    for seed in (20, 30, 97, *range(200)):
        data = entry.sample({}, np.random.default_rng(seed))
        assert {p["name"] for p in data["parts"]} >= {"jaw_a", "jaw_b", "rivet"}


def test_xseg_bags_hold_several_labelled_objects_of_every_class():
    loaded = load_scene("xseg")
    bags = [[o.label for o in sample(loaded, i).objects if o.label] for i in range(60)]
    counts = [len(b) for b in bags]
    assert np.median(counts) >= 4 and max(counts) >= 8
    assert {label for b in bags for label in b} == set(XSEG)


def test_vendor_b_differs_from_pidray_as_another_scanner():
    """The target scanner keeps the categories but changes the machine: spectrum, detector
    layers, pitch, blur, noise and the display's colour table, and draws threats outside the
    source ranges."""
    a, b = sample(load_scene("pidray"), 0), sample(load_scene("pidray_vendor_b"), 0)
    sa, sb = a.scanners[0], b.scanners[0]
    assert sb.spectrum.kvp != sa.spectrum.kvp and sb.spectrum.filtration != sa.spectrum.filtration
    assert sb.detector.front.material != sa.detector.front.material and sb.pitch != sa.pitch
    assert sb.noise.blur > sa.noise.blur and sb.noise.electronic > sa.noise.electronic
    assert sa.colour is None and [s.colour.table for s in b.scanners] == ["vendor_b", "vendor_b"]
    loaded = load_scene("pidray_vendor_b")
    knives = [o for i in range(40) for o in sample(loaded, i).objects if o.name.startswith("long_knife")]
    assert knives, "no long knife in 40 bags"
