"""Values mfstore never writes: the checks that tell a hostile or damaged row from a bug.

The Client API reads rows a file's author chose. When reading an object fails with a
plain Python error (``TypeError``, ``ValueError``, ...), ``client/_guard.py`` runs these
checks: if one finds a value mfstore never writes (a NULL where it always writes a
value, a timestamp outside year 0..9999, JSON that does not parse, a reference to a row
that is not there, chunk counts that do not add up), the error is the data's and becomes
``MetaflowDataCorruption`` naming the row; otherwise it is a bug in mfstore and is left
as it is. STRICT column types, NOT NULL and CHECK constraints hold in any file SQLite
opens, so only what they cannot express is checked here.

Each check is ``(what, sql)``; the SQL returns the rowid (or key) of the first bad row,
or nothing. Runs only on that error path: whole-table scans are fine.
"""

from __future__ import annotations

#: Epoch milliseconds of 9999-12-31T23:59:59.999Z: later (or negative) is no time.
MAX_MS = 253_402_300_799_999
#: More attempts than any retry setting gives.
MAX_ATTEMPT = 1_000
#: Larger than any value mfstore stores (2**48 bytes).
MAX_SIZE = 2**48

#: Per table: the key naming a bad row, its epoch-millisecond columns, and whether it
#: has an ``attempt`` column (an attempt number).
_NUMBERS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("flows", "flow_id", ("ts_epoch",), False),
    ("runs", "run_pk", ("ts_epoch", "finished_at"), False),
    ("tag_events", "event_pk", ("ts_epoch",), False),
    ("steps", "step_name", ("ts_epoch",), False),
    ("tasks", "task_pk", ("ts_epoch",), False),
    ("attempts", "task_pk", ("started_at", "ended_at"), True),
    ("artifacts", "name", ("ts_epoch",), True),
    ("metadata", "metadata_pk", ("ts_epoch",), True),
    ("trigger_events", "trigger_pk", ("ts_epoch",), False),
    ("deployments", "deployment_pk", ("ts_epoch",), False),
    ("events", "event_pk", ("ts_epoch",), False),
    ("log_lines", "line_pk", (), True),
)


def _not_json_of_type(col: str, kind: str) -> str:
    """SQL true when ``col`` is not JSON text of type ``kind`` (or is NULL). Never an
    error: ``json_type`` of text that is not JSON (``{``) raises SQLite's "malformed
    JSON", which would stop the scan before every later check."""
    return f"CASE WHEN json_valid({col}) THEN json_type({col}) IS NOT '{kind}' ELSE 1 END"


_JSON_COLUMNS = (
    ("tag_events", "event_pk", "removed", _not_json_of_type("removed", "array")),
    ("tag_events", "event_pk", "added", _not_json_of_type("added", "array")),
    ("blobs", "blob_id", "value_json", "value_json IS NOT NULL AND NOT json_valid(value_json)"),
    ("metadata_values", "value_id", "value", "is_json = 1 AND NOT json_valid(value)"),
    ("code_packages", "sha", "info", _not_json_of_type("info", "object")),
    ("trigger_events", "trigger_pk", "payload", "NOT json_valid(payload)"),
    ("deployments", "deployment_pk", "triggers", _not_json_of_type("triggers", "array")),
    (
        "deployments",
        "deployment_pk",
        "values_json",
        "values_json IS NOT NULL AND " + _not_json_of_type("values_json", "object"),
    ),
    ("events", "event_pk", "payload", "NOT json_valid(payload)"),
)


def _out_of_range(table: str, key: str, col: str, high: int, what: str) -> tuple[str, str]:
    """The check that ``table.col`` lies in ``[0, high]`` (``what`` it is, in the message)."""
    return (
        f"{table}.{col} is not {what}",
        f"SELECT {key} FROM {table} WHERE {col} NOT BETWEEN 0 AND {high} LIMIT 1",
    )


