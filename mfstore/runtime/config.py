"""``Config``: a flow configuration read when the run starts, from ``--config NAME PATH``,
``--config-value NAME TEXT`` (or ``METAFLOW_FLOW_CONFIG`` / ``METAFLOW_FLOW_CONFIG_VALUE``,
JSON objects of name -> path / value), else its ``default`` file or ``default_value``; the
text goes through its parser (JSON without one). In steps ``self.NAME`` is a read-only
``ConfigValue`` (attribute or item access), or the value as is with ``plain=True``.

Config values in decorator arguments (``@project(name=cfg.name)``, ``@environment(**cfg)``),
``config_expr("expr")`` and Parameter defaults are placeholders (``delayed``) resolved when
a command starts (:func:`apply_configs`), where Metaflow loads the flow a second time.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, cast

import click

from mfstore.env import METAFLOW_FLOW_CONFIG, METAFLOW_FLOW_CONFIG_VALUE
from mfstore.exception import MetaflowException
from mfstore.identity import get_username

from . import deployed
from .config_value import TOO_DEEP, ConfigValue, nested_too_deeply
from .delayed import (
    UNPACK_KEY,
    DelayEvaluator,
    activate,
    config_expr,
    has_delayed,
    resolve_attributes,
)
from .events import flow_decorators
from .parameters import Parameter, ParameterContext, get_parameters

__all__ = ["Config", "ConfigValue", "apply_configs", "config_expr", "resolve_configs"]


class Config(Parameter):
    """A flow configuration: a dict read when the command starts (Metaflow's ``Config``).

    Unlike a Parameter, its value is known before the flow's decorators and Parameter
    defaults are used, so they can refer to it: ``@project(name=cfg.project)``,
    ``@environment(**cfg.env)``, ``Parameter("n", default=cfg.n)`` (placeholders
    resolved when the command starts, where Metaflow loads the flow a second time). Its
    text comes from, in order: ``--config-value NAME TEXT``, the file of ``--config NAME
    PATH`` (or, when the option is not given at all, the ``METAFLOW_FLOW_CONFIG_VALUE`` /
    ``METAFLOW_FLOW_CONFIG`` JSON objects of name to value / path; a config given both a
    value and a file is a usage error), the ``default`` file, then ``default_value`` (a
    dict as its JSON text). The parser, else JSON, turns that text into the value, as
    in Metaflow. In steps ``self.cfg`` is a read-only ``ConfigValue`` (``self.cfg.a.b``
    or ``self.cfg["a"]["b"]``), or with ``plain=True`` the value as is. It is stored with the
    run like a parameter, as a plain dict (the Client reads a dict, as in Metaflow), and
    ``_graph_info`` lists it with type ``Config``. ``resume`` runs with the origin run's
    configs (its decorators too) and refuses ``--config`` / ``--config-value``, as in
    Metaflow.

    A config that cannot get its value stops the command with click's usage error (exit
    status 2) ``Bad values passed for configuration options: ...`` naming each (a missing
    required value, a file that cannot be read, text that is not JSON: Metaflow's words;
    a value nesting more than 100 levels of objects and lists: mfstore's own limit,
    ``MAX_DEPTH``); a parser that cannot be found or returns no mapping (without
    ``plain``) stops it with exit status 1 and Metaflow's message (Metaflow shows it as
    an internal error with a traceback, mfstore as the message alone).

    Parameters
    ----------
    name : str
        The name of the ``--config`` / ``--config-value`` option.
    default : str or function, optional, default None
        A file to read when no value is given (a function of a ``ParameterContext``,
        whose ``configs`` is None, gives the path). A file that cannot be read is an error, as in Metaflow. Not with
        ``default_value``.
    default_value : dict, str or function, optional, default None
        The value when no value is given: a dict, a text for the parser (JSON without
        one), or a function of a ``ParameterContext`` (``configs`` None) returning one.
        Not with ``default``.
    help : str, optional, default None
        The option's help text.
    required : bool, optional, default None
        Refuse to start when there is no value (nor a default).
    parser : function or str, optional, default None
        Turns the config's text into its value (for YAML, TOML ...); None reads JSON.
        Applied to every text: a given value, a file, a default value. A string names a
        function to import, ``"pkg.module.func"``; a leading ``.`` names a module of the
        ``metaflow`` package (Metaflow's own parsers, e.g.
        ``".plugins.pypi.parsers.requirements_txt_parser"``, which then needs Metaflow
        installed), as in Metaflow. Its value must be a mapping unless ``plain``.
    plain : bool, default False
        Give steps the value as is, not a ``ConfigValue``: the parser's value (any object,
        stored with the run as it is), or the text itself without a parser.
    **kwargs : any
        Other Metaflow keywords; accepted, unused.

    Example
    -------
    ::

        class TrainFlow(FlowSpec):
            cfg = Config("cfg", default="train.json")
            opts = Config("opts", default_value="a = 1", parser="tomllib.loads")

            @step
            def start(self):
                print(self.cfg.learning_rate, self.opts.a)
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
        parser: Callable[[str], Any] | str | None = None,
        plain: bool = False,
        **kwargs: Any,
    ) -> None:
        if default is not None and default_value is not None:
            raise MetaflowException(
                f"For config '{name}', you can only specify default or default_value, not both"
            )
        super().__init__(name, default=None, type=str, help=help, required=required)
        self.default_path = default
        self.default_value = default_value
        self.parser = parser
        self.plain = plain
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
        """The config's value for this run: a ``ConfigValue``, the parsed value as is when
        ``plain``, or None. A missing value or file and JSON that does not parse raise a
        ``click.UsageError`` (``resolve_configs`` gathers them into one, as Metaflow does)."""
        text = self._text(paths, values, context)
        if text is None:
            if self.required:
                raise click.UsageError(f"missing configuration for '{self.name}'")
            return None
        if self.parser is not None:
            value = call_parser(self.parser, text, self.plain)
        elif self.plain:
            return text
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise click.UsageError(
                    f"configuration value for '{self.name}' is not valid JSON: {e}"
                ) from None
            except RecursionError:
                raise click.UsageError(_too_deep(self.name)) from None
        if nested_too_deeply(value):
            raise click.UsageError(_too_deep(self.name))
        if self.plain:
            return value
        if not isinstance(value, Mapping):
            raise MetaflowException(f"Config *{self.name}* must be a JSON object (a dict)")
        return ConfigValue(dict(value))

    @property
    def deployed_section(self) -> str | None:
        """A config's value is fixed at create (``configs``), never given by a trigger."""
        return deployed.CONFIGS

    def deployed(self, value: Any) -> Any:
        """The config's value as ``production create`` fixed it (JSON from the file), used
        as it is, without the parser: Metaflow's deployed runs read their configs' values so
        (``kv.NAME``). A ``ConfigValue`` unless ``plain`` or None."""
        if value is None or self.plain:
            return value
        if not isinstance(value, Mapping):
            raise MetaflowException(deployed.DAMAGED)
        return ConfigValue(dict(value))

    def load_parameter(self, value: Any) -> Any:
        """The value a step sees, from the stored one: stored as a plain dict (as Metaflow
        stores it, so the Client reads a dict), a ``ConfigValue`` again unless ``plain``."""
        return value if value is None or self.plain else ConfigValue(value)

    def _text(self, paths: dict[str, str], values: dict[str, Any], context: Any) -> str | None:
        """The config's text, as Metaflow hands it to the parser: the given value, the given
        file's content, else the ``default`` file's or the ``default_value`` (a dict as
        JSON); None when there is none."""
        if self.name in values:
            return _as_text(values[self.name])
        if self.name in paths:
            return _read(
                paths[self.name], f"configuration file '%s' could not be read for '{self.name}'"
            )
        if self.default_path is not None:
            path = self.default_path(context) if callable(self.default_path) else self.default_path
            return _read(
                path, f"default configuration file '%s' could not be read for '{self.name}'"
            )
        raw = self.default_value
        if callable(raw):
            raw = raw(context)
        return None if raw is None else _as_text(raw)


