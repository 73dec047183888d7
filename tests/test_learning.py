"""Learning happens on rendered data: a detector trained on a small set of rendered bags finds the
threats of bags it never saw (rendered from another seed), far above chance, scored by pycocotools
on the results file it wrote.

Chance is the same detections dealt out to random held-out images: it keeps the detector's scores,
classes, box sizes and the places threats tend to lie in a bag, and loses only what the detector
saw in each image. The scene keeps the threats small beside the image so that chance stays low
(scene seeds 11, 21, 31 on 2 cores: mAP50 0.51 +- 0.04 against chance 0.15, mAP 0.15 +- 0.01
against 0.04; seed 11, the one below, gave mAP50 0.55).

The PIDray-scale figure (400 bags, 12 classes, 15 minutes of training) is a benchmark
(``make bench-learn``, benchmarks/pidray_learn.py); this is its short form for the suite (about
90 s on 2 cores: 80 bags with a knife and a handgun among clutter, 8 epochs; 40 unseen bags).
"""

from __future__ import annotations

import json
import random
import statistics

import pytest

from helpers import run_cli, write

torch = pytest.importorskip("torch")

SCENE = """
seed: 11
bag:
  size: [{uniform: [380, 440]}, {uniform: [260, 300]}, 100]
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
    pitch: 3
    spectrum: {kvp: 140, filtration: {Al: 2.0}, mas: 0.02}
    noise: true
"""


def test_detector_trained_on_rendered_bags_finds_threats_in_unseen_bags(tmp_path):
    from xraybag.learners.metrics import coco_metrics

    scene = write(tmp_path / "two_threats.yaml", SCENE)
    data, unseen, run = tmp_path / "data", tmp_path / "unseen", tmp_path / "run"
    r = run_cli("render", scene, "-n", 80, "-o", data, "-q")
    assert r.exit_code == 0, r.output
    r = run_cli("render", scene, "-n", 40, "--seed", 12, "-o", unseen, "-q")
    assert r.exit_code == 0, r.output
    r = run_cli("learn", "train", "atss", "--data", data, "--out", run, "--opt", "preset=cpu_small",
                "--opt", "epochs=8", "--opt", "min_size=128", "--opt", "max_size=448",
                "--opt", "val_every=0", "-q")
    assert r.exit_code == 0, r.output
    out = tmp_path / "eval"
    r = run_cli("learn", "eval", "-q", "atss", "--weights", run / "weights.pt", "--data", unseen,
                "--split", "all", "-o", out)
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())

    truth = json.loads((unseen / "annotations.json").read_text())
    assert len(truth["images"]) == 40 and len(truth["annotations"]) == 80  # a knife and a gun each
    results = json.loads((out / "results.json").read_text())
    scored = coco_metrics(truth, results)  # pycocotools on the file the CLI wrote
    assert (scored["mAP50"], scored["mAP"]) == (metrics["mAP50"], metrics["mAP"])

    ids = [image["id"] for image in truth["images"]]
    dealt = []  # chance: the same detections dealt out to random unseen images, five times
    for seed in range(5):
        rng = random.Random(seed)
        dealt.append(coco_metrics(truth, [dict(d, image_id=rng.choice(ids)) for d in results]))
    chance50 = statistics.mean(c["mAP50"] for c in dealt)
    chance = statistics.mean(c["mAP"] for c in dealt)
    print(f"\nunseen bags: mAP50 {scored['mAP50']:.3f} (chance {chance50:.3f}), "
          f"mAP {scored['mAP']:.3f} (chance {chance:.3f})")
    assert scored["mAP50"] > 0.4, scored
    assert scored["mAP50"] > 2.5 * chance50, (scored["mAP50"], chance50)
    assert scored["mAP"] > 2.5 * chance, (scored["mAP"], chance)
