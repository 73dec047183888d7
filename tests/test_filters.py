"""The detector model's compiled image filters against scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from xraybag.engine.xray.filters import blur_and_add, gaussian_weights, lowpass


@pytest.mark.parametrize("shape,sigma", [((40, 57), 0.5), ((2, 31, 9), 1.5), ((5, 3), 2.0),
                                         ((1, 1), 0.5), ((64, 80), 3.0)])
def test_blur_is_scipys_gaussian_filter(shape, sigma):
    img = np.random.default_rng(0).random(shape) * 100
    ref = gaussian_filter(img, (0.0,) * (img.ndim - 2) + (sigma, sigma), mode="nearest")
    out = blur_and_add(img, sigma)
    assert out.shape == img.shape and out.dtype == np.float64
    assert np.allclose(out, ref, rtol=1e-13, atol=1e-12)


def test_blur_adds_float32_noise_after_blurring():
    rng = np.random.default_rng(1)
    img = rng.random((30, 20))
    z = rng.standard_normal((30, 20), dtype=np.float32)
    out = blur_and_add(img, 0.5, z, 3e-3)
    expected = gaussian_filter(img, 0.5, mode="nearest") + (3e-3 * z).astype(np.float64)
    assert np.allclose(out, expected, rtol=0, atol=1e-13)
    assert np.array_equal(blur_and_add(img, 0.0), img)  # no blur: the image itself


def test_gaussian_weights_follow_scipy():
    w = gaussian_weights(0.5)
    assert w.size == 5 and w.sum() == pytest.approx(1.0)
    assert w[1] / w[2] == pytest.approx(np.exp(-2.0))
    delta = np.zeros(11)
    delta[5] = 1.0
    assert np.allclose(np.convolve(delta, w, mode="same"), gaussian_filter(delta, 0.5, mode="nearest"))


def block_lowpass(img, sigma):
    """The block-averaged low-pass written with numpy: 'edge' padding to whole blocks of
    f = sigma // 4 pixels, block means, scipy's Gaussian on them, and np.interp from the block
    centres (f - 1) / 2 + f k back to the pixels, rows first."""
    f = int(sigma // 4)
    b, rows, cols = img.shape
    padded = np.pad(img, ((0, 0), (0, (-rows) % f), (0, (-cols) % f)), mode="edge")
    small = padded.reshape(b, padded.shape[1] // f, f, padded.shape[2] // f, f).mean(axis=(2, 4))
    small = gaussian_filter(small, (0.0, sigma / f, sigma / f), mode="nearest")
    centres_r = (f - 1) / 2 + f * np.arange(small.shape[1])
    centres_c = (f - 1) / 2 + f * np.arange(small.shape[2])
    out = np.empty(img.shape)
    for q in range(b):
        by_rows = np.stack([np.interp(np.arange(rows), centres_r, small[q, :, j])
                            for j in range(small.shape[2])], axis=1)
        out[q] = np.stack([np.interp(np.arange(cols), centres_c, r) for r in by_rows])
    return out


@pytest.mark.parametrize("shape", [(604, 1234), (97, 203), (3, 60, 45)])
def test_lowpass_is_the_block_filter_and_close_to_the_direct_gaussian(shape):
    """On a smooth image with a dark object: the numpy block filter to rounding, the direct
    Gaussian (scipy) within 4 % of its largest value, scaled and shifted as asked; a constant
    image stays constant; narrow kernels are scipy's filter itself."""
    rng = np.random.default_rng(2)
    rows, cols = shape[-2:]
    y, x = np.mgrid[0:rows, 0:cols]
    img = 1.0 + 0.5 * np.sin(x / 37.0) * np.cos(y / 23.0)
    img = np.broadcast_to(img, shape).copy()
    img[..., rows // 4 : rows // 2, cols // 3 : cols // 2] *= 0.2
    img *= 1 + 0.01 * rng.standard_normal(shape)
    sigma = 40.0
    out = lowpass(img, sigma, 0.02, 0.5)
    assert out.shape == img.shape
    smooth = (out - 0.5) / 0.02
    assert np.allclose(smooth, block_lowpass(img.reshape((-1, rows, cols)), sigma).reshape(shape),
                       rtol=1e-10, atol=0)
    ref = gaussian_filter(img, (0.0,) * (img.ndim - 2) + (sigma, sigma), mode="nearest")
    assert np.max(np.abs(smooth - ref)) < 0.04 * np.abs(ref).max()
    assert np.allclose(lowpass(np.full(shape, 3.0), sigma), 3.0, rtol=1e-14)
    narrow = gaussian_filter(img, (0.0,) * (img.ndim - 2) + (3.0, 3.0), mode="nearest")
    assert np.allclose(lowpass(img, 3.0), narrow, rtol=1e-14)


@pytest.mark.parametrize("shape,sigmas", [((4, 16, 135), (20.0, 4.0)), ((2, 40, 51), (2.5, 0.7)),
                                          ((3, 7, 300), (0.0, 3.0)), ((2, 9, 9), (1.0, 0.0))])
def test_gaussian_nearest_is_scipys_to_the_bit(shape, sigmas):
    from xraybag.engine.xray.filters import gaussian_nearest

    img = np.random.default_rng(4).random(shape) * 1e4
    assert np.array_equal(gaussian_nearest(img, sigmas), gaussian_filter(img, (0.0, *sigmas), mode="nearest"))


def test_threaded_filters_give_the_same_bits():
    """lowpass and blur_and_add on numba's threads (a stack of CT views) equal the one-thread pass."""
    rng = np.random.default_rng(5)
    img = rng.random((6, 16, 200)) * 100
    z = rng.standard_normal(img.shape).astype(np.float32)
    for sigma in (20.0, 3.0):  # block means, and the direct filter
        assert np.array_equal(lowpass(img, sigma, 0.02, 0.5, threads=True), lowpass(img, sigma, 0.02, 0.5))
    assert np.array_equal(blur_and_add(img, 0.5, z, 1e-3, threads=True), blur_and_add(img, 0.5, z, 1e-3))


@pytest.mark.parametrize("shape, sigma", [((40, 60), 12.0), ((3, 40, 60), 12.0), ((40, 60), 3.0), ((2, 30, 20), 3.0)])
def test_lowpass_into_a_given_array(shape, sigma):
    """``lowpass(..., out=buf)`` writes the numbers of ``lowpass(...)`` into ``buf`` and returns
    it (block-averaged and direct kernels, one image and a stack); an ``out`` of another shape
    or type is refused."""
    img = np.random.default_rng(4).random(shape)
    ref = lowpass(img, sigma, 0.3, 0.01)
    buf = np.full(shape, np.nan)
    got = lowpass(img, sigma, 0.3, 0.01, out=buf)
    assert got is buf and np.array_equal(buf, ref)
    with pytest.raises(ValueError, match="expected C-contiguous float64"):
        lowpass(img, sigma, out=np.empty(shape, np.float32))
    with pytest.raises(ValueError, match="expected C-contiguous float64"):
        lowpass(img, sigma, out=np.empty((5,) + shape))


@pytest.mark.parametrize("shape", [(1, 40, 50), (2, 7, 3), (1, 1, 9), (1, 9, 1), (3, 2, 2)])
def test_the_five_tap_blur_is_the_general_ones_arithmetic(shape):
    """The detector blur's kernel for 5 taps (sigma 0.5 px) takes the general kernel's
    operations in its order: the same bits, with and without the electronic noise, on images
    narrower and shorter than the kernel too; and 9 taps (sigma 1 px) take the general one."""
    from xraybag.engine.xray import filters as F

    rng = np.random.default_rng(shape[1] * 7 + shape[2])
    img = rng.random(shape) * 1e3
    for z in (np.zeros((0, 0, 0), np.float32), rng.standard_normal(shape).astype(np.float32)):
        for sigma in (0.5, 1.0):
            w = gaussian_weights(sigma)
            ref = np.empty(shape)
            col = np.empty(shape[2])
            for q in range(shape[0]):
                F._blur_add_one(img, q, w, z, np.float32(3e-3), ref, col)
            for blur in (F._blur_add, F._blur_add_threads):
                out = np.full(shape, np.nan)
                blur(img, w, z, np.float32(3e-3), out)
                assert out.tobytes() == ref.tobytes()
