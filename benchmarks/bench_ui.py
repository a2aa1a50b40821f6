"""Server time per page of ``mfstore ui`` on synthetic histories of 10k / 100k / 1M runs.

    python -m benchmarks.bench_ui --scale 10000 --scale 100000 --scale 1000000 --iterations 100

Each request goes through the whole ASGI application (routing, the page's reads, template
rendering) called in-process, without a socket: the time is the server's, not the
network's. One warm-up request per page, then ``--iterations`` timed requests; the table
shows median and p95 in milliseconds. Histories are the checksum-guarded synthetic ones of
``benchmarks.bench_client`` (built once into ``--dir``). The file is opened read-only, as
``mfstore ui`` does (immutable: no writer). Target (issue 17): run list <= 50 ms median at
1,000,000 runs.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import synthetic
from benchmarks.bench_client import _env_header, history, history_parser


def get_page(app: Any, path: str) -> tuple[int, bytes]:
    """One GET through the ASGI app, in-process."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "", "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"]


def replicated_history(directory: Path, runs: int, base: int) -> Path:
    """A ``runs``-run history made from the Writer-built ``base``-run one by copying its
    runs (not their tasks) ``runs // base - 1`` times, each copy newer: the same tag sets,
    users and statuses, in seconds instead of the Writer's tens of minutes on a busy
    2-core machine. Only the copied ``runs`` rows are written (SQL ``INSERT ... SELECT``)."""
    import shutil

    from mfstore.store import Store

    path = directory / f"synth-{runs}-from-{base}.mfdb"
    if path.exists():
        return path
    src = history(directory, base)
    tmp = path.with_suffix(".tmp")
    shutil.copy(src, tmp)
    with Store(tmp) as store, store.write():
        top = store.scalar("SELECT max(run_pk) FROM runs WHERE flow_id = ?", (synthetic.FLOW,))
        for k in range(1, runs // base):
            store.execute(
                "INSERT INTO runs (flow_id, run_number, user_name, tagset_id, ts_epoch, status, "
                "finished_at, end_step) SELECT flow_id, printf('%020d', CAST(run_number AS INTEGER) + :off), "
                "user_name, tagset_id, ts_epoch + :off * 1000, status, finished_at + :off * 1000, end_step "
                "FROM runs WHERE flow_id = :flow AND run_pk <= :top",
                {"off": k * base, "flow": synthetic.FLOW, "top": top},
            )
    with Store(tmp) as store:
        store.checkpoint()
    tmp.rename(path)
    return path


def pages(runs: int, tasks_in: int | None = None) -> list[tuple[str, str]]:
    """(label, URL) of every measured page for a history of ``runs`` runs (the run, step,
    task and compare pages read runs with tasks among the first ``tasks_in`` runs)."""
    flow = synthetic.FLOW
    runs_with_tasks = tasks_in or runs
    with_tasks = (
        f"{10**15 + ((runs_with_tasks - 1) // 1000) * 1000:020d}"  # every 1000th run has tasks
    )
    older = (runs_with_tasks - 1) // 1000 - 1  # the run with tasks before it (else the newest run)
    other = f"{10**15 + older * 1000:020d}" if older >= 0 else f"{10**15 + runs - 1:020d}"
    mid = runs // 2
    mid_cursor = f"before_ts={synthetic.BASE_TS + mid * 1000}&before_id={10**15 + mid:020d}"
    return [
        ("flows /", "/"),
        ("run list, newest page", f"/{flow}"),
        ("run list, page in the middle (keyset)", f"/{flow}?{mid_cursor}"),
        ("run list ?tag=sometag", f"/{flow}?tag=sometag"),
        ("run list ?namespace=user:user3&tag=exp", f"/{flow}?namespace=user:user3&tag=exp"),
        ("run list ?tag=exp&tag=common_b", f"/{flow}?tag=exp&tag=common_b"),
        ("run list ?tag=common_a&tag=common_b [never together]", f"/{flow}?tag=common_a&tag=common_b"),
        ("run list ?tag=sometag, middle page", f"/{flow}?tag=sometag&{mid_cursor}"),
        ("run list ?status=failed", f"/{flow}?status=failed"),
        ("run list ?user=user3", f"/{flow}?user=user3"),
        ("run page", f"/{flow}/{with_tasks}"),
        ("step page", f"/{flow}/{with_tasks}/start"),
        ("task page", f"/{flow}/{with_tasks}/start/1"),
        ("compare 2 runs", f"/compare?runs={flow}/{with_tasks},{flow}/{other}"),
        ("search ?artifact=result&value=V (2,000 runs)",
         f"/search?flow={flow}&artifact=result&value={(runs - 1) // 1000 * 1000}"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = history_parser(__doc__, iterations=100)
    parser.add_argument(
        "--replicate",
        type=int,
        action="append",
        default=[],
        help="also measure a history of this many runs copied from the largest --scale one",
    )
    args = parser.parse_args(argv)
    scales = args.scale or [10_000, 100_000, 1_000_000]
    args.dir.mkdir(parents=True, exist_ok=True)
    from mfstore.ui import create_app

    print(_env_header(scales, args.iterations))
    results: dict[str, list[str]] = {}
    first: list[str] = []
    todo = [(runs, history(args.dir, runs), None) for runs in scales]
    todo += [(n, replicated_history(args.dir, n, max(scales)), max(scales)) for n in args.replicate]
    scales = [n for n, _, _ in todo]
    for runs, path, tasks_in in todo:
        app = create_app(path)
        t = time.perf_counter()
        # the flow list's run counts are computed once per file change
        status, _ = get_page(app, "/")
        first.append(f"{(time.perf_counter() - t) * 1e3:.1f}")
        assert status == 200
        for label, url in pages(runs, tasks_in):
            status, body = get_page(app, url)  # warm-up, and a check that the page is real
            assert status == 200, (url, status, body[-300:])
            samples, cpu = [], []
            for _ in range(args.iterations):
                t, c = time.perf_counter(), time.process_time()
                get_page(app, url)
                samples.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
            samples.sort()
            p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
            results.setdefault(label, []).append(
                f"{statistics.median(samples):.2f} / {p95:.2f} / {statistics.median(cpu):.2f}"
            )
        app.state.reader.close()
    print("load average: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    names = [f"{n:,}" + (f" (copied from {b:,})" if b else "") for n, _, b in todo]
    header = ["page", *[f"{n} runs: median / p95 / CPU median ms" for n in names]]
    rows = [[label, *vals] for label, vals in results.items()]
    rows.append(["flows / first request (counts runs)", *first])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
