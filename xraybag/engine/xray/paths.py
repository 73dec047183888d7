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
from numba.cpython.unsafe.numbers import trailing_zeros


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
    order, ``mat`` (the material's index) and ``length`` float32 (mm, none of them 0). The same
    numbers as the dense (rows, cols, materials) image (:meth:`dense`), in a few entries a pixel
    instead of one per material of the bag. The integers are as small as the sizes allow
    (:func:`entry_types`): fresh pages cost a view more than its arithmetic does."""

    rows: int
    cols: int
    n_materials: int
    start: np.ndarray  # (rows * cols,) int32 (int64 past 2**31 entries)
    count: np.ndarray  # (rows * cols,) int8 (wider for more materials)
    mat: np.ndarray  # int8 (wider for more materials)
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
        count = nonzero.sum(axis=1)
        start = np.concatenate([[0], np.cumsum(count[:-1], dtype=np.int64)]) if count.size else np.zeros(0, np.int64)
        wide, small = entry_types(m, int(count.sum()))
        return cls(rows, cols, m, start.astype(wide), count.astype(small), np.nonzero(nonzero)[1].astype(small),
                   flat[nonzero])

    def dense(self) -> np.ndarray:
        """The (rows, cols, materials) float32 image."""
        out = np.zeros((self.rows * self.cols, self.n_materials), dtype=np.float32)
        _scatter_entries(self.start, self.count, self.mat, self.length, out)
        return out.reshape(self.shape)


def entry_types(n_materials: int, entries: int) -> tuple[type, type]:
    """The integer types of :class:`SparsePaths`: ``start``'s (int32, or int64 for 2**31
    entries or more), and ``count``'s and ``mat``'s (int8, int16 or int32, as ``n_materials``
    needs; signed, so that numba's arithmetic on them stays in integers)."""
    small = np.int8 if n_materials <= 127 else np.int16 if n_materials <= 32767 else np.int32
    return (np.int32 if entries < 2**31 else np.int64), small


@numba.njit(cache=True, nogil=True)
def _scatter_entries(start, count, mat, length, out):
    for p in range(count.size):
        for q in range(start[p], start[p] + count[p]):
            out[p, mat[q]] = length[q]


@numba.njit(cache=True, nogil=True)
def _row_entries(flat, win, mat_off, mats, rows, cols, n_materials, start, count, mat, length, own):
    """The entries of :func:`sparse_totals`, a row of the image at a time; returns how many.

    Every object whose window holds row ``i``, in order, adds each of its slots' path lengths
    into a dense (materials, cols) float32 row, in float64 rounded to float32 (a length under
    1e-9 mm adds 0, which leaves the sum as it was, and sets no bit), and sets the material's bit
    of the column in ``mask``. The row's pixels then take their entries in the materials' order
    (the set bits, lowest first) into ``mat`` and ``length`` one after another, from ``start``
    (``count`` of them), and the dense row is cleared where it was used. A slot's loop runs over
    a window row's pixels with no branch, so it vectorises. Where ``own`` has elements, it gets
    :func:`own_lengths` of ``flat`` in the same pass."""
    keep = own.size > 0
    n_words = (n_materials + 63) // 64
    acc = np.zeros((n_materials, cols), dtype=np.float32)
    mask = np.zeros((n_words, cols), dtype=np.uint64)
    one = np.uint64(1)
    none = np.uint64(0)
    q = 0
    for i in range(rows):
        for o in range(win.shape[0]):
            r0, c0, h, w, nk, off = win[o, 0], win[o, 1], win[o, 2], win[o, 3], win[o, 4], win[o, 5]
            if i < r0 or i >= r0 + h:
                continue
            base = off + (i - r0) * w * nk
            for k in range(nk):
                m = mats[mat_off[o] + k]
                a = acc[m, c0 : c0 + w]
                bits = mask[m >> 6, c0 : c0 + w]
                bit = one << np.uint64(m & 63)
                for j in range(w):
                    v = flat[base + j * nk + k]
                    small = v < 1e-9  # (a NaN is added, as a length)
                    if keep:
                        own[base + j * nk + k] = 0.0 if small else np.float32(v)
                    a[j] = np.float32(np.float64(a[j]) + (0.0 if small else v))
                    bits[j] |= none if small else bit
        row = i * cols
        for c in range(cols):
            start[row + c] = q
            for wd in range(n_words):
                b = mask[wd, c]
                while b != 0:
                    m = wd * 64 + trailing_zeros(b)
                    mat[q] = m
                    length[q] = acc[m, c]
                    acc[m, c] = 0.0
                    q += 1
                    b &= b - one
                mask[wd, c] = 0
            count[row + c] = q - start[row + c]
    return q


def sparse_totals(flat: np.ndarray, win: np.ndarray, mat_off: np.ndarray, mats: np.ndarray, rows: int,
                  cols: int, n_materials: int, own: np.ndarray | None = None) -> SparsePaths:
    """The view's :class:`SparsePaths` from the objects' windows in ``flat`` (:func:`window_table`):
    the numbers of adding the windows into a dense (rows, cols, materials) float32 image one
    after another (each addition in float64, rounded to float32), a row at a time
    (:func:`_row_entries`); the entries lie pixel after pixel. ``own`` (float32, the size of
    ``flat``), when given, gets the objects' own lengths (:func:`own_lengths`) in the same pass."""
    n = rows * cols
    room = int(flat.size)  # at most an entry a slot (only the pages written are touched)
    wide, small = entry_types(n_materials, room)
    start = np.empty(n, dtype=wide)
    count = np.empty(n, dtype=small)
    mat = np.empty(room, dtype=small)
    length = np.empty(room, dtype=np.float32)
    used = _row_entries(flat, win, mat_off, mats, rows, cols, n_materials, start, count, mat, length,
                        np.empty(0, np.float32) if own is None else own)
    return SparsePaths(rows, cols, n_materials, start, count, mat[:used], length[:used])


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
