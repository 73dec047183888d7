"""The geometric pass against independent references: analytic chords and trimesh ray casts."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import trimesh

from xraybag.engine.xray import paths as P
from xraybag.engine.xray.annotate import attenuation
from xraybag.engine.xray.scanners import view_geometry
from xraybag.engine.xray.trace import trace
from xraybag.scenes.models import Scanner, Scene

SCENE = Scene.model_validate({"bag": {"size": [550, 350, 220], "wall": {"thickness": 0}}})


def solid(mesh, material="m", index=1):
    return SimpleNamespace(vertices=np.asarray(mesh.vertices, float), faces=np.asarray(mesh.faces), material=material, object_index=index)


def parallel(pitch=1.0, panel=(300, 300)):
    return view_geometry(Scanner(name="p", type="radiograph", parallel=True, pitch=pitch, panel=list(panel)), SCENE)


def test_box_on_pixel_edges_is_counted_once():
    """Edges and face diagonals that fall exactly on rays are neither lost nor doubled."""
    box = trimesh.creation.box([80, 80, 40])
    box.apply_translation([0.5, 0.5, 110])  # box edges exactly on ray positions
    tr = trace([solid(box)], parallel())
    values, counts = np.unique(tr.paths[..., 0], return_counts=True)
    assert set(values.tolist()) == {0.0, 40.0}
    assert counts[values == 40.0][0] == 80 * 80


def test_rotated_box_has_no_double_hits():
    box = trimesh.creation.box([80, 80, 40])
    box.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 4, [0, 0, 1]))
    box.apply_translation([0.5, 0.5, 110])
    tr = trace([solid(box)], parallel())
    assert set(np.unique(np.round(tr.paths[..., 0], 6)).tolist()) <= {0.0, 40.0}


def test_sphere_chords_match_the_analytic_length():
    sph = trimesh.creation.icosphere(subdivisions=6, radius=50)
    sph.apply_translation([0, 0, 110])
    g = parallel()
    tr = trace([solid(sph)], g)
    o, _ = g.rays()
    r = np.hypot(o[..., 0], o[..., 1])
    inner = r < 0.9 * 50
    analytic = 2 * np.sqrt(50.0**2 - r[inner] ** 2)
    assert np.abs(tr.paths[..., 0][inner] / analytic - 1).max() < 1e-3


def test_shell_gives_wall_path_only():
    outer = trimesh.creation.box([100, 100, 100])
    inner = trimesh.creation.box([80, 80, 80])
    inner.invert()
    shell = trimesh.util.concatenate([outer, inner])
    shell.apply_translation([0.5, 0.5, 110])
    tr = trace([solid(shell)], parallel())
    o, _ = parallel().rays()
    centre = (np.abs(o[..., 0] - 0.5) < 30) & (np.abs(o[..., 1] - 0.5) < 30)
    assert np.allclose(tr.paths[..., 0][centre], 20.0)


@pytest.mark.parametrize("view", ["vertical", "horizontal"])
@pytest.mark.parametrize("layout", ["L", "straight"])
def test_line_scan_matches_trimesh_ray_casts(view, layout):
    scene = Scene.model_validate({"bag": {"size": [550, 350, 220]}})
    g = view_geometry(Scanner(name="t", type="line_scan", view=view, layout=layout, pitch=2.0), scene)
    mesh = trimesh.creation.annulus(r_min=10, r_max=40, height=60)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(0.7, [1, 0.3, 0]))
    mesh.apply_translation([30, -40, 90])
    tr = trace([solid(mesh)], g)
    o, d = g.rays()
    hit = np.argwhere(tr.paths[..., 0] > 0.5)
    assert len(hit) > 100
    pick = hit[np.random.default_rng(1).choice(len(hit), 150, replace=False)]
    oo, dd = o[pick[:, 0], pick[:, 1]], d[pick[:, 0], pick[:, 1]]
    locs, ray_idx, _ = mesh.ray.intersects_location(oo, dd, multiple_hits=True)
    for k in range(len(pick)):
        t = np.sort((locs[ray_idx == k] - oo[k]) @ dd[k])
        if len(t) % 2:  # trimesh's caster merged a grazing double hit; skip that ray
            continue
        ref = (t[1::2] - t[0::2]).sum()
        assert tr.paths[pick[k, 0], pick[k, 1], 0] == pytest.approx(ref, rel=1e-6, abs=1e-5)


def test_line_scan_covers_the_whole_tunnel():
    """Rays through every corner of the bag hit the detector (no cut corners)."""
    scene = Scene.model_validate({"bag": {"size": [550, 350, 220]}})
    for view in ("vertical", "horizontal"):
        g = view_geometry(Scanner(name="t", type="line_scan", view=view), scene)
        corners = np.array([[0, y, z] for y in (-176.5, 176.5) for z in (-1.5, 221.5)])
        _, c = g.project(corners)
        assert (c >= 0).all() and (c <= g.cols - 1).all()


def test_perspective_magnification():
    """A point source magnifies by sdd / distance: a slab's shadow grows accordingly."""
    scene = Scene.model_validate({"bag": {"size": [550, 350, 220], "wall": {"thickness": 0}}})
    g = view_geometry(Scanner(name="r", type="radiograph", sod=1000, sdd=1500, pitch=1.0, panel=[400, 400]), scene)
    box = trimesh.creation.box([100, 100, 1])
    box.apply_translation([0, 0, 110])  # at the isocentre, 1000 mm from the source
    tr = trace([solid(box)], g)
    covered = (tr.paths[..., 0] > 0.5).sum(axis=0).max()
    assert covered == pytest.approx(150, abs=2)


