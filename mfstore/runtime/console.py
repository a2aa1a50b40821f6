"""Messages of the flow command line, laid out like Metaflow's: ``*word*`` marks a highlight
(shown bold on a terminal, the asterisks never printed), errors print as an indented
headline line followed by the indented message."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from mfstore.exception import MetaflowException

#: Metaflow's indentation of error blocks.
INDENT = " " * 4


def echo(
    line: str, *, err: bool = True, indent: bool = False, bold: bool = False, nl: bool = True
) -> None:
    """Print ``line`` (Metaflow's ``echo_always``): ``*x*`` spans highlighted, markers dropped."""
    if indent:
        line = "\n".join(INDENT + x for x in line.splitlines())
    spans = line.split("*")
    out = []
    for i, span in enumerate(spans):
        if i % 2:
            out.append(click.style(span, fg="magenta", bold=True))
        else:
            out.append(click.style(span, bold=bold) if bold and span else span)
    click.echo("".join(out), err=err, nl=nl)


def print_exception(exc: MetaflowException) -> None:
    """Metaflow's block for an error: ``    Headline:`` then the indented message, then a blank line."""
    echo(f"{exc.headline}:", indent=True, bold=True)
    echo(str(exc), indent=True)
    click.echo("", err=True)


def fail(exc: MetaflowException, code: int = 1) -> NoReturn:
    """Print ``exc`` as Metaflow does and exit with ``code``."""
    print_exception(exc)
    sys.exit(code)
