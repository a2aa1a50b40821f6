"""The one package that opens SQLite connections and starts transactions.

``Store(path)`` validates the file before SQLite touches it (header, application_id,
user_version, length), applies the connection policy, migrates older formats forward
in one transaction, and offers ``store.write()`` (``BEGIN IMMEDIATE`` with bounded
retry; nested blocks become savepoints) and ``store.read()`` (one consistent
snapshot). apsw errors are translated into ``mfstore.exception`` here and nowhere else.

- ``store.core``: ``Store`` (statements, transactions, checkpoints);
- ``store.fork``: the stores of this process and their fork safety (a forked child opens
  its own connection on first use; nothing runs at ``fork()``);
- ``store.background``: the checkpoints of large commits, run by a thread (the hook that
  pauses them around ``fork()`` is installed by the first such thread, not at import);
- ``store.connection``: the connection policy, the read-only authorizer, ``BlobReader``,
  driver error translation;
- ``store.publish``: a new file made under a hidden name and published atomically
  (``publish_new``; ``build_new_file`` writes a new file's schema);
- ``store.checks``: the header check, and a new file's schema / an existing file's
  format and schema checks (with migration).
"""

from __future__ import annotations

from ..migrations import APPLICATION_ID, FORMAT_VERSION, OLDEST_FORMAT
from .connection import BlobReader, build_new_file
from .core import Store, Tracer
from .fork import forget_inherited
from .publish import SIDECARS, publish_new

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "OLDEST_FORMAT",
    "SIDECARS",
    "BlobReader",
    "Store",
    "Tracer",
    "build_new_file",
    "forget_inherited",
    "publish_new",
]
