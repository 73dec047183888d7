"""``xraybag materials``: list, inspect and compute attenuation of library materials.

Energies are in keV, densities in g/cm3, linear attenuation in 1/mm, mass attenuation in cm2/g.
User errors (unknown material, bad materials file) print one line to stderr and exit with 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from xraybag.cli.common import user_errors
from xraybag.materials import CATEGORIES, Material, MaterialLibrary, default_library
from xraybag.materials import load_library_file

#: Energies (keV) at which ``show`` and ``mu`` (without energies) report attenuation.
STANDARD_ENERGIES_KEV: tuple[float, ...] = (20.0, 30.0, 40.0, 60.0, 80.0, 100.0, 150.0)


def _library_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-f", "--file", "files", multiple=True, type=click.Path(dir_okay=False),
        help="Materials YAML file ('materials: {name: definition}') to add; repeatable.",
    )(command)


def _library(files: Sequence[str]) -> MaterialLibrary:
    library = default_library()
    for path in files:
        library = library.with_materials(load_library_file(path), source=path)
    return library


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Plain-text table; columns whose index is in ``right`` are right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _mu_records(material: Material, energies: Sequence[float]) -> list[dict[str, float]]:
    mu, mass_mu = material.mu(list(energies)), material.mass_mu(list(energies))
    return [{"energy_kev": float(e), "mu_per_mm": float(m), "mass_mu_cm2_per_g": float(mm)}
            for e, m, mm in zip(energies, mu, mass_mu)]


def _mu_table(records: Sequence[dict[str, float]]) -> str:
    rows = [[f"{r['energy_kev']:g}", f"{r['mu_per_mm']:.5g}", f"{r['mass_mu_cm2_per_g']:.5g}"]
            for r in records]
    return _table(["energy_keV", "mu_1/mm", "mu/rho_cm2/g"], rows, right={0, 1, 2})


@click.group("materials")
def materials() -> None:
    """Inspect the material library (densities g/cm3, energies keV, mu in 1/mm)."""


@materials.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only this category.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_library_option
@user_errors
def list_materials(category: str | None, as_json: bool, files: Sequence[str]) -> None:
    """List materials: name, category, density, Zeff and formula or main elements."""
    chosen = [m for m in _library(files).materials() if category in (None, m.category)]
    if as_json:
        click.echo(json.dumps([m.as_dict() for m in chosen], indent=2))
        return
    rows = [[m.name, m.category, f"{m.density:.4g}", f"{m.zeff:.2f}", m.short_composition()]
            for m in chosen]
    click.echo(_table(["name", "category", "density_g/cm3", "Zeff", "formula/composition"],
                      rows, right={2, 3}))


@materials.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_library_option
@user_errors
def show(name: str, as_json: bool, files: Sequence[str]) -> None:
    """Show every field of material NAME and mu at a few standard energies."""
    material = _library(files).get(name)
    info = material.as_dict()
    info["mu"] = _mu_records(material, STANDARD_ENERGIES_KEV)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    fractions = ", ".join(f"{s} {w:.4g}" for s, w in material.mass_fractions.items())
    lines = [
        f"name:                      {material.name}",
        f"aliases:                   {', '.join(material.aliases) or '-'}",
        f"category:                  {material.category}",
        f"description:               {material.description or '-'}",
        f"formula:                   {material.formula or '-'}",
        f"mass fractions:            {fractions}",
        f"density:                   {material.density:g} g/cm3",
        f"reference:                 {material.reference or '-'}",
        f"Zeff:                      {material.zeff:.3f}",
        f"electron density:          {material.electron_density:.4e} /cm3",
        f"relative electron density: {material.relative_electron_density:.4f} (water = 1)",
        "",
        _mu_table(info["mu"]),
    ]
    click.echo("\n".join(lines))


@materials.command("mu")
@click.argument("name")
@click.argument("energies", nargs=-1, type=float, metavar="[KEV]...")
@click.option("--kev", "kev", multiple=True, type=float,
              help="Photon energy in keV; '--kev 30 60 100' or repeat the option.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_library_option
@user_errors
def mu(name: str, energies: Sequence[float], kev: Sequence[float], as_json: bool,
       files: Sequence[str]) -> None:
    """Linear (1/mm) and mass (cm2/g) attenuation of material NAME at energies in keV."""
    material = _library(files).get(name)
    chosen = [*kev, *energies] or list(STANDARD_ENERGIES_KEV)
    records = _mu_records(material, chosen)
    if as_json:
        click.echo(json.dumps({"name": material.name, "density": material.density,
                               "mu": records}, indent=2))
        return
    click.echo(f"{material.name} ({material.density:g} g/cm3)")
    click.echo(_mu_table(records))
