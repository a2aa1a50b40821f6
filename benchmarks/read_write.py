"""Large artifacts through mfstore alone: write (task end -> committed) and ``.data``.

    python -m benchmarks.read_write [--mb 100] [--reps 5] [--workdir DIR]

Writes a ``--mb`` MB incompressible ``bytes`` value, an incompressible ``uint8`` ndarray
(when numpy is installed) and one of zeros through ``prepare_artifact`` +
``Writer.end_attempt`` (a fresh file per repetition), then reads each back with
``Task(p)[name].data`` (a new ``Task`` per read). A write is committed when
``end_attempt`` returns; the ``+ checkpoint`` rows also wait for the checkpoint that
copies it from the WAL into the main file (run after the commit, in the background,
since round 2's fifth pass; inside the COMMIT before). Prints medians of wall
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
    for kind in ("incompressible", "ndarray", "zeros"):
        w_wall, w_cpu, r_wall, r_cpu, c_wall, c_cpu = [], [], [], [], [], []
        if kind == "ndarray" and _value(kind, 1) is None:
            continue
        for rep in range(args.reps):
            path = work / f"{kind}-{rep}.mfdb"
            value = _value(kind, size)
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
                wait = getattr(store, "wait_checkpoints", None)  # (older mfstore: none)
                if wait is not None:
                    wait()
                c_wall.append(time.perf_counter() - t0)
                c_cpu.append(time.process_time() - c0)
                w.end_run(run, successful=True)
            del value, arts
            mfstore.metadata(str(path))
            mfstore.namespace(None)
            for _ in range(2):
                t0, c0 = time.perf_counter(), time.process_time()
                got = mfstore.Task("RW/1/start/1")["x"].data
                r_wall.append(time.perf_counter() - t0)
                r_cpu.append(time.process_time() - c0)
                assert len(got) == size or got.nbytes == size
                del got
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        rate = lambda s: f"{args.mb / statistics.median(s):.0f} MB/s"  # noqa: E731
        rows.append((f"write {args.mb} MB {kind}", rate(w_wall), rate(w_cpu)))
        rows.append((f"write {args.mb} MB {kind} + checkpoint", rate(c_wall), rate(c_cpu)))
        rows.append((f".data {args.mb} MB {kind}", rate(r_wall), rate(r_cpu)))
    floors = _floors(work, size, args.reps)
    for key, label in (
        ("bind", "sqlite floor: INSERT (bound) + COMMIT with its checkpoint"),
        ("direct", "sqlite floor: INSERT zeroblob + blob write + COMMIT, no checkpoint"),
        ("memory", "memory floor: new buffer + copy"),
    ):
        wall, cpu = floors[key]
        rows.append((f"{label}, {args.mb} MB", rate(wall), rate(cpu)))
    print(f"mfstore {mfstore.__file__} | {args.reps} reps, medians | load {os.getloadavg()[0]:.1f}")
    print("| operation | wall | CPU |")
    print("|---|---:|---:|")
    for r in rows:
        print("| {} | {} | {} |".format(*r))
    return 0


def _value(kind: str, size: int) -> object:
    if kind == "zeros":
        return bytes(size)
    if kind == "ndarray":
        try:
            import numpy
        except ImportError:
            return None
        return numpy.frombuffer(os.urandom(size), dtype=numpy.uint8).copy()
    return os.urandom(size)


def _floors(work: Path, size: int, reps: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and CPU seconds of the SQLite write floors (each 8 MB row bound as a parameter,
    COMMIT with its auto-checkpoint; each row written into a zeroblob, COMMIT without a
    checkpoint) and of the memory read floor."""
    import apsw

    from mfstore.blobs import PIECE_SIZE

    out: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in ("bind", "direct", "memory")
    }
    value = os.urandom(size)
    view = memoryview(value)
    pieces = [view[i : i + PIECE_SIZE] for i in range(0, size, PIECE_SIZE)]
    for rep in range(reps):
        for how in ("bind", "direct"):
            path = str(work / f"floor-{rep}.db")
            conn = apsw.Connection(path)
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -32000"):
                conn.execute("PRAGMA " + pragma)
            if how == "direct":
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB)")
            t0, c0 = time.perf_counter(), time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            if how == "bind":
                conn.executemany("INSERT INTO b (data) VALUES (?)", [(p,) for p in pieces])
            else:
                for piece in pieces:
                    conn.execute("INSERT INTO b (data) VALUES (zeroblob(?))", (len(piece),))
                    with conn.blob_open("main", "b", "data", conn.last_insert_rowid(), True) as b:
                        b.write(piece)
            conn.execute("COMMIT")
            out[how][0].append(time.perf_counter() - t0)
            out[how][1].append(time.process_time() - c0)
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        copy = bytearray(size)
        memoryview(copy)[:] = value
        out["memory"][0].append(time.perf_counter() - t0)
        out["memory"][1].append(time.process_time() - c0)
        del copy
    return out


if __name__ == "__main__":
    raise SystemExit(main())
