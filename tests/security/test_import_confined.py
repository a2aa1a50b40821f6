"""Issue 12, class 4: ``import-metaflow DIR`` stays inside DIR.

The histories are written by hand, the way someone crafting a download would: Metaflow's
local layout (``<Flow>/<run>/<step>/<task>/_meta``, ``<Flow>/data/<sha[:2]>/<sha>``)
with records pointing elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import time
from pathlib import Path

import pytest

from .conftest import cli

FLOW = "DownloadedFlow"


def _blob(flow_dir: Path, raw: bytes, sha: str | None = None) -> str:
    sha = sha or hashlib.sha1(raw).hexdigest()
    d = flow_dir / "data" / sha[:2]
    d.mkdir(parents=True, exist_ok=True)
    (d / sha).write_bytes(gzip.compress(raw))
    return sha


def make_history(root: Path, artifacts: dict[str, bytes], run: str = "1700000000000001") -> Path:
    """A one-run, one-task history whose end task has ``artifacts`` (name -> pickled bytes)
    and succeeded. Returns the task directory."""
    ts = int(time.time() * 1000) - 60_000
    flow_dir = root / ".metaflow" / FLOW
    (flow_dir / "_meta").mkdir(parents=True, exist_ok=True)
    (flow_dir / "_meta" / "_self.json").write_text(json.dumps({"flow_id": FLOW, "ts_epoch": ts}))
    run_dir = flow_dir / run
    (run_dir / "_meta").mkdir(parents=True)
    (run_dir / "_meta" / "_self.json").write_text(
        json.dumps(
            {
                "flow_id": FLOW,
                "run_number": run,
                "user_name": "stranger",
                "ts_epoch": ts,
                "tags": [],
                "system_tags": ["user:stranger"],
            }
        )
    )
    step_dir = run_dir / "end"
    (step_dir / "_meta").mkdir(parents=True)
    (step_dir / "_meta" / "_self.json").write_text(json.dumps({"step_name": "end", "ts_epoch": ts}))
    task_dir = step_dir / "1"
    meta = task_dir / "_meta"
    meta.mkdir(parents=True)
    (meta / "_self.json").write_text(json.dumps({"task_id": "1", "ts_epoch": ts}))
    (meta / "sysmeta_attempt_0.json").write_text(
        json.dumps(
            {
                "field_name": "attempt",
                "value": "0",
                "type": "attempt",
                "ts_epoch": ts,
                "tags": ["attempt_id:0"],
            }
        )
    )
    (meta / "sysmeta_attempt-done_0.json").write_text(
        json.dumps(
            {
                "field_name": "attempt-done",
                "value": "0",
                "type": "attempt-done",
                "ts_epoch": ts + 1,
                "tags": ["attempt_id:0"],
            }
        )
    )
    all_arts = {
        "_task_ok": pickle.dumps(True, protocol=4),
        "_success": pickle.dumps(True, protocol=4),
        **artifacts,
    }
    for name, raw in all_arts.items():
        sha = _blob(flow_dir, raw)
        set_artifact(task_dir, name, sha)
    return task_dir


def set_artifact(task_dir: Path, name: str, sha: str) -> None:
    (task_dir / "_meta" / f"0_artifact_{name}.json").write_text(
        json.dumps({"name": name, "sha": sha, "type": "metaflow.artifact", "ts_epoch": 1})
    )


def _import(tmp_path: Path, history: Path):
    from mfstore.importer import import_metaflow
    from mfstore.store import Store

    target = Store(tmp_path / "mine.mfdb", create=True)
    try:
        report = import_metaflow(history, target)
        runs = target.scalar("SELECT count(*) FROM runs")
        names = {
            n
            for (n,) in target.query(
                "SELECT a.name FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk"
            )
        }
    finally:
        target.close()
    return report, runs, names


def test_a_clean_hand_made_history_imports(tmp_path: Path) -> None:
    make_history(tmp_path / "h", {"x": pickle.dumps([1, 2], protocol=4)})
    report, runs, names = _import(tmp_path, tmp_path / "h")
    assert report.problems == [] and runs == 1 and "x" in names


@pytest.mark.parametrize("bad_sha", ["../../../../outside", "/tmp/abs/outside", "zz" * 20])
def test_shas_that_are_paths_are_refused_and_the_run_skipped(tmp_path: Path, bad_sha: str) -> None:
    task_dir = make_history(tmp_path / "h", {})
    set_artifact(task_dir, "loot", bad_sha)
    report, runs, _ = _import(tmp_path, tmp_path / "h")
    assert runs == 0
    assert len(report.problems) == 1 and "not a sha1" in report.problems[0]


def test_symlinks_that_leave_the_history_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    raw = pickle.dumps("the receiver's private data", protocol=4)
    sha = hashlib.sha1(raw).hexdigest()
    (secret / sha).write_bytes(gzip.compress(raw))
    task_dir = make_history(tmp_path / "h", {})
    flow_dir = tmp_path / "h" / ".metaflow" / FLOW
    (flow_dir / "data" / sha[:2]).mkdir(parents=True, exist_ok=True)
    os.symlink(secret / sha, flow_dir / "data" / sha[:2] / sha)
    set_artifact(task_dir, "loot", sha)
    report, runs, names = _import(tmp_path, tmp_path / "h")
    assert runs == 0 and "loot" not in names
    assert len(report.problems) == 1 and "outside the history" in report.problems[0]


def test_a_run_directory_linked_outside_is_refused(tmp_path: Path) -> None:
    make_history(tmp_path / "elsewhere", {}, run="1700000000000009")
    make_history(tmp_path / "h", {})
    flow_dir = tmp_path / "h" / ".metaflow" / FLOW
    os.symlink(
        tmp_path / "elsewhere" / ".metaflow" / FLOW / "1700000000000009",
        flow_dir / "1700000000000009",
    )
    report, runs, _ = _import(tmp_path, tmp_path / "h")
    assert runs == 1
    assert any("1700000000000009" in p and "outside the history" in p for p in report.problems)


@pytest.mark.parametrize("linked", ["step", "task", "task_meta"])
def test_a_directory_inside_a_run_linked_outside_is_refused(tmp_path: Path, linked: str) -> None:
    """Each file's real path is its directory's (remembered per run) plus its name: a
    step, task or _meta directory that is a symlink leading out is still refused."""
    outside = make_history(tmp_path / "elsewhere", {"x": pickle.dumps(1, protocol=4)})
    task_dir = make_history(tmp_path / "h", {"x": pickle.dumps(1, protocol=4)})
    here, there = {
        "step": (task_dir.parent, outside.parent),
        "task": (task_dir, outside),
        "task_meta": (task_dir / "_meta", outside / "_meta"),
    }[linked]
    shutil.rmtree(here)
    os.symlink(there, here)
    report, runs, _ = _import(tmp_path, tmp_path / "h")
    assert runs == 0
    assert any("outside the history" in p for p in report.problems), report.problems


def test_worker_processes_refuse_the_same(tmp_path: Path, monkeypatch) -> None:
    """Runs read by worker processes are confined the same way: a blob linked outside
    skips its run, the other runs are imported."""
    from mfstore.importer import import_metaflow, parse
    from mfstore.store import Store

    monkeypatch.setattr(parse, "CHUNK_RUNS", 1)
    secret = tmp_path / "secret"
    secret.mkdir()
    raw = pickle.dumps("the receiver's private data", protocol=4)
    sha = hashlib.sha1(raw).hexdigest()
    (secret / sha).write_bytes(gzip.compress(raw))
    runs = [f"170000000000001{i}" for i in range(4)]
    for run in runs:
        task_dir = make_history(tmp_path / "h", {"x": pickle.dumps(1, protocol=4)}, run=run)
    flow_dir = tmp_path / "h" / ".metaflow" / FLOW
    (flow_dir / "data" / sha[:2]).mkdir(parents=True, exist_ok=True)
    os.symlink(secret / sha, flow_dir / "data" / sha[:2] / sha)
    set_artifact(task_dir, "loot", sha)  # the last run's end task
    with Store(tmp_path / "mine.mfdb", create=True) as target:
        report = import_metaflow(tmp_path / "h", target, workers=2)
        imported = sorted(r for (r,) in target.query("SELECT run_number FROM runs"))
        loot = target.scalar("SELECT count(*) FROM artifacts WHERE name = 'loot'")
    assert imported == runs[:3] and loot == 0
    assert len(report.problems) == 1 and "outside the history" in report.problems[0]
    assert runs[3] in report.problems[0]


def test_a_blob_whose_content_does_not_match_its_sha_is_not_imported(tmp_path: Path) -> None:
    task_dir = make_history(tmp_path / "h", {})
    flow_dir = tmp_path / "h" / ".metaflow" / FLOW
    claimed = hashlib.sha1(b"something else").hexdigest()
    _blob(flow_dir, pickle.dumps("swapped", protocol=4), sha=claimed)
    set_artifact(task_dir, "swapped", claimed)
    report, runs, names = _import(tmp_path, tmp_path / "h")
    assert runs == 1 and "swapped" not in names and "_success" in names
    assert len(report.problems) == 1
    assert claimed in report.problems[0] and "not imported" in report.problems[0]
    result = cli("import-metaflow", str(tmp_path / "h"), "--into", str(tmp_path / "cli.mfdb"))
    assert claimed in result.output


def test_a_tiny_pickle_that_expands_does_not_cost_memory(tmp_path: Path) -> None:
    import pickletools  # noqa: F401  (documents the opcodes below)
    import tracemalloc

    # builtins.bytes(10**9) in 40-odd bytes: GLOBAL, an int, TUPLE1, REDUCE.
    bomb = b"\x80\x04cbuiltins\nbytes\nJ\x00\xca\x9a;\x85R."
    assert len(bomb) < 50
    make_history(tmp_path / "h", {"bomb": bomb})
    tracemalloc.start()
    _report, runs, names = _import(tmp_path, tmp_path / "h")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert runs == 1 and "bomb" in names
    assert peak < 200 * 1024 * 1024, peak


class Thing:
    """A value the safe unpickler will not build: named from Metaflow's record only."""


