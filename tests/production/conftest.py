"""Fixtures for production tests: flow files (``tests/flows``) run in subprocesses, one
token home per user."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import mfstore
from tests.flowfiles import FlowRunner


class Prod(FlowRunner):
    """Runs ``python <flow file> <args>`` as a given user, with ``METAFLOW_TOKEN_HOME`` per user."""

    def token_home(self, user: str) -> Path:
        return self.workdir / "tokens" / user

    def env(self, user: str = "alice", **extra: str) -> dict[str, str]:
        return super().env(user, **{"METAFLOW_TOKEN_HOME": str(self.token_home(user)), **extra})

    def __call__(
        self, name: str, *args: str, user: str = "alice", check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run(name, *args, user=user, check=check, **extra)

    def trigger(self, name: str, *args: str, user: str = "alice", **extra: str) -> str:
        """``production trigger`` (``extra``: environment variables); returns the run id."""
        id_file = self.workdir / "run_id"
        self(
            name, "production", "trigger", "--run-id-file", str(id_file), *args, user=user, **extra
        )
        return id_file.read_text().strip()

    def send(
        self, name: str, event: str, *fields: str, check: bool = True
    ) -> tuple[subprocess.CompletedProcess[str], str | None]:
        """``production trigger --event EVENT --payload FIELD...`` from flow file ``name``;
        ``(the command, the id of the run it started or None)``."""
        id_file = self.workdir / "event_run_id"
        id_file.unlink(missing_ok=True)
        payload = [arg for field in fields for arg in ("--payload", field)]
        cp = self(
            name,
            "production",
            "trigger",
            "--event",
            event,
            *payload,
            "--run-id-file",
            str(id_file),
            check=check,
        )
        return cp, id_file.read_text().strip() if id_file.exists() else None


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
