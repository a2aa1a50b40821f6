"""Content digests of a run: what ``copy_runs`` compares to call a run identical."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..store import Store
from ..tags import is_provenance

# -- content digests -----------------------------------------------------------------


def _h(rows: Iterable[Sequence[Any]]) -> str:
    h = hashlib.sha1()
    for row in rows:
        h.update(
            json.dumps(
                list(row), ensure_ascii=False, default=lambda b: hashlib.sha1(b).hexdigest()
            ).encode("utf-8", "surrogatepass")
        )
        h.update(b"\n")
    return h.hexdigest()


def run_digest(store: Store, run_pk: int) -> dict[str, str]:
    """sha1 per part of a run's content (everything but user tags and tag events)."""
    q = store.query
    task_key = "(SELECT step_name || '/' || task_id FROM tasks x WHERE x.task_pk = {t}.task_pk)"
    origin = (
        "(SELECT r2.flow_id || '/' || r2.run_number || '/' || o.step_name || '/' || o.task_id "
        "FROM tasks o JOIN runs r2 ON r2.run_pk = o.run_pk WHERE o.task_pk = t.origin_task_pk)"
    )
    return {
        "run": _h(
            q(
                "SELECT flow_id, run_number, user_name, ts_epoch, status, finished_at, end_step, "
                "origin_run_number, code_sha FROM runs WHERE run_pk = ?",
                (run_pk,),
            )
        ),
        "system_tags": _h(
            (tag,)
            for (tag,) in q(
                "SELECT tt.tag FROM runs r JOIN tagset_tags tt ON tt.tagset_id = r.tagset_id "
                "WHERE r.run_pk = ? AND tt.is_system = 1 ORDER BY tt.tag",
                (run_pk,),
            )
            if not is_provenance(tag)  # where a copy came from is not its content
        ),
        "steps": _h(
            q(
                "SELECT step_name, ts_epoch FROM steps WHERE run_pk = ? ORDER BY step_name",
                (run_pk,),
            )
        ),
        "tasks": _h(
            q(
                f"SELECT t.step_name, t.task_id, t.ts_epoch, {origin} FROM tasks t WHERE t.run_pk = ? "
                "ORDER BY t.step_name, t.task_id",
                (run_pk,),
            )
        ),
        "attempts": _h(
            q(
                "SELECT {}, a.attempt, a.started_at, a.ended_at, a.task_ok, a.success FROM attempts a "
                "JOIN tasks t ON t.task_pk = a.task_pk WHERE t.run_pk = ? ORDER BY 1, 2".format(
                    task_key.format(t="a")
                ),
                (run_pk,),
            )
        ),
        "artifacts": _h(
            q(
                "SELECT {}, a.attempt, a.name, lower(hex(b.sha)), y.name, a.ts_epoch FROM artifacts a "
                "JOIN tasks t ON t.task_pk = a.task_pk JOIN blobs b ON b.blob_id = a.blob_id "
                "LEFT JOIN types y ON y.type_id = b.type_id WHERE t.run_pk = ? ORDER BY 1, 2, 3".format(
                    task_key.format(t="a")
                ),
                (run_pk,),
            )
        ),
        "metadata": _h(
            q(
                "SELECT {}, m.attempt, v.field_name, v.value, v.is_json, v.type, m.ts_epoch FROM metadata m "
                "JOIN metadata_values v ON v.value_id = m.value_id "
                "JOIN tasks t ON t.task_pk = m.task_pk WHERE t.run_pk = ? ORDER BY 1, 2, 3, 7, 4, 6".format(
                    task_key.format(t="m")
                ),
                (run_pk,),
            )
        ),
        "logs": _h(
            q(
                "SELECT {}, l.attempt, l.stream, l.source, l.ts_us, l.line FROM log_lines l "
                "JOIN tasks t ON t.task_pk = l.task_pk WHERE t.run_pk = ? ORDER BY 1, 2, 3, 5, l.line_pk".format(
                    task_key.format(t="l")
                ),
                (run_pk,),
            )
        ),
        "triggers": _h(
            q(
                "SELECT name, event_id, type, ts_epoch, pathspec, payload FROM trigger_events WHERE run_pk = ? "
                "ORDER BY ts_epoch, event_id",
                (run_pk,),
            )
        ),
    }
