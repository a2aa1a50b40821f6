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


def test_own_edit_is_what_the_object_shows_under_concurrent_edits(run, monkeypatch):
    """Metaflow's ``Run.add_tag`` keeps the tags its own mutation left (the provider's
    answer), so ``tag in run.user_tags`` holds right after ``run.add_tag(tag)`` even when
    another process edits the same run at that moment (Metaflow's test/core TagMutationTest
    does this from parallel branches). Here the other process's edit lands right after ours."""
    from mfstore.writer import Writer

    run, _ = run
    real = Writer.replace_user_tags
    other = Run(run.pathspec)

    def edit_then_concurrent_edit(self, run_pk, remove, add, **kw):
        result = real(self, run_pk, remove, add, **kw)
        if "mine" in add:  # the other process removes it before we look
            monkeypatch.setattr(Writer, "replace_user_tags", real)
            other.remove_tag("mine")
        return result

    monkeypatch.setattr(Writer, "replace_user_tags", edit_then_concurrent_edit)
    run.add_tag("mine")
    assert "mine" in run.user_tags and "mine" in run.tags
    assert run.user_tags == {"old", "mine"}
    assert "mine" not in Run(run.pathspec).user_tags  # the file has the other edit
    assert "mine" not in other.user_tags
    run.remove_tag("old")  # the next edit starts from the file's tags
    assert run.user_tags == set()
