"""Rows printed as TSV, CSV, JSON or JSON lines, streamed in blocks.

Rows come in blocks (``BLOCK_ROWS`` rows, or the blocks a source cut: ``Blocks``) and a
block is formatted column by column: a column of one plain type (text, integers, finite
floats, tag lists) is converted, checked for anything to escape or quote, and joined by
built-in functions over the whole column; only a mixed column (NULLs among numbers,
BLOBs ...) or a column that needs escaping costs a Python call per value. Each block is
written with one ``write``. Every value is escaped by the rules of ``mfstore.escape``.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice, repeat
from json.encoder import encode_basestring
from typing import Any

from ..escape import (
    CSV_UNSAFE,
    dumps,
    escape_csv,
    escape_json_text,
    escape_tsv,
)

#: Rows per block when the source does not cut blocks itself.
BLOCK_ROWS = 1024

Row = Sequence[Any]


class Tags(str):
    """A tag list that is also its JSON text (rendered once: many rows share one tag set).

    CSV and TSV print the text, JSON the list (``items``), a table a shortened list."""

    items: list[str]

    def __new__(cls, tags: Any) -> Tags:
        items = [str(t) for t in tags]
        self = super().__new__(cls, dumps(items))
        self.items = items
        return self


def text_of(value: Any) -> str:
    """A value as CSV/TSV print it: NULL empty, a BLOB as its size, a list as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if type(value) is bytes:
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


class Blocks:
    """Rows already cut into blocks (lists of rows) by their source, e.g. ``sql``, which
    ends a block early when rows come slowly so that each is printed at once."""

    def __init__(self, blocks: Iterable[list[Row]]) -> None:
        self.blocks = blocks

    def __iter__(self) -> Iterator[list[Row]]:
        return iter(self.blocks)


def blocks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """``rows`` as non-empty blocks of at most ``BLOCK_ROWS`` rows (``Blocks`` as cut)."""
    if isinstance(rows, Blocks):
        yield from (block for block in rows if block)
        return
    it = iter(rows)
    while block := list(islice(it, BLOCK_ROWS)):
        yield block


def _write(rows: Iterable[Row], text: Callable[[list[Row], bool], str]) -> int:
    """Write ``text(block, first)`` for each block of ``rows`` (flushed: a reader sees
    each block at once); returns the number of rows."""
    out = sys.stdout
    n = 0
    for block in blocks(rows):
        out.write(text(block, n == 0))
        out.flush()
        n += len(block)
    out.flush()
    return n


def _columns(block: list[Row], width: int) -> list[tuple[Any, ...]]:
    cols = list(zip(*block, strict=False))
    if len(cols) != width or set(map(len, block)) != {width}:
        raise ValueError(f"rows of {width} values expected")
    return cols


_STR = frozenset({str, Tags})
_NULL = type(None)
_NUMBER = {int: int.__repr__, float: float.__repr__}


def _texts(col: tuple[Any, ...]) -> Sequence[str]:
    """A column as CSV/TSV text (``text_of`` of each value)."""
    kinds = set(map(type, col))
    if kinds <= _STR:
        return col
    kinds.discard(_NULL)  # NULL among values of one kind: "" for them, no call per value
    if kinds <= _STR:
        return ["" if v is None else v for v in col]
    if len(kinds) == 1 and (kind := kinds.pop()) in _NUMBER:
        text = _NUMBER[kind]
        if None not in col:
            return list(map(text, col))
        return ["" if v is None else text(v) for v in col]
    return list(map(text_of, col))


def _lines(
    block: list[Row], width: int, sep: str, cell: Callable[[Sequence[str]], Iterable[str]]
) -> str:
    cols = [cell(_texts(col)) for col in _columns(block, width)]
    if not cols:
        return "\n" * len(block)
    return "\n".join(map(sep.join, zip(*cols, strict=True))) + "\n"


def _chars(col: Sequence[str]) -> str:
    """Every character of a column: its distinct values only when they repeat (a tag
    list is one object per tag set, shared by many rows)."""
    if col and type(col[0]) is Tags:
        return "".join(set(col))
    return "".join(col)


def _tsv_cells(col: Sequence[str]) -> Iterable[str]:
    joined = _chars(col)
    # isprintable() is False for every character TSV escapes but the backslash
    if "\\" in joined or not joined.isprintable():
        return map(escape_tsv, col)
    return col


