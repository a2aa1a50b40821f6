"""Wall time of running flows: mfstore vs real Metaflow, side by side in one invocation.

    python -m benchmarks.bench_runtime --iterations 3 --scale 100

Runs a 2-step flow and a foreach flow with ``--scale`` tasks, each as
``python flow.py run`` in a fresh subprocess (METAFLOW_USER set), ``--iterations``
times per library, and prints medians, minimums and the mfstore/Metaflow ratio.
mfstore writes one .mfdb per library run directory (WAL, one BEGIN IMMEDIATE
transaction per write call of ``Writer``; the runtime is the only writer).
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

REPO = Path(__file__).resolve().parent.parent

TWO_STEP = """
from {lib} import FlowSpec, step


class BenchTwoStepFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        print(self.x)


if __name__ == "__main__":
    BenchTwoStepFlow()
"""

FOREACH = """
from {lib} import FlowSpec, step


class BenchForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range({scale}))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.sq = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.sq for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(self.total)


if __name__ == "__main__":
    BenchForeachFlow()
"""


def _env(lib: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
    env["METAFLOW_USER"] = "alice"
    if lib == "mfstore":
        env["MFSTORE_DB"] = str(workdir / "bench.mfdb")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def time_run(lib: str, source: str, workdir: Path, max_workers: int) -> float:
    flow = workdir / "flow.py"
    flow.write_text(source)
    t0 = time.perf_counter()
    cp = subprocess.run(
        [sys.executable, "flow.py", "run", "--max-workers", str(max_workers)],
        cwd=workdir,
        env=_env(lib, workdir),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"{lib} run failed:\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    return elapsed


def header(args: argparse.Namespace) -> list[str]:
    import apsw

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    try:
        from importlib.metadata import version

        mf = version("metaflow")
    except Exception:
        mf = "not installed"
    return [
        f"python {platform.python_version()}, SQLite {apsw.sqlite_lib_version()}, apsw "
        f"{apsw.apsw_version()}, metaflow {mf}, commit {commit}",
        f"machine {platform.machine()}, {os.cpu_count() or 0} CPUs; scale {args.scale}, "
        f"iterations {args.iterations}, max-workers {args.max_workers}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100, help="tasks in the foreach (default 100)")
    parser.add_argument(
        "--iterations", type=int, default=3, help="runs per flow and library (default 3)"
    )
    parser.add_argument(
        "--max-workers", type=int, default=16, help="--max-workers given to both (default 16)"
    )
    parser.add_argument(
        "--libs", default="mfstore,metaflow", help="comma-separated: mfstore,metaflow"
    )
    parser.add_argument(
        "--database", default=None, help="directory for the run directories (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    libs = [x for x in args.libs.split(",") if x]
    for line in header(args):
        print(line)
    root = Path(args.database or tempfile.mkdtemp(prefix="bench-runtime-"))
    cases = [("2-step", TWO_STEP), (f"foreach-{args.scale}", FOREACH)]
    results: dict[tuple[str, str], list[float]] = {}
    for case, template in cases:
        for lib in libs:
            workdir = root / lib / case
            workdir.mkdir(parents=True, exist_ok=True)
            source = template.format(lib=lib, scale=args.scale)
            results[(case, lib)] = [
                time_run(lib, source, workdir, args.max_workers) for _ in range(args.iterations)
            ]
    print()
    print(
        "{!s:<14} {!s:<9} {!s:10} {!s:10} {!s:8}".format(
            "flow", "library", "median s", "min s", "ratio"
        )
    )
    for case, _ in cases:
        base = (
            statistics.median(results[(case, "metaflow")])
            if (case, "metaflow") in results
            else None
        )
        for lib in libs:
            times = results[(case, lib)]
            med = statistics.median(times)
            ratio = "%.2f" % (med / base) if base and lib != "metaflow" else "-"
            print(f"{case!s:<14} {lib!s:<9} {med:10.2f} {min(times):10.2f} {ratio!s:8}")


if __name__ == "__main__":
    main()
