"""Render throughput: seconds per dual-energy view and bags per hour, at 1 mm and 0.5 mm pitch.

Runs on ONE core (numba, BLAS and OpenMP limited to one thread) so the figure is per core; the
goal is a dual-energy view of a 30-object bag at 1 mm pitch in under 0.15 s (it was 0.5 s before
the performance issue), and 10,000 bags an hour end to end on 2 workers. Prints one JSON
object. With ``--end-to-end`` the wall and the CPU seconds (user + system of every process of the
render) are both reported: on a machine shared with other jobs the CPU seconds per bag still
measure the work, where the wall seconds do not. Usage::

    python benchmarks/render_throughput.py [--bags 5] [--scene benchmarks/bag30.yaml] [--pitch 1 0.5]

Each pitch renders ``--bags`` bags after one warm-up bag (numba compilation and spectrum and
calibration caches are excluded from the medians, and reported separately as ``cold_s``).
A view's time is trace + detect (spectral pass and noise) + products (pseudo-colour, labels);
a bag's time adds sampling, packing, meshing and writing its files.

``--end-to-end N`` measures what a user gets: ``xraybag render SCENE -n N --workers W`` (every
scanner at 1 mm) as a separate process, wall clock from start to exit, and the marginal cost of a
bag (the difference between an N-bag and an N/2-bag render, which removes start-up and pool
creation). ``--against REV`` runs the same command from a ``git worktree`` of an earlier commit
(same interpreter and packages, its own ``xraybag`` first on ``PYTHONPATH``) alternately with this
checkout, so both figures come from the same minutes of the same machine::

    python benchmarks/render_throughput.py --pitch --end-to-end 40 --workers 2 --against HEAD~1

With ``--against REV`` and no ``--end-to-end``, the in-process one-core measurement runs instead
in a subprocess per tree, alternated ``--repeats`` times, and the per-stage medians (over the
rounds' medians) come with their ratios (REV / this). ``--this REV`` measures a worktree of REV in
place of the working tree (so that uncommitted work of others in the tree does not count)::

    taskset -c 1 python benchmarks/render_throughput.py --bags 6 --pitch 1 --against HEAD~3 --this HEAD
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent


def with_pitch(loaded, pitch: float):
    """The loaded scene with every scanner at ``pitch`` mm."""
    spec = loaded.spec.model_copy(
        update={"scanners": [s.model_copy(update={"pitch": pitch}) for s in loaded.spec.scanners]}
    )
    return type(loaded)(**{**loaded.__dict__, "spec": spec})


def run(scene: str, pitch: float, bags: int) -> dict:
    from xraybag.engine.output.files import write_atomic
    from xraybag.engine.output.pipeline import render_bag
    from xraybag.engine.output.records import Options, bag_files
    from xraybag.scenes.loader import load_scene

    loaded = with_pitch(load_scene(scene), pitch)
    cats = {c: i + 1 for i, c in enumerate(loaded.categories)}
    out = Path(tempfile.mkdtemp(prefix="xraybag-bench-"))
    t = time.perf_counter()
    render_bag(loaded, 0)
    cold = time.perf_counter() - t
    views: dict[str, list[float]] = {}
    parts: dict[str, list[float]] = {}
    bag_s, objects, shapes = [], [], {}
    for i in range(1, bags + 1):
        t0 = time.perf_counter()
        result = render_bag(loaded, i)
        for rel, data in bag_files(result, out, cats, Options()).items():
            write_atomic(out / rel, data)
        bag_s.append(time.perf_counter() - t0)
        objects.append(len(result.objects))
        for v in result.views:
            name = v.scanner.name
            views.setdefault(name, []).append(sum(v.seconds.values()))
            shapes[name] = list(v.instance.shape)
            for k, s in v.seconds.items():
                parts.setdefault(f"{name}.{k}", []).append(s)
        for k, s in result.seconds.items():
            parts.setdefault(k, []).append(s)
    med_bag = statistics.median(bag_s)
    return {
        "pitch_mm": pitch,
        "bags": bags,
        "objects_per_bag": objects,
        "image_shape": shapes,
        "cold_s": round(cold, 3),
        "view_s_median": {k: round(statistics.median(v), 4) for k, v in views.items()},
        "stage_s_median": {k: round(statistics.median(v), 4) for k, v in sorted(parts.items())},
        "bag_s_median": round(med_bag, 4),
        "bags_per_hour_one_core": round(3600.0 / med_bag, 1),
    }


def _render_cmd(tree: Path, scene: str, n: int, out: Path, workers: int) -> list[str]:
    code = "import sys; from xraybag.cli.main import main; sys.argv[0] = 'xraybag'; main()"
    sets = []
    for i in range(2):  # bag30.yaml has two scanners
        sets += ["--set", f"scanners.{i}.pitch=1.0"]
    return [sys.executable, "-c", code, "render", scene, "-n", str(n), "-o", str(out),
            "--workers", str(workers), *sets]


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed_render(tree: Path, scene: str, n: int, workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, every process of the render) of one render."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)  # a user's render: the library's own threading
    out = Path(tempfile.mkdtemp(prefix="xraybag-e2e-"))
    try:
        t, cpu = time.perf_counter(), _children_cpu_s()
        subprocess.run(_render_cmd(tree, scene, n, out / "ds", workers), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree)
        return time.perf_counter() - t, _children_cpu_s() - cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _which_xraybag(tree: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = "import xraybag, os; print(os.path.dirname(os.path.dirname(xraybag.__file__)))"
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True, cwd=tree).stdout.strip()


def end_to_end(scene: str, n: int, workers: int, against: str | None, repeats: int) -> dict:
    """Bags per hour of ``xraybag render`` on ``workers`` processes, this checkout and ``against``."""
    root = HERE.parent
    trees = {"this": root}
    tmp = None
    if against:
        tmp = Path(tempfile.mkdtemp(prefix="xraybag-rev-"))
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tmp / "tree"), against],
                       check=True, capture_output=True)
        trees[against] = tmp / "tree"
    # a scene file, or a built-in scene's name (each tree renders its own version of it)
    ref = os.path.abspath(scene) if Path(scene).exists() else scene
    try:
        for name, tree in trees.items():
            found = Path(_which_xraybag(tree)).resolve()
            if found != tree.resolve():
                raise SystemExit(f"{name}: xraybag imports from {found}, not {tree}")
            _timed_render(tree, ref, 2, workers)  # numba's on-disk caches
        half = max(1, n // 2)
        walls: dict[str, dict[int, list[float]]] = {k: {n: [], half: []} for k in trees}
        cpus: dict[str, dict[int, list[float]]] = {k: {n: [], half: []} for k in trees}
        for _ in range(repeats):
            for name, tree in trees.items():  # alternated, so both see the same machine
                for k in (n, half):
                    wall, cpu = _timed_render(tree, ref, k, workers)
                    walls[name][k].append(wall)
                    cpus[name][k].append(cpu)
        out = {}
        for name, w in walls.items():
            full, part = statistics.median(w[n]), statistics.median(w[half])
            marginal = (full - part) / (n - half) if n > half else full / n
            c = cpus[name]
            cfull, cpart = statistics.median(c[n]), statistics.median(c[half])
            cpu_marginal = (cfull - cpart) / (n - half) if n > half else cfull / n
            out[name] = {
                "rev": subprocess.run(["git", "-C", str(trees[name]), "rev-parse", "--short", "HEAD"],
                                      check=False, capture_output=True, text=True).stdout.strip(),
                "wall_s": {str(n): [round(x, 2) for x in w[n]], str(half): [round(x, 2) for x in w[half]]},
                "bags_per_hour_end_to_end": round(3600 * n / full, 1),
                "marginal_s_per_bag": round(marginal, 4),
                "bags_per_hour_marginal": round(3600 / marginal, 1),
                # CPU seconds hold on a loaded machine where wall seconds do not: the work per bag,
                # and the bags per hour it allows on `workers` cores if nothing else ran
                "cpu_s": {str(n): [round(x, 2) for x in c[n]], str(half): [round(x, 2) for x in c[half]]},
                "marginal_cpu_s_per_bag": round(cpu_marginal, 4),
                "bags_per_hour_from_cpu": round(3600 * workers / cpu_marginal, 1),
            }
        if against:
            out["speedup_marginal"] = round(out[against]["marginal_s_per_bag"] / out["this"]["marginal_s_per_bag"], 3)
            out["speedup_cpu"] = round(out[against]["marginal_cpu_s_per_bag"]
                                       / out["this"]["marginal_cpu_s_per_bag"], 3)
            out["speedup_end_to_end"] = round(out["this"]["bags_per_hour_end_to_end"]
                                              / out[against]["bags_per_hour_end_to_end"], 3)
        return {"bags": n, "workers": workers, "pitch_mm": 1.0, "repeats": repeats, **out}
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tmp / "tree")],
                           check=False, capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)


def _worktree(root: Path, rev: str, tmp: Path) -> Path:
    tree = tmp / rev.replace("/", "_").replace("~", "-").replace("^", "-")
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    return tree


def stages_against(scene: str, pitches: list[float], bags: int, against: str, this: str | None,
                   repeats: int) -> dict:
    """The in-process measurement (:func:`run`) of this checkout (or of ``this``) and of
    ``against``, each in its own process with its own ``xraybag`` first on the path, alternated
    ``repeats`` times; medians over the rounds and ratios ``against / this``."""
    root = HERE.parent
    tmp = Path(tempfile.mkdtemp(prefix="xraybag-rev-"))
    ref = os.path.abspath(scene) if Path(scene).exists() else scene
    trees = {}
    try:
        trees["this"] = _worktree(root, this, tmp) if this else root
        trees[against] = _worktree(root, against, tmp)
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from render_throughput import run; "
                "print(json.dumps([run(sys.argv[2], float(p), int(sys.argv[3])) for p in sys.argv[4:]]))")
        rounds: dict[str, list] = {k: [] for k in trees}
        for name, tree in trees.items():
            found = Path(_which_xraybag(tree)).resolve()
            if found != tree.resolve():
                raise SystemExit(f"{name}: xraybag imports from {found}, not {tree}")
        for _ in range(repeats):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run([sys.executable, "-c", code, str(HERE), ref, str(bags),
                                       *[str(p) for p in pitches]], env=env, check=True, cwd=tree,
                                      capture_output=True, text=True)
                rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        out: dict = {"benchmark": "render_throughput stages", "scene": os.path.relpath(scene) if ref != scene
                     else scene, "bags": bags, "repeats": repeats, "threads": 1,
                     "revs": {k: subprocess.run(["git", "-C", str(t), "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()
                              + ("" if k != "this" or this else " + working tree")
                              for k, t in trees.items()},
                     "results": []}
        for i, pitch in enumerate(pitches):
            entry: dict = {"pitch_mm": pitch}
            for name in trees:
                res = [r[i] for r in rounds[name]]
                entry[name] = {
                    "view_s_median": {k: round(statistics.median(r["view_s_median"][k] for r in res), 4)
                                      for k in res[0]["view_s_median"]},
                    "stage_s_median": {k: round(statistics.median(r["stage_s_median"][k] for r in res), 4)
                                       for k in res[0]["stage_s_median"]},
                    "view_s_rounds": [r["view_s_median"] for r in res],
                }
            a, t = entry[against], entry["this"]
            entry["ratio_view"] = {k: round(a["view_s_median"][k] / t["view_s_median"][k], 3)
                                   for k in t["view_s_median"]}
            entry["ratio_stage"] = {k: round(a["stage_s_median"][k] / t["stage_s_median"][k], 3)
                                    for k in t["stage_s_median"] if k in a["stage_s_median"]}
            worst = max(t["view_s_median"].values())
            entry["goal"] = {"goal_view_s": 0.15, "worst_view_s": worst, "met": worst < 0.15}
            out["results"].append(entry)
        return out
    finally:
        for name, tree in trees.items():
            if tree != root:
                subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                               check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(HERE / "bag30.yaml"))
    ap.add_argument("--bags", type=int, default=5)
    ap.add_argument("--pitch", type=float, nargs="*", default=[1.0, 0.5],
                    help="pitches of the in-process, one-core measurement (none: skip it)")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="N",
                    help="also time `xraybag render -n N` (and N/2) as a user runs it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--against", default=None, metavar="REV",
                    help="with --end-to-end: the same command from a worktree of this commit")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--this", default=None, metavar="REV",
                    help="with --against (in-process): measure a worktree of REV, not the working tree")
    args = ap.parse_args()
    if args.against and not args.end_to_end:
        print(json.dumps(stages_against(args.scene, args.pitch, args.bags, args.against, args.this,
                                        args.repeats), indent=1))
        return
    e2e = None
    if args.end_to_end:
        e2e = end_to_end(args.scene, args.end_to_end, args.workers, args.against, args.repeats)
    results = [run(args.scene, p, args.bags) for p in args.pitch]
    one_mm = next((r for r in results if r["pitch_mm"] == 1.0), None)
    goal = None
    if one_mm is not None:
        worst = max(one_mm["view_s_median"].values())
        goal = {"goal_view_s": 0.15, "worst_view_s_at_1mm": worst, "met": worst < 0.15}
    print(
        json.dumps(
            {
                "benchmark": "render_throughput",
                "scene": os.path.relpath(args.scene),
                "threads": 1,
                "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
                "results": results,
                "goal": goal,
                "end_to_end": e2e,
                "goal_end_to_end": None if e2e is None else {
                    "goal_bags_per_hour": 10000,
                    "bags_per_hour_marginal": e2e["this"]["bags_per_hour_marginal"],
                    "met": e2e["this"]["bags_per_hour_marginal"] >= 10000,
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
