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
schema.sql's statement texts. Every open runs one query (``SCHEMA_TEXT_SQL``) in which
SQLite encodes the file's whole ``sqlite_master`` as one unambiguous string, and compares
it with schema.sql's: by a BLAKE2b digest recorded in ``AS_CREATED_DIGEST`` at the first
open of a process (so no open reads schema.sql), by string equality after. Nothing is
cached by ``schema_version`` or file identity, which a crafted file could fake. A file
holding schema.sql's objects in another order (migrated from an older format, or
vacuumed) is recognised by the same text sorted (one more query); any other schema gets
the full comparison (``problems``: comments and whitespace normalised, every object
named), once per distinct schema text per process when it passes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .exception import UntrustedSchemaError
from .migrations import FORMAT_VERSION, schema_objects

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\s+|[^'\"\s-]+|-", re.S)
_SPACE_AROUND = re.compile(r" ?([(),;=<>+*/|.]) ?")
#: Objects SQLite itself may add to any database.
_SQLITE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})

#: Objects of older formats that their migration removes (allowed with ``older``).
_OLDER_OBJECTS = frozenset({("index", "artifacts_by_sha")})

#: How a user gets a file without the planted object.
CLEAN_COPY_HINT = "get a clean copy of its runs with `mfstore export {path} CLEAN.mfdb`"


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
def _expected_normalized() -> dict[tuple[str, str], str]:
    return {key: normalize(sql) for key, sql in schema_objects().items()}


def digest(text: bytes) -> str:
    """BLAKE2b-256 (hex) of a ``SCHEMA_TEXT_SQL`` text (the cheapest first call of
    hashlib's hashes in a fresh process, measured)."""
    return hashlib.blake2b(text, digest_size=32).hexdigest()


def _sql_field(column: str) -> str:
    return f"ifnull(length(CAST({column} AS BLOB)) || ':' || {column}, '-')"


#: One row: the number of objects in the file's schema, and every ``sqlite_master`` row
#: (in its order) encoded as one UTF-8 string (returned as bytes) in which each field (type, name, sql) is prefixed
#: by its length in bytes, NULL as ``-``: unambiguous, so two schemas give the same text
#: only when they hold the same rows in the same order. SQLite builds it in C, which
#: measured cheaper than fetching the rows and far cheaper than sorting them; a file
#: whose rows are in another order (e.g. after ``VACUUM``) is compared sorted
#: (``SORTED_SCHEMA_TEXT_SQL``), once per process. Comparing it with a known-good text is the whole check for a file
#: mfstore wrote: one query and one hash or string comparison, no work per schema row.
SCHEMA_TEXT_SQL = (
    f"SELECT count(*), CAST(group_concat({_sql_field('type')} || {_sql_field('name')} || "
    f"{_sql_field('sql')}, '') AS BLOB) FROM sqlite_master"
)

#: The same text with the rows sorted by ``(type, name)``: asked only when the text in
#: ``sqlite_master`` order is not known good, so a file holding exactly schema.sql's
#: objects in another order (a migrated file, whose views were rebuilt; a ``VACUUM``-ed
#: one) is recognised by one more query, not by the full comparison.
SORTED_SCHEMA_TEXT_SQL = (
    f"SELECT count(*), CAST(group_concat(r, '') AS BLOB) FROM (SELECT {_sql_field('type')} || "
    f"{_sql_field('name')} || {_sql_field('sql')} AS r FROM sqlite_master ORDER BY type, name)"
)

#: ``(format, digest(text))`` of the ``SCHEMA_TEXT_SQL`` text of a new file (schema.sql's
#: statements in their order, as SQLite keeps them: as written, plus SQLite's own indexes
#: of UNIQUE constraints): the first open of a process compares with it without reading
#: schema.sql. Used only while
#: FORMAT_VERSION is that format; tests/test_architecture.py fails (printing the new
#: value) when schema.sql changes and this is not updated.
AS_CREATED_DIGEST = (5, "a3e526a346ebb24e6eb15ea7d8485d0e2531ab4fe82a45c65fb92fdcd1f809ce")

#: ``(format, digest(text))`` of the ``SORTED_SCHEMA_TEXT_SQL`` text of a new file.
AS_CREATED_SORTED_DIGEST = (5, "998b8b8f064fe09baec4453363c9da69e93d1ef72c126753abb428c3050b6ee7")

#: ``SCHEMA_TEXT_SQL`` texts found equal to schema.sql in this process: schema.sql's own
#: (by digest), and any other that passed the full comparison (a migrated file: compared
#: in full once per distinct schema text per process). Each later open is one string
#: comparison -- of the file's whole schema, so nothing is trusted by name or version.
_known_good: list[bytes] = []


def is_known_good(text: bytes | None) -> bool:
    """Whether the file whose ``SCHEMA_TEXT_SQL`` text is ``text`` holds exactly
    schema.sql's objects, as far as known without the full comparison (``problems``)."""
    if text is None:
        return False
    if any(text == good for good in _known_good):
        return True
    if (FORMAT_VERSION, digest(text)) == AS_CREATED_DIGEST:
        _known_good.append(text)
        return True
    return False


def is_known_good_sorted(sorted_text: bytes | None) -> bool:
    """Whether a ``SORTED_SCHEMA_TEXT_SQL`` text is a new file's: the file holds exactly
    schema.sql's objects, in some order (the encoding is unambiguous and the order
    canonical, so equal texts mean equal sets of rows)."""
    return (
        sorted_text is not None
        and (FORMAT_VERSION, digest(sorted_text)) == AS_CREATED_SORTED_DIGEST
    )


def remember_good(text: bytes | None) -> None:
    """Record ``text`` as the schema of a file that passed the full comparison."""
    if text is not None and not is_known_good(text):
        _known_good.append(text)


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
    return out


def refuse(path: Path, found: list[str]) -> UntrustedSchemaError:
    """The one-line error for a file whose schema differs from schema.sql."""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return UntrustedSchemaError(
        f"{path} holds {found[0]}{more}: mfstore refuses files with SQL objects it did not "
        "create (they could run code or change what you read); " + CLEAN_COPY_HINT.format(path=path)
    )
