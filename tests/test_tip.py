"""The ``tip`` synthesizer: a threat composited into a rendered bag against the engine's own render
of the bag with the threat placed in it (noise off), the dual-energy basis fit against its forward
model, class balancing, the plugin end to end, and one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy.ndimage import binary_erosion

from helpers import run_cli, write
from xraybag.engine.output.pipeline import render_bag
from xraybag.errors import XraybagError
from xraybag.learners.tip import core
from xraybag.learners.tip.place import pick_threats
from xraybag.scenes.loader import load_scene
from xraybag.scenes.sample import dump_scene

SCENE = """
seed: 3
bag: {size: [300, 220, 120], wall: {material: nylon, thickness: 1.5}}
objects:
  - {name: plate, shape: {box: {size: [90, 70, 5]}}, material: steel, label: plate,
     pose: {position: [-50, 10, 20], rotation_deg: [0, 0, 0]}}
  - {name: slab, shape: {box: {size: [100, 80, 25]}}, material: pmma, label: slab,
     pose: {position: [60, -30, 40], rotation_deg: [0, 0, 15]}}
  - {name: can, shape: {box: {size: [60, 60, 12]}}, material: aluminum, label: can,
     pose: {position: [10, 50, 55], rotation_deg: [0, 0, 0]}}
scanners:
  - {name: top, type: line_scan, view: vertical, pitch: 4.0, tunnel: [400, 300], source_distance: 700, noise: false}
  - {name: side, type: line_scan, view: horizontal, pitch: 4.0, tunnel: [400, 300], source_distance: 700, noise: false}
"""
POSE = {"position": [0.0, 0.0, 90.0], "rotation_deg": [0.0, 0.0, 0.0]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tip")
    out = root / "data"
    r = run_cli("render", write(root / "bag.yaml", SCENE), "-n", "1", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def composite(dataset):
    """The bag, the pistol at POSE, and the engine's render of the bag with the pistol in it."""
    bag = core.load_bag(dataset / "scenes" / "000000.yaml")
    obj = core.threat_object("pistol", 5, POSE)
    assert core.outside_reach(bag, obj) == 0.0  # the reference render keeps it only if it fits
    scene = core.bag_with_threat(bag, obj)
    path = dataset.parent / "with_threat.yaml"
    path.write_text(dump_scene(scene))
    ref = render_bag(load_scene(path), 0)
    stored = {v: {c: tifffile.imread(dataset / "raw" / f"000000_{v}_{c}.tiff") / bag.views[v].scanner.detector.white
                  for c in ("low", "high")} for v in bag.views}
    return bag, obj, {v.scanner.name: v for v in ref.views}, stored


def _errors(comp, ref, index):
    inner = binary_erosion(ref.labels[index].mask, iterations=2)
    assert inner.sum() > 50
    out = {}
    for c in ("low", "high"):
        rel = np.abs(comp.transmission[c][inner] / ref.transmission[c][inner] - 1.0)
        out[c] = (float(rel.max()), float(rel.mean()))
    return out


def test_composite_equals_the_engines_render_of_the_combined_scene(composite):
    bag, obj, refs, stored = composite
    index = len(bag.scene.objects) + 1
    assert set(refs) == {"top", "side"}
    for view, ref in refs.items():
        thr = core.trace_threat(bag, view, obj, index)
        basis = core.composite_view(bag, view, stored[view], thr, np.random.default_rng(0), "basis")
        product = core.composite_view(bag, view, stored[view], thr, np.random.default_rng(0), "product")
        eb, ep = _errors(basis, ref, index), _errors(product, ref, index)
        print(f"\n{view}: basis max/mean {eb}; product max/mean {ep}")
        for c in ("low", "high"):
            assert eb[c][0] < 0.005, (view, c, eb)  # the criterion, every pixel off the edges
            assert eb[c][1] < ep[c][1], (view, c, eb, ep)  # the basis fit beats the plain product
        lab, want = basis.labels[index], ref.labels[index]
        assert np.array_equal(lab.mask, want.mask)
        assert lab.bbox == want.bbox and lab.area == want.area
        assert lab.occlusion == pytest.approx(want.occlusion) and lab.difficulty == want.difficulty
        assert np.array_equal(basis.instance, ref.instance)
        for k, other in ref.labels.items():  # the bag's objects: occlusion as the engine has it
            assert basis.labels[k].occlusion == pytest.approx(other.occlusion)
        # away from the threat the stored signal is untouched
        far = thr.paths.sum(axis=2) == 0
        white = bag.views[view].scanner.detector.white
        for c in ("low", "high"):
            assert np.array_equal(basis.raw[c][far], np.rint(stored[view][c][far] * white).astype(np.uint16))


