"""Paging and streaming on a generated 100,000-run flow (no timing: the times are in
benchmarks/cli.py and benchmarks/RESULTS.md)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from mfstore.query import compile_run_count, compile_run_listing, required_tags
from mfstore.store import Store
from tests.helpers import mfstore_cli

from .conftest import BIG_RUNS


def test_first_page_newest_first_with_total_and_more_line(big_db: Path) -> None:
    result = mfstore_cli("runs", "BigFlow", "--mfdb", str(big_db))
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 21  # header + the newest 20
    assert [line.split("\t")[0] for line in lines[1:]] == [
        str(i) for i in range(99_999, 99_979, -1)
    ]
    assert result.stderr == "\u2026 99,980 more runs (use --limit N or --all)\n"
    table = mfstore_cli("runs", "BigFlow", "--table", "--limit", "3", "--mfdb", str(big_db)).stdout
    assert "BigFlow: 100,000 runs" in table and "99,997 more runs" in table
    tagged = mfstore_cli(
        "runs", "BigFlow", "--tag", "tenth", "--limit", "2", "--json", "--mfdb", str(big_db)
    )
    assert [r["run_id"] for r in json.loads(tagged.stdout)] == ["99990", "99980"]
    assert "9,998 more runs" in tagged.stderr


def test_show_flow_is_paged_like_runs(big_db: Path) -> None:
    result = mfstore_cli("show", "BigFlow", "--table", "--mfdb", str(big_db))
    assert result.exit_code == 0 and "BigFlow: 100,000 runs" in result.stdout
    assert "99,980 more runs" in result.stdout and result.stdout.count("user:") == 0
    assert result.stdout.count("successful") == 20


def test_all_csv_streams_every_run_newest_first(big_db: Path) -> None:
    result = mfstore_cli("runs", "BigFlow", "--all", "--csv", "--mfdb", str(big_db))
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) == BIG_RUNS + 1 and rows[0][0] == "run_id" and result.stderr == ""
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == list(range(BIG_RUNS - 1, -1, -1))
    result = mfstore_cli(
        "runs", "BigFlow", "--all", "--nl", "--tag", "tenth", "--mfdb", str(big_db)
    )
    assert sum(1 for _ in result.stdout.splitlines()) == BIG_RUNS // 10


def test_listing_statements_use_indexes_only(big_db: Path) -> None:
    """The statements behind `runs` never scan the runs table: index searches only."""
    store = Store(big_db, readonly=True)
    try:
        for tags in ((), ("tenth",), required_tags("user:user1", ["tenth"])):
            for sql, params in (
                compile_run_listing("BigFlow", tags, 20),
                compile_run_listing("BigFlow", tags, None),
                compile_run_count("BigFlow", tags),
            ):
                plan = [r[3] for r in store.query("EXPLAIN QUERY PLAN " + sql, params)]
                assert not [
                    p for p in plan if p.startswith("SCAN r") or p.startswith("SCAN runs")
                ], plan
                if "LIMIT" not in sql and "count(" not in sql:  # --all: index order, no sort
                    assert not [p for p in plan if "TEMP B-TREE" in p], plan
    finally:
        store.close()


def _child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mfstore", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def test_head_closes_the_pipe_and_the_command_stops(big_db: Path) -> None:
    """`mfstore runs F --all --csv | head -2`: the reader stops after two lines; the
    writer gets a broken pipe and exits quietly, long before writing 100,000 rows."""
    child = _child("runs", "BigFlow", "--all", "--csv", "--mfdb", str(big_db))
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    second = child.stdout.readline()
    child.stdout.close()  # what `head` does
    code = child.wait(timeout=600)
    err = child.stderr.read().decode()
    assert first.startswith(b"run_id,") and second.startswith(b"99999,")
    assert code in (0, 1) and "Traceback" not in err


def test_streaming_memory_stays_flat(big_db: Path, tmp_path: Path) -> None:
    """Peak memory of `runs --all --csv` over 100,000 runs stays near the first page's
    (nothing is collected): both well under 150 MB."""
    probe = (
        "import sys, runpy; sys.argv = ['mfstore'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('mfstore', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "sys.stdout.flush()\n"
        # VmHWM: this process's peak resident memory (ru_maxrss would count the parent's)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(hwm.split()[1], file=sys.stderr)\n"
    )

    def peak_kb(*args: str) -> int:
        out = tmp_path / "out.txt"
        with out.open("wb") as sink:
            p = subprocess.run(
                [sys.executable, "-c", probe, *args],
                stdout=sink,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                check=True,
                timeout=900,
            )
        return int(p.stderr.decode().strip().splitlines()[-1])

    first_page = peak_kb("runs", "BigFlow", "--csv", "--mfdb", str(big_db))
    everything = peak_kb("runs", "BigFlow", "--all", "--csv", "--mfdb", str(big_db))
    assert everything < 150_000 and everything < first_page + 40_000, (first_page, everything)


def test_sql_table_is_capped_and_csv_streams(big_db: Path) -> None:
    result = mfstore_cli(
        "sql", "SELECT run_id FROM mf_runs ORDER BY run_pk", "--table", "--mfdb", str(big_db)
    )
    assert result.exit_code == 0 and result.stdout.count("\n") < 120
    assert "more rows not shown (first 100" in result.stdout
    result = mfstore_cli("sql", "SELECT run_id FROM mf_runs", "--csv", "--mfdb", str(big_db))
    assert result.stdout.count("\n") == BIG_RUNS + 1