def _too_deep(name: str) -> str:
    return f"configuration value for '{name}' {TOO_DEEP}"


def _as_text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw)


def _read(path: str, problem: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        raise click.UsageError(problem % path) from None


def call_parser(parser: Callable[[str], Any] | str, text: str, plain: bool) -> Any:
    """``parser(text)`` (a parser named by a string is found by :func:`find_parser`);
    unless ``plain``, the result must be a mapping (Metaflow's message)."""
    func = find_parser(parser) if isinstance(parser, str) else parser
    value = func(text)
    if not plain and not isinstance(value, Mapping):
        raise MetaflowException(
            f"Parser {func} returned a value that is not a mapping (got type {type(value)}): {value}"
        )
    return value


def find_parser(name: str) -> Callable[[str], Any]:
    """The function ``"pkg.module.func"`` names, imported; a leading ``.`` names a module
    of the ``metaflow`` package (where Metaflow's own parsers are), as in Metaflow, whose
    messages the errors use."""
    if name.startswith("."):
        name = "metaflow" + name
    path, _, attr = name.rpartition(".")
    try:
        module = importlib.import_module(path) if path else None
    except ImportError:
        module = None
    if module is None:
        raise MetaflowException(f"Cannot locate parser {name}")
    found = getattr(module, attr, None)
    if found is None or not callable(found):
        raise MetaflowException(f"Parser {attr} is either not part of {path} or not a callable")
    return cast(Callable[[str], Any], found)


def resolve_configs(
    flow_cls: type,
    given: tuple[tuple[str, str], ...],
    given_values: tuple[tuple[str, str], ...],
    deployed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{attribute: value}`` of the flow's Configs for a run (see ``Config.resolve``);
    a config in ``deployed`` (config name -> the value ``production create`` fixed) takes
    that value (``Config.deployed``).

    As with Metaflow's options: ``--config`` given on the command line replaces
    ``METAFLOW_FLOW_CONFIG`` (``--config-value`` ``METAFLOW_FLOW_CONFIG_VALUE``), a name
    that is no config's is click's invalid choice, a config given both a file and a value
    is a usage error, and configs without their value are one usage error naming each."""
    configs = [(var, p) for var, p in get_parameters(flow_cls) if isinstance(p, Config)]
    names = sorted(p.name for _, p in configs)
    paths = _given("--config", given, METAFLOW_FLOW_CONFIG, names)
    values = _given("--config-value", given_values, METAFLOW_FLOW_CONFIG_VALUE, names)
    both = [name for name in values if name in paths]
    if both:
        found = "', '".join(both)
        raise click.UsageError(
            "Cannot provide both a value and a file for the same configuration. "
            f"Found such values for '{found}'"
        )
    out = {}
    problems = []
    user = get_username()
    for var, p in configs:
        # default functions get Metaflow's context (no configs: they are being read)
        context = ParameterContext(flow_cls.__name__, user, p.name, click.echo, "mfstore")
        if deployed is not None and p.name in deployed:
            out[var] = p.deployed(deployed[p.name])
            continue
        try:
            out[var] = p.resolve(paths, values, context)
        except click.UsageError as e:
            problems.append(e.message)
    if problems:
        raise click.UsageError(
            "Bad values passed for configuration options: " + ", ".join(problems)
        )
    return out


def has_configs(flow_cls: type) -> bool:
    """Whether the flow has a Config."""
    return any(isinstance(p, Config) for _, p in get_parameters(flow_cls))


def configs_listed(flow_cls: type) -> str | None:
    """The flow's configs as Metaflow's ``--config``/``--config-value`` help lists them
    (``- name: help``, in its order: attribute names descending); None without any."""
    configs = [p for _, p in get_parameters(flow_cls) if isinstance(p, Config)]
    if not configs:
        return None
    return "\n\n".join(f"  - {p.name}: {p.help or ''}" for p in reversed(configs))


def given_in_environment() -> bool:
    """Whether ``METAFLOW_FLOW_CONFIG`` or ``METAFLOW_FLOW_CONFIG_VALUE`` names a config."""
    variables = (METAFLOW_FLOW_CONFIG, METAFLOW_FLOW_CONFIG_VALUE)
    return any(_from_environment(v) for v in variables)


def _from_environment(variable: str) -> dict[str, Any]:
    """The JSON object in the environment ``variable`` (config name -> file path, or ->
    value), {} when unset; anything else is a usage error naming the variable (Metaflow
    shows a traceback). A path must be a string (``open`` takes a number as a file
    descriptor)."""
    text = os.environ.get(variable) or "{}"
    try:
        pairs = json.loads(text)
    except (ValueError, RecursionError):
        pairs = None
    paths = variable == METAFLOW_FLOW_CONFIG
    if not isinstance(pairs, dict) or (
        paths and not all(isinstance(v, str) for v in pairs.values())
    ):
        what = "file paths" if paths else "values"
        raise click.UsageError(f"{variable} must be a JSON object of config names to {what}")
    return pairs


def _given(
    option: str, given: tuple[tuple[str, str], ...], variable: str, names: list[str]
) -> dict[str, Any]:
    """``option``'s (name -> text) from the command line, else from the JSON object in
    the environment ``variable``; each name must be a config's. A flow without configs
    reads no ``variable`` (Metaflow gives such a flow no config options to read it)."""
    if not given and not names:
        return {}
    pairs = dict(given) if given else _from_environment(variable)
    for name in pairs:
        if name not in names:
            raise click.BadParameter(
                f"invalid choice: {name}. (choose from {', '.join(names)})",
                param_hint=f"'{option}'",
            )
    return pairs


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
