"""Cost of the schema check at open (issue 12: at most 0.2 ms more than the open
without it): cold ``Store(path, reader=True)`` in fresh processes.

Two kinds of fresh process run interleaved (shuffled) in one run, so both see the same
machine: the check switched off (the open then reads only how many objects the schema
holds) and as it ships. Each times (wall and CPU) the cold open, then the open plus a
first query on ``runs``. That sum, in CPU time, is the figure that answers the bound: a
process opens a file to query it, and the first statement a process prepares pays
one-time costs (SQLite's code paths paged in, first allocations) that the check, when
on, pays instead of that query. The "off" processes then time the check alone on their
open connection: first in the process (compared by digest) and again (what every later
open of the process pays: one string comparison).

With ``--history FILE`` (e.g. a ``benchmarks/.data/synth-*.mfdb`` that bench_client
builds), the README's cold-start row is timed the same way, with and without the check,
alternating: a whole ``python -c 'from mfstore import Flow; print(Flow(F).latest_run)'``
process (wall time).

    nice -n 10 .venv/bin/python benchmarks/bench_open.py [--samples 41] [--history FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, sys, time
from mfstore import schema
from mfstore.store import Store
FIRST = "SELECT * FROM runs WHERE rowid > ? ORDER BY rowid DESC LIMIT 1"
if sys.argv[2] == "without":
    from mfstore.store import checks

    check = checks.check_schema
    checks.check_schema = lambda store, **kw: None
    # The open without the check reads only how many objects the schema holds.
    text_sql = schema.SCHEMA_TEXT_SQL
    schema.SCHEMA_TEXT_SQL = "SELECT (SELECT count(*) FROM sqlite_master), NULL"
t0, c0 = time.perf_counter(), time.thread_time()
s = Store(sys.argv[1], reader=True)
t1, c1 = time.perf_counter(), time.thread_time()
s.query(FIRST, (0,))  # a process opens a file to query it: its first query
t2, c2 = time.perf_counter(), time.thread_time()
ms = [t1 - t0, c1 - c0, c2 - c0]
if sys.argv[2] == "without":
    schema.SCHEMA_TEXT_SQL = text_sql
    check(s)  # first in this process: compares by digest
    t3, c3 = time.perf_counter(), time.thread_time()
    check(s)  # again (what every later open of the process pays)
    t4, c4 = time.perf_counter(), time.thread_time()
    s.query(text_sql)  # the read alone (one query builds the schema's text)
    t5, c5 = time.perf_counter(), time.thread_time()
    ms += [c3 - c2, c4 - c3, c5 - c4]
s.close()
print(json.dumps([x * 1e3 for x in ms]))
"""


_COLD = r"""
import sys
if sys.argv[2] == "without":
    from mfstore import schema
    from mfstore.store import checks
    checks.check_schema = lambda store, **kw: None
    schema.SCHEMA_TEXT_SQL = "SELECT (SELECT count(*) FROM sqlite_master), NULL"
from mfstore import Flow, metadata, namespace
metadata(sys.argv[1]); namespace(sys.argv[3] or None)
print(Flow(sys.argv[4]).latest_run)
"""


def _cold_latest_run(path: Path, kind: str, ns: str, flow: str) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _COLD, str(path), kind, ns, flow], check=True, capture_output=True
    )
    return (time.perf_counter() - t) * 1e3


def _sample(path: Path, kind: str) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), kind], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=41, help="fresh processes of each kind")
    ap.add_argument("--history", type=Path, help="also time the cold latest_run on this file")
    ap.add_argument("--flow", default="SynthFlow")
    ap.add_argument("--namespace", default="user:user3")
    args = ap.parse_args()
    from mfstore.store import Store

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "open.mfdb"
        # A writer keeps the file open (as a runtime would), so -wal/-shm exist and
        # readers neither create nor remove them: file-system noise stays out.
        holder = Store(path, create=True)
        without, with_check = [], []
        # Shuffled order: on a shared machine cold opens come in modes milliseconds apart.
        kinds = ["without", "with"] * args.samples
        random.Random(0).shuffle(kinds)
        for kind in kinds:
            (without if kind == "without" else with_check).append(_sample(path, kind))
        holder.close()
        cold: dict[str, list[float]] = {"without": [], "with": []}
        if args.history:
            for _ in range(args.samples):
                for kind in ("without", "with"):
                    cold[kind].append(
                        _cold_latest_run(args.history, kind, args.namespace, args.flow)
                    )
    load_after = os.getloadavg()

    def med(samples: list[list[float]], i: int) -> float:
        return statistics.median(x[i] for x in samples)

    rows = [
        ("cold Store(path, reader=True), wall, check off / on", without, with_check, 0),
        ("cold Store(path, reader=True), CPU, check off / on", without, with_check, 1),
        ("cold open + the first query, CPU, check off / on", without, with_check, 2),
    ]
    table = [
        (label, f"{med(a, i):.3f}", f"{med(b, i):.3f}", f"{med(b, i) - med(a, i):+.3f}")
        for label, a, b, i in rows
    ]
    table += [
        (
            "the check alone, first in the process (after a first query), CPU",
            f"{med(without, 3):.3f}",
            "",
            "",
        ),
        ("the check alone, later opens in the same process, CPU", f"{med(without, 4):.3f}", "", ""),
        ("  of which the query building the schema text, CPU", f"{med(without, 5):.3f}", "", ""),
    ]
    if args.history:
        off, on = (statistics.median(cold[k]) for k in ("without", "with"))
        label = f"cold latest_run process ({args.history.name}), wall, check off / on"
        table.append((label, f"{off:.1f}", f"{on:.1f}", f"{on - off:+.1f}"))
    print(
        f"{args.samples} fresh processes of each kind, shuffled; medians (ms); "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
        f"{os.cpu_count()} CPUs"
    )
    w = max(len(r[0]) for r in table)
    print(f"| {'what':<{w}} | check off | check on | on - off |")
    print(f"| {'-' * w} | --------: | -------: | -------: |")
    for label, off_ms, on_ms, diff in table:
        print(f"| {label:<{w}} | {off_ms:>9} | {on_ms:>8} | {diff:>8} |")


if __name__ == "__main__":
    main()
