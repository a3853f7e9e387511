"""End-to-end pulls from the fake Keycloak realm into SQLite and PostgreSQL (see test_e2e.py).

Keycloak nests groups as a tree, so team members are transitive; every read is full.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from syncd.reconcile.run import RunOptions, run_sync
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User
from tests.reconcile.test_e2e import FAST, audit_total, idp_state, tenant


@pytest.fixture
def directory() -> str:
    """A directory name of its own: run locks are database-wide and other suites run at once."""
    return f"kc-{uuid.uuid4().hex[:12]}"


def sync(engine, fake, url, tmp_path, directory, conn_opts=None, **opts):
    conn = fake.connector(url, directory=directory, **{**FAST, **(conn_opts or {})})
    return run_sync(engine, conn, RunOptions(lock_dir=tmp_path, **opts))


def store_state(engine, directory):
    with session_scope(engine, write=False) as s:
        us = {
            e: (n, a)
            for e, n, a in s.execute(
                select(User.external_id, User.user_name, User.active).where(User.directory == directory)
            )
        }
        ts = {
            e: (n, ar)
            for e, n, ar in s.execute(
                select(Team.external_id, Team.display_name, Team.archived).where(Team.directory == directory)
            )
        }
        ms = set(
            s.execute(
                select(Team.external_id, User.external_id)
                .join(Membership, Membership.team_id == Team.id)
                .join(User, User.id == Membership.user_id)
                .where(Team.directory == directory)
            ).tuples()
        )
        counts_ok = all(
            t.member_count
            == s.execute(
                select(func.count()).select_from(Membership).where(Membership.team_id == t.id)
            ).scalar_one()
            for t in s.execute(select(Team).where(Team.directory == directory)).scalars()
        )
    return us, ts, ms, counts_ok


def assert_converged(engine, fake, directory, *, gone_users=(), gone_teams=()) -> None:
    us, ts, ms, counts_ok = store_state(engine, directory)
    want_us, want_ts, want_ms = idp_state(fake)
    assert counts_ok
    assert {k: v for k, v in us.items() if k not in gone_users} == want_us
    assert all(us[k][1] is False for k in gone_users)
    assert {k: v for k, v in ts.items() if k not in gone_teams} == want_ts
    assert all(ts[k][1] is True for k in gone_teams)
    assert ms == want_ms


def test_first_sync_converges_and_a_second_run_writes_nothing(engine, tmp_path, directory) -> None:
    with running_fake("keycloak", tenant()) as (fake, url):
        r1 = sync(engine, fake, url, tmp_path, directory)
        assert r1.outcome == "applied" and r1.complete, r1.error
        assert_converged(engine, fake, directory)
        before = audit_total(engine)
        r2 = sync(engine, fake, url, tmp_path, directory)
        assert r2.outcome == "applied" and r2.plan is not None and r2.plan.empty
        assert audit_total(engine) == before


def test_realm_changes_converge_in_one_run(engine, tmp_path, directory) -> None:
    with running_fake("keycloak", tenant()) as (fake, url):
        assert sync(engine, fake, url, tmp_path, directory).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gids, uids = list(t.groups), list(t.users)
        t.add_member(gids[0], uids[-1])
        t.remove_member(gids[1], next(iter(t.groups[gids[1]].user_ids)))
        t.rename_group(gids[2], "renamed")
        t.update_user(uids[3], active=False)
        t.add_member(gids[5], gids[6])  # g6 moves under g5: its users now reach g5
        t.delete_group(gids[7])
        t.delete_user(uids[8])
        r = sync(engine, fake, url, tmp_path, directory, allow_deletes=True)
        assert r.outcome == "applied", r.error
        assert_converged(engine, fake, directory, gone_users={x(uids[8])}, gone_teams={x(gids[7])})
        again = sync(engine, fake, url, tmp_path, directory)
        assert again.plan is not None and again.plan.empty


def test_an_incomplete_read_removes_nothing(engine, tmp_path, directory) -> None:
    faults = FaultPlan()
    with running_fake("keycloak", tenant(), faults) as (fake, url):
        assert sync(engine, fake, url, tmp_path, directory).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gone = next(iter(t.users))
        t.delete_user(gone)
        t.add_group("brand-new")
        faults.add("error", path="/members", after=5, times=None, status=503)
        r = sync(engine, fake, url, tmp_path, directory, {"max_retries": 0})
        assert r.outcome == "partial" and not r.complete
        us, ts, _, _ = store_state(engine, directory)
        assert us[x(gone)][1] is True  # still active: an incomplete read removes nothing
        assert any(n == "brand-new" for n, _ in ts.values())
        counts = r.plan.counts()
        assert (counts.get("deactivate_user", 0), counts.get("remove_members", 0)) == (0, 0)
