"""Large artifacts through mfstore alone: write (task end -> committed) and ``.data``.

    python -m benchmarks.read_write [--mb 100] [--reps 5] [--workdir DIR]

Writes a ``--mb`` MB incompressible ``bytes`` value and one of zeros through
``prepare_artifact`` + ``Writer.end_attempt`` (a fresh file per repetition), then reads
each back with ``Task(p)[name].data`` (a new ``Task`` per read). Prints medians of wall
time and of the process's CPU time (``time.process_time``: on a shared, oversubscribed
machine the CPU figure is the one that measures mfstore; wall time measures the queue).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    import mfstore
    from mfstore.artifacts import prepare_artifact
    from mfstore.store import Store
    from mfstore.writer import Writer

    size = args.mb * 1_000_000
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mfstore-rw-"))
    rows = []
    for kind in ("incompressible", "zeros"):
        w_wall, w_cpu, r_wall, r_cpu = [], [], [], []
        for rep in range(args.reps):
            path = work / f"{kind}-{rep}.mfdb"
            value = os.urandom(size) if kind == "incompressible" else bytes(size)
            with Store(path, create=True) as store:
                w = Writer(store)
                run = w.begin_run("RW", user_name="bench", run_number="1")
                task = w.add_task(run, "start", "1")
                w.begin_attempt(task, 0)
                t0, c0 = time.perf_counter(), time.process_time()
                arts = {"x": prepare_artifact(value)}
                w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
                w_wall.append(time.perf_counter() - t0)
                w_cpu.append(time.process_time() - c0)
                w.end_run(run, successful=True)
            del value, arts
            mfstore.metadata(str(path))
            mfstore.namespace(None)
            for _ in range(2):
                t0, c0 = time.perf_counter(), time.process_time()
                got = mfstore.Task("RW/1/start/1")["x"].data
                r_wall.append(time.perf_counter() - t0)
                r_cpu.append(time.process_time() - c0)
                assert len(got) == size
                del got
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        rate = lambda s: f"{args.mb / statistics.median(s):.0f} MB/s"  # noqa: E731
        rows.append((f"write {args.mb} MB {kind}", rate(w_wall), rate(w_cpu)))
        rows.append((f".data {args.mb} MB {kind}", rate(r_wall), rate(r_cpu)))
    print(f"mfstore {mfstore.__file__} | {args.reps} reps, medians")
    print("| operation | wall | CPU |")
    print("|---|---:|---:|")
    for r in rows:
        print("| {} | {} | {} |".format(*r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
