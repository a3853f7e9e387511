"""`syncd push --once` and `syncd targets`: exit codes, the dry-run plan, lag, errors. Both stores."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from syncd.service import teams
from syncd.store import session_scope
from tests.targets.helpers import (
    NAME,
    TOKEN,
    actor,
    add_team,
    add_user,
    expected,
    gateway_state,
    setup_dirs,
    target,
)


def run(cfg, *args: str):
    return CliRunner().invoke(app, ["--config", str(cfg), *args], env={"COLUMNS": "300"})


def flat(text: str) -> str:
    return " ".join(text.split())


def config(tmp_path, engine, url: str, extra: str = "") -> object:
    cfg = tmp_path / "config.toml"
    store = engine.url.render_as_string(hide_password=False)
    cfg.write_text(
        f'state_dir = "{tmp_path}"\n[store]\nurl = "{store}"\n[directories.entra]\nkind = "scim"\n'
        f'[targets.{NAME}]\nkind = "scim"\nurl = "{url}"\ntoken = "{TOKEN}"\n{extra}'
    )
    return cfg


def seed(engine) -> tuple[list[str], list[str]]:
    setup_dirs(engine, "entra")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(25)]
    tids = [
        add_team(engine, "entra", name, ids[i * 5 : i * 5 + 10])
        for i, name in enumerate(["eng", "<b>ops</b>"])
    ]
    return ids, tids


def test_dry_run_shows_each_object_then_push_delivers_and_targets_reports(engine, gateway, tmp_path) -> None:
    seed(engine)
    cfg = config(tmp_path, engine, gateway.url)
    r = run(cfg, "push", "--once", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "planned (dry run" in r.stdout and "create team" in r.stdout and "<b>ops</b>" in r.stdout
    assert gateway.gw.writes == 0
    r = run(cfg, "push", "--once", "--target", NAME)
    assert r.exit_code == 0, r.output
    assert "delivered" in r.stdout
    assert gateway_state(gateway.gw) == expected(engine, target(gateway.url))
    rows = json.loads(run(cfg, "targets", "--json").stdout)
    assert rows[0]["target"] == NAME and rows[0]["connected"] and rows[0]["last_full_at"]
    r = run(cfg, "targets")
    assert r.exit_code == 0 and NAME in r.stdout
    out = json.loads(run(cfg, "push", "--once", "--json").stdout)
    assert out[-1]["writes"] == 0


def test_a_safety_stop_exits_3_and_writes_nothing(engine, gateway, tmp_path) -> None:
    ids, tids = seed(engine)
    cfg = config(tmp_path, engine, gateway.url, f"[targets.{NAME}.safety]\nmax_removals = 2\n")
    assert run(cfg, "push", "--once").exit_code == 0
    with session_scope(engine) as s:
        teams.change_members(s, actor=actor("entra"), team_id=tids[0], remove=ids[5:10])
    before = gateway.gw.writes
    r = run(cfg, "push", "--once", "--full")
    assert r.exit_code == 3, r.output
    assert "safety" in r.stdout and gateway.gw.writes == before
    assert run(cfg, "push", "--once", "--full", "--allow-deletes").exit_code == 0


def test_an_unreachable_or_refusing_target_exits_4_with_the_reason(engine, gateway, tmp_path) -> None:
    seed(engine)
    gateway.gw.licensed = False
    cfg = config(tmp_path, engine, gateway.url)
    r = run(cfg, "push", "--once")
    assert r.exit_code == 4 and "enterprise licence" in flat(r.stdout), r.output
    assert "Traceback" not in r.output
    rows = json.loads(run(cfg, "targets", "--json").stdout)
    assert "licence" in rows[0]["last_error"]
    cfg2 = config(tmp_path, engine, "http://127.0.0.1:9/scim/v2", "timeout = 2\n")
    r = run(cfg2, "push", "--once")
    assert r.exit_code == 4 and "cannot connect" in flat(r.stdout), r.output


def test_usage_errors(engine, gateway, tmp_path) -> None:
    cfg = config(tmp_path, engine, gateway.url)
    r = run(cfg, "push")
    assert r.exit_code == 2 and "--once" in r.output
    r = run(cfg, "push", "--once", "--target", "nope")
    assert r.exit_code == 2 and "no target named nope" in r.output
    r = run(cfg, "config", "check")
    assert r.exit_code == 0 and "delivery targets" in r.stdout and NAME in r.stdout
