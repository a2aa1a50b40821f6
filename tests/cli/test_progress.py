"""Progress of long commands: ``delete`` and ``stats`` report determinate progress
(done/total) through ``mfstore.sharing``; the command line draws it as a rich bar on
stderr only when stderr is a terminal (a real pseudo-terminal here), never when piped."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mfstore import sharing

from .conftest import mfstore_process


def calls_of(fn, *args, **kw) -> tuple[object, list[tuple[int, int, str]]]:
    """``fn(*args, progress=...)``'s result and every progress call it made."""
    seen: list[tuple[int, int, str]] = []
    result = fn(*args, progress=lambda done, total, what: seen.append((done, total, what)), **kw)
    return result, seen


def assert_determinate(seen: list[tuple[int, int, str]], total: int) -> None:
    assert seen, "no progress reported"
    assert {t for _d, t, _w in seen} == {total}  # the total is known from the first call
    done = [d for d, _t, _w in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    assert seen[-1][2] == "done"


def test_delete_reports_each_run_then_each_phase(small_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.mfdb"
    shutil.copy(small_db, db)
    f = sharing.RunFilter(pathspecs=["PipeFlow/1", "PipeFlow/2"])
    planned, seen = calls_of(sharing.delete, db, f, dry_run=True)
    assert_determinate(seen, 2)  # a dry run: one step per run counted
    assert planned.runs == ["PipeFlow/1", "PipeFlow/2"]
    report, seen = calls_of(sharing.delete, db, f)
    assert_determinate(seen, 2 + 3)  # + delete, garbage collection, compaction
    assert [w for _d, _t, w in seen[2:]] == [
        "deleting runs",
        "removing unreferenced blobs",
        "compacting the file",
        "done",
    ]
    assert report.runs == ["PipeFlow/1", "PipeFlow/2"] and report.tasks == 2


def test_stats_reports_each_count(small_db: Path) -> None:
    result, seen = calls_of(sharing.stats, small_db)
    assert_determinate(seen, 5)
    assert [w for _d, _t, w in seen] == ["runs", "tasks", "artifacts", "blobs", "log lines", "done"]
    assert result["runs"] == 3


def on_a_terminal(*args: str) -> tuple[int, str, str]:
    """``mfstore ARGS`` with stderr on a pseudo-terminal: (status, stdout, terminal text)."""
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120")
    env.pop("MFSTORE_DB", None)
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "mfstore", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen.append(data)
    os.close(master)
    assert child.stdout is not None
    out = child.stdout.read().decode()
    code = child.wait(timeout=600)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(seen).decode("utf-8", "replace"))
    return code, out, text


def test_delete_and_stats_draw_a_determinate_bar_on_a_terminal(
    small_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "d.mfdb"
    shutil.copy(small_db, db)
    code, out, term = on_a_terminal("delete", "PipeFlow/1", "--yes", "--mfdb", str(db))
    assert code == 0 and out.startswith("deleted 1 runs")
    assert "delete: planning" in term and "1/1" in term  # the plan counts one run
    assert re.search(r"delete\s.*4/4.*done", term)  # 1 run + 3 phases, drawn to the end
    code, out, term = on_a_terminal("stats", "--mfdb", str(db))
    assert code == 0 and out.splitlines()[1].startswith("PipeFlow\t2\t")
    assert re.search(r"stats\s.*5/5.*done", term)


def test_delete_and_stats_print_no_progress_when_piped(small_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.mfdb"
    shutil.copy(small_db, db)
    p = mfstore_process("delete", "PipeFlow/1", "--yes", "--mfdb", str(db))
    assert p.returncode == 0 and p.stderr == "" and p.stdout.startswith("deleted 1 runs")
    p = mfstore_process("stats", "--mfdb", str(db))
    assert p.returncode == 0 and "\x1b" not in p.stdout + p.stderr and "/5" not in p.stderr
