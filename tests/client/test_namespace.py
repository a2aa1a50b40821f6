"""Namespaces: defaults, `in` vs `[]`, objects keeping theirs, None and ''."""

from __future__ import annotations

import pytest

from mfstore import Flow, Metaflow, Run, Task, default_namespace, get_namespace, namespace
from mfstore.client.namespace import UNSET
from mfstore.exception import MetaflowNamespaceMismatch, MetaflowUnknownUser


def test_default_namespace_is_lazy_user(monkeypatch):
    assert get_namespace() == "user:alice"
    monkeypatch.setenv("METAFLOW_USER", "bob")
    assert get_namespace() == "user:alice"  # resolved once
    assert default_namespace() == "user:bob"
    monkeypatch.setenv("METAFLOW_PRODUCTION_TOKEN", "tok-1")
    assert default_namespace() == "production:tok-1"


def test_unknown_user_raised_at_first_get_namespace(monkeypatch):
    import mfstore  # import works without a user

    monkeypatch.delenv("METAFLOW_USER")
    monkeypatch.setenv("USER", "root")
    with pytest.raises(
        MetaflowUnknownUser, match=r"could not determine your user name.*set METAFLOW_USER"
    ):
        mfstore.get_namespace()
    assert repr(UNSET) == "<namespace not resolved yet>" and not UNSET


@pytest.mark.parametrize("value, expected", [("user:bob", "user:bob"), ("", None)])
def test_env_initial_namespace(monkeypatch, value, expected):
    monkeypatch.setenv("MFSTORE_NAMESPACE", value)
    assert get_namespace() == expected


def test_in_vs_getitem(history):
    mine = history.run(user="alice")
    theirs = history.run(user="bob")
    flow = Flow("HelloFlow")
    assert [r.id for r in flow] == [mine.run_number]
    assert theirs.run_number in flow
    with pytest.raises(MetaflowNamespaceMismatch, match=r"^Object not in namespace 'user:alice'$"):
        flow[theirs.run_number]
    with pytest.raises(KeyError):
        flow["42"]
    assert flow[mine.run_number].id == mine.run_number
    with pytest.raises(MetaflowNamespaceMismatch):
        Run(theirs.pathspec)
    with pytest.raises(MetaflowNamespaceMismatch):
        Task(theirs.pathspec + "/start/1")


def test_flow_needs_a_run_in_namespace(history):
    history.run(user="bob")
    with pytest.raises(MetaflowNamespaceMismatch, match="user:alice"):
        Flow("HelloFlow")
    assert Metaflow().flows == []
    namespace("user:bob")
    assert [f.id for f in Metaflow().flows] == ["HelloFlow"]
    assert Flow("HelloFlow").latest_run is not None


def test_namespace_none_and_objects_keep_theirs(history):
    bob = history.run(user="bob")
    namespace(None)
    run = Run(bob.pathspec)
    flow = Flow("HelloFlow")
    namespace("user:alice")
    # created under None: never checked, children neither
    assert run["start"].task["step_no"].data == 0
    assert [r.id for r in flow] == [bob.run_number]
    assert flow[bob.run_number].id == bob.run_number
    assert run.is_in_namespace() is False  # uses the global namespace
    namespace("user:bob")
    assert run.is_in_namespace() is True
    run2 = Run(bob.pathspec)
    namespace("user:alice")
    assert run2["start"].id == "start"  # keeps user:bob


def test_empty_namespace_hides_everything(history):
    r = history.run()
    namespace("")
    assert get_namespace() == ""
    with pytest.raises(MetaflowNamespaceMismatch, match=r"^Object not in namespace ''$"):
        Flow("HelloFlow")
    with pytest.raises(MetaflowNamespaceMismatch):
        Run(r.pathspec)
    assert Metaflow().flows == []


def test_tag_as_namespace(history):
    a = history.run(tags=["exp1"])
    history.run(tags=["exp2"])
    history.run(user="bob", tags=["exp1"])
    namespace("exp1")
    assert len(list(Flow("HelloFlow"))) == 2
    namespace("runtime:dev")  # a system tag works too
    assert len(list(Flow("HelloFlow"))) == 3
    namespace("user:alice")
    assert [r.id for r in Flow("HelloFlow").runs("exp1")] == [a.run_number]
    assert list(Flow("HelloFlow").runs("exp1", "exp2")) == []
    assert list(Flow("HelloFlow").runs("unknown")) == []


def test_production_run_has_no_user_tag(history):
    prod = history.run(user="alice", system_tags=["production:tok-1"])
    namespace("production:tok-1")
    assert Flow("HelloFlow").latest_run.id == prod.run_number
    namespace("user:alice")
    with pytest.raises(MetaflowNamespaceMismatch):
        Run(prod.pathspec)
