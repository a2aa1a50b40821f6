"""Writes of whole runs copied from another file (merge, export, import) and of their
removal (delete + garbage collection). Every function runs inside ``store.write()``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import query
from ..query.sharing import CHILD_ROWS, UNUSED_BLOB_COUNT, UNUSED_BLOBS
from ..store import Store
from .records import SET_RUN_TAGSET, Insert, insert_artifact_rows

Rows = Iterable[Sequence[Any]]


def merge_flow(store: Store, flow_id: str, ts_epoch: int) -> None:
    """Add the flow, or move its creation time back to ``ts_epoch`` if earlier."""
    store.execute(
        "INSERT INTO flows (flow_id, ts_epoch) VALUES (?, ?) "
        "ON CONFLICT (flow_id) DO UPDATE SET ts_epoch = min(ts_epoch, excluded.ts_epoch)",
        (flow_id, ts_epoch),
    )


def set_flow_created(store: Store, flow_id: str, ts_epoch: int) -> None:
    """Set a flow's creation time."""
    store.execute(
        "UPDATE flows SET ts_epoch = :ts WHERE flow_id = :flow", {"ts": ts_epoch, "flow": flow_id}
    )


def add_code_package_record(store: Store, sha: str, script_name: str, info: Any) -> None:
    """Add a code package record unless one with ``sha`` is there."""
    store.execute(
        "INSERT INTO code_packages (sha, script_name, info) SELECT :sha, :script, :info "
        "WHERE NOT EXISTS (SELECT 1 FROM code_packages WHERE sha = :sha)",
        {"sha": sha, "script": script_name, "info": info},
    )


def insert_run_record(store: Store, record: Sequence[Any]) -> int:
    """Insert a run ``(flow_id, run_number, user_name, tagset_id, ts_epoch, status,
    finished_at, end_step, origin_run_number, code_sha)``; returns its ``run_pk``."""
    return store.insert(
        "INSERT INTO runs (flow_id, run_number, user_name, tagset_id, ts_epoch, status, finished_at, end_step, "
        "origin_run_number, code_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(record),
    )


def set_run_tagset(store: Store, run_pk: int, tagset_id: int) -> None:
    """Point a run at another tag set."""
    store.execute(SET_RUN_TAGSET, {"tagset": tagset_id, "run": run_pk})


def insert_task_record(
    store: Store, run_pk: int, step_name: str, task_id: str, ts_epoch: int, origin: int | None
) -> int:
    """Insert a task; returns its ``task_pk``."""
    return store.insert(
        Insert.NEW_TASK,
        (run_pk, step_name, task_id, ts_epoch, origin),
    )


def insert_child_rows(store: Store, table: str, owner_pk: int, rows: Rows) -> None:
    """Add rows of ``table`` (one of ``CHILD_ROWS``) to the run or task ``owner_pk``; each
    row gives the table's copied columns, in ``CHILD_ROWS`` order."""
    owner, columns, _order = CHILD_ROWS[table]
    if table == "artifacts":  # a view in format 4: rows go to task_artifacts
        ends = {
            a: e for a, _s, e, *_ in store.query(*query.compile_child_rows("attempts", owner_pk))
        }
        insert_artifact_rows(
            store,
            [
                (owner_pk, att, name, bid, None if ts == ends.get(att) else ts)
                for att, name, bid, ts in rows
            ],
        )
        return
    store.executemany(
        f"INSERT INTO {table} ({owner}, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
        [(owner_pk, *row) for row in rows],
    )


# -- removing runs ------------------------------------------------------------------------


def delete_runs(store: Store, run_pks: Sequence[int]) -> None:
    """Delete runs (their rows go with them); kept runs resumed from one of them lose the
    link to the deleted origin task (not their data)."""
    store.execute("CREATE TEMP TABLE IF NOT EXISTS _doomed (run_pk INTEGER PRIMARY KEY)")
    store.execute("DELETE FROM _doomed")
    store.executemany("INSERT INTO _doomed VALUES (?)", [(pk,) for pk in run_pks])
    store.execute(
        "UPDATE tasks SET origin_task_pk = NULL WHERE run_pk NOT IN (SELECT run_pk FROM _doomed) "
        "AND origin_task_pk IN (SELECT task_pk FROM tasks WHERE run_pk IN (SELECT run_pk FROM _doomed))"
    )
    store.execute("DELETE FROM runs WHERE run_pk IN (SELECT run_pk FROM _doomed)")


def drop_delete_scratch(store: Store) -> None:
    """Drop the temporary table ``delete_runs`` used."""
    store.execute("DROP TABLE _doomed")


def collect_garbage(store: Store) -> int:
    """Remove blobs no artifact or code package references (and unused tag sets,
    code packages and empty flows); inside ``store.write()``. Returns blobs removed."""
    store.execute(
        "DELETE FROM code_packages WHERE sha NOT IN (SELECT code_sha FROM runs WHERE code_sha IS NOT NULL) "
        "AND sha NOT IN (SELECT code_sha FROM deployments)"
    )
    n = store.scalar(UNUSED_BLOB_COUNT)
    store.execute("DELETE FROM blobs WHERE " + UNUSED_BLOBS)
    store.execute("DELETE FROM tagsets WHERE tagset_id NOT IN (SELECT tagset_id FROM runs)")
    store.execute(
        "DELETE FROM flows WHERE flow_id NOT IN (SELECT flow_id FROM runs) "
        "AND flow_id NOT IN (SELECT flow_id FROM deployments) AND flow_id NOT IN (SELECT flow_id FROM tagsets)"
    )
    return int(n or 0)
