"""The Cycle-GAN networks (Zhu et al. 2017, appendix 7.2), written from the paper's description.

Generator (ResNet, Johnson et al.): ``c7s1-ngf, d(2 ngf), d(4 ngf), R(4 ngf) x n_blocks,
u(2 ngf), u(ngf), c7s1-C`` where ``c7s1-k`` is a 7x7 stride-1 convolution with k filters,
``dk`` a 3x3 stride-2 convolution, ``Rk`` a residual block of two 3x3 convolutions and ``uk`` a
3x3 fractional-strided (transposed, stride 1/2) convolution; instance norm and ReLU after every
convolution but the last, which is followed by tanh; reflection padding before the 7x7 and the
residual convolutions. The paper uses 6 blocks at 128 px and 9 at 256 px with ngf 64. It is fully
convolutional and keeps the height and width of any input whose sides are multiples of 4.

Discriminator (70x70 PatchGAN, Isola et al.): ``C64-C128-C256-C512`` (4x4 convolutions, stride 2
for the first three and 1 for C512, padding 1, instance norm but not on C64, leaky ReLU 0.2), then a
4x4 stride-1 convolution to one channel: one real/fake score per 70x70 patch (30x30 scores for a
256x256 input). Weights are drawn from N(0, 0.02) as in the paper's code; convolutions followed by
instance norm keep their bias (instance norm here has no affine parameters).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """``in_ch`` channels in [-1, 1] -> ``out_ch`` channels in [-1, 1], same height and width
    (sides multiples of 4).

    ``residual`` (not the paper's; ``in_ch == out_ch``): the network's tanh output is a change
    added to the input, ``clamp(x + G(x), -1, 1)``. Instance norm after the first convolution
    discards each feature map's mean, so a crop of one flat colour (a bag's organic region, the
    empty belt) reaches the rest of the network as zeros whatever its colour; the paper's generator
    must then guess the colour back, and on X-ray images it loses the rarer ones (metal's blue). A
    residual generator keeps the input's colours; :func:`init_weights` zeroes its last
    convolution, so it starts as the identity.

    ``pointwise`` > 0 (not the paper's; residual generators only): the change also gets a term that
    depends on each pixel's own colour alone, ``clamp(x + G(x) + P(x), -1, 1)``, ``P`` three 1x1
    convolutions (``pointwise`` filters, leaky ReLU 0.2, tanh out) without normalisation. Every
    instance norm in ``G`` sees colours only relative to the crop's own mean and spread, so the
    change ``G`` adds to a flat region cannot depend on that region's absolute colour: a light
    organic and a dark one, each filling its crop, get the same change. Another vendor's colour
    table is mostly a function of the pixel's colour (how light an organic is drawn, how saturated),
    which ``P`` can learn; its last convolution starts at zero, so the generator still starts as
    the identity."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9, residual: bool = False,
                 pointwise: int = 0):
        super().__init__()
        if residual and in_ch != out_ch:
            raise ValueError("a residual generator needs as many output channels as input channels")
        if pointwise and not residual:
            raise ValueError("a pointwise colour term needs a residual generator")
        self.residual = bool(residual)
        self.pointwise = None
        if pointwise:
            w = int(pointwise)
            self.pointwise = nn.Sequential(nn.Conv2d(in_ch, w, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(w, w, 1),
                                           nn.LeakyReLU(0.2, True), nn.Conv2d(w, out_ch, 1), nn.Tanh())
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):  # d2ngf, d4ngf
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):  # u2ngf, ungf
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        if self.pointwise is not None:
            y = y + self.pointwise(x)
        return (x + y).clamp(-1.0, 1.0) if self.residual else y


def generator_for(cfg: dict) -> ResnetGenerator:
    """The generator a cyclegan config (a checkpoint's or weights file's ``config``) describes;
    configs written before ``residual`` existed are the paper's generator."""
    c = int(cfg["channels"])
    return ResnetGenerator(c, c, cfg["ngf"], cfg["n_blocks"], bool(cfg.get("residual", False)),
                           int(cfg.get("pointwise", 0)))


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: ``in_ch`` channels -> a map of real/fake scores (no sigmoid: the
    least-squares loss takes the raw score)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for mult, stride in ((2, 2), (4, 2), (8, 1)):  # C128, C256 (stride 2), C512 (stride 1)
            layers += [nn.Conv2d(ch, ndf * mult, 4, stride=stride, padding=1), nn.InstanceNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
            ch = ndf * mult
        layers += [nn.Conv2d(ch, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """A 1x1 PixelGAN (Isola et al. 2017, section 4.4: "encourages greater color diversity but has
    no effect on spatial statistics"): ``in_ch`` channels -> one real/fake score per pixel, from
    that pixel's colour alone (1x1 convolutions ``ndf``, ``2 ndf``, 1 with leaky ReLU 0.2). Unlike
    pix2pix's it has no normalisation: with batch 1, a norm over the crop would hide the absolute
    colour the score must judge. Not part of the Cycle-GAN paper (option ``pixel_gan``): it judges
    the colour table alone, a cue a 70x70 PatchGAN may leave aside for texture and noise."""

    def __init__(self, in_ch: int = 3, ndf: int = 64):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(in_ch, ndf, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(ndf, 2 * ndf, 1),
                                   nn.LeakyReLU(0.2, True), nn.Conv2d(2 * ndf, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def receptive_field(disc: nn.Module) -> int:
    """The receptive field in pixels of one output score (70 for the 70x70 PatchGAN)."""
    rf, jump = 1, 1
    for m in disc.model:
        if isinstance(m, nn.Conv2d):
            rf += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return rf


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Convolution weights from N(0, gain), biases zero (the paper's initialisation); a residual
    generator's last convolution (and its pointwise term's) zero, so that it starts as the identity.
    The pointwise term's first two convolutions get Kaiming-normal weights instead: a 1x1 stack at
    N(0, 0.02) would pass almost nothing of the colour on."""
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for m in convs:
        nn.init.normal_(m.weight, 0.0, gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    if getattr(net, "residual", False):
        main = [m for m in net.model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        nn.init.zeros_(main[-1].weight)
    point = getattr(net, "pointwise", None)
    if point is not None:
        pconvs = [m for m in point if isinstance(m, nn.Conv2d)]
        for m in pconvs[:-1]:
            nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
        nn.init.zeros_(pconvs[-1].weight)
    return net
