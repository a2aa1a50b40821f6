"""Conventions shared by every ``mfstore`` command (docs/cli.md).

- The file: ``--mfdb FILE`` (``mfdb_option``), default ``$MFSTORE_DB``, else ``metaflow.mfdb``
  in the current directory or a parent (``resolve_file``). Same as ``python flow.py --mfdb``.
- Exit codes: 0 ok, 1 an error about data or files (``CliError``: one line on stderr),
  2 usage (click's ``UsageError``).
- Output: ``output_options`` adds ``--json`` / ``--nl`` and, for tabular results,
  ``--csv`` / ``--tsv``; without one, a rich table on a terminal and TSV when piped
  (``Output``). Every value from the file is escaped for the chosen format (``escape``).
- ``namespace_option``: ``--namespace ""`` means the global namespace, as in Metaflow.
- ``progress``: a rich progress bar on a terminal, nothing when stderr is not one.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..exception import MetaflowException, is_no_room
from ..provider import DEFAULT_FILE_NAME, ENV_VAR, discover

#: Exit status of an error about data or files (usage errors exit with 2).
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(click.ClickException):
    """An error about data or files: ``Error: <one line>`` on stderr, exit status 1."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: object) -> str:
    """``text`` on one line, control characters escaped."""
    return escape_terminal(" ".join(str(text).split()))


@contextmanager
def errors() -> Iterator[None]:
    """mfstore errors and OS errors inside the block -> ``CliError`` (one line, exit 1)."""
    try:
        yield
    except click.ClickException:
        raise
    except MetaflowException as exc:
        raise CliError(str(exc) or type(exc).__name__) from None
    except OSError as exc:
        import errno

        if exc.errno == errno.EPIPE:
            raise
        if is_no_room(exc):
            raise CliError(
                f"{exc.filename or 'a file'}: the disk is full (no room to write: {exc.strerror}); "
                "the command stopped there; free some space and retry"
            ) from None
        raise CliError(str(exc)) from None
    except Exception as exc:
        # SQLite errors raised while stepping through a streamed result (a damaged file)
        if type(exc).__module__ == "apsw":
            raise CliError(f"{type(exc).__name__}: {exc}") from None
        raise


# -- which file -------------------------------------------------------------------

FILE_HELP = (
    f"The .mfdb file (default: ${ENV_VAR}, else {DEFAULT_FILE_NAME} in this directory or a parent)."
)


