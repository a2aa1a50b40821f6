#!/usr/bin/env python3
"""Run Metaflow's own ``test/core`` matrix (graphs x tests, local context) on several
backends and print one table with a column per backend.

Backends (``--backends``, default ``metaflow,mfstore``):
  metaflow  real Metaflow on its local backend (the reference column);
  mfstore   mfstore's runtime: the flow's imports rewritten from ``metaflow`` to ``mfstore``
            (the only change to the flow; the checker package ``metaflow_test`` gets the
            same rewrite, so it asks mfstore's CLI and Client API);
  mfdb      real Metaflow on a .mfdb through mfstore's extension: only
            ``--metadata=mfdb --datastore=mfdb`` and ``METAFLOW_DEFAULT_METADATA=mfdb`` change.

Each case is the flow Metaflow's ``FlowFormatter`` generates for a (test, graph) pair. It runs
exactly as Metaflow's ``run_tests.py`` runs it in the ``python3-all-local`` context (same
environment, top-level and run options, resume for RESUME tests, then the ``CliCheck`` and
``MetadataCheck`` checkers).

Where the suite comes from (Metaflow is Apache-2.0):
  --source DIR   a Metaflow checkout (its ``test/core`` is used), or a ``test/core`` directory
                 (``tests/metaflow_ext/metaflow_core`` is the pinned subset run in CI), or
  (default)      the tarball of tag 2.19.39 downloaded from GitHub into ~/.cache/mfstore.

Usage::

    python tools/metaflow_core_matrix.py                      # everything, metaflow + mfstore
    python tools/metaflow_core_matrix.py --tests basicartifact,catchretry --graphs linear,branch
    python tools/metaflow_core_matrix.py --only mfstore --jobs 2 --json out.json
    python tools/metaflow_core_matrix.py --backends metaflow,mfdb --source tests/metaflow_ext/metaflow_core
    python tools/metaflow_core_matrix.py --reuse-metaflow prev.json   # Metaflow column from a previous run

Exit status: 0 when every case that passes on Metaflow passes on every other backend run
(except those in ``EXPECTED_DIFFERENCES``), else 1.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

TAG = "2.19.39"
TARBALL = f"https://codeload.github.com/Netflix/metaflow/tar.gz/refs/tags/{TAG}"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mfstore"

#: The context of Metaflow's contexts.json this matrix runs ("python3-all-local").
CONTEXT = "python3-all-local"

#: Every backend, the reference (real Metaflow, local) first.
BACKENDS = ("metaflow", "mfstore", "mfdb")
#: The pinned subset of ``test/core`` run in CI (see its NOTICE).
PINNED = Path(__file__).resolve().parent.parent / "tests" / "metaflow_ext" / "metaflow_core"

#: Tests (``Test``, or one case ``Test/graph``) whose result on a backend is expected to differ
#: from Metaflow's, with the backends concerned and the reason (listed in the output and in
#: the table's notes).
EXPECTED_DIFFERENCES: dict[str, tuple[tuple[str, ...], str]] = {
    "ExtensionsTest": (
        ("mfstore",),
        "needs Metaflow's test-only extension package (metaflow_extensions.test_org: its step"
        " and flow decorators, promoted modules and config), which only Metaflow loads",
    ),
    "CardExtensionsImportTest": (
        ("mfstore",),
        "needs the card types of Metaflow's test-only extension package",
    ),
    **{
        name: (
            ("mfstore",),
            "uses Metaflow's internal test plugin for unbounded foreach"
            " (@unbounded_test_foreach_internal, InternalTestUnboundedForeachInput: 'an example"
            " only, not part of the core unbounded-foreach implementation'), which mfstore does"
            " not provide",
        )
        for name in (
            "BasicUnboundedForeachTest",
            "BasicUnboundedForeachResumeTest",
            "NestedUnboundedForeachTest",
        )
    },
    "TagCatchTest/small-parallel": (
        ("mfstore",),
        "a documented difference: mfstore records the attempt of a killed task process as"
        " ended (_task_ok False, _exception), so `dump RUN/STEP` lists the @parallel workers"
        " whose every attempt was killed; Metaflow has no finished attempt for them and leaves"
        " them out, and the check reads the first task's `ex` artifact",
    ),
    "FlowOptionsTest": (
        ("mfstore",),
        "needs the flow decorator with options of Metaflow's test-only extension package",
    ),
}


def expected(test: str, backend: str, graph: str = "") -> str | None:
    """The reason ``test`` (on ``graph``) is expected to fail on ``backend`` (None: it must
    pass)."""
    for key in (f"{test}/{graph}", test):
        backends, reason = EXPECTED_DIFFERENCES.get(key, ((), ""))
        if backend in backends:
            return reason
    return None


#: Module paths of the checker package rewritten for mfstore (harness, not the flow).
_MODULE_MAP = [
    (r"\bmetaflow\.plugins\.cards\.card_modules\.test_cards\b", "mfstore.cards.test_cards"),
    (r"\bmetaflow\.plugins\.cards\.card_modules\b", "mfstore.cards"),
    (r"\bmetaflow\.plugins\.cards\.card_client\b", "mfstore.cards"),
    (r"\bmetaflow\.plugins\.cards\.exception\b", "mfstore.cards"),
    (r"\bmetaflow\.plugins\.cards\b", "mfstore.cards"),
    (r"\bmetaflow\.includefile\b", "mfstore.runtime.includefile"),
    (r"\bmetaflow\.util\b", "mfstore.runtime.util"),
    (r"\bmetaflow\.client\b", "mfstore.client"),
    (r"\bmetaflow\.exception\b", "mfstore.exception"),
    (r"\bmetaflow\.cards\b", "mfstore.cards"),
    (r"\bmetaflow\.metaflow_current\b", "mfstore.runtime.current"),
    (r"\bfrom metaflow import\b", "from mfstore import"),
    (r"^import metaflow$", "import mfstore as metaflow"),
]


def rewrite_imports(code: str) -> str:
    """``metaflow`` imports -> ``mfstore`` imports (nothing else changes: string literals
    such as the exception type names a test expects, "metaflow.exception.X", stay)."""
    lines = code.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("from ", "import ")):
            for pat, repl in _MODULE_MAP:
                line = re.sub(pat, repl, line)
            lines[i] = line
    return "\n".join(lines)


def fetch_suite(source: str | None) -> Path:
    """The ``test/core`` directory: from ``source`` or downloaded once into the cache."""
    if source:
        core = Path(source) / "test" / "core"
        if not core.is_dir():
            core = Path(source)
        if not (core / "metaflow_test").is_dir():
            sys.exit(f"{source}: no test/core (with metaflow_test/) found there")
        return core
    core = CACHE / f"metaflow-{TAG}" / "test" / "core"
    if core.is_dir():
        return core
    print(f"downloading Metaflow {TAG}'s test suite from {TARBALL} ...", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(TARBALL, timeout=120) as resp:
        data = resp.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if "/test/core/" in m.name]
        for m in members:
            m.name = f"metaflow-{TAG}/" + m.name.split("/", 1)[1]
        tar.extractall(CACHE, members=members, filter="data")
    return core


def load_cases(core: Path, tests: set[str], graphs: set[str]) -> list[dict[str, Any]]:
    """Every valid (test, graph) pair, generated with Metaflow's own FlowFormatter.

    ``tests``: (parts of) test class names, lower case; ``graphs``: graph names or graph
    file names, lower case; empty: all."""
    sys.path.insert(0, str(core))
    sys.path.insert(0, str(core / "tests"))
    from metaflow_test import MetaflowTest
    from metaflow_test.formatter import FlowFormatter

    disabled = set(map(str, context_for(core, "metaflow").get("disabled_tests", [])))
    graph_specs = []
    for f in sorted((core / "graphs").glob("*.json")):
        spec = json.loads(f.read_text())
        if not graphs or spec["name"].lower() in graphs or f.stem.lower() in graphs:
            graph_specs.append(spec)
    out = []
    for f in sorted((core / "tests").glob("*.py")):
        mod = importlib.import_module(f.stem)
        for name in dir(mod):
            obj = getattr(mod, name)
            if not (isinstance(obj, type) and issubclass(obj, MetaflowTest)):
                continue
            if obj is MetaflowTest or name in disabled:
                continue
            if tests and not any(t in name.lower() for t in tests):
                continue
            test = obj()
            for spec in graph_specs:
                fmt = FlowFormatter(spec, test)
                if not fmt.valid:
                    continue
                out.append(
                    {
                        "test": name,
                        "graph": spec["name"],
                        "flow_code": fmt.flow_code,
                        "check_code": fmt.check_code,
                        "flow_name": fmt.flow_name,
                        "should_fail": fmt.should_fail,
                        "should_resume": fmt.should_resume,
                        "resume_step": fmt.resume_step,
                        "copy_files": list(fmt.copy_files),
                    }
                )
    return sorted(out, key=lambda c: (c["test"], c["graph"]))


def context_for(core: Path, backend: str) -> dict[str, Any]:
    """The local context of ``contexts.json``, switched to the .mfdb for ``mfdb``."""
    contexts = json.loads((core / "contexts.json").read_text())
    ctx = dict(next(c for c in contexts["contexts"] if c["name"] == CONTEXT))
    if backend == "mfdb":
        ctx["env"] = {**ctx["env"], "METAFLOW_DEFAULT_METADATA": "mfdb"}
        swap = {"--metadata=local": "--metadata=mfdb", "--datastore=local": "--datastore=mfdb"}
        ctx["top_options"] = [swap.get(o, o) for o in ctx["top_options"]]
    return ctx


def _run(
    cmd: list[str], env: dict[str, str], timeout: float, cwd: Path
) -> subprocess.CompletedProcess[str]:
    try:
        cp = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, errors="replace"
        )
    except subprocess.TimeoutExpired as exc:
        cp = subprocess.CompletedProcess(cmd, -9, str(exc.stdout or ""), "timed out")
    with open(cwd / "commands.log", "a") as log:  # read in a directory kept with --keep
        log.write(f"$ {' '.join(cmd)}\n-> {cp.returncode}\n{cp.stdout}\n{cp.stderr}\n")
    return cp


def run_case(
    case: dict[str, Any], system: str, core: Path, timeout: float, keep: bool = False
) -> dict[str, Any]:
    """Run one case on backend ``system``: {'ok': bool, 'why': str, 'detail', 'seconds'}
    (``keep``: the case's directory is kept, its path in the result's 'dir')."""
    tmp = Path(tempfile.mkdtemp(prefix=f"mfcore-{system}-"))
    try:
        result = _run_case_in(tmp, case, system, core, timeout)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if keep:
        result["dir"] = str(tmp)
        print(f"  kept {case['test']}/{case['graph']} on {system} in {tmp}", file=sys.stderr)
    return result


def _run_case_in(
    tmp: Path, case: dict[str, Any], system: str, core: Path, timeout: float
) -> dict[str, Any]:
    context = context_for(core, system)
    t0 = time.monotonic()
    flow_code, check_code = case["flow_code"], case["check_code"]
    shutil.copytree(core / "metaflow_test", tmp / "metaflow_test")
    if system == "mfstore":
        flow_code = rewrite_imports(flow_code)
        check_code = rewrite_imports(check_code)
        for f in (tmp / "metaflow_test").glob("*.py"):
            f.write_text(rewrite_imports(f.read_text()))
    (tmp / "test_flow.py").write_text(flow_code)
    (tmp / "check_flow.py").write_text(check_code)
    for name in case["copy_files"]:
        shutil.copy2(core / "tests" / name, tmp / name)
    env = {
        "USER": os.environ.get("USER", "tester"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # as in an activated environment: Metaflow starts `python` from PATH (e.g. the
        # worker processes of a local @parallel step)
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", ".")]),
        "PYTHONIOENCODING": "utf_8",
        # this case's own datastore and client cache: not one found by walking up from the
        # case's directory (a stray /tmp/.metaflow), nor /tmp's cache shared by all cases
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp),
        "METAFLOW_CLIENT_CACHE_PATH": str(tmp / "client_cache"),
        # the case's directory, then test/core (as run_tests.py sets it: Metaflow loads the
        # suite's test-only extension package metaflow_extensions.test_org from there),
        # then the caller's PYTHONPATH (e.g. an mfstore checkout)
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(tmp), str(core), os.environ.get("PYTHONPATH")])
        ),
        **{k: v.format(nonce="x") for k, v in context["env"].items()},
    }
    py = sys.executable

    def flow_cmd(mode: str, extra: list[str] | None = None) -> list[str]:
        return [
            py,
            "-B",
            "test_flow.py",
            *context["top_options"],
            mode,
            *(extra or []),
            "--run-id-file",
            "run-id",
            *context["run_options"],
        ]

    if True:  # cases run in threads: every command gets cwd=tmp (never os.chdir)
        cp = _run(flow_cmd("run"), env, timeout, tmp)
        if cp.returncode:
            if case["should_fail"]:
                pass
            elif case["should_resume"]:
                extra = [case["resume_step"]] if case["resume_step"] else []
                cp = _run(flow_cmd("resume", extra), env, timeout, tmp)
                if cp.returncode:
                    return _result(False, "resume failed", cp, t0)
            else:
                return _result(False, "run failed", cp, t0)
        elif case["should_fail"]:
            return _result(False, "should have failed", cp, t0)
        if not (tmp / "run-id").exists():
            return _result(False, "no run-id file", cp, t0)
        run_id = (tmp / "run-id").read_text()
        for check in context["checks"]:
            klass = {"python3-cli": "CliCheck", "python3-metadata": "MetadataCheck"}[check]
            cp = _run(
                [py, "check_flow.py", klass, run_id, *context["top_options"]],
                env,
                timeout,
                tmp,
            )
            if cp.returncode:
                return _result(False, f"{klass} failed", cp, t0)
        if system == "mfdb" and (tmp / ".metaflow").exists():
            return _result(False, "a .metaflow directory was created", cp, t0)
        return _result(True, "", cp, t0)


def _result(ok: bool, why: str, cp: subprocess.CompletedProcess[str], t0: float) -> dict[str, Any]:
    tail = ""
    if not ok:
        lines = [
            ln
            for ln in (cp.stderr or "").splitlines() + (cp.stdout or "").splitlines()
            if ln.strip()
        ]
        err = [
            ln
            for ln in lines
            if re.search(r"Error|error|Exception|failed|not ", ln) and "Workflow failed" not in ln
        ]
        tail = (err[-1] if err else (lines[-1] if lines else "")).strip()[:160]
    return {"ok": ok, "why": why, "detail": tail, "seconds": round(time.monotonic() - t0, 1)}


def run_matrix(
    core: Path,
    tests: set[str] | frozenset[str] = frozenset(),
    graphs: set[str] | frozenset[str] = frozenset(),
    backends: tuple[str, ...] = ("metaflow", "mfstore"),
    jobs: int = 2,
    timeout: float = 600,
    previous: dict[str, Any] | None = None,
    json_path: str | None = None,
    keep: bool = False,
) -> list[dict[str, Any]]:
    """``[{'test', 'graph', <backend>: result or None, ...}]`` for every case (a column
    per backend of ``BACKENDS``; ``previous`` holds Metaflow results to reuse by
    ``test/graph``)."""
    cases = load_cases(core, set(tests), set(graphs))
    previous = previous or {}
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        where = {}
        for c in cases:
            key = f"{c['test']}/{c['graph']}"
            for system in backends:
                if system == "metaflow" and key in previous:
                    results[(key, system)] = previous[key]
                    continue
                where[pool.submit(run_case, c, system, core, timeout, keep)] = (key, system)
        for fut in cf.as_completed(where):
            key, system = where[fut]
            results[(key, system)] = r = fut.result()
            print(
                f"  {key:<60} {system:<9} {'pass' if r['ok'] else 'FAIL'} {r['why']} {r['detail']}",
                file=sys.stderr,
                flush=True,
            )
            if json_path:  # partial results survive an interrupted matrix
                partial = [
                    {"test": k.split("/")[0], "graph": k.split("/")[1], s_: v}
                    for (k, s_), v in results.items()
                ]
                Path(json_path + ".partial").write_text(json.dumps(partial))
    rows = []
    for c in cases:
        key = f"{c['test']}/{c['graph']}"
        row: dict[str, Any] = {"test": c["test"], "graph": c["graph"]}
        row.update({b: results.get((key, b)) for b in BACKENDS})
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", help=f"a Metaflow checkout or test/core (default: tag {TAG})")
    ap.add_argument("--tests", default="", help="comma-separated (parts of) test class names")
    ap.add_argument("--graphs", default="", help="comma-separated graph names or file names")
    ap.add_argument(
        "--backends",
        default="metaflow,mfstore",
        help=f"comma-separated backends to run, among {', '.join(BACKENDS)}",
    )
    ap.add_argument("--only", choices=BACKENDS, help="run this one backend only")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per command")
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--reuse-metaflow", help="take the Metaflow column from this JSON")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", action="store_true", help="keep each case's directory (debugging)")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="run nothing: merge these results (--json or .partial files; a later file's"
        " result for a case and backend replaces an earlier one) and print the table",
    )
    ap.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = ap.parse_args()
    if args.merge:
        rows = merge_results([Path(p) for p in args.merge])
        if args.source:  # list the cases no file has, as not run
            rows = with_all_cases(rows, load_cases(fetch_suite(args.source), set(), set()))
        return report(rows, args.json, args.markdown)

    backends = (args.only,) if args.only else tuple(split(args.backends))
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        ap.error(f"--backends: choose among {', '.join(BACKENDS)}")
    core = fetch_suite(args.source)
    tests, graphs = set(split(args.tests)), set(split(args.graphs))
    if args.list:
        for c in load_cases(core, tests, graphs):
            print(c["test"], c["graph"])
        return 0
    previous: dict[str, Any] = {}
    if args.reuse_metaflow:
        for row in json.loads(Path(args.reuse_metaflow).read_text())["cases"]:
            if row.get("metaflow"):
                previous[f"{row['test']}/{row['graph']}"] = row["metaflow"]
    rows = run_matrix(
        core, tests, graphs, backends, args.jobs, args.timeout, previous, args.json, args.keep
    )
    return report(rows, args.json, args.markdown)


def split(text: str) -> list[str]:
    """Comma-separated values, stripped and lower-cased, in order."""
    return [x.strip().lower() for x in text.split(",") if x.strip()]


def merge_results(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per case from several result files (``--json`` output, or its ``.partial``
    file): for each case and backend the result of the last file that has one."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for row in data["cases"] if isinstance(data, dict) else data:
            key = (str(row["test"]), str(row["graph"]))
            into = merged.setdefault(key, {"test": key[0], "graph": key[1]})
            for b in BACKENDS:
                into.setdefault(b, None)
                if row.get(b) is not None:
                    into[b] = row[b]
    return [merged[k] for k in sorted(merged)]


def with_all_cases(rows: list[dict[str, Any]], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` plus a row with no result for every case of ``cases`` they lack."""
    have = {(r["test"], r["graph"]) for r in rows}
    extra = [
        {"test": c["test"], "graph": c["graph"], **dict.fromkeys(BACKENDS)}
        for c in cases
        if (c["test"], c["graph"]) not in have
    ]
    return sorted(rows + extra, key=lambda r: (r["test"], r["graph"]))


