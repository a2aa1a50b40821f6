"""Writes of production deployments and events (``mfstore.production``); inside
``store.write()``."""

from __future__ import annotations

from ..store import Store


def add_deployment(
    store: Store,
    flow_id: str,
    token: str,
    deployed_by: str,
    ts_epoch: int,
    code_sha: str,
    triggers_json: str,
    values_json: str,
) -> int:
    """Record a deployment (``values_json``: what ``production create`` fixed, a JSON
    object); returns its ``deployment_pk``."""
    return store.insert(
        "INSERT INTO deployments "
        "(flow_id, token, deployed_by, ts_epoch, code_sha, triggers, values_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (flow_id, token, deployed_by, ts_epoch, code_sha, triggers_json, values_json),
    )


def add_event(store: Store, event_id: str, name: str, ts_epoch: int, payload_json: str) -> None:
    """Record a sent event."""
    store.execute(
        "INSERT INTO events (event_id, name, ts_epoch, payload) VALUES (?, ?, ?, ?)",
        (event_id, name, ts_epoch, payload_json),
    )
