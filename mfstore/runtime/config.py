"""``Config``: a flow configuration read when the run starts, from ``--config NAME PATH``,
``--config-value NAME JSON`` (or ``METAFLOW_FLOW_CONFIG`` / ``METAFLOW_FLOW_CONFIG_VALUE``,
JSON objects of name -> path / value), else its ``default`` file or ``default_value``. In
steps ``self.NAME`` is a read-only ``ConfigValue`` (attribute or item access).

Config values in decorator arguments (``@project(name=cfg.name)``, ``@environment(**cfg)``),
``config_expr("expr")`` and Parameter defaults are placeholders (``delayed``) resolved when
a command starts (:func:`apply_configs`), where Metaflow loads the flow a second time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from mfstore.env import METAFLOW_FLOW_CONFIG, METAFLOW_FLOW_CONFIG_VALUE
from mfstore.exception import MetaflowException

from .config_value import ConfigValue
from .delayed import (
    UNPACK_KEY,
    DelayEvaluator,
    activate,
    config_expr,
    has_delayed,
    resolve_attributes,
)
from .events import flow_decorators
from .parameters import Parameter, get_parameters

__all__ = ["Config", "ConfigValue", "apply_configs", "config_expr", "resolve_configs"]


class Config(Parameter):
    """A flow configuration: a dict read when the command starts (Metaflow's ``Config``).

    Unlike a Parameter, its value is known before the flow's decorators and Parameter
    defaults are used, so they can refer to it: ``@project(name=cfg.project)``,
    ``@environment(**cfg.env)``, ``Parameter("n", default=cfg.n)`` (placeholders
    resolved when the command starts, where Metaflow loads the flow a second time). The
    value comes from, in order: ``--config-value NAME JSON``, ``--config NAME PATH`` (or
    the ``METAFLOW_FLOW_CONFIG_VALUE`` / ``METAFLOW_FLOW_CONFIG`` JSON objects of name to
    value / path), the ``default`` file if it exists, then ``default_value``. In steps
    ``self.cfg`` is a read-only ``ConfigValue`` (``self.cfg.a.b`` or
    ``self.cfg["a"]["b"]``), stored with the run like a parameter; ``resume`` reuses the
    origin run's.

    Parameters
    ----------
    name : str
        The name of the ``--config`` / ``--config-value`` option.
    default : str, optional, default None
        A file to read when no value is given (skipped if it does not exist).
    default_value : dict, str or function, optional, default None
        The value when there is neither a given value nor a ``default`` file: a dict, a
        JSON text, or a function returning one (called with None).
    help : str, optional, default None
        The option's help text.
    required : bool, optional, default None
        Refuse to start when no value is found.
    parser : function, optional, default None
        Turns the file's text into a dict (for YAML, TOML ...); None reads JSON. It is
        applied to files only. Metaflow also takes the name of a parser function as a
        string: mfstore does not look such a name up and reads the file as JSON.
    **kwargs : any
        Other Metaflow keywords; accepted, unused.

    Example
    -------
    ::

        class TrainFlow(FlowSpec):
            cfg = Config("cfg", default="train.json")

            @step
            def start(self):
                print(self.cfg.learning_rate)
                self.next(self.end)

    ``python train.py --config cfg other.json run``.
    """

    IS_CONFIG_PARAMETER = True

    def __init__(
        self,
        name: str,
        default: str | None = None,
        default_value: Any = None,
        *,
        help: str | None = None,
        required: bool | None = None,
        parser: Callable[[str], dict[str, Any]] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, default=None, type=str, help=help, required=required)
        self.default_path = default
        self.default_value = default_value
        self.parser = parser
        self._delayed = DelayEvaluator(name)

    # Class-level use (decorator arguments): ``cfg.a.b``, ``cfg["a"]`` and ``**cfg`` are
    # placeholders resolved when the command starts (Metaflow's Config is a Mapping too).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(DelayEvaluator(self.name), name)

    def __getitem__(self, key: Any) -> Any:
        """``cfg["a"]`` at class level: a placeholder for that item of the config's value."""
        if isinstance(key, str) and key.startswith(UNPACK_KEY):
            return self._delayed[key]
        return DelayEvaluator(self.name)[key]

    def keys(self) -> Any:
        """The one key ``**config`` unpacks to (resolved with the decorator)."""
        return list(iter(self._delayed))

    def __iter__(self) -> Any:
        """The one key ``**config`` unpacks to (see ``keys``)."""
        return iter(self._delayed)

    def __len__(self) -> int:
        return 1

    def resolve(self, paths: dict[str, str], values: dict[str, Any], context: Any) -> Any:
        """The config's value for this run (a ``ConfigValue``, or None)."""
        if self.name in values:
            raw: Any = values[self.name]
            if isinstance(raw, str):
                raw = json.loads(raw)
        else:
            path = paths.get(self.name) or self.default_path
            if path and os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                raw = self.parser(text) if callable(self.parser) else json.loads(text)
            elif self.default_value is not None:
                raw = self.default_value
                if callable(raw):
                    raw = raw(context)
                if isinstance(raw, str):
                    raw = json.loads(raw)
            elif self.required:
                raise MetaflowException(
                    f"Config *{self.name}* is required: give --config or a default"
                )
            else:
                return None
        if not isinstance(raw, dict):
            raise MetaflowException(f"Config *{self.name}* must be a JSON object (a dict)")
        return ConfigValue(raw)


def resolve_configs(
    flow_cls: type, given: tuple[tuple[str, str], ...], given_values: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """``{attribute: ConfigValue}`` of the flow's Configs for a run."""
    paths = dict(json.loads(os.environ.get(METAFLOW_FLOW_CONFIG) or "{}"))
    paths.update(dict(given))
    values = dict(json.loads(os.environ.get(METAFLOW_FLOW_CONFIG_VALUE) or "{}"))
    values.update(dict(given_values))
    out = {}
    for var, p in get_parameters(flow_cls):
        if isinstance(p, Config):
            out[var] = p.resolve(paths, values, None)
    return out


def apply_configs(flow_cls: type, values: dict[str, Any]) -> None:
    """Make the configs' ``values`` (attribute -> value) current and resolve the config
    placeholders in the flow's decorators (flow decorators are validated again)."""
    by_name: dict[str, Any] = {}
    for var, p in get_parameters(flow_cls):
        if isinstance(p, Config) and var in values:
            by_name[var] = by_name[p.name] = values[var]
    activate(by_name)
    for deco in flow_decorators(flow_cls).values():
        if _resolve(deco):
            deco.init()
    for name in dir(flow_cls):
        func = getattr(flow_cls, name, None)
        if callable(func) and getattr(func, "is_step", False):
            for deco in getattr(func, "decorators", []):
                _resolve(deco)


def _resolve(deco: Any) -> bool:
    if not has_delayed(deco.attributes):
        return False
    resolved = resolve_attributes(deco.attributes)
    # Keys a ``**config`` unpacks to are not checked against the decorator's attributes
    # (Metaflow's unpack_delayed_evaluator adds them as they are).
    deco.attributes = {**deco.attributes, **resolved}
    for key in [k for k in deco.attributes if isinstance(k, str) and k.startswith(UNPACK_KEY)]:
        del deco.attributes[key]
    return True
