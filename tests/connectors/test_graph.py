"""Graph-specific behaviour: the real msgraph-sdk connector against the fake Graph over HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from connectors.base import (
    AuthError,
    ConfigError,
    CursorExpired,
    NotFoundError,
    ThrottledError,
    UnavailableError,
)
from connectors.graph import GraphConnector
from connectors.graph.auth import ClientCredentialsCredential
from connectors.graph.delta import merge_group_entries
from connectors.graph.errors import redact_url, status_error
from connectors.testing.faults import FaultPlan
from connectors.testing.graph_index import (
    has_directory_role,
    has_extra_members,
    is_security_enabled,
)
from connectors.testing.harness import running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

# msgraph-sdk and kiota define deprecated configuration classes that warn when imported
pytestmark = [pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")]

FAST = {"time_budget": 20.0, "request_timeout": 5.0, "max_retries": 2}


def small(**kw: Any) -> Tenant:
    return generate(**{"users": 60, "groups": 12, "members_per_group": 8, **kw})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def snap_of(fake: Any, url: str, cursor: str | None = None, **opts: Any) -> Snapshot:
    conn = fake.connector(url, directory="t", **{**FAST, **opts})
    try:
        return await conn.snapshot(cursor=cursor)
    finally:
        await conn.aclose()


def assert_matches(snap: Snapshot, tenant: Tenant, group_ids: set[str] | None = None) -> None:
    assert set(snap.users) == set(tenant.users)
    for u in tenant.users.values():
        su = snap.users[u.id]
        assert (su.user_name, su.email, su.active, su.given_name, su.family_name) == (
            u.user_name, u.user_name, u.active, u.given_name, u.family_name)
    want = set(tenant.groups) if group_ids is None else group_ids
    assert set(snap.groups) == want
    for gid in want:
        assert snap.groups[gid].member_ids == frozenset(tenant.transitive_user_ids(gid)), gid
        assert snap.groups[gid].display_name == tenant.groups[gid].name


def applied(prev: Snapshot, delta: Snapshot) -> tuple[dict[str, Any], dict[str, Any]]:
    users = {**prev.users, **delta.users}
    groups = {**prev.groups, **delta.groups}
    for uid in delta.removed_users:
        users.pop(uid, None)
    for gid in delta.removed_groups:
        groups.pop(gid, None)
    return users, groups


async def raw_token(http: httpx.AsyncClient, url: str, fake: Any) -> str:
    r = await http.post(f"{url}/{fake.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": fake.client_id,
        "client_secret": fake.client_secret, "scope": "https://graph.microsoft.com/.default"})
    return r.json()["access_token"]


# -- full reads, paging, ids ------------------------------------------------------------------


def test_full_snapshot_pages_through_everything_and_keeps_only_user_members() -> None:
    tenant = small()
    assert any(has_extra_members(g) for g in tenant.groups)
    assert any(not u.active for u in tenant.users.values())
    with running_fake("graph", tenant) as (fake, url):
        snap = run(snap_of(fake, url, page_size=7))
        batches = list(fake.batches)
    assert snap.complete and snap.mode == "full" and snap.cursor
    assert_matches(snap, tenant)
    # 60 users / 7 per page = 9 pages, 12 groups = 2 pages, every group at least one page
    assert snap.stats.pages >= 9 + 2 + 12
    # the 12 groups' first member pages came in one $batch: one call for twelve pages
    assert batches == [12]
    assert snap.stats.api_calls < snap.stats.pages


def test_fake_pages_like_graph_and_serves_non_user_members() -> None:
    tenant = small()
    gid = next(g for g in tenant.groups if has_extra_members(g))

    async def go(url: str, fake: Any) -> None:
        async with httpx.AsyncClient() as http:
            http.headers["Authorization"] = f"Bearer {await raw_token(http, url, fake)}"
            page = (await http.get(f"{url}/v1.0/users", params={"$top": "5"})).json()
            link = page["@odata.nextLink"]
            assert link.startswith(f"{url}/v1.0/users?") and "$skiptoken=" in link
            assert "accountEnabled" not in page["value"][0]  # only with $select, as in Graph
            assert (await http.get(link)).json()["value"][0]["id"] != page["value"][0]["id"]
            bad = await http.get(f"{url}/v1.0/users", params={"$top": "1000"})
            assert bad.status_code == 400 and "code" in bad.json()["error"]
            types = {o["@odata.type"] for o in (await http.get(
                f"{url}/v1.0/groups/{gid}/transitiveMembers")).json()["value"]}
            assert {"#microsoft.graph.servicePrincipal", "#microsoft.graph.device"} <= types
            err = (await http.get(f"{url}/v1.0/groups/nope")).json()["error"]
            assert err["code"] == "Request_ResourceNotFound"
            assert {"date", "request-id"} <= set(err["innerError"])

    with running_fake("graph", tenant) as (fake, url):
        run(go(url, fake))


def test_page_size_above_graph_maximum_is_a_config_error() -> None:
    with running_fake("graph", small()) as (fake, url), pytest.raises(ConfigError):
        fake.connector(url, page_size=1000)


def test_security_scope_reads_only_security_groups() -> None:
    tenant = small(groups=16)
    want = {g for g in tenant.groups if is_security_enabled(g)}
    assert 0 < len(want) < len(tenant.groups)
    user = max(tenant.users.values(), key=lambda u: len(tenant.transitive_group_ids(u.id) - want))
    assert tenant.transitive_group_ids(user.id) - want

    async def login(fake: Any, url: str) -> set[str]:
        async with fake.connector(url, group_source="security", **FAST) as conn:
            return {g.external_id for g in (await conn.user_groups(user.user_name)).groups}

    with running_fake("graph", tenant) as (fake, url):
        snap = run(snap_of(fake, url, group_source="security"))
        groups = run(login(fake, url))
    assert_matches(snap, tenant, want)
    assert groups == tenant.transitive_group_ids(user.id) & want


def test_app_assigned_scope_reads_groups_assigned_to_the_service_principal() -> None:
    tenant = small()
    want = set(list(tenant.groups)[:3])
    with running_fake("graph", tenant, app_assigned=want) as (fake, url):
        snap = run(snap_of(fake, url, group_source="app_assigned", page_size=2))
    assert_matches(snap, tenant, want)  # the fake's direct *user* assignments are skipped


def test_app_assigned_without_service_principal_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        GraphConnector("d", tenant_id="t", client_id="c", client_secret="s",
                       group_source="app_assigned")


# -- login path -------------------------------------------------------------------------------


def test_user_groups_by_id_upn_or_mail_without_directory_roles() -> None:
    tenant = small()
    user = next(u for u in tenant.users.values()
                if has_directory_role(u.id) and tenant.transitive_group_ids(u.id))
    want = tenant.transitive_group_ids(user.id)

    async def go(fake: Any, url: str) -> None:
        conn = fake.connector(url, page_size=2, **FAST)
        try:
            for key in (user.id, user.user_name, user.user_name.upper()):
                ug = await conn.user_groups(key)
                assert ug.user is not None and ug.user.external_id == user.id
                assert {g.external_id for g in ug.groups} == want
            assert (await conn.user_groups("nobody@contoso.example")).user is None
            assert (await conn.user_groups("00000000-0000-0000-0000-000000000000")).user is None
        finally:
            await conn.aclose()

    with running_fake("graph", tenant) as (fake, url):
        run(go(fake, url))


# -- delta --------------------------------------------------------------------------------------


def _mutate(t: Tenant) -> None:
    gids = list(t.groups)
    uids = list(t.users)
    nested = next(g for g in t.groups.values() if g.group_ids)
    child = next(iter(nested.group_ids))
    t.add_member(child, uids[0])  # ancestors of `child` change transitively
    t.remove_member(gids[5], next(iter(t.groups[gids[5]].user_ids)))
    t.rename_group(gids[6], "renamed")
    t.update_user(uids[1], active=False)
    t.delete_user(uids[2])
    t.add_user("zed.new@contoso.example")
    g = t.add_group("new-team")
    t.add_member(g.id, uids[3])
    t.delete_group(gids[-1])


def test_delta_snapshot_applied_to_previous_equals_new_full() -> None:
    tenant = small()
    with running_fake("graph", tenant) as (fake, url):
        first = run(snap_of(fake, url, page_size=9))
        _mutate(tenant)
        delta = run(snap_of(fake, url, cursor=first.cursor, page_size=9))
        full = run(snap_of(fake, url))
    assert delta.mode == "delta" and delta.complete and delta.cursor
    assert len(delta.users) < len(full.users) and len(delta.groups) < len(full.groups)
    users, groups = applied(first, delta)
    assert users == full.users
    assert {k: (g.display_name, g.member_ids) for k, g in groups.items()} == \
        {k: (g.display_name, g.member_ids) for k, g in full.groups.items()}
    assert_matches(full, tenant)


def test_delta_merges_members_split_over_pages_of_a_big_group() -> None:
    tenant = small(users=400)
    gid = next(iter(tenant.groups))
    with running_fake("graph", tenant) as (fake, url):
        first = run(snap_of(fake, url))
        for uid in list(tenant.users)[:260]:  # > 200 per delta page, > 50 per entry
            if uid not in tenant.groups[gid].user_ids:
                tenant.add_member(gid, uid)
        delta = run(snap_of(fake, url, cursor=first.cursor))
        again = run(snap_of(fake, url, cursor=delta.cursor))
    assert delta.mode == "delta" and delta.complete
    assert delta.groups[gid].member_ids == frozenset(tenant.transitive_user_ids(gid))
    assert again.mode == "delta" and not again.groups and not again.users


def test_merge_group_entries_concatenates_members_and_honours_removed() -> None:
    removed: set[str] = set()
    merged = merge_group_entries([
        {"id": "a", "displayName": "A", "members@delta": [{"id": "u1"}]},
        {"id": "b", "@removed": {"reason": "changed"}},
        {"id": "a", "members@delta": [{"id": "u2"}]},
        {"id": "c", "members@delta": []},
        {"id": "c", "@removed": {"reason": "deleted"}},
    ], removed)
    assert merged == {"a": {"id": "a", "displayName": "A",
                            "members@delta": [{"id": "u1"}, {"id": "u2"}]}}
    assert removed == {"b", "c"}


def test_expired_delta_token_falls_back_to_a_full_read() -> None:
    tenant = small()
    faults = FaultPlan()
    with running_fake("graph", tenant, faults) as (fake, url):
        first = run(snap_of(fake, url))
        tenant.rename_group(next(iter(tenant.groups)), "x")
        faults.add("expired_cursor", path="delta", times=1)
        snap = run(snap_of(fake, url, cursor=first.cursor))
    assert snap.mode == "full" and snap.complete and snap.cursor
    assert_matches(snap, tenant)


def test_foreign_cursor_gives_a_full_read() -> None:
    tenant = small()
    with running_fake("graph", tenant) as (fake, url):
        snap = run(snap_of(fake, url, cursor="not-a-graph-cursor"))
    assert snap.mode == "full" and snap.complete


# -- auth -----------------------------------------------------------------------------------


def test_wrong_client_secret_raises_auth_error_without_the_secret() -> None:
    with running_fake("graph", small()) as (fake, url):
        conn = fake.connector(url, client_secret="wrong-s3cret", **FAST)
        with pytest.raises(AuthError) as info:
            run(conn.snapshot())
    assert "wrong-s3cret" not in str(info.value) and "AADSTS7000215" in str(info.value)


@pytest.mark.parametrize("path", ["/oauth2/v2.0/token", "/users"])
def test_revoked_credentials_raise_auth_error(path: str) -> None:
    faults = FaultPlan()
    faults.add("revoked", path=path, times=None)
    with running_fake("graph", small(), faults) as (fake, url), pytest.raises(AuthError):
        run(snap_of(fake, url))


def test_fake_rejects_requests_without_its_token() -> None:
    async def go(url: str) -> None:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{url}/v1.0/users", headers={"Authorization": "Bearer forged"})
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "InvalidAuthenticationToken"

    with running_fake("graph", small()) as (_, url):
        run(go(url))


def test_token_is_fetched_once_and_reused() -> None:
    with running_fake("graph", small()) as (fake, url):
        cred = ClientCredentialsCredential(url, fake.tenant_id, fake.client_id, fake.client_secret)
        run(snap_of(fake, url, credential=cred))
        run(snap_of(fake, url, credential=cred))  # a second event loop, same credential
    assert fake.token_requests == 1


def test_plain_http_only_on_loopback() -> None:
    with pytest.raises(ConfigError):
        GraphConnector("d", tenant_id="t", client_id="c", client_secret="s",
                       base_url="http://graph.example.com/v1.0")
    with pytest.raises(ConfigError):
        GraphConnector("d", tenant_id="t", client_id="c", client_secret="s",
                       token_url="http://login.example.com")
    with pytest.raises(ConfigError):
        GraphConnector("d", tenant_id="t", client_id="c")  # no secret, no certificate


# -- throttling, errors, budget -----------------------------------------------------------------


def test_throttled_answers_are_retried_after_retry_after() -> None:
    """Direct requests, one at a time (batch_size=1): each throttle is waited out in turn
    (test_graph_batch covers throttled requests inside a batch)."""
    faults = FaultPlan()
    faults.add("throttle", path="/transitiveMembers", times=2, retry_after=1)
    tenant = small()
    with running_fake("graph", tenant, faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(snap_of(fake, url, concurrency=1, batch_size=1))
        took = time.monotonic() - t0
    assert snap.complete and snap.stats.throttles == 2
    assert took >= 2.0
    assert_matches(snap, tenant)


def test_endless_throttling_gives_up_within_the_time_budget() -> None:
    tenant = small()
    gid = list(tenant.groups)[3]
    faults = FaultPlan()
    faults.add("throttle", path=f"/groups/{gid}/transitiveMembers", times=None, retry_after=1)
    with running_fake("graph", tenant, faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(snap_of(fake, url, time_budget=2.5, max_retries=10))
        took = time.monotonic() - t0
    assert took < 4.5
    assert not snap.complete and any("budget" in p for p in snap.problems)
    assert set(snap.users) == set(tenant.users)


def test_throttling_beyond_max_retries_marks_incomplete_and_keeps_the_rest() -> None:
    """Direct requests (batch_size=1); the batched path's twin is in test_graph_batch.py."""
    tenant = small()
    gid = list(tenant.groups)[3]
    faults = FaultPlan()
    faults.add("throttle", path=f"/groups/{gid}/transitiveMembers", times=None, retry_after=1)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url, max_retries=1, batch_size=1))
        assert fake.batches == []
    assert not snap.complete and any(gid in p and "429" in p for p in snap.problems)
    others = set(tenant.groups) - {gid}
    assert all(snap.groups[g].member_ids == frozenset(tenant.transitive_user_ids(g)) for g in others)


