"""One command-line grammar: ``-o/--out`` is a folder in every command, ``--set key.path=value``
changes a scene (render, validate, pack; a catalog entry's parameters in ``catalog export``),
progress bars go to stderr and ``-q`` hides them, ``xraybag scenes`` describes the built-ins."""

from __future__ import annotations

import json

import click
import pytest
from ruamel.yaml import YAML

from helpers import run_cli, write
from test_learners_cli import plugin  # noqa: F401 - the example learner plugin, as a fixture
from test_learners_data import make_dataset
from xraybag.cli.main import cli
from xraybag.engine.output.dataset import scene_identity
from xraybag.errors import XraybagError
from xraybag.scenes.loader import builtin_dir, builtin_scenes, load_scene

SCENE = """
seed: 5
bag: {size: [200, 150, 100]}
objects:
  - name: block
    shape: {box: {size: [60, 40, 20]}}
    material: aluminum
    label: block
  - name: bottle
    shape: {cylinder: {radius: 20, height: 60}}
    material: PET
    label: bottle
scanners:
  - {name: top, type: line_scan, pitch: 5, noise: false, tunnel: [300, 200], source_distance: 700}
"""

# a CT bag small enough to scan in a few seconds (a helical scan of 144 views)
CT_SCENE = """
seed: 3
bag: {size: [60, 80, 60], wall: {material: nylon, thickness: 1.5}}
objects:
  - {name: bar, label: metal_bar, shape: {box: {size: [30, 20, 20]}}, material: aluminium}
scanners:
  - name: ct
    type: ct
    noise: false
    ct: {geometry: helical, sid: 400, sdd: 700, bore: 300, views: 24, cols: 70, col_pitch: 3,
         rows: 8, row_pitch: 4.0, voxel: 4.0, previews: false}
"""


