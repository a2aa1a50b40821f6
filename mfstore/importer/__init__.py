"""Import a real Metaflow local history (a ``.metaflow`` directory) into a .mfdb.

Reads only files, never Metaflow: blobs are ``data/<sha[:2]>/<sha>`` (gzip of the
pickled bytes, stored as is so the sha stays Metaflow's), records are the ``_meta``
JSON files, logs are MFLOG lines. Every path is resolved relative to the directory
given: the absolute roots Metaflow stores (``location``, ``ds-root``) are ignored, so
a moved directory imports the same.

Each run is first written through ``Writer`` into a private staging store, then
copied into the target by ``sharing.copy_runs`` (one transaction): a run already in
the target with identical content is skipped, so re-import is idempotent; a run whose
content differs (e.g. it was still running at the last import) is reported and left
untouched; user tags edited since the last import are reconciled as in ``merge``.

Mapping (see docs/sharing.md):

- run ``created_at``: the earliest step record's ``ts_epoch`` (written with the run
  record, and never rewritten, unlike the run record on a tag edit: Metaflow trap T2).
  The tags the run started with come from its steps' records; later edits become one
  ``tag_events`` row dated at the run record's rewrite.
- status: ``successful`` if the end task's ``_success`` is True; ``failed`` if a task
  ended with ``_task_ok`` False (no later attempt) or the end task was unsuccessful;
  else ``running`` (killed or incomplete runs).

Modules: ``importer.history`` reads the directory (files only), ``importer.staging``
writes one run into a staging store, ``importer.core`` imports the whole directory.
"""

from __future__ import annotations

from ..exception import NotAMetaflowHistory
from .core import import_metaflow
from .history import ImportReport, find_metaflow_root, list_runs, parse_mflog, parse_mflog_bytes
from .staging import stage_run

__all__ = [
    "ImportReport",
    "NotAMetaflowHistory",
    "find_metaflow_root",
    "import_metaflow",
    "list_runs",
    "parse_mflog",
    "parse_mflog_bytes",
    "stage_run",
]
