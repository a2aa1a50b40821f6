"""Helpers for the reliability tests: tiny flows run by the real runtime, and checks of
a file's integrity that do not depend on the Client API."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: start -> foreach work (3 tasks) -> join -> end; optional sleeps and a big artifact
#: (env vars) so that crash tests can hit a task, an artifact write or a commit.
SMALL_FLOW = textwrap.dedent(
    """
    import os
    import time

    from mfstore import FlowSpec, step


    def _pause(step_name):
        delay = float(os.environ.get("REL_SLEEP", "0") or 0)
        if delay:
            time.sleep(delay)
        if os.environ.get("REL_SELF_KILL") == step_name:
            os.kill(os.getpid(), 9)


    class SmallFlow(FlowSpec):
        @step
        def start(self):
            _pause("start")
            self.items = [1, 2, 3]
            self.next(self.work, foreach="items")

        @step
        def work(self):
            _pause("work")
            self.sq = self.input * self.input
            big = int(os.environ.get("REL_BIG", "0") or 0)
            if big:
                self.blob = os.urandom(big)
            self.next(self.join)

        @step
        def join(self, inputs):
            _pause("join")
            self.total = sum(i.sq for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            _pause("end")
            self.done = True


    if __name__ == "__main__":
        SmallFlow()
    """
)

#: Steps of SmallFlow with their task counts and the artifacts each successful task has.
EXPECTED_TASKS = {"start": 1, "work": 3, "join": 1, "end": 1}
EXPECTED_ARTIFACTS = {"start": {"items"}, "work": {"sq"}, "join": {"total"}, "end": {"done"}}


def flow_env(db: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_", "REL_"))
    }
    env.update(
        METAFLOW_USER="tester", MFSTORE_DB=str(db), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"
    )
    env.update(extra)
    return env


def write_flow(directory: Path) -> Path:
    path = directory / "small_flow.py"
    path.write_text(SMALL_FLOW)
    return path


def run_flow(
    flow: Path, db: Path, *args: str, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(
        [sys.executable, str(flow), "--mfdb", str(db), *args],
        cwd=flow.parent,
        env=flow_env(db, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and cp.returncode != 0:
        raise AssertionError(
            f"{flow.name} {args} failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"
        )
    return cp


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_file(db: Path) -> None:
    """The file passes SQLite's integrity and foreign key checks and every blob matches its sha.

    Opened with stdlib sqlite3 (an independent reader), like a teammate's tool would.
    """
    from mfstore.blobs import sha1_hex, unpack_chunk

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x6D666462
        for bid, sha, size, chunks, codec, data in con.execute(
            "SELECT blob_id, lower(hex(sha)), size, chunks, codec, data FROM blobs"
        ).fetchall():
            parts = [
                (codec, data),
                *con.execute(
                    "SELECT codec, data FROM blob_chunks WHERE blob_id = ? ORDER BY seq", (bid,)
                ).fetchall(),
            ]
            assert len(parts) == chunks, sha
            raw = b"".join(unpack_chunk(codec, data) for codec, data in parts)
            assert len(raw) == size and sha1_hex(raw) == sha, sha
        dangling = con.execute(
            "SELECT count(*) FROM artifacts a LEFT JOIN blobs b ON b.blob_id = a.blob_id "
            "WHERE b.blob_id IS NULL"
        ).fetchone()[0]
        assert dangling == 0
    finally:
        con.close()


def verify_cli(db: Path) -> subprocess.CompletedProcess[str] | None:
    """``mfstore verify FILE`` when the command exists (None otherwise)."""
    from click.testing import CliRunner

    from mfstore.cli import cli

    if "verify" not in getattr(cli, "commands", {}):
        return None
    result = CliRunner().invoke(cli, ["verify", str(db)])
    assert result.exit_code == 0, result.output
    return result


def sql(db: Path, query: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()
