"""A view's path lengths as the tracers give them: per object over its window
(:class:`ObjectTrace`), and per pixel over the whole image (:class:`TraceResult`), either as a
dense (rows, cols, materials) image or, from the CPU tracer, as each pixel's few (material,
length) entries (:class:`SparsePaths`): a bag of 23 materials has one to three in most pixels.

The objects' windows share one flat float64 buffer (:func:`window_table`), which both tracers
fill; :func:`sparse_totals` adds them into the pixels' entries object by object, each addition in
float64 rounded to float32, so the numbers are those of adding them into a dense image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numba
import numpy as np


@dataclass
class ObjectTrace:
    """Path lengths (mm) of one object over its window of the image, one plane per material."""

    index: int
    r0: int
    c0: int
    paths: np.ndarray  # (h, w, k) float32
    materials: list[int]  # indices into TraceResult.materials

    def total(self) -> np.ndarray:
        return self.paths.sum(axis=2)

    def full(self, rows: int, cols: int, weights: np.ndarray | None = None) -> np.ndarray:
        """The object's (weighted) path length as a full (rows, cols) float64 image."""
        out = np.zeros((rows, cols))
        w = np.ones(len(self.materials)) if weights is None else weights
        h, wd = self.paths.shape[:2]
        out[self.r0 : self.r0 + h, self.c0 : self.c0 + wd] = self.paths @ w
        return out


@dataclass
class TraceResult:
    materials: list[str]
    paths: np.ndarray  # (rows, cols, M) float32, mm of each material along each ray
    objects: list[ObjectTrace]
    seconds: float = 0.0


def window_table(plans: list) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The objects' windows in one flat float64 buffer: ``win`` (objects, 6) int64 rows (r0, c0,
    h, w, slots, offset of the window's (h, w, slots) block), the buffer's size, and the slots'
    materials ``mats[mat_off[o] + k]`` (indices into the trace's materials)."""
    win = np.zeros((len(plans), 6), dtype=np.int64)
    offset = 0
    for o, plan in enumerate(plans):
        win[o] = plan.r0, plan.c0, plan.h, plan.w, len(plan.mats), offset
        offset += plan.h * plan.w * len(plan.mats)
    mats = np.concatenate([np.asarray(p.mats, dtype=np.int64) for p in plans] or [np.zeros(0, np.int64)])
    mat_off = np.concatenate([[0], np.cumsum([len(p.mats) for p in plans])]).astype(np.int64)
    return win, offset, mats, mat_off


@numba.njit(cache=True, nogil=True)
def own_lengths(buf, out):
    """An object's path lengths as it keeps them (float32): those under 1e-9 mm (the round-off of
    grazing rays included) are 0."""
    for i in range(buf.size):
        v = buf[i]
        out[i] = 0.0 if v < 1e-9 else np.float32(v)


@dataclass
class SparsePaths:
    """A view's path lengths per pixel as a list of (material, length) entries: pixel ``p``
    (``row * cols + col``) has ``count[p]`` entries from ``start[p]``, in increasing material
    order, ``mat`` int32 and ``length`` float32 (mm, none of them 0). The same numbers as the
    dense (rows, cols, materials) image (:meth:`dense`), in a few entries a pixel instead of one
    per material of the bag."""

    rows: int
    cols: int
    n_materials: int
    start: np.ndarray  # (rows * cols,) int64
    count: np.ndarray  # (rows * cols,) int32
    mat: np.ndarray  # int32
    length: np.ndarray  # float32

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.rows, self.cols, self.n_materials)

    @classmethod
    def from_dense(cls, paths: np.ndarray) -> SparsePaths:
        """The entries of a dense (rows, cols, materials) image: its non-zero path lengths."""
        rows, cols, m = paths.shape
        flat = np.ascontiguousarray(paths, dtype=np.float32).reshape(rows * cols, m)
        nonzero = flat != 0
        count = nonzero.sum(axis=1).astype(np.int32)
        start = np.concatenate([[0], np.cumsum(count[:-1], dtype=np.int64)]) if count.size else np.zeros(0, np.int64)
        return cls(rows, cols, m, start.astype(np.int64), count, np.nonzero(nonzero)[1].astype(np.int32), flat[nonzero])

    def dense(self) -> np.ndarray:
        """The (rows, cols, materials) float32 image."""
        out = np.zeros((self.rows * self.cols, self.n_materials), dtype=np.float32)
        _scatter_entries(self.start, self.count, self.mat, self.length, out)
        return out.reshape(self.shape)


@numba.njit(cache=True, nogil=True)
def _scatter_entries(start, count, mat, length, out):
    for p in range(count.size):
        for q in range(start[p], start[p] + count[p]):
            out[p, mat[q]] = length[q]


