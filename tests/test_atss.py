"""ATSS detector: pieces against hand-computed values, forward/backward, eval, a tiny overfit."""

from __future__ import annotations

import math
import statistics

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision.ops import box_iou  # noqa: E402

from xraybag.learners.atss import (  # noqa: E402
    ATSS, ATSSConfig, atss_assign, centerness_target, decode, encode, focal_loss, giou_loss,
    lr_multiplier, make_anchors, make_optimizer,
)


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def thr(ious):
    """mean + unbiased std, as ATSS defines its threshold."""
    return statistics.mean(ious) + statistics.stdev(ious)


# ------------------------------------------------------------------------------------ anchors

def test_anchor_centres_and_sizes():
    lv = make_anchors([(2, 3), (1, 1)], [8, 16], scale=8)
    assert [a.shape for a in lv] == [(6, 4), (1, 4)]
    # level 0: centres at ((j + .5) * 8, (i + .5) * 8), row-major, side 64
    assert lv[0][0].tolist() == [4 - 32, 4 - 32, 4 + 32, 4 + 32]
    assert lv[0][2].tolist() == [20 - 32, 4 - 32, 20 + 32, 4 + 32]     # row 0, column 2
    assert lv[0][3].tolist() == [4 - 32, 12 - 32, 4 + 32, 12 + 32]     # row 1, column 0
    # level 1: one anchor, centre (8, 8), side 128
    assert lv[1][0].tolist() == [-56, -56, 72, 72]
    w = lv[0][:, 2] - lv[0][:, 0]
    h = lv[0][:, 3] - lv[0][:, 1]
    assert torch.all(w == 64) and torch.all(h == 64)


# ------------------------------------------------------------------------------------ assigner

def test_atss_assign_two_levels_two_gts():
    # level 0: four 10x10-ish anchors and a far one; level 1: bigger anchors
    l0 = T([[0, 0, 10, 10],      # a0 centre (5, 5)
            [2, 0, 12, 10],      # a1 centre (7, 5)
            [9, 0, 19, 10],      # a2 centre (14, 5)
            [-3, -3, 9, 9],      # a3 centre (3, 3), 12x12
            [40, 40, 50, 50]])   # a4 far
    l1 = T([[-6, -6, 18, 16],    # b0 centre (6, 5), 24x22 = 528
            [10, -2, 30, 18],    # b1 centre (20, 8), 20x20
            [60, 60, 80, 80]])   # b2 far
    gt = T([[0, 0, 10, 10], [5, 0, 15, 10]])
    # GT0 centre (5, 5). Level 0 distances: a0 0, a1 2, a3 sqrt(8)=2.83, a2 9 -> top-2 {a0, a1}
    # (a3 has IoU 64/(144+100-64)... with GT0 but is not among the two nearest).
    # Level 1: b0 1, b1 15.3 -> {b0, b1}.
    # IoUs: a0 1, a1 80/120, b0 100/528, b1 0
    t0 = thr([1.0, 80 / 120, 100 / 528, 0.0])
    assert abs(t0 - 0.91828) < 1e-4
    # only a0 (1.0) passes; a1 (0.667) does not.
    # GT1 centre (10, 5). Level 0: a1 3, a2 4, a0 5 -> {a1, a2}; level 1: b0 4, b1 10.4 -> {b0, b1}
    # IoUs: a1 70/130, a2 60/140, b0 100/528, b1 50/450
    t1 = thr([70 / 130, 60 / 140, 100 / 528, 50 / 450])
    assert abs(t1 - 0.51702) < 1e-4
    # a1 (0.538) passes, centre (7, 5) inside GT1; a2 (0.429) does not.
    got = atss_assign([l0, l1], gt, torch.tensor([0, 1]), topk=2)
    assert got.tolist() == [0, 1, -1, -1, -1, -1, -1, -1]


def test_atss_assign_centre_must_be_inside():
    gt = T([[0, 0, 10, 10]])
    anchors = T([[6, 0, 16, 10],        # o: centre (11, 5) OUTSIDE, IoU 40/160 = 1/4
                 [-4, 4, 6, 14],        # i: centre (1, 9) inside, IoU 36/164
                 [30, 0, 40, 10],       # IoU 0
                 [-40, 0, -30, 10],     # IoU 0
                 [0, 40, 10, 50],       # IoU 0
                 [100, 100, 110, 110]])  # farthest, not a candidate with topk=5
    t = thr([1 / 4, 36 / 164, 0.0, 0.0, 0.0])
    assert abs(t - 0.22293) < 1e-4
    assert 1 / 4 >= t > 36 / 164          # o passes the IoU test, i fails it
    got = atss_assign([anchors], gt, topk=5)
    assert got.tolist() == [-1] * 6       # o is rejected by the centre-inside rule


