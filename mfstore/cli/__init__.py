"""The ``mfstore`` command line: one click group, one module per family of commands.

- ``sharing``: snapshot, export, merge, import-metaflow, export-metaflow, delete, verify, stats
- ``browse``: sql, flows, runs, show, logs
- ``ui``: ui (a web UI of the file, or a static export)
"""

from __future__ import annotations

import click

from mfstore._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="mfstore")
def cli() -> None:
    """Metaflow's runs and artifacts in one SQLite file (.mfdb).

    Example:

        mfstore runs TrainFlow --mfdb metaflow.mfdb
    """


def _register() -> None:
    import importlib

    for name in ("sharing", "browse", "ui"):
        try:
            module = importlib.import_module("mfstore.cli." + name)
        except ModuleNotFoundError as exc:
            if exc.name != "mfstore.cli." + name:
                raise
            continue
        module.register(cli)


_register()


def main() -> None:
    """Entry point of the ``mfstore`` console script."""
    cli(prog_name="mfstore")
