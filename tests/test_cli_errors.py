"""Bad input to the CLI found by fuzzing: each is one line on stderr (``error: ...``), exit status 2,
no traceback and nothing left behind. Output paths that cannot be written (A), ``--scheduler``
(B), ``pack --pitch`` (C), a dataset whose annotations.json is not JSON (D), a catalog ``--set``
value that breaks a rule (E), click's own usage errors (F) and ``pack`` outputs over its input or
over each other (G)."""

from __future__ import annotations

import errno
import os

import pytest
from helpers import run_cli, write

import xraybag.cli.main as cli_main

SCENE = """
    bag: {size: [200, 150, 100]}
    scanners: [{name: top, type: line_scan, pitch: 4, spectrum: {kvp: 140}}]
    objects: [{name: a, shape: {box: {size: [10, 10, 10]}}, material: water}]
    """


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A folder with a scene S.yaml and a regular file ``afile``, as the working directory."""
    write(tmp_path / "S.yaml", SCENE)
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def one_line(r, *parts) -> str:
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in r.output, r.stderr
    for p in parts:
        assert p in err, err
    return err


# ------------------------------------------------------------------- A: output paths not writable


@pytest.mark.parametrize("args, option", [
    (("render", "S.yaml", "-n", 1, "-q", "-o", "afile/sub"), "-o"),
    (("render", "S.yaml", "-n", 1, "-q", "-o", "afile/sub/deeper"), "-o"),
    (("pack", "S.yaml", "-o", "afile/sub"), "-o"),
    (("pack", "S.yaml", "-o", "p", "--glb", "afile/x.glb"), "--glb"),
    (("pack", "S.yaml", "-o", "p", "--yaml", "afile/x.yaml"), "--yaml"),
    (("catalog", "export", "chef_knife", "-o", "afile/sub"), "-o"),
    (("catalog", "export", "chef_knife", "--glb", "afile/x.glb"), "--glb"),
    (("catalog", "show", "chef_knife", "--preview", "afile/x.png"), "--preview"),
    (("preview", ".", "-o", "afile/sub"), "-o"),
])
def test_an_output_path_under_a_file_is_refused_before_any_work(here, args, option):
    before = files(here)
    err = one_line(run_cli(*args), f"'{option}", "afile is a file, not a folder")
    assert "cannot write afile/" in err
    assert files(here) == before


def test_a_read_only_output_folder_is_refused_naming_it(here, monkeypatch):
    """Root writes in a chmod'ed folder: the OS's answer is simulated (a read-only file system)."""
    (here / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: not (str(p).endswith("ro") and mode & os.W_OK)
                        and real(p, mode, **kw))
    monkeypatch.setattr(os, "statvfs", lambda p: type("V", (), {"f_flag": os.ST_RDONLY})())
    for args in (("render", "S.yaml", "-n", 1, "-q", "-o", "ro"), ("pack", "S.yaml", "-o", "ro"),
                 ("catalog", "export", "chef_knife", "-o", "ro"), ("preview", ".", "-o", "ro/sub")):
        one_line(run_cli(*args), "cannot write ro", "read-only file system")
    one_line(run_cli("pack", "S.yaml", "-o", "p", "--png", "ro/x.png"), "cannot write ro/x.png: read-only")
    assert files(here / "ro") == set() and not (here / "p").exists()


def test_an_os_error_on_an_output_path_is_one_line_and_others_keep_their_traceback(here, monkeypatch):
    from xraybag.engine.output import export

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("xraybag.engine.output.files.write_atomic", full)
    one_line(run_cli("pack", "S.yaml", "-o", "out"), "out/bag_000000.glb: No space left on device")

    def bug(*args, **kwargs):  # an OSError on a path the command does not write: a bug
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere/table.npz")

    monkeypatch.setattr(export, "bag_png", bug)
    monkeypatch.setattr("xraybag.engine.output.files.write_atomic", lambda path, data: None)
    with pytest.raises(FileNotFoundError):
        run_cli("pack", "S.yaml", "-o", "out")


# ------------------------------------------------------------------------------- B: --scheduler


@pytest.mark.parametrize("address", ["not a url", "tcp://host", "tcp://host:99999", "http://host:8786"])
def test_a_malformed_scheduler_address_is_refused(here, address):
    one_line(run_cli("render", "S.yaml", "-n", 1, "-q", "-o", "out", "--scheduler", address),
             "'--scheduler'", "not a Dask scheduler address")
    assert not (here / "out").exists()


def test_a_scheduler_that_does_not_answer_is_one_line_and_leaves_no_folder(here, monkeypatch):
    monkeypatch.setattr(cli_main, "SCHEDULER_TIMEOUT", 1)
    one_line(run_cli("render", "S.yaml", "-n", 1, "-q", "-o", "out", "--scheduler", "tcp://127.0.0.1:1"),
             "--scheduler tcp://127.0.0.1:1: cannot connect to the Dask scheduler")
    assert not (here / "out").exists()


# ----------------------------------------------------------------------------- C: pack --pitch


@pytest.mark.parametrize("pitch, words", [("nan", "not a finite number"), ("inf", "not a finite number"),
                                          ("-inf", "not in the range"), ("0", "not in the range")])
def test_pack_refuses_a_non_finite_or_non_positive_pitch(here, pitch, words):
    one_line(run_cli("pack", "S.yaml", "-o", "out", "--pitch", pitch), "'--pitch'", words)
    assert not (here / "out").exists() and not list(here.glob("bag_*"))


# ---------------------------------------------------------------- D: annotations.json not JSON


def test_preview_of_a_dataset_whose_annotations_are_not_json(here):
    (here / "ds").mkdir()
    (here / "ds" / "annotations.json").write_text('{"images": [\n  {bad')
    one_line(run_cli("preview", "ds"), "annotations.json:2:4:", "not valid JSON")
    (here / "ds" / "annotations.json").write_text("[1, 2]")
    one_line(run_cli("preview", "ds"), "annotations.json", "not COCO annotations")
    assert files(here / "ds") == {"annotations.json"}


def test_preview_of_a_dataset_missing_an_image_names_it(here):
    """annotations.json lists an image the folder no longer has (or one that is not an image):
    one line naming it, and no contact sheet written."""
    (here / "ds" / "images").mkdir(parents=True)
    coco = ('{"categories": [], "annotations": [], "images": [{"id": 0, "file_name": "images/0_top.png", '
            '"bag": 0, "view": "top"}]}')
    (here / "ds" / "annotations.json").write_text(coco)
    one_line(run_cli("preview", "ds"), "images/0_top.png", "cannot be read", "No such file")
    (here / "ds" / "images" / "0_top.png").write_text("not a png")
    one_line(run_cli("preview", "ds"), "images/0_top.png", "cannot be read")
    assert files(here / "ds") == {"annotations.json", "images/0_top.png"}


# ---------------------------------------------------------------- E: catalog --set breaks a rule


@pytest.mark.parametrize("command", [("export", "-o", "out"), ("show", "--preview", "out/x.png")])
def test_a_catalog_parameter_that_breaks_a_rule_is_named(here, command):
    verb, *rest = command
    one_line(run_cli("catalog", verb, "chef_knife", *rest, "--set", "blade_length=1e9"),
             "--set blade_length:", "breaks a rule", "expected finite numbers")
    assert not (here / "out").exists()


# ------------------------------------------------------------------- F: click's usage errors


@pytest.mark.parametrize("args, words", [
    (("render", "S.yaml", "-o", "out", "-n", "0"), "Invalid value for '-n': 0 is not in the range x>=1."),
    (("render", "S.yaml", "-o", "out", "-n", "abc"), "Invalid value for '-n'"),
    (("render", "S.yaml", "-o", "out", "--workers", "0"), "Invalid value for '--workers'"),
    (("render", "S.yaml", "-o", "out", "--device", "tpu"), "'tpu' is not one of"),
    (("render", "S.yaml", "-o", "out", "--seed", "-1"), "Invalid value for '--seed'"),
    (("render", "S.yaml", "-o", "out", "--bogus"), "No such option"),
    (("render", "S.yaml", "extra", "-o", "out"), "unexpected extra argument"),
    (("render", "S.yaml"), "Missing option '-o'"),
    (("preview", "missing"), "'missing' does not exist"),
    (("bogus",), "No such command 'bogus'"),
    (("catalog", "show"), "Missing argument 'NAME'"),
])
def test_usage_errors_are_one_line_with_a_pointer_to_help(here, args, words):
    err = one_line(run_cli(*args), words)
    command = "" if args[0] == "bogus" else " catalog show" if args[0] == "catalog" else f" {args[0]}"
    assert err.endswith(f"{command} --help')") and "(see '" in err, err  # the prog's name is 'cli' here
    assert not (here / "out").exists()


def test_help_and_a_bare_group_still_show_the_help():
    r = run_cli("render", "--help")
    assert r.exit_code == 0 and r.output.startswith("Usage: ") and "--scheduler" in r.output
    r = run_cli("catalog")
    assert r.exit_code == 2 and "Commands:" in r.output and "export" in r.output


# ------------------------------------------------------------ G: pack writing over its own files


@pytest.mark.parametrize("args, words", [
    (("--yaml", "S.yaml"), "S.yaml: --yaml would overwrite the input scene"),
    (("--glb", "a", "--png", "a", "--yaml", "a"), "a: --png would overwrite --glb"),
    (("--png", "p/bag_000000.glb"), "--png would overwrite the GLB file in -o"),
])
def test_pack_refuses_an_output_over_its_input_or_another_output(here, args, words):
    before = {p: (here / p).read_bytes() for p in files(here)}
    one_line(run_cli("pack", "S.yaml", "-o", "p", *args), words)
    assert {p: (here / p).read_bytes() for p in files(here)} == before


def test_pack_refuses_an_output_folder_whose_default_yaml_is_the_input(here):
    write(here / "bag_000000.yaml", SCENE)
    one_line(run_cli("pack", "bag_000000.yaml"), "the YAML file in -o would overwrite the input scene",
             "choose another -o or --yaml")
