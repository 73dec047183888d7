"""The label-aware ATSS head for mmdet 3.x users: ``LAATSSHead`` in mmdet's ``MODELS`` registry.

mmdet is optional (it needs an mmcv compiled from source); nothing else in xraybag imports this
module. Importing it registers the head, which is how mmdet finds custom modules::

    custom_imports = dict(imports=["xraybag.learners.mmdet_la"], allow_failed_imports=False)
    model = dict(
        type="ATSS",
        ...
        bbox_head=dict(type="LAATSSHead", num_classes=12, in_channels=256, feat_channels=256,
                       la_cls=True, la_reg=False, la_a=1.0, la_b=1.0, la_c=1.0,
                       anchor_generator=dict(type="AnchorGenerator", ratios=[1.0],
                                             octave_base_scale=8, scales_per_octave=1,
                                             strides=[8, 16, 32, 64, 128]),
                       ...))                     # everything else as mmdet's ATSSHead

``LAATSSHead`` is mmdet's ``ATSSHead`` with :class:`~xraybag.learners.label_aware.LabelAware`
between the towers and the final convs of every level: LAcls re-weights the classification
feature before ``atss_cls`` (Eq. 5/7 of the LA paper, coefficients ``la_a``, ``la_b``, ``la_c``),
LAreg the regression feature before ``atss_reg`` and ``atss_centerness`` (Eq. 6). In training the
head first runs mmdet's own ATSS assignment, so the labels LA uses are exactly the ones the losses
use; at test time LA takes pseudo-labels from its first prediction, with gradients enabled inside
mmdet's ``no_grad`` test loop. mmdet's ATSS regresses anchor deltas, so LAreg reads a 16-bin
distance distribution from an auxiliary conv (``LabelAware(reg_in_channels=...)``) trained by the
extra loss ``loss_la_dist``; xraybag's own ``la_atss`` learner instead discretises the regressor
itself, as the paper does.
"""

from __future__ import annotations

import torch
from mmdet.models.dense_heads import ATSSHead
from mmdet.models.utils import multi_apply, unpack_gt_instances
from mmdet.registry import MODELS

from xraybag.learners.label_aware import LabelAware

__all__ = ["LAATSSHead"]


@MODELS.register_module()
class LAATSSHead(ATSSHead):
    """mmdet's ATSS head with the label-aware mechanism (LAcls / LAreg).

    Extra arguments: ``la_cls`` / ``la_reg`` (which branches LA adjusts), ``la_a``, ``la_b``,
    ``la_c`` (Eq. 7; 1, 1, 1 is Eq. 5), ``la_bins`` (LAreg's intervals of one stride, 16).
    The anchor generator must give one anchor per location, as ATSS does.
    """

    def __init__(self, *args, la_cls: bool = True, la_reg: bool = False, la_a: float = 1.0,
                 la_b: float = 1.0, la_c: float = 1.0, la_bins: int = 16, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_base_priors != 1:
            raise ValueError(f"LAATSSHead: one anchor per location expected (ATSS), the anchor "
                             f"generator gives {self.num_base_priors}")
        if not (la_cls or la_reg):
            raise ValueError("LAATSSHead: la_cls or la_reg must be on (plain ATSS is ATSSHead)")
        self.la = LabelAware(self.num_classes, use_cls=la_cls, use_reg=la_reg, a=la_a, b=la_b,
                             c=la_c, bins=la_bins, max_dist=float(la_bins),
                             reg_in_channels=self.feat_channels if la_reg else None)
        self._la_targets: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    # ------------------------------------------------------------------ forward
    def forward(self, x):
        return multi_apply(self._forward_level, x, self.scales, list(range(len(x))))

    def _forward_level(self, x, scale, level: int):
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        labels, dists = self._la_targets[level] if self._la_targets is not None else (None, None)
        cls_feat = self.la.cls(cls_feat, self.atss_cls, labels)
        reg_feat = self.la.reg(reg_feat, self.atss_reg, labels, targets=dists)
        cls_score = self.atss_cls(cls_feat)
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        return cls_score, bbox_pred, self.atss_centerness(reg_feat)

    # ------------------------------------------------------------------ training
    def la_targets(self, x, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None):
        """Per level: the class mmdet's ATSS assigner gives every location, ``(N, H, W)`` with
        -1 for background, and the distances ``(N, 4, H, W)`` (l, t, r, b in strides) from the
        location's anchor centre to its ground-truth box, -1 at background."""
        sizes = [f.shape[-2:] for f in x]
        anchor_list, valid_flags = self.get_anchors(sizes, batch_img_metas, device=x[0].device)
        anchors_l, labels_l, _, boxes_l, _, _ = self.get_targets(
            anchor_list, valid_flags, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
        out = []
        for (h, w), anchors, labels, boxes, stride in zip(sizes, anchors_l, labels_l, boxes_l,
                                                          self.prior_generator.strides):
            n = labels.shape[0]
            fg = (labels >= 0) & (labels < self.num_classes)
            cx = (anchors[..., 0] + anchors[..., 2]) / 2
            cy = (anchors[..., 1] + anchors[..., 3]) / 2
            d = torch.stack([cx - boxes[..., 0], cy - boxes[..., 1], boxes[..., 2] - cx,
                             boxes[..., 3] - cy], dim=-1) / float(stride[0])
            d = torch.where(fg[..., None], d.clamp(min=0), torch.full_like(d, -1.0))
            lab = torch.where(fg, labels, torch.full_like(labels, -1))
            out.append((lab.reshape(n, h, w), d.reshape(n, h, w, 4).permute(0, 3, 1, 2)))
        return out

    def loss(self, x, batch_data_samples) -> dict:
        gts, gts_ignore, metas = unpack_gt_instances(batch_data_samples)
        with torch.no_grad():
            self._la_targets = self.la_targets(x, gts, metas, gts_ignore)
        try:
            outs = self(x)
        finally:
            self._la_targets = None
        losses = self.loss_by_feat(*outs, gts, metas, gts_ignore)
        losses.update(self.la.extra_losses())
        return losses

    def loss_and_predict(self, x, batch_data_samples, proposal_cfg=None):
        losses = self.loss(x, batch_data_samples)
        _, _, metas = unpack_gt_instances(batch_data_samples)
        with torch.no_grad():
            outs = self(x)
        return losses, self.predict_by_feat(*outs, batch_img_metas=metas, cfg=proposal_cfg)
