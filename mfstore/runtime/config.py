"""``Config``: a flow configuration read when the run starts, from ``--config NAME PATH``,
``--config-value NAME JSON`` (or ``METAFLOW_FLOW_CONFIG`` / ``METAFLOW_FLOW_CONFIG_VALUE``,
JSON objects of name -> path / value), else its ``default`` file or ``default_value``. In
steps ``self.NAME`` is a read-only ``ConfigValue`` (attribute or item access).

Not supported (documented in docs/runtime.md): config values in decorator arguments and
class-level expressions (Metaflow resolves those by loading the flow twice);
``config_expr`` raises when evaluated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from mfstore.exception import MetaflowException, UnsupportedFeature

from .parameters import Parameter


class ConfigValue(dict):  # type: ignore[type-arg]
    """A read-only dict whose keys are also attributes (``cfg.a.b`` == ``cfg["a"]["b"]``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: ConfigValue(v) if isinstance(v, dict) else v for k, v in data.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("ConfigValue is immutable")

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("ConfigValue is immutable")

    def __delitem__(self, key: str) -> None:
        raise TypeError("ConfigValue is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigValue, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """A plain (mutable) copy."""
        return {k: v.to_dict() if isinstance(v, ConfigValue) else v for k, v in self.items()}


class Config(Parameter):
    """``cfg = Config("cfg", default="config.json")`` or ``default_value={...}``;
    ``parser=`` turns the file's text into a dict (default: JSON)."""

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


def config_expr(expr: str) -> Any:
    """Metaflow's ``config_expr``: refused (config values in decorators and class-level
    expressions are not supported by mfstore's runtime)."""
    raise UnsupportedFeature(
        f"config_expr({expr!r}): config values in decorator arguments and class-level "
        "expressions are not supported by mfstore's runtime; read self.CONFIG in a step."
    )


def resolve_configs(
    flow_cls: type, given: tuple[tuple[str, str], ...], given_values: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """``{attribute: ConfigValue}`` of the flow's Configs for a run."""
    from .cli_common import get_parameters

    paths = dict(json.loads(os.environ.get("METAFLOW_FLOW_CONFIG") or "{}"))
    paths.update(dict(given))
    values = dict(json.loads(os.environ.get("METAFLOW_FLOW_CONFIG_VALUE") or "{}"))
    values.update(dict(given_values))
    out = {}
    for var, p in get_parameters(flow_cls):
        if isinstance(p, Config):
            out[var] = p.resolve(paths, values, None)
    return out
