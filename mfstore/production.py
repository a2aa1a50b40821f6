"""Production deployments, production tokens and triggered runs, locally, in the .mfdb.

Metaflow deploys a flow to a cloud scheduler (``argo-workflows create``); mfstore stores the
deployed code package in the file (table ``deployments``) and runs it on demand
(``production trigger``), on an event (``production trigger --event``, ``@trigger``) or when
a production run of an upstream flow succeeds (``@trigger_on_finish``).

The token scheme and the per-user token storage are Metaflow's
(``metaflow/plugins/aws/step_functions/production_token.py``); ``resolve_token`` follows
``argo_workflows_cli.resolve_token`` message for message.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from itertools import dropwhile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import query
from .code_packages import extract_code_package
from .deployments import (
    Damaged,
    Deployment,
    current_deployment,
    current_deployments,
    deployed_script,
    fixed_values,
    is_token,
    script_in,
    used_tokens,
)
from .env import (
    DEPLOYED_EVENTS,
    DEPLOYED_FIXED,
    DEPLOYED_GIVEN,
    METAFLOW_FLOW_CONFIG,
    METAFLOW_FLOW_CONFIG_VALUE,
    METAFLOW_HOME,
    METAFLOW_PRODUCTION_TOKEN,
    METAFLOW_TOKEN_HOME,
    MFSTORE_DEPLOYED_VALUES,
    MFSTORE_NAMESPACE,
    MFSTORE_TRIGGER_CHAIN,
)
from .escape import escape_terminal
from .exception import (
    CommandException,
    IncorrectProductionToken,
    MetaflowDataCorruption,
    MetaflowException,
)
from .identity import get_username, now_ms

if TYPE_CHECKING:
    from .writer import RunRef


Echo = Callable[[str], None]

# -- tokens (Metaflow's scheme) ---------------------------------------------------------


def token_prefix(flow_name: str) -> str:
    """Metaflow's prefix for a flow without @project: the flow name lower-cased."""
    return flow_name.lower()


def _token_generator(prefix: str) -> Iterator[str]:
    for i in range(10000):
        head = f"{prefix}-{i}-"
        rng = random.Random(zlib.adler32(head.encode("utf-8")))
        yield head + "".join(rng.sample(string.ascii_lowercase, 4))


def new_token(prefix: str, prev_token: str | None = None) -> str | None:
    """The first token of ``prefix``'s sequence, or the one after ``prev_token`` (None if not in it)."""
    if prev_token is None:
        return next(_token_generator(prefix))
    it = dropwhile(lambda x: x != prev_token, _token_generator(prefix))
    for _ in it:
        return next(it, None)
    return None


def token_path(prefix: str) -> Path:
    """``$METAFLOW_TOKEN_HOME/<prefix>``, else ``$METAFLOW_HOME/<prefix>`` (default ``~/.metaflowconfig``)."""
    home = os.environ.get(METAFLOW_TOKEN_HOME) or os.environ.get(METAFLOW_HOME, "~/.metaflowconfig")
    return Path(os.path.expanduser(f"{home}/{prefix}"))


def _load_config(path: Path) -> dict[str, Any]:
    if path.exists():
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    return {}


def load_token(prefix: str) -> str | None:
    """The production token stored for this user, or None."""
    return _load_config(token_path(prefix)).get("production_token")


def store_token(prefix: str, token: str) -> None:
    """Remember ``token`` for this user (JSON ``{"production_token": token}``, as Metaflow)."""
    path = token_path(prefix)
    config = _load_config(path)
    config["production_token"] = token
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(config, f)


# -- deployments ----------------------------------------------------------------------


def not_deployed(flow_id: str, script: str = "flow.py") -> CommandException:
    """The one-line error of a command about ``flow_id``'s deployment when it has none
    (``script``: the flow file named in the command it suggests)."""
    return CommandException(
        f"Flow *{flow_id}* is not deployed to production: deploy it first with `python {script} production create`."
    )


