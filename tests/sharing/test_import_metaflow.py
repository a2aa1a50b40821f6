"""import-metaflow against a real Metaflow history: contents, idempotence, and a
field-by-field differential test of both clients (each in its own subprocess)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mfstore.importer import import_metaflow
from mfstore.store import Store
from tests.compat.harness import KNOWN_DIFFERENCES, diff, snapshot

from .conftest import table_counts

FLOWS = [
    "LinearParamsFlow",
    "ForeachFlow",
    "BranchJoinFlow",
    "FailingFlow",
    "RetryFlow",
    "CatchFlow",
    "CurrentFlow",
    "KillFlow",
]


def _runs(path: Path) -> dict[str, tuple]:
    with Store(path) as s:
        return {
            f"{f}/{r}": (status, user)
            for f, r, status, user in s.query(
                "SELECT flow_id, run_number, status, user_name FROM runs"
            )
        }


def _tags(path: Path, flow: str) -> dict[str, tuple[set, set]]:
    from mfstore import query

    with Store(path) as s:
        return {
            r: query.tag_groups(s.query(*query.compile_tagset(t)))
            for r, t in s.query("SELECT run_number, tagset_id FROM runs WHERE flow_id = ?", (flow,))
        }


def test_statuses_and_run_ids(imported, mf_history):
    runs = _runs(imported)
    on_disk = {f"{p.parent.name}/{p.name}" for p in (mf_history / ".metaflow").glob("*/[0-9]*")}
    assert set(runs) == on_disk
    by_flow = {}
    for ps, (status, _) in runs.items():
        by_flow.setdefault(ps.split("/")[0], []).append(status)
    assert by_flow["KillFlow"] == ["running"]
    assert by_flow["FailingFlow"] == ["failed"]
    for flow in (
        "ForeachFlow",
        "BranchJoinFlow",
        "RetryFlow",
        "CatchFlow",
        "CurrentFlow",
        "LinearParamsFlow",
    ):
        assert set(by_flow[flow]) == {"successful"}, flow
    assert all(len(ps.split("/")[1]) == 16 for ps in runs)


def test_tags_production_and_edits(imported):
    tags = _tags(imported, "LinearParamsFlow")
    ordered = [tags[r] for r in sorted(tags, key=int)]
    first, second, prod = ordered
    assert first[0] == {"exp1", "shared", "added-later"}
    assert second[0] == {"shared"} and "user:bob" in second[1]
    assert "production:tok" in prod[1] and not any(t.startswith("user:") for t in prod[1])
    with Store(imported) as s:
        events = s.query(
            "SELECT r.run_number, e.user_name, e.removed, e.added FROM tag_events e JOIN runs r USING (run_pk) "
            "WHERE r.flow_id = 'LinearParamsFlow' ORDER BY r.run_number"
        )
    assert [(u, json.loads(rm), json.loads(add)) for _, u, rm, add in events] == [
        ("carol", [], ["added-later", "shared"]),
        ("carol", ["exp1"], ["shared"]),
    ]


def test_shas_are_metaflows_and_blobs_match(imported, moved_history):
    from mfstore.blobs import get_blob

    with Store(imported) as s:
        shas = [r[0] for r in s.query("SELECT DISTINCT sha FROM mf_artifacts")]
        for sha in shas[:50]:
            raw = gzip.decompress(next(moved_history.glob(f"*/data/{sha[:2]}/{sha}")).read_bytes())
            assert hashlib.sha1(raw).hexdigest() == sha
            assert get_blob(s, sha) == raw


def test_resume_origin_and_retry_attempts(imported):
    with Store(imported) as s:
        resumed = s.one(
            "SELECT run_number, origin_run_number FROM runs WHERE flow_id = 'CurrentFlow' "
            "AND origin_run_number IS NOT NULL"
        )
        assert resumed is not None
        cloned = s.query(
            "SELECT t.step_name, o.task_id FROM tasks t JOIN runs r USING (run_pk) JOIN tasks o "
            "ON o.task_pk = t.origin_task_pk WHERE r.run_number = ?",
            (resumed[0],),
        )
        assert ("start", "1") in cloned
        attempts = s.query(
            "SELECT a.attempt, a.task_ok FROM attempts a JOIN tasks t USING (task_pk) JOIN runs r USING (run_pk) "
            "WHERE r.flow_id = 'RetryFlow' AND t.step_name = 'flaky' ORDER BY a.attempt"
        )
        assert attempts == [(0, 0), (1, 1)]
        killed = s.query(
            "SELECT t.step_name, a.ended_at FROM attempts a JOIN tasks t USING (task_pk) JOIN runs r USING (run_pk) "
            "WHERE r.flow_id = 'KillFlow' AND t.step_name = 'sleepy'"
        )
        assert killed == [("sleepy", None)]


def test_reimport_is_idempotent(imported_copy, moved_history):
    with Store(imported_copy) as s:
        before = table_counts(s)
        report = import_metaflow(moved_history, s)
        after = table_counts(s)
    assert report.added == [] and report.conflicts == [] and report.retagged == []
    assert len(report.identical) == len(_runs(imported_copy))
    assert before == after


def test_reimport_syncs_a_later_metaflow_tag_edit(imported_copy, moved_history, tmp_path):
    moved = tmp_path / ".metaflow"
    shutil.copytree(moved_history, moved)
    run_dir = sorted((moved / "LinearParamsFlow").glob("[0-9]*"))[0]
    rec = json.loads((run_dir / "_meta" / "_self.json").read_text())
    rec["tags"] = [t for t in rec["tags"] if t != "added-later"] + ["newer"]
    rec["ts_epoch"] += 60_000
    (run_dir / "_meta" / "_self.json").write_text(json.dumps(rec))
    with Store(imported_copy) as s:
        report = import_metaflow(moved, s)
    assert report.retagged == [f"LinearParamsFlow/{run_dir.name}"]
    assert _tags(imported_copy, "LinearParamsFlow")[run_dir.name][0] == {"exp1", "shared", "newer"}


def _contents(path: Path) -> tuple[dict, list]:
    """Every run's content digest, user tags and tag events, and the flows."""
    from mfstore.sharing.digest import run_digest

    with Store(path) as s:
        runs = {}
        for pk, flow, run in s.query("SELECT run_pk, flow_id, run_number FROM runs"):
            tags = s.query(
                "SELECT tt.tag, tt.is_system FROM runs r JOIN tagset_tags tt "
                "ON tt.tagset_id = r.tagset_id WHERE r.run_pk = ?",
                (pk,),
            )
            events = s.query(
                "SELECT ts_epoch, user_name, removed, added FROM tag_events WHERE run_pk = ? "
                "ORDER BY event_pk",
                (pk,),
            )
            runs[f"{flow}/{run}"] = (run_digest(s, pk), sorted(tags), list(events))
        return runs, sorted(s.query("SELECT flow_id, ts_epoch FROM flows"))


