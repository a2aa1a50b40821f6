"""Smoke test: ``benchmarks/side_by_side.py --quick`` runs end to end and prints every row.

Tiny histories (4 and 8 real/cloned Metaflow runs, 20 for mfstore alone), one repetition:
checks the table's shape and that every cell that should hold a figure holds a number.
No timed assertions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import metaflow as _metaflow  # noqa: F401  (a test dependency: the smoke run compares against it)

from benchmarks.side_by_side import OPS

REPO = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"^\d+(\.\d+)?( MB|x)?$")


def test_side_by_side_quick(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.side_by_side",
            "--quick",
            "--workdir",
            str(tmp_path / "work"),
            "--output",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    report = out.read_text()
    assert "versions: Python" in report and "metaflow 2.19.39" in report and "commit" in report
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("| ") and not line.startswith("| operation") and "---" not in line
    ]
    by_key: dict[tuple[str, str, str, str], list[str]] = {
        (r[0], r[1], r[2], r[3]): r[4:] for r in rows
    }

    expected = []
    for _key, label, ns, _scan, _fn in OPS:
        for mode in ("warm", "fresh"):
            for size in ("4", "8", "20"):
                expected.append(((f"`{label}`", str(ns), mode, size), size != "20"))
    for size in ("4", "8", "20"):
        expected.append(
            (
                (
                    "new process: import + `Flow(F).latest_run` (wall)",
                    "user:alice",
                    "process",
                    size,
                ),
                size != "20",
            )
        )
        expected.append((("disk, apparent size", "—", "disk", size), size != "20"))
        expected.append((("disk, allocated (du)", "—", "disk", size), size != "20"))
    expected.append((("run a 2-step flow (wall)", "—", "runtime", "—"), True))
    expected.append((("run a 3-task foreach (wall)", "—", "runtime", "—"), True))

    for key, with_metaflow in expected:
        assert key in by_key, f"missing row {key!r}"
        metaflow, mfstore, ratio = by_key[key]
        assert NUMBER.match(mfstore), (key, mfstore)
        if with_metaflow:
            assert NUMBER.match(metaflow) and NUMBER.match(ratio), (key, metaflow, ratio)
        else:
            assert metaflow == "—" and ratio == "—", (key, metaflow, ratio)
    assert len(rows) == len(expected)
    assert report.count("Metaflow's client read back") == 2
    for goal in (
        "latest_run in user:alice",
        "per-run-scan ops flat",
        ".mfdb <= 1/10",
        "foreach <= 0.5x",
    ):
        assert goal in report
