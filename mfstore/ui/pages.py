"""What each page shows: builds a template context from the ``Reader`` (no SQL here)."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..exception import PageError
from .fragments import run_rows
from .links import Linker
from .reader import PAGE_SIZE, STATUSES, Reader, RunFilter, RunRow, scalar
from .svg import dag_svg, timeline_svg

#: Most runs one comparison shows side by side.
MAX_COMPARE = 12


def _date_ms(text: str | None, *, end: bool = False) -> int | None:
    """``YYYY-MM-DD`` (UTC) to ms since the epoch; ``end`` gives the next midnight."""
    if not text:
        return None
    try:
        day = time.strptime(text.strip()[:10], "%Y-%m-%d")
    except ValueError:
        raise PageError(400, f"bad date {text!r}: use YYYY-MM-DD") from None
    ms = calendar.timegm(day) * 1000
    return ms + 86_400_000 if end else ms


def parse_filter(params: Mapping[str, Any], tags: Sequence[str]) -> RunFilter:
    """The run filter from query parameters (``namespace``, ``tag``..., ``status``, ``user``,
    ``since``, ``until``)."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise PageError(400, f"bad status {status!r}: use one of {', '.join(STATUSES)}")
    return RunFilter(
        namespace=params.get("namespace") or None,
        tags=[t for t in tags if t],
        status=status,
        user=params.get("user") or None,
        since_ms=_date_ms(params.get("since")),
        until_ms=_date_ms(params.get("until"), end=True),
    )


def parse_cursor(ts: str | None, run_id: str | None) -> tuple[int, str] | None:
    """A keyset cursor ``(ts_epoch, run_number)`` from ``before_ts``/``before_id``."""
    if ts in (None, ""):
        return None
    try:
        return int(str(ts)), str(run_id or "")
    except ValueError:
        raise PageError(400, f"bad cursor before_ts={ts!r}: use the page's own links") from None


def flows_page(reader: Reader, link: Linker) -> dict[str, Any]:
    """``/``: flows with run counts, last run and its status, users."""
    return {"title": "Flows", "flows": reader.flows(), "link": link}


