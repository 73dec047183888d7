"""``xraybag pack``: pack one bag of a scene and write it as GLB, PNG and concrete scene YAML."""

from __future__ import annotations

import click

from xraybag.cli.common import assets_option, out_option, set_option, user_errors


@click.command("pack")
@click.argument("scene")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scene's seed.")
@set_option
@click.option("--index", "index", default=0, show_default=True, type=click.IntRange(min=0),
              help="Which bag of the scene (as in a dataset rendered with the same seed).")
@out_option("Output folder: OUT/bag_<bag>.glb, .png and .yaml (<bag> as in a dataset: 000003).",
            default=".")
@click.option("--glb", "glb", default=None, type=click.Path(dir_okay=False),
              help="Name the GLB file instead (one node per object, material and label in its extras).")
@click.option("--png", "png", default=None, type=click.Path(dir_okay=False),
              help="Name the PNG rendering instead.")
@click.option("--yaml", "yaml", default=None, type=click.Path(dir_okay=False),
              help="Name the concrete scene instead (it renders the same bag again).")
@click.option("--pitch", default=1.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Pixel size of the PNG (mm).")
@assets_option
@user_errors
def pack(scene, seed, overrides, index, out, glb, png, yaml, pitch, assets):
    """Pack bag INDEX of SCENE and write it as a GLB, a PNG rendering and its concrete scene."""
    from pathlib import Path

    from xraybag.engine.output.export import export_bag
    from xraybag.engine.output.preflight import check_posed_objects
    from xraybag.scenes.loader import load_scene

    loaded = load_scene(scene, tuple(assets), overrides=overrides)
    check_posed_objects(loaded)  # what render would refuse, pack refuses too (scanners aside)
    summary = export_bag(
        loaded, index, Path(out), seed=seed, glb=Path(glb) if glb else None,
        png=Path(png) if png else None, yaml=Path(yaml) if yaml else None, pitch=pitch,
    )
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
