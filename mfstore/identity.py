"""Who is running: user name and identity (``user:<name>`` or ``production:<token>``)."""

from __future__ import annotations

import os
import secrets
import time

from .env import METAFLOW_PRODUCTION_TOKEN, METAFLOW_USER
from .exception import MetaflowUnknownUser


def get_username() -> str | None:
    """First non-empty, non-root of METAFLOW_USER, SUDO_USER, USERNAME, USER (as Metaflow)."""
    for var in (METAFLOW_USER, "SUDO_USER", "USERNAME", "USER"):
        user = os.environ.get(var)
        if user and user != "root":
            return user
    return None


def resolve_identity() -> str:
    """``production:<METAFLOW_PRODUCTION_TOKEN>`` if set, else ``user:<name>``."""
    token = os.environ.get(METAFLOW_PRODUCTION_TOKEN)
    if token:
        return f"production:{token}"
    user = get_username()
    if user is None:
        raise MetaflowUnknownUser()
    return f"user:{user}"


def new_run_id() -> str:
    """A run id unique across machines: Metaflow's microsecond timestamp plus 4 random digits.

    Metaflow's local ids are ``"%d" % (time.time() * 1e6)``; two people's files can then
    hold the same id. The random suffix makes a clash between machines need the same
    microsecond and the same 1-in-10,000 draw; within one file the writer also checks.
    """
    return f"{int(time.time() * 1e6)}{secrets.randbelow(10_000):04d}"


def now_ms() -> int:
    """Milliseconds since the epoch (Metaflow's ts_epoch)."""
    return int(time.time() * 1000)
