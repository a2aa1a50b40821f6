"""Real Metaflow on its local backend vs on a .mfdb through mfstore's extension (issue 16).

    python -m benchmarks.metaflow_ext [--width 100] [--reps 3] [--sizes 100,1000,10000]
                                      [--client-reps 5] [--workdir DIR] [--quick]
                                      [--history DIR] [--skip-foreach] [--skip-client]

Prints two tables:

1. The same ``--width``-task foreach flow (``bench_runtime.FOREACH``) run by Metaflow's
   runtime with ``--max-workers 16``: local backend vs ``--metadata mfdb --datastore mfdb``
   (wall time median of ``--reps`` fresh runs; disk: ``.metaflow`` directory vs the
   checkpointed ``.mfdb``, apparent bytes).
2. ``Flow(F).latest_run`` in the user namespace ``user:alice`` through **Metaflow's own
   client**, at each history size: on the local backend vs on the mfdb provider
   (``metadata('mfdb@FILE')``). The local history is ``side_by_side``'s (real Metaflow runs,
   then clones on disk, alice/bob alternating; ``--history DIR`` reuses one grown earlier).
   The .mfdb holds the same runs -- same ids, users, tags and creation times -- written by
   mfstore's ``Writer`` in one bulk transaction from the runs' ``_self.json`` records (run
   records only: ``latest_run`` reads nothing else; building 10,000 runs by running or
   importing flows takes far longer than the measurement). One warm worker process per
   (backend, size), one warm-up call, medians of ``--client-reps`` calls.

What Metaflow's client still does in Python on mfdb: the provider answers each call with
one indexed query (the runs carrying tag ``user:alice``), but Metaflow's client asks for
*all* runs of the namespace, builds a ``Run`` object per row and sorts them by
``created_at`` before it returns the first: that part is O(runs in the namespace) on both
backends. The local backend additionally opens and parses one ``_self.json`` per run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_runtime import FOREACH
from benchmarks.side_by_side import F, History, build_base, disk_usage

NS = "user:alice"


def _env(workdir: Path, backend: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
    env["METAFLOW_USER"] = "alice"
    env["METAFLOW_CLIENT_CACHE_PATH"] = str(workdir / ".mf_client_cache")
    if backend == "mfdb":
        env["METAFLOW_DEFAULT_METADATA"] = "mfdb"
        env["METAFLOW_DEFAULT_DATASTORE"] = "mfdb"
    return env


def foreach_run(scratch: Path, backend: str, width: int) -> tuple[float, float, int]:
    """Wall seconds of one fresh ``run --max-workers 16``, the CPU seconds (user + system)
    of all its processes (less sensitive than wall time to a shared, loaded machine), and
    the bytes it left on disk."""
    wd = Path(tempfile.mkdtemp(prefix=f"mfext-{backend}-", dir=scratch))
    (wd / "flow.py").write_text(FOREACH.format(lib="metaflow", scale=width))
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cp = subprocess.run(
        [sys.executable, "flow.py", "run", "--max-workers", "16", "--max-num-splits", "1000"],
        cwd=wd,
        env=_env(wd, backend),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if cp.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    if backend == "mfdb":
        from mfstore.store import Store

        with Store(wd / "metaflow.mfdb") as store:  # fold the WAL in: measure the file alone
            store.checkpoint()
        size = disk_usage(wd / "metaflow.mfdb")[0]
    else:
        size = disk_usage(wd / ".metaflow")[0]
    shutil.rmtree(wd, ignore_errors=True)
    return wall, cpu, size


CLIENT = """
import json, sys, time
from metaflow import Flow, metadata, namespace
metadata(sys.argv[1])
namespace(sys.argv[2])
first = Flow(sys.argv[3]).latest_run.id
times = []
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    run = Flow(sys.argv[3]).latest_run
    times.append(time.perf_counter() - t0)
    assert run.id == first
