"""Scene YAML that would hang, exhaust memory or crash the reader is refused before any work
starts, with one line naming the file, line, column and field: alias bombs ("billion laughs"),
deep nesting, integers too long to convert, explicit tags; YAML merge keys (``<<: *base``) work."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time

import pytest
from helpers import ROOT, run_cli, write

from xraybag.errors import XraybagError
from xraybag.scenes import yamlsrc
from xraybag.scenes.loader import load_scene
from xraybag.scenes.yamlsrc import parse_yaml, shared_budget

BASE = """\
bag: {size: [200, 150, 100]}
scanners: [{name: top, type: line_scan, pitch: 4, spectrum: {kvp: 140}}]
objects: [{name: a, shape: {box: {size: [10, 10, 10]}}, material: water}]
"""


def bomb(levels: int, width: int = 10, indent: str = "") -> str:
    """``levels`` lines of anchored lists, each ``width`` aliases of the one before (width**levels values)."""
    lines = [f"{indent}l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"{indent}l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]" for k in range(1, levels)]
    return "\n".join(lines) + "\n"


def refused(tmp_path, args, *parts, within=5.0):
    """``validate`` and ``render -o`` both exit 2 within ``within`` seconds with one stderr line
    holding ``parts`` (strings, or compiled patterns), and write nothing."""
    for command in ("validate", "render"):
        out = tmp_path / f"out_{command}"
        extra = ["-n", "1", "-o", out] if command == "render" else []
        start = time.perf_counter()
        r = run_cli(command, *args, *extra)
        took = time.perf_counter() - start
        err = r.stderr.strip()
        assert r.exit_code == 2, r.output
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in r.output, r.output
        for p in parts:
            assert (p.search(err) if isinstance(p, re.Pattern) else p in err), err
        assert not out.exists()
        assert took < within, f"{command} took {took:.1f} s"
    return err


# ------------------------------------------------------------------------------------- alias bombs


def test_alias_bomb_under_an_unknown_key(tmp_path):
    scene = write(tmp_path / "bag.yaml", BASE + bomb(6))  # 10**6 values once expanded
    refused(tmp_path, [scene], re.compile(r"bag\.yaml:8:\d+: l4\[\d\]: aliases expand to more than 100000 values"))


def test_alias_bomb_in_valid_fields(tmp_path):
    """templates t1..t6, each ten parts of the one before: 10**6 parts (the fuzzer's case had 10**7)."""
    part = "shape: {box: {size: [1, 1, 1]}}, material: water"
    lines = [f"  t0: &p0 {{{part}}}"]
    lines += [f"  t{k}: &p{k} {{{part}, parts: [{', '.join([f'*p{k - 1}'] * 10)}]}}" for k in range(1, 7)]
    text = BASE.replace("objects: [{name: a,", "objects: [{name: a, template: t6,") + "templates:\n" + "\n".join(lines)
    scene = write(tmp_path / "bag.yaml", text + "\n")
    refused(tmp_path, [scene], re.compile(r"bag\.yaml:9:\d+: templates\.t4\.parts\[\d\]: aliases expand"))


def test_alias_bomb_in_an_included_file(tmp_path):
    write(tmp_path / "inc" / "more.yaml", "templates: {}\n" + bomb(6))
    scene = write(tmp_path / "bag.yaml", "include: [inc/more.yaml]\n" + BASE)
    refused(tmp_path, [scene], re.compile(r"more\.yaml:6:\d+: l4\[\d\]: aliases expand to more than"))


def test_alias_bomb_in_a_set_value(tmp_path):
    scene = write(tmp_path / "bag.yaml", BASE)
    value = "[" + ", ".join(f"&l{k} [{', '.join([f'*l{k - 1}' if k else 'x'] * 10)}]" for k in range(7)) + "]"
    refused(tmp_path, [scene, "--set", f"objects.0.params={value}"],
            re.compile(r"--set objects\.0\.params:1:\d+: \[4\]\[\d\]: aliases expand to more than"))


def test_aliases_of_one_scene_share_one_budget():
    """A scene's files (main, includes, --set values) cannot each stay under the limit and add up."""
    text = bomb(5, width=8)  # 8 + 64 + ... + 8**5: about 37,000 values from aliases
    parse_yaml(text, "a.yaml"), parse_yaml(text, "b.yaml"), parse_yaml(text, "c.yaml")
    with shared_budget(), pytest.raises(XraybagError, match=r"^c\.yaml:5:\d+: l4\[\d\]: aliases expand"):
        for name in ("a.yaml", "b.yaml", "c.yaml"):
            parse_yaml(text, name)


def test_total_values_counted_with_aliases(monkeypatch):
    monkeypatch.setattr(yamlsrc, "MAX_NODES", 1000)
    parse_yaml(bomb(2, width=20), "ok.yaml")  # about 450 values
    with pytest.raises(XraybagError, match=r"^big\.yaml:3:\d+: l2\[\d+\]: more than 1000 values in one file"):
        parse_yaml(bomb(3, width=20), "big.yaml")


@pytest.mark.timeout(120)
def test_billion_laughs_from_the_command_line(tmp_path):
    """The fuzzer's case, nine levels of nine (9**9 values): refused in a fresh process, quickly
    and in little memory (6 GiB of address space at most, the interpreter and its libraries included)."""
    scene = write(tmp_path / "bag.yaml", BASE + bomb(9, width=9))
    out = tmp_path / "out"

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "xraybag.cli.main", "render", str(scene), "-n", "1", "-o", str(out)],
                       capture_output=True, text=True, timeout=90, env=env, preexec_fn=limit, check=False)
    took = time.perf_counter() - start
    assert p.returncode == 2, p.stderr[-2000:]
    err = p.stderr.strip()
    assert "\n" not in err and re.search(r"bag\.yaml:9:\d+: l5\[\d\]: aliases expand to more than 100000", err), err
    assert not out.exists()
    assert took < 60, took


