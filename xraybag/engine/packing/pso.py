"""The refinement of DEBISim's packer: a small particle swarm, and fast Euler rotations for it."""

from __future__ import annotations

import math
import time

import numpy as np


def pso(cost, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator, particles: int = 10,
         iterations: int = 8, deadline: float = math.inf):
    """A small particle swarm (inertia 0.6, c1 = c2 = 1.5) minimising ``cost`` in the box [lo, hi].

    Returns every evaluated (value, point) and the best point."""
    d = len(lo)
    x = rng.uniform(lo, hi, size=(particles, d))
    x[0] = 0.5 * (lo + hi)  # the resting pose itself
    v = rng.uniform(-(hi - lo), hi - lo, size=(particles, d)) * 0.2
    f = np.array([cost(p) for p in x])
    pbest, pf = x.copy(), f.copy()
    seen = [(float(fv), p.copy()) for fv, p in zip(f, x)]
    for _ in range(iterations):
        if time.perf_counter() > deadline:
            break
        g = pbest[int(np.argmin(pf))]
        r1, r2 = rng.random((particles, d)), rng.random((particles, d))
        v = 0.6 * v + 1.5 * r1 * (pbest - x) + 1.5 * r2 * (g - x)
        x = np.clip(x + v, lo, hi)
        f = np.array([cost(p) for p in x])
        better = f < pf
        pbest[better], pf[better] = x[better], f[better]
        seen += [(float(fv), p.copy()) for fv, p in zip(f, x)]
    return seen, pbest[int(np.argmin(pf))]
