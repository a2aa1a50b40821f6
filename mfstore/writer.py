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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .artifacts import PreparedArtifact, prepare_artifact, prepare_artifacts, prepare_raw_artifact
from .blobs import (
    PackedBlob,
    blob_id,
    blob_rows,
    insert_blob,
    insert_blob_rows,
    next_blob_id,
    pack_blob,
    type_id,
)
from .exception import MetaflowInternalError, MetaflowNotFound, MetaflowTaggingError
from .identity import new_run_id, now_ms
from .store import Store
from .tags import tagset_digest, validate_tags

#: Metadata type of the rows that keep Metaflow's task-level files (cards, markers) that
#: have no table of their own; Metaflow's client never sees them as metadata.
TASK_FILE_TYPE = "mfstore-file"

__all__ = [
    "TASK_FILE_TYPE",
    "MetadataEntry",
    "PreparedArtifact",
    "RunRef",
    "TaskBatch",
    "TaskRef",
    "Writer",
    "prepare_artifact",
    "prepare_artifacts",
    "prepare_raw_artifact",
]


@dataclass(frozen=True)
class RunRef:
    """A run being written (or already in the file)."""

    run_pk: int
    """Row id in ``runs``."""
    flow_id: str
    """Flow name."""
    run_number: str
    """Run id."""

    @property
    def pathspec(self) -> str:
        return f"{self.flow_id}/{self.run_number}"


@dataclass(frozen=True)
class TaskRef:
    """A task being written."""

    task_pk: int
    """Row id in ``tasks``."""
    run: RunRef
    """The task's run."""
    step_name: str
    """Step name."""
    task_id: str
    """Task id."""

    @property
    def pathspec(self) -> str:
        return f"{self.run.pathspec}/{self.step_name}/{self.task_id}"


@dataclass
class MetadataEntry:
    """One task metadata event (Metaflow's ``sysmeta``)."""

    field_name: str
    value: Any
    """A string; anything else (e.g. the foreach-stack list) is stored as JSON."""
    type: str | None = None
    """Metadata type; defaults to ``field_name``."""
    attempt: int | None = None
    """Attempt it belongs to; None for task-level metadata."""
    ts_epoch: int = field(default_factory=now_ms)


class _BulkCache:
    """Ids seen inside one ``Writer.bulk()`` transaction."""

    __slots__ = ("blobs", "steps", "values")

    def __init__(self) -> None:
        self.blobs: dict[str, int] = {}
        self.values: dict[tuple[Any, ...], int] = {}
        self.steps: set[tuple[int, str]] = set()


def metadata_value_id(store: Store, field_name: str, type_: str, is_json: int, value: str) -> int:
    """Id of one metadata entry in ``metadata_values`` (added if new); inside ``store.write()``."""
    store.execute(
        "INSERT INTO metadata_values (field_name, type, is_json, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (field_name, type, is_json, value) DO NOTHING",
        (field_name, type_, is_json, value),
    )
    return int(
        store.scalar(
            "SELECT value_id FROM metadata_values WHERE field_name = ? AND type = ? AND is_json = ? "
            "AND value = ?",
            (field_name, type_, is_json, value),
        )
    )


def insert_metadata_rows(store: Store, rows: Sequence[Sequence[Any]]) -> None:
    """Insert metadata rows ``(field_name, type, is_json, value, task_pk, attempt, ts_epoch)``;
    each distinct entry is stored once in ``metadata_values``. Inside ``store.write()``."""
    store.executemany(
        "INSERT INTO metadata_values (field_name, type, is_json, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (field_name, type, is_json, value) DO NOTHING",
        [r[:4] for r in rows],
    )
    store.executemany(
        "INSERT INTO metadata (task_pk, attempt, value_id, ts_epoch) VALUES (?5, ?6, "
        "(SELECT value_id FROM metadata_values WHERE field_name = ?1 AND type = ?2 "
        "AND is_json = ?3 AND value = ?4), ?7)",
        rows,
    )


