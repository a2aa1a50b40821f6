"""The test flows, written once, and how a test installs one.

Every flow in ``tests/flows/`` imports ``metaflow`` as a Metaflow user writes it; the
harness that runs it chooses the library: ``install(name, workdir, "mfstore")`` copies
the file with its imports rewritten to ``mfstore`` (the only change), ``"metaflow"``
copies it as it is. The runtime tests, the differential (compat) harness and the Metaflow
extension's tests all read flows from here.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The one directory of test flows (``bad/`` holds flows the runtime must refuse).
FLOWS = Path(__file__).resolve().parent / "flows"

_FROM_RE = re.compile(r"^(\s*)from\s+metaflow(?=[\s.])", re.M)
_IMPORT_RE = re.compile(r"^(\s*)import\s+metaflow\s*$", re.M)


def rewrite_source(src: str, lib: str) -> str:
    """Rewrite ``from metaflow ...`` / ``import metaflow`` to the library under test."""
    if lib == "metaflow":
        return src
    src = _FROM_RE.sub(lambda m: m.group(1) + "from " + lib, src)
    src = _IMPORT_RE.sub(lambda m: m.group(1) + f"import {lib} as metaflow", src)
    return src


def install(name: str | Path, workdir: Path, lib: str = "mfstore") -> Path:
    """Copy flow ``name`` (relative to ``FLOWS``, or a path) into ``workdir`` for ``lib``;
    returns the copy (same base name)."""
    src = Path(name) if Path(name).is_absolute() else FLOWS / name
    dest = workdir / src.name
    dest.write_text(rewrite_source(src.read_text(), lib))
    return dest