def test_recursive_alias(tmp_path):
    scene = write(tmp_path / "bag.yaml", BASE + "extra: &a [1, *a]\n")
    refused(tmp_path, [scene], "bag.yaml:4:15: extra[1]: alias *a is inside the value it names")


def test_ordinary_aliases_and_merge_keys_load(tmp_path):
    """Anchors, aliases and merge keys as a user writes them: an object copied with changes."""
    scene = write(tmp_path / "bag.yaml", """\
        bag: {size: [200, 150, 100]}
        scanners: [{name: top, type: line_scan, pitch: 4, spectrum: {kvp: 140}}]
        objects:
          - &plate {name: a, shape: {box: {size: &s [10, 10, 10]}}, material: water}
          - {<<: *plate, name: b, material: aluminum}
          - {name: c, shape: {box: {size: *s}}, material: water}
        """)
    objects = load_scene(scene).spec.objects
    assert [o.name for o in objects] == ["a", "b", "c"]
    assert [o.material for o in objects] == ["water", "aluminum", "water"]
    assert objects[1].shape.box.size == objects[2].shape.box.size == [10, 10, 10]
    assert run_cli("validate", scene).exit_code == 0


def test_merged_keys_keep_their_positions(tmp_path):
    data, sm = parse_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\n", "m.yaml")
    assert data == {"base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}}
    assert sm.position(("c", "x")) == (1, 14)  # where base writes it
    assert sm.position(("c", "y")) == (2, 16)  # written in c itself
    # an error in a merged value names the line it is written on
    scene = write(tmp_path / "bag.yaml", """\
        bag: {size: [200, 150, 100]}
        scanners: [{name: top, type: line_scan, pitch: 4, spectrum: {kvp: 140}}]
        objects:
          - &o {name: a, shape: {box: {size: [10, 10, 10]}}, material: water}
          - {<<: *o, name: b, material: unobtainium}
        """)
    refused(tmp_path, [scene], "bag.yaml:5:33: objects[1].material: ")
    bad = write(tmp_path / "bad.yaml", BASE + "extra: {<<: 5}\n")
    refused(tmp_path, [bad], "bad.yaml:4:", "merging")


# ------------------------------------------------------------------------------------- deep nesting


@pytest.mark.parametrize("text, where", [
    (BASE.replace("material: water}", "material: water, params: " + "[" * 900 + "]" * 900 + "}"),
     re.compile(r"bag\.yaml:3:\d+: values nested more than 100 levels deep")),
    ("[" * 100_000, "bag.yaml:1:101: values nested more than 100 levels deep"),
    (BASE + "extra:\n" + "".join(" " * k + "- \n" for k in range(1, 150)),  # block style: the path is named
     re.compile(r"bag\.yaml:10\d:\d+: extra\[0\]\[0\]\[0\].*\[0\]: values nested more than 100 levels deep")),
    (BASE + "a: &a " + "[" * 60 + "]" * 60 + "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     re.compile(r"bag\.yaml:5:\d+: b\[0\].*\[0\]: values nested more than 100 levels deep \(with what this alias")),
])
def test_deep_nesting(tmp_path, text, where):
    scene = write(tmp_path / "bag.yaml", text)
    refused(tmp_path, [scene], where)


def test_deep_nesting_in_set_values(tmp_path):
    scene = write(tmp_path / "bag.yaml", BASE)
    refused(tmp_path, [scene, "--set", "objects.0.params=" + "[" * 3000],
            "--set objects.0.params:1:101: values nested more than 100 levels deep")
    # the key path counts: 3 parts + 98 brackets is over
    refused(tmp_path, [scene, "--set", "objects.0.params=" + "[" * 98 + "]" * 98],
            "--set objects.0.params:1:98: [0][0][0][0][0][0]...[0][0][0][0]: values nested more than 100")
    refused(tmp_path, [scene, "--set", ".".join(["a"] * 3000) + "=1"], "a key path of 3000 parts; at most 99")


def test_nesting_under_the_limit_is_read(tmp_path):
    data, _ = parse_yaml("a: " + "[" * 95 + "]" * 95, "ok.yaml")
    depth, x = 0, data["a"]
    while x != []:
        depth, x = depth + 1, x[0]
    assert depth == 94


# ---------------------------------------------------------------------------------- long integers


def test_long_integers(tmp_path):
    scene = write(tmp_path / "bag.yaml", "seed: " + "9" * 5000 + "\n" + BASE)
    refused(tmp_path, [scene], "bag.yaml:1:7: seed: an integer of 5000 digits; at most 300 are allowed")
    refused(tmp_path, [write(tmp_path / "ok.yaml", BASE), "--set", "seed=" + "9" * 5000],
            "--set seed:1:1: an integer of 5000 digits; at most 300 are allowed")
    # past a float's range, in a field that is a float
    scene = write(tmp_path / "big.yaml", BASE.replace("[200, 150, 100]", "[200, 150, 1" + "0" * 400 + "]"))
    refused(tmp_path, [scene], "big.yaml:1:24: bag.size[2]: an integer of 401 digits; at most 300")
    with pytest.raises(XraybagError, match=r"^h\.yaml:1:7: seed: an integer of 300 digits; at most 250"):
        parse_yaml("seed: 0x" + "f" * 300, "h.yaml")
    assert parse_yaml("seed: " + "9" * 300, "ok.yaml")[0]["seed"] == int("9" * 300)


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!bool maybe", "!!int " + "9" * 5000])
def test_explicit_tags_refused_before_they_are_built(tmp_path, value):
    scene = write(tmp_path / "bag.yaml", f"seed: {value}\n" + BASE)
    refused(tmp_path, [scene], "bag.yaml:1:7: seed: YAML tags are not allowed in scene files (got !!")


# ------------------------------------------------------------------------------------------ includes


def test_includes_that_multiply(tmp_path):
    """Each file including the next ten times: 10**5 reads of the last one."""
    for k in range(1, 6):
        write(tmp_path / f"l{k}.yaml", f"include: [{', '.join([f'l{k + 1}.yaml'] * 10)}]\n")
    write(tmp_path / "l6.yaml", "templates: {}\n")
    scene = write(tmp_path / "bag.yaml", "include: [l1.yaml]\n" + BASE)
    refused(tmp_path, [scene], re.compile(r"l\d\.yaml:1:\d+: include\[\d\]: more than 100 included files"))


def test_includes_nested_deep(tmp_path):
    for k in range(1, 30):
        write(tmp_path / f"c{k}.yaml", f"include: [c{k + 1}.yaml]\n")
    write(tmp_path / "c30.yaml", "templates: {}\n")
    scene = write(tmp_path / "bag.yaml", "include: [c1.yaml]\n" + BASE)
    refused(tmp_path, [scene], "c20.yaml:1:11: include[0]: includes nested more than 20 deep")