class Writer:
    """Writes runs, steps, tasks, attempts, artifacts, metadata and logs to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Inside bulk(): ids of blobs, metadata entries and steps this transaction has
        # seen (valid until it ends: nothing else can write meanwhile).
        self._cache: _BulkCache | None = None

    @contextlib.contextmanager
    def bulk(self) -> Iterator[Store]:
        """One transaction for many calls (``Store.bulk``), remembering the ids of blobs,
        metadata entries and steps it wrote: much faster for importers and builders. An
        error inside the block rolls the whole block back."""
        if self._cache is not None:
            yield self.store
            return
        with self.store.bulk():
            self._cache = _BulkCache()
            try:
                yield self.store
            finally:
                self._cache = None

    def add_done_task(
        self,
        run: RunRef,
        step_name: str,
        task_id: str,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        started_at: int,
        ended_at: int,
        attempt: int = 0,
        metadata: Iterable[MetadataEntry] = (),
        logs: Iterable[tuple[str, int, str]] = (),
        origin_task_pk: int | None = None,
    ) -> TaskRef:
        """A task with one finished attempt, in one call (importers, builders): the same
        rows as ``add_task`` + ``begin_attempt`` + ``add_log_lines`` + ``end_attempt``, in a
        few statements. ``logs``: ``(stream, utc_microseconds, line)``."""
        with self.store.write():
            cache = self._cache
            if cache is None or (run.run_pk, step_name) not in cache.steps:
                self.store.execute(
                    "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_pk, step_name) DO NOTHING",
                    (run.run_pk, step_name, started_at),
                )
                if cache is not None:
                    cache.steps.add((run.run_pk, step_name))
            self.store.execute(
                "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch, origin_task_pk) VALUES (?, ?, ?, ?, ?)",
                (run.run_pk, step_name, task_id, started_at, origin_task_pk),
            )
            task = TaskRef(int(self.store.conn.last_insert_rowid()), run, step_name, task_id)
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (task.task_pk, attempt, started_at, ended_at, int(task_ok), int(success)),
            )
            rows = []
            for stream, ts, line in logs:
                if stream not in ("stdout", "stderr"):
                    raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
                rows.append((task.task_pk, attempt, stream, "task", ts, line))
            if rows:
                self.store.executemany(
                    "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            self._insert_artifacts(task, attempt, artifacts, ended_at, {})
            self._insert_metadata(
                task,
                [
                    *metadata,
                    MetadataEntry(
                        "attempt_ok",
                        str(bool(task_ok)),
                        "internal_attempt_status",
                        attempt,
                        ended_at,
                    ),
                    MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ended_at),
                ],
            )
        return task

    @contextlib.contextmanager
    def task_batch(self, size: int = 2000) -> Iterator[TaskBatch]:
        """Finished tasks written many at a time inside ``bulk()`` (see ``TaskBatch``):
        ``batch.add(...)`` takes what ``add_done_task`` takes; the rows reach the file
        every ``size`` tasks and when the block ends normally."""
        batch = TaskBatch(self, size)
        yield batch
        batch.flush()

    # -- flows and runs -----------------------------------------------------------

    def _ensure_flow(self, flow_id: str, ts_epoch: int) -> None:
        self.store.execute(
            "INSERT INTO flows (flow_id, ts_epoch) VALUES (?, ?) ON CONFLICT (flow_id) DO NOTHING",
            (flow_id, ts_epoch),
        )

    def tagset_id(self, flow_id: str, user_tags: Iterable[str], system_tags: Iterable[str]) -> int:
        """Id of the tag set (creating it); inside ``store.write()``."""
        user = sorted(set(user_tags))
        system = sorted(set(system_tags))
        digest = tagset_digest(user, system)
        found = self.store.scalar(
            "SELECT tagset_id FROM tagsets WHERE flow_id = ? AND digest = ?", (flow_id, digest)
        )
        if found is not None:
            return int(found)
        tagset_id = self.store.insert(
            "INSERT INTO tagsets (flow_id, digest) VALUES (?, ?)", (flow_id, digest)
        )
        self.store.executemany(
            "INSERT INTO tagset_tags (flow_id, tag, tagset_id, is_system) VALUES (?, ?, ?, ?)",
            [(flow_id, t, tagset_id, 0) for t in user]
            + [(flow_id, t, tagset_id, 1) for t in system],
        )
        return tagset_id

    def put_code_package(
        self, tarball: bytes, *, script_name: str, info: Mapping[str, Any] | None = None
    ) -> str:
        """Store a code package (deduplicated by content); return its sha."""
        packed = pack_blob(tarball)
        with self.store.write():
            insert_blob(self.store, packed)
            self.store.execute(
                "INSERT INTO code_packages (sha, script_name, info) VALUES (?, ?, ?) "
                "ON CONFLICT (sha) DO NOTHING",
                (packed.sha, script_name, json.dumps(dict(info or {}), sort_keys=True)),
            )
        return packed.sha

    def begin_run(
        self,
        flow_id: str,
        *,
        user_name: str | None,
        user_tags: Iterable[str] = (),
        system_tags: Iterable[str] = (),
        run_number: str | None = None,
        ts_epoch: int | None = None,
        end_step: str = "end",
        origin_run_number: str | None = None,
        code_sha: str | None = None,
    ) -> RunRef:
        """Record a new run (status running) and return it.

        ``run_number`` defaults to a new globally unique id; an id that already exists in
        this flow raises ``MetaflowInternalError`` (for generated ids a new one is drawn).
        """
        user_tags = validate_tags(user_tags)
        system_tags = list(system_tags)
        ts = now_ms() if ts_epoch is None else ts_epoch
        with self.store.write():
            self._ensure_flow(flow_id, ts)
            tagset = self.tagset_id(flow_id, user_tags, system_tags)
            number = run_number or new_run_id()
            while self.store.scalar(
                "SELECT 1 FROM runs WHERE flow_id = ? AND run_number = ?", (flow_id, number)
            ):
                if run_number is not None:
                    raise MetaflowInternalError(
                        f"Run {flow_id}/{number} already exists in {self.store.path}"
                    )
                number = new_run_id()
            run_pk = self.store.insert(
                "INSERT INTO runs (flow_id, run_number, user_name, tagset_id, ts_epoch, end_step, "
                "origin_run_number, code_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (flow_id, number, user_name, tagset, ts, end_step, origin_run_number, code_sha),
            )
        return RunRef(run_pk, flow_id, number)

    def end_run(
        self, run: RunRef, *, successful: bool, ts_epoch: int | None = None, checkpoint: bool = True
    ) -> bool:
        """Mark the run ended (successful or failed), then fold the WAL into the file.
        Returns False when the fold could not finish (another program held a read
        transaction): a plain ``cp`` of the file alone then misses the run."""
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_pk = ?",
                (
                    "successful" if successful else "failed",
                    now_ms() if ts_epoch is None else ts_epoch,
                    run.run_pk,
                ),
            )
        if checkpoint:
            return self.store.checkpoint()
        return True

    def set_run_code(self, run: RunRef, code_sha: str) -> None:
        """Attach a stored code package to a run."""
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET code_sha = ? WHERE run_pk = ?", (code_sha, run.run_pk)
            )

    def replace_user_tags(
        self,
        run_pk: int,
        tags_to_remove: Iterable[str],
        tags_to_add: Iterable[str],
        *,
        user_name: str | None,
        ts_epoch: int | None = None,
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Apply a tag edit atomically; return the run's new ``(user_tags, system_tags)``.

        Rules (Metaflow's): additions that are system tags are dropped silently; removing
        a system tag raises; removal happens first; the 50-tag cap only blocks growth.
        The current tags are read inside the write transaction, so concurrent edits from
        other processes are never lost. ``created_at`` is not changed; the edit is
        recorded in ``tag_events`` (at ``ts_epoch``, default now: the importer passes
        the time Metaflow recorded the edit).
        """
        remove = set(tags_to_remove)
        add = set(tags_to_add)
        with self.store.write():
            row = self.store.one("SELECT flow_id, tagset_id FROM runs WHERE run_pk = ?", (run_pk,))
            if row is None:
                raise MetaflowNotFound(f"run {run_pk} does not exist")
            flow_id, tagset = row
            user, system = self.read_tagset(tagset)
            add -= system
            bad = sorted(remove & system)
            if bad:
                raise MetaflowTaggingError(
                    f"Cannot remove a tag that is an existing system tag ({bad})"
                )
            new_user = (user - remove) | add
            if new_user != user:
                validate_tags(new_user, existing_tags=user)
                new_tagset = self.tagset_id(flow_id, new_user, system)
                self.store.execute(
                    "UPDATE runs SET tagset_id = ? WHERE run_pk = ?", (new_tagset, run_pk)
                )
                self.store.execute(
                    "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) VALUES (?, ?, ?, ?, ?)",
                    (
                        run_pk,
                        now_ms() if ts_epoch is None else ts_epoch,
                        user_name,
                        json.dumps(sorted(user - new_user), ensure_ascii=False),
                        json.dumps(sorted(new_user - user), ensure_ascii=False),
                    ),
                )
            result = frozenset(new_user), frozenset(system)
        # a plain `cp` of the file right after a tag edit carries it (never waits for readers)
        if not self.store.in_transaction:
            self.store.checkpoint(wait=False)
        return result

    def read_tagset(self, tagset_id: int) -> tuple[set[str], set[str]]:
        """``(user_tags, system_tags)`` of a tag set."""
        user: set[str] = set()
        system: set[str] = set()
        for tag, is_system in self.store.query(
            "SELECT tag, is_system FROM tagset_tags WHERE tagset_id = ?", (tagset_id,)
        ):
            (system if is_system else user).add(tag)
        return user, system

    def add_trigger_events(self, run: RunRef, events: Iterable[Mapping[str, Any]]) -> None:
        """Record the events that started ``run`` (keys: name, event_id, type, ts_epoch, pathspec, payload)."""
        with self.store.write():
            self.store.executemany(
                "INSERT INTO trigger_events (run_pk, name, event_id, type, ts_epoch, pathspec, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.run_pk,
                        e["name"],
                        e["event_id"],
                        e.get("type", "event"),
                        e.get("ts_epoch", now_ms()),
                        e.get("pathspec"),
                        json.dumps(e.get("payload", {}), sort_keys=True, ensure_ascii=False),
                    )
                    for e in events
                ],
            )

    # -- steps and tasks ----------------------------------------------------------

    def add_step(self, run: RunRef, step_name: str, *, ts_epoch: int | None = None) -> None:
        """Record a step of a run (no-op if it exists)."""
        with self.store.write():
            self.store.execute(
                "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                "ON CONFLICT (run_pk, step_name) DO NOTHING",
                (run.run_pk, step_name, now_ms() if ts_epoch is None else ts_epoch),
            )

    def add_task(
        self,
        run: RunRef,
        step_name: str,
        task_id: str | None = None,
        *,
        ts_epoch: int | None = None,
        origin_task_pk: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
    ) -> TaskRef:
        """Record a task (and its step if new). ``task_id`` defaults to the run's next id."""
        ts = now_ms() if ts_epoch is None else ts_epoch
        with self.store.write():
            self.store.execute(
                "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                "ON CONFLICT (run_pk, step_name) DO NOTHING",
                (run.run_pk, step_name, ts),
            )
            if task_id is None:
                task_id = self.next_task_id(run)
            task_pk = self.store.insert(
                "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch, origin_task_pk) VALUES (?, ?, ?, ?, ?)",
                (run.run_pk, step_name, task_id, ts, origin_task_pk),
            )
            task = TaskRef(task_pk, run, step_name, task_id)
            self._insert_metadata(task, metadata)
        return task

    def next_task_id(self, run: RunRef) -> str:
        """The next per-run task id (Metaflow's local scheme: 1, 2, ...; 0 is _parameters)."""
        top = self.store.scalar(
            "SELECT max(CAST(task_id AS INTEGER)) FROM tasks WHERE run_pk = ?", (run.run_pk,)
        )
        return str(1 if top is None else int(top) + 1)

    def begin_attempt(
        self,
        task: TaskRef,
        attempt: int,
        *,
        ts_epoch: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
    ) -> None:
        """Record that an attempt started (its logs and metadata may follow)."""
        with self.store.write():
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at) VALUES (?, ?, ?)",
                (task.task_pk, attempt, now_ms() if ts_epoch is None else ts_epoch),
            )
            self._insert_metadata(task, metadata)

    def add_metadata(self, task: TaskRef, entries: Iterable[MetadataEntry]) -> None:
        """Record metadata events."""
        with self.store.write():
            self._insert_metadata(task, entries)

    def _insert_metadata(self, task: TaskRef, entries: Iterable[MetadataEntry]) -> None:
        rows = []
        for e in entries:
            is_json = not isinstance(e.value, str)
            value = json.dumps(e.value, ensure_ascii=False) if is_json else e.value
            rows.append(
                (
                    e.field_name,
                    e.type or e.field_name,
                    int(is_json),
                    value,
                    task.task_pk,
                    e.attempt,
                    e.ts_epoch,
                )
            )
        if not rows:
            return
        cache = self._cache
        if cache is None:
            insert_metadata_rows(self.store, rows)
            return
        ids = []
        for r in rows:
            key = r[:4]
            vid = cache.values.get(key)
            if vid is None:
                vid = cache.values[key] = metadata_value_id(self.store, *key)
            ids.append((r[4], r[5], vid, r[6]))
        self.store.executemany(
            "INSERT INTO metadata (task_pk, attempt, value_id, ts_epoch) VALUES (?, ?, ?, ?)", ids
        )

    def add_log_lines(
        self,
        task: TaskRef,
        attempt: int,
        stream: str,
        lines: Iterable[tuple[int, str]],
        *,
        source: str = "task",
    ) -> None:
        """Record log lines ``(utc_microseconds, text_without_newline)``."""
        if stream not in ("stdout", "stderr"):
            raise MetaflowInternalError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        rows = [(task.task_pk, attempt, stream, source, ts, line) for ts, line in lines]
        if rows:
            with self.store.write():
                self.store.executemany(
                    "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def end_attempt(
        self,
        task: TaskRef,
        attempt: int,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        ts_epoch: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
        status_metadata: bool = True,
        artifact_ts: Mapping[str, int] | None = None,
    ) -> None:
        """Write an attempt's artifacts and end it, in one transaction.

        Adds the ``attempt_ok`` and ``attempt-done`` metadata Metaflow records, unless
        ``status_metadata`` is False (the Metaflow extension records Metaflow's own).
        Artifacts are dated ``ts_epoch`` unless ``artifact_ts`` gives their own time (the
        importer keeps each artifact record's).
        """
        ts = now_ms() if ts_epoch is None else ts_epoch
        status = (
            [
                MetadataEntry(
                    "attempt_ok", str(bool(task_ok)), "internal_attempt_status", attempt, ts
                ),
                MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ts),
            ]
            if status_metadata
            else []
        )
        with self.store.write():
            self._insert_artifacts(task, attempt, artifacts, ts, artifact_ts or {})
            self._insert_metadata(task, [*metadata, *status])
            changed = self.store.change(
                "UPDATE attempts SET ended_at = ?, task_ok = ?, success = ? WHERE task_pk = ? AND attempt = ?",
                (ts, int(task_ok), int(success), task.task_pk, attempt),
            )
            if changed != 1:
                raise MetaflowInternalError(f"attempt {attempt} of {task.pathspec} was never begun")

    def _insert_artifacts(
        self,
        task: TaskRef,
        attempt: int,
        artifacts: Mapping[str, PreparedArtifact],
        ts: int,
        artifact_ts: Mapping[str, int],
    ) -> None:
        rows = []
        cache = self._cache
        for name, art in artifacts.items():
            if cache is not None:
                found = cache.blobs.get(art.sha)
                if found is not None:
                    rows.append((task.task_pk, attempt, name, found, artifact_ts.get(name, ts)))
                    continue
            try:
                bid = insert_blob(
                    self.store,
                    art.sha if art.blob is None else art.blob,
                    type_name=art.type,
                    value_json=art.value_json,
                )
            except MetaflowNotFound:
                raise MetaflowInternalError(
                    f"artifact {name} refers to blob {art.sha}, which is not in the file"
                ) from None
            if cache is not None:
                cache.blobs[art.sha] = bid
            rows.append((task.task_pk, attempt, name, bid, artifact_ts.get(name, ts)))
        self.store.executemany(
            "INSERT INTO artifacts (task_pk, attempt, name, blob_id, ts_epoch) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def clone_task(
        self,
        run: RunRef,
        origin_task_pk: int,
        *,
        task_id: str | None = None,
        ts_epoch: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
    ) -> TaskRef:
        """Copy a finished task of another run into ``run`` (resume): same task id, the
        artifacts of its latest done attempt (same blobs), metadata, no logs."""
        origin = self.store.one(
            "SELECT t.step_name, t.task_id, a.attempt, a.started_at, a.ended_at, a.task_ok, a.success "
            "FROM tasks t JOIN attempts a ON a.task_pk = t.task_pk "
            "WHERE t.task_pk = ? AND a.ended_at IS NOT NULL ORDER BY a.attempt DESC LIMIT 1",
            (origin_task_pk,),
        )
        if origin is None:
            raise MetaflowInternalError(f"task {origin_task_pk} has no finished attempt to clone")
        step_name, origin_task_id, attempt, _started, _ended, task_ok, success = origin
        ts = now_ms() if ts_epoch is None else ts_epoch
        with self.store.write():
            task = self.add_task(
                run,
                step_name,
                task_id or origin_task_id,
                ts_epoch=ts,
                origin_task_pk=origin_task_pk,
            )
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) VALUES (?, ?, ?, ?, ?, ?)",
                (task.task_pk, attempt, ts, ts, task_ok, success),
            )
            self.store.execute(
                "INSERT INTO artifacts (task_pk, attempt, name, blob_id, ts_epoch) "
                "SELECT ?, attempt, name, blob_id, ? FROM artifacts WHERE task_pk = ? AND attempt = ?",
                (task.task_pk, ts, origin_task_pk, attempt),
            )
            self._insert_metadata(task, metadata)
            self._insert_metadata(
                task,
                [
                    MetadataEntry(
                        "attempt_ok",
                        "True" if task_ok else "False",
                        "internal_attempt_status",
                        attempt,
                        ts,
                    ),
                    MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ts),
                ],
            )
        return task

    # -- the Metaflow extension (Metaflow's runtime writes piece by piece) ----------

    def put_blob(self, raw: bytes | memoryview | PackedBlob, sha: str | None = None) -> str:
        """Store bytes once (content-addressed, packed outside the transaction, or packed
        already by ``blobs.pack_blob``); return the sha."""
        packed = raw if isinstance(raw, PackedBlob) else pack_blob(raw, sha)
        with self.store.write():
            insert_blob(self.store, packed)
        return packed.sha

    def ensure_task(
        self, run: RunRef, step_name: str, task_id: str, *, ts_epoch: int | None = None
    ) -> TaskRef:
        """The task ``step_name/task_id`` of ``run``, recorded first if it is new."""
        with self.store.write():
            pk = self.store.scalar(
                "SELECT task_pk FROM tasks WHERE run_pk = ? AND step_name = ? AND task_id = ?",
                (run.run_pk, step_name, task_id),
            )
            if pk is not None:
                return TaskRef(int(pk), run, step_name, task_id)
            return self.add_task(run, step_name, task_id, ts_epoch=ts_epoch)

    def ensure_attempt(self, task: TaskRef, attempt: int, *, ts_epoch: int | None = None) -> None:
        """Record that an attempt started, unless it already is."""
        with self.store.write():
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT (task_pk, attempt) DO NOTHING",
                (task.task_pk, attempt, now_ms() if ts_epoch is None else ts_epoch),
            )

    def replace_log_lines(
        self,
        task: TaskRef,
        attempt: int,
        stream: str,
        lines: Iterable[tuple[int, str]],
        *,
        source: str,
    ) -> None:
        """Replace one source's log of one attempt (Metaflow saves a log file whole)."""
        with self.store.write():
            self.store.execute(
                "DELETE FROM log_lines WHERE task_pk = ? AND attempt = ? AND stream = ? AND source = ?",
                (task.task_pk, attempt, stream, source),
            )
            self.add_log_lines(task, attempt, stream, lines, source=source)

    def set_task_file(self, task: TaskRef, attempt: int | None, name: str, value: str) -> None:
        """Keep a Metaflow task-level file (a card, a marker) with the task, replacing one
        of the same name. ``value`` is the JSON reference the extension builds."""
        with self.store.write():
            self.store.execute(
                "DELETE FROM metadata WHERE task_pk = ? AND attempt IS ? AND value_id IN "
                "(SELECT value_id FROM metadata_values WHERE type = ? AND field_name = ?)",
                (task.task_pk, attempt, TASK_FILE_TYPE, name),
            )
            self._insert_metadata(
                task, [MetadataEntry(name, value, TASK_FILE_TYPE, attempt, now_ms())]
            )

    def set_task_origin(self, task: TaskRef, origin_task_pk: int) -> None:
        """Record the task ``task`` was cloned from (resume)."""
        with self.store.write():
            self.store.execute(
                "UPDATE tasks SET origin_task_pk = ? WHERE task_pk = ?",
                (origin_task_pk, task.task_pk),
            )

    def set_run_origin(self, run: RunRef, origin_run_number: str) -> None:
        """Record the run ``run`` was resumed from, unless one is recorded already."""
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET origin_run_number = ? WHERE run_pk = ? AND origin_run_number IS NULL",
                (origin_run_number, run.run_pk),
            )

    def add_code_package_ref(
        self, sha: str, *, script_name: str, info: Mapping[str, Any] | None = None
    ) -> bool:
        """Record that blob ``sha`` (already stored) is a code package; False if it is not stored."""
        with self.store.write():
            if blob_id(self.store, sha) is None:
                return False
            self.store.execute(
                "INSERT INTO code_packages (sha, script_name, info) VALUES (?, ?, ?) "
                "ON CONFLICT (sha) DO NOTHING",
                (sha, script_name, json.dumps(dict(info or {}), sort_keys=True)),
            )
        return True

    def find_run(self, flow_id: str, run_number: str) -> RunRef:
        """The run ``flow_id/run_number`` (``MetaflowNotFound`` if absent)."""
        pk = self.store.scalar(
            "SELECT run_pk FROM runs WHERE flow_id = ? AND run_number = ?", (flow_id, run_number)
        )
        if pk is None:
            raise MetaflowNotFound(f"Run('{flow_id}/{run_number}') does not exist")
        return RunRef(int(pk), flow_id, run_number)


