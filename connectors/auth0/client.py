"""auth0-python setup, the client-credentials token, and the one request path.

Layer choice: the SDK's generated resource clients (`client.roles.users.list(...)`) validate
and build a pydantic model per object, and their pagers follow only page/per_page (which
Auth0 caps at 1,000 results); the snapshot needs checkpoint paging (`from`/`take`) and raw
pages. So every Management API request goes through the SDK's own request layer below the
models — `AsyncAuth0._client_wrapper.httpx_client` (`AsyncHttpClient.request`): URL building
from the client's base URL, query encoding, the SDK headers (`Authorization: Bearer …` from the
token supplier, `User-Agent`, `X-Fern-*`) — and the body is parsed once with orjson. The
`httpx.AsyncClient` under it sends through aiohttp (`connectors.auth0.transport`, measured).

The token comes from `auth0.authentication.GetToken.client_credentials` (POST
`{protocol}://{domain}/oauth/token` with client id, secret and audience), cached until 60 s
before `expires_in`, fetched again after a 401 (a rotated signing key or an expired token).
`GetToken` is synchronous (requests): it runs in a worker thread.

The SDK's own retry is switched off (`max_retries=0`): it would sleep up to 60 s per try
without knowing the snapshot's time budget and also retries 409. Here: 429 waits until
`x-ratelimit-reset` (epoch seconds) when that is within the budget; 5xx, timeouts and resets
back off 0.5, 1, 2, … s (±20 %); at most `max_retries` retries per request.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from auth0.authentication import GetToken
from auth0.management.client import AsyncAuth0

from connectors.auth0.errors import from_status, from_token_error, redact, translate
from connectors.auth0.transport import transport
from connectors.base import (
    AuthError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ThrottledError,
    UnavailableError,
    is_loopback,
)
from connectors.breaker import Breaker
from connectors.breaker import current as current_breaker
from connectors.budget import Deadline, Meter

TOKEN_LEEWAY_S = 60.0

#: The circuit breaker of the snapshot running in this context (set before its tasks start).
def _before() -> Breaker | None:
    breaker = current_breaker()
    if breaker is not None:
        breaker.before()
    return breaker


@dataclass(frozen=True)
class Endpoint:
    """Where the tenant is: `domain` (names the audience), and the URL actually called."""

    domain: str
    base_url: str  # scheme://host[:port], no trailing slash
    audience: str

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v2"


class Auth0Api:
    """One tenant's SDK client plus the request policy. Bound to the event loop of first use."""

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        client_id: str,
        client_secret: str,
        request_timeout: float,
        max_retries: int,
        connections: int,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigError("Auth0 needs client_id and client_secret (a Machine-to-Machine app)")
        self.endpoint = endpoint
        self.client_id, self._secret = client_id, client_secret
        self.request_timeout, self.max_retries, self.connections = (request_timeout, max_retries, connections)
        self.meter = Meter()
        parts = urlsplit(endpoint.base_url)
        self._get_token = GetToken(
            parts.netloc,
            client_id,
            client_secret=client_secret,
            timeout=request_timeout,
            protocol=parts.scheme,
        )
        self._loopback = is_loopback(parts.hostname or "")
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock: asyncio.Lock | None = None
        self._sdk: AsyncAuth0 | None = None
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- token

    async def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_until:
            return self._token
        assert self._token_lock is not None
        async with self._token_lock:
            if self._token and time.monotonic() < self._token_until:
                return self._token
            breaker = _before()
            self.meter.api_calls += 1
            what = "Auth0 token (client credentials)"
            try:
                answer = await asyncio.to_thread(self._get_token.client_credentials, self.endpoint.audience)
            except Exception as exc:  # Auth0Error, RateLimitError, requests errors
                answered = hasattr(exc, "status_code")  # an Auth0Error carries the HTTP answer
                if breaker is not None:
                    breaker.success() if answered else breaker.failure(type(exc).__name__)
                if getattr(exc, "status_code", None) == 429:
                    self.meter.throttles += 1
                raise from_token_error(exc, what=what) from None
            if breaker is not None:
                breaker.success()
            with translate(what, self._secret):
                token, ttl = answer["access_token"], float(answer.get("expires_in", 86400))
            if not isinstance(token, str) or not token:
                raise AuthError(f"{what}: the token endpoint answered without a token")
            self._token = token
            self._token_until = time.monotonic() + max(1.0, ttl - TOKEN_LEEWAY_S)
            return token

    def _drop_token(self, used: str | None) -> None:
        if used is not None and self._token == used:
            self._token, self._token_until = None, 0.0

    # -- client

    def _ready(self) -> AsyncAuth0:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._sdk is None:
            self._loop = loop
            self._token_lock = asyncio.Lock()
            self._http = httpx.AsyncClient(
                timeout=self.request_timeout,
                trust_env=not self._loopback,
                transport=transport(connections=self.connections, trust_env=not self._loopback),
            )
            self._sdk = AsyncAuth0(
                base_url=self.endpoint.api_url,
                token="",
                async_token=self._access_token,
                max_retries=0,
                httpx_client=self._http,
                timeout=self.request_timeout,
            )
        return self._sdk

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http, self._sdk, self._loop = None, None, None

    # -- requests

    async def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        deadline: Deadline,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one Management API request (path under /api/v2) with the retry policy; the
        parsed JSON answer. Raises a `ConnectorError`."""
        body = await self.raw(method, path, what=what, deadline=deadline, params=params, json=json)
        with translate(what):
            return orjson.loads(body)

    async def raw(
        self,
        method: str,
        path: str,
        *,
        what: str,
        deadline: Deadline,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> bytes:
        attempt, refreshed = 0, False
        while True:
            try:
                return await self._once(method, path, what=what, deadline=deadline, params=params, json=json)
            except CircuitOpen:
                raise  # the IdP stopped answering: no retry, no wait
            except AuthError as exc:
                used = getattr(exc, "token", None)
                if refreshed or used is None:
                    raise
                refreshed = True  # one new token after a 401: expired or rotated
                self._drop_token(used)
            except (UnavailableError, ThrottledError) as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                wait = getattr(exc, "retry_after", None)
                delay = (
                    (wait + random.uniform(0.05, 0.25))
                    if wait is not None
                    else min(0.5 * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)
                )
                if delay >= deadline.remaining():
                    if isinstance(exc, ThrottledError):
                        raise ThrottledError(
                            f"{exc} (Auth0 asks to wait {delay:.0f} s, past the time budget)"
                        ) from exc
                    raise BudgetExceeded(f"{what}: time budget spent while retrying ({exc})") from exc
                await asyncio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        *,
        what: str,
        deadline: Deadline,
        params: dict[str, Any] | None,
        json: Any,
    ) -> bytes:
        sdk = self._ready()
        remaining = deadline.remaining()
        if remaining <= 0:
            raise BudgetExceeded(f"{what}: time budget spent")
        token = await self._access_token()
        breaker = _before()
        self.meter.api_calls += 1
        try:
            async with asyncio.timeout(remaining):
                with translate(what, self._secret, token):
                    try:
                        res = await sdk._client_wrapper.httpx_client.request(
                            path.lstrip("/"),
                            method=method,
                            params=params,
                            json=json,
                            request_options={"max_retries": 0},
                        )
                    except httpx.TransportError as exc:  # no HTTP answer at all
                        if breaker is not None:
                            breaker.failure(type(exc).__name__)
                        raise
        except TimeoutError as exc:
            raise BudgetExceeded(f"{what}: time budget spent waiting for Auth0") from exc
        if breaker is not None:
            breaker.success()
        if res.status_code == 429:
            self.meter.throttles += 1
        if not 200 <= res.status_code < 300:
            err = from_status(res.status_code, res.content, res.headers, what=what)
            if res.status_code == 401:
                err.token = token  # type: ignore[attr-defined]
            raise err
        return res.content

    async def download(self, url: str, *, what: str, deadline: Deadline) -> bytes:
        """GET a pre-signed export URL (no Authorization header: the URL carries its own
        signature, and the token must not leave the tenant), with the same retry policy."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
            raise UnavailableError(redact(f"{what}: refusing a non-https export location {url[:80]}"))
        self._ready()
        assert self._http is not None
        attempt = 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise BudgetExceeded(f"{what}: time budget spent")
            breaker = _before()
            self.meter.api_calls += 1
            try:
                async with asyncio.timeout(remaining):
                    with translate(what):
                        try:
                            res = await self._http.get(url, timeout=max(self.request_timeout, 60.0))
                        except httpx.TransportError as exc:
                            if breaker is not None:
                                breaker.failure(type(exc).__name__)
                            raise
                if breaker is not None:
                    breaker.success()
                if res.status_code == 200:
                    return res.content
                raise from_status(res.status_code, None, res.headers, what=what)
            except CircuitOpen:
                raise
            except UnavailableError:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 10.0))
            except TimeoutError as exc:
                raise BudgetExceeded(f"{what}: time budget spent downloading") from exc