@pytest.mark.parametrize("view", ["vertical", "horizontal"])
def test_fan_column_searched_from_a_hint_equals_the_bisection(view):
    """The tracer's stepped search of the fan table (from the interval of a nearby point, or from
    a wrong or missing one) gives the bisection's column exactly, inside and beyond the fan."""
    from xraybag.engine.xray.trace import _fan_col, _fan_col_near, ray_constants

    scene = Scene.model_validate({"bag": {"size": [550, 350, 220]}})
    g = view_geometry(Scanner(name="t", type="line_scan", view=view, layout="L"), scene)
    fan = ray_constants(g)[2]
    n = fan.size - 4
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-400, 400, 3000), rng.uniform(-100, 500, 3000)])
    hint = -1
    for k, (y, z) in enumerate(pts):
        ref = _fan_col(y, z, fan)
        for h in (hint, -1, 0, n - 2, int(rng.integers(0, n - 1)), n + 5):
            col, found = _fan_col_near(y, z, fan, h)
            assert col == ref or (np.isnan(col) and np.isnan(ref)), (y, z, h, col, ref)
        hint = found
    cols = np.array([_fan_col(y, z, fan) for y, z in pts])
    assert ((cols <= 0) | (cols >= n - 1)).any()  # and some beyond it
    assert ((cols > 0) & (cols < n - 1)).sum() > 100  # most points inside the fan


@pytest.mark.parametrize("view", ["vertical", "horizontal"])
@pytest.mark.parametrize("layout", ["L", "straight"])
def test_fan_keys_give_the_angle_column_within_the_margin(view, layout):
    """The tangent table's column (one division, no arctan) is within TAN_MARGIN of the column
    of the angle table's bisection, inside the fan and at its ends."""
    from xraybag.engine.xray.trace import (
        TAN_MARGIN,
        _fan_col,
        _key_col,
        fan_keys,
        ray_constants,
    )

    scene = Scene.model_validate({"bag": {"size": [550, 350, 220]}})
    g = view_geometry(Scanner(name="t", type="line_scan", view=view, layout=layout), scene)
    fan = ray_constants(g)[2]
    fk = fan_keys(fan)
    assert fk.size == fan.size + 1 and np.all(np.diff(fk[5:]) > 0)
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(-300, 300, 4000), rng.uniform(-50, 450, 4000)])
    worst, inside = 0.0, 0
    for y, z in pts:
        ref = _fan_col(y, z, fan)
        dy, dz = y - fk[0], z - fk[1]
        u, v = fk[2] * dy + fk[3] * dz, fk[2] * dz - fk[3] * dy
        if u <= 0:
            continue
        col, _ = _key_col(fk[4] * v / u, fk, -1)
        if 0 < ref < fan.size - 5:
            inside += 1
            worst = max(worst, abs(col - ref))
        else:
            assert col == ref  # beyond the fan: -1 or n on both
    assert inside > 500
    assert worst < TAN_MARGIN / 3


