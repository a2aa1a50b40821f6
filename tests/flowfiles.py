"""The test flows, written once, and how a test installs one.

Every flow in ``tests/flows/`` (the one directory of test flows, for every test
directory) imports ``metaflow`` as a Metaflow user writes it, but for mixed_flow.py, which
uses mfstore's own ``@dask``; the harness that runs it chooses the library: ``install(name, workdir, "mfstore")`` copies
the file with its imports rewritten to ``mfstore`` (the only change), ``"metaflow"``
copies it as it is. The flows of ``examples/`` (README's, importing ``mfstore``) are test
flows too, by their name, rewritten the same way. The runtime tests, the differential
(compat) harness and the Metaflow extension's tests all read flows from here.

How a test starts a flow (or any Python) in a child process is here too: ``child_env``
(this environment without METAFLOW_*/MFSTORE_* variables), ``lib_env`` (that, set up for
one library), ``run_python`` (output captured, a failure raised with its output's tails),
``run_flow`` (a flow file installed and run for one library) and ``FlowRunner`` (mfstore
flows in one work directory with its own .mfdb).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mfstore

#: The one directory of test flows (``bad/`` holds flows the runtime must refuse).
FLOWS = Path(__file__).resolve().parent / "flows"
#: README's example flows, which the tests run as they are.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Where the mfstore under test lives (the checkout, or site-packages when installed).
MFSTORE_ROOT = Path(mfstore.__file__).resolve().parent.parent

LIBS = ("metaflow", "mfstore")
#: Real Metaflow with mfstore's extension: ``--metadata mfdb --datastore mfdb`` (through
#: METAFLOW_DEFAULT_METADATA/DATASTORE), the file found from the working directory.
MFDB = "metaflow-mfdb"
DEFAULT_TIMEOUT = 600  # a safety net only: a busy machine runs flows slowly

_FROM_RE = re.compile(r"^(\s*)from\s+(?:metaflow|mfstore)(?=[\s.])", re.M)
_IMPORT_RE = re.compile(r"^(\s*)import\s+(?:metaflow|mfstore)(?:\s+as\s+metaflow)?\s*$", re.M)


def rewrite_source(src: str, lib: str) -> str:
    """Rewrite ``from metaflow ...`` / ``import metaflow`` (or the same of ``mfstore``) to
    the library under test; a flow already written for ``lib`` stays as it is."""
    src = _FROM_RE.sub(lambda m: m.group(1) + "from " + lib, src)
    alias = "" if lib == "metaflow" else " as metaflow"
    return _IMPORT_RE.sub(lambda m: m.group(1) + f"import {lib}{alias}", src)


def flow_path(name: str | Path) -> Path:
    """Flow ``name``: a path as it is, else ``FLOWS/name``, else ``EXAMPLES/name``."""
    path = Path(name)
    if path.is_absolute():
        return path
    if not (FLOWS / path).exists() and (EXAMPLES / path).exists():
        return EXAMPLES / path
    return FLOWS / path


def install(name: str | Path, workdir: Path, lib: str = "mfstore") -> Path:
    """Copy flow ``name`` (see ``flow_path``) into ``workdir`` for ``lib``; returns the copy
    (same base name)."""
    src = flow_path(name)
    dest = workdir / src.name
    dest.write_text(rewrite_source(src.read_text(), lib))
    return dest


def start_end_flow(name: str, **members: Any) -> type:
    """A flow class ``name`` (start -> end) of mfstore's runtime, for tests that drive the
    flow command line in-process; ``members`` (e.g. Parameters) join the class."""
    from mfstore import FlowSpec, step

    class StartEnd(FlowSpec):
        @step
        def start(self) -> None:
            self.next(self.end)

        @step
        def end(self) -> None:
            pass

    return type(name, (StartEnd,), {"__module__": __name__, **members})


def child_env(*, drop: tuple[str, ...] = (), **values: str) -> dict[str, str]:
    """The environment of a process a test starts: this one's without any METAFLOW_* or
    MFSTORE_* variable (nor one starting with a prefix in ``drop``), plus ``values``."""
    prefixes = ("METAFLOW_", "MFSTORE_", *drop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(values)
    return env


def lib_env(lib: str, workdir: Path, env: dict | None = None) -> dict[str, str]:
    """``child_env`` for a flow of ``lib`` (``LIBS`` or ``MFDB``) run in ``workdir``, then
    ``env``: mfstore's file is ``workdir/metaflow.mfdb``; Metaflow's client cache stays in
    ``workdir`` (not the shared, racy /tmp/metaflow_client); no stray user names."""
    if lib not in (*LIBS, MFDB):
        raise ValueError(f"lib must be one of {(*LIBS, MFDB)!r}, got {lib!r}")
    extra: dict[str, str] = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    if lib == MFDB:
        extra["METAFLOW_DEFAULT_METADATA"] = "mfdb"
        extra["METAFLOW_DEFAULT_DATASTORE"] = "mfdb"
    if lib == "mfstore":
        extra["MFSTORE_DB"] = str(Path(workdir) / "metaflow.mfdb")
        pp = os.environ.get("PYTHONPATH")
        extra["PYTHONPATH"] = str(MFSTORE_ROOT) + (os.pathsep + pp if pp else "")
    else:
        extra["METAFLOW_CLIENT_CACHE_PATH"] = str(Path(workdir) / ".mf_client_cache")
    extra.update({k: str(v) for k, v in (env or {}).items() if v is not None})
    out = child_env(**extra)
    for k in ("USERNAME", "SUDO_USER"):
        if k not in extra:
            out.pop(k, None)
    return out


class FlowRunError(subprocess.CalledProcessError):
    """A flow (or script) exited non-zero; str() includes where it ran and the tails of
    its output."""

    cwd: Path | None = None

    def __str__(self) -> str:
        return "{} (in {})\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}".format(
            super().__str__(),
            self.cwd,
            (self.output or "")[-3000:],
            (self.stderr or "")[-3000:],
        )


def run_id_of(cp: subprocess.CompletedProcess[str]) -> str:
    """The run id a ``run`` printed (``Workflow starting (run-id N)``)."""
    m = re.search(r"Workflow starting \(run-id (\d+)\)", cp.stdout + cp.stderr)
    assert m, cp.stdout + cp.stderr
    return m.group(1)


def run_python(
    args: Sequence[str | Path],
    cwd: Path,
    env: dict[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd`` with ``env``, output captured (text); with ``check`` a
    non-zero exit raises ``FlowRunError``."""
    cp = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and cp.returncode != 0:
        error = FlowRunError(cp.returncode, cp.args, output=cp.stdout, stderr=cp.stderr)
        error.cwd = Path(cwd)
        raise error
    return cp


