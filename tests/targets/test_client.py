"""The SCIM client's one error boundary, its retries, and paging that trusts only resources."""

from __future__ import annotations

import httpx
import pytest

from syncd.targets import errors as E
from syncd.targets.client import RetryPolicy, ScimClient
from syncd.targets.paging import IndexPaging


def client(handler, **kw) -> ScimClient:
    waits: list[float] = []
    c = ScimClient(
        "http://t.example/scim/v2",
        "tok",
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        retry=kw.pop("retry", RetryPolicy(attempts=3)),
        **kw,
    )
    c.waits = waits  # type: ignore[attr-defined]
    return c


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "text"),
    [
        (
            401,
            {"detail": {"error": "Authentication Error, Invalid proxy server token passed."}},
            {},
            E.Refused,
            "Invalid proxy server token",
        ),
        (
            403,
            {"detail": {"error": "You must be a LiteLLM Enterprise user to use this feature."}},
            {},
            E.Refused,
            "enterprise licence",
        ),
        (400, {"detail": "You must be a LiteLLM Enterprise user"}, {}, E.Refused, "licence"),
        (
            404,
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "nope"},
            {},
            E.Gone,
            "nope",
        ),
        (
            409,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "scimType": "uniqueness",
                "detail": "in use",
            },
            {},
            E.Conflict,
            "in use",
        ),
        (400, {"scimType": "uniqueness", "detail": "taken"}, {}, E.Conflict, "taken"),
        (400, {"detail": [{"msg": "field required"}]}, {}, E.Rejected, "field required"),
        (429, {"detail": "slow down"}, {"Retry-After": "7"}, E.Throttled, "slow down"),
        (500, {"detail": {"error": "db down"}}, {}, E.Transient, "db down"),
        (502, "<html>bad gateway</html>", {}, E.Transient, "bad gateway"),
    ],
)
def test_answers_are_translated_once(status, body, headers, error, text) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    c = client(handler, retry=RetryPolicy(attempts=1))
    with pytest.raises(error) as got:
        c.get("Users", "x")
    assert text in got.value.message
    if error is E.Throttled:
        assert got.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), E.Unreachable),
        (httpx.ConnectTimeout("slow"), E.Transient),
        (httpx.ReadTimeout("slow"), E.Transient),
        (httpx.RemoteProtocolError("closed"), E.Transient),
        (httpx.ReadError("reset"), E.Transient),
        (httpx.UnsupportedProtocol("ftp"), E.Unreachable),
    ],
)
def test_no_httpx_error_escapes(exc, error) -> None:
    def handler(req):
        raise exc

    with pytest.raises(error):
        client(handler, retry=RetryPolicy(attempts=1)).get("Users", "x")


def test_throttling_waits_as_told_then_succeeds() -> None:
    calls = []

    def handler(req):
        calls.append(req)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "3"})
        if len(calls) == 2:
            return httpx.Response(429)  # no Retry-After: backoff anyway
        return httpx.Response(200, json={"id": "u1"})

    c = client(handler, retry=RetryPolicy(attempts=5, base=0.5))
    assert c.get("Users", "u1")["id"] == "u1"
    assert c.waits[0] == 3.0 and len(c.waits) == 2
    assert c.stats.by_status == {"429": 2, "200": 1}


def test_a_post_that_timed_out_is_not_blindly_repeated() -> None:
    calls = []

    def handler(req):
        calls.append(req)
        raise httpx.ReadTimeout("slow")

    with pytest.raises(E.Transient):
        client(handler).create("Users", {"userName": "a"})
    assert len(calls) == 1  # the caller looks the user up before creating again


def test_find_checks_every_result_client_side() -> None:
    """A target that ignores the filter answers everyone: only the real match is returned."""
    everyone = [{"id": f"u{i}", "userName": f"user{i}@x"} for i in range(250)]

    def handler(req):
        start, count = int(req.url.params["startIndex"]), min(int(req.url.params["count"]), 100)
        return httpx.Response(
            200, json={"totalResults": 250, "Resources": everyone[start - 1 : start - 1 + count]}
        )

    c = client(handler)
    assert [r["id"] for r in c.find("Users", "userName", "USER137@x")] == ["u137"]
    assert c.find("Users", "userName", "nobody@x") == []


def test_paging_ignores_a_wrong_total_and_a_capped_count() -> None:
    data = [{"id": f"g{i}"} for i in range(230)]

    def handler(req):
        start, count = int(req.url.params["startIndex"]), min(int(req.url.params["count"]), 50)
        return httpx.Response(
            200, json={"totalResults": 10, "Resources": data[start - 1 : start - 1 + count]}
        )

    got = [r["id"] for page in IndexPaging(count=500).pages(client(handler), "Groups") for r in page]
    assert got == [d["id"] for d in data]


def test_paging_stops_on_a_target_that_does_not_page() -> None:
    def handler(req):
        return httpx.Response(200, json={"Resources": [{"id": "a"}, {"id": "b"}]})

    with pytest.raises(E.BadResponse, match="does not page"):
        list(IndexPaging(count=2).pages(client(handler), "Users"))


def test_paging_dedupes_a_resource_shifted_by_a_concurrent_create() -> None:
    pages = {1: [{"id": "a"}, {"id": "b"}], 3: [{"id": "b"}, {"id": "c"}], 5: []}

    def handler(req):
        return httpx.Response(200, json={"Resources": pages[int(req.url.params["startIndex"])]})

    got = [r["id"] for p in IndexPaging(count=2).pages(client(handler), "Users") for r in p]
    assert got == ["a", "b", "c"]