def resolve_token(
    flow_name: str,
    prev: Deployment | None,
    authorize: str | None,
    given_token: str | None,
    generate_new_token: bool,
    echo: Echo,
    used: frozenset[str] | set[str] = frozenset(),
) -> str:
    """Metaflow's ``resolve_token``: which token this deployment uses (raises if not authorized).

    Unlike Metaflow it does not store the token: the caller does once the deployment is recorded.
    A damaged previous token (``""``) authorizes nobody: its deployer (anyone, if who that is
    is damaged too) deploys with a new token, one not in ``used`` (the flow's earlier ones).
    """
    prefix = token_prefix(flow_name)
    if prev is None:
        echo(f"It seems this is the first time you are deploying *{flow_name}* to production.")
        prev_token = None
    else:
        prev_user, prev_token = prev.deployed_by, prev.token
        if authorize is None:
            authorize = load_token(prefix)
        elif authorize.startswith("production:"):
            authorize = authorize[11:]
        # the user who deployed the previous version may re-deploy without the token
        if prev_token:
            allowed = prev_user == get_username() or authorize == prev_token
        else:
            allowed = prev_user in (get_username(), "")
        if not allowed:
            echo(
                f"There is an existing version of *{flow_name}* in production which was "
                f"deployed by the user *{escape_terminal(prev_user)}*."
            )
            echo(
                "To deploy a new version of this flow, you need to use the same production token that they used. "
            )
            echo("Please reach out to them to get the token. Once you have it, call this command:")
            echo("    production create --authorize MY_TOKEN")
            echo(
                'See "Organizing Results" at docs.metaflow.org for more information about production tokens.'
            )
            raise IncorrectProductionToken("Try again with the correct production token.")
    if given_token:
        if given_token.startswith("production:"):
            given_token = given_token[11:]
        if not is_token(given_token):
            raise CommandException(
                "--new-token must be a non-empty token of printable characters without spaces, "
                "e.g. --new-token myflow-prod"
            )
        token = given_token
        echo("")
        echo(f"Using the given token, *{escape_terminal(token)}*.")
    elif prev_token == "":  # damaged: a new token, the first of the sequence never used
        if not generate_new_token:
            raise CommandException(
                f"The production token of *{escape_terminal(flow_name)}* in this file is "
                "damaged (not a production token): deploy it with a new one, `production "
                "create --generate-new-token` (or --new-token TOKEN)"
            )
        new = next((t for t in _token_generator(prefix) if t not in used), None)
        if new is None:
            raise MetaflowException("Every generated token was used: use --new-token TOKEN.")
        token = new
        echo("")
        echo("A new production token generated.")
    elif prev_token is None or generate_new_token:
        new = new_token(prefix, prev_token)
        if new is None:
            raise MetaflowException(
                "--generate-new-token option is not supported after using --new-token. "
                "Use --new-token to make a new namespace."
            )
        token = new
        echo("")
        echo("A new production token generated.")
    else:
        token = prev_token
    shown = escape_terminal(token)  # (a received file's token is data)
    echo("")
    echo("The namespace of this production flow is")
    echo(f"    production:{shown}")
    echo("To analyze results of this production flow add this line in your notebooks:")
    echo(f'    namespace("production:{shown}")')
    echo(
        "If you want to authorize other people to deploy new versions of this flow to production, they need to call"
    )
    echo(f"    production create --authorize {shown}")
    echo("when deploying this flow to production for the first time.")
    echo(
        'See "Organizing Results" at https://docs.metaflow.org/ for more information about production tokens.'
    )
    echo("")
    return token