@pytest.mark.parametrize("kind,opts", [
    ("error", {"status": 503}), ("error", {"status": 500}), ("bad_json", {}),
    ("timeout", {"delay": 1.5}),
])
def test_one_transient_failure_is_retried_to_a_complete_snapshot(kind: str, opts: dict) -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add(kind, path="/transitiveMembers", after=2, times=1, **opts)  # type: ignore[arg-type]
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url, request_timeout=0.5))
    assert snap.complete, snap.problems
    assert_matches(snap, tenant)


def test_persistent_server_error_on_one_group_marks_incomplete() -> None:
    tenant = small()
    gid = list(tenant.groups)[2]
    faults = FaultPlan()
    faults.add("error", path=f"/groups/{gid}/", status=500, times=None)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url))
    assert not snap.complete and any("500" in p for p in snap.problems)
    assert len(snap.groups) == len(tenant.groups)


def test_group_deleted_while_reading_is_left_out_without_a_problem() -> None:
    tenant = small()
    gid = list(tenant.groups)[4]
    faults = FaultPlan()
    faults.add("error", path=f"/groups/{gid}/transitiveMembers", status=404, times=None)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url))
    assert snap.complete and gid not in snap.groups and len(snap.groups) == len(tenant.groups) - 1


def test_first_page_of_users_failing_raises() -> None:
    faults = FaultPlan()
    faults.add("error", path="/v1.0/users", status=502, times=None)
    with running_fake("graph", small(), faults) as (fake, url), pytest.raises(UnavailableError):
        run(snap_of(fake, url, max_retries=1))


