"""The ``mfstore`` command line: one click group, one module per family of commands.

- ``common``: the conventions every command shares (``--mfdb FILE``, output formats,
  escaping, exit codes, progress bars); see docs/cli.md
- ``sharing``: snapshot, export, merge, import-metaflow, delete, verify, stats
- ``browse``: flows, runs, logs; ``show``; ``sqlcmd``: sql
- ``ui``: ui (a web UI of the file, or a static export)

Exit status: 0 ok, 1 an error about data or files (one line on stderr), 2 usage.
"""

from __future__ import annotations

from typing import Any

import click

from mfstore._version import __version__


class _Group(click.Group):
    """The ``mfstore`` group: an mfstore or OS error escaping a command is one line on
    stderr and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from .common import errors

        with errors():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="mfstore")
def cli() -> None:
    """Metaflow's runs and artifacts in one SQLite file (.mfdb).

    Every command finds the file the same way: --mfdb FILE, else $MFSTORE_DB, else
    metaflow.mfdb in this directory or a parent. Read commands print a table on a
    terminal and TSV when piped; --json, --nl, --csv, --tsv choose. Exit status: 0 ok,
    1 an error about data or files, 2 usage.

    Example:

        mfstore runs TeamCollabFlow --mfdb examples/metaflow.mfdb
    """


def _register() -> None:
    import importlib

    for name in ("sharing", "browse", "ui"):
        importlib.import_module("mfstore.cli." + name).register(cli)


_register()


def main() -> None:
    """Entry point of the ``mfstore`` console script."""
    cli(prog_name="mfstore")
