"""One contract for every pull connector, through the real SDKs against the fakes over HTTP.

Each case asserts on the resulting Snapshot (what reconcile would see), never on calls made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.base import AuthError, Connector
from connectors.testing.faults import FaultPlan
from connectors.testing.harness import FakeIdP, running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

KINDS = ["graph", "okta", "google", "onelogin"]
#: a path fragment that only member reads contain, per vendor
MEMBERS_PATH = {"graph": "transitiveMembers", "okta": "/groups/", "google": "/members", "onelogin": "/roles/"}
FAST = {"page_size": 7, "concurrency": 4, "max_retries": 3, "time_budget": 60.0, "request_timeout": 5.0}


def tenant() -> Tenant:
    return generate(seed=7, users=60, groups=12, members_per_group=9, nesting_depth=2, disabled_fraction=0.2)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(conn: Connector, cursor: str | None = None) -> Snapshot:
    async with conn:
        return await conn.snapshot(cursor=cursor)


def expected(fake: FakeIdP) -> tuple[dict[str, tuple[str, bool]], dict[str, tuple[str, frozenset[str]]]]:
    t, x = fake.tenant, fake.external_id
    users = {x(u.id): (u.user_name, u.active) for u in t.users.values()}
    groups = {}
    for g in t.groups.values():
        ids = t.transitive_user_ids(g.id) if fake.supports_nesting else g.user_ids
        groups[x(g.id)] = (g.name, frozenset(x(u) for u in ids))
    return users, groups


def observed(snap: Snapshot) -> tuple[dict[str, tuple[str, bool]], dict[str, tuple[str, frozenset[str]]]]:
    users = {k: (u.user_name, u.active) for k, u in snap.users.items()}
    groups = {k: (g.display_name, frozenset(g.member_ids)) for k, g in snap.groups.items()}
    return users, groups


def merge(prev: Snapshot, delta: Snapshot) -> Snapshot:
    """What reconcile makes of a delta: the previous full view with the changes applied."""
    if delta.mode == "full":
        return delta
    users = {k: v for k, v in {**prev.users, **delta.users}.items() if k not in delta.removed_users}
    groups = {k: v for k, v in {**prev.groups, **delta.groups}.items() if k not in delta.removed_groups}
    return Snapshot(prev.directory, "full", users, groups, complete=delta.complete)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_full_snapshot_matches_tenant_across_many_pages(kind: str) -> None:
    with running_fake(kind, tenant()) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert snap.mode == "full"
        assert observed(snap) == expected(fake)
        assert snap.stats.pages > len(fake.tenant.groups)  # users and groups needed several pages
        assert sum(1 for u in snap.users.values() if not u.active) > 0


def test_one_throttle_is_waited_out_and_counted(kind: str) -> None:
    faults = FaultPlan()
    faults.add("throttle", path=MEMBERS_PATH[kind], after=2, times=1, retry_after=1)
    with running_fake(kind, tenant(), faults) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert snap.stats.throttles >= 1
        assert observed(snap) == expected(fake)


def test_endless_throttling_gives_an_incomplete_snapshot_within_budget(kind: str) -> None:
    faults = FaultPlan()
    faults.add("throttle", path=MEMBERS_PATH[kind], after=1, times=None, retry_after=1)
    opts = {**FAST, "max_retries": 2, "time_budget": 8.0}
    with running_fake(kind, tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **opts)))
        assert time.monotonic() - t0 < 8.0 + 10.0
        assert not snap.complete and snap.problems
        assert set(snap.groups) == set(expected(fake)[1])  # what was read is still reported


@pytest.mark.parametrize("status", [500, 503])
def test_one_server_error_is_retried(kind: str, status: int) -> None:
    faults = FaultPlan()
    faults.add("error", path=MEMBERS_PATH[kind], after=1, times=1, status=status)
    with running_fake(kind, tenant(), faults) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert observed(snap) == expected(fake)


def test_persistent_server_errors_give_an_incomplete_snapshot(kind: str) -> None:
    faults = FaultPlan()
    faults.add("error", path=MEMBERS_PATH[kind], after=3, times=None, status=503)
    with running_fake(kind, tenant(), faults) as (fake, url):
        snap = run(take(fake.connector(url, **{**FAST, "max_retries": 1, "time_budget": 20.0})))
        assert not snap.complete and snap.problems


def test_a_page_that_never_comes_is_retried(kind: str) -> None:
    faults = FaultPlan()
    faults.add("timeout", path=MEMBERS_PATH[kind], after=1, times=1, delay=30)
    with running_fake(kind, tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **{**FAST, "request_timeout": 1.0})))
        assert time.monotonic() - t0 < 25
        assert snap.complete, snap.problems
        assert observed(snap) == expected(fake)


def test_bad_json_is_never_silently_wrong(kind: str) -> None:
    faults = FaultPlan()
    faults.add("bad_json", path=MEMBERS_PATH[kind], after=1, times=1)
    with running_fake(kind, tenant(), faults) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert (not snap.complete and snap.problems) or observed(snap) == expected(fake)


def test_revoked_credentials_raise_auth_error(kind: str) -> None:
    faults = FaultPlan()
    faults.add("revoked", times=None)
    with running_fake(kind, tenant(), faults) as (fake, url), pytest.raises(AuthError):
        run(take(fake.connector(url, **FAST)))


def test_incremental_read_converges_to_a_full_read(kind: str) -> None:
    with running_fake(kind, tenant()) as (fake, url):
        first = run(take(fake.connector(url, **FAST)))
        t = fake.tenant
        gids, uids = list(t.groups), list(t.users)
        t.add_member(gids[0], uids[-1])
        t.remove_member(gids[1], next(iter(t.groups[gids[1]].user_ids)))
        t.rename_group(gids[2], "renamed-team")
        t.update_user(uids[3], active=not t.users[uids[3]].active)
        t.delete_group(gids[4])
        newbie = t.add_user("newbie@contoso.example", "New", "Bie")
        t.add_member(gids[5], newbie.id)
        t.delete_user(uids[7])
        second = run(take(fake.connector(url, **FAST), cursor=first.cursor))
        assert second.complete, second.problems
        if fake.supports_delta:
            assert second.mode == "delta"
        full = run(take(fake.connector(url, **FAST)))
        assert observed(merge(first, second)) == observed(full) == expected(fake)


def test_expired_cursor_falls_back_to_a_full_read(kind: str) -> None:
    faults = FaultPlan()
    with running_fake(kind, tenant(), faults) as (fake, url):
        first = run(take(fake.connector(url, **FAST)))
        faults.add("expired_cursor", times=None)
        t = fake.tenant
        t.rename_group(next(iter(t.groups)), "after-expiry")
        second = run(take(fake.connector(url, **FAST), cursor=first.cursor))
        assert second.complete and second.mode == "full"
        assert observed(second) == expected(fake)


def test_user_groups_for_login(kind: str) -> None:
    with running_fake(kind, tenant()) as (fake, url):
        t, x = fake.tenant, fake.external_id
        nested = next(g for g in t.groups.values() if g.group_ids)
        inner = t.groups[next(iter(nested.group_ids))]
        user = t.users[next(iter(inner.user_ids))]
        want_ids = t.transitive_group_ids(user.id) if fake.supports_nesting else t.parent_group_ids(user.id)
        want = {x(g) for g in want_ids}
        if fake.supports_nesting:
            assert x(nested.id) in want

        async def both() -> tuple[Any, Any, Any]:
            async with fake.connector(url, **FAST) as conn:
                return (
                    await conn.user_groups(x(user.id)),
                    await conn.user_groups(user.user_name),
                    await conn.user_groups("nobody@contoso.example"),
                )

        by_id, by_name, unknown = run(both())
        for ug in (by_id, by_name):
            assert ug.user is not None and ug.user.external_id == x(user.id)
            assert {g.external_id for g in ug.groups} == want
        assert unknown.user is None and unknown.groups == ()
