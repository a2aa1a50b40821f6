"""Fixtures for running flow files under mfstore in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mfstore
from tests.flowfiles import install

#: Where the mfstore under test lives (the checkout, or site-packages when installed).
MFSTORE_ROOT = Path(mfstore.__file__).resolve().parent.parent


class FlowRunner:
    """Runs ``python <flow file> <args>`` in a work directory with its own .mfdb."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "test.mfdb"

    def env(self, user: str = "alice", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
        env.update(METAFLOW_USER=user, MFSTORE_DB=str(self.db), PYTHONPATH=str(MFSTORE_ROOT))
        env.update(extra)
        return env

    def copy(self, name: str) -> Path:
        """Install flow ``name`` of ``tests/flows`` (imports rewritten to mfstore) once."""
        dest = self.workdir / Path(name).name
        if not dest.exists():
            install(name, self.workdir)
        return dest

    def popen(
        self, name: str, *args: str, user: str = "alice", **extra: str
    ) -> subprocess.Popen[str]:
        dest = self.copy(name)
        return subprocess.Popen(
            [sys.executable, dest.name, *args],
            cwd=self.workdir,
            env=self.env(user, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, name: str, *args: str, user: str = "alice", check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        dest = self.copy(name)
        cp = subprocess.run(
            [sys.executable, dest.name, *args],
            cwd=self.workdir,
            env=self.env(user, **extra),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and cp.returncode != 0:
            raise AssertionError(
                f"{name} {args} failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"
            )
        return cp

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        # Through mfstore's own (apsw) connection: a stdlib sqlite3 connection closed in
        # the same process would drop apsw's POSIX locks and WAL view of the file.
        from mfstore import provider

        return [tuple(r) for r in provider.open_store(self.db).query(query, params)]


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlowRunner:
    runner = FlowRunner(tmp_path)
    monkeypatch.setenv("MFSTORE_DB", str(runner.db))
    monkeypatch.setenv("METAFLOW_USER", "alice")
    monkeypatch.delenv("METAFLOW_PRODUCTION_TOKEN", raising=False)
    from mfstore import provider

    provider.reset()
    provider.default_metadata()
    yield runner
    provider.reset()


@pytest.fixture
def client(flows: FlowRunner):
    """The Client API reading the test's file, in the global namespace."""
    import mfstore

    mfstore.namespace(None)
    yield mfstore
    mfstore.namespace(None)
