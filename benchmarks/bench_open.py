"""Cost of the schema check at open (issue 12: at most 0.2 ms more than the open
without it): cold ``Store(path, reader=True)`` in fresh processes.

Two kinds of fresh process run interleaved (shuffled) in one run, so both see the same
machine:

* "without": the check switched off; times the cold open, then times the check itself
  on that open connection, first (it also builds the reference texts from schema.sql,
  once per process) and again (what every later open of the process pays).
* "with": times the cold open as it ships, check included.

The direct timing is the figure that answers the bound; the difference of the two
cold-open medians is shown too, but on a shared machine file-system noise in a cold
open (milliseconds) is larger than the check.

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
if sys.argv[2] == "with":
    t0 = time.perf_counter()
    s = Store(sys.argv[1], reader=True)
    t1 = time.perf_counter()
    s.close()
    print(json.dumps([(t1 - t0) * 1e3]))
else:
    from mfstore.store import checks

    check = checks.check_schema
    checks.check_schema = lambda store, **kw: None
    # The open without the check reads only how many objects the schema holds.
    text_sql = schema.SCHEMA_TEXT_SQL
    schema.SCHEMA_TEXT_SQL = "SELECT (SELECT count(*) FROM sqlite_master), NULL"
    t0 = time.perf_counter()
    s = Store(sys.argv[1], reader=True)
    t1 = time.perf_counter()
    schema.SCHEMA_TEXT_SQL = text_sql
    c1 = time.thread_time()
    check(s)  # first in this process: compares by digest
    t2, c2 = time.perf_counter(), time.thread_time()
    check(s)  # again (what every later open of the process pays)
    t3, c3 = time.perf_counter(), time.thread_time()
    rows = s.query(text_sql)  # the read alone (one query builds the schema's text)
    t4, c4 = time.perf_counter(), time.thread_time()
    s.close()
    ms = [(t1 - t0), (t2 - t1), (t3 - t2), (t4 - t3), (c2 - c1), (c3 - c2), (c4 - c3)]
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
    med = [statistics.median(s[i] for s in without) for i in range(7)]
    med_with = statistics.median(s[0] for s in with_check)
    min_off, min_on = min(s[0] for s in without), min(s[0] for s in with_check)
    rows = [
        ("cold Store(path, reader=True), check off", f"{med[0]:.3f}", ""),
        ("cold Store(path, reader=True), check on (as shipped)", f"{med_with:.3f}", ""),
        ("  difference of the two medians (noisy)", f"{med_with - med[0]:+.3f}", ""),
        ("  difference of the two minimums", f"{min_on - min_off:+.3f}", ""),
        ("the check, first in the process", f"{med[1]:.3f}", f"{med[4]:.3f}"),
        ("the check, later opens in the same process", f"{med[2]:.3f}", f"{med[5]:.3f}"),
        ("  of which the query building the schema text", f"{med[3]:.3f}", f"{med[6]:.3f}"),
    ]
    if args.history:
        off, on = (statistics.median(cold[k]) for k in ("without", "with"))
        rows += [
            (f"cold latest_run process ({args.history.name}), check off", f"{off:.1f}", ""),
            (f"cold latest_run process ({args.history.name}), check on", f"{on:.1f}", ""),
            ("  difference of the two medians (noisy)", f"{on - off:+.1f}", ""),
        ]
    print(
        f"{args.samples} fresh processes of each kind, shuffled; medians (ms); "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
        f"{os.cpu_count()} CPUs"
    )
    w = max(len(r[0]) for r in rows)
    print(f"| {'what':<{w}} | wall ms | CPU ms |")
    print(f"| {'-' * w} | ------- | ------ |")
    for label, ms, cpu in rows:
        print(f"| {label:<{w}} | {ms:>7} | {cpu:>6} |")


if __name__ == "__main__":
    main()
