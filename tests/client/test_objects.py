"""Flow / Run / Step / Task / DataArtifact members, ordering, errors, pickling."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from datetime import datetime
from pathlib import Path

import cloudpickle
import pytest

from mfstore import DataArtifact, Flow, Metaflow, MetaflowData, Run, Step, Task, namespace
from mfstore.artifacts import prepare_artifacts
from mfstore.exception import (
    MetaflowDataCorruption,
    MetaflowException,
    MetaflowExceptionWrapper,
    MetaflowInvalidPathspec,
    MetaflowNotFound,
)
from mfstore.writer import MetadataEntry


@pytest.mark.parametrize(
    "cls, arg, message",
    [
        (Flow, "A/B", "Expects Flow('FlowName')"),
        (Run, "A", "Expects Run('FlowName/RunID')"),
        (Step, "A/1", "Expects Step('FlowName/RunID/StepName')"),
        (Task, "A/1/s", "Expects Task('FlowName/RunID/StepName/TaskID')"),
        (
            DataArtifact,
            "A/1/s/1",
            "Expects DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')",
        ),
    ],
)
def test_pathspec_arity_errors(history, cls, arg, message):
    with pytest.raises(MetaflowInvalidPathspec) as e:
        cls(arg)
    assert str(e.value) == message


def test_not_found_messages(history):
    history.run()
    with pytest.raises(MetaflowNotFound, match=r"^Flow\('Nope'\) does not exist$"):
        Flow("Nope")
    with pytest.raises(MetaflowNotFound, match=r"^Run\('HelloFlow/123'\) does not exist$"):
        Run("HelloFlow/123")
    with pytest.raises(
        MetaflowNotFound, match=r"^Task\('HelloFlow/1/start/1', attempt=2\) does not exist$"
    ):
        Task("HelloFlow/1/start/1", attempt=2)


@pytest.mark.parametrize(
    "attempt, message",
    [
        ("x", "Attempt can only be an integer"),
        (-1, "Attempt can only be non-negative"),
        (6, "Attempt can only be smaller than 6"),
    ],
)
def test_attempt_validation(history, attempt, message):
    r = history.run()
    with pytest.raises(MetaflowNotFound) as e:
        Task(r.pathspec + "/start/1", attempt=attempt)
    assert str(e.value) == message


def test_attempt_only_for_task_and_artifact(history):
    r = history.run()
    for cls, p in ((Run, r.pathspec), (Step, r.pathspec + "/start"), (Flow, "HelloFlow")):
        with pytest.raises(
            MetaflowNotFound, match=r"^Attempts can only be specified for Task or DataArtifact$"
        ):
            cls(p, attempt=0)
    assert (
        str(Task(r.pathspec + "/start/1", attempt=0)) == f"Task('{r.pathspec}/start/1', attempt=0)"
    )


def test_identity_members(history):
    r = history.run(tags=["t1"])
    run = Run(r.pathspec)
    assert run.id == r.run_number and isinstance(run.id, str)
    assert str(run) == repr(run) == f"Run('{r.pathspec}')"
    comps = run.path_components
    comps.append("x")
    assert run.path_components == ["HelloFlow", r.run_number]
    assert run.parent.pathspec == "HelloFlow" and run.parent.parent is None
    task = run["start"].task
    assert task.parent.pathspec == r.pathspec + "/start"
    assert task.parent.parent.pathspec == r.pathspec
    assert task.tags == run.tags == frozenset({"t1", "user:alice", "runtime:dev"})
    assert task.user_tags == frozenset({"t1"})
    assert task["step_no"].tags == run.tags
    assert Flow("HelloFlow").tags == frozenset() and Flow("HelloFlow").user_tags == frozenset()
    assert run.created_at == datetime.fromtimestamp(1_700_000_000_000 / 1000)
    assert run.created_at.tzinfo is None
    assert str(Metaflow()) == "Metaflow()"


def test_flows_sorted_and_getitem(history):
    for name in ("ZFlow", "AFlow", "MFlow"):
        history.run(name)
    assert [f.id for f in Metaflow().flows] == ["AFlow", "MFlow", "ZFlow"]
    assert [f.id for f in Metaflow()] == ["AFlow", "MFlow", "ZFlow"]
    assert Metaflow()["MFlow"].pathspec == "MFlow"
    with pytest.raises(MetaflowNotFound):
        Metaflow()["Nope"]


def test_run_order_newest_first_ties_by_id(history):
    a = history.run(run_number="100", ts=5000)
    b = history.run(run_number="200", ts=5000)
    c = history.run(run_number="150", ts=9000)
    assert [r.id for r in Flow("HelloFlow")] == [c.run_number, b.run_number, a.run_number]
    assert Flow("HelloFlow").latest_run.id == "150"


def test_latest_successful_run_and_status(history):
    ok = history.run()
    failed = history.run(status="failed")
    running = history.run(status="running")
    f = Flow("HelloFlow")
    assert f.latest_run.id == running.run_number
    assert f.latest_successful_run.id == ok.run_number
    r = Run(failed.pathspec)
    assert r.finished is True and r.successful is False  # mfstore: finished once ended
    assert r.finished_at == datetime.fromtimestamp((r._ts + 100) / 1000)
    assert r.end_task.finished is True and r.end_task.successful is False
    rr = Run(running.pathspec)
    assert rr.finished is False and rr.successful is False and rr.finished_at is None
    assert rr.end_task.finished is False and rr.end_task.finished_at is None
    assert list(rr.end_task) == []


def test_steps_order_and_parameters_hidden(history):
    r = history.run()
    run = Run(r.pathspec)
    assert [s.id for s in run] == ["end", "start"]
    assert [s.id for s in run.steps()] == ["end", "start"]
    assert "_parameters" in run
    params = run["_parameters"].task
    assert params.id == "0" and params["name"].data == "HelloFlow"
    assert {k: params.metadata_dict[k] for k in ("start_step", "end_step")} == {
        "start_step": "start",
        "end_step": "end",
    }
    assert "nope" not in run
    with pytest.raises(KeyError):
        run["nope"]
    assert list(run.steps("t-none")) == []
    assert [s.id for s in run.steps("user:alice")] == ["end", "start"]


def test_steps_recorded_in_one_millisecond_list_the_later_first(history):
    """As their creation times would sort them (Metaflow: ``created_at`` descending): a
    resume clones its steps before it runs any, often in the same millisecond."""
    r = history.run()
    ts = history.tick()
    for step in ("zeta", "b", "a"):
        history.writer.add_task(r, step, ts_epoch=ts)
    assert [s.id for s in Run(r.pathspec)] == ["a", "b", "zeta", "end", "start"]


def test_config_values_older_mfstore_recorded_read_as_plain_dicts(history):
    """Older mfstore recorded a run's Config values as ConfigValues (Metaflow, and mfstore
    now, record plain dicts): read as dicts, by the restricted loader too. A ConfigValue a
    step stored under another name stays one, as Metaflow's would."""
    from mfstore.runtime.config import ConfigValue

    cfg = ConfigValue({"a": {"b": 1}, "items": [1, {"c": 2}]})
    r = history.run(parameters={"cfg": cfg}, values={"cfg": cfg, "copy": cfg})
    run = Run(r.pathspec)
    plain = {"a": {"b": 1}, "items": [1, {"c": 2}]}
    for task in (run["_parameters"].task, run["start"].task, run["end"].task):
        art = task["cfg"]
        assert art._type == "mfstore.runtime.config.ConfigValue"  # as it was recorded
        for value in (art.data, art.data_safe, task.data.cfg):
            assert type(value) is dict and type(value["a"]) is dict and value == plain
    assert type(run.data.cfg) is dict
    assert type(run["end"].task["copy"].data) is ConfigValue


