"""A fake Google Admin SDK Directory API (plus the OAuth token endpoint) over a `Tenant`.

Serves, as raw ASGI for speed, what `GoogleConnector` reads:

- ``POST /token``: the service-account JWT-bearer grant. The assertion's RS256 signature is
  checked against the fake's own service-account key (`service_account_info`), and it must
  name a `sub` (domain-wide delegation) and the directory read scopes.
- ``GET /admin/directory/v1/users`` (``customer``|``domain``, ``maxResults`` 1..500,
  ``pageToken``), ``GET /admin/directory/v1/users/{userKey}``.
- ``GET /admin/directory/v1/groups`` (``customer``|``domain`` or ``userKey``: the groups the
  user or group is a *direct* member of; ``maxResults`` 1..200).
- ``GET /admin/directory/v1/groups/{groupKey}/members`` (direct members, ``maxResults``
  1..200, ``includeDerivedMembership``).

Pages end with an opaque ``nextPageToken``; an out-of-range ``maxResults`` gets Google's 400
``invalid``. Ids are formatted like Google's: users ``"1" + 20 digits``, groups ``"0" + 14 hex``
(see `google_user_id`, `google_group_id`). The ``fields`` partial-response selector is accepted
and ignored (the fake always answers the superset).

Fault kinds (`FaultPlan`): ``throttle`` → 403 ``rateLimitExceeded`` (or 429 when the rule's
``status`` is 429) with a ``Retry-After`` of the rule's ``retry_after`` seconds (a decimal, so
tests can use sub-second waits); ``error`` → the rule's status with Google's error body;
``timeout`` → the answer after ``delay`` seconds; ``bad_json`` → a 200 with a truncated body;
``revoked`` → 401 (``authError`` on the API, ``unauthorized_client`` on ``/token``);
``expired_cursor`` → no effect (the Directory API has no delta reads to expire).

Options (``running_fake("google", tenant, faults, **options)``): ``customer_members`` (tenant
group ids that also have the whole customer as a member, type ``CUSTOMER``),
``external_members`` (tenant group id → emails of members outside the directory, served as
type ``external_type``, ``"USER"`` as Google does, or ``"EXTERNAL"``), ``nesting_cycle``
(close the tenant's first nesting chain into a cycle, through `Tenant.add_member`),
``secondary_domain_groups`` (tenant group ids whose addresses are in the customer's second
domain ``eng.<domain>``: ``groups.list(domain=<domain>)`` leaves them out),
``signing_key`` (the service account's RSA key; default one per process).

Caches: the tenant is indexed once per `Tenant.clock` value (users and groups serialized with
orjson; each group's member entries and the reverse "parents" index built lazily on first
use), so a request costs O(page), not O(tenant).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Connector
from connectors.testing.faults import FaultPlan, FaultRule
from connectors.testing.google_wire import (
    ADMIN_EMAIL,
    API,
    BAD_REQUEST,
    FORBIDDEN,
    GROUP_SCOPE,
    MAX_GROUPS_PAGE,
    MAX_USERS_PAGE,
    NO_SCOPE,
    RATE_LIMITED,
    TOO_MANY,
    UNAUTHENTICATED,
    USER_SCOPE,
    WIDER,
    customer_id,
    default_key,
    etag,
    google_group_id,
    google_user_id,
    group_email,
    new_key,
    not_found,
    page,
    service_account_info,
    status_error,
    verify_assertion,
)
from connectors.testing.harness import FakeIdP, register_fake
from connectors.testing.tenant import FakeUser, Tenant

__all__ = ["FakeGoogle", "close_first_chain", "google_group_id", "google_user_id", "new_key",
           "service_account_info"]

# -- the tenant, indexed ----------------------------------------------------------------------


@dataclass
class _Index:
    """The tenant as Google would serve it, at one `Tenant.clock` value."""

    clock: int
    domain: str
    user_order: list[str]  # tenant user ids by primaryEmail
    user_json: dict[str, bytes]
    user_member: dict[str, bytes]  # tenant user id -> its member entry
    group_order: list[str]
    group_json: dict[str, bytes]
    group_member: dict[str, bytes]
    user_keys: dict[str, str]  # vendor id / lower email -> tenant user id
    group_keys: dict[str, str]
    group_domain: dict[str, str]  # tenant group id -> the domain of its email
    members: dict[str, list[bytes]] = field(default_factory=dict)  # lazily, per group
    by_domain: dict[str, list[bytes]] = field(default_factory=dict)  # lazily: groups.list(domain)
    parents: dict[str, list[str]] | None = None  # lazily: member id -> direct parent groups


def _user_resource(u: FakeUser, domain: str, cust: str) -> dict[str, Any]:
    vid = google_user_id(u.id)
    return {
        "kind": "admin#directory#user", "id": vid, "etag": etag(vid, u.changed_at),
        "primaryEmail": u.user_name,
        "name": {"givenName": u.given_name, "familyName": u.family_name,
                 "fullName": u.display_name},
        "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": "1970-01-01T00:00:00.000Z",
        "creationTime": "2024-01-02T03:04:05.000Z", "agreedToTerms": True,
        "suspended": not u.active, **({"suspensionReason": "ADMIN"} if not u.active else {}),
        "archived": False, "changePasswordAtNextLogin": False, "ipWhitelisted": False,
        "emails": [{"address": u.user_name, "primary": True}],
        "customerId": cust, "orgUnitPath": "/", "isMailboxSetup": True,
        "isEnrolledIn2Sv": False, "isEnforcedIn2Sv": False, "includeInGlobalAddressList": True,
    }


def build_index(t: Tenant, secondary: frozenset[str] = frozenset()) -> _Index:
    """Index `t`; groups in `secondary` get addresses in the domain ``eng.<domain>``."""
    cust = customer_id(t.domain)
    group_domain = {g: (f"eng.{t.domain}" if g in secondary else t.domain) for g in t.groups}
    users = sorted(t.users.values(), key=lambda u: u.user_name.lower())
    user_json, user_member, user_keys = {}, {}, {}
    for u in users:
        vid = google_user_id(u.id)
        user_json[u.id] = orjson.dumps(_user_resource(u, t.domain, cust))
        user_member[u.id] = orjson.dumps({
            "kind": "admin#directory#member", "etag": etag(vid, "m"), "id": vid,
            "email": u.user_name, "role": "MEMBER", "type": "USER",
            "status": "ACTIVE" if u.active else "SUSPENDED"})
        user_keys[vid] = u.id
        user_keys[u.user_name.lower()] = u.id
    groups = sorted(t.groups.values(), key=lambda g: (group_email(g, group_domain[g.id]), g.id))
    group_json, group_member, group_keys = {}, {}, {}
    for g in groups:
        vid, email = google_group_id(g.id), group_email(g, group_domain[g.id])
        group_json[g.id] = orjson.dumps({
            "kind": "admin#directory#group", "id": vid, "etag": etag(vid, g.changed_at),
            "email": email, "name": g.name,
            "directMembersCount": str(len(g.user_ids) + len(g.group_ids)),
            "description": g.description, "adminCreated": True,
            "nonEditableAliases": [email.replace("@", "@test.")]})
        group_member[g.id] = orjson.dumps({
            "kind": "admin#directory#member", "etag": etag(vid, "m"), "id": vid,
            "email": email, "role": "MEMBER", "type": "GROUP", "status": "ACTIVE"})
        group_keys[vid] = g.id
        group_keys.setdefault(email, g.id)
    return _Index(t.clock, t.domain, [u.id for u in users], user_json, user_member,
                  [g.id for g in groups], group_json, group_member, user_keys, group_keys,
                  group_domain)


# -- the app ----------------------------------------------------------------------------------


@dataclass
class _Token:
    subject: str | None
    scopes: frozenset[str]
    expires: float


def _has(scopes: frozenset[str], scope: str) -> bool:
    return scope in scopes or WIDER[scope] in scopes


@register_fake
class FakeGoogle(FakeIdP):
    """Google Admin SDK Directory, served for a tenant (see the module docstring)."""

    kind = "google"
    supports_nesting = True
    supports_delta = False

    def __init__(self, tenant: Tenant, faults: FaultPlan | None = None, *,
                 customer_members: Iterable[str] = (),
                 external_members: Mapping[str, Sequence[str]] | None = None,
                 external_type: str = "USER", nesting_cycle: bool = False,
                 secondary_domain_groups: Iterable[str] = (),
                 signing_key: rsa.RSAPrivateKey | None = None, **options: Any) -> None:
        super().__init__(tenant, faults, **options)
        self.key = signing_key or default_key()
        self.customer_members = set(customer_members)
        self.external_members = {k: list(v) for k, v in (external_members or {}).items()}
        self.external_type = external_type
        self.secondary = frozenset(secondary_domain_groups)
        self.tokens: dict[str, _Token] = {}
        self._index: _Index | None = None
        if nesting_cycle:
            close_first_chain(tenant)

    # -- FakeIdP ------------------------------------------------------------------------------

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self._asgi(scope, receive, send)

        return app  # a plain coroutine function, so servers detect ASGI 3

    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        from connectors.google import GoogleConnector

        options.setdefault("service_account_info",
                           service_account_info(base_url + "/token", self.key))
        options.setdefault("admin_email", ADMIN_EMAIL.format(domain=self.tenant.domain))
        options.setdefault("token_url", base_url + "/token")
        return GoogleConnector(directory, base_url=base_url, **options)

    def external_id(self, tenant_id: str) -> str:
        if tenant_id in self.tenant.groups or tenant_id in self.tenant.deleted_groups:
            return google_group_id(tenant_id)
        return google_user_id(tenant_id)

    @property
    def customer(self) -> str:
        return customer_id(self.tenant.domain)

    # -- plumbing -----------------------------------------------------------------------------

    def warm(self) -> None:
        """Build every lazy cache now (benchmarks: keep server set-up out of the timings)."""
        ix = self.index()
        for gid in ix.group_order:
            ix.members.setdefault(gid, self._direct_members(ix, gid))
        self._parents(ix)

    def index(self) -> _Index:
        if self._index is None or self._index.clock != self.tenant.clock:
            self._index = build_index(self.tenant, self.secondary)
        return self._index

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        rule = self.faults.check(method, path)
        status, body, headers = 200, b"", {}
        if rule is not None and rule.kind == "timeout":
            await asyncio.sleep(rule.delay)
            rule = None
        if rule is not None and rule.kind != "expired_cursor":
            status, body, headers = self._fault(rule, path)
        elif method == "POST" and path == "/token":
            form = await _read_body(receive)
            status, body = self._token(parse_qs(form.decode()))
        else:
            query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
            status, body = self._api(method, path, query, dict(scope["headers"]))
            if rule is not None and rule.kind == "bad_json":
                body = body[: max(1, len(body) // 2)]
        raw_headers = [(b"content-type", b"application/json; charset=UTF-8"),
                       (b"content-length", str(len(body)).encode()),
                       (b"vary", b"Origin, X-Origin, Referer")]
        raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    def _fault(self, rule: FaultRule, path: str) -> tuple[int, bytes, dict[str, str]]:
        if rule.kind == "throttle":
            after = {"Retry-After": f"{rule.retry_after:g}"}
            return (429, TOO_MANY, after) if rule.status == 429 else (403, RATE_LIMITED, after)
        if rule.kind == "revoked":
            if path == "/token":
                return 401, orjson.dumps({
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes "
                    "requested."}), {}
            return 401, UNAUTHENTICATED, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        if rule.kind == "bad_json":
            return 200, b'{"kind": "admin#directory#', {}
        return rule.status, status_error(rule.status), {}

    def _token(self, form: dict[str, list[str]]) -> tuple[int, bytes]:
        grant = form.get("grant_type", [""])[-1]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, orjson.dumps({"error": "unsupported_grant_type",
                                      "error_description": "Invalid grant_type: " + grant})
        claims = verify_assertion(form.get("assertion", [""])[-1], self.key)
        if claims is None:
            return 400, orjson.dumps({"error": "invalid_grant",
                                      "error_description": "Invalid JWT Signature."})
        now = time.time()
        if not claims.get("exp", 0) > now - 300:
            return 400, orjson.dumps({"error": "invalid_grant", "error_description":
                                      "Invalid JWT: Token must be a short-lived token"})
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return 400, orjson.dumps({"error": "invalid_scope",
                                      "error_description": "Invalid OAuth scope."})
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = _Token(claims.get("sub"), scopes, now + 3600)
        return 200, orjson.dumps({"access_token": token, "expires_in": 3600,
                                  "token_type": "Bearer"})

    def _api(self, method: str, path: str, q: dict[str, str],
             headers: dict[bytes, bytes]) -> tuple[int, bytes]:
        auth = headers.get(b"authorization", b"").decode()
        tok = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if tok is None or tok.expires < time.time():
            return 401, UNAUTHENTICATED
        if method != "GET" or not path.startswith(API + "/"):
            return 404, not_found("path")
        if not tok.subject:  # a service account acting as itself is no directory admin
            return 403, FORBIDDEN
        parts = [unquote(p) for p in path[len(API) + 1:].split("/")]
        need = USER_SCOPE if parts[0] == "users" else GROUP_SCOPE
        if not _has(tok.scopes, need):
            return 403, NO_SCOPE
        ix = self.index()
        if parts == ["users"]:
            return self._list_users(ix, q)
        if len(parts) == 2 and parts[0] == "users":
            tid = ix.user_keys.get(parts[1].lower()) or ix.user_keys.get(parts[1])
            return (200, ix.user_json[tid]) if tid else (404, not_found("userKey"))
        if parts == ["groups"]:
            return self._list_groups(ix, q)
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "members":
            gid = ix.group_keys.get(parts[1].lower()) or ix.group_keys.get(parts[1])
            return self._list_members(ix, gid, q) if gid else (404, not_found("groupKey"))
        return 404, not_found("path")

    def _scope_ok(self, ix: _Index, q: dict[str, str]) -> tuple[int, bytes] | None:
        if "customer" in q:
            return None if q["customer"] in ("my_customer", self.customer) else (
                404, not_found("customer"))
        if "domain" in q:
            ok = q["domain"].lower() in (ix.domain, f"eng.{ix.domain}")
            return None if ok else (403, FORBIDDEN)
        return 400, BAD_REQUEST

    def _list_users(self, ix: _Index, q: dict[str, str]) -> tuple[int, bytes]:
        bad = self._scope_ok(ix, q)
        if bad:
            return bad
        if q.get("domain", ix.domain).lower() != ix.domain:
            return page(ix.clock, q, "users", "admin#directory#users", MAX_USERS_PAGE, 100, [])
        return page(ix.clock, q, "users", "admin#directory#users", MAX_USERS_PAGE, 100,
                     [ix.user_json[u] for u in ix.user_order])

    def _list_groups(self, ix: _Index, q: dict[str, str]) -> tuple[int, bytes]:
        if "userKey" in q:
            if "customer" in q or "domain" in q:
                return 400, BAD_REQUEST
            key = q["userKey"]
            tid = (ix.user_keys.get(key.lower()) or ix.user_keys.get(key)
                   or ix.group_keys.get(key.lower()) or ix.group_keys.get(key))
            if tid is None:
                return 404, not_found("userKey")
            items = [ix.group_json[g] for g in self._parents(ix).get(tid, ())]
        else:
            bad = self._scope_ok(ix, q)
            if bad:
                return bad
            domain = q.get("domain", "").lower() or None
            items = ix.by_domain.get(domain or "*")
            if items is None:
                items = ix.by_domain[domain or "*"] = [
                    ix.group_json[g] for g in ix.group_order
                    if domain is None or ix.group_domain[g] == domain]
        return page(ix.clock, q, "groups", "admin#directory#groups", MAX_GROUPS_PAGE, 200, items)

    def _list_members(self, ix: _Index, gid: str, q: dict[str, str]) -> tuple[int, bytes]:
        if q.get("includeDerivedMembership") == "true":
            items = [ix.user_member[u] for u in sorted(self.tenant.transitive_user_ids(gid))
                     if u in ix.user_member]
        else:
            items = ix.members.get(gid)
            if items is None:
                items = ix.members[gid] = self._direct_members(ix, gid)
        roles = q.get("roles")
        if roles and "MEMBER" not in roles.upper():
            items = []  # every fake member has the MEMBER role
        return page(ix.clock, q, "members", "admin#directory#members", MAX_GROUPS_PAGE, 200, items)

    def _direct_members(self, ix: _Index, gid: str) -> list[bytes]:
        g = self.tenant.groups[gid]
        out = [ix.user_member[u] for u in sorted(g.user_ids) if u in ix.user_member]
        out += [ix.group_member[c] for c in sorted(g.group_ids) if c in ix.group_member]
        if gid in self.customer_members:
            out.append(orjson.dumps({"kind": "admin#directory#member", "etag": etag(gid, "c"),
                                     "id": self.customer, "role": "MEMBER", "type": "CUSTOMER",
                                     "status": "ACTIVE"}))
        for email in self.external_members.get(gid, ()):
            out.append(orjson.dumps({
                "kind": "admin#directory#member", "etag": etag(email), "id":
                google_user_id(email), "email": email, "role": "MEMBER",
                "type": self.external_type, "status": "ACTIVE"}))
        return out

    def _parents(self, ix: _Index) -> dict[str, list[str]]:
        if ix.parents is None:
            parents: dict[str, list[str]] = {}
            for gid in ix.group_order:  # in list order, so each parent list is sorted
                g = self.tenant.groups[gid]
                for m in g.user_ids:
                    parents.setdefault(m, []).append(gid)
                for m in g.group_ids:
                    parents.setdefault(m, []).append(gid)
            ix.parents = parents
        return ix.parents


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


def close_first_chain(tenant: Tenant) -> tuple[str, str] | None:
    """Make the first nested group contain its parent (a 2+-group cycle); returns the edge."""
    for g in tenant.groups.values():
        for child in sorted(g.group_ids):
            tenant.add_member(child, g.id)
            return child, g.id
    return None
