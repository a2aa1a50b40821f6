"""A representative subset of Metaflow's own test/core matrix (vendored in metaflow_core/,
Apache-2.0, see its NOTICE) runs on Metaflow and on mfstore's runtime with the flows'
imports rewritten; every case that passes on Metaflow must pass on mfstore.
``python tools/metaflow_core_matrix.py`` runs the whole suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# One vendored copy of Metaflow's test/core subset serves both suites (see its NOTICE).
CORE = Path(__file__).resolve().parent.parent / "metaflow_ext" / "metaflow_core"


def test_metaflow_core_subset(tmp_path: Path) -> None:
    out = tmp_path / "matrix.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
    env["METAFLOW_USER"] = "tester"
    cp = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "metaflow_core_matrix.py"),
            "--source",
            str(CORE),
            "--tests",
            "basicartifacttest",
            "--graphs",
            "single-linear-step,single-and-branch",
            "--jobs",
            "2",
            "--json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    rows = json.loads(out.read_text())["cases"]
    assert len(rows) >= 2, cp.stdout + cp.stderr
    for row in rows:
        assert row["metaflow"]["ok"], f"Metaflow itself fails {row['test']}/{row['graph']}"
        assert row["mfstore"]["ok"], f"{row['test']}/{row['graph']}: {row['mfstore']}"
    assert cp.returncode == 0, cp.stdout[-3000:]
