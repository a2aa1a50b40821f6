"""Production deployments as stored (table ``deployments``), read and checked.

A row is what ``production create`` writes (``mfstore.production.deploy``), or what a
file's author planted: each value is checked as it becomes a ``Deployment``, and one that
is not what ``create`` writes (triggers that are no triggers, text that is not UTF-8, a
time out of range, a code package naming a script that is not its own) is a
``Damaged`` naming the flow: one line, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import query
from .escape import escape_terminal
from .exception import MetaflowDataCorruption


@dataclass
class Deployment:
    """One deployment of a flow to production (a checked row of ``deployments``): its
    code package, production token, who deployed it when, and its triggers."""

    deployment_pk: int
    flow_id: str
    token: str
    deployed_by: str
    ts_epoch: int
    code_sha: str
    triggers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        """The namespace of the deployment's runs, ``production:<token>``."""
        return f"production:{self.token}"

    @property
    def deployed_at(self) -> str:
        """When it was deployed, ISO 8601 in UTC with milliseconds."""
        return _deployed_at(self.ts_epoch)

    def describe_triggers(self) -> str:
        """The triggers as ``@trigger(event=...)`` / ``@trigger_on_finish(flow=...)``
        (names escaped: they come from the file)."""
        parts = []
        for t in self.triggers:
            if t.get("type") == "run":
                parts.append("@trigger_on_finish(flow={})".format(escape_terminal(t["name"])))
            else:
                parts.append("@trigger(event={})".format(escape_terminal(t["name"])))
        return ", ".join(parts) or "-"


