"""Flow decorators besides the triggers: ``@project`` (branches, ``project:`` tags,
``current.project_*``), and the cloud ones (``@schedule``, ``@conda_base``, ``@pypi_base``)
that import fine and refuse a local run. Also Metaflow's mutator names, which import but are
refused when a flow uses them."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from mfstore.exception import MetaflowException, UnsupportedFeature

from .decorators import RefusedAtRun
from .events import FlowDecorator, flow_decorators, make_flow_decorator

VALID_NAME_RE = "[^a-z0-9_]"
VALID_NAME_LEN = 128


class ProjectDecorator(FlowDecorator):
    """``@project(name="x")``: the flow belongs to project ``x``; runs carry the system
    tags ``project:x`` and ``project_branch:BRANCH`` and ``current`` knows the branch.

    The branch is ``user.<username>`` by default, ``test.<b>`` with ``--branch b``,
    ``prod`` with ``--production`` (``prod.<b>`` with both).
    """

    name = "project"
    defaults: ClassVar[dict[str, Any]] = {"name": None, "production": False, "branch": None}

    def init(self) -> None:
        """Check the project name early (at class definition)."""
        name = self.attributes["name"]
        if not name:
            raise MetaflowException("@project needs a name. Try @project(name='some_name')")
        _check_name(name, "The @project name")


def _check_name(name: str, what: str) -> None:
    if re.search(VALID_NAME_RE, name):
        raise MetaflowException(
            f"{what} must contain only lowercase alphanumeric characters and underscores."
        )
    if len(name) > VALID_NAME_LEN:
        raise MetaflowException(f"{what} must be shorter than {VALID_NAME_LEN} characters.")


def project_info(
    flow_cls: type, branch: str | None, production: bool, username: str | None
) -> dict[str, Any] | None:
    """``current``'s project fields for a run of ``flow_cls`` (None without ``@project``)."""
    deco = flow_decorators(flow_cls).get("project")
    if deco is None:
        return None
    attrs = deco.attributes
    branch = attrs["branch"] or branch
    production = bool(attrs["production"] or production)
    if branch:
        _check_name(branch, "The branch name")
        branch_name = f"prod.{branch}" if production else f"test.{branch}"
    elif production:
        branch_name = "prod"
    else:
        branch_name = f"user.{username}"
    return {
        "project_name": attrs["name"],
        "branch_name": branch_name,
        "is_user_branch": not branch and not production,
        "is_production": production,
        "project_flow_name": ".".join((attrs["name"], branch_name, flow_cls.__name__)),
    }


class RemoteFlowDecorator(RefusedAtRun, FlowDecorator):
    """A flow decorator that needs a scheduler or package environment: refused at run."""

    refusal = (
        "Flow *{flow}* is decorated with @{name}, which needs {needs}. "
        "mfstore runs flows locally: remove @{name} to run it here."
    )


class ScheduleDecorator(RemoteFlowDecorator):
    """``@schedule(...)``: only a deployed scheduler runs it; a local run ignores it."""

    name = "schedule"
    needs = "a production scheduler"

    def runtime_init(self, flow_name: str, step_name: str) -> None:
        """A local run of a scheduled flow runs now (as in Metaflow)."""


class CondaBaseDecorator(RemoteFlowDecorator):
    """``@conda_base(...)``: needs a Conda environment built by Metaflow."""

    name = "conda_base"
    needs = "a Conda environment built by Metaflow"


class PypiBaseDecorator(RemoteFlowDecorator):
    """``@pypi_base(...)``: needs a PyPI environment built by Metaflow."""

    name = "pypi_base"
    needs = "a PyPI environment built by Metaflow"


project = make_flow_decorator(ProjectDecorator)
schedule = make_flow_decorator(ScheduleDecorator)
conda_base = make_flow_decorator(CondaBaseDecorator)
pypi_base = make_flow_decorator(PypiBaseDecorator)


def flow_runtime_init(flow_cls: type) -> None:
    """Let every flow decorator refuse a run before it starts."""
    for deco in flow_decorators(flow_cls).values():
        init = getattr(deco, "runtime_init", None)
        if init is not None:
            init(flow_cls.__name__, "")


class _Unsupported:
    """Base of Metaflow names mfstore's runtime does not run (mutators, custom decorators).
    A flow may subclass them (that is how they are used); making an instance is refused."""

    feature = "this Metaflow feature"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedFeature(
            f"{type(self).__name__}: {self.feature} is not supported by mfstore's runtime."
        )


class FlowMutator(_Unsupported):
    """Metaflow's ``FlowMutator`` (changing a flow's decorators and parameters at load time)."""

    feature = "mutating a flow (FlowMutator)"


class StepMutator(_Unsupported):
    """Metaflow's ``StepMutator``."""

    feature = "mutating a step (StepMutator)"


class UserStepDecorator(_Unsupported):
    """Metaflow's ``UserStepDecorator``."""

    feature = "user-defined step decorators (UserStepDecorator)"


def user_step_decorator(*args: Any, **kwargs: Any) -> Any:
    """Metaflow's ``user_step_decorator``: refused (not supported by mfstore's runtime)."""
    raise UnsupportedFeature(
        "user_step_decorator: user-defined step decorators are not supported by mfstore's runtime."
    )
