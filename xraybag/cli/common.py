"""What every command shares: one-line user errors with exit status 2, and the options that mean
the same thing in every command (``-o/--out`` folder, ``--set``, ``-q``, ``--assets``), and progress
bars on stderr."""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path

import click

from xraybag.errors import XraybagError

#: The folders this run writes in: its ``-o`` folder and the folders of its output files, as the
#: options' callbacks found them (:func:`output_folder`, :func:`output_file`). An OSError on a path
#: in, under or above one of them (a full disk, a folder made read-only meanwhile) is the user's and
#: is one line; any other OSError is a bug and keeps its traceback.
OUTPUTS: list[Path] = []


def _output_path(e: OSError) -> str | None:
    """The path of ``e`` when it is one of this run's output paths (see :data:`OUTPUTS`)."""
    for name in (e.filename, e.filename2):
        if name is None or isinstance(name, int):
            continue
        path = Path(os.path.abspath(os.fsdecode(name)))
        if any(path == out or out in path.parents or path in out.parents for out in OUTPUTS):
            return os.fsdecode(name)
    return None


def user_errors(fn):
    """Turn XraybagError, and an OSError on an output path, into a one-line message and exit
    status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XraybagError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:
            path = _output_path(e)
            if path is None:
                raise
            click.echo(f"error: {path}: {e.strerror or e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)
        except Exception as e:
            if not _torch_out_of_memory(e):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            click.echo(f"error: the GPU ran out of memory ({first}); use a smaller batch (the learner's "
                       "batch option in `xraybag learn list`), smaller images or --device cpu", err=True)
            sys.exit(2)

    return wrapper


def _torch_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is torch's out-of-memory error on a GPU (``torch.cuda.OutOfMemoryError`` and its
    kin), without importing torch (the simulator installs without it)."""
    return type(e).__name__ == "OutOfMemoryError" and type(e).__module__.split(".")[0] == "torch"


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


def unwritable(folder: Path, target: Path | None = None) -> str | None:
    """Why ``target`` (by default ``folder`` itself) cannot be written in ``folder`` (made first
    where missing), or None."""
    target = folder if target is None else target
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        return f"cannot write {target}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):  # pragma: no cover - no statvfs (Windows)
            read_only = False
        why = "read-only file system" if read_only else "permission denied"
        return f"cannot write {target}: {why}" + ("" if existing == target else f" ({existing})")
    return None


def _check_folder(folder: Path, param: click.Parameter | None, check: bool = True, target: Path | None = None):
    why = unwritable(folder, target) if check else None
    if why is not None:
        raise click.BadParameter(why, param=param)
    OUTPUTS.append(Path(os.path.abspath(folder)))


def output_folder(ctx: click.Context, param: click.Parameter, value):
    """Callback of an output folder option: refused at once (before any work) unless it can be
    made and written in. A default folder is only noted: the command may not write there (``pack``
    with every file named), so it checks the paths it writes (:func:`check_output_files`)."""
    if value is None and param.required:  # click 8.5 calls the callback of a missing option
        raise click.MissingParameter(ctx=ctx, param=param)
    if value:
        given = ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        _check_folder(Path(value), param, check=given)
    return value


def check_output_files(*paths: Path) -> None:
    """Refuse (one line) output files whose folders cannot be made or written in."""
    for path in paths:
        why = unwritable(Path(path).parent, Path(path))
        if why is not None:
            raise XraybagError(why)
        OUTPUTS.append(Path(os.path.abspath(Path(path).parent)))


def output_file(ctx: click.Context, param: click.Parameter, value):
    """Callback of an output file option: its folder is checked as :func:`output_folder` does."""
    if value:
        _check_folder(Path(value).parent, param, target=Path(value))
    return value


class FiniteFloat(click.FloatRange):
    """A FloatRange that refuses nan and inf (which pass every comparison of a range)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class OneLineUsageError(click.ClickException):
    """A click error (bad option value, unknown command, ...) shown as one line ``error: ...``
    with a pointer to the command's ``--help``, instead of click's usage block."""

    def __init__(self, e: click.ClickException):
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if isinstance(e, click.UsageError) and ctx else ""
        super().__init__(" ".join(e.format_message().split()) + hint)
        self.exit_code = e.exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class OneLineErrorsGroup(click.Group):
    """The top command group: any click error of any command, found while parsing or invoking,
    is one line (:class:`OneLineUsageError`); ``--help`` and a bare group's help stay as they are."""

    def make_context(self, *args, **kwargs):
        OUTPUTS.clear()
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            raise OneLineUsageError(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, OneLineUsageError):
            raise
        except click.ClickException as e:
            raise OneLineUsageError(e) from None


def out_option(help: str, required: bool = False, default: str | None = None):
    """``-o/--out DIR``: every command's output folder (never a file), checked at once."""
    return click.option(
        "-o", "--out", "out", required=required, default=default, show_default=default is not None,
        type=click.Path(file_okay=False), callback=output_folder, help=help,
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
