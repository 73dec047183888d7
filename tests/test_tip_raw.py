"""``tip`` on a plain folder of raw low/high images with a scanner description (no scenes): the raw
folder is made from a render of the tiny bag of ``test_tip`` (its raw tiffs copied, its scanner
blocks written to files). The composite equals the scene-based path's for the same pose; the CLI
writes labelled composites; bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import run_cli, write
from test_tip import POSE, SCENE, dataset  # noqa: F401 - test_tip's render of the tiny bag (a fixture)
from xraybag.engine.xray.annotate import rle
from xraybag.learners.tip import core, rawfolder

SCANNERS = {
    "top": "name: top\ntype: line_scan\nview: vertical\npitch: 4.0\ntunnel: [400, 300]\nsource_distance: 700\n"
           "noise: false\n",
    "side": "name: side\ntype: line_scan\nview: horizontal\npitch: 4.0\ntunnel: [400, 300]\n"
            "source_distance: 700\nnoise: false\n",
}


@pytest.fixture(scope="module")
def rendered(dataset):
    """The folder of test_tip's render (``data``) with the scanner descriptions beside it."""
    root = dataset.parent
    for view, text in SCANNERS.items():
        write(root / f"{view}.yaml", text)
    return root


def raw_folder(root, dest, view="top", split=False):
    """The render's raw tiffs of ``view`` as a plain folder (NAME_low.tiff or low/NAME.tiff)."""
    for c in ("low", "high"):
        target = dest / c / "bag.tiff" if split else dest / f"bag_{c}.tiff"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "data" / "raw" / f"000000_{view}_{c}.tiff", target)
    return dest


@pytest.mark.parametrize("view", ["top", "side"])
def test_raw_composite_equals_the_scene_based_composite(rendered, view):
    """The same pistol pose in the scene frame and in the raw frame (shifted by the two frames'
    origins: the image's middle row and the belt): the same rays, the same transmission, mask and
    colour. The raw path loses only the bag's own labels."""
    bag = core.load_bag(rendered / "data" / "scenes" / "000000.yaml")
    white = bag.views[view].scanner.detector.white
    stored = {c: tifffile.imread(rendered / "data" / "raw" / f"000000_{view}_{c}.tiff") / white for c in ("low", "high")}
    scanner, _ = rawfolder.read_scanner(rendered / f"{view}.yaml")
    raw = rawfolder.raw_bag(stored["low"], stored["high"], scanner, bag.library, 220.0 if view == "side" else 120.0,
                            core.BASIS)
    shift = np.array([raw.views[view].geometry.extras["x0"] - bag.views[view].geometry.extras["x0"], 0.0,
                      bag.scene.bag.wall.thickness])
    obj = core.threat_object("pistol", 5, POSE)
    moved = core.threat_object("pistol", 5, {"position": list(np.array(POSE["position"]) + shift),
                                             "rotation_deg": POSE["rotation_deg"]})
    index = len(bag.scene.objects) + 1
    ref = core.composite_view(bag, view, stored, core.trace_threat(bag, view, obj, index), np.random.default_rng(0))
    ours = core.composite_view(raw, view, stored, core.trace_threat(raw, view, moved, 1), np.random.default_rng(0))
    mask = ref.labels[index].mask
    assert mask.sum() > 50
    for c in ("low", "high"):
        np.testing.assert_allclose(ours.transmission[c], ref.transmission[c], rtol=1e-5, atol=1e-7)
        assert np.array_equal(ours.raw[c], ref.raw[c])
    lab = ours.labels[1]
    assert np.array_equal(lab.mask, mask) and lab.bbox == ref.labels[index].bbox and lab.area == ref.labels[index].area
    assert np.array_equal(ours.rgb, ref.rgb)
    assert np.array_equal(ours.instance > 0, mask)
    # the threat's occlusion against the bag's basis fit instead of its traced objects
    assert lab.occlusion == pytest.approx(ref.labels[index].occlusion, abs=0.02)
    if view == "top":  # the interior from the footprint: the bag's 303 x 223 mm outline, to a pixel or two
        assert abs(raw.interior[0] - 303) <= 8 and abs(raw.interior[1] - 223) <= 12 and raw.interior[2] == 120.0


