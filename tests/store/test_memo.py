"""Store.memo: derived facts are remembered only until the file changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mfstore.exception import MetaflowNamespaceMismatch
from mfstore.store import Store
from mfstore.writer import Writer


def _run(store: Store, user: str, tags: tuple[str, ...] = ()) -> None:
    w = Writer(store)
    run = w.begin_run("F", user_name=user, user_tags=tags, system_tags=[f"user:{user}"])
    w.end_run(run, successful=True)


def test_memo_is_dropped_when_another_connection_commits(store_path: Path) -> None:
    a = Store(store_path, create=True)
    b = Store(store_path)
    calls = []
    count = lambda: calls.append(1) or a.scalar("SELECT count(*) FROM runs")  # noqa: E731
    assert a.memo("n", count) == 0
    assert a.memo("n", count) == 0 and len(calls) == 1
    _run(b, "alice")
    assert a.memo("n", count) == 1 and len(calls) == 2
    a.close()
    b.close()


def test_memo_is_dropped_by_own_writes(store: Store) -> None:
    assert store.memo("n", lambda: store.scalar("SELECT count(*) FROM runs")) == 0
    _run(store, "alice")
    assert store.memo("n", lambda: store.scalar("SELECT count(*) FROM runs")) == 1


def test_namespace_check_sees_runs_written_by_another_process(store_path: Path) -> None:
    import mfstore

    Store(store_path, create=True).close()
    mfstore.metadata(str(store_path))
    mfstore.namespace("user:bob")
    try:
        _run(Store(store_path), "alice")
        for _ in range(2):  # the second check is answered from the memo
            with pytest.raises(MetaflowNamespaceMismatch):
                mfstore.Flow("F")
        code = (
            "from mfstore.store import Store; from mfstore.writer import Writer; "
            f"s = Store({str(store_path)!r}); w = Writer(s); "
            "r = w.begin_run('F', user_name='bob', user_tags=['x'], system_tags=['user:bob']); "
            "w.end_run(r, successful=True)"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        assert mfstore.Flow("F").latest_run is not None
        assert [r.user_tags for r in mfstore.Flow("F").runs("x")] == [frozenset({"x"})]
    finally:
        mfstore.default_namespace()
        mfstore.default_metadata()
