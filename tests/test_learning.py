"""Learning happens on rendered data: a detector trained on a small set of rendered bags finds the
threats of bags it never saw, far above chance, scored by pycocotools on the results file it wrote.

The PIDray-scale figure (400 bags, 12 classes, 15 minutes of training) is a benchmark
(``make bench-learn``, benchmarks/pidray_learn.py); this is its short form for the suite (about
90 s on 2 cores: 80 small bags with a knife and a handgun among clutter, 8 epochs).
"""

from __future__ import annotations

import json
import random

import pytest

from helpers import run_cli, write

torch = pytest.importorskip("torch")

SCENE = """
seed: 11
bag:
  size: [{uniform: [260, 320]}, {uniform: [180, 220]}, 100]
  wall: {material: nylon, thickness: 1.5}
objects:
  - template: kitchen_knife
  - template: handgun
  - repeat: {uniform_int: [1, 3]}
    template: {choice: [book, folded_shirt, phone]}
packing: {method: random}
scanners:
  - name: top
    type: line_scan
    view: vertical
    pitch: 2.5
    spectrum: {kvp: 140, filtration: {Al: 2.0}, mas: 0.02}
    noise: true
"""


def test_detector_trained_on_rendered_bags_finds_threats_in_unseen_bags(tmp_path):
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.metrics import coco_metrics

    scene = write(tmp_path / "two_threats.yaml", SCENE)
    data, run = tmp_path / "data", tmp_path / "run"
    r = run_cli("render", scene, "-n", 80, "-o", data, "-q")
    assert r.exit_code == 0, r.output
    r = run_cli("learn", "train", "atss", "--data", data, "--out", run, "--opt", "preset=cpu_small",
                "--opt", "epochs=8", "--opt", "min_size=128", "--opt", "max_size=448",
                "--opt", "val_every=0", "-q")
    assert r.exit_code == 0, r.output
    r = run_cli("learn", "eval", "-q", "atss", "--weights", run / "weights.pt", "--data", data)
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output[r.output.index("{"):])

    test = DetectionDataset(data, "test")  # bags held out from training (split by bag)
    train_bags = set(DetectionDataset(data, "train").bags)
    assert test.bags and not set(test.bags) & train_bags
    results_file = run / "eval_test" / "results.json"
    assert coco_metrics(test.coco_subset(), results_file)["mAP50"] == metrics["mAP50"]
    results = json.loads(results_file.read_text())
    rng = random.Random(0)  # chance: the same detections dealt out to random test images
    dealt = [dict(d, image_id=rng.choice(test.image_ids)) for d in results]
    chance = coco_metrics(test.coco_subset(), dealt)["mAP50"]
    print(f"\nunseen bags: mAP50 {metrics['mAP50']:.3f} (chance {chance:.3f}), mAP {metrics['mAP']:.3f}")
    assert metrics["mAP50"] > 0.5, metrics
    assert metrics["mAP50"] > 3 * chance, (metrics["mAP50"], chance)
