"""The command-line examples of README.md and docs/cli.md run verbatim on the data the
quick start makes (examples/team_collab_flow.py run once, in examples/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "docs" / "cli.md"]


def console_blocks(path: Path) -> list[list[str]]:
    """The ``$ command`` lines of each ```console block; a command shown with an
    ``Error: ...`` line after it must fail (``! command``)."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", path.read_text("utf-8"), re.S):
        lines = block.splitlines()
        commands = []
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                fails = i + 1 < len(lines) and lines[i + 1].startswith("Error: ")
                commands.append(("! " if fails else "") + line[2:])
        found.append(commands)
    return found


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qs")
    (root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "team_collab_flow.py", root / "examples")
    env = _env()
    subprocess.run(
        [sys.executable, "team_collab_flow.py", "run"],
        cwd=root / "examples",
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MFSTORE_DB", None)
    env.setdefault("METAFLOW_USER", "tester")
    # `mfstore`, `python` and `sqlite-utils` of the environment under test come first
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_console_examples_run_verbatim(doc: Path, quickstart: Path) -> None:
    # `mfstore ui` serves until stopped: the ui tests cover it (tests/ui)
    blocks = [
        [c for c in b if "mfstore ui" not in c]
        for b in console_blocks(doc)
        if any("mfstore " in c and "mfstore ui" not in c for c in b)
    ]
    assert blocks
    for commands in blocks:
        script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
        cwd = quickstart if commands[0] == "cd examples" else quickstart / "examples"
        p = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == 0, (doc.name, commands, p.stdout[-2000:], p.stderr[-2000:])
        assert "Traceback" not in p.stderr
