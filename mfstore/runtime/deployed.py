"""What a production run's deployment fixed, and what its trigger gave.

``mfstore.production.run_deployment`` hands them to the run it starts in a file named by
``MFSTORE_DEPLOYED_VALUES`` (see there). The fixed values are what ``production create``
kept (``values_json``): each Parameter default function's value, each
config's value, each ``IncludeFile`` default's bytes; the given ones are the
``--PARAM`` values given to ``production trigger`` or an event's payload fields mapped to
parameters.

Both come from the file and are data: parsed as JSON and checked against the flow's own
parameters, never evaluated, never a command-line option. A fixed value must be of its
section's kind for a parameter of that kind (a file's bytes only for an ``IncludeFile``,
so a planted "path" is never read); anything else stops the run with one line. A given
name that is no parameter of the flow (a config, ``tag``, a field of an older deployment's
mapping) is ignored with a warning, as Metaflow's deployed runs cannot take one either.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from typing import Any, Final

from mfstore.env import DEPLOYED_EVENTS, DEPLOYED_FIXED, DEPLOYED_GIVEN, MFSTORE_DEPLOYED_VALUES
from mfstore.escape import escape_terminal
from mfstore.exception import MetaflowException

from .config_value import nested_too_deeply

#: ``deployments.values_json``'s sections (``values_json`` writes them):
#: the Parameter default functions' values, the configs' values, the IncludeFiles' bytes.
PARAMETERS: Final = "parameters"
CONFIGS: Final = "configs"
FILES: Final = "files"

#: The error of a run whose deployment's fixed values are not what ``values_json`` writes.
DAMAGED: Final = (
    "The values this run's deployment fixed (deployments.values_json) are damaged: "
    "deploy the flow again with `production create`"
)


@dataclass
class DeployedValues:
    """What this production run's deployment fixed and its trigger gave (all empty for
    any other command)."""

    #: Parameter name -> the text its default function gave at create.
    parameters: dict[str, str] = field(default_factory=dict)
    #: Config name -> its value at create; None when nothing was fixed (no deployment,
    #: or one made before file format 5).
    configs: dict[str, Any] | None = None
    #: IncludeFile name -> the bytes its default file held at create.
    files: dict[str, bytes] = field(default_factory=dict)
    #: Parameter name -> command-line text given to ``production trigger`` (or mapped
    #: from an event's payload).
    given: dict[str, str] = field(default_factory=dict)
    #: The events that start this run (``name``, ``event_id``, ``type``, ``ts_epoch``,
    #: ``payload``; ``pathspec`` of a finished run), recorded as its trigger.
    events: list[dict[str, Any]] = field(default_factory=list)


_current = DeployedValues()


def current() -> DeployedValues:
    """This process's deployed values (``take``), empty unless it runs a deployment."""
    return _current


def values_json(
    parameters: dict[str, str], configs: dict[str, Any], files: dict[str, bytes]
) -> str:
    """``deployments.values_json`` of a new deployment: ``parameters`` (the text each
    Parameter default function gave at deploy time, by parameter name), ``configs`` (each
    config's value, by config name) and ``files`` (each ``IncludeFile`` default's bytes, by
    parameter name; kept as base64). ``ValueError`` / ``TypeError`` when a value is not JSON
    (a NaN, an object a config's parser returned)."""
    encoded = {name: base64.b64encode(data).decode("ascii") for name, data in files.items()}
    return json.dumps(
        {PARAMETERS: parameters, CONFIGS: configs, FILES: encoded},
        sort_keys=True,
        ensure_ascii=False,
        allow_nan=False,
    )


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _fixed(text: Any, kinds: dict[str, str | None]) -> DeployedValues:
    """The checked ``values_json`` (text) of a deployment."""
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise MetaflowException(DAMAGED)
    parameters, configs = data.get(PARAMETERS, {}), data.get(CONFIGS, {})
    files = data.get(FILES, {})
    if not (_strings(parameters) and _strings(files) and isinstance(configs, dict)):
        raise MetaflowException(DAMAGED)
    if any(nested_too_deeply(value) for value in configs.values()):  # as create checks them
        raise MetaflowException(DAMAGED)
    for section, names in ((PARAMETERS, parameters), (CONFIGS, configs), (FILES, files)):
        # a value only for a parameter of its kind: a "path" is never planted for a file
        if any(kinds.get(name) != section for name in names):
            raise MetaflowException(DAMAGED)
    try:
        contents = {name: base64.b64decode(text, validate=True) for name, text in files.items()}
    except (binascii.Error, ValueError):
        raise MetaflowException(DAMAGED) from None
    return DeployedValues(parameters, configs, contents)


def take(kinds: dict[str, str | None], warn: Any) -> DeployedValues:
    """Read the file ``MFSTORE_DEPLOYED_VALUES`` names and remove the variable (so the
    run's tasks and any command it starts see none): this run's deployed values, kept as
    ``current()``. ``kinds``: the flow's parameter names -> the section a value fixed for
    it comes from (``PARAMETERS`` for a Parameter with a default function, ``FILES``,
    ``CONFIGS``; None for one nothing is fixed for); a config's kind is ``CONFIGS`` and
    no given value sets it. ``warn`` prints a line (a given name that is no parameter)."""
    global _current
    path = os.environ.pop(MFSTORE_DEPLOYED_VALUES, None)
    _current = DeployedValues()
    if path is None:
        return _current
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as e:
        raise MetaflowException(
            f"Cannot read the values this run's deployment fixed ({path}): {e.strerror}"
        ) from None
    except (ValueError, RecursionError):
        raise MetaflowException(DAMAGED) from None
    events = data.get(DEPLOYED_EVENTS, []) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not _strings(data.get(DEPLOYED_GIVEN, {})):
        raise MetaflowException(DAMAGED)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise MetaflowException(DAMAGED)
    fixed = data.get(DEPLOYED_FIXED)
    values = DeployedValues() if fixed is None else _fixed(fixed, kinds)
    values.events = events
    for name, text in data.get(DEPLOYED_GIVEN, {}).items():
        if name in kinds and kinds[name] != CONFIGS:
            values.given[name] = text
        else:
            what = "a config (fixed by `production create`)" if name in kinds else "no parameter"
            warn(
                f"Ignoring the value given for *{escape_terminal(name)}*: it is {what} of this flow."
            )
    _current = values
    return values
