"""Bad input refused up front (one line at file:line:col and field, exit status 2, no traceback, no
output folder), the random streams `validate` shares with `render`, commands whose module fails to
import, and the GPU libraries probed only on use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from helpers import run_cli, write

CT_SCANNER = """
  - name: ct
    type: ct
    noise: false
    {spectrum}
    ct: {{sid: 400, sdd: 700, bore: 300, views: 90, cols: 160, col_pitch: 1.8, rows: 4,
          row_pitch: 2.0, voxel: 4.0{ct}}}
"""


def ct_scene(tmp_path, spectrum="", ct=""):
    return write(tmp_path / "ct.yaml", """
        bag: {size: [60, 120, 80]}
        objects:
          - {name: bar, shape: {box: {size: [40, 20, 20]}}, material: aluminium}
        scanners:""" + textwrap.indent(CT_SCANNER.format(spectrum=spectrum, ct=ct), "        "))


def assert_refused(r, out, where: str, words: str) -> None:
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in r.output, r.stderr
    assert where in line and words in line, line
    if out is not None:
        assert not out.exists()


# ------------------------------------------------------------------------ objects outside the bag


def test_object_placed_outside_the_bag_is_refused_at_its_line(tmp_path):
    scene = write(tmp_path / "big.yaml", """
        bag: {size: [500, 350, 220]}
        objects:
          - name: plank
            shape: {box: {size: [900, 100, 20]}}
            material: pine
            pose: {position: [0, 0, 10]}
        """)
    out = tmp_path / "out"
    for command in (("render", scene, "-n", 1, "-o", out, "-q"), ("validate", scene),
                    ("pack", scene, "-o", out)):
        r = run_cli(*command)
        assert_refused(r, out, "big.yaml:6:", "objects[0].pose.position")
        assert "200.0 mm outside the bag on its -x side" in r.stderr  # 900 mm centred in 500: both ends


def test_object_placed_inside_the_bag_renders(tmp_path):
    scene = write(tmp_path / "fits.yaml", """
        bag: {size: [500, 350, 220]}
        objects:
          - {name: plank, shape: {box: {size: [500, 100, 20]}}, material: pine,
             pose: {position: [0, 0, 10]}}
        scanners: [{name: top, type: line_scan, pitch: 4}]
        """)
    r = run_cli("render", scene, "-n", 1, "-o", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output


def test_object_with_a_sampled_pose_outside_the_bag_is_left_out_with_the_reason(tmp_path):
    scene = write(tmp_path / "drawn.yaml", """
        seed: 4
        bag: {size: [300, 200, 120]}
        objects:
          - {name: inside, shape: {box: {size: [40, 40, 20]}}, material: pine}
          - name: drifter
            shape: {box: {size: [100, 40, 20]}}
            material: pine
            pose: {position: [{uniform: [200, 260]}, 0, 10]}
        packing: {method: random}
        scanners: [{name: top, type: line_scan, pitch: 4}]
        """)
    out = tmp_path / "out"
    r = run_cli("render", scene, "-n", 2, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    for rec in records:
        assert rec["objects"] == 1
        (name, reason), = rec["left_out"]
        assert name == "drifter" and "mm outside the bag (+x side)" in reason


# ------------------------------------------------------------------------------------ CT scanners


def test_ct_with_a_monochromatic_spectrum_and_two_layers_is_refused(tmp_path):
    scene = ct_scene(tmp_path, spectrum="spectrum: {mono_kev: 60, photons: 100000}")
    out = tmp_path / "out"
    for command in (("validate", scene), ("render", scene, "-n", 1, "-o", out, "-q")):
        r = run_cli(*command)
        assert_refused(r, out, "ct.yaml:", "scanners[0].spectrum.mono_kev")
        assert "mode: single" in r.stderr


def test_ct_with_a_monochromatic_spectrum_single_mode_is_accepted(tmp_path):
    scene = ct_scene(tmp_path, spectrum="spectrum: {mono_kev: 60, photons: 100000}", ct=", mode: single")
    r = run_cli("validate", scene)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("projector", ["cupy", "astra"])
def test_gpu_projector_without_cuda_is_refused_before_any_work(tmp_path, projector):
    from xraybag.engine.ct.project import backend_problem

    if backend_problem(projector) is None:
        pytest.skip(f"{projector} runs on this machine")
    scene = ct_scene(tmp_path, ct=f", projector: {projector}")
    out = tmp_path / "out"
    for command in (("validate", scene), ("render", scene, "-n", 1, "-o", out, "-q")):
        r = run_cli(*command)
        assert_refused(r, out, "ct.yaml:", "scanners[0].ct.projector")
        assert "cannot run here" in r.stderr


def test_gpu_libraries_are_probed_on_use_not_on_import():
    code = ("import sys; import xraybag.engine.ct.project, xraybag.engine.ct.recon, "
            "xraybag.engine.ct.iterative, xraybag.engine.output.dataset, xraybag.cli.main; "
            "print(sorted(m for m in ('cupy', 'astra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out


# ---------------------------------------------------------------------- validate packs like render


def test_validate_packs_the_bags_render_makes(tmp_path):
    scene = write(tmp_path / "crowded.yaml", """
        seed: 2
        bag: {size: [200, 150, 60]}
        objects:
          - repeat: 14
            shape: {box: {size: [{uniform: [40, 80]}, {uniform: [30, 60]}, {uniform: [15, 30]}]}}
            material: pine
        packing: {method: random, attempts: 20}
        scanners: [{name: top, type: line_scan, pitch: 4}]
        """)
    out = tmp_path / "out"
    r = run_cli("render", scene, "-n", 3, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    left = sum(len(rec["left_out"]) for rec in records)
    assert left > 0  # the check below would mean nothing if every bag fitted
    r = run_cli("validate", scene, "-n", 3)
    assert r.exit_code == 0, r.output
    assert f"{left} object(s) left out by packing in 3 sampled bag(s)" in r.output


# ----------------------------------------------------------------- commands that fail to import


def test_a_command_whose_module_fails_to_import_says_so(tmp_path):
    code = textwrap.dedent("""
        import sys
        class Broken:
            def find_spec(self, name, path=None, target=None):
                if name == "xraybag.cli.catalog":
                    raise ImportError("simulated: a dependency of the catalog is missing")
        sys.meta_path.insert(0, Broken())
        from xraybag.cli.main import main
        sys.argv = ["xraybag"] + sys.argv[1:]
        main()
    """)
    run = [sys.executable, "-c", code]
    helped = subprocess.run(run + ["--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    assert "catalog" in helped.stdout and "unavailable: ImportError: simulated" in helped.stdout
    assert "materials" in helped.stdout  # the others are still there
    used = subprocess.run(run + ["catalog", "list"], capture_output=True, text=True)
    assert used.returncode == 2
    assert used.stderr.strip().count("\n") == 0 and "Traceback" not in used.stderr
    assert "'catalog' command could not be loaded" in used.stderr
    works = subprocess.run(run + ["materials", "show", "water"], capture_output=True, text=True)
    assert works.returncode == 0, works.stderr