def run_flow(
    lib: str,
    flow_file: str | Path,
    workdir: Path,
    args: Sequence[str | Path],
    user: str = "alice",
    env: dict | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Copy ``flow_file`` (see ``flow_path``) into ``workdir``, rewritten for ``lib``, and
    run ``python <file> <args>`` there as METAFLOW_USER=``user`` (``lib_env``'s
    environment, then ``env``), through ``run_python``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dest = install(flow_file, workdir, "metaflow" if lib == MFDB else lib)
    full_env = lib_env(lib, workdir, env)
    full_env["METAFLOW_USER"] = user
    return run_python([dest.name, *args], workdir, full_env, timeout=timeout, check=check)


class FlowRunner:
    """Runs ``python <flow file> <args>`` in a work directory with its own .mfdb."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "test.mfdb"

    def env(self, user: str = "alice", **extra: str) -> dict[str, str]:
        return child_env(
            METAFLOW_USER=user, MFSTORE_DB=str(self.db), PYTHONPATH=str(MFSTORE_ROOT), **extra
        )

    def copy(self, name: str) -> Path:
        """Install flow ``name`` of ``tests/flows`` (imports rewritten to mfstore) once."""
        dest = self.workdir / Path(name).name
        if not dest.exists():
            install(name, self.workdir)
        return dest

    def popen(
        self, name: str, *args: str, user: str = "alice", **extra: str
    ) -> subprocess.Popen[str]:
        dest = self.copy(name)
        return subprocess.Popen(
            [sys.executable, dest.name, *args],
            cwd=self.workdir,
            env=self.env(user, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, name: str, *args: str, user: str = "alice", check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        dest = self.copy(name)
        env = self.env(user, **extra)
        return run_python([dest.name, *args], self.workdir, env, timeout=120, check=check)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        # Through mfstore's own (apsw) connection: a stdlib sqlite3 connection closed in
        # the same process would drop apsw's POSIX locks and WAL view of the file.
        from mfstore import provider

        return [tuple(r) for r in provider.open_store(self.db).query(query, params)]
