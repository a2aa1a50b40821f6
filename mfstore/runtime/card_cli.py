"""``python flow.py card get|list|view``: the cards kept with a task (Metaflow's commands,
options and messages). PATHSPEC is ``step`` (the latest run's), ``run_id/step`` or
``run_id/step/task_id``."""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import tempfile
from collections.abc import Callable
from typing import Any

import click

from mfstore.exception import (
    CardNotPresentException,
    CommandException,
    MetaflowException,
    TaskNotFoundException,
)

from .cli_common import State

#: Characters of a card's hash shown in examples (Metaflow's ``NUM_SHORT_HASH_CHARS``).
SHORT_HASH = 5


def _task(state: State, pathspec: str) -> Any:
    """The task PATHSPEC names (Metaflow's ``resolve_task_from_pathspec``)."""
    from mfstore.client import Flow, Step, Task
    from mfstore.exception import MetaflowNotFound

    state.store()  # the file must exist; the Client API then reads it (MFSTORE_DB)
    parts = pathspec.split("/")
    flow = state.flow_name
    task = None
    try:
        if len(parts) == 1:
            run = Flow(flow).latest_run
            if run is None:
                raise TaskNotFoundException(pathspec, "stepname")
            try:
                task = run[pathspec].task
            except KeyError:
                raise TaskNotFoundException(pathspec, "stepname", run.pathspec) from None
        elif len(parts) == 2:
            task = Step(f"{flow}/{pathspec}", _namespace_check=False).task
            if task is None:
                raise TaskNotFoundException(pathspec, "step_pathspec")
        elif len(parts) == 3:
            task = Task(f"{flow}/{pathspec}", _namespace_check=False)
        else:
            raise CommandException(
                "The PATHSPEC argument should be of the form 'stepname' Or "
                "'<runid>/<stepname>' Or '<runid>/<stepname>/<taskid>'"
            )
    except MetaflowNotFound:
        kind = "step_pathspec" if len(parts) == 2 else "task_pathspec"
        raise TaskNotFoundException(pathspec, kind) from None
    return task


@dataclasses.dataclass(frozen=True)
class _Which:
    """Which cards the read commands show (``--hash``, ``--type``, ``--id``,
    ``--follow-resumed``; see ``_read_options``)."""

    card_hash: str | None
    card_type: str | None
    card_id: str | None
    follow_resumed: bool


def _cards(state: State, pathspec: str, which: _Which, echo: bool = True) -> Any:
    """The matching cards of PATHSPEC's task; CardNotPresentException when there are none."""
    from mfstore.cards.cards import cards_of_task

    task = _task(state, pathspec)
    found = cards_of_task(
        task, which.card_type, which.card_hash, which.card_id, which.follow_resumed
    )
    if echo:
        if found.origin_pathspec:
            state.echo(f"Resolving card resumed from: {found.origin_pathspec}")
        else:
            state.echo(f"Resolving card: {found.pathspec}")
    if len(found) == 0:
        raise _not_present(found.pathspec, which)
    return found


def _not_present(pathspec: str, which: _Which) -> MetaflowException:
    return CardNotPresentException(pathspec, which.card_type, which.card_id, which.card_hash)


def _listing(cards: Any) -> dict[str, Any]:
    return {
        "pathspec": cards.pathspec,
        "cards": [
            {"id": c.id, "hash": c.hash, "type": c.type, "filename": c.path.split("/")[-1]}
            for c in cards
        ],
    }


def _show(state: State, cards: Any, command: str | None, task_id: str | None = None) -> None:
    """Metaflow's listing of several cards (on stderr), with an example command; in a
    listing of the whole run, headed by the task's id."""
    if task_id is not None:
        state.echo(f"\tTask: {task_id}")
    else:
        state.echo(f"Found {len(cards)} card matching for your query...")
    lines = [""]
    for c in cards:
        lines.append(
            f"\n        Card Id: {c.id}\n        Card Type: {c.type}\n"
            f"        Card Hash: {c.hash}\n        Card Path: {c.path}\n        "
        )
    state.echo("\n\t".join(lines) + "\n")
    if command is not None:
        pick = random.choice(list(cards))
        task = "/".join(cards.pathspec.split("/")[1:])
        script = click.get_current_context().find_root().info_name or "flow.py"
        state.echo(
            "\n\tExample access from CLI via: \n\t "
            f">>> python {script} card {command} {task} --hash {pick.hash[:SHORT_HASH]}\n"
        )


