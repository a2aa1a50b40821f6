"""snapshot, export, merge, delete + GC, verify, stats and their CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfstore import query, sharing
from mfstore.artifacts import prepare_artifacts
from mfstore.sharing import RunFilter
from mfstore.store import Store
from mfstore.writer import Writer
from tests.helpers import mfstore_cli

from .conftest import table_counts

REPO = Path(__file__).resolve().parents[2]


def _counts(path: Path) -> dict[str, int]:
    with Store(path) as s:
        return table_counts(s)


def _make_run(store: Store, flow: str, values: dict, *, tags=(), user="alice") -> str:
    w = Writer(store)
    run = w.begin_run(flow, user_name=user, user_tags=tags, system_tags=[f"user:{user}"])
    task = w.add_task(run, "start")
    w.begin_attempt(task, 0)
    w.add_log_lines(task, 0, "stdout", [(int(time.time() * 1e6), "hello")])
    w.end_attempt(task, 0, artifacts=prepare_artifacts(values), task_ok=True, success=True)
    w.end_run(run, successful=True)
    return run.pathspec


def test_snapshot_while_a_writer_writes(imported_copy, tmp_path):
    # The writer commits runs until told to stop and reports each commit on stdout; the test
    # waits for commits (not for wall-clock time), so it holds however loaded the machine is.
    stop = tmp_path / "stop"
    code = (
        "import os, sys\n"
        "from mfstore.store import Store\n"
        "from mfstore.artifacts import prepare_artifacts\nfrom mfstore.writer import Writer\n"
        "s = Store(sys.argv[1]); w = Writer(s)\n"
        "i = 0\n"
        "while not os.path.exists(sys.argv[2]):\n"
        "    r = w.begin_run('BusyFlow', user_name='w', system_tags=['user:w'])\n"
        "    t = w.add_task(r, 'start'); w.begin_attempt(t, 0)\n"
        "    w.end_attempt(t, 0, artifacts=prepare_artifacts({'i': i, 'pad': 'x' * 5000 + "
        "str(i)}), task_ok=True, success=True)\n"
        "    w.end_run(r, successful=True, checkpoint=False); i += 1\n"
        "    print(i, flush=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(imported_copy), str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for k in range(4):
            for _ in range(2):  # at least two more runs committed since the last snapshot
                assert proc.stdout.readline(), "the writer stopped early"
            dst = tmp_path / (f"snap{k}.mfdb")
            sharing.snapshot(imported_copy, dst)
            assert not Path(str(dst) + "-wal").exists() and not Path(str(dst) + "-shm").exists()
            assert sharing.verify(dst) == []
    finally:
        stop.touch()
        proc.stdout.read()
        proc.wait(timeout=120)
    assert proc.returncode == 0
    runs = [_counts(tmp_path / f"snap{k}.mfdb")["runs"] for k in range(4)]
    assert runs == sorted(runs) and runs[3] > runs[0] >= 11


def test_export_subset_has_only_referenced_blobs(imported, tmp_path):
    dst = tmp_path / "sub.mfdb"
    report = sharing.export(imported, dst, RunFilter(flow="LinearParamsFlow", tags=["shared"]))
    assert len(report.added) == 2
    with Store(dst) as s:
        assert {r[0] for r in s.query("SELECT flow_id FROM runs")} == {"LinearParamsFlow"}
        assert (
            s.scalar(
                "SELECT count(*) FROM blobs WHERE blob_id NOT IN (SELECT blob_id FROM artifacts)"
            )
            == 0
        )
        assert s.scalar("SELECT count(*) FROM log_lines") > 0
    assert sharing.verify(dst) == []
    prod = tmp_path / "prod.mfdb"
    assert len(sharing.export(imported, prod, RunFilter(namespace="production:tok")).added) == 1
    with pytest.raises(Exception, match="already exists"):
        sharing.export(imported, prod, RunFilter())


def test_export_time_filters_and_unknown_pathspec(imported, tmp_path):
    with Store(imported) as s:
        ts = sorted(r[0] for r in s.query("SELECT ts_epoch FROM runs"))
    mid = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts[len(ts) // 2] / 1000 + 1))
    a = sharing.export(imported, tmp_path / "a.mfdb", RunFilter(before=sharing.parse_time(mid)))
    b = sharing.export(imported, tmp_path / "b.mfdb", RunFilter(since=sharing.parse_time(mid)))
    assert len(a.added) + len(b.added) == len(ts)
    with pytest.raises(Exception, match="does not exist"):
        sharing.export(imported, tmp_path / "c.mfdb", RunFilter(pathspecs=["LinearParamsFlow/1"]))


def test_merge_is_idempotent_and_dedups(imported, tmp_path):
    mine = tmp_path / "mine.mfdb"
    sharing.export(imported, mine, RunFilter(flow="ForeachFlow"))
    r1 = sharing.merge(imported, mine)
    assert len(r1.identical) == 1 and len(r1.added) == len(_runs(imported)) - 1
    before = _counts(mine)
    r2 = sharing.merge(imported, mine)
    assert r2.added == [] and r2.conflicts == [] and r2.retagged == [] and r2.blobs_added == 0
    assert _counts(mine) == before == _counts(imported)


def _runs(path):
    with Store(path) as s:
        return s.query("SELECT flow_id, run_number FROM runs")


def test_merge_conflict_is_reported_and_untouched(tmp_path):
    a, b = tmp_path / "a.mfdb", tmp_path / "b.mfdb"
    with Store(a, create=True) as s:
        ps = _make_run(s, "F", {"x": 1})
    shutil.copy(a, b)
    with Store(b) as s:  # same run, different content on the other side
        s.execute(  # an artifact's time, NULL when it is its attempt's end
            "UPDATE task_artifacts SET ts_epoch = 1 + coalesce(ts_epoch, (SELECT e.ended_at "
            "FROM attempts e WHERE e.task_pk = task_artifacts.task_pk AND e.attempt = task_artifacts.attempt))"
        )
    before_a, before_b = a.read_bytes(), b.read_bytes()
    report = sharing.merge(b, a)
    assert report.conflicts == [f"{ps}: differs in artifacts"]
    assert _counts(a) == _counts(b)
    assert b.read_bytes() == before_b and len(a.read_bytes()) == len(before_a)


def test_merge_reconciles_tag_edits(tmp_path):
    a, b = tmp_path / "a.mfdb", tmp_path / "b.mfdb"
    with Store(a, create=True) as s:
        _make_run(s, "F", {"x": 1}, tags=["orig", "gone"])
        pk = s.scalar("SELECT run_pk FROM runs")
    shutil.copy(a, b)
    # tag edits after the run was made, within merge's allowed clock skew (not future-dated)
    edited = int(time.time() * 1000) + 1_000
    with Store(a) as s:
        Writer(s).replace_user_tags(pk, ["gone"], ["mine"], user_name="alice", ts_epoch=edited)
    with Store(b) as s:
        Writer(s).replace_user_tags(pk, [], ["theirs"], user_name="bob", ts_epoch=edited + 5)
    report = sharing.merge(b, a)
    assert report.retagged == [f"F/{_runs(a)[0][1]}"]
    with Store(a) as s:
        tagset = s.scalar("SELECT tagset_id FROM runs")
        user, _ = query.tag_groups(s.query(*query.compile_tagset(tagset)))
        assert user == {"orig", "mine", "theirs"}
        assert s.scalar("SELECT count(*) FROM tag_events") == 2
    assert sharing.merge(b, a).retagged == []


def test_delete_keeps_shared_blobs_and_shrinks(tmp_path):
    path = tmp_path / "d.mfdb"
    big = os.urandom(2_000_000)
    with Store(path, create=True) as s:
        keep = _make_run(s, "F", {"shared": "same value", "big_keep": big[:10]})
        drop = _make_run(s, "F", {"shared": "same value", "big": big})
    size = path.stat().st_size
    dry = sharing.delete(path, RunFilter(pathspecs=[drop]), dry_run=True)
    assert dry.runs == [drop] and path.stat().st_size == size
    report = sharing.delete(path, RunFilter(pathspecs=[drop]))
    assert report.runs == [drop] and report.blobs_removed == 1
    assert path.stat().st_size < size - 1_500_000
    assert sharing.verify(path) == []
    with Store(path) as s:
        assert [r[0] for r in s.query("SELECT run_number FROM runs")] == [keep.split("/")[1]]
        assert s.scalar("SELECT count(*) FROM blobs") == 2


def test_verify_reports_each_problem(imported_copy):
    with Store(imported_copy) as s:
        sha = s.scalar("SELECT sha FROM mf_artifacts WHERE name = 'x' LIMIT 1")
        s.execute("PRAGMA foreign_keys = OFF")
        s.execute(
            "UPDATE blobs SET data = X'00', codec = 'raw' WHERE sha = ?", (bytes.fromhex(sha),)
        )
        gone = s.scalar("SELECT blob_id FROM artifacts WHERE name = 'y' LIMIT 1")
        s.execute("DELETE FROM blobs WHERE blob_id = ?", (gone,))
        s.execute(
            "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch) VALUES (999999, 'ghost', '7', 0)"
        )
    problems = sharing.verify(imported_copy)
    text = "\n".join(problems)
    # the damaged chunk is 1 byte: a size check (before hashing) may report it first
    assert f"blob {sha}" in text and ("content has sha" in text or "recorded size" in text)
    assert f"its blob (blob_id {gone}) is missing" in text
    assert "task ghost/7" in text and "run (run_pk 999999) is missing" in text
    result = mfstore_cli("verify", str(imported_copy))
    assert result.exit_code == 1 and "problems found" in result.output


def test_stats(imported):
    st = sharing.stats(imported)
    assert st["runs"] == 11 and st["flows"]["LinearParamsFlow"]["runs"] == 3
    assert st["dedup_ratio"] > 1 and st["compression_ratio"] > 1
    assert st["stored_bytes"] < st["raw_bytes"] <= st["artifact_bytes"]


def test_cli_round_trip(imported, moved_history, tmp_path):
    out = tmp_path / "cli.mfdb"
    r = mfstore_cli("import-metaflow", str(moved_history), "--into", str(out))
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].startswith("imported 11 runs")
    r = mfstore_cli("import-metaflow", str(moved_history), "--into", str(out))
    assert "imported 0 runs" in r.output and "11 already present" in r.output
    r = mfstore_cli("snapshot", str(out), str(tmp_path / "s.mfdb"))
    assert r.exit_code == 0 and r.output.startswith("snapshot ")
    r = mfstore_cli("export", str(out), str(tmp_path / "e.mfdb"), "--flow", "RetryFlow")
    assert r.exit_code == 0 and "exported 1 runs" in r.output, r.output
    r = mfstore_cli("merge", str(tmp_path / "e.mfdb"), "--into", str(tmp_path / "s.mfdb"))
    assert r.exit_code == 0 and "0 added, 1 identical" in r.output, r.output
    # a finished run (a killed one still reads as running, and delete refuses it)
    r = mfstore_cli(
        "delete", "--into", str(tmp_path / "s.mfdb"), "--flow", "RetryFlow", "--dry-run"
    )
    assert r.exit_code == 0 and "would delete 1 runs" in r.output, r.output
    r = mfstore_cli("delete", "--into", str(tmp_path / "s.mfdb"))
    assert r.exit_code == 1 and "refusing" in r.output
    r = mfstore_cli("stats", str(out), "--table")
    assert r.exit_code == 0 and "LinearParamsFlow" in r.output
    r = mfstore_cli("export", str(out), str(tmp_path / "x.mfdb"), "--since", "yesterday")
    assert (
        r.exit_code == 1
        and r.output.startswith("Error: ")
        and len(r.output.strip().splitlines()) == 1
    )
    for cmd in ("snapshot", "export", "merge", "import-metaflow", "delete", "verify", "stats"):
        r = mfstore_cli(cmd, "--help")
        assert r.exit_code == 0 and "Example:" in r.output


# -- snapshot and export make their file as every new file is made (store.publish) -------


def _src_with_a_run(tmp_path: Path) -> Path:
    src = tmp_path / "src.mfdb"
    with Store(src, create=True) as store:
        _make_run(store, "F", {"x": 1})
    return src


@pytest.mark.parametrize("char", ["n", "é", "中"])
@pytest.mark.parametrize("kind", ["snapshot", "export"])
def test_snapshot_and_export_take_any_name_a_file_can_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, char: str
) -> None:
    """Up to the longest usable name (before: a name within about 20 bytes of it failed
    at the temporary name), under one temporary name, the file's own (export made its
    file under a temporary name of its temporary file's), in any characters (a long
    name's temporary name is cut between characters, never inside one)."""
    from mfstore.store import publish

    src = _src_with_a_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    room = os.pathconf(out, "PC_NAME_MAX") - len("-wal") - len("a.mfdb")
    dst = out / ("a" + char * (room // len(char.encode())) + ".mfdb")
    named: list[Path] = []
    real = publish.temp_name
    monkeypatch.setattr(publish, "temp_name", lambda p: named.append(p) or real(p))
    if kind == "snapshot":
        sharing.snapshot(src, dst)
    else:
        sharing.export(src, dst, RunFilter())
    assert named == [dst]
    assert os.listdir(out) == [dst.name]
    with Store(dst, reader=True) as store:
        assert store.scalar("SELECT count(*) FROM runs") == 1


@pytest.mark.parametrize("kind", ["snapshot", "export"])
def test_snapshot_and_export_never_replace_a_file_made_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from mfstore.exception import CommandException
    from mfstore.sharing import files

    src = _src_with_a_run(tmp_path)
    dst = tmp_path / "dst.mfdb"
    real_fresh_target = files._fresh_target

    def made_meanwhile(path: Path) -> Path:
        checked = real_fresh_target(path)
        path.write_bytes(b"another process's file")
        return checked

    monkeypatch.setattr(files, "_fresh_target", made_meanwhile)
    with pytest.raises(CommandException, match="created by another process meanwhile"):
        if kind == "snapshot":
            sharing.snapshot(src, dst)
        else:
            sharing.export(src, dst, RunFilter())
    assert dst.read_bytes() == b"another process's file"
    assert sorted(p.name for p in tmp_path.iterdir() if "dst" in p.name) == ["dst.mfdb"]


@pytest.mark.parametrize("kind", ["snapshot", "export"])
def test_a_relative_target_in_a_directory_named_like_a_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """``file:x/y.mfdb`` is a path: the copy is written there, not where SQLite would read
    the temporary name as a URI (snapshot published an empty file there and exited 0)."""
    src = _src_with_a_run(tmp_path)
    (tmp_path / "file:x").mkdir()
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    dst = Path("file:x/y.mfdb")
    if kind == "snapshot":
        sharing.snapshot(src, dst)
    else:
        sharing.export(src, dst, RunFilter())
    assert os.listdir("x") == []
    assert sorted(os.listdir("file:x")) == ["y.mfdb"]
    with Store(tmp_path / dst, reader=True) as store:
        assert store.scalar("SELECT count(*) FROM runs") == 1
