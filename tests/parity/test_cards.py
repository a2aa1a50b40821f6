"""Cards, differential against Metaflow 2.19.39: the same flow (``flows/cards.py``) runs on
both systems; each system's ``get_cards`` and ``card list/get`` commands must then show the
same cards per task (type, id, a 32-hex hash, the content) and the same answers to the
queries Metaflow's test/core checkers make (``--type``, ``--id``, ``--hash`` prefixes,
the step / run/step / run/step/task pathspec forms, "Card not found in datastore")."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

import pytest

from .differential import LIBS, Workdir

FLOW = "cards.py"
SEP = "$&#!!@*"

#: Every card of every task, through the system's own Client API.
READ = """
import json
from {lib} import Flow, namespace
from {lib}.cards import get_cards
namespace(None)
run = Flow("CardsFlow").latest_run
out = {{"run": run.id, "tasks": {{}}, "artifacts": {{}}}}
for step in run:
    for task in step:
        out["tasks"][step.id] = [
            {{"type": c.type, "id": c.id, "hash": c.hash, "path": c.path, "html": c.get(),
              "data": c.get_data()}}
            for c in get_cards(task)
        ]
        out["tasks"][step.id + "#task"] = task.id
        out["artifacts"][step.id] = {{
            a.id: a.data for a in task if a.id in ("n_editable", "n_unknown", "component_ids")
        }}
        out["tasks"][step.id + "#none"] = len(get_cards(task, type="no_such_type"))
        out["tasks"][step.id + "#id"] = sorted(c.type for c in get_cards(task, id="abc"))
print(json.dumps(out))
"""

#: Phrases that tell Metaflow's messages apart (warnings and error cards).
PHRASES = (
    "is not present",
    "cannot disambiguate",
    "timed out after 1 seconds",
    "MetaflowCard named no_such_card_type not found",
    "Unknown Things Happened",
)


def _text(page: str) -> str:
    """A card's text: Metaflow's own cards carry it base64-encoded in the page (which
    also holds their scripts), mfstore's as escaped HTML."""
    blobs = re.findall(r'window\.__MF_DATA__\["[^"]*"\] = "([A-Za-z0-9+/=]+)"', page)
    if not blobs:
        return html.unescape(page)
    return "".join(base64.b64decode(b).decode("utf-8", "replace") for b in blobs)


def _content(card: dict[str, Any], pathspec: str) -> Any:
    """What a card says, independent of each system's HTML: the joined parts of Metaflow's
    test cards (a warning part as the warning it is), or the error an error card reports."""
    text = card["html"]
    if card["type"] == "test_refresh_card":  # the same page on both, and its data update
        data = card["data"]
        return [
            text.replace(pathspec, "<task>"),
            data and data["reload_token"],
            data and {k: data["data"][k] for k in ("user", "components", "render_seq", "mode")},
        ]
    if "<html" in text.lower():  # an error card
        return ["error"] + [p for p in PHRASES if p in _text(text)]
    parts = []
    for part in text.split(SEP) if text else []:
        said = [p for p in PHRASES if p in part]
        part = part.replace(pathspec, "<task>")
        parts.append(said[0] if said else re.sub(r"^<task> [A-Z0-9]{6}$", "<task> XXXXXX", part))
    return parts


def _cards(snap: dict[str, Any], flow: str) -> dict[str, list[Any]]:
    out = {}
    for step, cards in snap["tasks"].items():
        if "#" in step:
            continue
        spec = f"{flow}/{snap['run']}/{step}/{snap['tasks'][step + '#task']}"
        rows = []
        for c in cards:
            assert re.fullmatch(r"[0-9a-f]{32}", c["hash"]), c
            middle = f"{c['type']}-{c['id']}-" if c["id"] else f"{c['type']}-"
            assert c["path"].split("/")[-1] == f"{middle}{c['hash']}.html"
            rows.append((c["type"], c["id"] or "", _content(c, spec)))
        out[step] = sorted(rows, key=json.dumps)
    return out


def _listing(doc: dict[str, Any]) -> list[Any]:
    """A ``card list --as-json`` entry without the random hashes."""
    rows = []
    for c in doc["cards"]:
        assert c["filename"].endswith(f"{c['hash']}.html")
        rows.append((c["type"], c["id"] or ""))
    return [doc["pathspec"].split("/")[2], sorted(rows)]


