"""Cost of fork() with stores open (issue 11: a notebook that opens the Client, then
forks, pays nothing; target <= 1 ms).

For each workload (no store yet, one Client store in use, a writer plus a reader, eight
stores, the writer after a large commit, then the same process with every store closed)
it times, in the parent: ``os.fork()`` itself (until it returns in the parent), and fork +
child exit + ``waitpid``; in the child: its first statement on an inherited store (where
the lazy fork safety reopens the connection). Until the writer's first large commit no
fork hook of mfstore's is installed; that commit's background checkpoint installs the one
that pauses checkpoints around ``fork()`` (``store.background``), so the rows from then
on include that pause. Medians of ``--reps`` forks; the load average is printed with the
table (the machine may be shared).

    .venv/bin/python benchmarks/bench_fork.py [--reps 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _fork_costs(stores: list, reps: int) -> tuple[float, float, float | None]:
    """Medians (ms): fork() in the parent, fork..waitpid, the child's first statement."""
    in_parent, round_trip, first_use = [], [], []
    for _ in range(reps):
        read_end, write_end = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            elapsed = -1.0
            if stores:
                c0 = time.perf_counter()
                stores[0].scalar("SELECT count(*) FROM runs")
                elapsed = (time.perf_counter() - c0) * 1e3
            os.write(write_end, repr(elapsed).encode())
            os._exit(0)
        t1 = time.perf_counter()
        os.close(write_end)
        with os.fdopen(read_end, "rb") as fh:
            child = float(fh.read().decode() or "-1")
        os.waitpid(pid, 0)
        t2 = time.perf_counter()
        in_parent.append((t1 - t0) * 1e3)
        round_trip.append((t2 - t0) * 1e3)
        if child >= 0:
            first_use.append(child)
        # the parent's stores still work after the fork, with their own connections
        for store in stores:
            store.scalar("SELECT count(*) FROM runs")
    return (
        statistics.median(in_parent),
        statistics.median(round_trip),
        statistics.median(first_use) if first_use else None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    import mfstore
    from mfstore.store import Store
    from mfstore.writer import Writer

    rows = [("no store open", *_fork_costs([], args.reps))]  # before any store exists
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fork.mfdb"
        writer_store = Store(path, create=True)
        w = Writer(writer_store)
        for _ in range(20):
            run = w.begin_run("HelloFlow", user_name="bench", system_tags=["user:bench"])
            w.end_run(run, successful=True, checkpoint=False)
        mfstore.metadata(str(path))
        mfstore.namespace(None)
        assert mfstore.Flow("HelloFlow").latest_run is not None
        client_store = mfstore.provider.current_store()
        extra = [Store(path, reader=True) for _ in range(6)]
        workloads = [
            ("Client in use (1 reader)", [client_store]),
            ("writer + reader", [writer_store, client_store]),
            ("8 stores open", [writer_store, client_store, *extra]),
        ]
        rows += [(name, *_fork_costs(stores, args.reps)) for name, stores in workloads]
        # a large commit: its checkpoint runs in a background thread, whose first start
        # installs the fork hook that pauses checkpoints (so fork() waits for none running)
        from mfstore import blobs

        with writer_store.write():
            blobs.insert_blob(writer_store, blobs.pack_blob(os.urandom(12 << 20)))
        assert writer_store.wait_checkpoints()
        rows.append(
            ("writer after a large commit", *_fork_costs([writer_store, client_store], args.reps))
        )
        for store in extra:
            store.close()
        writer_store.close()
        mfstore.provider.reset()  # closes the Client's store
        # the same process (same imports and heap), every store closed: what a fork costs
        # here anyway, so the rows above show what open stores add
        rows.append(("same process, stores closed", *_fork_costs([], args.reps)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"fork() with stores open: medians of {args.reps} forks; load average {load}")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print(
        f"| {'workload':<28} | {'fork() in parent ms':>19} | {'fork..waitpid ms':>16} "
        f"| {'child 1st statement ms':>22} |"
    )
    print(f"|{'-' * 30}|{'-' * 21}|{'-' * 18}|{'-' * 24}|")
    for name, parent, trip, first in rows:
        first_text = "-" if first is None else f"{first:.3f}"
        print(f"| {name:<28} | {parent:>19.3f} | {trip:>16.3f} | {first_text:>22} |")
    print()
    print("target: fork() in the parent <= 1 ms with the Client in use")


if __name__ == "__main__":
    main()
