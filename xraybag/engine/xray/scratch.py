"""Buffers a thread keeps for a view's large temporaries, so that the next view reuses them.

A pass that fills a fresh multi-megabyte array pays for its pages as it first writes them: the
kernel's page faults and zeroing. For a 30-object line-scan view on this project's 2-core
machine, the spectral pass's fresh (pixels, 4) float64 sums took ~20 ms of system time a view,
as long as the pass itself. :func:`scratch` hands out the same memory again instead, for arrays
that do not outlive the call that asks for them (what a view returns is still its own).
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def scratch(name: str, shape: int | tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, in memory that this thread
    got for ``name`` before (grown when too small). Its contents are overwritten by the next
    request for ``name`` on this thread, so it is for a temporary that the caller drops before
    it returns; ``name`` says whose it is (``"module.what"``), and two temporaries alive at once
    need two names."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    buf = pool.get(name)
    if buf is None or buf.size < nbytes:
        buf = pool[name] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def release() -> int:
    """Drop this thread's buffers (the memory goes back when nothing else holds it); returns the
    bytes they held."""
    pool = getattr(_local, "pool", None) or {}
    held = sum(b.size for b in pool.values())
    pool.clear()
    return held
