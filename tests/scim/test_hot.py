"""`HotPaths`: the exact collection paths reach their route without the router's walk, and
answer exactly as the router does (success, the error funnel, and everything it does not list)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from syncd.scim import create_app, hot, routes_groups, routes_users
from syncd.scim.deps import SCIM_PREFIX
from syncd.service.schema import CORE_USER
from tests.scim.conftest import new_token


@pytest.fixture
def engine(sqlite_file: Engine) -> Engine:
    return sqlite_file


def test_the_table_lists_the_collection_routes_only() -> None:
    found = hot.table(SCIM_PREFIX, routes_users.router, routes_groups.router)
    assert sorted(found) == [
        ("GET", "/scim/v2/Groups"),
        ("GET", "/scim/v2/Users"),
        ("POST", "/scim/v2/Groups"),
        ("POST", "/scim/v2/Users"),
    ]


def _answers(client: TestClient, secret: str) -> list[tuple[int, dict[str, str], bytes]]:
    auth = {"Authorization": f"Bearer {secret}"}
    user = {"schemas": [CORE_USER], "userName": "hot@example.com"}
    requests = [
        client.get("/scim/v2/Users", params={"filter": 'userName eq "hot@example.com"'}, headers=auth),
        client.post("/scim/v2/Users", json=user, headers=auth),
        client.post("/scim/v2/Users", json=user, headers=auth),  # 409 through the funnel
        client.post("/scim/v2/Users", content=b"{bad", headers=auth),  # 400
        client.get("/scim/v2/Users"),  # 401: no token
        client.put("/scim/v2/Users", json=user, headers=auth),  # 405 from the router
        client.get("/scim/v2/Users/", headers=auth, follow_redirects=False),  # the router's redirect
        client.get("/scim/v2/Groups?filter=displayName%20eq%20%22x%22", headers=auth),
    ]
    out = []
    for r in requests:
        headers = {k: v for k, v in r.headers.items() if k not in ("date", "location", "etag")}
        body = r.content
        if r.status_code == 201:  # a fresh id and timestamps each run
            body = b"created"
        out.append((r.status_code, headers, body))
    return out


def test_a_hot_path_answers_as_the_router_does(engine: Engine) -> None:
    secret = new_token(engine, "entra")
    fast = create_app(engine, public_url="http://x")
    assert isinstance(fast.router.middleware_stack, hot.HotPaths)
    with TestClient(fast) as client:
        via_hot = _answers(client, secret)
    with engine.begin() as conn:  # the same store state for the second run
        conn.exec_driver_sql("DELETE FROM changes")
        conn.exec_driver_sql("DELETE FROM audit_events")
        conn.exec_driver_sql("DELETE FROM user_emails")
        conn.exec_driver_sql("DELETE FROM users")
    slow = create_app(engine, public_url="http://x")
    slow.router.middleware_stack = slow.router.middleware_stack.fallback  # the router alone
    with TestClient(slow) as client:
        via_router = _answers(client, secret)
    assert [s for s, _, _ in via_hot] == [200, 201, 409, 400, 401, 405, 307, 200]
    assert via_hot == via_router
