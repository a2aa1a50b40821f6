"""Output formats: piped output is whole TSV lines, --json/--nl parse for every read
command, empty results keep their shape, values from the file are never markup or
terminal control sequences."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import mfstore_cli

from .conftest import CONTROL_LOG, CONTROL_TAGS, MARKUP_TAGS, mfstore_process


def run(*args: str) -> tuple[int, str, str]:
    result = mfstore_cli(*args)
    return result.exit_code, result.stdout, result.stderr


#: Every read command, with arguments valid on small_db.
READ_COMMANDS = [
    ["flows"],
    ["runs", "PipeFlow"],
    ["show", "PipeFlow"],
    ["show", "PipeFlow/2"],
    ["show", "PipeFlow/2/start"],
    ["show", "PipeFlow/2/start/1"],
    ["logs", "PipeFlow/2"],
    ["logs", "PipeFlow/2/start/1", "--stderr"],
    ["sql", "SELECT run_id, tags FROM mf_runs"],
    ["stats"],
    ["verify"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: " ".join(a))
def test_json_parses_for_every_read_command(args: list[str], small_db: Path) -> None:
    code, out, _err = run(*args, "--mfdb", str(small_db), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc not in ([], {}, None)
    code, out, _err = run(*args, "--mfdb", str(small_db), "--nl")
    assert code == 0
    lines = out.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)


def test_runs_json_fields(small_db: Path) -> None:
    rows = json.loads(run("runs", "PipeFlow", "--mfdb", str(small_db), "--json")[1])
    assert [r["run_id"] for r in rows] == ["3", "2", "1"]  # newest first
    assert [r["status"] for r in rows] == ["running", "failed", "successful"]
    assert rows[2]["tags"] == sorted(MARKUP_TAGS)
    assert rows[1]["tags"] == sorted(CONTROL_TAGS)  # exact values in JSON
    assert "user:bob" in rows[1]["system_tags"]


def test_piped_output_is_tsv_with_whole_values(small_db: Path) -> None:
    """Through a real pipe (not a terminal): a header line, then one line per run, every
    value whole, nothing folded or cut, no table borders, no colour."""
    p = mfstore_process("runs", "PipeFlow", "--mfdb", str(small_db))
    assert p.returncode == 0 and p.stderr == ""
    lines = p.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["run_id", "status", "user"] and header[-2:] == ["tags", "system_tags"]
    assert len(lines) == 4 and all(len(line.split("\t")) == 8 for line in lines)
    assert [line.split("\t")[0] for line in lines[1:]] == ["3", "2", "1"]
    assert "\x1b" not in p.stdout and "\u2503" not in p.stdout and "\u2502" not in p.stdout
    row1 = lines[3].split("\t")
    assert json.loads(row1[6]) == sorted(MARKUP_TAGS)


def test_piped_show_run_sections(small_db: Path) -> None:
    p = mfstore_process("show", "PipeFlow/2", "--mfdb", str(small_db))
    assert p.returncode == 0
    assert "\n# steps\nstep\tstatus\t" in p.stdout and "\n# tasks\nstep\ttask_id\t" in p.stdout
    assert "pathspec\tPipeFlow/2\n" in p.stdout


@pytest.mark.parametrize("fmt", ["--csv", "--tsv", "--json", "--table"])
def test_empty_results_keep_their_shape(fmt: str, small_db: Path) -> None:
    code, out, _err = run("runs", "PipeFlow", "--tag", "nope", "--mfdb", str(small_db), fmt)
    assert code == 0
    if fmt == "--csv":
        assert out == "run_id,status,user,created_at,finished_at,duration_s,tags,system_tags\n"
    elif fmt == "--tsv":
        assert out.count("\n") == 1 and out.startswith("run_id\tstatus\t")
    elif fmt == "--json":
        assert json.loads(out) == []
    else:
        assert "PipeFlow: 0 runs" in out and "run_id" in out and "status" in out
    code, out, _err = run("sql", "SELECT run_id FROM mf_runs WHERE 0", "--mfdb", str(small_db), fmt)
    assert code == 0
    assert out.strip() in ("run_id", "[]") or "run_id" in out


def test_markup_in_values_prints_literally(small_db: Path) -> None:
    for args in (["runs", "PipeFlow"], ["show", "PipeFlow/1"], ["show", "PipeFlow/1/start/1"]):
        code, out, _err = run(*args, "--mfdb", str(small_db), "--table")
        assert code == 0, out
        assert "Traceback" not in out
    code, out, _err = run("show", "PipeFlow/1", "--mfdb", str(small_db), "--table")
    for tag in MARKUP_TAGS:
        assert tag in out
    code, out, _err = run("show", "PipeFlow/1/start/1", "--mfdb", str(small_db), "--table")
    assert '"[bold]1[/bold]"' in out


@pytest.mark.parametrize("fmt", ["--table", "--tsv", "--csv", "--json", "--nl"])
def test_control_sequences_are_shown_escaped(fmt: str, small_db: Path) -> None:
    for args in (["runs", "PipeFlow"], ["show", "PipeFlow/2"], ["logs", "PipeFlow/2", "--stderr"]):
        code, out, _err = run(*args, "--mfdb", str(small_db), fmt)
        if code == 2:  # show RUN is several tables: no --csv/--tsv
            continue
        assert code == 0, out
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
        assert ("\\x1b" in out) or ("\\u001b" in out)


def test_logs_plain_lines_escape_control_characters(small_db: Path) -> None:
    code, out, _err = run("logs", "PipeFlow/2/start/1", "--stderr", "--mfdb", str(small_db))
    assert code == 0
    assert out == CONTROL_LOG.replace("\x1b", "\\x1b") + "\n"
    code, out, _err = run(
        "logs", "PipeFlow/2/start/1", "--stderr", "--json", "--mfdb", str(small_db)
    )
    assert json.loads(out)[0]["line"] == CONTROL_LOG  # JSON keeps the exact text


def test_csv_round_trips_newlines_and_tsv_escapes_them(small_db: Path) -> None:
    _code, out, _err = run("runs", "PipeFlow", "--csv", "--mfdb", str(small_db))
    rows = list(csv.DictReader(io.StringIO(out)))
    tags = json.loads(rows[1]["tags"])
    assert "tab\tand\nnewline" in tags
    _code, out, _err = run("runs", "PipeFlow", "--tsv", "--mfdb", str(small_db))
    assert len(out.splitlines()) == 4
    # the JSON text of the tags, its backslashes escaped for TSV
    assert "tab\\\\tand\\\\nnewline" in out


def test_show_task_hides_internal_artifacts_unless_all(small_db: Path) -> None:
    doc = json.loads(run("show", "PipeFlow/1/start/1", "--json", "--mfdb", str(small_db))[1])
    names = [a["name"] for a in doc["artifacts"]]
    assert "x" in names and "_internal" not in names and doc["hidden_artifacts"] == 1
    doc = json.loads(
        run("show", "PipeFlow/1/start/1", "--json", "--all", "--mfdb", str(small_db))[1]
    )
    assert "_internal" in [a["name"] for a in doc["artifacts"]]
    _code, out, _err = run("show", "PipeFlow/1/start/1", "--table", "--mfdb", str(small_db))
    assert "1 internal artifact hidden (use --all)" in out and "_internal" not in out


def test_table_colors_status_and_shortens_tags(small_db: Path) -> None:
    result = mfstore_cli(
        "runs", "PipeFlow", "--table", "--mfdb", str(small_db), env={"FORCE_COLOR": "1"}, color=True
    )
    out = result.stdout
    assert "\x1b[32msuccessful" in out and "\x1b[31mfailed" in out and "\x1b[33mrunning" in out
    assert "+1 more" in out  # 4 tags: 3 shown
    # the only escape sequences are rich's own colours: none from the tags
    assert "\x1b[2J" not in out and "\x1b]0" not in out


def test_one_format_at_a_time(small_db: Path) -> None:
    code, _out, err = run("runs", "PipeFlow", "--json", "--csv", "--mfdb", str(small_db))
    assert code == 2 and "choose one of --json, --csv" in err


def test_progress_bars_stay_off_when_piped(small_db: Path, tmp_path: Path) -> None:
    p = mfstore_process("export", str(small_db), str(tmp_path / "e.mfdb"), "--flow", "PipeFlow")
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("exported 3 runs") and p.stdout.count("\n") == 1
    p = mfstore_process("verify", "--mfdb", str(tmp_path / "e.mfdb"))
    assert p.returncode == 0 and p.stderr == "" and p.stdout.endswith(": ok\n")


def test_hostile_row_values_print_or_fail_in_one_line(small_db: Path, tmp_path: Path) -> None:
    """Out-of-range times and control characters in a user name: the listing still prints
    (times it cannot show are empty), and nothing reaches the terminal unescaped."""
    import sqlite3

    db = tmp_path / "hostile.mfdb"
    shutil.copy(small_db, db)
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE runs SET ts_epoch = 9223372036854775807, user_name = 'x\x1b[2Jy' WHERE run_number = '1'"
    )
    con.execute("UPDATE runs SET finished_at = -9223372036854775807 WHERE run_number = '2'")
    con.commit()
    con.close()
    for fmt in ("--table", "--tsv", "--csv", "--json"):
        code, out, err = run("runs", "PipeFlow", "--mfdb", str(db), fmt)
        assert code == 0, err
        assert "\x1b[2J" not in out
    code, out, _err = run("show", "PipeFlow/1", "--mfdb", str(db), "--table")
    assert code == 0 and "x\\x1b[2Jy" in out


def test_show_step_is_one_table(small_db: Path) -> None:
    _code, out, _err = run("show", "PipeFlow/2/start", "--csv", "--mfdb", str(small_db))
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["step", "task_id", "status"] and rows[1][:2] == ["start", "1"]
    assert len(rows) == 2
