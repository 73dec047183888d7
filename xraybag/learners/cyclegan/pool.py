"""The image pool of Shrivastava et al. as Cycle-GAN uses it (Zhu et al. 2017, section 4): the
discriminators are updated with a history of generated images rather than only the latest one.

While the pool holds fewer than ``size`` (50) images, each new image is stored and returned. Once
it is full, each new image is returned with probability 0.5; otherwise a stored image, drawn
uniformly, is returned and the new image takes its place. The draws come from a numpy
``Generator`` whose state is saved with the pool, so a resumed run draws as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch


class ImagePool:
    def __init__(self, size: int = 50, rng: np.random.Generator | None = None):
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of the same shape as ``images`` (``N x C x H x W``, detached), each entry the
        new image or a stored one as described above."""
        if self.size <= 0:
            return images.detach()
        out = []
        for im in images.detach():
            im = im.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(im.clone())
                out.append(im)
            elif self.rng.random() < 0.5:
                out.append(im)
            else:
                k = int(self.rng.integers(0, self.size))
                out.append(self.images[k].clone())
                self.images[k] = im.clone()
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [im.cpu() for im in self.images],
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = [im.clone() for im in state["images"]]
        self.rng.bit_generator.state = state["rng"]


class PixelPool:
    """A history of single pixels for the 1x1 pixel discriminators (option ``pixel_pool``; not the
    paper's). Each iteration adds a crop's pixels (``M x C``), overwriting the oldest once ``size``
    are held, and the discriminator learns from a uniform draw over the whole history: over many
    crops, so that it sees how often each colour occurs in a set, not in one bag. The draws come
    from a numpy ``Generator`` saved with the pool, as :class:`ImagePool`'s."""

    def __init__(self, size: int, channels: int, rng: np.random.Generator | None = None):
        self.size = int(size)
        self.data = torch.zeros(self.size, int(channels))
        self.count = 0
        self.pos = 0
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def __len__(self) -> int:
        return self.count

    def add(self, pixels: torch.Tensor) -> None:
        """Store the rows of ``pixels`` (``M x C``; the last ``size`` of them when there are more)."""
        pixels = pixels.detach().to(self.data.device, self.data.dtype)[-self.size:]
        idx = (self.pos + torch.arange(len(pixels))) % self.size
        self.data[idx] = pixels
        self.pos = int((self.pos + len(pixels)) % self.size)
        self.count = min(self.size, self.count + len(pixels))

    def sample(self, k: int) -> torch.Tensor:
        """``k`` stored pixels drawn uniformly with replacement, as a ``1 x C x k x 1`` image."""
        if self.count == 0:
            raise ValueError("the pixel pool is empty")
        idx = torch.as_tensor(self.rng.integers(0, self.count, size=int(k)))
        return self.data[idx].t().reshape(1, -1, int(k), 1)

    def state_dict(self) -> dict:
        return {"size": self.size, "data": self.data[: self.count].clone(), "pos": self.pos,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        held = state["data"]
        self.data = torch.zeros(self.size, held.shape[1])
        self.data[: len(held)] = held
        self.count, self.pos = len(held), int(state["pos"])
        self.rng.bit_generator.state = state["rng"]
