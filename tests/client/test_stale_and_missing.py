"""A long-lived reader stays right when other processes change the file; reading a file
that is not there says which file was looked for (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfstore import Flow, Metaflow, Run, namespace, provider
from mfstore.exception import InvalidMetadataError, MetaflowNotFound
from mfstore.sharing import RunFilter, delete


def test_a_reused_tag_set_id_never_shows_another_runs_tags(history) -> None:
    namespace(None)
    history.run(tags=["a"])
    doomed = history.run(tags=["b"])
    assert Run(doomed.pathspec).user_tags == frozenset({"b"})  # the reader caches what it saw
    old_tagset = history.store.scalar(
        "SELECT tagset_id FROM runs WHERE run_pk = ?", (doomed.run_pk,)
    )
    delete(history.path, RunFilter(pathspecs=[doomed.pathspec]))  # drops tag set {b}
    new = history.run(tags=["c"])
    # the flaw needs the id to come back; make sure this test exercises it
    assert (
        history.store.scalar("SELECT tagset_id FROM runs WHERE run_pk = ?", (new.run_pk,))
        == old_tagset
    )
    assert Run(new.pathspec).user_tags == frozenset({"c"})
    assert [(r.id, "c" in r.tags) for r in Flow("HelloFlow").runs("c")] == [(new.run_number, True)]
    assert list(Flow("HelloFlow").runs("b")) == []


def test_a_reader_sees_runs_merged_in_and_flows_deleted_by_others(history, tmp_path: Path) -> None:
    from tests.client.conftest import History

    namespace(None)
    history.run("KeepFlow", tags=["k"])
    gone = history.run("GoneFlow", tags=["g"])
    assert [f.id for f in Metaflow().flows] == ["GoneFlow", "KeepFlow"]
    assert [r.id for r in Flow("KeepFlow").runs("k")] != []
    delete(history.path, RunFilter(pathspecs=[gone.pathspec]))
    assert [f.id for f in Metaflow().flows] == ["KeepFlow"]
    with pytest.raises(MetaflowNotFound):
        Flow("GoneFlow")
    other = History(tmp_path / "other.mfdb")
    added = other.run("KeepFlow", tags=["k"], run_number="999")
    other.store.close()
    from mfstore.sharing import merge

    merge(other.path, history.path)
    assert added.run_number in [r.id for r in Flow("KeepFlow").runs("k")]


def test_mfstore_db_naming_a_missing_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.mfdb"
    monkeypatch.setenv("MFSTORE_DB", str(missing))
    provider.reset()
    with pytest.raises(MetaflowNotFound, match=f"{missing}.*MFSTORE_DB.*does not exist"):
        _ = Metaflow().flows
    with pytest.raises(MetaflowNotFound, match="does not exist"):
        Flow("X")
    assert not missing.exists()  # reading never creates it


def test_no_file_found_names_the_file_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    provider.reset()
    with pytest.raises(MetaflowNotFound, match=f"No metaflow.mfdb found in {tmp_path}"):
        Flow("X")
    assert not (tmp_path / "metaflow.mfdb").exists()


def test_metadata_errors_are_mfstore_errors(tmp_path: Path) -> None:
    with pytest.raises(MetaflowNotFound, match="Could not find the mfstore file"):
        provider.metadata(str(tmp_path / "missing.mfdb"))
    with pytest.raises(InvalidMetadataError, match="no metadata service"):
        provider.metadata("https://example.com/api")
    with pytest.raises(InvalidMetadataError, match="not supported"):
        provider.metadata("service@x")
