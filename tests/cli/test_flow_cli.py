"""The flow command line's read commands as people pipe them: `python flow.py -h`,
`tag list --json`, `show --json`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def flow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MFSTORE_DB", None)
    env.setdefault("METAFLOW_USER", "tester")
    return subprocess.run(
        [sys.executable, "team_collab_flow.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("flowcli")
    shutil.copy(REPO / "examples" / "team_collab_flow.py", cwd)
    assert flow(cwd, "run", "--tag", "[/x]").returncode == 0
    return cwd


def test_h_is_help(project: Path) -> None:
    short, long = flow(project, "-h"), flow(project, "--help")
    assert short.returncode == 0 and short.stdout == long.stdout and "run" in short.stdout


def test_tag_list_json(project: Path) -> None:
    p = flow(project, "tag", "list", "--json")
    assert p.returncode == 0, p.stderr
    (entry,) = json.loads(p.stdout)
    assert entry["pathspec"].startswith("TeamCollabFlow/") and entry["tags"] == ["[/x]"]
    assert "runtime:dev" in entry["system_tags"]
    p = flow(project, "tag", "list", "--json", "--hide-system-tags")
    assert "system_tags" not in json.loads(p.stdout)[0]


def test_show_json(project: Path) -> None:
    p = flow(project, "show", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["flow"] == "TeamCollabFlow"
    assert [(s["name"], s["next"]) for s in doc["steps"]] == [("start", ["end"]), ("end", [])]
