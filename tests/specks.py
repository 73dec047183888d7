"""Class-code images full of specks, for the despeckling's tests (CPU, and the GPU's under the
simulator, which imports this file from a subprocess)."""

from __future__ import annotations

import numpy as np


def speckled(rng: np.random.Generator, rows: int, cols: int, lo: float = 10.0, hi: float = 18.0):
    """``(code, z, starved, background)``: Zeff in 6 x 6 blocks near a class boundary (``lo``,
    ``hi``) or far from both, with noise: specks of every size where it crosses a boundary;
    K-edge captures (codes 4, 5); patches of 1 to 16 pixels of one code; starved and background
    pixels (some of code 0)."""
    base = rng.choice([6.0, 9.5, 10.5, 14.0, 17.5, 18.5, 26.0], size=(rows // 6 + 1, cols // 6 + 1))
    z = (np.kron(base, np.ones((6, 6)))[:rows, :cols] + rng.normal(0, 1.2, (rows, cols))).astype(np.float32)
    code = np.where(z > hi, 3, np.where(z > lo, 2, 1)).astype(np.uint8)
    cap = rng.random((rows, cols)) < 0.02
    code[cap] = rng.integers(4, 6, cap.sum())
    for _ in range(3):
        i, j = rng.integers(0, rows - 4), rng.integers(0, cols - 4)
        h, w = rng.integers(1, 5, 2)
        code[i:i + h, j:j + w] = rng.integers(1, 6)
    starved = rng.random((rows, cols)) < 0.04
    background = rng.random((rows, cols)) < 0.04
    code[background & (rng.random((rows, cols)) < 0.5)] = 0
    return code, z, starved, background
