"""Handing .mfdb files to others: snapshot, export a subset, merge, delete + GC, verify, stats.

One module per concern (every public name is importable from ``mfstore.sharing``):

- ``sharing.select``: ``RunFilter`` and the runs it selects;
- ``sharing.digest``: a run's content digests (what "identical" means);
- ``sharing.copy``: ``copy_runs``, the engine behind export, merge and import, and the
  merge rules (tag reconciliation);
- ``sharing.files``: whole-file commands (snapshot, export, merge);
- ``sharing.maintenance``: delete + garbage collection, verify, stats.
"""

from __future__ import annotations

from ..writer.copy import collect_garbage
from .copy import (
    CopyReport,
    RunOutcomes,
    copy_runs,
    reconcile_user_tags,
)
from .digest import (
    run_digest,
)
from .files import (
    export,
    fold_after_commit,
    merge,
    snapshot,
)
from .maintenance import (
    DeleteReport,
    delete,
    stats,
    verify,
)
from .select import (
    RunFilter,
    describe_runs,
    parse_time,
    select_runs,
)

__all__ = [
    "CopyReport",
    "DeleteReport",
    "RunFilter",
    "RunOutcomes",
    "collect_garbage",
    "copy_runs",
    "delete",
    "describe_runs",
    "export",
    "fold_after_commit",
    "merge",
    "parse_time",
    "reconcile_user_tags",
    "run_digest",
    "select_runs",
    "snapshot",
    "stats",
    "verify",
]
