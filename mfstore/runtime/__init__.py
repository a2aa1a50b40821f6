"""Running flows: FlowSpec, steps, decorators, parameters and ``current``; every run is
recorded into the .mfdb by the runtime process (see ``scheduler``)."""

from .card_decorator import card
from .config import Config, ConfigValue, config_expr
from .current import current
from .decorators import catch, dask, retry, step
from .events import trigger, trigger_on_finish
from .flow_decorators import (
    FlowMutator,
    StepMutator,
    UserStepDecorator,
    conda_base,
    project,
    pypi_base,
    schedule,
    user_step_decorator,
)
from .flowspec import FlowSpec
from .includefile import IncludeFile
from .parameters import JSONType, Parameter
from .step_decorators import (
    batch,
    conda,
    environment,
    kubernetes,
    parallel,
    pypi,
    resources,
    secrets,
    timeout,
)

__all__ = [
    "Config",
    "ConfigValue",
    "FlowMutator",
    "FlowSpec",
    "IncludeFile",
    "JSONType",
    "Parameter",
    "StepMutator",
    "UserStepDecorator",
    "batch",
    "card",
    "catch",
    "conda",
    "conda_base",
    "config_expr",
    "current",
    "dask",
    "environment",
    "kubernetes",
    "parallel",
    "project",
    "pypi",
    "pypi_base",
    "resources",
    "retry",
    "schedule",
    "secrets",
    "step",
    "timeout",
    "trigger",
    "trigger_on_finish",
    "user_step_decorator",
]