def test_progress_reports_each_phase() -> None:
    seen: dict[str, int] = {}

    async def go(fake: Any, url: str) -> None:
        conn = fake.connector(url, page_size=10, **FAST)
        try:
            await conn.snapshot(progress=lambda phase, n: seen.__setitem__(phase, n))
        finally:
            await conn.aclose()

    tenant = small()
    with running_fake("graph", tenant) as (fake, url):
        run(go(fake, url))
    assert seen["users"] == len(tenant.users) and seen["groups"] == len(tenant.groups)
    assert seen["members"] > 0


# -- pure pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize("status,code,err", [
    (401, "InvalidAuthenticationToken", AuthError), (403, "Authorization_RequestDenied", AuthError),
    (404, "Request_ResourceNotFound", NotFoundError), (410, "syncStateNotFound", CursorExpired),
    (429, "TooManyRequests", ThrottledError), (503, "serviceNotAvailable", UnavailableError),
    (400, "BadRequest", ConfigError),
])
def test_status_error_mapping(status: int, code: str, err: type) -> None:
    assert type(status_error(status, code, "GET /x")) is err


def test_redact_url_hides_sync_state_and_secrets() -> None:
    url = "https://g/v1.0/users/delta()?$select=id&$deltatoken=abc123&client_secret=s3"
    out = redact_url(url)
    assert "abc123" not in out and "s3" not in out and "$select=id" in out


