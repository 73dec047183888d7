"""The Cycle-GAN losses (Zhu et al. 2017, eq. 1-3 and section 7.1).

- Least-squares GAN (Mao et al.): the discriminator minimises ``E[(D(y) - 1)^2] + E[D(G(x))^2]``
  (halved, to slow it relative to the generator), the generator ``E[(D(G(x)) - 1)^2]``.
- Cycle consistency: ``lambda * (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)`` (means over pixels), lambda 10.
- Identity (used in the paper's painting<->photo experiments and on by default in its code):
  ``lambda_id * lambda * (|G(y) - y|_1 + |F(x) - x|_1)`` with lambda_id 0.5.
"""

from __future__ import annotations

import torch


def lsgan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Mean of ``(pred - 1)^2`` when ``real`` else of ``pred^2``."""
    target = 1.0 if real else 0.0
    return torch.mean((pred - target) ** 2)


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """``0.5 * (lsgan(real, 1) + lsgan(fake, 0))``."""
    return 0.5 * (lsgan_loss(pred_real, True) + lsgan_loss(pred_fake, False))


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor, lam: float = 10.0) -> torch.Tensor:
    """``lam * mean|reconstructed - original|`` (one direction of the cycle)."""
    return lam * torch.mean(torch.abs(reconstructed - original))


def identity_loss(same: torch.Tensor, original: torch.Tensor, lam: float = 10.0, lam_id: float = 0.5) -> torch.Tensor:
    """``lam_id * lam * mean|G(y) - y|`` (one generator, fed an image of its own target domain)."""
    return lam_id * lam * torch.mean(torch.abs(same - original))
