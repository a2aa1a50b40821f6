"""A realistic history, written through the bulk writer, and the Client figures on it.

    python -m benchmarks.history --runs 100000 [--runs 1000000] [--reps 200]

Each run of ``HistFlow`` has 3 steps: ``start`` (1 task) -> ``work`` (a foreach of 3 tasks)
-> ``end`` (the join, 1 task), plus the ``_parameters`` task: 6 tasks. Every task has
7 artifacts (``name``, ``_task_ok``, ``_success``, ``_current_step``, ``x`` (per run),
``y`` (a per-task list), ``result`` (a per-task float)), the metadata the runtime records
(attempt, user, script name, versions, ds-type/ds-root, attempt_ok/attempt-done) and 3
stdout log lines. 8 users (``user0`` .. ``user7``), user tag ``exp`` on every 3rd run,
``sometag`` on every 10th, one run in 20 failed, 1 s apart.

Prints the build time (tasks/s: the bulk Writer's throughput), the file size and the
warm medians of the Client operations the issue lists.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "benchmarks" / ".data"
FLOW = "HistFlow"
USERS = 8
WIDTH = 3
T0_MS = 1_600_000_000_000


def _user(k: int) -> str:
    return "user%d" % (k % USERS)  # noqa: UP031


def build(
    path: Path, runs: int, *, batch: int = 2000, progress: bool = True, batched: bool = True
) -> dict[str, float]:
    """Write ``runs`` runs into a new file ``path``; return seconds (wall and CPU), tasks
    and bytes. ``batched``: runs and tasks go through ``Writer.task_batch()`` (rows of
    many runs and tasks per statement), else one ``Writer.begin_run``/``end_run`` per run
    and one ``Writer.add_done_task`` call per task."""
    from mfstore.store import Store
    from mfstore.writer import MetadataEntry, Writer, prepare_artifact

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shared: dict[Any, Any] = {}
    prepare = prepare_artifact

    def art(value: Any, key: Any = None) -> Any:
        """Prepared artifact; the builder's constants are prepared once, other values
        by the batch (which remembers the values it prepared: ``x`` is the same in
        every task of a run) or one by one."""
        if key is None:
            return prepare(value)
        found = shared.get(key)
        if found is None:
            found = shared[key] = prepare_artifact(value)
        return found

    t0, c0 = time.perf_counter(), time.process_time()
    tasks = 0
    with Store(path, create=True) as store:
        w = Writer(store)
        for start in range(0, runs, batch):
            with w.bulk(), w.task_batch() as tb:
                add = tb.add if batched else w.add_done_task
                prepare = tb.prepare if batched else prepare_artifact
                for k in range(start, min(runs, start + batch)):
                    tasks += _one_run(w, add, k, art, MetadataEntry, tb if batched else None)
            if progress and (start // batch) % 25 == 0:
                el = time.perf_counter() - t0
                print(
                    "  %d runs, %.0f s, %.0f tasks/s" % (start + batch, el, tasks / el),  # noqa: UP031
                    file=sys.stderr,
                    flush=True,
                )
        store.checkpoint()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "tasks": tasks,
        "bytes": path.stat().st_size,
        "load": os.getloadavg()[0],
    }


def _one_run(w: Any, add: Any, k: int, art: Any, MetadataEntry: Any, batch: Any) -> int:
    user = _user(k)
    ts = T0_MS + k * 1000
    tags = (["exp"] if k % 3 == 0 else []) + (["sometag"] if k % 10 == 0 else [])
    run = w.begin_run(
        FLOW,
        user_name=user,
        user_tags=tags,
        system_tags=["user:" + user, "runtime:dev", "python_version:3.11.7"],
        run_number=str(k + 1),
        ts_epoch=ts,
        batch=batch,
    )
    failed = k % 20 == 19
    common = [
        ("user", user),
        ("script-name", "hist_flow.py"),
        ("python_version", "3.11.7"),
        ("platform", "Linux-6.1-x86_64"),
        ("ds-type", "mfstore"),
        ("ds-root", f"/home/{user}/project/runs.mfdb"),
    ]
    n = 0
    plan = [("_parameters", None), ("start", None)]
    plan += [("work", i) for i in range(WIDTH)]
    plan += [("end", None)]
    for tid, (step, idx) in enumerate(plan):
        t = ts + tid
        md = [MetadataEntry("attempt", "0", attempt=0, ts_epoch=t)]
        md += [MetadataEntry(f, v, attempt=0, ts_epoch=t) for f, v in common]
        if idx is not None:
            md.append(
                MetadataEntry("foreach-execution-path", "start:%d" % idx, attempt=0, ts_epoch=t)  # noqa: UP031
            )
        ok = not (failed and step == "end")
        arts = {
            "name": art(FLOW, "name"),
            "_task_ok": art(ok, ("ok", ok)),
            "_success": art(ok, ("ok", ok)),
            "_current_step": art(step, ("step", step)),
            "x": art(k),
            "y": art([k, tid, idx]),
            "result": art(k * 0.5 + tid),
        }
        add(
            run,
            step,
            str(tid),
            artifacts=arts,
            task_ok=ok,
            success=ok,
            started_at=t,
            ended_at=t + 1,
            metadata=md,
            logs=[
                ("stdout", t * 1000 + 1, f"starting {step}"),
                ("stdout", t * 1000 + 2, "x = %d" % k),  # noqa: UP031
                ("stdout", t * 1000 + 3, "done in %d ms" % (tid * 7 + 3)),  # noqa: UP031
            ],
        )
        n += 1
    w.end_run(run, successful=not failed, ts_epoch=ts + 900, checkpoint=False, batch=batch)
    return n


QUERIES = {
    "latest_run": "Flow(F).latest_run",
    "latest_successful_run": "Flow(F).latest_successful_run",
    "runs_tag": "next(Flow(F).runs('sometag'))",
    "run_data": "Run(p).data.x",
    "step_data": "[t.data.x for t in Step(p + '/work')]",
}


def worker(path: str, reps: int) -> dict[str, float]:
    """Warm medians (s) of the Client operations in namespace user:user2 (an even user:
    ``sometag`` is on every 10th run, so only even users have it)."""
    import mfstore
    from mfstore import Flow, Run, Step

    mfstore.metadata(path)
    mfstore.namespace("user:user2")
    p = Flow(FLOW).latest_run.pathspec
    env: dict[str, Any] = {"Flow": Flow, "Run": Run, "Step": Step, "F": FLOW, "p": p}
    out = {}
    for key, expr in QUERIES.items():
        code = compile(expr, key, "eval")
        eval(code, env)
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            eval(code, env)
            samples.append(time.perf_counter() - t0)
        out[key] = statistics.median(samples)
    out["ui"] = ui_run_list(path, reps)
    return out


def ui_run_list(path: str, reps: int) -> float:
    """Median server time (s) of the ``mfstore ui`` run list's newest page of the flow in
    namespace user:user2, through the whole ASGI app in-process (as ``bench_ui`` times it)."""
    from benchmarks.bench_ui import get_page
    from mfstore.ui import create_app

    app = create_app(Path(path))
    url = f"/{FLOW}?namespace=user:user2"
    status, body = get_page(app, url)  # warm-up, and a check that the page is real
    assert status == 200 and b"<table" in body, (status, body[-300:])
    samples = []
    for _ in range(min(reps, 50)):
        t0 = time.perf_counter()
        get_page(app, url)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def cli_first_page(path: str, reps: int) -> float:
    """Median wall time of ``mfstore runs FLOW --mfdb FILE`` (first page, to a pipe)."""
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mfstore", "runs", FLOW, "--mfdb", path],
            check=True,
            capture_output=True,
            env={**os.environ, "METAFLOW_USER": "user2"},
        )
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def build_rate(work: Path, runs: int, reps: int) -> int:
    """Print the bulk writer's tasks/s, batched and one call per task (medians of ``reps``
    builds each, alternating), wall and CPU, with the load."""
    work.mkdir(parents=True, exist_ok=True)
    got: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(reps):
        for batched in (False, True):
            got[batched].append(build(work / "rate.mfdb", runs, progress=False, batched=batched))
    print(
        f"{runs:,} runs, {int(got[True][0]['tasks']):,} tasks, {reps} builds each, medians; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print("| writer | tasks/s wall | tasks/CPU-s | bytes/task |")
    print("|---|---:|---:|---:|")
    for batched, label in ((False, "add_done_task (one call per task)"), (True, "task_batch")):
        r = got[batched]
        tasks = r[0]["tasks"]
        wall = statistics.median(x["seconds"] for x in r)
        cpu = statistics.median(x["cpu"] for x in r)
        print(
            f"| {label} | {tasks / wall:,.0f} | {tasks / cpu:,.0f} | {r[0]['bytes'] / tasks:,.0f} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, action="append", help="history sizes (repeatable)")
    ap.add_argument("--reps", type=int, default=200, help="timed calls per operation")
    ap.add_argument("--cli-reps", type=int, default=5)
    ap.add_argument("--workdir", default=str(DATA), help="where the files are built")
    ap.add_argument("--rebuild", action="store_true", help="build even if the file exists")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--build-rate",
        type=int,
        metavar="RUNS",
        help="only compare the bulk writer's rates (batched vs one call per task) on RUNS runs",
    )
    args = ap.parse_args(argv)
    if args.build_rate:
        return build_rate(Path(args.workdir), args.build_rate, max(1, min(args.reps, 9)))
    if args.worker:
        import json

        print(json.dumps(worker(args.worker, args.reps)))
        return 0
    sizes = args.runs or [100_000]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        path = work / ("history-%d.mfdb" % n)  # noqa: UP031
        built = None
        if args.rebuild or not path.exists():
            built = build(path, n)
        rows.append((n, path, built))
    import json

    print("| figure | " + " | ".join("{} runs".format(f"{n:,}") for n, _, _ in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    res = []
    for n, path, built in rows:
        cp = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.history",
                "--worker",
                str(path),
                "--reps",
                str(args.reps),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        q = json.loads(cp.stdout.strip().splitlines()[-1])
        q["cli"] = cli_first_page(str(path), args.cli_reps)
        res.append((n, path, built, q))
    line = lambda label, f: print(  # noqa: E731
        "| {} | {} |".format(label, " | ".join(f(n, p, b, q) for n, p, b, q in res))
    )
    line(
        "build (bulk Writer): tasks/s",
        lambda n, p, b, q: (
            "—"
            if b is None
            else "{:.0f} ({:,} tasks, {:.0f} s; {:.0f} tasks/CPU-s, load {:.1f})".format(
                b["tasks"] / b["seconds"],
                int(b["tasks"]),
                b["seconds"],
                b["tasks"] / b["cpu"],
                b["load"],
            )
        ),
    )
    line("file size", lambda n, p, b, q: "%.1f MB" % (p.stat().st_size / 1e6))
    line(
        "bytes per task",
        lambda n, p, b, q: "%.0f B" % (p.stat().st_size / (n * (WIDTH + 3))),
    )
    for key, expr in QUERIES.items():
        line(f"`{expr}` (user:user2), us", lambda n, p, b, q, key=key: "%.1f" % (q[key] * 1e6))
    line(
        "`mfstore ui` run list, newest page (user:user2), server ms",
        lambda n, p, b, q: "%.1f" % (q["ui"] * 1e3),
    )
    line(
        "`mfstore runs FILE` first page, process wall ms",
        lambda n, p, b, q: "%.0f" % (q["cli"] * 1e3),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
