"""Deformable sheets: draping over the contents, the closed mesh, reproducibility, rendering.

"Touch" (the contact the gap check is about): a grid node of the sheet *touches* the contents when
the draping left it resting on its support (the contents within one grid spacing of it, plus half
the thickness) instead of being held up by the fabric spanning to other supports. For every
touching node the gap is the smallest vertical distance between the sheet's bottom surface and the
top of the contents' TRUE meshes within one grid spacing of the node, both measured by casting
vertical rays (trimesh) on a 1 mm grid; it must stay under 2 mm. Over the flat interior of the box
tops (away from their edges by more than a grid spacing) the gap straight under each touching
node must stay under 2 mm as well. (The height map is conservative by up to 1.25 cells, so the node
windows are widened by MARGIN: near an edge the sheet overhangs by up to a spacing plus 1.25 mm.)
"""

from __future__ import annotations

import json

import manifold3d  # noqa: F401 - the boolean check below needs it
import numpy as np
import pytest
import trimesh

from tests.helpers import write
from xraybag.engine.solids.scene import build_solids
from xraybag.engine.solids.sheets import (
    HMAP_RES,
    SAG,
    drape_sheets,
    rmpd,
    sheet_support,
    top_surface,
    with_sheets,
    without_sheets,
)
from xraybag.scenes.models import Scene
from xraybag.scenes.sample import dump_scene
from xraybag.streams import STREAM_SHEETS, bag_rng

THICK = 3.0
MARGIN = 1.25 * HMAP_RES + 1.0  # map conservative by 1.25 cells; the test samples every 1 mm
BOXES = {"low": ([-50.0, 0.0, 20.0], [80.0, 90.0, 40.0]), "high": ([50.0, 0.0, 35.0], [80.0, 90.0, 70.0])}


def _scene(sheets=({"name": "sheet", "size": [250, 150]},)) -> Scene:
    objs = [
        {"name": n, "shape": {"box": {"size": size}}, "material": "PET",
         "pose": {"position": pos}}
        for n, (pos, size) in BOXES.items()
    ]
    for s in sheets:
        objs.append({"name": s["name"], "sheet": {"size": s["size"], "thickness": THICK},
                     "material": "PETN", "label": "sheet_explosive"})
    return Scene.model_validate(
        {"seed": 1, "bag_index": 0, "bag": {"size": [300, 200, 150], "wall": {"thickness": 0}},
         "objects": objs}
    )


@pytest.fixture(scope="module")
def draped():
    scene = _scene()
    out, left = drape_sheets(scene, bag_rng(1, 0, STREAM_SHEETS))
    assert left == []
    return scene, out


def _mesh(solid) -> trimesh.Trimesh:
    return trimesh.Trimesh(solid.vertices, solid.faces, process=False)


def _sheet_solid(scene: Scene):
    solids, infos = build_solids(scene)
    k = next(i.index for i in infos if i.name == "sheet")
    (s,) = [s for s in solids if s.object_index == k]
    return s, solids


def _vertical_hits(mesh: trimesh.Trimesh, x, y, upward: bool):
    """z of the first hit of vertical rays at (x, y): upward from below (lowest surface) or
    downward from above (highest surface); nan where the ray misses."""
    z0 = -100.0 if upward else 1000.0
    o = np.stack([x, y, np.full_like(x, z0)], axis=1)
    d = np.tile([0.0, 0.0, 1.0 if upward else -1.0], (len(x), 1))
    loc, ray, _ = mesh.ray.intersects_location(o, d, multiple_hits=True)
    out = np.full(len(x), np.nan)
    for r, z in zip(ray, loc[:, 2]):
        if np.isnan(out[r]) or (z < out[r] if upward else z > out[r]):
            out[r] = z
    return out


