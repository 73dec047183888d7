"""The label-aware mechanism on the real ATSS head (its own initialisation, and a checkpoint trained
and reloaded through the learner), not on toy tensors: how far LA moves the features, and that LA
switched off is the ATSS head exactly.

Measured (colour boxes, cpu_small head, 4 images): LAcls moved the classification features by
``||x_new - x|| / ||x||`` = 7.4e-3 at initialisation and 1.3e-2 after 14 epochs with ``y`` read as
logits; with ``y`` read as sigmoid confidences (the earlier build) 8.9e-5 and 1.3e-3.
"""

from __future__ import annotations

import pytest

from helpers import run_cli
from test_detectors import SMALL, colour_dataset

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return colour_dataset(tmp_path_factory.mktemp("colours"), bags=8)


@pytest.fixture(scope="module")
def batch(data):
    from xraybag.learners.data import DetectionDataset, torch_collate

    ds = DetectionDataset(data, "all")
    return torch_collate([ds[i] for i in range(4)])


def la_cfg(**la):
    from xraybag.learners.atss import ATSSConfig

    return ATSSConfig.cpu_small(num_classes=2, min_size=96, max_size=128, box_coder="distance",
                                reg_bins=15, **la)


def moved(model, batch, score=None) -> dict:
    """LA's diagnostics of one training-mode forward (assigned labels) and one eval forward."""
    images, targets = batch
    if score is not None:
        model.la.la.score = score
    model.train()
    model.train_diagnostics()
    model(list(images), [dict(t) for t in targets])
    train = model.train_diagnostics()
    model.eval()
    with torch.no_grad():
        model(list(images))
    return {"train": train, "eval": model.train_diagnostics()}


def test_la_moves_the_real_heads_features_at_initialisation(batch):
    from xraybag.learners.detectors import LAATSSModel

    torch.manual_seed(0)
    model = LAATSSModel().build(la_cfg(la_cls=True, la_reg=True))
    logit = moved(model, batch)
    sigmoid = moved(model, batch, score="sigmoid")
    print(f"\ninit: logit {logit}\n      sigmoid {sigmoid}")
    assert logit["train"]["la_cls_rel"] > 3e-3 and logit["eval"]["la_cls_rel"] > 3e-3
    assert logit["train"]["la_reg_rel"] > 1e-3
    assert logit["train"]["la_cls_rel"] > 20 * sigmoid["train"]["la_cls_rel"]
    assert sigmoid["train"]["la_cls_rel"] < 3e-4  # the earlier reading: x_new = x to 1e-4


def test_la_moves_the_features_of_a_trained_checkpoint(data, tmp_path, batch):
    import json

    from xraybag.learners.detectors import LAATSSModel

    run = tmp_path / "la"
    r = run_cli("learn", "train", "la_atss", "--data", data, "--out", run, "--opt", "epochs=4",
                "--opt", "la_reg=true", "--split-seed", "0", *SMALL)
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    logged = [rec for rec in log if "la_cls_rel" in rec]
    assert logged and all(rec["la_cls_rel"] > 0 and rec["la_cls_gap"] > 0 for rec in logged)
    model, extra = LAATSSModel().load(run / "weights.pt")  # the path a real checkpoint takes
    assert extra["atss"]["la_score"] == "logit" and extra["atss"]["la_second_order"]
    logit = moved(model, batch)
    sigmoid = moved(model, batch, score="sigmoid")
    print(f"\ntrained: logit {logit}\n         sigmoid {sigmoid}")
    assert logit["train"]["la_cls_rel"] > 5e-3 and logit["eval"]["la_cls_rel"] > 5e-3
    assert logit["train"]["la_cls_rel"] > 3 * sigmoid["train"]["la_cls_rel"]


def test_la_switched_off_is_the_atss_head_exactly(batch):
    from xraybag.learners.atss import ATSS
    from xraybag.learners.detectors import LAATSSModel

    torch.manual_seed(0)
    plain = ATSS(la_cfg())
    on = LAATSSModel().build(la_cfg(la_cls=True, la_reg=True))
    identity = LAATSSModel().build(la_cfg(la_cls=True, la_a=1.0, la_b=0.0, la_c=0.0))  # Table VII row 1
    for m in (on, identity):
        m.load_state_dict(plain.state_dict())  # LA has no parameters of its own
    images, targets = batch
    for mode in ("train", "eval"):
        outs = []
        for m in (plain, identity, on):
            getattr(m, mode)()
            with torch.no_grad():
                outs.append(m(list(images), [dict(t) for t in targets]) if mode == "train"
                            else m(list(images)))
        if mode == "train":
            assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
            assert any(not torch.equal(outs[0][k], outs[2][k]) for k in outs[0])
        else:
            for a, b in zip(outs[0], outs[1]):
                assert all(torch.equal(a[k], b[k]) for k in a)
    on.la = None  # switched off: the same network as plain ATSS
    on.eval(), plain.eval()
    with torch.no_grad():
        for a, b in zip(plain(list(images)), on(list(images))):
            assert all(torch.equal(a[k], b[k]) for k in a)
