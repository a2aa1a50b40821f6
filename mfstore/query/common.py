"""What every compiled query shares: the parameter type and the value guards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Params = dict[str, Any]

#: An artifact row's (a) blob (b) and type name (y).
BLOB_JOIN = "JOIN blobs b ON b.blob_id = a.blob_id LEFT JOIN types y ON y.type_id = b.type_id"

#: Metadata rows (m) with their interned entries (v: field_name, value, is_json, type).
METADATA_JOIN = "metadata m JOIN metadata_values v ON v.value_id = m.value_id"

#: Artifact rows (a) with their task (t) and run (r).
ARTIFACT_TASK_RUN = (
    "artifacts a JOIN tasks t ON t.task_pk = a.task_pk JOIN runs r ON r.run_pk = t.run_pk"
)

# Raw tables of format 4, for what must not read the file's views (copying runs out of a
# file: salvage checks only its tables). Elsewhere the `artifacts` and `metadata_values`
# views of schema.sql give the same rows.
#: Artifact rows (a) with their names (an.name).
RAW_ARTIFACTS = "task_artifacts a JOIN artifact_names an ON an.name_id = a.name_id"
#: An artifact row's time: its own, or its attempt's end.
RAW_ARTIFACT_TS = (
    "coalesce(a.ts_epoch, (SELECT e.ended_at FROM attempts e "
    "WHERE e.task_pk = a.task_pk AND e.attempt = a.attempt))"
)
#: A metadata row's (m) entry (v) and field (vf.field_name, vf.type).
RAW_METADATA_JOIN = (
    "JOIN metadata_entries v ON v.value_id = m.value_id "
    "JOIN metadata_fields vf ON vf.field_id = v.field_id"
)


#: The condition on ``log_lines`` of one stream (``:stream``) of one attempt
#: (``:attempt``) of a task (``:task``): a range of ``log_lines_by_task``.
LOG_STREAM = "task_pk = :task AND attempt = :attempt AND stream = :stream"


def bound_list(params: Params, prefix: str, values: Iterable[Any]) -> str:
    """Bind ``values`` in ``params`` as ``:<prefix>0``, ``:<prefix>1``, ... and return that
    list, for SQL ``IN (...)`` (``NULL`` when there are none: it matches nothing)."""
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return ", ".join(names) or "NULL"


def done_attempt(task: str) -> str:
    """SQL selecting the latest *done* attempt (one that ended; Metaflow's
    ``attempt-done``) of the task whose ``task_pk`` is the SQL ``task`` (NULL: none).
    Parenthesized, it is a scalar subquery."""
    return f"SELECT max(attempt) FROM attempts WHERE task_pk = {task} AND ended_at IS NOT NULL"


def storable(*values: str | None) -> bool:
    """True if every value can be stored (UTF-8 text). A string that cannot (e.g. with a
    lone surrogate) is in no row of any file, so a lookup of it matches nothing."""
    try:
        for value in values:
            if value is not None:
                value.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        return False
    return True


def sha_key(sha: str) -> bytes:
    """The 20-byte ``blobs.sha`` of a hex sha (b'' when malformed: matches nothing)."""
    try:
        return bytes.fromhex(sha)
    except (TypeError, ValueError):
        return b""


def iso(column: str) -> str:
    """SQL text turning an epoch-milliseconds ``column`` into ISO 8601 text: the text of
    the views' ``strftime('%Y-%m-%dT%H:%M:%fZ', ...)`` (NULL stays NULL). For the years
    0000-9999 ``datetime`` with ``'subsec'`` (SQLite 3.42+, bundled by apsw) gives the same
    text several times faster; other values keep ``strftime``."""
    views = f"strftime('%Y-%m-%dT%H:%M:%fZ', {column} / 1000.0, 'unixepoch')"
    return (
        f"(CASE WHEN {column} >= -62167219200000 AND {column} < 253402300800000 "
        f"THEN replace(datetime({column} / 1000.0, 'unixepoch', 'subsec'), ' ', 'T') || 'Z' "
        f"ELSE {views} END)"
    )
