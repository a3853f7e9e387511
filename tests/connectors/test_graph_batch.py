"""Graph JSON batching: the fake's `$batch` against the documented shapes, and the connector
reading group members through batches (retries, errors, fallback) with the same results as
one request per group."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import AuthError, ConfigError
from connectors.graph import GraphConnector
from connectors.graph.batch import relative_url
from connectors.testing.faults import FaultPlan
from connectors.testing.graph import GraphFake
from connectors.testing.harness import running_fake
from connectors.testing.server import ServerThread
from connectors.testing.tenant import Tenant, generate
from syncd.reconcile.snapshot import Snapshot

pytestmark = [pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")]

FAST = {"time_budget": 20.0, "request_timeout": 5.0, "max_retries": 2}
USER = "#microsoft.graph.user"


def small(**kw: Any) -> Tenant:
    return generate(**{"users": 60, "groups": 12, "members_per_group": 8, **kw})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def snap_of(fake: Any, url: str, **opts: Any) -> Snapshot:
    conn = fake.connector(url, directory="t", **{**FAST, **opts})
    try:
        return await conn.snapshot()
    finally:
        await conn.aclose()


def members(snap: Snapshot) -> dict[str, frozenset[str]]:
    return {gid: g.member_ids for gid, g in snap.groups.items()}


def expected(tenant: Tenant) -> dict[str, frozenset[str]]:
    return {gid: frozenset(tenant.transitive_user_ids(gid)) for gid in tenant.groups}


async def token(http: httpx.AsyncClient, url: str, fake: Any) -> None:
    r = await http.post(f"{url}/{fake.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": fake.client_id,
        "client_secret": fake.client_secret, "scope": "https://graph.microsoft.com/.default"})
    http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"


@contextmanager
def serving(fake: GraphFake) -> Iterator[str]:
    srv = ServerThread(fake.app()).start()
    try:
        yield srv.url
    finally:
        srv.stop()


# -- the fake's $batch, against the documented request and response shapes ----------------------


def test_fake_batch_answers_each_request_by_id_as_a_direct_request_would() -> None:
    tenant = small()
    gid = next(iter(tenant.groups))
    upn = next(iter(tenant.users.values())).user_name

    async def go(url: str, fake: Any) -> None:
        async with httpx.AsyncClient() as http:
            await token(http, url, fake)
            body = {"requests": [
                {"id": "1", "method": "GET", "url": "/users?$select=id,displayName&$top=5"},
                {"id": "2", "method": "GET", "url": f"/groups/{gid}/transitiveMembers?$select=id"},
                {"id": "3", "method": "GET", "url": f"users/{upn}?$select=id"},  # no leading slash
                {"id": "4", "method": "GET", "url": "/groups/no-such-group/transitiveMembers"},
            ]}
            r = await http.post(f"{url}/v1.0/$batch", json=body,
                                headers={"Accept": "application/json"})
            assert r.status_code == 200
            answer = r.json()
            assert list(answer) == ["responses"]
            got = answer["responses"]
            assert [x["id"] for x in got] != ["1", "2", "3", "4"]  # not in request order
            by_id = {x["id"]: x for x in got}
            assert sorted(by_id) == ["1", "2", "3", "4"]
            for rid in "123":
                assert by_id[rid]["status"] == 200
                assert by_id[rid]["headers"]["Content-Type"].startswith("application/json")
            for rid, rel in (("1", "/users?$select=id,displayName&$top=5"),
                             ("2", f"/groups/{gid}/transitiveMembers?$select=id"),
                             ("3", f"/users/{upn}?$select=id")):
                direct = (await http.get(f"{url}/v1.0{rel}")).json()
                assert by_id[rid]["body"] == direct
            assert "@odata.nextLink" in by_id["1"]["body"]
            assert by_id["4"]["status"] == 404
            assert by_id["4"]["body"]["error"]["code"] == "Request_ResourceNotFound"

    with running_fake("graph", tenant) as (fake, url):
        run(go(url, fake))
        assert fake.batches == [4]


@pytest.mark.parametrize("case", ["too_many", "no_id", "duplicate_id", "absolute_url", "bad_json",
                                  "no_requests", "not_json_content"])
def test_fake_batch_refuses_what_graph_refuses(case: str) -> None:
    def req(i: int, **kw: Any) -> dict[str, Any]:
        return {"id": str(i), "method": "GET", "url": "/users?$top=1", **kw}

    bodies: dict[str, Any] = {
        "too_many": {"requests": [req(i) for i in range(21)]},
        "no_id": {"requests": [{"method": "GET", "url": "/users"}]},
        "duplicate_id": {"requests": [req(1), req(1)]},
        "absolute_url": {"requests": [req(1, url="https://graph.microsoft.com/v1.0/users")]},
        "no_requests": {"value": []},
    }

    async def go(url: str, fake: Any) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            await token(http, url, fake)
            if case == "bad_json":
                return await http.post(f"{url}/v1.0/$batch", content=b'{"requests": [',
                                       headers={"Content-Type": "application/json"})
            if case == "not_json_content":
                return await http.post(f"{url}/v1.0/$batch", data={"requests": "x"})
            return await http.post(f"{url}/v1.0/$batch", json=bodies[case])

    with running_fake("graph", small()) as (fake, url):
        r = run(go(url, fake))
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "BadRequest"
        assert fake.batches == []


def test_fake_batch_accepts_twenty_requests() -> None:
    async def go(url: str, fake: Any) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            await token(http, url, fake)
            return await http.post(f"{url}/v1.0/$batch", json={"requests": [
                {"id": f"r{i}", "method": "GET", "url": "/users?$top=1"} for i in range(20)]})

    with running_fake("graph", small()) as (fake, url):
        r = run(go(url, fake))
    assert r.status_code == 200 and len(r.json()["responses"]) == 20


def test_fake_batch_throttles_inner_requests_with_inner_retry_after() -> None:
    tenant = small()
    gids = list(tenant.groups)[:3]
    faults = FaultPlan()
    faults.add("throttle", path=f"/groups/{gids[1]}/transitiveMembers", times=1, retry_after=7)

    async def go(url: str, fake: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            await token(http, url, fake)
            r = await http.post(f"{url}/v1.0/$batch", json={"requests": [
                {"id": g, "method": "GET", "url": f"/groups/{g}/transitiveMembers"} for g in gids]})
            assert r.status_code == 200 and "retry-after" not in r.headers
            return {x["id"]: x for x in r.json()["responses"]}

    with running_fake("graph", tenant, faults) as (fake, url):
        by_id = run(go(url, fake))
    assert by_id[gids[1]]["status"] == 429
    assert by_id[gids[1]]["headers"]["Retry-After"] == "7"
    assert by_id[gids[1]]["body"]["error"]["code"] == "TooManyRequests"
    assert by_id[gids[0]]["status"] == by_id[gids[2]]["status"] == 200


@pytest.mark.parametrize("refusal", [400, 404])
def test_fake_without_batch_refuses_it(refusal: int) -> None:
    async def go(url: str, fake: Any) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            await token(http, url, fake)
            return await http.post(f"{url}/v1.0/$batch", json={"requests": [
                {"id": "1", "method": "GET", "url": "/users"}]})

    with running_fake("graph", small(), batch=False, batch_refusal=refusal) as (fake, url):
        assert run(go(url, fake)).status_code == refusal


# -- the connector reading through batches ------------------------------------------------------


@pytest.mark.parametrize("batch_size", [2, 5, 20])
def test_batched_snapshot_equals_one_request_per_group(batch_size: int) -> None:
    tenant = small(groups=23)
    with running_fake("graph", tenant) as (fake, url):
        one = run(snap_of(fake, url, page_size=3, batch_size=1))
        assert fake.batches == []
        many = run(snap_of(fake, url, page_size=3, batch_size=batch_size))
        sizes = list(fake.batches)
    assert one.complete and many.complete, many.problems
    assert members(many) == members(one) == expected(tenant)  # groups beyond one page included
    assert {g: x.display_name for g, x in many.groups.items()} == {
        g: x.display_name for g, x in one.groups.items()}
    assert many.users == one.users
    assert sum(sizes) == 23 and max(sizes) <= batch_size
    assert len(sizes) == -(-23 // batch_size)
    # the pages are the same; the HTTP calls fewer, by one per batched group less one per batch
    assert many.stats.pages == one.stats.pages
    assert one.stats.api_calls - many.stats.api_calls == 23 - len(sizes)


def test_throttled_requests_inside_a_batch_are_retried_alone_after_their_retry_after() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("throttle", path="/transitiveMembers", after=3, times=2, retry_after=1)
    with running_fake("graph", tenant, faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(snap_of(fake, url, concurrency=1, page_size=999))
        took = time.monotonic() - t0
        sizes = list(fake.batches)
    assert snap.complete, snap.problems
    assert snap.stats.throttles == 2
    assert sizes == [12, 2]  # only the two throttled requests were sent again
    assert took >= 1.0
    assert members(snap) == expected(tenant)


def test_endless_inner_throttling_marks_that_group_incomplete_within_retries() -> None:
    tenant = small()
    gid = list(tenant.groups)[3]
    faults = FaultPlan()
    faults.add("throttle", path=f"/groups/{gid}/transitiveMembers", times=None, retry_after=1)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url, max_retries=2))
        sizes = list(fake.batches)
    assert not snap.complete
    assert len(snap.problems) == 1 and gid in snap.problems[0] and "429" in snap.problems[0]
    assert snap.stats.throttles == 3  # the first answer and two retries
    assert sizes == [12, 1, 1]
    others = {g: m for g, m in expected(tenant).items() if g != gid}
    assert {g: m for g, m in members(snap).items() if g != gid} == others


def test_inner_throttling_past_the_deadline_ends_as_budget_exhausted() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("throttle", path="/transitiveMembers", times=None, retry_after=30)
    with running_fake("graph", tenant, faults) as (fake, url):
        t0 = time.monotonic()
        snap = run(snap_of(fake, url, time_budget=3.0))
        took = time.monotonic() - t0
    assert took < 3.0 + 2.0
    assert not snap.complete
    assert any("time budget" in p for p in snap.problems), snap.problems
    assert set(snap.groups) == set(tenant.groups)  # what was read is still reported


@pytest.mark.parametrize("batch_size", [1, 20])
def test_a_group_deleted_mid_read_is_left_out_without_a_problem(batch_size: int) -> None:
    tenant = small()
    gid = list(tenant.groups)[5]
    faults = FaultPlan()
    faults.add("error", path=f"/groups/{gid}/transitiveMembers", times=None, status=404)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url, batch_size=batch_size))
    assert snap.complete and not snap.problems
    assert set(snap.groups) == set(tenant.groups) - {gid}


@pytest.mark.parametrize(("status", "raised"), [(403, AuthError), (400, ConfigError)])
@pytest.mark.parametrize("batch_size", [1, 20])
def test_inner_errors_go_through_the_same_error_funnel(status: int, raised: type, batch_size: int) -> None:
    tenant = small()
    gid = list(tenant.groups)[2]
    faults = FaultPlan()
    faults.add("error", path=f"/groups/{gid}/transitiveMembers", times=None, status=status)
    with running_fake("graph", tenant, faults) as (fake, url), pytest.raises(raised, match=str(status)):
        run(snap_of(fake, url, batch_size=batch_size))


def test_one_inner_server_error_is_retried() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("error", path="/transitiveMembers", after=4, times=1, status=500)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url))
        sizes = list(fake.batches)
    assert snap.complete, snap.problems
    assert sizes == [12, 1]
    assert members(snap) == expected(tenant)


def test_a_throttled_batch_post_is_retried_by_the_sdk() -> None:
    tenant = small()
    faults = FaultPlan()
    faults.add("throttle", path="/$batch", times=1, retry_after=1)
    with running_fake("graph", tenant, faults) as (fake, url):
        snap = run(snap_of(fake, url))
    assert snap.complete and snap.stats.throttles == 1
    assert members(snap) == expected(tenant)


# -- fallback: a server without a usable $batch --------------------------------------------------


@pytest.mark.parametrize("refusal", [400, 404, 405, 501])
def test_a_server_without_batch_is_read_one_group_at_a_time(
        refusal: int, caplog: pytest.LogCaptureFixture) -> None:
    tenant = small(groups=30)
    with running_fake("graph", tenant, batch=False, batch_refusal=refusal) as (fake, url), \
            caplog.at_level(logging.INFO, logger="connectors.graph.reader"):
        snap = run(snap_of(fake, url, page_size=5, batch_size=5))
        assert fake.batches == []
    assert snap.complete, snap.problems
    assert members(snap) == expected(tenant)
    refused = [r for r in caplog.records if "$batch" in r.getMessage()]
    assert len(refused) == 1 and str(refusal) in refused[0].getMessage()


class _NotABatch(GraphFake):
    """Answers `$batch` with 200 and something that is not a well-formed batch response."""

    def __init__(self, tenant: Tenant, shape: str) -> None:
        super().__init__(tenant)
        self.shape = shape

    async def _batch(self, scope: dict[str, Any], body: bytes,
                     base: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        _, headers, payload = await super()._batch(scope, body, base)
        if self.shape == "value":
            return 200, headers, b'{"value": []}'
        if self.shape == "missing":  # one request left unanswered
            return 200, headers, payload.replace(b'{"id":"0"', b'{"idx":"0"', 1)
        return 200, headers, b"<html>batching is not supported here</html>"


@pytest.mark.parametrize("shape", ["value", "missing", "html"])
def test_an_answer_that_is_not_a_batch_response_falls_back(shape: str) -> None:
    tenant = small()
    fake = _NotABatch(tenant, shape)
    with serving(fake) as url:
        snap = run(snap_of(fake, url, max_retries=1))
    assert snap.complete, snap.problems
    assert members(snap) == expected(tenant)


# -- the option ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 21, -1, True, "20", 2.5])
def test_batch_size_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"batch_size must be 1\.\.20"):
        GraphConnector("d", tenant_id="t", client_id="c", client_secret="s", batch_size=bad)


def test_batch_size_flows_from_the_config(tmp_path: Path) -> None:
    from connectors.factory import build_connector
    from syncd.config import parse_config

    text = ('[directories.entra]\nkind = "graph"\ntenant_id = "t"\nclient_id = "c"\n'
            'client_secret_env = "S"\nbatch_size = {}\n')
    env = {"S": "s3cret", "HOME": str(tmp_path)}
    settings = parse_config(text.format(7), source=tmp_path / "c.toml", environ=env)
    conn = build_connector("entra", settings.directories["entra"])
    assert isinstance(conn, GraphConnector) and conn._settings.batch_size == 7
    with pytest.raises(Exception, match="batch_size"):
        parse_config(text.format(21), source=tmp_path / "c.toml", environ=env)


def test_relative_url_names_the_path_under_the_service_root() -> None:
    base = "https://graph.microsoft.com/v1.0"
    assert relative_url(base, f"{base}/groups/g1/transitiveMembers?$select=id") == \
        "/groups/g1/transitiveMembers?$select=id"
    with pytest.raises(ValueError):
        relative_url(base, "https://elsewhere.example/v1.0/groups")
