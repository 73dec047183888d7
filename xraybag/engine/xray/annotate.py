"""Labels from the geometric pass: instance maps, masks, boxes, occlusion and difficulty.

An object's mask is where its own path length is non-zero (the amodal footprint: the whole
object, also where others cover it). Its occlusion ratio is the share of its mask where the other
objects (and the bag) attenuate more than it does, at the effective energy of the view; the
difficulty is ``easy`` below ``annotation.hard``, ``hidden`` from ``annotation.hidden``, else
``hard``. The instance map gives each pixel the object that attenuates most there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from xraybag.engine.xray.scratch import scratch
from xraybag.engine.xray.trace import TraceResult

MASK_MIN_MM = 1e-3  # path lengths below this (grazing rays) are not part of a mask


@dataclass
class ObjectLabel:
    index: int  # k: the k-th object of the bag (value in the instance map)
    window: np.ndarray  # (h, w) bool: the mask inside the object's traced window
    origin: tuple[int, int]  # (row, column) of the window's first pixel in the image
    shape: tuple[int, int]  # (rows, cols) of the image
    bbox: list[float]  # COCO [x, y, w, h], pixels (x = column, y = row)
    area: int
    occlusion: float
    difficulty: str

    @property
    def mask(self) -> np.ndarray:
        """The (rows, cols) boolean mask in the whole image."""
        full = np.zeros(self.shape, dtype=bool)
        r0, c0 = self.origin
        h, w = self.window.shape
        full[r0 : r0 + h, c0 : c0 + w] = self.window
        return full

    def rle(self) -> dict:
        """COCO run-length encoding of :attr:`mask`, from the window alone (see :func:`rle_window`)."""
        return rle_window(self.window, self.origin, self.shape)


def attenuation(tr: TraceResult, mu: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Total line integral sum_m mu_m L_m per pixel; ``mu`` per material of ``tr`` (1/mm). Path
    lengths on a GPU (the CUDA tracer's result) are summed there and only the image comes back;
    the CPU tracer's :class:`~.paths.SparsePaths` are summed over their entries, into ``out``
    ((rows, cols) float32) when given."""
    on_gpu = getattr(tr, "device_attenuation", None)
    if on_gpu is not None:
        return on_gpu(mu)
    sp = getattr(tr, "sparse", None)
    if sp is not None:  # the CPU tracer's entries: float32 sums in material order, as on the GPU
        out = np.empty((sp.rows, sp.cols), dtype=np.float32) if out is None else out
        _entry_attenuation(sp.start, sp.count, sp.mat, sp.length, np.asarray(mu, dtype=np.float32), out.reshape(-1))
        return out
    return tr.paths @ np.asarray(mu, dtype=np.float32)


@numba.njit(cache=True, nogil=True)
def _entry_attenuation(start, count, mat, length, mu, out):
    """``out[p] = sum mu[m] L`` over pixel p's (material, length) entries, float32, in their
    (the materials') order."""
    for p in range(out.size):
        acc = np.float32(0.0)
        for q in range(start[p], start[p] + count[p]):
            acc += length[q] * mu[mat[q]]
        out[p] = acc


@numba.njit(cache=True, nogil=True)
def _label_window(paths, mu, total, r0, c0, index, best, instance, mask):
    """One object's window in one pass: its attenuation ``own = paths @ mu`` and mask (total path
    length above :data:`MASK_MIN_MM`, written to ``mask``); where it attenuates more than any
    object before it, ``best`` and ``instance`` take it. Returns the mask's area, how many of its
    pixels the rest (``total - own``) attenuates more, and its bounding rows and columns in the
    window (first, last + 1)."""
    h, w, k_all = paths.shape
    area = 0
    covered = 0
    y0, y1, x0, x1 = h, 0, w, 0
    for i in range(h):
        for j in range(w):
            own = np.float32(0.0)
            length = np.float32(0.0)
            for k in range(k_all):
                v = paths[i, j, k]
                own += v * mu[k]
                length += v
            inside = length > MASK_MIN_MM
            mask[i, j] = inside
            if not inside:
                continue
            r, c = r0 + i, c0 + j
            if own > best[r, c]:
                best[r, c] = own
                instance[r, c] = index
            area += 1
            if total[r, c] - own > own:
                covered += 1
            y0, y1 = min(y0, i), max(y1, i + 1)
            x0, x1 = min(x0, j), max(x1, j + 1)
    return area, covered, y0, y1, x0, x1


