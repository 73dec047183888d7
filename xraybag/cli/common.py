"""What every command shares: one-line user errors with exit status 2, the asset-roots option."""

from __future__ import annotations

import functools
import sys

import click

from xraybag.errors import XraybagError


def user_errors(fn):
    """Turn XraybagError into a one-line message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XraybagError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


assets_option = click.option(
    "--assets",
    "assets",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder scene files may take meshes and includes from (repeatable); also "
    "$XRAYBAG_ASSET_ROOTS.",
)
