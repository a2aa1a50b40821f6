"""Issue 12, class 5: a lone surrogate never crashes the runtime (stored and read back)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FLOW = """
import os
from mfstore import FlowSpec, Parameter, step


class SurrogateFlow(FlowSpec):
    label = Parameter("label", default="x")

    @step
    def start(self):
        self.fname = os.fsdecode(b"caf\\xe9.csv")  # a non-UTF-8 file name
        print("file", self.fname, self.label)
        self.next(self.end)

    @step
    def end(self):
        self.both = [self.fname, self.label]


if __name__ == "__main__":
    SurrogateFlow()
"""


def test_lone_surrogates_in_artifacts_parameters_and_logs(tmp_path: Path, client_db) -> None:
    import mfstore

    (tmp_path / "flow.py").write_text(FLOW)
    db = tmp_path / "metaflow.mfdb"
    env = dict(os.environ, METAFLOW_USER="tester", MFSTORE_DB=str(db))
    name = os.fsdecode(b"n\xe9")  # what Click gets from argv bytes that are not UTF-8
    done = subprocess.run(
        [sys.executable, "flow.py", "run", "--label", name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    client_db(db)
    run = mfstore.Flow("SurrogateFlow").latest_run
    assert run.successful and run.finished
    assert run.data.both == ["caf\udce9.csv", "n\udce9"]
    assert run["start"].task.data.fname == "caf\udce9.csv"
    assert "file caf" in run["start"].task.stdout