def test_sheet_mesh_closed_and_thickness(draped):
    _, scene = draped
    sheet, _ = _sheet_solid(scene)
    m = _mesh(sheet)
    assert m.is_watertight and m.is_winding_consistent
    assert m.volume > 0
    # the thickness normal to the surface: for every bottom face, the vertical distance from its
    # centroid to the top surface (ray cast) times the cosine of its slope
    down = m.face_normals[:, 2] < -0.2
    cos = -m.face_normals[down, 2]
    c = m.triangles_center[down]
    zt = _vertical_hits(m, c[:, 0], c[:, 1], upward=False)
    normal = (zt - c[:, 2]) * cos
    slope = np.degrees(np.arccos(cos))
    err = np.abs(normal / THICK - 1)
    area = m.area_faces[down]
    gentle = slope < 25
    assert gentle.mean() > 0.4  # the flanks hanging off the boxes to the floor are steep
    # within 10 % on gentle slopes, but for the faces next to a sharp bend (an edge of a box),
    # where the top surface bulges as around a real bend; 3 % on average over the whole sheet
    assert np.percentile(err[gentle], 90) < 0.10
    assert np.sum(area[gentle] * err[gentle]) / area[gentle].sum() < 0.03
    assert np.sum(area * err) / area.sum() < 0.05
    # flat parts away from bends: exactly THICK, centred on the drape heights
    flat = slope < 1e-6
    assert flat.sum() > 0 and np.mean(np.isclose(normal[flat], THICK, atol=1e-6)) > 0.7
    # the volume is the thickness times the draped (stretched) area, within a few per cent
    assert m.volume == pytest.approx(THICK * area.sum(), rel=0.05)


def test_sheet_rests_on_contents_without_interpenetration(draped):
    _, scene = draped
    sheet, solids = _sheet_solid(scene)
    boxes = [_mesh(s) for s in solids if s.object_index in (1, 2)]
    sm = _mesh(sheet)
    inter = trimesh.boolean.intersection([sm, trimesh.util.concatenate(boxes)], engine="manifold")
    assert inter.volume <= 0.005 * sm.volume
    # never below the contents: the sheet is above both boxes' tops where it covers them
    assert sm.vertices[:, 2].min() >= -1e-9


def test_sheet_gap_where_it_touches(draped):
    original, scene = draped
    obj = next(o for o in scene.objects if o.name == "sheet")
    hm = top_surface(without_sheets(original))
    u, v, support = sheet_support(obj.sheet, hm, obj.pose.position[:2], obj.pose.rotation_deg[2])
    h = np.array(obj.sheet.drape)
    touch = h <= support + 1e-9
    assert touch.mean() > 0.3
    sheet, solids = _sheet_solid(scene)
    contents = trimesh.util.concatenate([_mesh(s) for s in solids if s.object_index in (1, 2)])
    sm = _mesh(sheet)
    yaw = np.radians(obj.pose.rotation_deg[2])
    c, s = np.cos(yaw), np.sin(yaw)
    px, py = obj.pose.position[:2]
    du, dv = u[1] - u[0], v[1] - v[0]
    # 1 mm sample grid of the sheet frame; bottom of the sheet and top of the contents there
    fu = np.arange(u[0], u[-1] + 1e-9, 1.0)
    fv = np.arange(v[0], v[-1] + 1e-9, 1.0)
    uu, vv = np.meshgrid(fu, fv, indexing="ij")
    x, y = (c * uu - s * vv + px).ravel(), (s * uu + c * vv + py).ravel()
    bottom = _vertical_hits(sm, x, y, upward=True).reshape(uu.shape)
    top = _vertical_hits(contents, x, y, upward=False).reshape(uu.shape)
    top = np.where(np.isnan(top), 0.0, top)  # the floor
    assert np.all(bottom[~np.isnan(bottom)] >= top[~np.isnan(bottom)] - 0.05)  # never below
    gap = bottom - top
    worst = 0.0
    for i, j in zip(*np.nonzero(touch)):
        win = (np.abs(uu - u[i]) <= du + MARGIN) & (np.abs(vv - v[j]) <= dv + MARGIN)
        worst = max(worst, float(np.nanmin(gap[win])))
    assert worst < 2.0, worst
    # flat interior of the box tops: the gap straight under every touching node
    node_gap = []
    for pos, size in BOXES.values():
        xn = c * u[:, None] - s * v[None, :] + px
        yn = s * u[:, None] + c * v[None, :] + py
        inner = (np.abs(xn - pos[0]) < size[0] / 2 - du - 1) & (np.abs(yn - pos[1]) < size[1] / 2 - dv - 1)
        sel = inner & touch
        assert sel.sum() > 0.5 * inner.sum()  # the sheet lies on both boxes
        node_gap += list(h[sel] - THICK / 2 - (pos[2] + size[2] / 2))
    assert max(node_gap) < 2.0 and min(node_gap) > -1e-6


