"""OneLogin end to end: the real connector over HTTP against the fake account, into SQLite and
PostgreSQL. Roles are teams (flat: a role's members are its direct members)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from connectors.testing.tenant import generate
from syncd.reconcile.run import RunOptions, run_sync
from syncd.service import users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import User
from tests.reconcile.test_e2e import audit_total, store_state

DIR = "onelogin"
FAST = {"page_size": 50, "concurrency": 4, "max_retries": 3, "time_budget": 120.0, "request_timeout": 30.0}


def tenant():
    return generate(
        seed=5, users=150, groups=12, members_per_group=15, nesting_depth=0, disabled_fraction=0.15
    )


def sync(engine, fake, url, lock_dir, conn_opts=None, **opts):
    conn = fake.connector(url, directory=DIR, **{**FAST, **(conn_opts or {})})
    return run_sync(engine, conn, RunOptions(lock_dir=lock_dir, **opts))


def idp_state(fake):
    """What the store should hold: users with their mapped state/status, roles as teams."""
    from connectors.onelogin.reader import is_active

    t, x = fake.tenant, fake.external_id
    us = {x(u.id): (u.user_name, is_active(*fake.user_codes(u.id))) for u in t.users.values()}
    ts = {x(g.id): (g.name, False) for g in t.groups.values()}
    ms = {(x(g.id), x(u)) for g in t.groups.values() for u in g.user_ids}
    return us, ts, ms


def lock_dir(tmp_path):
    d = tmp_path / uuid.uuid4().hex  # advisory-lock keys are database-wide: unique per test
    d.mkdir()
    return d


def test_pull_converges_and_a_second_run_writes_nothing(engine, tmp_path) -> None:
    locks = lock_dir(tmp_path)
    with running_fake("onelogin", tenant()) as (fake, url):
        r1 = sync(engine, fake, url, locks)
        assert r1.outcome == "applied" and r1.complete, r1.error
        us, ts, ms, counts_ok = store_state(engine, DIR)
        assert (us, ts, ms) == idp_state(fake) and counts_ok
        before = audit_total(engine)
        r2 = sync(engine, fake, url, locks)
        assert r2.outcome == "applied" and r2.plan is not None and r2.plan.empty
        assert audit_total(engine) == before


def test_changes_converge_in_one_run(engine, tmp_path) -> None:
    locks = lock_dir(tmp_path)
    with running_fake("onelogin", tenant()) as (fake, url):
        assert sync(engine, fake, url, locks).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gids, uids = list(t.groups), list(t.users)
        t.add_member(gids[0], uids[-1])
        t.remove_member(gids[1], next(iter(t.groups[gids[1]].user_ids)))
        t.rename_group(gids[2], "renamed-role")
        fake.codes[uids[3]] = (1, 2)  # suspended
        t.update_user(uids[3])
        t.delete_group(gids[4])
        t.delete_user(uids[5])
        r = sync(engine, fake, url, locks, allow_deletes=True)
        assert r.outcome == "applied", r.error
        us, ts, ms, _ = store_state(engine, DIR)
        want_us, want_ts, want_ms = idp_state(fake)
        assert {k: v for k, v in us.items() if k != x(uids[5])} == want_us and us[x(uids[5])][1] is False
        assert us[x(uids[3])][1] is False
        assert {k: v for k, v in ts.items() if k != x(gids[4])} == want_ts and ts[x(gids[4])][1] is True
        assert ms == want_ms


def test_an_incomplete_read_removes_nothing(engine, tmp_path) -> None:
    locks = lock_dir(tmp_path)
    faults = FaultPlan()
    with running_fake("onelogin", tenant(), faults) as (fake, url):
        assert sync(engine, fake, url, locks).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gone = next(iter(u for u in t.users.values() if idp_state(fake)[0][x(u.id)][1]))
        t.delete_user(gone.id)
        g = next(iter(t.groups.values()))
        t.remove_member(g.id, next(iter(g.user_ids)))
        t.add_group("brand-new-role")
        faults.add("error", path="/roles/", after=3, times=None, status=503)
        r = sync(engine, fake, url, locks, {"max_retries": 0})
        assert r.outcome == "partial" and not r.complete
        us, ts, _, _ = store_state(engine, DIR)
        assert us[x(gone.id)][1] is True  # still active: an incomplete read removes nothing
        assert "brand-new-role" in {n for n, _ in ts.values()}  # additions went in
        counts = r.plan.counts()
        assert counts.get("deactivate_user", 0) == counts.get("remove_members", 0) == 0


def test_scim_push_and_pull_of_the_same_user_converge_on_external_id(engine, tmp_path) -> None:
    """OneLogin's SCIM provisioner sends `externalId` = the OneLogin user id ({$user.id})."""
    locks = lock_dir(tmp_path)
    with running_fake("onelogin", tenant()) as (fake, url):
        u = next(iter(fake.tenant.users.values()))
        ext = fake.external_id(u.id)
        with session_scope(engine) as s:
            from syncd.service.tokens import ensure_directory

            ensure_directory(s, name=DIR, kind="onelogin")
            pushed = users.create_user(
                s,
                actor=Actor("scim", DIR, "token:onelogin"),
                body={  # as OneLogin's SCIM provisioner sends it: emails as one object
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": u.user_name,
                    "externalId": ext,
                    "name": {"givenName": u.given_name, "familyName": u.family_name},
                    "emails": {"value": u.user_name, "type": "work"},
                },
            )
        assert sync(engine, fake, url, locks).outcome == "applied"
        with session_scope(engine, write=False) as s:
            rows = s.execute(select(User.id).where(User.user_name == u.user_name)).scalars().all()
            by_ext = s.execute(select(User.id).where(User.external_id == ext)).scalars().all()
        assert rows == by_ext == [pushed.id]
