"""A representative part of Metaflow's own ``test/core`` matrix (the pinned subset in
``metaflow_core/``, see its NOTICE) run by real Metaflow on its local backend and on mfdb:
every case that passes on local passes on mfdb. The whole matrix and its table:
``python tools/metaflow_core_matrix.py --backends metaflow,mfdb --source <a Metaflow checkout>``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
#: Artifacts, logs, tags and tag mutation, @catch + @retry, resume, cards, @project (linear
#: graph); artifacts on a foreach and @secrets on a @parallel step.
TESTS = {
    "basicartifact",
    "basiclog",
    "tagmutation",
    "catchretry",
    "resumestartstep",
    "carddecoratorbasic",
}


def _tool():
    spec = importlib.util.spec_from_file_location(
        "core_matrix", REPO / "tools" / "metaflow_core_matrix.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_core_matrix_subset_passes_on_mfdb() -> None:
    tool = _tool()
    rows = tool.run_matrix(
        tool.PINNED, TESTS, {"linear"}, backends=("metaflow", "mfdb"), jobs=2, timeout=900
    )
    for t in TESTS:  # every chosen test has cases on the linear graph
        assert any(t in r["test"].lower() for r in rows), t
    # the other kinds of graph: foreach, and @parallel (its workers are processes the
    # control task starts, each writing to the file)
    for tests, graph in (({"basicartifact"}, "small_foreach"), ({"secretsdecorator"}, "parallel")):
        more = tool.run_matrix(
            tool.PINNED, tests, {graph}, backends=("metaflow", "mfdb"), jobs=2, timeout=900
        )
        assert len(more) == 1, more
        rows += more
    table = [(r["test"], r["graph"], r["metaflow"], r["mfdb"]) for r in rows]
    assert all(local["ok"] for _t, _g, local, _m in table), table
    failing = [(t, g, m["why"], m["detail"]) for t, g, local, m in table if not m["ok"]]
    assert failing == []
