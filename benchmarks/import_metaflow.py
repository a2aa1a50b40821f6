"""Import rate and size: a Metaflow ``.metaflow`` directory vs the same history as a .mfdb.

python -m benchmarks.import_metaflow --history PATH [--iterations K] [--database OUT]
(``--history`` missing: builds the tests/sharing history with real Metaflow first.)
Each iteration imports into a fresh file (one transaction for the copy, WAL mode).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path


def disk_usage(path: Path) -> int:
    """Allocated bytes (du), not apparent size: what the directory costs on disk."""
    out = subprocess.run(
        ["du", "-sk", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0]) * 1024


def main(argv: list[str] | None = None) -> None:
    import apsw

    from mfstore.importer import find_metaflow_root, import_metaflow
    from mfstore.sharing import stats
    from mfstore.store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--history", type=Path)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--database", type=Path)
    args = ap.parse_args(argv)
    if args.history is None:
        from tests.sharing.mfhistory import build_history

        args.history = build_history(Path(tempfile.mkdtemp()))
    root = find_metaflow_root(args.history)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"python {platform.python_version()}, SQLite {apsw.sqlite_lib_version()}, apsw {apsw.apsw_version()}, commit {commit}, {platform.machine()}"
    )
    times, tasks = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.iterations):
            path = args.database if (args.database and i == 0) else Path(tmp) / (f"i{i}.mfdb")
            if path.exists():
                os.unlink(path)
            with Store(path, create=True) as s:
                r = import_metaflow(root, s)
            times.append(r.seconds)
            tasks = r.tasks
            last = path
        st = stats(last)
        mf = disk_usage(root)
        db = last.stat().st_size
    print(
        "history: {} runs, {} tasks, {} artifacts ({:.2f} MB pickled, {:.2f} MB distinct)".format(
            st["runs"], tasks, st["artifacts"], st["artifact_bytes"] / 1e6, st["raw_bytes"] / 1e6
        )
    )
    print(
        f"import: median {statistics.median(times):.3f} s (min {min(times):.3f}) = {tasks / statistics.median(times):.0f} tasks/s"
    )
    print(
        f"| .metaflow (du) | .mfdb | ratio |\n| ---: | ---: | ---: |\n| {mf / 1e6:.2f} MB | {db / 1e6:.2f} MB | {mf / db:.1f}x smaller |"
    )


if __name__ == "__main__":
    main()
