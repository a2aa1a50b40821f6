"""Fixtures for the web UI: one file with real runs of ``flows/ui_flow.py`` (a split, a
foreach with a retried task, a failed run, a resumed run, hostile tags and log text)
plus ``ManyFlow``, 101 synthetic runs for filters and pagination."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.flowfiles import MFSTORE_ROOT, child_env, install

#: ManyFlow: run i starts at BASE_MS + i hours (2024-01-01T00:00Z + i h).
BASE_MS = 1_704_067_200_000
HOUR_MS = 3_600_000
MANY = 101
EVIL_TAG = "<script>alert('tag')</script>"


def many_user(i: int) -> str:
    return f"user{i % 3}"


def many_tags(i: int) -> list[str]:
    return ["even" if i % 2 == 0 else "odd", f"t{i % 5}"]


def many_status(i: int) -> str:
    if i == MANY - 1:
        return "running"
    return "failed" if i % 7 == 0 else "successful"


def many_run_id(i: int) -> str:
    return str(1000 + i)


@dataclass
class UiFile:
    path: Path
    ok_run: str
    """UiFlow run with tags EVIL_TAG and 'exp', alpha 0.5, label 'base'."""
    failed_run: str
    """UiFlow run failed at 'end' (alpha 0.9)."""
    resumed_run: str
    """Resume of failed_run (alpha 0.9, succeeded)."""


def _run_flow(workdir: Path, db: Path, *args: str) -> str:
    env = child_env(METAFLOW_USER="alice", MFSTORE_DB=str(db), PYTHONPATH=str(MFSTORE_ROOT))
    id_file = workdir / "run_id"
    cp = subprocess.run(
        [sys.executable, "ui_flow.py", *args, "--run-id-file", str(id_file)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if not id_file.exists():
        raise AssertionError(
            f"ui_flow.py {args} wrote no run id:\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}"
        )
    return id_file.read_text().strip()


def _many_flow(db: Path) -> None:
    from mfstore.artifacts import prepare_artifacts
    from mfstore.store import Store
    from mfstore.writer import Writer

    with Store(db) as store:
        w = Writer(store)
        with store.write():
            for i in range(MANY):
                ts = BASE_MS + i * HOUR_MS
                run = w.begin_run(
                    "ManyFlow", user_name=many_user(i), user_tags=many_tags(i),
                    system_tags=["user:" + many_user(i), "runtime:dev"], run_number=many_run_id(i), ts_epoch=ts,
                )  # fmt: skip
                task = w.add_task(run, "end", ts_epoch=ts)
                w.begin_attempt(task, 0, ts_epoch=ts)
                status = many_status(i)
                if status != "running":
                    w.end_attempt(
                        task, 0, artifacts=prepare_artifacts({"metric": i, "half": i // 2}),
                        task_ok=status == "successful", success=status == "successful", ts_epoch=ts + 1000,
                    )  # fmt: skip
                    w.end_run(
                        run, successful=status == "successful", ts_epoch=ts + 2000, checkpoint=False
                    )
        store.checkpoint()


@pytest.fixture(scope="session")
def ui_file(tmp_path_factory: pytest.TempPathFactory) -> UiFile:
    """The shared file (read-only use only: tests that change files copy it)."""
    work = tmp_path_factory.mktemp("uiflow")
    install("ui_flow.py", work)
    db = work / "ui.mfdb"
    ok = _run_flow(work, db, "run", "--tag", EVIL_TAG, "--tag", "exp")
    failed = _run_flow(work, db, "run", "--alpha", "0.9", "--fail", "true")
    # resume re-runs the failed 'end' step; 'fail' stays True in the origin's parameters,
    # so the resumed run is given a new value only through its origin: it fails again
    resumed = _run_flow(work, db, "resume", "--origin-run-id", failed)
    _many_flow(db)
    return UiFile(db, ok, failed, resumed)


@pytest.fixture
def copy_file(ui_file: UiFile, tmp_path: Path):
    """A private copy of the shared file's main database file (no -wal/-shm)."""

    def make(with_wal: bool = False) -> Path:
        dest = tmp_path / "copy" / "ui.mfdb"
        dest.parent.mkdir()
        shutil.copy(ui_file.path, dest)
        if with_wal:
            for suffix in ("-wal", "-shm"):
                src = Path(str(ui_file.path) + suffix)
                if src.exists():
                    shutil.copy(src, str(dest) + suffix)
        return dest

    return make


@pytest.fixture(scope="session")
def client(ui_file: UiFile):
    from starlette.testclient import TestClient

    from mfstore.ui import create_app

    app = create_app(ui_file.path)
    with TestClient(app) as c:
        yield c
    app.state.reader.close()
