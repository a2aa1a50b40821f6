"""A table on an 80-column terminal: ids, statuses, times and numbers are never cut;
long text (tags, user names) is cut with an ellipsis so the table fits and each run
stays on one line."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len

from mfstore.store import Store
from mfstore.writer import Writer
from tests.helpers import mfstore_cli

from .conftest import BASE_MS

LONG_ID = "20261202034500123456789"
LONG_TAGS = [f"a-rather-long-tag-number-{i}-" + "x" * 30 for i in range(5)]


def test_ids_and_times_stay_whole_at_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.mfdb"
    with Store(path, create=True) as store:
        w = Writer(store)
        for n, run_number in enumerate(["7", LONG_ID]):
            run = w.begin_run(
                "WideFlow",
                user_name="someone-with-a-very-long-user-name-" + "y" * 20,
                user_tags=LONG_TAGS,
                system_tags=["user:someone"],
                run_number=run_number,
                ts_epoch=BASE_MS + n * 1000,
            )
            w.end_run(run, successful=True, ts_epoch=BASE_MS + n * 1000 + 2500, checkpoint=False)
        store.checkpoint()
    result = mfstore_cli("runs", "WideFlow", "--table", "--mfdb", str(path), columns=80)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 2  # one line per run
    newest = rows[0]
    assert LONG_ID in newest and "successful" in newest and "2023-11-14 22:13:21" in newest
    assert "2.5" in newest and "\u2026" in newest  # the tags are cut, with an ellipsis
    assert "7" in rows[1]
