"""A representative subset of Metaflow's own test/core matrix (vendored in metaflow_core/,
Apache-2.0, see its NOTICE) runs on Metaflow and on mfstore's runtime with the flows'
imports rewritten; every case that passes on Metaflow must pass on mfstore.
``python tools/metaflow_core_matrix.py`` runs the whole suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.flowfiles import child_env

ROOT = Path(__file__).resolve().parents[2]
# One vendored copy of Metaflow's test/core subset serves both suites (see its NOTICE).
CORE = Path(__file__).resolve().parent.parent / "metaflow_ext" / "metaflow_core"


#: (tests, graphs): every kind of graph -- linear, branch, foreach, @parallel --, and
#: the areas fixed from the whole matrix: @parallel workers that return without self.next()
#: (SecretsDecoratorTest), tag edits from tasks running at once (TagMutationTest)
GROUPS = [
    ("basicartifacttest", "single-linear-step,single-and-branch,small-foreach"),
    ("secretsdecoratortest", "small-parallel"),
    ("tagmutationtest", "single-and-branch"),
]


def test_metaflow_core_subset(tmp_path: Path) -> None:
    env = child_env(METAFLOW_USER="tester")
    rows = []
    for i, (tests, graphs) in enumerate(GROUPS):
        out = tmp_path / f"matrix{i}.json"
        cp = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "metaflow_core_matrix.py"),
                "--source",
                str(CORE),
                "--tests",
                tests,
                "--graphs",
                graphs,
                "--jobs",
                "2",
                "--timeout",
                "1200",
                "--json",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=3000,
        )
        assert out.exists(), cp.stdout[-3000:] + cp.stderr[-3000:]
        rows += json.loads(out.read_text())["cases"]
        assert cp.returncode == 0, cp.stdout[-3000:]
    cases = {(r["test"], r["graph"]) for r in rows}
    assert cases == {
        ("BasicArtifactTest", "single-linear-step"),
        ("BasicArtifactTest", "single-and-branch"),
        ("BasicArtifactTest", "small-foreach"),
        ("SecretsDecoratorTest", "small-parallel"),
        ("TagMutationTest", "single-and-branch"),
    }
    for row in rows:
        assert row["metaflow"]["ok"], f"Metaflow itself fails {row['test']}/{row['graph']}"
        assert row["mfstore"]["ok"], f"{row['test']}/{row['graph']}: {row['mfstore']}"
