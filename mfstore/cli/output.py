"""How ``mfstore`` commands print results: ``Output`` (a rich table on a terminal, TSV when
piped, or the format asked for with ``--json``/``--nl``/``--csv``/``--tsv``/``--table``).

Tables are for people (colored status, whole ids, shortened tag lists, one line per row);
every other format streams (``mfstore.cli.stream``) and keeps each value whole.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from ..escape import dumps, escape_terminal, escape_tsv
from .stream import WRITERS, Tags, blocks, text_of

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


class Output:
    """Where and how a command prints its result.

    ``fmt`` is one of ``table``, ``tsv``, ``csv``, ``json``, ``nl``. ``table`` is chosen
    only when stdout is a terminal and no format was asked for; piped, the default is
    ``tsv`` (a header line, then one line per row, each value whole on its line).
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
        rows: Iterable[Any],
        *,
        title: str | None = None,
        footer: str | None = None,
    ) -> int:
        """Print ``rows`` (sequences matching ``cols``) as the chosen format; returns the
        number printed. Streams in every format but ``table`` (``rows`` may be ``Blocks``). ``footer`` (e.g. "... 5
        more") follows a table on stdout, and goes to stderr in the other formats."""
        if self.fmt == "table":
            n = self._table(cols, (row for block in blocks(rows) for row in block), title)
        else:
            n = WRITERS[self.fmt]([c.name for c in cols], rows)
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
        text = escape_terminal(text_of(value))
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
        cells = [[self._cell(c, v) for c, v in zip(cols, row, strict=True)] for row in rows]
        console = self.console()
        names = [escape_terminal(c.name) for c in cols]
        natural = [max([r[i].cell_len for r in cells] + [len(names[i])]) for i in range(len(cols))]
        room = text_widths(cols, natural, console.width)
        for i, c in enumerate(cols):
            if c.kind == "id":  # whole ids, never wrapped nor cut: text columns give way
                table.add_column(names[i], no_wrap=True, min_width=natural[i])
            elif c.kind == "num":
                table.add_column(names[i], justify="right", no_wrap=True, min_width=natural[i])
            elif c.kind in ("status", "time"):
                table.add_column(names[i], no_wrap=True, min_width=natural[i])
            else:  # one line per row on a screen, cut to fit; piped output is never cut
                table.add_column(names[i], no_wrap=True, overflow="ellipsis", max_width=room[i])
        for r in cells:
            table.add_row(*r)
        n = len(cells)
        console.print(table)
        return n


def text_widths(cols: list[Column], natural: list[int], width: int) -> list[int]:
    """Widths of the text columns so that a table fits ``width`` (rich's default box: 3
    characters per column and 1 more) with every other column at its ``natural`` width:
    the narrow text columns keep theirs, the wide ones share what is left evenly."""
    text = [i for i, c in enumerate(cols) if c.kind not in _WHOLE]
    left = (
        width - 3 * len(cols) - 1 - sum(natural[i] for i, c in enumerate(cols) if c.kind in _WHOLE)
    )
    room = list(natural)
    for n, i in enumerate(sorted(text, key=lambda i: natural[i])):
        share = max(left // (len(text) - n), 3)
        room[i] = min(natural[i], share)
        left -= room[i]
    return room


#: Column kinds a table never cuts (the text columns give way).
_WHOLE = ("id", "num", "status", "time")


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
