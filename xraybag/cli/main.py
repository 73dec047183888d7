"""The ``xraybag`` command: thin wrappers that parse, call the library and report.

User errors (:class:`~xraybag.errors.XraybagError`) are printed as one line on stderr with exit
status 2 and no traceback.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys

import click

from xraybag import __version__
from xraybag.cli.common import (
    OneLineErrorsGroup,
    ProgressBar,
    assets_option,
    check_output_files,
    out_option,
    quiet_option,
    set_option,
    user_errors,
)
from xraybag.errors import XraybagError


@click.group(cls=OneLineErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xraybag")
def cli() -> None:
    """Labelled X-ray security data from declarative scene files."""


seed_option = click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scene's seed.")

#: Seconds `render --scheduler` waits for the scheduler to answer
SCHEDULER_TIMEOUT = 10
_SCHEDULER_ADDRESS = re.compile(r"(?:(?:tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")


def _scheduler_address(ctx, param, value):
    """``--scheduler``: a Dask scheduler address ([PROTOCOL://]HOST:PORT), checked before any work."""
    if value is None:
        return None
    if re.fullmatch(r"inproc://\S+", value.strip()):  # a scheduler in this process (LocalCluster(processes=False))
        return value.strip()
    m = _SCHEDULER_ADDRESS.fullmatch(value.strip())
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise click.BadParameter(f"{value!r} is not a Dask scheduler address such as tcp://HOST:8786", param=param)
    return value.strip()


def _scheduler_client(address: str):
    """A client connected to the Dask scheduler at ``address`` (one line when there is none)."""
    where = f"--scheduler {address}"
    try:
        from distributed import Client
    except ImportError as e:
        raise XraybagError(f"needs the 'distributed' package ({e})", where) from None
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT)
    except OSError as e:  # refused, unreachable, no answer within the timeout
        raise XraybagError(f"cannot connect to the Dask scheduler: {' '.join(str(e).split()) or type(e).__name__}",
                           where) from None


@cli.command()
@click.argument("scene")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(min=1), help="Bags to render.")
@out_option("Output folder (the dataset).", required=True)
@seed_option
@set_option
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--scheduler", default=None, callback=_scheduler_address,
              help="Address of an existing Dask scheduler (tcp://host:8786).")
@click.option("--save-transmission", is_flag=True, help="Also write float32 I/I0 TIFFs.")
@click.option(
    "--encoding",
    multiple=True,
    type=click.Choice(["clcxray"]),
    help="Extra image encodings: clcxray = the 3-channel high/low/ratio encoding of CLCXray.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where the radiograph and line-scan views are traced and their spectral pass runs: cpu "
    "(numba), cuda (a CUDA GPU through numba.cuda), auto = cuda when numba finds a GPU, else cpu.",
)
@quiet_option
@assets_option
@user_errors
def render(scene, count, out, seed, overrides, workers, scheduler, save_transmission, encoding, device, quiet,
           assets):
    """Render SCENE (a YAML file or a built-in scene name such as 'demo') into a dataset.

    A bag with a CT scanner shows a second bar: the views traced (bags rendered in this process
    only, i.e. without --workers or --scheduler)."""
    from xraybag.engine.output.dataset import Options, render_dataset
    from xraybag.engine.output.files import bag_name
    from xraybag.engine.xray.devices import backend_for_device

    backend = backend_for_device(device)  # before any work: --device cuda without a GPU stops here
    # connected before the output folder is made: a scheduler that is not there leaves nothing behind
    client = _scheduler_client(scheduler) if scheduler else contextlib.nullcontext()

    with client, ProgressBar(quiet, "bag") as bags, ProgressBar(quiet, "view", leave=False, position=1) as views:

        def ct_progress(bag: int, scanner: str, done: int, total: int) -> None:
            views(done, total, key=(bag, scanner), desc=f"bag {bag_name(bag)} {scanner}")

        summary = render_dataset(
            scene,
            count,
            out,
            seed=seed,
            workers=workers,
            scheduler=client if scheduler else None,
            opts=Options(save_transmission=save_transmission, encoding=tuple(encoding), trace_backend=backend),
            asset_roots=tuple(assets),
            progress=bags,
            overrides=overrides,
            ct_progress=ct_progress,
        )
    click.echo(
        f"{summary['bags']} bags in {summary['out']} ({summary['rendered']} rendered, "
        f"{summary['skipped']} already there) in {summary['seconds']:.1f} s"
    )


