"""Everything the UI pages read, through ``mfstore.query`` only; the file stays untouched.

The file is opened read-only. When no ``-wal``/``-shm`` lies beside it (nobody is writing
it), it is opened with SQLite's ``immutable=1`` so that not even those files appear; the
reader reopens as soon as the file or the presence of its WAL changes (a writer started),
so a page always shows the current state. Values are previewed from their stored JSON
only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import query
from ..blobs import file_text, from_json
from ..store import Store

#: Runs per page of a run list.
PAGE_SIZE = 50
#: Most runs one run-list page examines when a filter is not answered by an index
#: (status failed/running, a date range): the page then offers to continue further back.
SCAN_LIMIT = 5000
#: Runs one artifact search examines per page.
SEARCH_SCAN = 2000
#: Log lines per log page.
LOG_PAGE = 500
#: A live file's run counts (flow list, run list header) are at most this old.
COUNT_SECONDS = 10.0
#: Longest preview of an artifact value.
PREVIEW_CHARS = 300
STATUSES = ("successful", "failed", "running")


def _fmt_ms(ms: int | None) -> str:
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _duration(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) / 1000.0


@dataclass
class RunRow:
    """One run as the pages show it."""

    run_pk: int
    flow: str
    run_id: str
    user: str | None
    tagset_id: int
    ts: int
    status: str
    finished: int | None
    end_step: str
    origin_run_id: str | None
    tags: list[str] = field(default_factory=list)
    system_tags: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def started_at(self) -> str:
        """Creation time, UTC text."""
        return _fmt_ms(self.ts)

    @property
    def duration(self) -> float | None:
        """Seconds from creation to end (None while running)."""
        return _duration(self.ts, self.finished)


@dataclass
class RunFilter:
    """The filters of a run list (all optional)."""

    namespace: str | None = None
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    user: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def required_tags(self) -> list[str]:
        """Tags every listed run carries (``user:NAME`` for a user filter: indexed)."""
        wanted = query.required_tags(self.namespace, self.tags)
        if self.user and "user:" + self.user not in wanted:
            wanted.append("user:" + self.user)
        return wanted


@dataclass
class RunPage:
    """One page of a run list and where the next one starts."""

    runs: list[RunRow]
    next_cursor: tuple[int, str] | None
    scanned_out: bool = False
    """True if the page stopped because it examined ``SCAN_LIMIT`` runs."""


def preview(value_json: str | None, type_name: str, size: int | None) -> str:
    """Short text of a stored value: its JSON, or type and size for non-plain values."""
    if value_json is None:
        return "{}, {} bytes (not plain data: not shown)".format(
            type_name,
            "?" if size is None else size,
        )
    return value_json if len(value_json) <= PREVIEW_CHARS else value_json[: PREVIEW_CHARS - 1] + "…"


def scalar(value_json: str | None) -> Any:
    """The stored value if it is a number, string or bool; else None."""
    return from_json(value_json, (int, float, str, bool))


def attempt_status(
    started: int | None, ended: int | None, success: int | None, run_status: str
) -> str:
    """Status of one attempt, as ``mf_attempts.status``."""
    if started is None or ended is None:
        return "running" if run_status == "running" else "failed"
    return "successful" if success == 1 else "failed"


def wanted_values(text: str) -> list[Any]:
    """The stored values a search text may mean: its JSON reading and the plain string."""
    values: list[Any] = []
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, bool):
        values.append(int(parsed))
    elif isinstance(parsed, (int, float, str)):
        values.append(parsed)
    elif parsed is not None:
        values.append(json.dumps(parsed, separators=(",", ":")))
    if text not in values:
        values.append(text)
    return values


class Reader:
    """Read-only access to one .mfdb for the UI (reopened when the file changes)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).absolute()
        self.store: Store | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._counts: dict[str, tuple[tuple[Any, ...], int, float]] = {}
        self._open()

    # -- opening and change detection ------------------------------------------

    def _live(self) -> bool:
        return os.path.exists(str(self.path) + "-wal") and os.path.exists(str(self.path) + "-shm")

    def version(self) -> str:
        """Changes whenever the file (or its WAL) changes: for live refresh."""
        parts = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(str(self.path) + suffix)
                parts.append(f"{st.st_mtime_ns}.{st.st_size}")
            except OSError:
                parts.append("-")
        return "-".join(parts)

    def _open(self) -> None:
        live = self._live()
        self.store = Store(self.path, readonly=True, reader=True, immutable=not live)
        self._stamp = (live, self.version() if not live else None)

    def refresh(self) -> None:
        """Reopen if a writer appeared or left, or an immutable-opened file changed."""
        live = self._live()
        if (
            self._stamp is not None
            and live == self._stamp[0]
            and (live or self.version() == self._stamp[1])
        ):
            return
        self.close()
        self._open()

    def close(self) -> None:
        """Close the connection."""
        if self.store is not None:
            self.store.close()
            self.store = None

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """One consistent read of the file for a whole page."""
        self.refresh()
        assert self.store is not None
        with self.store.read():
            yield self

    def _q(self, compiled: tuple[str, dict[str, Any]]) -> list[tuple[Any, ...]]:
        assert self.store is not None
        return self.store.query(*compiled)

    def _one(self, compiled: tuple[str, dict[str, Any]]) -> tuple[Any, ...] | None:
        assert self.store is not None
        return self.store.one(*compiled)

    # -- flows -----------------------------------------------------------------

    def flows(self) -> list[dict[str, Any]]:
        """Every flow: run count, last run and its status, users."""
        out = []
        for (flow,) in self._q(query.compile_flows(None)):
            last = self._q(query.compile_runs(flow, latest=True))
            out.append(
                {
                    "flow": flow,
                    "runs": self.run_count(flow),
                    "last": self._run(last[0]) if last else None,
                    "users": [
                        t[5:]
                        for (t,) in self._q(
                            query.compile_flow_tag_names(flow, system=True, prefix="user:")
                        )
                    ],
                }
            )
        return out

    def flow_exists(self, flow: str) -> bool:
        """True if the flow is in the file."""
        return self._one(query.compile_flow_lookup(flow)) is not None

    def run_count(self, flow: str) -> int:
        """Runs of a flow. Counting walks the flow's index entries (~1 s at 1M runs on a busy
        machine), so it is done once per change of the file, and at most every
        ``COUNT_SECONDS`` while a writer keeps changing it."""
        now = time.monotonic()
        version = self.version()
        hit = self._counts.get(flow)
        if hit is not None and (hit[0] == (version,) or now - hit[2] < COUNT_SECONDS):
            return hit[1]
        row = self._one(query.compile_run_count(flow))
        n = int(row[0]) if row else 0
        self._counts[flow] = ((version,), n, now)
        return n

    def flow_tags(self, flow: str) -> list[str]:
        """User tags used by the flow's runs (for the filter's suggestions)."""
        return [t for (t,) in self._q(query.compile_flow_tag_names(flow, system=False))]

    # -- runs ------------------------------------------------------------------

    def _run(self, row: Sequence[Any]) -> RunRow:
        r = RunRow(
            run_pk=row[0], flow=row[1], run_id=row[2], user=row[3], tagset_id=row[4], ts=row[5],
            status=row[6], finished=row[7], end_step=row[8], origin_run_id=row[9],
        )  # fmt: skip
        tags = self._tagset(r.tagset_id)
        r.tags, r.system_tags = tags
        return r

    def _tagset(self, tagset_id: int) -> tuple[list[str], list[str]]:
        assert self.store is not None
        store = self.store

        def compute() -> tuple[list[str], list[str]]:
            rows = store.query(*query.compile_tagset(tagset_id))
            return sorted(t for t, s in rows if not s), sorted(t for t, s in rows if s)

        result: tuple[list[str], list[str]] = store.memo(("ui-tagset", tagset_id), compute)
        return result

    def _with_params(self, runs: list[RunRow]) -> list[RunRow]:
        if runs:
            by_pk = {r.run_pk: r for r in runs}
            for run_pk, name, type_name, value_json in self._q(
                query.compile_run_parameters(list(by_pk))
            ):
                by_pk[run_pk].params[name] = preview(value_json, type_name, None)
        return runs

    def run_page(
        self,
        flow: str,
        flt: RunFilter,
        *,
        before: tuple[int, str] | None = None,
        size: int = PAGE_SIZE,
    ) -> RunPage:
        """Runs of ``flow`` matching ``flt``, newest first, older than the keyset ``before``."""
        wanted = flt.required_tags()
        if not query.storable(*wanted, flt.user):
            return RunPage([], None)
        if wanted:
            assert self.store is not None
            counts = dict(self._q(query.compile_tag_counts(flow, wanted)))
            if len(counts) < len(wanted):
                return RunPage([], None)
            wanted.sort(key=counts.__getitem__)
        if flt.until_ms is not None:
            until = (flt.until_ms, "")
            if before is None or until < before:
                before = until
        successful = flt.status == "successful"
        post_filter = flt.status in ("failed", "running") or flt.user is not None
        out: list[RunRow] = []
        scanned = 0
        chunk = size + 1 if not post_filter else 200
        cursor = before
        while True:
            rows = self._q(
                query.compile_runs(flow, wanted, successful=successful, before=cursor, limit=chunk)
            )
            for row in rows:
                scanned += 1
                cursor = (row[5], row[2])
                if flt.since_ms is not None and row[5] < flt.since_ms:
                    return RunPage(self._with_params(out), None)
                if flt.status in ("failed", "running") and row[6] != flt.status:
                    continue
                if flt.user is not None and row[3] != flt.user:
                    continue
                if len(out) == size:
                    last = out[-1]
                    return RunPage(self._with_params(out), (last.ts, last.run_id))
                out.append(self._run(row))
            if len(rows) < chunk:
                return RunPage(self._with_params(out), None)
            if scanned >= SCAN_LIMIT and len(out) < size:
                return RunPage(self._with_params(out), cursor, scanned_out=True)

    def run(self, flow: str, run_id: str) -> RunRow | None:
        """One run with tags and parameters, or None."""
        row = self._one(query.compile_run_lookup(flow, run_id))
        if row is None:
            return None
        return self._with_params([self._run(row)])[0]

    def triggers(self, run: RunRow) -> list[dict[str, Any]]:
        """Events (or runs) that started the run."""
        return [
            {"name": n, "id": i, "type": ty, "at": _fmt_ms(ts), "pathspec": p, "payload": pl}
            for n, i, ty, ts, p, pl in self._q(query.compile_trigger_events(run.run_pk))
        ]

    def graph_info(self, run: RunRow) -> dict[str, Any] | None:
        """The flow's ``_graph_info`` as stored in JSON (None if absent or not plain)."""
        row = self._one(
            query.compile_run_artifact_json(run.run_pk, "_graph_info", ("_parameters", "start"))
        )
        info = None if row is None else from_json(row[0], dict)
        return info if info is not None and isinstance(info.get("steps"), dict) else None

    def tasks(
        self, run: RunRow, step: str | None = None, task_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Tasks of a run (or step, or one task), each with its attempts."""
        tasks: dict[int, dict[str, Any]] = {}
        for (
            step_name,
            tid,
            task_pk,
            ts,
            origin,
            attempt,
            started,
            ended,
            task_ok,
            success,
        ) in self._q(query.compile_run_task_attempts(run.run_pk, step, task_id)):
            task = tasks.get(task_pk)
            if task is None:
                task = tasks[task_pk] = {
                    "step": step_name, "task_id": tid, "task_pk": task_pk, "created": ts,
                    "origin_task_pk": origin, "attempts": [],
                }  # fmt: skip
            if attempt is not None:
                task["attempts"].append(
                    {
                        "attempt": attempt, "started": started, "ended": ended,
                        "started_at": _fmt_ms(started), "duration": _duration(started, ended),
                        "task_ok": task_ok, "success": success,
                        "status": attempt_status(started, ended, success, run.status),
                    }
                )  # fmt: skip
        for task in tasks.values():
            last = task["attempts"][-1] if task["attempts"] else None
            task["status"] = (
                last["status"] if last else ("running" if run.status == "running" else "failed")
            )
            task["started"] = task["attempts"][0]["started"] if last else None
            task["ended"] = last["ended"] if last else None
            task["started_at"] = _fmt_ms(task["started"])
            task["duration"] = _duration(task["started"], task["ended"])
        return list(tasks.values())

    def step_counts(self, run: RunRow) -> dict[str, int]:
        """Number of tasks of each step of a run (exact, however many tasks there are)."""
        return {step: int(n) for step, n in self._q(query.compile_run_step_counts(run.run_pk))}

    def origin_pathspec(self, task_pk: int | None) -> str | None:
        """``flow/run/step/task`` of a resume origin task."""
        if task_pk is None:
            return None
        row = self._one(query.compile_task_pathspec(task_pk))
        return "/".join(row) if row else None

    # -- tasks -----------------------------------------------------------------

    def artifacts(
        self, task_pk: int, attempt: int | None = None
    ) -> tuple[int | None, list[dict[str, Any]]]:
        """Artifacts of an attempt (default: the latest that stored any), and that attempt."""
        if attempt is None:
            row = self._one(query.compile_artifact_attempt(task_pk))
            attempt = row[0] if row else None
        if attempt is None:
            return None, []
        return attempt, [
            {
                "name": n,
                "type": ty,
                "sha": sha,
                "size": size,
                "value_json": vj,
                "preview": preview(vj, ty, size),
            }
            for n, ty, sha, size, vj in self._q(query.compile_attempt_artifacts(task_pk, attempt))
        ]

    def metadata(self, task_pk: int) -> list[dict[str, Any]]:
        """Metadata events of a task in recording order."""
        return [
            {"field": f, "value": v, "is_json": j, "at": _fmt_ms(ts), "type": ty}
            for f, v, j, ts, ty, _attempt in self._q(query.compile_metadata(task_pk, None))
        ]

    def log_page(
        self,
        task_pk: int,
        attempt: int,
        stream: str,
        after: tuple[int, int] | None,
        size: int = LOG_PAGE,
    ) -> tuple[list[dict[str, Any]], tuple[int, int] | None, int]:
        """A page of log lines, the keyset of the next page (None at the end), total lines."""
        rows = self._q(
            query.compile_log_page(task_pk, attempt, stream, after=after, limit=size + 1)
        )
        total_row = self._one(query.compile_log_count(task_pk, attempt, stream))
        more = len(rows) > size
        rows = rows[:size]
        lines = [
            {"ts": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts // 1_000_000)) + f".{ts % 1_000_000:06d}Z",
             "source": src, "line": line}
            for ts, _pk, src, line in rows
        ]  # fmt: skip
        nxt = (rows[-1][0], rows[-1][1]) if more and rows else None
        return lines, nxt, int(total_row[0]) if total_row else 0

    # -- search ----------------------------------------------------------------

    def search(
        self,
        flow: str,
        name: str,
        *,
        value: str | None,
        low: float | None,
        high: float | None,
        before: tuple[int, str] | None,
    ) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """Tasks whose artifact matches, among the next ``SEARCH_SCAN`` runs; and where to go on."""
        equals = wanted_values(value) if value not in (None, "") else []
        if not query.storable(name, *[v for v in equals if isinstance(v, str)]):
            return [], None
        rows = self._q(
            query.compile_artifact_search(
                flow, name, equals=equals, low=low, high=high, before=before, scan=SEARCH_SCAN
            )
        )
        end = self._one(query.compile_window_bound(flow, before=before, window=SEARCH_SCAN))
        hits = [
            {
                "run_id": rn,
                "at": _fmt_ms(ts),
                "status": st,
                "step": step,
                "task_id": tid,
                "value": preview(vj, "", None),
            }
            for rn, ts, st, step, tid, vj in rows
        ]
        return hits, (int(end[0]), str(end[1])) if end else None

    # -- cards -----------------------------------------------------------------

    def cards(self, task_pk: int) -> list[dict[str, Any]]:
        """Cards kept with a task: id, attempt, name."""
        return [
            {"id": f"{task_pk}-{pk}", "attempt": a, "name": n}
            for pk, a, n in self._q(query.compile_task_cards(task_pk))
        ]

    def card_html(self, card_id: str) -> str | None:
        """A card's HTML text (shown only inside a sandboxed iframe), or None."""
        task_pk, _, pk = card_id.partition("-")  # "<task_pk>-<metadata_pk>"
        if not (task_pk.isdigit() and pk.isdigit()):
            return None
        row = self._one(query.compile_card(int(task_pk), int(pk)))
        if row is None:
            return None
        assert self.store is not None
        return file_text(self.store, row[1], what="card")
