"""Incremental delivery from the change feed, on both stores: each change costs the fewest
writes, the cursor moves only after the target acknowledged, and failures resume."""

from __future__ import annotations

import time

import pytest

from syncd.service import teams, users
from syncd.store import session_scope
from syncd.targets import state as st
from syncd.targets.client import RetryPolicy
from syncd.targets.run import make_client, push_once
from tests.targets.helpers import NAME, actor, add_team, add_user, expected, gateway_state, setup_dirs, target

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


def _push(engine, t, tmp_path, **kw):
    c = make_client(t, retry=FAST)
    try:
        outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=c, **kw)
    finally:
        c.close()
    return outs, c


def push(engine, t, tmp_path, *, gateway=None, **kw):
    """One push; with `gateway`, pushes again until the target equals the store, summing the
    requests. On PostgreSQL the feed withholds changes while any older transaction of the
    database is open (other tests run at once): they are delivered by a later pass."""
    outs, c = _push(engine, t, tmp_path, **kw)
    deadline = time.monotonic() + 60
    while (
        gateway is not None
        and gateway_state(gateway.gw) != expected(engine, t)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
        more, c2 = _push(engine, t, tmp_path, **kw)
        outs += more
        c.stats.writes += c2.stats.writes
        c.stats.by_status.update(c2.stats.by_status)
    return outs, c


def writes(outs) -> int:
    return outs[-1].writes if outs else 0


@pytest.fixture
def world(engine, gateway, tmp_path):
    setup_dirs(engine, "entra", "other")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(8)]
    eng = add_team(engine, "entra", "eng", ids[:4])
    ops = add_team(engine, "entra", "ops", ids[4:7])
    t = target(gateway.url, sources=["entra"])
    outs, _ = push(engine, t, tmp_path)
    assert [o.mode for o in outs] == ["full", "incremental"] and outs[0].outcome == "applied"
    assert gateway_state(gateway.gw) == expected(engine, t)
    assert st.get_state(engine, NAME).position is not None
    return engine, gateway, t, ids, eng, ops, tmp_path


def test_nothing_changed_nothing_sent(world) -> None:
    engine, _gateway, t, *_, tmp_path = world
    outs, c = push(engine, t, tmp_path)
    assert [o.mode for o in outs] == ["incremental"] and c.stats.writes == 0


def test_each_change_costs_the_fewest_writes(world) -> None:
    engine, gateway, t, ids, eng, ops, tmp_path = world
    a = actor("entra")
    with session_scope(engine) as s:  # a rename: one PATCH
        teams.patch_team(
            s,
            actor=a,
            team_id=eng,
            operations=[{"op": "replace", "path": "displayName", "value": "engineering"}],
        )
    _, c = push(engine, t, tmp_path, gateway=gateway)
    assert c.stats.writes == 1
    new = [add_user(engine, "entra", f"new{i}@x") for i in range(3)]
    with session_scope(engine) as s:  # three members added to one team in one transaction
        teams.change_members(s, actor=a, team_id=ops, add=new)
    _, c = push(engine, t, tmp_path, gateway=gateway)
    assert c.stats.writes == 3 + 1  # three users created, one PATCH for the three members
    assert gateway_state(gateway.gw) == expected(engine, t)
    with session_scope(engine) as s:  # a deactivation: one PATCH active=false
        users.set_active(s, actor=a, user_id=ids[0], active=False)
    _, c = push(engine, t, tmp_path, gateway=gateway)
    assert c.stats.writes == 1
    assert gateway.gw.users[st.load_map(engine, NAME)[("user", ids[0])].remote_id].active is False
    assert gateway_state(gateway.gw) == expected(engine, t)
    with session_scope(engine) as s:  # back: one PATCH active=true
        users.set_active(s, actor=a, user_id=ids[0], active=True)
    _, c = push(engine, t, tmp_path, gateway=gateway)
    assert c.stats.writes == 1 and gateway_state(gateway.gw) == expected(engine, t)
    with session_scope(engine) as s:  # one member out of one team: one PATCH
        teams.change_members(s, actor=a, team_id=eng, remove=[ids[2]])
    _outs, c = push(engine, t, tmp_path, gateway=gateway)
    assert c.stats.writes == 1 and gateway_state(gateway.gw) == expected(engine, t)


def test_deletes_archives_and_out_of_scope_changes(world) -> None:
    engine, gateway, t, ids, _eng, ops, tmp_path = world
    a = actor("entra")
    add_user(engine, "other", "elsewhere@x")
    add_team(engine, "other", "not-delivered")
    with session_scope(engine) as s:
        teams.set_archived(s, actor=a, team_id=ops, archived=True)
        users.delete_user(s, actor=a, user_id=ids[1])
    outs, _c = push(engine, t, tmp_path, gateway=gateway)
    assert outs[-1].outcome == "applied", outs[-1].error
    assert gateway_state(gateway.gw) == expected(engine, t)
    assert "not-delivered" not in {tm.alias for tm in gateway.gw.teams.values()}
    with session_scope(engine) as s:
        teams.set_archived(s, actor=a, team_id=ops, archived=False)
    push(engine, t, tmp_path, gateway=gateway)
    assert gateway_state(gateway.gw) == expected(engine, t)


def test_a_team_deleted_behind_syncds_back_is_recreated_and_remapped(world) -> None:
    engine, gateway, t, ids, eng, _ops, tmp_path = world
    old = st.load_map(engine, NAME)[("team", eng)].remote_id
    with gateway.gw._lock:
        del gateway.gw.teams[old]
        gateway.gw._changed("teams")
    with session_scope(engine) as s:
        teams.change_members(s, actor=actor("entra"), team_id=eng, add=[ids[7]])
    _outs, _ = push(engine, t, tmp_path, gateway=gateway)
    new = st.load_map(engine, NAME)[("team", eng)].remote_id
    assert new in gateway.gw.teams  # (this gateway takes the externalId as the id: it may be the old one)
    assert gateway_state(gateway.gw) == expected(engine, t)


def test_the_cursor_waits_for_the_target_and_delivery_resumes(world) -> None:
    engine, gateway, t, ids, eng, _ops, tmp_path = world
    before = st.get_state(engine, NAME).position
    add_user(engine, "entra", "late@x")
    with session_scope(engine) as s:
        teams.change_members(s, actor=actor("entra"), team_id=eng, add=[ids[5]])
    gateway.srv.stop()
    outs, _ = push(engine, t, tmp_path)
    assert outs[-1].outcome == "unreachable"
    state = st.get_state(engine, NAME)
    assert state.position == before and "cannot connect" in (state.last_error or "")
    gateway.restart()
    outs, _ = push(engine, t, tmp_path, gateway=gateway)
    assert outs[-1].outcome == "applied"
    assert gateway_state(gateway.gw) == expected(engine, t)
    assert st.get_state(engine, NAME).position != before
