"""Deformable sheets: lay each sheet flat above the packed contents and drape it over them.

The method follows DEBISim's deformable sheets (recursive midpoint displacement on the occupancy
height map):

1. **Occupancy height map.** The true meshes of everything already in the bag (packed rigid
   objects and the sheets draped before) are rasterised from above onto a regular grid of the bag
   floor (:data:`HMAP_RES` mm): each cell holds the highest point of any solid over its centre
   (triangles are rasterised with a tolerance of 0.75 cell so thin features are not missed;
   empty cells are 0, the floor).
2. **Placement.** The sheet's flat extent gets a random yaw (uniform; snapped to 0 or 90 degrees
   if the rotated extent does not fit the interior) and a uniform (x, y) keeping it inside the
   interior, both from the given generator. Up to :data:`PLACEMENTS` placements are tried, as a
   person looks for room for a shirt: the first whose draped top stays under the lid is kept.
3. **Support.** On the sheet's drape grid (spacing at most :data:`SPACING` mm, ``2**k + 1`` nodes
   per axis) each node's support is the highest point of the height map within one grid spacing
   of the node (in the sheet frame) plus ``thickness/2``. Every point of a grid cell is within one
   spacing of all the cell's corners, so the bottom surface (linear over each triangle) is never
   below the contents, at the height map's resolution.
4. **Recursive midpoint displacement.** Starting from the four corners resting on their supports
   (the sheet laid down flat and held at its corners), each level halves the grid step: new nodes
   take the linear interpolation (midpoint) of their coarser neighbours and are pushed up to
   their support when they would go below it; each level is then relaxed (projected
   SOR) to the equilibrium of a fabric under its own weight lying on the contents: it rests on
   its supports where it meets them, spans narrow gaps sagging a little (``SAG w**2/8`` over a gap
   of width w) and hangs down over edges towards the floor. (The equilibrium is unique: the
   generator only chooses the placement.)
5. **Clip.** A sheet whose top would rise above the bag's interior height, or whose flat extent
   does not fit the interior, is left out (with a reason).

The result is stored in the scene: ``sheet.drape`` (mid-surface heights, rows along x) and a pose
``position = [x, y, bbox-centre z]``, ``rotation_deg = [0, 0, yaw]``; :func:`build_solids` turns it
into a closed mesh (bottom at ``drape - thickness/2``, top ``thickness * sqrt(1 + |grad|^2)``
above the bottom: the thickness normal to the surface is kept), and the concrete scene reproduces
it exactly.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.ndimage import maximum_filter

from xraybag.engine.solids.scene import (
    _num,
    build_solids,
    object_name,
    sheet_fittings,
    sheet_grid,
    sheet_layers,
    sheet_solid_parts,
    sheet_top,
)
from xraybag.scenes.models import Object, Pose, Scene

HMAP_RES = 1.0  # mm, cell size of the occupancy height map
SPACING = 5.0  # mm, largest spacing of a sheet's drape grid
SAG = 0.05  # 1/mm, weight over tension of the fabric: a free span of width w sags SAG w**2 / 8
ATTEMPTS = 50  # placement tries of a sheet's yaw
PLACEMENTS = 40  # placements (yaw and position) tried until the draped sheet stays under the lid
MAX_LEVELS = 10  # at most 2**10 + 1 nodes per axis


# ------------------------------------------------------------------------------- height map


@numba.njit(cache=True)
def _raster(v, f, x0, y0, res, hmap, tol):  # pragma: no cover - compiled
    nx, ny = hmap.shape
    for k in range(f.shape[0]):
        ax, ay, az = v[f[k, 0], 0], v[f[k, 0], 1], v[f[k, 0], 2]
        bx, by, bz = v[f[k, 1], 0], v[f[k, 1], 1], v[f[k, 1], 2]
        cx, cy, cz = v[f[k, 2], 0], v[f[k, 2], 1], v[f[k, 2], 2]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        zmax = max(az, max(bz, cz))
        zmin = min(az, min(bz, cz))
        if abs(area) < 1e-12:
            continue
        sgn = 1.0 if area > 0 else -1.0
        i0 = max(int(np.floor((min(ax, min(bx, cx)) - tol - x0) / res - 0.5)), 0)
        i1 = min(int(np.ceil((max(ax, max(bx, cx)) + tol - x0) / res - 0.5)), nx - 1)
        j0 = max(int(np.floor((min(ay, min(by, cy)) - tol - y0) / res - 0.5)), 0)
        j1 = min(int(np.ceil((max(ay, max(by, cy)) + tol - y0) / res - 0.5)), ny - 1)
        lab = np.hypot(bx - ax, by - ay)
        lbc = np.hypot(cx - bx, cy - by)
        lca = np.hypot(ax - cx, ay - cy)
        if lab == 0 or lbc == 0 or lca == 0:
            continue
        for i in range(i0, i1 + 1):
            px = x0 + (i + 0.5) * res
            for j in range(j0, j1 + 1):
                py = y0 + (j + 0.5) * res
                # signed distances to the three edges (positive inside)
                e0 = sgn * ((bx - ax) * (py - ay) - (by - ay) * (px - ax))
                e1 = sgn * ((cx - bx) * (py - by) - (cy - by) * (px - bx))
                e2 = sgn * ((ax - cx) * (py - cy) - (ay - cy) * (px - cx))
                if e0 < -tol * lab or e1 < -tol * lbc or e2 < -tol * lca:
                    continue
                # barycentric z on the triangle's plane, clamped to the triangle's z range
                wa = e1 / abs(area)
                wb = e2 / abs(area)
                wc = e0 / abs(area)
                z = wa * az + wb * bz + wc * cz
                z = min(max(z, zmin), zmax)
                if z > hmap[i, j]:
                    hmap[i, j] = z


class TopSurface:
    """The top surface of the bag's contents seen from above, on a grid of the interior floor."""

    def __init__(self, size_xy, res: float = HMAP_RES):
        sx, sy = (float(s) for s in size_xy)
        self.res = float(res)
        self.x0, self.y0 = -sx / 2.0, -sy / 2.0
        self.grid = np.zeros((max(int(np.ceil(sx / res)), 1), max(int(np.ceil(sy / res)), 1)))

    def add(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        """Raise the map to the top of a closed mesh (bag frame)."""
        _raster(
            np.ascontiguousarray(vertices, dtype=np.float64),
            np.ascontiguousarray(faces, dtype=np.int64),
            self.x0, self.y0, self.res, self.grid, 0.75 * self.res,
        )

    def sample_max(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The map value of the cell holding each point (0 outside the map). Triangles are
        rasterised with a tolerance of 0.75 cell, so every cell a top face touches holds it."""
        i = np.floor((np.asarray(x) - self.x0) / self.res).astype(int)
        j = np.floor((np.asarray(y) - self.y0) / self.res).astype(int)
        nx, ny = self.grid.shape
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        out = np.zeros(np.shape(i))
        out[inside] = self.grid[i[inside], j[inside]]
        return out


def top_surface(scene: Scene, res: float = HMAP_RES) -> TopSurface:
    """The occupancy height map of every posed object of ``scene`` (draped sheets included;
    undraped sheets and objects without a pose are ignored)."""
    ready = [
        o for o in scene.objects
        if o.pose is not None and (o.sheet is None or o.sheet.drape is not None)
    ]
    hm = TopSurface(scene.bag.size[:2], res)
    solids, _ = build_solids(
        scene.model_copy(update={"objects": ready}), tolerance=max(float(scene.tolerance), 0.05)
    )
    for s in solids:
        if s.object_index > 0:
            hm.add(s.vertices, s.faces)
    return hm


# ----------------------------------------------------------------------------------- draping


def drape_grid(size_xy) -> tuple[int, int]:
    """Nodes per axis of a sheet's drape grid: ``2**k + 1`` with a spacing of at most SPACING."""
    out = []
    for s in size_xy:
        k = 1
        while s / 2**k > SPACING and k < MAX_LEVELS:
            k += 1
        out.append(2**k + 1)
    return out[0], out[1]


def _levels(n: int) -> int:
    return int(round(np.log2(n - 1)))


@numba.njit(cache=True)
def _relax(h, support, du, dv, sag, omega, tol, max_iter):  # pragma: no cover - compiled
    """Projected red-black SOR of ``laplacian(h) = sag`` with ``h >= support``, free edges."""
    nx, ny = h.shape
    ax, ay = 1.0 / (du * du), 1.0 / (dv * dv)
    diag = 2.0 * ax + 2.0 * ay
    for it in range(max_iter):
        change = 0.0
        for colour in range(2):
            for i in range(nx):
                for j in range(ny):
                    if (i + j) % 2 != colour:
                        continue
                    # mirrored neighbours at the free edges (no slope across the edge)
                    hl = h[i - 1, j] if i > 0 else h[i + 1, j]
                    hr = h[i + 1, j] if i < nx - 1 else h[i - 1, j]
                    hd = h[i, j - 1] if j > 0 else h[i, j + 1]
                    hu = h[i, j + 1] if j < ny - 1 else h[i, j - 1]
                    target = (ax * (hl + hr) + ay * (hd + hu) - sag) / diag
                    new = h[i, j] + omega * (target - h[i, j])
                    if new < support[i, j]:
                        new = support[i, j]
                    d = abs(new - h[i, j])
                    if d > change:
                        change = d
                    h[i, j] = new
        if change < tol:
            return it + 1
    return max_iter


def rmpd(support: np.ndarray, du: float, dv: float, sag: float = SAG) -> np.ndarray:
    """Drape a grid of ``2**kx+1`` x ``2**ky+1`` nodes (spacing du, dv) onto ``support``.

    Recursive midpoint displacement, coarse to fine: the four corners first, resting on their
    supports; each level halves the grid step, the new nodes take the midpoint (mean) of their
    coarser neighbours, never below their support, and the level is then relaxed to the equilibrium of a fabric
    under its own weight resting on the contents: ``laplacian(h) = sag`` (1/mm; a span of width
    w sags ``sag w**2 / 8``) where the sheet is free, ``h = support`` where it rests, free edges.
    """
    nx, ny = support.shape
    kx, ky = _levels(nx), _levels(ny)
    h = np.full_like(support, np.nan)
    sx, sy = nx - 1, ny - 1  # current steps
    for i in (0, nx - 1):
        for j in (0, ny - 1):
            h[i, j] = support[i, j]
    for _ in range(max(kx, ky)):
        nsx, nsy = max(sx // 2, 1), max(sy // 2, 1)
        ci = np.arange(0, nx, sx)
        cj = np.arange(0, ny, sy)
        coarse = h[np.ix_(ci, cj)]
        fi = np.arange(0, nx, nsx)
        fj = np.arange(0, ny, nsy)
        ex = np.empty((len(fi), len(cj)))
        ex[:: sx // nsx] = coarse
        if sx != nsx:
            ex[1::2] = 0.5 * (coarse[:-1] + coarse[1:])
        fine = np.empty((len(fi), len(fj)))
        fine[:, :: sy // nsy] = ex
        if sy != nsy:
            fine[:, 1::2] = 0.5 * (ex[:, :-1] + ex[:, 1:])
        sup = np.ascontiguousarray(support[np.ix_(fi, fj)])
        fine = np.maximum(fine, sup)
        _relax(fine, sup, du * nsx, dv * nsy, sag, 1.6, 1e-6, 20000)
        h[np.ix_(fi, fj)] = fine
        sx, sy = nsx, nsy
    return h


def _fits(size_xy, yaw: float, interior) -> tuple[bool, np.ndarray]:
    c, s = abs(np.cos(np.radians(yaw))), abs(np.sin(np.radians(yaw)))
    ext = np.array([c * size_xy[0] + s * size_xy[1], s * size_xy[0] + c * size_xy[1]])
    return bool(np.all(ext <= np.asarray(interior[:2]) + 1e-9)), ext


def sheet_support(sheet, hmap: TopSurface, position, yaw: float):
    """The drape grid (u, v; sheet frame) of a sheet placed at ``position`` (x, y) with ``yaw``,
    and each node's support: the highest point of ``hmap`` within one grid spacing of the node
    (in the sheet frame) plus ``thickness/2``."""
    t = _num(sheet.thickness, "sheet.thickness")
    size = [_num(x, "sheet.size") for x in sheet.size]
    u, v = sheet_grid(sheet, drape_grid(size))
    du, dv = u[1] - u[0], v[1] - v[0]
    # samples on a fine grid of the sheet frame (a node every m samples), mapped into the map
    m = max(int(np.ceil(max(du, dv) / hmap.res)) * 2, 2)
    fu = np.linspace(u[0] - du, u[-1] + du, (len(u) + 1) * m + 1)
    fv = np.linspace(v[0] - dv, v[-1] + dv, (len(v) + 1) * m + 1)
    uu, vv = np.meshgrid(fu, fv, indexing="ij")
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    px, py = float(position[0]), float(position[1])
    fine = hmap.sample_max(c * uu - s * vv + px, s * uu + c * vv + py)
    # support: max within one spacing of each node (a (2m+1)-sample window)
    wide = maximum_filter(fine, size=(2 * m + 1, 2 * m + 1), mode="nearest")
    support = wide[m : m + len(u) * m : m, m : m + len(v) * m : m] + t / 2.0
    return u, v, support


def wrinkle_field(u, v, amplitude: float, length: float, heights, thickness: float, lid: float,
                  rng: np.random.Generator, layers=1.0) -> np.ndarray:
    """Folds of a crumpled garment: smooth random heights in [0, amplitude] (white noise on the
    drape grid, Gaussian-filtered to ``length`` / 4 and stretched to that range), raised on the
    drape (never into the contents below). Halved until the sheet's top stays under ``lid``."""
    from scipy.ndimage import gaussian_filter

    noise = rng.standard_normal((len(u), len(v)))
    sigma = (length / 4.0 / (u[1] - u[0]), length / 4.0 / (v[1] - v[0]))
    w = gaussian_filter(noise, sigma, mode="wrap")
    w = (w - w.min()) / max(float(np.ptp(w)), 1e-12) * amplitude
    for _ in range(8):
        h = heights + w
        if float(sheet_top(u, v, h, thickness, layers).max()) <= lid:
            return w
        w = w / 2.0
    return np.zeros_like(w)


def _floor_under(hmap: TopSurface, size, yaw: float, position) -> float:
    """The highest point of ``hmap`` at the nodes of a 2 mm grid over the sheet's flat extent
    placed at ``position`` with ``yaw``: a quick lower bound of the bottom of its drape."""
    nu, nv = (max(int(np.ceil(x / 2.0)) + 1, 2) for x in size)
    uu, vv = np.meshgrid(np.linspace(-size[0] / 2, size[0] / 2, nu), np.linspace(-size[1] / 2, size[1] / 2, nv),
                         indexing="ij")
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    return float(hmap.sample_max(c * uu - s * vv + position[0], s * uu + c * vv + position[1]).max())


def _yaw(size, interior, rng: np.random.Generator) -> float | None:
    """A uniform yaw at which the flat extent fits the interior (0 or 90 degrees if only those do)."""
    for _ in range(ATTEMPTS):
        y = float(rng.uniform(0.0, 360.0))
        if _fits(size, y, interior)[0]:
            return y
    for y in (0.0, 90.0):
        if _fits(size, y, interior)[0]:
            return y
    return None


def drape_one(
    obj: Object, name: str, hmap: TopSurface, interior, rng: np.random.Generator
) -> tuple[Object | None, str | None]:
    """Place and drape one sheet over ``hmap``; (draped object, None) or (None, reason)."""
    sheet = obj.sheet
    size = [_num(x, f"object {name!r}: sheet.size") for x in sheet.size]
    t = _num(sheet.thickness, f"object {name!r}: sheet.thickness")
    interior = [float(x) for x in interior]
    layers = sheet_layers(sheet, *sheet_grid(sheet, drape_grid(size)), f"object {name!r}: sheet")
    thinnest = float(np.min(layers))
    best = None  # (top, yaw, position, u, v, heights) of the lowest placement tried
    for _ in range(PLACEMENTS):
        yaw = _yaw(size, interior, rng)
        if yaw is None:
            return None, "larger than the bag interior"
        ext = _fits(size, yaw, interior)[1]
        free = (np.asarray(interior[:2]) - ext) / 2.0
        px, py = (float(rng.uniform(-f, f)) if f > 0 else 0.0 for f in free)
        floor = _floor_under(hmap, size, yaw, (px, py))
        if floor + t * thinnest > interior[2] + 1e-9:  # cannot fit here: skip the drape
            if best is None or floor + t * thinnest < best[0]:
                best = (floor + t * thinnest, None, None, None, None, None)
            continue
        u, v, support = sheet_support(sheet, hmap, (px, py), yaw)
        heights = rmpd(support, u[1] - u[0], v[1] - v[0])
        top = float(sheet_top(u, v, heights, t, layers).max())
        if best is None or top < best[0]:
            best = (top, yaw, (px, py), u, v, heights)
        if top <= interior[2] + 1e-9:
            break
    top, yaw, position, u, v, heights = best
    if top > interior[2] + 1e-9:
        return None, f"no room above the contents (the sheet would reach z = {top:.1f} mm)"
    px, py = position
    amp = _num(sheet.wrinkles, f"object {name!r}: sheet.wrinkles")
    if amp > 0:
        heights = heights + wrinkle_field(u, v, amp, _num(sheet.wrinkle_length, "sheet.wrinkle_length"),
                                          heights, t, interior[2], rng, layers)
    top = float(sheet_top(u, v, heights, t, layers).max())
    drape = [[float(x) for x in row] for row in heights]
    pose = Pose(position=[px, py, 0.0], rotation_deg=[0.0, 0.0, float(yaw)])
    draped = obj.model_copy(update={"sheet": sheet.model_copy(update={"drape": drape}), "pose": pose})
    if sheet.fittings:  # fittings that would rise above the lid are left off
        tops = [float(fv[:, 2].max()) for _, _, fv, _ in sheet_fittings(draped, name)]
        under = [k for k, z in enumerate(tops) if z <= interior[2] + 1e-9]
        top = max([top] + [tops[k] for k in under])
        keep = [sheet.fittings[k] for k in under]
        draped = draped.model_copy(update={"sheet": draped.sheet.model_copy(update={"fittings": keep})})
    zc = 0.5 * (float(heights.min()) - t / 2.0 + top)  # the centre of the bounding box
    pose = Pose(position=[px, py, zc], rotation_deg=[0.0, 0.0, float(yaw)])
    return draped.model_copy(update={"pose": pose}), None


def drape_sheets(
    scene: Scene, rng: np.random.Generator
) -> tuple[Scene, list[tuple[str, str]]]:
    """Drape every sheet of a packed scene that has no ``drape`` yet, in scene order.

    Returns the new scene (sheets that do not fit removed) and the left-out (name, reason) pairs.
    Sheets draped later lie over earlier ones. Deterministic for a given generator state.
    """
    todo = [k for k, o in enumerate(scene.objects) if o.sheet is not None and o.sheet.drape is None]
    if not todo:
        return scene, []
    hmap = top_surface(scene)
    interior = [float(x) for x in scene.bag.size]
    objects = list(scene.objects)
    left: list[tuple[str, str]] = []
    drop: set[int] = set()
    for k in todo:
        name = object_name(objects[k], k + 1)
        draped, reason = drape_one(objects[k], name, hmap, interior, rng)
        if draped is None:
            left.append((name, reason))
            drop.add(k)
            continue
        objects[k] = draped
        hmap.add(*sheet_solid_parts(draped, name))
        for _, _, fv, ff in sheet_fittings(draped, name):
            hmap.add(fv, ff)
    objects = [o for k, o in enumerate(objects) if k not in drop]
    return scene.model_copy(update={"objects": objects}), left


# ------------------------------------------------------------------------- packing around sheets


def without_sheets(scene: Scene) -> Scene:
    """The scene without its sheets (what the rigid packers see)."""
    return scene.model_copy(update={"objects": [o for o in scene.objects if o.sheet is None]})


def with_sheets(original: Scene, packed: Scene) -> Scene:
    """The packed rigid objects with the sheets of ``original`` back in their original order
    (objects the packer left out stay out)."""
    by_name = {o.name: o for o in packed.objects}
    objects = []
    for k, o in enumerate(original.objects, start=1):
        if o.sheet is not None:
            objects.append(o)
        elif o.name in by_name:
            objects.append(by_name.pop(o.name))
    objects += list(by_name.values())  # pragma: no cover - packers keep names
    return packed.model_copy(update={"objects": objects})
