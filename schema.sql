-- mfstore file format, version 5: the single source of the .mfdb schema.
--
-- A .mfdb file is identified by PRAGMA application_id = 0x6d666462 ('mfdb') and
-- versioned by PRAGMA user_version (mfstore/migrations.py moves older files forward).
-- Vocabulary follows Metaflow: flow_id (flow name), run_number (run id), step_name,
-- task_id, attempt, ts_epoch (milliseconds since the Unix epoch, UTC).
--
-- Raw tables may change between format versions; the documented views
-- (docs/sql.md) are the stable interface for ad-hoc SQL.

CREATE TABLE flows (
    flow_id     TEXT PRIMARY KEY,           -- the FlowSpec class name
    ts_epoch    INTEGER NOT NULL            -- first time a run of this flow was recorded
) STRICT, WITHOUT ROWID;

-- Tag sets: every distinct set of (tag, kind) pairs carried by runs of a flow is stored
-- once. A run points at its tag set, so "runs having all of tags A, B and namespace N"
-- is answered by intersecting the (few) tag sets that contain A, B and N, then one
-- index seek per matching tag set into runs - never a scan of the flow's runs, even
-- when A and B are each common but never together (the intersection is then empty).
CREATE TABLE tagsets (
    tagset_id   INTEGER PRIMARY KEY,
    flow_id     TEXT NOT NULL REFERENCES flows (flow_id),
    digest      TEXT NOT NULL,              -- sha1 of the canonical JSON of the sorted pairs
    UNIQUE (flow_id, digest)
) STRICT;

-- The tags join table: one row per (tag set, tag, kind).
CREATE TABLE tagset_tags (
    flow_id     TEXT NOT NULL,              -- copied from tagsets so the filter index is per flow
    tag         TEXT NOT NULL,
    tagset_id   INTEGER NOT NULL REFERENCES tagsets (tagset_id) ON DELETE CASCADE,
    is_system   INTEGER NOT NULL CHECK (is_system IN (0, 1)),
    PRIMARY KEY (flow_id, tag, tagset_id, is_system)
) STRICT, WITHOUT ROWID;
CREATE INDEX tagset_tags_by_set ON tagset_tags (tagset_id);

CREATE TABLE code_packages (
    sha         TEXT PRIMARY KEY,           -- sha1 hex of the tarball (its blob: blobs.sha)
    script_name TEXT NOT NULL,              -- file name of the flow script, e.g. 'flow.py'
    info        TEXT NOT NULL DEFAULT '{}'  -- JSON object (MetaflowCode.info)
) STRICT, WITHOUT ROWID;

CREATE TABLE runs (
    run_pk      INTEGER PRIMARY KEY,
    flow_id     TEXT NOT NULL REFERENCES flows (flow_id),
    run_number  TEXT NOT NULL,              -- Metaflow run id: digits, unique across machines
    user_name   TEXT,                       -- who started the run
    tagset_id   INTEGER NOT NULL REFERENCES tagsets (tagset_id),
    ts_epoch    INTEGER NOT NULL,           -- created_at; never changed by tag edits
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'successful', 'failed')),
                -- 'running' also covers a runtime that died before ending the run
    finished_at INTEGER,                    -- ms; set when the run ends (successful or not)
    end_step    TEXT NOT NULL DEFAULT 'end',
    origin_run_number TEXT,                 -- resume: the run this one was resumed from
    code_sha    TEXT REFERENCES code_packages (sha),
    UNIQUE (flow_id, run_number)
) STRICT;
-- latest_run / runs(*tags) per tag set, newest first.
CREATE INDEX runs_by_tagset ON runs (flow_id, tagset_id, ts_epoch, run_number);
-- latest_run / iteration in the global namespace.
CREATE INDEX runs_by_time ON runs (flow_id, ts_epoch, run_number);
-- latest_successful_run, with and without a namespace.
CREATE INDEX runs_ok_by_tagset ON runs (flow_id, tagset_id, ts_epoch, run_number)
    WHERE status = 'successful';
