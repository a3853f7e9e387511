"""The daemon's target workers: a committed change reaches the target without a poll, lag and
requests show in the metrics, and a second replica's worker never delivers at the same time."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest

from syncd.config import parse_config
from syncd.service import teams
from syncd.store import session_scope
from syncd.targets.worker import TargetWorkers
from tests.targets.helpers import NAME, TOKEN, actor, add_team, add_user, expected, gateway_state, setup_dirs


def settings_for(url: str, tmp_path):
    return parse_config(
        f'state_dir = "{tmp_path}"\n[directories.entra]\nkind = "scim"\n'
        f'[targets.{NAME}]\nkind = "scim"\nurl = "{url}"\ntoken = "{TOKEN}"\n'
    )


def wait_for(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_workers_deliver_changes_as_they_commit(engine, gateway, tmp_path) -> None:
    setup_dirs(engine, "entra")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(5)]
    team = add_team(engine, "entra", "eng", ids[:3])
    s = settings_for(gateway.url, tmp_path)
    t = s.targets[NAME]
    registry = CollectorRegistry()
    workers = TargetWorkers(engine, lambda: s, registry)
    workers.start()
    try:
        assert wait_for(lambda: gateway_state(gateway.gw) == expected(engine, t))
        with session_scope(engine) as sess:
            teams.change_members(sess, actor=actor("entra"), team_id=team, add=ids[3:])
        assert wait_for(lambda: gateway_state(gateway.gw) == expected(engine, t))
        text = generate_latest(registry).decode()
        assert f'syncd_target_changes_delivered_total{{target="{NAME}"}}' in text
        assert f'syncd_target_requests_total{{method="POST",status="201",target="{NAME}"}}' in text
        assert f'syncd_target_lag_changes{{target="{NAME}"}}' in text
    finally:
        workers.shutdown(10)
    assert all(not w.is_alive() for w in workers.workers.values())
