"""The bulk writer: ``Writer.task_batch()`` writes exactly what ``add_done_task`` writes."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mfstore.artifacts import prepare_artifact
from mfstore.exception import MetaflowInternalError
from mfstore.store import Store
from mfstore.writer import MetadataEntry, Writer

VIEWS = (
    "mf_runs",
    "mf_steps",
    "mf_tasks",
    "mf_attempts",
    "mf_artifacts",
    "mf_metadata",
    "mf_log_lines",
)


def _history(store: Store, batched: bool, *, size: int = 3) -> None:
    """Two runs of 4 tasks; a blob already in the file before the bulk; values shared
    between tasks; a large (chunked) value; JSON and string metadata; logs."""
    w = Writer(store)
    seed = w.begin_run("F", user_name="u", system_tags=["user:u"], run_number="0")
    task = w.add_task(seed, "start")
    w.begin_attempt(task, 0)
    early = prepare_artifact("seen before")
    w.end_attempt(task, 0, artifacts={"s": early}, task_ok=True, success=True)
    w.end_run(seed, successful=True)
    shared = prepare_artifact([1, 2, 3])
    big = prepare_artifact(random.Random(15).randbytes(9_000_000))
    with w.bulk(), w.task_batch(size) as batch:
        add = batch.add if batched else w.add_done_task
        for k in (1, 2):
            run = w.begin_run(
                "F", user_name="u", system_tags=["user:u"], run_number=str(k), ts_epoch=1000 * k
            )
            for tid, step in enumerate(("start", "work", "work", "end")):
                arts = {
                    "shared": shared,
                    "early": prepare_artifact("seen before"),
                    "mine": prepare_artifact({"k": k, "t": tid}),
                    "ok": prepare_artifact(tid != 3 or k == 1),
                }
                if (k, tid) == (2, 1):
                    arts["big"] = big
                ref = add(
                    run,
                    step,
                    str(tid),
                    artifacts=arts,
                    task_ok=True,
                    success=tid != 3 or k == 1,
                    started_at=1000 * k + tid,
                    ended_at=1000 * k + tid + 1,
                    metadata=[
                        MetadataEntry("user", "u", attempt=0, ts_epoch=5),
                        MetadataEntry("n", {"v": tid}, attempt=0, ts_epoch=6),
                    ],
                    logs=[("stdout", 7, f"line {k} {tid}"), ("stderr", 8, "warn")],
                )
                assert ref.pathspec == f"F/{k}/{step}/{tid}"
            w.end_run(run, successful=k == 1, ts_epoch=1000 * k + 900, checkpoint=False)


def _views(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every view's rows, but the seed run's (written at the current time)."""

    def later(row: tuple[object, ...]) -> bool:
        return not any(isinstance(c, str) and (c == "F/0" or c.startswith("F/0/")) for c in row)

    with Store(path) as store:
        return {
            v: sorted(filter(later, store.query(f"SELECT * FROM {v}")), key=repr) for v in VIEWS
        }


def test_task_batch_writes_what_add_done_task_writes(tmp_path: Path) -> None:
    paths = {}
    for batched in (False, True):
        paths[batched] = tmp_path / f"b{int(batched)}.mfdb"
        with Store(paths[batched], create=True) as store:
            _history(store, batched)
    one, batch = _views(paths[False]), _views(paths[True])
    assert len(one["mf_tasks"]) == 8 and len(one["mf_log_lines"]) == 16
    for view in VIEWS:
        assert batch[view] == one[view], view
    with Store(paths[True]) as store:
        from mfstore.blobs import verify_blobs

        assert verify_blobs(store) == []
        # The shared value and the value stored before the bulk have one blob each.
        assert store.scalar("SELECT count(*) FROM blobs") == len(
            {r[0] for r in store.query("SELECT blob_id FROM artifacts")}
        )


