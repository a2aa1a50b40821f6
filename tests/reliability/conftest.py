"""Helpers for the reliability tests: tests/flows/small_flow.py run by the real runtime,
and checks of a file's integrity that do not depend on the Client API."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

from tests.flowfiles import MFSTORE_ROOT, child_env, install
from tests.helpers import mfstore_cli

#: Steps of SmallFlow with their task counts and the artifacts each successful task has.
EXPECTED_TASKS = {"start": 1, "work": 3, "join": 1, "end": 1}
EXPECTED_ARTIFACTS = {"start": {"items"}, "work": {"sq"}, "join": {"total"}, "end": {"done"}}


def flow_env(db: Path, **extra: str) -> dict[str, str]:
    return child_env(
        drop=("REL_",),
        METAFLOW_USER="tester",
        MFSTORE_DB=str(db),
        PYTHONPATH=str(MFSTORE_ROOT),
        PYTHONUNBUFFERED="1",
        **extra,
    )


def write_flow(directory: Path) -> Path:
    """tests/flows/small_flow.py in ``directory``, for mfstore."""
    return install("small_flow.py", directory)


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
    from mfstore.cli import cli

    if "verify" not in getattr(cli, "commands", {}):
        return None
    result = mfstore_cli("verify", str(db))
    assert result.exit_code == 0, result.output
    return result


def sql(db: Path, query: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()
