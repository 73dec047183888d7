"""Camera-like shaded renders of catalog objects: stand-ins for photographs of threats.

The Cycle-GAN augmentation paper translates *camera photographs* of threat objects into X-ray
appearance and composites them into benign bags. No photographs are at hand here, so this module
makes their stand-ins from xraybag's own geometry: a catalog template is sampled and meshed as the
engine meshes it (:func:`xraybag.engine.solids.scene.object_solids`), posed at random, and seen by
an orthographic camera looking down ``-z``: one ray per pixel gives the depth and the surface
normal of the first surface hit (trimesh's ray casting; xraybag's X-ray tracer gives path lengths
through the solids, not surfaces), and each pixel is shaded

    I = albedo(material) * (ambient + (1 - ambient) * max(0, n . l))

(Lambert plus ambient; ``n`` the face normal turned towards the camera, ``l`` the unit direction
to a distant light) on a plain light background. The pose, the light and the background tint are
drawn from the seed. The orthographic camera gives every render an exact scale (``px_per_mm``),
which the ``tip`` synthesizer's image threats use to size them in a bag.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError

#: base colour (linear RGB in [0, 1]) of each material as a camera sees it; others get a muted
#: colour from their name's hash (:func:`material_rgb`)
MATERIAL_RGB = {
    "steel": (0.60, 0.61, 0.64), "stainless_steel": (0.70, 0.71, 0.73), "iron": (0.45, 0.44, 0.44),
    "aluminum": (0.78, 0.79, 0.81), "brass": (0.78, 0.62, 0.30), "copper": (0.72, 0.44, 0.25),
    "lead": (0.42, 0.42, 0.45), "gold": (0.85, 0.68, 0.25), "zinc": (0.66, 0.67, 0.69),
    "titanium": (0.58, 0.57, 0.55), "wood": (0.55, 0.36, 0.20), "mdf": (0.62, 0.48, 0.32),
    "rubber": (0.12, 0.12, 0.12), "nylon": (0.18, 0.18, 0.20), "abs": (0.15, 0.15, 0.16),
    "polycarbonate": (0.25, 0.26, 0.28), "pmma": (0.80, 0.84, 0.88), "hdpe": (0.85, 0.85, 0.82),
    "ldpe": (0.82, 0.83, 0.80), "pvc": (0.30, 0.30, 0.33), "polypropylene": (0.70, 0.70, 0.68),
    "leather": (0.35, 0.20, 0.12), "glass": (0.70, 0.78, 0.76), "cardboard": (0.66, 0.52, 0.36),
    "black_powder": (0.10, 0.10, 0.10), "c4": (0.85, 0.82, 0.70), "epoxy": (0.30, 0.34, 0.22),
    "fr4": (0.20, 0.40, 0.18), "ceramic": (0.90, 0.90, 0.88), "cotton": (0.80, 0.78, 0.72),
}
BACKGROUND = (0.94, 0.94, 0.93)  # a plain light backdrop (each render tints it slightly)
AMBIENT = 0.25


def material_rgb(name: str) -> np.ndarray:
    """The base colour of material ``name`` (a fixed muted colour from its hash when not listed)."""
    if name in MATERIAL_RGB:
        return np.array(MATERIAL_RGB[name])
    h = hashlib.sha256(name.encode()).digest()
    return 0.25 + 0.45 * np.array([h[0], h[1], h[2]]) / 255.0


@dataclass
class Surfaces:
    """What the camera rays found: per pixel the depth (mm below the camera plane; NaN where the
    ray misses), the unit normal facing the camera and the material index of the surface hit."""

    depth: np.ndarray  # (H, W) float64
    normals: np.ndarray  # (H, W, 3) float64 (0 where missed)
    material: np.ndarray  # (H, W) int, -1 where missed
    materials: list[str]
    px_per_mm: float

    @property
    def mask(self) -> np.ndarray:
        return self.material >= 0


def cast(meshes: list[tuple[np.ndarray, np.ndarray, str]], size: int, margin: float = 0.08,
         px_per_mm: float | None = None) -> Surfaces:
    """Cast one ray per pixel of a ``size x size`` orthographic camera looking down ``-z`` at the
    meshes ``(vertices mm, faces, material)``, framed on their x-y extent with ``margin`` of the
    image on each side (or at a fixed ``px_per_mm``, centred). Pixel (r, c) looks at x = left +
    (c + 0.5) / px_per_mm, y = top - (r + 0.5) / px_per_mm (image up = +y)."""
    import trimesh

    if not meshes:
        raise XraybagError("nothing to render (no meshes)")
    verts = np.concatenate([np.asarray(v, dtype=np.float64) for v, _, _ in meshes])
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-9))
    if px_per_mm is None:
        px_per_mm = size * (1.0 - 2.0 * margin) / extent
    centre = (lo + hi) / 2.0
    left, top = centre[0] - size / 2.0 / px_per_mm, centre[1] + size / 2.0 / px_per_mm
    faces, offset, material_of_face = [], 0, []
    names: list[str] = []
    for v, f, m in meshes:
        if m not in names:
            names.append(m)
        faces.append(np.asarray(f, dtype=np.int64) + offset)
        material_of_face.append(np.full(len(f), names.index(m)))
        offset += len(v)
    mesh = trimesh.Trimesh(verts, np.concatenate(faces), process=False)
    mat_face = np.concatenate(material_of_face)
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    z0 = hi[2] + 10.0
    origins = np.stack([left + (cols.ravel() + 0.5) / px_per_mm, top - (rows.ravel() + 0.5) / px_per_mm,
                        np.full(size * size, z0)], axis=1)
    dirs = np.tile([0.0, 0.0, -1.0], (size * size, 1))
    tri, ray, loc = mesh.ray.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
    depth = np.full(size * size, np.nan)
    normals = np.zeros((size * size, 3))
    material = np.full(size * size, -1, dtype=np.int64)
    if len(ray):
        depth[ray] = z0 - loc[:, 2]
        n = mesh.face_normals[tri]
        n = np.where((n[:, 2] < 0)[:, None], -n, n)  # the side facing the camera
        normals[ray] = n
        material[ray] = mat_face[tri]
    return Surfaces(depth.reshape(size, size), normals.reshape(size, size, 3), material.reshape(size, size),
                    names, float(px_per_mm))


def shade(surf: Surfaces, light: np.ndarray, background=BACKGROUND, ambient: float = AMBIENT) -> np.ndarray:
    """The (H, W, 3) image in [0, 1]: ``albedo * (ambient + (1 - ambient) * max(0, n . l))`` where a
    surface was hit, ``background`` elsewhere."""
    light = np.asarray(light, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lam = np.clip(surf.normals @ light, 0.0, None)
    albedo = np.stack([material_rgb(m) for m in surf.materials]) if surf.materials else np.zeros((0, 3))
    img = np.empty(surf.normals.shape)
    img[:] = np.asarray(background, dtype=np.float64)
    hit = surf.mask
    img[hit] = albedo[surf.material[hit]] * (ambient + (1.0 - ambient) * lam[hit])[:, None]
    return np.clip(img, 0.0, 1.0)


@dataclass
class Photo:
    rgb: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: the object's pixels
    depth: np.ndarray
    px_per_mm: float
    record: dict = field(default_factory=dict)  # template, class, seed, pose, light, scale


def draw_view(rng: np.random.Generator) -> tuple[list[float], np.ndarray, np.ndarray]:
    """A random camera-like view: the object's rotation (about z uniform, tilted up to 25 degrees
    about x and y, turned over with probability 1/2), the light direction (elevation 35-80
    degrees, any azimuth) and a background tint."""
    rot = [float(rng.uniform(-25, 25) + (180.0 if rng.random() < 0.5 else 0.0)), float(rng.uniform(-25, 25)),
           float(rng.uniform(0, 360))]
    el, az = np.radians(rng.uniform(35, 80)), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    bg = np.clip(np.array(BACKGROUND) + rng.uniform(-0.03, 0.03, 3), 0.0, 1.0)
    return rot, light, bg


def render_photo(template: str, seed: int, size: int = 128, margin: float = 0.08) -> Photo:
    """A shaded render of one sample of catalog ``template`` (seed ``seed``: the variant, the pose,
    the light and the background)."""
    from xraybag.engine.solids.scene import object_solids
    from xraybag.learners.tip.core import threat_object

    rng = np.random.default_rng([int(seed), 11])
    rot, light, bg = draw_view(rng)
    obj = threat_object(template, seed, {"position": [0.0, 0.0, 0.0], "rotation_deg": rot})
    solids, info = object_solids(obj, 1, 0.05)
    surf = cast([(s.vertices, s.faces, s.material) for s in solids], size, margin)
    img = shade(surf, light, bg)
    rgb = np.round(img * 255.0).astype(np.uint8)
    size_mm = np.ptp(np.concatenate([s.vertices for s in solids]), axis=0)
    record = {"template": template, "class": info.label, "seed": int(seed), "px_per_mm": round(surf.px_per_mm, 6),
              "size_mm": [round(float(x), 2) for x in size_mm], "rotation_deg": [round(x, 3) for x in rot],
              "light": [round(float(x), 5) for x in light], "background": [int(round(x * 255)) for x in bg],
              "materials": surf.materials, "ambient": AMBIENT,
              "render": "shaded render of an xraybag catalog object (a stand-in for a photograph)"}
    return Photo(rgb, surf.mask, surf.depth, surf.px_per_mm, record)


def write_photos(templates: list[str], out: Path, n: int, size: int, seed: int = 0, alpha: bool = False) -> Path:
    """``n`` renders of each template into ``out`` (``TEMPLATE_0000.png`` ...) and ``labels.json``
    (``{"images": [{"file", "class", "px_per_mm", ...}]}``). Every template is checked (and must
    have a label) before anything is written."""
    from xraybag.engine.output.files import encode_png, write_atomic
    from xraybag.scenes.catalog import get_entry

    if n < 1 or size < 8:
        raise XraybagError(f"-n {n} and --size {size}: at least one image of at least 8 px")
    for t in templates:
        e = get_entry(t)
        if not e.label:
            raise XraybagError(f"catalog entry {t} has no label (class); photos need one")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise XraybagError("exists and is not empty; choose a new output folder", str(out))
    records = []
    for t in templates:
        for k in range(n):
            p = render_photo(t, seed * 1_000_003 + k, size)
            name = f"{t}_{k:04d}.png"
            img = np.dstack([p.rgb, np.where(p.mask, 255, 0).astype(np.uint8)]) if alpha else p.rgb
            write_atomic(out / name, encode_png(img))
            records.append({"file": name, **p.record})
    write_atomic(out / "labels.json", json.dumps({"images": records}, indent=1).encode())
    return out