def test_cli_writes_labelled_composites_and_unlabelled_originals(rendered, tmp_path):
    data = raw_folder(rendered, tmp_path / "raw", split=True)
    out = tmp_path / "out"
    r = run_cli("learn", "synthesize", "tip", "--data", data, "-o", out, "--opt", "threats=pistol,chef_knife",
                "--opt", f"scanner={rendered / 'top.yaml'}", "--opt", "copies=2", "--opt", "bag_depth=120",
                "--opt", "placement=hidden", "--opt", "candidates=2")
    assert r.exit_code == 0, r.output
    coco = json.loads((out / "annotations.json").read_text())
    report = json.loads((out / "tip.json").read_text())
    assert report["composites"] == 2 and not report["skipped"]
    originals = [im for im in coco["images"] if not im.get("synthetic")]
    assert len(originals) == 1 and originals[0]["unlabelled"] and originals[0]["source"]["low"] == "low/bag.tiff"
    assert np.array_equal(tifffile.imread(out / originals[0]["raw"]["low"]), tifffile.imread(data / "low" / "bag.tiff"))
    images = {im["id"]: im for im in coco["images"]}
    assert len(coco["annotations"]) == 2
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        assert a["synthetic"]["method"] == "tip" and im["synthetic"]["source_image"] == "bag"
        instance = np.asarray(Image.open(out / im["labels"]))
        assert rle(instance == 1) == a["segmentation"] and a["area"] == int((instance == 1).sum())
        for c in ("low", "high"):
            assert tifffile.imread(out / im["raw"][c]).shape == (im["height"], im["width"])
    assert (out / "manifest.jsonl").read_text().count("\n") == 3


def _bad(rendered, tmp_path, name, prepare, expect, *opts, scanner="top"):
    data = tmp_path / name
    data.mkdir()
    prepare(data)
    out = tmp_path / f"out_{name}"
    spath = scanner if not isinstance(scanner, str) or scanner.endswith(".yaml") else rendered / f"{scanner}.yaml"
    r = run_cli("learn", "synthesize", "tip", "--data", data, "-o", out, "--opt", "threats=pistol",
                "--opt", f"scanner={spath}", *opts)
    assert r.exit_code == 2, (name, r.output)
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, (name, r.output)
    for part in expect:
        assert part in r.output, (name, r.output)
    assert not out.exists(), name


def test_bad_inputs_are_one_line_and_write_nothing(rendered, tmp_path):
    low = tifffile.imread(rendered / "data" / "raw" / "000000_top_low.tiff")

    def plain(d):
        raw_folder(rendered, d)

    def other_size(d):
        plain(d)
        tifffile.imwrite(d / "bag_high.tiff", low[:-3])

    def eight_bit(d):
        plain(d)
        tifffile.imwrite(d / "bag_low.tiff", (low // 256).astype(np.uint8))

    def three_channels(d):
        plain(d)
        tifffile.imwrite(d / "bag_low.tiff", np.stack([low] * 3, axis=-1))

    def no_partner(d):
        plain(d)
        (d / "bag_high.tiff").unlink()

    wide = write(tmp_path / "wide.yaml", SCANNERS["top"].replace("[400, 300]", "[480, 300]"))
    single = write(tmp_path / "single.yaml", SCANNERS["top"] + "detector: {type: integrating}\n")
    invalid = write(tmp_path / "invalid.yaml", SCANNERS["top"].replace("pitch: 4.0", "pitch: -4"))
    _bad(rendered, tmp_path, "width", plain, ["bag_low.tiff", "194 px wide", "detector columns", "wide.yaml"],
         scanner=str(wide))
    _bad(rendered, tmp_path, "sizes", other_size, ["bag_high.tiff", "its low channel"])
    _bad(rendered, tmp_path, "depth8", eight_bit, ["bag_low.tiff", "16-bit"])
    _bad(rendered, tmp_path, "rgb", three_channels, ["bag_low.tiff", "channels"])
    _bad(rendered, tmp_path, "partner", no_partner, ["bag_low.tiff", "no partner high channel"])
    _bad(rendered, tmp_path, "single", plain, ["single.yaml:8", "detector.type", "not a dual-energy"],
         scanner=str(single))
    _bad(rendered, tmp_path, "invalid", plain, ["invalid.yaml:4", "pitch"], scanner=str(invalid))
    _bad(rendered, tmp_path, "fits", plain, ["fits in none of the 1 bags"], "--opt", "bag_depth=5")
