"""A fake Okta org (Management API + OAuth token endpoint) serving a `Tenant` as raw ASGI.

What it reproduces, per Okta's API reference:

- `GET /api/v1/users` (`filter`, `search`, `q`, `limit` ≤ 200, `after`; without a filter or
  search DEPROVISIONED users are left out), `GET /api/v1/users/{id or login}`,
  `GET /api/v1/users/{id}/groups`, `GET /api/v1/groups` (`filter`/`search` on type,
  lastUpdated, lastMembershipUpdated, profile.*; `limit` ≤ 10000), `GET /api/v1/groups/{id}`,
  `GET /api/v1/groups/{id}/users` (`limit` ≤ 10000, default 1000; users of any status, direct
  members only: Okta has no nested groups) and `GET /api/v1/logs` (deletion events; `since`,
  `until`, `filter`, `limit` ≤ 1000; without `until` a next link is always sent: polling).
- Cursor paging with TWO `Link` headers, `rel="self"` then `rel="next"`, carrying this server's
  own scheme/host/port and every original query parameter plus `after`.
- Auth: `Authorization: SSWS <token>` (and the SDK's `SSWS<token>`), or `Bearer <access token>`
  issued by `POST /oauth2/v1/token` for a private-key JWT client assertion (claims checked; the
  signature too when the fake is given `public_key`).
- Errors as Okta sends them: JSON `{"errorCode","errorSummary","errorLink","errorId",
  "errorCauses"}` with `Content-Type: application/json`; 429 E0000047 with `X-Rate-Limit-Limit`,
  `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset` (epoch seconds) and `Date`.

Faults (`FaultPlan`) are checked on every request, token endpoint included. `expired_cursor`:
Okta has no delta tokens; the closest answer is a 400 E0000001 refusing the time-window query
(`since`/`lastUpdated` filter), which the connector treats as an unusable cursor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from connectors.base import Connector
from connectors.testing.faults import FaultRule
from connectors.testing.harness import FakeIdP, register_fake
from connectors.testing.okta_index import (
    EVERYONE,
    OktaIndex,
    QueryError,
    Timeline,
    group_type,
    okta_id,
    page_after,
    user_status,
)

JSON = b"application/json"
_ERRORS = {
    400: ("E0000001", "Api validation failed"),
    401: ("E0000011", "Invalid token provided"),
    403: ("E0000006", "You do not have permission to perform the requested action"),
    404: ("E0000007", "Not found: Resource not found"),
    429: ("E0000047", "API call exceeded rate limit due to too many requests."),
    500: ("E0000009", "Internal Server Error"),
    503: ("E0000010", "Service is temporarily unavailable"),
}


def error_body(status: int, summary: str | None = None, code: str | None = None) -> bytes:
    c, s = _ERRORS.get(status, ("E0000009", "Internal Server Error"))
    return orjson.dumps({"errorCode": code or c, "errorSummary": summary or s,
                         "errorLink": code or c, "errorId": "oae" + secrets.token_urlsafe(15),
                         "errorCauses": []})


class Answer:
    """One HTTP answer: status, extra headers, body bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None):
        self.status, self.body, self.headers = status, body, headers or []


def _b64json(part: str) -> dict[str, Any]:
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _windowed(query: dict[str, str]) -> bool:
    """Is this a delta read: a System Log window or a `lastUpdated`-style filter?"""
    expr = query.get("filter", "") + " " + query.get("search", "")
    return "since" in query or " gt " in expr or " ge " in expr


