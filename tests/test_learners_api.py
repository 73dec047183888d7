"""Learner base classes and registry, COCO metrics against hand-computed cases, the training loop."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from xraybag.errors import XraybagError
from xraybag.learners import base
from xraybag.learners.base import Model, load, parse_opts
from xraybag.learners.metrics import coco_metrics


class Toy(Model):
    name = "toy"
    description = "a toy"

    @classmethod
    def options(cls):
        return {"lr": (float, 0.1, "step"), "epochs": (int, 2, "passes"), "flip": (bool, False, "flip")}


def test_options_defaults_conversion_and_unknown():
    t = Toy()
    assert t.config == {"lr": 0.1, "epochs": 2, "flip": False} and t.epochs == 2
    t = Toy(**parse_opts(["lr=0.5", "epochs=3", "flip=yes"]))
    assert (t.lr, t.epochs, t.flip) == (0.5, 3, True)
    with pytest.raises(XraybagError, match=r"unknown option momentum for learner 'toy' \(its options: epochs, flip, lr\)"):
        Toy(momentum=0.9)
    with pytest.raises(XraybagError, match="option 'epochs' must be int, got '2.5'"):
        Toy(epochs="2.5")
    with pytest.raises(XraybagError, match="--opt takes key=value"):
        parse_opts(["lr"])
    assert Toy.kind == "model" and base.Synthesizer.kind == "synthesizer"


def _fake_eps(monkeypatch, eps):
    monkeypatch.setattr(base.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])


def test_registry_load_and_errors(monkeypatch):
    eps = [
        metadata.EntryPoint("toy", f"{__name__}:Toy", base.GROUP),
        metadata.EntryPoint("broken", "no_such_module_xyz:Thing", base.GROUP),
        metadata.EntryPoint("notalearner", "json:dumps", base.GROUP),
        metadata.EntryPoint("other", f"{__name__}:Toy", "some.other.group"),
    ]
    _fake_eps(monkeypatch, eps)
    assert list(base.available()) == ["broken", "notalearner", "toy"]
    assert load("toy") is Toy
    with pytest.raises(XraybagError) as e:
        load("yolo")
    assert str(e.value) == "unknown learner 'yolo' (available: broken, notalearner, toy)"
    with pytest.raises(XraybagError, match=r"learner 'broken' \(no_such_module_xyz:Thing\) failed to import: No module named"):
        load("broken")
    with pytest.raises(XraybagError, match="is not a subclass"):
        load("notalearner")


def test_resolve_device():
    assert base.resolve_device("cpu") == "cpu"
    auto = base.resolve_device("auto")
    try:
        import torch

        assert auto == ("cuda" if torch.cuda.is_available() else "cpu")
        if not torch.cuda.is_available():
            with pytest.raises(XraybagError, match="no CUDA device"):
                base.resolve_device("cuda")
    except ModuleNotFoundError:
        assert auto == "cpu"


def test_base_is_torch_free():
    import subprocess
    import sys

    code = "import sys, xraybag.learners, xraybag.learners.metrics, xraybag.cli.learn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- metrics -----------------------------------------------------------------------------------


def gt_dict(anns, n_images=2):
    images = [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.png"} for i in range(1, n_images + 1)]
    out = []
    for k, (img, cat, bbox, diff) in enumerate(anns):
        out.append({"id": k + 1, "image_id": img, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3],
                    "iscrowd": 0, "difficulty": diff})
    return {"images": images, "annotations": out,
            "categories": [{"id": 1, "name": "knife"}, {"id": 2, "name": "gun"}]}


GT = gt_dict([
    (1, 1, [10, 10, 40, 40], "easy"),
    (1, 2, [60, 60, 30, 30], "hidden"),
    (2, 1, [5, 50, 40, 40], "hard"),
    (2, 2, [50, 5, 40, 40], "easy"),
])


def perfect(gt):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"]]


def test_perfect_detections_give_one(tmp_path):
    m = coco_metrics(GT, perfect(GT))
    assert m["mAP"] == m["mAP50"] == m["mAP75"] == 1.0
    assert m["per_class"]["knife"] == {"AP": 1.0, "AP50": 1.0, "gt": 2}
    assert all(m["per_difficulty"][d]["mAP"] == 1.0 for d in ("easy", "hard", "hidden"))
    assert m["mAP_small"] == 1.0 and m["mAP_large"] is None  # no box over 96^2 px: nothing to score
    path = tmp_path / "r.json"
    path.write_text(json.dumps(perfect(GT)))
    assert coco_metrics(GT, path)["mAP"] == 1.0


def test_empty_results_are_zero():
    m = coco_metrics(GT, [])
    assert m["mAP"] == m["mAP50"] == 0.0 and m["detections"] == 0
    assert m["per_class"]["gun"]["AP"] == 0.0 and m["per_difficulty"]["hidden"]["mAP50"] == 0.0


def test_half_wrong_known_ap50():
    # one class, two objects, one found and one false positive; recall never passes 0.5
    gt = gt_dict([(1, 1, [10, 10, 40, 40], "easy"), (2, 1, [10, 10, 40, 40], "easy")])
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},  # hit
        {"image_id": 2, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.8},  # miss
    ]
    m = coco_metrics(gt, dets)
    # 101-point interpolated AP: recall 0..0.5 (51 points) at precision 1, the rest 0
    assert m["mAP50"] == pytest.approx(51 / 101, abs=1e-6)
    # the false positive first: precision 1/2 at recall 0.5 -> 51 points at 0.5
    dets[0]["score"], dets[1]["score"] = 0.5, 0.9
    assert coco_metrics(gt, dets)["mAP50"] == pytest.approx(0.5 * 51 / 101, abs=1e-6)


def test_difficulty_masking():
    # detect only the hidden object (and a background false positive at low score in image 2)
    hidden = [a for a in GT["annotations"] if a["difficulty"] == "hidden"][0]
    dets = [{"image_id": 1, "category_id": 2, "bbox": hidden["bbox"], "score": 0.9}]
    m = coco_metrics(GT, dets)
    assert m["per_difficulty"]["hidden"]["mAP50"] == 1.0
    assert m["per_difficulty"]["easy"]["mAP50"] == 0.0
    assert m["per_difficulty"]["hard"]["mAP50"] == 0.0
    assert m["per_difficulty"]["hidden"]["gt"] == 1 and m["per_difficulty"]["easy"]["gt"] == 2
    # all found: in the easy level the hit on the hidden object is ignored, not a false positive
    dets = perfect(GT)
    for d in dets:
        if d["bbox"] == hidden["bbox"]:
            d["score"] = 0.99  # ranked first: a false positive would lower easy-level AP
    assert coco_metrics(GT, dets)["per_difficulty"]["easy"]["mAP"] == 1.0
    # whereas a real false positive of that class ranked first does lower it
    fp = {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.999}
    assert coco_metrics(GT, dets + [fp])["per_difficulty"]["easy"]["mAP"] < 1.0


def test_results_outside_gt_are_dropped_and_bad_results_error():
    dets = perfect(GT) + [{"image_id": 77, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}]
    m = coco_metrics(GT, dets)
    assert m["mAP"] == 1.0 and m["detections"] == 4
    with pytest.raises(XraybagError, match=r"results\[0\]"):
        coco_metrics(GT, [{"image_id": 1}])


# -- training loop -------------------------------------------------------------------------------


def _toy_setup(torch, n=8):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x, y):
            pred = self.lin(x).squeeze(-1)
            return {"mse": ((pred - y) ** 2).mean(), "zero": pred.sum() * 0}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n * 4, 2, generator=g)
    y = 3 * x[:, 0] - 2 * x[:, 1] + 1
    loader = [(x[i : i + 4], y[i : i + 4]) for i in range(0, n * 4, 4)]
    return Net, loader


def test_fit_learns_logs_checkpoints_and_resumes(tmp_path):
    torch = pytest.importorskip("torch")
    from xraybag.learners.training import fit, read_log

    Net, loader = _toy_setup(torch)
    cfg = {"epochs": 30, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "warmup_iters": 4, "lr_steps": (25,)}
    torch.manual_seed(0)
    full = Net()
    w = fit(full, loader, tmp_path / "full", config=cfg, device="cpu", progress=False)
    assert w == tmp_path / "full" / "weights.pt"
    log = read_log(tmp_path / "full")
    assert len(log) == 30 * len(loader)
    assert {"loss", "mse", "zero", "lr", "sec", "epoch", "iter"} <= set(log[0])
    assert log[-1]["loss"] < 0.01 * log[0]["loss"]
    assert log[0]["lr"] == pytest.approx(0.05 * 0.001)  # warm-up start
    assert log[-1]["lr"] == pytest.approx(0.005)  # after the step
    state = torch.load(w, weights_only=False)
    assert torch.allclose(state["model"]["lin.weight"], torch.tensor([[3.0, -2.0]]), atol=0.05)

    # the same run interrupted after 10 epochs and resumed ends at the same weights
    torch.manual_seed(0)
    part = Net()
    fit(part, loader, tmp_path / "part", config=cfg | {"epochs": 10}, device="cpu", progress=False)
    ck = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 10 and ck["iteration"] == 10 * len(loader) and "optimizer" in ck
    with pytest.raises(XraybagError, match="--resume"):
        fit(Net(), loader, tmp_path / "part", config=cfg, device="cpu", progress=False)
    fit(Net(), loader, tmp_path / "part", config=cfg, device="cpu", resume=True, progress=False)
    resumed = torch.load(tmp_path / "part" / "weights.pt", weights_only=False)
    for k in state["model"]:
        assert torch.allclose(resumed["model"][k], state["model"][k], atol=1e-6)
    assert len(read_log(tmp_path / "part")) == 30 * len(loader)
    assert not list((tmp_path / "part").glob(".*tmp*"))  # atomic writes leave no temp files


def test_fit_rejects_non_finite_loss(tmp_path):
    torch = pytest.importorskip("torch")
    from xraybag.learners.training import fit

    Net, loader = _toy_setup(torch)
    with pytest.raises(XraybagError, match="loss is (nan|inf)"):
        fit(Net(), loader, tmp_path / "r", config={"epochs": 50, "lr": 100.0, "warmup_iters": 0}, device="cpu", progress=False)


def test_epoch_shuffle_is_a_function_of_seed_and_epoch():
    from xraybag.learners.training import EpochShuffle, _set_epoch

    s = EpochShuffle(10, seed=4)
    first = list(s)
    assert sorted(first) == list(range(10)) and first != list(range(10))
    s.set_epoch(1)
    second = list(s)
    assert second != first
    t = EpochShuffle(10, seed=4)

    class Loader:
        sampler = t

    _set_epoch(Loader, 1)  # what fit() does at the start of each epoch
    assert list(t) == second
    assert list(EpochShuffle(5, shuffle=False)) == [0, 1, 2, 3, 4]
