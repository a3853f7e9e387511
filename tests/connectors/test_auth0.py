"""Auth0-specific behaviour: the real auth0-python stack against the fake tenant over HTTP.

The shared contract lives in test_contract.py; these tests cover what only Auth0 does: the
1,000-result cap of page/per_page lists and the users-export job that reads past it, checkpoint
paging, roles and organizations as teams, `blocked`, the client-credentials token and its
audience, and end-to-end pulls into both stores.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.auth0 import Auth0Connector
from connectors.auth0.errors import from_status, retry_after
from connectors.auth0.snapshot import per_page_for
from connectors.base import (
    AuthError,
    BadDataError,
    ConfigError,
    Connector,
    NotFoundError,
    ThrottledError,
    UnavailableError,
)
from connectors.factory import build_connector
from connectors.testing.auth0 import FakeAuth0
from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.config import parse_config
from syncd.reconcile.run import RunOptions, run_sync
from syncd.reconcile.snapshot import Snapshot
from tests.reconcile.test_e2e import audit_total, store_state

FAST: dict[str, Any] = {"concurrency": 4, "max_retries": 2, "time_budget": 60.0, "request_timeout": 10.0}
DIR = "entra"  # the directory name store_state reads


def tenant(users: int = 40, groups: int = 6, members: int = 8) -> Tenant:
    return generate(seed=5, users=users, groups=groups, members_per_group=members, disabled_fraction=0.3)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(conn: Connector) -> Snapshot:
    async with conn:
        return await conn.snapshot()


def want_users(fake: FakeAuth0) -> dict[str, tuple[str, bool]]:
    x = fake.external_id
    return {x(u.id): (u.user_name, u.active) for u in fake.tenant.users.values()}


def got_users(snap: Snapshot) -> dict[str, tuple[str, bool]]:
    return {k: (u.user_name, u.active) for k, u in snap.users.items()}


def want_members(fake: FakeAuth0, ident: Any = None) -> dict[str, frozenset[str]]:
    ident = ident or fake.external_id
    x = fake.external_id
    return {ident(g.id): frozenset(x(u) for u in g.user_ids) for g in fake.tenant.groups.values()}


def got_members(snap: Snapshot) -> dict[str, frozenset[str]]:
    return {k: g.member_ids for k, g in snap.groups.items()}


def token(url: str, fake: FakeAuth0) -> str:
    r = httpx.post(
        f"{url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "audience": f"https://{fake.domain}/api/v2/",
        },
    )
    return r.json()["access_token"]


# -- the fake's wire format (what the connector must cope with) -----------------------------------


def test_fake_refuses_paging_past_1000_users_with_auth0s_error_body() -> None:
    with running_fake("auth0", tenant(users=30)) as (fake, url):
        h = {"Authorization": f"Bearer {token(url, fake)}"}
        ok = httpx.get(f"{url}/api/v2/users", params={"page": 9, "per_page": 100}, headers=h)
        assert ok.status_code == 200 and ok.json() == []  # the cap is about offsets, not size
        r = httpx.get(f"{url}/api/v2/users", params={"page": 10, "per_page": 100}, headers=h)
        assert r.status_code == 400
        body = r.json()
        assert body["statusCode"] == 400 and body["error"] == "Bad Request"
        assert body["message"].startswith("You can only page through the first 1000 records")
        r = httpx.get(f"{url}/api/v2/users", params={"per_page": 101}, headers=h)
        assert r.status_code == 400
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(r.headers)


def test_fake_checkpoint_paging_has_no_cap_and_no_next_on_the_last_page() -> None:
    t = generate(seed=2, users=1300, groups=1, members_per_group=1250)
    with running_fake("auth0", t) as (fake, url):
        h = {"Authorization": f"Bearer {token(url, fake)}"}
        rid = fake.external_id(next(iter(t.groups)))
        seen, params = [], {"take": 100}
        while True:
            doc = httpx.get(f"{url}/api/v2/roles/{rid}/users", params=params, headers=h).json()
            seen += [m["user_id"] for m in doc["users"]]
            if "next" not in doc:
                break
            params = {"take": 100, "from": doc["next"]}
        assert len(seen) == len(set(seen)) == 1250
        r = httpx.get(f"{url}/api/v2/roles/{rid}/users", params={"page": 10, "per_page": 100}, headers=h)
        assert r.status_code == 400 and "checkpoint pagination" in r.json()["message"]


def test_fake_export_file_refuses_a_bearer_token_like_a_presigned_url() -> None:
    with running_fake("auth0", tenant(users=5), export_polls=0) as (fake, url):
        h = {"Authorization": f"Bearer {token(url, fake)}"}
        job = httpx.post(
            f"{url}/api/v2/jobs/users-exports",
            headers=h,
            json={"format": "json", "fields": [{"name": "user_id"}, {"name": "blocked"}]},
        ).json()
        done = httpx.get(f"{url}/api/v2/jobs/{job['id']}", headers=h).json()
        assert done["status"] == "completed"
        assert httpx.get(done["location"], headers=h).status_code == 400
        lines = gzip.decompress(httpx.get(done["location"]).content).splitlines()
        rows = [orjson.loads(x) for x in lines]
        assert len(rows) == 5 and all(set(r) <= {"user_id", "blocked"} for r in rows)


# -- users: the 1,000 cap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "want"), [(1, 1), (7, 5), (30, 25), (50, 50), (99, 50), (100, 100), (500, 100)]
)
def test_per_page_divides_1000_so_the_last_page_stays_inside_the_cap(size: int, want: int) -> None:
    assert per_page_for(size) == want


def test_a_tenant_of_exactly_1000_users_is_listed_without_crossing_the_cap() -> None:
    # page_size 30 would ask for page 33 (990..1019): refused. 25 ends at exactly 1,000.
    with running_fake("auth0", tenant(users=1000, groups=2)) as (fake, url):
        snap = run(take(fake.connector(url, page_size=30, users_source="list", **FAST)))
        assert snap.complete, snap.problems
        assert got_users(snap) == want_users(fake)
        assert not fake.jobs


def test_more_than_1000_users_are_read_through_an_export_job() -> None:
    t = generate(seed=9, users=1234, groups=5, members_per_group=300, disabled_fraction=0.1)
    with running_fake("auth0", t, export_polls=2) as (fake, url):
        snap = run(take(fake.connector(url, **FAST)))
        assert snap.complete, snap.problems
        assert len(snap.users) == 1234 and got_users(snap) == want_users(fake)
        assert got_members(snap) == want_members(fake)
        assert len(fake.jobs) == 1
        assert all(int(q["page"]) == 0 for q in fake.list_requests)  # only the first page was listed


def test_users_source_list_refuses_a_large_tenant_with_the_fix() -> None:
    with (
        running_fake("auth0", tenant(users=1001, groups=1)) as (fake, url),
        pytest.raises(ConfigError, match='users_source = "export"'),
    ):
        run(take(fake.connector(url, users_source="list", **FAST)))


def test_export_source_reads_a_small_tenant_too_and_blocked_users_are_inactive() -> None:
    with running_fake("auth0", tenant()) as (fake, url):
        snap = run(take(fake.connector(url, users_source="export", **FAST)))
        assert snap.complete, snap.problems
        assert got_users(snap) == want_users(fake)
        assert any(not u.active for u in snap.users.values())
        assert fake.jobs and not fake.list_requests


def test_a_broken_export_file_is_an_error_not_an_empty_directory() -> None:
    faults = FaultPlan()
    faults.add("bad_json", path="/export-files/", times=None)
    with running_fake("auth0", tenant(), faults) as (fake, url), pytest.raises(BadDataError, match="gzip"):
        run(take(fake.connector(url, users_source="export", **FAST)))


# -- teams: roles, organizations or both ------------------------------------------------------------


def test_organizations_as_teams_and_both() -> None:
    with running_fake("auth0", tenant()) as (fake, url):
        orgs = run(take(fake.connector(url, teams="organizations", page_size=3, **FAST)))
        assert orgs.complete, orgs.problems
        assert got_members(orgs) == want_members(fake, fake.org_external_id)
        assert {g.display_name for g in orgs.groups.values()} == {g.name for g in fake.tenant.groups.values()}
        both = run(take(fake.connector(url, teams="both", page_size=3, **FAST)))
        assert got_members(both) == {**want_members(fake), **want_members(fake, fake.org_external_id)}

        async def lookup() -> Any:
            async with fake.connector(url, teams="both", **FAST) as conn:
                return await conn.user_groups(user.user_name)

        user = next(u for u in fake.tenant.users.values() if fake.tenant.parent_group_ids(u.id))
        ug = run(lookup())
        parents = fake.tenant.parent_group_ids(user.id)
        assert {g.external_id for g in ug.groups} == {fake.external_id(g) for g in parents} | {
            fake.org_external_id(g) for g in parents
        }


def test_user_lookup_by_user_id_email_and_username() -> None:
    with running_fake("auth0", tenant()) as (fake, url):
        u = next(iter(fake.tenant.users.values()))
        uid = fake.external_id(u.id)

        async def lookups() -> list[Any]:
            async with fake.connector(url, **FAST) as conn:
                return [
                    await conn.user_groups(k)
                    for k in (uid, u.user_name.upper(), "auth0|000000000000000000000000", "no-such-username")
                ]

        by_id, by_email, missing_id, missing_name = run(lookups())
        assert by_id.user is not None and by_id.user.external_id == uid
        assert by_email.user is not None and by_email.user.external_id == uid
        assert missing_id.user is None and missing_name.user is None


# -- credentials and throttling ---------------------------------------------------------------------


def test_wrong_audience_and_wrong_secret_are_auth_errors() -> None:
    with running_fake("auth0", tenant(users=3)) as (fake, url):
        with pytest.raises(AuthError, match="Service not enabled"):
            run(take(fake.connector(url, audience="https://elsewhere.example/api/v2/", **FAST)))
        with pytest.raises(AuthError, match="access_denied") as err:
            run(take(fake.connector(url, client_secret="wrong-secret-value", **FAST)))
        assert "wrong-secret-value" not in str(err.value)


def test_a_revoked_access_token_is_replaced_once() -> None:
    with running_fake("auth0", tenant()) as (fake, url):

        async def twice() -> tuple[Snapshot, Snapshot]:
            async with fake.connector(url, **FAST) as conn:
                first = await conn.snapshot()
                fake.access_tokens.clear()  # the tenant's signing key rotated
                return first, await conn.snapshot()

        first, second = run(twice())
        assert second.complete and got_users(second) == got_users(first) == want_users(fake)


def test_throttle_past_the_budget_is_not_slept_on() -> None:
    faults = FaultPlan()
    faults.add("throttle", path="/api/v2/roles", times=None, retry_after=120)
    with (
        running_fake("auth0", tenant(), faults) as (fake, url),
        pytest.raises(ThrottledError, match="past the"),
    ):
        run(take(fake.connector(url, **{**FAST, "time_budget": 10.0})))


def test_429_carries_the_reset_as_retry_after() -> None:
    err = from_status(
        429,
        b'{"statusCode":429,"errorCode":"too_many_requests"}',
        httpx.Headers({"x-ratelimit-reset": "1000000030"}),
        what="roles",
    )
    assert isinstance(err, ThrottledError)
    assert err.retry_after is not None  # type: ignore[attr-defined]
    assert retry_after(httpx.Headers({"x-ratelimit-reset": "1000000030"}), now=1000000000.0) == 30.0
    assert retry_after(httpx.Headers({"x-ratelimit-reset": "999999990"}), now=1000000000.0) == 0.0
    assert retry_after(httpx.Headers({}), now=1000000000.0) is None


def test_domain_must_be_a_host_and_http_only_to_loopback() -> None:
    with pytest.raises(ConfigError):
        Auth0Connector("d", domain="https://x.auth0.com/api", client_id="c", client_secret="s")
    with pytest.raises(ConfigError):
        Auth0Connector(
            "d", domain="x.auth0.com", client_id="c", client_secret="s", base_url="http://x.example"
        )
    with pytest.raises(ConfigError):
        Auth0Connector("d", domain="x.auth0.com", client_id="c", client_secret="s", teams="groups")


# -- from the config file to a snapshot ------------------------------------------------------------


def test_config_to_connector_to_snapshot(tmp_path: Path) -> None:
    with running_fake("auth0", tenant()) as (fake, url):
        text = (
            f'[directories.a0]\nkind = "auth0"\ndomain = "{fake.domain}"\nclient_id = "{fake.client_id}"\n'
            f'client_secret_env = "A0"\nbase_url = "{url}"\n'
        )
        settings = parse_config(text, source=tmp_path / "c.toml", environ={"A0": fake.client_secret})
        conn = build_connector("a0", settings.directories["a0"])
        snap = run(take(conn))
        assert snap.complete and got_users(snap) == want_users(fake)


# -- end to end into the store (both backends) -----------------------------------------------------


def sync(engine: Any, fake: FakeAuth0, url: str, tmp_path: Path, **opts: Any) -> Any:
    conn = fake.connector(url, directory=DIR, page_size=50, **{**FAST, "time_budget": 120.0})
    return run_sync(engine, conn, RunOptions(lock_dir=tmp_path, **opts))


def test_pull_converges_then_a_second_run_writes_nothing(engine: Any, tmp_path: Path) -> None:
    t = generate(seed=4, users=1100, groups=8, members_per_group=40, disabled_fraction=0.1)
    with running_fake("auth0", t) as (fake, url):
        r1 = sync(engine, fake, url, tmp_path)
        assert r1.outcome == "applied" and r1.complete, r1.error
        us, ts, ms, counts_ok = store_state(engine)
        assert counts_ok and us == want_users(fake)
        assert ts == {fake.external_id(g.id): (g.name, False) for g in t.groups.values()}
        assert ms == {(k, m) for k, v in want_members(fake).items() for m in v}
        before = audit_total(engine)
        r2 = sync(engine, fake, url, tmp_path)
        assert r2.outcome == "applied" and r2.plan is not None and r2.plan.empty
        assert audit_total(engine) == before


def test_incomplete_read_removes_nothing(engine: Any, tmp_path: Path) -> None:
    faults = FaultPlan()
    with running_fake("auth0", tenant(users=60, groups=10), faults) as (fake, url):
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        g0 = next(iter(t.groups.values()))
        left = next(iter(g0.user_ids))
        t.remove_member(g0.id, left)
        faults.add("error", path="/roles/rol_", times=None, status=503)
        r = sync(engine, fake, url, tmp_path)
        assert r.outcome in ("applied", "partial") and not r.complete
        _, _, ms, _ = store_state(engine)
        assert (x(g0.id), x(left)) in ms  # an unread member list removes no one
        assert r.plan is not None and r.plan.counts().get("remove_members", 0) == 0


def test_a_login_lookup_past_1000_roles_reports_no_absence() -> None:
    t = generate(seed=6, users=2, groups=1005, members_per_group=2, nesting_depth=0)
    with running_fake("auth0", t) as (fake, url):
        user = next(iter(t.users.values()))

        async def lookup() -> Any:
            async with fake.connector(url, **FAST) as conn:
                return await conn.user_groups(user.user_name)

        ug = run(lookup())
        assert len(ug.groups) == 1000 and not ug.complete and ug.notes
        assert not any(ug.reports(fake.external_id(g)) for g in t.groups)  # a login removes nothing


def test_users_changing_while_listed_make_the_read_incomplete() -> None:
    """Offset paging over a list that grows skips a user; a skipped user must not look deleted."""
    faults = FaultPlan()
    with running_fake("auth0", tenant(users=60, groups=2), faults) as (fake, url):

        class Grow:  # a user created between the first and the second users page
            def __init__(self) -> None:
                self.seen = 0

            def __call__(self, method: str, path: str) -> None:
                if path == "/api/v2/users":
                    self.seen += 1
                    if self.seen == 2:
                        fake.tenant.add_user("aaa.new@contoso.example", "A", "New")

        grow = Grow()
        real_check = faults.check

        def check(method: str, path: str) -> Any:
            grow(method, path)
            return real_check(method, path)

        faults.check = check  # type: ignore[method-assign]
        snap = run(take(fake.connector(url, page_size=10, users_source="list", **FAST)))
        assert not snap.complete and any("changed while it was paged" in p for p in snap.problems)


def test_progress_reports_each_phase_up_to_the_totals() -> None:
    seen: dict[str, int] = {}
    with running_fake("auth0", tenant()) as (fake, url):

        async def read() -> Snapshot:
            async with fake.connector(url, page_size=10, **FAST) as conn:
                return await conn.snapshot(
                    progress=lambda phase, n: seen.__setitem__(phase, max(n, seen.get(phase, 0)))
                )

        snap = run(read())
        assert seen["users"] == len(snap.users) and seen["groups"] == len(snap.groups)
        assert seen["members"] == sum(len(g.member_ids) for g in snap.groups.values())


@pytest.mark.parametrize(
    ("status", "body", "token_endpoint", "want"),
    [
        (401, b'{"statusCode":401,"error":"Unauthorized","message":"Invalid token"}', False, AuthError),
        (
            403,
            b'{"statusCode":403,"message":"Insufficient scope","errorCode":"insufficient_scope"}',
            False,
            AuthError,
        ),
        (
            404,
            b'{"statusCode":404,"message":"The user does not exist.","errorCode":"inexistent_user"}',
            False,
            NotFoundError,
        ),
        (
            400,
            b'{"statusCode":400,"message":"You can only page through the first 1000 records"}',
            False,
            ConfigError,
        ),
        (429, b'{"statusCode":429,"errorCode":"too_many_requests"}', False, ThrottledError),
        (503, b"<html>bad gateway</html>", False, UnavailableError),
        (400, b'{"error":"invalid_request"}', True, AuthError),
    ],
)
def test_status_mapping(status: int, body: bytes, token_endpoint: bool, want: type) -> None:
    err = from_status(status, body, httpx.Headers(), what="x", token_endpoint=token_endpoint)
    assert type(err) is want
