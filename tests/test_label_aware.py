"""Label-aware mechanism (LAcls Eq. 5/7, LAreg Eq. 6) against hand-computed values.

The final convs are 1x1 convs with known weights, so the gradient of a confidence with respect to
the feature at a location is known in closed form and computed here without autograd:

* ``score="logit"`` (the default): ``y_k = W_k . x + b_k`` and ``dy_k/dx = W_k`` (bins alike);
* ``score="sigmoid"``: class confidence ``y_k = s(W_k . x + b_k)``: ``dy_k/dx = y_k (1 - y_k) W_k``;
  softmax over bins ``p_j = softmax(z)_j``, ``z = W x + b``: ``dp_j/dx = p_j (W_j - sum_k p_k W_k)``.

The real head (its initialisation and a trained checkpoint) is tested in test_label_aware_head.py.
"""

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from xraybag.learners.label_aware import LabelAware  # noqa: E402

W = [[2.0, -1.0, 0.5], [-1.0, 3.0, 1.0], [0.5, 0.5, -2.0]]  # (K=3 classes, C=3 channels)
B = [0.1, -0.2, 0.3]
# feature (1, C=3, H=2, W=2); locations (0,0), (0,1), (1,0), (1,1)
X = [
    [[0.4, -0.3], [1.0, 0.2]],
    [[0.1, 0.8], [-0.5, 0.6]],
    [[-0.2, 0.5], [0.3, -0.9]],
]
LABELS = [[1, -1], [0, 3]]  # 3 == num_classes: background too


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def conv1x1(weights, bias):
    conv = nn.Conv2d(len(weights[0]), len(weights), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(len(weights), len(weights[0]), 1, 1))
        conv.bias.copy_(torch.tensor(bias))
    return conv


def feat():
    return torch.tensor(X).unsqueeze(0)


def hand_cls(i, j, label, a=1.0, b=1.0, c=1.0, bg_misleading=True, score="logit"):
    """w1, w2, misleading class and x_new at location (i, j), by the formulas of Eq. 5/7."""
    x = [X[ch][i][j] for ch in range(3)]
    y = [sig(sum(W[k][ch] * x[ch] for ch in range(3)) + B[k]) for k in range(3)]

    def dy(k):  # d y_k / dx
        factor = 1.0 if score == "logit" else y[k] * (1 - y[k])
        return [factor * W[k][ch] for ch in range(3)]

    if label is not None and label >= 0:
        g1 = dy(label)
        others = [k for k in range(3) if k != label]
    else:
        g1 = [0.0, 0.0, 0.0]
        others = [0, 1, 2] if bg_misleading else []
    if others:
        m = max(others, key=lambda k: y[k])
        g2 = dy(m)
    else:
        m, g2 = -1, [0.0, 0.0, 0.0]
    w1 = [sig(g) for g in g1]
    w2 = [sig(g) for g in g2]
    xn = [a * x[ch] + b * w1[ch] * x[ch] - c * w2[ch] * x[ch] for ch in range(3)]
    return w1, w2, m, xn, y


def at(t, i, j):
    return [float(v) for v in t.detach()[0, :, i, j]]


@pytest.mark.parametrize("score", ["logit", "sigmoid"])
def test_cls_weights_and_x_new_match_hand_formula_in_training(score):
    la = LabelAware(3, use_reg=False, score=score).train()
    conv = conv1x1(W, B)
    lab = torch.tensor([LABELS])
    w = la.cls_weights(feat(), conv, lab)
    out = la.cls(feat().requires_grad_(True), conv, lab)
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        w1, w2, m, xn, _ = hand_cls(i, j, LABELS[i][j] if LABELS[i][j] < 3 else -1, score=score)
        assert at(w.w1, i, j) == pytest.approx(w1, abs=1e-6)
        assert at(w.w2, i, j) == pytest.approx(w2, abs=1e-6)
        assert int(w.misleading[0, i, j]) == m
        assert at(out, i, j) == pytest.approx(xn, abs=1e-6)
    # background (label -1 and label == num_classes): y . y_hat = 0, so w1 = Sigmoid(0) = 0.5
    assert torch.allclose(w.w1[0, :, 0, 1], torch.full((3,), 0.5))
    assert torch.allclose(w.w1[0, :, 1, 1], torch.full((3,), 0.5))
    assert int(w.labels[0, 1, 1]) == -1
    # the weights really differ from 0.5 where the location is assigned a class
    assert (w.w1[0, :, 0, 0] - 0.5).abs().min() > 0.01


