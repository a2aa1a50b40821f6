"""Every cookbook query of docs/sql.md, through the stock sqlite3 shell and sqlite-utils."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlite_utils

from mfstore.store import Store

from . import fixture as fx

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
_BLOCK = re.compile(r"<!-- cookbook: (\w+) -->\s*```sql\n(.*?)```", re.S)


def cookbook() -> dict[str, str]:
    return dict(_BLOCK.findall(DOC.read_text("utf-8")))


def _storage(path: Path) -> list[dict]:
    # Computed from the raw tables, independently of the views.
    with Store(path, readonly=True) as s:
        rows = s.query(
            "SELECT r.flow_id, count(*), sum(b.size), sum(b.stored_size) FROM "
            "(SELECT DISTINCT r.flow_id, a.blob_id FROM artifacts a JOIN tasks t USING (task_pk) "
            "JOIN runs r USING (run_pk) "
            "WHERE a.attempt = (SELECT max(z.attempt) FROM artifacts z "
            "WHERE z.task_pk = a.task_pk)) r JOIN blobs b USING (blob_id) GROUP BY r.flow_id"
        )
    return sorted(
        [{"flow": f, "blobs": n, "bytes": b, "stored_bytes": st} for f, n, b, st in rows],
        key=lambda d: (-d["stored_bytes"], d["flow"]),
    )


def expected(name: str, path: Path) -> list[dict]:
    train = fx.TRAIN_RUNS
    ok = {r: v for r, v in train.items() if v[2] == "successful"}
    if name == "best_runs_by_metric":
        return [
            {"run_id": r, "accuracy": v[3]} for r, v in sorted(ok.items(), key=lambda kv: -kv[1][3])
        ]
    if name == "latest_successful_run":
        return [
            {"flow": "ForeachFlow", "run_id": "201"},
            {"flow": "TrainFlow", "run_id": min(ok, key=lambda r: ok[r][4])},
        ]
    if name == "failures_by_step_this_week":
        n = sum(1 for v in train.values() if v[2] == "failed" and v[4] < 7)
        return [{"flow": "TrainFlow", "step": "train", "failed_tasks": n}]
    if name == "runs_per_user":
        users: dict[str, list[str]] = {}
        for v in train.values():
            users.setdefault(v[0], []).append(v[2])
        users["carol"] = ["successful", "running"]
        rows = [
            {
                "user": u,
                "runs": len(s),
                "successful": s.count("successful"),
                "failed": s.count("failed"),
            }
            for u, s in users.items()
        ]
        return sorted(rows, key=lambda d: (-d["runs"], d["user"]))
    if name == "artifacts_changed_between_runs":
        return [
            {"name": "accuracy", "run_101": "0.81", "run_102": "0.93"},
            {
                "name": "params",
                "run_101": json.dumps({"lr": fx.LR["101"], "epochs": 3}),
                "run_102": json.dumps({"lr": fx.LR["102"], "epochs": 3}),
            },
        ]
    if name == "tag_cooccurrence":
        pairs: dict[tuple[str, str], int] = {}
        for v in train.values():
            tags = sorted(v[1])
            for i, a in enumerate(tags):
                for b in tags[i + 1 :]:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
        return [
            {"tag_a": a, "tag_b": b, "runs": n}
            for (a, b), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
    if name == "storage_by_flow":
        return _storage(path)
    if name == "slowest_runs":
        runs = sorted(ok, key=lambda r: ok[r][4])  # newest first among equal durations
        return [{"pathspec": "TrainFlow/" + r, "duration_s": 360.0} for r in runs]
    if name == "retried_tasks":
        failed = sorted(r for r, v in train.items() if v[2] == "failed")
        return [
            {"pathspec": f"TrainFlow/{r}/train/2", "attempts": 2, "status": "failed"}
            for r in failed
        ]
    if name == "foreach_values":
        return [{"foreach_index": i, "sq": i * i} for i in range(len(fx.ITEMS))]
    if name == "errors_in_logs":
        failed = sorted(
            (r for r, v in train.items() if v[2] == "failed"), key=lambda r: -train[r][4]
        )
        return [
            {"pathspec": f"TrainFlow/{r}/train/2", "attempt": a, "line": "ValueError: diverged"}
            for r in failed
            for a in (0, 1)
        ]
    if name == "dict_key_in_artifact":
        return [
            {"run_id": r, "lr": lr}
            for r, lr in sorted(fx.LR.items(), key=lambda kv: (kv[1], kv[0]))
        ]
    if name == "running_now":
        return [{"pathspec": "ForeachFlow/202", "user": "carol", "running_tasks": len(fx.ITEMS)}]
    if name == "runs_with_tag":
        return [
            {"run_id": r, "tags": json.dumps(sorted(v[1]), separators=(",", ":"))}
            for r, v in sorted(train.items())
            if "exp" in v[1]
        ]
    if name == "runs_in_namespace_with_tags":
        return [
            {"run_id": r} for r, v in train.items() if v[0] == "bob" and {"exp", "gpu"} <= set(v[1])
        ]
    raise AssertionError(f"no expectation for cookbook query {name!r}: add one")


def _check(rows: list[dict], want: list[dict]) -> None:
    assert len(rows) == len(want), rows
    for got, exp in zip(rows, want, strict=True):
        for key, value in exp.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value), (key, got)
            else:
                assert got[key] == value, (key, got)


def test_cookbook_has_at_least_ten_queries() -> None:
    assert len(cookbook()) >= 10


@pytest.mark.parametrize("name", sorted(cookbook()))
def test_cookbook_query_in_sqlite3_shell(name: str, fixture_db: Path) -> None:
    shell = shutil.which("sqlite3")
    assert shell is not None, (
        "the stock sqlite3 shell is a test requirement (apt-get install sqlite3)"
    )
    out = subprocess.run(
        [shell, "-json", str(fixture_db), cookbook()[name]],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout) if out.stdout.strip() else []
    _check(rows, expected(name, fixture_db))


@pytest.mark.parametrize("name", sorted(cookbook()))
def test_cookbook_query_in_sqlite_utils(name: str, fixture_db: Path) -> None:
    db = sqlite_utils.Database(fixture_db)
    try:
        rows = list(db.query(cookbook()[name]))
    finally:
        db.close()
    _check(rows, expected(name, fixture_db))
