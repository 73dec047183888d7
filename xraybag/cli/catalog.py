"""``xraybag catalog``: list, inspect and export the procedural object catalog.

User errors (unknown entry or parameter, bad value) print one line on stderr and exit with 2.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from xraybag.cli.common import check_output_files, out_option, output_file, user_errors
from xraybag.errors import XraybagError


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _param_record(name: str, spec) -> dict:
    return {
        "name": name,
        "kind": spec.kind,
        "default": spec.default,
        "default_text": spec.describe_default(),
        "unit": spec.unit,
        "bounds": spec.bounds.describe() if spec.kind != "material" else "a material name",
        "doc": spec.doc,
    }


@click.group("catalog")
def catalog() -> None:
    """The procedural object catalog (use an entry with 'template: NAME' and 'params:')."""


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--label", default=None, help="Only entries with this label (category).")
@click.option("--family", default=None, help="Only entries of this family (threats, ..., bags: the bag shells).")
def list_entries(as_json: bool, label: str | None, family: str | None) -> None:
    """List the catalog entries: name, label, number of parameters, description."""
    from xraybag.scenes.catalog import CATALOG
    from xraybag.scenes.catalog.bags import SHELLS

    entries = [e for e in [*CATALOG.values(), *SHELLS.values()]
               if (label is None or e.label == label) and (family is None or e.family == family)]
    if as_json:
        data = [{"name": e.name, "label": e.label, "family": e.family, "params": len(e.params),
                 "description": e.description} for e in entries]
        click.echo(json.dumps(data, indent=2))
        return
    rows = [[e.name, e.label or "-", str(len(e.params)), e.description] for e in entries]
    click.echo(_table(["name", "label", "params", "description"], rows))


@catalog.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--preview", "preview", default=None, type=click.Path(dir_okay=False), callback=output_file,
              help="Also render a top view of one sample through the default scanner to this PNG.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Sample seed of --preview.")
@click.option("--set", "params", multiple=True, metavar="PARAM=VALUE", help="A parameter of --preview (repeatable).")
@user_errors
def show(name: str, as_json: bool, preview: str | None, seed: int, params: tuple[str, ...]) -> None:
    """Show an entry's parameters with their defaults, units and documentation."""
    from xraybag.scenes.catalog import get_entry
    from xraybag.scenes.catalog.bags import SHELLS

    e = SHELLS[name] if name in SHELLS else get_entry(name)
    if preview:
        from xraybag.engine.output.files import encode_png, write_atomic
        from xraybag.engine.output.preview import entry_preview

        given = dict(_parse_param(p) for p in params)
        with _rule_errors(name, given):
            img = entry_preview(name, seed, given)
        write_atomic(Path(preview), encode_png(img))
        click.echo(f"wrote {preview} ({img.shape[1]} x {img.shape[0]} px, 0.5 mm pixels)", err=True)
    params = [_param_record(n, s) for n, s in e.params.items()]
    if as_json:
        click.echo(json.dumps({"name": e.name, "label": e.label, "family": e.family,
                               "description": e.description, "params": params}, indent=2))
        return
    click.echo(f"{e.name}  (label: {e.label or '-'}, family: {e.family})")
    click.echo(e.description)
    click.echo("")
    rows = [[p["name"], p["default_text"], p["unit"] or "-", p["doc"]] for p in params]
    click.echo(_table(["parameter", "default", "unit", "doc"], rows))


def _parse_param(text: str) -> tuple[str, Any]:
    """``--set PARAM=VALUE``: VALUE read as YAML by the scene files' own loader."""
    from xraybag.scenes.overrides import parse_override

    o = parse_override(text)
    if len(o.path) != 1:
        raise XraybagError(f"--set {o.key}: a catalog entry's parameters are plain names, e.g. "
                           "--set blade_length=120")
    return o.key, o.value