def test_worker_processes_import_the_same(imported, moved_history, tmp_path, monkeypatch):
    """Runs read by worker processes (one run per batch, so each worker reads several
    and hands each blob over once) are written exactly as runs read in this process."""
    from mfstore.importer import parse

    monkeypatch.setattr(parse, "CHUNK_RUNS", 1)
    out = tmp_path / "workers.mfdb"
    with Store(out, create=True) as s:
        report = import_metaflow(moved_history, s, workers=2)
    assert report.problems == [] and report.conflicts == []
    mine, theirs = _contents(out), _contents(imported)
    assert len(mine[0]) == len(_runs(imported)) > 8
    assert mine == theirs


def test_not_a_history(tmp_path):
    from mfstore.importer import NotAMetaflowHistory

    with pytest.raises(NotAMetaflowHistory):
        import_metaflow(tmp_path, Store(":memory:"))


# ---------------------------------------------------------------- differential

#: Paths that differ on purpose (reference §7) or by storage (stored absolute roots).
IGNORE = KNOWN_DIFFERENCES | {
    "runs.*.steps.*.tasks.*.metadata_values.ds-root",
    "runs.*.steps.*.tasks.*.stdout_size",
    "runs.*.steps.*.tasks.*.stderr_size",
    "metadata_type",
    "lib",
    # A failed run has ended: mfstore gives it finished/finished_at (ref §7), Metaflow None.
    "runs.*.finished_at_is_none",
    "runs.*.steps.*.tasks.*.attempts.*.finished",
    # Run order and latest_run: Metaflow re-dates re-tagged runs (trap T2); mfstore
    # keeps created_at. Runs are compared keyed by id below; order only where no run
    # of the flow was re-tagged.
    "run_order",
    "global_order",
    "latest_run",
    "latest_successful_run",
    "runs_with_tag",
}
RETAGGED_FLOWS = {"LinearParamsFlow"}


def _has_client() -> bool:
    try:
        import mfstore

        return hasattr(mfstore, "Flow")
    except ImportError:
        return False


def _keyed(snap: dict) -> dict:
    snap = dict(snap)
    snap["runs"] = {r["id"]: r for r in snap.get("runs", [])}
    for run in snap["runs"].values():
        if "shared" in (run.get("user_tags") or []):
            # re-tagged in Metaflow (mfhistory.TAG_EDITS): Metaflow re-dates the run
            # (trap T2), mfstore keeps when it was created
            run.pop("created_at_ms", None)
        if not run.get("successful"):
            # a failed run has ended: mfstore dates it (ref §7), Metaflow says None
            run.pop("finished_at_ms", None)
    return snap


@pytest.mark.skipif(not _has_client(), reason="mfstore Client API not available yet")
@pytest.mark.parametrize("ns", ["user:alice", None])
@pytest.mark.parametrize("flow", FLOWS)
def test_differential_against_metaflow_client(flow, ns, mf_history, imported):
    # timestamps too: both clients read the same records, to the millisecond
    a = snapshot("metaflow", mf_history, flow, ns, timestamps=True)
    b = snapshot("mfstore", imported, flow, ns, timestamps=True)
    problems = diff(_keyed(a), _keyed(b), IGNORE)
    if flow not in RETAGGED_FLOWS:
        for key in (
            "run_order",
            "global_order",
            "latest_run",
            "latest_successful_run",
            "runs_with_tag",
        ):
            if a.get(key) != b.get(key):
                problems.append(f"{key}: metaflow {a.get(key)}, mfstore {b.get(key)}")
    else:
        for key in ("run_order", "global_order"):
            if sorted(a.get(key) or []) != sorted(b.get(key) or []):
                problems.append(f"{key} (as sets): metaflow {a.get(key)}, mfstore {b.get(key)}")
    assert problems == []
