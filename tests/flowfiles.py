"""The test flows, written once, and how a test installs one.

Every flow in ``tests/flows/`` imports ``metaflow`` as a Metaflow user writes it; the
harness that runs it chooses the library: ``install(name, workdir, "mfstore")`` copies
the file with its imports rewritten to ``mfstore`` (the only change), ``"metaflow"``
copies it as it is. The flows of ``examples/`` (README's, importing ``mfstore``) are test
flows too, by their name, rewritten the same way. The runtime tests, the differential
(compat) harness and the Metaflow extension's tests all read flows from here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import mfstore

#: The one directory of test flows (``bad/`` holds flows the runtime must refuse).
FLOWS = Path(__file__).resolve().parent / "flows"
#: README's example flows, which the tests run as they are.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

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


#: Where the mfstore under test lives (the checkout, or site-packages when installed).
MFSTORE_ROOT = Path(mfstore.__file__).resolve().parent.parent


class FlowRunner:
    """Runs ``python <flow file> <args>`` in a work directory with its own .mfdb."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "test.mfdb"

    def env(self, user: str = "alice", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFSTORE_"))}
        env.update(METAFLOW_USER=user, MFSTORE_DB=str(self.db), PYTHONPATH=str(MFSTORE_ROOT))
        env.update(extra)
        return env

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
        cp = subprocess.run(
            [sys.executable, dest.name, *args],
            cwd=self.workdir,
            env=self.env(user, **extra),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and cp.returncode != 0:
            raise AssertionError(
                f"{name} {args} failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"
            )
        return cp

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        # Through mfstore's own (apsw) connection: a stdlib sqlite3 connection closed in
        # the same process would drop apsw's POSIX locks and WAL view of the file.
        from mfstore import provider

        return [tuple(r) for r in provider.open_store(self.db).query(query, params)]
