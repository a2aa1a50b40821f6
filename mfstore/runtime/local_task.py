"""A task attempt in a process forked from the runtime (the local executor's).

The runtime has the .mfdb open (its writer; the Client's readers if the flow file used
the Client API). Its forked task process first puts those connections aside and forgets
the Client's cached stores, then runs the attempt (``task.run_task``), reading the blobs
of its input artifacts through a read-only connection of its own, opened on the first
blob it needs. That is the store's part of a local task; ``runtime.task`` itself knows
only ``artifacts``, ``blobs`` and a ``BlobSource``, so a task process of another
executor (a Dask worker's, whose blobs arrive with the task) loads no store or writer.
"""

from __future__ import annotations

from typing import Any

from mfstore import provider
from mfstore.blobs import get_blob
from mfstore.store import Store, forget_inherited

from .task import BlobSource, TaskSpec, run_task


class FileBlobs(BlobSource):
    """Blobs read from the .mfdb through a read-only connection opened in this process."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._store: Store | None = None

    def get(self, sha: str, what: str) -> bytes:
        if self._store is None:
            self._store = Store(self.db_path, readonly=True)
        return get_blob(self._store, sha, what=what)


def run_local_task(
    flow_cls: type[object], graph: Any, graph_info: dict[str, Any], spec: TaskSpec
) -> int:
    """In a task process forked from the runtime: leave the runtime's connections and
    cached stores behind, then run the attempt (``run_task``) with blobs from the file."""
    forget_inherited()  # the runtime's connections never live on in a task process
    # Forget the runtime's cached stores (reset() never closes a store another process
    # opened) so the Client API opens its own here.
    provider.reset()
    return run_task(flow_cls, graph, graph_info, spec, FileBlobs(spec.db_path))
