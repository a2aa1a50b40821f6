#!/usr/bin/env python3
"""Metaflow's ``test/core`` matrix on Metaflow's local backend and on a .mfdb through
mfstore's extension: ``tools/metaflow_core_matrix.py --backends metaflow,mfdb`` (the
pinned subset in ``tests/metaflow_ext/metaflow_core`` unless ``--source`` is given).

Usage::

    python tools/metaflow_core_mfdb.py                              # pinned subset
    python tools/metaflow_core_mfdb.py --source ~/metaflow --jobs 2 # the whole matrix
    python tools/metaflow_core_mfdb.py --tests basicartifact --graphs linear --only mfdb
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import metaflow_core_matrix as matrix

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--source" or a.startswith("--source=") for a in args):
        args = ["--source", str(matrix.PINNED), *args]
    if not any(a.startswith(("--only", "--backends")) for a in args):
        args = ["--backends", "metaflow,mfdb", *args]
    sys.argv = [sys.argv[0], *args]
    sys.exit(matrix.main())
