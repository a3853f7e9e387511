"""Builders and assertions for the SCIM end-to-end tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_JSON = "application/scim+json"


def uniq(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def assert_error(resp: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """`resp` is a SCIM Error with this status (and scimType), never a traceback."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(SCIM_JSON)
    body = resp.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"] and 'File "' not in body["detail"]
    return body


def ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(SCIM_JSON)
    return resp.json()  # type: ignore[no-any-return]


@dataclass
class Scim:
    """An httpx client of one directory's token, with shortcuts for common requests."""

    http: httpx.Client
    directory: str

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.get(url, **kw)

    def post(self, url: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.post(url, json=body, **kw)

    def put(self, url: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.put(url, json=body, **kw)

    def patch(self, url: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.patch(url, json=body, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.delete(url, **kw)

    def user(self, user_name: str | None = None, **extra: Any) -> dict[str, Any]:
        """Create a user (201) and return its resource."""
        name = user_name or f"{uniq()}@example.com"
        body = {"schemas": [CORE_USER], "userName": name, "active": True, **extra}
        return ok(self.post("/Users", body), 201)

    def group(self, display_name: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"schemas": [CORE_GROUP], "displayName": display_name or uniq("g"), **extra}
        return ok(self.post("/Groups", body), 201)

    def member_ids(self, group_id: str) -> list[str]:
        body = ok(self.get(f"/Groups/{group_id}"))
        return sorted(m["value"] for m in body.get("members", []))

    def filter(self, endpoint: str, flt: str, **params: Any) -> dict[str, Any]:
        return ok(self.get(endpoint, params={"filter": flt, **params}))
