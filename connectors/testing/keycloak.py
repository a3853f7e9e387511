"""A fake Keycloak server (one realm's Admin REST API + its OIDC token endpoint) as raw ASGI.

What it reproduces, per Keycloak's Admin REST API reference (version 23 and later):

- `POST /realms/{realm}/protocol/openid-connect/token`: client credentials grant
  (`client_id`/`client_secret` in the form, or HTTP Basic); `{"access_token", "expires_in",
  "refresh_expires_in": 0, "token_type": "Bearer", …}` (no refresh token: Keycloak issues none
  for client credentials by default). Bad credentials: 401 `{"error": "unauthorized_client",
  "error_description": "Invalid client or Invalid client credentials"}`.
- `GET /admin/realms/{realm}/users` (`first`, `max` default 100, `briefRepresentation`,
  `username`/`email` with `exact`, `search`), `/users/count`, `/users/{id}`,
  `/users/{id}/groups` (direct groups only; `first`, `max` default 100).
- `GET /admin/realms/{realm}/groups`: top-level groups only, `subGroups` always empty,
  `subGroupCount` set (Keycloak 23+); all of them when `first`/`max` are absent.
  `/groups/count`, `/groups/{id}`, `/groups/{id}/children` (`first` default 0, **`max` default
  10**), `/groups/{id}/members` (direct members only; `max` default 100), `/group-by-path/…`.
- Errors as Keycloak sends them: `{"error": "..."}` JSON (401 `HTTP 401 Unauthorized`, 403
  `HTTP 403 Forbidden`, 404 `User not found` / `Could not find group by id`). Keycloak has no
  rate limiting of its own; a 429 comes from the proxy in front of it, with `Retry-After`.

Faults (`FaultPlan`) are checked on every request, token endpoint included. `expired_cursor`
does not apply (the connector keeps no cursor) and is ignored.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

import orjson

from connectors.base import Connector
from connectors.testing.faults import FaultRule
from connectors.testing.harness import FakeIdP, register_fake
from connectors.testing.keycloak_index import KeycloakIndex

JSON = b"application/json"


class Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None):
        self.status, self.body, self.headers = status, body, headers or []


def error(status: int, text: str) -> Answer:
    return Answer(status, orjson.dumps({"error": text}))


def oauth_error(status: int, code: str, text: str) -> Answer:
    return Answer(status, orjson.dumps({"error": code, "error_description": text}))


@register_fake
class FakeKeycloak(FakeIdP):
    """Options: `realm`, `client_id`, `client_secret`, `token_lifetime` (seconds),
    `forbidden` (an admin path fragment answered 403, e.g. a missing role), `token_realm`
    (the realm whose token endpoint knows the client, e.g. "master"), `context_path`
    (e.g. "/auth": the legacy prefix of every path), `parent_ids` (False: groups carry no
    `parentId`), `legacy` (a server before Keycloak 23: `subGroups` filled with the whole
    subtree, no `subGroupCount`, no `parentId`, no `/children`), `revoke_tokens_after` (drop
    every issued access token after this many admin requests, as a restart or a purge does)."""

    kind = "keycloak"
    supports_nesting: ClassVar[bool] = True
    supports_delta: ClassVar[bool] = False

    def __init__(self, tenant: Any, faults: Any = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.realm: str = options.get("realm", "acme")
        self.client_id: str = options.get("client_id", "syncd")
        self.client_secret: str = options.get("client_secret", "fake-keycloak-secret")
        self.token_lifetime: int = options.get("token_lifetime", 300)
        self.forbidden: str | None = options.get("forbidden")
        self.context_path: str = options.get("context_path", "").rstrip("/")
        self.token_realm: str = options.get("token_realm", self.realm)  # where the client lives
        self.parent_ids: bool = options.get("parent_ids", True)
        self.legacy: bool = options.get("legacy", False)  # a server older than Keycloak 23
        self.revoke_tokens_after: int | None = options.get("revoke_tokens_after")
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch s)
        self.token_requests = 0
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query) of admin GETs
        self._idx: KeycloakIndex | None = None

    # -- harness interface

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.asgi(scope, receive, send)

        return app

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.keycloak import KeycloakConnector

        options.setdefault("realm", self.realm)
        options.setdefault("client_id", self.client_id)
        options.setdefault("client_secret", self.client_secret)
        return KeycloakConnector(directory, server_url=base_url, **options)

    def index(self) -> KeycloakIndex:
        idx = self._idx
        if idx is None or idx.clock != self.tenant.clock:
            idx = self._idx = KeycloakIndex(self.tenant, parent_ids=self.parent_ids, legacy=self.legacy)
        return idx

    # -- ASGI

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if self.context_path:
            if not path.startswith(self.context_path + "/"):
                await self._send(send, error(404, "HTTP 404 Not Found"))
                return
            path = path[len(self.context_path) :]
        headers = dict(scope["headers"])
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        body = b""
        if method == "POST":
            more = True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
        rule = self.faults.check(method, path)
        if rule is not None and rule.kind == "expired_cursor":
            rule = None
        if rule is not None and rule.kind == "timeout":
            await asyncio.sleep(rule.delay)
            rule = None
        ans = self._fault(rule, path) if rule is not None else None
        if ans is None:
            ans = self._route(method, path, query, headers, body)
            if rule is not None and rule.kind == "bad_json" and ans.status == 200:
                ans = Answer(200, ans.body[: max(1, len(ans.body) // 2)], ans.headers)
        await self._send(send, ans)

    async def _send(self, send: Any, ans: Answer) -> None:
        hdrs = [
            (b"content-type", JSON),
            (b"cache-control", b"no-cache"),
            *ans.headers,
            (b"content-length", str(len(ans.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": ans.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": ans.body})

    def _fault(self, rule: FaultRule, path: str) -> Answer | None:
        if rule.kind == "throttle":
            wait = str(max(1, math.ceil(rule.retry_after))).encode()
            return Answer(429, orjson.dumps({"error": "Too Many Requests"}), [(b"retry-after", wait)])
        if rule.kind == "error":
            return error(rule.status, "unknown_error")
        if rule.kind == "revoked":
            if path.endswith("/protocol/openid-connect/token"):
                return oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
            return error(401, "HTTP 401 Unauthorized")
        return None  # bad_json: decided after routing

    # -- routing

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[bytes, bytes], body: bytes
    ) -> Answer:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["realms"] and parts[2:] == ["protocol", "openid-connect", "token"]:
            if method != "POST":
                return error(405, "HTTP 405 Method Not Allowed")
            if parts[1] not in (self.realm, self.token_realm, "master"):
                return error(404, "Realm does not exist")
            if parts[1] != self.token_realm:  # the realm exists, the client is not in it
                return oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
            return self._token(body, headers)
        if parts[:2] != ["admin", "realms"] or len(parts) < 4:
            return error(404, "HTTP 404 Not Found")
        if not self._authorized(headers.get(b"authorization", b"").decode()):
            return error(401, "HTTP 401 Unauthorized")
        if parts[2] != self.realm:
            return error(404, "Realm not found.")
        if method != "GET":
            return error(405, "HTTP 405 Method Not Allowed")
        if self.forbidden and self.forbidden in path:
            return error(403, "HTTP 403 Forbidden")
        self.requests.append((path, query))
        if self.revoke_tokens_after is not None and len(self.requests) == self.revoke_tokens_after:
            self.tokens.clear()
        idx, res, rest = self.index(), parts[3], parts[4:]
        try:
            if res == "users":
                return self._users(idx, rest, query)
            if res == "groups":
                return self._groups(idx, rest, query)
            if res == "group-by-path":
                gid = idx.by_path.get("/" + "/".join(rest))
                if gid is None:
                    return error(404, "Group path does not exist")
                return Answer(200, idx.group_json(gid, brief=False))
        except ValueError:
            return error(400, "invalid_request")
        return error(404, "HTTP 404 Not Found")

    def _authorized(self, auth: str) -> bool:
        scheme, _, token = auth.partition(" ")
        expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
        return expiry is not None and expiry > time.time()

    def _users(self, idx: KeycloakIndex, rest: list[str], query: dict[str, str]) -> Answer:
        brief = query.get("briefRepresentation", "false") == "true"
        bodies = idx.user_brief if brief else idx.user_full
        if not rest:
            ids = idx.user_ids
            exact = query.get("exact") == "true"
            for field in ("username", "email"):
                if field in query:
                    want = query[field].lower()
                    ids = [
                        i
                        for i in ids
                        if (
                            idx.tenant.users[i].user_name.lower() == want
                            if exact
                            else want in idx.tenant.users[i].user_name.lower()
                        )
                    ]
            if query.get("search"):
                s = query["search"].lower().strip("*")
                ids = [i for i in ids if s in bodies[i].decode().lower()]
            return self._page(bodies, ids, query, default_max=100)
        if rest == ["count"]:
            return Answer(200, str(len(idx.user_ids)).encode())
        uid = rest[0]
        if uid not in idx.tenant.users:
            return error(404, "User not found")
        if len(rest) == 1:
            return Answer(200, idx.user_full[uid])
        if rest[1:] == ["groups"]:
            gbrief = query.get("briefRepresentation", "true") == "true"
            gids = idx.groups_of.get(uid, [])
            return self._page(
                {g: idx.group_json(g, brief=gbrief) for g in gids}, gids, query, default_max=100
            )
        return error(404, "HTTP 404 Not Found")

    def _groups(self, idx: KeycloakIndex, rest: list[str], query: dict[str, str]) -> Answer:
        if not rest:
            brief = query.get("briefRepresentation", "true") == "true"
            bodies = {g: idx.group_json(g, brief=brief) for g in idx.top}
            if "first" not in query and "max" not in query:
                return Answer(200, b"[" + b",".join(bodies[g] for g in idx.top) + b"]")
            return self._page(bodies, idx.top, query, default_max=100)
        if rest == ["count"]:
            return Answer(200, orjson.dumps({"count": len(idx.tenant.groups)}))
        gid = rest[0]
        if gid not in idx.tenant.groups:
            return error(404, "Could not find group by id")
        if len(rest) == 1:
            return Answer(200, idx.group_json(gid, brief=False))
        if rest[1:] == ["children"] and not idx.legacy:
            brief = query.get("briefRepresentation", "false") == "true"
            kids = idx.children.get(gid, [])
            return self._page({g: idx.group_json(g, brief=brief) for g in kids}, kids, query, default_max=10)
        if rest[1:] == ["members"]:
            brief = query.get("briefRepresentation", "false") == "true"
            bodies = idx.user_brief if brief else idx.user_full
            return self._page(bodies, idx.members[gid], query, default_max=100)
        return error(404, "HTTP 404 Not Found")

    @staticmethod
    def _page(bodies: dict[str, bytes], ids: list[str], query: dict[str, str], *, default_max: int) -> Answer:
        first = int(query.get("first") or 0)
        limit = int(query.get("max") or default_max)
        if first < 0:
            raise ValueError("first")
        chunk = ids[first : first + limit] if limit >= 0 else ids[first:]
        return Answer(200, b"[" + b",".join(bodies[i] for i in chunk) + b"]")

    # -- OAuth 2.0 client credentials

    def _token(self, body: bytes, headers: dict[bytes, bytes]) -> Answer:
        self.token_requests += 1
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get(b"authorization", b"").decode()
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return oauth_error(401, "unauthorized_client", "Invalid client credentials")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        if cid != self.client_id or not secrets.compare_digest(secret or "", self.client_secret):
            return oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        access = secrets.token_urlsafe(32)
        self.tokens[access] = time.time() + self.token_lifetime
        return Answer(
            200,
            orjson.dumps(
                {
                    "access_token": access,
                    "expires_in": self.token_lifetime,
                    "refresh_expires_in": 0,
                    "token_type": "Bearer",
                    "not-before-policy": 0,
                    "scope": "profile email",
                }
            ),
        )
