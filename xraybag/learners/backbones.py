"""Backbones for the detectors: C3-C5 of a torchvision ResNet or RegNet, with BatchNorm, frozen
BatchNorm or GroupNorm; weights are never downloaded (an optional local state dict)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn

__all__ = ["BACKBONES", "Backbone", "group_norm", "make_backbone"]


def group_norm(c: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups (the GN paper's and ATSS's setting; fewer when ``c`` is not a
    multiple of 32). Coarser groups on the narrow layers of the small configs (8 channels per
    group) were tried and left the classifier unable to tell two colours apart in the suite's
    toy detection test (mAP50 0.58 against 1.0), so narrow layers keep 32 groups too."""
    g = 32
    while c % g:
        g //= 2
    return nn.GroupNorm(g, c)


class FrozenBN(torchvision.ops.FrozenBatchNorm2d):
    pass


BACKBONES = ("resnet18", "resnet34", "resnet50", "regnet_x_400mf", "regnet_x_800mf",
             "regnet_y_400mf", "regnet_y_800mf", "efficientnet_lite0")


def make_backbone(name: str, norm: str = "gn", weights: str | None = None,
                  in_channels: int = 3) -> nn.Module:
    """C3-C5 of backbone ``name``: :class:`Backbone` (torchvision, random or a local state dict),
    or :class:`~xraybag.learners.efficientnet.EfficientNetLite0` (ImageNet weights by default)."""
    if name == "efficientnet_lite0":
        from xraybag.learners.efficientnet import EfficientNetLite0

        try:
            return EfficientNetLite0(norm, weights, in_channels)
        except ImportError as e:
            raise ValueError(str(e)) from None
    return Backbone(name, norm, weights, in_channels)


class Backbone(nn.Module):
    """C3-C5 of a torchvision ResNet or RegNet (weights=None; optional local state dict)."""

    def __init__(self, name: str, norm: str = "gn", weights: str | None = None, in_channels: int = 3):
        super().__init__()
        norm = {"bn": nn.BatchNorm2d, "frozen_bn": FrozenBN, "gn": group_norm}[norm]
        net = getattr(torchvision.models, name)(weights=None, norm_layer=norm)
        if weights:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, _ = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing:
                raise ValueError(f"{weights}: not a {name} state dict "
                                 f"(missing {len(missing)} keys, e.g. {missing[0]!r})")
        if name.startswith("resnet"):
            stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
            stages = [net.layer1, net.layer2, net.layer3, net.layer4]
        else:
            stem, stages = net.stem, list(net.trunk_output)
        if in_channels != 3:
            old = stem[0]
            new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride,
                            old.padding, bias=old.bias is not None)
            if weights:   # adapt pretrained RGB filters: their channel mean, repeated
                with torch.no_grad():
                    new.weight.copy_(old.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1)
                                     * 3.0 / in_channels)
            stem[0] = new
        self.stem = stem
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = [stage_width(m) for m in stages[1:]]

    def forward(self, x):
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return OrderedDict([("c3", c3), ("c4", c4), ("c5", c5)])


def stage_width(stage: nn.Module) -> int:
    """Output channels of a ResNet or RegNet stage: no convolution inside it is wider."""
    return max(m.out_channels for m in stage.modules() if isinstance(m, nn.Conv2d))
