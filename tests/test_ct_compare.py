"""benchmarks/ct_compare.py: two runs' CT volumes compared voxel by voxel (the GPU-equals-CPU
check of the device run)."""

from __future__ import annotations

import json

import numpy as np
from helpers import ROOT
from helpers import run_python as _run


def _write(root, volumes):
    d = root / "ct" / "000000"
    d.mkdir(parents=True)
    for name, a in volumes.items():
        np.save(d / f"{name}.npy", a)


def _compare(tmp_path, a, b, *extra):
    proc = _run([str(ROOT / "benchmarks" / "ct_compare.py"), str(a), str(b), *extra], sim=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_relative_differences_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.01, 0.05, (6, 7, 8)).astype(np.float32)
    mu[0] = 0.0  # air: left out of the relative figure
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[2:4] = 3
    _write(tmp_path / "ref", {"mu_low": mu, "labels": labels})
    close = mu * np.float32(1 + 2e-4)
    moved = labels.copy()
    moved[5, 6, 7] = 1
    _write(tmp_path / "close", {"mu_low": close, "labels": labels})
    _write(tmp_path / "far", {"mu_low": mu * np.float32(1.01), "labels": moved})
    r = _compare(tmp_path, tmp_path / "close", tmp_path / "ref")
    v = r["volumes"]["ct/000000/mu_low.npy"]
    assert 1.9e-4 < v["max_rel"] < 2.1e-4 and r["within_half_percent"]
    assert r["volumes"]["ct/000000/labels.npy"] == {"equal": True, "voxels_differing": 0}
    r = _compare(tmp_path, tmp_path / "far", tmp_path / "ref")
    assert abs(r["worst_rel"] - 0.01) < 1e-4 and not r["within_half_percent"]
    assert r["volumes"]["ct/000000/labels.npy"] == {"equal": False, "voxels_differing": 1}