def test_old_config_values_that_are_not_plain_data(history):
    """``.data`` of an old Config value the restricted loader refuses loads it as ``.data``
    loads any value: a ConfigValue (a parser's non-plain value inside) as a dict, and a
    value whose recorded type lies (a damaged file) as what it is, not an AttributeError."""
    from collections import Counter
    from ipaddress import IPv4Address

    from mfstore.exception import UnsafeArtifactError
    from mfstore.runtime.config import ConfigValue

    cfg = ConfigValue({"host": IPv4Address("10.0.0.1")})
    lying = Counter("xyy")
    r = history.run(parameters={"cfg": cfg, "other": lying}, values={"cfg": cfg, "other": lying})
    old_type = "mfstore.runtime.config.ConfigValue"
    history.store.execute("INSERT OR IGNORE INTO types (name) VALUES (:t)", {"t": old_type})
    history.store.execute(
        "UPDATE blobs SET type_id = (SELECT type_id FROM types WHERE name = :t) "
        "WHERE type_id = (SELECT type_id FROM types WHERE name = 'collections.Counter')",
        {"t": old_type},
    )
    start = Run(r.pathspec)["start"].task
    value = start["cfg"].data
    assert type(value) is dict and value == {"host": IPv4Address("10.0.0.1")}
    assert start["other"]._type == old_type and start["other"].data == lying
    with pytest.raises(UnsafeArtifactError):
        start["cfg"].data_safe


