"""A fake OneLogin account (API v2 + v1 groups + OAuth 2.0 token endpoint) serving a `Tenant`.

What it reproduces, per OneLogin's API reference:

- `POST /auth/oauth2/v2/token`: client id and secret as HTTP basic auth, JSON body
  `{"grant_type": "client_credentials"}`; answers `{access_token, created_at, expires_in: 36000,
  refresh_token, token_type: "bearer", account_id}`; wrong credentials 401 and a bad grant 400,
  in the v1 envelope `{"status": {"error": true, "code", "type", "message"}}`.
- `GET /api/2/users` (`limit` ≤ 100 as the SDK's OpenAPI spec says, default 50; `cursor`;
  `username` / `email` search, exact or with `*` wildcards), `GET /api/2/users/{id}` (with
  `role_ids` and `group_id`), `GET /api/2/roles` (`limit` ≤ 650, "Max page limit is 650"),
  `GET /api/2/roles/{id}`, `GET /api/2/roles/{id}/users` (`limit` ≤ 100; brief objects
  `{id, name, username, added_by, added_at, assigned}` of the users assigned to the role).
- v2 paging in headers: `Total-Count`, `Total-Pages`, `Current-Page`, `Page-Items`,
  `Before-Cursor` / `After-Cursor` (opaque base64 of `limit=…&page=…`, no `After-Cursor` on the
  last page) and `Link`; the cursor is sent back as `cursor`.
- `GET /api/1/groups` (50 a page whatever `limit` says, `after_cursor`, v1 envelope with
  `pagination: {before_cursor, after_cursor, previous_link, next_link}`), `GET /api/1/groups/{id}`.
- Auth: `Authorization: Bearer <token>` (v1's `bearer:<token>` too); unknown token 401.
- Errors: v2 `{"statusCode", "name", "message"}`, v1 envelope under `/api/1`; every answer has
  `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until the window
  resets); 429 with `X-RateLimit-Remaining: 0`.

Faults (`FaultPlan`) are checked on every request, token endpoint included. OneLogin has no
delta reads, so `expired_cursor` never fires.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from connectors.base import Connector
from connectors.testing.faults import FaultRule
from connectors.testing.harness import FakeIdP, register_fake
from connectors.testing.onelogin_index import OneLoginIndex, num_id

JSON = b"application/json; charset=utf-8"
#: v1 envelope `type` and message; v2 `name` is the type + "Error" (`UnauthorizedError`) and
#: its message the type (`"Unauthorized"`), as in OneLogin's API reference samples
TYPES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
V1_TEXT = {401: "Authentication Failure", 404: "No Route Exists"}


def error_body(status: int, v1: bool = False, message: str | None = None) -> bytes:
    kind = TYPES.get(status, "Error")
    if v1:
        return orjson.dumps(
            {
                "status": {
                    "error": True,
                    "code": status,
                    "type": kind,
                    "message": message or V1_TEXT.get(status, kind),
                }
            }
        )
    return orjson.dumps(
        {"message": message or kind, "statusCode": status, "name": kind.replace(" ", "") + "Error"}
    )


class Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None):
        self.status, self.body, self.headers = status, body, headers or []


def encode_cursor(limit: int, page: int) -> str:
    return base64.b64encode(f"limit={limit}&page={page}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int] | None:
    try:
        q = dict(parse_qsl(base64.b64decode(cursor, validate=True).decode()))
        return int(q["limit"]), int(q["page"])
    except (ValueError, KeyError, UnicodeDecodeError):
        return None


@register_fake
class FakeOneLogin(FakeIdP):
    """Options: `client_id`, `client_secret`, `rate_limit` (X-RateLimit-Limit),
    `token_life` (seconds, `expires_in`). `codes` maps tenant user ids to a (state, status)
    pair served instead of the derived one (codes OneLogin may add later, tests)."""

    kind = "onelogin"
    supports_nesting: ClassVar[bool] = False
    supports_delta: ClassVar[bool] = False

    def __init__(self, tenant: Any, faults: Any = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.client_id: str = options.get("client_id", "fake-onelogin-client-id")
        self.client_secret: str = options.get("client_secret", "fake-onelogin-client-secret")
        self.rate_limit: int = options.get("rate_limit", 5000)
        self.token_life: int = options.get("token_life", 36000)
        self.codes: dict[str, tuple[int, int]] = dict(options.get("codes", {}))
        self.access_tokens: set[str] = set()
        self.tokens_issued = 0
        self._idx: OneLoginIndex | None = None

    # -- harness interface

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.asgi(scope, receive, send)

        return app

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.onelogin import OneLoginConnector

        options.setdefault("client_id", self.client_id)
        options.setdefault("client_secret", self.client_secret)
        return OneLoginConnector(directory, base_url=base_url, **options)

    def external_id(self, tenant_id: str) -> str:
        t = self.tenant
        if tenant_id in t.groups or tenant_id in t.deleted_groups:
            return f"role:{num_id('role', tenant_id)}"
        return str(num_id("user", tenant_id))

    def user_codes(self, tenant_user_id: str) -> tuple[int, int]:
        """The (state, status) the fake reports for a tenant user."""
        return self.index().users[num_id("user", tenant_user_id)]["state"], self.index().users[
            num_id("user", tenant_user_id)
        ]["status"]

    def user_group(self, tenant_user_id: str) -> str | None:
        """The team external id of the user's one OneLogin group, or None."""
        g = self.index().users[num_id("user", tenant_user_id)]["group_id"]
        return None if g is None else f"group:{g}"

    def index(self) -> OneLoginIndex:
        idx = self._idx
        if idx is None or idx.clock != self.tenant.clock:
            idx = self._idx = OneLoginIndex(self.tenant, self.codes)
        return idx

    # -- ASGI

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
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
        hdrs = [(b"content-type", JSON)]
        if not any(k == b"x-ratelimit-limit" for k, _ in ans.headers):
            hdrs += [
                (b"x-ratelimit-limit", str(self.rate_limit).encode()),
                (b"x-ratelimit-remaining", str(self.rate_limit - 1).encode()),
                (b"x-ratelimit-reset", b"3599"),
            ]
        hdrs += ans.headers
        hdrs.append((b"content-length", str(len(ans.body)).encode()))
        await send({"type": "http.response.start", "status": ans.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": ans.body})

    def _fault(self, rule: FaultRule, path: str) -> Answer | None:
        v1 = not path.startswith("/api/2/")
        if rule.kind == "throttle":
            return Answer(
                429,
                error_body(429, v1),
                [
                    (b"x-ratelimit-limit", str(self.rate_limit).encode()),
                    (b"x-ratelimit-remaining", b"0"),
                    (b"x-ratelimit-reset", str(math.ceil(rule.retry_after)).encode()),
                ],
            )
        if rule.kind == "error":
            return Answer(rule.status, error_body(rule.status, v1))
        if rule.kind == "revoked":
            return Answer(401, error_body(401, v1))
        return None  # bad_json: decided after routing

    # -- routing

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[bytes, bytes], body: bytes
    ) -> Answer:
        if path == "/auth/oauth2/v2/token":
            if method != "POST":
                return Answer(404, error_body(404, True, "No Route Exists"))
            return self._token(headers.get(b"authorization", b"").decode(), body)
        parts = path.strip("/").split("/")
        v1 = parts[:2] == ["api", "1"]
        if not self._authorized(headers.get(b"authorization", b"").decode()):
            return Answer(401, error_body(401, v1))
        if method != "GET":
            return Answer(404, error_body(404, v1, "No Route Exists"))
        idx = self.index()
        if parts[:2] == ["api", "2"] and len(parts) >= 3:
            res, rest = parts[2], parts[3:]
            if res == "users":
                if not rest:
                    ids = idx.user_ids
                    for attr in ("username", "email"):
                        if query.get(attr):
                            keep = set(ids)
                            ids = [n for n in idx.search_users(attr, query[attr]) if n in keep]
                    return self._page(idx.user_list, ids, path, query, cap=100)
                n = _num(rest[0])
                if n not in idx.users:
                    return Answer(404, error_body(404))
                if len(rest) == 1:
                    return Answer(200, orjson.dumps(idx.users[n]))
            elif res == "roles":
                if not rest:
                    return self._page(idx.roles, idx.role_ids, path, query, cap=650)
                n = _num(rest[0])
                if n not in idx.roles:
                    return Answer(404, error_body(404))
                if len(rest) == 1:
                    return Answer(200, idx.roles[n])
                if rest[1:] == ["users"]:
                    return self._page(idx.member_brief, idx.role_members[n], path, query, cap=100)
        elif v1 and parts[2:3] == ["groups"]:
            rest = parts[3:]
            if not rest:
                return self._groups(idx, path, query)
            n = _num(rest[0])
            if n not in idx.group_body or len(rest) > 1:
                return Answer(404, error_body(404, True))
            return Answer(200, _v1({"status": _ok(), "data": [idx.group_body[n]]}))
        return Answer(404, error_body(404, v1, "No Route Exists"))

    def _authorized(self, auth: str) -> bool:
        scheme, _, cred = auth.partition(" ")
        if auth.lower().startswith("bearer:"):
            return auth[7:].strip() in self.access_tokens
        return scheme.lower() == "bearer" and cred.strip() in self.access_tokens

    def _page(
        self, items: dict[int, bytes], ids: list[int], path: str, query: dict[str, str], *, cap: int
    ) -> Answer:
        try:
            limit = max(1, min(int(query.get("limit", 50)), cap))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            return Answer(400, error_body(400, message="limit and page must be integers"))
        if query.get("cursor"):
            got = decode_cursor(query["cursor"])
            if got is None:
                return Answer(400, error_body(400, message="Invalid cursor"))
            limit, page = got
        start = (page - 1) * limit
        chunk = ids[start : start + limit]
        total_pages = max(1, math.ceil(len(ids) / limit))
        hdrs = [
            (b"total-count", str(len(ids)).encode()),
            (b"total-pages", str(total_pages).encode()),
            (b"current-page", str(page).encode()),
            (b"page-items", str(limit).encode()),
        ]
        links = []
        base = {k: v for k, v in query.items() if k not in ("cursor", "page")}
        if page > 1:
            before = encode_cursor(limit, page - 1)
            hdrs.append((b"before-cursor", before.encode()))
            links.append(f'<{path}?{urlencode({**base, "cursor": before}, quote_via=quote)}>; rel="prev"')
        if page < total_pages:
            after = encode_cursor(limit, page + 1)
            hdrs.append((b"after-cursor", after.encode()))
            links.append(f'<{path}?{urlencode({**base, "cursor": after}, quote_via=quote)}>; rel="next"')
        if links:
            hdrs.append((b"link", ", ".join(links).encode()))
        return Answer(200, b"[" + b",".join([items[i] for i in chunk]) + b"]", hdrs)

    def _groups(self, idx: OneLoginIndex, path: str, query: dict[str, str]) -> Answer:
        per = 50  # v1 groups: fixed page size
        try:
            start = int(base64.b64decode(query["after_cursor"]).decode()) if query.get("after_cursor") else 0
        except (ValueError, UnicodeDecodeError):
            return Answer(400, error_body(400, True, "Invalid after_cursor"))
        chunk = idx.group_ids[start : start + per]
        nxt = (
            base64.b64encode(str(start + per).encode()).decode() if start + per < len(idx.group_ids) else None
        )
        before = base64.b64encode(str(max(0, start - per)).encode()).decode() if start else None
        return Answer(
            200,
            _v1(
                {
                    "status": _ok(),
                    "pagination": {
                        "before_cursor": before,
                        "after_cursor": nxt,
                        "previous_link": f"{path}?before_cursor={before}" if before else None,
                        "next_link": f"{path}?after_cursor={nxt}" if nxt else None,
                    },
                    "data": [idx.group_body[g] for g in chunk],
                }
            ),
        )

    def _token(self, auth: str, body: bytes) -> Answer:
        scheme, _, cred = auth.partition(" ")
        try:
            cid, _, secret = base64.b64decode(cred).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            cid = secret = ""
        if scheme.lower() != "basic" or (cid, secret) != (self.client_id, self.client_secret):
            return Answer(401, error_body(401, True))
        try:
            grant = orjson.loads(body).get("grant_type")
        except (orjson.JSONDecodeError, AttributeError):
            grant = None
        if grant != "client_credentials":
            return Answer(400, error_body(400, True, "grant_type is incorrect/absent"))
        token = secrets.token_hex(32)
        self.access_tokens.add(token)
        self.tokens_issued += 1
        return Answer(
            200,
            orjson.dumps(
                {
                    "access_token": token,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "expires_in": self.token_life,
                    "refresh_token": "",
                    "token_type": "bearer",
                    "account_id": 123456,
                }
            ),
        )


def _num(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _ok() -> dict[str, Any]:
    return {"error": False, "code": 200, "type": "success", "message": "Success"}


def _v1(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)
