"""``ConfigValue``: the read-only value of a ``Config`` (and of a Parameter default
function's ``ctx.configs``); apart from ``config`` so that ``parameters`` can use it
without importing ``config``, which builds on ``parameters``."""

from __future__ import annotations

from typing import Any


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