def test_incomplete_delta_keeps_the_old_cursor_so_nothing_is_lost() -> None:
    tenant = small()
    faults = FaultPlan()
    gid = next(iter(tenant.groups))
    with running_fake("graph", tenant, faults) as (fake, url):
        first = run(snap_of(fake, url))
        tenant.add_member(gid, next(u for u in tenant.users if u not in tenant.groups[gid].user_ids))
        faults.add("error", path=f"/groups/{gid}/transitiveMembers", status=500, times=None)
        broken = run(snap_of(fake, url, cursor=first.cursor, max_retries=0))
        faults.clear()
        healed = run(snap_of(fake, url, cursor=broken.cursor))
    assert broken.mode == "delta" and not broken.complete and broken.cursor == first.cursor
    assert healed.mode == "delta" and healed.complete
    assert healed.groups[gid].member_ids == frozenset(tenant.transitive_user_ids(gid))


def test_incomplete_full_read_gives_no_cursor() -> None:
    faults = FaultPlan()
    faults.add("error", path="/transitiveMembers", status=500, times=None)
    with running_fake("graph", small(), faults) as (fake, url):
        snap = run(snap_of(fake, url, max_retries=0))
    assert not snap.complete and snap.cursor is None


def test_throttled_token_endpoint_is_waited_out() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/oauth2/v2.0/token", times=1, retry_after=1)
    tenant = small()
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url))
    assert snap.complete and snap.stats.throttles == 1
    assert_matches(snap, tenant)