def flow_page(
    reader: Reader,
    link: Linker,
    flow: str,
    flt: RunFilter,
    before: tuple[int, str] | None,
    *,
    size: int = PAGE_SIZE,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``/<flow>``: a page of runs, newest first, with filters."""
    if not reader.flow_exists(flow):
        raise PageError(404, f"no flow {flow!r} in this file")
    page = reader.run_page(flow, flt, before=before, size=size)
    keep = {
        "namespace": flt.namespace, "tag": list(flt.tags), "status": flt.status, "user": flt.user,
        "since": (params or {}).get("since"), "until": (params or {}).get("until"),
    }  # fmt: skip
    older = newest = None
    if page.next_cursor is not None:
        older = link.flow(
            flow, **keep, before_ts=page.next_cursor[0], before_id=page.next_cursor[1]
        )
    if before is not None:
        newest = link.flow(flow, **keep)
    chart = [
        [r.ts / 1000 for r in reversed(page.runs) if r.duration is not None],
        [r.duration for r in reversed(page.runs) if r.duration is not None],
    ]
    return {
        "title": flow,
        "flow": flow,
        "page": page,
        "rows": run_rows(page.runs, link),
        "flt": flt,
        "since": keep["since"] or "",
        "until": keep["until"] or "",
        "statuses": STATUSES,
        "older": older,
        "newest": newest,
        "total": reader.run_count(flow),
        "known_tags": reader.flow_tags(flow),
        "chart": chart,
        "link": link,
    }


def _run_or_404(reader: Reader, flow: str, run_id: str) -> RunRow:
    run = reader.run(flow, run_id)
    if run is None:
        raise PageError(404, f"no run {flow}/{run_id} in this file")
    return run


def _steps_summary(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    for t in tasks:
        s = steps.setdefault(
            t["step"], {"tasks": 0, "statuses": set(), "start": None, "end": None, "open": False}
        )
        s["tasks"] += 1
        s["statuses"].add(t["status"])
        if t["started"] is not None:
            s["start"] = t["started"] if s["start"] is None else min(s["start"], t["started"])
        if t["ended"] is None:
            s["open"] = True
        else:
            s["end"] = t["ended"] if s["end"] is None else max(s["end"], t["ended"])
    for s in steps.values():
        st = s.pop("statuses")
        s["status"] = "running" if "running" in st else "failed" if "failed" in st else "successful"
        s["duration"] = None if s["open"] or s["start"] is None else (s["end"] - s["start"]) / 1000
    return steps


def run_page(reader: Reader, link: Linker, flow: str, run_id: str) -> dict[str, Any]:
    """``/<flow>/<run>``: summary, DAG, timeline, steps and tasks, origin, trigger."""
    run = _run_or_404(reader, flow, run_id)
    tasks = reader.tasks(run)
    steps = _steps_summary(tasks)
    for step, n in reader.step_counts(run).items():  # exact counts past TASK_ROWS
        if step in steps:
            steps[step]["tasks"] = n
    info = reader.graph_info(run)
    dag = dag_svg(info, steps, lambda s: link.step(flow, run_id, s))
    timeline = timeline_svg(
        tasks, lambda s, t: link.task(flow, run_id, s, t), int(time.time() * 1000)
    )
    for t in tasks:
        t["origin"] = reader.origin_pathspec(t["origin_task_pk"]) if t["origin_task_pk"] else None
    return {
        "title": f"{flow}/{run_id}",
        "run": run,
        "dag": dag,
        "timeline": timeline,
        "steps": steps,
        "tasks": tasks,
        "truncated": len(tasks) < sum(s["tasks"] for s in steps.values()),
        "triggers": reader.triggers(run),
        "live": run.status == "running",
        "link": link,
    }


def step_page(reader: Reader, link: Linker, flow: str, run_id: str, step: str) -> dict[str, Any]:
    """``/<flow>/<run>/<step>``: the step's tasks and their attempts."""
    run = _run_or_404(reader, flow, run_id)
    tasks = reader.tasks(run, step)
    if not tasks:
        raise PageError(404, f"no step {flow}/{run_id}/{step} in this file")
    summary = _steps_summary(tasks)[step]
    return {
        "title": f"{flow}/{run_id}/{step}",
        "run": run,
        "step": step,
        "summary": summary,
        "tasks": tasks,
        "live": run.status == "running",
        "link": link,
    }


def task_page(
    reader: Reader,
    link: Linker,
    flow: str,
    run_id: str,
    step: str,
    task_id: str,
    *,
    attempt: int | None = None,
    stream: str = "stdout",
    after: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """``/<flow>/<run>/<step>/<task>``: attempts, logs, artifacts, metadata, exception."""
    run = _run_or_404(reader, flow, run_id)
    found = reader.tasks(run, step, task_id)
    if not found:
        raise PageError(404, f"no task {flow}/{run_id}/{step}/{task_id} in this file")
    task = found[0]
    attempts = task["attempts"]
    if attempt is None:
        attempt = attempts[-1]["attempt"] if attempts else 0
    elif not any(a["attempt"] == attempt for a in attempts):
        raise PageError(404, f"task {flow}/{run_id}/{step}/{task_id} has no attempt {attempt}")
    art_attempt, artifacts = reader.artifacts(task["task_pk"], attempt)
    if not artifacts and art_attempt is not None:
        art_attempt, artifacts = reader.artifacts(task["task_pk"])
    logs: dict[str, dict[str, Any]] = {}
    for s in ("stdout", "stderr"):
        lines, nxt, total = reader.log_page(
            task["task_pk"], attempt, s, after if s == stream else None
        )
        more = None
        if nxt is not None:
            more = link.task(
                flow,
                run_id,
                step,
                task_id,
                attempt=attempt,
                stream=s,
                after_ts=nxt[0],
                after_pk=nxt[1],
            )
        logs[s] = {
            "lines": lines,
            "more": more,
            "total": total,
            "paged": after is not None and s == stream,
        }
    this = next((a for a in attempts if a["attempt"] == attempt), None)
    exception = None
    if this is not None and this["status"] == "failed":
        exc = next((a for a in artifacts if a["name"] == "_exception"), None)
        exception = {
            "type": exc["type"] if exc else None,
            "size": exc["size"] if exc else None,
            "tail": [ln["line"] for ln in logs["stderr"]["lines"][-30:]],
        }
    return {
        "title": f"{flow}/{run_id}/{step}/{task_id}",
        "run": run,
        "step": step,
        "task": task,
        "attempt": attempt,
        "attempts": attempts,
        "artifacts": artifacts,
        "artifact_attempt": art_attempt,
        "metadata": reader.metadata(task["task_pk"]),
        "logs": logs,
        "exception": exception,
        "origin": reader.origin_pathspec(task["origin_task_pk"]),
        "cards": reader.cards(task["task_pk"]),
        "live": run.status == "running",
        "link": link,
    }


def parse_runs(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``F/R`` pathspecs (comma-separated or repeated) of the runs to compare."""
    out: list[tuple[str, str]] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip().strip("/")
            if not part:
                continue
            flow, sep, run_id = part.partition("/")
            if not sep or not flow or not run_id or "/" in run_id:
                raise PageError(
                    400, f"bad run {part!r}: give runs as Flow/run_id, e.g. ?runs=F/1,F/2"
                )
            if (flow, run_id) not in out:
                out.append((flow, run_id))
    if not 2 <= len(out) <= MAX_COMPARE:
        raise PageError(
            400, f"compare takes 2 to {MAX_COMPARE} runs (?runs=F/1,F/2), got {len(out)}"
        )
    return out


def compare_page(reader: Reader, link: Linker, specs: Sequence[str]) -> dict[str, Any]:
    """``/compare?runs=F/R1,F/R2``: parameters, artifacts, scalar values, step durations, tags."""
    runs = [_run_or_404(reader, f, r) for f, r in parse_runs(specs)]
    arts: list[dict[str, dict[str, Any]]] = []
    steps: list[dict[str, dict[str, Any]]] = []
    for run in runs:
        tasks = reader.tasks(run)
        steps.append(_steps_summary([t for t in tasks if t["step"] != "_parameters"]))
        end = [t for t in tasks if t["step"] == run.end_step] or [
            t for t in tasks if t["step"] != "_parameters"
        ]
        found: dict[str, dict[str, Any]] = {}
        if end:
            _, items = reader.artifacts(end[-1]["task_pk"])
            found = {a["name"]: a for a in items if not a["name"].startswith("_")}
        arts.append(found)
    param_names = sorted({n for r in runs for n in r.params})
    params = [
        {
            "name": n,
            "vals": [r.params.get(n) for r in runs],
            "differ": len({r.params.get(n) for r in runs}) > 1,
        }
        for n in param_names
    ]
    names = sorted({n for a in arts for n in a})
    artifacts = []
    scalars = []
    for n in names:
        cells = [a.get(n) for a in arts]
        shas = {c["sha"] for c in cells if c}
        artifacts.append({"name": n, "cells": cells, "equal": len(shas) == 1 and all(cells)})
        values = [scalar(c["value_json"]) if c else None for c in cells]
        values = [json.dumps(v) if isinstance(v, bool) else v for v in values]
        if any(v is not None for v in values):
            scalars.append(
                {"name": n, "vals": values, "differ": len({repr(v) for v in values}) > 1}
            )
    step_names = list(dict.fromkeys(s for st in steps for s in st))
    durations = [
        {"step": s, "vals": [st.get(s, {}).get("duration") for st in steps]} for s in step_names
    ]
    longest = max((v for d in durations for v in d["vals"] if v is not None), default=0) or 1
    return {
        "title": "Compare " + ", ".join(f"{r.flow}/{r.run_id}" for r in runs),
        "runs": runs,
        "params": params,
        "artifacts": artifacts,
        "scalars": scalars,
        "durations": durations,
        "longest": longest,
        "link": link,
    }


def _number(text: str | None, what: str) -> float | None:
    if text in (None, ""):
        return None
    try:
        return float(str(text))
    except ValueError:
        raise PageError(400, f"bad {what} {text!r}: give a number") from None


def search_page(reader: Reader, link: Linker, params: Mapping[str, Any]) -> dict[str, Any]:
    """``/search?flow=F&artifact=NAME&value=V`` (or ``min``/``max``): matching tasks."""
    flow = params.get("flow") or ""
    name = params.get("artifact") or ""
    value = params.get("value")
    low, high = _number(params.get("min"), "min"), _number(params.get("max"), "max")
    before = parse_cursor(params.get("before_ts"), params.get("before_id"))
    ctx: dict[str, Any] = {
        "title": "Search",
        "flows": [f["flow"] for f in reader.flows()] if not flow else [],
        "flow": flow, "artifact": name, "value": value or "",
        "min": params.get("min") or "", "max": params.get("max") or "",
        "hits": None, "older": None, "link": link,
    }  # fmt: skip
    if not (flow and name):
        if not ctx["flows"]:
            ctx["flows"] = [f["flow"] for f in reader.flows()]
        return ctx
    if not reader.flow_exists(flow):
        raise PageError(404, f"no flow {flow!r} in this file")
    hits, end = reader.search(flow, name, value=value, low=low, high=high, before=before)
    ctx["hits"] = hits
    if end is not None:
        keep = {k: params.get(k) for k in ("flow", "artifact", "value", "min", "max")}
        ctx["older"] = link.search(**keep, before_ts=end[0], before_id=end[1])
    return ctx
