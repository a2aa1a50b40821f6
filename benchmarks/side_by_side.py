"""mfstore vs real Metaflow, side by side on the same histories: one table of medians and ratios.

    python -m benchmarks.side_by_side [--sizes 100,1000,10000,100000,1000000] [--reps 5] [--quick]

(``bash benchmarks/run.sh`` does the same inside a venv with mfstore + metaflow==2.19.39.)

History: real Metaflow runs ``HistLinearFlow`` (start -> end; a few runs alternating
METAFLOW_USER alice / bob) and ``BenchForeachFlow`` (``bench_runtime.FOREACH``: a 100-task foreach, one run) in one
``.metaflow`` directory. Larger sizes are reached with on-disk clones of the real linear
runs: the run directory is copied with a new run id (and shifted ``ts_epoch``) written into
every ``_meta`` record (run, step, task, artifact, sysmeta); users alternate alice / bob and
every 10th clone carries the user tag ``sometag`` in all its records (as ``run --tag`` would).
Metaflow's own client then reads each size back (count, alice count, ``sometag`` count,
``latest_run`` id, ``latest_run.data.result``) before anything is timed. Each size is imported
into a fresh ``.mfdb`` with ``mfstore.importer.import_metaflow`` (= ``mfstore import-metaflow``),
so both systems read the same history. Sizes above ``--metaflow-max`` (default 10,000) are
mfstore alone: the largest imported file is copied and extended with Writer-built run rows
(same users, tags, status and timestamps pattern; no steps or tasks, which no per-run-scan
operation reads), in one ``BEGIN IMMEDIATE`` transaction per 50,000 runs.

Measured, every op in its own namespace (None or ``user:alice``):

* *warm*: one worker process per (system, size); each op gets one warm-up call, then
  ``--reps`` timed calls (Metaflow at >= 10,000 runs: at most 3, each call costs ~0.5 s).
* *fresh*: one new process per (op, repetition); the op's time excludes ``import`` (reported
  apart as the "fresh process" row: interpreter start + import + ``latest_run``, wall time);
  Metaflow's client blob cache is a new empty directory in each process. OS page cache warm.
* runtime: wall time of ``python flow.py run`` (2-step flow, 100-task foreach, --max-workers 16)
  from ``benchmarks/bench_runtime.py``.
* disk: ``du --apparent-size`` and allocated ``du`` of the ``.metaflow`` directory vs the
  ``.mfdb`` (checkpointed, no ``-wal``).

Reads are autocommit (one implicit read transaction per statement); the import writes one
transaction; the Writer extension one per 50,000 runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.bench_runtime import FOREACH, TWO_STEP, time_run

REPO = Path(__file__).resolve().parent.parent
F = "HistLinearFlow"
W = "BenchForeachFlow"  # bench_runtime.FOREACH: start -> work (foreach, self.sq) -> join -> end
NS_USER = "user:alice"

LINEAR_SRC = """
from metaflow import FlowSpec, step


class HistLinearFlow(FlowSpec):
    @step
    def start(self):
        self.x = 42
        self.next(self.end)

    @step
    def end(self):
        self.result = self.x + 1


if __name__ == "__main__":
    HistLinearFlow()