def test_atss_assign_conflict_goes_to_highest_iou():
    gt_a = [2, 0, 12, 10]                 # listed first
    gt_b = [0, 0, 10, 10]
    anchors = T([[0.5, 0, 10.5, 10],      # m: centre (5.5, 5) inside both
                 [-3, 0, 7, 10],          # n: centre (2, 5)
                 [50, 0, 60, 10], [80, 0, 90, 10], [0, 80, 10, 90]])  # IoU 0 with both
    # m: IoU with gt_b 95/105, with gt_a 85/115; n: with gt_b 70/130, with gt_a 50/150
    tb = thr([95 / 105, 70 / 130, 0, 0, 0])
    ta = thr([85 / 115, 50 / 150, 0, 0, 0])
    assert 95 / 105 >= tb > 70 / 130 and 85 / 115 >= ta > 50 / 150
    got = atss_assign([anchors], T([gt_a, gt_b]), topk=5)
    assert got.tolist() == [1, -1, -1, -1, -1]      # m claimed by both; gt_b has the higher IoU


def test_atss_assign_no_gt():
    got = atss_assign([T([[0, 0, 4, 4]]), T([[0, 0, 8, 8]])], torch.zeros((0, 4)), topk=9)
    assert got.tolist() == [-1, -1]


# ------------------------------------------------------------------------------------ coding

def test_encode_hand_values_and_round_trip():
    a = T([[0, 0, 10, 20], [0, 0, 10, 20]])
    b = T([[2, 4, 12, 24], [0, 0, 20, 10]])
    d = encode(a, b)
    # box 0: centre shift (2/10, 4/20), same size -> (0.2, 0.2, 0, 0) / (0.1, 0.1, 0.2, 0.2)
    # box 1: centre (10, 5) vs (5, 10): (0.5, -0.25, ln 2, ln 0.5) / stds
    want = T([[2, 2, 0, 0], [5, -2.5, math.log(2) / 0.2, math.log(0.5) / 0.2]])
    assert torch.allclose(d, want, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    anchors = torch.rand(50, 2, generator=g) * 100
    anchors = torch.cat([anchors, anchors + 5 + torch.rand(50, 2, generator=g) * 60], 1)
    boxes = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([boxes, boxes + 1 + torch.rand(50, 2, generator=g) * 80], 1)
    assert torch.allclose(decode(anchors, encode(anchors, boxes)), boxes, atol=1e-3)


def test_centerness_hand_values():
    pts = T([[5, 5], [3, 5], [1, 2]])
    boxes = T([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 10]])
    c = centerness_target(pts, boxes)
    # (3,5): sqrt(3/7 * 5/5); (1,2) in 4x10: l1 r3 t2 b8 -> sqrt(1/3 * 1/4)
    assert torch.allclose(c, T([1.0, math.sqrt(3 / 7), math.sqrt(1 / 12)]), atol=1e-6)


# ------------------------------------------------------------------------------------ losses

def test_focal_loss_hand_values():
    x = T([0.0, 2.0, -1.0])
    y = T([1.0, 0.0, 1.0])
    a, g = 0.25, 2.0

    def sig(v):
        return 1 / (1 + math.exp(-v))
    p0, p1, p2 = sig(0.0), sig(2.0), sig(-1.0)
    want = [a * (1 - p0) ** g * -math.log(p0),            # positive, p = 0.5
            (1 - a) * p1 ** g * -math.log(1 - p1),        # negative, p = 0.881
            a * (1 - p2) ** g * -math.log(p2)]            # positive, p = 0.269
    assert abs(want[0] - 0.25 * 0.25 * math.log(2)) < 1e-12
    got = focal_loss(x, y, a, g, reduction="none")
    assert torch.allclose(got, T(want), atol=1e-6)
    assert abs(float(focal_loss(x, y, a, g)) - sum(want)) < 1e-5


def test_giou_loss_hand_values():
    pred = T([[0, 0, 2, 2], [0, 0, 1, 1], [3, 3, 7, 9]])
    tgt = T([[1, 1, 3, 3], [2, 0, 3, 1], [3, 3, 7, 9]])
    # 1) inter 1, union 7, hull 3x3=9 -> GIoU = 1/7 - 2/9; 2) disjoint: IoU 0, hull 3, union 2
    # -> GIoU = -1/3; 3) identical -> 1
    want = T([1 - (1 / 7 - 2 / 9), 1 + 1 / 3, 0.0])
    assert torch.allclose(giou_loss(pred, tgt), want, atol=1e-6)


def test_lr_schedule():
    cfg = ATSSConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.epochs) == (0.01, 0.9, 1e-4, 12)
    assert abs(lr_multiplier(cfg, 0, 0) - 1 / 3) < 1e-12
    assert abs(lr_multiplier(cfg, 250, 0) - 2 / 3) < 1e-12
    assert lr_multiplier(cfg, 600, 0) == 1.0
    assert abs(lr_multiplier(cfg, 10000, 8) - 0.1) < 1e-12
    assert abs(lr_multiplier(cfg, 20000, 11) - 0.01) < 1e-12


