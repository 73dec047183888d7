"""Plies and fittings of a draped sheet (:mod:`xraybag.scenes.sheets`), and arrays of small boxes.

- **Plies** thicken the sheet where its fabric lies doubled: at a drape node the sheet has
  ``1 + sum(layers * share)`` layers, ``share`` being the part of the node's cell (the grid spacing
  around the node, cut at the sheet's edges) that the ply's rectangle covers. Over a ply wider than
  the grid spacing that is exactly ``1 + layers``; a narrow seam between nodes is spread over the
  nodes beside it, keeping its fabric (the mean thickness over the sheet is that of the layers).
- **Fittings** rest on the draped top, flat (they do not tilt with the fabric): a button or snap is
  a disc of :data:`DISC_SIDES` sides whose bottom is the highest point of the top surface under
  its rim and centre; a zip is a chain of interlocking teeth: two rows of boxes, each 2/3 of the
  zip's width across (overlapping in the middle third) and half the pitch along, the rows shifted
  by half a pitch, so the middle third is metal all along and the edges are serrated. Each tooth
  rests on the top under its corners; a slider sits before the zip's start. The top surface
  between nodes is bilinear in the node heights.

Everything is computed in the sheet's flat frame (u, v) and placed in the bag frame with the
sheet's pose (``(x, y) = Rz(yaw) (u, v) + position``).
"""

from __future__ import annotations

import math

import numpy as np

DISC_SIDES = 16  # sides of a button's or snap's prism
SLIDER = (2.0, 1.6, 2.0)  # a zip slider: (along, across) in units of the teeth's width, height in units of theirs

_CORNERS = np.array([[sa, sn, sz] for sa in (-1, 1) for sn in (-1, 1) for sz in (-1, 1)], dtype=float)
_BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def boxes(centres: np.ndarray, tangents: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """One closed mesh of separate boxes, outward-wound. Box k is centred on ``centres[k]`` (x, y,
    z), has its first edge ``size[0]`` along the horizontal unit vector ``tangents[k]`` (x, y), its
    second ``size[1]`` across it (horizontal) and its third ``size[2]`` vertical."""
    c = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    t = np.atleast_2d(np.asarray(tangents, dtype=np.float64))
    n = np.column_stack([-t[:, 1], t[:, 0]])  # left of the tangent: (t, n, z) is right-handed
    local = _CORNERS * (np.asarray(size, dtype=np.float64) / 2.0)
    v = (c[:, None, :]
         + local[None, :, :1] * np.c_[t, np.zeros(len(t))][:, None, :]
         + local[None, :, 1:2] * np.c_[n, np.zeros(len(n))][:, None, :]
         + local[None, :, 2:3] * np.array([0.0, 0.0, 1.0]))
    faces = _BOX_FACES
    tri = v[0][faces]
    if np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) < 0:  # 6 x the signed volume
        faces = faces[:, ::-1]
    f = (faces[None, :, :] + 8 * np.arange(len(c))[:, None, None]).reshape(-1, 3)
    return v.reshape(-1, 3), f.astype(np.int32)


def discs(centres: np.ndarray, radius: float, height: float, sides: int = DISC_SIDES):
    """One closed mesh of separate vertical prisms (discs) with bottoms at ``centres`` (x, y, z0)."""
    c = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    a = 2.0 * np.pi * np.arange(sides) / sides
    ring = np.column_stack([radius * np.cos(a), radius * np.sin(a)])
    per = 2 * sides + 2
    verts, faces = [], []
    k = np.arange(sides)
    k1 = (k + 1) % sides
    # bottom ring 0..s-1, top ring s..2s-1, bottom centre 2s, top centre 2s+1 (anticlockwise rings)
    base = np.vstack([
        np.column_stack([k1, k, np.full(sides, 2 * sides)]),  # bottom, seen from below
        np.column_stack([sides + k, sides + k1, np.full(sides, 2 * sides + 1)]),  # top
        np.column_stack([k, k1, sides + k1]),
        np.column_stack([k, sides + k1, sides + k]),
    ])
    for q, (x, y, z0) in enumerate(c):
        verts.append(np.vstack([
            np.column_stack([ring + (x, y), np.full(sides, z0)]),
            np.column_stack([ring + (x, y), np.full(sides, z0 + height)]),
            [[x, y, z0], [x, y, z0 + height]],
        ]))
        faces.append(base + q * per)
    return np.vstack(verts), np.vstack(faces).astype(np.int32)


def _share(lo: float, hi: float, nodes: np.ndarray) -> np.ndarray:
    """The share of each node's cell (half-way to its neighbours, cut at the ends) inside [lo, hi]."""
    mid = 0.5 * (nodes[1:] + nodes[:-1])
    a = np.concatenate([[nodes[0]], mid])
    b = np.concatenate([mid, [nodes[-1]]])
    return np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None) / (b - a)


