"""The package type-checks under ``mypy --strict`` (it ships ``py.typed``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mfstore


def test_mypy_strict_on_the_package(tmp_path: Path) -> None:
    # A copy of the package under test (installed or checkout), checked from a clean
    # directory: mypy will not check files inside site-packages in place.
    package = tmp_path / "mfstore"
    shutil.copytree(
        Path(mfstore.__file__).resolve().parent,
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--ignore-missing-imports",
            "--no-incremental",
            "mfstore",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-2000:]
    assert "Success" in cp.stdout
