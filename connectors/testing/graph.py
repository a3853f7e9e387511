"""A fake Microsoft Graph (v1.0) and Entra ID token endpoint over a `Tenant`, as raw ASGI.

Served, the way Graph does it (paths are accepted with and without the `/v1.0` prefix):

- `POST /{tenant}/oauth2/v2.0/token` — client credentials (secret or client assertion); AADSTS
  error bodies; issued bearer tokens are checked on every other request (401
  `InvalidAuthenticationToken` otherwise).
- `GET /users`, `/users/{id|upn}`, `/users/{id}/memberOf|transitiveMemberOf[/graph.group]`,
  `/groups`, `/groups/{id}`, `/groups/{id}/members|transitiveMembers[/graph.user]`,
  `/groups/{id}/transitiveMemberOf[/graph.group]`, `/servicePrincipals/{id}/appRoleAssignedTo`,
  `/users/delta()` and `/groups/delta()` (also `delta`, `microsoft.graph.delta`; with
  `$deltatoken=latest`, `@removed`, members@delta split over pages).
- Paging: `$top` (default 100, above 999 is a 400), absolute `@odata.nextLink` with an opaque
  `$skiptoken` on this server's own scheme/host/port; delta pages end in `@odata.deltaLink`.
- `$select`, `$filter` (`securityEnabled eq true`, `userPrincipalName|mail|id eq '…'`).
- `POST /$batch` (JSON batching, https://learn.microsoft.com/graph/json-batching): a body
  `{"requests": [{"id", "method", "url", …}]}` of 1..20 requests with unique string ids and
  URLs relative to the version root, else 400 `BadRequest`; each request is dispatched
  through the same fault plan and routing as a direct request (a throttle is an inner 429
  with `Retry-After` in the inner headers, an error an inner status with a Graph error body);
  answers come as `{"responses": [{"id", "status", "headers", "body"}]}` in reverse request
  order (clients must match by id). Option `batch=False` refuses `$batch` with status
  `batch_refusal` (default 400, as Graph answers an unknown segment).

Faults (`FaultPlan`): throttle → 429 `TooManyRequests` + integer `Retry-After` (≥ 1 s);
error → the status with a Graph error body; timeout → answer after `delay` s; bad_json → 200
with a truncated body (for a request inside a batch: the whole batch answer is truncated);
revoked → 401 (`invalid_client` on the token endpoint); expired_cursor → 410
`syncStateNotFound` on delta requests.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import orjson

from connectors.base import Connector
from connectors.testing.faults import FaultRule
from connectors.testing.graph_index import (
    GROUP,
    USER,
    GraphIndex,
    default_app_assigned,
    project,
)
from connectors.testing.harness import FakeIdP, register_fake

MAX_TOP = 999
DEFAULT_TOP = 100
DELTA_PAGE = 200
MAX_BATCH = 20
_JSON = [(b"content-type", b"application/json; odata.metadata=minimal; charset=utf-8")]


class _Reply(Exception):
    """Raised inside a handler to answer with a Graph error body."""

    def __init__(self, status: int, code: str, message: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


def _graph_error(status: int, code: str, message: str) -> bytes:
    rid = str(uuid.uuid4())
    return orjson.dumps({"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": rid,
        "client-request-id": rid}}})


def _b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).decode().rstrip("=")


def _unb64(tok: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))


@register_fake
class GraphFake(FakeIdP):
    """Fake Graph. Options: `tenant_id`, `client_id`, `client_secret`, `service_principal_id`,
    `app_assigned` (set of group ids assigned to that service principal), `batch` (serve
    `$batch`, default True), `batch_refusal` (the status of a refused `$batch`, default 400).
    `batches` lists the number of requests of each batch served."""

    kind = "graph"
    supports_nesting = True
    supports_delta = True

    def __init__(self, tenant: Any, faults: Any = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.tenant_id: str = options.get("tenant_id", "00000000-0000-0000-0000-00000000f4ce")
        self.client_id: str = options.get("client_id", "11111111-2222-3333-4444-555555555555")
        self.client_secret: str = options.get("client_secret", "fake-secret-value")
        self.sp_id: str = options.get("service_principal_id", "5e7c1a2b-0000-4000-8000-00000000a990")
        self.app_assigned: set[str] | None = options.get("app_assigned")
        self.batch: bool = options.get("batch", True)
        self.batch_refusal: int = options.get("batch_refusal", 400)
        self.batches: list[int] = []
        self.tokens: set[str] = set()
        self.token_requests = 0
        self._index: GraphIndex | None = None

    # -- harness hooks ------------------------------------------------------------------------

    def app(self) -> Any:
        async def graph_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self._asgi(scope, receive, send)

        return graph_app

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.graph import GraphConnector
        from connectors.graph.auth import ClientCredentialsCredential

        root = base_url.rstrip("/")
        cred = options.pop("credential", None) or ClientCredentialsCredential(
            root, self.tenant_id, self.client_id, options.pop("client_secret", self.client_secret),
            timeout=options.get("request_timeout", 30.0))
        if options.get("group_source") == "app_assigned":
            options.setdefault("service_principal_id", self.sp_id)
        return GraphConnector(directory, tenant_id=self.tenant_id, client_id=self.client_id,
                              credential=cred, base_url=f"{root}/v1.0", **options)

    def index(self) -> GraphIndex:
        """The tenant view for the current clock (rebuilt after any tenant mutation)."""
        idx = self._index
        if idx is None or idx.clock != self.tenant.clock or idx.tenant is not self.tenant:
            idx = self._index = GraphIndex(self.tenant)
        return idx

    # -- ASGI ---------------------------------------------------------------------------------

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        body = b""
        if method == "POST":
            more = True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
        try:
            status, headers, payload = await self._handle(scope, method, path, body)
        except _Reply as r:
            status, headers, payload = r.status, r.headers, _graph_error(r.status, r.code, r.message)
        rid = str(uuid.uuid4()).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, *headers, (b"request-id", rid),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _handle(self, scope: dict[str, Any], method: str, path: str,
                      body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        rule = self.faults.check(method, path)
        is_token = path.endswith("/oauth2/v2.0/token")
        if rule is not None:
            early = await self._fault(rule, path, is_token)
            if early is not None:
                return early
        if is_token:
            return self._token(path, body)
        self._authorize(scope)
        if path.startswith("/v1.0"):
            path = path[5:]
        query = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
        base = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/v1.0"
        if path.rstrip("/") == "/$batch" and method == "POST":
            return await self._batch(scope, body, base)
        out = self._route(method, path.rstrip("/"), query, base)
        return 200, [], orjson.dumps(out)

    # -- JSON batching ------------------------------------------------------------------------

    async def _batch(self, scope: dict[str, Any], body: bytes,
                     base: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if not self.batch:
            status = self.batch_refusal
            raise _Reply(status, "BadRequest" if status == 400 else "Request_ResourceNotFound"
                         if status == 404 else "UnknownError",
                         "Resource not found for the segment '$batch'.")
        ctype = dict(scope["headers"]).get(b"content-type", b"").decode().lower()
        if not ctype.startswith("application/json"):
            raise _Reply(400, "BadRequest", "Batch request must have Content-Type application/json.")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _Reply(400, "BadRequest", "Invalid batch payload format.") from None
        reqs = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(reqs, list) or not reqs:
            raise _Reply(400, "BadRequest", "Invalid batch payload format.")
        if len(reqs) > MAX_BATCH:
            raise _Reply(400, "BadRequest",
                         f"Number of batch request steps exceeds the maximum of {MAX_BATCH}.")
        ids: set[str] = set()
        for r in reqs:
            rid = r.get("id") if isinstance(r, dict) else None
            if not isinstance(rid, str) or not rid:
                raise _Reply(400, "BadRequest", "Request id is missing or not a string.")
            if rid in ids:
                raise _Reply(400, "BadRequest", f"Request with Id '{rid}' is a duplicate.")
            ids.add(rid)
            if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
                raise _Reply(400, "BadRequest", f"Request '{rid}' has no method or url.")
            if "://" in r["url"].split("?", 1)[0]:
                raise _Reply(400, "BadRequest", f"Invalid request URL '{r['url']}': it must be "
                             "relative to the version root.")
        self.batches.append(len(reqs))
        truncate = False
        responses = []
        for r in reqs:
            answer, bad = await self._inner(r, base)
            responses.append(answer)
            truncate = truncate or bad
        payload = orjson.dumps({"responses": responses[::-1]})
        return 200, [], payload[:len(payload) // 2] if truncate else payload

    async def _inner(self, req: dict[str, Any], base: str) -> tuple[dict[str, Any], bool]:
        """One request of a batch, through the fault plan and routing of a direct request:
        (its response, whether a `bad_json` fault fired for it)."""
        method, url = req["method"].upper(), req["url"]
        raw_path, _, qs = url.partition("?")
        path = "/" + unquote(raw_path).strip("/")
        try:
            rule = self.faults.check(method, path)
            if rule is not None:
                if rule.kind == "bad_json":
                    return {"id": req["id"], "status": 200, "headers": {}, "body": {}}, True
                await self._fault(rule, path, False)
            out = self._route(method, path, dict(parse_qsl(qs, keep_blank_values=True)), base)
            return {"id": req["id"], "status": 200,
                    "headers": {"Content-Type": _JSON[0][1].decode()}, "body": out}, False
        except _Reply as r:
            headers = {"Content-Type": "application/json"}
            headers.update(("-".join(p.capitalize() for p in k.decode().split("-")), v.decode())
                           for k, v in r.headers)
            return {"id": req["id"], "status": r.status, "headers": headers,
                    "body": orjson.loads(_graph_error(r.status, r.code, r.message))}, False

    async def _fault(self, rule: FaultRule, path: str,
                     is_token: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        if rule.kind == "timeout":
            await asyncio.sleep(rule.delay)
            return None
        if rule.kind == "throttle":
            wait = str(max(1, math.ceil(rule.retry_after))).encode()
            raise _Reply(429, "TooManyRequests", "Too many requests. Please retry after some time.",
                         [(b"retry-after", wait)])
        if rule.kind == "error":
            codes = {500: "generalException", 502: "badGateway", 503: "serviceNotAvailable",
                     504: "gatewayTimeout", 400: "BadRequest", 403: "Authorization_RequestDenied",
                     404: "Request_ResourceNotFound"}
            raise _Reply(rule.status, codes.get(rule.status, "UnknownError"),
                         "The service is currently unavailable." if rule.status >= 500
                         else "The request failed.")
        if rule.kind == "bad_json":
            return 200, [], b'{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata","value":[{"id":"'
        if rule.kind == "revoked":
            if is_token:
                return 401, [], orjson.dumps({
                    "error": "invalid_client",
                    "error_description": "AADSTS7000222: The provided client secret keys for app "
                                         f"'{self.client_id}' are expired.",
                    "error_codes": [7000222]})
            raise _Reply(401, "InvalidAuthenticationToken",
                         "Lifetime validation failed, the token is expired.")
        if rule.kind == "expired_cursor" and "delta" in path:
            raise _Reply(410, "syncStateNotFound",
                         "The sync state generation is not found. Please restart the sync.")
        return None

    # -- auth ---------------------------------------------------------------------------------

    def _token(self, path: str, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self.token_requests += 1
        form = dict(parse_qsl(body.decode()))
        tenant = path.strip("/").split("/")[0]

        def refuse(status: int, err: str, code: int, desc: str) -> tuple[int, list[Any], bytes]:
            return status, [], orjson.dumps({"error": err, "error_description": f"AADSTS{code}: {desc}",
                                             "error_codes": [code]})

        if tenant not in (self.tenant_id, "organizations"):
            return refuse(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003,
                          "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return refuse(400, "unauthorized_client", 700016, "Application was not found in the directory.")
        if not form.get("scope", "").endswith("/.default"):
            return refuse(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        assertion = form.get("client_assertion")
        if not (form.get("client_secret") == self.client_secret or assertion):
            return refuse(401, "invalid_client", 7000215, "Invalid client secret provided.")
        tok = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(24)
        self.tokens.add(tok)
        return 200, [], orjson.dumps({"token_type": "Bearer", "expires_in": 3599,
                                      "ext_expires_in": 3599, "access_token": tok})

    def _authorize(self, scope: dict[str, Any]) -> None:
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        if not auth:
            raise _Reply(401, "InvalidAuthenticationToken", "Access token is empty.")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise _Reply(401, "InvalidAuthenticationToken", "Access token validation failure.")

    # -- routing ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, q: dict[str, str], base: str) -> dict[str, Any]:
        if method != "GET":
            raise _Reply(405, "Request_BadRequest", "The HTTP method is not allowed.")
        parts = path.strip("/").split("/")
        idx = self.index()
        select = tuple(s.strip() for s in q["$select"].split(",")) if q.get("$select") else None
        if parts[0] in ("users", "groups") and len(parts) >= 2 and _is_delta(parts[1]):
            return self._delta(parts[0], path, q, base, select)
        if parts == ["users"]:
            return self._page(idx.cache_list(("users", select, q.get("$filter")), lambda: [
                project(o, select, typed=False) for o in self._filter_users(q.get("$filter"))]),
                path, q, base, "users")
        if parts == ["groups"]:
            return self._page(idx.cache_list(("groups", select, q.get("$filter")), lambda: [
                project(o, select, typed=False) for o in self._filter_groups(q.get("$filter"))]),
                path, q, base, "groups")
        if parts[0] == "users" and len(parts) >= 2:
            uid = parts[1] if parts[1] in idx.users else idx.upn.get(parts[1].lower())
            if uid is None:
                raise _Reply(404, "Request_ResourceNotFound",
                             f"Resource '{parts[1]}' does not exist or one of its queried "
                             "reference-property objects are not present.")
            if len(parts) == 2:
                return project(idx.users[uid], select, typed=False)
            if parts[2] in ("memberOf", "transitiveMemberOf") and len(parts) <= 4:
                objs = idx.member_of(uid, transitive=parts[2] == "transitiveMemberOf")
                return self._page(_cast([project(o, select, typed=True) for o in objs], parts[3:]),
                                  path, q, base, "directoryObjects")
        if parts[0] == "groups" and len(parts) >= 2:
            gid = parts[1]
            if gid not in idx.groups:
                raise _Reply(404, "Request_ResourceNotFound",
                             f"Resource '{gid}' does not exist or one of its queried "
                             "reference-property objects are not present.")
            if len(parts) == 2:
                return project(idx.groups[gid], select, typed=False)
            if parts[2] in ("members", "transitiveMembers") and len(parts) <= 4:
                objs = (idx.transitive_members(gid) if parts[2] == "transitiveMembers"
                        else idx.direct_members(gid))
                return self._page(_cast([project(o, select, typed=True) for o in objs], parts[3:]),
                                  path, q, base, "directoryObjects")
            if parts[2] in ("memberOf", "transitiveMemberOf") and len(parts) <= 4:
                objs = idx.member_of(gid, transitive=parts[2] == "transitiveMemberOf")
                return self._page(_cast([project(o, select, typed=True) for o in objs], parts[3:]),
                                  path, q, base, "directoryObjects")
        if parts[:1] == ["servicePrincipals"] and len(parts) == 3 and parts[2] == "appRoleAssignedTo":
            if parts[1] != self.sp_id:
                raise _Reply(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist.")
            return self._page(self._assignments(), path, q, base, "appRoleAssignments")
        raise _Reply(400, "BadRequest", f"Resource not found for the segment '{parts[-1]}'.")

    def _filter_users(self, flt: str | None) -> list[dict[str, Any]]:
        idx = self.index()
        if not flt:
            return idx.user_list
        field, _, value = _eq(flt)
        if field == "id":
            return [idx.users[value]] if value in idx.users else []
        if field in ("userPrincipalName", "mail"):
            return [o for o in idx.user_list if (o[field] or "").lower() == value.lower()]
        raise _Reply(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter: {flt}")

    def _filter_groups(self, flt: str | None) -> list[dict[str, Any]]:
        idx = self.index()
        if not flt:
            return idx.group_list
        field, _, value = _eq(flt)
        if field == "securityEnabled":
            want = value.lower() == "true"
            return [o for o in idx.group_list if o["securityEnabled"] is want]
        if field in ("id", "displayName"):
            return [o for o in idx.group_list if o[field] == value]
        raise _Reply(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter: {flt}")

    def _assignments(self) -> list[dict[str, Any]]:
        idx = self.index()
        assigned = [g for g in idx.group_list if (g["id"] in self.app_assigned if self.app_assigned
                                                   is not None else default_app_assigned(g["id"]))]
        out = [{"id": _b64([g["id"], 1])[:43], "appRoleId": "00000000-0000-0000-0000-000000000000",
                "createdDateTime": "2024-01-01T00:00:00Z", "principalDisplayName": g["displayName"],
                "principalId": g["id"], "principalType": "Group", "resourceDisplayName": "MishikaLLM",
                "resourceId": self.sp_id} for g in assigned]
        for u in idx.user_list[:2]:  # a direct user assignment, which group scope must skip
            out.append({"id": _b64([u["id"], 2])[:43], "appRoleId": "00000000-0000-0000-0000-000000000000",
                        "createdDateTime": "2024-01-01T00:00:00Z", "principalDisplayName": u["displayName"],
                        "principalId": u["id"], "principalType": "User", "resourceDisplayName": "MishikaLLM",
                        "resourceId": self.sp_id})
        return out

    def _page(self, items: list[dict[str, Any]], path: str, q: dict[str, str], base: str,
              ctx: str) -> dict[str, Any]:
        try:
            top = int(q.get("$top") or DEFAULT_TOP)
        except ValueError:
            raise _Reply(400, "BadRequest", "Invalid page size specified.") from None
        if not 1 <= top <= MAX_TOP:
            raise _Reply(400, "Request_BadRequest", f"Invalid page size specified: '{top}'. Must be "
                         f"between 1 and {MAX_TOP} inclusive.")
        start = 0
        if "$skiptoken" in q:
            try:
                start = int(_unb64(q["$skiptoken"])["o"])
            except Exception:
                raise _Reply(400, "Request_BadRequest", "Invalid skip token.") from None
        out: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{ctx}",
                               "value": items[start:start + top]}
        if start + top < len(items):
            out["@odata.nextLink"] = _link(base, path, q, "$skiptoken", _b64({"o": start + top}))
        return out

    def _delta(self, kind: str, path: str, q: dict[str, str], base: str,
               select: tuple[str, ...] | None) -> dict[str, Any]:
        idx = self.index()
        ctx = f"{base}/$metadata#{kind}"
        if "$skiptoken" in q:
            try:
                st = _unb64(q["$skiptoken"])
                since, at, start = st["s"], int(st["a"]), int(st["o"])
            except Exception:
                raise _Reply(410, "syncStateNotFound", "The sync state generation is not found.") from None
        else:
            tok = q.get("$deltatoken")
            if tok == "latest":
                return {"@odata.context": ctx, "value": [], "@odata.deltaLink":
                        _link(base, path, q, "$deltatoken", _b64({"c": self.tenant.clock, "k": kind}))}
            if tok is None:
                since = None
            else:
                try:
                    st = _unb64(tok)
                    since = int(st["c"])
                    assert st["k"] == kind and since <= self.tenant.clock
                except Exception:
                    raise _Reply(410, "syncStateNotFound",
                                 "The sync state generation is not found. Please restart the sync.") from None
            at, start = self.tenant.clock, 0
        if kind == "users":
            entries = idx.cache_list(("udelta", since, select), lambda: [
                e if "@removed" in e else project(e, select, typed=False)
                for e in idx.user_delta(since)])
        else:
            entries = idx.group_delta(since, select)
        out: dict[str, Any] = {"@odata.context": ctx, "value": entries[start:start + DELTA_PAGE]}
        drop = {"$skiptoken", "$deltatoken"}
        keep = {k: v for k, v in q.items() if k not in drop}
        if start + DELTA_PAGE < len(entries):
            out["@odata.nextLink"] = _link(base, path, keep, "$skiptoken",
                                           _b64({"s": since, "a": at, "o": start + DELTA_PAGE}))
        else:
            out["@odata.deltaLink"] = _link(base, path, keep, "$deltatoken", _b64({"c": at, "k": kind}))
        return out


def _is_delta(seg: str) -> bool:
    return seg in ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()")


def _cast(objs: list[dict[str, Any]], rest: list[str]) -> list[dict[str, Any]]:
    """Apply a type-cast segment (`graph.user`, `microsoft.graph.group`, …) if there is one."""
    if not rest:
        return objs
    name = rest[0].removeprefix("microsoft.").removeprefix("graph.")
    want = {"user": USER, "group": GROUP}.get(name)
    if want is None:
        raise _Reply(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")
    return [o for o in objs if o.get("@odata.type") == want]


def _eq(flt: str) -> tuple[str, str, str]:
    """Parse `field eq 'value'` / `field eq true`."""
    bits = flt.split(" ", 2)
    if len(bits) != 3 or bits[1].lower() != "eq":
        raise _Reply(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter: {flt}")
    return bits[0], "eq", bits[2].strip("'").replace("''", "'")


def _link(base: str, path: str, q: dict[str, str], key: str, value: str) -> str:
    params = {k: v for k, v in q.items() if k != "$skiptoken"}
    params[key] = value
    qs = "&".join(f"{k}={quote(v, safe=',()')}" for k, v in params.items())
    return f"{base}{path}?{qs}"