def test_custom_end_step(history):
    r = history.run(end_step="finish", values={"result": 42})
    run = Run(r.pathspec)
    assert run.end_task.pathspec == r.pathspec + "/finish/2"
    assert run.data.result == 42


def test_step_task_is_newest(history):
    r = history.run()
    w = history.writer
    t5 = w.add_task(r, "start", "5", ts_epoch=1)  # created long ago
    t6 = w.add_task(r, "start", "6", ts_epoch=10**13)  # newest
    step = Step(r.pathspec + "/start")
    assert step.task.id == t6.task_id
    assert [t.id for t in step] == ["6", "1", "5"]
    assert [t.id for t in step.tasks()] == ["6", "1", "5"]
    assert step.finished_at is None  # unfinished tasks
    assert t5.task_id in step and "99" not in step


def test_step_finished_at_and_graph(history):
    r = history.run()
    run = Run(r.pathspec)
    assert run["start"].finished_at == run["start"].task.finished_at
    assert [s.id for s in run["start"].child_steps] == ["end"]
    assert [s.id for s in run["end"].parent_steps] == ["start"]
    assert list(run["start"].parent_steps) == []
    assert list(run["end"].child_steps) == []
    assert run["start"].control_task is None
    assert run["start"].environment_info is None


def test_task_artifacts_private_hidden(history):
    r = history.run(values={"x": 1, "y": "two"})
    task = Run(r.pathspec)["end"].task
    names = [a.id for a in task]
    assert set(names) == {"name", "step_no", "x", "y"}
    assert "_graph_info" in task and task["_success"].data is True
    with pytest.raises(KeyError):
        task["missing"]
    data = task.data
    assert isinstance(data, MetaflowData)
    assert data.x == 1 and "y" in data and "_success" not in data
    with pytest.raises(AttributeError):
        _ = data.missing
    assert "x" in dir(data)
    assert str(data).startswith("<MetaflowData: ")
    arts = task.artifacts
    assert arts.x.data == 1 and type(arts).__name__ == "MetaflowArtifacts"
    assert task.successful and task.finished and task.exception is None and task.index is None
    assert task.runtime_name == "dev"
    assert task.origin_pathspec is None and Run(r.pathspec).origin_pathspec is None
    assert Run(r.pathspec)["end"].origin_pathspec is None


def test_data_artifact_members(history):
    r = history.run(values={"x": 42})
    art = DataArtifact(r.pathspec + "/end/2/x")
    raw = cloudpickle.dumps(42, protocol=4)
    assert art.sha == hashlib.sha1(raw).hexdigest()
    assert art.size == len(raw) == 5
    assert art.data == 42 and art.load_safe() == 42 and art.data_safe == 42
    assert art.finished_at == art.created_at
    assert art.parent.pathspec == r.pathspec + "/end/2"
    assert art.origin_pathspec is None