@pytest.mark.parametrize("kind", ["line_scan_L", "line_scan_straight", "radiograph"])
def test_row_shortcuts_give_the_same_bits(monkeypatch, kind):
    """The kernel's shortcuts (a row's vertex differences computed once per permutation, the fan
    column from the tangent table) trace exactly what the plain per-ray test traces: a bottle's
    shell, a rotated box and a sphere, bit for bit, with and without the shortcuts."""
    from xraybag.engine.xray import trace as T

    if kind == "radiograph":
        # a wide cone (rays up to 50 degrees off the axis) so that the permutation changes
        g = view_geometry(Scanner(name="r", type="radiograph", sod=400, sdd=500, pitch=2.0, panel=[1200, 1200]), SCENE)
    else:
        g = view_geometry(Scanner(name="t", type="line_scan", layout=kind.split("_")[-1]), SCENE)
    box = trimesh.creation.box([90, 60, 40])
    box.apply_transform(trimesh.transformations.rotation_matrix(0.4, [1, 1, 0.3]))
    box.apply_translation([-40, 30, 90])
    ball = trimesh.creation.icosphere(3, 45)
    ball.apply_translation([60, -50, 120])
    outer = trimesh.creation.cylinder(40, 200, sections=48)
    inner = trimesh.creation.cylinder(37, 194, sections=48)
    inner.invert()
    shell = trimesh.util.concatenate([outer, inner])
    shell.apply_transform(trimesh.transformations.rotation_matrix(1.2, [0, 1, 0]))
    shell.apply_translation([10, 0, 110])
    slab = trimesh.creation.box([60, 600, 600])  # across every ray: where the permutation changes too
    slab.apply_transform(trimesh.transformations.rotation_matrix(0.3, [1, 0, 0]))
    slab.apply_translation([150, 0, 120])
    solids = [solid(box, "steel", 1), solid(ball, "water", 2), solid(shell, "pet", 3), solid(slab, "pe", 4)]
    kk = T.ray_constants(g)[0]
    if kind != "line_scan_straight":  # a narrow fan's rays all have one
        assert len(np.unique(kk.reshape(-1, 3), axis=0)) > 1  # rays of more than one permutation
    fast = T.trace(solids, g)
    assert T.uniform_rows(g)  # one origin per row: the shortcut is taken
    monkeypatch.setattr(T, "uniform_rows", lambda g: False)
    monkeypatch.setattr(T, "fan_keys", lambda fan: np.zeros(0))
    plain = T.trace(solids, g)
    assert (fast.paths > 0).sum() > 2000
    assert fast.paths.tobytes() == plain.paths.tobytes()
    for a, b in zip(fast.objects, plain.objects):
        assert a.paths.tobytes() == b.paths.tobytes()


