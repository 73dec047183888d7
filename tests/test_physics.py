"""The whole forward model against independent references (closed forms and xraydb)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
import xraydb
from helpers import write

from xraybag.engine.output.pipeline import render_bag
from xraybag.scenes.loader import load_scene

KEV = 60.0


def mu_xraydb(formula: str, density: float, kev: float = KEV) -> float:
    """Linear attenuation (1/mm) straight from xraydb, independent of our material code."""
    return xraydb.material_mu(formula, kev * 1000.0, density=density) / 10.0


def parallel_scene(tmp_path, objects: str, extra: str = "") -> str:
    return write(
        tmp_path / "scene.yaml",
        f"""
        seed: 1
        bag: {{size: [400, 300, 200], wall: {{thickness: 0}}}}
        objects:
        {objects}
        scanners:
          - name: par
            type: radiograph
            axis: z
            parallel: true
            pitch: 0.5
            panel: [200, 200]
            spectrum: {{mono_kev: {KEV}, photons: 100000}}
            detector: {{type: integrating}}
            noise: false
        {extra}
        """,
    )


def rays(view):
    o, _ = view.geometry.rays()
    return o[..., 0], o[..., 1]


def test_box_cylinder_sphere_mesh_transmission_is_exp_mu_l(tmp_path):
    """Noise-free, monochromatic: T = exp(-mu L) with L the analytic chord, within 0.1 %."""
    stl = trimesh.creation.box([30, 20, 16])  # a mesh file: a box we know the chords of
    stl.export(tmp_path / "block.stl")
    objects = """
          - {name: box, shape: {box: {size: [40, 30, 25]}}, material: aluminum, pose: {position: [-50, -40, 100]}}
          - {name: cyl, shape: {cylinder: {radius: 20, height: 60}}, material: water, pose: {position: [50, -40, 100], rotation_deg: [90, 0, 0]}}
          - {name: ball, shape: {sphere: {radius: 25}}, material: pmma, pose: {position: [-50, 45, 100]}}
          - {name: block, shape: {mesh: {path: block.stl}}, material: titanium, pose: {position: [50, 45, 100]}}
    """
    loaded = load_scene(parallel_scene(tmp_path, objects))
    view = render_bag(loaded, 0).views[0]
    T = view.transmission["total"]
    x, y = rays(view)
    checks = []
    # box: 25 mm of aluminium along z inside its footprint
    m = (np.abs(x + 50) < 19) & (np.abs(y + 40) < 14)
    checks.append((T[m], np.full(m.sum(), mu_xraydb("Al", 2.699) * 25.0)))
    # cylinder along y (rotated about x): chord 2 sqrt(r^2 - dx^2) in z
    dx = x - 50
    m = (np.abs(dx) < 0.8 * 20) & (np.abs(y + 40) < 28)
    checks.append((T[m], mu_xraydb("H2O", 1.0) * 2 * np.sqrt(20.0**2 - dx[m] ** 2)))
    # sphere
    r = np.hypot(x + 50, y - 45)
    m = r < 0.8 * 25
    checks.append((T[m], mu_xraydb("C5H8O2", 1.19) * 2 * np.sqrt(25.0**2 - r[m] ** 2)))
    # mesh block: 16 mm of titanium
    m = (np.abs(x - 50) < 14) & (np.abs(y - 45) < 9)
    checks.append((T[m], np.full(m.sum(), mu_xraydb("Ti", 4.506) * 16.0)))
    for name, (t, mul) in zip(["box", "cylinder", "sphere", "mesh"], checks):
        assert len(t) > 100, name
        np.testing.assert_allclose(t, np.exp(-mul), rtol=1e-3, err_msg=name)


def test_polychromatic_aluminium_hardens_the_beam(tmp_path):
    """Effective mu = -ln T / L falls with thickness for a 140 kVp tube spectrum."""
    objects = "\n" + "\n".join(
        f"          - {{name: s{i}, shape: {{box: {{size: [20, 150, {t}]}}}}, material: aluminum, pose: {{position: [{-80 + 25 * i}, 0, 100]}}}}"
        for i, t in enumerate([2, 5, 10, 20, 40, 60])
    )
    path = parallel_scene(tmp_path, objects).read_text().replace(
        f"spectrum: {{mono_kev: {KEV}, photons: 100000}}", "spectrum: {kvp: 140, filtration: {Al: 2.0}}"
    )
    (tmp_path / "poly.yaml").write_text(path)
    view = render_bag(load_scene(tmp_path / "poly.yaml"), 0).views[0]
    T = view.transmission["total"]
    x, y = rays(view)
    mu_eff = []
    for i, t in enumerate([2, 5, 10, 20, 40, 60]):
        m = (np.abs(x - (-80 + 25 * i)) < 8) & (np.abs(y) < 60)
        mu_eff.append(-np.log(T[m].mean()) / t)
    assert all(a > b for a, b in zip(mu_eff, mu_eff[1:])), mu_eff
    mono_mu = [mu_xraydb("Al", 2.699, e) for e in (40, 140)]
    assert mono_mu[1] < mu_eff[-1] < mu_eff[0] < mono_mu[0]


@pytest.mark.parametrize(
    "detector, channels",
    [
        ("{type: photon_counting, thresholds: [20, 60]}", ["bin0", "bin1"]),
        ("{type: integrating}", ["total"]),
        ("{type: dual_sandwich}", ["low", "high"]),
    ],
)
def test_every_detector_type_renders_a_view(tmp_path, detector, channels):
    objects = """
          - {name: a, shape: {box: {size: [40, 40, 20]}}, material: aluminum, pose: {position: [-40, 0, 100]}}
          - {name: w, shape: {box: {size: [40, 40, 60]}}, material: water, pose: {position: [40, 0, 100]}}
    """
    text = parallel_scene(tmp_path, objects).read_text()
    text = text.replace("spectrum: {mono_kev: 60.0, photons: 100000}", "spectrum: {kvp: 120}")
    text = text.replace("detector: {type: integrating}", f"detector: {detector}")
    (tmp_path / "d.yaml").write_text(text)
    view = render_bag(load_scene(tmp_path / "d.yaml"), 0).views[0]
    assert sorted(view.transmission) == sorted(channels)
    x, y = rays(view)
    al = (np.abs(x + 40) < 15) & (np.abs(y) < 15)
    water = (np.abs(x - 40) < 15) & (np.abs(y) < 15)
    for t in view.transmission.values():
        assert 0 < t[al].mean() < 1 and 0 < t[water].mean() < 1
    rgb = view.rgb.astype(int)
    if len(channels) > 1:  # dual-energy: aluminium green-dominant, water orange (red-dominant)
        assert rgb[al][:, 1].mean() > rgb[al][:, 0].mean()
        assert rgb[water][:, 0].mean() > rgb[water][:, 2].mean()
    else:
        assert (rgb[..., 0] == rgb[..., 1]).all()  # one channel: grey


def test_step_wedges_through_a_line_scanner_get_their_colours(tmp_path):
    """Whole pipeline (meshes, fan-beam tracing, sandwich detector, calibrated colour), noise off."""
    from xraybag.engine.xray.calibration import calibrate_colour
    from xraybag.engine.xray.colour import INORGANIC, METAL, ORGANIC, classify

    wedges = [("hdpe", 40), ("water", 40), ("aluminum", 10), ("iron", 3), ("lead", 2)]
    objs = "\n".join(
        f"  - {{name: {m}, shape: {{box: {{size: [60, 60, {t}]}}}}, material: {m}, pose: {{position: [{-200 + 90 * i}, 0, {t / 2}]}}}}"
        for i, (m, t) in enumerate(wedges)
    )
    path = write(
        tmp_path / "wedges.yaml",
        "bag: {size: [500, 200, 100], wall: {thickness: 0}}\nobjects:\n" + objs
        + "\nscanners:\n  - {name: top, type: line_scan, noise: false}\n",
    )
    loaded = load_scene(path)
    result = render_bag(loaded, 0)
    view = result.views[0]
    classes, _ = classify(view.transmission["low"], view.transmission["high"], calibrate_colour(view.scanner, loaded.library))
    expected = [ORGANIC, ORGANIC, INORGANIC, METAL, METAL]
    for k, want in enumerate(expected, start=1):
        lab = view.labels[k]
        inner = lab.mask & (view.instance == k)
        assert inner.sum() > 200
        got = np.bincount(classes[inner], minlength=4).argmax()
        assert got == want, (wedges[k - 1], got)
