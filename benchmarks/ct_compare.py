"""Compare the CT volumes of two runs of the same bag (``ct_bag.py --out A`` and ``--out B``, say
``--device cuda`` and ``--device cpu``) voxel by voxel and print JSON.

For every ``.npy`` volume found under both folders (``ct/<bag>/mu_low.npy``, ...): the largest
absolute difference, the largest relative difference over the voxels where the reference (B)
holds at least ``--floor`` of its largest magnitude (below that a relative figure is noise over
nothing), and whether the label volumes are equal. The issue's bound is 0.5 % per voxel.

    python benchmarks/ct_compare.py A B [--floor 0.05]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path, help="the reference (the CPU's run)")
    ap.add_argument("--floor", type=float, default=0.05)
    args = ap.parse_args()
    report = {"a": str(args.a), "b": str(args.b), "floor": args.floor, "volumes": {}}
    for path_b in sorted(args.b.rglob("*.npy")):
        rel = path_b.relative_to(args.b)
        path_a = args.a / rel
        if not path_a.is_file():
            report["volumes"][str(rel)] = {"missing_in_a": True}
            continue
        a, b = np.load(path_a), np.load(path_b)
        if a.shape != b.shape or a.dtype != b.dtype:
            report["volumes"][str(rel)] = {"shape_a": list(a.shape), "shape_b": list(b.shape)}
            continue
        if b.dtype.kind in "iub":
            report["volumes"][str(rel)] = {"equal": bool(np.array_equal(a, b)),
                                           "voxels_differing": int((a != b).sum())}
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        diff = np.abs(a64 - b64)
        big = np.abs(b64) >= args.floor * float(np.abs(b64).max())
        report["volumes"][str(rel)] = {
            "max_abs": float(diff.max()),
            "max_rel": float((diff[big] / np.abs(b64[big])).max()) if big.any() else 0.0,
            "max_rel_of_range": float(diff.max() / max(float(np.abs(b64).max()), 1e-30)),
        }
    floats = [v for v in report["volumes"].values() if "max_rel" in v]
    report["worst_rel"] = max((v["max_rel"] for v in floats), default=None)
    report["within_half_percent"] = bool(floats) and report["worst_rel"] <= 0.005
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