@cli.command()
@click.argument("scene")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(min=1),
              help="Also sample and pack this many bags.")
@seed_option
@set_option
@assets_option
@user_errors
def validate(scene, count, seed, overrides, assets):
    """Check SCENE without rendering it."""
    from xraybag.engine.output.preflight import preflight
    from xraybag.engine.packing import pack_bag
    from xraybag.scenes.loader import load_scene

    loaded = load_scene(scene, tuple(assets), overrides=overrides)
    need = preflight(loaded, seed=seed)  # the first bag as `render --seed` draws it
    left = 0
    for i in range(count):  # packed exactly as `render` packs bag i (same random streams)
        _, report = pack_bag(loaded, i, seed)
        left += len(report.left_out)
    with_sets = f" (with {len(overrides)} --set)" if overrides else ""
    click.echo(
        f"{loaded.source.file}{with_sets}: ok ({len(loaded.spec.objects)} object entries, "
        f"{len(loaded.spec.scanners)} view(s), categories: {', '.join(loaded.categories) or 'none'}, "
        f"~{need / 2**20:.0f} MiB per bag"
        + (f", {left} object(s) left out by packing in {count} sampled bag(s)" if left else "")
        + ")"
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of scene files (for editor completion)."""
    from xraybag.scenes.models import Scene

    s = Scene.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "xraybag scene"
    click.echo(json.dumps(s, indent=2))


@cli.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@out_option("Folder for preview.png [default: DATASET].")
@click.option("--max-images", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--view", default=None, help="Only the images of this view (e.g. top).")
@click.option("--no-boxes", is_flag=True, help="The images alone, without boxes and labels.")
@user_errors
def preview(dataset, out, max_images, view, no_boxes):
    """Write a contact sheet of DATASET with boxes and labels drawn, as preview.png."""
    from pathlib import Path

    from xraybag.engine.output.preview import contact_sheet

    dst = Path(out or dataset) / "preview.png"
    check_output_files(dst)  # before any work: DATASET (or -o) must take the file
    path = contact_sheet(Path(dataset), dst, max_images, view=view, boxes=not no_boxes)
    click.echo(str(path))


@cli.command("scenes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: name, description, path.")
def list_scenes(as_json: bool) -> None:
    """List the built-in scenes, each with its description (the first comment line of its file)."""
    from xraybag.scenes.loader import builtin_dir, builtin_scenes, scene_description

    rows = []
    for name in builtin_scenes():
        path = builtin_dir() / f"{name}.yaml"
        rows.append({"name": name, "description": scene_description(path), "path": str(path)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['description']}".rstrip())


SUBCOMMANDS = ("materials", "catalog", "pack", "learn")


def _unavailable(name: str, error: BaseException) -> click.Command:
    """A stand-in for a command whose module failed to import: listed in ``--help`` with the
    reason, and a one-line error (exit status 2) when called. The other commands keep working."""
    reason = f"{type(error).__name__}: {error}".splitlines()[0]

    @click.command(name, help=f"(unavailable: {reason})", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def broken(args) -> None:
        click.echo(f"error: the '{name}' command could not be loaded ({reason}); "
                   "reinstalling xraybag (pip install -e .) usually fixes it", err=True)
        sys.exit(2)

    return broken


def _register() -> None:
    """Add the commands that live in their own modules (``xraybag/cli/<name>.py`` defining a click
    command of the same name). A module that fails to import is never dropped silently: its command
    stays listed and says why it cannot run."""
    import importlib

    for name in SUBCOMMANDS:
        try:
            command = getattr(importlib.import_module(f"xraybag.cli.{name}"), name)
        except Exception as e:  # noqa: BLE001 - any failure: report it on use, keep the others
            command = _unavailable(name, e)
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="xraybag")


if __name__ == "__main__":
    main()
