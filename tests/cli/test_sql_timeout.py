"""``mfstore sql --timeout`` on streamed output: the limit is on SQLite's time without a
row, so a long export runs to its end (also when its reader is slow) while a query that
computes without giving a row still stops; a table on a terminal keeps a limit on the
whole query. No timed assertions: the limits are small and the outcomes are exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import mfstore_cli

ENDLESS_ROWS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
ENDLESS_COUNT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)
ROWS = 50_000
MANY_ROWS = (
    f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {ROWS}) "
    "SELECT x, 'row ' || x FROM c"
)


def sql_child(db: Path, *args: str) -> subprocess.Popen[str]:
    """``mfstore sql --mfdb DB ARGS`` in a child process, stdout and stderr piped."""
    env = dict(os.environ)
    env.pop("MFSTORE_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mfstore", "sql", "--mfdb", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_streamed_query_without_rows_still_stops(small_db: Path) -> None:
    for fmt in ("--csv", "--tsv", "--json", "--nl"):
        result = mfstore_cli("sql", "--mfdb", str(small_db), "--timeout", "0.3", fmt, ENDLESS_COUNT)
        assert result.exit_code == 1, (fmt, result.output)
        assert "time limit" in result.output and "Traceback" not in result.output


def test_table_limit_covers_the_whole_query(small_db: Path) -> None:
    # Rows keep coming, but a table reads them all before printing: the limit stops it.
    result = mfstore_cli(
        "sql", "--mfdb", str(small_db), "--timeout", "0.3", "--table", "--all", ENDLESS_ROWS
    )
    assert result.exit_code == 1
    assert "time limit" in result.output


def test_export_outlives_the_timeout_with_a_slow_reader(small_db: Path) -> None:
    """The reader stops reading for 3 s (5x the limit) after the first line; the pipe
    fills and the writer waits. That waiting is not SQLite's time: the export finishes.
    (Before, the limit covered the whole export and the next step was interrupted.)"""
    child = sql_child(small_db, "--timeout", "0.6", "--csv", MANY_ROWS)
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline() == "x,'row ' || x\n"
    time.sleep(3)
    rest = child.stdout.read()
    err = child.stderr.read()
    assert child.wait(timeout=600) == 0, err
    lines = rest.splitlines()
    assert len(lines) == ROWS and lines[-1] == f"{ROWS},row {ROWS}"


def test_streamed_endless_rows_stop_with_the_reader(small_db: Path) -> None:
    """Endless rows to a pipe are never stopped by the limit, only by the reader
    (``| head``): the process then ends quietly, without a traceback."""
    child = sql_child(small_db, "--timeout", "0.3", "--tsv", ENDLESS_ROWS)
    assert child.stdout is not None and child.stderr is not None
    got = [child.stdout.readline() for _ in range(5)]
    time.sleep(1)  # over 3x the limit, spent by the reader
    more = [child.stdout.readline() for _ in range(200_000)]
    child.stdout.close()
    child.wait(timeout=600)
    assert got == ["x\n", "1\n", "2\n", "3\n", "4\n"]
    assert more[-1] == "200004\n"
    assert "Traceback" not in child.stderr.read()


def test_limit_streams_and_says_more(small_db: Path) -> None:
    result = mfstore_cli("sql", "--mfdb", str(small_db), "--csv", "--limit", "3", ENDLESS_ROWS)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["x", "1", "2", "3"]
    assert "more rows not shown (first 3" in result.stderr
