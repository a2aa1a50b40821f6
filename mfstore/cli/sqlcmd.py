"""``mfstore sql "SELECT ..."``: a read-only query over the file's documented views.

Piped, ``--csv``, ``--tsv``, ``--json`` and ``--nl`` stream every row (flat memory); the
table on a terminal shows the first ``--limit`` rows (default 100) and says when there
are more.

``--timeout`` (docs/cli.md): a table stops when the whole query takes longer; streamed
output stops only when SQLite works that long without giving a row, so an export of
any length runs to its end while a query stuck computing (``count(*)`` over an endless
recursion) still stops.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..exception import CliError, StoreReadOnlyError
from .common import (
    mfdb_option,
    one_line,
    reading,
    resolve_file,
)
from .output import Column, Output, notice, output_options
from .stream import BLOCK_ROWS, Blocks, Row

#: Rows a terminal table shows unless --limit N / --all.
TABLE_ROWS = 100


#: Default ``--timeout`` (seconds): a planted endless view or recursive query stops.
SQL_TIMEOUT_SECONDS = 30.0
#: A streamed block of rows is printed after this long even if it is not full.
BLOCK_SECONDS = 0.1


@contextmanager
def _stepping(store: Any) -> Iterator[None]:
    """An error while stepping through the result becomes one line (exit 1)."""
    try:
        yield
    except (BrokenPipeError, click.ClickException):
        raise
    except Exception as exc:  # apsw errors raised while stepping (not translated by execute)
        raise CliError(one_line(store.translate(exc))) from None


def _stream(cursor: Any, store: Any) -> Iterator[Row]:
    """Rows of ``cursor``; an error while stepping becomes one line (exit 1)."""
    with _stepping(store):
        yield from cursor


def _blocks(cursor: Any, store: Any, timeout: float) -> Iterator[list[Row]]:
    """Rows of ``cursor`` in blocks of at most ``BLOCK_ROWS`` rows or ``BLOCK_SECONDS``.

    Each block is read under its own time limit, so the query stops only when SQLite
    works ``timeout`` seconds without giving a row (at most ``BLOCK_SECONDS`` more);
    the time spent writing a block (a reader paging slowly) never counts."""
    while True:
        block: list[Row] = []
        with _stepping(store), store.time_limit(timeout):
            start = time.monotonic()
            for row in cursor:
                block.append(row)
                if len(block) >= BLOCK_ROWS or time.monotonic() - start > BLOCK_SECONDS:
                    break
        if not block:
            return
        yield block


@click.command(name="sql")
@click.argument("args", nargs=-1, required=True, metavar="QUERY")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help=f"Rows a table on a terminal shows (default {TABLE_ROWS}); also caps --csv/--json.",
)
@click.option("--all", "show_all", is_flag=True, help="Every row, also in a terminal table.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=SQL_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Stop a query that works this long without giving a row; a table on a terminal: "
    "the whole query (Ctrl-C stops it too).",
)
@mfdb_option
@output_options()
def sql_command(
    args: tuple[str, ...],
    limit: int | None,
    show_all: bool,
    timeout: float,
    mfdb: str | None,
    out: Output,
) -> None:
    """Run a read-only SQL QUERY against the file and print the result.

    Only reading is allowed: statements that would write to the file or to any other
    file (INSERT, CREATE, ATTACH, VACUUM INTO, PRAGMA setters ...) are refused before
    they run, and nothing is changed. A query stops when it goes --timeout seconds without
    giving a row (a table: when the whole query takes longer). The mf_* views are
    documented in docs/sql.md. Piped, the result is TSV (every row); on a terminal, a
    table of the first 100 rows.

    Example:

        mfstore sql "SELECT run_id, status, duration_s FROM mf_runs WHERE flow = 'TeamCollabFlow'"
    """
    if len(args) == 2:  # sqlite-utils' order (FILE QUERY) is accepted too
        if mfdb:
            raise click.UsageError("give the file once: --mfdb FILE or FILE QUERY")
        mfdb, query = args
    elif len(args) == 1:
        (query,) = args
    else:
        raise click.UsageError('expected one QUERY: mfstore sql "SELECT ..." [--mfdb FILE]')
    if show_all and limit is not None:
        raise click.UsageError("choose one of --limit and --all")
    path = resolve_file(mfdb)
    with reading(path) as store, store.only_reading(), store.time_limit(timeout):
        try:
            cursor = store.execute(query)
        except StoreReadOnlyError:
            raise CliError(
                f"{path} is opened read-only by `mfstore sql`: statements that would write are "
                "refused before they run and nothing was changed"
            ) from None
        names = store.columns(query, cursor)
        if not names:
            for _ in _stream(cursor, store):
                pass
            return
        cols = [Column(n) for n in names]
        cap = limit if not show_all else None
        if out.is_table and cap is None and not show_all:
            cap = TABLE_ROWS
        if out.is_table:  # the time limit covers the whole query
            rows: Iterator[Row] = _stream(cursor, store)
        elif cap is None:  # streamed: the limit is on SQLite's time without a row
            out.rows(cols, Blocks(_blocks(cursor, store, timeout)))
            return
        else:
            rows = (row for block in _blocks(cursor, store, timeout) for row in block)
        if cap is None:  # a table of every row
            out.rows(cols, rows)
            return
        more = f"\u2026 more rows not shown (first {cap:,}; use --limit N, --all or --csv)"
        if out.is_table:
            page = list(itertools.islice(rows, cap + 1))
            out.rows(cols, page[:cap], footer=more if len(page) > cap else None)
        else:
            out.rows(cols, itertools.islice(rows, cap))
            if next(rows, None) is not None:
                notice(more)