def mfdb_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--mfdb FILE``: the file a command reads or writes (see ``resolve_file``)."""
    return click.option("--mfdb", "mfdb", metavar="FILE", default=None, help=FILE_HELP)(fn)


def missing_file(path: Path) -> CliError:
    """The one error every command gives for a file that does not exist."""
    return CliError(f"{path} does not exist (pass --mfdb FILE or set {ENV_VAR})")


def resolve_file(mfdb: str | os.PathLike[str] | None, *, must_exist: bool = True) -> Path:
    """The file named by ``--mfdb``, else ``$MFSTORE_DB``, else discovered."""
    path = Path(mfdb).expanduser() if mfdb else discover()
    if path is None:
        raise CliError(
            f"no {DEFAULT_FILE_NAME} found in {Path.cwd()} or its parents: "
            f"pass --mfdb FILE or set {ENV_VAR}"
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


# -- escaping ---------------------------------------------------------------------

# C0 and C1 controls, DEL, lone surrogates and bidi overrides: shown escaped, never sent.
_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# In CSV, newlines and tabs are data (quoted by the csv module).
_CSV = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_LOG = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_TSV = re.compile("[\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_JSON = re.compile("[\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _sub(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: str) -> str:
    """Control characters (ESC, newline, ...) as ``\\x1b``, ``\\n``: safe on a terminal."""
    return _TERMINAL.sub(_sub, text)


def escape_tsv(text: str) -> str:
    """A TSV field: backslash, tab, newline and other control characters escaped."""
    return _TSV.sub(_sub, text)


def escape_csv(text: str) -> str:
    """A CSV field: control characters other than tab and newlines escaped."""
    return _CSV.sub(_sub, text)


def escape_log(text: str) -> str:
    """A log line: control characters other than tab escaped."""
    return _LOG.sub(_sub, text)


def _json_sub(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(value: Any, **kw: Any) -> str:
    """JSON text; C1 controls, lone surrogates and bidi overrides as ``\\uXXXX``."""
    import json

    return _JSON.sub(_json_sub, json.dumps(value, ensure_ascii=False, default=str, **kw))


# -- output -----------------------------------------------------------------------

STATUS_STYLE = {"successful": "green", "failed": "red", "running": "yellow"}
#: Tags shown in a table cell before "+N more".
TABLE_TAGS = 3


class Column:
    """A column of a result: its name and how a table shows it.

    ``kind``: ``"id"`` (never wrapped), ``"status"`` (colored), ``"tags"`` (a list,
    shortened in a table, a JSON array in CSV/TSV), ``"num"`` (right-aligned), ``"time"``
    (ISO text; to the second in a table) or ``"text"``.
    """

    def __init__(self, name: str, kind: str = "text") -> None:
        self.name = name
        self.kind = kind

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.kind!r})"


def columns(*names: str, **kinds: str) -> list[Column]:
    """Columns by name; ``kinds`` maps a name to its kind (``*_at`` columns are times)."""
    return [Column(n, kinds.get(n, "time" if n.endswith("_at") else "text")) for n in names]


class Tags(str):
    """A tag list that is also its JSON text (rendered once: many rows share one tag set).

    CSV and TSV print the text, JSON the list (``items``), a table a shortened list."""

    items: list[str]

    def __new__(cls, tags: Any) -> Tags:
        items = [str(t) for t in tags]
        self = super().__new__(cls, dumps(items))
        self.items = items
        return self


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    kind = type(value)
    if kind is bytes:
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return dumps(list(value))
    return str(value)


def json_value(value: Any) -> Any:
    """A value as JSON shows it (tag lists as lists, bytes as a size)."""
    if isinstance(value, Tags):
        return value.items
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, tuple):
        return list(value)
    return value


FORMATS = ("table", "tsv", "csv", "json", "nl")


class Output:
    """Where and how a command prints its result.

    ``fmt`` is one of ``FORMATS``. ``table`` is chosen only when stdout is a terminal and
    no format was asked for; piped, the default is ``tsv`` (a header line, then one line
    per row, each value whole on its line).
    """

    def __init__(self, fmt: str, *, explicit: bool = False) -> None:
        self.fmt = fmt
        #: True when the format was asked for (not the terminal/pipe default).
        self.explicit = explicit

    @classmethod
    def choose(
        cls, *, as_json: bool, nl: bool, as_csv: bool, as_tsv: bool, as_table: bool = False
    ) -> Output:
        """The format asked for on the command line (at most one), else the default."""
        flags = (
            ("--json", as_json and not nl),
            ("--nl", nl),
            ("--csv", as_csv),
            ("--tsv", as_tsv),
            ("--table", as_table),
        )
        asked = [n for n, on in flags if on]
        if len(asked) > 1:
            raise click.UsageError("choose one of " + ", ".join(asked))
        if nl:
            return cls("nl", explicit=True)
        if as_json:
            return cls("json", explicit=True)
        if as_csv:
            return cls("csv", explicit=True)
        if as_tsv:
            return cls("tsv", explicit=True)
        if as_table:
            return cls("table", explicit=True)
        return cls("table" if is_terminal() else "tsv")

    @property
    def is_table(self) -> bool:
        """True when a rich table goes to the terminal."""
        return self.fmt == "table"

    @property
    def is_json(self) -> bool:
        """True for ``--json`` and ``--nl``."""
        return self.fmt in ("json", "nl")

    # -- one table of rows ------------------------------------------------------

    def rows(
        self,
        cols: list[Column],
        rows: Iterator[Any] | list[Any],
        *,
        title: str | None = None,
        footer: str | None = None,
    ) -> int:
        """Print ``rows`` (sequences matching ``cols``) as the chosen format; returns the
        number printed. Streams in every format but ``table``. ``footer`` (e.g. "... 5
        more") follows a table on stdout, and goes to stderr in the other formats."""
        n = {
            "table": self._table,
            "tsv": self._tsv,
            "csv": self._csv,
            "json": self._json,
            "nl": self._nl,
        }[self.fmt](cols, rows, title)
        if footer:
            if self.is_table:
                self.console().print(escape_terminal(footer), style="dim", markup=False)
            else:
                notice(footer)
        return n

    def record(self, fields: dict[str, Any], kinds: dict[str, str] | None = None) -> None:
        """One record as ``field  value`` lines (a table, or TSV/CSV ``field,value``)."""
        kinds = kinds or {}
        cols = [Column("field"), Column("value")]
        pairs = [(k, v) for k, v in fields.items()]
        if self.is_table:
            from rich.table import Table

            table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
            table.add_column(no_wrap=True, style="bold")
            table.add_column(overflow="fold")
            for k, v in pairs:
                table.add_row(escape_terminal(k), self._cell(Column(k, kinds.get(k, "text")), v))
            self.console().print(table)
        else:
            self.rows(cols, iter(pairs))

    def section(self, name: str) -> None:
        """Start a named part of a multi-part result (``show RUN``): a blank line then
        ``# name`` when piped; a table title on a terminal."""
        if not self.is_table:
            out = sys.stdout
            out.write(f"\n# {escape_tsv(name)}\n")

    def document(self, value: Any) -> None:
        """One JSON document (``--json``) or, with ``--nl``, one line per list item."""
        out = sys.stdout
        if self.fmt == "nl" and isinstance(value, list):
            for item in value:
                out.write(dumps(item) + "\n")
        elif self.fmt == "nl":
            out.write(dumps(value) + "\n")
        else:
            out.write(dumps(value, indent=2) + "\n")
        out.flush()

    def console(self) -> Any:
        """A rich console on stdout that never interprets markup or highlights values."""
        from rich.console import Console

        return Console(file=sys.stdout, soft_wrap=False, highlight=False, markup=False, emoji=False)

    def _cell(self, col: Column, value: Any) -> Any:
        from rich.text import Text

        if isinstance(value, Tags):
            value = value.items
        if col.kind == "tags" and isinstance(value, list | tuple):
            shown = [escape_terminal(str(t)) for t in value[:TABLE_TAGS]]
            more = len(value) - TABLE_TAGS
            cell = Text(", ".join(shown))
            if more > 0:
                cell.append(f" +{more} more", style="dim")
            return cell
        text = escape_terminal(_text(value))
        if col.kind == "time" and len(text) == 24 and text.endswith("Z"):
            text = text[:19].replace("T", " ")  # seconds are enough on a screen (UTC)
        if col.kind == "status":
            return Text(text, style=STATUS_STYLE.get(text, ""))
        return Text(text)

    def _table(self, cols: list[Column], rows: Any, title: str | None) -> int:
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=Text(escape_terminal(title)) if title else None,
            title_justify="left",
            title_style="bold",
        )
        cells = [[self._cell(c, v) for c, v in zip(cols, row)] for row in rows]
        for i, c in enumerate(cols):
            name = escape_terminal(c.name)
            if c.kind == "id":  # whole ids, never wrapped nor cut: the other columns give way
                widest = max([len(r[i]) for r in cells] + [len(name)])
                table.add_column(name, no_wrap=True, min_width=widest)
            elif c.kind == "num":
                table.add_column(name, justify="right", no_wrap=True)
            elif c.kind in ("status", "time"):
                table.add_column(name, no_wrap=True)
            else:  # one line per row on a screen; piped output is never cut
                table.add_column(name, no_wrap=True, overflow="ellipsis", min_width=6)
        for r in cells:
            table.add_row(*r)
        n = len(cells)
        self.console().print(table)
        return n

    def _tsv(self, cols: list[Column], rows: Any, title: str | None) -> int:
        out = sys.stdout
        write, search = out.write, _TSV.search
        write("\t".join(escape_tsv(c.name) for c in cols) + "\n")
        n = 0
        for row in rows:
            cells = [v if isinstance(v, str) else _text(v) for v in row]
            if search("".join(cells)):
                cells = [escape_tsv(c) for c in cells]
            write("\t".join(cells) + "\n")
            n += 1
        out.flush()
        return n

    def _csv(self, cols: list[Column], rows: Any, title: str | None) -> int:
        import csv

        out = sys.stdout
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([escape_csv(c.name) for c in cols])
        writerow, search = writer.writerow, _CSV.search
        n = 0
        for row in rows:
            cells = [v if isinstance(v, str) else _text(v) for v in row]
            if search("".join(cells)):
                cells = [escape_csv(c) for c in cells]
            writerow(cells)
            n += 1
        out.flush()
        return n

    def _json(self, cols: list[Column], rows: Any, title: str | None) -> int:
        out = sys.stdout
        names = [c.name for c in cols]
        n = 0
        for row in rows:
            out.write("[\n  " if n == 0 else ",\n  ")
            out.write(dumps({k: json_value(v) for k, v in zip(names, row)}))
            n += 1
        out.write("[]\n" if n == 0 else "\n]\n")
        out.flush()
        return n

    def _nl(self, cols: list[Column], rows: Any, title: str | None) -> int:
        out = sys.stdout
        names = [c.name for c in cols]
        n = 0
        for row in rows:
            out.write(dumps({k: json_value(v) for k, v in zip(names, row)}) + "\n")
            n += 1
        out.flush()
        return n


