"""Hostile files, built the way an attacker would: a real mfstore file, then edited with
a stock SQLite connection (nothing of mfstore's own write path)."""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from pathlib import Path

from click.testing import Result

from tests.helpers import mfstore_cli


class RunsCode:
    """Pickles to ``os.system("touch MARKER")``: loading it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(RunsCode(marker), protocol=4)


def digest(path: Path) -> str:
    """Content of a file and of its -wal/-journal, and which files sit beside it (the
    -shm is SQLite's shared memory, not content: only its presence counts)."""
    h = hashlib.sha256()
    for p in sorted(path.parent.iterdir()):
        if p.name.startswith(path.name):
            h.update(p.name.encode())
            if not p.name.endswith("-shm"):
                h.update(p.read_bytes())
    return h.hexdigest()


def build_file(path: Path, *, flow: str = "SharedFlow", user: str = "mallory", runs: int = 1):
    """A clean mfstore file with ``runs`` finished runs (start -> end, plain artifacts)."""
    from mfstore.artifacts import prepare_artifacts
    from mfstore.store import Store
    from mfstore.writer import MetadataEntry, Writer

    graph = {
        "start_step": "start",
        "end_step": "end",
        "steps": {
            "start": {"type": "linear", "next": ["end"]},
            "end": {"type": "end", "next": []},
        },
    }
    refs = []
    with Store(path, create=True) as store:
        w = Writer(store)
        for i in range(runs):
            run = w.begin_run(
                flow, user_name=user, user_tags=["shared"], system_tags=[f"user:{user}"]
            )
            for step in ("start", "end"):
                task = w.add_task(run, step, metadata=[MetadataEntry("note", f"{step} {i}")])
                w.begin_attempt(task, 0)
                w.add_log_lines(task, 0, "stdout", [(int(time.time() * 1e6), f"{step} says hi")])
                arts = prepare_artifacts({"x": i, "_graph_info": graph, "_task_ok": True})
                w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
            w.end_run(run, successful=True)
            refs.append(run)
        store.checkpoint()
    # As received: a copied file has nothing beside it.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return refs


def cli(*args: str) -> Result:
    """``mfstore ARGS`` as click runs it: exceptions caught (``one_line_error`` checks
    there is none), CliRunner's own terminal width."""
    return mfstore_cli(*args, columns=None, catch_exceptions=True)


def one_line_error(result: Result) -> str:
    """The error output of a failed command: exactly one line, no traceback."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]