print(json.dumps({"id": first, "times": times}))
"""


def client_latest(md: str, cwd: Path, reps: int) -> tuple[str, float]:
    cp = subprocess.run(
        [sys.executable, "-c", CLIENT, md, NS, F, str(reps)],
        cwd=cwd,
        env=_env(cwd, "local"),
        capture_output=True,
        text=True,
    )
    if cp.returncode != 0:
        raise SystemExit(f"client ({md}) failed:\n{cp.stderr[-3000:]}")
    out = json.loads(cp.stdout.strip().splitlines()[-1])
    return out["id"], statistics.median(out["times"])


def mirror_runs(flow_dir: Path, db: Path, limit: int | None = None) -> tuple[int, float]:
    """Write into ``db`` (created) the runs of the ``.metaflow`` flow directory ``flow_dir``
    -- ids, users, tags, creation times; the oldest ``limit`` when given -- with mfstore's
    Writer in one bulk transaction. Returns (runs written, seconds)."""
    from mfstore.store import Store
    from mfstore.writer import Writer

    records = []
    for d in flow_dir.iterdir():
        meta = d / "_meta" / "_self.json"
        if d.name.isdigit() and meta.is_file():
            records.append(json.loads(meta.read_text()))
    records.sort(key=lambda r: (r["ts_epoch"], r["run_number"]))
    records = records[:limit] if limit is not None else records
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    with Store(db, create=True) as store:
        writer = Writer(store)
        with store.bulk():
            for r in records:
                run = writer.begin_run(
                    r["flow_id"],
                    user_name=r["user_name"],
                    user_tags=r.get("tags") or [],
                    system_tags=r.get("system_tags") or [],
                    run_number=str(r["run_number"]),
                    ts_epoch=int(r["ts_epoch"]),
                )
                writer.end_run(
                    run, successful=True, ts_epoch=int(r["ts_epoch"]) + 1, checkpoint=False
                )
        store.checkpoint()
    return len(records), time.perf_counter() - t0


def foreach_table(scratch: Path, width: int, reps: int) -> None:
    """Table 1: the same foreach run by Metaflow's runtime, local vs mfdb."""
    print()
    print(f"## {width}-task foreach, `run --max-workers 16`, median of {reps}")
    print()
    print("| backend | wall (s) | CPU (s) | disk (MB) | load |")
    print("|---|---|---|---|---|")
    walls: dict[str, list[float]] = {"local": [], "mfdb": []}
    cpus: dict[str, list[float]] = {"local": [], "mfdb": []}
    disks: dict[str, int] = {}
    loads: dict[str, list[float]] = {"local": [], "mfdb": []}
    for _ in range(reps):
        for backend in ("local", "mfdb"):
            wall, cpu, size = foreach_run(scratch, backend, width)
            walls[backend].append(wall)
            cpus[backend].append(cpu)
            disks[backend] = size
            loads[backend].append(os.getloadavg()[0])
    for backend in ("local", "mfdb"):
        print(
            f"| {backend} | {statistics.median(walls[backend]):.1f} "
            f"| {statistics.median(cpus[backend]):.1f} "
            f"| {disks[backend] / 1e6:.2f} | {statistics.median(loads[backend]):.1f} |"
        )
    print(
        "\nratio local/mfdb: wall {:.2f}x, CPU {:.2f}x, disk {:.2f}x".format(
            statistics.median(walls["local"]) / statistics.median(walls["mfdb"]),
            statistics.median(cpus["local"]) / statistics.median(cpus["mfdb"]),
            disks["local"] / max(disks["mfdb"], 1),
        ),
        flush=True,
    )


def client_table(scratch: Path, sizes: list[int], reps: int, history: str | None) -> None:
    """Table 2: ``latest_run`` through Metaflow's client, local vs mfdb, per history size."""
    print()
    print(f"## Metaflow's client: `Flow('{F}').latest_run` in namespace `{NS}`")
    print()
    print("| runs | local (ms) | mfdb (ms) | local/mfdb | .mfdb built in (s) | load |")
    print("|---|---|---|---|---|---|")
    hist_dir = Path(history) if history else scratch / "history"
    if not history:
        build_base(hist_dir, 2, 4)
    hist = History(hist_dir)
    flow_dir = hist_dir / ".metaflow" / F
    for size in sizes:
        if history:  # a grown history: measure it as it is
            if len(hist.runs) != size:
                raise SystemExit(
                    f"--history {history} holds {len(hist.runs)} runs of {F}, not {size}"
                )
        else:
            hist.grow(size)
        db = scratch / f"history-{size}.mfdb"
        n, secs = mirror_runs(flow_dir, db)
        if n != len(hist.runs):
            raise SystemExit(f"{flow_dir}: {n} runs mirrored, {len(hist.runs)} in the history")
        id_local, t_local = client_latest(f"local@{hist_dir}", hist_dir, reps)
        id_mfdb, t_mfdb = client_latest(f"mfdb@{db}", hist_dir, reps)
        if id_local != id_mfdb:
            raise SystemExit(f"latest_run differs at {size}: local {id_local}, mfdb {id_mfdb}")
        print(
            f"| {len(hist.runs):,} | {t_local * 1e3:.1f} | {t_mfdb * 1e3:.1f} "
            f"| {t_local / t_mfdb:.2f}x | {secs:.1f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--client-reps", type=int, default=5)
    ap.add_argument("--workdir")
    ap.add_argument("--quick", action="store_true", help="width 10, 1 rep, sizes 10,20")
    ap.add_argument("--history", help="a grown .metaflow history to measure as it is (one size)")
    ap.add_argument("--skip-foreach", action="store_true", help="only the client table")
    ap.add_argument("--skip-client", action="store_true", help="only the foreach table")
    args = ap.parse_args(argv)
    if args.quick:
        args.width, args.reps, args.sizes, args.client_reps = 10, 1, "10,20", 2
    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="mfext-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    import metaflow_extensions  # noqa: F401  (the extension must be installed)

    print(f"# Metaflow local vs mfdb ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(
        f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; "
        "load average at start {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    )
    if not args.skip_foreach:
        foreach_table(scratch, args.width, args.reps)
    if not args.skip_client:
        sizes = [int(x) for x in args.sizes.split(",")]
        client_table(scratch, sizes, args.client_reps, args.history)
    if not args.workdir:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
