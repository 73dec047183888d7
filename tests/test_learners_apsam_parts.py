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
