"""The built-in ``atss`` and ``la_atss`` learners through the CLI: train, evaluate with pycocotools
on the written results, and the label-aware hook wired in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli

torch = pytest.importorskip("torch")

W, H = 128, 96
CATS = [{"id": 1, "name": "orange_box"}, {"id": 2, "name": "blue_box"}]
COLOURS = {1: (230, 140, 40), 2: (40, 90, 220)}


def colour_dataset(root: Path, bags: int = 20) -> Path:
    """Bags of one or two solid rectangles on a light background; the class is the colour."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(5)
    images, anns = [], []
    for b in range(bags):
        iid = b + 1
        img = np.full((H, W, 3), 235, np.uint8)
        for k in range(1 + b % 2):
            cat = 1 + (b // 2 + k) % 2  # both classes equally often, left and right
            bw, bh = int(rng.integers(24, 44)), int(rng.integers(20, 36))
            x = int(rng.integers(0, W // 2 - bw)) + (W // 2) * k
            y = int(rng.integers(0, H - bh))
            img[y : y + bh, x : x + bw] = COLOURS[cat]
            anns.append({"id": iid * 100 + k, "image_id": iid, "category_id": cat,
                         "bbox": [float(x), float(y), float(bw), float(bh)], "area": float(bw * bh),
                         "iscrowd": 0, "difficulty": "easy"})
        Image.fromarray(img).save(root / "images" / f"{b:06d}_top.png")
        images.append({"id": iid, "file_name": f"images/{b:06d}_top.png", "width": W, "height": H,
                       "bag": b, "view": "top", "raw": {}})
    (root / "annotations.json").write_text(json.dumps(
        {"info": {}, "licenses": [], "categories": CATS, "images": images, "annotations": anns}))
    return root


SMALL = ["--opt", "preset=cpu_small", "--opt", "min_size=96", "--opt", "max_size=128",
         "--opt", "warmup_iters=20", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return colour_dataset(tmp_path_factory.mktemp("colours"))


def test_atss_learns_the_colour_boxes(data, tmp_path):
    run = tmp_path / "run"
    r = run_cli("learn", "train", "atss", "--data", data, "--out", run, "--split-seed", "0",
                "--opt", "epochs=14", *SMALL)
    assert r.exit_code == 0, r.output
    r = run_cli("learn", "eval", "-q", "atss", "--weights", run / "weights.pt", "--data", data,
                "--split", "train")
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output[r.output.index("{"):])
    assert metrics["mAP50"] > 0.6, metrics
    results = json.loads((run / "eval_train" / "results.json").read_text())
    assert results and {d["category_id"] for d in results} <= {1, 2}


def test_la_atss_trains_with_the_label_aware_hook(data, tmp_path):
    from xraybag.learners.detectors import LAATSSModel

    run = tmp_path / "la"
    r = run_cli("learn", "train", "la_atss", "--data", data, "--out", run, "--opt", "epochs=1",
                "--opt", "la_reg=true", *SMALL)
    assert r.exit_code == 0, r.output
    model, extra = LAATSSModel().load(run / "weights.pt")
    assert model.la is not None and extra["atss"]["la_cls"] and extra["atss"]["la_reg"]
    assert extra["atss"]["reg_bins"] == 15  # LAreg's 16 distance bins per side
    r = run_cli("learn", "eval", "-q", "la_atss", "--weights", run / "weights.pt", "--data", data)
    assert r.exit_code == 0, r.output
    assert "mAP50" in r.output


def test_bad_options_one_line(data, tmp_path):
    r = run_cli("learn", "train", "atss", "--data", data, "--out", tmp_path / "x",
                "--opt", "preset=huge", "-q")
    assert r.exit_code == 2 and "preset" in r.output and len(r.output.strip().splitlines()) == 1
    r = run_cli("learn", "train", "la_atss", "--data", data, "--out", tmp_path / "y",
                "--opt", "la_cls=false", "-q")
    assert r.exit_code == 2 and "la_cls or la_reg" in r.output
    r = run_cli("learn", "train", "atss", "--data", data, "--out", tmp_path / "z",
                "--opt", "backbone_weights=/nonexistent.pt", "-q")
    assert r.exit_code == 2 and "backbone_weights" in r.output


def test_atss_resumed_run_ends_at_the_uninterrupted_weights(data, tmp_path):
    """Shuffling and flips depend on (seed, epoch) only, so stopping after one epoch and resuming
    gives the weights of the straight run."""
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.detectors import ATSSModel

    ds = DetectionDataset(data, "train")
    opts = dict(preset="cpu_small", min_size=96, max_size=128, warmup_iters=3, flip="hv",
                val_every=0, seed=3)
    straight = ATSSModel(epochs=2, **opts).train(ds, tmp_path / "a", progress=False)
    ATSSModel(epochs=1, **opts).train(ds, tmp_path / "b", progress=False)
    resumed = ATSSModel(epochs=2, **opts).train(ds, tmp_path / "b", resume=True, progress=False)
    a = torch.load(straight, weights_only=False)["model"]
    b = torch.load(resumed, weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    other = ATSSModel(epochs=2, **(opts | {"seed": 4})).train(ds, tmp_path / "c", progress=False)
    c = torch.load(other, weights_only=False)["model"]
    assert any(not torch.allclose(a[k], c[k]) for k in a)


def test_atss_logs_validation_scores_each_epoch(data, tmp_path):
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.detectors import ATSSModel
    from xraybag.learners.training import read_log

    train, val = DetectionDataset(data, "train"), DetectionDataset(data, "val")
    ATSSModel(preset="cpu_small", min_size=96, max_size=128, epochs=2, warmup_iters=3,
              val_every=1).train(train, tmp_path / "v", val=val, progress=False)
    evals = [r for r in read_log(tmp_path / "v") if "eval" in r]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all(0.0 <= r["eval"]["val_mAP50"] <= 1.0 for r in evals)


def test_la_compare_benchmark_prints_json_and_rescores_finished_runs(data, tmp_path):
    """benchmarks/la_compare.py on the toy set: the three variants, mean and std over seeds, and a
    second call scores the finished runs again instead of retraining them."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "la_compare.py"
    cmd = [sys.executable, str(bench), "--data", str(data), "--out", str(tmp_path / "runs"),
           "--seeds", "0", "1", *sum([["--opt", o] for o in (
               "preset=cpu_small", "epochs=1", "min_size=96", "max_size=128", "val_every=0",
               "warmup_iters=5")], [])]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out["summary"]) == {"atss", "atss+LAcls", "atss+LAreg"}
    assert out["options"]["reg_bins"] == "15" and out["seeds"] == [0, 1]
    for name, rows in out["runs"].items():
        assert [r["seed"] for r in rows] == [0, 1]
        assert all(r["sec_per_iter"] > 0 and 0 <= r["mAP50"] <= 1 for r in rows)
        s = out["summary"][name]["mAP50"]
        assert s["mean"] == pytest.approx(np.mean([r["mAP50"] for r in rows]), abs=1e-4)
        assert s["std"] == pytest.approx(np.std([r["mAP50"] for r in rows], ddof=1), abs=1e-4)
    stamp = (tmp_path / "runs" / "atss_seed0" / "weights.pt").stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "runs" / "atss_seed0" / "weights.pt").stat().st_mtime_ns == stamp
    assert json.loads(again.stdout)["runs"] == out["runs"]
