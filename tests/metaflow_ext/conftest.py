"""Helpers: run real Metaflow with the mfdb extension, and ask Metaflow's client about a
.mfdb in a fresh process (Metaflow and mfstore never share the test interpreter)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from tests.compat import harness
from tests.flowfiles import MFDB, lib_env, run_flow, run_python

#: Generous: the suite runs on shared 2-core machines.
TIMEOUT = 900
#: mfstore's Client vs Metaflow's client on one file: mfstore's documented differences
#: (README: a failed run, task or attempt is ``finished``, and a failed run has a
#: ``finished_at``) and storage details.
MFSTORE_VS_METAFLOW = (
    harness.KNOWN_DIFFERENCES
    | harness.STORAGE_DETAILS
    | {"runs.*.steps.*.tasks.*.attempts.*.finished", "runs.*.finished_at_is_none"}
)


def mf_run(
    flow: str | Path,
    workdir: Path,
    args: list[str],
    *,
    user: str = "tester",
    check: bool = True,
    env=None,
) -> subprocess.CompletedProcess:
    """``python <flow> <args>`` under real Metaflow with the mfdb backend (``flow``: a test
    flow's name, or a path)."""
    return run_flow(MFDB, flow, workdir, args, user=user, check=check, env=env, timeout=TIMEOUT)


def mf_client(workdir: Path, code: str, *, user: str = "tester") -> Any:
    """Run ``code`` with Metaflow's client on ``workdir/metaflow.mfdb``; it sets ``out``
    (JSON-encodable), which is returned."""
    file = Path(workdir) / "metaflow.mfdb"
    script = (
        "import json\nfrom metaflow import *\n"
        f"metadata('mfdb@{file}')\n" + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    )
    env = lib_env("metaflow", Path(workdir))
    env["METAFLOW_USER"] = user
    cp = run_python(["-c", script], Path(workdir), env, timeout=TIMEOUT)
    return json.loads(cp.stdout.strip().splitlines()[-1])
