"""``python flow.py production create|trigger|list|show`` (see ``mfstore.production``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mfstore import deployments
from mfstore.env import METAFLOW_HOME
from mfstore.escape import dumps, escape_terminal
from mfstore.exception import CommandException

from . import deployed
from .cli_common import State, code_package, script_path, shadowed
from .console import echo
from .parameters import JSONTypeClass, get_parameters


def _echo(msg: str) -> None:
    echo(msg, err=True)


@click.group(
    help="Deploy this flow to production (a production namespace in the .mfdb) and trigger "
    "it.\n\nExample: python flow.py production create"
)
def production() -> None:
    """The ``production`` command group."""


@production.command(
    help="Deploy the current code of this flow to production.\n\n"
    "Example: python flow.py production create --new-token"
)
@click.option(
    "--authorize",
    default=None,
    help="Authorize using this production token. You need this when you "
    f"are re-deploying an existing flow for the first time. The token is cached in {METAFLOW_HOME}, so "
    "you only need to specify this once.",
)
@click.option(
    "--generate-new-token",
    is_flag=True,
    help="Generate a new production token for this flow. This "
    "will move the production flow to a new namespace.",
)
@click.option(
    "--new-token",
    "given_token",
    default=None,
    help="Use the given production token for this flow. "
    "This will move the production flow to the given namespace.",
)
@click.pass_obj
def create(
    state: State, authorize: str | None, generate_new_token: bool, given_token: str | None
) -> None:
    """Record a deployment of the flow file's current code (and its triggers)."""
    from mfstore import production as prod

    from .events import flow_triggers

    flow_name = state.flow_name
    path = script_path()
    state.graph.check()
    if not path.is_file():
        raise CommandException(f"Cannot find the flow file {path} to deploy")
    values_json = _deploy_time_values(state)
    triggers = prod.deployed_triggers(
        flow_triggers(state.flow_cls),
        # (not the configs: fixed at create, never set by an event, as in Metaflow)
        [p.name for _, p in get_parameters(state.flow_cls) if not p.IS_CONFIG_PARAMETER],
    )
    _echo(f"Deploying *{flow_name}* to production...")
    dep = prod.deploy(
        state.store(create=True),
        flow_name,
        package=code_package(path),
        script_name=path.name,
        triggers=triggers,
        values_json=values_json,
        authorize=authorize,
        given_token=given_token,
        generate_new_token=generate_new_token,
        echo=_echo,
    )
    _echo(
        f"Flow *{flow_name}* is deployed to production ({escape_terminal(dep.namespace)}) by "
        f"*{escape_terminal(dep.deployed_by)}*; triggers: {dep.describe_triggers()}."
    )
    _echo(f"Run it with `python {path.name} production trigger`.")


def _deploy_time_values(state: State) -> str:
    """What ``create`` fixes in the deployment, as Metaflow's ``<scheduler> create`` does:
    the value of each Parameter default function, evaluated once with ``deploy_time`` True
    (a failing one fails the deployment), the content of each ``IncludeFile``'s default
    file (one that cannot be read fails it) and each config's value as this command
    resolved it (``--config`` / ``--config-value`` given to ``create``, else its default),
    as ``deployments.values_json``."""
    from .config import ConfigValue
    from .includefile import IncludeFile

    parameters: dict[str, str] = {}
    configs: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    resolved = state.resolved_configs or {}
    for var, parameter in get_parameters(state.flow_cls):
        if parameter.IS_CONFIG_PARAMETER:
            value = resolved.get(var)
            configs[parameter.name] = value.to_dict() if isinstance(value, ConfigValue) else value
        elif isinstance(parameter, IncludeFile):
            content = parameter.deploy_time_content(state.flow_name)
            if content is not None:
                files[parameter.name] = content
        else:
            fixed = parameter.deploy_time_default(state.flow_name)
            if fixed is not None:
                parameters[parameter.name] = fixed
    try:
        return deployed.values_json(parameters, configs, files)
    except (TypeError, ValueError) as e:
        raise CommandException(
            f"The configs' values cannot be kept with the deployment: they must be JSON ({e})"
        ) from None


