"""Conventions shared by every ``mfstore`` command (docs/cli.md).

- The file: ``--mfdb FILE`` (``mfdb_option``), default ``$MFSTORE_DB``, else ``metaflow.mfdb``
  in the current directory or a parent (``resolve_file``). Same as ``python flow.py --mfdb``.
- Exit codes: 0 ok, 1 an error about data or files (``CliError``: one line on stderr),
  2 usage (click's ``UsageError``).
- Output (``mfstore.cli.output``, ``mfstore.cli.stream``): ``output_options`` adds
  ``--json`` / ``--nl`` and, for tabular results, ``--csv`` / ``--tsv``; without one, a
  rich table on a terminal and TSV when piped (``Output``). Every value from the file is
  escaped for the chosen format (``mfstore.escape``).
- ``namespace_option``: ``--namespace ""`` means the global namespace, as in Metaflow.
- ``progress``: a rich progress bar on a terminal, nothing when stderr is not one.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..env import MFSTORE_DB
from ..escape import escape_terminal
from ..exception import CliError, MetaflowException, is_no_room
from ..provider import DEFAULT_FILE_NAME, discover


def one_line(text: object) -> str:
    """``text`` on one line, control characters escaped."""
    return escape_terminal(" ".join(str(text).split()))


@contextmanager
def errors() -> Iterator[None]:
    """mfstore errors (``CliError`` among them) and OS errors inside the block -> click's
    ``Error: <one line>`` on stderr, exit status 1."""
    try:
        yield
    except click.ClickException:
        raise
    except MetaflowException as exc:
        message = str(exc) or type(exc).__name__
    except OSError as exc:
        import errno

        if exc.errno == errno.EPIPE:
            raise
        message = str(exc)
        if is_no_room(exc):
            message = (
                f"{exc.filename or 'a file'}: the disk is full (no room to write: {exc.strerror}); "
                "the command stopped there; free some space and retry"
            )
    except Exception as exc:
        # SQLite errors raised while stepping through a streamed result (a damaged file)
        if type(exc).__module__ != "apsw":
            raise
        message = f"{type(exc).__name__}: {exc}"
    else:
        return
    raise click.ClickException(one_line(message))


# -- which file -------------------------------------------------------------------

FILE_HELP = f"The .mfdb file (default: ${MFSTORE_DB}, else {DEFAULT_FILE_NAME} in this directory or a parent)."


def mfdb_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--mfdb FILE``: the file a command reads or writes (see ``resolve_file``)."""
    return click.option("--mfdb", "mfdb", metavar="FILE", default=None, help=FILE_HELP)(fn)


def missing_file(path: Path) -> CliError:
    """The one error every command gives for a file that does not exist."""
    return CliError(f"{path} does not exist (pass --mfdb FILE or set {MFSTORE_DB})")


def resolve_file(mfdb: str | os.PathLike[str] | None, *, must_exist: bool = True) -> Path:
    """The file named by ``--mfdb``, else ``$MFSTORE_DB``, else discovered."""
    path = Path(mfdb).expanduser() if mfdb else discover()
    if path is None:
        raise CliError(
            f"no {DEFAULT_FILE_NAME} found in {Path.cwd()} or its parents: "
            f"pass --mfdb FILE or set {MFSTORE_DB}"
        )
    if must_exist and not path.exists():
        raise missing_file(path)
    if path.is_dir():
        raise CliError(f"{path} is a directory, not an .mfdb file")
    return path


@contextmanager
def reading(path: Path) -> Iterator[Any]:
    """``path`` opened to read (a ``Store`` that never changes the file: no journal
    switch, no migration, no -wal/-shm left behind); errors become one line."""
    from ..store import Store

    if not path.exists():
        raise missing_file(path)
    with errors():
        store = Store(path, reader=True)
    try:
        with errors():
            yield store
    finally:
        store.close()


def namespace_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--namespace NS``: only runs carrying the tag NS; ``""`` = every namespace."""
    return click.option(
        "--namespace",
        "-n",
        "namespace",
        default=None,
        metavar="NS",
        callback=lambda _ctx, _param, value: value or None,
        help='Only runs in this namespace (a tag, e.g. user:alice); "" = all namespaces (the default).',
    )(fn)


def paging_options(default: int = 20) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--limit N`` (default ``default``) and ``--all``; the command receives
    ``limit: int | None`` (None: every row)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, limit: int | None = None, show_all: bool = False, **kw: Any) -> Any:
            if show_all and limit is not None:
                raise click.UsageError("choose one of --limit and --all")
            kw["limit"] = None if show_all else (default if limit is None else limit)
            return fn(*args, **kw)

        wrapper = click.option(
            "--all", "show_all", is_flag=True, help="Print every row (streams; no limit)."
        )(wrapper)
        wrapper = click.option(
            "--limit",
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help=f"Print at most N rows, newest first (default {default}).",
        )(wrapper)
        return wrapper

    return decorate


def more_line(more: int, noun: str = "") -> str:
    """``... 99,980 more runs (use --limit N or --all)``."""
    what = f" {noun}" if noun else ""
    return f"\u2026 {more:,} more{what} (use --limit N or --all)"


# -- progress -----------------------------------------------------------------------


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on stderr while the block runs; nothing when stderr is not a
    terminal. Yields ``update(done, total, what)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, markup=False, highlight=False)
    with Progress(
        TextColumn(label, markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=escape_terminal(str(what)))

        yield update