def _queries(wd: Workdir, snap: dict[str, Any]) -> dict[str, Any]:
    """The card command's answers to the checkers' queries."""
    run, tasks = snap["run"], snap["tasks"]
    custom = f"{run}/custom/{tasks['custom#task']}"
    default = next(c for c in tasks["custom"] if c["type"] == "test_editable_card" and not c["id"])
    out: dict[str, Any] = {}
    listed = wd.path / "listed.json"
    wd.python(FLOW, "--quiet", "card", "list", custom, "--as-json", "--file", str(listed))
    out["list task"] = _listing(json.loads(listed.read_text()))
    cp = wd.python(FLOW, "--quiet", "card", "list", "ids", "--as-json")
    out["list step"] = _listing(json.loads(cp.stdout))
    cp = wd.python(FLOW, "--quiet", "card", "list", f"{run}/end", "--as-json")
    out["list run/step"] = _listing(json.loads(cp.stdout))
    cp = wd.python(FLOW, "--quiet", "card", "list", "--as-json")
    out["list run"] = sorted(_listing(d) for d in json.loads(cp.stdout))
    for name, args in {
        "get by id": ["--type", "test_editable_card", "--id", "xyz"],
        "hash beats id": [
            "--type",
            "test_editable_card",
            "--hash",
            default["hash"][:5],
            "--id",
            "xyz",
        ],
        "several": ["--type", "test_editable_card"],
        "missing type": ["--type", "no_such_type"],
        "missing hash": ["--hash", "zzzzz"],
    }.items():
        target = wd.path / f"{name}.html"
        cp = wd.python(FLOW, "--quiet", "card", "get", custom, str(target), *args, check=False)
        out[name] = {
            "rc": cp.returncode,
            "not found": "Card not found in datastore" in cp.stderr,
            "card": target.read_text() if target.exists() else None,
        }
    return out


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cards")
    seen = {}
    for lib in LIBS:
        wd = Workdir(root, lib)
        wd.add(FLOW)
        wd.python(FLOW, "run")
        snap = wd.read(READ)
        seen[lib] = {
            "snap": snap,
            "cards": _cards(snap, "CardsFlow"),
            "queries": _queries(wd, snap),
            "db": wd.path / "t.mfdb",
        }
    return seen


def test_each_task_has_the_same_cards(both: dict[str, Any]) -> None:
    theirs, ours = both["metaflow"], both["mfstore"]
    # what Metaflow does, spelled out for the parts that matter most
    assert theirs["cards"]["ids"] == sorted(
        [
            ("taskspec_card", "", ["<task>"]),
            ("test_editable_card", "", ["one", "three"]),
            ("test_editable_card", "abc", ["two"]),
        ],
        key=json.dumps,
    )
    assert ("test_editable_card", "", ["custom", "a", "b"]) in theirs["cards"]["custom"]
    assert theirs["cards"]["retried"] == [("test_editable_card", "", ["attempt 1"])]
    assert len(theirs["cards"]["end"]) == 3  # two cards of one type, both kept
    live = theirs["cards"]["live"][0][2]
    assert '<h1>{"k": 2}</h1>' in live[0] and live[1] == "final"
    assert live[2] == {"user": {"k": 2}, "components": {}, "render_seq": "final", "mode": "refresh"}
    assert ours["cards"] == theirs["cards"]


def test_current_card_answers_the_same(both: dict[str, Any]) -> None:
    theirs, ours = both["metaflow"]["snap"], both["mfstore"]["snap"]
    assert theirs["artifacts"]["ids"] == {
        "n_editable": 2,
        "n_unknown": 0,
        "component_ids": ["third"],
    }
    assert ours["artifacts"] == theirs["artifacts"]
    for key in [k for k in theirs["tasks"] if k.endswith(("#none", "#id"))]:
        assert ours["tasks"][key] == theirs["tasks"][key], key


def test_card_commands_answer_the_same(both: dict[str, Any]) -> None:
    theirs, ours = both["metaflow"]["queries"], both["mfstore"]["queries"]
    assert theirs["get by id"]["card"] == "replaced"
    assert theirs["hash beats id"]["card"] == SEP.join(["custom", "a", "b"])
    assert theirs["missing type"] == {"rc": 1, "not found": True, "card": None}
    assert ours == theirs


def test_cards_are_kept_in_the_file(both: dict[str, Any]) -> None:
    """mfstore keeps each card as a task file of the .mfdb (what the UI lists)."""
    import sqlite3

    snap = both["mfstore"]["snap"]
    con = sqlite3.connect(f"file:{both['mfstore']['db']}?mode=ro", uri=True)
    names = {
        r[0]
        for r in con.execute("SELECT field_name FROM metadata_values WHERE type = 'mfstore-file'")
    }
    con.close()
    hashes = {c["hash"] for k, v in snap["tasks"].items() if "#" not in k for c in v}
    assert len(hashes) == 17  # start 2, ids 3, custom 4, errors 3, retried 1, live 1, end 3
    assert {n[: -len(".html")].rsplit("-", 1)[-1] for n in names if n.endswith(".html")} == hashes
