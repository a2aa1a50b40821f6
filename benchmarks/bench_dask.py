"""Distributed runs: the local fork executor vs a Dask LocalCluster, and the ceiling of one file.

    python -m benchmarks.bench_dask                      # 1,000-task foreach, 200 commits
    python -m benchmarks.bench_dask --scale 100 --commits 50 --big-commits 5   # quick

1. Foreach wall time: ``python flow.py run`` of ``bench_runtime.FOREACH`` with ``--scale`` trivial tasks
   (and with 10 tasks, to separate the fixed cost), with the local executor at
   ``--max-workers 2`` and ``16`` and with ``--with dask:workers=2`` (a LocalCluster of two
   single-threaded worker processes started by the run, 16 attempts in flight). Marginal
   per-task cost = (wall(scale) - wall(10)) / (scale - 10): what one more task costs the
   whole run; slot cost = marginal x slots (2 for the cluster and --max-workers 2):
   the seconds a worker slot spends per task on overhead (the tasks do nothing).
2. Sustained commit rate: the runtime process alone, committing finished attempts into a
   fresh .mfdb with ``Writer`` exactly as the scheduler does (add_task, begin_attempt with
   the runtime's 12 metadata entries, end_attempt with the artifacts in one transaction).
   Artifacts are prepared (pickled, hashed, compressed -- the workers' job) before the
   clock starts. Small = 6 small artifacts per attempt; big = one new 10 MB artifact per
   attempt (random bytes, incompressible). This is the ceiling of one file, whatever the
   cluster's size.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_runtime import FOREACH  # start -> work (foreach) -> join -> end

REPO = Path(__file__).resolve().parent.parent

CONFIGS = [
    ("local, --max-workers 2", ["--max-workers", "2"], 2),
    ("local, --max-workers 16", ["--max-workers", "16"], 16),
    ("dask LocalCluster, 2 workers", ["--max-workers", "16", "--with", "dask:workers=2"], 2),
]


def time_run(workdir: Path, scale: int, args: list[str]) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "flow.py").write_text(FOREACH.format(lib="mfstore", scale=scale))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
    env.update(
        METAFLOW_USER="alice",
        MFSTORE_DB=str(workdir / "bench.mfdb"),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    cmd = [sys.executable, "flow.py", "run", "--max-num-splits", str(scale + 1), *args]
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if cp.returncode != 0 or not re.search(r"Done!", cp.stdout + cp.stderr):
        raise SystemExit(f"{cmd} failed:\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    return wall


def foreach_table(scale: int, reps: int, root: Path, configs: list[int]) -> list[str]:
    rows = [
        f"### Foreach of {scale} trivial tasks (median of {reps})",
        "",
        f"| executor | wall, 10 tasks (s) | wall, {scale} tasks (s) | tasks/s | marginal per "
        "task (ms) | slot cost per task (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, (label, args, slots) in enumerate(CONFIGS):
        if i not in configs:
            continue
        small = statistics.median(time_run(root / f"c{i}-small-{r}", 10, args) for r in range(reps))
        big = statistics.median(time_run(root / f"c{i}-big-{r}", scale, args) for r in range(reps))
        marginal = (big - small) / (scale - 10)
        rows.append(
            f"| {label} | {small:.1f} | {big:.1f} | {scale / big:.1f} | {marginal * 1000:.1f} | "
            f"{marginal * slots * 1000:.0f} |"
        )
        print(rows[-1], flush=True)
    return rows


def commit_rate(n: int, big: bool, root: Path) -> tuple[float, float]:
    """(attempts/s, MB/s of artifact bytes) for ``n`` commits into a fresh file."""
    from mfstore.artifacts import prepare_artifact, prepare_artifacts
    from mfstore.provider import open_store
    from mfstore.writer import MetadataEntry, Writer

    path = root / ("big.mfdb" if big else "small.mfdb")
    store = open_store(path, create=True)
    writer = Writer(store)
    run = writer.begin_run("CommitRateFlow", user_name="alice", user_tags=[], system_tags=[])
    total = 0.0
    nbytes = 0
    for i in range(n):
        if big:
            arts = {
                "data": prepare_artifact(os.urandom(10 * 1024 * 1024)),
                "i": prepare_artifact(i),
            }
        else:
            arts = prepare_artifacts(
                {
                    "i": i,
                    "sq": i * i,
                    "name": f"task {i}",
                    "xs": list(range(20)),
                    "ok": True,
                    "cfg": {"a": 1, "b": [1, 2]},
                }
            )
        nbytes += sum(a.blob.size for a in arts.values() if a.blob is not None)
        md = [MetadataEntry(f"key{k}", f"value {k}", attempt=0) for k in range(12)]
        t0 = time.perf_counter()
        task = writer.add_task(run, "work")
        writer.begin_attempt(task, 0, metadata=md)
        writer.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
        total += time.perf_counter() - t0
    store.close()
    return n / total, nbytes / total / 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--commits", type=int, default=200, help="small-artifact commits")
    ap.add_argument("--big-commits", type=int, default=30, help="10 MB commits")
    ap.add_argument("--skip-foreach", action="store_true")
    ap.add_argument(
        "--configs", default="0,1,2", help="which executors (0: local -2, 1: local -16, 2: dask)"
    )
    args = ap.parse_args(argv)
    import dask
    import distributed

    out = [
        "## Distributed runs (benchmarks/bench_dask.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Python {platform.python_version()}, "
        f"dask {dask.__version__}, distributed {distributed.__version__}; {os.cpu_count()} CPUs "
        "(shared with other jobs; load average at the start: {:.0f})".format(os.getloadavg()[0]),
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="mfstore-bench-dask-") as tmp:
        if not args.skip_foreach:
            out += foreach_table(
                args.scale, args.reps, Path(tmp), [int(c) for c in args.configs.split(",")]
            )
            out.append("")
        out += [
            "### Sustained commit rate of the runtime (one .mfdb)",
            "",
            "| artifacts per attempt | attempts | attempts/s | artifact MB/s |",
            "|---|---:|---:|---:|",
        ]
        rate, mbs = commit_rate(args.commits, False, Path(tmp))
        out.append(f"| 6 small | {args.commits} | {rate:.0f} | {mbs:.2f} |")
        rate, mbs = commit_rate(args.big_commits, True, Path(tmp))
        out.append(f"| one 10 MB (incompressible) | {args.big_commits} | {rate:.1f} | {mbs:.0f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