@contextmanager
def _rule_errors(name: str, given: dict[str, Any]):
    """A sample built with the given ``--set`` parameters that breaks a rule of the scene model
    (a blade a kilometre long): one line naming the parameters, as ``render`` names the entry. A
    sample of the defaults that breaks one is a bug in the catalog and keeps its traceback."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as e:
        if not given:
            raise
        err = e.errors(include_url=False)[0]
        keys = err["loc"][2:] if tuple(err["loc"][:2]) == ("objects", 0) else err["loc"]  # the one object's
        loc = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        sets = ", ".join(f"--set {k}" for k in given)
        raise XraybagError(f"{name} built with these values breaks a rule: {loc}: {msg}", sets) from None


def export_glb(name: str, path: str | Path, seed: int = 0, params: dict[str, Any] | None = None,
               tolerance: float = 0.05) -> dict:
    """Build one sample of catalog entry ``name`` and write it as GLB: one node per solid, named
    after its part, with the material name in the mesh extras and as the glTF material name.
    Returns the sampled object dict."""
    import numpy as np
    import trimesh

    from xraybag.engine.solids.scene import build_solids
    from xraybag.scenes.catalog import get_entry, object_scene, sample_object

    entry = get_entry(name)
    entry.check_params(params or {}, lambda k: f"--set {k}")
    data = sample_object(name, seed, params)
    if "sheet" in data:
        sh = data["sheet"]
        sx, sy = sh["size"]
        body = {"name": name, "shape": {"box": {"size": [sx, sy, sh["thickness"]]}},
                "material": data["material"]}
        solids, _ = build_solids(object_scene(body), tolerance)
    else:
        solids, _ = build_solids(object_scene(data), tolerance)
    scene = trimesh.Scene()
    centre = np.array([0.0, 0.0, 500.0])
    for s in solids:
        mesh = trimesh.Trimesh(np.array(s.vertices) - centre, np.array(s.faces), process=False)
        mesh.metadata = {"material": s.material, "part": s.part}
        mesh.visual = trimesh.visual.TextureVisuals(
            material=trimesh.visual.material.PBRMaterial(name=s.material))
        scene.add_geometry(mesh, node_name=s.part, geom_name=s.part)
    from xraybag.engine.output.files import write_atomic

    write_atomic(Path(path), scene.export(file_type="glb"))  # no half-written file
    return data


@catalog.command("export")
@click.argument("name")
@out_option("Output folder: OUT/NAME.glb.", default=".")
@click.option("--glb", "glb", default=None, type=click.Path(dir_okay=False), callback=output_file,
              help="Name the GLB file instead.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Sample seed.")
@click.option("--set", "params", multiple=True, metavar="PARAM=VALUE",
              help="Fix or re-distribute a parameter (repeatable); VALUE is YAML, e.g. "
              "--set slide_length=190 or --set slide_length='{uniform: [170, 200]}'.")
@user_errors
def export(name: str, out: str, glb: str | None, seed: int, params: tuple[str, ...]) -> None:
    """Build one sample of NAME and write its meshes (mm) as a GLB file."""
    given = dict(_parse_param(p) for p in params)
    path = Path(glb) if glb else Path(out) / f"{name}.glb"
    check_output_files(path)  # before any work
    with _rule_errors(name, given):
        export_glb(name, path, seed, given)
    click.echo(f"wrote {path}")


@catalog.command("photos")
@click.argument("templates", nargs=-1, required=True)
@out_option("Output folder: TEMPLATE_0000.png ... and labels.json.", required=True)
@click.option("-n", "n", default=8, show_default=True, type=int, help="Renders per template.")
@click.option("--size", default=128, show_default=True, type=int, help="Image side in px (the object framed in it).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of variants, poses, lights.")
@click.option("--alpha", is_flag=True, help="Write RGBA (alpha = the object's pixels) instead of RGB on the backdrop.")
@user_errors
def photos(templates: tuple[str, ...], out: str, n: int, size: int, seed: int, alpha: bool) -> None:
    """Camera-like shaded renders of catalog objects (stand-ins for photographs of threats: Lambert
    shading of the meshes' surfaces on a light backdrop, random pose and light), with labels.json
    giving each image's class and scale (px_per_mm). tip takes the folder as --opt threat_images=DIR."""
    from xraybag.learners.tip.shade import write_photos

    write_photos(list(templates), Path(out), n, size, seed, alpha)
    click.echo(f"wrote {n * len(templates)} images and labels.json to {out}")