def test_metadata_and_attempts(history):
    r = history.run(status="running")
    w = history.writer
    task = w.add_task(r, "retry", ts_epoch=10**12)
    w.begin_attempt(
        task, 0, ts_epoch=10**12, metadata=[MetadataEntry("attempt", "0", "attempt", 0, 10**12)]
    )
    w.add_log_lines(task, 0, "stdout", [(10**15, "first try")])
    w.add_log_lines(task, 0, "stderr", [(10**15 + 1, "boom")])
    w.end_attempt(
        task,
        0,
        artifacts=prepare_artifacts({"v": 0, "_task_ok": False}),
        task_ok=False,
        success=False,
        ts_epoch=10**12 + 1,
    )
    w.begin_attempt(
        task,
        1,
        ts_epoch=10**12 + 2,
        metadata=[
            MetadataEntry("attempt", "1", "attempt", 1, 10**12 + 2),
            MetadataEntry("foreach-stack", ["outer=2", "inner=y"], "foreach-stack", 1, 10**12 + 2),
        ],
    )
    w.add_log_lines(
        task, 1, "stdout", [(10**15 + 5, "second try"), (10**15 + 3, "early")], source="runtime"
    )
    t = Task(task.pathspec)
    # artifacts from the latest *done* attempt, logs from the latest *started*
    assert t.current_attempt == 1
    assert t["v"].data == 0 and t.finished is True and t.successful is False
    assert t.stdout == "early\nsecond try\n"
    assert t.stdout_size == len("early\nsecond try\n")
    assert t.stderr == "" and t.stderr_size == 0
    lines = list(t.loglines("stdout"))
    assert lines[0] == (
        datetime(1970, 1, 1)
        + (datetime.fromtimestamp(0, tz=None) - datetime.fromtimestamp(0))
        + __import__("datetime").timedelta(microseconds=10**15 + 3),
        "early",
    )
    assert lines[0][0].tzinfo is None
    assert list(t.loglines("stdout", as_unicode=False))[1][1] == b"second try"
    md = t.metadata_dict
    assert md["attempt"] == "1" and md["foreach-stack"] == ["outer=2", "inner=y"]
    assert md["attempt_ok"] == "False"
    names = [m.name for m in t.metadata]
    assert names.count("attempt") == 2
    m0 = t.metadata[0]
    assert isinstance(m0.created_at, int) and m0.task is t
    t0 = Task(task.pathspec, attempt=0)
    assert t0.current_attempt == 0 and t0.stdout == "first try\n" and t0.stderr == "boom\n"
    assert [m.name for m in t0.metadata] == ["attempt", "attempt_ok", "attempt-done"]
    t1 = Task(task.pathspec, attempt=1)
    assert list(t1) == [] and t1.finished is False and t1.finished_at is None
    # a non-existent attempt constructs an empty task
    t4 = Task(task.pathspec, attempt=4)
    assert (
        list(t4) == [] and t4.metadata_dict == {} and t4.successful is False and t4.stdout == "\n"
    )
    assert t4.current_attempt == 4


def test_exception_and_index(history):
    r = history.run(status="running")
    w = history.writer
    task = w.add_task(r, "work", ts_epoch=10**12)
    w.begin_attempt(task, 0, ts_epoch=10**12)
    try:
        raise ValueError("bad value")
    except ValueError as exc:
        wrapper = MetaflowExceptionWrapper(exc)
    from mfstore.artifacts import ForeachFrame

    w.end_attempt(
        task,
        0,
        artifacts=prepare_artifacts(
            {
                "_exception": wrapper,
                "_foreach_stack": [ForeachFrame("start", "items", 3, 2, "c")],
            }
        ),
        task_ok=False,
        success=False,
        ts_epoch=10**12 + 1,
    )
    t = Task(task.pathspec)
    assert t.exception.type == "builtins.ValueError" and t.exception.exception == "bad value"
    assert "ValueError" in str(t.exception)
    assert t.index == 2


