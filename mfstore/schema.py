"""What a .mfdb may contain: the objects ``schema.sql`` creates, and nothing else.

A received file is untrusted input. SQLite runs whatever the file's schema says when
it is read or written: a trigger fires on a write, a view decides what a query on its
name returns, an index on an expression evaluates that expression, a virtual table runs
its module. So ``Store`` compares the file's ``sqlite_master`` with ``schema.sql`` when
it opens a file (``check``) and refuses anything ``schema.sql`` does not create, naming
the object and how to get a clean copy (``mfstore export`` reads only the raw tables
and writes a new file from ``schema.sql``, so the object is not carried over).

The comparison is generic: whatever format ``schema.sql`` describes, its statements are
the reference (no list of names in the code). It stays cheap by design: SQLite keeps each
``CREATE`` statement's text as written, so a file mfstore created holds exactly
schema.sql's statement texts. Every open reads the file's ``sqlite_master`` (one query)
and compares a BLAKE2b digest of its rows with the digest of schema.sql's texts (recorded in
``AS_CREATED_DIGEST``, so even the first open of a process reads no schema.sql) -- no
caching by ``schema_version`` or file identity, which a crafted file could fake. Other
files (migrated from an older format, or edited) are compared with comments and
whitespace normalised, once per distinct schema text per process.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .exception import UntrustedSchemaError
from .migrations import FORMAT_VERSION, load_schema_sql

_CREATE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(TABLE|INDEX|VIEW|TRIGGER)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)",
    re.I,
)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\s+|[^'\"\s-]+|-", re.S)
_SPACE_AROUND = re.compile(r" ?([(),;=<>+*/|.]) ?")
#: Objects SQLite itself may add to any database.
_SQLITE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})

#: Objects of older formats that their migration removes (allowed with ``older``).
_OLDER_OBJECTS = frozenset({("index", "artifacts_by_sha")})

#: How a user gets a file without the planted object.
CLEAN_COPY_HINT = "get a clean copy of its runs with `mfstore export {path} CLEAN.mfdb`"


_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?(?:\n|$)")
_LEADING_COMMENTS = re.compile(r"^(?:\s*--[^\n]*\n|\s+)*")


def statements(script: str) -> list[str]:
    """Split an SQL script into statements (without their ``;``), leading comments removed."""
    import apsw

    out: list[str] = []
    pending = ""
    for chunk in _STATEMENT_END.split(script):
        pending += chunk
        # A ';' at a line end inside a string literal does not end the statement.
        if not apsw.complete(pending + ";"):
            pending += ";\n"
            continue
        text = _LEADING_COMMENTS.sub("", pending, count=1).rstrip()
        pending = ""
        if text:
            out.append(text)
    return out


def normalize(sql: str) -> str:
    """SQL text with comments dropped, whitespace collapsed, keywords lower-cased
    (string literals and quoted names kept as they are)."""
    parts: list[str] = []
    for tok in _TOKEN.findall(sql):
        if tok.startswith(("--", "/*")) or tok.isspace():
            parts.append(" ")
        elif tok[0] in "'\"":
            parts.append(tok)
        else:
            parts.append(tok.lower())
    text = " ".join("".join(parts).split())
    text = _SPACE_AROUND.sub(lambda m: m.group(1), text)
    return re.sub(
        r"^create (unique )?(table|index|view|trigger) if not exists ", r"create \1\2 ", text
    )


@functools.cache
def expected() -> dict[tuple[str, str], str]:
    """``{(type, name): CREATE text}`` of every object ``schema.sql`` creates."""
    out: dict[tuple[str, str], str] = {}
    for statement in statements(load_schema_sql()):
        match = _CREATE.match(statement)
        if match:
            out[(match.group(1).lower(), match.group(2))] = statement
    return out


@functools.cache
def _expected_normalized() -> dict[tuple[str, str], str]:
    return {key: normalize(sql) for key, sql in expected().items()}


@functools.cache
def _as_created() -> dict[tuple[str, str], str]:
    """``{(type, name): text}`` exactly as SQLite stores schema.sql's objects in a file
    mfstore created (SQLite keeps each ``CREATE`` statement's text as written).

    Built once per process without parsing (a split, so the first open of a process
    stays cheap too): a statement of schema.sql starts at a line beginning with
    ``CREATE`` and ends at a ``;`` that ends its line, and no other ``;`` ends a line
    (tests/security/test_planted_sql.py checks both). Were that ever untrue, the texts
    here would not match and the full comparison would decide: never a wrong answer."""
    out: dict[tuple[str, str], str] = {}
    for piece in load_schema_sql().split(";\n"):
        _comments, start, rest = ("\n" + piece).partition("\nCREATE ")
        if not start:
            continue
        text = "CREATE " + rest
        head = _CREATE.match(text)
        if head:
            out[(head.group(1).lower(), head.group(2))] = text
    return out


#: ``(format, digest(...))`` of schema.sql's objects as a new file stores them: the
#: first open of a process compares with it without reading schema.sql. Used only while
#: FORMAT_VERSION is that format; tests/test_architecture.py fails (printing the new
#: value) when schema.sql changes and this is not updated.
AS_CREATED_DIGEST = (4, "a6c13421093c7326de589b51c32809119e715f7f63ed1736d1777b37e701070f")


def digest(schema: dict[tuple[str, str], str | None]) -> str:
    """BLAKE2b-256 of ``{(type, name): sql}`` schema rows, independent of their order. Every
    field is length-prefixed, so the encoding is unambiguous: a crafted file cannot
    match another schema's digest."""
    text = "".join(
        f"{len(kind)}:{kind}{len(name)}:{name}" + ("-" if sql is None else f"{len(sql)}:{sql}")
        for (kind, name), sql in sorted(schema.items(), key=_key)
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


def _key(item: tuple[tuple[str, str], str | None]) -> tuple[str, str]:
    return item[0]


#: Schemas found equal to schema.sql in this process (each compared as one dict
#: equality at every later open): the one mfstore creates, and any other text that
#: passed the full comparison (a migrated file: compared in full once per distinct
#: schema text, i.e. once per schema_version).
_known_good: list[dict[tuple[str, str], str | None]] = []


def _is_known_good(actual: dict[tuple[str, str], str | None]) -> bool:
    if any(actual == good for good in _known_good):
        return True
    if (FORMAT_VERSION, digest(actual)) == AS_CREATED_DIGEST or actual == _as_created():
        # First open of a process: the digest spares reading schema.sql.
        _known_good.append(actual)
        return True
    return False


def _describe(kind: str, name: str, sql: str | None) -> str:
    if kind == "table" and sql and re.match(r"\s*CREATE\s+VIRTUAL\s", sql, re.I):
        return f"virtual table {name!r}"
    return f"{kind} {name!r}"


def problems(
    rows: Iterable[Sequence[Any]], *, tables_only: bool = False, older: bool = False
) -> list[str]:
    """What the schema rows ``(type, name, tbl_name, sql)`` of ``sqlite_master`` hold
    beyond ``schema.sql``; empty when the file is clean.

    ``tables_only`` (salvage: ``mfstore export`` of a refused file) checks only that the
    tables holding the data are exactly schema.sql's; other objects are ignored because
    the copy reads raw tables only and writes a fresh file. ``older`` (a file of an older
    format, about to be migrated) allows the documented tables, indexes and views under
    other definitions but still refuses triggers, virtual tables and unknown objects.
    """
    actual: dict[tuple[str, str], str | None] = {}
    for kind, name, _tbl, sql in rows:
        if name.startswith("sqlite_"):
            if kind == "index" and sql is None and name.startswith("sqlite_autoindex_"):
                continue
            if kind == "table" and name in _SQLITE_TABLES:
                continue
        actual[(kind, name)] = sql
    if _is_known_good(actual):
        return []  # a file mfstore created (SQLite keeps schema.sql's text as written)
    want = _expected_normalized()
    out: list[str] = []
    for (kind, name), sql in actual.items():
        if tables_only and (kind != "table" or (kind, name) not in want):
            continue  # salvage reads schema.sql's tables only; the rest is not copied
        virtual = bool(sql and re.match(r"\s*CREATE\s+VIRTUAL\s", sql, re.I))
        if older and kind in ("table", "index") and not virtual:
            # An older format's own tables and indexes (renamed or dropped by its
            # migration); the full check runs again once the file is migrated.
            continue
        if (kind, name) not in want:
            if older and (kind, name) in _OLDER_OBJECTS:
                continue
            out.append(f"a {_describe(kind, name, sql)} that schema.sql does not create")
        elif older:
            if kind == "table" and sql and re.match(r"\s*CREATE\s+VIRTUAL\s", sql, re.I):
                out.append(f"a {_describe(kind, name, sql)} in place of schema.sql's table")
        elif (tables_only and kind != "table") or sql is None:
            continue
        elif normalize(sql) != want[(kind, name)]:
            out.append(f"a changed {_describe(kind, name, sql)} (not as schema.sql creates it)")
    if not older:
        for kind, name in want:
            if (kind, name) not in actual and (kind == "table" or not tables_only):
                out.append(f"no {kind} {name!r} (schema.sql creates it)")
    if not out and not tables_only and not older:
        _known_good.append(actual)
    return out


def refuse(path: Path, found: list[str]) -> UntrustedSchemaError:
    """The one-line error for a file whose schema differs from schema.sql."""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return UntrustedSchemaError(
        f"{path} holds {found[0]}{more}: mfstore refuses files with SQL objects it did not "
        "create (they could run code or change what you read); " + CLEAN_COPY_HINT.format(path=path)
    )
