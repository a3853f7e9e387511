"""OneLogin-specific behaviour: the real onelogin SDK against the fake account over HTTP.

The shared contract lives in test_contract.py; these tests cover what only OneLogin does: v2
cursor headers and v1 body cursors, the client-credentials token (basic auth, renewal on 401),
X-RateLimit-* headers, numeric ids, state/status codes, roles vs. the user's one group.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import orjson
import pytest

from connectors.base import AuthError, ConfigError, Connector, UnavailableError
from connectors.onelogin import OneLoginConnector
from connectors.onelogin.reader import ACTIVE_STATUSES, ALL_STATUSES, is_active
from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from connectors.testing.onelogin import FakeOneLogin
from connectors.testing.server import free_port, serve
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

FAST: dict[str, Any] = {"concurrency": 4, "max_retries": 2, "time_budget": 30.0, "request_timeout": 5.0}
CID, SECRET = "fake-onelogin-client-id", "fake-onelogin-client-secret"


def tenant(users: int = 40, groups: int = 6) -> Tenant:
    return generate(
        seed=11, users=users, groups=groups, members_per_group=8, nesting_depth=0, disabled_fraction=0.3
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(conn: Connector) -> Snapshot:
    async with conn:
        return await conn.snapshot()


def roles(fake: FakeOneLogin) -> dict[str, frozenset[str]]:
    x = fake.external_id
    return {x(g.id): frozenset(x(u) for u in g.user_ids) for g in fake.tenant.groups.values()}


def token(url: str) -> str:
    basic = base64.b64encode(f"{CID}:{SECRET}".encode()).decode()
    r = httpx.post(
        f"{url}/auth/oauth2/v2/token",
        json={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    assert r.json()["expires_in"] == 36000
    return r.json()["access_token"]


# -- wire format of the fake (what the connector must cope with) --------------------------------


def test_fake_pages_v2_lists_with_cursor_headers_and_caps_limit_at_100() -> None:
    with running_fake("onelogin", tenant(users=250)) as (_fake, url):
        auth = {"Authorization": f"Bearer {token(url)}"}
        r = httpx.get(f"{url}/api/2/users", params={"limit": 1000}, headers=auth)
        assert r.status_code == 200 and len(r.json()) == 100
        h = r.headers
        assert (h["total-count"], h["total-pages"], h["current-page"]) == ("250", "3", "1")
        assert "before-cursor" not in h and 'rel="next"' in h["link"]
        last = httpx.get(f"{url}/api/2/users", params={"cursor": h["after-cursor"]}, headers=auth)
        last = httpx.get(f"{url}/api/2/users", params={"cursor": last.headers["after-cursor"]}, headers=auth)
        assert len(last.json()) == 50 and "after-cursor" not in last.headers
        assert last.headers["before-cursor"]


def test_fake_serves_v1_groups_in_an_envelope_with_body_cursors() -> None:
    with running_fake("onelogin", tenant(users=3000, groups=1)) as (_fake, url):
        auth = {"Authorization": f"Bearer {token(url)}"}
        doc = httpx.get(f"{url}/api/1/groups", headers=auth).json()
        assert doc["status"]["code"] == 200 and len(doc["data"]) == 50
        nxt = doc["pagination"]["after_cursor"]
        doc2 = httpx.get(f"{url}/api/1/groups", params={"after_cursor": nxt}, headers=auth).json()
        assert len(doc2["data"]) == 10 and doc2["pagination"]["after_cursor"] is None


def test_fake_answers_onelogin_error_bodies_and_rate_limit_headers() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/api/2/roles", retry_after=30)
    with running_fake("onelogin", tenant(), faults) as (_fake, url):
        auth = {"Authorization": f"Bearer {token(url)}"}
        r = httpx.get(f"{url}/api/2/roles", headers=auth)
        assert r.status_code == 429 and r.json()["statusCode"] == 429
        assert r.headers["x-ratelimit-remaining"] == "0" and r.headers["x-ratelimit-reset"] == "30"
        bad = httpx.get(f"{url}/api/2/roles", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json() == {
            "message": "Unauthorized",
            "statusCode": 401,
            "name": "UnauthorizedError",
        }
        v1 = httpx.get(f"{url}/api/1/groups", headers={"Authorization": "Bearer nope"})
        assert v1.json()["status"] == {
            "error": True,
            "code": 401,
            "type": "Unauthorized",
            "message": "Authentication Failure",
        }
        refused = httpx.post(
            f"{url}/auth/oauth2/v2/token", json={"grant_type": "client_credentials"}, auth=(CID, "wrong")
        )
        assert refused.status_code == 401 and refused.json()["status"]["code"] == 401


# -- ids, codes and teams ----------------------------------------------------------------------


def test_every_state_and_status_code_maps_as_documented() -> None:
    active = {
        (state, status)
        for state in (None, 0, 1, 2, 3)
        for status in (*ALL_STATUSES, 6, None)
        if is_active(state, status)
    }
    assert active == {(s, st) for s in (None, 1) for st in (1, 3, 4, 5, 8)}
    assert set(ACTIVE_STATUSES) == {1, 3, 4, 5, 8}


def test_full_snapshot_has_numeric_ids_roles_and_mapped_codes() -> None:
    with running_fake("onelogin", tenant(users=250)) as (fake, url):
        snap = run(take(fake.connector(url, page_size=1000, **FAST)))
        assert snap.complete, snap.problems
        assert all(k.isdigit() and len(k) == 12 for k in snap.users)
        assert {k: g.member_ids for k, g in snap.groups.items()} == roles(fake)
        assert all(k.startswith("role:") for k in snap.groups)
        codes = {fake.external_id(u): fake.user_codes(u) for u in fake.tenant.users}
        assert len(set(codes.values())) >= 5  # several states and statuses are exercised
        for uid, (state, status) in codes.items():
            assert snap.users[uid].active == is_active(state, status), (state, status)
        assert snap.stats.pages >= 3 + 1 + len(snap.groups)  # users paged at 100 despite 1000


def test_a_status_code_the_sdk_models_do_not_know_is_inactive_not_a_failed_read() -> None:
    t = tenant()
    odd = next(iter(t.users))
    with running_fake("onelogin", t, codes={odd: (1, 6)}) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete and snap.users[fake.external_id(odd)].active is False


@pytest.mark.parametrize("teams", ["groups", "both"])
def test_groups_come_from_each_users_group_id(teams: str) -> None:
    with running_fake("onelogin", tenant(users=300)) as (fake, url):
        snap = run(take(fake.connector(url, teams=teams, **FAST)))
        assert snap.complete, snap.problems
        want: dict[str, set[str]] = {}
        for u in fake.tenant.users:
            g = fake.user_group(u)
            if g is not None:
                want.setdefault(g, set()).add(fake.external_id(u))
        got = {k: set(g.member_ids) for k, g in snap.groups.items() if k.startswith("group:")}
        assert {k: v for k, v in got.items() if v} == want and len(got) == 6
        assert all(
            g.display_name.startswith("ol-group-") for k, g in snap.groups.items() if k.startswith("group:")
        )
        has_roles = any(k.startswith("role:") for k in snap.groups)
        assert has_roles == (teams == "both")


def test_user_groups_by_id_username_email_and_unknown() -> None:
    with running_fake("onelogin", tenant()) as (fake, url):
        t, x = fake.tenant, fake.external_id
        user = next(u for u in t.users.values() if t.parent_group_ids(u.id) and fake.user_group(u.id))

        async def lookups() -> list[Any]:
            async with fake.connector(url, teams="both", **FAST) as conn:
                return [
                    await conn.user_groups(k)
                    for k in (
                        x(user.id),
                        user.user_name,
                        user.user_name.upper(),
                        "nobody@contoso.example",
                        "123",
                    )
                ]

        by_id, by_name, by_email, unknown, numeric = run(lookups())
        want = {x(g) for g in t.parent_group_ids(user.id)} | {fake.user_group(user.id)}
        for found in (by_id, by_name, by_email):
            assert found.user is not None and found.user.external_id == x(user.id)
            assert {g.external_id for g in found.groups} == want
            assert all(g.display_name for g in found.groups)
        assert unknown.user is None and unknown.groups == ()
        assert numeric.user is None


# -- auth, throttling, errors -----------------------------------------------------------------


def test_wrong_secret_raises_auth_error_without_the_secret_in_the_message() -> None:
    with running_fake("onelogin", tenant()) as (fake, url), pytest.raises(AuthError) as err:
        run(take(fake.connector(url, client_secret="wrong-secret-value-123", **FAST)))
    assert "wrong-secret-value-123" not in str(err.value) and "401" in str(err.value)


def test_one_token_per_connector_and_a_401_renews_it_once() -> None:
    faults = FaultPlan()
    # twice: the batched first read of a member list drops a failed list, whose retrying
    # read then meets the 401 again and renews the token
    faults.add("revoked", path="/roles/", after=2, times=2)
    with running_fake("onelogin", tenant(), faults) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert {k: g.member_ids for k, g in snap.groups.items()} == roles(fake)
        assert fake.tokens_issued == 2


def test_a_token_refused_again_after_renewal_is_an_auth_error() -> None:
    faults = FaultPlan()
    faults.add("revoked", path="/api/2/", times=None)
    with running_fake("onelogin", tenant(), faults) as (fake, url), pytest.raises(AuthError):
        run(take(fake.connector(url, **FAST)))
    assert fake.tokens_issued == 2


def test_429_waits_x_ratelimit_reset_seconds_and_is_counted() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/api/2/users", times=1, retry_after=1)
    with running_fake("onelogin", tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete and snap.stats.throttles == 1
        assert time.monotonic() - t0 >= 1.0
        assert len(snap.users) == len(fake.tenant.users)


def test_a_reset_beyond_the_budget_gives_up_at_once() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/roles/", times=None, retry_after=600)
    with running_fake("onelogin", tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **{**FAST, "time_budget": 20.0})))
        assert time.monotonic() - t0 < 10
        assert not snap.complete and any("past the time budget" in p for p in snap.problems)
        assert set(snap.groups) == set(roles(fake))  # roles still reported, members not


def test_connection_refused_is_unavailable_after_retries() -> None:
    conn = OneLoginConnector(
        "d",
        base_url=f"http://127.0.0.1:{free_port()}",
        client_id=CID,
        client_secret=SECRET,
        **{**FAST, "max_retries": 1},
    )
    with pytest.raises(UnavailableError):
        run(take(conn))


def test_a_cursor_the_server_repeats_stops_the_list_instead_of_looping() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/auth/oauth2/v2/token":
            body, hdrs = orjson.dumps({"access_token": "t", "expires_in": 36000}), []
        elif path == "/api/2/roles":
            body, hdrs = b"[]", []
        else:  # users: the same page and the same After-Cursor forever
            body, hdrs = (
                orjson.dumps([{"id": 1, "username": "a", "state": 1, "status": 1}]),
                [(b"after-cursor", b"c2FtZQ==")],
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), *hdrs],
            }
        )
        await send({"type": "http.response.body", "body": body})

    with serve(app) as srv:
        snap = run(
            take(OneLoginConnector("d", base_url=srv.url, client_id=CID, client_secret=SECRET, **FAST))
        )
    assert not snap.complete and any("same After-Cursor" in p for p in snap.problems)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "http://onelogin.example.com"},
        {"base_url": "https://x.onelogin.com", "teams": "users"},
        {"base_url": "https://x.onelogin.com", "client_secret": ""},
        {"base_url": "https://x.onelogin.com", "page_size": 0},
    ],
    ids=["plain http", "bad teams", "no secret", "page size"],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OneLoginConnector("d", **{"client_id": CID, "client_secret": SECRET, **kwargs})


def test_progress_is_reported_per_phase_as_pages_arrive() -> None:
    seen: dict[str, list[int]] = {}
    with running_fake("onelogin", tenant(users=250)) as (fake, url):

        async def go() -> Snapshot:
            async with fake.connector(url, **FAST) as conn:
                return await conn.snapshot(progress=lambda phase, n: seen.setdefault(phase, []).append(n))

        snap = run(go())
    assert seen["users"] == [100, 200, 250] and seen["roles"][-1] == len(snap.groups)
    assert seen["members"][-1] == sum(len(g.member_ids) for g in snap.groups.values())


def test_lookups_that_ran_out_of_budget_do_not_hold_the_connectors_threads() -> None:
    """The SDK is blocking: a request abandoned at the budget keeps its worker thread until its
    HTTP timeout. That timeout is capped at the caller's remaining budget, so the next login
    lookup finds a free thread instead of queueing behind requests nobody waits for."""
    from connectors.base import BudgetExceeded

    faults = FaultPlan()
    faults.add("timeout", path="/api/2/users", times=3, delay=30)
    with running_fake("onelogin", tenant(), faults) as (fake, url):
        user = next(iter(fake.tenant.users.values()))

        async def go() -> Any:
            opts = {**FAST, "concurrency": 1, "time_budget": 3.0, "request_timeout": 25.0}
            async with fake.connector(url, **opts) as conn:  # 3 worker threads
                stuck = await asyncio.gather(
                    *[conn.user_groups(user.user_name) for _ in range(3)], return_exceptions=True
                )
                assert all(isinstance(r, BudgetExceeded) for r in stuck), stuck
                return await conn.user_groups(user.user_name)

        found = run(go())
        assert found.user is not None and found.user.user_name == user.user_name


def test_the_environments_https_proxy_is_used_except_for_loopback_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    conns = [
        OneLoginConnector("d", base_url=u, client_id=CID, client_secret=SECRET)
        for u in ("https://acme.onelogin.com", "https://sso.internal.example", "http://127.0.0.1:9")
    ]
    assert [c.api.cfg.proxy for c in conns] == ["http://proxy.corp.example:3128", None, None]
    for c in conns:
        c.api.close()
