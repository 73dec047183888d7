"""``xraybag learn train/eval/predict`` with a segmenter, end to end on rendered bags: a tiny
``apsam`` trains, is scored (mIoU, Dice, COCO segm) and segments a clicked object into a mask and
an overlay; bad input (a dataset without masks, a checkpoint that is not SAM's, a click outside
the image) is one line with exit status 2 and no output."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from xraybag.learners.data import decode_segmentation  # noqa: E402

TINY = ["--opt", "image_size=64", "--opt", "epochs=1", "--opt", "warmup_iters=0", "--opt", "val_every=0",
        "--opt", "max_objects=2", "--splits", "1,0,0"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("segcli")
    r = run_cli("render", "demo", "-n", "2", "-o", root / "d", "-q", "--set", "scanners.0.pitch=2",
                "--set", "scanners.1.pitch=2")
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture(scope="module")
def trained(rendered):
    torch.set_num_threads(1)
    r = run_cli("learn", "train", "apsam", "--data", rendered / "d", "-o", rendered / "run", "-q", *TINY,
                "--opt", "seed=1")
    assert r.exit_code == 0, r.output
    return rendered / "run" / "weights.pt"


def _coco(rendered):
    return json.loads((rendered / "d" / "annotations.json").read_text())


def test_train_and_eval(rendered, trained):
    assert trained.is_file()
    rec = json.loads((trained.parent / "learn.json").read_text())
    assert rec["learner"] == "apsam" and rec["opts"]["image_size"] == "64"
    r = run_cli("learn", "eval", "apsam", "--weights", trained, "--data", rendered / "d", "--split", "all", "-q")
    assert r.exit_code == 0, r.output
    m = json.loads((trained.parent / "eval_all" / "metrics.json").read_text())
    masks = [a for a in _coco(rendered)["annotations"] if a.get("segmentation")]
    assert m["objects"] == len(masks) > 0 and m["channels"] == "auto"
    assert 0.0 <= m["mIoU"] <= 1.0 and 0.0 <= m["mDice"] <= 1.0 and m["mDice"] >= m["mIoU"] - 1e-9
    assert set(m["per_difficulty"]) == {"easy", "hard", "hidden"} and "mAP50" in m["coco_segm"]
    results = json.loads((trained.parent / "eval_all" / "results.json").read_text())
    assert len(results) == len(masks) and {r["ann_id"] for r in results} == {a["id"] for a in masks}


def test_predict_a_click_writes_mask_and_overlay(rendered, trained):
    coco = _coco(rendered)
    im = coco["images"][0]
    a = next(a for a in coco["annotations"] if a["image_id"] == im["id"] and a.get("segmentation"))
    ys, xs = np.nonzero(decode_segmentation(a["segmentation"], im["height"], im["width"]))
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    stem = im["file_name"].split("/")[-1][:-4]
    out = rendered / "pred"
    r = run_cli("learn", "predict", "apsam", "--weights", trained, "--data", rendered / "d", "-o", out,
                "--image", stem, "--points", f"{x},{y}", "-q")
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert len(res) == 1 and res[0]["image_id"] == im["id"] and "counts" in res[0]["segmentation"]
    mask = np.asarray(Image.open(out / "masks" / f"{stem}_0.png"))
    assert mask.shape == (im["height"], im["width"]) and set(np.unique(mask)) <= {0, 255}
    overlay = np.asarray(Image.open(out / "images" / f"{stem}.png").convert("RGB")).astype(int)
    src = np.asarray(Image.open(rendered / "d" / im["file_name"]).convert("RGB")).astype(int)
    assert overlay.shape == src.shape
    assert tuple(overlay[y, x]) == (0, 255, 0)  # the click, drawn green


def test_bad_inputs_are_one_line_errors(rendered, trained, tmp_path):
    def check(args, message):
        r = run_cli("learn", *args)
        assert r.exit_code == 2, r.output
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.output

    im = _coco(rendered)["images"][0]
    stem = im["file_name"].split("/")[-1][:-4]
    out = tmp_path / "p"
    check(["predict", "apsam", "--weights", trained, "--data", rendered / "d", "-o", out, "--image", stem,
           "--points", f"{im['width'] + 5},3"],
          f"lies outside the image ({im['width']} x {im['height']})")
    assert not out.exists()  # refused before anything was written
    # a dataset without masks
    bare = tmp_path / "bare"
    shutil.copytree(rendered / "d", bare)
    coco = json.loads((bare / "annotations.json").read_text())
    for a in coco["annotations"]:
        a.pop("segmentation", None)
    (bare / "annotations.json").write_text(json.dumps(coco))
    check(["train", "apsam", "--data", bare, "-o", tmp_path / "r1", *TINY], "annotations.json: no instance masks")
    # a checkpoint that is not a SAM state dict
    bad = tmp_path / "detector.pt"
    torch.save({"backbone.conv1.weight": torch.zeros(3)}, bad)
    check(["train", "apsam", "--data", rendered / "d", "-o", tmp_path / "r2", *TINY, "--opt", f"checkpoint={bad}"],
          str(bad))
    assert not (tmp_path / "r2").exists()
    check(["train", "apsam", "--data", rendered / "d", "-o", tmp_path / "r3", "--input", "clcxray", *TINY],
          "--input clcxray is for detectors")
