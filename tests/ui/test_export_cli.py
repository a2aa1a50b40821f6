"""``mfstore ui`` on the command line, the static export, cards, and import lightness."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from mfstore.ui import create_app
from tests.helpers import mfstore_cli

from .conftest import EVIL_TAG


def test_export_is_a_working_static_site(ui_file, tmp_path):
    out = tmp_path / "site"
    result = mfstore_cli("ui", str(ui_file.path), "--export", str(out), "--runs", "5")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    index = out / "index.html"
    assert index.is_file() and (out / "_static" / "htmx.min.js").is_file()
    assert (out / "_static" / "licenses" / "README.md").is_file()
    pages = list(out.rglob("index.html"))
    # every relative link of every page points at a file of the export
    checked = 0
    for page in pages:
        text = page.read_text()
        assert EVIL_TAG not in text
        assert 'href="/' not in text and 'src="/' not in text, page  # nothing absolute
        assert "/_live" not in text
        for ref in re.findall(r'(?:href|src)="(?!data:)([^"#?]+)"', text):
            target = (page.parent / unquote(html.unescape(ref))).resolve()
            assert target.is_file(), (page, ref)
            checked += 1
    assert checked > 100
    ui_runs = [p for p in (out / "UiFlow").iterdir() if p.is_dir()]
    assert len(ui_runs) == 3
    assert len([p for p in (out / "ManyFlow").iterdir() if p.is_dir()]) == 5
    run_page = (out / "UiFlow" / ui_file.ok_run / "index.html").read_text()
    assert '<svg class="dag"' in run_page and '<svg class="timeline"' in run_page
    assert f'href="../../UiFlow/{ui_file.ok_run}/work/index.html"' in run_page


def test_export_names_from_the_file_stay_inside(tmp_path):
    from mfstore.store import Store
    from mfstore.writer import Writer

    db = tmp_path / "evil.mfdb"
    with Store(db, create=True) as store:
        w = Writer(store)
        run = w.begin_run("Flow", user_name="u", run_number="..", ts_epoch=1)
        w.add_task(run, "..", ts_epoch=1)
        w.end_run(run, successful=True)
    out = tmp_path / "site"
    mfstore_cli("ui", str(db), "--export", str(out))
    written = [p.resolve() for p in out.rglob("*")]
    assert written and all(out.resolve() in p.parents for p in written)
    assert (out / "Flow" / "%2E%2E" / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["evil.mfdb", "evil.mfdb-shm", "evil.mfdb-wal", "site"]
    )


def test_cli_errors_are_one_line(tmp_path):
    result = mfstore_cli("ui", str(tmp_path / "missing.mfdb"))
    assert result.exit_code != 0 and "does not exist" in result.output
    bad = tmp_path / "bad.mfdb"
    bad.write_text("not a database at all, " * 10)
    result = mfstore_cli("ui", str(bad), "--export", str(tmp_path / "o"))
    assert result.exit_code != 0 and "not an mfstore file" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    result = mfstore_cli("ui", "--help")
    assert result.exit_code == 0 and "--export" in result.output and "127.0.0.1" in result.output


def test_import_mfstore_does_not_load_the_ui():
    code = (
        "import sys, mfstore, mfstore.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'jinja2') "
        "or m.startswith('mfstore.ui')))"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "[]"


def test_server_binds_localhost_by_default(tmp_path, ui_file):
    """``--port 0`` picks a free port, and the banner names the one listened on."""
    import re
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "mfstore", "ui", str(ui_file.path), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found and "read-only" in line, line
        port = int(found.group(1))
        assert port != 0
        deadline = time.monotonic() + 120  # a safety net only
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    status, text = r.status, r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 200 and "UiFlow" in text
        conns = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        listening = [ln for ln in conns.splitlines() if f":{port} " in ln]
        assert listening and all("127.0.0.1:" in ln for ln in listening)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.parametrize(
    "args, error",
    [
        (
            ["--port", "70000"],
            "Error: Invalid value for '--port': 70000 is not in the range 0<=x<=65535.",
        ),
        (
            ["--host", "nosuch.invalid", "--port", "0"],
            "Error: cannot listen on nosuch.invalid:0: * give --host an address of this machine "
            "(e.g. 127.0.0.1)",
        ),
    ],
)
def test_a_bad_host_or_port_is_a_one_line_error(ui_file, args, error):
    import fnmatch

    cp = subprocess.run(
        [sys.executable, "-m", "mfstore", "ui", str(ui_file.path), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cp.returncode in (1, 2) and cp.stdout == ""
    assert fnmatch.fnmatch(cp.stderr.strip().splitlines()[-1], error), cp.stderr
    assert "Traceback" not in cp.stderr


def test_a_port_in_use_is_a_one_line_error(ui_file):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cp = subprocess.run(
            [sys.executable, "-m", "mfstore", "ui", str(ui_file.path), "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert cp.returncode == 1 and cp.stdout == ""
    assert cp.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "give another --port (--port 0 picks a free one)"
    ]


def test_cards_in_sandboxed_iframes(copy_file):
    """Cards kept as task files (the Metaflow extension's ``mfstore-file`` metadata)."""
    import json

    from mfstore.store import Store
    from mfstore.writer import MetadataEntry, RunRef, TaskRef

    db = copy_file()
    with Store(db) as store:
        row = store.one("SELECT task_pk FROM tasks t JOIN runs r ON r.run_pk = t.run_pk "
                        "WHERE r.flow_id = 'UiFlow' AND t.step_name = 'end' ORDER BY t.task_pk LIMIT 1")  # fmt: skip
        task = TaskRef(row[0], RunRef(0, "", ""), "end", "")
        from mfstore.writer import Writer

        card = "<html><body><h1 id=c>My card</h1><script>document.title='x'</script></body></html>"
        Writer(store).add_metadata(
            task,
            [
                MetadataEntry(
                    "mf.cards/cards/default-abc.html",
                    json.dumps({"meta": {}, "text": card}),
                    "mfstore-file",
                    0,
                )
            ],
        )
        store.checkpoint()
        flow, run_id = store.one(
            "SELECT r.flow_id, r.run_number FROM runs r JOIN tasks t ON t.run_pk = r.run_pk WHERE t.task_pk = ?",
            (row[0],),
        )
        task_id = store.scalar("SELECT task_id FROM tasks WHERE task_pk = ?", (row[0],))
    app = create_app(db)
    with TestClient(app) as client:
        r = client.get(f"/{flow}/{run_id}/end/{task_id}")
        frames = re.findall(r"<iframe[^>]*>", r.text)
        assert len(frames) == 1
        assert 'sandbox="allow-scripts"' in frames[0] and "allow-same-origin" not in frames[0]
        src = html.unescape(re.search(r'src="([^"]+)"', frames[0]).group(1))
        c = client.get(src)
        assert c.status_code == 200 and c.text == card
        assert "sandbox" in c.headers["Content-Security-Policy"]
        assert client.get("/_card/99999").status_code == 404
        assert client.get("/_card/abc").status_code == 404
    app.state.reader.close()
