"""Every command of both command lines (``mfstore ...`` and ``python flow.py ...``),
subcommands included, has ``--help`` with an example line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from mfstore import Parameter
from mfstore.cli import cli as mfstore_cli
from mfstore.runtime.cli import make_cli
from mfstore.runtime.cli_common import State
from mfstore.runtime.graph import FlowGraph
from tests.flowfiles import start_end_flow

#: A flow with a Parameter (its commands gain the parameter's options).
HelpFlow = start_end_flow("HelpFlow", alpha=Parameter("alpha", default=0.5, help="Learning rate"))


def walk(group: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every command under ``group`` (groups and their subcommands)."""
    found = [path] if path else []
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            if not command.hidden:
                found += walk(command, (*path, name))
    return found


FLOW_CLI = make_cli(HelpFlow)
MFSTORE_COMMANDS = walk(mfstore_cli)
FLOW_COMMANDS = walk(FLOW_CLI)


def _has_example(text: str, program: str) -> bool:
    """An ``Example`` line, followed (on it or below) by a command line of ``program``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Example"):
            return any(program in later for later in lines[i:])
    return False


def test_both_command_lines_are_walked() -> None:
    assert ("runs",) in MFSTORE_COMMANDS and ("merge",) in MFSTORE_COMMANDS
    assert {("run",), ("tag", "list"), ("card", "get")} <= set(FLOW_COMMANDS)
    state = State(HelpFlow, FlowGraph(HelpFlow))
    assert "--alpha" in CliRunner().invoke(FLOW_CLI, ["run", "--help"], obj=state).output


@pytest.mark.parametrize("path", MFSTORE_COMMANDS, ids=" ".join)
def test_mfstore_command_help_has_an_example(path: tuple[str, ...]) -> None:
    out = CliRunner().invoke(mfstore_cli, [*path, "--help"])
    assert out.exit_code == 0, out.output
    assert _has_example(out.output, "mfstore "), out.output


@pytest.mark.parametrize("path", FLOW_COMMANDS, ids=" ".join)
def test_flow_command_help_has_an_example(path: tuple[str, ...]) -> None:
    state = State(HelpFlow, FlowGraph(HelpFlow))
    out = CliRunner().invoke(FLOW_CLI, [*path, "--help"], obj=state)
    assert out.exit_code == 0, out.output
    assert _has_example(out.output, "python flow.py"), out.output


def test_flow_help_command_lists_the_commands() -> None:
    """``python flow.py help`` (Metaflow's, named by ``check``'s closing hint)."""
    state = State(HelpFlow, FlowGraph(HelpFlow))
    out = CliRunner().invoke(FLOW_CLI, ["help"], obj=state)
    assert out.exit_code == 0, out.output
    assert "Commands:" in out.output and "run " in out.output and "help " in out.output
