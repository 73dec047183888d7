"""Column occupancy of triangle meshes: exact vertical extents per (x, y) column.

A vertical ray through the centre of every column of a regular grid crosses a closed mesh in
exact intervals (the tracer's idea, here along z only). For packing we keep, per column, the
lowest and the highest crossing: ``bottom`` and ``top`` (``+inf`` / ``-inf`` where the ray misses).
A bag's contents seen from above are then a height map (the top of everything in each column), the
2.5-D occupancy grid the heuristic and physics packers drop objects onto.

Lengths in mm, bag frame (interior x in [-sx/2, sx/2], y in [-sy/2, sy/2], z in [0, sz]).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.ndimage import maximum_filter, minimum_filter


@njit(cache=True)
def _columns(v, f, x0, y0, h, bottom, top):  # pragma: no cover - compiled
    nx, ny = bottom.shape
    for t in range(f.shape[0]):
        a, b, c = f[t, 0], f[t, 1], f[t, 2]
        ax, ay, az = v[a, 0], v[a, 1], v[a, 2]
        bx, by, bz = v[b, 0], v[b, 1], v[b, 2]
        cx, cy, cz = v[c, 0], v[c, 1], v[c, 2]
        d = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
        if abs(d) < 1e-12:
            continue  # a vertical triangle: its neighbours give the crossings
        i0 = max(0, int(math.ceil((min(ax, bx, cx) - x0) / h - 0.5)))
        i1 = min(nx - 1, int(math.floor((max(ax, bx, cx) - x0) / h - 0.5)))
        j0 = max(0, int(math.ceil((min(ay, by, cy) - y0) / h - 0.5)))
        j1 = min(ny - 1, int(math.floor((max(ay, by, cy) - y0) / h - 0.5)))
        for i in range(i0, i1 + 1):
            px = x0 + (i + 0.5) * h
            for j in range(j0, j1 + 1):
                py = y0 + (j + 0.5) * h
                w1 = ((px - ax) * (cy - ay) - (cx - ax) * (py - ay)) / d
                w2 = ((bx - ax) * (py - ay) - (px - ax) * (by - ay)) / d
                w0 = 1.0 - w1 - w2
                if w0 >= -1e-9 and w1 >= -1e-9 and w2 >= -1e-9:
                    z = w0 * az + w1 * bz + w2 * cz
                    if z < bottom[i, j]:
                        bottom[i, j] = z
                    if z > top[i, j]:
                        top[i, j] = z


def column_extents(
    vertices: np.ndarray, faces: np.ndarray, x0: float, y0: float, h: float, nx: int, ny: int
) -> tuple[np.ndarray, np.ndarray]:
    """(bottom, top), each (nx, ny): lowest and highest crossing of the closed mesh by the vertical
    ray through each column centre (x0 + (i + 1/2) h, y0 + (j + 1/2) h); +inf / -inf: no crossing."""
    bottom = np.full((nx, ny), np.inf)
    top = np.full((nx, ny), -np.inf)
    _columns(
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
        float(x0), float(y0), float(h), bottom, top,
    )
    return bottom, top


def dilate(bottom: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grow a footprint by one column (3 x 3): bottoms take the lowest, tops the highest
    neighbour. Conservative against slivers that fall between column centres."""
    return (
        minimum_filter(bottom, size=3, mode="constant", cval=np.inf),
        maximum_filter(top, size=3, mode="constant", cval=-np.inf),
    )


class HeightMap:
    """The top of the bag's contents per column (0 = floor), on a grid of pitch ``h`` mm.

    Two maps are kept: ``safe`` (tops of footprints grown by one column, used to drop objects
    without overlap) and ``exact`` (tops at the column centres, used to measure support).
    """

    PAD = 2  # columns of floor kept around the interior, so that footprints are never clipped

    def __init__(self, interior, h: float = 2.0):
        self.interior = np.asarray(interior, dtype=float)
        self.h = float(h)
        self.nx = int(math.ceil(self.interior[0] / h)) + 2 * self.PAD
        self.ny = int(math.ceil(self.interior[1] / h)) + 2 * self.PAD
        self.x0 = -self.interior[0] / 2.0 - self.PAD * h
        self.y0 = -self.interior[1] / 2.0 - self.PAD * h
        self.safe = np.zeros((self.nx, self.ny))
        self.exact = np.zeros((self.nx, self.ny))

    def window(self, lo: np.ndarray, hi: np.ndarray, pad: int = 1) -> tuple[int, int, int, int]:
        """Column index range [i0, i1) x [j0, j1) covering the xy box [lo, hi] plus ``pad``."""
        h = self.h
        i0 = max(0, int(math.floor((lo[0] - self.x0) / h)) - pad)
        i1 = min(self.nx, int(math.ceil((hi[0] - self.x0) / h)) + pad)
        j0 = max(0, int(math.floor((lo[1] - self.y0) / h)) - pad)
        j1 = min(self.ny, int(math.ceil((hi[1] - self.y0) / h)) + pad)
        return i0, max(i0, i1), j0, max(j0, j1)

    def footprint(self, vertices: np.ndarray, faces: np.ndarray):
        """The mesh's columns on this grid: (window, bottom, top, safe_bottom, safe_top)."""
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        i0, i1, j0, j1 = self.window(lo, hi)
        x0 = self.x0 + i0 * self.h
        y0 = self.y0 + j0 * self.h
        bottom, top = column_extents(vertices, faces, x0, y0, self.h, i1 - i0, j1 - j0)
        # grown once, on the top side only: the contents' tops spread one column, the object's
        # underside stays as measured (growing both kept every pair of neighbours two columns apart)
        _, st = dilate(bottom, top)
        return (i0, i1, j0, j1), bottom, top, bottom, st

    @staticmethod
    def shifted(fp, di: int, dj: int):
        """The footprint of the same mesh moved by (di, dj) columns (callers keep it inside)."""
        (i0, i1, j0, j1), b, t, sb, st = fp
        return (i0 + di, i1 + di, j0 + dj, j1 + dj), b, t, sb, st

    def rest_offset(self, fp) -> float:
        """The lowest dz such that the footprint ``fp`` (mesh at dz = 0) lies on or above the safe
        map in every column; -inf if the footprint is empty."""
        (i0, i1, j0, j1), _, _, sb, _ = fp
        m = np.isfinite(sb)
        if not m.any():
            return -np.inf
        return float(np.max(self.safe[i0:i1, j0:j1][m] - sb[m]))

    def support_gap(self, fp, dz: float) -> float:
        """Smallest vertical gap between the mesh (moved up by dz) and the exact map below it."""
        (i0, i1, j0, j1), bottom, _, _, _ = fp
        m = np.isfinite(bottom)
        if not m.any():
            return np.inf
        return float(np.min(bottom[m] + dz - self.exact[i0:i1, j0:j1][m]))

    def add(self, fp, dz: float) -> None:
        """Put the footprint (moved up by dz) into both maps."""
        (i0, i1, j0, j1), _, top, _, st = fp
        s = self.safe[i0:i1, j0:j1]
        np.maximum(s, np.where(np.isfinite(st), st + dz, -np.inf), out=s)
        e = self.exact[i0:i1, j0:j1]
        np.maximum(e, np.where(np.isfinite(top), top + dz, -np.inf), out=e)
