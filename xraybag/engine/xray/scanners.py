"""Scanner geometries: the rays of each 2D view, as functions of the motion parameter.

``line_scan``: a carry-on scanner. The source and the detector lie in one plane across the
conveyor (the fan plane, x = const); the bag moves along x, and each image row is one fan
projection taken after the bag has advanced by ``pitch``. Rows are indexed by the conveyor position
(the motion parameter), columns by the detector elements along an L-shaped (or straight) array.
The ``vertical`` view shoots upwards from below the belt; the ``horizontal`` view sideways.

``radiograph``: a point source and a flat panel (or a parallel beam) looking along ``axis`` at the
centre of the bag.

Frames: the bag frame of the scene format (mm): origin at the centre of the bag's interior floor,
x along the conveyor, z up. The belt is the bottom face of the bag (z = -wall thickness).
"""

from __future__ import annotations

import numpy as np

from xraybag.engine.xray.trace import RayGeometry
from xraybag.errors import XraybagError
from xraybag.scenes.models import Scanner, Scene

MARGIN_MM = 20.0  # conveyor travel imaged before and after the bag


def bag_outer_bounds(scene: Scene) -> np.ndarray:
    """(2, 3) box of the bag's outer surface (with a shell: of every part of it)."""
    if scene.bag.shell is not None:
        from xraybag.engine.solids.shells import shell_bounds

        return shell_bounds(str(scene.bag.shell), scene.bag.params, scene.bag.size)
    sx, sy, sz = scene.bag.size
    w = scene.bag.wall.thickness
    return np.array([[-sx / 2 - w, -sy / 2 - w, -w], [sx / 2 + w, sy / 2 + w, sz + w]])


def view_geometry(scanner: Scanner, scene: Scene) -> RayGeometry:
    if scanner.type == "line_scan":
        return line_scan_geometry(scanner, scene)
    if scanner.type == "radiograph":
        return radiograph_geometry(scanner, scene)
    raise XraybagError(f"scanner {scanner.name!r}: type {scanner.type!r} has no 2D geometry")


# ------------------------------------------------------------------------------------- line scan