def test_rmpd_never_below_support_and_spans():
    support = np.zeros((129, 9))
    support[:20] = 50.0  # a shelf at one end
    support[26:40] = 50.0  # and another beyond a 6-node (30 mm) gap
    h = rmpd(support, 5.0, 5.0)
    assert np.all(h >= support)
    assert np.all(h[:20] == 50.0) and np.all(h[26:40] == 50.0)  # rests on both shelves
    assert h[20:26].min() > 50.0 - SAG * 35**2 / 8 - 0.5  # spans the 35 mm gap, sagging a little
    assert np.all(h[-30:] == 0.0)  # the far end lies on the floor
    assert np.all(np.diff(h[40:, 4]) <= 1e-9)  # and hangs down monotonically


def test_deterministic_and_round_trip(draped, tmp_path):
    original, scene = draped
    again, _ = drape_sheets(original, bag_rng(1, 0, STREAM_SHEETS))
    assert again == scene
    text = dump_scene(scene)
    from ruamel.yaml import YAML

    back = Scene.model_validate(YAML(typ="safe", pure=True).load(text))
    assert back == scene
    a, _ = build_solids(scene)
    b, _ = build_solids(back)
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert np.array_equal(sa.vertices, sb.vertices) and np.array_equal(sa.faces, sb.faces)
    # an already draped sheet is kept as it is
    same, left = drape_sheets(back, np.random.default_rng(99))
    assert same == back and left == []


def test_later_sheets_drape_over_earlier_ones():
    scene = _scene([{"name": "sheet", "size": [250, 150]}, {"name": "cloth", "size": [250, 150]}])
    out, left = drape_sheets(scene, np.random.default_rng(5))
    assert left == []
    solids, infos = build_solids(out)
    m = {i.name: trimesh.Trimesh(s.vertices, s.faces, process=False)
         for i in infos for s in solids if s.object_index == i.index}
    inter = trimesh.boolean.intersection([m["sheet"], m["cloth"]], engine="manifold")
    assert inter.volume <= 0.005 * m["cloth"].volume


def test_sheet_left_out_when_no_room():
    scene = _scene([{"name": "sheet", "size": [400, 150]}])
    out, left = drape_sheets(scene, np.random.default_rng(0))
    assert [n for n, _ in left] == ["sheet"] and "larger" in left[0][1]
    assert all(o.name != "sheet" for o in out.objects)
    low = _scene().model_copy(update={"bag": _scene().bag.model_copy(update={"size": [300, 200, 72]})})
    out, left = drape_sheets(low, np.random.default_rng(0))
    assert [n for n, _ in left] == ["sheet"] and "no room" in left[0][1]


def test_with_without_sheets_keeps_order():
    scene = _scene()
    rigid = without_sheets(scene)
    assert [o.name for o in rigid.objects] == ["low", "high"]
    assert [o.name for o in with_sheets(scene, rigid).objects] == ["low", "high", "sheet"]