"""


# --------------------------------------------------------------------------- operations
# The same code runs against ``metaflow`` and ``mfstore``: both export this Client API.
# (key, label, namespace, per-run scan?, callable(lib, ctx))
Op = tuple[str, str, "str | None", bool, Callable[[Any, dict], object]]


def _foreach_read(lib: Any, ctx: dict) -> object:
    return [t["sq"].data for t in lib.Step(ctx["wide"] + "/work")]


OPS: list[Op] = []
for _ns in (None, NS_USER):
    OPS += [
        ("flow_ctor", "Flow(F)", _ns, True, lambda lib, ctx: lib.Flow(F)),
        ("latest_run", "Flow(F).latest_run", _ns, True, lambda lib, ctx: lib.Flow(F).latest_run),
        (
            "latest_successful_run",
            "Flow(F).latest_successful_run",
            _ns,
            True,
            lambda lib, ctx: lib.Flow(F).latest_successful_run,
        ),
        (
            "runs_tag_list",
            "list(Flow(F).runs('sometag'))",
            _ns,
            False,
            lambda lib, ctx: list(lib.Flow(F).runs("sometag")),
        ),
        (
            "runs_tag_next",
            "next(Flow(F).runs('sometag'))",
            _ns,
            True,
            lambda lib, ctx: next(iter(lib.Flow(F).runs("sometag"))),
        ),
        ("run_ctor", "Run(pathspec)", _ns, False, lambda lib, ctx: lib.Run(ctx["run"])),
        (
            "run_data",
            "Run(pathspec).data.result",
            _ns,
            False,
            lambda lib, ctx: lib.Run(ctx["run"]).data.result,
        ),
        ("foreach_read", "foreach: t['sq'].data for each task", _ns, False, _foreach_read),
        ("flows", "Metaflow().flows", _ns, _ns is not None, lambda lib, ctx: lib.Metaflow().flows),
    ]
FRESH_SNIPPET = (
    f"from {{lib}} import Flow, namespace; namespace('user:alice'); print(Flow('{F}').latest_run)"
)


def _lib(name: str) -> Any:
    if name == "metaflow":
        import metaflow

        return metaflow
    import mfstore

    return mfstore


def _select(lib: Any, name: str, history: str) -> None:
    if name == "mfstore":
        lib.metadata(history)


def worker_warm(name: str, history: str, ctx: dict, reps: int) -> dict[str, list[float]]:
    lib = _lib(name)
    _select(lib, name, history)
    out: dict[str, list[float]] = {}
    for key, _label, ns, _scan, fn in OPS:
        lib.namespace(ns)
        fn(lib, ctx)  # warm-up
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(lib, ctx)
            samples.append(time.perf_counter() - t0)
        out[f"{key}|{ns}"] = samples
    return out


def worker_fresh(name: str, history: str, ctx: dict, op: str) -> dict[str, float]:
    t0 = time.perf_counter()
    lib = _lib(name)
    t_import = time.perf_counter() - t0
    _select(lib, name, history)
    key, ns_s = op.split("|")
    ns = None if ns_s == "None" else ns_s
    fn = next(o[4] for o in OPS if o[0] == key and o[2] == ns)
    lib.namespace(ns)
    t0 = time.perf_counter()
    fn(lib, ctx)
    return {"import": t_import, "op": time.perf_counter() - t0}


def _worker_env(name: str, cache: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
    env["METAFLOW_USER"] = "alice"
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""
    )
    if cache is not None:
        env["METAFLOW_CLIENT_CACHE_PATH"] = str(cache)
    return env


def _call_worker(name: str, history: Path, ctx: dict, args: list[str], cache: Path) -> Any:
    cwd = history if name == "metaflow" else REPO  # Metaflow finds .metaflow from the cwd
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.side_by_side",
            "--worker",
            name,
            "--history",
            str(history),
            "--ctx",
            json.dumps(ctx),
            *args,
        ],
        cwd=cwd,
        env=_worker_env(name, cache),
        capture_output=True,
        text=True,
    )
    if cp.returncode != 0:
        raise RuntimeError(f"worker {name} {args} failed:\n{cp.stderr[-3000:]}")
    return json.loads(cp.stdout.strip().splitlines()[-1])


def measure(
    name: str, history: Path, ctx: dict, reps: int, scratch: Path
) -> dict[str, dict[str, float]]:
    """{"op|ns": {"warm": median s, "fresh": median s}} plus "fresh_process" wall time."""
    res: dict[str, dict[str, float]] = {}
    cache = scratch / (f"cache-{name}")
    warm = _call_worker(name, history, ctx, ["--reps", str(reps)], cache)
    for k, samples in warm.items():
        res[k] = {"warm": statistics.median(samples)}
    for key, _label, ns, _scan, _fn in OPS:
        k = f"{key}|{ns}"
        samples = []
        for _ in range(reps):
            shutil.rmtree(cache, ignore_errors=True)
            samples.append(_call_worker(name, history, ctx, ["--op", k], cache)["op"])
        res[k]["fresh"] = statistics.median(samples)
    walls = []
    code = FRESH_SNIPPET.format(lib=name)
    if name == "mfstore":
        code = code.replace("namespace;", f"namespace, metadata; metadata({str(history)!r});")
    for _ in range(reps):
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=history if name == "metaflow" else REPO,
            env=_worker_env(name, cache),
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - t0)
    res["fresh_process"] = {"fresh": statistics.median(walls)}
    return res


# --------------------------------------------------------------------------- building histories
def _run_metaflow(src: str, fname: str, workdir: Path, user: str, extra: list[str] = ()) -> None:
    (workdir / fname).write_text(src)
    env = _worker_env("metaflow", workdir / ".mf_client_cache")
    env["METAFLOW_USER"] = user
    cp = subprocess.run(
        [sys.executable, fname, "run", *extra], cwd=workdir, env=env, capture_output=True, text=True
    )
    if cp.returncode != 0:
        raise RuntimeError(f"metaflow {fname} failed:\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")


def build_base(workdir: Path, linear_runs: int, width: int) -> None:
    """Real Metaflow runs: HistLinearFlow alternating alice/bob, the foreach in parallel."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Two Metaflow runs start at once below: create the datastore first, or both race to
    # mkdir it and one fails with FileExistsError (Metaflow's local_storage).
    (workdir / ".metaflow").mkdir(exist_ok=True)

    def linear() -> None:
        for i in range(linear_runs):
            _run_metaflow(LINEAR_SRC, "linear_flow.py", workdir, "alice" if i % 2 == 0 else "bob")

    with ThreadPoolExecutor(2) as pool:
        futs = [
            pool.submit(linear),
            pool.submit(
                _run_metaflow,
                FOREACH.format(lib="metaflow", scale=width),
                "wide_flow.py",
                workdir,
                "alice",
                ["--max-workers", "16", "--max-num-splits", str(max(100, width))],
            ),
        ]
        for f in futs:
            f.result()


