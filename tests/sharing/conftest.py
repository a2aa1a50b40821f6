"""Session fixtures: one real Metaflow history, imported once from a moved copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mfstore.store import Store

#: The tables whose row counts show whether an import or a merge added anything.
COUNTED_TABLES = (
    "runs",
    "tasks",
    "attempts",
    "artifacts",
    "metadata",
    "log_lines",
    "blobs",
    "tag_events",
)


def table_counts(store: Store) -> dict[str, int]:
    """Rows of each of ``COUNTED_TABLES``."""
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in COUNTED_TABLES}


@pytest.fixture(scope="session")
def mf_history(tmp_path_factory) -> Path:
    """Workdir holding `.metaflow` built by real Metaflow (see mfhistory.py)."""
    import metaflow  # noqa: F401  (test dependency: real Metaflow is the reference)

    from tests.sharing.mfhistory import build_sharing_history

    workdir = tmp_path_factory.mktemp("mfhist")
    build_sharing_history(workdir)
    return workdir


@pytest.fixture(scope="session")
def moved_history(mf_history, tmp_path_factory) -> Path:
    """A copy of the `.metaflow` directory at another absolute path (stored roots are stale)."""
    dest = tmp_path_factory.mktemp("moved") / "elsewhere" / ".metaflow"
    shutil.copytree(mf_history / ".metaflow", dest)
    return dest


@pytest.fixture(scope="session")
def imported(mf_history, moved_history) -> Path:
    """The moved history imported into `<workdir>/imported.mfdb` (next to the original, so
    both clients' dumps normalize paths the same way)."""
    from mfstore.importer import import_metaflow
    from mfstore.store import Store

    path = mf_history / "imported.mfdb"
    store = Store(path, create=True)
    try:
        report = import_metaflow(moved_history, store)
    finally:
        store.close()
    assert report.problems == [] and report.conflicts == []
    return path


@pytest.fixture
def imported_copy(imported, tmp_path) -> Path:
    """A private copy of the imported file, for tests that change it."""
    dst = tmp_path / "copy.mfdb"
    shutil.copy(imported, dst)
    return dst