def deploy(
    store: Any,
    flow_name: str,
    *,
    package: bytes,
    script_name: str,
    triggers: list[dict[str, Any]],
    values_json: str,
    authorize: str | None,
    given_token: str | None,
    generate_new_token: bool,
    echo: Echo,
) -> Deployment:
    """Record a new deployment of ``flow_name`` (code package, token and the values
    ``production create`` fixed, ``values_json``); store the token for this user."""
    from .writer import Writer
    from .writer.production import add_deployment

    if given_token and generate_new_token:
        raise CommandException("Use either --new-token or --generate-new-token, not both.")
    user = get_username()
    if user is None:
        from .exception import MetaflowUnknownUser

        raise MetaflowUnknownUser()
    # (a new deployment replaces a damaged row; who may deploy it is still checked)
    prev = current_deployment(store, flow_name, whole=False)
    used = used_tokens(store, flow_name) if prev is not None and not prev.token else set()
    token = resolve_token(flow_name, prev, authorize, given_token, generate_new_token, echo, used)
    code_sha = Writer(store).put_code_package(
        package, script_name=script_name, info={"script": script_name, "flow_name": flow_name}
    )
    ts = now_ms()
    with store.write():
        pk = add_deployment(
            store,
            flow_name,
            token,
            user,
            ts,
            code_sha,
            json.dumps(triggers, sort_keys=True),
            values_json,
        )
    store.checkpoint()
    store_token(token_prefix(flow_name), token)
    return Deployment(pk, flow_name, token, user, ts, code_sha, triggers)


# -- running deployments ----------------------------------------------------------------


def parse_payload(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``k=v`` pairs to a dict; anything else is a one-line CommandException."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise CommandException(
                f"Invalid --payload *{item!r}*: it is not valid text (UTF-8); give the value as text"
            ) from None
        if not sep or not key.strip():
            raise CommandException(
                f"Invalid --payload *{item}*: give it as KEY=VALUE, e.g. --payload alpha=0.5"
            )
        out[key.strip()] = value
    return out


#: What Metaflow's create allows in an event's name.
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def deployed_triggers(
    triggers: list[dict[str, Any]], param_names: list[str]
) -> list[dict[str, Any]]:
    """Triggers as deployed, as Metaflow's create deploys them: an event's mapping names
    parameters of the flow (``param_names``: not its configs, which no event sets), case
    insensitively, each once, and an event's name is made of letters, digits, ``_``, ``-``
    and ``.`` (else a ``CommandException`` in Metaflow's words); a single event trigger
    without a mapping maps the payload fields named like the parameters (lowercased, as
    Metaflow names them) to them."""
    by_lower = {name.lower(): name for name in param_names}
    out = [dict(t) for t in triggers]
    events = [t for t in out if t.get("type") == "event"]
    for event in events:
        if not _EVENT_NAME.fullmatch(str(event.get("name"))):
            raise CommandException(
                f"Invalid event name *{event.get('name')}* in *@trigger* decorator. Only "
                "alphanumeric characters, underscores(_), dashes(-) and dots(.) are allowed."
            )
        mapping: dict[str, str] = {}
        for key, fld in (event.get("parameters") or {}).items():
            name = by_lower.get(str(key).lower())
            if name is None:
                raise CommandException(
                    f"Parameter *{key}* defined in the event mappings for *@trigger* decorator "
                    "not found in the flow."
                )
            if name in mapping:
                raise CommandException(
                    f"Duplicate entries for parameter *{name.lower()}* defined in the event "
                    "mappings for *@trigger* decorator."
                )
            mapping[name] = fld
        event["parameters"] = mapping
    if len(events) == 1 and not events[0]["parameters"]:
        events[0]["parameters"] = {p: p.lower() for p in param_names}
    return out