# ------------------------------------------------------------------------------------ model

def _tiny(**kw):
    base = dict(num_classes=2, min_size=128, max_size=128)
    base.update(kw)
    return ATSSConfig.cpu_small(**base)


def _targets():
    return [{"boxes": T([[10, 10, 60, 50], [70, 70, 120, 110]]), "labels": torch.tensor([0, 1])},
            {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.long)}]


@pytest.mark.parametrize("kw", [{}, {"quality": "gfl"}, {"box_coder": "distance", "reg_bins": 16},
                                {"in_channels": 2}, {"backbone": "regnet_x_400mf"},
                                {"backbone": "regnet_y_400mf", "in_channels": 2}])
def test_train_forward_backward(kw):
    torch.manual_seed(0)
    cfg = _tiny(**kw)
    m = ATSS(cfg).train()
    imgs = [torch.rand(cfg.in_channels, 128, 128), torch.rand(cfg.in_channels, 96, 128)]
    losses = m(imgs, _targets())
    need = {"loss_cls", "loss_bbox", "loss_centerness"} | ({"loss_dfl"} if cfg.reg_bins else set())
    assert need <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(losses["loss_cls"].detach()) > 0 and float(losses["loss_bbox"].detach()) > 0
    sum(losses.values()).backward()
    assert m.head.cls_out.weight.grad.abs().sum() > 0
    assert m.backbone.stem[0].weight.grad.abs().sum() > 0


def test_eval_detections_capped_and_inside_image():
    torch.manual_seed(0)
    m = ATSS(_tiny(score_thresh=0.0, max_detections=7)).eval()
    imgs = [torch.rand(3, 100, 150), torch.rand(3, 60, 90)]
    with torch.no_grad():
        out = m(imgs)
    assert len(out) == 2
    for r, img in zip(out, imgs):
        h, w = img.shape[-2:]
        assert 0 < len(r["boxes"]) <= 7
        assert r["boxes"].shape[1] == 4 and r["scores"].shape == r["labels"].shape
        b = r["boxes"]
        assert torch.all(b[:, 0] >= 0) and torch.all(b[:, 2] <= w + 1e-3)
        assert torch.all(b[:, 1] >= 0) and torch.all(b[:, 3] <= h + 1e-3)
        assert torch.all(r["scores"][:-1] >= r["scores"][1:])
        assert set(r["labels"].tolist()) <= {0, 1}
    raw = m.detections(imgs[:1])
    assert len(raw["scores"]) == 5
    assert sum(s.shape[-2] * s.shape[-1] for s in raw["scores"]) == sum(len(a) for a in raw["anchors"])
    assert raw["scores"][0].shape[:2] == (1, 2)
    assert all(0 <= float(s.min()) and float(s.max()) <= 1 for s in raw["scores"])


class _RecordingLA(torch.nn.Module):
    """Records what the head passes; zeroes the class features when ``kill`` is set."""

    def __init__(self, kill=False):
        super().__init__()
        self.kill, self.calls = kill, []

    def cls(self, feat, conv, targets):
        self.calls.append(("cls", tuple(feat.shape), conv, targets, torch.is_grad_enabled()))
        return feat * 0 if self.kill else feat

    def reg(self, feat, conv, targets):
        self.calls.append(("reg", tuple(feat.shape), conv, targets, torch.is_grad_enabled()))
        return feat


def test_la_hooks_signature_train_and_eval():
    torch.manual_seed(0)
    m = ATSS(_tiny())
    la = _RecordingLA()
    m.la = la
    imgs = [torch.rand(3, 128, 128), torch.rand(3, 128, 128)]
    m.train()
    m(imgs, _targets())
    cls_calls = [c for c in la.calls if c[0] == "cls"]
    reg_calls = [c for c in la.calls if c[0] == "reg"]
    assert len(cls_calls) == len(reg_calls) == 5
    n_pos = 0
    for (_, shape, conv, t, _), (_, rshape, rconv, rt, _) in zip(cls_calls, reg_calls):
        assert conv is m.head.cls_out
        # the regression function of the second prediction: reg_out, then the level's Scale
        assert rconv.conv is m.head.reg_out and rconv.scale in list(m.head.scales)
        assert t.dtype == torch.long and tuple(t.shape) == (shape[0], shape[2], shape[3])
        assert set(t.unique().tolist()) <= {-1, 0, 1}
        assert tuple(rt.shape) == (shape[0], 4, shape[2], shape[3])
        assert torch.all((rt[:, 0] == -1) == (t == -1))
        pos = t >= 0
        assert torch.all(rt.permute(0, 2, 3, 1)[pos] > 0)   # centres strictly inside their box
        assert (t[1] == -1).all()            # second image has no boxes
        n_pos += int((t >= 0).sum())
    assert n_pos > 0
    # eval: targets None, gradients enabled inside the hook even under no_grad
    la.calls.clear()
    m.eval()
    with torch.no_grad():
        m(imgs)
    assert len(la.calls) == 10 and all(c[3] is None and c[4] for c in la.calls)
    # the hook's output is what the final conv sees
    m.la = _RecordingLA(kill=True)
    with torch.no_grad():
        raw = m.detections(imgs[:1])
    bias = torch.sigmoid(m.head.cls_out.bias)
    s = raw["scores"][0][0]
    assert torch.allclose(s, bias[:, None, None].expand_as(s), atol=1e-6)


