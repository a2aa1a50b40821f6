"""Reads of production deployments (``mfstore.production``). Pure: returns SQL + parameters."""

from __future__ import annotations

from typing import Final

from .common import Params

#: Columns of a deployment row, in this order.
DEPLOYMENT_COLUMNS = (
    "deployment_pk",
    "flow_id",
    "token",
    "deployed_by",
    "ts_epoch",
    "code_sha",
    "triggers",
)
#: Text columns read as their bytes: text that is not UTF-8 is a damaged deployment
#: (``mfstore.production``), not a decoding error of the driver.
_AS_BYTES = ("flow_id", "token", "deployed_by", "code_sha", "triggers")
_COLS = ", ".join(f"CAST({c} AS BLOB)" if c in _AS_BYTES else c for c in DEPLOYMENT_COLUMNS)


_HISTORY = f"SELECT {_COLS} FROM deployments WHERE flow_id = :flow ORDER BY deployment_pk DESC"
_CURRENT = _HISTORY + " LIMIT 1"


def compile_deployments(flow_id: str, *, latest: bool = False) -> tuple[str, Params]:
    """Every deployment of a flow, newest first; ``latest``: only the newest (the one in
    effect)."""
    return (_CURRENT if latest else _HISTORY), {"flow": flow_id}


def compile_deployment_values(deployment_pk: int) -> tuple[str, Params]:
    """A deployment's ``values_json`` (what ``production create`` fixed; read only to start
    one of its runs or show that deployment: it may hold the bytes of included files), as
    its bytes (text that is not UTF-8 is damage, not a decoding error)."""
    return (
        "SELECT CAST(values_json AS BLOB) FROM deployments WHERE deployment_pk = :pk",
        {"pk": deployment_pk},
    )


#: The deployment in effect of every deployed flow, by flow name.
CURRENT_DEPLOYMENTS: Final = (
    f"SELECT {_COLS} FROM deployments d WHERE deployment_pk = "
    "(SELECT max(deployment_pk) FROM deployments WHERE flow_id = d.flow_id) ORDER BY flow_id"
)


def compile_deployed_script(sha: str) -> tuple[str, Params]:
    """The ``script_name`` of a deployed code package, as its bytes (see ``_AS_BYTES``)."""
    return "SELECT CAST(script_name AS BLOB) FROM code_packages WHERE sha = :sha", {"sha": sha}


def compile_end_task(run_pk: int, end_step: str) -> tuple[str, Params]:
    """``(task_id, finished_at)`` of a run's (newest) task of its end step."""
    return (
        "SELECT t.task_id, r.finished_at FROM tasks t JOIN runs r ON r.run_pk = t.run_pk "
        "WHERE t.run_pk = :run AND t.step_name = :step ORDER BY t.task_pk DESC LIMIT 1",
        {"run": run_pk, "step": end_step},
    )
