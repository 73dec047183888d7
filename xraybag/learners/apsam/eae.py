"""The Energy-Aware Encoder (EAE) and location initializer of the XSeg paper (section 4.3, fig. 5).

Input: ``X0 = [I_H; I_L]``, the high and low energy images stacked as two channels (``B x 2 x H x
W``; from the detector's raw channels, or the max / min of the pseudo-colour channels, see
:mod:`xraybag.learners.seg_data`). Three identical blocks, each

    Z_k = GELU(LayerNorm(Conv3x3(X_{k-1})))      (eq. 5)
    X_k = MaxPool2x2(Z_k)                         (eq. 6)

for k = 1, 2, 3 (LayerNorm over the channels of each pixel, as SAM's ``LayerNorm2d``), so ``X3``
is ``B x C3 x H/8 x W/8``. The location initializer flattens ``X3`` to ``h*w`` feature vectors,
a channel-wise linear head scores each pixel, a softmax over the pixels turns the scores into
attention weights, the Top-k pixels by weight are selected and their features projected by a linear
layer into the mask decoder's token space: ``B x k x D`` tokens that initialise the decoder's
output token(s).

The paper leaves open how the weights meet the selected features (top-k indices carry no
gradient); here each selected feature is scaled by its weight renormalised over the k selected
(times k, so equal weights leave the features as they are) before the projection, so the scoring
head learns through the softmax. Channel widths are not given in the paper: ``dims`` (default 32,
64, 128). ``top_k`` defaults to 4, the number of SAM's mask tokens (one per multimask output plus
the single-mask one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from xraybag.errors import XraybagError


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a ``B x C x H x W`` map (SAM's ``LayerNorm2d``)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class EnergyBlock(nn.Module):
    """Conv 3x3 (padding 1), LayerNorm2d, GELU, max-pool 2x2: one of the EAE's three blocks."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.norm = LayerNorm2d(cout)
        self.act = nn.GELU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


@dataclass
class EAEOutput:
    """``tokens``: ``B x k x D``; ``attention``: ``B x (h*w)`` softmax weights over the pixels of
    ``X3``; ``indices``: ``B x k`` the Top-k pixels (flat, row-major), by weight descending;
    ``features``: ``X3``, ``B x C3 x h x w``."""

    tokens: torch.Tensor
    attention: torch.Tensor
    indices: torch.Tensor
    features: torch.Tensor


class LocationInitializer(nn.Module):
    """Pixel scores by a channel-wise linear head, softmax over pixels, Top-k, linear projection."""

    def __init__(self, channels: int, embed_dim: int, top_k: int):
        super().__init__()
        self.top_k = int(top_k)
        self.score = nn.Linear(channels, 1)
        self.proj = nn.Linear(channels, embed_dim)

    def forward(self, x3: torch.Tensor) -> EAEOutput:
        b, c, h, w = x3.shape
        if self.top_k > h * w:
            raise XraybagError(f"EAE top_k {self.top_k} exceeds the {h} x {w} = {h * w} pixels of its last feature "
                               "map (a larger input or a smaller top_k)")
        feats = x3.flatten(2).transpose(1, 2)                       # B x (h*w) x C
        attn = self.score(feats).squeeze(-1).softmax(dim=-1)        # B x (h*w)
        top, idx = attn.topk(self.top_k, dim=-1, sorted=True)       # B x k, weight descending
        sel = feats.gather(1, idx[..., None].expand(-1, -1, c))     # B x k x C
        weight = top / top.sum(-1, keepdim=True) * self.top_k       # renormalised over the k
        return EAEOutput(self.proj(sel * weight[..., None]), attn, idx, x3)


class EnergyAwareEncoder(nn.Module):
    """The EAE and its location initializer: ``B x in_chans x H x W`` (high, low) -> ``B x top_k x
    embed_dim`` tokens for the mask decoder (see the module docstring). ``self.config`` holds the
    constructor's arguments (to rebuild the module from a checkpoint)."""

    def __init__(self, in_chans: int = 2, dims: tuple[int, ...] = (32, 64, 128), embed_dim: int = 256, top_k: int = 4):
        super().__init__()
        dims = tuple(int(d) for d in dims)
        if len(dims) != 3 or min(dims) < 1:
            raise XraybagError(f"EAE dims must be three positive channel counts, got {dims}")
        if int(top_k) < 1 or int(embed_dim) < 1:
            raise XraybagError(f"EAE top_k and embed_dim must be positive, got {top_k} and {embed_dim}")
        self.config = {"in_chans": int(in_chans), "dims": dims, "embed_dim": int(embed_dim), "top_k": int(top_k)}
        chans = (int(in_chans),) + dims
        self.blocks = nn.Sequential(*(EnergyBlock(chans[i], chans[i + 1]) for i in range(3)))
        self.locate = LocationInitializer(dims[-1], int(embed_dim), int(top_k))

    def forward(self, x: torch.Tensor) -> EAEOutput:
        if x.ndim != 4 or x.shape[1] != self.config["in_chans"]:
            raise XraybagError(f"EAE input must be B x {self.config['in_chans']} x H x W (high, low), got {tuple(x.shape)}")
        if x.shape[2] < 8 or x.shape[3] < 8:
            raise XraybagError(f"EAE input must be at least 8 x 8 pixels (three 2x2 poolings), got {tuple(x.shape[2:])}")
        return self.locate(self.blocks(x))


def energy_input(high: torch.Tensor, low: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``X0 = [I_H; I_L]``: ``B x H x W`` high and low images stacked to ``B x 2 x H x W``, resized
    (bilinear) to ``size`` when given."""
    x = torch.stack([high, low], dim=1).float()
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False) if size is not None else x