@numba.njit(cache=True, nogil=True)
def _entry_room(win, rows, cols, n_materials):
    """Where each pixel's entries start (n + 1,) int64: room for a slot of every object window
    that holds the pixel, at most one a material (summed over the windows by a 2-D difference
    image and its running sums, not read from the lengths: some of the room stays unused)."""
    diff = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    for o in range(win.shape[0]):
        r0, c0, h, w, nk = win[o, 0], win[o, 1], win[o, 2], win[o, 3], win[o, 4]
        diff[r0, c0] += nk
        diff[r0, c0 + w] -= nk
        diff[r0 + h, c0] -= nk
        diff[r0 + h, c0 + w] += nk
    start = np.zeros(rows * cols + 1, dtype=np.int64)
    above = np.zeros(cols, dtype=np.int64)  # the room of the row above, column by column
    total = 0
    for i in range(rows):
        run = 0
        for j in range(cols):
            run += diff[i, j]
            above[j] += run
            total += min(above[j], n_materials)
            start[i * cols + j + 1] = total
    return start


@numba.njit(cache=True, nogil=True)
def _add_entries(flat, win, mat_off, mats, cols, start, count, mat, length, own):
    """Every object, in order, adds each of its slots' path lengths of 1e-9 mm or more to its
    pixel's entry for that material, in float64 rounded to float32 each time; a new entry
    starts at 0 and goes in its place in the materials' order. Where ``own`` has elements, it
    gets :func:`own_lengths` of ``flat`` in the same pass."""
    keep = own.size > 0
    for o in range(win.shape[0]):
        r0, c0, h, w, nk, off = win[o, 0], win[o, 1], win[o, 2], win[o, 3], win[o, 4], win[o, 5]
        for i in range(h):
            for j in range(w):
                p = (r0 + i) * cols + c0 + j
                base = off + (i * w + j) * nk
                for k in range(nk):
                    v = flat[base + k]
                    if keep:
                        own[base + k] = 0.0 if v < 1e-9 else np.float32(v)
                    if v < 1e-9:
                        continue
                    m = mats[mat_off[o] + k]
                    q = start[p]
                    q1 = q + count[p]
                    while q < q1 and mat[q] < m:
                        q += 1
                    if q < q1 and mat[q] == m:
                        length[q] = np.float32(np.float64(length[q]) + v)
                        continue
                    for t in range(q1, q, -1):  # room for it: the larger materials one on
                        mat[t] = mat[t - 1]
                        length[t] = length[t - 1]
                    mat[q] = m
                    length[q] = np.float32(np.float64(np.float32(0.0)) + v)
                    count[p] += 1


def sparse_totals(flat: np.ndarray, win: np.ndarray, mat_off: np.ndarray, mats: np.ndarray, rows: int,
                  cols: int, n_materials: int, own: np.ndarray | None = None) -> SparsePaths:
    """The view's :class:`SparsePaths` from the objects' windows in ``flat`` (:func:`window_table`):
    the numbers of adding the windows into a dense (rows, cols, materials) float32 image one
    after another (each addition in float64, rounded to float32). ``own`` (float32, the size of
    ``flat``), when given, gets the objects' own lengths (:func:`own_lengths`) in the same pass."""
    start = _entry_room(win, rows, cols, n_materials)
    count = np.zeros(rows * cols, dtype=np.int32)
    mat = np.empty(start[-1], dtype=np.int32)
    length = np.empty(start[-1], dtype=np.float32)
    _add_entries(flat, win, mat_off, mats, cols, start, count, mat, length,
                 np.empty(0, np.float32) if own is None else own)
    return SparsePaths(rows, cols, n_materials, start[:-1], count, mat, length)


class LazyTraceResult(TraceResult, ABC):
    """A :class:`TraceResult` that holds its path lengths in another form and makes the dense
    ``paths`` image on first use (:meth:`_make_paths`)."""

    _made = None

    @abstractmethod
    def _make_paths(self) -> np.ndarray:
        """The dense (rows, cols, materials) float32 image."""

    @property
    def paths(self) -> np.ndarray:
        if self._made is None:
            self._made = self._make_paths()
        return self._made

    @paths.setter
    def paths(self, value) -> None:
        if value is not None:
            self._made = value


class SparseTraceResult(LazyTraceResult):
    """A :class:`TraceResult` whose path lengths are :class:`SparsePaths` (``sparse``), as the
    CPU's detection and labels read them; ``paths`` makes the dense image on first use."""

    def __init__(self, materials: list[str], sparse: SparsePaths, objects: list, seconds: float = 0.0):
        self.sparse = sparse
        super().__init__(materials, None, objects, seconds)

    def _make_paths(self) -> np.ndarray:
        return self.sparse.dense()
