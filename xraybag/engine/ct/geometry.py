"""CT acquisition geometry and the reconstruction grid, as plain data shared by every CT stage.

Frames. CT stages work in the *CT frame* (mm): the rotation axis is ``z``; the source turns in
the ``x, y`` plane around the isocentre (the origin). A scene's bag frame maps to it by
:func:`scene_to_ct`: the conveyor direction (bag ``x``) becomes the rotation axis, the bag's
``y, z`` become the CT ``x, y`` (a cyclic permutation, so a proper rotation), and the isocentre
sits at the centre of the bag's cross-section.

Views. View ``k`` has its source at ``(sid cos b_k, sid sin b_k, z_k)`` with ``b_k = angles[k]``
(radians) and ``z_k = z[k]``. The detector faces the source through the isocentre: its centre is
``sdd`` from the source along ``c = -(cos b, sin b, 0)``; columns run along
``e_u = (-sin b, cos b, 0)`` and rows along ``e_v = (0, 0, 1)``.

* flat detector: pixel ``(i, j)`` at ``S + sdd c + u_j e_u + v_i e_v``;
* curved (cylindrical, centred on the source, the usual CT arc): pixel ``(i, j)`` at
  ``S + sdd (cos g_j c + sin g_j e_u) + v_i e_v`` with the fan angle ``g_j = u_j / sdd``.

``u_j = (j - (cols - 1) / 2 + col_offset) col_pitch`` and ``v_i = (i - (rows - 1) / 2) row_pitch``
(mm at the detector; for the arc, ``u`` is arc length). Sinograms are arrays ``(views, rows, cols)``.

Volumes are arrays ``[z, y, x]`` on a :class:`VolumeGrid`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class CTGeometry:
    """The views of one CT scan (lengths in mm, angles in radians)."""

    kind: str  # "axial" (fan beam, slice by slice), "circular" (cone beam), "helical"
    sid: float  # source to isocentre
    sdd: float  # source to detector
    rows: int
    cols: int
    row_pitch: float  # at the detector
    col_pitch: float  # at the detector (arc length on a curved detector)
    curved: bool
    angles: np.ndarray  # (V,) source angle of every view
    z: np.ndarray  # (V,) source z of every view
    views_per_rotation: int
    col_offset: float = 0.0  # detector shift in columns (e.g. 0.25: quarter-detector offset)
    extras: dict = field(default_factory=dict, compare=False)

    @property
    def views(self) -> int:
        return int(self.angles.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Sinogram shape (views, rows, cols)."""
        return (self.views, self.rows, self.cols)

    def u(self) -> np.ndarray:
        """(cols,) column coordinate u_j (mm at the detector; arc length when curved)."""
        return (np.arange(self.cols) - (self.cols - 1) / 2.0 + self.col_offset) * self.col_pitch

    def v(self) -> np.ndarray:
        """(rows,) row coordinate v_i (mm at the detector)."""
        return (np.arange(self.rows) - (self.rows - 1) / 2.0) * self.row_pitch

    def gamma(self) -> np.ndarray:
        """(cols,) fan angle of each column's central ray (radians)."""
        u = self.u()
        return u / self.sdd if self.curved else np.arctan2(u, self.sdd)

    @property
    def fov_radius(self) -> float:
        """Radius (mm) of the circle around the axis that every view's fan covers."""
        g = np.abs(self.gamma())
        half = float(g.max()) + (self.col_pitch / self.sdd) / 2.0
        return self.sid * math.sin(min(half, math.pi / 2))

    @property
    def magnification(self) -> float:
        return self.sdd / self.sid

    def source(self, k: int) -> np.ndarray:
        b = float(self.angles[k])
        return np.array([self.sid * math.cos(b), self.sid * math.sin(b), float(self.z[k])])

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(c, e_u, e_v) of view k: central-ray direction, column and row directions."""
        b = float(self.angles[k])
        c = np.array([-math.cos(b), -math.sin(b), 0.0])
        eu = np.array([-math.sin(b), math.cos(b), 0.0])
        ev = np.array([0.0, 0.0, 1.0])
        return c, eu, ev

    def pixels(self, k: int) -> np.ndarray:
        """(rows, cols, 3) centres of the detector pixels of view k."""
        s = self.source(k)
        c, eu, ev = self.frame(k)
        u, v = self.u(), self.v()
        if self.curved:
            g = u / self.sdd
            horiz = self.sdd * (np.cos(g)[:, None] * c + np.sin(g)[:, None] * eu)  # (cols, 3)
        else:
            horiz = self.sdd * c + u[:, None] * eu
        return s + horiz[None, :, :] + v[:, None, None] * ev

    def rays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Source (3,) and unit directions (rows, cols, 3) of view k."""
        s = self.source(k)
        d = self.pixels(k) - s
        return s, d / np.linalg.norm(d, axis=-1, keepdims=True)

    def subset(self, views) -> "CTGeometry":
        """The same scanner restricted to some views (an index array or a slice)."""
        return replace(self, angles=self.angles[views], z=self.z[views])

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "sid_mm": self.sid,
            "sdd_mm": self.sdd,
            "rows": self.rows,
            "cols": self.cols,
            "row_pitch_mm": self.row_pitch,
            "col_pitch_mm": self.col_pitch,
            "detector": "curved" if self.curved else "flat",
            "col_offset": self.col_offset,
            "views": self.views,
            "views_per_rotation": self.views_per_rotation,
            "angle_first_rad": float(self.angles[0]) if self.views else None,
            "angle_step_rad": float(self.angles[1] - self.angles[0]) if self.views > 1 else None,
            "z_first_mm": float(self.z[0]) if self.views else None,
            "z_last_mm": float(self.z[-1]) if self.views else None,
            "fov_radius_mm": self.fov_radius,
            **{k: v for k, v in self.extras.items() if _jsonable(v)},
        }


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


