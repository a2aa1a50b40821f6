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
    columns: int | None = 200,
    color: bool = False,
    catch_exceptions: bool = False,
) -> Result:
    """``mfstore ARGS`` in-process: a terminal ``columns`` wide (so that rich folds no cell
    an assertion looks for; None: COLUMNS unset, CliRunner's own width), ``env`` added,
    ``input`` on stdin, ANSI colours kept with ``color``; exceptions propagate unless
    ``catch_exceptions`` (then they are in ``Result.exception``)."""
    from mfstore.cli import cli

    width = {} if columns is None else {"COLUMNS": str(columns)}
    return CliRunner().invoke(
        cli,
        list(args),
        env={**width, **(env or {})},
        input=input,
        color=color,
        catch_exceptions=catch_exceptions,
    )
