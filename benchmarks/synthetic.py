"""Deterministic synthetic histories written through the Writer API.

``build(path, runs=N)`` writes N runs of ``SynthFlow`` (plus a few small flows):
runs alternate among 8 users; every 10th run carries ``sometag``, every 3rd ``exp``,
tags ``common_a`` / ``common_b`` are each on half the runs but never together (the
worst case for tag filters); every 1000th run has real steps, tasks and artifacts.
The result is checksum-guarded: ``checksum(path)`` must equal ``expected_checksum(N)``.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

from mfstore.artifacts import prepare_artifacts
from mfstore.store import Store
from mfstore.writer import Writer

USERS = [f"user{i}" for i in range(8)]
FLOW = "SynthFlow"
BASE_TS = 1_700_000_000_000


def user_tags_of(i: int) -> list[str]:
    """The user tags of synthetic run i."""
    tags = ["common_a" if i % 2 == 0 else "common_b"]
    if i % 10 == 0:
        tags.append("sometag")
    if i % 3 == 0:
        tags.append("exp")
    return tags


def build(
    path: Path, runs: int, *, seed: int = 0, batch: int = 5000, progress: bool = False
) -> Path:
    """Write the synthetic history into a new file at ``path``."""
    rng = random.Random(seed)
    if path.exists():
        path.unlink()
    store = Store(path, create=True)
    w = Writer(store)
    t0 = time.perf_counter()
    for start in range(0, runs, batch):
        with store.write():  # one transaction per batch; each Writer call nests as a savepoint
            for i in range(start, min(runs, start + batch)):
                user = USERS[i % len(USERS)]
                run = w.begin_run(
                    FLOW,
                    user_name=user,
                    user_tags=user_tags_of(i),
                    system_tags=[f"user:{user}", "runtime:dev", "python_version:3.11.7"],
                    run_number=f"{10**15 + i:020d}",
                    ts_epoch=BASE_TS + i * 1000,
                )
                if i % 1000 == 0:
                    for step in ("start", "end"):
                        task = w.add_task(run, step, ts_epoch=BASE_TS + i * 1000)
                        w.begin_attempt(task, 0, ts_epoch=BASE_TS + i * 1000)
                        w.end_attempt(
                            task,
                            0,
                            artifacts=prepare_artifacts(
                                {"result": i, "name": FLOW, "_success": True, "_task_ok": True}
                            ),
                            task_ok=True,
                            success=True,
                            ts_epoch=BASE_TS + i * 1000 + 1,
                        )
                ok = rng.random() < 0.9 or i == runs - 1
                w.end_run(run, successful=ok, ts_epoch=BASE_TS + i * 1000 + 500, checkpoint=False)
        if progress:
            print(
                f"  {min(runs, start + batch)}/{runs} runs ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    store.checkpoint()
    store.close()
    return path


def checksum(path: Path) -> str:
    """A digest of the runs and their tags (guards against a builder that drifted)."""
    store = Store(path, readonly=True)
    h = hashlib.sha1()
    for row in store.query(
        "SELECT r.run_number, r.user_name, r.status, group_concat(t.tag, ',') FROM runs r "
        "JOIN (SELECT tagset_id, tag FROM tagset_tags ORDER BY tag) t USING (tagset_id) "
        "WHERE r.flow_id = ? GROUP BY r.run_pk ORDER BY r.run_pk",
        (FLOW,),
    ):
        h.update(repr(tuple(row)).encode())
    store.close()
    return h.hexdigest()