def test_foreach_lineage(history):
    r = history.run(status="running")
    w = history.writer
    graph = {
        "start_step": "start",
        "end_step": "end",
        "steps": {
            "split": {"type": "split-foreach", "next": ["work"]},
            "work": {"type": "linear", "next": ["join"]},
            "join": {"type": "join", "next": ["end"]},
        },
    }

    def task(step, path=None):
        t = w.add_task(r, step, ts_epoch=10**12)
        w.begin_attempt(t, 0, ts_epoch=10**12)
        md = [MetadataEntry("foreach-execution-path", path, attempt=0)] if path else []
        w.end_attempt(
            t,
            0,
            artifacts=prepare_artifacts({"_graph_info": graph}),
            task_ok=True,
            success=True,
            metadata=md,
        )
        return t

    split = task("split")
    works = [task("work", f"split:{i}") for i in range(3)]
    join = task("join")
    assert list(Task(split.pathspec).child_task_pathspecs) == [t.pathspec for t in works]
    assert list(Task(works[1].pathspec).parent_task_pathspecs) == [split.pathspec]
    assert list(Task(works[1].pathspec).child_task_pathspecs) == [join.pathspec]
    assert sorted(Task(join.pathspec).parent_task_pathspecs) == sorted(t.pathspec for t in works)
    assert [t.pathspec for t in Task(join.pathspec).parent_tasks] == [t.pathspec for t in works]
    assert [t.pathspec for t in Task(split.pathspec).child_tasks] == [t.pathspec for t in works]
    unfinished = w.add_task(r, "work", ts_epoch=10**12)
    with pytest.raises(KeyError):
        list(Task(unfinished.pathspec).parent_task_pathspecs)


def test_resume_origins(history):
    origin = history.run()
    w = history.writer
    # A resumed run whose start step is cloned from the origin's.
    new = w.begin_run(
        "HelloFlow",
        user_name="alice",
        system_tags=["user:alice"],
        origin_run_number=origin.run_number,
    )
    start_pk = history.store.scalar(
        "SELECT task_pk FROM tasks WHERE run_pk = ? AND step_name = 'start'", (origin.run_pk,)
    )
    clone = w.clone_task(new, start_pk)
    assert clone.pathspec == new.pathspec + "/start/1"  # the origin's task id
    run = Run(new.pathspec)
    assert run.origin_pathspec == origin.pathspec
    assert run["start"].origin_pathspec == origin.pathspec + "/start"
    t = Task(clone.pathspec)
    assert t.origin_pathspec == origin.pathspec + "/start/1"
    assert t["step_no"].data == 0 and t.stdout == ""
    assert t["step_no"].origin_pathspec == origin.pathspec + "/start/1/step_no"
    assert t.metadata_dict["attempt"] == "0"  # copied from the origin


def test_code_package(history):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        src = b"from mfstore import FlowSpec\n"
        info = tarfile.TarInfo("flow.py")
        info.size = len(src)
        tar.addfile(info, io.BytesIO(src))
    sha = history.writer.put_code_package(
        buf.getvalue(), script_name="flow.py", info={"python": "3.11"}
    )
    r = history.run(code_sha=sha)
    code = Run(r.pathspec).code
    assert code.script_name == "flow.py" and code.flowspec == src.decode()
    assert code.info["python"] == "3.11" and code.info["script"] == "flow.py"
    assert code.tarball.getnames() == ["flow.py"]
    assert sha in code.path and str(code) == "<MetaflowCode: flow.py>"
    with code.extract() as d:
        assert Path(d, "flow.py").read_text() == src.decode()
    assert Task(r.pathspec + "/start/1").code.flowspec == src.decode()
    assert Run(history.run().pathspec).code is None