def is_terminal() -> bool:
    """True when stdout is a terminal (never under a pipe or a test runner)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def notice(message: str) -> None:
    """A one-line remark on stderr (e.g. "... 5 more"), never mixed into piped data."""
    click.echo(escape_terminal(message), err=True)


def output_options(*, tabular: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json``, ``--nl`` and (``tabular``) ``--csv``, ``--tsv``; the command receives
    ``out: Output`` instead of the four flags."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(
            *args: Any,
            as_json: bool = False,
            nl: bool = False,
            as_csv: bool = False,
            as_tsv: bool = False,
            as_table: bool = False,
            **kwargs: Any,
        ) -> Any:
            kwargs["out"] = Output.choose(
                as_json=as_json, nl=nl, as_csv=as_csv, as_tsv=as_tsv, as_table=as_table
            )
            return fn(*args, **kwargs)

        opts = [
            click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
            click.option("--nl", "nl", is_flag=True, help="Print JSON lines (one object a line)."),
        ]
        if tabular:
            opts += [
                click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header line."),
                click.option(
                    "--tsv",
                    "as_tsv",
                    is_flag=True,
                    help="Print TSV with a header line (the default when piped).",
                ),
            ]
        opts.append(
            click.option(
                "--table",
                "as_table",
                is_flag=True,
                help="Print a table for people (the default on a terminal).",
            )
        )
        for opt in reversed(opts):
            wrapper = opt(wrapper)
        return wrapper

    return decorate


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