CREATE INDEX runs_ok_by_time ON runs (flow_id, ts_epoch, run_number)
    WHERE status = 'successful';

-- Who changed a run's user tags, when, and how (tag edits never change runs.ts_epoch).
CREATE TABLE tag_events (
    event_pk    INTEGER PRIMARY KEY,
    run_pk      INTEGER NOT NULL REFERENCES runs (run_pk) ON DELETE CASCADE,
    ts_epoch    INTEGER NOT NULL,
    user_name   TEXT,
    removed     TEXT NOT NULL,              -- JSON list of user tags removed
    added       TEXT NOT NULL               -- JSON list of user tags added
) STRICT;
CREATE INDEX tag_events_by_run ON tag_events (run_pk);

CREATE TABLE steps (
    run_pk      INTEGER NOT NULL REFERENCES runs (run_pk) ON DELETE CASCADE,
    step_name   TEXT NOT NULL,
    ts_epoch    INTEGER NOT NULL,
    PRIMARY KEY (run_pk, step_name)
) STRICT, WITHOUT ROWID;

CREATE TABLE tasks (
    task_pk     INTEGER PRIMARY KEY,
    run_pk      INTEGER NOT NULL,
    step_name   TEXT NOT NULL,
    task_id     TEXT NOT NULL,              -- per-run counter in scheduling order; '0' = _parameters
    ts_epoch    INTEGER NOT NULL,
    origin_task_pk INTEGER,                 -- resume: the task this one was cloned from (may be in another run)
    FOREIGN KEY (run_pk, step_name) REFERENCES steps (run_pk, step_name) ON DELETE CASCADE,
    UNIQUE (run_pk, step_name, task_id)
) STRICT;
CREATE INDEX tasks_by_step_time ON tasks (run_pk, step_name, ts_epoch);

CREATE TABLE attempts (
    task_pk     INTEGER NOT NULL REFERENCES tasks (task_pk) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL CHECK (attempt >= 0),
    started_at  INTEGER NOT NULL,           -- ms
    ended_at    INTEGER,                    -- ms; NULL while running or if the task process died
    task_ok     INTEGER CHECK (task_ok IN (0, 1)),   -- the attempt ran to its end without an uncaught error
    success     INTEGER CHECK (success IN (0, 1)),   -- Task.successful
    PRIMARY KEY (task_pk, attempt)
) STRICT, WITHOUT ROWID;

-- Qualified type names of artifact values ('builtins.int', ...), each stored once.
CREATE TABLE types (
    type_id     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
) STRICT;

-- One row per distinct value (content-addressed). What depends only on the bytes is
-- stored here once, however many artifacts share the value: its type and JSON form.
CREATE TABLE blobs (
    blob_id     INTEGER PRIMARY KEY,
    sha         BLOB NOT NULL UNIQUE CHECK (length(sha) = 20),
                -- sha1 of the raw (pickled) bytes, 20 bytes; the views show it as hex,
                -- as Metaflow reports it: lower(hex(sha))
    size        INTEGER NOT NULL,           -- raw size in bytes (DataArtifact.size)
    stored_size INTEGER NOT NULL,           -- bytes kept in data + blob_chunks.data
    chunks      INTEGER NOT NULL CHECK (chunks >= 1),
    type_id     INTEGER REFERENCES types (type_id),  -- the value's type; NULL: not an artifact (code)
    value_json  TEXT,                       -- the value as JSON when it is plain data, else NULL
    codec       TEXT NOT NULL CHECK (codec IN ('raw', 'zstd')),  -- of the first chunk
    data        BLOB NOT NULL               -- the first chunk (last column: reading the columns
                                            -- before it never touches it)
) STRICT;

