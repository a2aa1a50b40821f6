"""Import rate and size: a Metaflow ``.metaflow`` directory vs the same history as a .mfdb.

python -m benchmarks.import_metaflow --history PATH [--iterations K] [--database OUT]
    [--workers N ...]
(``--history`` missing: builds the tests/sharing history with real Metaflow first.)
Each iteration imports into a fresh file (one transaction, WAL mode). Printed per
``--workers`` value (reader processes; default: the importer's own choice): median wall
time and median CPU time of this process plus its reader processes, with the load.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def disk_usage(path: Path) -> int:
    """Allocated bytes (du), not apparent size: what the directory costs on disk."""
    out = subprocess.run(
        ["du", "-sk", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0]) * 1024


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the reader processes)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> None:
    import apsw

    from mfstore.importer import find_metaflow_root, import_metaflow
    from mfstore.sharing import stats
    from mfstore.store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--history", type=Path)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--database", type=Path)
    ap.add_argument("--workers", type=int, action="append", help="reader processes (repeatable)")
    args = ap.parse_args(argv)
    if args.history is None:
        from tests.sharing.mfhistory import build_history

        args.history = build_history(Path(tempfile.mkdtemp()))
    root = find_metaflow_root(args.history)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"python {platform.python_version()}, SQLite {apsw.sqlite_lib_version()}, apsw "
        f"{apsw.apsw_version()}, commit {commit}, {platform.machine()}"
    )
    tasks = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers or [None]:
            walls, cpus = [], []
            for i in range(args.iterations):
                path = args.database if (args.database and i == 0) else Path(tmp) / f"i{i}.mfdb"
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
                c0, k0, t0 = time.process_time(), _children_cpu(), time.perf_counter()
                with Store(path, create=True) as s:
                    r = import_metaflow(root, s, workers=workers)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0 + _children_cpu() - k0)
                tasks = r.tasks
                last = path
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            rows.append((workers, wall, cpu, os.getloadavg()[0]))
        st = stats(last)
        mf = disk_usage(root)
        db = last.stat().st_size
    print(
        "history: {} runs, {} tasks, {} artifacts ({:.2f} MB pickled, {:.2f} MB distinct)".format(
            st["runs"], tasks, st["artifacts"], st["artifact_bytes"] / 1e6, st["raw_bytes"] / 1e6
        )
    )
    print(f"medians of {args.iterations} imports each")
    print("| reader processes | wall | tasks/s wall | CPU (all processes) | tasks/CPU-s | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for workers, wall, cpu, load in rows:
        label = "default" if workers is None else str(workers)
        print(
            f"| {label} | {wall:.2f} s | {tasks / wall:,.0f} | {cpu:.2f} s | {tasks / cpu:,.0f} | {load:.1f} |"
        )
    print(
        f"| .metaflow (du) | .mfdb | ratio |\n| ---: | ---: | ---: |\n| {mf / 1e6:.2f} MB | "
        f"{db / 1e6:.2f} MB | {mf / db:.1f}x smaller |"
    )


if __name__ == "__main__":
    main()
