"""Cost of the schema check at open (issue 12): cold ``Store(path, reader=True)``.

Each sample is a fresh Python process that imports mfstore, opens the file with the
check switched off (timed: the cold open without the check), then times the check
itself, first (it reads schema.sql once per process) and again. Timing the check
directly keeps the file-system noise of a shared machine (tens of ms per open at
times) out of the difference the issue bounds (<= 0.2 ms).

    .venv/bin/python benchmarks/bench_open.py [--samples 41]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
from mfstore.store import Store
check = Store._check_schema
Store._check_schema = lambda self, **kw: None
master = "SELECT type, name, tbl_name, sql FROM sqlite_master"
t0 = time.perf_counter()
s = Store(sys.argv[1], reader=True)
t1 = time.perf_counter()
check(s, rows=s.query(master))  # first in this process: also reads schema.sql
t2 = time.perf_counter()
check(s, rows=s.query(master))  # again (what every later open of the process pays)
t3 = time.perf_counter()
s.close()
print(json.dumps([(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=41)
    args = ap.parse_args()
    from mfstore.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "open.mfdb"
        # A writer keeps the file open (as a runtime would), so -wal/-shm exist and
        # readers neither create nor remove them: file-system noise stays out.
        holder = Store(path, create=True)
        samples = []
        for _ in range(args.samples):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            samples.append(json.loads(out))
        holder.close()
    med = [statistics.median(s[i] for s in samples) for i in range(3)]
    rows = [
        ("cold Store(path, reader=True) without the check", f"{med[0]:.3f}"),
        ("+ schema check, first in the process (reads schema.sql)", f"{med[1]:.3f}"),
        ("+ schema check, later opens in the same process", f"{med[2]:.3f}"),
    ]
    print(f"{args.samples} fresh processes, medians (ms)")
    w = max(len(r[0]) for r in rows)
    print(f"| {'what':<{w}} | ms     |")
    print(f"| {'-' * w} | ------ |")
    for label, ms in rows:
        print(f"| {label:<{w}} | {ms:>6} |")


if __name__ == "__main__":
    main()