def test_unavailable_token_endpoint_raises_unavailable() -> None:
    faults = FaultPlan()
    faults.add("error", path="/oauth2/v2.0/token", status=500, times=None)
    with running_fake("graph", small(), faults) as (fake, url), pytest.raises(UnavailableError):
        run(snap_of(fake, url, max_retries=0))


def test_one_connector_serves_several_event_loops() -> None:
    tenant = small()
    with running_fake("graph", tenant) as (fake, url):
        conn = fake.connector(url, **FAST)
        first = run(conn.snapshot())
        user = next(iter(tenant.users.values()))
        ug = run(conn.user_groups(user.id))
        run(conn.aclose())
    assert first.complete and ug.user is not None
    assert {g.external_id for g in ug.groups} == tenant.transitive_group_ids(user.id)


def test_production_credentials_are_built_by_azure_identity_or_refused() -> None:
    conn = GraphConnector("d", tenant_id="contoso.onmicrosoft.com", client_id="c",
                          client_secret="s3cr3t-value")
    assert type(conn._credential).__module__.startswith("azure.identity")
    assert "s3cr3t" not in repr(conn)
    run(conn.aclose())
    with pytest.raises(ConfigError):
        GraphConnector("d", tenant_id="t", client_id="c", certificate_path="/nonexistent/cert.pem")


def _foreign_errors() -> list[Exception]:
    import orjson
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
    from kiota_abstractions.api_error import APIError
    from kiota_authentication_azure._exceptions import HTTPError

    req = httpx.Request("GET", "https://graph.microsoft.com/v1.0/users")
    errors: list[Exception] = [APIError("x", status) for status in (400, 401, 403, 404, 410, 429, 500)]
    errors += [ClientAuthenticationError("refused"), ServiceRequestError("down"),
               HTTPError("Only https is supported"), httpx.ReadTimeout("slow", request=req),
               httpx.ConnectError("refused", request=req), KeyError("value"), ValueError("x")]
    try:
        orjson.loads(b"{")
    except orjson.JSONDecodeError as exc:
        errors.append(exc)
    return errors


@pytest.mark.parametrize("exc", _foreign_errors(), ids=lambda e: f"{type(e).__name__}")
def test_every_foreign_error_leaves_the_boundary_as_a_connector_error(exc: Exception) -> None:
    from connectors.base import ConnectorError
    from connectors.graph.errors import translate

    with pytest.raises(ConnectorError) as info, translate("GET /x"):
        raise exc
    assert info.value.__cause__ is exc
