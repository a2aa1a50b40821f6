#!/usr/bin/env python3
"""Metaflow's own ``test/core`` matrix (graphs x tests, the ``python3-all-local`` context)
run by real Metaflow on its local backend and on a .mfdb through mfstore's extension
(``--metadata mfdb --datastore mfdb``), printed as one pass table.

Each case is the flow Metaflow's ``FlowFormatter`` generates for a (test, graph) pair, run
as Metaflow's ``run_tests.py`` runs it with the ``cli`` executor: ``test_flow.py run`` with the
context's options (then ``resume`` for resume tests), then ``check_flow.py CliCheck`` and
``check_flow.py MetadataCheck`` (Metaflow's checkers: its CLI and its client). The only
change for mfdb: ``--metadata=mfdb --datastore=mfdb`` and ``METAFLOW_DEFAULT_METADATA=mfdb``.

Where the suite comes from:
  --source DIR   a Metaflow checkout (its ``test/core``) or a ``test/core`` directory;
  (default)      the pinned subset in ``tests/metaflow_ext/metaflow_core`` (see its NOTICE).

Usage::

    python tools/metaflow_core_mfdb.py                              # pinned subset, both
    python tools/metaflow_core_mfdb.py --source ~/metaflow --jobs 2 # the whole matrix
    python tools/metaflow_core_mfdb.py --tests basicartifact --graphs linear --only mfdb

Exit status 0 when every case that passes on local passes on mfdb, else 1.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PINNED = REPO / "tests" / "metaflow_ext" / "metaflow_core"
CONTEXT = "python3-all-local"
SYSTEMS = ("local", "mfdb")
#: Cases that need Metaflow's own test-only extension package (not installed here).
NEEDS_TEST_EXTENSION = {"ExtensionsTest", "CardExtensionsImportTest", "FlowOptionsTest"}


def suite_dir(source: str | None) -> Path:
    """The ``test/core`` directory to use."""
    if not source:
        return PINNED
    core = Path(source).expanduser()
    if (core / "test" / "core").is_dir():
        core = core / "test" / "core"
    if not (core / "metaflow_test").is_dir():
        sys.exit(f"{source}: no test/core with metaflow_test/ there")
    return core


def context_for(core: Path, system: str) -> dict[str, Any]:
    """The local context, switched to mfdb for ``system == 'mfdb'``."""
    contexts = json.loads((core / "contexts.json").read_text())
    ctx = dict(next(c for c in contexts["contexts"] if c["name"] == CONTEXT))
    if system == "mfdb":
        ctx["env"] = {**ctx["env"], "METAFLOW_DEFAULT_METADATA": "mfdb"}
        swap = {"--metadata=local": "--metadata=mfdb", "--datastore=local": "--datastore=mfdb"}
        ctx["top_options"] = [swap.get(o, o) for o in ctx["top_options"]]
    return ctx


def load_cases(core: Path, tests: set[str], graphs: set[str]) -> list[dict[str, Any]]:
    """Every valid (test, graph) pair, formatted by Metaflow's own FlowFormatter."""
    sys.path[:0] = [str(core), str(core / "tests")]
    from metaflow_test import MetaflowTest
    from metaflow_test.formatter import FlowFormatter

    disabled = set(map(str, context_for(core, "local").get("disabled_tests", [])))
    specs = [
        json.loads(f.read_text())
        for f in sorted((core / "graphs").glob("*.json"))
        if not graphs or f.stem.lower() in graphs or json.loads(f.read_text())["name"] in graphs
    ]
    cases = []
    for f in sorted((core / "tests").glob("*.py")):
        module = importlib.import_module(f.stem)
        for name, cls in vars(module).items():
            if not (isinstance(cls, type) and issubclass(cls, MetaflowTest)):
                continue
            if cls is MetaflowTest or name in disabled or name in NEEDS_TEST_EXTENSION:
                continue
            if tests and not any(t in name.lower() for t in tests):
                continue
            for spec in specs:
                fmt = FlowFormatter(spec, cls())
                if fmt.valid:
                    cases.append(
                        {
                            "test": name,
                            "graph": spec["name"],
                            "flow": fmt.flow_code,
                            "check": fmt.check_code,
                            "should_fail": fmt.should_fail,
                            "should_resume": fmt.should_resume,
                            "resume_step": fmt.resume_step,
                            "copy_files": list(fmt.copy_files),
                        }
                    )
    return sorted(cases, key=lambda c: (c["test"], c["graph"]))


