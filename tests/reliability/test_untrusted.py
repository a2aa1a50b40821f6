"""Untrusted files (issue 7): listing a teammate's file never unpickles anything, and
safe loading refuses code-running pickles with an error naming the artifact and type."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.helpers import mfstore_cli


class _RunsCode:
    """Pickles to ``os.system("touch MARKER")``: loading it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_file(tmp_path: Path) -> tuple[Path, Path, str]:
    from mfstore.artifacts import prepare_artifacts, prepare_raw_artifact
    from mfstore.store import Store
    from mfstore.writer import MetadataEntry, Writer

    marker = tmp_path / "pwned"
    db = tmp_path / "teammate.mfdb"
    raw = pickle.dumps(_RunsCode(marker), protocol=4)
    with Store(db, create=True) as store:
        w = Writer(store)
        run = w.begin_run(
            "EvilFlow", user_name="mallory", user_tags=["shared"], system_tags=["user:mallory"]
        )
        task = w.add_task(run, "end", metadata=[MetadataEntry("note", "hello")])
        w.begin_attempt(task, 0)
        w.add_log_lines(task, 0, "stdout", [(1, "a log line")])
        arts = {
            "evil": prepare_raw_artifact(raw, type_name="builtins.dict"),
            **prepare_artifacts({"plain": {"a": [1, 2.5, "x"]}}),
        }
        w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
        w.end_run(run, successful=True)
    return db, marker, f"{run.pathspec}/end/{task.task_id}"


def test_listing_a_hostile_file_never_unpickles(tmp_path: Path, client_db) -> None:
    import mfstore

    db, marker, task_path = _hostile_file(tmp_path)
    client_db(db)
    flows = list(mfstore.Metaflow())
    assert [f.id for f in flows] == ["EvilFlow"]
    for run in mfstore.Flow("EvilFlow").runs("shared"):
        assert run.successful and run.finished and "shared" in run.tags
        for step in run:
            for task in step:
                assert {a.id for a in task} >= {"evil", "plain"}
                for art in task:
                    assert art.sha and art.size > 0 and art.created_at
                assert task.metadata_dict["note"] == "hello"
                assert "a log line" in task.stdout
                assert task.successful and task.finished
    for args in (
        ["flows", "--mfdb", str(db)],
        ["runs", "EvilFlow", "--mfdb", str(db)],
        ["show", task_path, "--mfdb", str(db)],
        ["logs", task_path, "--mfdb", str(db)],
        ["sql", str(db), "SELECT * FROM mf_artifacts"],
        ["verify", str(db)],
    ):
        result = mfstore_cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert not marker.exists()

    # safe loading refuses it, naming the artifact and the type; plain data loads
    from mfstore.exception import UnsafeArtifactError

    task = mfstore.Task(task_path)
    for load in (lambda: task["evil"].load_safe(), lambda: task["evil"].data_safe):
        with pytest.raises(UnsafeArtifactError) as info:
            load()
        assert f"{task_path}/evil" in str(info.value) and "posix.system" in str(info.value)
    assert task["plain"].load_safe() == {"a": [1, 2.5, "x"]}
    assert not marker.exists()
    # .data is the documented trusted path: it does run the pickle
    _ = task["evil"].data
    assert marker.exists()


def test_loads_safe_refuses_code_and_accepts_plain_data() -> None:
    import datetime
    import decimal
    import uuid

    from mfstore.artifacts import dumps, loads_safe
    from mfstore.exception import UnsafeArtifactError

    plain = {
        "i": 1,
        "f": 1.5,
        "s": "ü",
        "b": b"x",
        "l": [1, (2, 3)],
        "set": {1},
        "d": datetime.datetime(2024, 1, 1),
        "dec": decimal.Decimal("1.1"),
        "u": uuid.UUID(int=5),
        "none": None,
    }
    assert loads_safe(dumps(plain)) == plain
    for value, type_name in (
        (_RunsCode(Path("/nonexistent/x")), "posix.system"),
        (print, "builtins.print"),
        (eval, "builtins.eval"),
        (Path, None),
    ):
        raw = pickle.dumps(value, protocol=4)
        with pytest.raises(UnsafeArtifactError) as info:
            loads_safe(raw, what="artifact F/1/s/2/v")
        assert "artifact F/1/s/2/v" in str(info.value)
        if type_name:
            assert type_name in str(info.value)
