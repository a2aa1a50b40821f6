"""A small, fully known .mfdb for the SQL views, the cookbook and the browse commands.

``build(path)`` writes it with ``Writer`` (the documented write API). Times are
relative to now (so "this week" questions have stable answers) except ``OLD_RUN``.
"""

from __future__ import annotations

import time
from pathlib import Path

from mfstore.artifacts import prepare_artifacts
from mfstore.store import Store
from mfstore.writer import MetadataEntry, Writer

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: TrainFlow runs: run id -> (user, user tags, status, accuracy at 'end' or None, days ago).
TRAIN_RUNS = {
    "101": ("alice", ["exp", "lr-0.1"], "successful", 0.81, 3),
    "102": ("alice", ["exp", "gpu"], "successful", 0.93, 2),
    "103": ("bob", ["gpu"], "failed", None, 2),
    "104": ("bob", ["exp", "gpu"], "successful", 0.88, 1),
    "90": ("bob", ["gpu"], "failed", None, 30),
}
#: Learning rate per TrainFlow run (a dict artifact 'params' = {"lr": ..., "epochs": 3}).
LR = {"101": 0.1, "102": 0.01, "103": 0.01, "104": 0.05, "90": 0.1}
OLD_RUN = "90"
#: ForeachFlow: one successful run of carol with 3 work tasks, one run still running.
ITEMS = ["a", "bb", "ccc"]
TRAIN_STEPS = ["start", "train", "end"]


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def build(path: Path, *, now_ms: int | None = None) -> Path:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    with Store(path, create=True) as store:
        w = Writer(store)
        for run_id, (user, tags, status, acc, days) in TRAIN_RUNS.items():
            _train_run(w, run_id, user, tags, status, acc, now - days * DAY_MS)
        _foreach_run(w, "201", now - DAY_MS, finished=True)
        _foreach_run(w, "202", now - HOUR_MS, finished=False)
        store.checkpoint()
    return path


def _task(w, run, step, task_id, t0, *, artifacts, ok=True, attempts=1, logs=(), metadata=()):
    task = w.add_task(run, step, task_id, ts_epoch=t0, metadata=metadata)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        start = t0 + attempt * 60_000
        w.begin_attempt(task, attempt, ts_epoch=start)
        for stream, text in logs:
            w.add_log_lines(task, attempt, stream, [(start * 1000 + 1, text)])
        good = ok and last
        w.end_attempt(
            task,
            attempt,
            artifacts=prepare_artifacts(artifacts if good else {"partial": attempt}),
            task_ok=good,
            success=good,
            ts_epoch=start + 30_000,
        )
    return task


def _train_run(w, run_id, user, tags, status, acc, t0):
    run = w.begin_run(
        "TrainFlow",
        user_name=user,
        user_tags=tags,
        system_tags=["user:" + user, "runtime:dev"],
        run_number=run_id,
        ts_epoch=t0,
    )
    params = {"lr": LR[run_id], "epochs": 3}
    _task(
        w,
        run,
        "start",
        "1",
        t0,
        artifacts={"params": params, "dataset": "iris"},
        logs=[("stdout", "loading iris")],
    )
    failed = status == "failed"
    train_art = {"params": params, "dataset": "iris", "accuracy": acc, "model": {1, 2}}
    _task(
        w,
        run,
        "train",
        "2",
        t0 + 60_000,
        artifacts=train_art,
        ok=not failed,
        attempts=2 if failed else 1,
        logs=[("stdout", f"training lr={LR[run_id]}")]
        + ([("stderr", "ValueError: diverged")] if failed else []),
    )
    if not failed:
        _task(
            w,
            run,
            "end",
            "3",
            t0 + 300_000,
            artifacts={"accuracy": acc, "params": params, "dataset": "iris"},
        )
    w.end_run(
        run,
        successful=not failed,
        ts_epoch=t0 + (360_000 if not failed else 200_000),
        checkpoint=False,
    )


def _foreach_run(w, run_id, t0, *, finished):
    run = w.begin_run(
        "ForeachFlow", user_name="carol", system_tags=["user:carol"], run_number=run_id, ts_epoch=t0
    )
    _task(w, run, "start", "1", t0, artifacts={"items": ITEMS})
    for i, item in enumerate(ITEMS):
        meta = [
            MetadataEntry("foreach-stack", [f"items={item}"], ts_epoch=t0),
            MetadataEntry("foreach-execution-path", f"work:{i}", ts_epoch=t0),
        ]
        if finished:
            _task(
                w,
                run,
                "work",
                str(2 + i),
                t0 + 1000 * (i + 1),
                artifacts={"item": item, "sq": i * i},
                metadata=meta,
                logs=[("stdout", f"work {i} {item}")],
            )
        else:
            task = w.add_task(run, "work", str(2 + i), ts_epoch=t0 + 1000, metadata=meta)
            w.begin_attempt(task, 0, ts_epoch=t0 + 1000)
    if finished:
        _task(
            w,
            run,
            "join",
            "5",
            t0 + 10_000,
            artifacts={"total": sum(i * i for i in range(len(ITEMS)))},
        )
        _task(w, run, "end", "6", t0 + 20_000, artifacts={"total": 5})
        w.end_run(run, successful=True, ts_epoch=t0 + 30_000, checkpoint=False)


if __name__ == "__main__":  # python -m tests.sql.fixture cookbook.mfdb (docs/sql.md)
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "cookbook.mfdb")
    if target.exists():
        raise SystemExit(f"{target} exists: choose a new file name")
    print(build(target))
