"""Which device traces the 2D views and runs their spectral pass: ``xraybag render --device
auto|cpu|cuda``.

The CUDA tracer (:mod:`xraybag.engine.xray.trace_cuda`) joins
:data:`xraybag.engine.xray.trace.BACKENDS` as "cuda", and the CUDA spectral pass
(:mod:`xraybag.engine.xray.detect_cuda`) :data:`xraybag.engine.xray.detect.SPECTRAL`, once
:func:`probe_cuda` finds a GPU (or numba's CUDA simulator); probing initialises the CUDA driver, so it is done on demand, never at
import.
"""

from __future__ import annotations

import numba

from xraybag.engine.xray.trace import BACKENDS

_CUDA_PROBED = False


def cuda_problem() -> str | None:
    """Why the CUDA backend cannot run here (one phrase), or None when numba sees a CUDA GPU
    (or its simulator, NUMBA_ENABLE_CUDASIM=1). Probed on demand, never at import: it
    initialises the CUDA driver."""
    try:
        from numba import cuda
    except ImportError as e:  # pragma: no cover - numba without its CUDA target
        return f"numba.cuda cannot be imported ({e})"
    if not cuda.is_available():
        return "no CUDA GPU found (numba.cuda.is_available() is false)"
    return None


DEVICES = ("auto", "cpu", "cuda")


def backend_for_device(device: str) -> str:
    """The tracing backend for ``xraybag render --device``: "cpu" is the numba tracer, "cuda"
    the GPU one (an :class:`~xraybag.errors.XraybagError` where there is no GPU), "auto" the GPU
    one where numba finds a real GPU (never the CUDA simulator), else the CPU one."""
    from xraybag.errors import XraybagError

    if device not in DEVICES:
        raise XraybagError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if device == "cpu":
        return "numba"
    if device == "auto":
        if numba.config.ENABLE_CUDASIM or not _may_have_gpu() or not probe_cuda():
            return "numba"
        return "cuda"
    if not probe_cuda():
        raise XraybagError(f"--device cuda: {cuda_problem()}; use --device cpu or auto")
    return "cuda"


def _may_have_gpu() -> bool:
    """False where no GPU can be present: on Linux, no NVIDIA (or WSL GPU) device node. Spares
    ``--device auto`` numba.cuda's import and driver probe (about 0.5 s) on CPU-only machines."""
    import glob
    import sys

    if not sys.platform.startswith("linux"):
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/dxg"))


def probe_cuda() -> bool:
    """Register ``BACKENDS["cuda"]`` (the tracer), ``detect.SPECTRAL["cuda"]`` (the spectral
    pass), ``detect.DETECT_VIEW["cuda"]`` (a 2D view's whole detection) and
    ``colour.PSEUDO_COLOUR["cuda"]`` (pseudo-colour) when
    :func:`cuda_problem` finds none; True when registered."""
    global _CUDA_PROBED  # noqa: PLW0603 - probed once per process
    if not _CUDA_PROBED:
        _CUDA_PROBED = True
        if cuda_problem() is None:
            from xraybag.engine.xray.colour import PSEUDO_COLOUR
            from xraybag.engine.xray.colour_cuda import pseudo_colour_cuda
            from xraybag.engine.xray.detect import DETECT_VIEW, SPECTRAL
            from xraybag.engine.xray.detect_cuda import (
                dense_signals_cuda,
                detect_view_cuda,
            )
            from xraybag.engine.xray.trace_cuda import trace_cuda

            BACKENDS["cuda"] = trace_cuda
            SPECTRAL["cuda"] = dense_signals_cuda
            DETECT_VIEW["cuda"] = detect_view_cuda
            PSEUDO_COLOUR["cuda"] = pseudo_colour_cuda
    return "cuda" in BACKENDS
