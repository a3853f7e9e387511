"""`syncd webhooks`, `webhooks test`, `dead`, `replay`, `secret` against a real receiver."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from cli.main import app
from syncd.store import session_scope
from syncd.store.models import WebhookDeadLetter
from tests.webhooks.receiver import new_secret, receiver


def run(cfg: Path, *args: str) -> object:
    return CliRunner().invoke(app, list(args), env={"SYNCD_CONFIG": str(cfg), "COLUMNS": "250"})


def config(tmp: Path, engine: Engine, url: str, secret: str, extra: str = "") -> Path:
    p = tmp / "config.toml"
    store = engine.url.render_as_string(hide_password=False)
    p.write_text(
        f'state_dir = "state"\n[store]\nurl = "{store}"\n'
        f'[webhooks.ops]\nurl = "{url}"\nsecret = "{secret}"\nevents = ["user.deactivated"]\n{extra}'
    )
    return p


def test_the_test_command_sends_a_signed_event_the_receiver_verifies(engine: Engine, tmp_path: Path) -> None:
    with receiver() as rcv:
        cfg = config(tmp_path, engine, rcv.url, rcv.secret)
        r = run(cfg, "webhooks", "test", "ops")
        assert r.exit_code == 0, r.output
        assert "ok:" in r.output and "HTTP 200" in r.output
        assert not rcv.rejected and rcv.types() == ["syncd.test"]
        # signed with another secret: the receiver refuses it, the command says so and exits 4
        bad = config(tmp_path, engine, rcv.url, new_secret())
        r = run(bad, "webhooks", "test", "ops")
        assert r.exit_code == EXIT_UNREACHABLE and "HTTP 401" in r.output and len(rcv.rejected) == 1
        r = run(cfg, "webhooks", "test", "nope")
        assert r.exit_code == EXIT_USAGE and "no webhook named 'nope' (ops)" in r.output


def test_list_shows_dead_letters_and_replay_resends_them(engine: Engine, tmp_path: Path) -> None:
    with receiver() as rcv:
        cfg = config(tmp_path, engine, rcv.url, rcv.secret)
        with session_scope(engine) as s:
            s.add(
                WebhookDeadLetter(
                    webhook="ops",
                    event_id="chg_0_7",
                    position="0.7",
                    kind="user.deactivated",
                    resource_type="user",
                    resource_id="u1",
                    payload={"type": "user.deactivated", "timestamp": "x", "data": {"n": "[bold]x"}},
                    attempts=8,
                    error="HTTP 500: [red]boom",
                )
            )
        r = run(cfg, "webhooks", "--json")
        assert r.exit_code == 0, r.output
        (row,) = json.loads(r.stdout)
        assert row["name"] == "ops" and row["dead_letters"] == 1 and row["events"] == ["user.deactivated"]
        r = run(cfg, "webhooks")
        assert r.exit_code == 0 and "ops" in r.output
        r = run(cfg, "webhooks", "dead", "ops")
        assert r.exit_code == 0 and "chg_0_7" in r.output and "[red]boom" in r.output
        r = run(cfg, "webhooks", "replay", "ops")
        assert r.exit_code == 0 and "1 replayed, 0 refused again" in r.output
        assert [x.msg_id for x in rcv.delivered()] == ["chg_0_7"]
        r = run(cfg, "webhooks", "--json")
        assert json.loads(r.stdout)[0]["dead_letters"] == 0


def test_secret_prints_a_secret_the_config_accepts(engine: Engine, tmp_path: Path) -> None:
    r = run(tmp_path / "none.toml", "webhooks", "secret")
    secret = r.stdout.strip()
    assert r.exit_code == 0 and secret.startswith("whsec_")
    cfg = config(tmp_path, engine, "http://127.0.0.1:9/x", secret)
    r = run(cfg, "config", "check")
    assert r.exit_code == 0, r.output
    bad = config(tmp_path, engine, "http://127.0.0.1:9/x", "not base64!")
    r = run(bad, "config", "check")
    assert r.exit_code == EXIT_USAGE and "Standard Webhooks secret" in r.output


def test_config_check_shows_webhooks_with_the_secret_source_only(engine: Engine, tmp_path: Path) -> None:
    secret = new_secret()
    cfg = config(tmp_path, engine, "http://127.0.0.1:9/x?token=abc", secret, '[feed]\nretention = "7d"\n')
    r = run(cfg, "config", "check")
    assert r.exit_code == 0, r.output
    assert "ops" in r.output and "604800s" in r.output and secret not in r.output and "abc" not in r.output


def test_deliver_once_sends_what_is_pending_and_then_nothing(engine: Engine, tmp_path: Path) -> None:
    from syncd.service import users
    from syncd.service.context import Actor
    from syncd.service.tokens import ensure_directory
    from tests.feed.helpers import settled_head

    with receiver() as rcv:
        cfg = config(tmp_path, engine, rcv.url, rcv.secret)
        with session_scope(engine) as s:
            ensure_directory(s, name="d", kind="scim")
        r = run(cfg, "webhooks", "deliver", "--once")  # a new webhook starts at the head
        assert r.exit_code == 0 and "ops: 0 delivered" in r.output
        with session_scope(engine) as s:
            u = users.create_user(s, actor=Actor("scim", "d"), body={"userName": "ann@x"})
        with session_scope(engine) as s:
            users.set_active(s, actor=Actor("scim", "d"), user_id=u.id, active=False)
        settled_head(engine)
        r = run(cfg, "webhooks", "deliver", "--once")
        assert r.exit_code == 0 and "ops: 1 delivered, 0 dead-lettered" in r.output, r.output
        assert rcv.types() == ["user.deactivated"]
        assert "ops: 0 delivered" in run(cfg, "webhooks", "deliver", "--once").output
        r = run(cfg, "webhooks", "deliver")
        assert r.exit_code == EXIT_USAGE and "--once" in r.output
