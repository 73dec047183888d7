"""Iterative CT reconstruction: SIRT in ASTRA's form and CGLS, on any projector with
``forward(vol) -> sino`` and ``back(sino) -> vol`` (by default :class:`.project.Projector`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

Progress = Callable[[int, int], None] | None


def _tick(progress, done, total):
    if progress is not None:
        progress(done, total)


def default_projector(geom, grid):
    """ASTRA's CUDA projector when a GPU is there, else a GPU cupy one, else the numba one."""
    from xraybag.engine.ct.project import Projector, available_backends

    have = available_backends()
    backend = next((b for b in ("astra", "cupy") if b in have), "numba")
    return Projector(geom, grid, backend)


def sirt(sino: np.ndarray, projector, iterations: int = 50, x0: np.ndarray | None = None,
         nonneg: bool = True, progress: Progress = None, history: list | None = None,
         eps: float = 1e-6) -> np.ndarray:
    """SIRT (ASTRA's form): ``x += C A^T R (b - A x)``, ``R = 1/(A 1)``, ``C = 1/(A^T 1)``.

    ``projector`` has ``forward(vol) -> sino`` and ``back(sino) -> vol``; ``history`` (a list)
    receives ``||b - A x||`` before every update and after the last one.
    """
    b = np.asarray(sino, dtype=np.float32)
    x = None if x0 is None else np.array(x0, dtype=np.float32)
    # row and column sums
    probe = projector.back(np.zeros_like(b))
    ones_v = np.ones_like(np.asarray(probe, dtype=np.float32))
    rs = np.asarray(projector.forward(ones_v), dtype=np.float32)
    cs = np.asarray(projector.back(np.ones_like(b)), dtype=np.float32)
    Rw = np.where(rs > eps, 1.0 / np.maximum(rs, eps), 0.0).astype(np.float32)
    Cw = np.where(cs > eps, 1.0 / np.maximum(cs, eps), 0.0).astype(np.float32)
    if x is None:
        x = np.zeros_like(ones_v)
    for it in range(int(iterations)):
        r = b - np.asarray(projector.forward(x), dtype=np.float32)
        if history is not None:
            history.append(float(np.linalg.norm(r)))
        x += Cw * np.asarray(projector.back(Rw * r), dtype=np.float32)
        if nonneg:
            np.maximum(x, 0.0, out=x)
        _tick(progress, it + 1, iterations)
    if history is not None:
        history.append(float(np.linalg.norm(b - np.asarray(projector.forward(x)))))
    return x


def cgls(sino: np.ndarray, projector, iterations: int = 20, x0: np.ndarray | None = None,
         progress: Progress = None, history: list | None = None) -> np.ndarray:
    """CGLS: conjugate gradients on ``A^T A x = A^T b`` (needs ``back`` = exact adjoint)."""
    b = np.asarray(sino, dtype=np.float64)
    if x0 is None:
        x = np.zeros_like(np.asarray(projector.back(np.zeros_like(b, dtype=np.float32)),
                                     dtype=np.float64))
        r = b.copy()
    else:
        x = np.array(x0, dtype=np.float64)
        r = b - np.asarray(projector.forward(x.astype(np.float32)), dtype=np.float64)
    s = np.asarray(projector.back(r.astype(np.float32)), dtype=np.float64)
    p = s.copy()
    gamma = float(np.vdot(s, s))
    for it in range(int(iterations)):
        if history is not None:
            history.append(float(np.linalg.norm(r)))
        if gamma <= 0:
            break
        qv = np.asarray(projector.forward(p.astype(np.float32)), dtype=np.float64)
        qq = float(np.vdot(qv, qv))
        if qq <= 0:
            break
        alpha = gamma / qq
        x += alpha * p
        r -= alpha * qv
        s = np.asarray(projector.back(r.astype(np.float32)), dtype=np.float64)
        g_new = float(np.vdot(s, s))
        p = s + (g_new / gamma) * p
        gamma = g_new
        _tick(progress, it + 1, iterations)
    if history is not None:
        history.append(float(np.linalg.norm(r)))
    return x.astype(np.float32)