def test_task_batch_needs_bulk_and_rolls_back_with_it(tmp_path: Path) -> None:
    with Store(tmp_path / "f.mfdb", create=True) as store:
        w = Writer(store)
        with pytest.raises(MetaflowInternalError, match="bulk"), w.task_batch():
            pass
        run = w.begin_run("F", user_name="u", run_number="1")
        with (
            pytest.raises(RuntimeError, match="stop"),
            w.bulk(),
            w.task_batch(size=2) as batch,
        ):
            for tid in range(3):  # the first two are flushed, then the error
                batch.add(
                    run,
                    "start",
                    str(tid),
                    artifacts={"x": prepare_artifact(tid)},
                    task_ok=True,
                    success=True,
                    started_at=1,
                    ended_at=2,
                )
            raise RuntimeError("stop")
        assert store.scalar("SELECT count(*) FROM tasks") == 0
        assert store.scalar("SELECT count(*) FROM artifacts") == 0


def test_a_finished_task_is_checked_alike_written_or_batched(tmp_path: Path) -> None:
    """A bad log stream is an mfstore error and an unknown or missing keyword a
    TypeError, from ``add_done_task`` and ``TaskBatch.add`` alike."""
    with Store(tmp_path / "f.mfdb", create=True) as store:
        w = Writer(store)
        done: dict[str, Any] = {
            "artifacts": {},
            "task_ok": True,
            "success": True,
            "started_at": 1,
            "ended_at": 2,
        }
        for batched in (False, True):
            run = w.begin_run("F", user_name="u", run_number=str(batched))
            with w.bulk(), w.task_batch() as batch:
                add = batch.add if batched else w.add_done_task
                with pytest.raises(TypeError, match="task_okay"):
                    add(run, "start", "1", task_okay=True, **done)
                partial = {k: v for k, v in done.items() if k != "ended_at"}
                with pytest.raises(TypeError, match=r"missing .*: ended_at"):
                    add(run, "start", "1", **partial)
                with pytest.raises(MetaflowInternalError, match="stream must be"):
                    add(run, "start", "1", logs=[("stdout", 1, "a"), ("log", 2, "b")], **done)


def _retried_task(store: Store, batched: bool) -> None:
    """A task whose attempt 0 failed, attempt 1 succeeded and attempt 2 was killed (begun,
    never ended); task-level and per-attempt metadata; runtime and task logs."""
    w = Writer(store)
    with w.bulk():
        run = w.begin_run("F", user_name="u", system_tags=["user:u"], run_number="1", ts_epoch=1)
        arts = {
            0: {"_task_ok": prepare_artifact(False), "x": prepare_artifact([1])},
            1: {"_task_ok": prepare_artifact(True), "x": prepare_artifact([1])},
        }
        md = [
            MetadataEntry("start_step", "start", ts_epoch=2),
            MetadataEntry("attempt", "0", attempt=0, ts_epoch=3),
            MetadataEntry("n", {"v": [1, 2]}, attempt=1, ts_epoch=4),
        ]
        logs = [
            (n, "stdout", src, [(10 * n + 1, f"{src} {n}")])
            for n in (0, 1, 2)
            for src in ("runtime", "task")
        ]
        if batched:
            with w.task_batch() as batch:
                task = batch.task(run, "start", "7", ts_epoch=2)
                for n in (0, 1):
                    batch.attempt(
                        task, n, started_at=5 + n, ended_at=6 + n, task_ok=n == 1, success=n == 1
                    )
                batch.attempt(task, 2, started_at=9)
                batch.metadata(task, md)
                for n, stream, src, lines in logs:
                    batch.add_log_lines(task, n, stream, lines, source=src)
                for n in (0, 1):
                    batch.artifacts(task, n, arts[n], 6 + n, {"x": 100 + n})
                    batch.end_metadata(task, n, n == 1, 6 + n)
        else:
            task = w.add_task(run, "start", "7", ts_epoch=2)
            for n in (0, 1, 2):
                w.begin_attempt(task, n, ts_epoch=5 + n if n < 2 else 9)
            w.add_metadata(task, md)
            for n, stream, src, lines in logs:
                w.add_log_lines(task, n, stream, lines, source=src)
            for n in (0, 1):
                w.end_attempt(
                    task,
                    n,
                    artifacts=arts[n],
                    task_ok=n == 1,
                    success=n == 1,
                    ts_epoch=6 + n,
                    artifact_ts={"x": 100 + n},
                )
        w.end_run(run, successful=True, ts_epoch=20, checkpoint=False)


