"""Seconds of a one-bag ``xraybag render`` (start-up included: imports, the scene, the spectra,
the colour calibration, one bag), side by side for source trees given with ``--tree`` (e.g. the
previous commit checked out with ``git worktree add``), runs alternated; prints JSON.

    python benchmarks/startup.py --tree /tmp/prev --tree . [--scene demo] [--repeat 5]

Each tree's first run is a warm-up (numba's cache, the spectra cache) and is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CODE = ("import sys; from xraybag.cli.main import main; "
        "sys.argv = ['xraybag', 'render', sys.argv[1], '-n', '1', '-o', sys.argv[2], '-q']; main()")


def run(tree: Path, scene: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", CODE, scene, str(Path(tmp) / "out")], env=env, cwd=tmp,
                       check=True, capture_output=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", type=Path, action="append", required=True)
    ap.add_argument("--scene", default="demo")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    warm = {str(t): round(run(t, args.scene), 3) for t in args.tree}
    times: dict[str, list[float]] = {str(t): [] for t in args.tree}
    for _ in range(args.repeat):
        for t in args.tree:
            times[str(t)].append(round(run(t, args.scene), 3))
    print(json.dumps({"benchmark": "startup", "scene": args.scene, "warm_up_s": warm, "runs_s": times,
                      "median_s": {k: statistics.median(v) for k, v in times.items()}}, indent=1))


if __name__ == "__main__":
    main()
