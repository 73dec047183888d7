"""The CT mesh tracer against analytic chord lengths, for flat and curved detectors, and the
polychromatic sinogram against Beer-Lambert."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct.forward import trace_views
from xraybag.engine.ct.scan import CTSetup, ct_response, sinograms
from xraybag.engine.solids.scene import Solid
from xraybag.materials.library import default_library
from xraybag.scenes.models import CT, Scanner, Spectrum


def _solid(mesh, material, index=1):
    return Solid(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32),
                 material, index, material)


def sphere_chords(src, d, centre, r):
    oc = src - centre
    b = np.einsum("...k,k->...", d, oc)
    c = oc @ oc - r * r
    disc = b * b - c
    return np.where(disc > 0, 2 * np.sqrt(np.maximum(disc, 0)), 0.0)


def cylinder_chords(src, d, r, half):
    """Chord through the z-axis cylinder of radius r, |z| < half (rays that cross both caps'
    planes outside the cylinder's z-range are flagged NaN)."""
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = 2 * (src[0] * d[..., 0] + src[1] * d[..., 1])
    c = src[0] ** 2 + src[1] ** 2 - r * r
    disc = b * b - 4 * a * c
    ok = disc > 0
    s = np.sqrt(np.maximum(disc, 0))
    t1, t2 = (-b - s) / (2 * a), (-b + s) / (2 * a)
    z1, z2 = src[2] + t1 * d[..., 2], src[2] + t2 * d[..., 2]
    inside = (np.abs(z1) < half) & (np.abs(z2) < half)
    out = np.where(ok, t2 - t1, 0.0)
    return np.where(~ok | inside, out, np.nan)


@pytest.mark.parametrize("curved", [True, False])
def test_ct_tracer_matches_analytic_chords(curved):
    cyl = trimesh.creation.cylinder(radius=80, height=200, sections=1024)
    sph = trimesh.creation.icosphere(subdivisions=5, radius=30)
    sph.apply_translation([100, -40, 20])
    g = G.helical(600, 1000, 8, 320, 1.6, 1.6, 60, -30, 30, 12, curved=curved)
    mats, L = trace_views([_solid(cyl, "water"), _solid(sph, "aluminium")], g)
    assert mats == ["aluminium", "water"]
    worst_c, worst_s, n = 0.0, 0.0, 0
    centre = np.array([100.0, -40, 20])
    sph_r = float(np.min(np.abs(np.einsum("ij,ij->i", sph.face_normals,
                                          sph.triangles_center - centre))))  # inscribed radius
    for k in range(0, g.views, 5):
        src, d = g.rays(k)
        ref = cylinder_chords(src, d, 80.0, 100.0)
        ok = np.isfinite(ref) & (ref > 10)
        # the 1024-gon is inside the circle: chords shorter by at most ~2 r (1 - cos(pi/n)) / ...
        worst_c = max(worst_c, float(np.max(np.abs(L[k, ..., 1][ok] - ref[ok]) / ref[ok], initial=0.0)))
        ref_s = sphere_chords(src, d, np.array([100.0, -40, 20]), sph_r)
        inner = ref_s > 30
        n += int(inner.sum())
        # the polyhedron lies between its inscribed and circumscribed spheres
        outer = sphere_chords(src, d, np.array([100.0, -40, 20]), 30.0)
        got = L[k, ..., 0]
        assert np.all(got[inner] >= ref_s[inner] - 1e-3) and np.all(got[inner] <= outer[inner] + 1e-3)
        worst_s = max(worst_s, float(np.max(np.abs(got[inner] - outer[inner]) / outer[inner], initial=0.0)))
    assert n > 100
    assert worst_c < 1e-3, worst_c
    assert worst_s < 0.01, worst_s


@pytest.mark.parametrize("curved", [True, False])
def test_slab_culling_drops_no_hit(curved):
    """Each view visits only the faces in the z slab its rays fill: spheres spread along z and out
    to the edge of the field (where the slab is widest), seen from every side, give the same path
    lengths to the bit as visiting every face, and each sphere is hit in some views and culled in
    others. A rod along z, whose sides are taller than the slab (faces the views look up apart
    from the others), is hit in every view, each side face found once."""
    from xraybag.engine.ct.forward import mesh_of, prepare

    solids = []
    rng = np.random.default_rng(5)
    for i, z in enumerate(np.linspace(-60, 60, 9)):
        sph = trimesh.creation.icosphere(subdivisions=3, radius=float(rng.uniform(4, 12)))
        a = rng.uniform(0, 2 * np.pi)
        r = rng.uniform(0, 125)
        sph.apply_translation([r * np.cos(a), r * np.sin(a), z])
        solids.append(_solid(sph, ["water", "aluminium", "pmma"][i % 3], i + 1))
    rod = trimesh.creation.cylinder(radius=6, height=170, sections=24)
    rod.apply_translation([-40, 30, 0])
    solids.append(_solid(rod, "iron", 10))
    g = G.helical(500, 900, 16, 256, 1.5, 2.0, 36, -80, 80, 15, curved=curved)
    mats, fast = trace_views(solids, g)
    _, every = trace_views(solids, g, cull=False)
    assert np.array_equal(fast, every)
    hit_views = (every > 0).any(axis=(1, 2))  # (views, materials)
    assert hit_views.any(axis=0).all() and not hit_views.all()
    assert hit_views[:, mats.index("iron")].all()
    p = prepare(solids, g)
    order, szlo, tall = mesh_of(solids).window(2 * p.reach)
    assert len(tall) == 24 * 2 and np.all(np.diff(szlo) >= 0)
    assert np.array_equal(np.sort(np.concatenate([order, tall])), np.arange(len(p.mesh.faces)))


def test_every_ray_is_counted_once_on_a_closed_box():
    """A ray through shared edges and vertices of a box's triangles is counted exactly once:
    rays aimed at the box's vertices and edges give chords, never doubles."""
    box = trimesh.creation.box(extents=[60, 60, 60])
    g = G.circular(300, 600, 61, 61, 2.0, 2.0, 8, curved=False)
    mats, L = trace_views([_solid(box, "water")], g)
    for k in range(g.views):
        src, d = g.rays(k)
        # slab method
        inv = 1.0 / np.where(d == 0, 1e-300, d)
        t0 = (-30 - src) * inv
        t1 = (30 - src) * inv
        tmin = np.max(np.minimum(t0, t1), axis=-1)
        tmax = np.min(np.maximum(t0, t1), axis=-1)
        ref = np.maximum(tmax - tmin, 0)
        assert np.max(np.abs(L[k, ..., 0] - ref)) < 1e-3


def test_monochromatic_sinogram_is_mu_times_path_length():
    lib = default_library()
    cyl = trimesh.creation.cylinder(radius=50, height=100, sections=512)
    solids = [_solid(cyl, "pmma")]
    scanner = Scanner(name="ct", type="ct", spectrum=Spectrum(mono_kev=60, photons=1e6), noise=False,
                      ct=CT(mode="single"))
    g = G.circular(400, 700, 4, 200, 1.0, 1.0, 12)
    grid = G.VolumeGrid.centred((120, 120, 4), 2.0)
    st = CTSetup(g, grid, np.zeros(3), ct_response(scanner, g, lib))
    # solids are given in the bag frame; with the isocentre at 0 the CT frame is (y, z, x)
    bag = [Solid(s.vertices[:, [2, 0, 1]], s.faces, s.material, 1, "p") for s in solids]
    p = sinograms([Solid(s.vertices[:, [1, 2, 0]], s.faces, s.material, 1, "p") for s in bag], st,
                  scanner, lib, np.random.default_rng(0))["total"]
    _, L = trace_views(solids, g)
    mu = float(lib.get("pmma").mu(np.array([60.0]))[0])
    assert np.allclose(p, mu * L[..., 0], rtol=1e-5, atol=1e-6)


def test_a_mesh_made_once_serves_every_chunk_of_views():
    """A scan traced in chunks of views with one ``mesh_of`` (as the CT scan does) gives the
    path lengths of one call over all views, to the bit; a mesh of other solids changes them."""
    from xraybag.engine.ct.forward import mesh_of

    sph = trimesh.creation.icosphere(subdivisions=2, radius=20)
    box = trimesh.creation.box(extents=[30, 10, 50])
    box.apply_translation([25, 0, 5])
    solids = [_solid(sph, "water"), _solid(box, "aluminium", 2)]
    g = G.helical(400, 700, 8, 96, 2.0, 2.0, 24, -30, 30, 15)
    mats, whole = trace_views(solids, g)
    mesh = mesh_of(solids, mats)
    parts = [trace_views(solids, g, slice(a, min(a + 7, g.views)), mats, mesh=mesh)[1] for a in range(0, g.views, 7)]
    assert np.array_equal(np.concatenate(parts), whole) and whole.any()
    other = mesh_of(solids[:1], mats)
    assert not np.array_equal(trace_views(solids, g, None, mats, mesh=other)[1], whole)


def test_noisy_sinograms_do_not_depend_on_the_chunk_of_views(monkeypatch):
    """With the full noise model, the CT's sinograms are the same to the bit whatever the chunk
    of views detected together (the draws are drawn by counter, per view): one view a chunk,
    seven, or all at once; another seed draws other noise."""
    from xraybag.engine.ct import views as V

    lib = default_library()
    sph = trimesh.creation.icosphere(subdivisions=2, radius=20)
    scanner = Scanner(name="ct", type="ct", noise={"scatter": {"width": 20.0}}, ct=CT(mode="dual_layer"))
    g = G.helical(400, 700, 4, 48, 2.0, 4.0, 12, -10, 10, 15)
    st = CTSetup(g, G.VolumeGrid.centred((80, 80, 20), 4.0), np.zeros(3), ct_response(scanner, g, lib))
    solids = [_solid(sph, "water")]
    runs = []
    for budget in (1, 7 * 4 * 48 * 12, 1 << 40):  # bytes: one view, seven views, every view
        monkeypatch.setattr(V, "CHUNK_BYTES", budget)
        runs.append(sinograms(solids, st, scanner, lib, np.random.default_rng(3)))
    assert V.chunk_views(g, 1) == g.views
    for ch in runs[0]:
        assert np.array_equal(runs[0][ch], runs[1][ch]) and np.array_equal(runs[0][ch], runs[2][ch])
    other = sinograms(solids, st, scanner, lib, np.random.default_rng(4))
    assert all(not np.array_equal(other[ch], runs[0][ch]) for ch in other)
