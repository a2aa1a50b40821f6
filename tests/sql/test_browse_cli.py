"""CliRunner tests of mfstore sql / flows / runs / show / logs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from mfstore.cli.browse import COMMANDS
from tests.helpers import mfstore_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def run(*args: str, env: dict[str, str] | None = None):
    # The table people see on a terminal (--table), wide, so that rich does not fold
    # cells the assertions look for; piped output has its own tests (tests/cli).
    args_ = list(args)
    formats = {"--help", "--json", "--csv", "--tsv", "--nl"}
    if not formats & set(args_) and args_[0] in ("flows", "runs", "show", "sql"):
        args_.append("--table")
    return mfstore_cli(*args_, env=env, columns=250)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sql_table_json_csv(fixture_db: Path) -> None:
    q = (
        "SELECT run_id, value FROM mf_artifacts WHERE flow='TrainFlow' AND step='end' "
        "AND name='accuracy' ORDER BY value DESC"
    )
    out = run("sql", str(fixture_db), q)
    assert out.exit_code == 0 and "0.93" in out.output and "run_id" in out.output
    rows = json.loads(run("sql", str(fixture_db), q, "--json").output)
    assert rows[0] == {"run_id": "102", "value": 0.93}
    rows = list(csv.reader(io.StringIO(run("sql", str(fixture_db), q, "--csv").output)))
    assert rows[0] == ["run_id", "value"] and rows[1] == ["102", "0.93"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE runs SET status = 'failed'",
        "DELETE FROM runs",
        "DROP VIEW mf_runs",
        "CREATE TABLE t (a)",
    ],
)
def test_sql_is_read_only(statement: str, fixture_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.mfdb"
    shutil.copy(fixture_db, db)
    before = _digest(db)
    out = run("sql", str(db), statement)
    assert out.exit_code == 1
    assert "read-only" in out.output and len(out.output.strip().splitlines()) == 1
    assert _digest(db) == before


def test_sql_errors_are_one_line(fixture_db: Path, tmp_path: Path) -> None:
    out = run("sql", str(fixture_db), "SELEC 1")
    assert (
        out.exit_code == 1
        and "syntax error" in out.output
        and len(out.output.strip().splitlines()) == 1
    )
    out = run("sql", str(tmp_path / "missing.mfdb"), "SELECT 1")
    assert out.exit_code == 1 and "does not exist" in out.output
    assert not (tmp_path / "missing.mfdb").exists()


def test_flows(fixture_db: Path) -> None:
    out = run("flows", "--mfdb", str(fixture_db))
    assert out.exit_code == 0 and "TrainFlow" in out.output and "ForeachFlow" in out.output


def test_runs_with_namespace_and_tags(fixture_db: Path) -> None:
    out = run(
        "runs",
        "TrainFlow",
        "--namespace",
        "user:bob",
        "--tag",
        "exp",
        "--tag",
        "gpu",
        "--mfdb",
        str(fixture_db),
    )
    assert out.exit_code == 0 and "104" in out.output and "TrainFlow: 1 run with" in out.output
    out = run("runs", "TrainFlow", "--mfdb", str(fixture_db))
    assert "TrainFlow: 5 runs" in out.output
    out = run("runs", "NoFlow", "--mfdb", str(fixture_db))
    assert out.exit_code == 1 and "NoFlow" in out.output


def test_mfdb_defaults_to_discovery(fixture_db: Path) -> None:
    out = run("flows", env={"MFSTORE_DB": str(fixture_db)})
    assert out.exit_code == 0 and "TrainFlow" in out.output


def test_no_file_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MFSTORE_DB", raising=False)
    out = run("flows")
    assert out.exit_code == 1 and "--mfdb" in out.output


def test_show_run(fixture_db: Path) -> None:
    out = run("show", "TrainFlow/103", "--mfdb", str(fixture_db))
    assert out.exit_code == 0
    for word in ("failed", "steps", "tasks", "train", "user:bob", "gpu"):
        assert word in out.output


def test_show_task_previews_without_unpickling(
    fixture_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mfstore.artifacts as artifacts

    def boom(*a, **k):
        raise AssertionError("show must never unpickle")

    monkeypatch.setattr(artifacts, "loads", boom)
    monkeypatch.setattr(artifacts, "loads_safe", boom)
    out = run("show", "TrainFlow/101/train/2", "--mfdb", str(fixture_db))
    assert out.exit_code == 0
    for word in ("accuracy", "0.81", "not plain data", "metadata", "attempt_ok"):
        assert word in out.output


def test_show_flow_and_step(fixture_db: Path) -> None:
    assert "TrainFlow: 5 runs" in run("show", "TrainFlow", "--mfdb", str(fixture_db)).output
    out = run("show", "ForeachFlow/201/work", "--mfdb", str(fixture_db))
    assert (
        out.exit_code == 0
        and "ForeachFlow/201/work" in out.output
        and out.output.count("successful") == 3
    )


@pytest.mark.parametrize(
    "pathspec",
    ["TrainFlow/999", "a//b", "A/1/s/t/x", "TrainFlow/101/nostep", "TrainFlow/101/end/77"],
)
def test_show_bad_pathspec(pathspec: str, fixture_db: Path) -> None:
    out = run("show", pathspec, "--mfdb", str(fixture_db))
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1


def test_logs(fixture_db: Path) -> None:
    out = run("logs", "TrainFlow/103/train/2", "--stderr", "--mfdb", str(fixture_db))
    assert out.output == "ValueError: diverged\n"
    out = run("logs", "TrainFlow/101/train/2", "--mfdb", str(fixture_db))
    assert out.output == "training lr=0.1\n"
    out = run("logs", "TrainFlow/101", "--mfdb", str(fixture_db))
    assert out.output == "[start/1] loading iris\n[train/2] training lr=0.1\n"
    out = run(
        "logs", "TrainFlow/103/train/2", "--stderr", "--attempt", "0", "--mfdb", str(fixture_db)
    )
    assert out.output == "ValueError: diverged\n"
    out = run("logs", "TrainFlow", "--mfdb", str(fixture_db))
    assert out.exit_code == 1
    out = run("logs", "TrainFlow/101/train/9", "--mfdb", str(fixture_db))
    assert out.exit_code == 1 and "does not exist" in out.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_command_has_help_example_and_docs(command) -> None:
    out = run(command.name, "--help")
    assert out.exit_code == 0 and "Example:" in out.output
    assert f"mfstore {command.name}" in DOC.read_text("utf-8")