def test_a_retagged_run_sharing_a_blob_with_a_new_run_is_retagged(tmp_path: Path) -> None:
    """Re-import: a run already imported (re-tagged in Metaflow since) is compared with
    its staged copy; a value that is not plain data keeps the type Metaflow recorded even
    when a new run, read first, handed its blob over."""
    from mfstore.importer import import_metaflow
    from mfstore.store import Store

    raw = pickle.dumps(Thing(), protocol=4)

    def add_thing(task_dir: Path) -> None:
        set_artifact(task_dir, "thing", _blob(task_dir.parents[2], raw))
        info = {"thing": {"type": "<class 'lab.Thing'>", "size": len(raw)}}
        (task_dir / "0.data.json").write_text(json.dumps({"info": info}))

    old, new = "1700000000000002", "1700000000000001"
    add_thing(make_history(tmp_path / "h", {}, run=old))
    with Store(tmp_path / "mine.mfdb", create=True) as target:
        import_metaflow(tmp_path / "h", target)
    run_rec = tmp_path / "h" / ".metaflow" / FLOW / old / "_meta" / "_self.json"
    rec = json.loads(run_rec.read_text())
    rec["tags"], rec["ts_epoch"] = ["newer"], rec["ts_epoch"] + 60_000
    run_rec.write_text(json.dumps(rec))
    add_thing(make_history(tmp_path / "h", {}, run=new))
    with Store(tmp_path / "mine.mfdb") as target:
        report = import_metaflow(tmp_path / "h", target)
        types = target.query("SELECT DISTINCT type FROM mf_artifacts WHERE name = 'thing'")
    assert report.conflicts == [] and report.problems == []
    assert report.added == [f"{FLOW}/{new}"] and report.retagged == [f"{FLOW}/{old}"]
    assert types == [("lab.Thing",)]