def label_objects(
    tr: TraceResult, mu: np.ndarray, hard: float, hidden: float
) -> tuple[np.ndarray, dict[int, ObjectLabel]]:
    """Instance map (uint16) and per-object labels of one view.

    ``mu``: attenuation per material of ``tr.materials`` at the view's effective energy (1/mm).
    Each object's window is one compiled pass (:func:`_label_window`): attenuation, mask, instance
    map, occlusion and box together. The CUDA tracer's result (its windows left on the GPU) is
    labelled there (its ``device_labels``: :func:`.annotate_cuda.label_objects_cuda`).
    """
    on_gpu = getattr(tr, "device_labels", None)  # the CUDA tracer's windows: the pass there
    if on_gpu is not None:
        return on_gpu(mu, hard, hidden)
    sp = getattr(tr, "sparse", None)  # (the total and the best attenuation: the thread's scratch)
    total = attenuation(tr, mu, None if sp is None else scratch("annotate.total", (sp.rows, sp.cols), np.float32))
    rows, cols = total.shape
    mu32 = np.asarray(mu, dtype=np.float32)
    best = scratch("annotate.best", (rows, cols), np.float32)
    best.fill(0.0)
    instance = np.zeros((rows, cols), dtype=np.uint16)
    labels: dict[int, ObjectLabel] = {}
    for ot in tr.objects:
        h, w = ot.paths.shape[:2]
        mask_w = np.empty((h, w), dtype=np.bool_)
        stats = _label_window(
            np.ascontiguousarray(ot.paths, dtype=np.float32), np.ascontiguousarray(mu32[ot.materials]),
            total, ot.r0, ot.c0, ot.index, best, instance, mask_w,
        )
        label = object_label(ot.index, mask_w, (ot.r0, ot.c0), (rows, cols), stats, hard, hidden)
        if label is not None:
            labels[ot.index] = label
    return instance, labels


def object_label(index: int, mask_w: np.ndarray, origin: tuple[int, int], shape: tuple[int, int],
                 stats, hard: float, hidden: float) -> ObjectLabel | None:
    """The label of object ``index`` from its window's pass (:func:`_label_window`'s ``stats``:
    area, pixels the rest attenuates more, first and last + 1 row and column in the window);
    None when its mask is empty."""
    area, covered, y0, y1, x0, x1 = (int(x) for x in stats)
    if area == 0:
        return None
    occl = covered / area
    r0, c0 = origin
    y0, y1, x0, x1 = y0 + r0, y1 + r0, x0 + c0, x1 + c0
    diff = "hidden" if occl >= hidden else "hard" if occl >= hard else "easy"
    return ObjectLabel(index, mask_w, (r0, c0), shape,
                       [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], area, occl, diff)


def rle(mask: np.ndarray) -> dict:
    """COCO run-length encoding (``counts`` as a string) of a boolean mask."""
    from pycocotools import mask as mask_utils

    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(enc["size"][0]), int(enc["size"][1])], "counts": enc["counts"].decode("ascii")}


def rle_window(window: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]) -> dict:
    """COCO run-length encoding of a mask that is zero outside ``window`` (placed at ``origin`` in
    an image of ``shape``), computed from the window alone: the same result as :func:`rle` of the
    whole mask without building it (a view's 30 objects cost ~2 ms instead of ~40 ms).

    COCO counts alternate zero and one runs over the image in column-major order, starting with
    zeros; a run may continue from the bottom of one column to the top of the next.
    """
    from pycocotools import mask as mask_utils

    rows, cols = (int(x) for x in shape)
    r0, c0 = (int(x) for x in origin)
    h, w = window.shape
    if r0 < 0 or c0 < 0 or r0 + h > rows or c0 + w > cols:
        raise ValueError(f"window {window.shape} at {origin} does not fit an image of {shape}")
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = window.T
    jump = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past its end, per column
    col_base = (c0 + np.arange(w, dtype=np.int64))[:, None] * rows + r0
    starts = (col_base + np.arange(h + 1))[jump == 1]
    ends = (col_base + np.arange(h + 1))[jump == -1]
    if starts.size:  # a run ending at an image column's last pixel and one starting the next merge
        joined = ends[:-1] == starts[1:]
        starts = starts[np.concatenate([[True], ~joined])]
        ends = ends[np.concatenate([~joined, [True]])]
    edges = np.empty(2 * starts.size + 2, dtype=np.int64)
    edges[0] = 0
    edges[1:-1:2] = starts
    edges[2:-1:2] = ends
    edges[-1] = rows * cols
    counts = np.diff(edges)
    if counts.size > 1 and counts[-1] == 0:
        counts = counts[:-1]
    enc = mask_utils.frPyObjects({"counts": counts.tolist(), "size": [rows, cols]}, rows, cols)
    return {"size": [rows, cols], "counts": enc["counts"].decode("ascii")}