def test_local_backbone_weights(tmp_path):
    import torchvision
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    m = ATSS(_tiny(backbone="resnet18", backbone_norm="frozen_bn", backbone_weights=str(path)))
    assert torch.equal(m.backbone.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    m2 = ATSS(_tiny(backbone="resnet18", backbone_norm="frozen_bn", backbone_weights=str(path),
                    in_channels=2))
    w = ref.conv1.weight.mean(1, keepdim=True) * 1.5        # RGB mean, rescaled for 2 channels
    assert torch.allclose(m2.backbone.stem[0].weight, w.repeat(1, 2, 1, 1))
    reg = torchvision.models.regnet_x_400mf(weights=None)
    torch.save(reg.state_dict(), tmp_path / "rx.pth")
    m3 = ATSS(_tiny(backbone="regnet_x_400mf", backbone_norm="frozen_bn",
                    backbone_weights=str(tmp_path / "rx.pth")))
    assert m3.backbone.out_channels == [64, 160, 400]   # RegNetX-400MF's C3-C5 widths
    assert torch.equal(m3.backbone.stem[0].weight, reg.stem[0].weight)
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": ref.conv1.weight}, bad)
    with pytest.raises(ValueError, match="bad.pth"):
        ATSS(_tiny(backbone="resnet18", backbone_weights=str(bad)))


def _synthetic(n=4, size=128, seed=0):
    """Dark images with one orange rectangle (class 0) on the left, one blue (class 1) on the right."""
    g = torch.Generator().manual_seed(seed)
    imgs, tgs = [], []
    for _ in range(n):
        img = torch.full((3, size, size), 0.05)
        boxes = []
        for c in (0, 1):
            w, h = (int(torch.randint(24, 48, (1,), generator=g)) for _ in range(2))
            x0 = int(torch.randint(0, size // 2 - w + 1, (1,), generator=g)) + (size // 2 if c else 0)
            y0 = int(torch.randint(0, size - h, (1,), generator=g))
            col = T([0.9, 0.3, 0.1]) if c == 0 else T([0.1, 0.4, 0.9])
            img[:, y0:y0 + h, x0:x0 + w] = col[:, None, None]
            boxes.append([x0, y0, x0 + w, y0 + h])
        imgs.append(img)
        tgs.append({"boxes": T(boxes), "labels": torch.tensor([0, 1])})
    return imgs, tgs


def _overfit(iters, **kw):
    torch.manual_seed(0)
    imgs, tgs = _synthetic()
    cfg = _tiny(warmup_iters=20, **kw)
    m = ATSS(cfg).train()
    opt = make_optimizer(m, cfg)
    history = []
    for it in range(iters):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_multiplier(cfg, it, 0)
        b = [(2 * it) % 4, (2 * it + 1) % 4]
        losses = m([imgs[j] for j in b], [tgs[j] for j in b])
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        # centerness BCE is bounded below by its targets' entropy: follow cls + bbox
        history.append(float((losses["loss_cls"] + losses["loss_bbox"]).detach()))
    m.eval()
    with torch.no_grad():
        out = m(imgs)
    hits = total = 0
    for r, t in zip(out, tgs):
        keep = r["scores"] > 0.3
        for box, lab in zip(t["boxes"], t["labels"]):
            total += 1
            ok = keep & (r["labels"] == lab)
            if ok.any() and float(box_iou(box[None], r["boxes"][ok]).max()) >= 0.5:
                hits += 1
    # first loss vs the mean of the last 10 (single iterations are noisy)
    return history[0], sum(history[-10:]) / 10, hits / total


def test_overfit_tiny_synthetic():
    first, last, recall = _overfit(120)
    assert last < first / 5, (first, last)
    assert recall >= 0.9, recall


@pytest.mark.slow
def test_overfit_tiny_synthetic_gfl_long():
    first, last, recall = _overfit(300, quality="gfl", box_coder="distance", reg_bins=16)
    assert last < first / 5, (first, last)
    assert recall == 1.0, recall
