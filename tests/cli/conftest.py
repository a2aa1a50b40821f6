"""Files for the command-line tests: a small file with hostile values, and a generated
100,000-run flow for paging and streaming (built once per session through Writer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mfstore.store import Store
from mfstore.writer import Writer, prepare_artifacts

#: Tags that must print literally: rich markup, a hyperlink, terminal control sequences.
MARKUP_TAGS = ["[/x]", "[link=https://example.com]click[/link]", "[bold red]loud"]
CONTROL_TAGS = ["osc\x1b]0;pwned\x07", "clear\x1b[2J", "tab\tand\nnewline", "c1\x9bcsi"]
#: A log line with a colour sequence and a clear-screen.
CONTROL_LOG = "\x1b[31mred\x1b[0m \x1b[2J done"
BIG_RUNS = 100_000
BASE_MS = 1_700_000_000_000


def _task(w: Writer, run, step: str, task_id: str, t0: int, attempts: int, artifacts: dict):
    task = w.add_task(run, step, task_id, ts_epoch=t0)
    for attempt in range(attempts):
        w.begin_attempt(task, attempt, ts_epoch=t0 + attempt)
        w.add_log_lines(task, attempt, "stdout", [((t0 + attempt) * 1000, f"attempt {attempt}")])
        if attempt == attempts - 1:
            w.add_log_lines(task, attempt, "stderr", [((t0 + attempt) * 1000 + 1, CONTROL_LOG)])
        last = attempt == attempts - 1
        w.end_attempt(
            task,
            attempt,
            artifacts=prepare_artifacts(artifacts),
            task_ok=last,
            success=last,
            ts_epoch=t0 + attempt + 1,
        )


@pytest.fixture(scope="session")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PipeFlow: run 1 (alice, markup tags), run 2 (bob, control-character tags, a task
    with 2 attempts and internal artifacts), run 3 (alice, still running)."""
    path = tmp_path_factory.mktemp("cli") / "small.mfdb"
    with Store(path, create=True) as store:
        w = Writer(store)
        for n, (user, tags) in enumerate(
            [("alice", MARKUP_TAGS), ("bob", CONTROL_TAGS), ("alice", ["exp"])], start=1
        ):
            t0 = BASE_MS + n * 60_000
            run = w.begin_run(
                "PipeFlow",
                user_name=user,
                user_tags=tags,
                system_tags=[f"user:{user}", "runtime:dev"],
                run_number=str(n),
                ts_epoch=t0,
            )
            arts = {"x": n, "label": f"[bold]{n}[/bold]", "_internal": True}
            _task(w, run, "start", "1", t0, 2 if n == 2 else 1, arts)
            if n < 3:
                w.end_run(run, successful=n == 1, ts_epoch=t0 + 10_000, checkpoint=False)
        store.checkpoint()
    return path


@pytest.fixture(scope="session")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BigFlow with 100,000 runs 1 s apart (run ids 0..99999, newest = 99999); every 10th
    carries the tag ``tenth``."""
    path = tmp_path_factory.mktemp("cli_big") / "big.mfdb"
    with Store(path, create=True) as store:
        w = Writer(store)
        for start in range(0, BIG_RUNS, 20_000):
            with store.write():
                for i in range(start, start + 20_000):
                    run = w.begin_run(
                        "BigFlow",
                        user_name=f"user{i % 4}",
                        user_tags=["tenth"] if i % 10 == 0 else [],
                        system_tags=[f"user:user{i % 4}"],
                        run_number=str(i),
                        ts_epoch=BASE_MS + i * 1000,
                    )
                    w.end_run(
                        run, successful=True, ts_epoch=BASE_MS + i * 1000 + 5, checkpoint=False
                    )
        store.checkpoint()
    return path


def mfstore_process(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    """``mfstore ARGS`` in a child process with stdout and stderr piped (not a terminal)."""
    env = dict(os.environ, COLUMNS="80")
    env.pop("MFSTORE_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "mfstore", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        env=env,
        timeout=600,
        **kw,
    )
