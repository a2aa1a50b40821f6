"""Shared fixtures: a fresh .mfdb per test and a report header with the driver versions."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

os.environ.setdefault("METAFLOW_USER", "tester")

# `tests.*` helpers and `benchmarks` are importable, but appended (not prepended) to
# sys.path: `import mfstore` keeps resolving to the installed package under CI.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)


# Ctrl-C is part of what the tests check (a runtime stopped by SIGINT, an endless query
# stopped by KeyboardInterrupt). A test process started as a shell's background job
# inherits SIGINT *ignored* (POSIX), Python then installs no KeyboardInterrupt handler, and
# every runtime a test starts inherits the ignored signal too: those tests would hang. Give
# the test process (each xdist worker runs this module too) Python's own Ctrl-C handler, so
# the processes it starts get SIGINT's default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import apsw

    return [f"apsw {apsw.apsw_version()}, SQLite {apsw.sqlite_lib_version()}"]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Path of a not-yet-created .mfdb under tmp_path."""
    return tmp_path / "test.mfdb"


@pytest.fixture
def store(store_path: Path):
    """A new, empty .mfdb opened for writing."""
    from mfstore.store import Store

    s = Store(store_path, create=True)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh_file_selection():
    """Each test starts without another test's ``metadata()`` selection or cached stores
    (the Client's file choice is process state; xdist runs many tests per process)."""
    yield
    from mfstore import provider

    provider.default_metadata()
    provider.reset()


@pytest.fixture
def client_db(monkeypatch: pytest.MonkeyPatch):
    """Point the Client API at a given file, in the global namespace; reset afterwards."""
    import mfstore
    from mfstore import provider

    monkeypatch.setenv("METAFLOW_USER", "tester")
    provider.reset()

    def use(db: Path) -> None:
        provider.reset()
        mfstore.metadata(str(db))
        mfstore.namespace(None)

    yield use
    provider.reset()
    provider.default_metadata()
    mfstore.namespace(None)
