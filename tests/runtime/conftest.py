"""Fixtures for running flow files under mfstore in subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

import mfstore
from tests.flowfiles import FlowRunner

__all__ = ["FlowRunner", "client", "flows"]


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

    mfstore.namespace(None)
    yield mfstore
    mfstore.namespace(None)