def test_code_is_never_extracted_without_tarfile_filters(history, monkeypatch):
    """A Python without tarfile's extraction filters (3.11.0-3.11.3) would extract a
    received package's links and absolute paths as they are: a one-line error instead."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("flow.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    sha = history.writer.put_code_package(buf.getvalue(), script_name="flow.py", info={})
    code = Run(history.run(code_sha=sha).pathspec).code
    monkeypatch.delattr(tarfile, "data_filter")
    with pytest.raises(MetaflowException, match=r"cannot extract a code package safely"):
        code.extract()
    monkeypatch.undo()
    with pytest.raises(MetaflowDataCorruption, match=r"code package is damaged.*absolute"):
        code.extract()
    for junk in (b"garbage" * 10, buf.getvalue()[:40], b"\x1f\x8b" + b"\0" * 30):
        sha = history.writer.put_code_package(junk, script_name="flow.py", info={})
        code = Run(history.run(code_sha=sha).pathspec).code
        with pytest.raises(MetaflowDataCorruption, match=r"^The code package is damaged: "):
            code.extract()
        with pytest.raises(MetaflowDataCorruption, match=r"^The code package is damaged: "):
            code.flowspec


def test_trigger(history):
    up = history.run("UpFlow")
    r = history.run()
    history.writer.add_trigger_events(
        Run(r.pathspec)._row and r,
        [
            {
                "name": "metaflow.UpFlow.end",
                "event_id": up.pathspec + "/end/2",
                "type": "run",
                "ts_epoch": 5000,
                "pathspec": up.pathspec,
            },
        ],
    )
    trig = Run(r.pathspec).trigger
    assert trig.event.name == "metaflow.UpFlow.end" and trig.event.type == "run"
    assert trig.event.timestamp == datetime.fromtimestamp(5)
    assert trig.run.pathspec == up.pathspec and trig["UpFlow"].pathspec == up.pathspec
    assert "UpFlow" in trig and "Other" not in trig
    assert len(trig.events) == 1 and list(trig) == trig.events
    r2 = history.run()
    history.writer.add_trigger_events(
        r2, [{"name": "data_ready", "event_id": "e1", "ts_epoch": 7000}]
    )
    t2 = Run(r2.pathspec).trigger
    assert t2.runs is None and t2.run is None and t2["data_ready"].id == "e1"
    assert Run(history.run().pathspec).trigger is None


def test_pickle_roundtrip_keeps_namespace(history):
    r = history.run()
    namespace("user:alice")
    for obj in (
        Flow("HelloFlow"),
        Run(r.pathspec),
        Step(r.pathspec + "/start"),
        Task(r.pathspec + "/start/1", attempt=0),
        DataArtifact(r.pathspec + "/start/1/step_no"),
    ):
        state = obj.__getstate__()
        assert state["version"] == "2.12.27" and state["data"][3] == "user:alice"
        copy = pickle.loads(pickle.dumps(obj))
        assert type(copy) is type(obj) and copy.pathspec == obj.pathspec and str(copy) == str(obj)
        assert copy._current_namespace == "user:alice"


def test_dedup_and_chunked_artifacts(history):
    import mfstore.blobs

    big = bytes(range(256)) * 40  # ~10 kB -> several chunks
    with mfstore.blobs.use_chunk_size(1000):
        r1 = history.run(values={"big": big})
        r2 = history.run("OtherFlow", values={"big": big})
    a1 = DataArtifact(r1.pathspec + "/end/2/big")
    a2 = DataArtifact(r2.pathspec + "/end/2/big")
    assert a1.sha == a2.sha and a1.data == big and a2.data == big
    key = bytes.fromhex(a1.sha)
    assert history.store.scalar("SELECT count(*) FROM blobs WHERE sha = ?", (key,)) == 1
    assert history.store.scalar("SELECT chunks FROM blobs WHERE sha = ?", (key,)) > 1
    assert a1.size == len(cloudpickle.dumps(big, protocol=4))