def ply_layers(plies, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Layers of fabric at the drape nodes (nx, ny): 1 plus each ply's layers times its share.

    ``plies``: (umin, vmin, umax, vmax, layers) tuples in the sheet frame."""
    out = np.ones((len(u), len(v)))
    for u0, v0, u1, v1, n in plies:
        out += float(n) * np.outer(_share(u0, u1, u), _share(v0, v1, v))
    return out


def top_at(u: np.ndarray, v: np.ndarray, top: np.ndarray, pu, pv) -> np.ndarray:
    """The top surface (bilinear in the node heights ``top``) at sheet-frame points, clamped to the sheet."""
    pu = np.clip(np.asarray(pu, dtype=np.float64), u[0], u[-1])
    pv = np.clip(np.asarray(pv, dtype=np.float64), v[0], v[-1])
    i = np.clip(np.searchsorted(u, pu, side="right") - 1, 0, len(u) - 2)
    j = np.clip(np.searchsorted(v, pv, side="right") - 1, 0, len(v) - 2)
    fu = (pu - u[i]) / (u[i + 1] - u[i])
    fv = (pv - v[j]) / (v[j + 1] - v[j])
    return ((1 - fu) * (1 - fv) * top[i, j] + fu * (1 - fv) * top[i + 1, j]
            + (1 - fu) * fv * top[i, j + 1] + fu * fv * top[i + 1, j + 1])


def _footprint_top(u, v, top, centres_uv: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The highest top surface over each footprint: centre plus ``offsets`` (m, 2) per centre."""
    pts = centres_uv[:, None, :] + offsets[None, :, :]
    return top_at(u, v, top, pts[..., 0], pts[..., 1]).max(axis=1)


def fitting_mesh(kind: str, at, to, size: float, height: float, pitch: float,
                 u: np.ndarray, v: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fitting's closed mesh in the sheet frame (x = u, y = v; z in the bag frame)."""
    at = np.asarray(at, dtype=np.float64)
    if kind in ("button", "snap"):
        r = size / 2.0
        a = 2.0 * np.pi * np.arange(DISC_SIDES) / DISC_SIDES
        rim = np.vstack([[0.0, 0.0], np.column_stack([r * np.cos(a), r * np.sin(a)])])
        z0 = _footprint_top(u, v, top, at[None, :], rim)
        return discs(np.c_[at[None, :], z0], r, height)
    end = np.asarray(to, dtype=np.float64)
    length = float(np.hypot(*(end - at)))
    d = (end - at) / length if length > 0 else np.array([1.0, 0.0])
    normal = np.array([-d[1], d[0]])
    n = max(int(math.floor(length / pitch + 1e-9)), 1)
    along = min(pitch, length) / 2.0  # each row's teeth fill half the pitch; the two rows interleave
    s = along / 2.0 + pitch * np.arange(n)
    across = 2.0 * size / 3.0
    rows = [at + np.outer(s, d) - normal * size / 6.0, at + np.outer(s + along, d) + normal * size / 6.0]
    sa, sn, sh = SLIDER[0] * size, SLIDER[1] * size, SLIDER[2] * height
    centres = np.vstack(rows + [at - d * (sa / 2.0 + 0.5)])
    half = [(along / 2.0, across / 2.0)] * (2 * n) + [(sa / 2.0, sn / 2.0)]
    z0 = np.array([
        _footprint_top(u, v, top, c[None, :], np.array([[ea * a * d[0] + eb * b * normal[0],
                                                          ea * a * d[1] + eb * b * normal[1]]
                                                         for ea in (-1, 1) for eb in (-1, 1)] + [[0.0, 0.0]]))[0]
        for c, (a, b) in zip(centres, half)
    ])
    m = 2 * n
    tv, tf = boxes(np.c_[centres[:m], z0[:m] + height / 2.0], np.tile(d, (m, 1)), (along, across, height))
    sv, sf = boxes(np.c_[centres[m:], z0[m:] + sh / 2.0], d[None, :], (sa, sn, sh))
    return np.vstack([tv, sv]), np.vstack([tf, sf + len(tv)])


def to_bag(vertices: np.ndarray, position, yaw_deg: float) -> np.ndarray:
    """Sheet-frame vertices (u, v, bag z) into the bag frame."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    out = vertices.copy()
    out[:, 0] = c * vertices[:, 0] - s * vertices[:, 1] + float(position[0])
    out[:, 1] = s * vertices[:, 0] + c * vertices[:, 1] + float(position[1])
    return out
