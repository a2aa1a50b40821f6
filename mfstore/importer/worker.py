"""A process reading runs for ``import_metaflow`` (see ``importer.parse.read_runs``)."""

from __future__ import annotations

import sys

from .parse import serve

if __name__ == "__main__":
    serve(sys.argv[1])
