"""The Cycle-GAN training loop (Zhu et al. 2017, section 4 "Implementation"): batch 1, Adam
(lr 2e-4, betas 0.5 / 0.999), the learning rate constant until ``decay_start`` and then linearly
down to zero at the last iteration, least-squares GAN loss, cycle loss (lambda 10), identity loss
(0.5 lambda), discriminators updated on the image pools (50 images each). With ``pixel_gan`` > 0
each set also gets a 1x1 pixel discriminator that judges the same images (not the paper's), with
``pixel_bag`` only their bag pixels (:func:`foreground`), with ``pixel_pool`` > 0 learning from a
history of that many pixels of each set (:class:`.pool.PixelPool`). With ``warmup`` > 0 the first
iterations only teach both generators to give back their input (:func:`warmup_step`).

Each iteration takes the next image of set A (a seeded permutation per pass over A) and a random
image of set B, crops both at a random ``size x size`` window at their native resolution (no resize:
the synthesizer translates whole images at their own resolution, so the networks must learn at that
scale; the paper resizes to 286 and crops 256 instead) and flips each left-right with probability
0.5. Set B's images are first resampled by ``target_scale`` (1: as stored), so that both sets are
cropped at one pixel size: a discriminator that sees the target's objects larger than any
generator output can tell them apart by size alone, a difference no fully convolutional generator
can remove, and its gradient then says little about the colours. The draws depend only on
``(seed, iteration)``, so a resumed run sees the images an uninterrupted one would.
``out/checkpoint.pt`` (networks, optimizers, pools with their rng, torch's rng, iteration) is
written atomically every ``checkpoint_every`` iterations and at the end,
``out/weights.pt`` (both generators and the architecture) at the end, and ``out/train_log.jsonl``
gets a line per iteration (the losses, lr, seconds).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xraybag.errors import XraybagError
from xraybag.learners.cyclegan.images import read_item, rescale
from xraybag.learners.cyclegan.losses import cycle_loss, discriminator_loss, identity_loss, lsgan_loss
from xraybag.learners.cyclegan.networks import (
    PatchDiscriminator,
    PixelDiscriminator,
    generator_for,
    init_weights,
)
from xraybag.learners.cyclegan.pool import ImagePool, PixelPool
from xraybag.learners.training import CHECKPOINT, LOG, WEIGHTS, atomic_save

KIND = "xraybag.cyclegan"
#: the keys that fix the networks, the discriminators' optimizer groups and the scale they learn at
#: (a checkpoint must match them to be resumed), and their values in checkpoints written before the
#: key existed
ARCH = ("channels", "ngf", "ndf", "n_blocks", "residual", "pointwise", "target_scale", "pixel_gan", "pixel_lr",
        "signals", "a_max")
ARCH_DEFAULTS = {"residual": False, "pointwise": 0, "target_scale": 1.0, "pixel_gan": 0.0, "pixel_lr": 1.0,
                 "signals": "rgb"}
#: the pixel pools (option ``pixel_pool``): real and generated pixels of each set
PIXEL_POOLS = ("px_real_A", "px_fake_A", "px_real_B", "px_fake_B")


def build(cfg: dict) -> dict[str, torch.nn.Module]:
    """The generators and discriminators; with ``pixel_gan`` > 0 also a 1x1 discriminator per set
    (``P_A``, ``P_B``: :class:`PixelDiscriminator`)."""
    c = int(cfg["channels"])
    nets = {
        "G_AB": generator_for(cfg),
        "G_BA": generator_for(cfg),
        "D_A": PatchDiscriminator(c, cfg["ndf"]),
        "D_B": PatchDiscriminator(c, cfg["ndf"]),
    }
    if float(cfg.get("pixel_gan", 0.0)) > 0:
        nets.update(P_A=PixelDiscriminator(c, cfg["ndf"]), P_B=PixelDiscriminator(c, cfg["ndf"]))
    return nets


def discriminator_groups(nets: dict, pixel_lr: float = 1.0) -> list[dict]:
    """The discriminators' parameter groups: one, or with pixel discriminators and ``pixel_lr`` != 1 a
    second for ``P_A`` and ``P_B`` whose learning rate is ``pixel_lr`` times the others' (its
    ``lr_scale``; the two time-scale rule of Heusel et al. 2017, option ``pixel_lr``)."""
    pixel = [k for k in ("P_A", "P_B") if k in nets]
    rest = [p for k, net in nets.items() if not k.startswith("G_") and k not in pixel for p in net.parameters()]
    if not pixel or pixel_lr == 1.0:
        return [{"params": rest + [p for k in pixel for p in nets[k].parameters()]}]
    return [{"params": rest}, {"params": [p for k in pixel for p in nets[k].parameters()], "lr_scale": pixel_lr}]


def lr_factor(iteration: int, total: int, decay_start: int) -> float:
    """1 before ``decay_start``, then linearly down to 0 at ``total``."""
    if iteration < decay_start:
        return 1.0
    return max(0.0, (total - iteration) / max(1, total - decay_start))


#: a pixel is background when no channel differs from the background colour by more than this
BACKGROUND_TOLERANCE = 0.06
#: windows drawn at most per crop when ``content`` > 0
CONTENT_TRIES = 16


def background_colour(img: np.ndarray) -> np.ndarray:
    """The image's background (a scanner's empty belt): the per-channel median of its border pixels."""
    border = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    return np.median(border, axis=0)


def content_share(win: np.ndarray, background: np.ndarray, tol: float = BACKGROUND_TOLERANCE) -> float:
    """The share of a window's pixels that are not background (farther than ``tol`` in a channel)."""
    return float((np.abs(win - background).max(axis=2) > tol).mean())


