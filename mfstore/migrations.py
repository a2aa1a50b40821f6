"""Ordered format migrations ``N-1 -> N`` on ``PRAGMA user_version``.

Each step is a short SQL script with a comment saying why. All pending steps run
in one ``BEGIN IMMEDIATE`` transaction: an interrupted migration leaves the file
exactly as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

#: MIGRATIONS[n] turns a format n-1 file into format n.
MIGRATIONS: dict[int, str] = {}


def apply_migrations(store: Store, from_version: int) -> int:
    """Migrate ``store`` from ``from_version`` to the current format; return the new version."""
    from .exception import SchemaTooNewError
    from .store import FORMAT_VERSION, OLDEST_FORMAT

    if from_version < OLDEST_FORMAT:
        raise SchemaTooNewError(
            "%s uses file format %d, older than any mfstore release can migrate" % (store.path, from_version)
        )
    with store.write():
        current = store.scalar("PRAGMA user_version")
        for version in range(current + 1, FORMAT_VERSION + 1):
            store.conn.execute(MIGRATIONS[version])
            store.conn.execute("PRAGMA user_version = %d" % version)
    return FORMAT_VERSION
