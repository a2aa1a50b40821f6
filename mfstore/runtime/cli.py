"""The flow command line (Metaflow's, on click)::

    python flow.py [--mfdb PATH] [--with DECO[:k=v,...]] run|resume|show|check|tag|production

Commands are defined once at module level; :func:`make_cli` adds a flow's Parameters as
typed options to the commands that take them, and :func:`main` runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mfstore._version import __version__ as MFSTORE_VERSION
from mfstore.env import METAFLOW_OPTION_PREFIX, MFSTORE_DB
from mfstore.escape import escape_terminal
from mfstore.exception import CommandException, MetaflowException

from .card_cli import card
from .cli_common import (
    State,
    echo_json,
    identity_and_user,
    parameter_values,
    with_parameter_options,
)
from .config import (
    apply_configs,
    configs_listed,
    given_in_environment,
    has_configs,
    resolve_configs,
)
from .console import echo, fail
from .graph import FlowGraph
from .inspect_cli import dump, logs
from .launch import RunOptions, find_origin, origin_configs, start_run
from .parameters import get_parameters, take_deployed_values
from .production_cli import production
from .tag_cli import tag

#: ``--metadata`` / ``--datastore`` / ``--environment`` values a local run honours.
LOCAL_CHOICES = ("local",)

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


#: Metaflow's top-level options that choose among things mfstore has one of (``local``,
#: checked by ``_local_only``) or that do not apply here (hidden, ignored): accepted so
#: Metaflow's command lines work. ``(option, help, hidden)``, in ``--help`` order.
METAFLOW_ONLY_OPTIONS = (
    ("--metadata", "Metadata provider: only 'local' (the .mfdb file) is available.", False),
    ("--datastore", "Datastore: only 'local' (the .mfdb file) is available.", False),
    ("--datastore-root", "Ignored: data is in the .mfdb.", True),
    ("--environment", "Execution environment: only 'local' is available.", False),
    ("--event-logger", "Accepted and ignored.", True),
    ("--monitor", "Accepted and ignored.", True),
)

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _metaflow_only_options(command: _Command) -> _Command:
    """Add ``METAFLOW_ONLY_OPTIONS`` (each ``default=None``) to ``command``."""
    for name, help_text, hidden in reversed(METAFLOW_ONLY_OPTIONS):
        command = click.option(name, default=None, hidden=hidden, help=help_text)(command)
    return command


def _local_only(option: str, value: str | None) -> None:
    if value is not None and value not in LOCAL_CHOICES:
        raise CommandException(
            f"--{option}={value} is not available: mfstore keeps everything in the .mfdb file, "
            f"so only --{option}=local is accepted"
        )


@click.group(
    context_settings=_CONTEXT,
    help="Run and inspect this flow (mfstore: everything goes into one .mfdb file).\n\n"
    "Example: python flow.py run --alpha 0.5",
)
@click.option(
    "--mfdb",
    default=None,
    envvar=MFSTORE_DB,
    help="The .mfdb file to use (default: metaflow.mfdb found in this directory or a parent, "
    "else created here).",
)
@click.option("--quiet/--not-quiet", default=False, help="Suppress unnecessary messages.")
@_metaflow_only_options
@click.option("--pylint/--no-pylint", default=True, hidden=True, help="Accepted and ignored.")
@click.option(
    "--with",
    "decospecs",
    multiple=True,
    help="Add a decorator to all steps: --with retry or --with retry:times=2 (may repeat).",
)
@click.option(
    "--branch", default=None, help="Use the given branch name for @project (test.BRANCH)."
)
@click.option(
    "--production",
    is_flag=True,
    help="Use the production branch (prod) for @project.",
)
@click.option(
    "--config",
    "configs",
    nargs=2,
    multiple=True,
    metavar="NAME PATH",
    help="Read the Config NAME from the file PATH (may repeat). Cannot be used with resume.",
)
@click.option(
    "--config-value",
    "config_values",
    nargs=2,
    multiple=True,
    metavar="NAME TEXT",
    help="The value of the Config NAME, as text for its parser or JSON (may repeat). Cannot be "
    "used with resume.",
)
@click.pass_obj
def start(
    state: State,
    /,
    mfdb: str | None,
    quiet: bool,
    pylint: bool,
    decospecs: tuple[str, ...],
    branch: str | None,
    production: bool,
    configs: tuple[tuple[str, str], ...] = (),
    config_values: tuple[tuple[str, str], ...] = (),
    **metaflow_only: str | None,
) -> None:
    """The flow's top-level options (stored on ``State``)."""
    for option in ("metadata", "datastore", "environment"):
        _local_only(option, metaflow_only[option])
    state.mfdb = mfdb
    state.quiet = quiet
    state.decospecs = list(decospecs)
    state.branch = branch
    state.production = production
    state.configs = configs
    state.config_values = config_values
    deployed = take_deployed_values(state.flow_cls)  # a production run: what its deployment
    if deployed.given:  # fixed, and its trigger gave: the run's values for those parameters
        parameters = get_parameters(state.flow_cls)
        given = {p.dest: deployed.given[p.name] for _, p in parameters if p.name in deployed.given}
        ctx = click.get_current_context()
        ctx.default_map = {"run": given}
        run = ctx.command.get_command(ctx, "run") if isinstance(ctx.command, click.Group) else None
        # the trigger's value wins over METAFLOW_RUN_<NAME>, left set for the runs it triggers
        for run_param in run.params if run is not None else ():
            if isinstance(run_param, click.Option) and run_param.name in given:
                run_param.allow_from_autoenv = False
    if click.get_current_context().invoked_subcommand == "resume" and has_configs(state.flow_cls):
        # resume uses the origin run's configs (``resume`` applies them), as in Metaflow
        if configs or config_values or given_in_environment():
            raise click.UsageError("Cannot specify --config or --config-value with 'resume'")
    else:
        # Metaflow's second pass: the configs' values, then the decorators that use them
        state.resolved_configs = resolve_configs(
            state.flow_cls, configs, config_values, deployed.configs
        )
        apply_configs(state.flow_cls, state.resolved_configs)
        _project_early(state)
    if not quiet:
        state.echo(f"mfstore {MFSTORE_VERSION} executing *{state.flow_name}* for *{_identity()}*")


