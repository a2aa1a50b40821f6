"""Tag mutation rules (reference §1.5, T12) and mfstore's stable created_at."""

from __future__ import annotations

import pytest

from mfstore import Flow, Run
from mfstore.exception import MetaflowTaggingError


@pytest.fixture
def run(history):
    history.run(tags=["old"])
    r = history.run(tags=["keep"])
    first = Flow("HelloFlow").runs("old").__next__()
    return Run(first.pathspec), r


def test_add_remove_replace(run):
    run, _ = run
    run.add_tag("a")
    run.add_tags(["b", "c"])
    run.add_tags("abc")  # a plain string is one tag
    assert run.user_tags == {"old", "a", "b", "c", "abc"}
    run.remove_tag("a")
    run.remove_tags(["b", "nonexistent"])
    run.replace_tag("c", "d")
    run.replace_tags(["same"], ["same"])
    assert run.user_tags == {"old", "abc", "d", "same"}
    assert run.tags == run.user_tags | run.system_tags
    assert Run(run.pathspec).user_tags == run.user_tags
    run.add_tag(["legacy1", "legacy2"])
    assert {"legacy1", "legacy2"} <= run.user_tags


def test_errors(run):
    run, _ = run
    cases = [
        (lambda: run.remove_tags("abc"), "tags_to_remove may not be a string"),
        (lambda: run.replace_tags([], []), "Must add or remove at least one tag"),
        (lambda: run.add_tag(""), "Tags must not be empty string"),
        (lambda: run.add_tag("x" * 501), "Tag is too long 501 > 500"),
        (lambda: run.add_tag("\ud800"), "Tags must be UTF-8 encodable"),
        (lambda: run.add_tag(123), "tags_to_add must be iterable"),
        (
            lambda: run.remove_tag("user:alice"),
            "Cannot remove a tag that is an existing system tag (['user:alice'])",
        ),
    ]
    for call, message in cases:
        with pytest.raises(MetaflowTaggingError) as e:
            call()
        assert str(e.value) == message
    with pytest.raises(MetaflowTaggingError, match="bytes"):
        run.add_tag(b"bytes")
    assert run.user_tags == {"old"}


def test_limits_and_system_tags(run):
    run, _ = run
    run.add_tag("x" * 500)
    run.add_tag("ünïcøde-ταγ")
    run.add_tag("user:alice")  # already a system tag: silently not added
    assert "user:alice" not in run.user_tags and "ünïcøde-ταγ" in run.user_tags
    run.add_tags([f"t{i}" for i in range(47)])
    assert len(run.user_tags) == 50
    with pytest.raises(MetaflowTaggingError, match=r"^Cannot increase size of tag set beyond 50$"):
        run.add_tag("one-more")
    run.replace_tag("t0", "swap")  # not growing: allowed
    assert "swap" in run.user_tags


def test_tag_edit_keeps_created_at_and_order(run, history):
    old, newer = run
    before = old.created_at
    old.add_tag("bump")
    assert Run(old.pathspec).created_at == before
    assert Flow("HelloFlow").latest_run.id == newer.run_number  # not bumped (Metaflow issue #2293)
    assert [r.id for r in Flow("HelloFlow").runs("bump")] == [old.id]
    assert history.store.scalar("SELECT count(*) FROM tag_events") == 1
