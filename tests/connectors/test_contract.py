"""One contract for every pull connector, through the real SDKs against the fakes over HTTP.

Each case asserts on the resulting Snapshot (what reconcile would see), never on calls made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.base import AuthError, Connector, UnavailableError
from connectors.testing.faults import FaultPlan
from connectors.testing.harness import FakeIdP, running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

KINDS = ["graph", "okta", "google", "onelogin", "keycloak", "auth0"]
#: a path fragment that only member reads contain, per vendor
MEMBERS_PATH = {
    "graph": "transitiveMembers",
    "okta": "/groups/",
    "google": "/members",
    "onelogin": "/roles/",
    "auth0": "/roles/rol_",
    "keycloak": "/members",
}
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


# -- an IdP that dies mid-read (issue 9, defect 7) --------------------------------------------

#: connection failures in a row that open the breaker in these tests (the default)
BREAKER = 5


def test_an_idp_that_dies_mid_read_stops_the_read_incomplete_after_few_attempts(kind: str) -> None:
    """The host dies after a few member reads: the snapshot is incomplete (so nothing will be
    removed) and says why, and the requests sent to the dead host are bounded by the breaker
    (plus the requests already in flight), not by the groups left times the retries."""
    faults = FaultPlan()
    faults.add("die", path=MEMBERS_PATH[kind], after=3)
    big = generate(seed=9, users=80, groups=40, members_per_group=6, nesting_depth=1)
    opts = {**FAST, "max_retries": 3, "time_budget": 120.0, "max_connection_failures": BREAKER}
    with running_fake(kind, big, faults) as (fake, url):
        snap = run(take(fake.connector(url, **opts)))
        assert faults.dead
        assert not snap.complete
        assert any("stopped answering" in p for p in snap.problems), snap.problems
        assert len(snap.problems) <= 3, snap.problems  # one breaker problem, not one per group
        # without the breaker: 40 groups x 4 attempts; with it: the breaker's 5 plus what was in flight
        assert faults.after_death <= BREAKER + FAST["concurrency"] + 2, faults.after_death
        # what was read before the death is still reported (Google lists users and groups at
        # once, so which of the two got in before the death varies from run to run)
        assert snap.users or snap.groups


def test_an_idp_dead_from_the_start_raises_unavailable(kind: str) -> None:
    faults = FaultPlan()
    faults.add("die", path="", after=0)
    opts = {**FAST, "max_retries": 3, "time_budget": 120.0, "max_connection_failures": BREAKER}
    with running_fake(kind, tenant(), faults) as (fake, url), pytest.raises(UnavailableError):
        run(take(fake.connector(url, **opts)))
    assert faults.after_death <= BREAKER + FAST["concurrency"] + 2, faults.after_death


# -- Okta: a System Log that cannot be read (issue 9, defect 8) --------------------------------


@pytest.mark.parametrize(
    "fault",
    [("error", 403), ("error", 404), ("expired_cursor", 400), ("error", 500), ("bad_json", 200)],
    ids=["403", "404", "400-since", "500", "unparsable"],
)
def test_okta_unreadable_system_log_falls_back_to_a_full_read_with_a_note(fault: tuple[str, int]) -> None:
    kind_, status = fault
    faults = FaultPlan()
    with running_fake("okta", tenant(), faults) as (fake, url):
        first = run(take(fake.connector(url, **FAST)))
        faults.add(kind_, path="/api/v1/logs", times=None, status=status)  # type: ignore[arg-type]
        t = fake.tenant
        gone = next(iter(t.groups))
        t.delete_group(gone)  # only the System Log (or a full read) can tell
        t.rename_group(next(iter(t.groups)), "after-the-log-broke")
        second = run(take(fake.connector(url, **{**FAST, "max_retries": 1}), cursor=first.cursor))
        assert second.complete, second.problems
        assert second.mode == "full"
        assert observed(second) == expected(fake)
        assert fake.external_id(gone) not in second.groups
        assert any("System Log could not be read" in n for n in second.notes), second.notes


# -- login lookups agree with snapshots (issue 9, defect 6) ------------------------------------


def whole_customer_options(kind: str, t: Tenant) -> dict[str, Any]:
    """Google: make a nested group whole-customer ("All staff" inside another group), the case
    ``groups.list(userKey)`` cannot see."""
    if kind != "google":
        return {}
    inner = next(c for g in t.groups.values() for c in sorted(g.group_ids))
    return {"customer_members": [inner]}


def test_user_groups_agree_with_the_snapshot_wherever_they_report(kind: str) -> None:
    """For every user: each group the login lookup returns has the user in the snapshot, and
    each snapshot group with the user is returned unless the lookup says it cannot see it."""
    t = tenant()
    with running_fake(kind, t, **whole_customer_options(kind, t)) as (fake, url):

        async def read() -> tuple[Snapshot, list[Any]]:
            async with fake.connector(url, **FAST) as conn:
                snap = await conn.snapshot()
                return snap, [await conn.user_groups(fake.external_id(u)) for u in list(t.users)[:25]]

        snap, lookups = run(read())
        assert snap.complete, snap.problems
        for ug in lookups:
            uid = ug.user.external_id
            in_snapshot = {g for g, grp in snap.groups.items() if uid in grp.member_ids}
            returned = {g.external_id for g in ug.groups}
            assert returned <= in_snapshot, (uid, returned - in_snapshot)
            assert {g for g in in_snapshot if ug.reports(g)} <= returned, uid
            assert ug.complete and not ug.unseen  # these lookups can see every membership
        if kind == "google":  # the whole-customer groups reached every user by the lookup too
            wide = {g for g, grp in snap.groups.items() if grp.member_ids == frozenset(snap.users)}
            assert wide and all(wide <= {g.external_id for g in ug.groups} for ug in lookups)


def test_google_login_lookup_that_cannot_tell_whole_customer_groups_reports_no_absence() -> None:
    t = tenant()
    opts = whole_customer_options("google", t)
    faults = FaultPlan()
    with running_fake("google", t, faults, **opts) as (fake, url):
        faults.add("timeout", path="/members", times=None, delay=20)  # only discovery reads members
        user = next(u for u in t.users.values() if t.parent_group_ids(u.id))

        async def lookup() -> Any:
            async with fake.connector(url, **{**FAST, "time_budget": 3.0}) as conn:
                return await conn.user_groups(user.user_name)

        ug = run(lookup())
        x = fake.external_id
        assert not ug.complete and ug.notes
        assert not any(ug.reports(x(g)) for g in t.groups)  # so a login removes nothing
        assert {g.external_id for g in ug.groups} == {x(g) for g in t.transitive_group_ids(user.id)}
