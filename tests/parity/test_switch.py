"""Switch steps (``self.next({...}, condition=...)``) and recursive switches (loops), as
Metaflow 2.19.39 runs them: the same flow on Metaflow and on mfstore's runtime runs the
same tasks, records the same artifacts, loop iterations and graph, resumes the same way,
and ``show``/``check`` print the same steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flowfiles import FLOWS

from .differential import LIBS, Workdir, snapshot

FLOW = "switch_loops.py"
NAME = "SwitchLoopFlow"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workdir]:
    root = tmp_path_factory.mktemp("switch")
    return {lib: Workdir(root, lib) for lib in LIBS}


def test_switch_run_matches_metaflow(both: dict[str, Workdir]) -> None:
    snaps = {}
    for lib, wd in both.items():
        wd.add(FLOW)
        wd.python(FLOW, "run")
        snaps[lib] = snapshot(wd, NAME)
    ours, theirs = snaps["mfstore"], snaps["metaflow"]
    assert theirs["successful"] and "skip" not in theirs["tasks"]
    # the loop ran 2 + 3 times, numbered 0.. per foreach branch
    iterations = sorted(
        (r["foreach"], r["artifacts"]["_iteration_stack"]) for r in theirs["tasks"]["loop_body"]
    )
    assert iterations == [
        ("item:0", [0]),
        ("item:0", [1]),
        ("item:1", [0]),
        ("item:1", [1]),
        ("item:1", [2]),
    ]
    assert ours["graph"] == theirs["graph"]
    assert ours["structure"] == theirs["structure"]
    assert ours["steps"] == theirs["steps"]
    assert ours["tasks"] == theirs["tasks"]


def test_switch_resume_matches_metaflow(both: dict[str, Workdir]) -> None:
    snaps = {}
    for lib, wd in both.items():
        wd.add(FLOW)
        sync = wd.path / "sync"
        sync.mkdir()
        failed = wd.python(FLOW, "run", check=False, SWITCH_FAIL="B", SWITCH_SYNC=str(sync))
        assert (sync / "A").exists()
        assert failed.returncode != 0
        wd.python(FLOW, "resume")
        snaps[lib] = snapshot(wd, NAME)
    ours, theirs = snaps["mfstore"], snaps["metaflow"]
    cloned = sorted(
        (r["foreach"], r["artifacts"]["_iteration_stack"])
        for r in theirs["tasks"]["loop_body"]
        if r["cloned"]
    )
    # A's two iterations and B's first were cloned; B's second and third ran again (B fails
    # only after A's exit_item began, so A's loop is whole in the origin run)
    assert cloned == [("item:0", [0]), ("item:0", [1]), ("item:1", [0])]
    # Whether A's exit_item was recorded as done before B's failure stopped the origin run
    # is still a race (on both systems: it began first): it is cloned or run again.
    for snap in (ours, theirs):
        for row in snap["tasks"]["exit_item"]:
            row["cloned"] = None
    assert ours["tasks"] == theirs["tasks"]
    # Metaflow clones the origin's tasks in parallel threads, so the order of the cloned
    # steps varies from one resume to the next; the steps that ran come first in both.
    assert ours["steps"][:2] == theirs["steps"][:2] == ["end", "join"]
    assert sorted(ours["steps"]) == sorted(theirs["steps"])


@pytest.mark.parametrize("command", ["show", "check"])
def test_show_and_check_match_metaflow(both: dict[str, Workdir], command: str) -> None:
    out = {}
    for lib, wd in both.items():
        wd.add(FLOW)
        cp = wd.python(FLOW, command)
        # the banner names the library, check names the script path, and Metaflow says when
        # it creates its datastore directory: drop those lines
        err = [
            ln
            for ln in cp.stderr.splitlines()[1:]
            if FLOW not in ln and not ln.startswith("Creating local datastore")
        ]
        out[lib] = (cp.stdout, err)
    if command == "check":
        theirs = [ln for ln in out["metaflow"][1] if "ylint" not in ln]
        assert out["mfstore"] == (out["metaflow"][0], theirs)
    else:
        assert out["mfstore"] == out["metaflow"]
        assert "Step loop_body\n    Runs once per iteration" in out["mfstore"][0]
        assert "    => loop_body, exit_item\n" in out["mfstore"][0]


def test_switch_graph_errors(tmp_path: Path) -> None:
    """Metaflow's graph checks for switches: a switch straight into a join, a loop through
    an earlier step, a variable as a case key."""
    wd = Workdir(tmp_path, "mfstore")
    base = (FLOWS / FLOW).read_text()
    cases = {
        "direct join": (
            base.replace(
                'self.next({"True": self.loop_body, "False": self.exit_item}, condition="again")',
                'self.next({"True": self.exit_item, "False": self.join}, condition="again")',
            ),
            "A conditional path cannot lead directly to a join step",
        ),
        "loop": (
            base.replace(
                '{"True": self.loop_body, "False": self.exit_item}',
                '{"True": self.item, "False": self.exit_item}',
            ),
            "There is a loop in your flow: item->loop_body->item.",
        ),
        "variable key": (
            base.replace('{"True": self.loop_body,', "{again: self.loop_body,"),
            "  - Switch: self.next({",
        ),
    }
    for what, (source, message) in cases.items():
        wd.add("bad.py", source)
        cp = wd.python("bad.py", "check", check=False)
        assert cp.returncode != 0, what
        assert message in cp.stderr, (what, cp.stderr)
