"""Which runs a sharing command works on: ``RunFilter`` -> run keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .. import query
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
    keys: list[list[str]] = []
    for ps in f.pathspecs:
        parts = ps.strip("/").split("/")
        if len(parts) == 1:
            found = store.scalar(*query.compile_flow_has_runs(parts[0]))
        elif len(parts) == 2:
            found = store.scalar(
                *query.compile_run_by_key(parts[0], parts[1], query.RunFields.EXISTS)
            )
        else:
            raise CommandException(f"{ps!r} is not a run pathspec: expected Flow/RunId")
        if not found:
            raise MetaflowNotFound(
                "{} does not exist in {}".format(
                    f"Run('{ps}')" if len(parts) == 2 else f"Flow('{ps}')", store.path
                )
            )
        keys.append(parts)
    tags = [*f.tags, *([f.namespace] if f.namespace else [])]
    sql, params = query.compile_select_runs(f.flow, tags, f.since, f.before, keys)
    return [int(r[0]) for r in store.query(sql, params)]


def describe_runs(store: Store, run_pks: Iterable[int]) -> list[str]:
    """Pathspecs of runs."""
    out = []
    for pk in run_pks:
        row = store.one(*query.compile_run_fields(pk, query.RunFields.KEY))
        if row:
            out.append("{}/{}".format(*row))
    return out
