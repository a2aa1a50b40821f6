"""Fixtures for production tests: flow files run in subprocesses, one token home per user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mfstore

FLOWS = Path(__file__).resolve().parent / "flows"
MFSTORE_ROOT = Path(mfstore.__file__).resolve().parent.parent


class Prod:
    """Runs ``python <flow file> <args>`` as a given user, with ``METAFLOW_TOKEN_HOME`` per user."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "test.mfdb"

    def token_home(self, user: str) -> Path:
        return self.workdir / "tokens" / user

    def __call__(
        self, name: str, *args: str, user: str = "alice", check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        dest = self.workdir / name
        if not dest.exists():
            shutil.copy(FLOWS / name, dest)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
        env.update(
            METAFLOW_USER=user,
            MFSTORE_DB=str(self.db),
            PYTHONPATH=str(MFSTORE_ROOT),
            METAFLOW_TOKEN_HOME=str(self.token_home(user)),
        )
        env.update(extra)
        cp = subprocess.run(
            [sys.executable, name, *args],
            cwd=self.workdir,
            env=env,
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
        from mfstore import provider

        return [tuple(r) for r in provider.open_store(self.db).query(query, params)]

    def trigger(self, name: str, *args: str, user: str = "alice") -> str:
        """``production trigger``; returns the run id."""
        id_file = self.workdir / "run_id"
        self(name, "production", "trigger", "--run-id-file", str(id_file), *args, user=user)
        return id_file.read_text().strip()


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runner = Prod(tmp_path)
    monkeypatch.setenv("MFSTORE_DB", str(runner.db))
    monkeypatch.setenv("METAFLOW_USER", "alice")
    monkeypatch.setenv("METAFLOW_TOKEN_HOME", str(tmp_path / "tokens" / "pytest"))
    monkeypatch.delenv("METAFLOW_PRODUCTION_TOKEN", raising=False)
    from mfstore import provider

    provider.reset()
    mfstore.namespace(None)
    yield runner
    mfstore.namespace(None)
    provider.reset()
