"""`xraybag render` end to end: the dataset layout, determinism, resuming, clean failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import trimesh
from PIL import Image

from helpers import run_cli, write

SMALL = """
seed: 11
bag: {size: [{uniform: [260, 300]}, 200, 120], wall: {material: nylon, thickness: 1.5}}
objects:
  - name: knife
    template: kitchen_knife
  - name: bottle
    template: plastic_bottle
    pose: {position: [60, 40, 35], rotation_deg: [0, 90, 0]}
  - name: plate
    shape: {box: {size: [60, 50, 6]}}
    material: aluminum
    label: plate
  - repeat: {uniform_int: [2, 4]}
    template: {choice: [book, phone]}
  - name: block
    shape: {mesh: {path: meshes/block.stl, scale: 0.5}}
    material: titanium
    label: block
scanners:
  - {name: top, type: line_scan, view: vertical, pitch: 4.0, tunnel: [400, 300], source_distance: 700}
  - {name: side, type: line_scan, view: horizontal, pitch: 4.0, tunnel: [400, 300], source_distance: 700}
"""


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every dataset file (manifest and run state excluded: they hold timings)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".xraybag/run") and rel != "manifest.jsonl":
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    (root / "meshes").mkdir()
    trimesh.creation.annulus(r_min=8, r_max=20, height=12).export(root / "meshes" / "block.stl")
    scene = write(root / "bag.yaml", SMALL)
    out = root / "out"
    r = run_cli("render", scene, "-n", "3", "-o", out, "--save-transmission", "--encoding", "clcxray", "-q")
    assert r.exit_code == 0, r.output
    return scene, out


def test_layout(dataset):
    _, out = dataset
    for bag in ("000000", "000001", "000002"):
        assert (out / "scenes" / f"{bag}.yaml").is_file()
        for view in ("top", "side"):
            rgb = np.asarray(Image.open(out / "images" / f"{bag}_{view}.png"))
            assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
            labels = np.asarray(Image.open(out / "labels" / f"{bag}_{view}.png"))
            assert labels.dtype == np.uint16 and labels.shape == rgb.shape[:2]
            for ch in ("low", "high"):
                raw = tifffile.imread(out / "raw" / f"{bag}_{view}_{ch}.tiff")
                assert raw.dtype == np.uint16 and raw.shape == rgb.shape[:2]
                t = tifffile.imread(out / "transmission" / f"{bag}_{view}_{ch}.tiff")
                assert t.dtype == np.float32
            enc = np.asarray(Image.open(out / "clcxray" / f"{bag}_{view}.png"))
            assert enc.shape == rgb.shape
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3
    rec = json.loads(lines[0])
    for rel, digest in rec["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest


def test_coco_annotations_load_and_match_the_label_maps(dataset):
    from pycocotools.coco import COCO
    from pycocotools import mask as mask_utils

    _, out = dataset
    coco = COCO(str(out / "annotations.json"))
    names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert names == {"block", "knife", "plastic_bottle", "plate"}
    assert len(coco.getImgIds()) == 6
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 6
    for a in anns:
        img = coco.loadImgs(a["image_id"])[0]
        m = mask_utils.decode(a["segmentation"])
        assert m.shape == (img["height"], img["width"])
        assert m.sum() == a["area"]
        ys, xs = np.nonzero(m)
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert a["difficulty"] in ("easy", "hard", "hidden") and 0 <= a["occlusion"] <= 1
        assert a["material"] and len(a["pose"]["position"]) == 3
        labels = np.asarray(Image.open(out / img["labels"]))
        # the instance map shows the object where it dominates, always inside its own mask
        own = labels == a["object_index"]
        assert own.any() and not (own & (m == 0)).any()


def test_same_seed_same_bytes_whatever_the_workers(dataset, tmp_path):
    scene, out = dataset
    out2 = tmp_path / "w2"
    r = run_cli("render", scene, "-n", "3", "-o", out2, "--save-transmission", "--encoding", "clcxray", "--workers", "2", "-q")
    assert r.exit_code == 0, r.output
    assert tree_digest(out) == tree_digest(out2)


def test_concrete_scene_renders_its_bag_byte_for_byte(dataset, tmp_path):
    _, out = dataset
    again = tmp_path / "again"
    r = run_cli("render", out / "scenes" / "000002.yaml", "-o", again, "-q")
    assert r.exit_code == 0, r.output
    for view in ("top", "side"):
        for sub, name in (("images", f"000002_{view}.png"), ("raw", f"000002_{view}_high.tiff"), ("labels", f"000002_{view}.png")):
            assert (again / sub / name).read_bytes() == (out / sub / name).read_bytes()


def test_resume_after_interruption(dataset, tmp_path):
    scene, out = dataset
    part = tmp_path / "part"
    assert run_cli("render", scene, "-n", "2", "-o", part, "-q").exit_code == 0
    # an interrupted run leaves a cut manifest line; resuming renders only the missing bag
    with open(part / "manifest.jsonl", "a") as f:
        f.write('{"bag": 2, "se')
    r = run_cli("render", scene, "-n", "3", "-o", part, "-q")
    assert r.exit_code == 0
    assert "1 rendered, 2 already there" in r.output
    for name in ("images/000002_top.png", "raw/000002_side_low.tiff"):
        assert (part / name).read_bytes() == (out / name).read_bytes()


def test_different_scene_in_the_same_folder_is_refused(dataset, tmp_path):
    scene, out = dataset
    other = write(scene.parent / "other.yaml", SMALL.replace("seed: 11", "seed: 12"))
    r = run_cli("render", other, "-n", "1", "-o", out, "-q")
    assert r.exit_code == 2 and "another scene" in r.stderr


@pytest.mark.parametrize(
    "bad, words",
    [
        ("objects:\n  - {shape: {box: {size: [1, 2]}}, material: water}\n", "expected 3 positive numbers"),
        ("objects:\n  - {shape: {box: {size: [10, 20, 30]}}, material: water, colour: red}\n", "unknown key 'colour'"),
        ("objects:\n  - {shape: {box: {size: [10, -20, 30]}}, material: water}\n", "positive"),
        ("objects:\n  - {shape: {sphere: {radius: 5}}, material: kryptonite}\n", "unknown material"),
        ("objects:\n  - {shape: {mesh: {path: missing.stl}}, material: water}\n", "no such file"),
        ("objects:\n  - {shape: {mesh: {path: ../../etc/passwd}}, material: water}\n", "leaves the scene folder"),
        ("objects:\n  - {shape: {mesh: {path: open.stl}}, material: water}\n", "watertight"),
        ("scanners:\n  - {name: top, type: line_scan, pitch: 0.01}\n", "GiB"),
        ("scanners:\n  - {name: top, type: line_scan, tunnel: [200, 100]}\n", "bad.yaml:3:5: scanners[0]: scanner 'top': the bag"),
        ("objects:\n  - {shape: {sphere: {radius: 5}}, material: {choice: [water, nope]}}\n", "unknown material 'nope'"),
    ],
)
def test_bad_input_one_line_exit_2_no_dataset(tmp_path, bad, words):
    box = trimesh.creation.box([10, 10, 10])
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-1])
    open_box.export(tmp_path / "open.stl")
    scene = write(tmp_path / "bad.yaml", "bag: {size: [300, 200, 120]}\n" + bad)
    out = tmp_path / "out"
    r = run_cli("render", scene, "-n", "2", "-o", out, "-q")
    assert r.exit_code == 2, r.output
    assert words in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.output
    assert not out.exists()


def test_render_through_a_dask_scheduler(dataset, tmp_path):
    from distributed import LocalCluster

    scene, out = dataset
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        r = run_cli("render", scene, "-n", "1", "-o", tmp_path / "dask", "--scheduler", cluster.scheduler_address, "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "dask" / "images" / "000000_top.png").read_bytes() == (out / "images" / "000000_top.png").read_bytes()


def test_preview_contact_sheet(dataset):
    _, out = dataset
    r = run_cli("preview", out)
    assert r.exit_code == 0
    sheet = np.asarray(Image.open(out / "preview.png"))
    assert sheet.shape[0] > 100 and (sheet < 250).any()


ROUND = """
seed: 1
bag: {size: [300, 200, 150]}
objects:
  - name: can
    repeat: 4
    material: aluminium
    shape: {cylinder: {radius: 33, height: 110}}
  - name: ball
    repeat: 2
    material: rubber
    shape: {sphere: {radius: 31}}
packing: {method: physics}
scanners:
  - {name: top, type: line_scan, view: vertical, pitch: 4.0}
"""


def test_physics_packed_round_objects_concrete_scene_renders_again(tmp_path):
    """Cans lying on the floor: the packer places them on its 0.2 mm meshes, where a finer mesh's
    lowest chord reaches a little lower. The concrete scene must still be accepted (it was refused
    as 0.2 mm outside the bag on its floor) and render the same bytes."""
    scene = write(tmp_path / "round.yaml", ROUND)
    out, again = tmp_path / "out", tmp_path / "again"
    r = run_cli("render", scene, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    concrete = (out / "scenes" / "000000.yaml").read_text()
    assert concrete.count("pose:") >= 6  # every object was placed
    r = run_cli("render", out / "scenes" / "000000.yaml", "-o", again, "-q")
    assert r.exit_code == 0, r.output
    for sub, name in (("images", "000000_top.png"), ("raw", "000000_top_high.tiff"), ("labels", "000000_top.png")):
        assert (again / sub / name).read_bytes() == (out / sub / name).read_bytes()