class TaskBatch:
    """Finished tasks written many at a time (``Writer.task_batch()``, inside
    ``Writer.bulk()``): ``add`` takes what ``Writer.add_done_task`` takes, assigns the
    task's row id at once and buffers its rows; ``flush`` (every ``size`` tasks, and when
    the ``with`` block ends) inserts the rows of all buffered tasks with one statement per
    table. Until then the tasks are not in the file: read them after the block. An error
    raised by ``flush`` (e.g. a duplicate task id) belongs to the whole bulk transaction,
    which rolls back."""

    #: Buffered blob bytes that make ``add`` flush early (memory stays bounded).
    MAX_BLOB_BYTES = 64 * 1024 * 1024

    def __init__(self, writer: Writer, size: int = 2000) -> None:
        if writer._cache is None:
            raise MetaflowInternalError("Writer.task_batch() needs Writer.bulk()")
        self.writer = writer
        self.size = size
        self._next_pk: int | None = None
        self._tasks: list[tuple[Any, ...]] = []
        self._attempts: list[tuple[Any, ...]] = []
        self._logs: list[tuple[Any, ...]] = []
        self._artifacts: list[tuple[Any, ...]] = []
        self._metadata: list[tuple[Any, ...]] = []
        self._blobs: list[tuple[Any, ...]] = []
        self._chunks: list[tuple[Any, ...]] = []
        self._blob_bytes = 0
        self._next_blob: int | None = None
        self._types: dict[str, int | None] = {}

    def add(
        self,
        run: RunRef,
        step_name: str,
        task_id: str,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        started_at: int,
        ended_at: int,
        attempt: int = 0,
        metadata: Iterable[MetadataEntry] = (),
        logs: Iterable[tuple[str, int, str]] = (),
        origin_task_pk: int | None = None,
    ) -> TaskRef:
        """Buffer one finished task (see ``Writer.add_done_task``); return its reference."""
        w = self.writer
        store = w.store
        cache = w._cache
        if cache is None:
            raise MetaflowInternalError("a TaskBatch is used after its Writer.bulk() ended")
        if (run.run_pk, step_name) not in cache.steps:
            store.execute(
                "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                "ON CONFLICT (run_pk, step_name) DO NOTHING",
                (run.run_pk, step_name, started_at),
            )
            cache.steps.add((run.run_pk, step_name))
        if self._next_pk is None:
            self._next_pk = int(store.scalar("SELECT coalesce(max(task_pk), 0) + 1 FROM tasks"))
        pk = self._next_pk
        self._next_pk += 1
        self._tasks.append((pk, run.run_pk, step_name, task_id, started_at, origin_task_pk))
        self._attempts.append((pk, attempt, started_at, ended_at, int(task_ok), int(success)))
        for stream, ts, line in logs:
            if stream not in ("stdout", "stderr"):
                raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
            self._logs.append((pk, attempt, stream, "task", ts, line))
        blobs = cache.blobs
        for name, art in artifacts.items():
            bid = blobs.get(art.sha)
            if bid is None:
                bid = blobs[art.sha] = self._blob_id(name, art)
            self._artifacts.append((pk, attempt, name, bid, ended_at))
        values = cache.values
        for e in (
            *metadata,
            MetadataEntry(
                "attempt_ok", str(bool(task_ok)), "internal_attempt_status", attempt, ended_at
            ),
            MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ended_at),
        ):
            is_json = not isinstance(e.value, str)
            key = (
                e.field_name,
                e.type or e.field_name,
                int(is_json),
                json.dumps(e.value, ensure_ascii=False) if is_json else e.value,
            )
            vid = values.get(key)
            if vid is None:
                vid = values[key] = metadata_value_id(store, *key)
            self._metadata.append((pk, e.attempt, vid, e.ts_epoch))
        if len(self._tasks) >= self.size or self._blob_bytes > self.MAX_BLOB_BYTES:
            self.flush()
        return TaskRef(pk, run, step_name, task_id)

    def _blob_id(self, name: str, art: PreparedArtifact) -> int:
        """Id of the artifact's blob: one in the file already, or a new one (its rows are
        buffered with an id assigned ahead: nothing else writes during a bulk)."""
        store = self.writer.store
        if art.blob is None or blob_id(store, art.sha) is not None:
            try:
                return insert_blob(
                    store,
                    art.sha if art.blob is None else art.blob,
                    type_name=art.type,
                    value_json=art.value_json,
                )
            except MetaflowNotFound:
                raise MetaflowInternalError(
                    f"artifact {name} refers to blob {art.sha}, which is not in the file"
                ) from None
        if self._next_blob is None:
            self._next_blob = next_blob_id(store)
        new_id = self._next_blob
        self._next_blob += 1
        tid = self._types.get(art.type)
        if tid is None:
            tid = self._types[art.type] = type_id(store, art.type)
        row, chunk_rows = blob_rows(art.blob, new_id, tid, art.value_json)
        self._blobs.append(row)
        self._chunks.extend(chunk_rows)
        self._blob_bytes += art.blob.stored_size
        return new_id

    def flush(self) -> None:
        """Insert the buffered tasks' rows (one statement per table)."""
        if not self._tasks and not self._blobs:
            return
        store = self.writer.store
        with store.write():
            insert_blob_rows(store, self._blobs, self._chunks)
            store.executemany(
                "INSERT INTO tasks (task_pk, run_pk, step_name, task_id, ts_epoch, origin_task_pk) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._tasks,
            )
            store.executemany(
                "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._attempts,
            )
            store.executemany(
                "INSERT INTO artifacts (task_pk, attempt, name, blob_id, ts_epoch) VALUES (?, ?, ?, ?, ?)",
                self._artifacts,
            )
            store.executemany(
                "INSERT INTO metadata (task_pk, attempt, value_id, ts_epoch) VALUES (?, ?, ?, ?)",
                self._metadata,
            )
            store.executemany(
                "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._logs,
            )
        for rows in (self._tasks, self._attempts, self._artifacts, self._metadata, self._logs):
            rows.clear()
        self._blobs.clear()
        self._chunks.clear()
        self._blob_bytes = 0