def test_misleading_class_is_highest_other_than_correct():
    la = LabelAware(3)
    scores = torch.tensor([0.9, 0.6, 0.7, 0.2, 0.95, 0.1]).view(1, 3, 1, 2)  # loc0 (0.9,0.7,0.95), loc1 (0.6,0.2,0.1)
    # loc0 assigned class 0 although class 2 is top -> misleading 2; loc1 assigned 0 (top) -> second = 1
    assert la.misleading_labels(scores, torch.tensor([[[0, 0]]])).tolist() == [[[2, 1]]]
    # assigned class 2 at loc0 -> the misleading class is 0 (0.9 > 0.7)
    assert la.misleading_labels(scores, torch.tensor([[[2, 1]]])).tolist() == [[[0, 0]]]
    # background: the top class overall; or none with bg_misleading=False
    assert la.misleading_labels(scores, torch.tensor([[[-1, -1]]])).tolist() == [[[2, 0]]]
    la_nobg = LabelAware(3, bg_misleading=False)
    assert la_nobg.misleading_labels(scores, torch.tensor([[[-1, 1]]])).tolist() == [[[-1, 0]]]
    # and the weights follow: no misleading class -> w2 = 0.5
    w = la_nobg.cls_weights(feat(), conv1x1(W, B), torch.tensor([LABELS]))
    assert torch.allclose(w.w2[0, :, 0, 1], torch.full((3,), 0.5))
    _, w2, m, _, _ = hand_cls(0, 1, -1, bg_misleading=False)
    assert m == -1 and w2 == [0.5, 0.5, 0.5]
    # a single class: a positive has no other class
    one = LabelAware(1)
    s1 = torch.tensor([0.8, 0.3]).view(1, 1, 1, 2)
    assert one.misleading_labels(s1, torch.tensor([[[0, -1]]])).tolist() == [[[-1, 0]]]


def test_pseudo_labels_at_test_time():
    la = LabelAware(3).eval()
    conv = conv1x1(W, B)
    w = la.cls_weights(feat(), conv, None)
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        y = hand_cls(i, j, None)[4]
        top = max(range(3), key=lambda k: y[k])
        second = max((k for k in range(3) if k != top), key=lambda k: y[k])
        assert int(w.labels[0, i, j]) == top
        assert int(w.misleading[0, i, j]) == second
        w1, w2, m, xn, _ = hand_cls(i, j, top)
        assert m == second
        assert at(w.w1, i, j) == pytest.approx(w1, abs=1e-6)
        assert at(w.w2, i, j) == pytest.approx(w2, abs=1e-6)
    # same as passing the argmax as labels
    with torch.no_grad():
        out_pseudo = la.cls(feat(), conv, None)
        out_given = la.cls(feat(), conv, w.labels.clone())
    assert torch.allclose(out_pseudo, out_given)
    # an optional confidence threshold turns low-confidence locations into background
    tops = w.scores.max(dim=1).values[0]
    thr = float(tops.median())
    la_thr = LabelAware(3, pseudo_thr=thr).eval()
    lab_thr = la_thr.cls_weights(feat(), conv, None).labels[0]
    assert torch.equal(lab_thr == -1, tops < thr) and bool((lab_thr == -1).any())


def test_works_under_no_grad_and_inference_mode_and_returns_detached():
    la = LabelAware(3, use_reg=False).eval()
    conv = conv1x1(W, B)
    src = feat().requires_grad_(True)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            out = la.cls(src if ctx is torch.no_grad else feat(), conv, None)
        assert not out.requires_grad and out.grad_fn is None
        for (i, j) in [(0, 0), (1, 0), (1, 1)]:
            y = hand_cls(i, j, None)[4]
            pseudo = max(range(3), key=lambda k: y[k])
            assert at(out, i, j) == pytest.approx(hand_cls(i, j, pseudo)[3], abs=1e-6)
        assert not torch.allclose(out, feat(), atol=1e-3)  # LA changed the feature
    # eval mode with grad enabled: still detached; the final conv got no gradient
    out = la.cls(src, conv, None)
    assert out.grad_fn is None and conv.weight.grad is None and src.grad is None


