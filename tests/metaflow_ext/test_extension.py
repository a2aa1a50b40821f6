"""Real Metaflow's runtime and client on a .mfdb through mfstore's extension (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.flowfiles import FLOWS, MFDB, lib_env
from tests.metaflow_ext.conftest import MFSTORE_VS_METAFLOW, mf_client, mf_run


def _mfstore(file: Path):
    import mfstore
    from mfstore.provider import reset

    reset()
    mfstore.metadata(str(file))
    mfstore.namespace(None)
    return mfstore


def test_mfstore_never_imports_metaflow() -> None:
    code = (
        "import sys, mfstore, mfstore.client, mfstore.writer, mfstore.query\n"
        "import metaflow_extensions\n"
        "assert 'metaflow' not in sys.modules, 'metaflow imported'\n"
        "assert getattr(metaflow_extensions, '__file__', None) is None, 'not a namespace package'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_an_installed_mfstore_keeps_metaflow_start_up_light(tmp_path: Path) -> None:
    """Metaflow imports every registered plugin class in every process it starts (local
    runs too): mfstore's plugin modules load neither SQLite nor the store, writer or Client
    until a run or a client uses mfdb."""
    code = (
        "import sys, metaflow.plugins as p\n"
        "assert 'mfdb' in [d.TYPE for d in p.DATASTORES]\n"
        "assert 'mfdb' in [m.TYPE for m in p.METADATA_PROVIDERS]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mfstore', 'apsw')))\n"
    )
    env = lib_env("metaflow", tmp_path)
    cp = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert cp.returncode == 0, cp.stderr[-2000:]
    loaded = cp.stdout.strip().splitlines()[-1]
    assert loaded == str(
        [
            "mfstore",
            "mfstore.env",  # the environment variables' names, nothing else
            "mfstore.metaflow_ext",
            "mfstore.metaflow_ext.dataclient",
            "mfstore.metaflow_ext.deps",
            "mfstore.metaflow_ext.metadata",
            "mfstore.metaflow_ext.storage",
        ]
    )


def test_metaflow_imports_from_the_checkout_with_mfstore_installed() -> None:
    """Running from a checkout (its root on sys.path, as pytest and `python -c` put it) next to
    an installed mfstore must not show Metaflow the extension twice: Metaflow refuses two
    packages defining the same configuration module."""
    root = Path(__file__).resolve().parents[2]
    code = "import metaflow.plugins as p; assert 'mfdb' in [d.TYPE for d in p.DATASTORES]"
    cp = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr[-2000:]


def test_untested_metaflow_version_warns_once(tmp_path: Path) -> None:
    code = (
        "import mfstore.metaflow_ext as m\n"
        "m.TESTED_METAFLOW = ('0.0.1',)\n"
        "import metaflow\n"
        "from metaflow.plugins import METADATA_PROVIDERS, DATASTORES\n"
        "assert 'mfdb' in [p.TYPE for p in METADATA_PROVIDERS]\n"
        "assert 'mfdb' in [d.TYPE for d in DATASTORES]\n"
    )
    env = lib_env("metaflow", tmp_path)
    cp = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert cp.returncode == 0, cp.stderr
    lines = [ln for ln in cp.stderr.splitlines() if ln.startswith("mfstore:")]
    assert len(lines) == 1, cp.stderr
    assert "tested with Metaflow 0.0.1" in lines[0] and "2.19.39" in lines[0]
    # the tested version itself says nothing
    cp = subprocess.run(
        [sys.executable, "-c", "import metaflow.plugins as p; p.DATASTORES"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "mfstore:" not in cp.stderr


def test_wide_foreach_with_16_workers(tmp_path: Path) -> None:
    cp = mf_run(
        "wide_foreach.py",
        tmp_path,
        ["run", "--max-workers", "16"],
        env={"WIDTH": "50"},
    )
    output = cp.stdout + cp.stderr
    assert "locked" not in output and "busy" not in output.lower()
    assert not (tmp_path / ".metaflow").exists()
    out = mf_client(
        tmp_path,
        """
        namespace(None)
        run = Flow('WideForeachFlow').latest_run
        work = list(run['work'])
        out = {
            'successful': run.successful,
            'total': run.data.total,
            'n': len(work),
            'sq': sorted(t.data.sq for t in work),
            'logs': sorted(t.stdout for t in work),
        }
        """,
    )
    assert out["successful"] is True
    assert out["n"] == 50
    assert out["sq"] == sorted(i * i for i in range(50))
    assert out["total"] == sum(i * i for i in range(50))
    assert out["logs"] == sorted(f"work {i}\n" for i in range(50))
    # mfstore's Client sees the same 50 tasks, their artifacts and logs
    mfs = _mfstore(tmp_path / "metaflow.mfdb")
    run = mfs.Flow("WideForeachFlow").latest_run
    tasks = list(run["work"])
    assert len(tasks) == 50
    assert sorted(t.data.sq for t in tasks) == out["sq"]
    assert sorted(t.stdout for t in tasks) == out["logs"]
    assert run.successful is True and run.data.total == out["total"]


def test_features_card_project_retry_token_tags(tmp_path: Path) -> None:
    env = {"METAFLOW_PRODUCTION_TOKEN": None}
    mf_run("features_flow.py", tmp_path, ["run", "--tag", "first"], env=env)
    out = mf_client(
        tmp_path,
        """
        namespace('user:tester')
        run = Flow('FeaturesFlow').latest_run
        flaky = run['flaky'].task
        out = {
            'id': run.id,
            'tags': sorted(run.tags),
            'project': run.data.project,
            'branch': run.data.branch,
            'attempt': flaky.current_attempt,
            'attempt0_ok': Task(flaky.pathspec, attempt=0).successful,
            'attempt_seen': flaky.data.attempt_seen,
            'stdout0': Task(flaky.pathspec, attempt=0).stdout,
            'in_project_ns': None,
        }
        namespace('project:mfext_demo')
        out['in_project_ns'] = Flow('FeaturesFlow').latest_run.id
        """,
    )
    assert out["attempt"] == 1 and out["attempt_seen"] == 1
    assert out["attempt0_ok"] is False and out["stdout0"] == "attempt 0\n"
    assert out["project"] == "mfext_demo" and out["branch"] == "user.tester"
    assert "first" in out["tags"] and "project:mfext_demo" in out["tags"]
    assert out["in_project_ns"] == out["id"]
    run_id = out["id"]

    # cards: Metaflow's card CLI finds the card in the file
    cp = mf_run("features_flow.py", tmp_path, ["card", "get", f"{run_id}/start", "card.html"])
    html = (tmp_path / "card.html").read_text()
    assert "<html" in html.lower()
    cp = mf_run("features_flow.py", tmp_path, ["card", "list", f"{run_id}/start"])
    assert "default" in (cp.stdout + cp.stderr)
    # `card view` hands the browser a local copy of the card (the browser: a script here)
    browser = tmp_path / "browser.sh"
    browser.write_text('#!/bin/sh\ncp "${1#file://}" "$(dirname "$0")/viewed.html"\n')
    browser.chmod(0o755)
    mf_run(
        "features_flow.py",
        tmp_path,
        ["card", "view", f"{run_id}/start"],
        env={"BROWSER": f"{browser} %s"},
    )
    assert (tmp_path / "viewed.html").read_text() == html

    # tags through the CLI and through the client
    mf_run("features_flow.py", tmp_path, ["tag", "add", "--run-id", run_id, "cli_a", "cli_b"])
    mf_run("features_flow.py", tmp_path, ["tag", "remove", "--run-id", run_id, "cli_b"])
    mf_run(
        "features_flow.py",
        tmp_path,
        ["tag", "replace", "--run-id", run_id, "--remove", "first", "--add", "second"],
    )
    cp = mf_run("features_flow.py", tmp_path, ["tag", "list", "--run-id", run_id])
    assert "cli_a" in cp.stdout + cp.stderr
    out = mf_client(
        tmp_path,
        f"""
        run = Run('FeaturesFlow/{run_id}', _namespace_check=False)
        run.add_tag('client_c')
        run.remove_tag('cli_a')
        out = sorted(Run('FeaturesFlow/{run_id}', _namespace_check=False).user_tags)
        """,
    )
    assert out == ["client_c", "second"]
    mfs = _mfstore(tmp_path / "metaflow.mfdb")
    run = mfs.Run(f"FeaturesFlow/{run_id}")
    assert sorted(run.user_tags) == ["client_c", "second"]
    assert run["flaky"].task.current_attempt == 1
    assert mfs.Task(run["flaky"].task.pathspec, attempt=0).stdout == "attempt 0\n"

    # a production-token run lands in the production namespace
    mf_run("features_flow.py", tmp_path, ["run"], env={"METAFLOW_PRODUCTION_TOKEN": "tok123"})
    out = mf_client(
        tmp_path,
        """
        namespace('production:tok123')
        run = Flow('FeaturesFlow').latest_run
        out = [run.id, run.data.token, sorted(run.system_tags)]
        """,
    )
    assert out[1] == "tok123" and "production:tok123" in out[2]
    assert out[0] != run_id


def test_resume_of_another_users_run(tmp_path: Path) -> None:
    cp = mf_run(
        "resume_flow.py",
        tmp_path,
        ["run"],
        user="alice",
        check=False,
        env={"RESUME_FLOW_FAIL": "1"},
    )
    assert cp.returncode != 0
    failed = mf_client(
        tmp_path,
        "namespace('user:alice'); r = Flow('ResumeFlow').latest_run\n"
        "out = [r.id, r.successful, r.finished]",
    )
    assert failed[1] is False and failed[2] is False
    mf_run("resume_flow.py", tmp_path, ["resume", "--origin-run-id", failed[0]], user="bob")
    out = mf_client(
        tmp_path,
        """
        namespace('user:bob')
        r = Flow('ResumeFlow').latest_run
        start = r['start'].task
        out = [r.id, r.successful, r.data.y, r.origin_pathspec, start.origin_pathspec,
               start.data.x, r['end'].task.stdout]
        """,
    )
    assert out[1] is True and out[2] == 2
    assert out[3] == f"ResumeFlow/{failed[0]}"
    assert out[4] == f"ResumeFlow/{failed[0]}/start/1" and out[5] == 1
    assert out[6] == "y is 2\n"
    # `resume` without an id resumes the user's latest run, found in the file
    mf_run("resume_flow.py", tmp_path, ["resume"], user="bob")
    mfs = _mfstore(tmp_path / "metaflow.mfdb")
    runs = list(mfs.Flow("ResumeFlow"))
    assert len(runs) == 3
    assert [r.successful for r in runs] == [True, True, False]
    assert runs[2].finished_at is not None  # the failed run has ended
    assert not (tmp_path / ".metaflow").exists()


def test_killed_run_stays_running(tmp_path: Path) -> None:
    flow = tmp_path / "features_flow.py"
    flow.write_text((FLOWS / "features_flow.py").read_text())
    env = lib_env(MFDB, tmp_path, {"METAFLOW_USER": "tester"})
    proc = subprocess.Popen(
        [sys.executable, flow.name, "run", "--sleep", "60"],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600  # a safety net: Metaflow starts slowly under load
        run_id = None
        while time.monotonic() < deadline and run_id is None:
            time.sleep(1)
            if (tmp_path / "metaflow.mfdb").exists():
                run_id = mf_client(
                    tmp_path,
                    "namespace(None)\nr = Flow('FeaturesFlow').latest_run if "
                    "'FeaturesFlow' in [f.id for f in Metaflow()] else None\n"
                    "out = r.id if r is not None and 'start' in r else None",
                )
        assert run_id is not None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    out = mf_client(
        tmp_path,
        f"r = Run('FeaturesFlow/{run_id}', _namespace_check=False)\n"
        "out = [r.finished, r.successful, r.finished_at]",
    )
    assert out == [False, False, None]
    mfs = _mfstore(tmp_path / "metaflow.mfdb")
    assert mfs.Run(f"FeaturesFlow/{run_id}").finished is False


@pytest.mark.parametrize("maker", ["mfstore-runtime", "import-metaflow"])
def test_metaflow_client_reads_files_made_elsewhere(tmp_path: Path, maker: str) -> None:
    from tests.compat import harness

    if maker == "mfstore-runtime":
        harness.build_history(
            "mfstore", tmp_path, ["foreach_flow.py", "retry_flow.py"], timeout=900
        )
    else:
        src = tmp_path / "src"
        harness.build_history("metaflow", src, ["foreach_flow.py", "retry_flow.py"], timeout=900)
        cp = subprocess.run(
            [
                sys.executable,
                "-m",
                "mfstore",
                "import-metaflow",
                str(src),
                "--into",
                str(tmp_path / "metaflow.mfdb"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert cp.returncode == 0, cp.stderr
    for name in ("ForeachFlow", "RetryFlow"):
        theirs = harness.snapshot(MFDB, tmp_path / "metaflow.mfdb", name, "user:alice")
        ours = harness.snapshot("mfstore", tmp_path / "metaflow.mfdb", name, "user:alice")
        assert theirs["runs"] and theirs["runs"][0]["steps"]
        problems = harness.diff(
            dict(theirs, lib=None),
            dict(ours, lib=None),
            MFSTORE_VS_METAFLOW,
        )
        assert problems == [], (name, problems)
    payload = json.dumps(theirs)
    assert "error" not in json.loads(payload).get("runs", [{}])[0]


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "--with", "kubernetes"], ["@kubernetes decorator requires --datastore=s3"]),
        (["run", "--with", "batch"], ["@batch decorator requires --datastore=s3"]),
        (
            ["argo-workflows", "create"],
            ["Install Kubernetes Python package", "Argo Workflows requires --datastore=s3"],
        ),
    ],
)
def test_remote_compute_is_refused_with_metaflows_message(
    tmp_path: Path, args: list[str], says: list[str]
) -> None:
    """Metaflow refuses remote compute on a datastore its containers cannot reach, with its
    own message (docs/metaflow.md quotes them), never a traceback."""
    cp = mf_run("resume_flow.py", tmp_path, args, check=False)
    output = cp.stdout + cp.stderr
    assert cp.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    assert any(s in output for s in says), output[-3000:]


def test_include_file(tmp_path: Path) -> None:
    """IncludeFile uploads through the data client of ``--datastore mfdb``: the bytes go
    into the file; the steps and Metaflow's client read them back, also from a copy of
    the file elsewhere."""
    (tmp_path / "data.txt").write_text("hello included\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 40)
    mf_run("include_flow.py", tmp_path, ["run"])
    assert not (tmp_path / ".metaflow").exists()
    code = """
        namespace(None)
        run = Flow('IncludeFlow').latest_run
        out = [run.successful, run.data.text, run.data.blob.hex(), run['start'].task.data.n]
        """
    want = [True, "hello included\n", (bytes(range(256)) * 40).hex(), 10240]
    assert mf_client(tmp_path, code) == want
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("metaflow.mfdb", "metaflow.mfdb-wal", "metaflow.mfdb-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).rename(moved / name)
    assert mf_client(moved, code) == want