def _deployed_at(ts_epoch: int) -> str:
    return datetime.fromtimestamp(ts_epoch / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


#: What is wrong with a deployment whose token is no token ``create`` makes (it
#: authorizes nobody).
NO_TOKEN = "its token is not a production token"


#: What is wrong with a deployment whose flow name no flow has (nothing can replace it).
NO_FLOW_NAME = "its flow name is not a flow's name"


def _plain(text: str, forbidden: str = "") -> bool:
    """Not empty; nothing the terminal escaping escapes (controls, bidi overrides ...), no
    white space, none of ``forbidden`` (the same answer on every Python version)."""
    return (
        bool(text)
        and escape_terminal(text) == text
        and not any(c.isspace() or c in forbidden for c in text)
    )


def is_token(text: str) -> bool:
    """Whether ``text`` may be a production token: not empty, no white space, no control
    characters."""
    return _plain(text)


def _is_flow_name(text: str) -> bool:
    """Whether ``text`` may be a flow's name as it reaches a run's environment (a Python
    class name: no control characters, spaces, commas, dots or slashes)."""
    return _plain(text, ",./\\")


@dataclass(frozen=True)
class Damaged:
    """A deployment (row or code package) that is not what ``production create`` writes:
    ``what`` is wrong with it. A command about it stops with ``error()``; one that goes
    over every deployment goes on without it, with the line ``skipped(...)``."""

    flow_id: str
    what: str
    #: Its triggers when they could be read (None: they are damaged too).
    triggers: list[dict[str, Any]] | None = None

    def may_wait_for(self, kind: str, name: str) -> bool:
        """Whether it may be triggered by the ``kind`` ("event"/"run") named ``name``:
        its triggers say so, or cannot be read."""
        return self.triggers is None or any(
            t["type"] == kind and t["name"] == name for t in self.triggers
        )

    @property
    def reason(self) -> str:
        """What is wrong and what to do, as the end of a line naming the flow."""
        if self.what == NO_FLOW_NAME:
            return f"its deployment is damaged ({self.what}): nothing runs it"
        again = "production create" + (" --generate-new-token" if self.what == NO_TOKEN else "")
        return f"its deployment is damaged ({self.what}): deploy it again with `{again}`"

    def skipped(self, doing: str) -> str:
        """The line of a command that goes on without it (``doing``: "triggering" ...)."""
        return f"Not {doing} *{escape_terminal(self.flow_id)}*: {self.reason}."

    def error(self) -> MetaflowDataCorruption:
        """The one-line error of a command about this deployment."""
        return MetaflowDataCorruption(f"Flow *{escape_terminal(self.flow_id)}*: {self.reason}.")


def _text(value: Any) -> str | None:
    """A text column read as its bytes (``query.production``): the text, None if not
    UTF-8 text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_trigger(t: Any) -> bool:
    """One trigger as ``deploy`` stores it: ``{"type": "event"|"run", "name": str}``, an
    event's ``parameters`` a mapping of parameter name to payload field."""
    return (
        isinstance(t, dict)
        and t.get("type") in ("event", "run")
        and isinstance(t.get("name"), str)
        and _str_map(t.get("parameters", {}))
    )


def _dep(row: tuple[Any, ...], *, whole: bool = True) -> Deployment | Damaged:
    """The deployment of a row (``query.DEPLOYMENT_COLUMNS``), or ``Damaged`` when a
    value is not what ``deploy`` writes (``whole`` False: only who deployed it and
    its token are needed, a damaged time or triggers read as 0 and none, a damaged user
    or token as ``""``: nobody's)."""
    try:
        raw = row[6]
        triggers = json.loads(_text(raw) or "x") if raw is not None else []
    except (ValueError, RecursionError):
        triggers = None
    if not (isinstance(triggers, list) and all(_is_trigger(t) for t in triggers)):
        triggers = None
    raw_flow = row[1]
    flow_id = _text(raw_flow)
    if flow_id is None:  # (named as well as it can be)
        shown = raw_flow.decode("utf-8", "replace") if isinstance(raw_flow, bytes) else "?"
        return Damaged(shown, "its flow name is not text", triggers)
    if not _is_flow_name(flow_id):
        return Damaged(flow_id, NO_FLOW_NAME, triggers)
    texts = {name: _text(row[i]) for i, name in ((2, "token"), (3, "deployed_by"), (5, "code_sha"))}
    if texts["token"] is not None and not is_token(texts["token"]):
        texts["token"] = None
    for name, text in texts.items():
        if text is None:
            if whole:
                what = NO_TOKEN if name == "token" else f"{name} is not text"
                return Damaged(flow_id, what, triggers)
            # (no user: only the token's holder deploys it again; no token: only its
            # deployer, with a new token)
            texts[name] = ""
    ts_epoch = row[4]
    try:
        _deployed_at(ts_epoch)
    except (TypeError, ValueError, OverflowError, OSError):
        if whole:
            return Damaged(flow_id, "ts_epoch is not a time", triggers)
        ts_epoch = 0
    if triggers is None:
        if whole:
            return Damaged(flow_id, "triggers is not a list of triggers")
        triggers = []
    return Deployment(
        int(row[0]),
        flow_id,
        str(texts["token"]),
        str(texts["deployed_by"]),
        ts_epoch,
        str(texts["code_sha"]),
        triggers,
    )


#: Called with each damaged deployment a command goes on without (it prints a line).
Skip = Callable[[Damaged], None]


def current_deployment(store: Any, flow_id: str, *, whole: bool = True) -> Deployment | None:
    """The latest deployment of ``flow_id`` (the one in effect), or None; a damaged one
    is a one-line ``MetaflowDataCorruption`` (``whole``: see ``_dep``)."""
    row = store.one(*query.compile_deployments(flow_id, latest=True))
    dep = _dep(row, whole=whole) if row else None
    if isinstance(dep, Damaged):
        raise dep.error()
    return dep


def _deps(rows: list[tuple[Any, ...]], skip: Skip) -> list[Deployment]:
    out = []
    for row in rows:
        dep = _dep(row)
        if isinstance(dep, Damaged):
            skip(dep)
        else:
            out.append(dep)
    return out


def used_tokens(store: Any, flow_id: str) -> set[str]:
    """Every token ``flow_id`` has used: its deployments' (those that can be read) and
    the ``production:`` namespaces of its runs (where a damaged token's runs are)."""
    deps = (_dep(row, whole=False) for row in store.query(*query.compile_deployments(flow_id)))
    used = {d.token for d in deps if isinstance(d, Deployment) and d.token}
    prefix = "production:"
    tags = query.compile_flow_tag_names(flow_id, system=True, prefix=prefix, limit=100_000)
    return used | {str(tag)[len(prefix) :] for (tag,) in store.query(*tags)}


def deployment_history(store: Any, flow_id: str, skip: Skip) -> list[Deployment]:
    """All deployments of ``flow_id``, newest first (damaged ones passed to ``skip``)."""
    return _deps(store.query(*query.compile_deployments(flow_id)), skip)


def current_deployments(store: Any, skip: Skip) -> list[Deployment]:
    """The deployment in effect for every deployed flow, by flow name (damaged ones
    passed to ``skip``)."""
    return _deps(store.query(query.CURRENT_DEPLOYMENTS), skip)


#: What is wrong with a deployment whose code package names no script of it.
NO_SCRIPT = "its code package names no script in it"


def deployed_script(store: Any, dep: Deployment) -> str | Damaged:
    """The script of ``dep``'s code package: a plain file name (a path, or a name that is
    not text, is damage: it would run another file)."""
    name = _text(store.scalar(*query.compile_deployed_script(dep.code_sha)))
    plain = (
        name is not None
        and os.path.basename(name) == name
        and os.sep not in name
        and not (os.altsep and os.altsep in name)
        and name not in (".", "..")
        and "\0" not in name
    )
    if name is None or not plain:
        return Damaged(dep.flow_id, NO_SCRIPT)
    return name


def script_in(tmp: str, name: str, dep: Deployment) -> str:
    """``tmp/name``, once it is a regular file in ``tmp`` (not a link out of it)."""
    root = os.path.realpath(tmp)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.dirname(path) != root or not os.path.isfile(path):
        raise Damaged(dep.flow_id, NO_SCRIPT).error()
    return os.path.join(tmp, name)


def fixed_values(store: Any, deployment_pk: int) -> str | bool | None:
    """A deployment's ``values_json`` text; None when it has none (made before file
    format 5), False when it is damaged (not UTF-8 text)."""
    raw = store.scalar(*query.compile_deployment_values(deployment_pk))
    text = _text(raw)
    return text if text is not None or raw is None else False
