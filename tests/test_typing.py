"""The package type-checks under ``mypy --strict`` (it ships ``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mfstore


def test_mypy_strict_on_the_package() -> None:
    package = Path(mfstore.__file__).resolve().parent
    cp = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-incremental", str(package)],
        capture_output=True, text=True, timeout=600, cwd=package.parent,
    )
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-2000:]
    assert "Success" in cp.stdout