def test_training_gradient_flows_to_feature_input():
    conv = conv1x1(W, B)
    lab = torch.tensor([LABELS])
    a, b, c = 1.5, 0.0, 1.0
    la = LabelAware(3, a=a, b=b, c=c).train()
    leaf = feat().requires_grad_(True)
    out = la.cls(leaf * 1.0, conv, lab)
    assert out.grad_fn is not None
    out.sum().backward()
    # weights are constants by default: d sum(x_new) / dx = a + b w1 - c w2
    for (i, j) in [(0, 0), (0, 1)]:
        w1, w2, _, _, _ = hand_cls(i, j, LABELS[i][j], a, b, c)
        expect = [a + b * w1[ch] - c * w2[ch] for ch in range(3)]
        assert at(leaf.grad, i, j) == pytest.approx(expect, abs=1e-6)
    assert conv.weight.grad is None  # the first prediction is not in the loss
    # second_order keeps the graph of the weights: the conv gets a gradient through them; with
    # logits the weights do not depend on x (the gradient of a linear map), so dx is unchanged;
    # with sigmoid confidences they do, and it changes
    la2 = LabelAware(3, a=a, b=b, c=c, second_order=True).train()
    leaf2 = feat().requires_grad_(True)
    la2.cls(leaf2 * 1.0, conv, lab).sum().backward()
    assert torch.allclose(leaf2.grad, leaf.grad)
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    conv.weight.grad = None
    la3 = LabelAware(3, a=a, b=b, c=c, second_order=True, score="sigmoid").train()
    leaf3 = feat().requires_grad_(True)
    la3.cls(leaf3 * 1.0, conv, lab).sum().backward()
    la4 = LabelAware(3, a=a, b=b, c=c, score="sigmoid").train()
    leaf4 = feat().requires_grad_(True)
    la4.cls(leaf4 * 1.0, conv, lab).sum().backward()
    assert not torch.allclose(leaf3.grad, leaf4.grad)


