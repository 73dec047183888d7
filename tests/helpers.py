"""Shared helpers for the tests (scene files written to tmp folders, CLI runs, Python runs with
or without numba's CUDA simulator)."""

from __future__ import annotations

import os
import subprocess
import sys
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


ROOT = Path(__file__).resolve().parents[1]

#: Code that makes numba compile CUDA kernels to PTX without a GPU (the compute capability numba
#: would ask the driver for is given), or prints NO-NVVM and exits where numba has no NVVM
PTX_PRELUDE = textwrap.dedent("""
    import types
    import numba.cuda.dispatcher as D
    from numba import cuda, types as nt
    D.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
    try:
        cuda.compile_ptx(lambda: None, (), cc=(9, 0))
    except Exception as e:
        print("NO-NVVM", type(e).__name__, e)
        raise SystemExit(0)
""")


def run_python(args: list[str], sim: bool, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run this interpreter on ``args`` with the checkout importable, with numba's CUDA simulator
    (NUMBA_ENABLE_CUDASIM=1, which must be set before numba is imported) or without it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)


def json_records(proc: subprocess.CompletedProcess, key: str = "scene") -> dict:
    """The JSON lines a script printed (one record per line starting with ``{``), by ``key``;
    the script must have exited 0 (else its stderr's end is the failure's message)."""
    import json

    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r[key]: r for r in recs}


def ptx_of(code: str) -> tuple[int, int]:
    """Run :data:`PTX_PRELUDE` and ``code``, which prints ``PTX <size> <count>``, without the
    simulator: ``(size, count)``. Skips the calling test where numba has no NVVM."""
    import pytest

    proc = run_python(["-c", PTX_PRELUDE + textwrap.dedent(code)], sim=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "NO-NVVM" in proc.stdout:
        pytest.skip(f"no NVVM here: {proc.stdout.strip()}")
    _, size, count = proc.stdout.split()[-3:]
    return int(size), int(count)


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