def test_retrace_is_the_engines_spectral_pass(composite):
    bag, obj, refs, stored = composite
    index = len(bag.scene.objects) + 1
    for view, ref in refs.items():
        thr = core.trace_threat(bag, view, obj, index)
        comp = core.composite_view(bag, view, stored[view], thr, np.random.default_rng(0), "retrace")
        for c in ("low", "high"):
            np.testing.assert_allclose(comp.transmission[c], ref.transmission[c], rtol=1e-5, atol=1e-9)
        assert np.array_equal(comp.rgb, ref.rgb)


def test_basis_fit_inverts_its_forward_model(composite):
    """Closed form: transmissions of known pmma / aluminium thicknesses through the scanner's
    channels, computed here from the spectrum and detector weights, give those thicknesses back."""
    bag = composite[0]
    resp = bag.views["top"].response
    mu = core.mu_table(list(core.BASIS), bag.library, resp.energies)
    truth = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 8.0], [120.0, 20.0], [10.0, 40.0]])
    w = resp.weights / resp.weights.sum(axis=0)
    t = np.exp(-truth @ mu) @ w
    lo, hi = resp.channels.index("low"), resp.channels.index("high")
    np.testing.assert_allclose(core.fit_basis(t[:, lo], t[:, hi], resp, bag.library), truth, atol=1e-4)


def test_class_balance_reaches_the_requested_share():
    classes = {"pistol": "gun", "revolver": "gun", "chef_knife": "knife"}
    counts = {"knife": 30, "gun": 2, "plate": 8}
    rng = np.random.default_rng(1)
    picks = pick_threats(classes, counts, 20, rng, "share", "gun", 0.3)
    guns = counts["gun"] + sum(classes[p] == "gun" for p in picks)
    total = sum(counts.values()) + len(picks)
    assert guns / total == pytest.approx(0.3, abs=1.0 / total)
    # each composite also copies its bag (here one knife annotation) and its
    # threat is seen in both views: the share is that of the written dataset, counted by hand
    adds = [({"knife": 1}, 2)] * 20
    picks = pick_threats(classes, counts, 20, rng, "share", "gun", 0.3, adds)
    guns = counts["gun"] + 2 * sum(classes[p] == "gun" for p in picks)
    total = sum(counts.values()) + 20 * (1 + 2)
    assert guns / total == pytest.approx(0.3, abs=2.0 / total)
    assert guns / total >= 0.3 - 2.0 / total and sum(classes[p] == "gun" for p in picks) < 20
    eq = pick_threats(classes, {"knife": 3, "gun": 0}, 5, rng, "equal")
    assert [classes[p] for p in eq[:3]] == ["gun"] * 3 and sorted(classes[p] for p in eq[3:]) == ["gun", "knife"]
    with pytest.raises(XraybagError, match="rare"):
        pick_threats(classes, counts, 1, rng, "share", "rifle", 0.3)


