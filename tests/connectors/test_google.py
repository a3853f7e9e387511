"""Google-specific behaviour of `GoogleConnector`, through the real SDK against the fake
Directory API on 127.0.0.1 (paging, auth, throttling, ids, nesting, error mapping)."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from typing import Any

import google.auth.exceptions as gauth
import google_auth_httplib2
import httplib2
import httpx
import orjson
import pytest
from googleapiclient.errors import HttpError

from connectors.base import (
    AuthError,
    BadDataError,
    BudgetExceeded,
    ConfigError,
    ConnectorError,
    CursorExpired,
    NotFoundError,
    ThrottledError,
    UnavailableError,
    connector_class,
)
from connectors.google import GoogleConnector
from connectors.google.client import load_credentials
from connectors.google.errors import redact, translate
from connectors.testing.faults import FaultPlan
from connectors.testing.google import (
    close_first_chain,
    google_group_id,
    google_user_id,
    new_key,
    service_account_info,
)
from connectors.testing.harness import running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot, UserGroups

FAST = {"max_retries": 3, "time_budget": 20.0, "request_timeout": 5.0, "max_backoff": 0.2,
        "concurrency": 4}


def small() -> Tenant:
    return generate(users=60, groups=8, members_per_group=10, nesting_depth=2, seed=7)


def read(tenant: Tenant, faults: FaultPlan | None = None, fake_options: dict | None = None,
         *, login: str | None = None, **options: Any) -> tuple[Any, Snapshot | UserGroups]:
    """Start the fake, run one snapshot (or one login lookup), return (fake, answer)."""
    with running_fake("google", tenant, faults, **(fake_options or {})) as (fake, url):
        conn = fake.connector(url, **{**FAST, **options})

        async def go() -> Snapshot | UserGroups:
            async with conn:
                return await (conn.user_groups(login) if login else conn.snapshot())

        return fake, asyncio.run(go())


def expected_members(fake: Any, tenant: Tenant, gid: str) -> frozenset[str]:
    return frozenset(fake.external_id(u) for u in tenant.transitive_user_ids(gid))


def assert_matches(fake: Any, tenant: Tenant, snap: Snapshot) -> None:
    assert snap.mode == "full"
    assert set(snap.users) == {fake.external_id(u) for u in tenant.users}
    assert set(snap.groups) == {fake.external_id(g) for g in tenant.groups}
    for gid, g in tenant.groups.items():
        assert snap.groups[fake.external_id(gid)].member_ids == expected_members(fake, tenant, gid)
        assert snap.groups[fake.external_id(gid)].display_name == g.name


# -- paging, ids, fields ----------------------------------------------------------------------


def test_small_pages_are_all_followed_and_counted() -> None:
    tenant = small()
    fake, snap = read(tenant, page_size=7)
    assert snap.complete and not snap.problems
    assert_matches(fake, tenant, snap)
    member_pages = sum(max(1, -(-(len(g.user_ids) + len(g.group_ids)) // 7))
                       for g in tenant.groups.values())
    assert snap.stats.pages == -(-60 // 7) + -(-8 // 7) + member_pages
    assert snap.stats.api_calls == snap.stats.pages + 1  # + the token request


@pytest.mark.parametrize("slow", ["users", "members"])
def test_members_are_checked_against_the_whole_users_list(slow: str) -> None:
    """A group's members are matched to directory users as its read arrives, or, when the
    users list is not read whole yet, once it is: either way each group has all its users."""
    tenant = generate(users=60, groups=8, members_per_group=10, nesting_depth=2, seed=7)
    faults = FaultPlan()
    path = "/users" if slow == "users" else "/members"
    faults.add("throttle", path=path, after=1, times=2, retry_after=0.2)
    phases: list[str] = []
    with running_fake("google", tenant, faults) as (fake, url):
        conn = fake.connector(url, **{**FAST, "page_size": 7, "concurrency": 4})

        async def go() -> Snapshot:
            async with conn:
                return await conn.snapshot(progress=lambda phase, n: phases.append(phase))

        snap = asyncio.run(go())
    assert snap.complete and snap.stats.throttles == 2
    assert_matches(fake, tenant, snap)
    last_users = len(phases) - 1 - phases[::-1].index("users")
    members_before = phases[:last_users].count("members")
    # the throttled side ends last (members are read in 4 threads, users page by page)
    assert members_before > 0 if slow == "users" else members_before < phases.count("members")


def test_snapshot_hands_the_frozen_heap_back_to_the_collector() -> None:
    """The read freezes what it has read (`gc.freeze`) as it goes; after it, success or
    failure, nothing stays frozen, so cyclic garbage made meanwhile is collectable again."""
    gc.unfreeze()
    frozen_during: list[int] = []
    tenant = small()
    with running_fake("google", tenant) as (fake, url):
        conn = fake.connector(url, **{**FAST, "page_size": 7})

        async def go() -> Snapshot:
            async with conn:
                return await conn.snapshot(progress=lambda phase, n: frozen_during.append(
                    gc.get_freeze_count()))

        snap = asyncio.run(go())
    assert snap.complete
    assert max(frozen_during) > 0
    assert gc.get_freeze_count() == 0
    faults = FaultPlan()
    faults.add("revoked", path="/groups", times=None)
    with pytest.raises(AuthError):
        read(tenant, faults, page_size=7)
    assert gc.get_freeze_count() == 0


def test_page_size_above_google_maxima_is_capped_not_refused() -> None:
    tenant = generate(users=520, groups=3, members_per_group=5, seed=3)
    _, snap = read(tenant, page_size=10_000)
    assert snap.complete
    assert len(snap.users) == 520
    assert snap.stats.pages == 2 + 1 + 3  # users at 500 a page, groups and members at 200


def test_fake_refuses_max_results_above_the_cap_like_google() -> None:
    with running_fake("google", small()) as (fake, url):
        creds = load_credentials(info=service_account_info(url + "/token", fake.key), file=None,
                                 admin_email="admin@contoso.example", token_url=None)
        creds.refresh(google_auth_httplib2.Request(httplib2.Http()))
        r = httpx.get(url + "/admin/directory/v1/users", params={
            "customer": "my_customer", "maxResults": 501},
            headers={"Authorization": f"Bearer {creds.token}"})
    assert r.status_code == 400
    assert r.json()["error"]["errors"][0]["reason"] == "invalid"


def test_ids_emails_and_suspension_follow_google_formats() -> None:
    tenant = small()
    target = next(iter(tenant.users.values()))
    tenant.update_user(target.id, active=False)
    fake, snap = read(tenant)
    for uid, u in snap.users.items():
        assert re.fullmatch(r"1\d{20}", uid)
        assert u.user_name == u.email and "@" in u.user_name
    for gid in snap.groups:
        assert re.fullmatch(r"0[0-9a-f]{14}", gid)
    u = snap.users[fake.external_id(target.id)]
    assert u.active is False and u.user_name == target.user_name
    assert (u.given_name, u.family_name, u.display_name) == (
        target.given_name, target.family_name, target.display_name)


def test_second_snapshot_sees_changes_and_ignores_the_cursor() -> None:
    tenant = small()
    with running_fake("google", tenant) as (fake, url):
        conn = fake.connector(url, **FAST)

        async def go() -> tuple[Snapshot, Snapshot]:
            async with conn:
                first = await conn.snapshot()
                gid = next(iter(tenant.groups))
                tenant.rename_group(gid, "renamed")
                tenant.delete_user(next(iter(tenant.users)))
                tenant.add_member(gid, tenant.add_user("new@contoso.example").id)
                return first, await conn.snapshot(cursor=first.cursor or "anything")

        first, second = asyncio.run(go())
    assert second.mode == "full" and second.complete
    assert_matches(fake, tenant, second)
    assert len(second.users) == len(first.users)


def test_many_groups_read_several_per_job_match_the_tenant() -> None:
    """More groups than one worker job takes, pages that do not divide into jobs evenly, and
    nested groups outside the list read in jobs of their own: the same snapshot as the tenant."""
    tenant = generate(users=300, groups=45, members_per_group=12, nesting_depth=3, seed=11)
    nested = sorted({c for g in tenant.groups.values() for c in g.group_ids})
    assert len(nested) > 1
    fake, snap = read(tenant, fake_options={"secondary_domain_groups": nested},
                      domain=tenant.domain, page_size=7, concurrency=3)
    assert snap.complete and not snap.problems
    assert set(snap.groups) == {google_group_id(g) for g in tenant.groups if g not in nested}
    assert set(snap.users) == {fake.external_id(u) for u in tenant.users}
    for gid in tenant.groups:
        if gid not in nested:
            assert snap.groups[google_group_id(gid)].member_ids == expected_members(
                fake, tenant, gid)


def test_fatal_member_read_stops_every_other_member_read() -> None:
    tenant = generate(users=100, groups=40, members_per_group=5, seed=5)
    faults = FaultPlan()
    member_reads = faults.add("error", path="/members", after=10**9)  # counts, never fires
    faults.add("error", path="/members", status=403, times=None)  # not an admin: fatal
    with pytest.raises(AuthError):
        read(tenant, faults, concurrency=1)
    assert member_reads.seen == 1  # the groups queued with it, or after it, were not read


# -- nesting and member types -----------------------------------------------------------------


def test_nesting_cycle_expands_to_the_union_and_terminates() -> None:
    tenant = small()
    fake, snap = read(tenant, fake_options={"nesting_cycle": True})
    assert snap.complete
    assert_matches(fake, tenant, snap)
    cyclic = [g for g in tenant.groups.values() if g.group_ids]
    a = snap.groups[fake.external_id(cyclic[0].id)].member_ids
    assert all(snap.groups[fake.external_id(g.id)].member_ids == a for g in cyclic[:2])


def test_customer_member_expands_to_every_user() -> None:
    tenant = small()
    gid = list(tenant.groups)[-1]
    fake, snap = read(tenant, fake_options={"customer_members": [gid]})
    assert snap.complete
    assert snap.groups[fake.external_id(gid)].member_ids == set(snap.users)


def test_customer_member_refused_marks_the_snapshot_incomplete() -> None:
    tenant = small()
    gid = list(tenant.groups)[-1]
    fake, snap = read(tenant, fake_options={"customer_members": [gid]},
                      customer_members="refuse")
    assert not snap.complete
    assert any("CUSTOMER" in p and fake.external_id(gid) in p for p in snap.problems)
    assert snap.groups[fake.external_id(gid)].member_ids == expected_members(fake, tenant, gid)


def test_nested_group_of_another_domain_is_read_for_its_members_but_not_listed() -> None:
    tenant = small()
    parent = next(g for g in tenant.groups.values() if g.group_ids)
    child = sorted(parent.group_ids)[0]
    fake, snap = read(tenant, fake_options={"secondary_domain_groups": [child]},
                      domain=tenant.domain)
    assert snap.complete
    assert google_group_id(child) not in snap.groups
    assert len(snap.groups) == len(tenant.groups) - 1
    assert snap.groups[google_group_id(parent.id)].member_ids == expected_members(
        fake, tenant, parent.id)


def test_progress_reports_growing_counts_per_phase() -> None:
    tenant = small()
    seen: list[tuple[str, int]] = []
    with running_fake("google", tenant) as (fake, url):
        conn = fake.connector(url, page_size=5, **FAST)

        async def go() -> Snapshot:
            async with conn:
                return await conn.snapshot(progress=lambda phase, n: seen.append((phase, n)))

        snap = asyncio.run(go())
    for phase, total in (("users", 60), ("groups", 8)):
        counts = [n for p, n in seen if p == phase]
        assert counts == sorted(counts) and counts[-1] == total and len(counts) > 1
    members = [n for p, n in seen if p == "members"]
    assert len(members) == len(tenant.groups) and members == sorted(members)
    assert snap.complete


@pytest.mark.parametrize("external_type", ["USER", "EXTERNAL", "GROUP"])
def test_members_outside_the_directory_are_skipped(external_type: str) -> None:
    tenant = small()
    gid = next(iter(tenant.groups))
    fake, snap = read(tenant, fake_options={
        "external_members": {gid: ["partner@elsewhere.example"]}, "external_type": external_type})
    assert snap.complete
    assert_matches(fake, tenant, snap)


# -- auth -------------------------------------------------------------------------------------


def test_key_unknown_to_google_raises_auth_error_without_secrets() -> None:
    tenant = small()
    with running_fake("google", tenant) as (fake, url):
        info = service_account_info(url + "/token", new_key())
        conn = fake.connector(url, service_account_info=info, **FAST)
        with pytest.raises(AuthError) as err:
            asyncio.run(conn.snapshot())
        asyncio.run(conn.aclose())
    text = str(err.value)
    assert "invalid_grant" in text
    assert "PRIVATE KEY" not in text and "assertion" not in text.lower()


def test_revoked_grant_on_the_token_endpoint_raises_auth_error() -> None:
    faults = FaultPlan()
    faults.add("revoked", path="/token", times=None)
    with pytest.raises(AuthError, match="unauthorized_client"):
        read(small(), faults)


def test_access_token_rejected_once_is_refreshed_and_the_read_completes() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("revoked", path="/members", times=1)
    fake, snap = read(tenant, faults)
    assert snap.complete
    assert_matches(fake, tenant, snap)
    assert snap.stats.api_calls == snap.stats.pages + 3  # 2 tokens + the refused call


def test_access_token_always_rejected_raises_auth_error() -> None:
    faults = FaultPlan()
    faults.add("revoked", path="/admin/", times=None)
    with pytest.raises(AuthError, match="401"):
        read(small(), faults)


@pytest.mark.parametrize("options, message", [
    ({"admin_email": ""}, "admin_email"),
    ({"service_account_info": {"type": "service_account", "private_key": "nope"}}, "unusable"),
    ({"base_url": "http://admin.example.com"}, "loopback"),
    ({"customer_members": "maybe"}, "customer_members"),
    ({"page_size": 0}, "page_size"),
])
def test_bad_settings_raise_config_error(options: dict, message: str) -> None:
    info = service_account_info("http://127.0.0.1:9/token")
    kw = {"admin_email": "admin@contoso.example", "service_account_info": info,
          "base_url": "http://127.0.0.1:9", **options}
    with pytest.raises(ConfigError, match=message):
        GoogleConnector("t", **kw)


def test_service_account_file_goes_through_the_same_auth_path(tmp_path: Any) -> None:
    tenant = small()
    with running_fake("google", tenant) as (fake, url):
        path = tmp_path / "sa.json"
        path.write_bytes(orjson.dumps(service_account_info(url + "/token", fake.key)))
        conn = fake.connector(url, service_account_info=None, service_account_file=str(path),
                              **FAST)
        snap = asyncio.run(conn.snapshot())
        asyncio.run(conn.aclose())
    assert snap.complete
    assert_matches(fake, tenant, snap)


def test_registered_as_google() -> None:
    assert connector_class("google") is GoogleConnector


# -- throttling, errors, budget ---------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
def test_throttled_reads_wait_retry_after_and_are_counted(status: int) -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("throttle", path="/members", times=3, retry_after=0.1, status=status)
    started = time.monotonic()
    fake, snap = read(tenant, faults, max_backoff=30.0)
    assert time.monotonic() - started < 5  # the SDK's own backoff alone averages ~7 s here
    assert snap.complete
    assert snap.stats.throttles == 3
    assert_matches(fake, tenant, snap)


def test_endless_throttling_of_one_group_gives_up_and_marks_incomplete() -> None:
    tenant = small()
    gid = next(iter(tenant.groups))
    faults = FaultPlan()
    faults.add("throttle", path=f"/groups/{google_group_id(gid)}/members", times=None,
               retry_after=0.05)
    fake, snap = read(tenant, faults, max_retries=2)
    assert not snap.complete
    assert any("rateLimitExceeded" in p and fake.external_id(gid) in p for p in snap.problems)
    others = [g for g in tenant.groups if g != gid and gid not in tenant.groups[g].group_ids]
    for g in others:
        assert snap.groups[fake.external_id(g)].member_ids == expected_members(fake, tenant, g)
    assert snap.stats.throttles == 3


def test_time_budget_bounds_throttling_of_the_first_page() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/users", times=None, retry_after=0.3)
    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        read(small(), faults, max_retries=50, time_budget=1.0)
    assert time.monotonic() - started < 3


def test_server_errors_are_retried() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("error", path="/members", status=503, times=2)
    faults.add("error", path="/groups", status=500, times=1)
    fake, snap = read(tenant, faults)
    assert snap.complete
    assert_matches(fake, tenant, snap)


def test_bad_json_on_a_member_page_marks_incomplete_and_keeps_the_rest() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("bad_json", path="/members", times=1)
    fake, snap = read(tenant, faults)
    assert not snap.complete
    assert any("not valid JSON" in p for p in snap.problems)
    assert set(snap.users) == {fake.external_id(u) for u in tenant.users}
    assert len(snap.groups) == len(tenant.groups)


def test_slow_answer_times_out_and_is_retried() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("timeout", path="/groups", times=1, delay=1.5)
    fake, snap = read(tenant, faults, request_timeout=0.5)
    assert snap.complete
    assert_matches(fake, tenant, snap)


def test_unreachable_server_raises_unavailable() -> None:
    info = service_account_info("http://127.0.0.1:9/token")
    conn = GoogleConnector("t", admin_email="admin@contoso.example", service_account_info=info,
                           base_url="http://127.0.0.1:9", max_retries=1, max_backoff=0.05)
    with pytest.raises(UnavailableError):
        asyncio.run(conn.snapshot())
    asyncio.run(conn.aclose())


def test_unknown_customer_raises_not_found() -> None:
    with pytest.raises(NotFoundError, match="customer"):
        read(small(), customer="C0nothere")


# -- login path -------------------------------------------------------------------------------


def test_user_groups_include_parents_of_nested_groups() -> None:
    tenant = small()
    child = next(g for g in tenant.groups.values()
                 if any(child in tenant.groups for child in g.group_ids))
    nested = tenant.groups[sorted(child.group_ids)[0]]
    user_id = sorted(nested.user_ids)[0]
    expected = tenant.transitive_group_ids(user_id)
    assert len(expected) >= 2
    for key in (tenant.users[user_id].user_name.upper(), google_user_id(user_id)):
        fake, ans = read(tenant, login=key)
        assert ans.user is not None and ans.user.user_name == tenant.users[user_id].user_name
        assert {g.external_id for g in ans.groups} == {fake.external_id(g) for g in expected}


def test_user_groups_of_an_unknown_user_is_none() -> None:
    _, ans = read(small(), login="nobody@contoso.example")
    assert ans.user is None and ans.groups == ()


def test_user_groups_cycle_terminates() -> None:
    tenant = small()
    edge = close_first_chain(tenant)
    assert edge
    user_id = sorted(tenant.groups[edge[1]].user_ids)[0]
    fake, ans = read(tenant, login=tenant.users[user_id].user_name)
    assert {g.external_id for g in ans.groups} == {
        fake.external_id(g) for g in tenant.transitive_group_ids(user_id)}


# -- the error boundary -----------------------------------------------------------------------


def _http_error(status: int, reason: str = "") -> HttpError:
    body = {"error": {"code": status, "message": "m",
                      "errors": [{"reason": reason, "domain": "usageLimits"}]}}
    return HttpError(httplib2.Response({"status": status}), orjson.dumps(body),
                     uri="https://admin.googleapis.com/x?key=SECRET")


@pytest.mark.parametrize("exc, mapped", [
    (_http_error(401, "authError"), AuthError),
    (_http_error(403, "rateLimitExceeded"), ThrottledError),
    (_http_error(403, "userRateLimitExceeded"), ThrottledError),
    (_http_error(403, "quotaExceeded"), ThrottledError),
    (_http_error(403, "forbidden"), AuthError),
    (_http_error(404, "notFound"), NotFoundError),
    (_http_error(410, "deleted"), CursorExpired),
    (_http_error(429), ThrottledError),
    (_http_error(400, "invalid"), ConfigError),
    (_http_error(500), UnavailableError),
    (_http_error(503), UnavailableError),
    (gauth.RefreshError("invalid_grant: Invalid JWT Signature.", {}), AuthError),
    (gauth.RefreshError("server_error", {}, retryable=True), UnavailableError),
    (gauth.TransportError("boom"), UnavailableError),
    (gauth.MalformedError("bad key"), ConfigError),
    (TimeoutError("timed out"), UnavailableError),
    (httplib2.ServerNotFoundError("no dns"), UnavailableError),
    (ConnectionResetError(), UnavailableError),
    (OSError("EHOSTUNREACH"), UnavailableError),
    (orjson.JSONDecodeError("x", "doc", 0), BadDataError),
])
def test_every_foreign_error_is_mapped_once(exc: Exception, mapped: type) -> None:
    with pytest.raises(ConnectorError) as err, translate("users page 1"):
        raise exc
    assert type(err.value) is mapped
    assert err.value.__cause__ is exc
    assert "SECRET" not in str(err.value) and str(err.value).startswith("users page 1")


def test_redact_hides_secret_query_values() -> None:
    url = "https://x/token?assertion=abc.def&key=K1&pageToken=p&access_token=ya29.z"
    assert redact(url) == ("https://x/token?assertion=REDACTED&key=REDACTED&pageToken=p"
                           "&access_token=REDACTED")
