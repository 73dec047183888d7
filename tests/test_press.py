"""Soft goods pressed by the physics packer when a request does not fit: a stack of folded clothes
keeps its mass and the areal mass a vertical ray crosses (xraydb), its zip and buttons ride on the
pressed fabric, three stacks too tall for the bag go in once pressed, and the concrete scene
renders again on its own."""

from __future__ import annotations

import numpy as np
import pytest
import xraydb

from xraybag.engine.packing.checks import check_packing
from xraybag.engine.packing.physics import pack_physics
from xraybag.engine.packing.press import press_object, scene_library
from xraybag.errors import XraybagError
from xraybag.materials import default_library
from xraybag.scenes.loader import load_scene
from xraybag.scenes.models import Object, Scene

CELLULOSE = "C6H10O5"  # cotton's formula in the library


def stack(layers=((300, 220, 20), (285, 209, 18)), zip_=True, press=0.7, fabric="cotton") -> dict:
    """A stack of folded clothes as the catalog builds one: layers from the bottom, a zip and a
    button on top."""
    parts, z = [], 0.0
    for i, (length, width, t) in enumerate(layers):
        parts.append({"name": f"layer{i}", "shape": {"box": {"size": [length, width, t]}}, "material": fabric,
                      "pose": {"position": [0, 0, z + t / 2]}})
        z += t
    if zip_:
        parts.append({"name": "zip", "shape": {"box": {"size": [180, 6, 1.5]}}, "material": "brass",
                      "pose": {"position": [0, 0, z + 0.75]}})
        parts.append({"name": "button", "shape": {"cylinder": {"radius": 6, "height": 2.5}}, "material": "nickel",
                      "pose": {"position": [-90, 55, z + 1.25], "rotation_deg": [0, 0, 30]}})
    return {"name": "clothes", "parts": parts, "press": press}


def _z(p):
    return float(p.pose.position[2])


def test_a_pressed_stack_keeps_its_mass_and_what_a_top_view_sees():
    lib = default_library()
    obj = Object.model_validate(stack())
    pressed, mats = press_object(obj, 0.7, lib)
    assert set(mats) == {"cotton_pressed_70"}
    lib2 = lib.with_materials({k: v.model_dump(exclude_none=True) for k, v in mats.items()})
    for before, after in zip(obj.parts[:2], pressed.parts[:2]):
        h0, h1 = before.shape.box.size[2], after.shape.box.size[2]
        assert h1 == pytest.approx(0.7 * h0)
        rho0, rho1 = lib.get(before.material).density, lib2.get(after.material).density
        assert rho1 * h1 == pytest.approx(rho0 * h0, rel=1e-12)  # areal mass along z: mass kept
        # attenuation along z through the pressed layer, against xraydb at the fabric's own density
        for kev in (30.0, 60.0, 120.0):
            expected = xraydb.material_mu(CELLULOSE, kev * 1e3, density=rho0) / 10.0 * h0
            assert float(lib2.get(after.material).mu(np.array([kev]))[0]) * h1 == pytest.approx(expected, rel=1e-6)
    # the fabric lies from the underside up, each layer on the one below
    tops = [_z(p) + p.shape.box.size[2] / 2 for p in pressed.parts[:2]]
    assert _z(pressed.parts[0]) - pressed.parts[0].shape.box.size[2] / 2 == pytest.approx(0.0)
    assert tops[0] == pytest.approx(0.7 * 20) and tops[1] == pytest.approx(0.7 * 38)
    # the zip and the button keep their shape and rest on the pressed top
    zip_, button = pressed.parts[2], pressed.parts[3]
    assert zip_.shape == obj.parts[2].shape and zip_.material == "brass"
    assert _z(zip_) - 0.75 == pytest.approx(tops[1]) and _z(button) - 1.25 == pytest.approx(tops[1])
    assert button.pose.rotation_deg == obj.parts[3].pose.rotation_deg
    assert button.pose.position[:2] == obj.parts[3].pose.position[:2]
    assert pressed.press == 1.0  # pressed to its 'press', it gives no further
    assert press_object(obj, 0.85, lib)[0].press == pytest.approx(0.7 / 0.85)


