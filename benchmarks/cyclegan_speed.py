"""Seconds per Cycle-GAN training iteration (batch 1: both generators, both discriminators, all
losses, both updates) at the ``cyclegan`` presets, on random images, with one torch thread.

    python benchmarks/cyclegan_speed.py [--iters 5] [--threads 1] [--presets test,cpu]

Prints one JSON line per preset: median, min and max seconds over ``--iters`` timed iterations
after two warm-up ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from xraybag.learners.cyclegan.pool import ImagePool
from xraybag.learners.cyclegan.synth import PRESETS
from xraybag.learners.cyclegan.trainer import build, step


def time_preset(preset: str, iters: int, ndf: int | None = None) -> dict:
    size, ngf, ndf_p, n_blocks, _ = PRESETS[preset]
    cfg = {"channels": 3, "ngf": ngf, "ndf": ndf or ndf_p, "n_blocks": n_blocks}
    torch.manual_seed(0)
    nets = build(cfg)
    opt_g = torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()], lr=2e-4, betas=(0.5, 0.999))
    d_params = [*nets["D_A"].parameters(), *nets["D_B"].parameters()]
    opt_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
    pools = {"A": ImagePool(50, np.random.default_rng(1)), "B": ImagePool(50, np.random.default_rng(2))}
    secs = []
    for k in range(iters + 2):
        a, b = torch.rand(1, 3, size, size) * 2 - 1, torch.rand(1, 3, size, size) * 2 - 1
        t0 = time.perf_counter()
        step(nets, opt_g, opt_d, pools, d_params, a, b, 10.0, 0.5)
        if k >= 2:
            secs.append(time.perf_counter() - t0)
    return {"preset": preset, "size": size, "ngf": ngf, "ndf": cfg["ndf"], "n_blocks": n_blocks,
            "threads": torch.get_num_threads(), "sec_median": round(statistics.median(secs), 3),
            "sec_min": round(min(secs), 3), "sec_max": round(max(secs), 3), "iters": iters}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--presets", default="test,cpu")
    ap.add_argument("--ndf", type=int, default=None, help="override the presets' discriminator width")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for p in args.presets.split(","):
        print(json.dumps(time_preset(p.strip(), args.iters, args.ndf)), flush=True)


if __name__ == "__main__":
    main()
