"""Many writers and readers on one file at once (issue 7, "Concurrency").

8 processes each run SmallFlow 25 times with the real runtime (each run forked from a
warm worker, so 200 runs fit in the time budget) while 2 processes read the file in a
loop through the Client API. Afterwards every run is present and complete, no reader
ever saw a successful task without its artifacts, and nobody's stderr mentions a lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import (
    EXPECTED_ARTIFACTS,
    EXPECTED_TASKS,
    check_file,
    flow_env,
    sql,
    verify_cli,
    write_flow,
)

WRITERS = 8
RUNS_PER_WRITER = 25
READERS = 2

WRITER = textwrap.dedent(
    """
    import importlib.util, json, os, sys, traceback
    flow_path, db, n, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    spec = importlib.util.spec_from_file_location("small_flow", flow_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from mfstore.runtime.cli import main
    import mfstore.client  # warm: every forked run reuses the imports
    codes = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                out = os.open(log + ".out", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                err = os.open(log + ".err", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                os.dup2(out, 1)
                os.dup2(err, 2)
                sys.argv = [flow_path, "--mfdb", db, "run", "--max-workers", "3"]
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
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    print(json.dumps(codes))
    """
)

READER = textwrap.dedent(
    """
    import json, os, random, sys, time, traceback
    db, stop = sys.argv[1], sys.argv[2]
    from mfstore import Flow, metadata, namespace
    from mfstore.exception import MetaflowNotFound
    metadata(db)
    namespace(None)
    expected_tasks = %r
    expected_artifacts = %r
    values = {"start": ("items", [1, 2, 3]), "join": ("total", 14), "end": ("done", True)}
    violations = []
    stats = {"loops": 0, "runs": 0, "successful_tasks": 0}

    def check_run(run):
        stats["runs"] += 1
        steps = {s.id: s for s in run}
        for name, step in steps.items():
            for task in step:
                ok = task.successful
                names = {a.id for a in task}
                if ok:
                    stats["successful_tasks"] += 1
                    if not task.finished:
                        violations.append("%%s successful but not finished" %% task.pathspec)
                    missing = expected_artifacts[name] - names
                    if missing:
                        violations.append("%%s successful without %%s" %% (task.pathspec, sorted(missing)))
                    elif name in values:
                        art, want = values[name]
                        if task[art].data != want:
                            violations.append("%%s: %%s != %%r" %% (task.pathspec, art, want))
                    elif task["sq"].data not in (1, 4, 9):
                        violations.append("%%s: bad sq" %% task.pathspec)
        if run.successful:
            got = {name: len(list(step)) for name, step in steps.items()}
            if got != expected_tasks:
                violations.append("%%s successful with tasks %%s" %% (run.pathspec, got))

    deadline = time.time() + 900  # a reader stops by itself even if the test died
    while not os.path.exists(stop) and time.time() < deadline:
        stats["loops"] += 1
        try:
            flow = Flow("SmallFlow")
        except MetaflowNotFound:
            continue
        try:
            latest = flow.latest_run
            runs = list(flow)
            sample = [latest] + random.sample(runs, min(2, len(runs)))
            for run in sample:
                if run is not None:
                    check_run(run)
        except Exception:
            violations.append(traceback.format_exc())
    print(json.dumps({"violations": violations, **stats}))
    """
) % (EXPECTED_TASKS, EXPECTED_ARTIFACTS)

ALLOWED_STDERR = (
    "mfstore 0.1.0 executing SmallFlow for user:tester",
    "Validating your flow...",
    "    The graph looks good!",
)


def _allowed(line: str) -> bool:
    # A run whose end-of-run checkpoint lost to the readers and the other writers for
    # its whole wait says so (correct under this load; not a lock error).
    return line in ALLOWED_STDERR or (
        line.startswith("Run SmallFlow/") and "write-ahead log (another program held" in line
    )


def _bad_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not _allowed(line)]


def test_eight_writers_two_readers_every_run_complete(tmp_path: Path) -> None:
    from mfstore.store import Store

    flow = write_flow(tmp_path)
    db = tmp_path / "shared.mfdb"
    Store(db, create=True).close()  # readers open an existing file
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    env = flow_env(db)
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "reader.py", str(db), str(stop)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(READERS)
    ]
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "writer.py",
                str(flow),
                str(db),
                str(RUNS_PER_WRITER),
                str(tmp_path / (f"w{i}")),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    try:
        outs = [w.communicate(timeout=1200) for w in writers]  # a safety net only
        stop.write_text("")
        reads = [r.communicate(timeout=120) for r in readers]
    finally:
        stop.write_text("")
        for p in readers + writers:
            if p.poll() is None:
                p.kill()

    for i, (out, err) in enumerate(outs):
        assert writers[i].returncode == 0, err
        assert json.loads(out) == [0] * RUNS_PER_WRITER, (
            out,
            (tmp_path / (f"w{i}.err")).read_text()[-3000:],
        )
        assert err == ""
        run_err = (tmp_path / (f"w{i}.err")).read_text()
        assert _bad_lines(run_err) == [], run_err[-3000:]
        assert "locked" not in (tmp_path / (f"w{i}.out")).read_text()
    for r, (out, err) in zip(readers, reads, strict=True):
        assert r.returncode == 0 and err == "", err
        report = json.loads(out)
        assert report["violations"] == []
        assert report["runs"] > 0 and report["successful_tasks"] > 0, report

    check_file(db)
    verify_cli(db)
    n = WRITERS * RUNS_PER_WRITER
    assert sql(db, "SELECT status, count(*) FROM runs GROUP BY status") == [("successful", n)]
    # every run: each step with its tasks, each task's single attempt successful with its artifacts
    per_step = sql(
        db,
        "SELECT t.step_name, count(*) FROM tasks t JOIN attempts a ON a.task_pk = t.task_pk "
        "WHERE a.success = 1 AND a.ended_at IS NOT NULL GROUP BY t.step_name",
    )
    assert dict(per_step) == {**{k: v * n for k, v in EXPECTED_TASKS.items()}, "_parameters": n}
    for step, names in EXPECTED_ARTIFACTS.items():
        for name in names:
            assert sql(
                db,
                "SELECT count(*) FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk "
                "WHERE t.step_name = ? AND a.name = ?",
                (step, name),
            ) == [(EXPECTED_TASKS[step] * n,)]
    assert sql(db, "SELECT DISTINCT value FROM mf_artifacts WHERE name = 'total'") == [(14,)]

    # and the Client API agrees
    import mfstore
    from mfstore import provider

    provider.reset()
    mfstore.metadata(str(db))
    mfstore.namespace(None)
    try:
        runs = list(mfstore.Flow("SmallFlow"))
        assert len(runs) == n and len({r.id for r in runs}) == n
        assert all(r.successful and r.finished and r.data.done for r in runs)
    finally:
        provider.reset()
        provider.default_metadata()


TAGGER = textwrap.dedent(
    """
    import json, random, sys
    db, pathspec, me, edits = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    from mfstore import Run, metadata, namespace
    metadata(db)
    namespace(None)
    rng = random.Random(me)
    pool = ["%s-%d" % (me, i) for i in range(15)]
    model = set()
    errors = []
    for _ in range(edits):
        run = Run(pathspec)
        tag = rng.choice(pool)
        kind = rng.random()
        if kind < 0.2:
            other = rng.choice(pool)
            run.replace_tag(tag, other)
            model.discard(tag)
            model.add(other)
        elif tag in model:
            run.remove_tag(tag)
            model.discard(tag)
        else:
            run.add_tag(tag)
            model.add(tag)
        mine = {t for t in run.user_tags if t.startswith(me + "-")}
        if mine != model:
            errors.append([sorted(mine), sorted(model)])
    print(json.dumps({"model": sorted(model), "errors": errors}))
    """
)


def test_tag_edits_from_two_processes_are_never_lost(tmp_path: Path) -> None:
    from mfstore.store import Store
    from mfstore.writer import Writer

    db = tmp_path / "tags.mfdb"
    with Store(db, create=True) as store:
        run = Writer(store).begin_run(
            "TagFlow", user_name="tester", user_tags=["keep"], system_tags=["user:tester"]
        )
    (tmp_path / "tagger.py").write_text(TAGGER)
    env = flow_env(db)
    procs = [
        subprocess.Popen(
            [sys.executable, "tagger.py", str(db), run.pathspec, me, "150"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in ("a", "b")
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and err == "", err
        results.append(json.loads(out))
    for r in results:
        assert r["errors"] == []  # each process always read its own edits back
    expected = {"keep", *results[0]["model"], *results[1]["model"]}
    tags = sql(
        db, "SELECT tag FROM mf_run_tags WHERE pathspec = ? AND kind = 'user'", (run.pathspec,)
    )
    assert {t for (t,) in tags} == expected
    # every effective edit is recorded, none twice
    assert sql(db, "SELECT count(*) FROM tag_events")[0][0] > 0
    check_file(db)
