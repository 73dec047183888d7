"""Seconds a chunk of CT views spends in detection (spectral pass, scatter, quantum draws, blur,
electronic noise) with the noise drawn from the generator in order (the 2D scanners' draws) and
by counter (the CT's: :mod:`xraybag.engine.xray.counter`), runs alternated in one process;
prints JSON.

The chunk is what the built-in ``checked_ct`` scanner detects at a time: 69 views of 16 x 672
pixels, its dual-layer response and noise model, path lengths through water (0 to ``--water-mm``,
400 by default) and steel (0 to ``--steel-mm``, 12 by default, across a fifth of the columns), so
that some pixels have few quanta and take Poisson draws (their share is printed).

With ``--bag N``: N chunks of the packed built-in bag's own views (traced once), spread over its
scan, instead.

    python benchmarks/ct_noise.py [--repeat 7] [--threads N] [--water-mm 400] [--steel-mm 12] [--bag N]
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
    ap.add_argument("--water-mm", type=float, default=400.0, help="the thickest water path (mid-detector)")
    ap.add_argument("--steel-mm", type=float, default=12.0, help="the thickest steel path (0: none)")
    ap.add_argument("--bag", type=int, default=0,
                    help="instead: this many chunks of views of the packed checked_ct bag 0, spread over its scan")
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
    loaded = load_scene("checked_ct")
    spec = loaded.spec
    scanner = next(s for s in spec.scanners if s.type == "ct")
    st = setup(scanner, spec, lib)
    g = st.geom
    views = 69
    if args.bag:  # chunks of the packed bag's own views, spread over the scan
        from xraybag.engine.ct.forward import mesh_of, trace_views
        from xraybag.engine.ct.scan import chunk_views, to_ct_solids
        from xraybag.engine.output.pipeline import build_solids, pack_bag

        packed, _ = pack_bag(loaded, 0, spec.seed)
        solids_ct = to_ct_solids(build_solids(packed, tolerance=packed.tolerance)[0], st.iso)
        mats = sorted({s.material for s in solids_ct})
        mesh = mesh_of(solids_ct, mats)
        views = chunk_views(g, len(mats))
        chunks = [trace_views(solids_ct, g, slice(a, a + views), mats, mesh=mesh)[1]
                  for a in np.linspace(0, g.views - views, args.bag).astype(int)]
    else:
        rng = np.random.default_rng(0)
        u = np.linspace(0, 1, g.cols)
        L = np.empty((views, g.rows, g.cols, 2), dtype=np.float32)
        L[..., 0] = (args.water_mm * np.sin(np.pi * u) ** 2)[None, None, :]
        L[..., 1] = np.where((u > 0.4) & (u < 0.6), args.steel_mm * rng.random((views, g.rows, 1)), 0.0)
        mats = ["water", "iron"]
        chunks = [L]
    pitch = g.col_pitch

    def run(counter: bool) -> float:
        r = np.random.default_rng(1)
        t = time.perf_counter()
        for L in chunks:
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
    small = 0
    for L in chunks:
        att = np.exp(-L.reshape(-1, len(mats)).astype(np.float64) @ mu)
        mean, var = att @ w[:, 0], att @ (w[:, 0] * st.response.quanta[:, 0])
        small += int(np.sum(mean * mean / var < NORMAL_ABOVE))
    lam_small = small / (len(chunks) * views * g.rows * g.cols)
    views *= len(chunks)
    print(json.dumps({
        "benchmark": "ct_noise", "views": views, "pixels_per_view": g.rows * g.cols,
        "channels": list(st.response.channels), "bag_chunks": args.bag,
        "water_mm": None if args.bag else args.water_mm, "steel_mm": None if args.bag else args.steel_mm,
        "poisson_share_low": lam_small,
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads()},
        "runs_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "ms_per_view": {k: round(1000 * v / views, 3) for k, v in med.items()},
        "ratio_counter_to_generator": round(med["counter"] / med["generator"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
