"""The photographs -> X-ray -> ``tip`` path: camera-like shaded renders of catalog objects (Lambert's
cosine law on a sphere against a hand computation), the multiplicative image-space compositing,
the whole path (renders -> cyclegan trained on X-ray crops -> tip composites into benign bags,
labels exact) and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from pycocotools import mask as mask_utils

from helpers import run_cli, write
from xraybag.learners.tip import photo, shade

BAG = """
seed: 3
bag: {size: [400, 300, 120], wall: {material: nylon, thickness: 1.5}}
objects:
  - {name: plate, shape: {box: {size: [90, 70, 5]}}, material: steel, label: plate,
     pose: {position: [-50, 10, 20], rotation_deg: [0, 0, 0]}}
  - {name: slab, shape: {box: {size: [100, 80, 25]}}, material: pmma, label: slab,
     pose: {position: [60, -30, 40], rotation_deg: [0, 0, 15]}}
scanners:
  - {name: top, type: line_scan, view: vertical, pitch: 4.0, tunnel: [500, 400], source_distance: 700, noise: false}
  - {name: side, type: line_scan, view: horizontal, pitch: 4.0, tunnel: [500, 400], source_distance: 700, noise: false}
"""


def test_sphere_shading_follows_lamberts_cosine_law():
    r = 10.0
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=r)
    surf = shade.cast([(sphere.vertices, sphere.faces, "aluminum")], 64, margin=0.1)
    light = np.array([0.4, -0.3, 0.866])
    img = shade.shade(surf, light, background=(1.0, 1.0, 1.0), ambient=0.25)
    # pixel centres in mm (the camera frames the sphere's x-y extent with 10 % margins)
    ppm = surf.px_per_mm
    assert ppm == pytest.approx(64 * 0.8 / (2 * r), rel=1e-3)
    c = (np.arange(64) + 0.5) / ppm - 32 / ppm
    x, y = np.meshgrid(c, -c)
    rho2 = x**2 + y**2
    inside, outside = rho2 < (0.97 * r) ** 2, rho2 > (1.01 * r) ** 2
    assert surf.mask[inside].all() and not surf.mask[outside].any()
    n = np.dstack([x, y, np.sqrt(np.clip(r**2 - rho2, 0, None))]) / r
    l = light / np.linalg.norm(light)
    want = np.array(shade.MATERIAL_RGB["aluminum"])[None, None] * (0.25 + 0.75 * np.clip(n @ l, 0, None))[..., None]
    core = rho2 < (0.9 * r) ** 2
    err = np.abs(img - want)[core]
    assert err.max() < 0.03 and err.mean() < 0.004  # facets of a 20480-face sphere
    # depth: the camera plane lies 10 mm above the sphere's top
    assert np.allclose(surf.depth[core], 10.0 + r - n[..., 2][core] * r, atol=0.05)
    assert np.all(img[~surf.mask] == 1.0)


def test_constant_patch_multiplies_the_bag_under_its_mask_only():
    rng = np.random.default_rng(0)
    bag = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    v = 128
    patch = np.full((6, 9, 3), v / 255.0)
    mask = np.zeros((6, 9), dtype=bool)
    mask[1:5, 2:8] = True
    mask[3, 0] = True
    out = photo.composite_patch(bag, patch, mask, 7, 11)
    full = np.zeros((20, 30), dtype=bool)
    full[7:13, 11:20] = mask
    assert np.array_equal(out[~full], bag[~full])
    assert np.array_equal(out[full], np.round(bag[full].astype(float) * v / 255.0).astype(np.uint8))


def test_renders_scale_and_masks(tmp_path):
    r = run_cli("catalog", "photos", "pistol", "-o", tmp_path / "p", "-n", "2", "--size", "32", "--alpha")
    assert r.exit_code == 0, r.output
    labels = json.loads((tmp_path / "p" / "labels.json").read_text())["images"]
    assert [x["file"] for x in labels] == ["pistol_0000.png", "pistol_0001.png"]
    assert {x["class"] for x in labels} == {"gun"}
    for rec in labels:
        rgba = np.asarray(Image.open(tmp_path / "p" / rec["file"]))
        assert rgba.shape == (32, 32, 4)
        mask = rgba[:, :, 3] > 0
        rows, cols = np.nonzero(mask)
        longest = max(np.ptp(rows), np.ptp(cols)) + 1  # the object framed with 8 % margins
        assert 32 * 0.84 - 2 <= longest <= 32 * 0.84 + 1
        # the scale is the camera's: the projected extent in mm times px_per_mm
        assert max(rec["size_mm"][:2]) * rec["px_per_mm"] >= longest - 1
    ts = photo.read_threat_images(tmp_path / "p")
    assert [t.cls for t in ts] == ["gun", "gun"] and ts[0].mask.sum() > 50


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("photo")
    r = run_cli("render", write(root / "bag.yaml", BAG), "-n", "2", "-o", root / "benign", "-q")
    assert r.exit_code == 0, r.output
    return root


def test_photos_translated_by_cyclegan_composited_by_tip(bags, tmp_path):
    root = bags
    # the X-ray side: crops of knives from bags rendered with one in them
    xray = BAG.replace("objects:\n", "objects:\n  - {template: chef_knife}\n")
    assert run_cli("render", write(tmp_path / "x.yaml", xray), "-n", "2", "-o", tmp_path / "x", "-q").exit_code == 0
    crops = photo.crop_objects(tmp_path / "x", tmp_path / "crops", ["knife"], min_size=32)
    assert len(crops) == 4 and {c["class"] for c in crops} == {"knife"}
    # the photographs' stand-ins
    r = run_cli("catalog", "photos", "chef_knife", "-o", tmp_path / "photos", "-n", "3", "--size", "32")
    assert r.exit_code == 0, r.output
    r = run_cli("learn", "train", "cyclegan", "--data", tmp_path / "photos", "--target", tmp_path / "crops",
                "-o", tmp_path / "run", "-q", "--opt", "preset=test", "--opt", "size=32", "--opt", "ngf=8",
                "--opt", "ndf=16", "--opt", "n_blocks=1", "--opt", "iterations=5", "--opt", "threads=1")
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    r = run_cli("learn", "synthesize", "tip", "--data", root / "benign", "-o", out, "--opt",
                f"threat_images={tmp_path / 'photos'}", "--opt", f"translator={tmp_path / 'run' / 'weights.pt'}",
                "--opt", "copies=2")
    assert r.exit_code == 0, r.output
    coco = json.loads((out / "annotations.json").read_text())
    src = {im["id"]: im for im in coco["images"]}
    comps = [im for im in coco["images"] if "synthetic" in im]
    assert len(comps) == 8  # 2 bags x 2 copies x 2 views
    report = json.loads((out / "tip.json").read_text())
    assert report["composites"] == 4 and report["objects_after"]["knife"] == 8
    for im in comps:
        s = im["synthetic"]
        assert s["method"] == "tip" and s["signal"] == "image" and s["raw_composited"] is False
        assert s["translator"]["direction"] == "AtoB" and s["class"] == "knife"
        assert "raw" not in im and "scene" not in im
        ann = [a for a in coco["annotations"] if a["image_id"] == im["id"] and "synthetic" in a]
        assert len(ann) == 1 and ann[0]["category_id"] == next(c["id"] for c in coco["categories"]
                                                               if c["name"] == "knife")
        mask = mask_utils.decode(ann[0]["segmentation"]).astype(bool)
        before = np.asarray(Image.open(out / src[s["source_image"]]["file_name"]).convert("RGB"))
        after = np.asarray(Image.open(out / im["file_name"]).convert("RGB"))
        changed = np.any(before != after, axis=2)
        assert not changed[~mask].any()  # nothing outside the label changed
        assert changed[mask].mean() > 0.9  # and the label is what was composited
        assert np.all(after[mask] <= before[mask])  # multiplicative: only darker
        rows, cols = np.nonzero(mask)
        assert ann[0]["area"] == mask.sum()
        assert ann[0]["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert s["aspect"] > 1.2  # the line scanner magnifies across the belt
    # the bag's own objects are kept on the composites
    assert sum(1 for a in coco["annotations"] if a["image_id"] == comps[0]["id"]) == 3


def _bad(bags, tmp_path, folder, *opts):
    out = tmp_path / "out"
    r = run_cli("learn", "synthesize", "tip", "--data", bags / "benign", "-o", out,
                "--opt", f"threat_images={folder}", *opts)
    assert r.exit_code == 2, r.output
    assert not out.exists()
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_bad_threat_images_are_one_line(bags, tmp_path):
    ok = np.full((24, 24, 3), 240, dtype=np.uint8)
    ok[6:18, 4:20] = 60
    write(tmp_path / "broken" / "gun_0001.png", "not a png")
    assert "cannot read the image" in _bad(bags, tmp_path, tmp_path / "broken", "--opt", "threat_mm=100")
    (tmp_path / "noclass").mkdir()
    Image.fromarray(ok).save(tmp_path / "noclass" / "0001.png")
    assert "has no class" in _bad(bags, tmp_path, tmp_path / "noclass", "--opt", "threat_mm=100")
    (tmp_path / "good").mkdir()
    Image.fromarray(ok).save(tmp_path / "good" / "gun_0001.png")
    assert "has no scale" in _bad(bags, tmp_path, tmp_path / "good")
    assert "larger than every bag image" in _bad(bags, tmp_path, tmp_path / "good", "--opt", "threat_mm=3000")
    (tmp_path / "empty").mkdir()
    Image.fromarray(np.full((24, 24, 3), 240, dtype=np.uint8)).save(tmp_path / "empty" / "gun_0001.png")
    assert "mask is empty" in _bad(bags, tmp_path, tmp_path / "empty", "--opt", "threat_mm=100")
    assert "not a folder" in _bad(bags, tmp_path, tmp_path / "nowhere", "--opt", "threat_mm=100")
    r = run_cli("catalog", "photos", "pistol", "no_such_thing", "-o", tmp_path / "p")
    assert r.exit_code == 2 and not (tmp_path / "p").exists()
