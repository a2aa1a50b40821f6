"""Large artifacts through mfstore alone: write (task end -> committed) and ``.data``.

    python -m benchmarks.read_write [--mb 100] [--reps 5] [--workdir DIR]

Writes a ``--mb`` MB incompressible ``bytes`` value and one of zeros through
``prepare_artifact`` + ``Writer.end_attempt`` (a fresh file per repetition), then reads
each back with ``Task(p)[name].data`` (a new ``Task`` per read). Prints medians of wall
time and of the process's CPU time (``time.process_time``: on a shared, oversubscribed
machine the CPU figure is the one that measures mfstore; wall time measures the queue).

Two floors are measured in the same run, with the same sizes: ``sqlite floor`` is SQLite
alone storing the same number of raw bytes in a fresh WAL file with mfstore's settings
(one row per 8 MB chunk, as mfstore stores them; COMMIT with its auto-checkpoint), the
least any write into one SQLite file costs here; ``memory floor`` makes a fresh buffer of
the size and copies the bytes into it, the least any read that returns a new object costs
(its page faults included).
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
    f_write, f_read = _floors(work, size, args.reps)
    rows.append((f"sqlite floor: INSERT+COMMIT {args.mb} MB", rate(f_write[0]), rate(f_write[1])))
    rows.append((f"memory floor: new {args.mb} MB buffer + copy", rate(f_read[0]), rate(f_read[1])))
    print(f"mfstore {mfstore.__file__} | {args.reps} reps, medians | load {os.getloadavg()[0]:.1f}")
    print("| operation | wall | CPU |")
    print("|---|---:|---:|")
    for r in rows:
        print("| {} | {} | {} |".format(*r))
    return 0


def _floors(work: Path, size: int, reps: int) -> tuple[tuple[list[float], ...], ...]:
    """Wall and CPU seconds of the SQLite write floor and the memory read floor."""
    import apsw

    from mfstore.blobs import PIECE_SIZE

    ww, wc, rw, rc = [], [], [], []
    value = os.urandom(size)
    for rep in range(reps):
        path = str(work / f"floor-{rep}.db")
        conn = apsw.Connection(path)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -32000"):
            conn.execute("PRAGMA " + pragma)
        conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB)")
        t0, c0 = time.perf_counter(), time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        view = memoryview(value)
        conn.executemany(
            "INSERT INTO b (data) VALUES (?)",
            [(view[i : i + PIECE_SIZE],) for i in range(0, size, PIECE_SIZE)],
        )
        conn.execute("COMMIT")
        ww.append(time.perf_counter() - t0)
        wc.append(time.process_time() - c0)
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        copy = bytearray(size)
        memoryview(copy)[:] = value
        rw.append(time.perf_counter() - t0)
        rc.append(time.process_time() - c0)
        del copy
    return (ww, wc), (rw, rc)


if __name__ == "__main__":
    raise SystemExit(main())
