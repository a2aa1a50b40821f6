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
    """Put the flow in a project, on a branch.

    Every run of the flow carries the system tags ``project:NAME`` and
    ``project_branch:BRANCH`` (the Client filters on them like on any tag), the run
    prints ``Project: *NAME*, Branch: *BRANCH*``, and ``current`` knows
    ``project_name``, ``branch_name``, ``is_user_branch``, ``is_production`` and
    ``project_flow_name`` (``NAME.BRANCH.FlowName``), also in a Parameter's default
    function. The branch is:

    - ``user.<username>`` by default;
    - ``test.<b>`` with ``--branch b`` (``python flow.py --branch b run``);
    - ``prod`` with ``--production``, ``prod.<b>`` with both.

    The name is checked when the class is defined. Unlike Metaflow, mfstore does not
    keep apart the deployments of different branches: ``production create`` deploys the
    flow under its class name whatever the branch.

    Parameters
    ----------
    name : str
        The project's name: lowercase letters, digits and ``_``, at most 128 characters.
        Required.
    branch : str, optional, default None
        The branch (as ``--branch`` gives it); when set, it wins over ``--branch``
        (Metaflow refuses both at once).
    production : bool, default False
        Use the production branch (as ``--production`` does); either one is enough.

    Example
    -------
    ::

        @project(name="fraud")
        class ScoreFlow(FlowSpec):
            ...

    ``python score.py --branch exp1 run`` runs on branch ``test.exp1``.
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
    """Metaflow's ``@schedule``: when a production scheduler runs the deployed flow.

    mfstore has no scheduler: the decorator is accepted and kept with the flow class, a
    ``run`` runs the flow now (as a local run does in Metaflow), and ``production create``
    schedules nothing (run the deployment with ``production trigger``, from cron or
    another scheduler). The attributes are not checked.

    Parameters
    ----------
    hourly : bool, default False
        Metaflow: run every hour. Unused.
    daily : bool, default True
        Metaflow: run every day. Unused.
    weekly : bool, default False
        Metaflow: run every week. Unused.
    cron : str, optional, default None
        Metaflow: a cron expression. Unused.
    timezone : str, optional, default None
        Metaflow: the schedule's IANA time zone (Argo Workflows). Unused.
    """

    name = "schedule"
    needs = "a production scheduler"

    def runtime_init(self, flow_name: str, step_name: str) -> None:
        """A local run of a scheduled flow runs now (as in Metaflow)."""


#: The docstring of ``@conda_base`` and ``@pypi_base`` (``{name}``, ``{kind}``,
#: ``{attributes}`` filled in below).
_PACKAGE_BASE_DOC = """Metaflow's ``@{name}``: every step in a {kind} environment; refused by mfstore.

    mfstore builds no package environments: the flow imports fine (``python flow.py
    show`` works) but ``run`` and ``resume`` stop before the run starts, saying the flow
    needs a {kind} environment built by Metaflow. Remove ``@{name}`` and install the
    packages in the environment you run mfstore in, or run the flow with Metaflow.

    Parameters
    ----------
    **attributes : any
        Whatever Metaflow's ``@{name}`` takes; accepted without checking, never used.
        Metaflow's are {attributes}.
    """


class CondaBaseDecorator(RemoteFlowDecorator):
    __doc__ = _PACKAGE_BASE_DOC.format(
        name="conda_base",
        kind="Conda",
        attributes="``packages``, ``libraries``, ``python``, ``disabled``",
    )

    name = "conda_base"
    needs = "a Conda environment built by Metaflow"


class PypiBaseDecorator(RemoteFlowDecorator):
    __doc__ = _PACKAGE_BASE_DOC.format(
        name="pypi_base", kind="PyPI", attributes="``packages``, ``python``"
    )

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
    """Metaflow's ``FlowMutator`` (changing a flow's decorators and parameters when it
    loads); not supported by mfstore.

    A flow file may define a subclass (it imports), but making an instance of one, which
    is how a mutator is applied to a flow, raises ``UnsupportedFeature``.
    """

    feature = "mutating a flow (FlowMutator)"


class StepMutator(_Unsupported):
    """Metaflow's ``StepMutator`` (changing a step's decorators when the flow loads); not
    supported by mfstore: a subclass imports, making an instance raises
    ``UnsupportedFeature``."""

    feature = "mutating a step (StepMutator)"


class UserStepDecorator(_Unsupported):
    """Metaflow's ``UserStepDecorator`` (a step decorator written by the user, wrapping
    the step function); not supported by mfstore: a subclass imports, making an instance
    raises ``UnsupportedFeature``."""

    feature = "user-defined step decorators (UserStepDecorator)"


def user_step_decorator(*args: Any, **kwargs: Any) -> Any:
    """Metaflow's ``user_step_decorator`` (turning a generator function into a step
    decorator); not supported by mfstore: calling it raises ``UnsupportedFeature``, so a
    flow file that uses it fails at import, saying so."""
    raise UnsupportedFeature(
        "user_step_decorator: user-defined step decorators are not supported by mfstore's runtime."
    )
