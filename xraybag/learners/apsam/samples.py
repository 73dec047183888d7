"""Training samples and evaluation clicks for the SAM learners.

:class:`PromptSamples` turns a :class:`~xraybag.learners.seg_data.SegmentationDataset` into what
:class:`~xraybag.learners.apsam.net.SamSegNet` trains on: per image the SAM input (pseudo-colour,
longer side resized to ``size``, padded), the EAE input (high, low), up to ``max_objects`` of its
objects (drawn at random when it has more) with their masks in the same frame and one click each,
drawn uniformly from the object's pixels. With ``crop="content"`` (the default) the image is first
cut to the scanned contents (:func:`content_window`). What is drawn depends only on ``(seed, epoch, index)``,
so a resumed run sees what an uninterrupted one would.

:func:`click_points` makes the clicks ``predict`` uses when it is given no prompts: ``center``
(default) is the pixel of the object farthest from its outline (the maximum of the Euclidean
distance transform, ties broken by a seeded draw), a point a user would plausibly click;
``random`` is a pixel of the mask drawn uniformly (seeded), the XSeg paper's "random 1 point".
"""

from __future__ import annotations

import numpy as np
import torch

from xraybag.errors import XraybagError
from xraybag.learners.apsam.sam import prepare_energy, prepare_image, prepare_masks, resized_shape
from xraybag.learners.seg_data import SegmentationDataset

CLICKS = ("center", "random")
CROPS = ("content", "none")
#: a pixel is part of the scanned contents when its darkest colour channel is below this (the empty
#: tunnel is white), and the window keeps this many pixels around them
CONTENT_WHITE, CONTENT_PAD = 0.94, 16


def content_window(rgb: np.ndarray, keep: np.ndarray | None = None, pad: int = CONTENT_PAD) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the part of the ``H x W x 3`` pseudo-colour image (in [0, 1]) that
    holds the scanned contents, i.e. the rows and columns with at least two pixels darker than
    :data:`CONTENT_WHITE` in their darkest channel, grown by ``pad`` pixels and widened to hold the
    ``(N, 4)`` boxes ``keep`` (x1, y1, x2, y2: prompts, or the objects in training). The whole image
    when nothing is dark. A line scanner's image is mostly empty tunnel around the bag; cropping it
    away before the longer side is scaled to the input size keeps the objects' detail."""
    h, w = rgb.shape[:2]
    dark = rgb.min(axis=2) < CONTENT_WHITE
    rows, cols = np.nonzero(dark.sum(axis=1) >= 2)[0], np.nonzero(dark.sum(axis=0) >= 2)[0]
    if len(rows) == 0 or len(cols) == 0:
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        x0, y0, x1, y1 = cols[0] - pad, rows[0] - pad, cols[-1] + 1 + pad, rows[-1] + 1 + pad
    if keep is not None and len(keep):
        k = np.asarray(keep, dtype=np.float64).reshape(-1, 4)
        x0, y0 = min(x0, int(np.floor(k[:, 0].min())) - pad), min(y0, int(np.floor(k[:, 1].min())) - pad)
        x1, y1 = max(x1, int(np.ceil(k[:, 2].max())) + pad), max(y1, int(np.ceil(k[:, 3].max())) + pad)
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def crop_sample(s, window: tuple[int, int, int, int]):
    """The :class:`~xraybag.learners.seg_data.SegSample` ``s`` cut to ``window`` (boxes shifted)."""
    import dataclasses

    x0, y0, x1, y1 = window
    return dataclasses.replace(
        s, image=s.image[y0:y1, x0:x1], high=s.high[y0:y1, x0:x1], low=s.low[y0:y1, x0:x1],
        masks=s.masks[:, y0:y1, x0:x1], boxes=s.boxes - np.array([x0, y0, x0, y0], np.float32))


class PromptSamples(torch.utils.data.Dataset):
    """``((rgb 3 x S x S, energy 2 x S x S), {"masks": K x S x S, "points": K x 1 x 2, "size": (h, w),
    "keys": [K seeds for APG]})`` for each image of ``data`` that has at least one mask."""

    def __init__(self, data: SegmentationDataset, size: int, max_objects: int = 4, seed: int = 0,
                 crop: str = "content"):
        if max_objects < 1:
            raise XraybagError(f"option 'max_objects' must be >= 1, got {max_objects}")
        if crop not in CROPS:
            raise XraybagError(f"option 'crop' must be one of {', '.join(CROPS)}, got {crop!r}")
        self.data, self.size, self.max_objects, self.seed, self.epoch = data, int(size), int(max_objects), int(seed), 0
        self.crop = crop
        self.indices = [i for i, im in enumerate(data.images) if data.annotations(im["id"])]
        if not self.indices:
            raise XraybagError("the training split has no object masks left after cleaning "
                               f"({data.cleaning_report()})")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        index = self.indices[i]
        s = self.data[index]
        if self.crop == "content":
            s = crop_sample(s, content_window(s.image, s.boxes))
        rng = np.random.default_rng((self.seed, self.epoch, index))
        n = len(s.masks)
        pick = np.sort(rng.choice(n, size=min(n, self.max_objects), replace=False))
        masks = prepare_masks(s.masks[pick], self.size)
        h, w = resized_shape(s.height, s.width, self.size)
        sx, sy = w / s.width, h / s.height
        points = np.zeros((len(pick), 1, 2), np.float32)
        for k, j in enumerate(pick):
            ys, xs = np.nonzero(masks[k].numpy())
            if len(xs):  # a pixel of the resized mask, in the input frame
                u = int(rng.integers(len(xs)))
                points[k, 0] = (xs[u], ys[u])
            else:  # an object too small to survive resizing: its own pixel, scaled
                ys, xs = np.nonzero(s.masks[j])
                u = int(rng.integers(len(xs)))
                points[k, 0] = (min(xs[u] * sx, w - 1), min(ys[u] * sy, h - 1))
        keys = [(self.seed, self.epoch, index, int(j)) for j in pick]
        images = (prepare_image(s.image, self.size), prepare_energy(s.high, s.low, self.size))
        return images, {"masks": masks, "points": torch.from_numpy(points), "size": (h, w), "keys": keys}


def collate(batch):
    """Stack the images (all ``S x S``); keep the targets a list."""
    rgb = torch.stack([b[0][0] for b in batch])
    energy = torch.stack([b[0][1] for b in batch])
    return (rgb, energy), [b[1] for b in batch]


def click_points(masks: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """One click ``(x, y)`` per mask of ``masks`` (``N x H x W`` bool): see the module docstring."""
    from scipy import ndimage

    if how not in CLICKS:
        raise XraybagError(f"option 'click' must be one of {', '.join(CLICKS)}, got {how!r}")
    out = np.zeros((len(masks), 2), np.float32)
    for k, m in enumerate(masks):
        if how == "center":
            dist = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            ys, xs = np.nonzero(dist == dist.max())
        else:
            ys, xs = np.nonzero(m)
        u = int(rng.integers(len(xs)))
        out[k] = (xs[u], ys[u])
    return out