def test_plugin_writes_a_dataset_whose_scene_renders_to_its_labels(dataset, tmp_path):
    out = tmp_path / "syn"
    r = run_cli("learn", "synthesize", "tip", "--data", dataset, "-o", out, "--opt", "threats=pistol",
                "--opt", "placement=hidden", "--opt", "candidates=3", "--opt", "balance=share",
                "--opt", "rare=gun", "--opt", "share=0.25")
    assert r.exit_code == 0, r.output
    coco = json.loads((out / "annotations.json").read_text())
    report = json.loads((out / "tip.json").read_text())
    assert report["composites"] == 1 and report["objects_after"]["gun"] == 2  # one per view
    new = [a for a in coco["annotations"] if a.get("synthetic")]
    assert len(new) == 2 and {a["synthetic"]["threat"] for a in new} == {"pistol"}
    assert all(a["synthetic"]["source_bag"] == 0 and "pose" in a["synthetic"] for a in new)
    images = {im["id"]: im for im in coco["images"]}
    assert len(images) == 4 and all(images[a["image_id"]]["bag"] == 1 for a in new)
    # the written scene is the bag with the pistol: the engine's render of it gives the same masks
    ref = render_bag(load_scene(out / "scenes" / "000001.yaml"), 0)
    from xraybag.engine.xray.annotate import rle

    for a in new:
        view = next(v for v in ref.views if v.scanner.name == images[a["image_id"]]["view"])
        assert rle(view.labels[a["object_index"]].mask) == a["segmentation"]
        instance = np.asarray(Image.open(out / images[a["image_id"]]["labels"]))
        assert np.array_equal(instance, view.instance)
    assert (out / "raw" / "000001_top_low.tiff").is_file() and (out / "manifest.jsonl").read_text().count("\n") == 2


def test_bad_inputs_are_one_line(dataset, tmp_path):
    small = tmp_path / "small"
    scene = SCENE.replace("size: [300, 220, 120]", "size: [120, 90, 60]").replace("[90, 70, 5]", "[40, 30, 5]")
    scene = scene.replace("[100, 80, 25]", "[30, 30, 10]").replace("[60, 60, 12]", "[20, 20, 5]")
    scene = scene.replace("[-50, 10, 20]", "[-20, 0, 10]").replace("[60, -30, 40]", "[20, 0, 20]")
    scene = scene.replace("[10, 50, 55]", "[0, 20, 40]")
    assert run_cli("render", write(tmp_path / "small.yaml", scene), "-n", "1", "-o", small, "-q").exit_code == 0
    out = tmp_path / "o1"
    r = run_cli("learn", "synthesize", "tip", "--data", small, "-o", out, "--opt", "threats=pistol")
    assert r.exit_code == 2 and "fits in none of the 1 bags" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists()

    noraw = tmp_path / "noraw"
    shutil.copytree(dataset, noraw)
    coco = json.loads((noraw / "annotations.json").read_text())
    for im in coco["images"]:
        im.pop("raw")
    (noraw / "annotations.json").write_text(json.dumps(coco))
    r = run_cli("learn", "synthesize", "tip", "--data", noraw, "-o", tmp_path / "o2")
    assert r.exit_code == 2 and "has no raw low/high channels" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o2").exists()
    r = run_cli("learn", "synthesize", "tip", "--data", dataset, "-o", tmp_path / "o3", "--opt", "signal=guess")
    assert r.exit_code == 2 and "option signal" in r.output


NOISY = """
seed: 4
bag: {size: [260, 200, 100], wall: {material: nylon, thickness: 1.5}}
objects:
  - {name: slab, shape: {box: {size: [200, 150, 30]}}, material: pmma, label: slab,
     pose: {position: [0, 0, 20], rotation_deg: [0, 0, 0]}}
scanners:
  - {name: top, type: line_scan, view: vertical, pitch: 4.0, tunnel: [400, 300], source_distance: 700}
"""


