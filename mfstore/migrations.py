"""Ordered format migrations ``N-1 -> N`` on ``PRAGMA user_version``.

Each step is a short SQL script with a comment saying why. All pending steps run
in one ``BEGIN IMMEDIATE`` transaction: an interrupted migration leaves the file
exactly as it was.

Views are derived, not data: they are dropped before the steps run (so a step may
change any table they read) and rebuilt from ``schema.sql`` afterwards, so their text
lives in one place and a migrated file equals a fresh one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

#: MIGRATIONS[n] turns a format n-1 file into format n.
MIGRATIONS: dict[int, str] = {
    # Format 2 adds the documented mf_* views for ad-hoc SQL (issue 5, docs/sql.md).
    # No table changes: the views themselves are rebuilt by rebuild_views().
    2: "SELECT 1",
}

_VIEW_NAME = re.compile(
    r"^\s*CREATE\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.I
)


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements, leading comment lines removed."""
    import apsw

    out: list[str] = []
    buf: list[str] = []
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf.append(line)
        text = "".join(buf)
        if apsw.complete(text):
            out.append(text.strip())
            buf = []
    return out


def schema_views() -> list[tuple[str, str]]:
    """``(name, CREATE VIEW statement)`` of each documented view, in ``schema.sql`` order."""
    from .store import load_schema_sql

    views = []
    for statement in _statements(load_schema_sql()):
        match = _VIEW_NAME.match(statement)
        if match:
            views.append((match.group(1), statement))
    return views


def rebuild_views(store: Store) -> None:
    """Drop and re-create the documented views (inside the caller's transaction).

    Only views named in ``schema.sql`` are touched: views a user added to the file stay.
    """
    views = schema_views()
    # Dependents first: mf_steps reads mf_tasks.
    for name, _ in reversed(views):
        store.conn.execute(f'DROP VIEW IF EXISTS "{name}"')
    for _, statement in views:
        store.conn.execute(statement)


def apply_migrations(store: Store, from_version: int) -> int:
    """Migrate ``store`` from ``from_version`` to the current format; return the new version."""
    from .exception import SchemaTooNewError
    from .store import FORMAT_VERSION, OLDEST_FORMAT

    if from_version < OLDEST_FORMAT:
        raise SchemaTooNewError(
            "%s uses file format %d, older than any mfstore release can migrate"
            % (store.path, from_version)
        )
    with store.write():
        current = store.scalar("PRAGMA user_version")
        if current >= FORMAT_VERSION:
            return FORMAT_VERSION
        views = [name for name, _ in schema_views()]
        for name in reversed(views):
            store.conn.execute(f'DROP VIEW IF EXISTS "{name}"')
        for version in range(current + 1, FORMAT_VERSION + 1):
            store.conn.execute(MIGRATIONS[version])
            store.conn.execute("PRAGMA user_version = %d" % version)
        rebuild_views(store)
    return FORMAT_VERSION
