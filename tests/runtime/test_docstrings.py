"""The runtime's public names are documented as the client's are: every decorator's
docstring has a numpy-style ``Parameters`` section naming each attribute it takes (its
``defaults``), the classes and functions a flow calls name each of their arguments, and
every public method and property has a docstring."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

import mfstore
import mfstore.runtime as runtime
from mfstore.runtime.config import Config, ConfigValue
from mfstore.runtime.current import Current
from mfstore.runtime.decorators import STEP_DECORATORS, StepDecorator
from mfstore.runtime.events import FlowDecorator
from mfstore.runtime.flowspec import FlowSpec
from mfstore.runtime.includefile import IncludeFile
from mfstore.runtime.parameters import JSONTypeClass, Parameter, ParameterContext


def section(doc: str | None, title: str) -> list[str]:
    """The lines of the numpy-style section ``title`` of ``doc`` (up to the next section);
    raises AssertionError when there is none."""
    lines = inspect.cleandoc(doc or "").splitlines()
    underline = re.compile(r"^-{3,}$")
    for i in range(len(lines) - 1):
        if lines[i].strip() == title and underline.match(lines[i + 1].strip()):
            body = []
            for j in range(i + 2, len(lines)):
                if j + 1 < len(lines) and underline.match(lines[j + 1].strip()):
                    break  # the next section's title
                body.append(lines[j])
            return body
    raise AssertionError(f"no {title!r} section in:\n{doc}")


def documented_names(doc: str | None, title: str = "Parameters") -> set[str]:
    """The names a section documents: its unindented ``name : type`` lines (``a, b : t``
    documents both; ``*args`` and ``**kwargs`` keep their stars)."""
    names: set[str] = set()
    for line in section(doc, title):
        head, sep, _ = line.partition(" : ")
        if sep and line == line.lstrip():
            names.update(n.strip() for n in head.split(","))
    return names


def _decorator_classes() -> dict[str, type[StepDecorator]]:
    """The class behind each public decorator of ``mfstore.runtime``, by name: the step
    decorators' registry, and the flow decorators (which have none) found as subclasses."""
    found: dict[str, type[StepDecorator]] = {}
    todo: list[type[StepDecorator]] = [StepDecorator]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "name" in vars(cls) and cls.name in runtime.__all__:
            assert found.setdefault(cls.name, cls) is cls, cls.name
    return found


DECORATORS = _decorator_classes()


def test_every_decorator_is_found() -> None:
    # every registered step decorator, and every public flow decorator, is checked below
    assert set(STEP_DECORATORS) <= set(DECORATORS)
    assert all(STEP_DECORATORS[n] is DECORATORS[n] for n in STEP_DECORATORS)
    flow = {n for n, c in DECORATORS.items() if issubclass(c, FlowDecorator)}
    assert {"project", "schedule", "trigger", "trigger_on_finish", "conda_base"} <= flow
    assert set(DECORATORS) == set(STEP_DECORATORS) | flow


@pytest.mark.parametrize("name", sorted(DECORATORS))
def test_decorator_documents_each_attribute(name: str) -> None:
    cls = DECORATORS[name]
    public = getattr(mfstore, name)
    # help(mfstore.NAME) shows the class's docstring: what ``@NAME`` does in mfstore
    assert public.__doc__ == cls.__doc__, name
    assert len(inspect.cleandoc(cls.__doc__ or "").splitlines()) >= 8, name
    names = documented_names(cls.__doc__)
    # No attribute is private: each one a flow may give (``defaults``) is documented.
    missing = sorted(set(cls.defaults) - names)
    assert missing == [], f"@{name} does not document {missing}"
    if cls.takes_any_attribute and not cls.defaults:
        # refused or ignored (a cloud's, a scheduler's): say what it accepts
        assert names, f"@{name} documents no attribute"


def _signature_names(func: Callable[..., Any]) -> set[str]:
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return {
        stars.get(p.kind, "") + p.name
        for p in inspect.signature(func).parameters.values()
        if p.name != "self"
    }


def raised_names(doc: str | None) -> set[str]:
    """The exception names a ``Raises`` section lists."""
    return {line.strip() for line in section(doc, "Raises") if line == line.lstrip() and line}


#: A callable a flow uses, and where its arguments are documented; ``next`` documents
#: the keywords its ``**kwargs`` takes instead of ``**kwargs`` itself.
CALLABLES: list[tuple[Callable[..., Any], str | None, set[str]]] = [
    (FlowSpec.__init__, FlowSpec.__doc__, set()),
    (FlowSpec.next, None, {"**kwargs"}),
    (FlowSpec.merge_artifacts, None, set()),
    (Parameter.__init__, Parameter.__doc__, set()),
    (Config.__init__, Config.__doc__, set()),
    (IncludeFile.__init__, IncludeFile.__doc__, set()),
    (runtime.step, None, set()),
    (runtime.config_expr, None, set()),
]


@pytest.mark.parametrize(
    "func, doc, exempt", CALLABLES, ids=lambda x: getattr(x, "__qualname__", "")
)
def test_arguments_are_documented(
    func: Callable[..., Any], doc: str | None, exempt: set[str]
) -> None:
    missing = sorted(_signature_names(func) - exempt - documented_names(doc or func.__doc__))
    assert missing == [], f"{func.__qualname__} does not document {missing}"


def test_next_documents_its_keywords() -> None:
    assert {"*dsts", "foreach", "num_parallel", "condition"} <= documented_names(
        FlowSpec.next.__doc__
    )
    assert {"InvalidNextException"} <= raised_names(FlowSpec.next.__doc__)


def test_parameter_context_fields_documented() -> None:
    assert set(ParameterContext._fields) <= documented_names(ParameterContext.__doc__, "Attributes")


def test_current_documents_every_fact() -> None:
    facts = {
        name
        for name, member in vars(Current).items()
        if not name.startswith("_") and (isinstance(member, property) or hasattr(member, "_slot"))
    }
    assert "flow_name" in facts and "pathspec" in facts
    missing = sorted(facts - documented_names(Current.__doc__, "Attributes"))
    assert missing == [], f"current's docstring does not list {missing}"


def _members(cls: type) -> list[tuple[str, Any]]:
    """A class's public methods and properties, its mfstore bases' included."""
    out = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("mfstore."):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name not in ("__iter__", "__getitem__", "__contains__"):
                continue
            if callable(member) or isinstance(member, property) or hasattr(member, "_slot"):
                out.append((f"{klass.__name__}.{name}", member))
    return out


@pytest.mark.parametrize(
    "cls",
    [FlowSpec, Parameter, Config, IncludeFile, ConfigValue, JSONTypeClass, Current],
    ids=lambda c: c.__name__,
)
def test_public_members_documented(cls: type) -> None:
    assert (cls.__doc__ or "").strip()
    undocumented = [name for name, member in _members(cls) if not (member.__doc__ or "").strip()]
    assert undocumented == []