def compile_value_checks() -> list[tuple[str, str]]:
    """``(what, sql)`` per column whose values mfstore keeps in a range or as JSON of one
    type (a time, an attempt number, a JSON array ...): the checks of one row's own
    values, which ``mfstore verify`` runs too."""
    checks = [
        _out_of_range(table, key, col, MAX_MS, "a time")
        for table, key, cols, _attempt in _NUMBERS
        for col in cols
    ]
    checks.append(_out_of_range("log_lines", "line_pk", "ts_us", MAX_MS * 1000 + 999, "a time"))
    checks += [
        _out_of_range(table, key, "attempt", MAX_ATTEMPT, "an attempt number")
        for table, key, _cols, attempt in _NUMBERS
        if attempt
    ]
    for table, key, col, bad in _JSON_COLUMNS:
        checks.append(
            (
                f"{table}.{col} is not the JSON it should be",
                f"SELECT {key} FROM {table} WHERE {bad} LIMIT 1",
            )
        )
    return checks


def compile_hostile_value_checks() -> list[tuple[str, str]]:
    """``(what, sql)`` per kind of value mfstore never writes (see the module docstring):
    ``compile_value_checks`` and the references, blob sizes and chunks."""
    checks = compile_value_checks()
    checks += [
        (
            "a run's tag set is missing",
            "SELECT run_pk FROM runs WHERE tagset_id NOT IN (SELECT tagset_id FROM tagsets) LIMIT 1",
        ),
        (
            "a run's code package is missing",
            "SELECT run_pk FROM runs WHERE code_sha IS NOT NULL "
            "AND code_sha NOT IN (SELECT sha FROM code_packages) LIMIT 1",
        ),
        (
            "a resumed task's origin is missing",
            "SELECT task_pk FROM tasks WHERE origin_task_pk IS NOT NULL "
            "AND origin_task_pk NOT IN (SELECT task_pk FROM tasks) LIMIT 1",
        ),
        (
            "an artifact's blob is missing",
            "SELECT name FROM artifacts WHERE blob_id NOT IN (SELECT blob_id FROM blobs) LIMIT 1",
        ),
        (
            "an artifact's blob has no type",
            "SELECT a.name FROM artifacts a JOIN blobs b ON b.blob_id = a.blob_id "
            "WHERE b.type_id IS NULL OR b.type_id NOT IN (SELECT type_id FROM types) LIMIT 1",
        ),
        (
            "a type has no name",
            "SELECT type_id FROM types WHERE name NOT GLOB '?*.?*' OR name GLOB '*[^A-Za-z0-9_.<>]*' "
            "LIMIT 1",
        ),
        (
            "a metadata value is missing",
            "SELECT metadata_pk FROM metadata WHERE value_id NOT IN (SELECT value_id FROM metadata_values) "
            "LIMIT 1",
        ),
        (
            "a metadata entry's field is missing",
            "SELECT value_id FROM metadata_entries WHERE field_id NOT IN "
            "(SELECT field_id FROM metadata_fields) LIMIT 1",
        ),
        (
            "an artifact's name is missing",
            "SELECT task_pk FROM task_artifacts WHERE name_id NOT IN "
            "(SELECT name_id FROM artifact_names) LIMIT 1",
        ),
        (
            "a blob's sizes are impossible",
            f"SELECT blob_id FROM blobs WHERE size NOT BETWEEN 0 AND {MAX_SIZE} "
            f"OR stored_size NOT BETWEEN 0 AND {MAX_SIZE} LIMIT 1",
        ),
        (
            "a blob's chunks do not add up",
            "SELECT b.blob_id FROM blobs b WHERE b.chunks != 1 + (SELECT count(*) FROM blob_chunks c "
            "WHERE c.blob_id = b.blob_id AND c.seq < b.chunks) LIMIT 1",
        ),
        (
            "a blob chunk is out of place",
            "SELECT c.chunk_pk FROM blob_chunks c LEFT JOIN blobs b ON b.blob_id = c.blob_id "
            "WHERE b.blob_id IS NULL OR c.seq >= b.chunks LIMIT 1",
        ),
    ]
    return checks
