"""A fake Auth0 tenant (Management API v2 + the /oauth/token endpoint) serving a `Tenant`.

What it reproduces, per Auth0's Management API v2 reference:

- `POST /oauth/token` (client credentials; JSON or form body; `audience` must be the tenant's
  `https://{domain}/api/v2/`, else 403 access_denied "Service not enabled within domain").
- `GET /api/v2/users` (page/per_page ≤ 100/include_totals; `q` with `username:"…"` or
  `email:"…"`), refusing any page past the first 1,000 results (400, "You can only page through
  the first 1000 records…") whatever the tenant's size; `GET /api/v2/users/{id}`,
  `/users/{id}/roles`, `/users/{id}/organizations`, `GET /api/v2/users-by-email?email=`.
- `GET /api/v2/roles` (page/per_page, capped likewise), `/roles/{id}/users` and
  `GET /api/v2/organizations`, `/organizations/{id}/members`: checkpoint paging with
  `take` ≤ 100 and `from` (the previous answer's `next`; no `next` on the last page), or
  page/per_page with the 1,000 cap when no `take`/`from` is given.
- `POST /api/v2/jobs/users-exports` (format json, fields) and `GET /api/v2/jobs/{id}`: pending,
  then processing for `export_polls` polls, then completed with a `location` — a pre-signed
  URL on this server serving gzip NDJSON, which refuses requests that also carry an
  Authorization header (as S3 does: "Only one auth mechanism allowed").
- Errors as Auth0 sends them: `{"statusCode","error","message","errorCode"}`; 401
  "Invalid token"; 429 too_many_requests with `x-ratelimit-limit`, `x-ratelimit-remaining`,
  `x-ratelimit-reset` (epoch seconds) — the rate-limit headers come on every answer.

Faults (`FaultPlan`) are checked on every request, token endpoint and export file included.
`expired_cursor` never fires: Auth0 has no delta reads, so no cursor can expire.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

import orjson

from connectors.base import Connector
from connectors.testing.auth0_index import Auth0Index, org_id, role_id, user_id
from connectors.testing.auth0_wire import (
    JSON,
    USERS_CAP,
    Answer,
    Refused,
    checkpoint,
    error_body,
    invalid_token,
    keyed,
    offset,
)
from connectors.testing.faults import FaultRule
from connectors.testing.harness import FakeIdP, register_fake


@register_fake
class FakeAuth0(FakeIdP):
    """Options: `domain`, `client_id`, `client_secret`, `rate_limit` (x-ratelimit-limit),
    `export_polls` (polls answered "processing" before an export completes)."""

    kind = "auth0"
    supports_nesting: ClassVar[bool] = False
    supports_delta: ClassVar[bool] = False

    def __init__(self, tenant: Any, faults: Any = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.domain: str = options.get("domain", "contoso.us.auth0.com")
        self.client_id: str = options.get("client_id", "fakeAuth0ClientId00000000000001")
        self.client_secret: str = options.get("client_secret", "fake-auth0-client-secret")
        self.rate_limit: int = options.get("rate_limit", 50)
        self.export_polls: int = options.get("export_polls", 1)
        self.access_tokens: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.list_requests: list[dict[str, str]] = []  # GET /api/v2/users queries, for tests
        self._idx: Auth0Index | None = None

    # -- harness interface

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.asgi(scope, receive, send)

        return app

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.auth0 import Auth0Connector

        options.setdefault("domain", self.domain)
        options.setdefault("client_id", self.client_id)
        options.setdefault("client_secret", self.client_secret)
        options.setdefault("export_poll_interval", 0.05)
        return Auth0Connector(directory, base_url=base_url, **options)

    def external_id(self, tenant_id: str) -> str:
        t = self.tenant
        if tenant_id in t.groups or tenant_id in t.deleted_groups:
            return role_id(tenant_id)
        return user_id(tenant_id)

    def org_external_id(self, tenant_id: str) -> str:
        return org_id(tenant_id)

    def index(self) -> Auth0Index:
        idx = self._idx
        if idx is None or idx.clock != self.tenant.clock:
            idx = self._idx = Auth0Index.build(self.tenant)
        return idx

    # -- ASGI

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        base = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'127.0.0.1').decode()}"
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        body, more = b"", method in ("POST", "PUT", "PATCH")
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
            try:
                ans = self._route(method, path, query, headers, body, base)
            except Refused as exc:
                ans = exc.answer
            if rule is not None and rule.kind == "bad_json" and ans.status == 200:
                ans = Answer(200, ans.body[: max(1, len(ans.body) // 2)], ans.headers)
        await self._send(send, ans)

    async def _send(self, send: Any, ans: Answer) -> None:
        hdrs = [(b"content-type", JSON)]
        if not any(k == b"x-ratelimit-limit" for k, _ in ans.headers):
            hdrs += [
                (b"x-ratelimit-limit", str(self.rate_limit).encode()),
                (b"x-ratelimit-remaining", str(self.rate_limit - 1).encode()),
                (b"x-ratelimit-reset", str(int(time.time()) + 1).encode()),
            ]
        hdrs += ans.headers
        hdrs.append((b"content-length", str(len(ans.body)).encode()))
        await send({"type": "http.response.start", "status": ans.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": ans.body})

    def _fault(self, rule: FaultRule, path: str) -> Answer | None:
        if rule.kind == "throttle":
            reset = math.ceil(time.time() + rule.retry_after)
            return Answer(
                429,
                error_body(429, "Global limit has been reached", "too_many_requests"),
                [
                    (b"x-ratelimit-limit", str(self.rate_limit).encode()),
                    (b"x-ratelimit-remaining", b"0"),
                    (b"x-ratelimit-reset", str(reset).encode()),
                ],
            )
        if rule.kind == "error":
            return Answer(rule.status, error_body(rule.status))
        if rule.kind == "revoked":
            if path == "/oauth/token":
                return Answer(
                    401, orjson.dumps({"error": "access_denied", "error_description": "Unauthorized"})
                )
            return Answer(401, invalid_token())
        return None  # bad_json: decided after routing

    # -- routing

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[bytes, bytes],
        body: bytes,
        base: str,
    ) -> Answer:
        if path == "/oauth/token":
            if method != "POST":
                return Answer(404, error_body(404))
            return self._token(body, headers.get(b"content-type", b"").decode())
        if path.startswith("/export-files/"):
            return self._export_file(path, headers)
        if not path.startswith("/api/v2/"):
            return Answer(404, error_body(404))
        auth = headers.get(b"authorization", b"").decode()
        scheme, _, cred = auth.partition(" ")
        if not auth:
            return Answer(401, error_body(401, "Missing authentication"))
        if scheme != "Bearer" or cred not in self.access_tokens:
            return Answer(401, invalid_token())
        parts = [unquote(p) for p in path[len("/api/v2/") :].strip("/").split("/")]
        idx = self.index()
        if method == "POST":
            if parts == ["jobs", "users-exports"]:
                return self._create_export(body)
            return Answer(404, error_body(404))
        if method != "GET":
            return Answer(405, error_body(405))
        res, rest = parts[0], parts[1:]
        if res == "users":
            if not rest:
                return self._list_users(idx, query)
            uid = rest[0]
            if uid not in idx.users:
                return Answer(404, error_body(404, "The user does not exist.", "inexistent_user"))
            if len(rest) == 1:
                return Answer(200, idx.user_body[uid])
            if rest[1:] == ["roles"]:
                return offset(query, "roles", [idx.roles[r] for r in idx.user_roles.get(uid, [])])
            if rest[1:] == ["organizations"]:
                return offset(query, "organizations", [idx.orgs[o] for o in idx.user_orgs.get(uid, [])])
        elif res == "users-by-email" and not rest:
            if not query.get("email"):
                return Answer(
                    400,
                    error_body(
                        400,
                        "Query validation error: 'Missing required property: email'",
                        "invalid_query_string",
                    ),
                )
            ids = idx.by_email.get(query["email"], [])
            return Answer(200, b"[" + b",".join(idx.user_body[i] for i in ids) + b"]")
        elif res == "roles":
            if not rest:
                return offset(query, "roles", [idx.roles[r] for r in idx.role_ids])
            if rest[0] not in idx.roles:
                return Answer(404, error_body(404, "The role does not exist.", "inexistent_role"))
            if len(rest) == 1:
                return Answer(200, orjson.dumps(idx.roles[rest[0]]))
            if rest[1:] == ["users"]:
                return self._members(idx, query, "users", idx.role_members[rest[0]])
        elif res == "organizations":
            if not rest:
                if "take" in query or "from" in query:
                    chunk, nxt = checkpoint(query, idx.org_ids)
                    return keyed("organizations", [orjson.dumps(idx.orgs[o]) for o in chunk], nxt)
                return offset(query, "organizations", [idx.orgs[o] for o in idx.org_ids])
            if rest[0] not in idx.orgs:
                return Answer(
                    404,
                    error_body(404, "No organization found by that id or name", "inexistent_organization"),
                )
            if len(rest) == 1:
                return Answer(200, orjson.dumps(idx.orgs[rest[0]]))
            if rest[1:] == ["members"]:
                return self._members(idx, query, "members", idx.org_members[rest[0]])
        elif res == "jobs" and len(rest) == 1:
            return self._job(rest[0], base)
        return Answer(404, error_body(404))

    # -- paging

    def _members(self, idx: Auth0Index, query: dict[str, str], key: str, ids: list[str]) -> Answer:
        if "take" in query or "from" in query:
            chunk, nxt = checkpoint(query, ids)
            return keyed(key, [idx.member_body[i] for i in chunk], nxt)
        return offset(query, key, [], [idx.member_body[i] for i in ids])

    def _list_users(self, idx: Auth0Index, query: dict[str, str]) -> Answer:
        self.list_requests.append(dict(query))
        ids = idx.user_ids
        q = query.get("q")
        if q:
            field, _, value = q.partition(":")
            value = value.strip()
            if field not in ("username", "email") or not (value.startswith('"') and value.endswith('"')):
                return Answer(400, error_body(400, "Bad Request: Invalid query", "invalid_query_string"))
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            ids = [i for i in ids if idx.users[i].get(field) == value]
        return offset(query, "users", [], [idx.user_body[i] for i in ids], USERS_CAP)

    # -- users export

    def _create_export(self, body: bytes) -> Answer:
        try:
            req = orjson.loads(body)
            fmt = req.get("format", "csv")
            fields = [f["name"] for f in req.get("fields", [])]
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            return Answer(400, error_body(400, "Payload validation error: 'Invalid JSON'", "invalid_body"))
        if fmt not in ("json", "csv") or fmt != "json":
            return Answer(400, error_body(400, "This fake serves format json only", "invalid_body"))
        job_id = "job_" + secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")[:16]
        job = {
            "type": "users_export",
            "status": "pending",
            "format": fmt,
            "fields": [{"name": f} for f in fields or ["user_id", "email", "name"]],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "id": job_id,
        }
        self.jobs[job_id] = {"job": job, "polls": self.export_polls}
        return Answer(201, orjson.dumps(job))

    def _job(self, job_id: str, base: str) -> Answer:
        entry = self.jobs.get(job_id)
        if entry is None:
            return Answer(404, error_body(404, "The job does not exist.", "inexistent_job"))
        job = entry["job"]
        if entry["polls"] > 0:
            entry["polls"] -= 1
            job["status"] = "processing"
        elif job["status"] != "completed":
            name = f"{job_id}.json.gz"
            fields = [f["name"] for f in job["fields"]]
            self.files[name] = gzip.compress(self.index().export_lines(fields), compresslevel=1)
            job["status"] = "completed"
            job["location"] = f"{base}/export-files/{name}?X-Amz-Signature={secrets.token_hex(16)}"
        return Answer(200, orjson.dumps(job))

    def _export_file(self, path: str, headers: dict[bytes, bytes]) -> Answer:
        if b"authorization" in headers:
            return Answer(
                400,
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument'
                b"</Code><Message>Only one auth mechanism allowed</Message></Error>",
                [(b"x-ratelimit-limit", b"0")],
            )
        data = self.files.get(path.rsplit("/", 1)[-1])
        if data is None:
            return Answer(403, b"<Error><Code>AccessDenied</Code></Error>")
        return Answer(200, data)

    # -- OAuth 2.0 client credentials

    def _token(self, body: bytes, content_type: str) -> Answer:
        try:
            form = orjson.loads(body) if "json" in content_type else dict(parse_qsl(body.decode()))
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            form = {}
        if not isinstance(form, dict) or form.get("grant_type") != "client_credentials":
            return Answer(
                403,
                orjson.dumps(
                    {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}
                ),
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Answer(401, orjson.dumps({"error": "access_denied", "error_description": "Unauthorized"}))
        audience = f"https://{self.domain}/api/v2/"
        if form.get("audience") != audience:
            return Answer(
                403,
                orjson.dumps(
                    {
                        "error": "access_denied",
                        "error_description": f"Service not enabled within domain: {form.get('audience')}",
                    }
                ),
            )
        access = secrets.token_urlsafe(32)
        self.access_tokens.add(access)
        return Answer(
            200,
            orjson.dumps(
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 86400,
                    "scope": "read:users read:roles read:organizations read:organization_members",
                }
            ),
        )