def _project_early(state: State) -> None:
    """``current.project_*`` before the run's Parameters are parsed: a Parameter's default
    function may read them, as in Metaflow."""
    from .current import update_env
    from .events import flow_decorators
    from .flow_decorators import project_info

    if not flow_decorators(state.flow_cls).get("project"):
        return
    try:
        username = identity_and_user()[1]
    except MetaflowException:
        return  # the run itself says what is wrong with the user
    project = project_info(state.flow_cls, state.branch, state.production, username)
    if project is not None:
        update_env(**project)


def _identity() -> str:
    """Who runs it, escaped (a production run's token comes from its deployment's row)."""
    try:
        return escape_terminal(identity_and_user()[0])
    except MetaflowException:
        return "an unknown user"


_TAG_HELP = (
    "Annotate this run with the given tag. You can specify this option multiple times to "
    "attach multiple tags."
)
_NAMESPACE_HELP = (
    "Change namespace from the default (your username) to the specified tag. Note that this "
    "option does not alter tags assigned to the objects produced by this run, just what "
    "existing objects are visible in the client API. You can enable the global namespace with "
    "an empty string. --namespace="
)


def _run_options(f: Any) -> Any:
    """The options ``run`` and ``resume`` share, handed to ``f`` as one ``RunOptions``
    (after click's object)."""

    @functools.wraps(f)
    def with_options(**kwargs: Any) -> Any:
        opts = RunOptions(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(RunOptions)})
        return f(opts, **kwargs)

    for option in reversed(
        [
            click.option("--tag", "tags", multiple=True, help=_TAG_HELP),
            click.option("--namespace", "user_namespace", default=None, help=_NAMESPACE_HELP),
            click.option(
                "--max-workers",
                default=16,
                show_default=True,
                type=int,
                help="Maximum number of parallel processes.",
            ),
            click.option(
                "--max-num-splits",
                default=100,
                show_default=True,
                type=int,
                help="Maximum number of splits allowed in a foreach.",
            ),
            click.option(
                "--run-id-file",
                default=None,
                help="Write the ID of this run to the file specified.",
            ),
            click.option(
                "--with",
                "decospecs",
                multiple=True,
                help="Add a decorator to all steps (as the top-level --with): --with retry:times=2, "
                "--with dask:scheduler=tcp://host:8786.",
            ),
        ]
    ):
        with_options = option(with_options)
    return with_options


@start.command(help="Run the workflow locally.\n\nExample: python flow.py run --tag nightly")
@_run_options
@click.pass_obj
def run(state: State, opts: RunOptions, /, **kwargs: Any) -> None:
    """Start a new run with the parameter values given as options."""
    start_run(state, opts, param_values=parameter_values(state.flow_cls, kwargs))


@start.command(
    help="Resume execution of a previous run of this flow.\n\n"
    "Example: python flow.py resume train --origin-run-id 12"
)
@click.argument("step-to-rerun", required=False)
@click.option(
    "--origin-run-id",
    default=None,
    help="Which run to resume (default: your latest run of this flow).",
)
@_run_options
@click.pass_obj
def resume(
    state: State, opts: RunOptions, step_to_rerun: str | None, origin_run_id: str | None
) -> None:
    """Re-run ``step_to_rerun`` and what follows it; clone everything before it."""
    if step_to_rerun is not None and step_to_rerun not in state.graph:
        raise click.BadParameter(
            f"step *{step_to_rerun}* is not a step of {state.flow_name}",
            param_hint="STEP_TO_RERUN",
        )
    origin = find_origin(state, origin_run_id)
    if state.resolved_configs is None:  # the flow's configs: the origin run's
        state.resolved_configs = origin_configs(state, origin)
        apply_configs(state.flow_cls, state.resolved_configs)
        _project_early(state)
    start_run(state, opts, param_values=None, origin=origin, resume_step=step_to_rerun)