@register_fake
class FakeOkta(FakeIdP):
    """Options: `token` (API token), `client_id` and optional `public_key` (PEM) for the
    private-key JWT flow, `rate_limit` (the X-Rate-Limit-Limit value)."""

    kind = "okta"
    supports_nesting: ClassVar[bool] = False
    supports_delta: ClassVar[bool] = True

    def __init__(self, tenant: Any, faults: Any = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.token: str = options.get("token", "fake-okta-api-token")
        self.client_id: str = options.get("client_id", "0oafakeclient0000001")
        self.public_key: str | bytes | None = options.get("public_key")
        self.rate_limit: int = options.get("rate_limit", 600)
        self.access_tokens: set[str] = set()
        self.timeline = Timeline()
        self._idx: OktaIndex | None = None

    # -- harness interface

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.asgi(scope, receive, send)

        return app

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.okta import OktaConnector

        if "client_id" not in options and "private_key" not in options:
            options.setdefault("token", self.token)
        return OktaConnector(directory, base_url=base_url, **options)

    def external_id(self, tenant_id: str) -> str:
        t = self.tenant
        is_group = tenant_id in t.groups or tenant_id in t.deleted_groups or tenant_id == EVERYONE
        return okta_id("00g" if is_group else "00u", tenant_id)

    def user_status(self, tenant_user_id: str) -> str:
        """The Okta status the fake reports for a tenant user."""
        return user_status(self.tenant.users[tenant_user_id])

    def group_type(self, tenant_group_id: str) -> str:
        return group_type(self.tenant.groups[tenant_group_id])

    def index(self, base: str) -> OktaIndex:
        """The current index; rebuilt when the tenant's clock moved (or the base URL changed)."""
        idx = self._idx
        if idx is None or idx.clock != self.tenant.clock or idx.base != base:
            self.timeline.observe(self.tenant.clock)
            idx = self._idx = OktaIndex(self.tenant, self.timeline, base)
        return idx

    # -- ASGI

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"127.0.0.1").decode()
        base = f"{scope.get('scheme', 'http')}://{host}"
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        body = b""
        if method == "POST":
            more = True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
        rule = self.faults.check(method, path)
        if rule is not None and rule.kind == "expired_cursor" and not _windowed(query):
            rule = None  # only a time-window read (a delta) can have an expired window
        if rule is not None and rule.kind == "timeout":
            await asyncio.sleep(rule.delay)
            rule = None
        ans = self._fault(rule, path) if rule is not None else None
        if ans is None:
            try:
                ans = self._route(method, path, query, headers, body, base)
            except QueryError:
                ans = Answer(400, error_body(400, "Invalid search criteria.", "E0000031"))
            if rule is not None and rule.kind == "bad_json" and ans.status == 200:
                ans = Answer(200, ans.body[: max(1, len(ans.body) // 2)], ans.headers)
        await self._send(send, ans)

    async def _send(self, send: Any, ans: Answer) -> None:
        now = time.time()
        # `Date` comes from the server (uvicorn adds it; a second one would be a duplicate)
        hdrs = [(b"content-type", JSON), (b"x-okta-request-id", secrets.token_hex(10).encode())]
        if not any(k == b"x-rate-limit-limit" for k, _ in ans.headers):
            hdrs += [(b"x-rate-limit-limit", str(self.rate_limit).encode()),
                     (b"x-rate-limit-remaining", str(self.rate_limit - 1).encode()),
                     (b"x-rate-limit-reset", str(int(now) + 60).encode())]
        hdrs += ans.headers
        hdrs.append((b"content-length", str(len(ans.body)).encode()))
        await send({"type": "http.response.start", "status": ans.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": ans.body})

    def _fault(self, rule: FaultRule, path: str) -> Answer | None:
        token_path = path.startswith("/oauth2/")
        if rule.kind == "throttle":
            reset = math.ceil(time.time() + rule.retry_after)
            return Answer(429, error_body(429), [
                (b"x-rate-limit-limit", str(self.rate_limit).encode()),
                (b"x-rate-limit-remaining", b"0"),
                (b"x-rate-limit-reset", str(reset).encode())])
        if rule.kind == "error":
            return Answer(rule.status, error_body(rule.status))
        if rule.kind == "revoked":
            if token_path:
                return Answer(401, orjson.dumps({
                    "error": "invalid_client",
                    "error_description": "The client_assertion token is invalid."}))
            return Answer(401, error_body(401))
        if rule.kind == "expired_cursor":
            return Answer(400, error_body(
                400, "Api validation failed: the time window of this query is no longer kept"))
        return None  # bad_json: decided after routing

    # -- routing

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[bytes, bytes],
               body: bytes, base: str) -> Answer:
        if path == "/oauth2/v1/token":
            if method != "POST":
                return Answer(405, error_body(405, "The endpoint does not support the provided "
                                                   "HTTP method", "E0000022"))
            return self._token(body, base)
        if not self._authorized(headers.get(b"authorization", b"").decode()):
            return Answer(401, error_body(401))
        if method != "GET":
            return Answer(405, error_body(405, "The endpoint does not support the provided HTTP "
                                               "method", "E0000022"))
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v1"] or len(parts) < 3:
            return Answer(404, error_body(404))
        idx = self.index(base)
        res, rest = parts[2], parts[3:]
        if res == "users":
            if not rest:
                return self._list_users(idx, path, query)
            uid = idx.login.get(rest[0].lower(), rest[0])
            if uid not in idx.users:
                return Answer(404, error_body(404, f"Not found: Resource not found: {rest[0]} "
                                                   "(User)"))
            if len(rest) == 1:
                return Answer(200, idx.users[uid].body)
            if rest[1:] == ["groups"]:
                return self._page(idx.groups, idx.groups_of(uid), path, query, base, 10000, 10000)
        elif res == "groups":
            if not rest:
                return self._list_groups(idx, path, query)
            gid = rest[0]
            if gid not in idx.groups:
                return Answer(404, error_body(404, f"Not found: Resource not found: {gid} "
                                                   "(UserGroup)"))
            if len(rest) == 1:
                return Answer(200, idx.groups[gid].body)
            if rest[1:] == ["users"]:
                return self._page(idx.users, idx.members(gid), path, query, base, 1000, 10000)
        elif res == "logs" and not rest:
            return self._logs(idx, path, query, base)
        return Answer(404, error_body(404))

    def _authorized(self, auth: str) -> bool:
        scheme, _, cred = auth.partition(" ")
        if auth.startswith("SSWS"):
            return (cred or auth[4:]).strip() == self.token
        return scheme == "Bearer" and cred in self.access_tokens

    def _list_users(self, idx: OktaIndex, path: str, query: dict[str, str]) -> Answer:
        expr = query.get("filter") or query.get("search")
        if expr:
            ids = idx.matching("users", idx.users, idx.user_ids, expr)
        elif query.get("q"):
            ids = idx.matching("users", idx.users, idx.user_ids, " or ".join(
                f'{a} sw "{query["q"]}"' for a in ("profile.firstName", "profile.lastName",
                                                   "profile.email")))
        else:
            ids = idx.matching("users", idx.users, idx.user_ids, 'status ne "DEPROVISIONED"')
        return self._page(idx.users, ids, path, query, idx.base, 200, 200)

    def _list_groups(self, idx: OktaIndex, path: str, query: dict[str, str]) -> Answer:
        expr = query.get("filter") or query.get("search")
        if not expr and query.get("q"):
            expr = f'profile.name sw "{query["q"]}"'
        ids = idx.matching("groups", idx.groups, idx.group_ids, expr) if expr else idx.group_ids
        return self._page(idx.groups, ids, path, query, idx.base, 10000, 10000)

    def _logs(self, idx: OktaIndex, path: str, query: dict[str, str], base: str) -> Answer:
        since, until = query.get("since", ""), query.get("until")
        events = [e for e in idx.events if e.fields["published"] >= since
                  and (until is None or e.fields["published"] < until)]
        if query.get("filter"):
            pred_ids = set(idx.matching("logs", {e.id: e for e in idx.events},
                                        [e.id for e in idx.events], query["filter"]))
            events = [e for e in events if e.id in pred_ids]
        items = {e.id: e for e in events}
        ans = self._page(items, [e.id for e in events], path, query, base, 100, 1000)
        if until is None and not any(b'rel="next"' in v for _, v in ans.headers):
            # polling mode: Okta always offers a next link when `until` is absent
            after = events[-1].id if events else query.get("after", "")
            ans.headers.append((b"link", self._link(base, path, query, after, "next")))
        return ans

    def _page(self, items: dict[str, Any], ids: list[str], path: str, query: dict[str, str],
              base: str, default: int, cap: int) -> Answer:
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            return Answer(400, error_body(400, "Api validation failed: limit"))
        limit = max(1, min(limit, cap))
        chunk, nxt = page_after(ids, query.get("after"), limit)
        body = b"[" + b",".join([items[i].body for i in chunk]) + b"]"
        links = [(b"link", self._link(base, path, query, None, "self"))]
        if nxt is not None:
            links.append((b"link", self._link(base, path, query, nxt, "next")))
        return Answer(200, body, links)

    @staticmethod
    def _link(base: str, path: str, query: dict[str, str], after: str | None, rel: str) -> bytes:
        q = {k: v for k, v in query.items() if k != "after"}
        if after is not None:
            q["after"] = after
        qs = urlencode(q, quote_via=quote)
        return f'<{base}{path}{"?" + qs if qs else ""}>; rel="{rel}"'.encode()

    # -- OAuth 2.0 client credentials with a private-key JWT assertion

    def _token(self, body: bytes, base: str) -> Answer:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))

        def oauth_error(status: int, code: str, text: str) -> Answer:
            return Answer(status, orjson.dumps({"error": code, "error_description": text}))

        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")
        if form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        assertion = form.get("client_assertion", "")
        try:
            head, payload, _sig = assertion.split(".")
            header, claims = _b64json(head), _b64json(payload)
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            return oauth_error(401, "invalid_client", "The client_assertion is malformed.")
        if (claims.get("iss") != self.client_id or claims.get("sub") != self.client_id
                or claims.get("aud") != f"{base}/oauth2/v1/token"
                or float(claims.get("exp", 0)) < time.time()):
            return oauth_error(401, "invalid_client", "The client_assertion token is invalid.")
        if self.public_key is not None:
            import jwt

            try:
                jwt.decode(assertion, self.public_key, algorithms=[header.get("alg", "RS256")],
                           audience=f"{base}/oauth2/v1/token")
            except jwt.PyJWTError:
                return oauth_error(401, "invalid_client",
                                   "The client_assertion signature is invalid.")
        scope = form.get("scope", "")
        if not scope:
            return oauth_error(400, "invalid_scope", "The authorization server requires a scope.")
        access = secrets.token_urlsafe(32)
        self.access_tokens.add(access)
        return Answer(200, orjson.dumps({"token_type": "Bearer", "expires_in": 3600,
                                         "access_token": access, "scope": scope}))
