"""``xraybag pack``: pack one bag of a scene and write it as GLB, PNG and concrete scene YAML."""

from __future__ import annotations

from pathlib import Path

import click

from xraybag.cli.common import (
    FiniteFloat,
    assets_option,
    check_output_files,
    out_option,
    output_file,
    set_option,
    user_errors,
)
from xraybag.errors import XraybagError


@click.command("pack")
@click.argument("scene")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scene's seed.")
@set_option
@click.option("--index", "index", default=0, show_default=True, type=click.IntRange(min=0),
              help="Which bag of the scene (as in a dataset rendered with the same seed).")
@out_option("Output folder: OUT/bag_<bag>.glb, .png and .yaml (<bag> as in a dataset: 000003).",
            default=".")
@click.option("--glb", "glb", default=None, type=click.Path(dir_okay=False), callback=output_file,
              help="Name the GLB file instead (one node per object, material and label in its extras).")
@click.option("--png", "png", default=None, type=click.Path(dir_okay=False), callback=output_file,
              help="Name the PNG rendering instead.")
@click.option("--yaml", "yaml", default=None, type=click.Path(dir_okay=False), callback=output_file,
              help="Name the concrete scene instead (it renders the same bag again).")
@click.option("--pitch", default=1.0, show_default=True, type=FiniteFloat(min=0.1),
              help="Pixel size of the PNG (mm).")
@assets_option
@user_errors
def pack(scene, seed, overrides, index, out, glb, png, yaml, pitch, assets):
    """Pack bag INDEX of SCENE and write it as a GLB, a PNG rendering and its concrete scene."""
    from xraybag.engine.output.export import export_bag, export_paths
    from xraybag.engine.output.preflight import check_posed_objects
    from xraybag.scenes.loader import load_scene, resolve_scene_ref

    loaded = load_scene(scene, tuple(assets), overrides=overrides)
    check_posed_objects(loaded)  # what render would refuse, pack refuses too (scanners aside)
    paths = dict(zip(("--glb", "--png", "--yaml"), export_paths(loaded, index, Path(out), glb or None, png or None,
                                                                 yaml or None), strict=True))
    _check_outputs(paths, {"--glb": glb, "--png": png, "--yaml": yaml}, resolve_scene_ref(scene))
    summary = export_bag(loaded, index, Path(out), seed=seed, glb=paths["--glb"], png=paths["--png"],
                         yaml=paths["--yaml"], pitch=pitch)
    click.echo(
        f"bag {summary['bag']}: {summary['objects']} objects -> {summary['glb']}, {summary['png']}, "
        f"{summary['yaml']}"
    )
    for name, reason in summary["left_out"]:
        click.echo(f"left out {name}: {reason}", err=True)
    if summary.get("hull_fill") is not None:
        first = summary.get("hull_fill_at_first_left_out")
        when = f" ({first:.1%} when {summary['first_left_out']} was the first left out)" if first is not None else ""
        click.echo(f"hull fill: the placed objects' convex hulls fill {summary['hull_fill']:.1%} of the interior{when}",
                   err=True)
    if summary.get("note"):
        click.echo(f"packing: {summary['note']}", err=True)


def _check_outputs(paths: dict[str, Path], given: dict[str, str | None], scene: Path) -> None:
    """Before any work: no output over the input scene or over another output (``given``: the
    paths named on the command line, the others are in -o), and each one's folder writable."""
    seen: dict[Path, str] = {scene.resolve(): "the input scene"}
    for option, path in paths.items():
        what = option if given[option] else f"the {option[2:].upper()} file in -o"
        key = path.resolve()
        if key in seen:
            fix = option if given[option] else f"-o or {option}"
            raise XraybagError(f"{what} would overwrite {seen[key]}; choose another {fix}", str(path))
        seen[key] = what
    check_output_files(*paths.values())
