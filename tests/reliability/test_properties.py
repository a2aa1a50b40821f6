"""Bad input (issue 7): Hypothesis generates tags, tag filters, namespaces and pathspecs;
every Client API call either gives the answer of a plain Python model of the same runs or
raises the documented exception, and no user value is ever formatted into SQL."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

NASTY = [
    "",
    "a" * 500,
    "b" * 501,
    "\ud800",
    "x\udfffy",
    "'; DROP TABLE runs; --",
    "ünïcøde-ταγ",
    "user:alice",
    "a%b_c",
    "tag with spaces",
    "' OR 1=1 --",
    "\x00nul",
]
tags = st.one_of(
    st.sampled_from(NASTY),
    st.text(min_size=1, max_size=12),
    st.binary(max_size=4),
    st.integers(0, 3),
)
run_specs = st.lists(
    st.tuples(st.sampled_from(["alice", "bob"]), st.lists(tags, max_size=4)), min_size=1, max_size=5
)


def is_valid(tag: object) -> bool:
    if not isinstance(tag, str) or not tag or len(tag) > 500:
        return False
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _static_sql_text() -> str:
    """Text every legitimate SQL statement is made of: the schema and the modules that hold SQL."""
    import mfstore

    root = Path(mfstore.__file__).parent
    from mfstore.migrations import load_schema_sql

    return load_schema_sql() + "".join(f.read_text() for f in root.rglob("*.py"))


_STATIC = _static_sql_text()


def _distinctive(tag: object) -> bool:
    # A value that occurs in the package's own SQL text (e.g. 'code_s' in 'code_sha')
    # would match without having been formatted in.
    return isinstance(tag, str) and len(tag) >= 6 and is_valid(tag) and tag not in _STATIC


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    specs=run_specs,
    filters=st.lists(tags, max_size=3),
    ns=st.one_of(st.none(), st.sampled_from(["user:alice", "user:bob", "shared", ""]), tags),
    edit_add=st.lists(tags, max_size=3),
    edit_remove=st.lists(tags, max_size=2),
    pathspec=st.one_of(st.text(max_size=30), st.sampled_from(["F", "F/", "F/1/2", "//", "F/0"])),
)
def test_client_matches_model(specs, filters, ns, edit_add, edit_remove, pathspec) -> None:
    import mfstore
    from mfstore import provider
    from mfstore.exception import (
        MetaflowInvalidPathspec,
        MetaflowNamespaceMismatch,
        MetaflowNotFound,
        MetaflowTaggingError,
    )
    from mfstore.store import Store
    from mfstore.writer import Writer

    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "p.mfdb"
        model: list[dict] = []  # newest last
        with Store(db, create=True) as store:
            w = Writer(store)
            for i, (user, run_tags) in enumerate(specs):
                system = {f"user:{user}"}
                if all(is_valid(t) for t in run_tags) and len(set(run_tags)) <= 50:
                    run = w.begin_run(
                        "F",
                        user_name=user,
                        user_tags=run_tags,
                        system_tags=system,
                        ts_epoch=1_000 + i,
                    )
                    model.append({"id": run.run_number, "user": set(run_tags), "system": system})
                else:
                    try:
                        w.begin_run(
                            "F",
                            user_name=user,
                            user_tags=run_tags,
                            system_tags=system,
                            ts_epoch=1_000 + i,
                        )
                    except MetaflowTaggingError:
                        pass
                    else:
                        raise AssertionError(f"invalid tags accepted: {run_tags!r}")
        if not model:
            return
        executed: list[str] = []
        provider.reset()
        mfstore.metadata(str(db))
        client_store = provider.current_store()
        tracing = client_store.tracer(lambda sql, params: executed.append(sql))
        tracing.__enter__()
        try:
            mfstore.namespace(None)
            # runs(*tags): all-of over user+system tags, newest first
            expected = [
                r["id"]
                for r in reversed(model)
                if all(t in r["user"] | r["system"] for t in filters)
            ]
            if all(isinstance(t, str) for t in filters):
                assert [r.id for r in mfstore.Flow("F").runs(*filters)] == expected
            # namespaces
            mfstore.namespace(ns)
            visible = [
                r["id"] for r in reversed(model) if ns is None or ns in r["user"] | r["system"]
            ]
            if not isinstance(ns, (str, type(None))):
                pass  # namespace() takes any value; only str/None are meaningful
            elif visible:
                flow = mfstore.Flow("F")
                assert [r.id for r in flow] == visible
                assert flow.latest_run.id == visible[0]
            else:
                try:
                    mfstore.Flow("F")
                except MetaflowNamespaceMismatch:
                    pass
                else:
                    raise AssertionError(f"Flow visible in namespace {ns!r} without runs")
            mfstore.namespace(None)
            # tag edits on the newest run
            target = model[-1]
            run = mfstore.Run("F/{}".format(target["id"]))
            rm, add = list(edit_remove), list(edit_add)
            try:
                run.replace_tags(rm, add)
            except MetaflowTaggingError:
                ok = False
            else:
                ok = True
            valid_edit = (
                (rm or add)
                and all(is_valid(t) for t in rm + add)
                and not (set(rm) & target["system"])
            )
            new_user = (target["user"] - set(rm)) | (set(add) - target["system"])
            if valid_edit and len(new_user) > 50 and len(new_user) > len(target["user"]):
                valid_edit = False
            assert ok == bool(valid_edit), (rm, add)
            if ok:
                target["user"] = new_user
            assert set(mfstore.Run("F/{}".format(target["id"])).user_tags) == target["user"]
            assert set(run.user_tags) == target["user"]
            # pathspecs
            try:
                r = mfstore.Run(pathspec)
            except (MetaflowInvalidPathspec, MetaflowNotFound):
                pass
            else:
                assert r.pathspec == pathspec
        finally:
            tracing.__exit__(None, None, None)
            mfstore.namespace(None)
            provider.reset()
            provider.default_metadata()
        values = [
            t
            for t in [*filters, ns, *edit_add, *edit_remove, pathspec]
            + [t for _, ts in specs for t in ts]
            if _distinctive(t)
        ]
        for sql in executed:
            for value in values:
                assert value not in sql, (value, sql)
