"""``ConfigValue``: the read-only value of a ``Config`` (and of a Parameter default
function's ``ctx.configs``), and how deep a config or JSON value may nest
(``nested_too_deeply``); apart from ``config`` so that ``parameters`` can use them
without importing ``config``, which builds on ``parameters``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How many levels of objects (dicts) and lists a config or JSON parameter value may nest:
#: Metaflow sets no limit, but a value nested some hundreds deep exhausts Python's recursion
#: where it is copied (``ConfigValue``), stored or loaded, a traceback instead of a message.
MAX_DEPTH = 100
TOO_DEEP = f"is nested too deeply (more than {MAX_DEPTH} levels of objects and lists)"


def nested_too_deeply(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests mappings and lists more than ``limit`` levels (checked
    without recursion, so a value of any depth is safe to check)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


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


# Pickles and reprs name it where users import it from (as before it moved here).
ConfigValue.__module__ = "mfstore.runtime.config"
