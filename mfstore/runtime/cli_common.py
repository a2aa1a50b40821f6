"""What the flow command line and its ``production`` commands share: the flow's Parameters
and constants, the code package, the file in use (``State``), and the parameter options.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import click

from mfstore.env import MFSTORE_DB
from mfstore.exception import CommandException

from .console import echo
from .graph import FlowGraph
from .parameters import get_parameters

#: Attributes of FlowSpec that are never flow constants.
_NOT_CONSTANTS = frozenset({"name", "index", "input", "cmd", "foreach_stack", "script_name"})


def get_constants(flow_cls: type) -> dict[str, Any]:
    """Class-level plain values, persisted like Metaflow's flow constants."""
    seen = {var for var, _ in get_parameters(flow_cls)}
    out = {}
    for var in dir(flow_cls):
        if var[0] == "_" or var in seen or var in _NOT_CONSTANTS:
            continue
        val = getattr(flow_cls, var, None)
        if isinstance(val, (property, type, staticmethod, classmethod)) or callable(val):
            continue
        out[var] = val
    return out


def code_package(script: Path) -> bytes:
    """Deterministic tar.gz of the flow file (so identical code dedups)."""
    data = script.read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(script.name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def script_path() -> Path:
    """The flow file being run (``sys.argv[0]``), absolute."""
    import sys

    return Path(sys.argv[0]).absolute()


class State:
    """The flow command line's state (click's ``ctx.obj``): the flow, its graph, the file."""

    def __init__(self, flow_cls: type, graph: FlowGraph) -> None:
        self.flow_cls = flow_cls
        self.graph = graph
        self.mfdb: str | None = None
        self.quiet = False
        self.decospecs: list[str] = []
        self.branch: str | None = None
        self.configs: tuple[tuple[str, str], ...] = ()
        self.config_values: tuple[tuple[str, str], ...] = ()
        self.resolved_configs: dict[str, Any] | None = None
        """The flow's Config values for this command (attribute -> ConfigValue)."""
        self.production = False
        self._store: Any = None

    @property
    def flow_name(self) -> str:
        """The flow's name (its class name)."""
        return self.flow_cls.__name__

    def echo(self, msg: str, err: bool = True) -> None:
        """Print an informational line unless ``--quiet``."""
        if not self.quiet:
            echo(msg, err=err)

    def path(self) -> Path:
        """The .mfdb in use: ``--mfdb``/``MFSTORE_DB`` or the default file."""
        from mfstore import provider

        if self.mfdb:
            return Path(self.mfdb).expanduser().absolute()
        return provider.default_write_path()

    def exists(self) -> bool:
        """Whether the file in use exists yet (False for a name the system refuses)."""
        return os.path.exists(self.path())

    def store(self, create: bool = False) -> Any:
        """The open Store (created first when ``create`` and missing)."""
        if self._store is None:
            from mfstore.store import Store

            path = self.path()
            if not os.path.exists(path):  # (a name too long is reported by Store)
                if not create:
                    raise CommandException(f"No mfstore file found ({path}): run the flow first")
                where = "current directory " if path.parent == Path.cwd().absolute() else ""
                self.echo(f"Creating local datastore in {where}({path})")
            # A new file is made complete and published atomically (store.publish).
            self._store = Store(path, create=create)
            # Task processes and the Client API inside them use the same file.
            os.environ[MFSTORE_DB] = str(path)
        return self._store


def identity_and_user() -> tuple[str, str | None]:
    """The namespace identity of this user (``user:NAME`` or ``production:...``) and the user."""
    from mfstore.identity import get_username, resolve_identity

    return resolve_identity(), get_username()


def shadowed(command: click.Command, parameter: Any) -> bool:
    """Whether ``command`` has an option of its own named like ``parameter``'s, or whose
    value click would pass under the same keyword (``--Event`` and ``--event``)."""
    return any(
        param.name == parameter.dest or "--" + parameter.name in param.opts
        for param in command.params
    )


def with_parameter_options(
    command: click.Command, flow_cls: type, *, for_run: bool = True
) -> click.Command:
    """A copy of ``command`` taking the flow's Parameters as typed options (in flow order);
    ``for_run``: see ``Parameter.option``. A Parameter named like one of the command's own
    options (``production trigger --event``) is not an option of it: the command's own
    wins (``run``'s are reserved words, refused by ``Parameter.option``)."""
    import copy

    out = copy.copy(command)
    options = [
        p.option(flow_cls.__name__, for_run=for_run)
        for _, p in get_parameters(flow_cls)
        if not p.IS_CONFIG_PARAMETER and (for_run or not shadowed(command, p))
    ]
    out.params = [*options, *command.params]
    return out


def parameter_values(flow_cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{attribute: value}`` of the flow's Parameters from click's parsed keywords."""
    return {
        var: p.finish(kwargs.get(p.dest))
        for var, p in get_parameters(flow_cls)
        if not p.IS_CONFIG_PARAMETER
    }


def echo_json(doc: Any) -> None:
    """Print one JSON document (every non-ASCII or control character as a \\u escape)."""
    import json

    click.echo(json.dumps(doc, indent=2))
