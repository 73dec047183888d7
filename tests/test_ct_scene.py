"""CT scanners in scene files: the OUT/ct/<bag>/ products end to end, and bad geometry refused
before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_cli, write

SCENE = """
seed: 3
bag:
  size: [60, 120, 80]
  wall: {{material: nylon, thickness: 1.5}}
objects:
  - name: bottle
    label: bottle
    shape: {{cylinder: {{radius: 25, height: 50}}}}
    material: water
    pose: {{position: [0, -25, 30], rotation_deg: [0, 90, 0]}}
  - name: bar
    label: metal_bar
    shape: {{box: {{size: [40, 20, 20]}}}}
    material: aluminium
    pose: {{position: [0, 30, 20]}}
scanners:
  - name: ct
    type: ct
    noise: false
    ct:
      geometry: {geometry}
      sid: 400
      sdd: 700
      bore: 300
      views: 180
      cols: {cols}
      col_pitch: 1.8
      rows: 8
      row_pitch: 2.0
      pitch: {pitch}
      voxel: 2.0
      sinograms: true
      dicom: true
      mar_pair: true
"""


def scene(tmp_path, geometry="helical", cols=180, pitch=1.0):
    return write(tmp_path / "ct.yaml", SCENE.format(geometry=geometry, cols=cols, pitch=pitch))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ct")
    path = scene(tmp)
    out = tmp / "out"
    r = run_cli("render", path, "-n", "1", "-o", out)
    assert r.exit_code == 0, r.output
    return out


def test_ct_products_are_written_with_consistent_geometry(rendered):
    d = rendered / "ct" / "000000"
    geo = json.loads((d / "geometry.json").read_text())
    shape = tuple(geo["grid"]["shape_zyx"])
    for q in ("mu_low", "mu_high", "zeff", "rho_e", "compton", "photoelectric"):
        v = np.load(d / f"{q}.npy")
        assert v.shape == shape and v.dtype == np.float32 and np.isfinite(v).all(), q
    labels = np.load(d / "labels.npy")
    assert labels.shape == shape and labels.dtype == np.uint16
    assert set(np.unique(labels)) >= {0, 1, 2}
    # the aluminium bar attenuates more than the water bottle, in both channels
    for ch in ("mu_low", "mu_high"):
        v = np.load(d / f"{ch}.npy")
        assert np.median(v[labels == 2]) > 1.5 * np.median(v[labels == 1])
    zeff = np.load(d / "zeff.npy")
    assert 11.0 < np.median(zeff[labels == 2]) < 15.0  # aluminium, Z = 13
    assert 6.5 < np.median(zeff[labels == 1]) < 8.5  # water, Zeff ~ 7.4
    sino = np.load(d / "sino_low.npy")
    assert sino.shape == (geo["scan"]["views"], geo["scan"]["rows"], geo["scan"]["cols"])
    for p in ("preview_mu_high.png", "preview_zeff.png", "preview_labels.png"):
        assert (d / p).stat().st_size > 100
    # MAR pair: the same bag without its metal object
    nm = d / "no_metal"
    assert json.loads((nm / "geometry.json").read_text())["removed_objects"] == [2]
    lab2 = np.load(nm / "labels.npy")
    assert 2 not in np.unique(lab2) and 1 in np.unique(lab2)
    manifest = [json.loads(line) for line in (rendered / "manifest.jsonl").read_text().splitlines()]
    assert "ct/000000/mu_high.npy" in manifest[0]["files"]


def test_dicom_series_reads_back(rendered):
    pydicom = pytest.importorskip("pydicom")
    d = rendered / "ct" / "000000"
    zeff = np.load(d / "zeff.npy")
    files = sorted((d / "dicom" / "zeff").glob("*.dcm"))
    assert len(files) == zeff.shape[0]
    ds = pydicom.dcmread(files[len(files) // 2])
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.allclose(values, zeff[len(files) // 2], atol=0.006)
    geo = json.loads((d / "geometry.json").read_text())
    mu = np.load(d / "mu_high.npy")
    ds = pydicom.dcmread(sorted((d / "dicom" / "mu_high").glob("*.dcm"))[len(files) // 2])
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    mw = geo["hu_reference"]["mu_high"]
    assert np.allclose(hu, np.clip(np.rint(1000 * (mu[len(files) // 2] - mw) / mw), -32768, 32767), atol=1)


@pytest.mark.parametrize(
    "geometry, cols, pitch, message",
    [
        ("helical", 60, 1.0, "detector too small for the bag"),
        ("helical", 180, 2.5, "leaves gaps"),
        ("circular", 180, 1.0, "one circular rotation sees only"),
    ],
)
def test_bad_geometry_is_refused_before_any_work(tmp_path, geometry, cols, pitch, message):
    path = scene(tmp_path, geometry=geometry, cols=cols, pitch=pitch)
    out = tmp_path / "out"
    r = run_cli("render", path, "-n", "1", "-o", out)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "ct.yaml:" in lines[0], r.output
    assert "scanners" in lines[0]
    assert not out.exists()


def test_kvp_switching_without_spectra_is_refused(tmp_path):
    text = SCENE.format(geometry="helical", cols=180, pitch=1.0).replace(
        "      geometry: helical", "      geometry: helical\n      mode: kvp_switching"
    )
    path = write(tmp_path / "ct.yaml", text)
    r = run_cli("validate", path)
    assert r.exit_code == 2
    assert "needs spectra" in r.output and "ct.yaml:" in r.output


def test_a_detector_that_does_not_match_the_mode_is_refused(tmp_path):
    text = SCENE.format(geometry="helical", cols=180, pitch=1.0).replace(
        "    noise: false", "    noise: false\n    detector: {type: integrating}"
    )
    path = write(tmp_path / "ct.yaml", text)
    r = run_cli("validate", path)
    assert r.exit_code == 2 and "needs a detector of type dual_sandwich" in r.output


def test_render_device_cuda_reaches_the_ct_tracer(tmp_path, monkeypatch):
    """``render --device cuda`` traces a CT scanner's views, detects, decomposes and
    reconstructs them, and takes Zeff, electron density and the labels with the GPU's kernels
    (counting stand-ins here, the numba ones, for :mod:`xraybag.engine.ct.forward_cuda`,
    :mod:`xraybag.engine.xray.detect_cuda`, :mod:`~xraybag.engine.ct.decompose_cuda`, the
    helical FBP's GPU slabs and :mod:`~xraybag.engine.ct.voxelize_cuda`), and writes the same
    files as ``--device cpu``; ``--device cpu`` never calls them."""
    import sys
    from types import SimpleNamespace

    from xraybag.engine.ct import recon
    from xraybag.engine.ct.forward import trace_views
    from xraybag.engine.ct.voxelize import voxelize
    from xraybag.engine.ct.zeff import zeff_rho_e
    from xraybag.engine.output import memory
    from xraybag.engine.xray import devices
    from xraybag.engine.xray.detect import detect

    calls, bps, dets, decs = [], [], [], []

    def counting(solids, geom, views=None, materials=None, on_device=False, mesh=None):
        calls.append(views)
        return trace_views(solids, geom, views, materials, mesh=mesh)

    helical = recon.helical_ssrb

    def counting_bp(*args, backend="numba", **kw):
        if backend == "cuda":
            bps.append(args[1])
        return helical(*args, backend="numba", **kw)

    def counting_detect(L, mats, scanner, resp, library, pixel_mm, draws):
        dets.append(draws)
        T = detect(L, mats, scanner, resp, library, None, pixel_mm, threads=True, draws=draws)
        return {ch: (-np.log(np.maximum(t, 1e-6))).astype(np.float32) for ch, t in T.items()}

    def counting_decompose(decomposer, p_low, p_high):
        decs.append("table")
        return decomposer.decompose(p_low, p_high)

    def counting_zeff(a_c, a_p, cal):
        decs.append("zeff")
        return zeff_rho_e(a_c, a_p, cal)

    def counting_labels(*args, **kw):
        decs.append("labels")
        return voxelize(*args, **kw)

    monkeypatch.setattr(devices, "probe_cuda", lambda: True)
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: float(80 << 30))
    monkeypatch.setitem(sys.modules, "xraybag.engine.ct.forward_cuda", SimpleNamespace(trace_views_cuda=counting))
    monkeypatch.setattr(recon, "helical_ssrb", counting_bp)
    monkeypatch.setitem(sys.modules, "xraybag.engine.xray.detect_cuda",
                        SimpleNamespace(line_integrals_cuda=counting_detect))
    monkeypatch.setitem(sys.modules, "xraybag.engine.ct.decompose_cuda",
                        SimpleNamespace(decompose_cuda=counting_decompose, zeff_rho_e_cuda=counting_zeff))
    monkeypatch.setitem(sys.modules, "xraybag.engine.ct.voxelize_cuda", SimpleNamespace(voxelize_cuda=counting_labels))
    text = SCENE.format(geometry="helical", cols=160, pitch=1.0).replace("views: 180", "views: 90")
    text = text.replace("      dicom: true\n      mar_pair: true\n", "")
    path = write(tmp_path / "ct.yaml", text)
    files = {}
    for device in ("cuda", "cpu"):
        before = len(calls), len(bps), len(dets), len(decs)
        r = run_cli("render", path, "-n", 1, "-o", tmp_path / device, "-q", "--device", device)
        assert r.exit_code == 0, r.output
        files[device] = sorted(p.relative_to(tmp_path / device) for p in (tmp_path / device / "ct").rglob("*.*"))
        assert (len(calls) > before[0]) == (len(bps) > before[1]) == (device == "cuda")
        assert (len(dets) > before[2]) == (device == "cuda")
        assert {"table", "zeff", "labels"} <= set(decs[before[3]:]) or device == "cpu"
        assert len(decs) == before[3] or device == "cuda"
    assert files["cuda"] == files["cpu"] and files["cpu"]
    arrays = [p for p in files["cpu"] if p.suffix == ".npy"]
    assert len(arrays) >= 8  # sinograms, four volumes, Zeff, electron density, labels
    for rel in arrays:
        assert (tmp_path / "cuda" / rel).read_bytes() == (tmp_path / "cpu" / rel).read_bytes(), rel


def test_a_ct_bag_too_large_for_the_gpu_is_refused_before_any_work(tmp_path, monkeypatch):
    """``render --device cuda`` runs the whole CT scan on the GPU: a scene whose bag needs more
    GPU memory than is free is refused with one line (exit 2) before any work; with enough free
    memory, or with ``--device cpu``, the GPU's memory is not a limit. The estimate holds at least
    the four volumes that stay on the GPU (low, high, Compton, photoelectric) and grows with them."""
    from xraybag.engine.ct.scan import gpu_memory, plan
    from xraybag.engine.output import memory
    from xraybag.engine.xray import devices
    from xraybag.scenes.loader import load_scene

    path = scene(tmp_path, geometry="helical", cols=180, pitch=1.0)
    spec = load_scene(str(path)).spec
    ct = spec.scanners[0]
    need, what = gpu_memory(ct, spec, 3)
    assert need >= 4 * 4 * int(np.prod(plan(ct.ct, spec)[1].shape)) and "on the GPU" in what
    finer = ct.model_copy(update={"ct": ct.ct.model_copy(update={"voxel": ct.ct.voxel / 2})})
    voxels = int(np.prod(plan(finer.ct, spec)[1].shape))
    assert gpu_memory(finer, spec, 3)[0] >= 16 * voxels and gpu_memory(finer, spec, 3)[0] > need
    voxel = ct.model_copy(update={"ct": ct.ct.model_copy(update={"projector": "numba"})})
    assert gpu_memory(voxel, spec, 3) == (0, "")  # the voxel projectors are the scanner's choice

    monkeypatch.setattr(devices, "probe_cuda", lambda: True)
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: need / 2)
    out = tmp_path / "out"
    r = run_cli("render", path, "-n", "1", "-o", out, "--device", "cuda")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "GiB of GPU memory" in lines[0] and "ct.yaml" in lines[0], r.output
    assert not out.exists()
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: 100.0 * need)
    assert memory.check_gpu_memory(load_scene(str(path))) == pytest.approx(need, rel=0.5)
    r = run_cli("render", path, "-n", "1", "-o", out, "--device", "cpu", "-q")
    assert r.exit_code == 0, r.output
