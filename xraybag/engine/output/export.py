"""Looking at a bag: the packed bag as GLB, a PNG rendering and its concrete scene YAML.

- the bag is packed by :func:`xraybag.engine.packing.pack_bag`, as ``xraybag render`` packs it, so
  the concrete scene is the one ``render`` would render for that bag.
- :func:`glb_bytes`: one node per object, named after the object (the bag's wall is the node
  ``bag``), holding all its solids (parts, walls, liquid fill) as one mesh in the bag frame (mm);
  the node's glTF ``extras`` carry ``index``, ``label``, ``materials`` (first = main) and ``parts``
  (``[{part, material}]`` in the order of the mesh's triangle ranges, with ``faces``: the number of
  triangles of each). trimesh does not write node extras itself; they are added to the glTF JSON
  while exporting.
- :func:`bag_png`: a headless rendering with our own tracer: parallel-beam thickness images from
  above and from the side, shaded by the path length through each ray and tinted by the object
  that takes most of it.
"""

from __future__ import annotations

import colorsys
import io
import json
import struct
from pathlib import Path

import numpy as np
import trimesh

from xraybag.engine.packing import pack_bag
from xraybag.engine.solids.scene import ObjectInfo, Solid, build_solids
from xraybag.scenes.models import Scanner, Scene

# ------------------------------------------------------------------------------------------ GLB


def bag_trimesh_scene(
    solids: list[Solid], infos: list[ObjectInfo]
) -> tuple[trimesh.Scene, dict[str, dict]]:
    """A trimesh Scene with one node per object (and ``bag``), and the extras of each node."""
    scene = trimesh.Scene()
    extras: dict[str, dict] = {}
    groups: dict[int, list[Solid]] = {}
    for s in solids:
        groups.setdefault(s.object_index, []).append(s)
    names = {0: "bag"}
    meta = {0: {"index": 0, "label": None}}
    for info in infos:
        names[info.index] = info.name
        meta[info.index] = {"index": info.index, "label": info.label}
    for k in sorted(groups):
        group = groups[k]
        offs, verts, faces = 0, [], []
        for s in group:
            verts.append(s.vertices)
            faces.append(s.faces + offs)
            offs += len(s.vertices)
        mesh = trimesh.Trimesh(np.vstack(verts), np.vstack(faces), process=False)
        name = names[k]
        extras[name] = {
            **meta[k],
            "materials": list(dict.fromkeys(s.material for s in group)),
            "parts": [{"part": s.part, "material": s.material, "faces": int(len(s.faces))} for s in group],
        }
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    return scene, extras


def glb_bytes(solids: list[Solid], infos: list[ObjectInfo]) -> bytes:
    """The bag as a binary glTF: one named node per object with its extras (see module notes)."""
    from trimesh.exchange.gltf import export_glb

    scene, extras = bag_trimesh_scene(solids, infos)

    def add_extras(buffer_items, tree) -> None:
        for node in tree.get("nodes", []):
            if node.get("name") in extras:
                node["extras"] = extras[node["name"]]

    return export_glb(scene, include_normals=False, buffer_postprocessor=add_extras)


def glb_nodes(data: bytes) -> list[dict]:
    """The nodes (name, extras, ...) of a GLB's JSON chunk (for checks)."""
    length = struct.unpack("<I", data[12:16])[0]
    tree = json.loads(data[20 : 20 + length])
    return tree.get("nodes", [])


# ------------------------------------------------------------------------------------------ PNG


