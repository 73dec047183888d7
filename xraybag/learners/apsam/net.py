"""The network the ``sam_finetune`` and ``apsam`` learners train: SAM (with adapters), optionally the
Energy-Aware Encoder whose tokens initialise the mask decoder's output tokens, optionally the
Adaptive Point Generator's second pass; its training losses (imports torch and segment-anything).

One training step (``forward(images, targets)``, for :func:`xraybag.learners.training.fit`):

1. the image encoder embeds the pseudo-colour images (``Sam.forward`` runs under ``no_grad``, so the
   encoder, prompt encoder and decoder are called directly); with the EAE, the (high, low) images
   give ``B x 4 x D`` tokens (section 4.3), added to the decoder's four mask tokens (eq. 1's
   ``O_mask``; added rather than substituted, so SAM's learned tokens, and a checkpoint's decoder,
   are kept and the EAE learns the X-ray specific offset);
2. each object of the batch gets one click drawn uniformly from its ground-truth mask (section
   4.4: "point prompts are randomly sampled within ground-truth masks during training");
3. the decoder predicts SAM's three multimask outputs and their IoUs; the loss is SAM's in form:
   ``focal_weight * focal + Dice`` on the output of lowest loss, plus the mean squared error of the
   predicted IoUs against the IoUs the three masks really have (the XSeg paper gives no loss). SAM
   weighs focal 20 : 1; the default here is 1 : 1, which trained the tiny preset from scratch far
   faster (``docs/learners.md``);
4. with APG: the first pass's mask of highest predicted IoU (eq. 3's ``argmax S_iou``, detached)
   goes through :func:`~xraybag.learners.apsam.apg.adaptive_points` (the (high, low) values as the
   clustered features), and the two points it returns, without the click (the paper feeds
   ``{p1, p2}``), prompt a second pass scored by the same loss (``*_apg`` entries); both passes
   count, so the decoder learns the clicks users give and the points APG makes from them.

At inference (:meth:`SamSegNet.segment`) the mask of highest predicted IoU is the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xraybag.learners.apsam.apg import adaptive_points
from xraybag.learners.apsam.eae import EnergyAwareEncoder
from xraybag.learners.apsam.sam import SamConfig, build_sam, decode

#: SAM's weight of the focal loss beside Dice (the learners' default, ``focal_weight``, is 1)
SAM_FOCAL_WEIGHT = 20.0
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


def mask_losses(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor,
                focal_weight: float = SAM_FOCAL_WEIGHT) -> tuple[torch.Tensor, ...]:
    """``(focal_weight * focal, dice, iou_mse)`` for ``N x M x S x S`` mask logits, ``N x M``
    predicted IoUs and ``N x S x S`` 0/1 targets: per prompt the output of lowest
    ``focal_weight * focal + dice`` is scored (SAM's multimask rule); the IoU head is regressed on
    all ``M`` outputs' true IoUs."""
    t = gt[:, None].expand_as(logits)
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    a_t = FOCAL_ALPHA * t + (1 - FOCAL_ALPHA) * (1 - t)
    focal = (a_t * ce * (1 - p_t) ** FOCAL_GAMMA).flatten(2).mean(-1)           # N x M
    inter = (p * t).flatten(2).sum(-1)
    dice = 1 - (2 * inter + 1) / (p.flatten(2).sum(-1) + t.flatten(2).sum(-1) + 1)  # N x M
    best = (focal_weight * focal + dice).argmin(dim=1, keepdim=True)
    with torch.no_grad():
        hard = (logits > 0).float()
        i = (hard * t).flatten(2).sum(-1)
        u = ((hard + t) > 0).float().flatten(2).sum(-1)
        true_iou = torch.where(u > 0, i / u.clamp(min=1), torch.ones_like(u))
    iou_mse = F.mse_loss(iou_pred, true_iou)
    return focal.gather(1, best).mean() * focal_weight, dice.gather(1, best).mean(), iou_mse


class SamSegNet(nn.Module):
    """SAM (``self.sam``, segment-anything's ``Sam``), the EAE (``self.eae``, or ``None``) and APG
    (``self.apg``); see the module docstring."""

    def __init__(self, cfg: SamConfig, apg: bool = False, focal_weight: float = 1.0):
        super().__init__()
        self.focal_weight = float(focal_weight)
        self.cfg = cfg
        self.sam = build_sam(cfg)
        self.num_mask_tokens = self.sam.mask_decoder.num_mask_tokens
        self.eae = (EnergyAwareEncoder(2, cfg.eae_dims, cfg.prompt_embed_dim, top_k=self.num_mask_tokens)
                    if cfg.eae else None)
        self.apg = bool(apg)
        self._diag: dict[str, list[float]] = {}

    def freeze_encoder(self, frozen: bool) -> None:
        """Freeze the image encoder's own weights (its adapters stay trainable), or train it all."""
        for name, p in self.sam.image_encoder.named_parameters():
            p.requires_grad = (not frozen) or ".adapter_" in name

    def encode(self, rgb: torch.Tensor, energy: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image embeddings ``B x C x h x w`` and the EAE's tokens ``B x 4 x C`` (``None`` without EAE;
        the (high, low) input ``B x 2 x S x S`` is resized to the EAE's ``eae_size``)."""
        emb = self.sam.image_encoder(rgb)
        tok = None
        if self.eae is not None:
            side = self.cfg.eae_size
            if energy.shape[-1] != side:
                energy = F.interpolate(energy, (side, side), mode="bilinear", align_corners=False, antialias=True)
            tok = self.eae(energy).tokens
        return emb, tok

    def decode(self, emb: torch.Tensor, tok: torch.Tensor | None, points: torch.Tensor | None,
               labels: torch.Tensor | None, boxes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM's multimask outputs for ``N`` prompts: logits ``N x 3 x h' x w'`` (``h' = 4h``) and IoUs ``N x 3``."""
        pe = self.sam.prompt_encoder
        sparse, dense = pe(points=(points, labels) if points is not None else None, boxes=boxes, masks=None)
        logits, iou = decode(self.sam.mask_decoder, emb, pe.get_dense_pe(), sparse, dense, tok)
        return logits[:, 1:], iou[:, 1:]

    # -- training --------------------------------------------------------------------------------

    def forward(self, images: tuple[torch.Tensor, torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        rgb, energy = images
        size = rgb.shape[-1]
        emb, tok = self.encode(rgb, energy if self.eae is not None else None)
        idx = torch.cat([torch.full((len(t["points"]),), i, dtype=torch.long) for i, t in enumerate(targets)]).to(rgb.device)
        gt = torch.cat([t["masks"] for t in targets])
        clicks = torch.cat([t["points"] for t in targets])                  # N x 1 x 2
        e, k = emb[idx], (tok[idx] if tok is not None else None)
        ones = torch.ones(clicks.shape[:2], device=rgb.device)
        low, iou = self.decode(e, k, clicks, ones)
        logits = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)
        focal, dice, iou_mse = mask_losses(logits, iou, gt, self.focal_weight)
        losses = {"loss_focal": focal, "loss_dice": dice, "loss_iou": iou_mse}
        if self.apg:  # on the decoder's own mask grid (1/4 of the input side): cheaper, see the docs
            valid = [tuple(t["size"]) for t in targets for _ in range(len(t["points"]))]
            rngs = [np.random.default_rng(key) for t in targets for key in t["keys"]]
            pts = self.apg_points(low.detach(), iou.detach(), energy[idx], valid, clicks, rngs)
            logits2, iou2 = self.decode(e, k, pts, torch.ones(pts.shape[:2], device=rgb.device))
            logits2 = F.interpolate(logits2, (size, size), mode="bilinear", align_corners=False)
            focal2, dice2, iou2_mse = mask_losses(logits2, iou2, gt, self.focal_weight)
            losses.update({"loss_focal_apg": focal2, "loss_dice_apg": dice2, "loss_iou_apg": iou2_mse})
        return losses

    def apg_points(self, logits: torch.Tensor, iou: torch.Tensor, energy: torch.Tensor, valid: list[tuple[int, int]],
                   clicks: torch.Tensor, rngs: list[np.random.Generator]) -> torch.Tensor:
        """APG's two points (``N x 2 x 2``, input frame) from each prompt's first mask of highest
        predicted IoU (logits ``N x M x g x g``, cut at 0, on a grid ``g`` that divides the input
        side ``S``: ``S`` itself, or the decoder's ``S / 4``) and the (high, low) values
        (``N x 2 x S x S``, averaged over the grid's cells). Valid sizes ``(h, w)`` and clicks are in
        the input frame; a point ``p`` of the grid is the centre ``(p + 0.5) f - 0.5`` of its cell."""
        size = energy.shape[-1]
        f = size // logits.shape[-1]
        feats_all = F.avg_pool2d(energy, f) if f > 1 else energy
        best = iou.argmax(dim=1)
        out = []
        for n in range(logits.shape[0]):
            h, w = (-(-int(v) // f) for v in valid[n])
            m = logits[n, best[n], :h, :w].float().cpu().numpy()
            feats = feats_all[n, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()
            click = tuple(((clicks[n, 0] + 0.5) / f - 0.5).tolist())
            r = adaptive_points(m, rng=rngs[n], features=feats, threshold=0.0, point=click)
            self._diag.setdefault("apg_clusters", []).append(float(r.mode == "clusters"))
            self._diag.setdefault("apg_uniform", []).append(float(r.mode == "uniform"))
            pts = (np.asarray(r.points, dtype=np.float32) + 0.5) * f - 0.5
            vh, vw = (int(v) for v in valid[n])
            pts[:, 0] = np.clip(pts[:, 0], 0.0, vw - 1.0)
            pts[:, 1] = np.clip(pts[:, 1], 0.0, vh - 1.0)
            out.append(torch.from_numpy(pts))
        return torch.stack(out).to(logits.device)

    def train_diagnostics(self) -> dict[str, float]:
        """The share of APG's prompts since the last call that took each mode (for the train log)."""
        d = {k: float(np.mean(v)) for k, v in self._diag.items() if v}
        self._diag = {}
        return d

    # -- inference -------------------------------------------------------------------------------

    @torch.no_grad()
    def segment(self, emb: torch.Tensor, tok: torch.Tensor | None, energy: torch.Tensor, valid: tuple[int, int],
                points: np.ndarray, labels: np.ndarray, box: np.ndarray | None, use_apg: bool,
                rng: np.random.Generator) -> dict[str, Any]:
        """One prompt on one embedded image (``emb`` ``1 x C x h x w``; points and box in the input
        frame): ``{"logits": 1 x 1 x h' x w'`` low-res logits of the chosen mask, ``"score"``: its
        predicted IoU, ``"apg": APGResult or None}``. With ``use_apg`` (one positive click, no box)
        the first mask's APG points prompt the second pass, whose best mask is the answer."""
        dev = emb.device
        pts = torch.as_tensor(points, dtype=torch.float32, device=dev)[None] if len(points) else None
        lab = torch.as_tensor(labels, dtype=torch.float32, device=dev)[None] if len(points) else None
        bx = torch.as_tensor(box, dtype=torch.float32, device=dev)[None] if box is not None else None
        logits, iou = self.decode(emb, tok, pts, lab, bx)
        apg = None
        if use_apg:
            size = self.cfg.image_size
            up = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
            two = self.apg_points(up, iou, energy[None], [valid], pts, [rng])
            self._diag = {}
            apg = two[0].cpu().numpy()
            logits, iou = self.decode(emb, tok, two, torch.ones((1, 2), device=dev))
        k = int(iou[0].argmax())
        return {"logits": logits[:, k : k + 1], "score": float(iou[0, k]), "apg": apg}
