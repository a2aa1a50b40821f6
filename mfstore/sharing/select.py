"""Which runs a sharing command works on: ``RunFilter`` -> run keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..exception import CommandException, MetaflowNotFound
from ..store import Store

# -- selecting runs ------------------------------------------------------------------


def parse_time(text: str) -> int:
    """ISO date/time -> ms since the epoch (naive times are local time, like created_at)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CommandException(
            f"{text!r} is not an ISO date or time (e.g. 2026-11-24 or 2026-11-24T13:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return int(dt.timestamp() * 1000)


@dataclass
class RunFilter:
    """Which runs export/delete act on; empty filter = every run."""

    flow: str | None = None
    namespace: str | None = None
    """A tag (user or system) every selected run carries, e.g. ``user:alice``."""
    tags: Sequence[str] = ()
    """Tags every selected run carries (all must match)."""
    pathspecs: Sequence[str] = ()
    """``Flow/RunId`` (or ``Flow``); selected runs must be one of them."""
    since: int | None = None
    """created_at >= this (ms)."""
    before: int | None = None
    """created_at < this (ms)."""

    def is_empty(self) -> bool:
        return not (
            self.flow or self.namespace or self.tags or self.pathspecs or self.since or self.before
        )


def select_runs(store: Store, f: RunFilter) -> list[int]:
    """run_pk of the runs matching ``f``, oldest first. Unknown pathspecs raise."""
    where: list[str] = []
    params: list[Any] = []
    if f.flow:
        where.append("r.flow_id = ?")
        params.append(f.flow)
    for tag in [*f.tags, *([f.namespace] if f.namespace else [])]:
        where.append(
            "EXISTS (SELECT 1 FROM tagset_tags t WHERE t.tagset_id = r.tagset_id AND t.tag = ?)"
        )
        params.append(tag)
    if f.since is not None:
        where.append("r.ts_epoch >= ?")
        params.append(f.since)
    if f.before is not None:
        where.append("r.ts_epoch < ?")
        params.append(f.before)
    if f.pathspecs:
        ors = []
        for ps in f.pathspecs:
            parts = ps.strip("/").split("/")
            if len(parts) == 1:
                ors.append("r.flow_id = ?")
                params.append(parts[0])
                found = store.scalar("SELECT 1 FROM runs WHERE flow_id = ?", (parts[0],))
            elif len(parts) == 2:
                ors.append("(r.flow_id = ? AND r.run_number = ?)")
                params.extend(parts)
                found = store.scalar(
                    "SELECT 1 FROM runs WHERE flow_id = ? AND run_number = ?", tuple(parts)
                )
            else:
                raise CommandException(f"{ps!r} is not a run pathspec: expected Flow/RunId")
            if not found:
                raise MetaflowNotFound(
                    "{} does not exist in {}".format(
                        f"Run('{ps}')" if len(parts) == 2 else f"Flow('{ps}')", store.path
                    )
                )
        where.append("(" + " OR ".join(ors) + ")")
    sql = "SELECT r.run_pk FROM runs r" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY r.ts_epoch, r.run_number"
    return [int(r[0]) for r in store.query(sql, params)]


def describe_runs(store: Store, run_pks: Iterable[int]) -> list[str]:
    """Pathspecs of runs."""
    out = []
    for pk in run_pks:
        row = store.one("SELECT flow_id, run_number FROM runs WHERE run_pk = ?", (pk,))
        if row:
            out.append("{}/{}".format(*row))
    return out
