"""Real Metaflow on a .mfdb (issue 16): the same history made by Metaflow's runtime on
its local backend and on mfdb gives the same answers through Metaflow's client, and
mfstore's Client agrees with Metaflow's client on the .mfdb.

The history is the compat harness's scenarios (parameters, two users, branch, foreach,
nested foreach, retry, catch, a failing run, resume, artifact types), run with
``METAFLOW_DEFAULT_METADATA=mfdb METAFLOW_DEFAULT_DATASTORE=mfdb`` and no MFSTORE_DB: the
file is found (and created) the mfstore way, in the working directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat import harness
from tests.compat.harness import MFDB, build_history, diff, snapshot_history
from tests.metaflow_ext.conftest import MFSTORE_VS_METAFLOW

#: What differs between Metaflow's local backend and mfdb by design, read through
#: Metaflow's client (docs/metaflow.md, "Differences").
MFDB_VS_LOCAL = harness.STORAGE_DETAILS | {
    # ties in created_at (same millisecond): local lists the filesystem's order
    "runs.*.step_order",
    "runs.*.steps.*.task_order",
    "metaflow_flows_raw_order",
}


#: The scenarios run (parameters + two users + tags, branch, nested foreach, retry, catch,
#: a failing run, run then resume): each flow runs twice per test session, so the list
#: leaves out the harness's scenarios these already cover.
FLOW_FILES = [
    "linear_params_flow.py",
    "branch_join_flow.py",
    "nested_foreach_flow.py",
    "retry_flow.py",
    "catch_flow.py",
    "failing_flow.py",
    "current_flow.py",
]
#: Generous: the suite runs on shared 2-core machines.
TIMEOUT = 900


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mfext_history")
    for lib in ("metaflow", MFDB):
        build_history(lib, root / lib, FLOW_FILES, timeout=TIMEOUT)
    return root


def test_no_metaflow_directory(histories: Path) -> None:
    wd = histories / MFDB
    assert (wd / "metaflow.mfdb").is_file()
    assert not (wd / ".metaflow").exists()
    assert (histories / "metaflow" / ".metaflow").is_dir()


def test_same_history_as_local_backend(histories: Path) -> None:
    local = snapshot_history("metaflow", histories / "metaflow", FLOW_FILES)
    mfdb = snapshot_history(MFDB, histories / MFDB, FLOW_FILES)
    assert set(local) == set(mfdb)
    problems = []
    for key in sorted(local):
        a, b = dict(local[key], lib=None), dict(mfdb[key], lib=None)
        problems += [f"{key}: {d}" for d in diff(a, b, MFDB_VS_LOCAL)]
    assert problems == []
    # the snapshots are not empty: every flow has runs with tasks and artifacts
    for key, snap in mfdb.items():
        assert snap["runs"], key
        assert any(run["steps"] for run in snap["runs"]), key


def test_both_clients_agree_on_the_file(histories: Path) -> None:
    wd = histories / MFDB
    metaflow_view = snapshot_history(MFDB, wd, FLOW_FILES)
    mfstore_view = snapshot_history("mfstore", wd / "metaflow.mfdb", FLOW_FILES)
    problems = []
    for key in sorted(metaflow_view):
        a, b = dict(metaflow_view[key], lib=None), dict(mfstore_view[key], lib=None)
        problems += [f"{key}: {d}" for d in diff(a, b, MFSTORE_VS_METAFLOW)]
    assert problems == []
