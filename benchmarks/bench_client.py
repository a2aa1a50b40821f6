"""Client API timings on synthetic histories of 10k / 100k / 1M runs (mfstore alone).

    python -m benchmarks.bench_client --scale 10000 --scale 100000 --scale 1000000 --iterations 200

Prints an environment header and one row per operation: median and min per history size,
warm (same process, after one warm-up call). Histories are built once through the Writer
API into ``--dir`` (default ``benchmarks/.data``) and reused while their checksum holds.
Transaction policy: reads in autocommit (one implicit read transaction per statement);
the builder writes batches of 5,000 runs per ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import synthetic


def _env_header(scales: list[int], iterations: int) -> str:
    import apsw

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    return "Python {} | SQLite {} | apsw {} | {}, {} cores | scales {} | iterations {} | commit {}".format(
        platform.python_version(),
        apsw.sqlite_lib_version(),
        apsw.apsw_version(),
        platform.machine(),
        os.cpu_count() or 0,
        ",".join(str(s) for s in scales),
        iterations,
        commit or "?",
    )


def _time(fn: Callable[[], object], iterations: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6, min(samples) * 1e6


def history(directory: Path, runs: int) -> Path:
    """The synthetic history of ``runs`` runs (built if missing or stale)."""
    path = directory / (f"synth-{runs}.mfdb")
    stamp = path.with_suffix(".ok")
    if not (path.exists() and stamp.exists() and stamp.read_text() == synthetic.checksum(path)):
        print(f"building {path} ...", file=sys.stderr, flush=True)
        synthetic.build(path, runs, progress=runs >= 100_000)
        stamp.write_text(synthetic.checksum(path))
    return path


def operations(runs: int) -> list[tuple[str, str | None, Callable[[], object]]]:
    """(name, namespace, callable) of every measured operation."""
    from mfstore import Flow, Metaflow, Run

    flow = synthetic.FLOW
    last = f"{10**15 + runs - 1:020d}"
    pathspec = f"{flow}/{10**15 + ((runs - 1) // 1000) * 1000:020d}"  # every 1000th run has tasks
    return [
        ("Flow(F)", "user:user3", lambda: Flow(flow)),
        ("Flow(F).latest_run", None, lambda: Flow(flow).latest_run),
        ("Flow(F).latest_run", "user:user3", lambda: Flow(flow).latest_run),
        ("Flow(F).latest_successful_run", "user:user3", lambda: Flow(flow).latest_successful_run),
        (
            "next(Flow(F).runs('exp','common_b'))",
            "user:user3",
            lambda: next(iter(Flow(flow).runs("exp", "common_b")), None),
        ),
        (
            "next(Flow(F).runs('common_a','common_b'))  [never together]",
            "user:user3",
            lambda: next(iter(Flow(flow).runs("common_a", "common_b")), None),
        ),
        ("Run(F/id)", None, lambda: Run(f"{flow}/{last}")),
        ("Run(F/id).data.result", None, lambda: Run(pathspec).data.result),
        ("Metaflow().flows", "user:user3", lambda: Metaflow().flows),
    ]


def cold_start(path: Path) -> float:
    """Median wall time (ms) of a fresh `python -c "from mfstore import Flow; print(Flow(F).latest_run)"`."""
    env = dict(os.environ, MFSTORE_DB=str(path), METAFLOW_USER="user3")
    code = f"from mfstore import Flow; print(Flow({synthetic.FLOW!r}).latest_run)"
    samples = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e3


def history_parser(description: str | None, iterations: int) -> argparse.ArgumentParser:
    """Options of the benchmarks on synthetic histories: --scale (repeatable), --iterations,
    --dir (where the histories are kept)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=int, action="append", help="runs in the history (repeatable)"
    )
    parser.add_argument("--iterations", type=int, default=iterations)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / ".data")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = history_parser(__doc__, iterations=200)
    args = parser.parse_args(argv)
    scales = args.scale or [10_000, 100_000, 1_000_000]
    args.dir.mkdir(parents=True, exist_ok=True)
    from mfstore import metadata, namespace

    print(_env_header(scales, args.iterations))
    results: dict[tuple[str, str | None], list[str]] = {}
    cold: list[str] = []
    for runs in scales:
        path = history(args.dir, runs)
        metadata(str(path))
        for name, ns, fn in operations(runs):
            namespace(ns)
            med, lo = _time(fn, args.iterations)
            results.setdefault((name, ns), []).append(f"{med:.1f} ({lo:.1f})")
        cold.append(f"{cold_start(path):.0f}")
    header = ["operation", "namespace"] + [
        "{} runs: median (min) us".format(f"{s:,}") for s in scales
    ]
    rows = [[name, str(ns), *vals] for (name, ns), vals in results.items()]
    rows.append(
        [
            "cold `python -c 'from mfstore import Flow; print(Flow(F).latest_run)'` (ms)",
            "user:user3",
            *cold,
        ]
    )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
