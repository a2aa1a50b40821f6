"""Metaflow's Client API over an .mfdb file."""

from __future__ import annotations

from ..provider import default_metadata, get_metadata, metadata
from ._object import MetaflowObject
from .artifact import DataArtifact
from .code import MetaflowCode
from .data import Metadata, MetaflowArtifacts, MetaflowData
from .flow import Flow
from .metaflow import Metaflow
from .namespace import UNSET, default_namespace, get_namespace, namespace
from .run import Run
from .step import Step
from .task import Task
from .trigger import MetaflowEvent, MetaflowTrigger, Trigger

# The hierarchy, wired with direct references (Flow > Run > Step > Task > DataArtifact).
Flow._CHILD_CLASS = Run
Run._PARENT_CLASS, Run._CHILD_CLASS = Flow, Step
Step._PARENT_CLASS, Step._CHILD_CLASS = Run, Task
Task._PARENT_CLASS, Task._CHILD_CLASS = Step, DataArtifact
DataArtifact._PARENT_CLASS = Task

__all__ = [
    "UNSET",
    "DataArtifact",
    "Flow",
    "Metadata",
    "Metaflow",
    "MetaflowArtifacts",
    "MetaflowCode",
    "MetaflowData",
    "MetaflowEvent",
    "MetaflowObject",
    "MetaflowTrigger",
    "Run",
    "Step",
    "Task",
    "Trigger",
    "default_metadata",
    "default_namespace",
    "get_metadata",
    "get_namespace",
    "metadata",
    "namespace",
]