def test_a_shape_of_its_own_is_pressed_too():
    obj = Object.model_validate({"shape": {"cylinder": {"radius": 50, "height": 40}}, "material": "wool",
                                 "press": 0.6})
    pressed, mats = press_object(obj, 0.6, default_library())
    assert pressed.shape.cylinder.height == pytest.approx(24.0) and pressed.material == "wool_pressed_60"
    assert mats["wool_pressed_60"].density == pytest.approx(default_library().get("wool").density / 0.6)


def test_hollow_and_other_parts_are_not_squeezed():
    data = stack(zip_=False)
    data["parts"][1]["material"] = "abs"  # a plastic box on the fabric: rides on it
    data["parts"][0]["container"] = {"wall": 2.0}  # a hollow fabric box: not squeezed either
    pressed, mats = press_object(Object.model_validate(data), 0.7, default_library())
    assert not mats
    assert [p.shape for p in pressed.parts] == [p.shape for p in Object.model_validate(data).parts]


@pytest.mark.parametrize("bad, message", [
    ({"press": 0}, "press"),
    ({"press": 1.5}, "press"),
    ({"parts": [{"shape": {"sphere": {"radius": 20}}, "material": "cotton"}]}, "press: parts.0 is not a box"),
    ({"parts": [{"shape": {"box": {"size": [50, 40, 10]}}, "material": "cotton",
                 "pose": {"position": [0, 0, 0], "rotation_deg": [90, 0, 0]}}]}, "press: parts.0 is not a box"),
    ({"parts": None, "sheet": {"size": [300, 200], "thickness": 1.0}, "material": "cotton"}, "press: a sheet drapes"),
])
def test_what_cannot_be_pressed_is_refused_with_its_line(tmp_path, bad, message):
    obj = {k: v for k, v in {**stack(zip_=False), **bad}.items() if v is not None}
    import yaml

    text = yaml.safe_dump({"bag": {"size": [400, 300, 200]}, "objects": [obj]}, sort_keys=False)
    path = tmp_path / "bag.yaml"
    path.write_text(text)
    with pytest.raises(XraybagError) as e:
        load_scene(path)
    msg = str(e.value)
    assert message in msg and "bag.yaml:" in msg and "objects" in msg and "\n" not in msg.strip()


# three stacks of folded clothes in a case whose floor holds one: 232 mm of them under a 181 mm lid
# (the overfull_pidray bag 13 that left its third stack out at a fill of 0.37), pressed 162 mm
STACKS = [((320, 249, 21), 4), ((278, 249, 20), 4), ((278, 190, 17), 4)]


def clothes_bag(press=0.7) -> Scene:
    objs = []
    for k, ((length, width, t), n) in enumerate(STACKS):
        layers = [(length * (1 - 0.05 * i), width * (1 - 0.05 * i), t) for i in range(n)]
        objs.append({**stack(layers, zip_=k == 0, press=press), "name": f"clothes{k}"})
    return Scene.model_validate({"seed": 3, "bag": {"size": [432, 388, 181]}, "objects": objs})


def test_clothes_too_tall_for_the_bag_go_in_pressed():
    pytest.importorskip("pybullet")
    _, rep_rigid = pack_physics(clothes_bag(None), np.random.default_rng(0))
    assert len(rep_rigid.left_out) == 1  # one stack per floor, two fit under the lid
    packed, rep = pack_physics(clothes_bag(), np.random.default_rng(0))
    assert not rep.left_out and "pressed to their 'press'" in rep.note
    assert set(packed.materials) == {"cotton_pressed_70"}
    lib = scene_library(packed)
    for before, after in zip(clothes_bag().objects, packed.objects):
        fabric = [(a.shape.box.size[2], lib.get(a.material).density, b.shape.box.size[2], lib.get(b.material).density)
                  for b, a in zip(before.parts, after.parts) if b.material == "cotton"]
        assert fabric and all(h1 == pytest.approx(0.7 * h0) and r1 * h1 == pytest.approx(r0 * h0)
                              for h1, r1, h0, r0 in fabric)
    checks = check_packing(packed)
    assert checks["max_overlap_fraction"] <= 0.005 and checks["max_outside_mm"] <= 1e-6
    assert checks["max_support_gap_mm"] <= 1.0
    assert rep.note.startswith("tried 2 packings")  # the pressed one left nothing out: no third


