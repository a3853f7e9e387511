"""SIGKILL of `syncd push --once` at random points, and a target restarted mid-push: the next
push converges with no duplicate user or team and no lost change. Both stores."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.testing.faults import FaultPlan
from syncd.service import teams, users
from syncd.store import session_scope
from syncd.targets import state as st
from syncd.targets.client import RetryPolicy
from syncd.targets.reconcile import full_reconcile
from syncd.targets.run import make_client, push_once
from tests.targets.helpers import (
    NAME,
    TOKEN,
    actor,
    add_team,
    add_user,
    differences,
    expected,
    gateway_state,
    setup_dirs,
    target,
)
from tests.targets.test_gateway import no_duplicates

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, engine, url: str) -> Path:
    cfg = tmp_path / "config.toml"
    store = engine.url.render_as_string(hide_password=False)
    cfg.write_text(
        f'state_dir = "{tmp_path}"\n[store]\nurl = "{store}"\n'
        '[directories.entra]\nkind = "scim"\n'
        f'[targets.{NAME}]\nkind = "scim"\nurl = "{url}"\ntoken = "{TOKEN}"\n'
        "concurrency = 3\nmember_chunk = 4\n"
        f"[targets.{NAME}.safety]\nallow_deletes = true\n"
    )
    return cfg


def mutate(engine, rng: random.Random, ids: list[str], team_ids: list[str], n: int) -> None:
    a = actor("entra")
    with session_scope(engine) as s:
        for _ in range(n):
            what = rng.choice(["add", "remove", "rename", "deactivate", "reactivate", "new"])
            tid, uid = rng.choice(team_ids), rng.choice(ids)
            if what == "add":
                teams.change_members(s, actor=a, team_id=tid, add=[uid])
            elif what == "remove":
                teams.change_members(s, actor=a, team_id=tid, remove=[uid])
            elif what == "rename":
                teams.patch_team(
                    s,
                    actor=a,
                    team_id=tid,
                    operations=[
                        {"op": "replace", "path": "displayName", "value": f"team-{rng.randrange(10**6)}"}
                    ],
                )
            elif what in ("deactivate", "reactivate"):
                users.set_active(s, actor=a, user_id=uid, active=what == "reactivate")
    if rng.random() < 0.3:
        new = add_user(engine, "entra", f"new{rng.randrange(10**9)}@x")
        ids.append(new)
        with session_scope(engine) as s:
            teams.change_members(s, actor=a, team_id=rng.choice(team_ids), add=[new])


@pytest.mark.parametrize("trials", [int(os.environ.get("SYNCD_CRASH_TRIALS", "30"))])
def test_sigkill_of_push_at_random_points_then_the_next_push_converges(
    engine, gateway, tmp_path, trials
) -> None:
    rng = random.Random(int(os.environ.get("SYNCD_CRASH_SEED", "7")))
    setup_dirs(engine, "entra")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(60)]
    team_ids = [add_team(engine, "entra", f"team-{j}", rng.sample(ids, 12)) for j in range(8)]
    gateway.gw.faults = FaultPlan()
    gateway.gw.faults.add("timeout", delay=0.004, times=None)  # every request takes a little while
    cfg = write_config(tmp_path, engine, gateway.url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = 0
    for trial in range(trials):
        if trial:
            mutate(engine, rng, ids, team_ids, rng.randint(1, 6))
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--config", str(cfg), "push", "--once", "--json"]
            + (["--full"] if trial % 7 == 3 else []),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(30)
        no_duplicates(gateway)
    assert killed >= trials // 3, f"only {killed} of {trials} pushes were killed mid-way: make them longer"
    t = target(gateway.url, member_chunk=4, safety={"allow_deletes": True})
    c = make_client(t, retry=RetryPolicy(attempts=3, base=0.01))
    deadline = time.monotonic() + 60
    while True:  # incremental only: proves the cursor lost no change (PostgreSQL may withhold some a while)
        outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=c)
        assert all(o.outcome == "applied" for o in outs), [o.error for o in outs]
        if gateway_state(gateway.gw) == expected(engine, t) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert gateway_state(gateway.gw) == expected(engine, t), differences(
        gateway_state(gateway.gw), expected(engine, t)
    )
    no_duplicates(gateway)
    check = make_client(t)
    assert full_reconcile(engine, NAME, t, check, dry_run=True).plan.is_empty()
    assert st.get_state(engine, NAME).position is not None


def test_a_target_restarted_mid_push_converges(engine, gateway, tmp_path) -> None:
    setup_dirs(engine, "entra")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(80)]
    for j in range(6):
        add_team(engine, "entra", f"team-{j}", ids[j * 10 : j * 10 + 20])
    gateway.gw.faults = FaultPlan()
    gateway.gw.faults.add("timeout", delay=0.01, times=None)
    t = target(gateway.url, member_chunk=5)
    c = make_client(t, retry=RetryPolicy(attempts=8, base=0.2, cap=1.0))
    import threading

    def bounce() -> None:
        while len(gateway.gw.users) < 20:
            time.sleep(0.01)
        gateway.restart()

    th = threading.Thread(target=bounce)
    th.start()
    outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=c)
    th.join()
    if any(o.outcome != "applied" for o in outs):  # the retries ran out while it was down: resume
        outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=make_client(t))
    assert all(o.outcome == "applied" for o in outs), [o.error for o in outs]
    assert gateway_state(gateway.gw) == expected(engine, t)
    no_duplicates(gateway)
