"""Reads shared by the tasks one iteration of a ``Step`` yields.

``[t["x"].data for t in step]`` would otherwise cost a few statements per task. The
tasks of one iteration share a ``TaskGroup``: the first ``t["x"]`` reads artifact ``x``
of every task of the group (one statement), the first ``t.data`` (or iteration of a
task) every artifact of every task (one statement), the first ``.data`` the small
values of those artifacts (one statement per few megabytes). Only finished attempts are taken
from the group (their artifacts never change); a task whose attempt had not finished
when the group read it is looked up on its own, as a ``Task`` made by pathspec is.
"""

from __future__ import annotations

from typing import Any

from .. import query
from ..store import Store

#: Marker: the group has no answer for this task (no finished attempt): read it alone.
UNKNOWN: Any = object()

#: A value is read with the group's values when its stored bytes are at most this many...
_GROUP_VALUE_MAX = 64 * 1024
#: ... and one statement reads values up to this many stored bytes in all.
_GROUP_READ_BYTES = 8 * 1024 * 1024


class TaskGroup:
    """The tasks yielded by one iteration of a step, by ``task_pk``."""

    def __init__(self, store: Store, task_pks: list[int]) -> None:
        self._store = store
        self._task_pks = task_pks
        # name -> task_pk -> (attempt, sha, type, ts_epoch) | None (done, no such artifact)
        self._artifacts: dict[str, dict[int, tuple[Any, ...] | None]] = {}
        # shas not read yet, in task order, with their blob id and stored size
        self._pending: dict[str, tuple[int, int]] = {}
        self._values: dict[str, bytes] = {}
        # artifacts (of all names read) holding each small value, not handed out yet
        self._uses: dict[str, int] = {}
        # task_pk -> [(name, attempt, sha, type, ts_epoch)] of its latest done attempt
        self._all: dict[int, list[tuple[Any, ...]]] | None = None

    def artifact(self, task_pk: int, name: str) -> Any:
        """``(attempt, sha, type, ts_epoch)`` of artifact ``name`` of the task's latest
        done attempt; None if that attempt has no such artifact; ``UNKNOWN`` if the task
        had no done attempt when the group read it."""
        rows = self._artifacts.get(name)
        if rows is None:
            rows = self._artifacts[name] = {}
            for pk, attempt, sha, typ, ts, bid, stored in self._store.query(
                *query.compile_group_artifacts(self._task_pks, name)
            ):
                if attempt is None:
                    continue
                rows[pk] = None if sha is None else (attempt, sha, typ, ts)
                if sha is not None:
                    self._expect(sha, bid, stored)
        return rows.get(task_pk, UNKNOWN)

    def artifacts(self, task_pk: int) -> Any:
        """``[(name, attempt, sha, type, ts_epoch)]`` of the task's latest done attempt
        (``compile_artifacts``' order); ``UNKNOWN`` if no attempt of it was done when
        the group read it. The first call reads every task of the group."""
        if self._all is None:
            self._all = {}
            for pk, attempt, name, sha, typ, ts, bid, stored in self._store.query(
                *query.compile_group_all_artifacts(self._task_pks)
            ):
                if attempt is None:
                    continue
                found = self._all.setdefault(pk, [])
                if name is not None and sha is not None:
                    found.append((name, attempt, sha, typ, ts))
                    self._expect(sha, bid, stored)
        return self._all.get(task_pk, UNKNOWN)

    def _expect(self, sha: str, blob_id: int, stored: int | None) -> None:
        """One more artifact of the group holds value ``sha`` (read with the others if small)."""
        if stored is not None and stored <= _GROUP_VALUE_MAX:
            self._pending.setdefault(sha, (blob_id, stored))
            self._uses[sha] = self._uses.get(sha, 0) + 1

    def value(self, sha: str) -> bytes | None:
        """The raw bytes of a small artifact value of the group, read together with the
        other pending values (kept until each artifact holding it had it once); None:
        read it alone."""
        if sha in self._values:
            return self._handed_out(sha)
        if sha not in self._pending:
            return None
        bid, total = self._pending[sha]
        wanted: dict[int, str] = {bid: sha}
        for other, (other_bid, stored) in self._pending.items():
            if total + stored > _GROUP_READ_BYTES:
                break
            if other != sha:
                wanted[other_bid] = other
                total += stored
        for pending_sha in wanted.values():
            del self._pending[pending_sha]
        from ..blobs import get_small_blobs

        self._values.update(get_small_blobs(self._store, wanted))
        return self._handed_out(sha) if sha in self._values else None

    def _handed_out(self, sha: str) -> bytes:
        uses = self._uses.get(sha, 1) - 1
        if uses > 0:
            self._uses[sha] = uses
            return self._values[sha]
        self._uses.pop(sha, None)
        return self._values.pop(sha)
