"""Cost of the schema check at open (issue 12): cold ``Store(path, reader=True)``.

Each sample is a fresh Python process that imports mfstore, then times only the
``Store(...)`` call (the first open in the process, so the one-time parse of
``schema.sql`` is included). "without check" replaces ``Store._check_schema`` by a no-op
in that process; "with check" is the shipped code. Both variants alternate, so noise
from other processes hits them alike. Prints a table: medians, the difference, and
the same for a warm re-open (a second file, same process).

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
if sys.argv[2] == "off":
    Store._check_schema = lambda self, **kw: None
t0 = time.perf_counter()
s = Store(sys.argv[1], reader=True)
t1 = time.perf_counter()
s.close()
t2 = time.perf_counter()
s = Store(sys.argv[1], reader=True)
t3 = time.perf_counter()
s.close()
print(json.dumps([(t1 - t0) * 1e3, (t3 - t2) * 1e3]))
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
        times: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _ in range(args.samples):
            for variant in ("off", "on"):
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(path), variant],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                first, again = json.loads(out)
                times[variant].append((first, again))
        holder.close()
    rows = []
    for label, idx in (("cold open (first Store in a process)", 0), ("re-open, same process", 1)):
        off = statistics.median(t[idx] for t in times["off"])
        on = statistics.median(t[idx] for t in times["on"])
        rows.append((label, f"{off:.3f}", f"{on:.3f}", f"{on - off:+.3f}"))
    header = (
        "Store(path, reader=True)",
        "without check (ms)",
        "with check (ms)",
        "difference (ms)",
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"{args.samples} fresh processes per variant, medians")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
