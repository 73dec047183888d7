"""The ``xraybag`` command: thin wrappers that parse, call the library and report.

User errors (:class:`~xraybag.errors.XraybagError`) are printed as one line on stderr with exit
status 2 and no traceback.
"""

from __future__ import annotations

import json
import sys

import click

from xraybag import __version__
from xraybag.cli.common import assets_option, user_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xraybag")
def cli() -> None:
    """Labelled X-ray security data from declarative scene files."""


@cli.command()
@click.argument("scene")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(min=1), help="Bags to render.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scene's seed.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (tcp://host:8786).")
@click.option("--save-transmission", is_flag=True, help="Also write float32 I/I0 TIFFs.")
@click.option(
    "--encoding",
    multiple=True,
    type=click.Choice(["clcxray"]),
    help="Extra image encodings: clcxray = the 3-channel high/low/ratio encoding of CLCXray.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@assets_option
@user_errors
def render(scene, count, out, seed, workers, scheduler, save_transmission, encoding, quiet, assets):
    """Render SCENE (a YAML file or a built-in scene name such as 'demo') into a dataset."""
    from tqdm import tqdm

    from xraybag.engine.output.dataset import Options, render_dataset

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="bag", file=sys.stderr, dynamic_ncols=True)
        else:
            bar.update(done - bar.n)

    try:
        summary = render_dataset(
            scene,
            count,
            out,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            opts=Options(save_transmission=save_transmission, encoding=tuple(encoding)),
            asset_roots=tuple(assets),
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    click.echo(
        f"{summary['bags']} bags in {summary['out']} ({summary['rendered']} rendered, "
        f"{summary['skipped']} already there) in {summary['seconds']:.1f} s"
    )


@cli.command()
@click.argument("scene")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(min=1),
              help="Also sample and pack this many bags.")
@assets_option
@user_errors
def validate(scene, count, assets):
    """Check SCENE without rendering it."""
    from xraybag.engine.output.memory import check_memory
    from xraybag.engine.packing import pack_bag
    from xraybag.scenes.loader import load_scene

    loaded = load_scene(scene, tuple(assets))
    need = check_memory(loaded)
    left = 0
    for i in range(count):  # packed exactly as `render` packs bag i (same random streams)
        _, report = pack_bag(loaded, i)
        left += len(report.left_out)
    click.echo(
        f"{loaded.source.file}: ok ({len(loaded.spec.objects)} object entries, "
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
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="PNG file (default OUT/preview.png).")
@click.option("--max-images", default=16, show_default=True, type=click.IntRange(min=1))
@user_errors
def preview(out, output, max_images):
    """Write a contact sheet of dataset OUT with boxes and labels drawn."""
    from pathlib import Path

    from xraybag.engine.output.preview import contact_sheet

    path = contact_sheet(Path(out), Path(output) if output else None, max_images)
    click.echo(str(path))


@cli.command("scenes")
def list_scenes() -> None:
    """List the built-in scenes."""
    from xraybag.scenes.loader import builtin_scenes

    for name in builtin_scenes():
        click.echo(name)


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