def test_a_pressed_bag_renders_again_from_its_concrete_scene(tmp_path):
    pytest.importorskip("pybullet")
    from xraybag.engine.output.files import scene_yaml
    from xraybag.engine.output.pipeline import render_bag

    data = clothes_bag().model_dump(exclude_none=True)
    data["packing"] = {"method": "physics"}
    data["scanners"] = [{"name": "top", "type": "line_scan", "spectrum": {"kvp": 120},
                         "pitch": 4.0, "noise": False}]
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    first = render_bag(load_scene(tmp_path / "spec.yaml"), 0)
    assert "cotton_pressed_70" in first.scene.materials
    (tmp_path / "bag.yaml").write_text(scene_yaml(first.scene, tmp_path))
    again = render_bag(load_scene(tmp_path / "bag.yaml"), 0)
    for a, b in zip(first.views, again.views):
        for ch in a.transmission:
            assert np.array_equal(a.transmission[ch], b.transmission[ch])
    assert all(0.0 < float(v.min()) < 0.9 for v in first.views[0].transmission.values())  # the clothes are seen


def test_render_records_the_pressing_and_writes_the_pressed_fabric(tmp_path):
    """``xraybag render`` of the three stacks: the manifest line keeps the packer's note (clothes
    pressed), and the concrete scene defines the pressed fabric it uses."""
    pytest.importorskip("pybullet")
    import json

    import yaml
    from click.testing import CliRunner

    from xraybag.cli.main import cli

    data = clothes_bag().model_dump(exclude_none=True)
    data["packing"] = {"method": "physics"}
    data["scanners"] = [{"name": "top", "type": "line_scan", "spectrum": {"kvp": 120}, "pitch": 4.0}]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    r = CliRunner().invoke(cli, ["render", str(tmp_path / "spec.yaml"), "-n", "1", "-o", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert not rec["left_out"] and "pressed to their 'press'" in rec["packing_note"]
    concrete = yaml.safe_load((tmp_path / "out" / "scenes" / "000000.yaml").read_text())
    assert concrete["materials"]["cotton_pressed_70"]["density"] == pytest.approx(0.5 / 0.7)
    used = {p["material"] for o in concrete["objects"] for p in o["parts"]}
    assert "cotton_pressed_70" in used and "cotton" not in used


def test_rigid_parts_under_and_between_layers_hold_up_what_is_above_them():
    """A steel plate under a cotton layer, a board between it and a wool layer: the fabric is
    squeezed, the plate and the board keep their heights, and every part still starts where the
    one under it ends."""
    spans = [("plate", "steel", 0, 5), ("lower", "cotton", 5, 25), ("board", "abs", 25, 27), ("upper", "wool", 27, 37)]
    parts = [{"name": n, "shape": {"box": {"size": [200, 150, b - a]}}, "material": m,
              "pose": {"position": [0, 0, (a + b) / 2]}} for n, m, a, b in spans]
    pressed, mats = press_object(Object.model_validate({"parts": parts, "press": 0.7}), 0.7, default_library())
    got = [(float(p.pose.position[2]) - p.shape.box.size[2] / 2, float(p.pose.position[2]) + p.shape.box.size[2] / 2)
           for p in pressed.parts]
    assert np.allclose(got, [(0, 5), (5, 19), (19, 21), (21, 28)])
    assert set(mats) == {"cotton_pressed_70", "wool_pressed_70"}
