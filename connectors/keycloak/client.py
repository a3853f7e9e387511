"""python-keycloak setup and the one request path every read goes through.

Layer choice: `KeycloakAdmin`'s methods (`a_get_group_members`, `a_get_users`, …) page with
`first`/`max` one request after another, parse every page with `response.json()` into full
dicts and return whole lists, so a caller can neither overlap member reads with the user list,
nor stop at a time budget, nor see which page failed. This module keeps every SDK layer *below*
those methods, as was done for Okta:

- `KeycloakAdmin(connection=KeycloakOpenIDConnection(...))` with `grant_type
  "client_credentials"`: the SDK posts `client_id`/`client_secret` to the realm's token
  endpoint (`{server}/realms/{realm}/protocol/openid-connect/token`), sets
  `Authorization: Bearer …` on the connection, and renews the token at 90 % of its lifetime
  (and once more on a 401);
- `KeycloakOpenIDConnection.a_raw_get` sends each GET with those headers; pages are read as
  bytes and parsed once with orjson by the caller.

Below the connection manager, the SDK's httpx clients (admin and token) are replaced by
`transport.AiohttpClient` (see there for why: httpx alone made a read ~3 times its floor); it
counts every call, takes no proxies from the environment for loopback URLs, and holds
`connections` sockets. The first token request is made under a lock (the SDK would otherwise
send one per concurrent request); 429 / 5xx / timeouts / resets are retried with
`Retry-After` or exponential backoff, within the caller's deadline. SDK and transport errors
are translated in `errors` only. Every
attempt (token requests included) passes the snapshot's `connectors.breaker.Breaker` first.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection

from connectors.base import (
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ThrottledError,
    UnavailableError,
    is_loopback,
)
from connectors.breaker import current as current_breaker
from connectors.budget import Deadline, Meter
from connectors.keycloak.errors import from_sdk, from_status, no_answer
from connectors.keycloak.transport import AiohttpClient


#: The circuit breaker of the snapshot running in this context (set before its tasks start).
class KeycloakApi:
    """One realm's SDK connection plus the request policy. Bound to the event loop it was first
    used in; a new loop gets a fresh SDK connection (httpx pools are per loop)."""

    def __init__(
        self,
        *,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: str,
        request_timeout: float,
        max_retries: int,
        connections: int,
        token_realm: str | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigError(
                "Keycloak needs client_id and client_secret (a confidential client "
                "with service accounts enabled)"
            )
        if not realm or "/" in realm:
            raise ConfigError(f"not a realm name: {realm!r}")
        # urljoin drops the last path segment of a base without a trailing slash
        # (`https://host/auth` + `admin/…` → `https://host/admin/…`): keep the slash
        self.server_url = server_url.rstrip("/") + "/"
        self.realm, self.token_realm = realm, token_realm or realm
        self.client_id, self.client_secret = client_id, client_secret
        self.request_timeout, self.max_retries, self.connections = (request_timeout, max_retries, connections)
        self.loopback = is_loopback(urlsplit(server_url).hostname or "")
        self.meter = Meter()
        self.admin_path = f"admin/realms/{quote(realm, safe='')}"
        self._admin: KeycloakAdmin | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._clients: list[AiohttpClient] = []
        self._unused: list[httpx.AsyncClient] = []  # the SDK's own, never opened

    def _build(self) -> KeycloakAdmin:
        conn = KeycloakOpenIDConnection(
            server_url=self.server_url,
            realm_name=self.realm,
            user_realm_name=self.token_realm,
            client_id=self.client_id,
            client_secret_key=self.client_secret,
            grant_type="client_credentials",
            timeout=self.request_timeout,
            max_retries=0,
            # plain http (loopback only) has no certificate to check: the SDK's own httpx
            # clients (replaced below, never used) then skip loading the CA bundle (~25 ms each)
            verify=urlsplit(self.server_url).scheme == "https",
        )
        admin = KeycloakAdmin(connection=conn)
        meter = self.meter

        async def before() -> None:
            breaker = current_breaker()
            if breaker is not None:
                breaker.before()  # CircuitOpen: not sent (the SDK wraps it; `errors` unwraps)
            meter.api_calls += 1

        async def after(status: int) -> None:
            breaker = current_breaker()
            if breaker is not None:
                breaker.success()  # any HTTP answer: the IdP is alive
            if status == 429:
                meter.throttles += 1

        for holder in (conn, conn.keycloak_openid.connection):
            old = holder.async_s
            client = AiohttpClient(
                connections=self.connections,
                trust_env=not self.loopback,
                verify=bool(holder.verify),
                before=before,
                after=after,
            )
            holder.async_s = client
            self._clients.append(client)
            self._unused.append(old)
        return admin

    async def _ready(self) -> KeycloakOpenIDConnection:
        loop = asyncio.get_running_loop()
        if self._admin is None or self._loop is not loop:
            if self._loop is not None:
                await self.aclose()
            self._admin, self._loop, self._lock = self._build(), loop, asyncio.Lock()
        conn = self._admin.connection
        expires = conn.expires_at
        if conn.token is None or expires is None or time.time() >= expires.timestamp():
            assert self._lock is not None
            async with self._lock:  # one token request, not one per concurrent read
                await conn.a__refresh_if_required()
        return conn

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        unused, self._unused = self._unused, []
        for c in [*clients, *unused]:
            try:
                await c.aclose()
            except RuntimeError:  # its loop is gone: nothing left to release
                pass
        self._admin = None

    def path(self, tail: str) -> str:
        """`admin/realms/{realm}/{tail}`; callers percent-encode ids placed in `tail`."""
        return f"{self.admin_path}/{tail}"

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, what: str, deadline: Deadline
    ) -> bytes:
        """GET `path` (relative to the server URL), retrying transient failures up to
        `max_retries` times within `deadline`: 429 waits `Retry-After` (refused if past the
        budget), 5xx/timeouts/resets back off 0.5, 1, 2, … s (±20 %). Returns the body bytes."""
        attempt = 0
        while True:
            try:
                return await self._once(path, params or {}, what=what, deadline=deadline)
            except CircuitOpen:
                raise  # the IdP stopped answering: no retry, no wait
            except (UnavailableError, ThrottledError) as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                wait = getattr(exc, "retry_after", None)
                delay = (
                    wait
                    if wait is not None
                    else min(0.5 * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)
                )
                if delay >= deadline.remaining():
                    raise BudgetExceeded(f"{what}: time budget spent while retrying ({exc})") from exc
                await asyncio.sleep(delay)

    async def _once(self, path: str, params: dict[str, Any], *, what: str, deadline: Deadline) -> bytes:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise BudgetExceeded(f"{what}: time budget spent")
        try:
            async with asyncio.timeout(remaining):
                try:
                    conn = await self._ready()
                    res = await conn.a_raw_get(path, **params)
                except Exception as exc:  # the SDK wraps transport errors in its own types
                    breaker = current_breaker()
                    if breaker is not None and no_answer(exc):
                        breaker.failure(type(exc.__cause__ or exc).__name__)
                    raise from_sdk(exc, what=what) from exc
        except TimeoutError as exc:
            raise BudgetExceeded(f"{what}: time budget spent waiting for Keycloak") from exc
        if not 200 <= res.status_code < 300:
            raise from_status(res.status_code, res.content, res.headers, what=what)
        return res.content


__all__ = ["KeycloakApi"]