def note(row: dict[str, Any]) -> str:
    """Why a case failed where it did (one line), or why that was expected."""
    parts = []
    for b in BACKENDS:
        r = row.get(b)
        if r is not None and not r["ok"]:
            reason = expected(row["test"], b, row["graph"])
            detail = re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ ", "", r["detail"])  # log time stamp
            text = f"expected: {reason}" if reason else f"{r['why']}: {detail}"
            parts.append(f"{b}: {text}"[:140])
    return "; ".join(parts)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown: a row per case, a column per backend, then the totals."""

    def cell(r: dict[str, Any] | None) -> str:
        return "not run" if r is None else ("pass" if r["ok"] else "**FAIL**")

    out = ["| test | graph | " + " | ".join(BACKENDS) + " | note |"]
    out.append("|" + "---|" * (len(BACKENDS) + 3))
    for row in rows:
        text = note(row).replace("|", "\\|").replace("`", "'")
        cells = " | ".join(cell(row.get(b)) for b in BACKENDS)
        out.append(f"| {row['test']} | {row['graph']} | {cells} | {text} |")
    out.append("")
    for b in BACKENDS:
        ran = [r for r in rows if r.get(b) is not None]
        passed = sum(1 for r in ran if r[b]["ok"])
        out.append(f"- {b}: {passed} of {len(ran)} cases run pass ({len(rows)} cases)")
    for b in BACKENDS[1:]:
        gaps = [
            r
            for r in rows
            if r.get("metaflow") and r.get(b) and r["metaflow"]["ok"] and not r[b]["ok"]
        ]
        unexplained = [
            f"{r['test']}/{r['graph']}" for r in gaps if expected(r["test"], b, r["graph"]) is None
        ]
        out.append(
            f"- pass on metaflow but not on {b}: {len(gaps)}"
            f" ({len(unexplained)} not explained{': ' + ', '.join(unexplained) if unexplained else ''})"
        )
    return "\n".join(out) + "\n"


def report(
    rows: list[dict[str, Any]], json_path: str | None = None, markdown_path: str | None = None
) -> int:
    """Print the table (a column per backend run) and the totals; the exit status says
    whether every backend passes what Metaflow passes."""

    def cell(r: dict[str, Any] | None) -> str:
        return "-" if r is None else ("pass" if r["ok"] else "FAIL")

    ran = [b for b in BACKENDS if any(row[b] is not None for row in rows)]
    others = [b for b in ran if b != "metaflow"]
    header = f"{'test':<34} {'graph':<32} " + " ".join(f"{b:<8}" for b in ran)
    print(header + " failure")
    bad: dict[str, int] = {b: 0 for b in others}
    unexplained = 0
    for row in rows:
        mf = row["metaflow"]
        why = ""
        for b in others:
            r = row[b]
            if r is not None and not r["ok"] and not why:
                why = f"{b}: " + (r["why"] + ": " + r["detail"])[:100]
            if mf and r and mf["ok"] and not r["ok"]:
                bad[b] += 1
                unexplained += expected(row["test"], b, row["graph"]) is None
        cells = " ".join(f"{cell(row[b]):<8}" for b in ran)
        print(f"{row['test']:<34} {row['graph']:<32} {cells} {why}")
    print()
    passes = "   ".join(f"pass on {b}: {sum(1 for r in rows if r[b] and r[b]['ok'])}" for b in ran)
    print(f"cases: {len(rows)}   {passes}")
    for b in others:
        print(f"pass on metaflow but not on {b}: {bad[b]}")
    print(f"({unexplained} not explained by EXPECTED_DIFFERENCES)")
    for name, (where, reason) in EXPECTED_DIFFERENCES.items():
        print(f"  expected difference: {name} on {', '.join(where)}: {reason}")
    if json_path:
        Path(json_path).write_text(
            json.dumps({"tag": TAG, "context": CONTEXT, "cases": rows}, indent=1)
        )
    if markdown_path:
        Path(markdown_path).write_text(markdown(rows))
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