def test_sheet_renders_with_annotation(tmp_path):
    from xraybag.engine.output.dataset import render_dataset

    path = write(
        tmp_path / "s.yaml",
        """
        seed: 4
        bag: {size: [300, 200, 150]}
        objects:
          - {name: book, shape: {box: {size: [120, 90, 30]}}, material: paper}
          - name: sheet
            sheet: {size: [160, 110], thickness: 4}
            material: PETN
            label: sheet_explosive
        scanners:
          - {name: top, type: line_scan, pitch: 3, noise: false}
        """,
    )
    out = tmp_path / "out"
    render_dataset(str(path), 1, str(out))
    coco = json.loads((out / "annotations.json").read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    anns = [a for a in coco["annotations"] if cats[a["category_id"]] == "sheet_explosive"]
    assert len(anns) == 1 and anns[0]["area"] > 0
    # the concrete scene records the drape and renders the same bag again
    concrete = (out / "scenes").glob("*.yaml")
    (scene_file,) = list(concrete)
    assert "drape" in scene_file.read_text()
    again = tmp_path / "again"
    render_dataset(str(scene_file), 1, str(again))
    a = sorted((out / "images").iterdir())
    b = sorted((again / "images").iterdir())
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_object_points_of_sheets(draped):
    from xraybag.engine.solids.scene import object_points, rotation_matrix

    original, scene = draped
    flat = object_points(original.objects[2], name="sheet")
    assert np.allclose(flat.max(axis=0), [125, 75, THICK / 2])
    obj = scene.objects[2]
    pts = object_points(obj, name="sheet") @ rotation_matrix(obj.pose.rotation_deg).T + obj.pose.position
    sheet, _ = _sheet_solid(scene)
    assert np.allclose([pts.min(axis=0), pts.max(axis=0)], sheet.bounds)
    assert np.allclose(sheet.bounds.mean(axis=0), obj.pose.position)  # the pose is the bbox centre


def test_wrinkled_garment_rises_over_the_drape_never_into_the_contents_and_stays_under_the_lid():
    from xraybag.engine.solids.sheets import wrinkle_field

    smooth = _scene()
    wrinkled = smooth.model_copy(update={"objects": [
        o if o.sheet is None else o.model_copy(update={"sheet": o.sheet.model_copy(
            update={"wrinkles": 12.0, "wrinkle_length": 30.0})}) for o in smooth.objects]})
    a, _ = drape_sheets(smooth, bag_rng(1, 0, STREAM_SHEETS))
    b, left = drape_sheets(wrinkled, bag_rng(1, 0, STREAM_SHEETS))
    assert left == []
    ha = np.array(next(o for o in a.objects if o.name == "sheet").sheet.drape)
    hb = np.array(next(o for o in b.objects if o.name == "sheet").sheet.drape)
    lift = hb - ha
    assert lift.min() >= -1e-9 and 6.0 < lift.max() <= 12.0 + 1e-9  # folds raised, up to the height asked
    assert np.std(lift) > 1.0  # not a uniform lift: folds
    sheet, solids = _sheet_solid(b)
    boxes = [_mesh(s) for s in solids if s.object_index in (1, 2)]
    inter = trimesh.boolean.intersection([_mesh(sheet), trimesh.util.concatenate(boxes)], engine="manifold")
    assert inter.volume <= 0.005 * _mesh(sheet).volume
    # same generator, same folds
    c, _ = drape_sheets(wrinkled, bag_rng(1, 0, STREAM_SHEETS))
    assert next(o for o in c.objects if o.name == "sheet").sheet.drape == hb.tolist()
    # under a low lid the folds are lowered until the sheet fits
    u, v = np.linspace(-100, 100, 41), np.linspace(-60, 60, 25)
    flat = np.full((41, 25), 10.0)
    w = wrinkle_field(u, v, 40.0, 30.0, flat, 2.0, 30.0, np.random.default_rng(0))
    assert w.min() >= 0 and (flat + w + 1.0).max() <= 30.0 + 1e-9 or np.all(w == 0)
