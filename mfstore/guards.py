"""Checks of the sharing commands on untrusted or live files (issue 12): what
``mfstore merge`` checks in THEIRS before it copies anything, and which runs
``mfstore delete`` may remove.

A merged file is untrusted input. Before the one write transaction of a merge starts,
every run that would come in is checked, and the whole merge is refused - nothing
copied, MINE unchanged - with a one-line error naming the first bad object if:

- a blob that would be copied does not verify: its chunks are missing, it cannot be
  decompressed within its recorded size, its bytes do not hash to its sha, or its size
  is not what is recorded (blobs MINE already holds are never copied, so never
  overwritten); or its record lies: recorded as plain data (a plain type or a JSON
  value) but its bytes do not load safely to that type and JSON value (``record_problem``);
- a run is dated in the future (beyond ``CLOCK_SKEW_MS``): it would pose as the newest
  run of its flow (``latest_run``) in MINE;
- a row is malformed: tag events whose removed/added are not JSON lists of strings, a
  timestamp that is not a plausible epoch-milliseconds integer, NULLs where a value
  is required.

Merged runs record where they came from as one system tag (``PROVENANCE_PREFIX``):
the source file's name, an id of what was merged, when, and by whom. It shows in
``mfstore show``, in the ``mf_runs.system_tags`` / ``mf_run_tags`` views, and as
``Run.merged_from`` in the Client API.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import query
from .exception import CommandException
from .tags import PROVENANCE_PREFIX, Provenance, is_provenance, parse_provenance

if TYPE_CHECKING:
    from .store import Store

#: How far in the future a run of THEIRS may be dated (clocks of two machines differ).
CLOCK_SKEW_MS = 5 * 60 * 1000
#: Timestamps before this (1990-01-01) are not mfstore's: refused as malformed.
_OLDEST_MS = 631_152_000_000


def make_provenance(src: Store, run_pks: Sequence[int], user: str | None) -> Provenance:
    names = (
        sorted(f"{f}/{r}" for f, r in src.query(*query.compile_run_keys_of(run_pks)))
        if run_pks
        else []
    )
    digest = hashlib.sha1("\n".join(names).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    name = Path(str(src.path)).name.replace("\n", " ")
    return Provenance(name, digest, at, (user or "unknown").replace("\n", " "))


def _bad(what: str, why: str, path: Any) -> CommandException:
    return CommandException(
        f"refusing to merge {path}: {what} {why}; nothing was copied (ask for a good copy, "
        "or `mfstore export` the runs you trust into a new file and merge that)"
    )


def _is_ts(value: Any, now: int) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and _OLDEST_MS <= value <= now + CLOCK_SKEW_MS
    )


def record_problem(src: Store, sha: str) -> str | None:
    """What is untrue in the record of a sound blob: the type and the JSON value stored
    beside its bytes (format 3) are not covered by its sha, so a file's author could
    make the SQL views and previews show a value the artifact does not hold, or record an
    object as plain data. A blob recorded as plain data (a plain type or a JSON value)
    must load with the safe loader (within its budget) to that type and that JSON
    value. Others are only ever unpickled by ``.data``, like any pickle. None: true."""
    from .artifacts import is_plain, load_budget, loads_safe, to_json, type_name
    from .blobs import iter_blob_chunks
    from .exception import MetaflowException

    row = src.one(*query.compile_blob_record(sha))
    if row is None:
        return None
    recorded, value_json = row
    if recorded is None:
        return None if value_json is None else "has a JSON value but no type"
    if not is_plain(recorded, value_json):
        return None
    try:
        budget = load_budget()
        value = loads_safe(b"".join(iter_blob_chunks(src, sha, budget)), max_bytes=budget)
    except MetaflowException as exc:
        return f"is recorded as plain data ({recorded}) but is not ({' '.join(str(exc).split())[:120]})"
    if type_name(value) != recorded:
        return f"is recorded as {recorded} but holds a {type_name(value)}"
    if value_json is not None and not _same_json(value_json, to_json(value)):
        return "has a recorded JSON value that is not its value"
    return None


def _same_json(recorded: str, actual: str | None) -> bool:
    if actual is None:
        return False
    if recorded == actual:
        return True
    try:
        return bool(json.loads(recorded) == json.loads(actual))
    except ValueError:
        return False


def check_source(src: Store, dst: Store, run_pks: Sequence[int]) -> None:
    """Raise ``CommandException`` (one line, naming the first bad object) if any run of
    ``src`` that a merge into ``dst`` would copy is malformed, future-dated, or refers
    to a blob that does not verify. Reads only; call it before the write starts."""
    from .blobs import has_blob, verify_blob

    now = int(time.time() * 1000)
    checked: set[str] = set()
    with src.read():
        for pk in run_pks:
            row = src.one(*query.compile_run_fields(pk, query.RunFields.TO_CHECK))
            if row is None:
                continue
            flow_id, run_number, ts, finished, status, code_sha = row
            name = f"run {flow_id}/{run_number}"
            if not isinstance(flow_id, str) or not isinstance(run_number, str):
                raise _bad(f"run_pk {pk}", "has no flow or run id", src.path)
            if isinstance(ts, int) and ts > now + CLOCK_SKEW_MS:
                raise _bad(
                    name,
                    "is dated in the future (created_at "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(min(ts, 253402300799000) / 1000))}"
                    "); it would pose as the newest run",
                    src.path,
                )
            if not _is_ts(ts, now):
                raise _bad(name, f"has an impossible created_at ({ts!r})", src.path)
            if finished is not None and not _is_ts(finished, now):
                raise _bad(name, f"has an impossible finished_at ({finished!r})", src.path)
            if status not in ("running", "successful", "failed"):
                raise _bad(name, f"has an unknown status ({status!r})", src.path)
            for ev_ts, _user, removed, added in src.query(
                *query.compile_child_rows("tag_events", pk)
            ):
                if not _is_ts(ev_ts, now):
                    raise _bad(
                        name, f"has a tag event with an impossible time ({ev_ts!r})", src.path
                    )
                for text in (removed, added):
                    try:
                        tags = json.loads(text) if isinstance(text, str) else None
                    except (ValueError, RecursionError):
                        tags = None
                    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                        raise _bad(
                            name, "has a tag event that is not a JSON list of tags", src.path
                        )
            for (a_ts,) in src.query(*query.compile_run_attempt_starts(pk)):
                if not _is_ts(a_ts, now):
                    raise _bad(
                        name, f"has an attempt with an impossible start ({a_ts!r})", src.path
                    )
            shas = [
                (sha, f"artifact {flow_id}/{run_number}/{step}/{task}/{art}")
                for sha, step, task, art in src.query(*query.compile_run_artifact_shas(pk))
            ]
            for sha, what in shas:
                if sha is None:
                    raise _bad(what, "does not verify (its blob is missing)", src.path)
            if code_sha is not None:
                shas.append((code_sha, f"the code package of {name}"))
            for sha, what in shas:
                if sha in checked or has_blob(dst, sha):
                    continue  # a blob MINE holds is never copied, so never overwritten
                problem = verify_blob(src, sha) or record_problem(src, sha)
                if problem is not None:
                    raise _bad(what, f"does not verify (blob {sha} {problem})", src.path)
                checked.add(sha)


#: ``delete --force`` removes a run still marked running only after this long without
#: activity (no attempt started or ended, no log line): its runtime is taken to be gone.
STALE_SECONDS = 600


def check_deletable(store: Store, run_pks: Sequence[int], *, force: bool) -> None:
    """Refuse (one line, nothing deleted) to delete a run that is still running. With
    ``force``, a running run is deleted only when its runtime is gone: no activity for
    ``STALE_SECONDS`` (mfstore records no process id, so inactivity is the evidence)."""
    now = int(time.time() * 1000)
    for pk in run_pks:
        row = store.one(*query.compile_run_fields(pk, query.RunFields.TO_CHECK))
        if row is None or row[4] != "running":
            continue
        pathspec, created = f"{row[0]}/{row[1]}", row[2]
        if not force:
            raise CommandException(
                f"{pathspec} is still running (or its runtime died before ending it): nothing "
                "was deleted; if its runtime is gone, add --force"
            )
        last, logs = store.one(*query.compile_run_last_activity(pk)) or (None, None)
        active = max(v for v in (created, last, logs) if isinstance(v, int))
        idle = (now - active) // 1000
        if idle < STALE_SECONDS:
            raise CommandException(
                f"{pathspec} is running and was active {idle} s ago: its runtime may still be "
                f"writing, so --force does not delete it (only runs idle for {STALE_SECONDS} s); "
                "nothing was deleted"
            )


def preview(src: Store, dst: Store, run_pks: Sequence[int]) -> list[tuple[str, str, int, int]]:
    """``--dry-run``: ``(flow, user, runs that would be added, runs already there)``."""
    new: Counter[tuple[str, str]] = Counter()
    known: Counter[tuple[str, str]] = Counter()
    for pk in run_pks:
        row = src.one(*query.compile_run_fields(pk, query.RunFields.KEY_AND_USER))
        if row is None:
            continue
        there = dst.scalar(*query.compile_run_by_key(row[0], row[1], query.RunFields.EXISTS))
        (known if there else new)[(row[0], row[2] or "")] += 1
    keys = sorted(set(new) | set(known))
    return [(f, u, new[(f, u)], known[(f, u)]) for f, u in keys]


__all__ = [
    "CLOCK_SKEW_MS",
    "PROVENANCE_PREFIX",
    "STALE_SECONDS",
    "Provenance",
    "check_deletable",
    "check_source",
    "is_provenance",
    "make_provenance",
    "parse_provenance",
    "preview",
]
