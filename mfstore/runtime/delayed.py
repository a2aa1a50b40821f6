"""Config values used before they are known (Metaflow's ``DelayEvaluator``).

A flow's ``Config`` values are only known when a command starts (``--config``,
``--config-value``, defaults), but flows use them where the class is being defined: in
decorator arguments (``@project(name=cfg.project)``, ``@environment(vars={"x": cfg.x})``,
``@environment(**cfg)``), in ``config_expr("expr")`` and in Parameter defaults. There they
are :class:`DelayEvaluator` placeholders; when the command starts,
:func:`activate` records the values and :func:`resolve_decorators` replaces every
placeholder in the flow's decorators by its value (Metaflow does this by loading the flow
a second time).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mfstore.exception import MetaflowException

#: The key ``**placeholder`` unpacks to (a decorator keeps it until it is resolved).
UNPACK_KEY = "_unpacked_delayed_"
_ID = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: The flow's config values by config name (and attribute name), once known.
_VALUES: dict[str, Any] = {}
_ACTIVE: list[bool] = [False]


class DelayEvaluator(Mapping):  # type: ignore[type-arg]
    """An expression over the flow's configs, evaluated when the values are known.

    ``placeholder.a.b`` and ``placeholder["a"]`` extend the expression; ``**placeholder``
    unpacks to one ``UNPACK_KEY<id>`` key; calling it (``placeholder()``) evaluates it.
    """

    def __init__(self, expr: str, saved_globals: dict[str, Any] | None = None) -> None:
        self._config_expr = expr
        self._globals = saved_globals
        self._access: list[Any] | None = [] if _ID.match(expr) else None

    def _extend(self, key: Any) -> DelayEvaluator:
        c = copy.copy(self)
        assert c._access is not None
        c._access = [*c._access, key]
        return c

    def __iter__(self) -> Iterator[str]:
        yield f"{UNPACK_KEY}{id(self)}"

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: Any) -> Any:
        if key == f"{UNPACK_KEY}{id(self)}":
            return self
        if self._access is None:
            raise KeyError(key)
        return self._extend(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self.__dict__.get("_access") is None:
            raise AttributeError(name)
        return self._extend(name)

    def expression(self) -> str:
        """The Python expression this placeholder stands for."""
        parts = [self._config_expr]
        for a in self._access or []:
            parts.append(str(a()) if isinstance(a, DelayEvaluator) else str(a))
        return ".".join(parts)

    def __call__(self, ctx: Any = None, deploy_time: bool = False) -> Any:
        """The expression's value with the configs' values in scope."""
        if not _ACTIVE[0]:
            raise MetaflowException(
                "Config object can only be used directly in the FlowSpec defining them "
                "(or their flow decorators)."
            )
        expr = self.expression()
        try:
            return eval(expr, dict(self._globals or {}), dict(_VALUES))
        except NameError as e:
            raise MetaflowException(
                f"Config expression '{expr}' could not be evaluated: {e}"
            ) from None
        except (AttributeError, LookupError, TypeError, ValueError) as e:
            # the config's value lacks what the expression reads (``cfg.missing``): one
            # line naming it (Metaflow shows these with a traceback)
            raise MetaflowException(
                f"Config expression '{expr}' could not be evaluated: {type(e).__name__}: {e}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"config_expr({self.expression() if self._access is not None else self._config_expr!r})"
        )


def config_expr(expr: str) -> DelayEvaluator:
    """A Python expression over the flow's Configs, evaluated when the command starts
    (Metaflow's ``config_expr``).

    Use it where a ``Config`` attribute cannot be written directly: before the class
    body (in a flow decorator's arguments), or for a value computed from a config, e.g.
    ``@project(name=config_expr("cfg.project"))`` or
    ``@environment(vars={"N": config_expr("str(cfg.workers)")})``. The expression sees
    the Configs by their names and the globals of the module that calls ``config_expr``.

    Parameters
    ----------
    expr : str
        The expression, e.g. ``"cfg.model.name"``.

    Returns
    -------
    DelayEvaluator
        A placeholder that decorator attributes and Parameter defaults accept; it is
        replaced by the expression's value once the configs are known.
    """
    import inspect

    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    return DelayEvaluator(expr, dict(caller.f_globals) if caller is not None else None)


def activate(values: dict[str, Any]) -> None:
    """Record the configs' values (name -> value) the placeholders evaluate against."""
    _VALUES.clear()
    _VALUES.update(values)
    _ACTIVE[0] = True


def active_values() -> dict[str, Any]:
    """The configs' values recorded by :func:`activate` (empty before)."""
    return dict(_VALUES)


def has_delayed(value: Any) -> bool:
    """Whether ``value`` (or a dict/list/tuple inside it) holds a placeholder."""
    if isinstance(value, DelayEvaluator):
        return True
    if isinstance(value, dict):
        return any(
            has_delayed(k) or has_delayed(v) or (isinstance(k, str) and k.startswith(UNPACK_KEY))
            for k, v in value.items()
        )
    if isinstance(value, (list, tuple, set)):
        return any(has_delayed(v) for v in value)
    return False


def resolve(value: Any) -> Any:
    """``value`` with every placeholder replaced by its value (ConfigValues as dicts)."""
    if isinstance(value, DelayEvaluator):
        out = value()
        return out.to_dict() if hasattr(out, "to_dict") else out
    if isinstance(value, dict):
        return {resolve(k): resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v) for v in value)
    return value


def resolve_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """A decorator's attributes resolved, ``**placeholder`` keys unpacked into attributes."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(key, str) and key.startswith(UNPACK_KEY):
            unpacked = resolve(value)
            if not isinstance(unpacked, dict):
                raise MetaflowException(
                    f"**{value!r} in a decorator must be a dictionary, not {type(unpacked).__name__}"
                )
            out.update(unpacked)
        else:
            out[key] = resolve(value)
    return out
