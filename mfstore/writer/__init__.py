"""The documented way to write runs into a .mfdb: the runtime, the importer and the
tests all go through ``Writer``.

Every method is one transaction (``BEGIN IMMEDIATE``), so a process killed at any
moment leaves the file readable. A task attempt's artifacts, its status and its
``attempt-done`` metadata are written by ``end_attempt`` in a single transaction: a
reader either sees the finished attempt whole, or sees it running.

Typical use::

    w = Writer(store)
    run = w.begin_run("HelloFlow", user_name="alice", system_tags=["user:alice"])
    w.add_step(run, "start")
    task = w.add_task(run, "start")
    w.begin_attempt(task, 0)
    w.add_log_lines(task, 0, "stdout", [(ts_us, "hello")])
    w.end_attempt(task, 0, artifacts=prepare_artifacts({"x": 1}), task_ok=True, success=True)
    w.end_run(run, successful=True)

Parameters: a statement that finds rows by a condition (an ``UPDATE``, a ``DELETE``, an
``INSERT ... SELECT``) names them (``:run``, ``:task`` ...), as ``mfstore.query``'s reads
do; a row INSERT (``INSERT ... VALUES``, ``records.Insert``) binds its row by position, a
tuple in column order. Rows are buffered and bound that way, up to 50 per statement from
one flat list (``insert_flat``), and apsw binds a value by name about 50 ns slower than by
position (an INSERT of 8 values: 1.2 -> 1.6 us).
"""

from __future__ import annotations

from ..artifacts import PreparedArtifact, prepare_artifact, prepare_artifacts, prepare_raw_artifact
from .core import TaskBatch, Writer
from .records import (
    TASK_FILE_TYPE,
    DoneTask,
    MetadataEntry,
    RunRef,
    TaskRef,
    insert_metadata_rows,
    metadata_value_id,
)

__all__ = [
    "TASK_FILE_TYPE",
    "DoneTask",
    "MetadataEntry",
    "PreparedArtifact",
    "RunRef",
    "TaskBatch",
    "TaskRef",
    "Writer",
    "insert_metadata_rows",
    "metadata_value_id",
    "prepare_artifact",
    "prepare_artifacts",
    "prepare_raw_artifact",
]