def event_parameters(trigger: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters from an event payload, by the trigger's ``{parameter: payload field}`` mapping."""
    mapping = dict(trigger.get("parameters") or {})
    return {param: payload[fld] for param, fld in mapping.items() if fld in payload}


def _pythonpath(env: dict[str, str]) -> str:
    root = str(Path(__file__).resolve().parent.parent)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([root] + [p for p in parts if p != root])


def run_deployment(
    store: Any,
    dep: Deployment,
    *,
    params: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    run_id_file: str | None = None,
    echo: Echo,
) -> tuple[int, str | None]:
    """Run the deployed code of ``dep`` as ``production:<token>``; ``(exit code, run id)``.

    The code package is extracted to a temporary directory and run from there with
    ``METAFLOW_PRODUCTION_TOKEN`` set, so the run uses the deployed version, not the
    working copy. The values ``production create`` fixed (``values_json``), ``params``
    (given, or from an event; they override the fixed ones, as in Metaflow) and
    ``events`` (the triggering events, recorded on the new run) are handed to the run in
    a private file named by ``MFSTORE_DEPLOYED_VALUES``, never as command-line options:
    the names come from the file, and the flow command takes only its own parameters'
    values from it (``runtime.deployed``).
    """
    from .blobs import get_blob

    script_name = deployed_script(store, dep)
    if isinstance(script_name, Damaged):
        raise script_name.error()
    tarball = get_blob(store, dep.code_sha, what=f"code package of {dep.flow_id}")
    fixed = fixed_values(store, dep.deployment_pk)
    values = {  # (a fixed value that is not text is damaged: the run says so)
        DEPLOYED_FIXED: fixed if fixed is None or isinstance(fixed, str) else False,
        DEPLOYED_GIVEN: {str(name): str(value) for name, value in (params or {}).items()},
        DEPLOYED_EVENTS: events or [],
    }
    chain = [c for c in os.environ.get(MFSTORE_TRIGGER_CHAIN, "").split(",") if c]
    with (
        tempfile.TemporaryDirectory(prefix="mfstore-deploy-") as tmp,
        tempfile.TemporaryDirectory(prefix="mfstore-values-") as values_dir,
    ):
        extract_code_package(tarball, tmp)
        id_file = run_id_file or os.path.join(tmp, ".run_id")
        cmd = [
            sys.executable,
            script_in(tmp, script_name, dep),
            "--mfdb",
            str(store.path),
            "run",
            "--run-id-file",
            id_file,
        ]
        env = dict(os.environ)
        # not this process's namespace, nor the configs given to the command that sent the
        # event (they are another flow's): the deployed flow reads its own
        for name in (MFSTORE_NAMESPACE, METAFLOW_FLOW_CONFIG, METAFLOW_FLOW_CONFIG_VALUE):
            env.pop(name, None)
        env[MFSTORE_DEPLOYED_VALUES] = _write_private(
            os.path.join(values_dir, "values.json"), json.dumps(values)
        )
        env.update(
            {
                METAFLOW_PRODUCTION_TOKEN: dep.token,
                "PYTHONPATH": _pythonpath(env),
                MFSTORE_TRIGGER_CHAIN: ",".join([*chain, dep.flow_id]),
            }
        )
        sys.stdout.flush()
        sys.stderr.flush()
        rc = subprocess.call(cmd, env=env, cwd=os.getcwd())
        run_id = Path(id_file).read_text().strip() if os.path.exists(id_file) else None
    if run_id:
        echo(
            "Production run {}/{} (namespace {}) {}.".format(
                escape_terminal(dep.flow_id),
                escape_terminal(run_id),
                escape_terminal(dep.namespace),
                "finished" if rc == 0 else "failed",
            )
        )
    return rc, run_id


def _write_private(path: str, text: str) -> str:
    """Write ``text`` to a new file ``path`` only this user reads (never through a link
    or over an existing file); ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _skip(store: Any, dep: Deployment, echo: Echo) -> bool:
    """Whether an event or a run's end does not start ``dep`` (a line says why): its code
    package is damaged, or it already ran in this trigger chain."""
    script = deployed_script(store, dep)
    if isinstance(script, Damaged):
        echo(script.skipped("triggering"))
        return True
    chain = [c for c in os.environ.get(MFSTORE_TRIGGER_CHAIN, "").split(",") if c]
    if dep.flow_id in chain:
        echo(
            "Not triggering *{}*: it already ran in this trigger chain ({}).".format(
                escape_terminal(dep.flow_id), escape_terminal(" -> ".join(chain))
            )
        )
        return True
    return False


def send_event(
    store: Any, name: str, payload: dict[str, Any], echo: Echo
) -> tuple[str, list[tuple[Deployment, int, str | None]]]:
    """Record event ``name`` and run every deployed flow with ``@trigger`` on it; ``(event id, results)``."""
    if not name or not name.strip():
        raise CommandException("--event needs an event name, e.g. --event data_updated")
    from .writer.production import add_event

    event_id = uuid.uuid4().hex
    ts = now_ms()
    with store.write():
        add_event(
            store, event_id, name, ts, json.dumps(payload, sort_keys=True, ensure_ascii=False)
        )
    store.checkpoint()
    echo(f"Event *{escape_terminal(name)}* sent (id {event_id}).")
    results = []
    targets = [
        d
        for d in current_deployments(store, _say_skipped("event", name, echo))
        if any(t.get("type") == "event" and t.get("name") == name for t in d.triggers)
    ]
    if not targets:
        echo(f"No deployed flow is triggered by event *{escape_terminal(name)}*.")
    for dep in targets:
        if _skip(store, dep, echo):
            continue
        trig = next(t for t in dep.triggers if t.get("type") == "event" and t.get("name") == name)
        params = event_parameters(trig, payload)
        echo(f"Triggering *{escape_terminal(dep.flow_id)}* in {escape_terminal(dep.namespace)}.")
        events = [
            {
                "name": name,
                "event_id": event_id,
                "type": "event",
                "ts_epoch": ts,
                "payload": payload,
            }
        ]
        try:
            rc, run_id = run_deployment(store, dep, params=params, events=events, echo=echo)
        except MetaflowDataCorruption as e:  # (its code package: nothing ran)
            echo(f"Not triggering *{escape_terminal(dep.flow_id)}*: {e}")
            continue
        results.append((dep, rc, run_id))
    return event_id, results


def _say_skipped(kind: str, name: str, echo: Echo) -> Callable[[Damaged], None]:
    """Says which damaged deployment is not triggered, if it may wait for this."""

    def skip(damaged: Damaged) -> None:
        if damaged.may_wait_for(kind, name):
            echo(damaged.skipped("triggering"))

    return skip


def on_run_finished(store: Any, run: RunRef, end_step: str, echo: Echo) -> None:
    """A production ``run`` succeeded: run the deployments with ``@trigger_on_finish`` on its flow."""
    flow_id, run_number = run.flow_id, run.run_number
    targets = [
        d
        for d in current_deployments(store, _say_skipped("run", flow_id, echo))
        if any(t.get("type") == "run" and t.get("name") == flow_id for t in d.triggers)
    ]
    if not targets:
        return
    row = store.one(*query.compile_end_task(run.run_pk, end_step))
    task_id, finished = (row[0], row[1]) if row else ("1", None)
    event = {
        "name": f"metaflow.{flow_id}.{end_step}",
        "event_id": f"{flow_id}/{run_number}/{end_step}/{task_id}",
        "type": "run",
        "ts_epoch": int(finished or now_ms()),
        "pathspec": f"{flow_id}/{run_number}",
        "payload": {},
    }
    for dep in targets:
        if _skip(store, dep, echo):
            continue
        echo(
            f"Triggering *{escape_terminal(dep.flow_id)}* in {escape_terminal(dep.namespace)} "
            f"(@trigger_on_finish {escape_terminal(flow_id)}/{run_number})."
        )
        try:
            run_deployment(store, dep, events=[event], echo=echo)
        except MetaflowDataCorruption as e:  # (its code package: nothing ran)
            echo(f"Not triggering *{escape_terminal(dep.flow_id)}*: {e}")