@pytest.mark.parametrize("first", [0, 63])
def test_sparse_totals_add_the_windows_in_order_as_the_dense_image_did(first):
    """Three windows over a 20 x 30 image, two of them with a material in common where they
    overlap: each addition in float64 rounded to float32, object by object (random float64
    lengths, whose sums round differently when added in float32), lengths under 1e-9 mm left out, a pixel's entries in the
    materials' order whatever order the objects bring them in. ``first``: the lowest of the
    three materials' indices (63: a bag of 66 materials, whose bits take two words)."""
    rows, cols = 20, 30
    windows = [  # r0, c0, h, w, materials
        (0, 0, 20, 20, [first + 2]),
        (5, 5, 15, 25, [first, first + 2]),
        (0, 10, 12, 20, [first + 1, first]),
    ]
    rng = np.random.default_rng(1)
    blocks = []
    for _, _, h, w, mats in windows:
        b = rng.uniform(1.0, 40.0, (h, w, len(mats)))
        b[rng.random(b.shape) < 0.25] = 0.0
        b[0, 0, 0] = 5e-10  # grazing round-off: not a length
        blocks.append(b)
    win = np.array([(r0, c0, h, w, len(m), 0) for r0, c0, h, w, m in windows], dtype=np.int64)
    win[:, 5] = np.concatenate([[0], np.cumsum([b.size for b in blocks])[:-1]])
    mats = np.concatenate([np.array(m, np.int64) for *_, m in windows])
    mat_off = np.concatenate([[0], np.cumsum([len(m) for *_, m in windows])]).astype(np.int64)
    flat = np.concatenate([b.reshape(-1) for b in blocks])
    sp = P.sparse_totals(flat, win, mat_off, mats, rows, cols, first + 3)
    expected = np.zeros((rows, cols, first + 3), np.float32)
    for (r0, c0, h, w, ms), b in zip(windows, blocks):
        for i, j, k in np.ndindex(b.shape):
            if b[i, j, k] >= 1e-9:
                cell = expected[r0 + i, c0 + j]
                cell[ms[k]] = np.float32(np.float64(cell[ms[k]]) + b[i, j, k])
    assert sp.dense().tobytes() == expected.tobytes()
    for p in range(rows * cols):
        entries = sp.mat[sp.start[p] : sp.start[p] + sp.count[p]]
        assert np.all(np.diff(entries) > 0)  # one entry a material, in order
        assert np.all(sp.length[sp.start[p] : sp.start[p] + sp.count[p]] > 0)
    assert sp.count.sum() == np.count_nonzero(expected)
    again = P.SparsePaths.from_dense(expected)
    assert np.array_equal(again.count, sp.count) and again.dense().tobytes() == expected.tobytes()


def test_the_cpu_tracer_keeps_a_pixels_entries_and_its_labels_attenuation():
    """The CPU tracer's result holds its path lengths as entries; its dense image (made on
    first use) is the objects' own windows added up, and the labels' attenuation is the float32
    sum over the entries in material order (the GPU's order), within float32 rounding of the
    dense matrix product."""
    g = parallel(pitch=2.0, panel=(200, 200))
    a = trimesh.creation.box([60, 50, 40])
    b = trimesh.creation.icosphere(2, 30)
    b.apply_translation([20, 10, 5])  # overlaps the box, same material
    c = trimesh.creation.cylinder(12, 80)
    c.apply_translation([-30, -20, 0])
    tr = trace([solid(a, "steel", 1), solid(b, "steel", 2), solid(c, "water", 3)], g)
    assert isinstance(tr, P.SparseTraceResult)
    sp = tr.sparse
    summed = sum(o.full(g.rows, g.cols)[:, :, None] * np.eye(len(tr.materials))[[tr.materials.index(
        "steel" if o.index < 3 else "water")]] for o in tr.objects)
    assert tr.paths.shape == (g.rows, g.cols, 2)
    assert np.allclose(tr.paths, summed, rtol=1e-6, atol=1e-6)
    assert (sp.count == 2).sum() > 20 and sp.count.max() == 2  # both materials in some pixels
    mu = np.array([0.35, 0.02])
    att = attenuation(tr, mu)
    ref = np.zeros(g.rows * g.cols, np.float32)
    for p in range(g.rows * g.cols):
        for q in range(sp.start[p], sp.start[p] + sp.count[p]):
            ref[p] = np.float32(ref[p] + sp.length[q] * np.float32(mu[sp.mat[q]]))
    assert att.tobytes() == ref.reshape(g.rows, g.cols).tobytes()
    assert np.allclose(att, tr.paths @ mu.astype(np.float32), rtol=1e-6, atol=1e-6)
