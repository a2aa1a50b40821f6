"""Writes of flows, runs, tag sets, code packages and trigger events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .. import query
from ..blobs import (
    insert_blob,
    pack_blob,
)
from ..exception import MetaflowInternalError, MetaflowNotFound, MetaflowTaggingError
from ..identity import new_run_id, now_ms
from ..store import Store
from ..tags import tagset_digest, validate_tags
from .records import SET_RUN_TAGSET, BulkCache, RunBuffer, RunRef


class RunWrites:
    """``Writer``'s flow and run writes (mixed into ``Writer``)."""

    store: Store
    _cache: BulkCache | None

    def _ensure_flow(self, flow_id: str, ts_epoch: int) -> None:
        cache = self._cache
        if cache is not None and flow_id in cache.flows:
            return
        self.store.execute(
            "INSERT INTO flows (flow_id, ts_epoch) VALUES (?, ?) ON CONFLICT (flow_id) DO NOTHING",
            (flow_id, ts_epoch),
        )
        if cache is not None:
            cache.flows.add(flow_id)

    def ensure_run_tagset(
        self, flow_id: str, user_tags: Iterable[str], system_tags: Iterable[str], ts_epoch: int
    ) -> int:
        """Id of a new run's tag set, added if the file lacks it (user tags checked; the
        flow recorded first if it is new, dated ``ts_epoch``); inside ``store.write()``."""
        user, system = tuple(user_tags), tuple(system_tags)
        cache = self._cache
        if cache is not None:  # inside bulk(): tags seen before were checked then
            found = cache.run_tagsets.get((flow_id, user, system))
            if found is not None:
                return found
        user_checked = validate_tags(user)
        self._ensure_flow(flow_id, ts_epoch)
        tagset = self.ensure_tagset(flow_id, user_checked, system)
        if cache is not None:
            cache.run_tagsets[(flow_id, user, system)] = tagset
        return tagset

    def ensure_tagset(
        self, flow_id: str, user_tags: Iterable[str], system_tags: Iterable[str]
    ) -> int:
        """Id of the tag set (creating it); inside ``store.write()``."""
        user = sorted(set(user_tags))
        system = sorted(set(system_tags))
        digest = tagset_digest(user, system)
        cache = self._cache
        if cache is not None:
            known = cache.tagsets.get((flow_id, digest))
            if known is not None:
                return known
        found = self.store.scalar(*query.compile_tagset_by_digest(flow_id, digest))
        if found is not None:
            tagset_id = int(found)
        else:
            tagset_id = self.store.insert(
                "INSERT INTO tagsets (flow_id, digest) VALUES (?, ?)", (flow_id, digest)
            )
            self.store.executemany(
                "INSERT INTO tagset_tags (flow_id, tag, tagset_id, is_system) VALUES (?, ?, ?, ?)",
                [(flow_id, t, tagset_id, 0) for t in user]
                + [(flow_id, t, tagset_id, 1) for t in system],
            )
        if cache is not None:
            cache.tagsets[(flow_id, digest)] = tagset_id
        return tagset_id

    def put_code_package(
        self, tarball: bytes, *, script_name: str, info: Mapping[str, Any] | None = None
    ) -> str:
        """Store a code package (deduplicated by content); return its sha. The script is
        part of the content (its one member), so a stored package naming another script
        (a damaged row) gets its name back."""
        packed = pack_blob(tarball)
        with self.store.write():
            insert_blob(self.store, packed)
            self.store.execute(
                "INSERT INTO code_packages (sha, script_name, info) VALUES (?, ?, ?) "
                "ON CONFLICT (sha) DO UPDATE SET script_name = excluded.script_name "
                "WHERE code_packages.script_name IS NOT excluded.script_name",
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
        batch: RunBuffer | None = None,
    ) -> RunRef:
        """Record a new run (status running) and return it.

        ``run_number`` defaults to a new globally unique id; an id that already exists in
        this flow raises ``MetaflowInternalError`` (for generated ids a new one is drawn).
        ``batch``: the run's row is buffered with the batch's tasks (written at its next
        flush; ``end_run(..., batch=...)`` ends it before): begin a batch's runs all
        through it or all without it (its row ids are assigned ahead). A given number
        the file has already is then refused by that flush (which rolls the bulk back).
        """
        ts = now_ms() if ts_epoch is None else ts_epoch
        with self.store.write():
            tagset = self.ensure_run_tagset(flow_id, user_tags, system_tags, ts)
            number = run_number or new_run_id()
            # A batch's run with a given number is checked when the batch writes it (by
            # the file's unique key: one statement fewer per run).
            look = batch is None or run_number is None
            while (batch is not None and batch.has_run(flow_id, number)) or (
                look
                and self.store.scalar(
                    *query.compile_run_by_key(flow_id, number, query.RunFields.EXISTS)
                )
            ):
                if run_number is not None:
                    raise MetaflowInternalError(
                        f"Run {flow_id}/{number} already exists in {self.store.path}"
                    )
                number = new_run_id()
            row = (flow_id, number, user_name, tagset, ts, end_step, origin_run_number, code_sha)
            if batch is not None:
                return batch.add_run(row)
            run_pk = self.store.insert(
                "INSERT INTO runs (flow_id, run_number, user_name, tagset_id, ts_epoch, end_step, "
                "origin_run_number, code_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return RunRef(run_pk, flow_id, number)

    def end_run(
        self,
        run: RunRef,
        *,
        successful: bool,
        ts_epoch: int | None = None,
        checkpoint: bool = True,
        batch: RunBuffer | None = None,
    ) -> bool:
        """Mark the run ended (successful or failed), then fold the WAL into the file.
        Returns False when the fold could not finish (another program held a read
        transaction): a plain ``cp`` of the file alone then misses the run. ``batch``: a
        run it holds is ended there (no statement); never a fold (inside ``bulk()``)."""
        status = "successful" if successful else "failed"
        ts = now_ms() if ts_epoch is None else ts_epoch
        if batch is not None and batch.end_buffered_run(run, status, ts):
            return True
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET status = :status, finished_at = :ts WHERE run_pk = :run",
                {"status": status, "ts": ts, "run": run.run_pk},
            )
        if checkpoint and batch is None:
            return self.store.checkpoint()
        return True

    def set_run_code(self, run: RunRef, code_sha: str) -> None:
        """Attach a stored code package to a run."""
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET code_sha = :sha WHERE run_pk = :run",
                {"sha": code_sha, "run": run.run_pk},
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
            row = self.store.one(*query.compile_run_fields(run_pk, query.RunFields.FLOW_AND_TAGSET))
            if row is None:
                raise MetaflowNotFound(f"run {run_pk} does not exist")
            flow_id, tagset = row
            user, system = query.tag_groups(self.store.query(*query.compile_tagset(tagset)))
            add -= system
            bad = sorted(remove & system)
            if bad:
                raise MetaflowTaggingError(
                    f"Cannot remove a tag that is an existing system tag ({bad})"
                )
            new_user = (user - remove) | add
            if new_user != user:
                validate_tags(new_user, existing_tags=user)
                new_tagset = self.ensure_tagset(flow_id, new_user, system)
                self.store.execute(SET_RUN_TAGSET, {"tagset": new_tagset, "run": run_pk})
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
