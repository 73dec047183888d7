"""``xraybag pack``: the packed bag as GLB (one node per object with extras), a PNG rendering and
the concrete scene YAML that renders the same bag again."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from tests.helpers import run_cli, write
from xraybag.engine.output.export import glb_nodes

SCENE = """
seed: 5
bag: {size: [360, 240, 240]}
objects:
  - name: book
    shape: {box: {size: [150, 100, 30]}}
    material: paper
  - name: bottle
    shape: {cylinder: {radius: 30, height: 150}}
    material: PET
    container: {wall: 1.2, fill: {material: water, level: 0.6}}
    label: plastic_bottle
  - name: gadget
    parts:
      - {name: body, shape: {box: {size: [60, 40, 15]}}, material: aluminum}
      - name: cell
        shape: {box: {size: [30, 20, 8]}}
        material: copper
        pose: {position: [0, 0, 12]}
    label: phone
  - name: sheet
    sheet: {size: [180, 120], thickness: 3}
    material: PETN
    label: sheet_explosive
scanners:
  - {name: top, type: line_scan, pitch: 3, noise: false}
"""


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    d = tmp_path_factory.mktemp("pack")
    scene = write(d / "s.yaml", SCENE)
    r = run_cli("pack", scene, "--seed", "5", "-o", d)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in d.glob("bag_*")) == ["bag_000000.glb", "bag_000000.png", "bag_000000.yaml"]
    return d, scene


def test_glb_nodes_names_and_extras(packed):
    d, _ = packed
    data = (d / "bag_000000.glb").read_bytes()
    nodes = {n["name"]: n for n in glb_nodes(data) if "mesh" in n}
    assert set(nodes) == {"bag", "book", "bottle", "gadget", "sheet"}
    assert nodes["bottle"]["extras"]["label"] == "plastic_bottle"
    assert nodes["bottle"]["extras"]["materials"] == ["PET", "water"]
    assert nodes["gadget"]["extras"]["materials"] == ["aluminum", "copper"]
    assert nodes["gadget"]["extras"]["label"] == "phone"
    assert nodes["sheet"]["extras"] == {
        "index": 4, "label": "sheet_explosive", "materials": ["PETN"],
        "parts": [{"part": "sheet", "material": "PETN", "faces": nodes["sheet"]["extras"]["parts"][0]["faces"]}],
    }
    assert nodes["book"]["extras"]["label"] is None and nodes["bag"]["extras"]["index"] == 0
    # trimesh loads it back: one geometry per node, closed meshes, the sheet over the contents
    scene = trimesh.load(d / "bag_000000.glb")
    assert sorted(scene.graph.nodes_geometry) == sorted(nodes)
    for name in nodes:
        mesh = scene.geometry[name]
        assert mesh.is_watertight or name in ("bottle", "gadget")  # several closed solids each
    assert scene.geometry["sheet"].bounds[0][2] >= 0.0


def test_png_not_blank(packed):
    d, _ = packed
    img = np.asarray(Image.open(d / "bag_000000.png").convert("RGB"))
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 20


def test_concrete_yaml_renders_the_same_bag(packed, tmp_path):
    d, scene = packed
    text = (d / "bag_000000.yaml").read_text()
    assert "drape" in text and "pose" in text
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli("render", scene, "-n", "1", "--seed", "5", "-o", a, "-q").exit_code == 0
    assert run_cli("render", d / "bag_000000.yaml", "-n", "1", "-o", b, "-q").exit_code == 0
    ia = sorted((a / "images").iterdir())
    ib = sorted((b / "images").iterdir())
    assert len(ia) == len(ib) == 1
    assert ia[0].read_bytes() == ib[0].read_bytes()
    la = sorted((a / "labels").iterdir())
    lb = sorted((b / "labels").iterdir())
    assert la[0].read_bytes() == lb[0].read_bytes()


def test_pack_errors_one_line(tmp_path):
    r = run_cli("pack", tmp_path / "missing.yaml", "-o", tmp_path / "x")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_pack_says_when_it_packed_a_request_that_does_not_fit_again(tmp_path):
    """Six boxes that cannot all fit: the physics packer packs the bag again and ``xraybag pack``
    says so on stderr after the left-out lines; a request that fits says nothing of it."""
    boxes = "".join(f"  - name: b{i}\n    shape: {{box: {{size: [110, 80, {40 + 5 * i}]}}}}\n    material: abs\n"
                    for i in range(6))
    over = write(tmp_path / "over.yaml", "seed: 2\nbag: {size: [240, 170, 100]}\npacking: {method: physics}\n"
                 "objects:\n" + boxes)
    r = run_cli("pack", over, "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    lines = r.stderr.strip().splitlines()
    assert any(x.startswith("left out b") for x in lines)
    assert lines[-1].startswith("packing: tried ") and "kept packing" in lines[-1]
    # how full the bag is, and which box was left out first (one of those left out)
    fill = next(x for x in lines if x.startswith("hull fill: "))
    first = fill.split(" when ")[1].split(" was ")[0]
    assert any(x.startswith(f"left out {first}: ") for x in lines)
    placed = sum(110 * 80 * (40 + 5 * i) for i in range(6) if not any(x.startswith(f"left out b{i}:") for x in lines))
    assert f"fill {placed / (240 * 170 * 100):.1%} of the interior" in fill
    once = write(tmp_path / "once.yaml", "seed: 2\nbag: {size: [240, 170, 100]}\npacking: {method: physics, packings: 1}\n"
                 "objects:\n" + boxes)
    r = run_cli("pack", once, "-o", tmp_path / "b")
    assert r.exit_code == 0 and "packing:" not in r.stderr