@dataclass(frozen=True)
class VolumeGrid:
    """A voxel grid in the CT frame. Arrays on it are indexed ``[z, y, x]``.

    ``origin`` is the CT-frame (x, y, z) position of the centre of voxel [0, 0, 0]; ``voxel`` the
    edge lengths (dx, dy, dz) in mm.
    """

    shape: tuple[int, int, int]  # (nz, ny, nx)
    voxel: tuple[float, float, float]  # (dx, dy, dz)
    origin: tuple[float, float, float]  # (x, y, z) of voxel [0, 0, 0]'s centre

    @classmethod
    def centred(cls, size_mm, voxel_mm: float, z_centre: float = 0.0) -> "VolumeGrid":
        """The grid of ``size_mm`` = (x, y, z) extents in mm, centred on the axis at ``z_centre``."""
        n = [max(1, int(math.ceil(float(s) / voxel_mm - 1e-9))) for s in size_mm]
        origin = (
            -(n[0] - 1) * voxel_mm / 2.0,
            -(n[1] - 1) * voxel_mm / 2.0,
            z_centre - (n[2] - 1) * voxel_mm / 2.0,
        )
        return cls((n[2], n[1], n[0]), (voxel_mm, voxel_mm, voxel_mm), origin)

    @property
    def nbytes32(self) -> int:
        nz, ny, nx = self.shape
        return nz * ny * nx * 4

    def axis(self, name: str) -> np.ndarray:
        """Voxel-centre coordinates along ``"x"``, ``"y"`` or ``"z"``."""
        i = "xyz".index(name)
        n = self.shape[2 - i]
        return self.origin[i] + self.voxel[i] * np.arange(n)

    def bounds(self) -> np.ndarray:
        """(2, 3) outer box of the grid, (x, y, z)."""
        o = np.asarray(self.origin, dtype=np.float64)
        d = np.asarray(self.voxel, dtype=np.float64)
        n = np.array(self.shape[::-1], dtype=np.float64)
        return np.stack([o - d / 2.0, o + (n - 0.5) * d])

    def crop(self, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> "VolumeGrid":
        """The sub-grid of voxels [lo, hi) given as (z, y, x) index triples."""
        shape = tuple(int(h - l) for l, h in zip(lo, hi))
        origin = tuple(self.origin[i] + self.voxel[i] * lo[2 - i] for i in range(3))
        return VolumeGrid(shape, self.voxel, origin)

    def to_json(self) -> dict:
        return {
            "shape_zyx": list(self.shape),
            "voxel_mm_xyz": list(self.voxel),
            "origin_mm_xyz": list(self.origin),
            "index_order": "z, y, x",
            "frame": "CT frame: z = rotation axis = conveyor direction (bag x); x, y = bag y, z "
            "relative to the isocentre",
        }


# ----------------------------------------------------------------------------- frames


def scene_to_ct(points: np.ndarray, iso: np.ndarray) -> np.ndarray:
    """Bag-frame points (..., 3) to the CT frame; ``iso`` is the isocentre in the bag frame."""
    p = np.asarray(points, dtype=np.float64) - iso
    return np.stack([p[..., 1], p[..., 2], p[..., 0]], axis=-1)


def ct_to_scene(points: np.ndarray, iso: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 2], p[..., 0], p[..., 1]], axis=-1) + iso


# ----------------------------------------------------------------------------- trajectories


def circular(sid, sdd, rows, cols, row_pitch, col_pitch, views, curved=True, z=0.0,
             col_offset=0.0, start=0.0) -> CTGeometry:
    """One full rotation at table position ``z`` (cone beam; fan beam when rows == 1)."""
    angles = start + 2.0 * np.pi * np.arange(views) / views
    return CTGeometry("circular" if rows > 1 else "axial", float(sid), float(sdd), int(rows),
                      int(cols), float(row_pitch), float(col_pitch), bool(curved), angles,
                      np.full(views, float(z)), int(views), float(col_offset))


def axial(sid, sdd, cols, col_pitch, views, slices_z, curved=True, col_offset=0.0,
          row_pitch=1.0) -> CTGeometry:
    """Fan beam, slice by slice: one rotation of a single-row detector per table position."""
    slices_z = np.asarray(slices_z, dtype=np.float64)
    one = 2.0 * np.pi * np.arange(views) / views
    angles = np.tile(one, slices_z.size)
    z = np.repeat(slices_z, views)
    return CTGeometry("axial", float(sid), float(sdd), 1, int(cols), float(row_pitch),
                      float(col_pitch), bool(curved), angles, z, int(views), float(col_offset))


def helical(sid, sdd, rows, cols, row_pitch, col_pitch, views, z_start, z_stop, feed,
            curved=True, col_offset=0.0, start=0.0) -> CTGeometry:
    """A helix whose source z runs from ``z_start`` to (at least) ``z_stop``, advancing ``feed``
    mm per rotation, ``views`` views per rotation."""
    n = int(math.ceil((z_stop - z_start) / feed * views - 1e-9)) + 1
    k = np.arange(n)
    angles = start + 2.0 * np.pi * k / views
    z = z_start + feed * k / views
    g = CTGeometry("helical", float(sid), float(sdd), int(rows), int(cols), float(row_pitch),
                   float(col_pitch), bool(curved), angles, z, int(views), float(col_offset))
    return replace(g, extras={"feed_mm": float(feed),
                              "pitch": float(feed) / collimation(g)})


def collimation(g: CTGeometry) -> float:
    """Detector height projected to the isocentre (mm): the helical pitch's denominator."""
    return g.rows * g.row_pitch * g.sid / g.sdd
