"""APSAM's parts alone, against hand-computed cases: the Adaptive Point Generator (numpy) and the
Energy-Aware Encoder with its location initializer (torch)."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.errors import XraybagError
from xraybag.learners.apsam.apg import adaptive_points, farthest_pair, kmeans2, scale_box

H, W = 40, 40


def two_blobs():
    """Blob A: columns 3..10, rows 5..10, energy (0.2, 0.1); blob B: columns 20..35, rows 25..34,
    energy (0.8, 0.7); elsewhere background (0.9, 0.9)."""
    mask = np.zeros((H, W), bool)
    energy = np.full((H, W, 2), 0.9)
    mask[5:11, 3:11] = True
    energy[5:11, 3:11] = (0.2, 0.1)
    mask[25:35, 20:36] = True
    energy[25:35, 20:36] = (0.8, 0.7)
    return mask, energy


def in_a(p):
    return 3 <= p[0] <= 10 and 5 <= p[1] <= 10


def in_b(p):
    return 20 <= p[0] <= 35 and 25 <= p[1] <= 34


def test_kmeans2_and_farthest_pair_by_hand():
    cent, assign = kmeans2(np.array([[0, 0], [0, 1], [10, 0], [10, 1]]), np.random.default_rng(0))
    assert sorted(map(tuple, cent.tolist())) == [(0, 0.5), (10, 0.5)] and assign[0] == assign[1] != assign[2] == assign[3]
    cent, assign = kmeans2(np.ones((5, 2)), np.random.default_rng(0))
    assert np.array_equal(cent[0], cent[1])
    a = np.array([[0, 0], [1, 0], [2, 0], [1, 1]])
    b = np.array([[5, 3], [6, 3], [5, 4]])
    p1, p2 = farthest_pair(a, b)
    assert p1.tolist() == [0, 0] and p2.tolist() == [6, 3]  # 36 + 9 = 45, the largest of the 12 pairs
    assert scale_box((10, 10, 30, 20), 1.1, 0.9, 100, 100) == pytest.approx((9, 10.5, 31, 19.5))
    assert scale_box((0, 0, 10, 10), 1.1, 1.1, 10, 10) == (0.0, 0.0, 10.0, 10.0)  # clipped


def test_two_blobs_give_one_point_in_each_the_farthest_pair():
    mask, energy = two_blobs()
    r = adaptive_points(mask, rng=0, features=energy, scale_range=(1.0, 1.0))
    assert r.mode == "clusters" and r.box == (3, 5, 36, 35) == r.box_scaled
    # the farthest pair of A's and B's pixels: opposite corners (3, 5) and (35, 34)
    assert sorted(map(tuple, r.points.tolist())) == [(3, 5), (35, 34)]
    assert sorted(map(tuple, np.round(r.centroids, 6).tolist())) == [(0.2, 0.1), (0.8, 0.7)]
    # a box scaled by 0.9 (33 x 30 -> 29.7 x 27 about (19.5, 20)) keeps columns 5..33 and rows 6..33
    r = adaptive_points(mask, rng=0, features=energy, scale_range=(0.9, 0.9))
    assert r.box_scaled == pytest.approx((4.65, 6.5, 34.35, 33.5))
    assert sorted(map(tuple, r.points.tolist())) == [(5, 6), (33, 33)]
    # a soft mask (probabilities) is cut at 0.5; clustering positions (no features) also splits the blobs
    soft = np.where(mask, 0.8, 0.3)
    for seed in range(5):
        r = adaptive_points(soft, rng=seed, tau=2.0)
        assert r.mode == "clusters" and {in_a(r.points[0]), in_a(r.points[1])} == {True, False}
        assert all(in_a(p) or in_b(p) for p in r.points)


def test_one_blob_falls_back_to_uniform_points_in_the_scaled_box():
    mask = np.zeros((H, W), bool)
    mask[10:20, 5:25] = True  # box (5, 10, 25, 20)
    energy = np.full((H, W, 2), 0.5)
    r = adaptive_points(mask, rng=1, features=energy, scale_range=(1.1, 1.1))
    assert r.mode == "uniform" and r.box == (5, 10, 25, 20)
    assert r.box_scaled == pytest.approx((4, 9.5, 26, 20.5))  # 20 x 10 -> 22 x 11 about (15, 15)
    x1, y1, x2, y2 = r.box_scaled
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in r.points.tolist())
    again = adaptive_points(mask, rng=1, features=energy, scale_range=(1.1, 1.1))
    assert np.array_equal(r.points, again.points)  # seeded
    draws = np.concatenate([adaptive_points(mask, rng=s, features=energy).points for s in range(40)])
    assert draws[:, 0].min() < 7 and draws[:, 0].max() > 23  # spread over the box, not one spot
    assert np.all((draws[:, 0] >= 5 - 1.0) & (draws[:, 0] <= 25 + 1.0) & (draws[:, 1] >= 9.5) & (draws[:, 1] <= 20.5))


def test_apg_edge_cases():
    empty = np.zeros((8, 8), bool)
    r = adaptive_points(empty, rng=0, point=(3, 4))
    assert r.mode == "empty" and r.points.tolist() == [[3, 4], [3, 4]]
    with pytest.raises(XraybagError, match="first mask is empty and no click"):
        adaptive_points(empty, rng=0)
    with pytest.raises(XraybagError, match=r"features are \(4, 4\) but the mask is \(8, 8\)"):
        adaptive_points(np.ones((8, 8), bool), features=np.zeros((4, 4, 2)))
    with pytest.raises(XraybagError, match="H x W mask"):
        adaptive_points(np.ones((2, 8, 8), bool))


# -- Energy-Aware Encoder and location initializer ---------------------------------------------------


def test_eae_shapes_and_topk():
    torch = pytest.importorskip("torch")
    from xraybag.learners.apsam.eae import EnergyAwareEncoder, energy_input

    torch.manual_seed(0)
    eae = EnergyAwareEncoder(dims=(4, 8, 16), embed_dim=24, top_k=3)
    x = energy_input(torch.rand(2, 65, 50), torch.rand(2, 65, 50))
    assert x.shape == (2, 2, 65, 50)
    out = eae(x)
    assert out.features.shape == (2, 16, 8, 6)      # 65 -> 32 -> 16 -> 8, 50 -> 25 -> 12 -> 6
    assert out.tokens.shape == (2, 3, 24) and out.indices.shape == (2, 3) and out.attention.shape == (2, 48)
    assert torch.allclose(out.attention.sum(-1), torch.ones(2))
    # the selected pixels are the three of largest weight, in descending order
    for b in range(2):
        order = torch.argsort(out.attention[b], descending=True)[:3]
        assert out.indices[b].tolist() == order.tolist()
    # the block: conv, LayerNorm over channels (mean 0, variance 1 per pixel before the affine), GELU, pool
    blk = eae.blocks[0]
    c = blk.conv(x)
    z = blk.norm(c)
    by_hand = (c - c.mean(1, keepdim=True)) / torch.sqrt(c.var(1, unbiased=False, keepdim=True) + 1e-6)
    assert torch.allclose(z, by_hand, atol=1e-5) and torch.allclose(z.mean(1), torch.zeros(2, 65, 50), atol=1e-5)
    assert torch.equal(blk(x), torch.nn.functional.max_pool2d(torch.nn.functional.gelu(z), 2))
    assert energy_input(torch.rand(1, 30, 30), torch.rand(1, 30, 30), size=(64, 64)).shape == (1, 2, 64, 64)
    assert eae.config == {"in_chans": 2, "dims": (4, 8, 16), "embed_dim": 24, "top_k": 3}


def test_eae_token_is_the_projection_of_the_weighted_top_feature():
    torch = pytest.importorskip("torch")
    from xraybag.learners.apsam.eae import LocationInitializer

    loc = LocationInitializer(channels=2, embed_dim=3, top_k=1)
    with torch.no_grad():
        loc.score.weight.copy_(torch.tensor([[1.0, 0.0]]))  # score = first channel
        loc.score.bias.zero_()
        loc.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        loc.proj.bias.zero_()
    x3 = torch.tensor([[[[0.0, 5.0], [1.0, 2.0]], [[7.0, 3.0], [4.0, 6.0]]]])  # 1 x 2 x 2 x 2
    out = loc(x3)
    assert out.indices.tolist() == [[1]]                       # pixel (0, 1) scores 5, the largest
    assert out.tokens.tolist() == [[[5.0, 3.0, 8.0]]]          # proj of its features (5, 3), weight 1
    e = torch.exp(torch.tensor([0.0, 5.0, 1.0, 2.0]))
    assert torch.allclose(out.attention, (e / e.sum())[None])


def test_gradients_reach_the_first_conv():
    torch = pytest.importorskip("torch")
    from xraybag.learners.apsam.eae import EnergyAwareEncoder

    torch.manual_seed(1)
    eae = EnergyAwareEncoder(dims=(4, 8, 8), embed_dim=16, top_k=2)
    x = torch.rand(2, 2, 32, 32)
    loss = (eae(x).tokens - torch.randn(2, 2, 16)).pow(2).mean()
    loss.backward()
    first = eae.blocks[0].conv.weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    assert eae.locate.score.weight.grad.abs().sum() > 0  # the scoring head learns through the softmax
    from xraybag.errors import XraybagError as E

    with pytest.raises(E, match=r"EAE input must be B x 2 x H x W \(high, low\), got \(2, 3, 32, 32\)"):
        eae(torch.rand(2, 3, 32, 32))
    with pytest.raises(E, match="top_k 2 exceeds the 1 x 1 = 1 pixels"):
        eae(torch.rand(1, 2, 8, 8))


def test_reader_metrics_and_apg_are_torch_free():
    import subprocess
    import sys

    code = ("import sys, xraybag.learners.seg_data, xraybag.learners.seg_metrics, xraybag.learners.apsam.apg; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
