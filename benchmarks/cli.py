"""Whole-process time and peak memory of ``mfstore`` listing commands on big flows.

    python -m benchmarks.cli [--sizes 100000,1000000] [--reps 3] [--workdir DIR] [--output FILE]

Each size is one ``SynthFlow`` history from ``benchmarks.synthetic.build`` (runs 1 s apart,
8 users, ``sometag`` on every 10th run; built once into the work directory and reused).
Every command runs as its own process (``python -m mfstore ...``, stdout to a file, not a
terminal), ``--reps`` times; the table gives the medians of wall time and CPU time (user +
system, from ``wait4``: the machine is shared, so wall time includes waiting for a core),
the peak resident memory of the process (``VmHWM``), the rows printed and, for the
streaming command, rows per second of wall and of CPU time.

Targets (issue 13): the first page at 100,000 runs in <= 3 s and <= 300 MB; ``--all --csv``,
``--all --json`` and ``sql ... --csv`` stream >= 50,000 rows/s. Metaflow has no command that
lists or exports runs, so there is no Metaflow column.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mfstore.store import Store

from .synthetic import FLOW, build

#: The commands measured (``F`` = the flow).
COMMANDS = [
    ("runs F", ["runs", FLOW]),
    ("runs F --tag sometag", ["runs", FLOW, "--tag", "sometag"]),
    ("show F", ["show", FLOW]),
    ("runs F --all --csv", ["runs", FLOW, "--all", "--csv"]),
    ("runs F --all --json", ["runs", FLOW, "--all", "--json"]),
    (
        'sql "SELECT * FROM mf_runs" --csv',
        ["sql", "SELECT * FROM mf_runs", "--csv"],
    ),
]
#: Commands that stream every run (their rate is reported).
STREAMING = ("--all", "sql")

# Runs `mfstore ARGS` in this process, then reports its peak resident memory on stderr.
_PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['mfstore'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('mfstore', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "else:\n"
    "    code = 0\n"
    "sys.stdout.flush()\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "print('VmHWM', hwm.split()[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def history(workdir: Path, runs: int) -> Path:
    """The synthetic file with ``runs`` runs (built if missing or of another size)."""
    path = workdir / f"synth-{runs}.mfdb"
    if path.exists():
        store = Store(path, readonly=True)
        try:
            have = store.scalar("SELECT count(*) FROM runs WHERE flow_id = ?", (FLOW,))
        finally:
            store.close()
        if have == runs:
            return path
    print(f"building {path} ({runs:,} runs) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    build(path, runs=runs, batch=50_000)
    print(f"  built in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def measure(args: list[str], db: Path) -> dict[str, float]:
    """One process: wall s, CPU s, peak MB, lines printed."""
    env = dict(os.environ)
    env.pop("MFSTORE_DB", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", _PROBE, *args, "--mfdb", str(db)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: out.read(1 << 20), b""))
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mfstore {' '.join(args)} failed: {text}")
    peak = [line for line in text.splitlines() if line.startswith("VmHWM ")][-1]
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": int(peak.split()[1]) / 1024.0,
        "lines": lines,
    }


def main() -> None:
    """Build the histories, measure every command, print the table (and write --output)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", default="benchmarks/.data/cli")
    parser.add_argument("--output", default=None, help="Also write the table to this file.")
    opts = parser.parse_args()
    workdir = Path(opts.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in opts.sizes.split(",") if s]
    files = {n: history(workdir, n) for n in sizes}
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for n in sizes:
        for label, args in COMMANDS:
            got = [measure(args, files[n]) for _ in range(opts.reps)]
            wall = statistics.median(g["wall"] for g in got)
            cpu = statistics.median(g["cpu"] for g in got)
            peak = max(g["peak_mb"] for g in got)
            # minus the header line (CSV/TSV) or the "[" and "]" lines (JSON)
            data_rows = int(got[0]["lines"]) - (2 if "--json" in args else 1)
            rate = ""
            if any(a in args for a in STREAMING):
                rate = f"{data_rows / wall:,.0f} / {data_rows / cpu:,.0f}"
            rows.append(
                f"| `mfstore {label}` | {n:,} | {wall:.2f} | {cpu:.2f} | {peak:.0f} | "
                f"{data_rows:,} | {rate} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    head = [
        f"    date {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC | "
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average at the start "
        f"{load_start}, at the end {load}",
        f"    command: python -m benchmarks.cli --sizes {opts.sizes} --reps {opts.reps}",
        "",
        f"Medians of {opts.reps} processes per row (peak: the largest); stdout to a file (not a terminal).",
        "",
        "| command | runs in flow | wall (s) | CPU (s) | peak memory (MB) | rows printed | rows/s (wall / CPU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ]
    text = "\n".join(head) + "\n"
    print(text)
    if opts.output:
        Path(opts.output).write_text(text, "utf-8")


if __name__ == "__main__":
    main()
