"""``python flow.py card get|list|view``: the cards kept with a task (Metaflow's commands)."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import click

from mfstore.exception import CommandException

from .cli_common import State


def _cards(state: State, pathspec: str, card_type: str | None, card_id: str | None) -> Any:
    from mfstore.cards import get_cards

    parts = pathspec.split("/")
    if len(parts) != 3 or not all(parts):
        raise CommandException("The pathspec of a card is run_id/step_name/task_id")
    state.store()  # the file must exist; the Client API then reads it (MFSTORE_DB)
    return get_cards("/".join([state.flow_name, *parts]), id=card_id, type=card_type)


@click.group(help="Commands related to @card.\n\nExample: python flow.py card list 12/start/1")
def card() -> None:
    """The ``card`` command group."""


@card.command(
    help="Write the HTML of a task's card to PATH.\n\n"
    "Example: python flow.py card get 12/start/1 card.html --type default"
)
@click.argument("pathspec")
@click.argument("path", required=False)
@click.option("--type", "card_type", default=None, help="Type of the card.")
@click.option("--id", "card_id", default=None, help="Id of the card.")
@click.option("--hash", "card_hash", default=None, help="Hash of the card.")
@click.pass_obj
def get(
    state: State,
    pathspec: str,
    path: str | None,
    card_type: str | None,
    card_id: str | None,
    card_hash: str | None,
) -> None:
    """Write (or print) one card's HTML."""
    cards = [c for c in _cards(state, pathspec, card_type, card_id) if card_hash in (None, c.hash)]
    if not cards:
        raise CommandException(f"No card with hash {card_hash} for {pathspec}")
    if path is None:
        click.echo(cards[0].get())
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(cards[0].get())


@card.command(
    "list",
    help="List the cards of a task.\n\nExample: python flow.py card list 12/start/1 --as-json",
)
@click.argument("pathspec")
@click.option("--type", "card_type", default=None, help="Type of the card.")
@click.option("--id", "card_id", default=None, help="Id of the card.")
@click.option("--as-json", is_flag=True, default=False, help="Print the list as JSON.")
@click.option("--file", default=None, help="Write the JSON list to this file.")
@click.pass_obj
def list_(
    state: State,
    pathspec: str,
    card_type: str | None,
    card_id: str | None,
    as_json: bool,
    file: str | None,
) -> None:
    """List ``hash``, ``id``, ``type`` and ``filename`` of a task's cards."""
    cards = _cards(state, pathspec, card_type, card_id)
    data = {
        "pathspec": cards.pathspec,
        "cards": [
            {"hash": c.hash, "id": c.id, "type": c.type, "filename": c.path.split("/")[-1]}
            for c in cards
        ],
    }
    if file:
        with open(file, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    elif as_json:
        click.echo(json.dumps(data))
    else:
        for i, c in enumerate(data["cards"]):
            click.echo(f"Card {i}: type {c['type']}, id {c['id']}, hash {c['hash']}")


@card.command(
    help="Write a task's card to a temporary HTML file and print its path.\n\n"
    "Example: python flow.py card view 12/start/1"
)
@click.argument("pathspec")
@click.option("--type", "card_type", default=None, help="Type of the card.")
@click.option("--id", "card_id", default=None, help="Id of the card.")
@click.pass_obj
def view(state: State, pathspec: str, card_type: str | None, card_id: str | None) -> None:
    """Save the card to a file to open in a browser."""
    html = _cards(state, pathspec, card_type, card_id)[0].get()
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as fh:
        fh.write(html)
    click.echo(fh.name)