def _yaml(path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def _one_line_error(r, *parts):
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in r.output, r.output
    for p in parts:
        assert p in err, err


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A one-bag dataset rendered with overrides of a value, a list item, a list index and the seed."""
    root = tmp_path_factory.mktemp("grammar")
    scene = write(root / "s.yaml", SCENE)
    out = root / "out"
    sets = ["--set", "bag.size=[220, 160, 90]", "--set", "scanners.0.pitch=6", "--set", "seed=3",
            "--set", "objects.1.label=knife"]
    r = run_cli("render", scene, "-n", "1", "-o", out, *sets, "-q")
    assert r.exit_code == 0, r.output
    return root, scene, out, sets


# ------------------------------------------------------------------------------- -o is a folder


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_o_is_an_output_folder_and_overrides_are_set():
    seen = set()
    for path, cmd in _commands(cli):
        for p in cmd.params:
            if not isinstance(p, click.Option):
                continue
            assert "--output" not in p.opts and "--param" not in p.opts, (path, p.opts)
            if "-o" in p.opts or "--out" in p.opts:
                seen.add(" ".join(path))
                assert p.opts == ["-o", "--out"], (path, p.opts)
                assert isinstance(p.type, click.Path) and not p.type.file_okay, path
            if "--set" in p.opts:
                assert p.multiple and "=" in p.metavar, path
            if "-q" in p.opts:
                assert p.opts == ["-q", "--quiet"] and p.is_flag, path
    assert {"render", "pack", "preview", "catalog export", "learn train", "learn eval", "learn predict",
            "learn synthesize"} <= seen


def test_render_and_preview_write_into_folders(rendered, tmp_path):
    _, _, out, _ = rendered
    assert (out / "annotations.json").is_file() and (out / "scenes" / "000000.yaml").is_file()
    r = run_cli("preview", out)
    assert r.exit_code == 0, r.output
    assert (out / "preview.png").is_file() and r.stdout.strip() == str(out / "preview.png")
    r = run_cli("preview", out, "-o", tmp_path / "sheets")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sheets" / "preview.png").is_file()


def test_pack_writes_named_files_into_the_folder(rendered, tmp_path):
    _, scene, _, _ = rendered
    r = run_cli("pack", scene, "--index", "2", "-o", tmp_path / "p")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "bag_000002.glb", "bag_000002.png", "bag_000002.yaml"]
    r = run_cli("pack", scene, "-o", tmp_path / "q", "--glb", tmp_path / "mine.glb")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "mine.glb").is_file()
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["bag_000000.png", "bag_000000.yaml"]


def test_catalog_export_writes_name_glb_into_the_folder(tmp_path):
    r = run_cli("catalog", "export", "spanner", "-o", tmp_path / "c", "--set", "length={uniform: [150, 160]}")
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["spanner.glb"]
    r = run_cli("catalog", "export", "spanner", "--glb", tmp_path / "s.glb")
    assert r.exit_code == 0 and (tmp_path / "s.glb").is_file()
    _one_line_error(run_cli("catalog", "export", "spanner", "-o", tmp_path / "d", "--set", "params.length=3"),
                    "--set params.length", "plain names")
    _one_line_error(run_cli("catalog", "export", "spanner", "-o", tmp_path / "d", "--set", "lenght=3"),
                    "--set lenght", "did you mean 'length'")
    assert not (tmp_path / "d").exists()


def test_learn_eval_out_is_a_folder_and_bars_hide_with_q(plugin, tmp_path):  # noqa: F811
    data = make_dataset(tmp_path / "data", bags=4)
    r = run_cli("learn", "train", "mean_box", "--data", data, "-o", tmp_path / "run", "-q")
    assert r.exit_code == 0, r.output
    weights = tmp_path / "run" / "weights.json"
    r = run_cli("learn", "eval", "mean_box", "--weights", weights, "--data", data, "--split", "all",
                "-o", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "ev").iterdir()} == {"metrics.json", "results.json"}
    assert json.loads(r.stdout)["split"] == "all"  # stdout stays machine-readable
    assert "8/8" in r.stderr and "image" in r.stderr  # images processed, on stderr
    r = run_cli("learn", "predict", "mean_box", "--weights", weights, "--data", data, "-o", tmp_path / "pr")
    assert r.exit_code == 0 and "8/8" in r.stderr and (tmp_path / "pr" / "results.json").is_file()
    r = run_cli("learn", "predict", "mean_box", "--weights", weights, "--data", data, "-o", tmp_path / "pq", "-q")
    assert r.exit_code == 0 and r.stderr == ""


# ------------------------------------------------------------------------------------------ --set


def test_set_changes_the_rendered_scene(rendered):
    _, _, out, _ = rendered
    concrete = _yaml(out / "scenes" / "000000.yaml")
    assert concrete["bag"]["size"] == [220.0, 160.0, 90.0]
    assert concrete["scanners"][0]["pitch"] == 6.0
    assert [o["label"] for o in concrete["objects"]] == ["block", "knife"]
    assert json.loads((out / ".xraybag" / "run.json").read_text())["seed"] == 3
    coco = json.loads((out / "annotations.json").read_text())
    assert {c["name"] for c in coco["categories"]} == {"block", "knife"}


def test_set_is_part_of_the_dataset_identity(rendered):
    root, scene, out, sets = rendered
    same = run_cli("render", scene, "-n", "1", "-o", out, *sets, "-q")
    assert same.exit_code == 0 and "1 already there" in same.stdout, same.output
    other = [*sets[:-1], "objects.1.label=bottle"]
    _one_line_error(run_cli("render", scene, "-n", "1", "-o", out, *other, "-q"), "another scene or seed")
    _one_line_error(run_cli("render", scene, "-n", "1", "-o", out, "-q"), "another scene or seed")
    a = load_scene(scene, overrides=sets[1::2])
    b = load_scene(scene, overrides=other[1::2])
    assert scene_identity(a, 3)["scene_sha256"] != scene_identity(b, 3)["scene_sha256"]


def test_set_reaches_worker_processes(rendered, tmp_path):
    _, scene, _, sets = rendered
    out = tmp_path / "w"
    r = run_cli("render", scene, "-n", "2", "-o", out, "--workers", "2", *sets, "-q")
    assert r.exit_code == 0, r.output
    for bag in ("000000", "000001"):
        concrete = _yaml(out / "scenes" / f"{bag}.yaml")
        assert concrete["bag"]["size"] == [220.0, 160.0, 90.0] and concrete["objects"][1]["label"] == "knife"


def test_set_on_validate_and_pack(rendered, tmp_path):
    _, scene, _, _ = rendered
    r = run_cli("validate", scene, "--set", "bag.size=[{uniform: [200, 240]}, 160, 90]",
                "--set", "objects.0.material=copper")
    assert r.exit_code == 0 and ": ok" in r.stdout, r.output
    r = run_cli("pack", scene, "-o", tmp_path, "--set", "objects.0.material=copper")
    assert r.exit_code == 0, r.output
    assert _yaml(tmp_path / "bag_000000.yaml")["objects"][0]["material"] == "copper"


@pytest.mark.parametrize("override, parts", [
    ("bag.size=[1, 2]", ["--set bag.size: ", "expected 3 positive numbers"]),
    ("bag.sise=[1, 2, 3]", ["--set bag.sise: ", "unknown key 'sise'", "did you mean 'size'"]),
    ("bagg.size=3", ["--set bagg.size: ", "unknown key 'bagg'"]),
    ("scanners.4.pitch=2", ["--set scanners.4.pitch: ", "no item 4 in scanners"]),
    ("scanners.top.pitch=2", ["--set scanners.top.pitch: ", "expected an index"]),
    ("seed.x=2", ["--set seed.x: ", "not a mapping or a list"]),
    ("scanners.0.pitch=-1", ["--set scanners.0.pitch: "]),
    ("objects.0.material=unobtainium", ["--set objects.0.material: ", "unknown material"]),
    ("seed", ["--set 'seed': expected KEY.PATH=VALUE"]),
    ("bag.size=[1, 2", ["--set bag.size", "invalid YAML"]),
    ("seed=!!python/object/apply:os.system [ls]", ["--set seed", "tags are not allowed"]),
])
@pytest.mark.parametrize("command", ["render", "validate", "pack"])
def test_bad_set_one_line_exit_2_nothing_written(rendered, tmp_path, command, override, parts):
    _, scene, _, _ = rendered
    out = tmp_path / "out"
    args = [command, scene, "--set", override] + (["-o", out] if command != "validate" else [])
    _one_line_error(run_cli(*args), *parts)
    assert not out.exists()


def test_load_scene_overrides_leave_the_file_data_alone(rendered):
    _, scene, _, _ = rendered
    plain = load_scene(scene)
    changed = load_scene(scene, overrides=["objects.0.pose={position: [10, 0, 5]}", "tolerance=0.05"])
    assert changed.spec.objects[0].pose.position == [10.0, 0.0, 5.0] and changed.spec.tolerance == 0.05
    assert plain.spec.tolerance == load_scene(scene).spec.tolerance == 0.01
    with pytest.raises(XraybagError, match=r"^--set tolerance: "):
        load_scene(scene, overrides=["tolerance=0.05", "tolerance=99"])


# ---------------------------------------------------------------------------------- progress bars


def test_ct_render_shows_views_traced_on_stderr(tmp_path):
    scene = write(tmp_path / "ct.yaml", CT_SCENE)
    r = run_cli("render", scene, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("\n") == 1 and r.stdout.startswith("1 bags in ")
    assert "bag 000000 ct" in r.stderr and "144/144" in r.stderr and "view" in r.stderr
    assert (tmp_path / "out" / "ct" / "000000" / "mu_high.npy").is_file()


def test_q_hides_the_render_bar(rendered, tmp_path):
    _, scene, _, _ = rendered
    r = run_cli("render", scene, "-o", tmp_path / "o", "--set", "scanners.0.pitch=8", "-q")
    assert r.exit_code == 0 and r.stderr == ""
    r = run_cli("render", scene, "-o", tmp_path / "o", "--set", "scanners.0.pitch=8")
    assert r.exit_code == 0 and "1/1" in r.stderr and "bag" in r.stderr  # resumed: the bar says done


# ----------------------------------------------------------------------------------------- scenes


def test_scenes_lists_descriptions():
    r = run_cli("scenes")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == builtin_scenes()
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # every scene has a description
    rows = json.loads(run_cli("scenes", "--json").stdout)
    assert [row["name"] for row in rows] == builtin_scenes()
    for row in rows:
        first = (builtin_dir() / f"{row['name']}.yaml").read_text().splitlines()[0]
        assert first.startswith("# ") and row["description"] == first[2:].strip()
        assert row["description"] and row["description"] in r.stdout
    demo = next(row for row in rows if row["name"] == "demo")
    assert "demo bag" in demo["description"] and "knife" in demo["description"]
