"""SIGKILL a writer while it commits large transactions: everything it had committed stays,
nothing half-written is visible, and the file stays valid.

The child writes task attempts with an 8 MiB incompressible artifact each, so most of its
time is spent inside ``end_attempt``'s transaction (inserting blob pages and committing).
It prints ``writing <task>`` right before that transaction and ``committed <task>`` after
it; trials go on until enough kills landed between the two (counted, as the crash test
does), so the test does not depend on how fast a loaded machine runs the child.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mfstore
from mfstore.blobs import get_blob
from mfstore.store import Store

CHILD = textwrap.dedent(
    """
    import os, sys
    from mfstore.store import Store
    from mfstore.writer import Writer
    from mfstore.artifacts import prepare_artifacts

    store = Store(sys.argv[1], create=True)
    w = Writer(store)
    run = w.begin_run("KillFlow", user_name="u", system_tags=["user:u"])
    # one string per print: print(a, b) writes each piece separately when stdout is
    # unbuffered (PYTHONUNBUFFERED), so a kill could cut a line between its words
    print(f"run {run.run_number}", flush=True)
    for i in range(1_000):  # bounded: at most ~8 GiB if the parent never kills it
        task = w.add_task(run, "work")
        w.begin_attempt(task, 0)
        arts = prepare_artifacts({"blob": os.urandom(8 << 20), "i": i})
        print(f"writing {task.task_id}", flush=True)
        w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
        print(f"committed {task.task_id}", flush=True)
    """
)

#: Kills that must land inside a write transaction (between "writing" and "committed").
KILLS_INSIDE = 10
#: Bound on trials (a kill that lands elsewhere just does not count).
MAX_TRIALS = 60


def test_sigkill_during_commits_keeps_every_committed_attempt(tmp_path: Path) -> None:
    rng = random.Random(11)
    db = tmp_path / "kill.mfdb"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    committed_total = 0
    inside = 0
    # the child imports the same mfstore as this test (installed, or the checkout)
    env = dict(os.environ, PYTHONPATH=str(Path(mfstore.__file__).resolve().parent.parent))
    for trial in range(MAX_TRIALS):
        if inside >= KILLS_INSIDE:
            break
        child = subprocess.Popen(
            [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline()  # the run exists: kills now land among task writes
            assert first.startswith("run "), first
            seen = []
            for _ in range(rng.randrange(1, 4)):  # into the 1st..3rd write transaction
                line = child.stdout.readline()
                while line.startswith("committed "):
                    seen.append(line)
                    line = child.stdout.readline()
                assert line.startswith("writing "), line
                seen.append(line)
            time.sleep(rng.uniform(0, 0.03))
        finally:  # never left writing 8 MiB blobs after a failed assertion
            child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=600)
        assert child.returncode == -signal.SIGKILL
        lines = [*seen, *out.splitlines(keepends=True)]
        if lines[-1].startswith("writing "):
            inside += 1  # killed between BEGIN-ish and the commit's return
        # only whole lines count: a line without its newline is one the kill cut short
        committed = [
            line.split()[1]
            for line in lines
            if line.startswith("committed ") and line.endswith("\n")
        ]
        committed_total += len(committed)
        run_number = first.split()[1]

        store = Store(db)
        try:
            assert store.scalar("PRAGMA integrity_check") == "ok"
            run_pk = store.scalar("SELECT run_pk FROM runs WHERE run_number = ?", (run_number,))
            assert store.scalar("SELECT status FROM runs WHERE run_pk = ?", (run_pk,)) == "running"
            rows = store.query(
                "SELECT t.task_id, a.ended_at, a.success FROM tasks t LEFT JOIN attempts a ON a.task_pk = t.task_pk "
                "WHERE t.run_pk = ?",
                (run_pk,),
            )
            ended = {task_id for task_id, ended_at, _ in rows if ended_at is not None}
            # every attempt the writer saw committed is there, ended and successful
            assert set(committed) <= ended, (trial, committed, ended)
            for task_id, ended_at, success in rows:
                names = {
                    name: sha
                    for name, sha in store.query(
                        "SELECT a.name, lower(hex(b.sha)) FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk "
                        "JOIN blobs b ON b.blob_id = a.blob_id "
                        "WHERE t.run_pk = ? AND t.task_id = ?",
                        (run_pk, task_id),
                    )
                }
                if ended_at is None:
                    # an attempt that did not end shows no artifacts at all
                    assert names == {}, (trial, task_id)
                else:
                    assert success == 1 and set(names) == {"blob", "i"}
                    assert len(get_blob(store, names["blob"], what=f"blob of {task_id}")) > 8 << 20
        finally:
            store.close()
    # the kills did land inside write transactions, among committed work
    assert inside >= KILLS_INSIDE, (inside, trial)
    assert committed_total > 0
