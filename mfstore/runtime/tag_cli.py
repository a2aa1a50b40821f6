"""``python flow.py tag add|remove|replace|list``: Metaflow's tag commands on the .mfdb."""

from __future__ import annotations

from collections.abc import Callable, Set as AbstractSet
from typing import Any

import click

from mfstore import query
from mfstore.exception import CommandException

from .cli_common import State, echo_json, identity_and_user
from .console import echo

# -- tags -------------------------------------------------------------------------


def _run_tags(store: Any, run_pk: int) -> tuple[AbstractSet[str], AbstractSet[str]]:
    tagset = store.scalar(*query.compile_run_fields(run_pk, query.RunFields.TAGSET))
    return query.tag_groups(store.query(*query.compile_tagset(int(tagset))))


def _get_run_for_tagging(state: State, run_id: str | None, user_namespace: str | None) -> Any:
    """The run to tag, with Metaflow's messages; index lookups only (no scan of the flow's runs)."""
    from mfstore.writer import RunRef

    store = state.store(create=False)
    flow_name = state.flow_name
    if store.scalar(*query.compile_flow_has_runs(flow_name)) is None:
        raise CommandException(
            f"No run found for *{flow_name}*. Please run the flow before tagging."
        )
    wanted = [] if user_namespace is None else [user_namespace]
    latest = (
        store.one(*query.compile_runs(flow_name, wanted, latest=True))
        if query.storable(*wanted)
        else None
    )
    if latest is None:
        raise CommandException(
            f"No run found for *{flow_name}* in namespace *{user_namespace}*. You can switch "
            "the namespace using --namespace"
        )
    if run_id is None:
        raise CommandException(
            f"Please specify a run-id using --run-id.\n*{flow_name}*'s latest run in "
            f"namespace *{user_namespace}* has id *{latest[2]}*."
        )
    if "/" in run_id:
        raise CommandException(f"Run-id *{run_id}* is not a valid run-id")
    path_spec = f"{flow_name}/{run_id}"
    row = (
        store.one(*query.compile_run_lookup(flow_name, run_id)) if query.storable(run_id) else None
    )
    if row is None:
        raise CommandException(f"No run *{path_spec}* found for flow *{flow_name}*")
    if (
        user_namespace is not None
        and store.one(*query.compile_tagset_has(row[4], user_namespace)) is None
    ):
        raise CommandException(
            f"Run *{path_spec}* for flow *{flow_name}* does not belong to namespace *{user_namespace}*"
        )
    return RunRef(int(row[0]), flow_name, run_id)


def _print_run_tags(state: State, run: Any) -> None:
    user, system = _run_tags(state.store(), run.run_pk)
    _print_groups(state, {run.pathspec: system}, {run.pathspec: user | system}, by_tag=False)


def _print_groups(
    state: State, system_by: dict[str, Any], all_by: dict[str, Any], by_tag: bool
) -> None:
    if state.quiet:
        for group in sorted(set(all_by) | set(system_by)):
            if by_tag:
                if group in all_by:
                    click.echo("user:{} ; {}".format(group, ",".join(all_by[group])))
                if group in system_by:
                    click.echo("system:{} ; {}".format(group, ",".join(system_by[group])))
            else:
                click.echo("{} ; {}".format(group, ",".join(sorted(all_by.get(group, ())))))
        return
    lines = [
        "",
        "System tags and *tags*; only *tags* can be modified",
        "--------------------------------------------------------",
        "",
    ]
    for group in sorted(set(all_by) | set(system_by)):
        if by_tag:
            if group in all_by:
                lines.append(f"For tag *{group}*")
                lines += [f"    {p}" for p in all_by[group]]
            if group in system_by:
                lines.append(f"For tag {group}")
                lines += [f"    {p}" for p in system_by[group]]
        else:
            system = system_by.get(group, set())
            tags = sorted(all_by.get(group, set()))
            if len(all_by) > 1:
                lines.append(f"For run {group}")
            lines += ["    " + (t if t in system else f"*{t}*") for t in tags]
        lines.append("")
    echo("\n".join(lines), err=False)


