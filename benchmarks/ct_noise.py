"""Seconds a chunk of CT views spends in detection (spectral pass, scatter, quantum draws, blur,
electronic noise) with the noise drawn from the generator in order (the 2D scanners' draws) and
by counter (the CT's: :mod:`xraybag.engine.xray.counter`), runs alternated in one process;
prints JSON.

The chunk is what the built-in ``checked_ct`` scanner detects at a time: 69 views of 16 x 672
pixels, its dual-layer response and noise model, path lengths through water-like material (0 to
400 mm) and steel (0 to 12 mm, so that some pixels have few quanta and take Poisson draws).

    python benchmarks/ct_noise.py [--repeat 7] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    from xraybag.engine.ct.scan import setup
    from xraybag.engine.xray.counter import draws_from
    from xraybag.engine.xray.detect import NORMAL_ABOVE, detect
    from xraybag.materials import default_library
    from xraybag.scenes.loader import load_scene

    lib = default_library()
    spec = load_scene("checked_ct").spec
    scanner = next(s for s in spec.scanners if s.type == "ct")
    st = setup(scanner, spec, lib)
    g = st.geom
    views = 69
    rng = np.random.default_rng(0)
    u = np.linspace(0, 1, g.cols)
    L = np.empty((views, g.rows, g.cols, 2), dtype=np.float32)
    L[..., 0] = (400 * np.sin(np.pi * u) ** 2)[None, None, :]
    L[..., 1] = np.where((u > 0.4) & (u < 0.6), 12.0 * rng.random((views, g.rows, 1)), 0.0)
    mats = ["water", "iron"]
    pitch = g.col_pitch

    def run(counter: bool) -> float:
        r = np.random.default_rng(1)
        t = time.perf_counter()
        detect(L, mats, scanner, st.response, lib, r, pitch, threads=True,
               draws=draws_from(r) if counter else None)
        return time.perf_counter() - t

    run(False), run(True)  # compile
    times = {"generator": [], "counter": []}
    for _ in range(args.repeat):
        times["generator"].append(run(False))
        times["counter"].append(run(True))
    med = {k: statistics.median(v) for k, v in times.items()}
    # the share of the low channel's pixels drawn as Poisson counts (fewer than NORMAL_ABOVE quanta)
    w = st.response.weights
    mu = np.stack([lib.get(m).mu(st.response.energies) for m in mats])
    att = np.exp(-L.reshape(-1, 2).astype(np.float64) @ mu)
    mean, var = att @ w[:, 0], att @ (w[:, 0] * st.response.quanta[:, 0])
    lam_small = float(np.mean(mean * mean / var < NORMAL_ABOVE))
    print(json.dumps({
        "benchmark": "ct_noise", "views": views, "pixels_per_view": g.rows * g.cols,
        "channels": list(st.response.channels), "poisson_share_low": lam_small,
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads()},
        "runs_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "ms_per_view": {k: round(1000 * v / views, 3) for k, v in med.items()},
        "ratio_counter_to_generator": round(med["counter"] / med["generator"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
