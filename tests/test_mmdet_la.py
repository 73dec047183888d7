"""The label-aware ATSS head in mmdet's registry (only where mmdet 3.x and a compiled mmcv exist)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops")

NUM_CLASSES = 3
STRIDES = [8, 16, 32, 64, 128]


def head_cfg(type_: str = "LAATSSHead", **la) -> dict:
    from mmengine.config import ConfigDict

    cfg = ConfigDict(
        type=type_, num_classes=NUM_CLASSES, in_channels=16, feat_channels=16, stacked_convs=1,
        norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                              scales_per_octave=1, strides=STRIDES),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
        loss_centerness=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
        train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1,
                       pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type="nms", iou_threshold=0.6), max_per_img=20),
    )
    cfg.update(la)
    return cfg


def build(cfg):
    import xraybag.learners.mmdet_la  # noqa: F401 - registers LAATSSHead
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def inputs(h: int = 128, w: int = 160):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(1)
    feats = tuple(torch.randn(2, 16, -(-h // s), -(-w // s), generator=g) for s in STRIDES)
    samples = []
    for boxes, labels in (([[10.0, 12, 70, 60], [50, 40, 150, 120]], [0, 2]), ([[30.0, 20, 90, 100]], [1])):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w),
                                        scale_factor=(1.0, 1.0), batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
        samples.append(s)
    return feats, samples


def test_registered_and_trains():
    from mmdet.registry import MODELS

    head = build(head_cfg(la_cls=True, la_reg=True))
    assert MODELS.get("LAATSSHead") is type(head)
    feats, samples = inputs()
    losses = head.loss(feats, samples)
    assert {"loss_cls", "loss_bbox", "loss_centerness", "loss_la_dist"} <= set(losses)
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert head.atss_cls.weight.grad.abs().sum() > 0 and head.la.dist_head.weight.grad.abs().sum() > 0


def test_la_sees_the_labels_mmdet_assigns():
    head = build(head_cfg(la_cls=True))
    feats, samples = inputs()
    seen = []
    real_cls = head.la.cls
    head.la.cls = lambda feat, conv, labels: seen.append(labels) or real_cls(feat, conv, labels)
    from mmdet.models.utils import unpack_gt_instances

    gts, ign, metas = unpack_gt_instances(samples)
    head.loss(feats, samples)
    # mmdet's own targets, as loss_by_feat computes them
    anchors, flags = head.get_anchors([f.shape[-2:] for f in feats], metas, device="cpu")
    _, labels_l, *_ = head.get_targets(anchors, flags, gts, metas, ign)
    assert len(seen) == len(STRIDES)
    for lab_map, lab in zip(seen, labels_l):
        ref = torch.where(lab < NUM_CLASSES, lab, torch.full_like(lab, -1))
        assert torch.equal(lab_map.reshape(2, -1), ref)
    assert sum(int((m >= 0).sum()) for m in seen) > 0
    assert {int(v) for m in seen for v in m.unique()} <= {-1, 0, 1, 2}


def test_identity_coefficients_match_plain_atss_and_predict_under_no_grad():
    plain = build(head_cfg("ATSSHead"))
    la = build(head_cfg(la_cls=True, la_a=1.0, la_b=0.0, la_c=0.0))
    la.load_state_dict(plain.state_dict())
    feats, samples = inputs()
    plain.eval()
    la.eval()
    with torch.no_grad():
        ref = plain(feats)
        out = la(feats)
    for a, b in zip(ref, out):
        for x, y in zip(a, b):
            assert torch.allclose(x, y)
    # Eq. 5 (a = b = c = 1) changes the scores, with gradients taken inside no_grad
    full = build(head_cfg(la_cls=True))
    full.load_state_dict(plain.state_dict(), strict=False)
    full.eval()
    with torch.no_grad():
        got = full(feats)
        preds = full.predict(feats, samples)
    assert not torch.allclose(got[0][0], ref[0][0])
    assert len(preds) == 2 and all(p.bboxes.shape[1] == 4 for p in preds)
    assert all(p.scores.numel() <= 20 for p in preds)


def test_bad_configuration():
    with pytest.raises(ValueError, match="one anchor per location"):
        build(head_cfg(anchor_generator=dict(type="AnchorGenerator", ratios=[0.5, 1.0, 2.0],
                                             octave_base_scale=8, scales_per_octave=1,
                                             strides=STRIDES)))
    with pytest.raises(ValueError, match="la_cls or la_reg"):
        build(head_cfg(la_cls=False, la_reg=False))


def test_whole_mmdet_atss_detector_trains_and_tests_with_the_la_head():
    from mmengine.config import ConfigDict

    head = head_cfg(la_cls=True, la_reg=True)
    train_cfg, test_cfg = head.pop("train_cfg"), head.pop("test_cfg")
    cfg = ConfigDict(
        type="ATSS",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[0.0] * 3, std=[1.0] * 3,
                               bgr_to_rgb=False, pad_size_divisor=32),
        backbone=dict(type="ResNet", depth=18, num_stages=4, out_indices=(1, 2, 3),
                      frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True),
                      norm_eval=False, style="pytorch", init_cfg=None),
        neck=dict(type="FPN", in_channels=[128, 256, 512], out_channels=16, start_level=0,
                  add_extra_convs="on_output", num_outs=5),
        bbox_head=head, train_cfg=train_cfg, test_cfg=test_cfg)
    model = build(cfg)
    _, samples = inputs()
    data = {"inputs": [torch.rand(3, 128, 160) * 255 for _ in samples], "data_samples": samples}
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    from mmengine.optim import OptimWrapper

    log = model.train_step(data, OptimWrapper(optim))          # mmengine's training step
    assert {"loss_cls", "loss_bbox", "loss_centerness", "loss_la_dist"} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    model.eval()
    with torch.no_grad():                                        # as mmengine's test loop runs it
        out = model.test_step(data)
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[-1] == 4