def run_case(case: dict[str, Any], system: str, core: Path, timeout: float) -> dict[str, Any]:
    """One case on one backend: ``{'ok': bool, 'why': str, 'seconds': float}``."""
    ctx = context_for(core, system)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"mfcore-{system}-"))
    try:
        shutil.copytree(core / "metaflow_test", tmp / "metaflow_test")
        (tmp / "test_flow.py").write_text(case["flow"])
        (tmp / "check_flow.py").write_text(case["check"])
        for name in case["copy_files"]:
            shutil.copy2(core / "tests" / name, tmp / name)
        env = {
            "USER": os.environ.get("USER", "tester"),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PATH": os.environ.get("PATH", "."),
            "PYTHONIOENCODING": "utf_8",
            "PYTHONPATH": str(tmp),
            **{k: v.format(nonce="x") for k, v in ctx["env"].items()},
        }

        def run(args: list[str]) -> subprocess.CompletedProcess[str]:
            try:
                return subprocess.run(
                    [sys.executable, "-B", *args],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    errors="replace",
                )
            except subprocess.TimeoutExpired:
                return subprocess.CompletedProcess(args, -9, "", "timed out")

        def flow(mode: str, extra: list[str]) -> subprocess.CompletedProcess[str]:
            opts = [*ctx["top_options"], mode, *extra, "--run-id-file", "run-id"]
            return run(["test_flow.py", *opts, *ctx["run_options"]])

        cp = flow("run", [])
        if cp.returncode and case["should_resume"]:
            cp = flow("resume", [case["resume_step"]] if case["resume_step"] else [])
            if cp.returncode:
                return _result(False, "resume failed", cp, t0)
        elif cp.returncode and not case["should_fail"]:
            return _result(False, "run failed", cp, t0)
        elif not cp.returncode and case["should_fail"]:
            return _result(False, "should have failed", cp, t0)
        if not (tmp / "run-id").exists():
            return _result(False, "no run-id file", cp, t0)
        run_id = (tmp / "run-id").read_text()
        for check in ctx["checks"]:
            klass = {"python3-cli": "CliCheck", "python3-metadata": "MetadataCheck"}[check]
            cp = run(["check_flow.py", klass, run_id, *ctx["top_options"]])
            if cp.returncode:
                return _result(False, f"{klass} failed", cp, t0)
        if system == "mfdb" and (tmp / ".metaflow").exists():
            return _result(False, "a .metaflow directory was created", cp, t0)
        return _result(True, "", cp, t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _result(ok: bool, why: str, cp: subprocess.CompletedProcess[str], t0: float) -> dict[str, Any]:
    detail = ""
    if not ok:
        lines = [ln.strip() for ln in (cp.stderr + "\n" + cp.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "rror" in ln or "xception" in ln or "failed" in ln]
        detail = (errors or lines or [""])[-1][:160]
    return {"ok": ok, "why": why, "detail": detail, "seconds": round(time.monotonic() - t0, 1)}


def run_matrix(
    core: Path,
    tests: set[str] = frozenset(),  # type: ignore[assignment]
    graphs: set[str] = frozenset(),  # type: ignore[assignment]
    systems: tuple[str, ...] = SYSTEMS,
    jobs: int = 2,
    timeout: float = 600,
) -> list[dict[str, Any]]:
    """``[{'test', 'graph', 'local': result, 'mfdb': result}]`` for every case."""
    cases = load_cases(core, set(tests), set(graphs))
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            (i, s): pool.submit(run_case, c, s, core, timeout)
            for i, c in enumerate(cases)
            for s in systems
        }
        rows = []
        for i, c in enumerate(cases):
            row: dict[str, Any] = {"test": c["test"], "graph": c["graph"]}
            for s in SYSTEMS:
                row[s] = futures[(i, s)].result() if (i, s) in futures else None
            rows.append(row)
            print(
                f"  {c['test']}/{c['graph']}: "
                + ", ".join(f"{s} {'pass' if row[s]['ok'] else 'FAIL'}" for s in systems),
                file=sys.stderr,
                flush=True,
            )
    return rows


def report(rows: list[dict[str, Any]]) -> int:
    """Print the pass table; 1 if a case passes on local but not on mfdb."""

    def cell(r: dict[str, Any] | None) -> str:
        return "-" if r is None else ("pass" if r["ok"] else "FAIL")

    print("| test | graph | local | mfdb | mfdb failure |")
    print("|---|---|---|---|---|")
    bad = 0
    for row in rows:
        mfdb = row["mfdb"]
        why = "" if mfdb is None or mfdb["ok"] else f"{mfdb['why']}: {mfdb['detail']}"
        print(f"| {row['test']} | {row['graph']} | {cell(row['local'])} | {cell(mfdb)} | {why} |")
        if row["local"] and mfdb and row["local"]["ok"] and not mfdb["ok"]:
            bad += 1
    n_local = sum(1 for r in rows if r["local"] and r["local"]["ok"])
    n_mfdb = sum(1 for r in rows if r["mfdb"] and r["mfdb"]["ok"])
    print(
        f"\ncases: {len(rows)}; pass on local: {n_local}; pass on mfdb: {n_mfdb}; "
        f"pass on local but not on mfdb: {bad}"
    )
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--source", help="a Metaflow checkout or its test/core (default: pinned subset)"
    )
    ap.add_argument("--tests", default="", help="comma-separated (parts of) test class names")
    ap.add_argument("--graphs", default="", help="comma-separated graph file names or names")
    ap.add_argument("--only", choices=SYSTEMS, help="run one backend only")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    split = lambda s: {x.strip().lower() for x in s.split(",") if x.strip()}  # noqa: E731
    rows = run_matrix(
        suite_dir(args.source),
        split(args.tests),
        split(args.graphs),
        (args.only,) if args.only else SYSTEMS,
        args.jobs,
        args.timeout,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())
