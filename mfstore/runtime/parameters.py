"""``Parameter`` and ``JSONType``: flow inputs given as ``--name value`` on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mfstore.exception import CommandException


class JSONTypeClass:
    """Parse a parameter value as JSON (Metaflow's ``JSONType``)."""

    name = "JSON"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise CommandException(f"{value} is not a valid JSON object") from None

    def __repr__(self) -> str:
        return "JSON"


JSONType = JSONTypeClass()

_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(value)


class Parameter:
    """A flow parameter: ``alpha = Parameter('alpha', help='...', default=0.01)``.

    The type comes from ``type=`` or from the default's type (str when neither).
    """

    IS_CONFIG_PARAMETER = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        *,
        type: Any = None,
        help: str | None = None,
        required: bool = False,
        show_default: bool = True,
        separator: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.default = default
        self.help = help
        self.required = bool(required)
        self.show_default = show_default
        self.separator = separator
        self.kwargs = kwargs
        if type is None:
            if default is None or callable(default):
                type = str
            elif isinstance(default, bool):
                type = bool
            elif isinstance(default, (int, float, str)):
                type = default.__class__
            else:
                type = JSONType
        self.type = type

    @property
    def type_name(self) -> str:
        if self.type is JSONType or isinstance(self.type, JSONTypeClass):
            return "JSON"
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    def convert(self, value: Any) -> Any:
        """The value given on the command line, converted to the parameter's type."""
        if value is None:
            return None
        try:
            if isinstance(self.type, JSONTypeClass):
                out = self.type.convert(value)
            elif self.type is bool:
                out = _to_bool(value)
            elif isinstance(value, self.type) if isinstance(self.type, type) else False:
                out = value
            else:
                out = self.type(value)
        except CommandException:
            raise
        except (TypeError, ValueError):
            raise CommandException(
                f"Invalid value for '--{self.name}': {value!r} is not a valid {self.type_name}."
            ) from None
        if self.separator and isinstance(out, str):
            return out.split(self.separator)
        return out

    def resolve_default(self, context: Any = None) -> Any:
        default = self.default
        if callable(default) and not isinstance(default, type):
            default = default(context)
        return default

    def __repr__(self) -> str:
        return f"Parameter({self.name!r})"

    # Metaflow lets a Parameter stand in for its value in a few class-level expressions.
    def __str__(self) -> str:
        return f"Parameter({self.name})"


def deploy_time_eval(value: Callable[..., Any]) -> Any:
    return value
