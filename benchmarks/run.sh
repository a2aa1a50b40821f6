#!/usr/bin/env bash
# One command for the side-by-side benchmark (mfstore vs real Metaflow 2.19.39):
#
#     bash benchmarks/run.sh                 # full: 100 / 1,000 / 10,000 runs (+ 100k / 1M mfstore alone)
#     bash benchmarks/run.sh --quick         # seconds: tiny sizes (what tests/test_benchmarks_smoke.py runs)
#     bash benchmarks/run.sh --output benchmarks/RESULTS.md
#
# Creates (once) a venv at benchmarks/.data/venv with this checkout of mfstore (editable)
# and metaflow==2.19.39 from PyPI, then runs `python -m benchmarks.side_by_side "$@"`.
# Metaflow refuses to run as root without a user: METAFLOW_USER is set by the script.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MFSTORE_BENCH_VENV:-$REPO/benchmarks/.data/venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import metaflow, mfstore" 2>/dev/null; then
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$REPO" "metaflow==2.19.39"
fi
cd "$REPO"
exec "$VENV/bin/python" -m benchmarks.side_by_side "$@"
