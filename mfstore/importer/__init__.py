"""Import a real Metaflow local history (a ``.metaflow`` directory) into a .mfdb.

Reads only files, never Metaflow: blobs are ``data/<sha[:2]>/<sha>`` (gzip of the
pickled bytes, stored as is so the sha stays Metaflow's), records are the ``_meta``
JSON files, logs are MFLOG lines. Every path is resolved relative to the directory
given: the absolute roots Metaflow stores (``location``, ``ds-root``) are ignored, so
a moved directory imports the same.

Runs are read (in worker processes for a large history: reading the files is the
cost) into plain data, checked whole, then written in one transaction of the target
through ``Writer.task_batch()``. A run the target has already is written into a private
staging store instead and compared by ``sharing.copy_runs``: identical content is
skipped, so re-import is idempotent; a run whose content differs (e.g. it was still
running at the last import) is reported and left untouched; user tags edited since the
last import are reconciled as in ``merge``.

Mapping (see docs/sharing.md):

- run ``created_at``: the earliest step record's ``ts_epoch`` (written with the run
  record, and never rewritten, unlike the run record on a tag edit: Metaflow trap T2).
  The tags the run started with come from its steps' records; later edits become one
  ``tag_events`` row dated at the run record's rewrite.
- status: ``successful`` if the end task's ``_success`` is True; ``failed`` if a task
  ended with ``_task_ok`` False (no later attempt) or the end task was unsuccessful;
  else ``running`` (killed or incomplete runs).

Modules: ``importer.history`` reads files (confined to the directory),
``importer.parse`` reads one run (and many, in worker processes), ``importer.write``
writes one read run, ``importer.core`` imports the whole directory.
"""

from __future__ import annotations

from ..exception import NotAMetaflowHistory
from .core import ImportReport, import_metaflow
from .history import find_metaflow_root, list_runs, parse_mflog, parse_mflog_bytes
from .parse import ParsedRun, RunReader, read_runs
from .write import write_run

__all__ = [
    "ImportReport",
    "NotAMetaflowHistory",
    "ParsedRun",
    "RunReader",
    "find_metaflow_root",
    "import_metaflow",
    "list_runs",
    "parse_mflog",
    "parse_mflog_bytes",
    "read_runs",
    "write_run",
]