def foreground(crop_t: torch.Tensor, background: np.ndarray, tol: float = BACKGROUND_TOLERANCE) -> torch.Tensor:
    """``1 x 1 x H x W`` float mask of a crop's (:func:`crop`'s tensor in [-1, 1]) pixels that are not
    the background colour ``background`` (per channel, in [0, 1]; farther than ``tol`` in a channel)."""
    bg = torch.as_tensor(np.asarray(background, np.float32)).view(1, -1, 1, 1)
    return ((crop_t + 1.0) * 0.5 - bg).abs().amax(dim=1, keepdim=True).gt(tol).float()


def pixels_of(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The pixels of a ``1 x C x H x W`` image where the ``1 x 1 x H x W`` ``mask`` is 1, as ``M x C``
    (detached)."""
    return img.detach()[0].permute(1, 2, 0)[mask[0, 0] > 0]


def masked_lsgan(pred: torch.Tensor, real: bool, mask: torch.Tensor) -> torch.Tensor:
    """:func:`lsgan_loss` over the pixels where ``mask`` is 1 (0 when there are none)."""
    target = 1.0 if real else 0.0
    return (mask * (pred - target) ** 2).sum() / mask.sum().clamp(min=1.0)


def crop(img: np.ndarray, size: int, rng: np.random.Generator, content: float = 0.0,
         tol: float = BACKGROUND_TOLERANCE) -> torch.Tensor:
    """A random ``size x size`` window, flipped left-right with probability 0.5, as a
    ``1 x C x size x size`` tensor in [-1, 1]. With ``content`` > 0, windows are drawn until one has
    at least that share of non-background pixels (:func:`content_share`), at most
    :data:`CONTENT_TRIES`; failing that, the one with the largest share of those drawn."""
    h, w = img.shape[:2]

    def draw() -> tuple[int, int]:
        return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))

    y, x = draw()
    if content > 0:
        background = background_colour(img)
        best = (content_share(img[y : y + size, x : x + size], background, tol), y, x)
        for _ in range(CONTENT_TRIES - 1):
            if best[0] >= content:
                break
            y, x = draw()
            best = max(best, (content_share(img[y : y + size, x : x + size], background, tol), y, x),
                       key=lambda t: t[0])
        _, y, x = best
    win = img[y : y + size, x : x + size]
    if rng.random() < 0.5:
        win = win[:, ::-1]
    t = torch.from_numpy(np.ascontiguousarray(win.transpose(2, 0, 1)))
    return (t * 2.0 - 1.0).unsqueeze(0)


def pick(files_a: list[Path], files_b: list[Path], seed: int, iteration: int) -> tuple[Path, Path, np.random.Generator]:
    """The images of iteration ``iteration`` and the generator of its crops."""
    n_a = len(files_a)
    epoch, k = divmod(iteration, n_a)
    a = files_a[int(np.random.default_rng([seed, 1, epoch]).permutation(n_a)[k])]
    rng = np.random.default_rng([seed, 2, iteration])
    b = files_b[int(rng.integers(0, len(files_b)))]
    return a, b, rng


def train(files_a: list[Path], files_b: list[Path], out: Path, cfg: dict, device: str = "cpu",
          resume: bool = False, progress: bool = True, extra: dict | None = None) -> Path:
    """Train on the image files of sets A and B (checked beforehand: same channels, at least
    ``size`` px) writing into ``out``; return ``out/weights.pt``. ``cfg``: ``channels``, ``size``,
    ``ngf``, ``ndf``, ``n_blocks``, ``iterations``, ``decay_start``, ``lr``, ``beta1``,
    ``lambda_cycle``, ``lambda_identity``, ``pool_size``, ``seed``, ``checkpoint_every``."""
    out = Path(out)
    ckpt_path, weights_path, log_path = out / CHECKPOINT, out / WEIGHTS, out / LOG
    dev = torch.device(device)
    total, decay_start, size = int(cfg["iterations"]), int(cfg["decay_start"]), int(cfg["size"])
    state = None
    if ckpt_path.exists():
        if not resume:
            raise XraybagError("already holds a training checkpoint; pass --resume to continue it or choose "
                               "another output folder", str(out))
        state = load_checkpoint(ckpt_path)
        for key in ARCH:
            was = state["config"].get(key, ARCH_DEFAULTS.get(key))
            if was != cfg.get(key, ARCH_DEFAULTS.get(key)):
                raise XraybagError(f"the checkpoint was trained with {key}={was}, not {cfg.get(key)}", str(ckpt_path))
    torch.manual_seed(int(cfg["seed"]))
    nets = build(cfg)
    for net in nets.values():
        init_weights(net).to(dev)
    betas = (float(cfg["beta1"]), 0.999)
    opt_g = torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()], lr=cfg["lr"], betas=betas)
    d_params = [p for k, net in nets.items() if not k.startswith("G_") for p in net.parameters()]
    opt_d = torch.optim.Adam(discriminator_groups(nets, float(cfg.get("pixel_lr", 1.0))), lr=cfg["lr"], betas=betas)
    pools = {k: ImagePool(cfg["pool_size"], np.random.default_rng([int(cfg["seed"]), 3, i]))
             for i, k in enumerate(("A", "B"))}
    if int(cfg.get("pixel_pool", 0)) > 0 and float(cfg.get("pixel_gan", 0.0)) > 0:
        pools.update({k: PixelPool(int(cfg["pixel_pool"]), int(cfg["channels"]),
                                   np.random.default_rng([int(cfg["seed"]), 4, i]))
                      for i, k in enumerate(PIXEL_POOLS)})
    iteration = 0
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        for k, net in nets.items():
            net.load_state_dict(state[k])
        opt_g.load_state_dict(state["opt_G"])
        opt_d.load_state_dict(state["opt_D"])
        for k, pool in pools.items():
            if f"pool_{k}" in state:  # a pixel pool added on resume starts empty
                pool.load_state_dict(state[f"pool_{k}"])
        torch.set_rng_state(state["torch_rng"])
        iteration = int(state["iteration"])
    elif log_path.exists():
        log_path.unlink()  # a fresh run gets a fresh log

    def snapshot() -> dict:
        return {"kind": KIND, "version": 1, "config": dict(cfg), "iteration": iteration,
                **{k: net.state_dict() for k, net in nets.items()},
                "opt_G": opt_g.state_dict(), "opt_D": opt_d.state_dict(),
                **{f"pool_{k}": pool.state_dict() for k, pool in pools.items()},
                "torch_rng": torch.get_rng_state(), "extra": extra or {}}

    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=min(iteration, total), desc="cyclegan", unit="it", file=sys.stderr,
                       dynamic_ncols=True)
        except ModuleNotFoundError:  # pragma: no cover
            bar = None
    lam, lam_id = float(cfg["lambda_cycle"]), float(cfg["lambda_identity"])
    content = float(cfg.get("content", 0.0))
    tol = float(cfg.get("background_tolerance", BACKGROUND_TOLERANCE))
    scale_b = float(cfg.get("target_scale", 1.0))
    pixel_bag = bool(cfg.get("pixel_bag", False)) and float(cfg.get("pixel_gan", 0.0)) > 0
    with open(log_path, "a") as log:
        while iteration < total:
            t0 = time.perf_counter()
            fa, fb, rng = pick(files_a, files_b, int(cfg["seed"]), iteration)
            img_a, img_b = read_item(fa), rescale(read_item(fb), scale_b)
            real_a = crop(img_a, size, rng, content, tol).to(dev)
            real_b = crop(img_b, size, rng, content, tol).to(dev)
            masks = None
            if pixel_bag:
                masks = (foreground(real_a, background_colour(img_a), tol).to(dev),
                         foreground(real_b, background_colour(img_b), tol).to(dev))
            lr = float(cfg["lr"]) * lr_factor(iteration, total, decay_start)
            for opt in (opt_g, opt_d):
                for g in opt.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
            if iteration < int(cfg.get("warmup", 0)):
                losses = warmup_step(nets, opt_g, real_a, real_b, lam)
            else:
                losses = step(nets, opt_g, opt_d, pools, d_params, real_a, real_b, lam, lam_id,
                              float(cfg.get("pixel_gan", 0.0)), masks)
            iteration += 1
            rec = {"iter": iteration, **{k: round(v, 6) for k, v in losses.items()}, "lr": lr,
                   "sec": round(time.perf_counter() - t0, 4)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if bar is not None:
                bar.set_postfix(G=f"{losses['G']:.3f}", D=f"{losses['D_A'] + losses['D_B']:.3f}")
                bar.update(1)
            if iteration % max(1, int(cfg["checkpoint_every"])) == 0 or iteration == total:
                atomic_save(snapshot(), ckpt_path)
    if bar is not None:
        bar.close()
    atomic_save({"kind": KIND, "version": 1, "config": dict(cfg), "iteration": iteration,
                 "G_AB": nets["G_AB"].state_dict(), "G_BA": nets["G_BA"].state_dict(), "extra": extra or {}},
                weights_path)
    return weights_path


def step(nets: dict, opt_g, opt_d, pools: dict, d_params: list, real_a: torch.Tensor, real_b: torch.Tensor,
         lam: float, lam_id: float, lam_px: float = 0.0,
         masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """One iteration: the generators' update, then the discriminators' on pooled fakes. With
    ``lam_px`` > 0 the pixel discriminators ``P_A``, ``P_B`` judge the same images, their
    least-squares GAN terms weighted by ``lam_px``. With ``masks`` (the foreground of ``real_a`` and
    of ``real_b``: option ``pixel_bag``) they judge only the bag's pixels: a real image's own, and
    those of the latest fake made from it (unpooled, since a pooled fake's mask is not kept). With
    the pixel pools in ``pools`` (option ``pixel_pool``) those pixels are added to them and the pixel
    discriminators learn from as many pixels drawn from the pools as a crop holds."""
    g_ab, g_ba, d_a, d_b = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
    for net in nets.values():
        net.train()
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    for p in d_params:
        p.requires_grad_(False)
    parts = {
        "G_AB": lsgan_loss(d_b(fake_b), True),
        "G_BA": lsgan_loss(d_a(fake_a), True),
        "cycle_A": cycle_loss(rec_a, real_a, lam),
        "cycle_B": cycle_loss(rec_b, real_b, lam),
    }
    if lam_px > 0 and masks is not None:
        parts["px_AB"] = lam_px * masked_lsgan(nets["P_B"](fake_b), True, masks[0])
        parts["px_BA"] = lam_px * masked_lsgan(nets["P_A"](fake_a), True, masks[1])
    elif lam_px > 0:
        parts["px_AB"] = lam_px * lsgan_loss(nets["P_B"](fake_b), True)
        parts["px_BA"] = lam_px * lsgan_loss(nets["P_A"](fake_a), True)
    if lam_id > 0:
        parts["idt_A"] = identity_loss(g_ba(real_a), real_a, lam, lam_id)  # G_BA keeps an A image
        parts["idt_B"] = identity_loss(g_ab(real_b), real_b, lam, lam_id)
    loss_g = sum(parts.values())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)
    pooled_a, pooled_b = pools["A"].query(fake_a), pools["B"].query(fake_b)
    loss_da = discriminator_loss(d_a(real_a), d_a(pooled_a))
    loss_db = discriminator_loss(d_b(real_b), d_b(pooled_b))
    loss_d = loss_da + loss_db
    values = {}
    if lam_px > 0 and "px_real_A" in pools:
        p_a, p_b = nets["P_A"], nets["P_B"]
        m_a, m_b = masks if masks is not None else (torch.ones_like(real_a[:, :1]), torch.ones_like(real_b[:, :1]))
        for key, img, m in (("px_real_A", real_a, m_a), ("px_fake_A", fake_a, m_b),
                            ("px_real_B", real_b, m_b), ("px_fake_B", fake_b, m_a)):
            pools[key].add(pixels_of(img, m))
        k, dev = real_a.shape[-2] * real_a.shape[-1], real_a.device
        loss_pa = loss_pb = torch.zeros((), device=dev)
        if all(len(pools[key]) for key in PIXEL_POOLS):  # not before a bag pixel was seen in each
            def draw(key: str) -> torch.Tensor:
                return pools[key].sample(k).to(dev)
            loss_pa = discriminator_loss(p_a(draw("px_real_A")), p_a(draw("px_fake_A")))
            loss_pb = discriminator_loss(p_b(draw("px_real_B")), p_b(draw("px_fake_B")))
        loss_d = loss_d + loss_pa + loss_pb
        values.update(P_A=float(loss_pa.detach()), P_B=float(loss_pb.detach()))
    elif lam_px > 0 and masks is not None:
        p_a, p_b = nets["P_A"], nets["P_B"]
        loss_pa = 0.5 * (masked_lsgan(p_a(real_a), True, masks[0]) + masked_lsgan(p_a(fake_a.detach()), False, masks[1]))
        loss_pb = 0.5 * (masked_lsgan(p_b(real_b), True, masks[1]) + masked_lsgan(p_b(fake_b.detach()), False, masks[0]))
        loss_d = loss_d + loss_pa + loss_pb
        values.update(P_A=float(loss_pa.detach()), P_B=float(loss_pb.detach()))
    elif lam_px > 0:
        loss_pa = discriminator_loss(nets["P_A"](real_a), nets["P_A"](pooled_a))
        loss_pb = discriminator_loss(nets["P_B"](real_b), nets["P_B"](pooled_b))
        loss_d = loss_d + loss_pa + loss_pb
        values.update(P_A=float(loss_pa.detach()), P_B=float(loss_pb.detach()))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    values.update({k: float(v.detach()) for k, v in parts.items()})
    values.update(G=float(loss_g.detach()), D_A=float(loss_da.detach()), D_B=float(loss_db.detach()))
    for k, v in values.items():
        if not np.isfinite(v):
            raise XraybagError(f"loss {k} is {v}; try a lower lr")
    return values


def warmup_step(nets: dict, opt_g, real_a: torch.Tensor, real_b: torch.Tensor, lam: float) -> dict[str, float]:
    """One warm-up iteration (option ``warmup``): each generator learns to give back images of
    both sets, ``lam * (mean|G(a) - a| + mean|G(b) - b|)`` for ``G_AB`` and for ``G_BA``; the
    discriminators and the pools are left alone."""
    for net in nets.values():
        net.train()
    parts = {k: cycle_loss(nets[k](real_a), real_a, lam) + cycle_loss(nets[k](real_b), real_b, lam)
             for k in ("G_AB", "G_BA")}
    loss = parts["G_AB"] + parts["G_BA"]
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    values = {f"warmup_{k}": float(v.detach()) for k, v in parts.items()}
    values.update(G=float(loss.detach()), D_A=0.0, D_B=0.0)
    for k, v in values.items():
        if not np.isfinite(v):
            raise XraybagError(f"loss {k} is {v}; try a lower lr")
    return values


def load_checkpoint(path: Path, what: str = "checkpoint") -> dict[str, Any]:
    """A cyclegan checkpoint or weights file; one-line error when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise XraybagError(f"cannot read the {what}: {type(e).__name__}: {e}", str(path)) from None
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise XraybagError(f"is not a cyclegan {what} (written by 'xraybag learn train cyclegan')", str(path))
    return state
