"""``Parameter`` and ``JSONType``: flow inputs given as ``--name value`` on the command line.

Each Parameter becomes a click option of ``run`` (and ``production trigger``) with a click
``ParamType``, so ``--help`` shows its type and default, and click reports a missing or
invalid value in its own words, as Metaflow does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import click

from mfstore.exception import MetaflowException, ParameterFieldFailed, ParameterFieldTypeMismatch

from . import deployed
from .config_value import TOO_DEEP, ConfigValue, nested_too_deeply
from .delayed import DelayEvaluator

#: Option names a Parameter may not take (Metaflow's reserved words for ``run``).
RESERVED_NAMES = frozenset(
    {
        "params",
        "with",
        "tag",
        "namespace",
        "obj",
        "tags",
        "decospecs",
        "run-id-file",
        "max-num-splits",
        "max-workers",
        "max-log-size",
        "user-namespace",
        "run-id",
        "task-id",
        "runner-attribute-file",
        "mfdb",
        "help",
    }
)


class JSONTypeClass(click.ParamType):  # type: ignore[type-arg]
    """The ``type=`` of a JSON-valued Parameter (Metaflow's ``JSONType``).

    The command-line value (or a text default) is decoded with ``json.loads``, so steps
    see dicts, lists, numbers ...; a value that is not valid JSON, or nests more than
    ``MAX_DEPTH`` (100) levels of objects and lists, is refused before the run starts
    (click's message). ``JSONType`` is this class's one instance.

    Example
    -------
    ::

        config = Parameter("config", type=JSONType, default='{"a": 1}')
    """

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value decoded from JSON (values that are not strings pass through)."""
        if not isinstance(value, str):
            return value
        try:
            decoded = json.loads(value)
        except ValueError:
            self.fail(f"{value} is not a valid JSON object", param, ctx)
        except RecursionError:  # deeper than json.loads reads
            self.fail(f"the JSON value {TOO_DEEP}", param, ctx)
        if nested_too_deeply(decoded):
            self.fail(f"the JSON value {TOO_DEEP}", param, ctx)
        return decoded

    def __str__(self) -> str:
        return "JSON"

    def __repr__(self) -> str:
        return "JSON"


#: The ``type=`` to give a JSON-valued Parameter.
JSONType = JSONTypeClass()


class ParameterContext(NamedTuple):
    """What a Parameter's default function receives (Metaflow's ``ParameterContext``).

    Attributes
    ----------
    flow_name : str
        The flow's name.
    user_name : str or None
        The user running the flow.
    parameter_name : str
        The Parameter's name.
    logger : function
        Prints a line (``click.echo``).
    ds_type : str
        The datastore type: ``"mfstore"``.
    configs : ConfigValue
        The flow's Config values, by name.
    """

    flow_name: str
    user_name: str | None
    parameter_name: str
    logger: Callable[..., Any]
    ds_type: str
    configs: Any = None


def take_deployed_values(flow_cls: type) -> deployed.DeployedValues:
    """This production run's deployed values (``deployed.take``), checked against the
    flow's parameters; empty for any other command."""
    parameters = get_parameters(flow_cls)
    return deployed.take({p.name: p.deployed_section for _, p in parameters}, click.echo)


#: The types a default function's value must have exactly (given to click as text), as
#: Metaflow checks them; for any other type the function returns text (at deploy time,
#: anything JSON can encode).
_EXACT_TYPES = {bool: "bool", int: "int", float: "float", list: "list", dict: "dict"}


def _checked_default(name: str, type_: Any, value: Any, deploy_time: bool) -> Any:
    """What a default function returned, checked against the Parameter's type as
    Metaflow's ``DeployTimeField`` does: a wrong type is a ``ParameterFieldTypeMismatch``
    naming the parameter."""
    wrong = (
        f"The value returned by the deploy-time function for the parameter *{name}* field "
        "*default* has a wrong type. "
    )
    if type_ in _EXACT_TYPES:
        if type(value) is not type_:
            raise ParameterFieldTypeMismatch(wrong + f"Expected a {_EXACT_TYPES[type_]}.")
        return str(value)
    if isinstance(value, (str, bytes)):
        return value
    if not deploy_time:
        raise ParameterFieldTypeMismatch(wrong + "Expected a string.")
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        raise ParameterFieldTypeMismatch(
            wrong + "Expected a JSON-encodable object or a string."
        ) from None


def _config_value(default: DelayEvaluator) -> Any:
    """The value of a Config-valued default, a mapping as a plain ``dict`` (Metaflow
    resolves Parameter defaults ``to_dict``; a ConfigValue is read-only)."""
    value = default()
    return value.to_dict() if isinstance(value, ConfigValue) else value


class _TypeOfConfigDefault(click.ParamType):  # type: ignore[type-arg]
    """The type of a Parameter that names none and whose default is a Config value: the
    type of that value, known once the command's configs are (Metaflow infers it so)."""

    name = "config value"

    def __init__(self, default: DelayEvaluator) -> None:
        self.default = default

    def _inferred(self) -> click.ParamType:  # type: ignore[type-arg]
        value = _config_value(self.default)
        return click.types.convert_type(str if value is None else type(value))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A command-line text converted to the default's type; the default as it is."""
        return self._inferred().convert(value, param, ctx) if isinstance(value, str) else value

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        """The inferred type's name in ``--help`` (``CONFIG VALUE`` before the configs are
        known)."""
        try:
            inferred = self._inferred()
        except MetaflowException:
            return None
        return inferred.get_metavar(param, ctx) or inferred.name.upper()


class _ComputedDefaultOption(click.Option):
    """The option of a Parameter whose default is computed when the command runs (a Config
    value, a default function of ``run``): ``--help`` shows the value, as Metaflow's does,
    not ``(dynamic)``, and a required one whose value is None is missing."""

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        """The default, evaluated also when click asks for it only to show it (unless the
        parameter hides its default: then ``--help`` calls nothing, as Metaflow's)."""
        return super().get_default(ctx, call=call or bool(self.show_default))

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        """A required parameter whose computed default is None is missing (as in Metaflow);
        a value given as such is the value."""
        if (
            self.required
            and value is None
            and ctx.get_parameter_source(self.name or "") is click.core.ParameterSource.DEFAULT
        ):
            raise click.MissingParameter(ctx=ctx, param=self)
        return super().process_value(ctx, value)


class Parameter:
    """A flow input, given on the command line as ``--name value``.

    Declare it as a class attribute of the flow. It becomes a typed option of ``run``
    (and of ``production trigger``: a production run's parameters; ``resume`` reuses the
    origin run's values); ``--help`` shows its type, default and help. When the run
    starts, the values are stored as artifacts of the run's ``_parameters`` task (as in
    Metaflow) and passed down to every task, so in every step ``self.alpha`` is the value
    (read-only) and the Client reads it as ``Run.data.alpha``. Values also come from ``METAFLOW_RUN_<NAME>`` environment
    variables, as in Metaflow.

    Parameters
    ----------
    name : str
        The option's name (``--name``); its artifact is named by the class attribute.
        Metaflow's reserved words (``tags``, ``with``, ``run-id`` ...) are refused.
    default : object or function, optional, default None
        The value when the option is not given. A function of a :class:`ParameterContext`
        (and optionally ``deploy_time``) is called when the run starts; ``production
        create`` calls it once (a failing one fails the deployment) and the deployment's
        runs use that value, as in Metaflow. Its value must match the type (text for
        ``str`` and ``JSONType``). A ``Config`` value
        (``default=cfg.alpha``) is read once the configs are known.
    type : type or click.ParamType, optional, default None
        ``str``, ``int``, ``float``, ``bool`` or ``JSONType``. None: the type of
        ``default`` (a list or dict default gives ``JSONType``), ``str`` when there is
        none or it is a function.
    help : str, optional, default None
        The option's help text in ``--help``.
    required : bool, optional, default None
        The run refuses to start without a value (click's own message).
    show_default : bool, optional, default None
        Show the default in ``--help`` (None: True).
    separator : str, optional, default None
        Split a ``str`` parameter's value on it: steps see a list of strings. Only for
        ``str`` parameters.
    **kwargs : any
        Other Metaflow keywords; accepted and kept, unused.

    Example
    -------
    ::

        class TrainFlow(FlowSpec):
            alpha = Parameter("alpha", help="Learning rate", default=0.01)
            tags = Parameter("labels", separator=",", default="a,b")

    and ``python train.py run --alpha 0.5`` (or ``METAFLOW_RUN_ALPHA=0.5``).
    """

    IS_CONFIG_PARAMETER = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        *,
        type: Any = None,
        help: str | None = None,
        required: bool | None = None,
        show_default: bool | None = None,
        separator: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.default = default
        self.help = help
        self.required = bool(required)
        self.show_default = True if show_default is None else show_default
        self.separator = separator
        self.kwargs = kwargs
        if type is None:
            if isinstance(default, DelayEvaluator):
                type = _TypeOfConfigDefault(default)
            elif default is None or callable(default):
                type = str
            elif isinstance(default, bool):
                type = bool
            elif isinstance(default, (int, float, str)):
                type = default.__class__
            else:
                type = JSONType
        self.type = type
        if separator and type is not str and not isinstance(type, _TypeOfConfigDefault):
            raise MetaflowException(
                f"Parameter *{name}*: Separator is only allowed for string parameters."
            )

    @property
    def dest(self) -> str:
        """The keyword click passes the value under (``--alpha-beta`` -> ``alpha_beta``)."""
        return self.name.replace("-", "_").lower()

    def click_type(self) -> Any:
        """The click ``ParamType`` that parses this parameter's command-line value."""
        if isinstance(self.type, click.ParamType):
            return self.type
        return click.types.convert_type(self.type)

    def option(self, flow_name: str = "", *, for_run: bool = True) -> click.Option:
        """The ``--name`` click option of this parameter (typed, with its default in help).

        ``for_run``: the option of ``run``, which evaluates a default function and requires
        a required parameter; else of ``production trigger``, which leaves both to the run it
        starts (Metaflow's ``deploy_mode``)."""
        if self.name in RESERVED_NAMES or self.dest in {
            n.replace("-", "_") for n in RESERVED_NAMES
        }:
            raise MetaflowException(
                f"Parameter name '{self.name}' is a reserved word. Please use a different name "
                "for your parameter."
            )
        help_text = self.help or ""
        default: Any = self.default
        function = self._default_is_function
        computed = isinstance(default, DelayEvaluator) or (function and for_run)
        required = for_run and self.required and (default is None or computed)
        if isinstance(default, DelayEvaluator):  # click calls it once the configs are known
            default = partial(_config_value, default)
        elif function and for_run:
            default = partial(self._evaluate_default, flow_name)
        elif function:  # production trigger: the run it starts evaluates it
            help_text += f"[default: deploy-time value of '{self.name}']"
            default = None
        extra = {} if default is None else {"default": default}  # click: no default = missing
        return (_ComputedDefaultOption if computed else click.Option)(
            ("--" + self.name, self.dest),
            type=self.click_type(),
            required=required,
            help=help_text or None,
            show_default=self.show_default and (computed or not function),
            **extra,
        )

    @property
    def _default_is_function(self) -> bool:
        """The default is a function of a ``ParameterContext`` (not a type, not a Config
        value)."""
        return callable(self.default) and not isinstance(self.default, (type, DelayEvaluator))

    @property
    def deployed_section(self) -> str | None:
        """The section of ``deployments.values_json`` a value fixed for this parameter
        comes from: its default function's (``production create`` evaluates it), else
        none."""
        return deployed.PARAMETERS if self._default_is_function else None

    def deploy_time_default(self, flow_name: str) -> str | None:
        """What the default function gives when the flow is deployed (``deploy_time`` True),
        checked as ``run`` checks it, as text: ``production create`` calls it and fixes the
        value in the deployment (a failing one fails the deployment), as Metaflow does.
        None when the default is no function."""
        if not self._default_is_function:
            return None
        value = self._evaluate_default(flow_name, deploy_time=True)
        # bytes (for a str parameter) as click gives them to the run that would evaluate it
        return value if isinstance(value, str) else click.STRING.convert(value, None, None)

    def _evaluate_default(self, flow_name: str, deploy_time: bool | None = None) -> Any:
        """The default function's value, checked as Metaflow's ``DeployTimeField`` checks
        it; ``deploy_time`` None: True in a deployed (production) run."""
        from mfstore.identity import get_username, resolve_identity

        from .delayed import active_values

        fixed = deployed.current().parameters
        if deploy_time is None and self.name in fixed:
            return fixed[self.name]  # fixed by `production create`
        ctx = ParameterContext(
            flow_name,
            get_username(),
            self.name,
            click.echo,
            "mfstore",
            ConfigValue(active_values()),
        )
        if deploy_time is None:  # a deployed run evaluates it as Metaflow does when it deploys
            deploy_time = resolve_identity().startswith("production:")
        try:
            try:  # (ctx, deploy_time), else (ctx): Metaflow's calling convention
                value = self.default(ctx, deploy_time)
            except TypeError:
                value = self.default(ctx)
        except Exception:
            raise ParameterFieldFailed(self.name, "default") from None
        return _checked_default(self.name, self.type, value, deploy_time)

    def finish(self, value: Any) -> Any:
        """The value a step sees, from what click parsed (``separator`` applied)."""
        if self.separator and isinstance(value, str):
            return value.split(self.separator)
        return value

    def load_parameter(self, value: Any) -> Any:
        """The value a step sees, from the stored one (the same for a Parameter)."""
        return value

    def __repr__(self) -> str:
        return f"Parameter({self.name!r})"

    def __str__(self) -> str:
        return f"Parameter({self.name})"

    def __getitem__(self, key: Any) -> None:
        """Class-level ``self.param['x']`` expressions (as in Metaflow) evaluate to None."""
        return None


def get_parameters(flow_cls: type) -> list[tuple[str, Parameter]]:
    """``(attribute name, Parameter)`` of a flow class, sorted by attribute name."""
    out = []
    for var in dir(flow_cls):
        if var.startswith("__"):
            continue
        val = getattr(flow_cls, var, None)
        if isinstance(val, Parameter):
            out.append((var, val))
    return out