def _given_parameters(ctx: click.Context, flow_cls: type, kwargs: dict[str, Any]) -> dict[str, str]:
    """The Parameters given on the command line (or environment), as command-line text:
    the value click parsed, not what a step sees (an IncludeFile's path, not the file's
    content; a separator parameter's text, not its list), for the run to parse again."""
    import json

    out: dict[str, str] = {}
    for _, p in get_parameters(flow_cls):
        if shadowed(trigger, p):  # (not an option of trigger: see with_parameter_options)
            continue
        source = ctx.get_parameter_source(p.dest)
        if source in (None, click.core.ParameterSource.DEFAULT):
            continue
        value = kwargs.get(p.dest)
        if isinstance(value, str) and not isinstance(p.click_type(), JSONTypeClass):
            out[p.name] = value
        else:  # (a JSON parameter's "x" stays a JSON string)
            out[p.name] = json.dumps(value)
    return out


@production.command(
    help="Run the deployed version of this flow in its production namespace, "
    "or send an event (--event) to every deployed flow waiting for it.\n\n"
    "Example: python flow.py production trigger --event data_ready --payload day=2024-01-31"
)
@click.option(
    "--event",
    default=None,
    help="Send this event: runs every deployed flow with @trigger on it.",
)
@click.option(
    "--payload",
    multiple=True,
    help="KEY=VALUE of the event payload (with --event); may repeat.",
)
@click.option(
    "--run-id-file",
    default=None,
    help="Write the ID of the production run to the file specified.",
)
@click.pass_context
def trigger(
    ctx: click.Context,
    /,
    event: str | None,
    payload: tuple[str, ...],
    run_id_file: str | None,
    **kwargs: Any,
) -> None:
    """Run the deployment (``--PARAM value`` given) or send ``--event`` to deployed flows."""
    from mfstore import production as prod

    state: State = ctx.obj
    flow_name = state.flow_name
    params = _given_parameters(ctx, state.flow_cls, kwargs)
    if event is None:
        if payload:
            raise CommandException(
                "--payload goes with --event NAME: pass parameters as --PARAM VALUE instead"
            )
        store = state.store(create=False) if state.path().exists() else None
        dep = deployments.current_deployment(store, flow_name) if store is not None else None
        if dep is None:
            raise prod.not_deployed(flow_name, script_path().name)
        _echo(f"Triggering the deployed *{flow_name}* in {escape_terminal(dep.namespace)}.")
        rc, _ = prod.run_deployment(store, dep, params=params, run_id_file=run_id_file, echo=_echo)
        sys.exit(rc)
    if params:
        raise CommandException(
            "Parameters cannot be given with --event: send them as --payload NAME=VALUE"
        )
    data = prod.parse_payload(payload)
    _, results = prod.send_event(state.store(create=True), event, data, _echo)
    if run_id_file and results and results[0][2]:
        Path(run_id_file).write_text(results[0][2])
    sys.exit(max([rc for _, rc, _ in results], default=0))


@production.command(
    "list",
    help="List the flows deployed to production in this file.\n\n"
    "Example: python flow.py production list",
)
@click.pass_obj
def list_(state: State) -> None:
    """Print a table of the current deployments (a damaged one: a line instead)."""

    damaged: list[str] = []
    deps = (
        deployments.current_deployments(
            state.store(create=False), lambda e: damaged.append(e.skipped("listing"))
        )
        if state.path().exists()
        else []
    )
    for line in damaged:
        _echo(line)
    if not deps:
        if not damaged:
            click.echo(
                f"No flow is deployed to production in {state.path()}. "
                "Deploy one with `python flow.py production create`."
            )
        return
    rows = [("flow", "namespace", "deployed by", "deployed at", "triggers")]
    rows += [
        (
            escape_terminal(d.flow_id),
            escape_terminal(d.namespace),
            escape_terminal(d.deployed_by),
            d.deployed_at,
            d.describe_triggers(),
        )
        for d in deps
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])