@start.command(help="Show the structure of the flow.\n\nExample: python flow.py show")
@click.option("--json", "as_json", is_flag=True, help="Print the steps as one JSON document.")
@click.pass_obj
def show(state: State, as_json: bool) -> None:
    """Print the flow's docstring and its steps (or one JSON document with ``--json``)."""
    if as_json:
        graph = state.graph
        steps = [
            {
                "name": name,
                "type": graph.nodes[name].type,
                "doc": graph.nodes[name].doc,
                "next": list(graph.nodes[name].out_funcs),
            }
            for name in graph.sorted_nodes
        ]
        echo_json({"flow": graph.name, "doc": graph.doc, "steps": steps})
        return
    # Metaflow's layout: the docstring and blank lines on stderr, the steps on stdout
    graph = state.graph
    echo(f"\n{graph.doc}")
    for name in graph.sorted_nodes:
        node = graph[name]
        echo("")
        for deco in node.decorators:
            echo(f"@{deco.name}", err=False)
        echo(f"Step *{name}*", err=False)
        echo(node.doc or "?", indent=True, err=False)
        if node.type != "end":
            echo("*=>* " + ", ".join(f"*{n}*" for n in node.out_funcs), indent=True, err=False)
    echo("")


@start.command(
    "help", help="Show all available commands (Metaflow's).\n\nExample: python flow.py help"
)
@click.pass_context
def help_(ctx: click.Context) -> None:
    """Print the flow's top-level help: its options and commands."""
    assert ctx.parent is not None
    click.echo(ctx.parent.get_help())


@start.command(
    help="Check that the flow is valid (this is done automatically by run).\n\n"
    "Example: python flow.py check"
)
@click.pass_obj
def check(state: State) -> None:
    """Run the graph checks and say whether the flow is valid."""
    echo("Validating your flow...")
    state.graph.check()
    echo("The graph looks good!", indent=True)
    script = os.path.abspath(sys.argv[0])
    echo(
        f"\n*'{script} show'* shows a description of this flow.\n"
        f"*'{script} run'* runs the flow locally.\n"
        f"*'{script} help'* shows all available commands and options.\n"
    )


for _command in (tag, production, dump, logs, card):
    start.add_command(_command)

#: Commands that take the flow's Parameters as options, by path from the top group, and
#: whether it is ``run`` (``production trigger`` leaves required parameters and default
#: functions to the run it starts: ``Parameter.option``'s ``for_run``).
_PARAMETER_COMMANDS = ((("run",), True), (("production", "trigger"), False))


def make_cli(flow_cls: type) -> click.Group:
    """The command line of ``flow_cls``: ``start`` with the flow's Parameters added, and
    ``--config``/``--config-value`` listing its configs (only if it has any, as Metaflow)."""
    cli = copy.copy(start)
    cli.commands = dict(start.commands)
    cli.params = _config_options(start.params, configs_listed(flow_cls))
    for path, for_run in _PARAMETER_COMMANDS:
        group = cli
        for name in path[:-1]:
            sub = copy.copy(group.commands[name])
            assert isinstance(sub, click.Group)
            sub.commands = dict(sub.commands)
            group.commands[name] = sub
            group = sub
        group.commands[path[-1]] = with_parameter_options(
            group.commands[path[-1]], flow_cls, for_run=for_run
        )
    return cli


def _config_options(params: list[click.Parameter], listed: str | None) -> list[click.Parameter]:
    out = []
    for param in params:
        if isinstance(param, click.Option) and param.name in ("configs", "config_values"):
            if listed is None:
                continue  # no such option, as in Metaflow
            param = copy.copy(param)
            param.help = f"{param.help}\n\n{listed}"
        out.append(param)
    return out


def main(flow_cls: type) -> None:
    """Entry point used by ``FlowSpec.__init__`` when the flow file is run as a script.

    Options also come from ``METAFLOW_<COMMAND>_<OPTION>`` environment variables, e.g.
    ``METAFLOW_RUN_ALPHA=0.5`` for a Parameter ``alpha``, as in Metaflow.
    """
    try:
        state = State(flow_cls, FlowGraph(flow_cls))
        cli = make_cli(flow_cls)
        cli.main(
            args=sys.argv[1:],
            prog_name=os.path.basename(sys.argv[0]),
            standalone_mode=True,
            obj=state,
            auto_envvar_prefix=METAFLOW_OPTION_PREFIX,
        )
    except MetaflowException as exc:
        fail(exc)
