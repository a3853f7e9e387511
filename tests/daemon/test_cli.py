"""`syncd login-sync` and `syncd token create --admin`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from syncd.service import tokens
from syncd.store import session_scope
from tests.daemon.conftest import Env


def write(env: Env) -> str:
    url = env.engine.url.render_as_string(hide_password=False)
    path = env.tmp / "config.toml"
    path.write_text(f'state_dir = "{env.tmp}"\n[store]\nurl = "{url}"\n{env.fakes.toml}')
    return str(path)


def test_login_sync_command_prints_the_users_fresh_teams(env: Env) -> None:
    t = env.fake.tenant
    user = next(u for u in t.users.values() if t.transitive_group_ids(u.id))
    r = CliRunner().invoke(app, ["--config", write(env), "--json", "login-sync", "entra", user.user_name])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert not body["stale"]
    assert {x["external_id"] for x in body["teams"]} == {
        env.fake.external_id(g) for g in t.transitive_group_ids(user.id)
    }


def test_login_sync_command_exits_4_when_the_idp_fails(env: Env) -> None:
    env.fakes.faults["entra"].add("error", status=503, times=None)
    r = CliRunner().invoke(app, ["--config", write(env), "login-sync", "entra", "someone@entra.example"])
    assert r.exit_code == 4 and "stale" in r.output


def test_login_sync_command_exits_2_with_one_line_for_a_user_the_idp_does_not_know(env: Env) -> None:
    r = CliRunner().invoke(app, ["--config", write(env), "login-sync", "entra", "nobody@entra.example"])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("syncd: error: entra has no user 'nobody@entra.example'")
    assert len(r.stderr.splitlines()) == 1


def test_login_sync_command_names_the_pull_directories_for_an_unknown_one(env: Env) -> None:
    r = CliRunner().invoke(app, ["--config", write(env), "login-sync", "nope", "x"])
    assert r.exit_code == 2 and "entra" in r.output


def test_token_create_admin_makes_a_token_the_admin_api_accepts(env: Env) -> None:
    r = CliRunner().invoke(
        app, ["--config", write(env), "--json", "token", "create", "--admin", "--name", "gw"]
    )
    assert r.exit_code == 0, r.output
    secret = json.loads(r.stdout)["token"]
    with session_scope(env.engine) as s:
        assert tokens.authenticate(s, secret, kind="admin") is not None
        assert tokens.authenticate(s, secret, kind="scim") is None
    both = CliRunner().invoke(app, ["--config", write(env), "token", "create", "--admin", "-d", "entra"])
    assert both.exit_code == 2
    neither = CliRunner().invoke(app, ["--config", write(env), "token", "create"])
    assert neither.exit_code == 2