def write_tsv(names: list[str], rows: Iterable[Row]) -> int:
    """TSV with a header line; tab, newline, backslash and control characters in a value
    escaped (``\\t``, ``\\n``, ``\\\\``, ``\\x1b``), so each row is one line. Returns the rows."""
    sys.stdout.write("\t".join(escape_tsv(n) for n in names) + "\n")
    return _write(rows, lambda block, _first: _lines(block, len(names), "\t", _tsv_cells))


def _needs_quotes(text: str) -> bool:
    return '"' in text or "," in text or "\n" in text or "\r" in text


@functools.lru_cache(maxsize=4096)
def quote_csv(field: str) -> str:
    """A CSV field quoted when it holds a comma, a quote or a line break."""
    if _needs_quotes(field):
        return '"' + field.replace('"', '""') + '"'
    return field


def _csv_cells(col: Sequence[str]) -> Iterable[str]:
    joined = _chars(col)
    if not joined.isprintable() and CSV_UNSAFE.search(joined):
        col = list(map(escape_csv, col))
        joined = "".join(col)
    if _needs_quotes(joined):
        return map(quote_csv, col)
    return col


def _csv_single(col: Sequence[str]) -> Iterable[str]:
    # A row of one empty value is written "" (an empty line would be no row at all).
    return [c or '""' for c in _csv_cells(col)]


def write_csv(names: list[str], rows: Iterable[Row]) -> int:
    """CSV with a header line (fields quoted when they hold a comma, a quote or a line
    break; control characters other than tab and line breaks escaped). Returns the rows."""
    cells = _csv_single if len(names) == 1 else _csv_cells
    sys.stdout.write(",".join(cells([escape_csv(n) for n in names])) + "\n")
    return _write(rows, lambda block, _first: _lines(block, len(names), ",", cells))


def json_cell(value: Any) -> str:
    """One value as JSON text (C1 controls and bidi overrides are escaped afterwards)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is Tags:
        return str(value)  # its text is the JSON array
    return json.dumps(json_value(value), ensure_ascii=False, default=str)


def _json_cells(col: tuple[Any, ...]) -> Iterable[str]:
    kinds = set(map(type, col))
    if kinds == {str}:
        return map(encode_basestring, col)
    if kinds == {Tags}:
        return col
    if kinds == {int}:
        return map(int.__repr__, col)
    if kinds == {float} and all(map(math.isfinite, col)):
        return map(float.__repr__, col)
    return map(json_cell, col)


def _json_objects(names: list[str], block: list[Row], sep: str) -> str:
    """The rows of ``block`` as JSON objects (``{"name": value, ...}``) joined by ``sep``."""
    keys = [
        ("{" if i == 0 else ", ") + escape_json_text(encode_basestring(name)) + ": "
        for i, name in enumerate(names)
    ]
    parts: list[Iterable[str]] = []
    for key, col in zip(keys, _columns(block, len(names)), strict=True):
        parts += [repeat(key), _json_cells(col)]
    if not parts:
        return sep.join(["{}"] * len(block))
    parts.append(repeat("}"))
    text = sep.join(map("".join, zip(*parts, strict=False)))
    if text.isascii() and "\x7f" not in text:
        return text  # nothing escape_json_text would change (DEL is the one ASCII case)
    return escape_json_text(text)


def write_json(names: list[str], rows: Iterable[Row]) -> int:
    """One JSON array of objects, one object a line. Returns the rows."""
    n = _write(
        rows,
        lambda block, first: ("[\n  " if first else ",\n  ") + _json_objects(names, block, ",\n  "),
    )
    sys.stdout.write("[]\n" if n == 0 else "\n]\n")
    sys.stdout.flush()
    return n


def write_nl(names: list[str], rows: Iterable[Row]) -> int:
    """JSON lines: one object a line. Returns the rows."""
    return _write(rows, lambda block, _first: _json_objects(names, block, "\n") + "\n")


Writer = Callable[[list[str], Iterable[Row]], int]

WRITERS: dict[str, Writer] = {
    "tsv": write_tsv,
    "csv": write_csv,
    "json": write_json,
    "nl": write_nl,
}