def _read_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options choosing cards, handed to ``func`` as one ``_Which`` (after click's
    object)."""

    @functools.wraps(func)
    def with_which(**kwargs: Any) -> Any:
        which = _Which(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(_Which)})
        return func(which, **kwargs)

    for option in reversed(
        [
            click.option("--hash", "card_hash", default=None, help="Hash of the stored HTML"),
            click.option("--type", "card_type", default=None, help="Type of card"),
            click.option("--id", "card_id", default=None, help="Id of the card"),
            click.option(
                "--follow-resumed/--no-follow-resumed",
                default=True,
                show_default=True,
                help="Follow the origin-task-id of resumed tasks to seek cards stored for "
                "resumed tasks.",
            ),
        ]
    ):
        with_which = option(with_which)
    return with_which


@click.group(
    help="Commands related to @card decorator.\n\nExample: python flow.py card list 12/start/1"
)
def card() -> None:
    """The ``card`` command group."""


@card.command(
    help="Get the HTML string of the card based on pathspec.\n\n"
    "The pathspec can be of the form: <stepname>, <runid>/<stepname> or "
    "<runid>/<stepname>/<taskid>. Save the card by adding the PATH argument.\n\n"
    "Example: python flow.py card get 12/start/1 card.html --type default"
)
@click.argument("pathspec")
@click.argument("path", required=False)
@_read_options
@click.pass_obj
def get(state: State, which: _Which, pathspec: str, path: str | None) -> None:
    """Write (or print) the card's HTML; several matching cards are listed instead."""
    cards = _cards(state, pathspec, which)
    if len(cards) > 1:
        _show(state, cards, "get")
        return
    if path is None:
        click.echo(cards[0].get())
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(cards[0].get())


@card.command(
    "list",
    help="List the cards of a task (of every task of the latest run without PATHSPEC).\n\n"
    "Example: python flow.py card list 12/start/1 --as-json",
)
@click.argument("pathspec", required=False)
@_read_options
@click.option("--as-json", is_flag=True, default=False, help="Print all available cards as JSON.")
@click.option("--file", default=None, help="Save the available card list to file.")
@click.pass_obj
def list_(
    state: State, which: _Which, pathspec: str | None, as_json: bool, file: str | None
) -> None:
    """``id``, ``hash``, ``type`` and ``filename`` of the cards."""
    if pathspec is None:
        _list_run(state, which, as_json, file)
        return
    cards = _cards(state, pathspec, which, echo=not as_json)
    if as_json:
        _dump(_listing(cards), file)
    else:
        _show(state, cards, None)


def _dump(doc: Any, file: str | None) -> None:
    if file:
        with open(file, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
    else:
        click.echo(json.dumps(doc, indent=4))


def _list_run(state: State, which: _Which, as_json: bool, file: str | None) -> None:
    """The cards of every task of the latest run (Metaflow's ``list_many_cards``)."""
    from mfstore.client import Flow

    state.store()
    run = Flow(state.flow_name).latest_run
    if run is None:
        raise CommandException(f"No run found for *{state.flow_name}*.")
    if not as_json:
        state.echo(f"Listing cards for run {run.pathspec}")
    found = []
    for step in run:
        printed = False
        for task in step:
            spec = "/".join(task.pathspec.split("/")[1:])
            try:
                cards = _cards(state, spec, which, echo=False)
            except CardNotPresentException:
                continue
            found.append(_listing(cards))
            if not as_json:
                if not printed:
                    state.echo(f"Step : {step.id}")
                    printed = True
                _show(state, cards, None, task_id=task.id)
    if not found:
        raise _not_present(run.pathspec, which)
    if as_json:
        _dump(found, file)


@card.command(
    help="Write a task's card to a temporary HTML file and print its path.\n\n"
    "Example: python flow.py card view 12/start/1"
)
@click.argument("pathspec")
@_read_options
@click.pass_obj
def view(state: State, which: _Which, pathspec: str) -> None:
    """Save the card to a file to open in a browser (several matching cards are listed)."""
    cards = _cards(state, pathspec, which)
    if len(cards) > 1:
        _show(state, cards, "view")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as fh:
        fh.write(cards[0].get())
    click.echo(fh.name)
