"""Helpers the test directories share (the flows and how to run them are in
``tests/flowfiles.py``).

- ``mfstore_cli(*args)``: the ``mfstore`` command in-process, through click's CliRunner.
"""

from __future__ import annotations

from click.testing import CliRunner, Result


def mfstore_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    columns: int = 200,
    color: bool = False,
) -> Result:
    """``mfstore ARGS`` in-process: a terminal ``columns`` wide (so that rich folds no cell
    an assertion looks for), ``env`` added, ``input`` on stdin, ANSI colours kept with
    ``color``; exceptions propagate."""
    from mfstore.cli import cli

    return CliRunner().invoke(
        cli,
        list(args),
        env={"COLUMNS": str(columns), **(env or {})},
        input=input,
        color=color,
        catch_exceptions=False,
    )
