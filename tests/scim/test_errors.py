"""Every error is a SCIM Error body with the right status and scimType; none half-applies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from connectors.testing.server import ServerThread
from syncd.service import tokens
from syncd.store import session_scope
from tests.scim.conftest import client_for, new_token
from tests.scim.helpers import CORE_GROUP, CORE_USER, Scim, assert_error, ok, patch, uniq


@pytest.mark.parametrize(
    "flt",
    [
        "userName eq",  # malformed
        'userName eq "a" and',  # dangling
        'nosuch eq "x"',  # unknown attribute
        'phoneNumbers eq "x"',  # not filterable
        'userName zz "x"',  # unknown operator
    ],
)
def test_bad_filter_is_400_invalid_filter(scim: Scim, flt: str) -> None:
    assert_error(scim.get("/Users", params={"filter": flt}), 400, "invalidFilter")


@pytest.mark.parametrize(
    "params", [{"count": "abc"}, {"startIndex": "1.5"}, {"startIndex": "x", "count": "2"}]
)
def test_non_integer_paging_is_400_invalid_value(scim: Scim, params: dict[str, str]) -> None:
    assert_error(scim.get("/Users", params=params), 400, "invalidValue")


def test_bad_values_are_400_invalid_value(scim: Scim) -> None:
    assert_error(scim.post("/Users", {"schemas": [CORE_USER], "active": True}), 400, "invalidValue")
    body = {"schemas": [CORE_USER], "userName": f"{uniq()}@x.io", "active": "maybe"}
    assert_error(scim.post("/Users", body), 400, "invalidValue")
    assert_error(scim.post("/Groups", {"schemas": [CORE_GROUP]}), 400, "invalidValue")


@pytest.mark.parametrize(
    ("op", "scim_type"),
    [
        ({"op": "replace", "path": "nosuch", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type eq "work"', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "other"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "active", "value": "perhaps"}, "invalidValue"),
    ],
)
def test_bad_patch_operations(scim: Scim, op: dict[str, Any], scim_type: str) -> None:
    uid = scim.user()["id"]
    assert_error(scim.patch(f"/Users/{uid}", patch(op)), 400, scim_type)


def test_patch_body_without_operations_is_invalid_syntax(scim: Scim) -> None:
    uid = scim.user()["id"]
    assert_error(scim.patch(f"/Users/{uid}", {"schemas": ["x"]}), 400, "invalidSyntax")
    assert_error(scim.patch(f"/Users/{uid}", {"Operations": []}), 400, "invalidSyntax")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bad_json_is_400_invalid_syntax(scim: Scim, raw: bytes) -> None:
    resp = scim.http.post("/Users", content=raw, headers={"Content-Type": "application/scim+json"})
    assert_error(resp, 400, "invalidSyntax")


def test_a_non_json_content_type_is_415(scim: Scim) -> None:
    resp = scim.http.post("/Users", content=b"userName=x", headers={"Content-Type": "text/plain"})
    assert_error(resp, 415)


def test_both_json_media_types_are_accepted(scim: Scim) -> None:
    for ctype in ("application/json", "application/scim+json; charset=utf-8"):
        body = f'{{"userName": "{uniq()}@x.io"}}'.encode()
        assert scim.http.post("/Users", content=body, headers={"Content-Type": ctype}).status_code == 201


def test_unknown_route_and_method(scim: Scim) -> None:
    assert_error(scim.get("/Nope"), 404)
    assert_error(scim.http.get("/../../etc"), 404)
    resp = scim.delete("/Users")
    assert_error(resp, 405)
    assert "GET" in resp.headers["allow"]


def test_unknown_ids_are_404(scim: Scim) -> None:
    for url in ("/Users/nope", "/Groups/nope"):
        assert_error(scim.get(url), 404)
        assert_error(scim.delete(url), 404)
        assert_error(scim.patch(url, patch({"op": "replace", "path": "externalId", "value": "x"})), 404)


class TestUnauthorized:
    def _check(self, resp: httpx.Response) -> None:
        assert_error(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    def test_missing_wrong_scheme_and_unknown_tokens(self, server: ServerThread) -> None:
        for headers in ({}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer syncd_nope"}):
            with httpx.Client(base_url=f"{server.url}/scim/v2", headers=headers) as c:
                self._check(c.get("/Users"))
                self._check(c.post("/Users", content=b"{bad json"))  # auth before the body

    def test_revoked_token(self, server: ServerThread, store: Engine, directory: str) -> None:
        secret = new_token(store, directory)
        with client_for(server, secret) as c:
            assert c.get("/Users").status_code == 200
            with session_scope(store) as s:
                row = tokens.authenticate(s, secret)
                assert row is not None
                tokens.revoke_token(s, token=row.id)
            self._check(c.get("/Users"))

    def test_expired_token(self, server: ServerThread, store: Engine, directory: str) -> None:
        secret = new_token(store, directory, expires_in=timedelta(microseconds=1))
        with client_for(server, secret) as c:
            self._check(c.get("/Users"))

    def test_discovery_needs_no_token(self, server: ServerThread) -> None:
        with httpx.Client(base_url=f"{server.url}/scim/v2") as c:
            assert ok(c.get("/ServiceProviderConfig"))["patch"]["supported"] is True


def test_stale_if_match_is_412_and_changes_nothing(scim: Scim) -> None:
    user = scim.user(title="A")
    uid, v1 = user["id"], user["meta"]["version"]
    ok(scim.patch(f"/Users/{uid}", patch({"op": "replace", "path": "title", "value": "B"})))
    stale = {"If-Match": v1}
    assert_error(
        scim.patch(f"/Users/{uid}", patch({"op": "replace", "path": "title", "value": "C"}), headers=stale),
        412,
    )
    assert_error(scim.put(f"/Users/{uid}", {**user, "title": "C"}, headers=stale), 412)
    assert_error(scim.delete(f"/Users/{uid}", headers=stale), 412)
    assert ok(scim.get(f"/Users/{uid}"))["title"] == "B"


def test_unknown_members_are_named_and_nothing_is_applied(scim: Scim) -> None:
    u1, u2 = scim.user()["id"], scim.user()["id"]
    group = scim.group(members=[{"value": u1}])
    gid, version = group["id"], group["meta"]["version"]
    ops = patch(
        {"op": "replace", "path": "displayName", "value": "should not stick"},
        {
            "op": "add",
            "path": "members",
            "value": [{"value": u2}, {"value": "ghost-1"}, {"value": "ghost-2"}],
        },
    )
    body = assert_error(scim.patch(f"/Groups/{gid}", ops), 400, "invalidValue")
    assert "ghost-1" in body["detail"] and "ghost-2" in body["detail"]
    assert u2 not in body["detail"]
    after = ok(scim.get(f"/Groups/{gid}"))
    assert after["displayName"] == group["displayName"]
    assert [m["value"] for m in after["members"]] == [u1]
    assert after["meta"]["version"] == version


def test_unknown_member_on_create_creates_nothing(scim: Scim) -> None:
    name = uniq("g")
    body = {"schemas": [CORE_GROUP], "displayName": name, "members": [{"value": "ghost"}]}
    assert "ghost" in assert_error(scim.post("/Groups", body), 400, "invalidValue")["detail"]
    assert scim.filter("/Groups", f'displayName eq "{name}"')["totalResults"] == 0


def test_a_group_as_member_is_refused(scim: Scim) -> None:
    gid, inner = scim.group()["id"], scim.group()["id"]
    ops = patch({"op": "add", "path": "members", "value": [{"value": inner, "type": "Group"}]})
    assert "nested" in assert_error(scim.patch(f"/Groups/{gid}", ops), 400, "invalidValue")["detail"]


def test_a_token_never_sees_another_directory(scim: Scim, other: Scim) -> None:
    theirs = other.user()
    their_group = other.group(members=[{"value": theirs["id"]}])
    uid, gid = theirs["id"], their_group["id"]
    assert_error(scim.get(f"/Users/{uid}"), 404)
    assert_error(scim.put(f"/Users/{uid}", theirs), 404)
    assert_error(scim.patch(f"/Users/{uid}", patch({"op": "replace", "path": "title", "value": "x"})), 404)
    assert_error(scim.delete(f"/Users/{uid}"), 404)
    assert_error(scim.get(f"/Groups/{gid}"), 404)
    assert_error(scim.delete(f"/Groups/{gid}"), 404)
    assert scim.filter("/Users", f'userName eq "{theirs["userName"]}"')["totalResults"] == 0
    assert ok(scim.get("/Groups"))["totalResults"] == 0
    # their user cannot be made a member of our group either
    mine = scim.group()["id"]
    ops = patch({"op": "add", "path": "members", "value": [{"value": uid}]})
    assert uid in assert_error(scim.patch(f"/Groups/{mine}", ops), 400, "invalidValue")["detail"]
    # and the same userName is free in our directory
    assert scim.post("/Users", {"userName": theirs["userName"]}).status_code == 201
    assert ok(other.get(f"/Users/{uid}"))["id"] == uid


def test_huge_paging_numbers_are_400(scim: Scim) -> None:
    assert_error(scim.get("/Users", params={"startIndex": str(10**30)}), 400, "invalidValue")
    assert_error(scim.post("/Users/.search", {"count": 10**30}), 400, "invalidValue")


@pytest.mark.parametrize("user_name", ["x" * 600 + "@example.com", "nul\x00byte@example.com"])
def test_values_the_store_refuses_are_400_not_500(scim: Scim, user_name: str) -> None:
    resp = scim.post("/Users", {"userName": user_name})
    if resp.status_code != 201:  # PostgreSQL refuses; SQLite stores both
        assert_error(resp, 400, "invalidValue")


def test_every_pooled_connection_busy_is_503_with_retry_after() -> None:
    """A request that waited out the pool's timeout (the store's connections all in use) is
    told to retry, as for a store that is unreachable, not answered 500."""
    from fastapi import FastAPI
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from starlette.testclient import TestClient

    from syncd.scim import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/busy")
    def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 20 overflow 0 reached")

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/busy")
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert resp.json()["status"] == "503" and "retry" in resp.json()["detail"]
