"""Keycloak-specific behaviour: python-keycloak against the fake Keycloak over HTTP on 127.0.0.1.

The shared contract lives in test_contract.py; these tests cover what only Keycloak does: the
group forest read through `/children` (whose `max` defaults to 10), direct-only member lists
expanded up the tree, `enabled: false`, ancestors for on-login sync (`parentId`, or
`/group-by-path`), the client credentials token (one request, renewed after a 401), the legacy
`/auth` context path, and the errors an operator must be able to act on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.base import AuthError, ConfigError, Connector
from connectors.keycloak.reader import transitive_members
from connectors.testing.harness import running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

FAST: dict[str, Any] = {
    "page_size": 7,
    "concurrency": 4,
    "max_retries": 2,
    "time_budget": 30.0,
    "request_timeout": 5.0,
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(conn: Connector) -> Snapshot:
    async with conn:
        return await conn.snapshot()


def forest() -> tuple[Tenant, dict[str, str]]:
    """root ⊃ mid ⊃ leaf (one user each), and `wide` with 25 subgroups (one user each)."""
    t = generate(seed=5, users=60, groups=0, members_per_group=0, disabled_fraction=0.0)
    uids = list(t.users)
    g = {name: t.add_group(name).id for name in ("root", "mid", "leaf", "wide")}
    t.add_member(g["root"], g["mid"])
    t.add_member(g["mid"], g["leaf"])
    for name, u in zip(("root", "mid", "leaf"), uids, strict=False):
        t.add_member(g[name], u)
    for i in range(25):
        kid = t.add_group(f"wide-{i:02d}").id
        t.add_member(g["wide"], kid)
        t.add_member(kid, uids[10 + i])
    t.update_user(uids[59], active=False)
    return t, g


# -- the fake's wire format (what the connector must cope with) ---------------------------------


def test_fake_children_default_to_ten_and_groups_leave_subgroups_empty() -> None:
    t, g = forest()
    with running_fake("keycloak", t) as (_fake, url):
        tok = httpx.post(
            f"{url}/realms/acme/protocol/openid-connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "syncd",
                "client_secret": "fake-keycloak-secret",
            },
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        top = httpx.get(f"{url}/admin/realms/acme/groups", headers=h).json()
        wide = next(x for x in top if x["name"] == "wide")
        assert wide["subGroups"] == [] and wide["subGroupCount"] == 25
        kids = httpx.get(f"{url}/admin/realms/acme/groups/{wide['id']}/children", headers=h).json()
        assert len(kids) == 10
        members = httpx.get(f"{url}/admin/realms/acme/groups/{g['root']}/members", headers=h).json()
        assert len(members) == 1  # direct only: mid's and leaf's users are not listed


# -- snapshot ----------------------------------------------------------------------------------


def test_nested_members_reach_every_ancestor_and_wide_levels_are_paged() -> None:
    t, g = forest()
    with running_fake("keycloak", t) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        uids = list(t.users)
        assert snap.groups[g["root"]].member_ids == frozenset(uids[:3])
        assert snap.groups[g["mid"]].member_ids == frozenset(uids[1:3])
        assert snap.groups[g["wide"]].member_ids == frozenset(uids[10:35])
        assert len(snap.groups) == 4 + 25
        assert snap.users[uids[59]].active is False
        assert sum(1 for u in snap.users.values() if u.active) == 59
        # every children request carried `max` (the server's default of 10 would cut pages)
        kids = [q for p, q in fake.requests if p.endswith("/children")]
        assert kids and all(q.get("max") == "7" for q in kids)


def test_team_name_path_gives_the_unique_path() -> None:
    t, g = forest()
    with running_fake("keycloak", t) as (fake, url):
        snap = run(take(fake.connector(url, team_name="path", **FAST)))
        assert snap.groups[g["leaf"]].display_name == "/root/mid/leaf"
        assert snap.groups[g["root"]].display_name == "/root"


def test_one_token_request_serves_all_concurrent_reads() -> None:
    t, _ = forest()
    with running_fake("keycloak", t) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete and fake.token_requests == 1


def test_a_token_dropped_mid_read_is_renewed_and_the_read_completes() -> None:
    t, _ = forest()
    with running_fake("keycloak", t, revoke_tokens_after=5) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert fake.token_requests >= 2 and len(snap.groups) == 29


def test_a_server_on_the_legacy_auth_context_path() -> None:
    t, g = forest()
    with running_fake("keycloak", t, context_path="/auth") as (fake, url):
        snap = run(take(fake.connector(url + "/auth", **FAST)))
        assert snap.complete and g["leaf"] in snap.groups


def test_a_wrong_secret_names_the_fix() -> None:
    t, _ = forest()
    with running_fake("keycloak", t) as (fake, url), pytest.raises(AuthError) as info:
        run(take(fake.connector(url, client_secret="wrong", **FAST)))
    assert "unauthorized_client" in str(info.value) and "Service accounts" in str(info.value)
    assert "wrong" not in str(info.value)


def test_a_missing_role_names_the_roles_to_grant() -> None:
    t, _ = forest()
    with running_fake("keycloak", t, forbidden="/members") as (fake, url), pytest.raises(AuthError) as info:
        run(take(fake.connector(url, **FAST)))
    assert "view-users" in str(info.value) and "query-groups" in str(info.value)


def test_settings_the_connector_refuses() -> None:
    from connectors.keycloak import KeycloakConnector

    with pytest.raises(ConfigError):
        KeycloakConnector(
            "d", server_url="http://sso.example.com", realm="a", client_id="c", client_secret="s"
        )  # plain http off loopback
    with pytest.raises(ConfigError):
        KeycloakConnector(
            "d", server_url="https://sso.example.com", realm="a", client_id="c", client_secret=""
        )
    with pytest.raises(ConfigError):
        KeycloakConnector(
            "d",
            server_url="https://sso.example.com",
            realm="a",
            client_id="c",
            client_secret="s",
            team_name="id",
        )  # type: ignore[arg-type]


# -- one user's groups --------------------------------------------------------------------------


@pytest.mark.parametrize("parent_ids", [True, False], ids=["parentId", "group-by-path"])
def test_user_groups_include_every_ancestor(parent_ids: bool) -> None:
    t, g = forest()
    leaf_user = list(t.users)[2]
    with running_fake("keycloak", t, parent_ids=parent_ids) as (fake, url):

        async def go() -> Any:
            async with fake.connector(url, **FAST) as conn:
                return await conn.user_groups(t.users[leaf_user].user_name.upper())

        ug = run(go())
        assert ug.user is not None and ug.user.external_id == leaf_user
        assert {x.external_id for x in ug.groups} == {g["root"], g["mid"], g["leaf"]}


def test_user_groups_by_email_and_unknown() -> None:
    t, g = forest()
    u = list(t.users)[1]
    t.update_user(u, user_name="mid.person@contoso.example")
    with running_fake("keycloak", t) as (fake, url):

        async def go() -> Any:
            async with fake.connector(url, **FAST) as conn:
                return (
                    await conn.user_groups("mid.person@contoso.example"),
                    await conn.user_groups("00000000-0000-4000-8000-000000000000"),
                )

        found, unknown = run(go())
        assert {x.external_id for x in found.groups} == {g["root"], g["mid"]}
        assert unknown.user is None and unknown.groups == ()


# -- pure expansion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("children", "direct", "want"),
    [
        ({}, {"a": {"u1"}}, {"a": {"u1"}}),
        (
            {"a": ["b"], "b": ["c"]},
            {"a": set(), "b": {"u2"}, "c": {"u3"}},
            {"a": {"u2", "u3"}, "b": {"u2", "u3"}, "c": {"u3"}},
        ),
        (
            {"a": ["b", "c"]},
            {"a": {"u1"}, "b": {"u1"}, "c": {"u4"}},
            {"a": {"u1", "u4"}, "b": {"u1"}, "c": {"u4"}},
        ),
        ({"a": ["b"], "b": ["a"]}, {"a": {"u1"}, "b": {"u2"}}, None),  # a broken tree ends
    ],
)
def test_transitive_members(
    children: dict[str, list[str]], direct: dict[str, set[str]], want: dict[str, set[str]] | None
) -> None:
    got = transitive_members(children, direct)
    assert set(got) == set(direct)
    if want is not None:
        assert {k: set(v) for k, v in got.items()} == want


def test_a_client_in_the_master_realm_reads_another_realm() -> None:
    t, g = forest()
    with running_fake("keycloak", t, token_realm="master") as (fake, url):
        snap = run(take(fake.connector(url, token_realm="master", **FAST)))
        assert snap.complete and g["leaf"] in snap.groups
        with pytest.raises(AuthError, match="invalid_client"):
            run(take(fake.connector(url, **FAST)))  # token asked of the realm read: unknown client


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    from email.utils import formatdate

    from connectors.keycloak.errors import retry_after

    assert 0.0 <= retry_after({"retry-after": formatdate(usegmt=True)}) < 2.0
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_a_server_older_than_23_gives_its_subtree_in_subgroups() -> None:
    t, g = forest()
    with running_fake("keycloak", t, legacy=True) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        uids = list(t.users)
        assert snap.groups[g["root"]].member_ids == frozenset(uids[:3])
        assert len(snap.groups) == 29
        assert not [p for p, _ in fake.requests if p.endswith("/children")]

        async def login() -> Any:
            async with fake.connector(url, **FAST) as conn:
                return await conn.user_groups(uids[2])

        assert {x.external_id for x in run(login()).groups} == {g["root"], g["mid"], g["leaf"]}