def _both(tmp_path: Path, write: Callable[[Store, bool], None]) -> dict[bool, Any]:
    """Every view's rows of two files written by ``write(store, False)`` and ``(store, True)``."""
    got = {}
    for batched in (False, True):
        path = tmp_path / f"both{int(batched)}.mfdb"
        with Store(path, create=True) as store:
            write(store, batched)
        with Store(path) as store:
            got[batched] = {v: sorted(store.query(f"SELECT * FROM {v}"), key=repr) for v in VIEWS}
    return got


def test_task_batch_pieces_write_what_the_writer_writes(tmp_path: Path) -> None:
    """The importer's path: a task written piece by piece (attempts, metadata, logs,
    artifacts) through the batch equals the same task through Writer's calls."""
    got = _both(tmp_path, _retried_task)
    with Store(tmp_path / "both1.mfdb") as store:
        order = store.query(
            "SELECT v.field_name FROM metadata m JOIN metadata_values v USING (value_id) "
            "ORDER BY m.metadata_pk"
        )
    assert len(got[False]["mf_attempts"]) == 3 and len(got[False]["mf_log_lines"]) == 6
    for view in VIEWS:
        assert got[True][view] == got[False][view], view
    assert [f for (f,) in order] == [
        "start_step",
        "attempt",
        "n",
        "attempt_ok",
        "attempt-done",
        "attempt_ok",
        "attempt-done",
    ]


def _runs_history(store: Store, runs_in_batch: bool) -> None:
    """Three runs of two tasks with a repeated and a per-task value: the runs begun and
    ended through the batch or through the writer."""
    w = Writer(store)
    with w.bulk(), w.task_batch(size=4) as batch:
        for k in (1, 2, 3):
            begin = dict(
                user_name="u",
                user_tags=["exp"] if k != 2 else [],
                system_tags=["user:u"],
                run_number=str(k),
                ts_epoch=1000 * k,
            )
            run = w.begin_run("F", **begin, batch=batch if runs_in_batch else None)
            for tid, step in enumerate(("start", "end")):
                batch.add(
                    run,
                    step,
                    str(tid),
                    artifacts={"x": batch.prepare([k, "same"]), "t": batch.prepare(tid * 0.5)},
                    task_ok=True,
                    success=k != 3 or step != "end",
                    started_at=1000 * k + tid,
                    ended_at=1000 * k + tid + 1,
                    metadata=[MetadataEntry("user", "u", attempt=0, ts_epoch=5)],
                )
            if k != 2:  # run 2 is left running
                w.end_run(
                    run,
                    successful=k == 1,
                    ts_epoch=1000 * k + 9,
                    checkpoint=False,
                    batch=batch if runs_in_batch else None,
                )


def test_runs_begun_and_ended_in_the_batch_are_what_the_writer_writes(tmp_path: Path) -> None:
    got = _both(tmp_path, _runs_history)
    assert [r[:2] for r in got[True]["mf_runs"]] == [("F", "1"), ("F", "2"), ("F", "3")]
    for view in VIEWS:
        assert got[True][view] == got[False][view], view


def test_batch_refuses_a_run_number_the_file_or_the_batch_has(tmp_path: Path) -> None:
    with Store(tmp_path / "f.mfdb", create=True) as store:
        w = Writer(store)
        w.begin_run("F", user_name="u", run_number="1")
        for taken in ("1", "2"):  # in the file; in the batch, not written yet
            with (
                pytest.raises(MetaflowInternalError, match=f"F/{taken} already exists"),
                w.bulk(),
                w.task_batch() as batch,
            ):
                w.begin_run("F", user_name="u", run_number="2", ts_epoch=1, batch=batch)
                w.begin_run("F", user_name="u", run_number=taken, ts_epoch=1, batch=batch)
        assert store.query("SELECT run_number FROM runs") == [("1",)]
        with w.bulk(), w.task_batch() as batch:  # a new id is drawn for each run
            drawn = {w.begin_run("F", user_name="u", batch=batch).run_number for _ in "ab"}
        assert len(drawn) == 2
        assert store.scalar("SELECT count(*) FROM runs") == 3


