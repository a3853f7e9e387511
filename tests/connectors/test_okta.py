"""Okta-specific behaviour: the real okta SDK against the fake Okta org over HTTP on 127.0.0.1.

The shared contract lives in test_contract.py; these tests cover what only Okta does: Link
header paging, SSWS and private-key JWT auth, X-Rate-Limit headers, id formats, statuses,
group types, System Log deletions and the SDK's configuration traps.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import Any

import httpx
import pytest

from connectors.base import AuthError, ConfigError, Connector, UnavailableError
from connectors.budget import Deadline
from connectors.okta import OktaConnector
from connectors.okta.errors import redact
from connectors.okta.paging import parse_links
from connectors.okta.reader import ACTIVE_STATUSES, okta_time
from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from connectors.testing.okta import FakeOkta
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

TOKEN = "fake-okta-api-token"
FAST: dict[str, Any] = {"concurrency": 4, "max_retries": 2, "time_budget": 30.0,
                        "request_timeout": 5.0}


def tenant(users: int = 40, groups: int = 6) -> Tenant:
    return generate(seed=11, users=users, groups=groups, members_per_group=8,
                    disabled_fraction=0.3)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(conn: Connector, cursor: str | None = None) -> Snapshot:
    async with conn:
        return await conn.snapshot(cursor=cursor)


def members(fake: FakeOkta) -> dict[str, frozenset[str]]:
    x = fake.external_id
    return {x(g.id): frozenset(x(u) for u in g.user_ids) for g in fake.tenant.groups.values()}


# -- wire format of the fake (what the connector must cope with) ---------------------------------


def test_fake_pages_with_self_then_next_link_headers_and_caps_users_at_200() -> None:
    with running_fake("okta", tenant(users=450)) as (_fake, url):
        r = httpx.get(f"{url}/api/v1/users", params={"limit": 1000},
                      headers={"Authorization": f"SSWS{TOKEN}"})  # the SDK's form, no space
        links = r.headers.get_list("link")
        assert r.status_code == 200 and len(r.json()) == 200
        assert [parse_links([v]).popitem()[0] for v in links] == ["self", "next"]
        nxt = parse_links(links)["next"]
        assert nxt.startswith(url + "/api/v1/users?") and "limit=1000" in nxt and "after=" in nxt


def test_fake_answers_okta_error_bodies_and_rate_limit_headers() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/api/v1/groups", retry_after=30)
    with running_fake("okta", tenant(), faults) as (_fake, url):
        r = httpx.get(f"{url}/api/v1/groups", headers={"Authorization": f"SSWS{TOKEN}"})
        assert r.status_code == 429 and r.headers["content-type"] == "application/json"
        assert r.json()["errorCode"] == "E0000047" and set(r.json()) >= {
            "errorSummary", "errorLink", "errorId", "errorCauses"}
        assert r.headers["x-rate-limit-remaining"] == "0"
        assert int(r.headers["x-rate-limit-reset"]) >= time.time() + 25 and "date" in r.headers
        bad = httpx.get(f"{url}/api/v1/groups", headers={"Authorization": "SSWS nope"})
        assert bad.status_code == 401 and bad.json()["errorCode"] == "E0000011"


# -- paging, ids, statuses, group types ------------------------------------------------------------


def test_full_snapshot_follows_next_links_with_okta_ids_and_statuses() -> None:
    with running_fake("okta", tenant(users=450, groups=5)) as (fake, url):
        snap = run(take(fake.connector(url, page_size=1000, **FAST)))
        assert snap.complete, snap.problems
        assert len(snap.users) == 450 and snap.stats.pages >= 3 + 1 + 5
        assert all(re.fullmatch(r"00u[0-9A-Za-z]{17}", k) for k in snap.users)
        assert all(re.fullmatch(r"00g[0-9A-Za-z]{17}", k) for k in snap.groups)
        assert {k: g.member_ids for k, g in snap.groups.items()} == members(fake)
        statuses = {fake.external_id(u): fake.user_status(u) for u in fake.tenant.users}
        assert "DEPROVISIONED" in statuses.values()  # listed only because the filter asks
        for uid, status in statuses.items():
            assert snap.users[uid].active == (status in ACTIVE_STATUSES), status
        u = next(iter(fake.tenant.users.values()))
        got = snap.users[fake.external_id(u.id)]
        assert (got.user_name, got.email, got.given_name) == (u.user_name, u.user_name,
                                                              u.given_name)


def test_group_types_select_teams_and_everyone_is_built_in() -> None:
    with running_fake("okta", tenant(groups=15)) as (fake, url):
        types = {fake.external_id(g): fake.group_type(g) for g in fake.tenant.groups}
        assert set(types.values()) == {"OKTA_GROUP", "APP_GROUP"}
        only_okta = run(take(fake.connector(url, group_types=["OKTA_GROUP"], **FAST)))
        assert set(only_okta.groups) == {k for k, t in types.items() if t == "OKTA_GROUP"}
        every = run(take(fake.connector(
            url, group_types=("OKTA_GROUP", "APP_GROUP", "BUILT_IN"), **FAST)))
        everyone = next(g for g in every.groups.values() if g.display_name == "Everyone")
        assert everyone.member_ids == set(every.users)


# -- auth -------------------------------------------------------------------------------------


def test_wrong_api_token_raises_auth_error_without_the_token_in_the_message() -> None:
    secret = "00wrongTOKENvalue1234567"
    with running_fake("okta", tenant()) as (fake, url), pytest.raises(AuthError) as err:
        run(take(fake.connector(url, token=secret, **FAST)))
    assert secret not in str(err.value) and "E0000011" in str(err.value)


def _rsa_pem() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def test_private_key_jwt_gets_a_token_and_reads_the_org() -> None:
    private, public = _rsa_pem()
    other, _ = _rsa_pem()
    with running_fake("okta", tenant(), client_id="0oaSyncdTest", public_key=public) as (
            fake, url):
        snap = run(take(fake.connector(url, client_id="0oaSyncdTest", private_key=private,
                                       **FAST)))
        assert snap.complete and {k: g.member_ids for k, g in snap.groups.items()} == \
            members(fake)
        assert snap.stats.api_calls == snap.stats.pages + 1  # one token request, then reads
        with pytest.raises(AuthError):  # signed with a key the org does not know
            run(take(fake.connector(url, client_id="0oaSyncdTest", private_key=other, **FAST)))


def test_revoked_client_at_the_token_endpoint_raises_auth_error() -> None:
    private, public = _rsa_pem()
    faults = FaultPlan()
    faults.add("revoked", path="/oauth2/v1/token", times=None)
    with running_fake("okta", tenant(), faults, client_id="0oaX", public_key=public) as (
            fake, url), pytest.raises(AuthError):
        run(take(fake.connector(url, client_id="0oaX", private_key=private, **FAST)))


def test_okta_env_vars_do_not_leak_into_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKTA_CLIENT_TOKEN", "wrong-token-from-env")
    monkeypatch.setenv("OKTA_CLIENT_ORGURL", "https://evil.example.com")
    monkeypatch.setenv("OKTA_CLIENT_AUTHORIZATIONMODE", "Bearer")
    before = dict(os.environ)
    with running_fake("okta", tenant()) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
    assert snap.complete and snap.users
    assert dict(os.environ) == before  # nothing added (the https override) nor lost


@pytest.mark.parametrize("kwargs", [
    {"base_url": "http://acme.okta.com", "token": "t"},
    {"base_url": "https://acme.okta.com", "client_id": "0oa1", "private_key": "-----BEGIN "
     "PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"},
    {"base_url": "https://acme.okta.com"},
    {"base_url": "https://acme.okta.com", "token": "t", "client_id": "c", "private_key": "k"},
    {"base_url": "https://acme.okta.com", "token": "t", "token_url": "https://x/token"},
    {"base_url": "https://acme.okta.com", "token": "t", "group_types": ["GROUPS"]},
    {"base_url": "https://acme.okta.com", "token": "t", "concurrency": 0},
])
def test_bad_settings_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OktaConnector("d", **kwargs)


# -- throttling and errors -----------------------------------------------------------------------


def test_sdk_waits_out_x_rate_limit_reset_and_the_throttle_is_counted() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/api/v1/users", times=1, retry_after=0.5)
    with running_fake("okta", tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete and snap.stats.throttles == 1
        assert time.monotonic() - t0 >= 1.0  # Reset - Date + 1 s, as the SDK computes it
        assert len(snap.users) == len(fake.tenant.users)


def test_a_reset_beyond_the_budget_gives_up_at_once() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/groups/", times=None, retry_after=120)
    with running_fake("okta", tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **{**FAST, "time_budget": 20.0})))
        assert time.monotonic() - t0 < 10
        assert not snap.complete and any("rate limit" in p for p in snap.problems)
        assert set(snap.groups) == set(members(fake))  # groups still reported, members not


def test_503_with_rate_limit_headers_is_retried_quickly_not_after_the_window() -> None:
    # every fake answer carries X-Rate-Limit-Reset = now + 60 s, as Okta's do; the SDK alone
    # would treat a 503 like a 429 and sleep until then
    faults = FaultPlan()
    faults.add("error", path="/groups/", status=503, times=2)
    with running_fake("okta", tenant(), faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete and time.monotonic() - t0 < 10
        assert {k: g.member_ids for k, g in snap.groups.items()} == members(fake)


def test_connection_refused_is_unavailable_after_retries() -> None:
    from connectors.testing.server import free_port

    conn = OktaConnector("d", base_url=f"http://127.0.0.1:{free_port()}", token=TOKEN,
                         **{**FAST, "max_retries": 1})
    with pytest.raises(UnavailableError):
        run(take(conn))


def test_403_on_member_lists_is_an_auth_error() -> None:
    faults = FaultPlan()
    faults.add("error", path="/groups/", status=403, times=None)
    with running_fake("okta", tenant(), faults) as (fake, url), pytest.raises(AuthError):
        run(take(fake.connector(url, **FAST)))


def test_next_link_to_another_host_is_refused() -> None:
    with running_fake("okta", tenant()) as (fake, url):
        conn = fake.connector(url, **FAST)
        with pytest.raises(UnavailableError):
            conn.api.check_link("https://evil.example.com/api/v1/users?after=x")
        assert conn.api.check_link(url + "/api/v1/users?after=x")


def test_redact_masks_tokens_and_assertions() -> None:
    text = redact("GET /x?client_assertion=eyJabc.def&limit=2 Authorization: SSWS 00abcdefghijk",
                  "00abcdefghijk")
    assert "eyJabc" not in text and "00abcdefghijk" not in text and "limit=2" in text


# -- incremental reads and the login path --------------------------------------------------------


def test_delta_reports_changes_and_deletions_from_the_system_log() -> None:
    with running_fake("okta", tenant()) as (fake, url):
        t, x = fake.tenant, fake.external_id
        first = run(take(fake.connector(url, **FAST)))
        gids, uids = list(t.groups), list(t.users)
        t.delete_group(gids[0])
        t.delete_user(uids[0])
        t.update_user(uids[1], family_name="Renamed")
        delta = run(take(fake.connector(url, **FAST), cursor=first.cursor))
        assert delta.mode == "delta" and delta.complete
        assert delta.removed_groups == {x(gids[0])} and delta.removed_users == {x(uids[0])}
        assert x(uids[1]) in delta.users and delta.users[x(uids[1])].family_name == "Renamed"
        assert len(delta.users) < len(first.users)
        assert delta.cursor and delta.cursor >= first.cursor


def test_delta_without_system_log_access_reads_in_full() -> None:
    faults = FaultPlan()
    with running_fake("okta", tenant(), faults) as (fake, url):
        first = run(take(fake.connector(url, **FAST)))
        faults.add("error", path="/api/v1/logs", status=403, times=None)
        fake.tenant.rename_group(next(iter(fake.tenant.groups)), "renamed")
        snap = run(take(fake.connector(url, **FAST), cursor=first.cursor))
        assert snap.mode == "full" and snap.complete
        assert "renamed" in {g.display_name for g in snap.groups.values()}


@pytest.mark.parametrize("cursor", ["not-a-time", okta_time(time.time() - 100 * 86400)])
def test_unusable_or_too_old_cursor_reads_in_full(cursor: str) -> None:
    with running_fake("okta", tenant()) as (fake, url):
        snap = run(take(fake.connector(url, **FAST), cursor=cursor))
        assert snap.mode == "full" and snap.complete and len(snap.users) == len(fake.tenant.users)


def test_user_groups_by_login_email_and_unknown() -> None:
    with running_fake("okta", tenant()) as (fake, url):
        t, x = fake.tenant, fake.external_id
        user = next(u for u in t.users.values() if t.parent_group_ids(u.id))

        async def lookups() -> Any:
            async with fake.connector(url, **FAST) as conn:
                return (await conn.user_groups(user.user_name.upper()),
                        await conn.user_groups("00uDoesNotExist000000"))

        found, unknown = run(lookups())
        assert found.user is not None and found.user.external_id == x(user.id)
        assert {g.external_id for g in found.groups} == {x(g) for g in t.parent_group_ids(user.id)}
        assert all(g.display_name for g in found.groups)
        assert unknown.user is None and unknown.groups == ()


def test_progress_is_reported_per_phase_as_pages_arrive() -> None:
    seen: dict[str, list[int]] = {}
    with running_fake("okta", tenant(users=450)) as (fake, url):
        async def go() -> Snapshot:
            async with fake.connector(url, **FAST) as conn:
                return await conn.snapshot(
                    progress=lambda phase, n: seen.setdefault(phase, []).append(n))

        snap = run(go())
    assert seen["users"] == [200, 400, 450] and seen["groups"][-1] == len(snap.groups)
    assert seen["members"][-1] == sum(len(g.member_ids) for g in snap.groups.values())


def test_deadline_is_never_negative() -> None:
    d = Deadline(0.0)
    time.sleep(0.01)
    assert d.remaining() == 0.0