-- Chunks after the first of values above 256 MB (SQLite's blob limit is 1 GB). Each chunk
-- is compressed on its own; zstd frames carry a content checksum (checked on every read).
CREATE TABLE blob_chunks (
    chunk_pk    INTEGER PRIMARY KEY,
    blob_id     INTEGER NOT NULL REFERENCES blobs (blob_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    codec       TEXT NOT NULL CHECK (codec IN ('raw', 'zstd')),
    data        BLOB NOT NULL,
    UNIQUE (blob_id, seq)
) STRICT;

-- Artifact names, each stored once.
CREATE TABLE artifact_names (
    name_id     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
) STRICT;

-- One row per artifact of a task attempt.
CREATE TABLE task_artifacts (
    task_pk     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    name_id     INTEGER NOT NULL REFERENCES artifact_names (name_id),
    blob_id     INTEGER NOT NULL,           -- blobs.blob_id (checked by `mfstore verify`; no
                                            -- foreign key, so removing unused blobs stays cheap)
    ts_epoch    INTEGER,                    -- ms; NULL: the attempt's ended_at (most artifacts)
    PRIMARY KEY (task_pk, attempt, name_id),
    FOREIGN KEY (task_pk, attempt) REFERENCES attempts (task_pk, attempt) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The artifacts with their names and times (format 3's artifacts table, as mfstore reads it).
CREATE VIEW artifacts AS
SELECT
    a.task_pk AS task_pk,
    a.attempt AS attempt,
    n.name AS name,
    a.blob_id AS blob_id,
    coalesce(a.ts_epoch, (SELECT e.ended_at FROM attempts e
       WHERE e.task_pk = a.task_pk AND e.attempt = a.attempt)) AS ts_epoch
FROM task_artifacts a
JOIN artifact_names n ON n.name_id = a.name_id;

-- Metadata fields (name, type), each stored once.
CREATE TABLE metadata_fields (
    field_id    INTEGER PRIMARY KEY,
    field_name  TEXT NOT NULL,
    type        TEXT NOT NULL,
    UNIQUE (field_name, type)
) STRICT;

-- Distinct metadata entries (field, value), each stored once however many tasks carry
-- it (user, script name, versions, ds-root ... repeat in every task of a run).
CREATE TABLE metadata_entries (
    value_id    INTEGER PRIMARY KEY,
    field_id    INTEGER NOT NULL REFERENCES metadata_fields (field_id),
    is_json     INTEGER NOT NULL CHECK (is_json IN (0, 1)),
    value       TEXT NOT NULL,              -- a string, or JSON text when is_json = 1
    UNIQUE (field_id, is_json, value)
) STRICT;

-- The entries with their field names and types (format 3's metadata_values table).
CREATE VIEW metadata_values AS
SELECT
    v.value_id AS value_id,
    f.field_name AS field_name,
    f.type AS type,
    v.is_json AS is_json,
    v.value AS value
FROM metadata_entries v
JOIN metadata_fields f ON f.field_id = v.field_id;

-- Clustered by task (a task's entries are next to each other; no secondary index).
CREATE TABLE metadata (
    task_pk     INTEGER NOT NULL REFERENCES tasks (task_pk) ON DELETE CASCADE,
    metadata_pk INTEGER NOT NULL,           -- orders a task's entries in write order (unique per task)
    attempt     INTEGER,                    -- NULL for task-level metadata (e.g. start_step of _parameters)
    value_id    INTEGER NOT NULL REFERENCES metadata_entries (value_id),
    ts_epoch    INTEGER NOT NULL,
    PRIMARY KEY (task_pk, metadata_pk)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_lines (
    line_pk     INTEGER PRIMARY KEY,
    task_pk     INTEGER NOT NULL REFERENCES tasks (task_pk) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    stream      TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    source      TEXT NOT NULL,              -- 'task' (user code) or 'runtime' (mfstore itself)
    ts_us       INTEGER NOT NULL,           -- UTC microseconds since the epoch
    line        TEXT NOT NULL               -- without its trailing newline
) STRICT;
CREATE INDEX log_lines_by_task ON log_lines (task_pk, attempt, stream, ts_us);

-- Events that started runs (MetaflowTrigger / MetaflowEvent).
CREATE TABLE trigger_events (
    trigger_pk  INTEGER PRIMARY KEY,
    run_pk      INTEGER NOT NULL REFERENCES runs (run_pk) ON DELETE CASCADE,  -- the triggered run
    name        TEXT NOT NULL,              -- event name, or the triggering flow's name
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('event', 'run')),
    ts_epoch    INTEGER NOT NULL,
    pathspec    TEXT,                       -- type 'run': pathspec of the triggering run
    payload     TEXT NOT NULL DEFAULT '{}'  -- JSON object
) STRICT;
CREATE INDEX trigger_events_by_run ON trigger_events (run_pk);

-- Production deployments of a flow (python flow.py production create).
CREATE TABLE deployments (
    deployment_pk INTEGER PRIMARY KEY,
    flow_id     TEXT NOT NULL,
    token       TEXT NOT NULL,              -- production token; namespace is 'production:<token>'
    deployed_by TEXT NOT NULL,
    ts_epoch    INTEGER NOT NULL,
    code_sha    TEXT NOT NULL REFERENCES code_packages (sha),
    triggers    TEXT NOT NULL DEFAULT '[]', -- JSON list of {"type": "event"|"run", "name": ...}
    values_json TEXT                        -- format 5: what create fixed, a JSON object
                -- {"parameters": {name: text}, "configs": {name: value}, "files": {name:
                -- base64}}: the values of the Parameter default functions, of the configs
                -- and the IncludeFile defaults' bytes; NULL before format 5
) STRICT;
CREATE INDEX deployments_by_flow ON deployments (flow_id, deployment_pk);

-- Events sent with `production trigger --event` (whether or not they started a run).
CREATE TABLE events (
    event_pk    INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    ts_epoch    INTEGER NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- ==================================================================================
-- Documented views (format 2, issue 5; formats 3 and 4 read the lean tables): the stable interface for ad-hoc SQL.
-- Described column by column in docs/sql.md. They may only grow: a column, once
-- documented, keeps its name and meaning in every later format. They use nothing newer
-- than SQLite 3.38 (json1 built in), so the stock sqlite3 shell 3.40 can read them.
-- Times are ISO 8601 text in UTC ('2024-05-01T12:00:00.123Z'); durations are seconds.
-- mfstore/migrations.py rebuilds every view below from this file after a migration.
-- ==================================================================================

CREATE VIEW mf_flows AS
SELECT
    f.flow_id AS flow,
    strftime('%Y-%m-%dT%H:%M:%fZ', f.ts_epoch / 1000.0, 'unixepoch') AS created_at,
    (SELECT count(*) FROM runs r WHERE r.flow_id = f.flow_id) AS runs,
    (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', max(r.ts_epoch) / 1000.0, 'unixepoch')
       FROM runs r WHERE r.flow_id = f.flow_id) AS last_run_at
FROM flows f;

CREATE VIEW mf_runs AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    r.flow_id || '/' || r.run_number AS pathspec,
    r.user_name AS user,
    -- JSON arrays, sorted: json_each(tags) gives one row per tag
    (SELECT json_group_array(tag) FROM (SELECT t.tag FROM tagset_tags t
       WHERE t.tagset_id = r.tagset_id AND t.is_system = 0 ORDER BY t.tag)) AS tags,
    (SELECT json_group_array(tag) FROM (SELECT t.tag FROM tagset_tags t
       WHERE t.tagset_id = r.tagset_id AND t.is_system = 1 ORDER BY t.tag)) AS system_tags,
    r.status AS status,
    strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_epoch / 1000.0, 'unixepoch') AS created_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', r.finished_at / 1000.0, 'unixepoch') AS finished_at,
    (r.finished_at - r.ts_epoch) / 1000.0 AS duration_s,
    r.ts_epoch AS created_ms,
    r.finished_at AS finished_ms,
    r.end_step AS end_step,
    r.origin_run_number AS origin_run_id,
    r.tagset_id AS tagset_id,
    r.run_pk AS run_pk
FROM runs r;

CREATE VIEW mf_run_tags AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    r.flow_id || '/' || r.run_number AS pathspec,
    t.tag AS tag,
    CASE t.is_system WHEN 1 THEN 'system' ELSE 'user' END AS kind,
    r.run_pk AS run_pk
FROM runs r
JOIN tagset_tags t ON t.tagset_id = r.tagset_id;

-- Tag sets: the indexed route from tags to runs (docs/sql.md, "Namespaces and tags").
CREATE VIEW mf_tagset_tags AS
SELECT
    t.flow_id AS flow,
    t.tagset_id AS tagset_id,
    t.tag AS tag,
    CASE t.is_system WHEN 1 THEN 'system' ELSE 'user' END AS kind
FROM tagset_tags t;

-- One row per task attempt. status: 'running' while the attempt has not ended and its
-- run is still running; an attempt that never ended in a run that did is 'failed'.
CREATE VIEW mf_attempts AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    t.step_name AS step,
    t.task_id AS task_id,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id AS pathspec,
    a.attempt AS attempt,
    CASE
        WHEN a.ended_at IS NULL THEN CASE r.status WHEN 'running' THEN 'running' ELSE 'failed' END
        WHEN a.success = 1 THEN 'successful'
        ELSE 'failed'
    END AS status,
    strftime('%Y-%m-%dT%H:%M:%fZ', a.started_at / 1000.0, 'unixepoch') AS started_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', a.ended_at / 1000.0, 'unixepoch') AS finished_at,
    (a.ended_at - a.started_at) / 1000.0 AS duration_s,
    a.task_ok AS task_ok,
    a.success AS success,
    t.task_pk AS task_pk,
    r.run_pk AS run_pk
FROM attempts a
JOIN tasks t ON t.task_pk = a.task_pk
JOIN runs r ON r.run_pk = t.run_pk;

-- One row per task, described by its latest attempt. foreach_index is the task's index
-- in its innermost foreach (Metaflow's Task.index): the number after the last ':' of the
-- 'foreach-execution-path' metadata ("outer:2,inner:1" -> 1); NULL outside a foreach.
CREATE VIEW mf_tasks AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    t.step_name AS step,
    t.task_id AS task_id,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id AS pathspec,
    a.attempt AS attempt,
    (SELECT count(*) FROM attempts x WHERE x.task_pk = t.task_pk) AS attempts,
    CASE
        WHEN a.attempt IS NULL OR a.ended_at IS NULL
            THEN CASE r.status WHEN 'running' THEN 'running' ELSE 'failed' END
        WHEN a.success = 1 THEN 'successful'
        ELSE 'failed'
    END AS status,
    (SELECT CAST(substr(v.value, length(rtrim(v.value, replace(v.value, ':', ''))) + 1) AS INTEGER)
       FROM metadata m JOIN metadata_entries v ON v.value_id = m.value_id
       JOIN metadata_fields f ON f.field_id = v.field_id
       WHERE m.task_pk = t.task_pk AND f.field_name = 'foreach-execution-path'
       ORDER BY m.metadata_pk DESC LIMIT 1) AS foreach_index,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.ts_epoch / 1000.0, 'unixepoch') AS created_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', a.started_at / 1000.0, 'unixepoch') AS started_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', a.ended_at / 1000.0, 'unixepoch') AS finished_at,
    (a.ended_at - a.started_at) / 1000.0 AS duration_s,
    (SELECT o.step_name || '/' || o.task_id FROM tasks o WHERE o.task_pk = t.origin_task_pk) AS origin_task,
    t.task_pk AS task_pk,
    r.run_pk AS run_pk
FROM tasks t
JOIN runs r ON r.run_pk = t.run_pk
LEFT JOIN attempts a ON a.task_pk = t.task_pk
    AND a.attempt = (SELECT max(y.attempt) FROM attempts y WHERE y.task_pk = t.task_pk);

-- One row per step. status: 'running' if a task is running, else 'failed' if a task
-- failed, else 'successful'. duration_s spans the first start to the last end.
CREATE VIEW mf_steps AS
SELECT
    flow,
    run_id,
    step,
    flow || '/' || run_id || '/' || step AS pathspec,
    CASE
        WHEN max(status = 'running') = 1 THEN 'running'
        WHEN max(status = 'failed') = 1 THEN 'failed'
        ELSE 'successful'
    END AS status,
    count(*) AS tasks,
    min(started_at) AS started_at,
    CASE WHEN max(finished_at IS NULL) = 0 THEN max(finished_at) END AS finished_at,
    CASE WHEN max(finished_at IS NULL) = 0
        THEN round((julianday(max(finished_at)) - julianday(min(started_at))) * 86400.0, 3) END AS duration_s,
    run_pk
FROM mf_tasks
GROUP BY run_pk, step;

-- Artifacts of each task's latest attempt that stored artifacts (what Task.data shows).
-- value: the value itself for plain data (numbers sort as numbers, strings as text,
-- true/false as 1/0, lists and dicts as JSON text); NULL when the value is not plain
-- data - it is then only in the pickle, which SQL never reads.
CREATE VIEW mf_artifacts AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    t.step_name AS step,
    t.task_id AS task_id,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id || '/' || n.name AS pathspec,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id AS task_pathspec,
    n.name AS name,
    a.attempt AS attempt,
    lower(hex(b.sha)) AS sha,
    ty.name AS type,
    b.size AS size,
    b.stored_size AS stored_size,
    json_extract(b.value_json, '$') AS value,
    b.value_json AS value_json,
    strftime('%Y-%m-%dT%H:%M:%fZ', coalesce(a.ts_epoch, (SELECT e.ended_at FROM attempts e
       WHERE e.task_pk = a.task_pk AND e.attempt = a.attempt)) / 1000.0, 'unixepoch') AS created_at,
    t.task_pk AS task_pk,
    r.run_pk AS run_pk,
    a.blob_id AS blob_id
FROM task_artifacts a
JOIN artifact_names n ON n.name_id = a.name_id
JOIN tasks t ON t.task_pk = a.task_pk
JOIN runs r ON r.run_pk = t.run_pk
JOIN blobs b ON b.blob_id = a.blob_id
LEFT JOIN types ty ON ty.type_id = b.type_id
WHERE a.attempt = (SELECT max(z.attempt) FROM task_artifacts z WHERE z.task_pk = a.task_pk);

CREATE VIEW mf_metadata AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    t.step_name AS step,
    t.task_id AS task_id,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id AS pathspec,
    m.attempt AS attempt,
    f.field_name AS field_name,
    v.value AS value,
    v.is_json AS is_json,
    f.type AS type,
    strftime('%Y-%m-%dT%H:%M:%fZ', m.ts_epoch / 1000.0, 'unixepoch') AS created_at,
    m.ts_epoch AS created_ms,
    t.task_pk AS task_pk,
    r.run_pk AS run_pk
FROM metadata m
JOIN metadata_entries v ON v.value_id = m.value_id
JOIN metadata_fields f ON f.field_id = v.field_id
JOIN tasks t ON t.task_pk = m.task_pk
JOIN runs r ON r.run_pk = t.run_pk;

CREATE VIEW mf_log_lines AS
SELECT
    r.flow_id AS flow,
    r.run_number AS run_id,
    t.step_name AS step,
    t.task_id AS task_id,
    r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id AS pathspec,
    l.attempt AS attempt,
    l.stream AS stream,
    l.source AS source,
    strftime('%Y-%m-%dT%H:%M:%S', l.ts_us / 1000000, 'unixepoch') || printf('.%06dZ', l.ts_us % 1000000) AS ts,
    l.ts_us AS ts_us,
    l.line AS line,
    l.line_pk AS line_pk,
    t.task_pk AS task_pk
FROM log_lines l
JOIN tasks t ON t.task_pk = l.task_pk
JOIN runs r ON r.run_pk = t.run_pk;