def test_batch_names_the_run_number_the_file_has_not_one_it_wrote(tmp_path: Path) -> None:
    """The batch's runs written before the taken one (in the same transaction) are not
    taken for it: the refusal names the run the file had."""
    with Store(tmp_path / "f.mfdb", create=True) as store:
        w = Writer(store)
        w.begin_run("F", user_name="u", run_number="5")
        with (
            pytest.raises(MetaflowInternalError, match="F/5 already exists"),
            w.bulk(),
            w.task_batch() as batch,
        ):
            for number in ("0", "1", "5"):
                w.begin_run("F", user_name="u", run_number=number, ts_epoch=1, batch=batch)
        assert store.query("SELECT run_number FROM runs") == [("5",)]


def test_a_value_prepared_again_in_a_batch_is_stored_once(tmp_path: Path) -> None:
    """A foreach hands the same value to many tasks: the batch prepares it once (the same
    sha, type and JSON as ``prepare_artifact``), stores one blob, and every task's
    artifact points at it; a changed value is a new blob."""
    items = list(range(600))
    with Store(tmp_path / "f.mfdb", create=True) as store:
        w = Writer(store)
        with w.bulk(), w.task_batch(size=7) as batch:
            run = w.begin_run("F", user_name="u", run_number="1", ts_epoch=1, batch=batch)
            for tid in range(20):
                art = batch.prepare(items)
                assert (art.sha, art.type, art.value_json) == (
                    prepare_artifact(items).sha,
                    "builtins.list",
                    prepare_artifact(items).value_json,
                )
                arts = {"items": art, "i": batch.prepare(tid % 3), "ok": batch.prepare(True)}
                batch.add(
                    run,
                    "work",
                    str(tid),
                    artifacts=arts,
                    task_ok=True,
                    success=True,
                    started_at=1,
                    ended_at=2,
                )
            items.append(600)  # the same list object, changed: prepared afresh
            batch.add(
                run,
                "end",
                "20",
                artifacts={"items": batch.prepare(items)},
                task_ok=True,
                success=True,
                started_at=1,
                ended_at=2,
            )
            w.end_run(run, successful=True, ts_epoch=3, batch=batch)
        with Store(store.path) as reader:
            blobs = reader.query("SELECT value_json FROM blobs ORDER BY blob_id")
            assert len(blobs) == 1 + 3 + 1 + 1  # items, i in 0..2, True, items + [600]
            rows = reader.query("SELECT task_id, name, sha, value_json FROM mf_artifacts")
        shas = {(tid, name): sha for tid, name, sha, _ in rows}
        assert len(rows) == 20 * 3 + 1
        assert {shas[(str(t), "items")] for t in range(20)} == {prepare_artifact(items[:600]).sha}
        assert shas[("20", "items")] == prepare_artifact(items).sha
        assert {shas[(str(t), "i")] for t in range(20)} == {
            prepare_artifact(i).sha for i in range(3)
        }
        from mfstore.blobs import verify_blobs

        assert verify_blobs(store) == []


def test_the_json_form_of_small_values_is_json_dumps_text() -> None:
    """Numbers, constants and short flat lists get their JSON text without the encoder:
    exactly ``json.dumps``'s; what it refuses (nan, inf) has none."""
    import json

    from mfstore.artifacts import to_json

    nan, inf = float("nan"), float("inf")
    for value in (
        0,
        -7,
        10**30,
        1.5,
        -0.0,
        0.1,
        1e300,
        5e-324,
        True,
        None,
        [],
        (),
        [1, 2.5, False, None],
        (3, -4.25),
        [1, "a", {"k": [2]}],
        ["é", 3],
        list(range(100)),
    ):
        assert to_json(value) == json.dumps(value, ensure_ascii=False), value
    for value in (nan, inf, -inf, [1, nan], (inf,)):
        assert to_json(value) is None, value
