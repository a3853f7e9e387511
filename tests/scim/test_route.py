"""`ScimRoute`: the SCIM routes resolve their inputs by hand, the way FastAPI's solver did —
every resource route is covered, the token is checked before the body, repeated query
parameters and headers are read as FastAPI reads a `str | None` parameter."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import create_engine

from connectors.testing.server import ServerThread
from syncd.scim import create_app
from syncd.scim.route import ScimRoute, resolvers
from syncd.service.schema import CORE_USER
from tests.scim.helpers import Scim


def _scim_routes(routes: list[Any]) -> list[ScimRoute]:
    out: list[ScimRoute] = []
    for r in routes:
        if isinstance(r, ScimRoute):
            out.append(r)
        out += _scim_routes(list(getattr(r, "routes", None) or []))
        if hasattr(r, "original_router"):
            out += _scim_routes(list(r.original_router.routes))
    return out


def test_every_scim_route_is_resolved_by_hand() -> None:
    app = create_app(create_engine("sqlite://"), public_url="http://x")
    routes = _scim_routes(list(app.router.routes))
    paths = {r.path for r in routes}
    assert {"/Users", "/Users/{user_id}", "/Groups", "/Groups/{group_id}", "/.search"} <= paths
    assert {"/ServiceProviderConfig", "/Schemas/{schema_id}"} <= paths
    unresolved = [r.path for r in routes if resolvers(r.endpoint, set(r.param_convertors)) is None]
    assert unresolved == []


def test_a_request_without_a_token_is_refused_before_its_body_is_read(server: ServerThread) -> None:
    resp = httpx.post(
        f"{server.url}/scim/v2/Users", content=b"{not json", headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.json()["status"] == "401"


def test_a_repeated_query_parameter_counts_by_its_last_value(scim: Scim) -> None:
    for name in ("a@example.com", "b@example.com"):
        assert scim.http.post("/Users", json={"schemas": [CORE_USER], "userName": name}).status_code == 201
    page = scim.http.get("/Users?count=0&count=1").json()
    assert (page["totalResults"], page["itemsPerPage"]) == (2, 1)
    bad = scim.http.get("/Users?count=1&count=x")
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidValue"


def test_if_none_match_of_a_read_is_honoured(scim: Scim) -> None:
    created = scim.http.post("/Users", json={"schemas": [CORE_USER], "userName": "etag@example.com"})
    assert created.status_code == 201
    resp = scim.http.get(f"/Users/{created.json()['id']}", headers={"If-None-Match": created.headers["ETag"]})
    assert resp.status_code == 304