@click.group(
    help="Commands related to tagging.\n\nExample: python flow.py tag add --run-id 12 nightly"
)
def tag() -> None:
    """The ``tag`` command group."""


def _tag_opts(f: Any) -> Any:
    f = click.option(
        "--namespace",
        "user_namespace",
        default=None,
        type=str,
        help="Change namespace from the default (your username) to the one specified.",
    )(f)
    f = click.option(
        "--run-id", default=None, type=str, help="Run ID of the specific run to tag. [required]"
    )(f)
    return f


def _mutate(
    state: State,
    run_id: str | None,
    user_namespace: str | None,
    remove: Any,
    add: Any,
    *,
    err: bool = True,
) -> None:
    from mfstore.identity import get_username
    from mfstore.writer import Writer

    identity = identity_and_user()[0] if user_namespace is None else user_namespace
    run = _get_run_for_tagging(state, run_id, identity)
    Writer(state.store()).replace_user_tags(
        run.run_pk, list(remove), list(add), user_name=get_username()
    )
    state.echo("Operation successful. New tags:", err=err)
    _print_run_tags(state, run)


def _edit_command(name: str, help: str, *, adding: bool) -> click.Command:
    """``tag add`` / ``tag remove``: the ``TAGS`` given are added to (removed from) the run."""

    @tag.command(name, help=help)
    @_tag_opts
    @click.argument("tags", required=True, type=str, nargs=-1)
    @click.pass_obj
    def edit(
        state: State, run_id: str | None, user_namespace: str | None, tags: tuple[str, ...]
    ) -> None:
        if adding:  # ``tag add`` lists the new tags on stdout, ``tag remove`` on stderr
            _mutate(state, run_id, user_namespace, [], tags, err=False)
        else:
            _mutate(state, run_id, user_namespace, tags, [])

    return edit


tag_add = _edit_command(
    "add",
    "Add tags to a run.\n\nExample: python flow.py tag add --run-id 12 nightly reviewed",
    adding=True,
)
tag_remove = _edit_command(
    "remove",
    "Remove tags from a run.\n\nExample: python flow.py tag remove --run-id 12 nightly",
    adding=False,
)


@tag.command(
    "replace",
    help="Replace tags of a run.\n\nExample: python flow.py tag replace --run-id 12 --remove draft --add final",
)
@_tag_opts
@click.option(
    "--add",
    "tags_to_add",
    multiple=True,
    help="Add this tag to a run. Must specify one or more tags to add.",
)
@click.option(
    "--remove",
    "tags_to_remove",
    multiple=True,
    help="Remove this tag from a run. Must specify one or more tags to remove.",
)
@click.pass_obj
def tag_replace(
    state: State,
    run_id: str | None,
    user_namespace: str | None,
    tags_to_add: Any,
    tags_to_remove: Any,
) -> None:
    """Remove ``--remove`` tags and add ``--add`` tags in one edit."""
    if not tags_to_add and not tags_to_remove:
        raise CommandException(
            "Specify at least one tag to add (--add) and one tag to remove (--remove)"
        )
    if not tags_to_remove:
        raise CommandException("Specify at least one tag to remove; else please use *tag add*.")
    if not tags_to_add:
        raise CommandException("Specify at least one tag to add, else please use *tag remove*.")
    _mutate(state, run_id, user_namespace, tags_to_remove, tags_to_add)