def _run_dirs(flow_dir: Path) -> list[Path]:
    return sorted(
        (d for d in flow_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: d.name
    )


def _load_template(
    run_dir: Path,
) -> tuple[int, list[str], list[tuple[str, int | None, str | bytes]]]:
    """(run ts, dirs, files): JSON ``_meta`` records with @@RUN@@/@@TS@@/@@TAGS@@ placeholders."""
    run_ts = json.loads((run_dir / "_meta" / "_self.json").read_text())["ts_epoch"]
    dirs, files = [], []
    for root, _dnames, fnames in os.walk(run_dir):
        rel_root = os.path.relpath(root, run_dir)
        dirs.append(rel_root)
        for fn in fnames:
            p = Path(root) / fn
            rel = os.path.join(rel_root, fn)
            if os.path.basename(root) == "_meta" and fn.endswith(".json"):
                rec = json.loads(p.read_text())
                offset = None
                if "run_number" in rec:
                    rec["run_number"] = "@@RUN@@"
                if "ts_epoch" in rec:
                    offset = int(rec["ts_epoch"]) - run_ts
                    rec["ts_epoch"] = "@@TS@@"
                if "tags" in rec and "field_name" not in rec:  # sysmeta tags are attempt ids
                    rec["tags"] = "@@TAGS@@"
                files.append((rel, offset, json.dumps(rec)))
            else:
                files.append((rel, None, p.read_bytes()))
    return run_ts, dirs, files


_TEMPLATES: dict[str, Any] = {}


def _write_clones(flow_dir: str, jobs: list[tuple[str, str, int, bool]]) -> None:
    for user, run_id, ts, tagged in jobs:
        _run_ts, dirs, files = _TEMPLATES[user]
        dest = os.path.join(flow_dir, run_id)
        for d in dirs:
            os.makedirs(os.path.join(dest, d), exist_ok=True)
        rid = json.dumps(run_id)
        tags = '["sometag"]' if tagged else "[]"
        for rel, offset, content in files:
            path = os.path.join(dest, rel)
            if isinstance(content, str):
                text = content.replace('"@@RUN@@"', rid).replace('"@@TAGS@@"', tags)
                if offset is not None:
                    text = text.replace('"@@TS@@"', str(ts + offset))
                with open(path, "w") as fh:
                    fh.write(text)
            else:
                with open(path, "wb") as fh:
                    fh.write(content)


class History:
    """The growing ``.metaflow`` history: real runs, then clones in order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.flow_dir = workdir / ".metaflow" / F
        real = _run_dirs(self.flow_dir)
        self.runs: list[tuple[str, str, bool]] = []  # (run id, user, tagged), oldest first
        by_user: dict[str, Path] = {}
        for d in real:
            user = json.loads((d / "_meta" / "_self.json").read_text())["user_name"]
            self.runs.append((d.name, user, False))
            by_user.setdefault(user, d)
        for user, d in by_user.items():
            _TEMPLATES[user] = _load_template(d)
        self.users = sorted(by_user)
        self.next_ts = max(t[0] for t in _TEMPLATES.values()) + 60_000
        self.clones = 0
        self.wide = "{}/{}".format(W, _run_dirs(workdir / ".metaflow" / W)[-1].name)

    def grow(self, total: int) -> None:
        jobs = []
        while len(self.runs) + len(jobs) < total:
            k = self.clones
            user = "alice" if k % 2 == 0 else "bob"
            ts = self.next_ts + k * 1000
            jobs.append((user, str(ts * 1000 + 7), ts, k % 10 == 0))
            self.clones += 1
        if not jobs:
            return
        chunks = [jobs[i::4] for i in range(4)]
        with ProcessPoolExecutor(2) as pool:  # fork: the workers inherit _TEMPLATES
            list(pool.map(_write_clones, [str(self.flow_dir)] * 4, chunks))
        self.runs += [(rid, user, tagged) for user, rid, _ts, tagged in jobs]

    def expected(self) -> dict[str, Any]:
        alice = [r for r in self.runs if r[1] == "alice"]
        return {
            "runs": len(self.runs),
            "alice": len(alice),
            "sometag": sum(1 for r in self.runs if r[2]),
            "latest": self.runs[-1][0],
            "result": 43,
        }

    def ctx(self) -> dict[str, str]:
        alice = [r for r in self.runs if r[1] == "alice"]
        return {"run": f"{F}/{alice[-1][0]}", "wide": self.wide}


VERIFY = f"""
import json
from metaflow import Flow, namespace
namespace(None)
runs = list(Flow('{F}'))
out = {{'runs': len(runs), 'sometag': len(list(Flow('{F}').runs('sometag'))),
       'latest': Flow('{F}').latest_run.id, 'result': Flow('{F}').latest_run.data.result}}
namespace('user:alice')
out['alice'] = len(list(Flow('{F}')))
print(json.dumps(out))
"""


def verify_metaflow(hist: History) -> dict[str, Any]:
    """Metaflow's client reads the history back as built (raises otherwise)."""
    cp = subprocess.run(
        [sys.executable, "-c", VERIFY],
        cwd=hist.workdir,
        env=_worker_env("metaflow", hist.workdir / ".mf_client_cache"),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(cp.stdout.strip().splitlines()[-1])
    want = hist.expected()
    if got != want:
        raise RuntimeError(
            f"Metaflow's client reads the cloned history wrong: got {got!r}, expected {want!r}"
        )
    return got


def import_mfdb(hist: History, path: Path) -> float:
    from mfstore.importer import import_metaflow
    from mfstore.store import Store

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with Store(path, create=True) as store:
        report = import_metaflow(hist.workdir / ".metaflow", store)
    if report.problems or report.conflicts or len(report.added) != len(hist.runs) + 1:
        raise RuntimeError(
            f"import of {hist.workdir}: {len(report.added)} imported, problems "
            f"{report.problems[:3]}, conflicts {report.conflicts[:3]}"
        )
    return report.seconds


def extend_mfdb(src: Path, dst: Path, hist: History, total: int) -> float:
    """Copy ``src`` and add Writer-built runs of F until it holds ``total`` runs of F."""
    from mfstore.store import Store
    from mfstore.writer import Writer

    shutil.copyfile(src, dst)
    for suffix in ("-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    system = {}
    for user in hist.users:
        rec = json.loads(
            (
                hist.flow_dir
                / next(r[0] for r in hist.runs if r[1] == user)
                / "_meta"
                / "_self.json"
            ).read_text()
        )
        system[user] = rec["system_tags"]
    with Store(dst) as store:
        w = Writer(store)
        k0 = hist.clones
        n = total - len(hist.runs)
        for start in range(0, n, 50_000):
            with store.write():
                for k in range(k0 + start, k0 + min(n, start + 50_000)):
                    user = "alice" if k % 2 == 0 else "bob"
                    ts = hist.next_ts + k * 1000
                    run = w.begin_run(
                        F,
                        user_name=user,
                        user_tags=["sometag"] if k % 10 == 0 else [],
                        system_tags=system[user],
                        run_number=str(ts * 1000 + 7),
                        ts_epoch=ts,
                    )
                    w.end_run(run, successful=True, ts_epoch=ts + 900, checkpoint=False)
        store.checkpoint()
    return time.perf_counter() - t0


def disk_usage(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) as ``du`` reports them."""
    app = subprocess.run(
        ["du", "-s", "--apparent-size", "-B1", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    alloc = subprocess.run(
        ["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True
    )
    return int(app.stdout.split()[0]), int(alloc.stdout.split()[0])


# --------------------------------------------------------------------------- runtime
def runtime_walls(scratch: Path, width: int, reps: int) -> dict[str, dict[str, float]]:
    """Median wall time (s) of a 2-step flow and a ``width``-task foreach under each runtime."""
    out: dict[str, dict[str, float]] = {}
    for case, template in (("2-step", TWO_STEP), ("foreach", FOREACH)):
        for lib in ("metaflow", "mfstore"):
            wd = scratch / "runtime" / lib / case
            wd.mkdir(parents=True, exist_ok=True)
            src = template.format(lib=lib, scale=width)
            out.setdefault(case, {})[lib] = statistics.median(
                time_run(lib, src, wd, 16) for _ in range(reps)
            )
    return out


# --------------------------------------------------------------------------- report
def header(args: argparse.Namespace, argv: list[str]) -> list[str]:
    from importlib.metadata import version

    import apsw

    def ver(p: str) -> str:
        try:
            return version(p)
        except Exception:
            return "?"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    dirty = " (+ uncommitted changes)" if git("status", "--short", "--untracked-files=no") else ""
    return [
        "date {} | commit {}{}".format(
            datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            git("rev-parse", "--short", "HEAD") or "?",
            dirty,
        ),
        f"machine: {platform.machine()}, {cpu}, {os.cpu_count() or 0} CPUs, {mem:.0f} GiB RAM, {platform.platform()}",
        "versions: Python {}, metaflow {}, mfstore {}, SQLite {}, apsw {}".format(
            platform.python_version(),
            ver("metaflow"),
            ver("mfstore"),
            apsw.sqlite_lib_version(),
            apsw.apsw_version(),
        ),
        "command: python -m benchmarks.side_by_side {}".format(" ".join(argv)),
    ]


def _fmt_ms(s: float | None) -> str:
    if s is None:
        return "—"
    ms = s * 1e3
    return f"{ms:.3f}" if ms < 1 else (f"{ms:.1f}" if ms < 100 else f"{ms:.0f}")


def _ratio(mf: float | None, ms: float | None) -> str:
    if mf is None or ms is None or ms <= 0:
        return "—"
    r = mf / ms
    return f"{r:.0f}x" if r >= 10 else f"{r:.2f}x"


def _mb(b: int) -> str:
    return "%.2f MB" % (b / 1e6)


def render(rows: list[list[str]], head: list[str]) -> str:
    out = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" if i < 3 else "---:" for i in range(len(head))) + " |",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes",
        default="100,1000,10000,100000,1000000",
        help="runs of HistLinearFlow, comma-separated",
    )
    ap.add_argument(
        "--metaflow-max",
        type=int,
        default=10_000,
        help="largest size built on disk for Metaflow (default 10000)",
    )
    ap.add_argument(
        "--reps",
        type=int,
        default=5,
        help="repetitions per op (Metaflow at >= 10,000 runs: at most 3)",
    )
    ap.add_argument(
        "--runtime-reps", type=int, default=3, help="flow runs per runtime and flow (default 3)"
    )
    ap.add_argument("--width", type=int, default=100, help="tasks in the foreach (default 100)")
    ap.add_argument(
        "--linear-runs",
        type=int,
        default=6,
        help="real Metaflow runs of HistLinearFlow (default 6)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="where histories go (default: a new temp dir, removed at the end)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for a smoke test: --sizes 4,8,20 --metaflow-max 8 "
        "--reps 1 --runtime-reps 1 --width 3 --linear-runs 2",
    )
    ap.add_argument("--output", type=Path, help="also write the report (markdown) here")
    ap.add_argument("--worker", choices=["metaflow", "mfstore"], help=argparse.SUPPRESS)
    ap.add_argument("--history", help=argparse.SUPPRESS)
    ap.add_argument("--ctx", help=argparse.SUPPRESS)
    ap.add_argument("--op", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        ctx = json.loads(args.ctx)
        result = (
            worker_fresh(args.worker, args.history, ctx, args.op)
            if args.op
            else worker_warm(args.worker, args.history, ctx, args.reps)
        )
        print(json.dumps(result))
        return 0

    if args.quick:
        (
            args.sizes,
            args.metaflow_max,
            args.reps,
            args.runtime_reps,
            args.width,
            args.linear_runs,
        ) = "4,8,20", 8, 1, 1, 3, 2
    sizes = sorted(int(s) for s in args.sizes.split(","))
    mf_sizes = [s for s in sizes if s <= args.metaflow_max]
    if any(s < args.linear_runs for s in sizes) or not mf_sizes:
        ap.error("every size must be >= --linear-runs and at least one size <= --metaflow-max")

    lines = header(args, argv)
    print("\n".join(lines), flush=True)
    log = lambda msg: print("# " + msg, file=sys.stderr, flush=True)  # noqa: E731
    work = args.workdir or Path(tempfile.mkdtemp(prefix="side-by-side-"))
    if work.exists() and args.workdir:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    hist_dir = work / "history"
    t_all = time.perf_counter()
    log(f"runtime walls (2-step, {args.width}-task foreach) x {args.runtime_reps} ...")
    walls = runtime_walls(work, args.width, args.runtime_reps)
    log(f"real Metaflow history: {args.linear_runs} linear runs + 1 foreach({args.width}) ...")
    build_base(hist_dir, args.linear_runs, args.width)
    hist = History(hist_dir)

    timings: dict[tuple[str, int], dict[str, dict[str, float]]] = {}  # (system, size) -> results
    disk: dict[tuple[str, int], tuple[int, int]] = {}
    notes: list[str] = []
    mfdb_prev: Path | None = None
    for size in sizes:
        if size in mf_sizes:
            t0 = time.perf_counter()
            hist.grow(size)
            log(
                f"{size} runs: cloned on disk in {time.perf_counter() - t0:.1f} s; Metaflow reads back ..."
            )
            got = verify_metaflow(hist)
            notes.append(
                "{} runs: Metaflow's client read back {} runs ({} in user:alice, {} with sometag), "
                "latest_run {}, latest_run.data.result {!r}".format(
                    f"{size:,}",
                    got["runs"],
                    got["alice"],
                    got["sometag"],
                    got["latest"],
                    got["result"],
                )
            )
            mfdb = work / (f"h{size}.mfdb")
            secs = import_mfdb(hist, mfdb)
            notes.append("{} runs: import-metaflow {:.1f} s".format(f"{size:,}", secs))
            disk[("metaflow", size)] = disk_usage(hist_dir / ".metaflow")
            ctx = hist.ctx()
            reps = min(args.reps, 3) if size >= 10_000 else args.reps
            log(f"{size} runs: timing Metaflow (reps {reps}) ...")
            timings[("metaflow", size)] = measure("metaflow", hist_dir, ctx, reps, work)
        else:
            mfdb = work / (f"h{size}.mfdb")
            secs = extend_mfdb(mfdb_prev, mfdb, hist, size)
            notes.append(
                "{} runs (mfstore only): {} + {} Writer-built runs in {:.1f} s".format(
                    f"{size:,}", mfdb_prev.name, f"{size - len(hist.runs):,}", secs
                )
            )
        disk[("mfstore", size)] = disk_usage(mfdb)
        if size in mf_sizes:
            mfdb_prev = mfdb
        log(f"{size} runs: timing mfstore (reps {args.reps}) ...")
        timings[("mfstore", size)] = measure("mfstore", mfdb, hist.ctx(), args.reps, work)

    # ---- table
    rows: list[list[str]] = []
    for mode in ("warm", "fresh"):
        for key, label, ns, _scan, _fn in OPS:
            k = f"{key}|{ns}"
            for size in sizes:
                mf = timings.get(("metaflow", size), {}).get(k, {}).get(mode)
                ms = timings[("mfstore", size)][k][mode]
                rows.append(
                    [
                        f"`{label}`",
                        str(ns),
                        mode,
                        f"{size:,}",
                        _fmt_ms(mf),
                        _fmt_ms(ms),
                        _ratio(mf, ms),
                    ]
                )
    for size in sizes:
        mf = timings.get(("metaflow", size), {}).get("fresh_process", {}).get("fresh")
        ms = timings[("mfstore", size)]["fresh_process"]["fresh"]
        rows.append(
            [
                "new process: import + `Flow(F).latest_run` (wall)",
                NS_USER,
                "process",
                f"{size:,}",
                _fmt_ms(mf),
                _fmt_ms(ms),
                _ratio(mf, ms),
            ]
        )
    for case, label in (
        ("2-step", "run a 2-step flow (wall)"),
        ("foreach", f"run a {args.width}-task foreach (wall)"),
    ):
        mf, ms = walls[case]["metaflow"], walls[case]["mfstore"]
        rows.append([label, "—", "runtime", "—", _fmt_ms(mf), _fmt_ms(ms), _ratio(mf, ms)])
    for i, what in enumerate(("disk, apparent size", "disk, allocated (du)")):
        for size in sizes:
            mf = disk.get(("metaflow", size))
            ms = disk[("mfstore", size)]
            rows.append(
                [
                    what,
                    "—",
                    "disk",
                    f"{size:,}",
                    _mb(mf[i]) if mf else "—",
                    _mb(ms[i]),
                    ("%.0fx" % (mf[i] / ms[i])) if mf else "—",
                ]
            )
    table = render(
        rows,
        [
            "operation",
            "namespace",
            "mode",
            "runs",
            "Metaflow median (ms)",
            "mfstore median (ms)",
            "ratio (Metaflow / mfstore)",
        ],
    )

    # ---- goals
    goals = []
    big_mf = max(mf_sizes)
    k = f"latest_run|{NS_USER}"
    r = timings[("metaflow", big_mf)][k]["warm"] / timings[("mfstore", big_mf)][k]["warm"]
    rf = timings[("metaflow", big_mf)][k]["fresh"] / timings[("mfstore", big_mf)][k]["fresh"]
    goals.append(
        "latest_run in user:alice at {} runs >= 5,000x faster: {} (warm {:.0f}x, fresh {:.0f}x)".format(
            f"{big_mf:,}", "MET" if r >= 5000 else "NOT MET", r, rf
        )
    )
    lo, hi = big_mf, max(sizes)
    if hi > lo:
        worst = []
        for key, label, ns, scan, _fn in OPS:
            if scan:
                kk = f"{key}|{ns}"
                for mode in ("warm", "fresh"):
                    worst.append(
                        (
                            timings[("mfstore", hi)][kk][mode] / timings[("mfstore", lo)][kk][mode],
                            label,
                            ns,
                            mode,
                        )
                    )
        w = max(worst)
        goals.append(
            "per-run-scan ops flat from {} to {} runs (<= 2x): {} (worst {:.2f}x: `{}` {} {})".format(
                f"{lo:,}", f"{hi:,}", "MET" if w[0] <= 2 else "NOT MET", w[0], w[1], w[2], w[3]
            )
        )
    d_mf, d_ms = disk[("metaflow", big_mf)], disk[("mfstore", big_mf)]
    goals.append(
        ".mfdb <= 1/10 of .metaflow disk usage (du, allocated) at {} runs: {} (allocated {:.0f}x smaller; "
        "apparent size {:.0f}x smaller)".format(
            f"{big_mf:,}",
            "MET" if d_mf[1] >= 10 * d_ms[1] else "NOT MET",
            d_mf[1] / d_ms[1],
            d_mf[0] / d_ms[0],
        )
    )
    fr = walls["foreach"]["mfstore"] / walls["foreach"]["metaflow"]
    goals.append(
        "{}-task foreach <= 0.5x Metaflow's wall time: {} ({:.2f}x: {:.1f} s vs {:.1f} s)".format(
            args.width,
            "MET" if fr <= 0.5 else "NOT MET",
            fr,
            walls["foreach"]["mfstore"],
            walls["foreach"]["metaflow"],
        )
    )

    report = "\n".join(
        [
            "\n".join("    " + line for line in lines),
            "",
            "Medians: {} reps per op (Metaflow at >= 10,000 runs: {}); runtime {} runs per "
            "flow; fresh = a new process per rep, import excluded; ratio > 1 = mfstore "
            "faster/smaller. Sizes above {}: mfstore alone. Total {:.0f} s.".format(
                args.reps,
                min(args.reps, 3),
                args.runtime_reps,
                f"{args.metaflow_max:,}",
                time.perf_counter() - t_all,
            ),
            "",
            table,
            "",
            "Goals:",
            *("- " + g for g in goals),
            "",
            "History:",
            *("- " + n for n in notes),
        ]
    )
    print()
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    if not (args.keep or args.workdir):
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
