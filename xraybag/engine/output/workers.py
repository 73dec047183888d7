"""Where bags are rendered: in this process, in a pool of local worker processes, or on a Dask
cluster. Every way calls :func:`.records.render_and_write` with the same arguments, so a bag's
files never depend on where (or in what order) it was rendered."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from xraybag.engine.output.pipeline import CTProgress
from xraybag.engine.output.records import Options, render_and_write
from xraybag.scenes.loader import LoadedScene, load_scene

_WORKER_SCENES: dict = {}


def worker_threads(workers: int) -> int:
    """Threads each of ``workers`` local processes may use: its share of this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def _limit_threads(threads: int) -> None:
    """A worker's initializer: BLAS/OpenMP pools (threadpoolctl) and numba to ``threads``. Left at
    their default (every core) in each of several workers, OpenBLAS's threads spin while they wait
    and took a third of a 2-worker render's CPU time."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _worker_task(ref: str, roots: tuple, overrides: tuple, index: int, out: str, seed: int, cats: dict,
                 opts: Options) -> dict:
    """One bag in a worker process: the scene (with the same ``--set`` overrides as the parent's)
    is loaded once per process and kept."""
    key = (ref, roots, overrides)
    if key not in _WORKER_SCENES:
        _WORKER_SCENES[key] = load_scene(ref, roots, overrides=overrides)
    return render_and_write(_WORKER_SCENES[key], index, Path(out), seed, cats, opts)


def run_bags(
    loaded: LoadedScene, ref: str, roots: tuple, todo: list[int], out: Path, seed: int,
    categories: dict[str, int], opts: Options, record: Callable[[dict], None],
    workers: int = 1, scheduler: str | None = None, overrides: tuple[str, ...] = (),
    ct_progress: CTProgress | None = None,
) -> None:
    """Render and write the bags at positions ``todo``; ``record`` gets each bag's manifest record
    as soon as it is finished. ``ref`` (an absolute scene path), ``roots`` and ``overrides`` (the
    ``--set`` values ``loaded`` was loaded with) let workers load the scene themselves;
    ``scheduler`` is the address of an existing Dask scheduler, or a client already connected to
    one (left open). ``ct_progress`` (see
    :func:`.pipeline.render_bag`) is called only when the bags are rendered in this process."""
    overrides = tuple(overrides)
    if scheduler:
        from contextlib import nullcontext

        from distributed import Client, as_completed

        with Client(scheduler) if isinstance(scheduler, str) else nullcontext(scheduler) as client:
            futures = [
                client.submit(_worker_task, ref, roots, overrides, i, str(out.resolve()), seed, categories, opts,
                              pure=False)
                for i in todo
            ]
            for fut in as_completed(futures):
                record(fut.result())
    elif workers > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as done_first

        # CUDA cannot be used in a child forked from a process that has initialised it (the
        # device check has): such children are spawned
        ctx = multiprocessing.get_context("spawn" if opts.trace_backend == "cuda" else None)
        key = (ref, roots, overrides)
        forked = ctx.get_start_method() == "fork"
        if forked:  # a forked worker starts with this process's scene: it need not load it again
            _WORKER_SCENES[key] = loaded
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_limit_threads,
                                     initargs=(worker_threads(workers),)) as pool:
                futures = [pool.submit(_worker_task, ref, roots, overrides, i, str(out), seed, categories, opts)
                           for i in todo]
                for fut in done_first(futures):
                    record(fut.result())
        finally:
            if forked:
                _WORKER_SCENES.pop(key, None)
    else:
        for i in todo:
            record(render_and_write(loaded, i, out, seed, categories, opts, ct_progress))
