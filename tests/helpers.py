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