def _flag(
    *decls: str, help: str, hidden: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click on/off option (off by default)."""
    return click.option(*decls, is_flag=True, default=False, hidden=hidden, help=help)


@tag.command(
    "list", help="List tags of a run.\n\nExample: python flow.py tag list --all --group-by-tag"
)
@click.option("--run-id", default=None, type=str, help="Run ID of the specific run to list.")
@_flag("--all", "list_all", help="List tags across all runs of this flow.")
@_flag("--my-runs", help="List tags across all runs of the flow under the default namespace.")
@_flag("--hide-system-tags", help="Hide system tags.")
@_flag("--group-by-tag", help="Display results by showing runs grouped by tags")
@_flag("--group-by-run", help="Display tags grouped by run")
@_flag("--flat", hidden=True, help="List tags, one line per tag, no groupings")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list: each run and its tags.")
@click.argument("arg_run_id", required=False, default=None, type=str)
@click.pass_obj
def tag_list(
    state: State,
    run_id: str | None,
    list_all: bool,
    my_runs: bool,
    hide_system_tags: bool,
    group_by_tag: bool,
    group_by_run: bool,
    flat: bool,
    as_json: bool,
    arg_run_id: str | None,
) -> None:
    """Print the tags of one run, of all runs (``--all``) or of the user's runs."""
    if run_id is not None and arg_run_id is not None:
        raise CommandException("Specify a run either using --run-id or as an argument but not both")
    run_id = run_id if run_id is not None else arg_run_id
    if run_id is None and not my_runs:
        list_all = True
    if list_all and my_runs:
        raise CommandException("Option --all cannot be used together with --my-runs.")
    if group_by_run and group_by_tag:
        raise CommandException("Option --group-by-tag cannot be used with --group-by-run")
    if flat and (group_by_run or group_by_tag):
        raise CommandException("Option --flat cannot be used with any --group-by-* option")
    if run_id is not None and not list_all and not my_runs:
        one = _get_run_for_tagging(state, run_id, None)
        runs = [(one, *_run_tags(state.store(), one.run_pk))]
    else:
        runs = _flow_runs(state, identity_and_user()[0] if my_runs else None)
    if as_json:
        listing = []
        for r, user, system in runs:
            entry: dict[str, Any] = {"pathspec": r.pathspec, "tags": sorted(user)}
            if not hide_system_tags:
                entry["system_tags"] = sorted(system)
            listing.append(entry)
        echo_json(listing)
        return
    system_by: dict[str, Any] = {}
    all_by: dict[str, Any] = {}
    for r, user, system in runs:
        shown = user if hide_system_tags else user | system
        if group_by_run:
            all_by[r.pathspec] = shown
            if not hide_system_tags:
                system_by[r.pathspec] = system
        elif group_by_tag:
            for t in user:
                all_by.setdefault(t, []).append(r.pathspec)
            if not hide_system_tags:
                for t in system:
                    system_by.setdefault(t, []).append(r.pathspec)
        else:
            all_by.setdefault("_", set()).update(shown)
            if not hide_system_tags:
                system_by.setdefault("_", set()).update(system)
    if not group_by_run and not group_by_tag:
        key = ",".join(r.pathspec for r, _, _ in runs)
        all_by = {key: all_by.get("_", set())}
        system_by = {key: system_by.get("_", set())}
    if flat:  # Metaflow prints these on stderr
        for v in all_by.values():
            for t in sorted(v):
                state.echo(t)
        return
    _print_groups(state, system_by, all_by, group_by_tag)


def _flow_runs(
    state: State, namespace: str | None
) -> list[tuple[Any, AbstractSet[str], AbstractSet[str]]]:
    """``(run, user tags, system tags)`` of the flow's runs, newest first (those in
    ``namespace`` when given); one statement whatever the number of runs."""
    from mfstore.writer import RunRef

    store = state.store()
    flow_name = state.flow_name
    runs: dict[int, tuple[Any, set[str], set[str]]] = {}
    for pk, number, tag, is_system in store.query(*query.compile_flow_run_tags(flow_name)):
        entry = runs.get(pk)
        if entry is None:
            entry = runs[pk] = (RunRef(int(pk), flow_name, number), set(), set())
        if tag is not None:
            (entry[2] if is_system else entry[1]).add(tag)
    if not runs:
        raise CommandException(f"Cannot list tags because the flow {flow_name} has never been run.")
    return [
        entry
        for entry in runs.values()
        if namespace is None or namespace in entry[1] or namespace in entry[2]
    ]
