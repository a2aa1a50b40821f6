"""Production tokens: Metaflow's scheme and the two-user authorization story of the seeds."""

from __future__ import annotations

import json

import pytest

import mfstore
from mfstore.production import load_token, new_token, store_token, token_path


def test_new_token_is_metaflows_sequence(monkeypatch, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from metaflow.plugins.aws.step_functions import production_token as mf

    assert new_token("myflow") == "myflow-0-tysa"
    assert new_token("histlinearflow") == "histlinearflow-0-xzwe"
    assert new_token("histlinearflow", "histlinearflow-0-xzwe") == "histlinearflow-1-hdal"
    assert new_token("myflow", "custom-token") is None
    tok = None
    for _ in range(5):
        assert new_token("prodflow", tok) == mf.new_token("prodflow", tok)
        tok = new_token("prodflow", tok)
    # storage: the same file and JSON as Metaflow
    monkeypatch.setenv("METAFLOW_TOKEN_HOME", str(tmp_path / "home"))
    assert load_token("prodflow") is None
    store_token("prodflow", "prodflow-0-abcd")
    assert json.loads(token_path("prodflow").read_text()) == {"production_token": "prodflow-0-abcd"}
    assert mf.load_token("prodflow") == "prodflow-0-abcd"
    monkeypatch.delenv("METAFLOW_TOKEN_HOME")
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "mfhome"))
    assert token_path("x") == tmp_path / "mfhome" / "x"


def deployments(prod):
    return prod.sql(
        "SELECT deployed_by, token FROM deployments WHERE flow_id = 'ProdFlow' ORDER BY deployment_pk"
    )


def test_two_user_authorization(prod):
    tok = new_token("prodflow")
    # alice deploys for the first time: a new token, printed as the production namespace
    cp = prod("prod_flow.py", "production", "create", user="alice")
    assert "It seems this is the first time you are deploying ProdFlow" in cp.stderr
    assert f"    production:{tok}" in cp.stderr
    assert f'namespace("production:{tok}")' in cp.stderr
    assert json.loads((prod.token_home("alice") / "prodflow").read_text()) == {
        "production_token": tok
    }
    assert deployments(prod) == [("alice", tok)]

    # bob has no token: refused with Metaflow's messages, nothing recorded
    cp = prod("prod_flow.py", "production", "create", user="bob", check=False)
    assert cp.returncode != 0
    assert "deployed by the user alice" in cp.stderr
    assert "production create --authorize MY_TOKEN" in cp.stderr
    assert cp.stderr.strip().splitlines()[-2:] == [
        "    Incorrect production token:",
        "    Try again with the correct production token.",
    ]
    assert deployments(prod) == [("alice", tok)]
    assert not (prod.token_home("bob") / "prodflow").exists()

    # a wrong token is refused too
    cp = prod(
        "prod_flow.py",
        "production",
        "create",
        "--authorize",
        "prodflow-0-nope",
        user="bob",
        check=False,
    )
    assert cp.returncode != 0 and "Try again with the correct production token." in cp.stderr
    assert len(deployments(prod)) == 1

    # bob with the shared token (the production: prefix is accepted): deployed, token remembered
    prod("prod_flow.py", "production", "create", "--authorize", "production:" + tok, user="bob")
    assert json.loads((prod.token_home("bob") / "prodflow").read_text()) == {
        "production_token": tok
    }
    # ... so the second time he needs no --authorize
    prod("prod_flow.py", "production", "create", user="bob")
    assert deployments(prod) == [("alice", tok), ("bob", tok), ("bob", tok)]

    # alice redeploys without passing the token (she has it stored from her first deployment)
    prod("prod_flow.py", "production", "create", user="alice")
    # carol, who never got the token, still cannot, not even with --generate-new-token
    cp = prod(
        "prod_flow.py", "production", "create", "--generate-new-token", user="carol", check=False
    )
    assert cp.returncode != 0 and "deployed by the user alice" in cp.stderr
    assert [d[0] for d in deployments(prod)] == ["alice", "bob", "bob", "alice"]
    assert {d[1] for d in deployments(prod)} == {tok}

    # the previous deployer may redeploy even without a stored token (Metaflow's rule)
    (prod.token_home("alice") / "prodflow").unlink()
    prod("prod_flow.py", "production", "create", user="alice")
    assert len(deployments(prod)) == 5


def test_list_and_show(prod):
    prod("prod_flow.py", "production", "create")
    prod("down_flow.py", "production", "create")
    out = prod("prod_flow.py", "production", "list").stdout
    assert "ProdFlow  production:{}  alice".format(new_token("prodflow")) in out
    assert "@trigger_on_finish(flow=UpFlow)" in out
    out = prod("prod_flow.py", "production", "show").stdout
    assert "namespace:    production:{}".format(new_token("prodflow")) in out
    assert "deployed by:  alice" in out and "(prod_flow.py)" in out
    out = prod("prod_flow.py", "production", "show", "DownFlow").stdout
    assert "triggers:     @trigger_on_finish(flow=UpFlow)" in out


@pytest.mark.parametrize("args", [["--new-token", "custom"]])
def test_new_token_then_generate_is_refused(prod, args):
    prod("prod_flow.py", "production", "create")
    cp = prod("prod_flow.py", "production", "create", *args)
    assert "Using the given token, custom." in cp.stderr and "production:custom" in cp.stderr
    cp = prod("prod_flow.py", "production", "create", "--generate-new-token", check=False)
    assert cp.returncode == 1
    assert "--generate-new-token option is not supported after using --new-token" in cp.stderr
    assert [t for (t,) in prod.sql("SELECT token FROM deployments")] == [
        new_token("prodflow"),
        "custom",
    ]


def test_a_new_token_is_any_text_without_spaces_or_controls(prod):
    """``--new-token`` takes any text without white space or control characters (an emoji
    with a zero-width joiner, letters of any script), and its runs are in its namespace;
    a token with a space or an escape sequence is one line, and nothing is deployed."""
    token = "dev-\U0001f469\u200d\U0001f4bb-\u00fcn\u00ef"
    prod("prod_flow.py", "production", "create", "--new-token", token)
    run_id = prod.trigger("prod_flow.py")
    mfstore.namespace(None)
    assert f"production:{token}" in mfstore.Run(f"ProdFlow/{run_id}").system_tags
    for bad in ("a b", "a\x1b[31m", "a\u202eb"):
        cp = prod("prod_flow.py", "production", "create", "--new-token", bad, check=False)
        assert cp.returncode == 1 and "--new-token must be a non-empty token" in cp.stderr
    assert prod.sql("SELECT count(*) FROM deployments") == [(1,)]