def test_noise_scatter_and_blur_match_the_engines_noisy_render(tmp_path):
    """Scanner noise on (quantum, electronic, scatter, blur): an aluminium block composited into
    the stored noisy bag against the engine's noisy render of the bag with the block, both over
    the engine's noise-free render: the same mean (the scatter taken out and put back) and about
    the same noise (the missing variance added)."""
    data = tmp_path / "data"
    assert run_cli("render", write(tmp_path / "bag.yaml", NOISY), "-n", "1", "-o", data, "-q").exit_code == 0
    bag = core.load_bag(data / "scenes" / "000000.yaml")
    block = {"shape": {"box": {"size": [90, 90, 12]}}, "material": "aluminum", "label": "block"}
    obj = core.threat_object(block, 0, {"position": [0.0, 0.0, 70.0], "rotation_deg": [0.0, 0.0, 0.0]})
    scene = core.bag_with_threat(bag, obj)
    (tmp_path / "with.yaml").write_text(dump_scene(scene))
    noisy = render_bag(load_scene(tmp_path / "with.yaml"), 0).views[0]
    clean_scene = scene.model_copy(update={"scanners": [s.model_copy(update={"noise": s.noise.model_copy(
        update={"enabled": False})}) for s in scene.scanners]})
    (tmp_path / "clean.yaml").write_text(dump_scene(clean_scene))
    clean = render_bag(load_scene(tmp_path / "clean.yaml"), 0).views[0]
    white = bag.views["top"].scanner.detector.white
    stored = {c: tifffile.imread(data / "raw" / f"000000_top_{c}.tiff") / white for c in ("low", "high")}
    thr = core.trace_threat(bag, "top", obj, 2)
    inner = binary_erosion(clean.labels[2].mask, iterations=3)
    assert inner.sum() > 150
    for signal in ("basis", "product"):
        comp = core.composite_view(bag, "top", stored, thr, np.random.default_rng(1), signal)
        for c in ("low", "high"):
            ours = comp.transmission[c][inner] / clean.transmission[c][inner] - 1.0
            engine = noisy.transmission[c][inner] / clean.transmission[c][inner] - 1.0
            print(f"\n{signal} {c}: mean {ours.mean():+.4f} (engine {engine.mean():+.4f}), "
                  f"std {ours.std():.4f} (engine {engine.std():.4f})")
            if signal == "basis":
                assert abs(ours.mean() - engine.mean()) < 0.01
                assert 0.8 < ours.std() / engine.std() < 1.25


def test_retrace_with_noise_is_the_engines_render_noise_included(tmp_path):
    """With the scanner's noise on, ``retrace`` draws with the view's own noise key (the bag's
    render's), so it is the engine's render of the combined scene, noise included: the same
    transmissions to float rounding (a pixel's quantum count may round to the next quantum where
    the summed path lengths differ in the last bit) and the same colours. A new key (a bag the
    engine did not render) gives other noise nearly everywhere."""
    from dataclasses import replace

    noisy = SCENE.replace(", noise: false", "")
    out = tmp_path / "data"
    r = run_cli("render", write(tmp_path / "bag.yaml", noisy), "-n", "1", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    bag = core.load_bag(out / "scenes" / "000000.yaml")
    obj = core.threat_object("pistol", 5, POSE)
    path = tmp_path / "with_threat.yaml"
    path.write_text(dump_scene(core.bag_with_threat(bag, obj)))
    ref = {v.scanner.name: v for v in render_bag(load_scene(path), 0).views}
    index = len(bag.scene.objects) + 1
    for view in ("top", "side"):
        assert bag.views[view].scanner.noise.enabled and bag.views[view].draws is not None
        thr = core.trace_threat(bag, view, obj, index)
        comp = core.composite_view(bag, view, {}, thr, np.random.default_rng(0), "retrace")
        for c in ("low", "high"):
            a, b = comp.transmission[c], ref[view].transmission[c]
            close = np.abs(a - b) <= 1e-5 * np.abs(b) + 1e-9
            assert close.mean() >= 0.999, (view, c, close.mean())
            assert np.abs(a - b).max() < 0.02, (view, c)
        assert np.mean(np.any(comp.rgb != ref[view].rgb, axis=2)) <= 1e-3
        bare = replace(bag, views={**bag.views, view: replace(bag.views[view], draws=None)})
        other = core.composite_view(bare, view, {}, thr, np.random.default_rng(0), "retrace")
        moved = np.abs(other.transmission["high"] - ref[view].transmission["high"]) > 1e-5
        assert moved.mean() > 0.5, (view, moved.mean())
