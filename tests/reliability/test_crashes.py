"""SIGKILL at random moments (issue 7, "Crashes").

A warm helper process forks one runtime per trial (the real ``run``/``resume`` CLI,
without paying for a new interpreter each time) and SIGKILLs it after a random delay:
while a task runs, while a big artifact is pickled and written, or while a transaction
commits. After every kill the file passes the integrity and sha checks, every run that
had ended before is unchanged, and the killed run reads as not finished; ``resume``
completes a subset of them.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.flowfiles import run_python

from .conftest import check_file, flow_env, sql, verify_cli, write_flow

TRIALS = 60
#: Kills that must land inside a run (the killed run then reads as not finished).
KILLS_INSIDE = 50
MAX_TRIALS = 130
RESUMES = 10

#: Reads one JSON command per line: {"args": [...], "env": {...}, "kill_after": s|null}.
#: Forks the flow's CLI (the runtime process), optionally SIGKILLs it after the delay,
#: and answers {"code": exit code or -9, "run_id": id or null}.
SERVER = textwrap.dedent(
    """
    import importlib.util, json, os, sys, time, traceback
    flow_path, db, logdir = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = importlib.util.spec_from_file_location("small_flow", flow_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from mfstore.runtime.cli import main
    import mfstore.client
    for n, line in enumerate(sys.stdin):
        cmd = json.loads(line)
        id_file = os.path.join(logdir, "%d.runid" % n)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.update(cmd["env"])
                out = os.open(os.path.join(logdir, "%d.out" % n), os.O_WRONLY | os.O_CREAT)
                os.dup2(out, 1)
                os.dup2(out, 2)
                sys.argv = [flow_path, "--mfdb", db, *cmd["args"], "--run-id-file", id_file]
                main(mod.SmallFlow)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        if cmd["kill_after"] is not None:
            if cmd.get("from_run_start"):  # time the kill from the moment the run exists
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
                    if os.path.exists(id_file) and os.path.getsize(id_file):
                        break
                    time.sleep(0.002)
            time.sleep(cmd["kill_after"])
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        run_id = open(id_file).read() if os.path.exists(id_file) else None
        print(json.dumps({"code": os.waitstatus_to_exitcode(status), "run_id": run_id}), flush=True)
    """
)


class Runtime:
    def __init__(self, tmp_path: Path, db: Path) -> None:
        flow = write_flow(tmp_path)
        (tmp_path / "server.py").write_text(SERVER)
        logs = tmp_path / "logs"
        logs.mkdir()
        self.logs = logs
        self.n = 0
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", str(flow), str(db), str(logs)],
            cwd=tmp_path,
            env=flow_env(db),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(
        self, *args: str, kill_after: float | None = None, from_run_start: bool = True, **env: str
    ) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(
            json.dumps(
                {
                    "args": list(args),
                    "env": env,
                    "kill_after": kill_after,
                    "from_run_start": from_run_start,
                }
            )
            + "\n"
        )
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        answer["log"] = (self.logs / (f"{self.n}.out")).read_text()
        self.n += 1
        return answer

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _ended_runs(db: Path) -> dict[str, tuple]:
    """Every ended run with a fingerprint of what it holds."""
    rows = sql(
        db,
        "SELECT r.run_number, r.status, r.finished_at, "
        "(SELECT group_concat(x, ',') FROM (SELECT t.step_name || '/' || t.task_id || ':' || a.attempt || ':' || "
        "  coalesce(a.success, '-') || ':' || a.ended_at AS x FROM tasks t JOIN attempts a ON a.task_pk = t.task_pk "
        "  WHERE t.run_pk = r.run_pk ORDER BY x)), "
        "(SELECT group_concat(y, ',') FROM (SELECT t.step_name || '/' || t.task_id || '/' || ar.name || '=' "
        "  || lower(hex(b.sha)) AS y FROM tasks t JOIN artifacts ar ON ar.task_pk = t.task_pk "
        "  JOIN blobs b ON b.blob_id = ar.blob_id WHERE t.run_pk = r.run_pk ORDER BY y)) "
        "FROM runs r WHERE r.status != 'running'",
    )
    return {row[0]: row[1:] for row in rows}


def test_sigkill_runtime_at_random_moments(tmp_path: Path, client_db) -> None:
    db = tmp_path / "crash.mfdb"
    rng = random.Random(7)
    runtime = Runtime(tmp_path, db)
    import mfstore

    killed: list[str] = []
    resumable: list[str] = []  # killed after the _parameters task was recorded
    kinds = {"task": 0, "artifact": 0, "anywhere": 0}
    try:
        assert runtime("run")["code"] == 0  # one finished run to protect from the start
        trial = 0
        # Trials go on until KILLS_INSIDE kills have landed inside a run (timing decides
        # where a kill lands), bounded by MAX_TRIALS.
        while trial < TRIALS or (len(killed) < KILLS_INSIDE and trial < MAX_TRIALS):
            trial += 1
            before = _ended_runs(db)
            kind = ("task", "artifact", "anywhere")[trial % 3]
            kinds[kind] += 1
            # a short pause in every step keeps runs long enough for most kills to land inside
            env = {"REL_SLEEP": f"{rng.uniform(0.02, 0.05):.3f}"}
            if kind == "task":
                env["REL_SLEEP"] = f"{rng.uniform(0.02, 0.1):.3f}"
                delay = rng.uniform(0.02, 0.3)
            elif kind == "artifact":
                env["REL_BIG"] = str(rng.randrange(1, 5) * 1024 * 1024)
                delay = rng.uniform(0.05, 0.5)
            else:
                delay = rng.uniform(0.05, 0.3)
            # "anywhere" kills are timed from fork(), so some land before the run begins
            answer = runtime("run", kill_after=delay, from_run_start=kind != "anywhere", **env)
            check_file(db)
            after = _ended_runs(db)
            # runs that had ended before the kill are untouched
            assert {k: after[k] for k in before} == before
            run_id = (
                answer["run_id"] or None
            )  # killed before the run began (or mid-write of the id file)
            if answer["code"] == -signal.SIGKILL and run_id is not None and run_id not in after:
                assert sql(db, "SELECT status FROM runs WHERE run_number = ?", (run_id,)) == [
                    ("running",)
                ], (trial, answer)
                killed.append(run_id)
                if sql(
                    db,
                    "SELECT 1 FROM tasks t JOIN runs r ON r.run_pk = t.run_pk WHERE r.run_number = ? "
                    "AND t.step_name = '_parameters' AND EXISTS (SELECT 1 FROM attempts a WHERE a.task_pk = t.task_pk "
                    "AND a.ended_at IS NOT NULL)",
                    (run_id,),
                ):
                    resumable.append(run_id)
                client_db(db)
                run = mfstore.Run(f"SmallFlow/{run_id}")
                assert run.finished is False and run.successful is False
                assert sql(db, "SELECT status FROM runs WHERE run_number = ?", (run_id,)) == [
                    ("running",)
                ]
            else:
                # killed before the run began, or it had already ended
                assert answer["code"] in (0, -signal.SIGKILL), answer["log"]
        assert len(killed) >= KILLS_INSIDE, (trial, killed)
        assert len(resumable) >= RESUMES, resumable
        verify_cli(db)

        # resume completes killed runs (a subset, to keep time)
        for run_id in resumable[:RESUMES]:
            answer = runtime("resume", "--origin-run-id", run_id)
            assert answer["code"] == 0, answer["log"]
            client_db(db)
            new = mfstore.Run("SmallFlow/{}".format(answer["run_id"]))
            assert (
                new.successful and new.finished and new.data.total == 14 and new.data.done is True
            )
            assert new.origin_pathspec == f"SmallFlow/{run_id}"
            assert (
                mfstore.Run(f"SmallFlow/{run_id}").finished is False
            )  # the origin stays as it was
        check_file(db)
    finally:
        runtime.close()
    print(
        f"crash trials: {trial}, killed inside a run: {len(killed)}, by kind: {kinds}, "
        f"resumed: {min(RESUMES, len(resumable))}"
    )


def test_killed_task_process_fails_the_task_cleanly(tmp_path: Path, client_db) -> None:
    flow = write_flow(tmp_path)
    db = tmp_path / "taskkill.mfdb"
    run_python([flow, "--mfdb", db, "run"], tmp_path, flow_env(db), timeout=120)
    before = _ended_runs(db)
    cp = run_python(
        [flow, "--mfdb", db, "run"],
        tmp_path,
        flow_env(db, REL_SELF_KILL="work"),
        timeout=120,
        check=False,
    )
    assert cp.returncode == 1
    assert "Task process was killed by signal 9" in cp.stdout
    assert "Step work (task-id" in cp.stderr and "failed" in cp.stderr
    assert "Traceback" not in cp.stderr
    check_file(db)
    after = _ended_runs(db)
    assert {k: after[k] for k in before} == before
    (failed_id,) = [k for k, v in after.items() if v[0] == "failed"]
    import mfstore

    client_db(db)
    run = mfstore.Run(f"SmallFlow/{failed_id}")
    assert run.successful is False
    assert run.finished is True  # mfstore: ended (failed), see README "Differences"
    tasks = list(run["work"])
    assert tasks and all(not t.successful for t in tasks if t.finished)
    assert any(t.finished and not t.successful for t in tasks)
    assert run.end_task is None