def _fan_detector(scanner: Scanner, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source and detector element centres in the fan plane's (a, b) coordinates.

    ``b`` is the beam axis (towards the far arm), ``a`` the lateral axis; the tunnel is the box
    ``lo..hi``. The far arm lies at b = hi[1]; an L layout adds a side arm at a = hi[0]. Arms are
    extended so that the rays through every tunnel corner hit the detector.
    """
    width = hi[0] - lo[0]
    if scanner.layout == "L":
        src = np.array([lo[0] + 0.25 * width, hi[1] - scanner.source_distance])
    else:
        src = np.array([0.5 * (lo[0] + hi[0]), hi[1] - scanner.source_distance])
    if src[1] >= lo[1] - 1.0:
        raise XraybagError(
            f"scanner {scanner.name!r}: source_distance {scanner.source_distance:g} mm puts the source "
            f"inside the tunnel; it must exceed the tunnel depth {hi[1] - lo[1]:g} mm",
            "scanners",
        )
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]])
    far_b = hi[1]
    side_a = hi[0]
    a_min, a_max, b_min = lo[0], hi[0], far_b
    for cp in corners:
        d = cp - src
        a_far = src[0] + d[0] * (far_b - src[1]) / d[1]
        if scanner.layout == "straight" or a_far <= side_a:
            a_min = min(a_min, a_far)
            a_max = max(a_max, a_far)
        else:
            b_side = src[1] + d[1] * (side_a - src[0]) / d[0]
            b_min = min(b_min, b_side)
    if scanner.layout == "straight":
        path = np.array([[a_min, far_b], [a_max, far_b]])
    else:
        path = np.array([[a_min, far_b], [side_a, far_b], [side_a, b_min]])
    seg = np.diff(path, axis=0)
    seglen = np.linalg.norm(seg, axis=1)
    total = seglen.sum()
    n = int(np.ceil(total / scanner.pitch))
    s = (np.arange(n) + 0.5) * scanner.pitch - 0.5 * (n * scanner.pitch - total)
    cum = np.concatenate([[0.0], np.cumsum(seglen)])
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    elems = path[k] + seg[k] * ((s - cum[k]) / seglen[k])[:, None]
    return src, elems


def line_scan_geometry(scanner: Scanner, scene: Scene) -> RayGeometry:
    bounds = bag_outer_bounds(scene)
    tw, th = scanner.tunnel
    belt = bounds[0, 2]
    if bounds[1, 1] - bounds[0, 1] > tw or bounds[1, 2] - bounds[0, 2] > th:
        raise XraybagError(
            f"scanner {scanner.name!r}: the bag ({bounds[1, 1] - bounds[0, 1]:g} x "
            f"{bounds[1, 2] - bounds[0, 2]:g} mm across and up) does not fit its tunnel "
            f"({tw:g} x {th:g} mm)",
            "scanners",
        )
    # tunnel box in (y, z); the view chooses which of them is the beam axis
    ylo, yhi, zlo, zhi = -tw / 2, tw / 2, belt, belt + th
    if scanner.view == "vertical":  # a = y, b = z (beam upwards)
        lo, hi = np.array([ylo, zlo]), np.array([yhi, zhi])
        src_ab, el_ab = _fan_detector(scanner, lo, hi)
        src_yz, el_yz = src_ab, el_ab
    else:  # a = z, b = y (beam across the tunnel towards +y)
        lo, hi = np.array([zlo, ylo]), np.array([zhi, yhi])
        src_ab, el_ab = _fan_detector(scanner, lo, hi)
        src_yz, el_yz = src_ab[::-1], el_ab[:, ::-1]
    p = scanner.pitch
    x0 = bounds[0, 0] - MARGIN_MM
    rows = int(np.ceil((bounds[1, 0] - bounds[0, 0] + 2 * MARGIN_MM) / p)) + 1
    xs = x0 + p * np.arange(rows)
    cols = len(el_yz)
    origin_row = np.zeros((rows, 3))
    origin_row[:, 0] = xs
    origin_col = np.zeros((cols, 3))
    origin_col[:, 1:] = src_yz
    dir_row = np.zeros((rows, 3))
    dir_col = np.zeros((cols, 3))
    dir_col[:, 1:] = el_yz - src_yz
    # angle of each element seen from the source, increasing with the column index
    ang = np.unwrap(np.arctan2(dir_col[:, 2], dir_col[:, 1]))
    sign = 1.0 if ang[-1] >= ang[0] else -1.0
    ang_s = sign * ang
    ref = ang[0]

    def project(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(pts, dtype=float)
        r = (pts[:, 0] - x0) / p
        a = np.arctan2(pts[:, 2] - src_yz[1], pts[:, 1] - src_yz[0])
        a = ref + np.angle(np.exp(1j * (a - ref)))  # unwrap next to the fan
        c = np.interp(sign * a, ang_s, np.arange(cols, dtype=float), left=-1.0, right=float(cols))
        return r, c

    dist = float(np.median(np.linalg.norm(el_yz - src_yz, axis=1)))
    return RayGeometry(
        rows, cols, origin_row, origin_col, dir_row, dir_col, project, p, dist,
        extras={
            "source_yz": src_yz,
            "elements_yz": el_yz,
            "x0": x0,
            # what the tracer needs to map a point of the fan plane to its column
            "fan_table": np.concatenate([src_yz, [ref, sign], ang_s]),
        },
    )


# ------------------------------------------------------------------------------------ radiograph

_AXES = {
    "z": ([0, 0, 1], [1, 0, 0], [0, 1, 0]),
    "-z": ([0, 0, -1], [1, 0, 0], [0, 1, 0]),
    "y": ([0, 1, 0], [1, 0, 0], [0, 0, 1]),
    "-y": ([0, -1, 0], [1, 0, 0], [0, 0, 1]),
    "x": ([1, 0, 0], [0, 1, 0], [0, 0, 1]),
    "-x": ([-1, 0, 0], [0, 1, 0], [0, 0, 1]),
}


def radiograph_geometry(scanner: Scanner, scene: Scene) -> RayGeometry:
    bounds = bag_outer_bounds(scene)
    iso = np.array([0.0, 0.0, scene.bag.size[2] / 2])
    b, u, v = (np.array(a, dtype=float) for a in _AXES[scanner.axis])
    half = 0.5 * np.abs((bounds[1] - bounds[0]) @ b)
    if scanner.sod <= half + 1.0:
        raise XraybagError(
            f"scanner {scanner.name!r}: sod {scanner.sod:g} mm puts the source inside the bag",
            "scanners",
        )
    p = scanner.pitch
    nr = max(int(round(scanner.panel[0] / p)), 1)
    nc = max(int(round(scanner.panel[1] / p)), 1)
    cr, cc = (nr - 1) / 2, (nc - 1) / 2
    ir = (np.arange(nr) - cr) * p
    jc = (np.arange(nc) - cc) * p
    src = iso - scanner.sod * b
    if scanner.parallel:
        origin_row = src + ir[:, None] * u
        origin_col = jc[:, None] * v
        dir_row = np.tile(b, (nr, 1))
        dir_col = np.zeros((nc, 3))

        def project(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d = np.asarray(pts, dtype=float) - iso
            return d @ u / p + cr, d @ v / p + cc

        dist = scanner.sdd
    else:
        centre = src + scanner.sdd * b
        origin_row = np.tile(src, (nr, 1))
        origin_col = np.zeros((nc, 3))
        dir_row = (centre - src) + ir[:, None] * u
        dir_col = jc[:, None] * v

        def project(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d = np.asarray(pts, dtype=float) - src
            depth = d @ b
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where(depth > 0, scanner.sdd / depth, np.nan)
            return (d @ u) * s / p + cr, (d @ v) * s / p + cc

        dist = scanner.sdd
    return RayGeometry(
        nr, nc, origin_row, origin_col, dir_row, dir_col, project, p, float(dist),
        extras={"source": src, "axis": b, "u": u, "v": v},
    )