def test_coefficients_abc_enter_as_eq7():
    conv = conv1x1(W, B)
    lab = torch.tensor([LABELS])
    outs = {}
    for abc in [(1, 1, 1), (1.5, 0, 1), (0.5, 1, 0), (0, 2, 0), (1, 0, 0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # all of Table VII satisfy Eq. 8
            la = LabelAware(3, a=abc[0], b=abc[1], c=abc[2])
        with torch.no_grad():
            outs[abc] = out = la.cls(feat(), conv, lab)
        for (i, j) in [(0, 0), (1, 0), (0, 1)]:
            _, _, _, xn, _ = hand_cls(i, j, LABELS[i][j], *abc)
            assert at(out, i, j) == pytest.approx(xn, abs=1e-6)
    assert torch.equal(outs[(1, 0, 0)], feat())  # Table VII's baseline row is the identity
    assert not torch.allclose(outs[(1, 1, 1)], outs[(1.5, 0, 1)])
    assert not torch.allclose(outs[(0.5, 1, 0)], outs[(0, 2, 0)])
    with pytest.warns(UserWarning, match="Eq. 8"):
        LabelAware(3, a=1, b=1, c=0)


BINS = 4  # max_dist 4 strides in 4 intervals: interval k = [k, k+1) strides
RW = [[0.3 * ((s * BINS + j) % 5) - 0.6 + 0.2 * ch * (j - 1.5) for ch in range(3)] for s in range(4) for j in range(BINS)]
RB = [0.05 * ((s * BINS + j) % 3) for s in range(4) for j in range(BINS)]


def hand_reg(i, j, gt_bins, reg_a=0.5, reg_b=1.0, score="logit"):
    """Weight and x_new of Eq. 6 at a location; gt_bins: one interval per side, or None (background)."""
    x = [X[ch][i][j] for ch in range(3)]
    g = [0.0, 0.0, 0.0]
    preds = []
    for s in range(4):
        rows = [RW[s * BINS + k] for k in range(BINS)]
        z = [sum(r[ch] * x[ch] for ch in range(3)) + RB[s * BINS + k] for k, r in enumerate(rows)]
        e = [math.exp(v - max(z)) for v in z]
        p = [v / sum(e) for v in e]
        preds.append(max(range(BINS), key=lambda k: p[k]))
        if gt_bins is None:
            continue
        jj = gt_bins[s]
        if jj < 0:
            continue
        mean_w = [sum(p[k] * rows[k][ch] for k in range(BINS)) for ch in range(3)]
        for ch in range(3):
            g[ch] += rows[jj][ch] if score == "logit" else p[jj] * (rows[jj][ch] - mean_w[ch])
    w = [sig(v) for v in g]
    return w, [reg_a * x[ch] + reg_b * w[ch] * x[ch] for ch in range(3)], preds


@pytest.mark.parametrize("score", ["logit", "sigmoid"])
def test_lareg_x_new_matches_eq6_with_ground_truth_bins(score):
    la = LabelAware(3, bins=BINS, max_dist=4.0, score=score).train()
    conv = conv1x1(RW, RB)
    lab = torch.tensor([[[0, -1], [2, 1]]])
    tgt = torch.zeros(1, 4, 2, 2)
    tgt[0, :, 0, 0] = torch.tensor([0.3, 1.7, 2.2, 9.0])  # bins 0, 1, 2, 3 (9 > max: last bin)
    tgt[0, :, 1, 0] = torch.tensor([3.5, 0.0, 1.0, 2.99])  # bins 3, 0, 1, 2
    tgt[0, :, 1, 1] = torch.tensor([16.0, 24.0, 8.0, 4.0]) / 8  # given in pixels below, stride 8
    rw = la.reg_weights(feat(), conv, lab, tgt)
    assert rw.bins[0, :, 0, 0].tolist() == [0, 1, 2, 3]
    assert rw.bins[0, :, 1, 0].tolist() == [3, 0, 1, 2]
    assert rw.bins[0, :, 0, 1].tolist() == [-1, -1, -1, -1]  # background
    out = la.reg(feat().requires_grad_(True), conv, lab, tgt * 8, stride=8)
    for (i, j), gt in [((0, 0), [0, 1, 2, 3]), ((1, 0), [3, 0, 1, 2]), ((1, 1), [2, 3, 1, 0])]:
        w, xn, _ = hand_reg(i, j, gt, score=score)
        assert at(rw.w, i, j) == pytest.approx(w, abs=1e-6)
        assert at(out, i, j) == pytest.approx(xn, abs=1e-6)
    # background: Sigmoid(0) = 0.5, so 0.5 x + 0.5 x = x
    assert at(out, 0, 1) == pytest.approx([X[ch][0][1] for ch in range(3)], abs=1e-7)
    assert (rw.w[0, :, 0, 0] - 0.5).abs().max() > 0.01
    out.sum().backward()  # graph kept in training


def test_lareg_pseudo_labels_and_no_grad():
    la = LabelAware(3, bins=BINS, max_dist=4.0).eval()
    conv = conv1x1(RW, RB)
    with torch.no_grad():
        out = la.reg(feat(), conv, None)
        rw = la.reg_weights(feat(), conv, None)
    assert out.grad_fn is None
    for (i, j) in [(0, 0), (0, 1), (1, 1)]:
        preds = hand_reg(i, j, None)[2]
        assert rw.bins[0, :, i, j].tolist() == preds
        w, xn, _ = hand_reg(i, j, preds)
        assert at(out, i, j) == pytest.approx(xn, abs=1e-6)
    # custom Eq. 6 constants
    la2 = LabelAware(3, bins=BINS, max_dist=4.0, reg_a=1.0, reg_b=0.5).eval()
    with torch.no_grad():
        out2 = la2.reg(feat(), conv, None)
    w, xn2, _ = hand_reg(0, 0, hand_reg(0, 0, None)[2], 1.0, 0.5)
    assert at(out2, 0, 0) == pytest.approx(xn2, abs=1e-6)


def test_distance_bins_and_expectation_default_16():
    la = LabelAware(3)
    assert la.bin_width == 1.0
    d = torch.tensor([0.0, 0.99, 1.0, 7.5, 15.99, 16.0, 40.0])
    assert la.distance_to_bin(d).tolist() == [0, 0, 1, 7, 15, 15, 15]
    flat = torch.zeros(1, 64, 1, 1)
    assert torch.allclose(la.expected_distance(flat), torch.full((1, 4, 1, 1), 8.0))  # mean of 0.5..15.5
    peaked = torch.full((1, 4, 16, 1, 1), -50.0)
    peaked[0, :, 3] = 50.0
    assert torch.allclose(la.expected_distance(peaked.view(1, 64, 1, 1)), torch.full((1, 4, 1, 1), 3.5))


def test_auxiliary_distribution_head_and_extra_loss():
    la = LabelAware(3, reg_in_channels=3).train()
    plain_reg = nn.Conv2d(3, 4, 1)  # the plain ATSS regressor: 4 outputs
    lab = torch.tensor([LABELS])
    tgt = torch.full((1, 4, 2, 2), 2.5)
    out = la.reg(feat().requires_grad_(True), plain_reg, lab, tgt)
    losses = la.extra_losses()
    assert set(losses) == {"loss_la_dist"}
    # uniform-ish distribution at init: cross-entropy about log(16)
    assert float(losses["loss_la_dist"].detach()) == pytest.approx(math.log(16), abs=0.1)
    losses["loss_la_dist"].backward()
    assert la.dist_head.weight.grad is not None and la.dist_head.weight.grad.abs().sum() > 0
    assert la.extra_losses() == {}
    assert out.shape == feat().shape
    with pytest.raises(ValueError, match="4 \\* bins"):
        LabelAware(3).reg(feat(), plain_reg, lab, tgt)
    with pytest.raises(ValueError, match="targets"):
        la.reg(feat(), plain_reg, lab)
    # dist_loss on a regressor with the distribution: zero foreground -> 0
    z = torch.zeros(1, 64, 2, 2, requires_grad=True)
    assert float(la.dist_loss(z, tgt, torch.full((1, 2, 2), -1)).detach()) == 0.0


def test_disabled_branches_and_bad_labels():
    conv = conv1x1(W, B)
    la = LabelAware(3, use_cls=False, use_reg=False)
    x = feat()
    assert la.cls(x, conv, None) is x and la.reg(x, None, None) is x
    on = LabelAware(3)
    with pytest.raises(ValueError, match="shape"):
        on.cls(feat(), conv, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[-1, 3\]"):
        on.cls(feat(), conv, torch.tensor([[[0, 5], [0, 0]]]))
    with pytest.raises(ValueError, match="final conv"):
        on.cls(feat(), nn.Conv2d(3, 5, 1), None)


def test_3x3_conv_batch_is_per_image():
    """With the usual 3x3 final conv the gradient of the summed confidence is still per image."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, 3, padding=1)
    rconv = nn.Conv2d(4, 64, 3, padding=1)
    la = LabelAware(3).eval()
    x = torch.randn(2, 4, 5, 6)
    with torch.no_grad():
        both = la.cls(x, conv, None)
        first = la.cls(x[:1], conv, None)
        both_r = la.reg(x, rconv, None)
        first_r = la.reg(x[:1], rconv, None)
    assert torch.allclose(both[:1], first, atol=1e-6)
    assert torch.allclose(both_r[:1], first_r, atol=1e-6)
    assert not torch.allclose(both, x, atol=1e-4)


def test_points_grid_labels_the_nearest_of_the_detectors_values():
    """The la_atss regressor: 16 values at 0..15 strides (GFL/DFL); a distance takes the nearest."""
    la = LabelAware(3, bins=16, max_dist=15.0, grid="points")
    assert la.bin_width == 1.0
    d = torch.tensor([0.0, 0.4, 0.6, 3.2, 14.6, 15.0, 40.0])
    assert la.distance_to_bin(d).tolist() == [0, 0, 1, 3, 15, 15, 15]
    assert torch.allclose(la.expected_distance(torch.zeros(1, 64, 1, 1)), torch.full((1, 4, 1, 1), 7.5))
    peaked = torch.full((1, 4, 16, 1, 1), -50.0)
    peaked[0, :, 3] = 50.0
    assert torch.allclose(la.expected_distance(peaked.view(1, 64, 1, 1)), torch.full((1, 4, 1, 1), 3.0))


def test_lareg_test_time_pseudo_labels_only_at_pseudo_foreground():
    la = LabelAware(3, bins=BINS, max_dist=4.0).eval()
    conv = conv1x1(RW, RB)
    fg = torch.tensor([[[0, -1], [-1, 0]]])
    with torch.no_grad():
        rw = la.reg_weights(feat(), conv, fg, None)
        out = la.reg(feat(), conv, fg, None)
    assert rw.bins[0, :, 0, 1].tolist() == [-1] * 4 and rw.bins[0, :, 1, 0].tolist() == [-1] * 4
    for (i, j) in [(0, 1), (1, 0)]:  # background: Eq. 6 is the identity
        assert at(out, i, j) == pytest.approx([X[ch][i][j] for ch in range(3)], abs=1e-7)
    preds = hand_reg(1, 1, None)[2]
    assert rw.bins[0, :, 1, 1].tolist() == preds
    assert at(out, 1, 1) == pytest.approx(hand_reg(1, 1, preds)[1], abs=1e-6)


def test_diagnostics_report_how_far_the_features_moved():
    la = LabelAware(3, use_reg=False).train()
    conv = conv1x1(W, B)
    lab = torch.tensor([LABELS])
    w = la.cls_weights(feat(), conv, lab)
    out = la.cls(feat(), conv, lab)
    d = la.diagnostics()
    rel = float((out.detach() - feat()).norm() / feat().norm())
    assert d["la_cls_rel"] == pytest.approx(rel, rel=1e-5) and rel > 0.1
    assert d["la_cls_gap"] == pytest.approx(float((w.w1 - w.w2).abs().mean()), rel=1e-5)
    assert la.diagnostics() == {}  # read and reset
    off = LabelAware(3, a=1, b=0, c=0)
    off.cls(feat(), conv, lab)
    assert off.diagnostics() == {}  # the identity row computes no weights
