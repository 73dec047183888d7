"""Shared helpers for the tests (scene files written to tmp folders, CLI runs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

from xraybag.cli.main import cli


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def run_cli(*args: str):
    """Run the CLI in-process; returns click's Result (exit_code, output, stderr)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def builtin_scene_with(path: Path, name: str, **scanner_fields) -> Path:
    """The built-in scene ``name`` written to ``path`` with ``scanner_fields`` set on every scanner
    (e.g. ``pitch=2.0`` for a coarser, faster line scan)."""
    from ruamel.yaml import YAML

    from xraybag.scenes.loader import resolve_scene_ref

    yaml = YAML()
    data = yaml.load(resolve_scene_ref(name).read_text())
    for scanner in data["scanners"]:
        scanner.update(scanner_fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.dump(data, f)
    return path
