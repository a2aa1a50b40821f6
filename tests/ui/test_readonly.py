"""The UI never writes the file: bytes and directory unchanged; and it follows a writer."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from mfstore.ui import create_app


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def browse_everything(client: TestClient) -> int:
    """Follow every link of the site from '/', plus search and compare; the number of pages."""
    seen: set[str] = set()
    todo = [
        "/",
        "/ManyFlow?tag=even&status=failed",
        "/search?flow=ManyFlow&artifact=metric&min=3&max=9",
    ]
    runs: list[str] = []
    while todo and len(seen) < 400:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        r = client.get(url)
        assert r.status_code == 200, url
        for href in re.findall(r'href="(/[^"]*)"', r.text):
            href = href.replace("&amp;", "&")
            if href.startswith("/_static") or ("ManyFlow/" in href and href.count("/") > 2):
                continue
            if re.fullmatch(r"/UiFlow/\d+", href):
                runs.append(href[1:])
            todo.append(href)
    pair = sorted(set(runs))[:2]
    assert client.get("/compare?runs=" + ",".join(pair)).status_code == 200
    return len(seen)


def test_never_writes_a_file_without_wal(copy_file):
    db = copy_file(with_wal=False)
    before = snapshot(db.parent)
    assert list(before) == ["ui.mfdb"]
    app = create_app(db)
    with TestClient(app) as client:
        assert browse_everything(client) > 30
    app.state.reader.close()
    assert snapshot(db.parent) == before  # no -wal, no -shm, same bytes


def test_never_writes_a_file_with_wal(copy_file):
    db = copy_file(with_wal=True)
    before = snapshot(db.parent)
    app = create_app(db)
    with TestClient(app) as client:
        assert browse_everything(client) > 30
    app.state.reader.close()
    after = snapshot(db.parent)
    assert after["ui.mfdb"] == before["ui.mfdb"]
    if "ui.mfdb-wal" in before:
        assert after["ui.mfdb-wal"] == before["ui.mfdb-wal"]
    assert set(after) == set(before)  # (readers may only touch read marks in -shm)


def test_unpickles_nothing(copy_file):
    """Browsing with pickle loading disabled in the process still shows every page."""
    db = copy_file()
    code = f"""
import pickle, re, sys
def refuse(*a, **k):
    raise AssertionError("unpickled")
pickle.loads = pickle.load = refuse
pickle.Unpickler = None
from starlette.testclient import TestClient
from mfstore.ui import create_app
c = TestClient(create_app({str(db)!r}))
r = c.get("/UiFlow")
runs = re.findall(r'class="run-link" href="([^"]+)"', r.text)
n = 0
for run in runs:
    t = c.get(run)
    assert t.status_code == 200
    for task in re.findall(r'class="task-link" href="([^"]+)"', t.text):
        assert c.get(task.replace("&amp;", "&")).status_code == 200
        n += 1
print(n)
"""
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert int(cp.stdout.strip()) > 20


def test_sees_a_writer_start_and_live_refresh(copy_file):
    """Opened without a WAL (immutable), the reader reopens once a writer appears."""
    from mfstore.store import Store
    from mfstore.writer import Writer

    db = copy_file(with_wal=False)
    app = create_app(db)
    with TestClient(app) as client:
        r = client.get("/ManyFlow")
        version = re.search(r"/_live\?v=([^\"]+)\"", client.get("/ManyFlow/1100").text).group(1)
        assert client.get(f"/_live?v={version}").status_code == 204
        with Store(db) as store:
            w = Writer(store)
            run = w.begin_run(
                "ManyFlow", user_name="late", run_number="9999", ts_epoch=1_800_000_000_000
            )
            assert run.run_number == "9999"
            r = client.get("/ManyFlow")
            assert 'href="/ManyFlow/9999"' in r.text
            live = client.get(f"/_live?v={version}")
            assert live.status_code == 200 and live.headers["HX-Refresh"] == "true"
            r = client.get("/ManyFlow/9999")
            assert 'id="live"' in r.text and 'hx-trigger="every 2s"' in r.text
            w.end_run(run, successful=True)
            assert 'id="live"' not in client.get("/ManyFlow/9999").text
    app.state.reader.close()


def test_not_an_mfdb_is_one_line_error(tmp_path):
    import pytest

    from mfstore.exception import NotAnMfdbError

    bad = tmp_path / "x.mfdb"
    bad.write_bytes(b"hello, not sqlite" * 20)
    with pytest.raises(NotAnMfdbError):
        create_app(bad)
    assert bad.read_bytes() == b"hello, not sqlite" * 20 and sorted(
        p.name for p in tmp_path.iterdir()
    ) == ["x.mfdb"]
