"""Deployment rows as a file's author could write them: a script name that is a path, triggers
that are no triggers, text that is not UTF-8, a time out of range, terminal control
sequences. Each is a one-line error naming the flow (or a line, and the other deployments go
on), never a traceback, never another file run; ``production show`` shows what a deployment
fixed and what it triggers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mfstore

OSC = "\x1b]0;PWNED\x07"


def _plant(db, sql, *args):
    """Run one UPDATE on the file as its author could (another process: a stdlib connection
    closed here would drop this process's locks on the file)."""
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    code += "c.execute(sys.argv[2], sys.argv[3:]); c.commit()"
    subprocess.run([sys.executable, "-c", code, str(db), sql, *args], check=True)


def _one_line(cp, *needles):
    out = cp.stdout + cp.stderr
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out
    return out


def test_a_script_name_that_is_no_file_of_the_package_runs_nothing(prod):
    """``code_packages.script_name`` must name the package's own script: a path (absolute
    or ``../``) or a name not in it is damage, and nothing runs; deploying again sets the
    name back."""
    prod("prod_flow.py", "production", "create")
    other = prod.workdir / "other"
    other.mkdir()
    marker = prod.workdir / "OTHER_RAN"
    (other / "local.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    for name in (str(other / "local.py"), "../other/local.py", "nope.py", "..", "prod_flow"):
        _plant(prod.db, "UPDATE code_packages SET script_name = ?", name)
        cp = prod("prod_flow.py", "production", "trigger", check=False)
        assert cp.returncode == 1, name
        _one_line(cp, "ProdFlow: its deployment is damaged", "names no script", "production create")
        if name not in ("nope.py", "prod_flow"):  # (show reads the name, not the package)
            show = _one_line(prod("prod_flow.py", "production", "show"))
            assert "(damaged: its code package names no script in it)" in show
    _plant(prod.db, "UPDATE code_packages SET script_name = CAST(x'ff' AS TEXT)")
    cp = prod("prod_flow.py", "production", "trigger", check=False)
    assert cp.returncode == 1
    _one_line(cp, "names no script in it")
    assert not marker.exists()
    assert prod.sql("SELECT count(*) FROM runs") == [(0,)]
    prod("prod_flow.py", "production", "create")  # the same package: its name comes back
    prod.trigger("prod_flow.py")
    assert prod.sql("SELECT count(*) FROM runs") == [(1,)]


DAMAGED_TRIGGERS = [
    '{"a": 1}',
    "5",
    "null",
    "[1]",
    "{",
    '[{"type": "run"}]',
    '[{"type": "event", "name": "data_ready", "parameters": [1, 2]}]',
    '[{"type": "event", "name": "data_ready", "parameters": "abc"}]',
    '[{"type": "event", "name": "data_ready", "parameters": {"table": ["x"]}}]',
]


@pytest.mark.parametrize(
    "sql, args, what",
    [
        *[
            ("UPDATE deployments SET triggers = ?", [t], "triggers is not a list of triggers")
            for t in DAMAGED_TRIGGERS
        ],
        (
            "UPDATE deployments SET triggers = CAST(x'ff' AS TEXT)",
            [],
            "triggers is not a list of triggers",
        ),
        ("UPDATE deployments SET deployed_by = CAST(x'ff' AS TEXT)", [], "deployed_by is not text"),
        ("UPDATE deployments SET ts_epoch = 9223372036854775807", [], "ts_epoch is not a time"),
    ],
)
def test_damaged_deployment_rows_are_one_line(prod, sql, args, what):
    """Every command names the damaged deployment in one line; ``list`` and an event go on
    without it (the event is still recorded)."""
    prod("event_flow.py", "production", "create")
    prod("mapped_event_flow.py", "production", "create")
    _plant(prod.db, sql + " WHERE flow_id = 'EventFlow'", *args)
    damaged = (
        f"EventFlow: its deployment is damaged ({what}): deploy it again with `production create`"
    )
    listed = _one_line(prod("event_flow.py", "production", "list"), f"Not listing {damaged}")
    assert "MappedEventFlow" in listed
    for command in (["show"], ["trigger"]):
        cp = prod("event_flow.py", "production", *command, check=False)
        assert cp.returncode == 1
        _one_line(cp, "Data corruption", f"Flow {damaged}.")
    cp, run_id = prod.send("event_flow.py", "data_ready", "table=users")
    _one_line(cp, f"Not triggering {damaged}", "Triggering MappedEventFlow")
    assert run_id is not None
    assert prod.sql("SELECT count(*) FROM events") == [(1,)]
    assert prod.sql("SELECT flow_id FROM runs") == [("MappedEventFlow",)]
    # deploying again replaces it
    prod("event_flow.py", "production", "create")
    assert "EventFlow" in prod("event_flow.py", "production", "list").stdout


def test_a_damaged_deployment_does_not_fail_other_production_runs(prod):
    """A damaged row of a flow that is not downstream: the production run of another flow
    succeeds, says so (only when the row's triggers cannot be read: it might have been
    downstream), and its downstream flows run."""
    for flow in ("up_flow.py", "down_flow.py", "event_flow.py"):
        prod(flow, "production", "create")
    _plant(prod.db, "UPDATE deployments SET triggers = '{\"a\": 1}' WHERE flow_id = 'EventFlow'")
    cp = prod("up_flow.py", "production", "trigger")
    out = _one_line(
        cp, "Not triggering EventFlow: its deployment is damaged", "Triggering DownFlow"
    )
    assert ") failed." not in out
    assert "Production run DownFlow/" in out and "Production run UpFlow/" in out
    assert sorted(prod.sql("SELECT flow_id FROM runs")) == [("DownFlow",), ("UpFlow",)]
    # damaged where its triggers can still be read (an event's): not UpFlow's follower,
    # so not named when UpFlow runs
    prod("event_flow.py", "production", "create")
    _plant(
        prod.db,
        "UPDATE deployments SET deployed_by = CAST(x'ff' AS TEXT) WHERE flow_id = 'EventFlow'",
    )
    out = _one_line(prod("up_flow.py", "production", "trigger"), "Triggering DownFlow")
    assert "EventFlow" not in out


def test_values_from_rows_are_escaped(prod):
    """Terminal control sequences from the file are printed escaped by ``production
    list``/``show`` and by the lines of a trigger; a flow name with one is no flow's name:
    named (escaped) in one line, and nothing runs it."""
    for flow in ("up_flow.py", "down_flow.py"):
        prod(flow, "production", "create")
    _plant(prod.db, "UPDATE deployments SET deployed_by = ?", f"x{OSC}")
    escaped = "\\x1b]0;PWNED\\x07"
    for command in (["list"], ["show"], ["show", "DownFlow"]):
        out = prod("up_flow.py", "production", *command).stdout
        assert "\x1b" not in out and "\x07" not in out
        assert f"x{escaped}" in out
    _plant(prod.db, "UPDATE deployments SET flow_id = ? WHERE flow_id = 'DownFlow'", f"Down{OSC}")
    listed = prod("up_flow.py", "production", "list")
    assert f"Not listing Down{escaped}: its deployment is damaged" in listed.stderr
    cp = prod("up_flow.py", "production", "show", f"Down{OSC}", check=False)
    assert cp.returncode == 1
    _one_line(cp, f"Flow Down{escaped}: its deployment is damaged (its flow name is not a")
    cp = prod("up_flow.py", "production", "trigger")
    assert f"Not triggering Down{escaped}" in cp.stderr and "nothing runs it" in cp.stderr
    for out in (listed.stdout, listed.stderr, cp.stdout, cp.stderr):
        assert "\x1b]" not in out and "\x07" not in out
    assert prod.sql("SELECT flow_id FROM runs") == [("UpFlow",)]


def test_show_lists_what_the_deployment_fixed(prod):
    """``production show`` shows each fixed Parameter value and config value (JSON, long
    ones cut), each IncludeFile's size, the events it waits for and the flows it triggers;
    a damaged ``values_json`` is one line."""
    (prod.workdir / "data.txt").write_text("at create\n")
    (prod.workdir / "data.bin").write_bytes(b"\x00\xff")
    prod("include_flow.py", "production", "create")
    out = prod("include_flow.py", "production", "show").stdout
    assert "    fixed values:\n" in out
    assert "file text: 10 bytes" in out and "file blob: 2 bytes" in out
    prod("deployed_values_flow.py", "production", "create", STAMP="fixed-stamp")
    out = prod("deployed_values_flow.py", "production", "show").stdout
    assert 'parameter stamp = "fixed-stamp"' in out and 'config cfg = {"lr": 0.1}' in out
    assert "on success:   -" in out
    values = {"parameters": {}, "configs": {"cfg": {"pad": "x" * 1000, "k": OSC}}, "files": {}}
    _plant(prod.db, "UPDATE deployments SET values_json = ?", json.dumps(values))
    out = prod("deployed_values_flow.py", "production", "show").stdout
    assert '"k": "\\u001b]0;PWNED\\u0007"' in out and "\x1b" not in out
    assert " characters)" in out and "x" * 300 not in out
    for damaged in ("{", "[]", '{"files": {"data": "%%"}}', '{"configs": 5}'):
        _plant(prod.db, "UPDATE deployments SET values_json = ?", damaged)
        out = _one_line(prod("deployed_values_flow.py", "production", "show"))
        assert "fixed values: damaged (deployments.values_json)" in out
    _plant(prod.db, "UPDATE deployments SET values_json = CAST(x'ff' AS TEXT)")
    out = _one_line(prod("deployed_values_flow.py", "production", "show"))
    assert "fixed values: damaged" in out
    cp = prod("deployed_values_flow.py", "production", "trigger", check=False)
    assert cp.returncode == 1
    _one_line(cp, "deploy the flow again with `production create`")


def test_create_prints_the_previous_deployer_escaped(prod):
    """``production create`` over a received deployment prints its deployer (from the
    file) escaped; a token with a control sequence is no token: one line, escaped."""
    prod("up_flow.py", "production", "create")
    _plant(prod.db, "UPDATE deployments SET deployed_by = ?", f"x{OSC}")
    escaped = "\\x1b]0;PWNED\\x07"
    cp = prod("up_flow.py", "production", "create", user="bob", check=False)
    assert cp.returncode == 1
    assert f"deployed by the user x{escaped}." in cp.stdout + cp.stderr
    _plant(prod.db, "UPDATE deployments SET token = ?", f"t{OSC}")
    for command in ("create", "trigger", "show"):
        cp = prod("up_flow.py", "production", command, check=False)
        assert cp.returncode == 1
        assert "\x1b" not in cp.stdout + cp.stderr and "\x07" not in cp.stdout + cp.stderr


DAMAGED_TOKENS = ["CAST(x'ff' AS TEXT)", "''", "'t' || char(0) || 'x'", "'t x'", "'t' || char(27)"]


def test_a_damaged_token_is_replaced_by_its_deployer_with_a_new_one(prod):
    """A token that is no token ``create`` makes (not text, empty, with a space or a
    control character) authorizes nobody and runs nothing; another user is refused, its
    deployer is told to deploy with a new token, and ``--generate-new-token`` makes one
    the flow never had. Once who deployed it is damaged too, anyone may."""
    prod("up_flow.py", "production", "create")
    ((first,),) = prod.sql("SELECT token FROM deployments")
    prod.trigger("up_flow.py")  # (runs in production:<first>: the new token is another)
    for token in DAMAGED_TOKENS:
        _plant(prod.db, f"UPDATE deployments SET token = {token}")
        cp = prod("up_flow.py", "production", "trigger", check=False)
        assert cp.returncode == 1, token
        _one_line(
            cp,
            "(its token is not a production token): deploy it again with "
            "`production create --generate-new-token`",
        )
        assert prod.sql("SELECT count(*) FROM runs") == [(1,)]
    cp = prod("up_flow.py", "production", "create", check=False)
    assert cp.returncode == 1
    _one_line(cp, "The production token of UpFlow in this file is damaged", "--generate-new-token")
    cp = prod("up_flow.py", "production", "create", "--authorize", "", user="bob", check=False)
    assert cp.returncode == 1
    _one_line(cp, "deployed by the user alice", "Try again with the correct production token")
    prod("up_flow.py", "production", "create", "--generate-new-token")
    run_id = prod.trigger("up_flow.py")
    assert prod.sql("SELECT count(*) FROM runs") == [(2,)]
    newest = "SELECT token, deployed_by FROM deployments ORDER BY deployment_pk DESC LIMIT 1"
    ((second, _),) = prod.sql(newest)
    assert second != first
    mfstore.namespace(None)
    assert f"production:{second}" in mfstore.Run(f"UpFlow/{run_id}").system_tags
    # neither token nor deployer can be read: nobody is the deployer, anyone deploys anew
    _plant(prod.db, "UPDATE deployments SET token = '', deployed_by = CAST(x'ff' AS TEXT)")
    prod("up_flow.py", "production", "create", "--generate-new-token", user="bob")
    ((third, by),) = prod.sql(newest)
    assert by == "bob" and third not in (first, second)


@pytest.mark.parametrize("name", ["'Event' || char(0) || 'Flow'", "'Event,Flow'", "'../x'"])
def test_a_flow_name_that_is_no_class_name_is_damage(prod, name):
    """A deployment's flow name reaches the run's environment: one that no Python class
    has is damage, and an event goes on without it."""
    prod("event_flow.py", "production", "create")
    prod("mapped_event_flow.py", "production", "create")
    _plant(prod.db, f"UPDATE deployments SET flow_id = {name} WHERE flow_id = 'EventFlow'")
    cp, run_id = prod.send("event_flow.py", "data_ready", "table=users")
    _one_line(cp, "its flow name is not a flow's name", "Triggering MappedEventFlow")
    assert run_id is not None
    assert prod.sql("SELECT flow_id FROM runs") == [("MappedEventFlow",)]
    listed = _one_line(prod("event_flow.py", "production", "list"), "Not listing")
    assert "MappedEventFlow" in listed