@production.command(
    help="Show what is deployed for this flow (or FLOW): its code, the values its deployment "
    "fixed, what triggers it and what its runs trigger, and its deployment history.\n\n"
    "Example: python flow.py production show"
)
@click.argument("flow", required=False)
@click.pass_obj
def show(state: State, flow: str | None) -> None:
    """Print the current deployment of a flow and its history."""
    from mfstore import production as prod

    name = flow or state.flow_name
    store = state.store(create=False) if state.path().exists() else None
    d = deployments.current_deployment(store, name) if store is not None else None
    if store is None or d is None:
        if flow:
            raise CommandException(
                f"Unknown flow deployment *{escape_terminal(name)}*: `python flow.py production "
                "list` shows the deployed flows."
            )
        raise prod.not_deployed(name, script_path().name)
    history = deployments.deployment_history(
        store, name, lambda e: _echo(e.skipped("listing a deployment of"))
    )
    found = deployments.deployed_script(store, d)
    script = escape_terminal(found) if isinstance(found, str) else f"damaged: {found.what}"
    # (a damaged deployment is never triggered: not one of these)
    downstream = [
        escape_terminal(o.flow_id)
        for o in deployments.current_deployments(store, lambda e: None)
        if any(t["type"] == "run" and t["name"] == name for t in o.triggers)
    ]
    click.echo(f"Flow *{escape_terminal(name)}* is deployed to production.")
    click.echo(f"    namespace:    {escape_terminal(d.namespace)}")
    click.echo(f"    token:        {escape_terminal(d.token)}")
    click.echo(f"    deployed by:  {escape_terminal(d.deployed_by)}")
    click.echo(f"    deployed at:  {d.deployed_at}")
    click.echo(f"    code package: {escape_terminal(d.code_sha)} ({script})")
    click.echo(f"    triggers:     {d.describe_triggers()}")
    click.echo(
        "    on success:   "
        + (f"triggers {', '.join(downstream)} (their @trigger_on_finish)" if downstream else "-")
    )
    for line in _fixed_lines(deployments.fixed_values(store, d.deployment_pk)):
        click.echo(line)
    click.echo("Deployments, newest first:")
    for h in history:
        click.echo(
            f"    {h.deployed_at}  {escape_terminal(h.namespace)}  {escape_terminal(h.deployed_by)}"
        )


#: How much of a fixed value's JSON ``production show`` prints.
SHOWN_CHARS = 200


def _shown(value: Any) -> str:
    """A fixed value as escaped JSON, its start only when long."""
    text = dumps(value, sort_keys=True)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _fixed_lines(text: str | bool | None) -> list[str]:
    """``production show``'s lines for what a deployment fixed (``values_json``): each
    Parameter default function's value and config value as JSON, each IncludeFile's size;
    one line if there is nothing, or it is damaged."""
    import base64
    import binascii
    import json

    if text is None:  # (deployed before file format 5: its runs use the flow's defaults)
        return ["    fixed values: none (its runs use the flow's defaults)"]
    damaged = [
        "    fixed values: damaged (deployments.values_json): deploy the flow again with "
        "`production create`"
    ]
    try:
        data = json.loads(text) if isinstance(text, str) else None
        if not isinstance(data, dict):
            return damaged
        sections = [
            data.get(s, {}) for s in (deployed.PARAMETERS, deployed.CONFIGS, deployed.FILES)
        ]
        if not all(isinstance(s, dict) for s in sections):
            return damaged
        parameters, configs, files = sections
        lines = [
            f"        parameter {escape_terminal(k)} = {_shown(v)}" for k, v in parameters.items()
        ]
        lines += [f"        config {escape_terminal(k)} = {_shown(v)}" for k, v in configs.items()]
        lines += [
            f"        file {escape_terminal(k)}: {len(base64.b64decode(v, validate=True))} bytes"
            for k, v in files.items()
        ]
    except (TypeError, ValueError, RecursionError, binascii.Error):
        return damaged
    return ["    fixed values:" + ("" if lines else " none"), *lines]
