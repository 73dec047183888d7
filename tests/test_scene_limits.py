"""Scenes that could never render (impossible draws, values beyond the physics' range, counts and
sizes that would hang or exhaust memory) are refused up front, by ``validate`` and ``render`` alike:
exit status 2, one line naming the file, line and field, no traceback and no output folder."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import run_cli, write

from xraybag.scenes.numbers import Bounds, normal_chance, number, parse_dist

LINE = "  - {name: top, type: line_scan, pitch: 4, spectrum: {kvp: 140}}"
BOX = "  - {name: a, shape: {box: {size: [10, 10, 10]}}, material: water}"


def scene_text(scanner: str = LINE, obj: str = BOX, extra: str = "") -> str:
    return f"bag: {{size: [200, 150, 100]}}\nscanners:\n{scanner}\nobjects:\n{obj}\n{extra}"


def assert_refused(r, out, field: str, words: str, line: int | None = None) -> str:
    assert r.exit_code == 2, r.output
    text = r.stderr.strip()
    assert "\n" not in text and "Traceback" not in r.output, r.stderr
    m = re.search(r"s\.yaml:(\d+):\d+: (\S+): ", text)
    assert m, text
    if line is not None:
        assert int(m.group(1)) == line, text
    assert m.group(2) == field, text
    assert words in text, text
    if out is not None:
        assert not out.exists(), "a refused render made its output folder"
    return text


def refused_both(tmp_path, text: str, field: str, words: str, line: int | None = None) -> None:
    path = write(tmp_path / "s.yaml", text)
    assert_refused(run_cli("validate", path), None, field, words, line)
    out = tmp_path / "out"
    assert_refused(run_cli("render", path, "-q", "-o", out), out, field, words, line)


S = "  - {name: top, type: line_scan, pitch: 4, spectrum: %s}"
CASES = {
    # 1: a normal draw that can never be positive
    "normal": ({"obj": "  - {name: a, shape: {sphere: {radius: {normal: [-1000, 0.001]}}}, material: water}"},
               "objects[0].shape.sphere.radius", "almost never gives a positive number", 5),
    # 2a: bounds where the limits are known
    "kvp_high": ({"scanner": S % "{kvp: 100000}"}, "scanners[0].spectrum.kvp", "<= 500", 3),
    "kvp_low": ({"scanner": S % "{kvp: 1}"}, "scanners[0].spectrum.kvp", ">= 10", 3),
    "mono_kev": ({"scanner": S % "{mono_kev: 1e7}"}, "scanners[0].spectrum.mono_kev", "<= 800", 3),
    "table_nan": ({"scanner": S % "{table: [[.nan, 1], [50, 1]]}"}, "scanners[0].spectrum", "finite", 3),
    "energy_bin": ({"scanner": S % "{kvp: 140, energy_bin: 1e-6}"}, "scanners[0].spectrum.energy_bin", ">= 0.1", 3),
    "wall_box": ({"obj": "  - {name: a, shape: {box: {size: [10, 10, 10]}}, material: water, container: {wall: 20}}"},
                 "objects[0]", "container.wall: 20 mm leaves no cavity", 5),
    "wall_cone": ({"obj": "  - {name: a, shape: {cone: {radius_bottom: 10, radius_top: 0, height: 30}}, "
                       "material: water, container: {wall: 9.99, fill: {material: water, level: 0.5}}}"},
                  "objects[0]", "no cavity in the cone", 5),
    "wall_part": ({"obj": "  - {name: a, parts: [{shape: {sphere: {radius: 5}}, material: water, container: {wall: 5}}]}"},
                  "objects[0].parts[0]", "no cavity in the sphere", 5),
    "drape_ragged": ({"obj": "  - {name: s, material: water, sheet: {size: [50, 50], thickness: 1, drape: [[1, 2], [3]]}}"},
                     "objects[0].sheet", "rows of the same length", 5),
    "drape_nan": ({"obj": "  - {name: s, material: water, sheet: {size: [50, 50], thickness: 1, drape: [[.nan, 1], [1, 1]]}}"},
                  "objects[0].sheet", "finite heights", 5),
    # 2b: the preflight's builds
    "filtration": ({"scanner": S % "{kvp: 140, filtration: {Pb: 1000}}"}, "scanners[0].spectrum.filtration",
                   "no photons", 3),
    "thresholds": ({"scanner": "  - {name: top, type: line_scan, pitch: 4, spectrum: {kvp: 80}, "
                        "detector: {type: photon_counting, thresholds: [20, 500]}}"},
                   "scanners[0].detector.thresholds", "receives no photons", 3),
    "catalog_param": ({"obj": "  - {template: chef_knife, params: {blade_length: 1e9}}"}, "objects[0]",
                      "chef_knife", 5),
    # 3: counts and sizes
    "repeat": ({"obj": "  - {name: a, repeat: 1000000000, shape: {box: {size: [1, 1, 1]}}, material: water}"},
               "objects[0].repeat", "<= 10000", 5),
    "objects_total": ({"obj": "  - {name: a, repeat: 6000, shape: {box: {size: [1, 1, 1]}}, material: water}\n"
                           "  - {name: b, repeat: {uniform_int: [1, 6000]}, shape: {box: {size: [1, 1, 1]}}, material: water}"},
                      "objects", "at most 10000", 5),
    "blur": ({"scanner": "  - {name: top, type: line_scan, pitch: 4, noise: {blur: 1e6}}"},
             "scanners[0].noise.blur", "<= 200", 3),
    "zip_pitch": ({"obj": "  - {name: s, material: water, sheet: {size: [50, 50], thickness: 1, fittings: "
                       "[{kind: zip, at: [0, 0], to: [10, 0], material: water, pitch: 0.00001}]}}"},
                  "objects[0].sheet.fittings[0].pitch", ">= 0.5", 5),
    "packings": ({"extra": "packing: {method: physics, packings: 1000000000}"}, "packing.packings", "<= 100", 6),
    "attempts": ({"extra": "packing: {attempts: 1000000000}"}, "packing.attempts", "<= 100000", 6),
    # 4: CT
    "ct_views": ({"scanner": "  - {name: ct, type: ct, ct: {views: 100000000}}"}, "scanners[0].ct.views", "<= 20000", 3),
    "ct_supersample": ({"scanner": "  - {name: ct, type: ct, ct: {supersample: 100000}}"},
                       "scanners[0].ct.supersample", "<= 8", 3),
    # 6: memory refusals at the field that asks for it
    "pitch_memory": ({"scanner": "  - {name: top, type: line_scan, pitch: 0.0001}"}, "scanners[0].pitch", "GiB", 3),
    "panel_memory": ({"scanner": "  - {name: top, type: radiograph, pitch: 0.1, panel: [1e5, 1e5]}"},
                     "scanners[0].pitch", "GiB", 3),
    "voxel_memory": ({"scanner": "  - {name: ct, type: ct, ct: {voxel: 0.001}}"}, "scanners[0].ct.voxel", "GiB", 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_up_front_at_the_field(tmp_path, case):
    parts, field, words, line = CASES[case]
    refused_both(tmp_path, scene_text(**parts), field, words, line)


def test_too_many_workers_names_the_view_that_needs_the_memory(tmp_path):
    path = write(tmp_path / "s.yaml", scene_text())
    out = tmp_path / "out"
    assert_refused(run_cli("render", path, "-q", "-o", out, "--workers", "100000"), out,
                   "scanners[0].pitch", "100000 worker(s)", 3)


@pytest.mark.parametrize("n", ["100000000", "99999999999999999999999"])
def test_absurd_bag_counts_are_refused_before_any_work(tmp_path, n):
    path = write(tmp_path / "s.yaml", scene_text())
    out = tmp_path / "out"
    r = run_cli("render", path, "-q", "-o", out, "-n", n)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.output, r.stderr
    assert "at most 10000000 bags" in r.stderr
    assert not out.exists()


def test_a_refused_render_leaves_the_folder_free_for_the_corrected_scene(tmp_path):
    out = tmp_path / "out"
    bad = write(tmp_path / "s.yaml", scene_text(scanner=S % "{kvp: 140, filtration: {Pb: 1000}}"))
    assert run_cli("render", bad, "-q", "-o", out).exit_code == 2
    assert not out.exists()
    good = write(tmp_path / "s.yaml", scene_text())
    r = run_cli("render", good, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    assert (out / "manifest.jsonl").read_text().count("\n") == 1


# ------------------------------------------------------------------------------- the models


def test_a_rare_but_possible_normal_is_drawn_inside_its_bounds():
    """A normal that lands inside its bounds rarely (0.13 %, more than the 0.1 % refused) is kept,
    and its draws are always inside, also where 1000 redraws would all miss (the tail is drawn)."""
    bounds = Bounds(gt=0)
    assert normal_chance(-3.0, 1.0, bounds) > 1e-3
    d = parse_dist({"normal": [-3.0, 1.0]}, bounds, "a positive number")
    rng = np.random.default_rng(1)
    assert all(d.draw(rng) > 0 for _ in range(200))
    from xraybag.scenes.numbers import _truncated_normal

    ints = Bounds(ge=0, le=3, integer=True)
    draws = {_truncated_normal(-40.0, 10.0, ints, rng) for _ in range(50)}
    assert draws <= {0, 1, 2, 3} and all(isinstance(x, int) for x in draws)


def test_an_impossible_integer_normal_is_refused_by_the_type():
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError, match="almost never gives an integer"):
        TypeAdapter(number(ge=1, le=4, integer=True)).validate_python({"normal": [100, 1]})


def test_mono_and_table_sources_default_to_1e5_photons_as_documented():
    from pathlib import Path

    from xraybag.materials.spectra import DEFAULT_PHOTONS, exposure_scale
    from xraybag.scenes.models import Spectrum

    assert DEFAULT_PHOTONS == 1e5
    assert exposure_scale(Spectrum(mono_kev=60), 1.0, 1000.0) == 1e5
    assert exposure_scale(Spectrum(table=[[40, 1], [60, 2]]), 1.0, 1000.0) == 1e5
    doc = (Path(__file__).parent.parent / "docs" / "scene-format.md").read_text()
    row = next(r for r in doc.splitlines() if r.startswith("| `photons`"))
    assert "without it: 1e5" in row and "required" not in row


def test_ct_memory_estimate_covers_the_label_supersampling():
    from xraybag.engine.ct.scan import plan, scan_memory, voxelize_rays
    from xraybag.scenes.models import Scene

    def scene(s):
        return Scene.model_validate({"bag": {"size": [200, 150, 100]},
                                     "scanners": [{"name": "ct", "type": "ct", "ct": {"supersample": s}}]})

    lo, hi = scene(1), scene(8)
    grid = plan(hi.scanners[0].ct, hi)[1]
    gap = scan_memory(hi.scanners[0], hi, 3)[0] - scan_memory(lo.scanners[0], lo, 3)[0]
    assert gap == voxelize_rays(grid, 8) - voxelize_rays(grid, 1) > 0


def test_models_still_export_the_scanner_parts():
    from xraybag.scenes import models, scanning

    for name in ("Spectrum", "Detector", "Layer", "Noise", "Scatter", "CT", "CTReconstruction"):
        assert getattr(models, name) is getattr(scanning, name)


def test_validate_with_a_seed_checks_the_first_bag_that_render_with_that_seed_draws(tmp_path):
    """A wall drawn from 1-9 mm on a 10 mm box leaves no cavity in some bags: the first bag of seed
    1 draws 5.09 mm (refused) and that of seed 2 a thinner one. ``validate --seed`` preflights the
    bag ``render --seed`` would make first, so both agree for either seed."""
    obj = ("  - {name: a, shape: {box: {size: [10, 10, 10]}}, material: water, "
           "container: {wall: {uniform: [1, 9]}}}")
    path = write(tmp_path / "s.yaml", "seed: 1\n" + scene_text(obj=obj))
    for seed, ok in (("1", False), ("2", True)):
        out = tmp_path / f"out{seed}"
        v = run_cli("validate", path, "--seed", seed)
        r = run_cli("render", path, "--seed", seed, "-n", "1", "-q", "-o", out)
        assert (v.exit_code == 0) == ok and (r.exit_code == 0) == ok, (seed, v.stderr, r.stderr)
        if not ok:
            assert_refused(v, None, "objects[0]", "leaves no cavity", 6)
            assert_refused(r, out, "objects[0]", "leaves no cavity", 6)