def _view(scene: Scene, solids: list[Solid], axis: str, pitch: float):
    from xraybag.engine.xray.scanners import bag_outer_bounds, view_geometry
    from xraybag.engine.xray.trace import trace

    lo, hi = bag_outer_bounds(scene)
    ext = (hi - lo) + 20.0
    panel = {"-z": [ext[0], ext[1]], "y": [ext[0], ext[2]]}[axis]
    scanner = Scanner(
        name="png", type="radiograph", axis=axis, parallel=True, panel=panel, pitch=pitch,
        sod=float(np.max(ext)) + 100.0, sdd=float(np.max(ext)) + 200.0,
    )
    geom = view_geometry(scanner, scene)
    tr = trace(solids, geom)
    total = tr.paths.sum(axis=2).astype(np.float64)
    owner = np.zeros(total.shape, dtype=np.int32)
    best = np.zeros(total.shape)
    for ob in tr.objects:
        if ob.index == 0:
            continue
        full = ob.full(geom.rows, geom.cols)
        better = full > best
        owner[better], best[better] = ob.index, full[better]
    return total, owner


def _colour(total: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    shade = np.exp(-total / 120.0)
    hues = np.array([colorsys.hsv_to_rgb((0.61803398875 * k) % 1.0, 0.55, 1.0) for k in range(n + 1)])
    hues[0] = 1.0
    rgb = hues[owner] * shade[..., None]
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def bag_png(scene: Scene, solids: list[Solid], pitch: float = 1.0) -> bytes:
    """A PNG of the bag: the view from above (x right, y up) over the view from the side (x right,
    z up); brightness = exp(-path length / 120 mm), hue = the object along most of the ray."""
    from PIL import Image

    n = max((s.object_index for s in solids), default=0)
    top_t, top_o = _view(scene, solids, "-z", pitch)
    side_t, side_o = _view(scene, solids, "y", pitch)
    top = _colour(top_t, top_o, n).transpose(1, 0, 2)[::-1]
    side = _colour(side_t, side_o, n).transpose(1, 0, 2)[::-1]
    w = max(top.shape[1], side.shape[1])
    canvas = np.full((top.shape[0] + side.shape[0] + 10, w, 3), 255, dtype=np.uint8)
    canvas[: top.shape[0], : top.shape[1]] = top
    canvas[top.shape[0] + 10 :, : side.shape[1]] = side
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def export_paths(loaded, index: int, out: Path, glb: Path | None = None, png: Path | None = None,
                 yaml: Path | None = None) -> tuple[Path, Path, Path]:
    """The GLB, PNG and concrete scene paths :func:`export_bag` writes for bag ``index``: each the
    path given, else ``out/bag_<bag>.glb``, ``.png``, ``.yaml`` (``<bag>`` the dataset's name of
    the bag: ``000003``)."""
    from xraybag.engine.output.files import bag_name

    stem = Path(out) / f"bag_{bag_name((loaded.spec.bag_index or 0) + index)}"
    return tuple(Path(p) if p is not None else stem.with_suffix(ext)
                 for p, ext in ((glb, ".glb"), (png, ".png"), (yaml, ".yaml")))


def export_bag(
    loaded, index: int, out: Path, seed: int | None = None, glb: Path | None = None,
    png: Path | None = None, yaml: Path | None = None, pitch: float = 1.0,
) -> dict:
    """Pack bag ``index`` and write the GLB, the PNG and the concrete scene, each at the path given
    or else in the folder ``out`` as ``bag_<bag>.glb``, ``.png`` and ``.yaml`` (``<bag>`` the
    dataset's name of the bag: ``000003``). Returns a summary (paths, objects, left out)."""
    from xraybag.engine.output.files import scene_yaml, write_atomic

    packed, report = pack_bag(loaded, index, seed)
    glb, png, yaml = export_paths(loaded, index, out, glb, png, yaml)
    solids, infos = build_solids(packed, tolerance=packed.tolerance)
    write_atomic(glb, glb_bytes(solids, infos))
    write_atomic(png, bag_png(packed, solids, pitch))
    write_atomic(yaml, scene_yaml(packed, yaml.parent).encode())
    return {
        "glb": str(glb), "png": str(png), "yaml": str(yaml), "objects": len(infos),
        "left_out": list(report.left_out), "bag": packed.bag_index, "note": report.note,
        "hull_fill": report.hull_fill, "hull_fill_at_first_left_out": report.hull_fill_at_first_left_out,
        "first_left_out": report.first_left_out,
    }
