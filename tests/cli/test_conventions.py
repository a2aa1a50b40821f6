"""One way to name the file, exit codes 0/1/2 with one-line errors, --namespace "",
delete confirmation, logs --attempt, -h."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mfstore.cli import cli, sharing as sharing_cli
from tests.helpers import mfstore_cli

from .conftest import mfstore_process

#: Commands that read one file, named with --mfdb.
ONE_FILE = [
    ["flows"],
    ["runs", "PipeFlow"],
    ["show", "PipeFlow/1"],
    ["logs", "PipeFlow/1"],
    ["sql", "SELECT 1"],
    ["stats"],
    ["verify"],
    ["delete", "PipeFlow/1", "--yes"],
    ["upgrade"],
]


@pytest.mark.parametrize("args", ONE_FILE, ids=lambda a: a[0])
def test_mfdb_env_and_discovery_name_the_file_everywhere(
    args: list[str], small_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    shutil.copy(small_db, tmp_path / "project" / "metaflow.mfdb")
    monkeypatch.delenv("MFSTORE_DB", raising=False)
    monkeypatch.chdir(work)
    assert mfstore_cli(*args).exit_code == 0  # discovered in a parent directory
    copy = tmp_path / "other.mfdb"
    shutil.copy(small_db, copy)
    assert mfstore_cli(*args, "--mfdb", str(copy)).exit_code == 0
    shutil.copy(small_db, copy)
    assert mfstore_cli(*args, env={"MFSTORE_DB": str(copy)}).exit_code == 0


@pytest.mark.parametrize("args", ONE_FILE, ids=lambda a: a[0])
def test_a_missing_file_is_the_same_error_everywhere(args: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.mfdb"
    p = mfstore_process(*args, "--mfdb", str(missing))
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == f"Error: {missing} does not exist (pass --mfdb FILE or set MFSTORE_DB)\n"
    assert not missing.exists()


def test_no_file_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MFSTORE_DB", raising=False)
    for args in (["flows"], ["runs", "F"], ["sql", "SELECT 1"], ["verify"]):
        result = mfstore_cli(*args)
        assert result.exit_code == 1 and "pass --mfdb FILE or set MFSTORE_DB" in result.stderr


def test_two_file_commands(small_db: Path, tmp_path: Path) -> None:
    snap = tmp_path / "snap.mfdb"
    assert mfstore_cli("snapshot", str(small_db), str(snap)).exit_code == 0
    part = tmp_path / "part.mfdb"
    assert mfstore_cli("export", str(snap), str(part), "--run", "PipeFlow/1").exit_code == 0
    target = tmp_path / "target.mfdb"
    result = mfstore_cli("merge", str(part), "--into", str(target))
    assert result.exit_code == 0 and "1 added" in result.stdout
    result = mfstore_cli("merge", str(part), env={"MFSTORE_DB": str(target)})
    assert result.exit_code == 0 and "1 identical" in result.stdout
    for args in (
        ["snapshot", str(tmp_path / "nope.mfdb"), str(tmp_path / "x.mfdb")],
        ["export", str(tmp_path / "nope.mfdb"), str(tmp_path / "x.mfdb")],
        ["merge", str(tmp_path / "nope.mfdb"), "--into", str(target)],
    ):
        result = mfstore_cli(*args)
        assert result.exit_code == 1 and "does not exist" in result.stderr, args


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],  # missing argument
        ["runs", "PipeFlow", "--no-such-option"],
        ["runs", "PipeFlow", "--limit", "-1"],
        ["runs", "PipeFlow", "--limit", "3", "--all"],
        ["show", "PipeFlow/1", "--csv"],  # several tables: --json only
        ["nosuchcommand"],
    ],
)
def test_usage_errors_exit_2(args: list[str], small_db: Path) -> None:
    result = mfstore_cli(*args, "--mfdb", str(small_db))
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "NoFlow"],
        ["show", "PipeFlow/999"],
        ["show", "PipeFlow/1/nostep"],
        ["show", "a//b"],
        ["logs", "PipeFlow/1/start/9"],
        ["logs", "PipeFlow"],
        ["sql", "SELEC 1"],
        ["sql", "DELETE FROM runs"],
    ],
)
def test_data_errors_exit_1_with_one_line(args: list[str], small_db: Path) -> None:
    result = mfstore_cli(*args, "--mfdb", str(small_db))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_not_an_mfdb_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mfdb"
    bad.write_bytes(b"hello" * 100)
    for args in (["flows"], ["runs", "F"], ["stats"], ["sql", "SELECT 1"]):
        p = mfstore_process(*args, "--mfdb", str(bad))
        assert p.returncode == 1 and p.stderr.startswith("Error: ") and p.stderr.count("\n") == 1


def test_empty_namespace_means_all_namespaces(small_db: Path, tmp_path: Path) -> None:
    everything = json.loads(
        mfstore_cli("runs", "PipeFlow", "--json", "--mfdb", str(small_db)).stdout
    )
    blank = json.loads(
        mfstore_cli("runs", "PipeFlow", "--namespace", "", "--json", "--mfdb", str(small_db)).stdout
    )
    bob = json.loads(
        mfstore_cli(
            "runs", "PipeFlow", "--namespace", "user:bob", "--json", "--mfdb", str(small_db)
        ).stdout
    )
    assert len(everything) == 3 and blank == everything and [r["run_id"] for r in bob] == ["2"]
    out = tmp_path / "all.mfdb"
    result = mfstore_cli("export", str(small_db), str(out), "--namespace", "")
    assert result.exit_code == 0 and "exported 3 runs" in result.stdout


def test_delete_requires_yes_when_not_on_a_terminal(small_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.mfdb"
    shutil.copy(small_db, db)
    before = db.read_bytes()
    p = mfstore_process("delete", "PipeFlow/1", "--mfdb", str(db), stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "--yes" in p.stderr
    assert db.read_bytes() == before
    result = mfstore_cli("delete", "PipeFlow/1", "--yes", "--mfdb", str(db))
    assert result.exit_code == 0 and "deleted 1 runs" in result.stdout
    ids = [
        r["run_id"]
        for r in json.loads(mfstore_cli("runs", "PipeFlow", "--json", "--mfdb", str(db)).stdout)
    ]
    assert ids == ["3", "2"]


def test_delete_asks_on_a_terminal(
    small_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "d.mfdb"
    shutil.copy(small_db, db)
    monkeypatch.setattr(sharing_cli, "_stdin_is_terminal", lambda: True)
    result = mfstore_cli("delete", "PipeFlow/1", "--mfdb", str(db), input="n\n")
    assert "delete 1 runs (1 tasks) from" in result.stdout and result.exit_code == 1
    assert len(json.loads(mfstore_cli("runs", "PipeFlow", "--json", "--mfdb", str(db)).stdout)) == 3
    result = mfstore_cli("delete", "PipeFlow/1", "--mfdb", str(db), input="y\n")
    assert result.exit_code == 0 and "deleted 1 runs" in result.stdout
    assert len(json.loads(mfstore_cli("runs", "PipeFlow", "--json", "--mfdb", str(db)).stdout)) == 2


def test_logs_attempt(small_db: Path) -> None:
    result = mfstore_cli("logs", "PipeFlow/2/start/1", "--attempt", "0", "--mfdb", str(small_db))
    assert result.exit_code == 0 and result.stdout == "attempt 0\n"
    result = mfstore_cli("logs", "PipeFlow/2/start/1", "--mfdb", str(small_db))
    assert result.stdout == "attempt 1\n"  # the latest attempt by default
    result = mfstore_cli("logs", "PipeFlow/2/start/1", "--attempt", "7", "--mfdb", str(small_db))
    assert result.exit_code == 1
    assert result.stderr == "Error: PipeFlow/2/start/1 has no attempt 7 (attempts: 0, 1)\n"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_h_and_help(command: str) -> None:
    short, long = mfstore_cli(command, "-h"), mfstore_cli(command, "--help")
    assert short.exit_code == 0 and short.stdout == long.stdout and "Example:" in long.stdout
