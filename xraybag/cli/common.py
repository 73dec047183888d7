"""What every command shares: one-line user errors with exit status 2, and the options that mean
the same thing in every command (``-o/--out`` folder, ``--set``, ``-q``, ``--assets``), and progress
bars on stderr."""

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

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Change a value of the scene before it is checked (repeatable); VALUE is YAML, KEY.PATH "
    "joins keys and list indices with dots: --set bag.size=[500,300,200] --set scanners.0.pitch=2 "
    "--set objects.1.repeat='{uniform_int: [1, 3]}'.",
)

quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars (they go to stderr).")


def out_option(help: str, required: bool = False, default: str | None = None):
    """``-o/--out DIR``: every command's output folder (never a file)."""
    return click.option(
        "-o", "--out", "out", required=required, default=default, show_default=default is not None,
        type=click.Path(file_okay=False), help=help,
    )


class ProgressBar:
    """A tqdm bar on stderr, made on the first call ``bar(done, total)`` (none at all when
    ``quiet``). A call with a new ``key`` (say, the next bag's CT scan) or with ``done`` going back
    starts the bar again."""

    def __init__(self, quiet: bool, unit: str, **tqdm_kw):
        self.quiet, self.unit, self.desc, self.kw = quiet, unit, tqdm_kw.pop("desc", None), tqdm_kw
        self.bar, self.key = None, None

    def __call__(self, done: int, total: int, key=None, desc: str | None = None) -> None:
        if self.quiet:
            return
        desc = self.desc if desc is None else desc
        if self.bar is not None and (key != self.key or done < self.bar.n or total != self.bar.total):
            self.bar.reset(total=total)
            if desc is not None:
                self.bar.set_description_str(desc, refresh=False)
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit=self.unit, desc=desc, file=sys.stderr,
                            dynamic_ncols=True, **self.kw)
        self.key = key
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
