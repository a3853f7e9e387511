"""msgraph-sdk setup and the one way the connector sends a request.

Layers kept from the SDK: `GraphServiceClient` request builders (URL templates, query
parameters; next/delta links are followed as msgraph-core's `PageIterator` follows them, see
`paging`), `GraphRequestAdapter`, kiota's
bearer-token authentication with the SDK's `AzureIdentityAccessTokenProvider` checks
(https-only except loopback; each origin's token reused until shortly before it expires,
`connectors.graph.token`), and the kiota + Graph middleware that acts on this connector's requests, in the
SDK's default order: redirects, retry on 429/503/504 honouring `Retry-After`, query
parameter name decoding, user agent, Graph telemetry headers (`MIDDLEWARE`). Layers skipped:
model deserialisation. Responses are read with `send_primitive_async(info, "bytes", …)` and
parsed with orjson, because building SDK model objects costs ~9 ms of CPU per directory
object (hours for a large tenant) while the bytes path costs microseconds. The default
chain's other three handlers are left out because they never act here and cost ~0.1 ms of
CPU per request (a tenth of the raw HTTP cost): URL replace (rewrites only
`/users/me-token-to-replace`, a path the connector never asks for) and the header and body
inspection handlers (they act only when a request carries an inspection option; none does).

Every HTTP attempt (retries included) passes `CountingTransport`, which adds to the
`FetchStats` of the current operation (a context variable, so concurrent tasks of one
snapshot share it). An SDK client is bound to one event loop: `GraphApi` rebuilds it when it
is used from a new loop.
"""

from __future__ import annotations

import asyncio
import random
from contextvars import ContextVar
from typing import Any

import httpx
import orjson
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import (
    ParametersNameDecodingHandler,
    RedirectHandler,
    RetryHandler,
    UserAgentHandler,
)
from kiota_http.middleware.middleware import BaseMiddleware
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph._version import VERSION as MSGRAPH_VERSION
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import APIVersion, GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from connectors.base import BadDataError, BudgetExceeded, CircuitOpen, UnavailableError
from connectors.breaker import Breaker
from connectors.graph.errors import translate
from connectors.graph.token import CachingAuthenticationProvider
from syncd.reconcile.snapshot import FetchStats

#: FetchStats of the operation running in this context (set by the connector per call).
CURRENT_STATS: ContextVar[FetchStats | None] = ContextVar("graph_fetch_stats", default=None)
#: The circuit breaker of the snapshot running in this context (None: no breaker).
CURRENT_BREAKER: ContextVar[Breaker | None] = ContextVar("graph_breaker", default=None)

ERROR_MAP: dict[str, Any] = {"XXX": ODataError}
#: statuses kiota's RetryHandler already retried; retrying them again would square the count
_KIOTA_RETRIED = {429, 503, 504}


class CountingTransport(httpx.AsyncBaseTransport):
    """Innermost transport: counts every HTTP attempt and every throttled answer, and feeds the
    current breaker (an attempt without an HTTP answer is a connection failure)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        stats, breaker = CURRENT_STATS.get(), CURRENT_BREAKER.get()
        if breaker is not None:
            breaker.before()
        if stats is not None:
            stats.api_calls += 1
        try:
            resp = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            if breaker is not None:
                breaker.failure(type(exc).__name__)
            raise
        if breaker is not None:
            breaker.success()
        if stats is not None and resp.status_code == 429:
            stats.throttles += 1
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()


class GraphApi:
    """One SDK client (per event loop) plus `get_json`, the retrying, budgeted request.

    Units: `request_timeout` seconds per HTTP attempt; `retry_delay` seconds added by kiota to
    each computed backoff when no `Retry-After` is sent; deadlines are `loop.time()` values.
    """

    def __init__(self, *, base_url: str, credential: Any, scopes: list[str], max_retries: int,
                 request_timeout: float, concurrency: int, retry_delay: float = 0.0) -> None:
        self.base_url = base_url
        self._credential, self._scopes = credential, scopes
        self.max_retries, self.request_timeout = max_retries, request_timeout
        self._concurrency, self._retry_delay = concurrency, retry_delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._client: GraphServiceClient | None = None
        self._adapter: GraphRequestAdapter | None = None

    @property
    def client(self) -> GraphServiceClient:
        """The SDK client for the running event loop (built on first use in that loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._build(loop)
        assert self._client is not None
        return self._client

    def _build(self, loop: asyncio.AbstractEventLoop) -> None:
        limits = httpx.Limits(max_connections=self._concurrency + 4,
                              max_keepalive_connections=self._concurrency + 4)
        transport = CountingTransport(httpx.AsyncHTTPTransport(limits=limits, retries=0))
        http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(self.request_timeout),
                                 follow_redirects=False)
        http = GraphClientFactory.create_with_custom_middleware(self._middleware(), client=http)
        auth = CachingAuthenticationProvider(self._credential, scopes=self._scopes)
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.base_url  # after the client: httpx would add a trailing slash
        self._loop, self._http, self._adapter = loop, http, adapter
        self._client = GraphServiceClient(request_adapter=adapter)

    def _middleware(self) -> list[BaseMiddleware]:
        """The middleware chain, outermost first (see the module docstring)."""
        return [
            RedirectHandler(),
            RetryHandler(RetryHandlerOption(delay=self._retry_delay, max_retries=self.max_retries)),
            ParametersNameDecodingHandler(),
            UserAgentHandler(),
            GraphTelemetryHandler(GraphTelemetryHandlerOption(api_version=APIVersion.v1,
                                                              sdk_version=MSGRAPH_VERSION)),
        ]

    async def get_json(self, info: RequestInformation, *, what: str, deadline: float) -> dict[str, Any]:
        """Send `info` and return the JSON object answered.

        kiota retries 429/503/504 (honouring `Retry-After`); this adds retries, up to
        `max_retries`, for what kiota does not retry: other 5xx, timeouts, broken connections
        and unparseable bodies. Raises a `connectors.base` error; `BudgetExceeded` once the
        deadline passes (checked before each attempt and enforced during it).
        """
        client = self.client  # binds to this loop
        assert self._adapter is not None and client is not None
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BudgetExceeded(f"{what}: time budget exhausted")
            try:
                async with asyncio.timeout(remaining):
                    with translate(what):
                        raw = await self._adapter.send_primitive_async(info, "bytes", ERROR_MAP)
                        data = orjson.loads(raw or b"null")
                        if not isinstance(data, dict):
                            raise BadDataError(f"{what}: answer is not a JSON object")
            except TimeoutError as exc:
                raise BudgetExceeded(f"{what}: time budget exhausted") from exc
            except CircuitOpen:
                raise  # the IdP stopped answering: no retry, no wait
            except (UnavailableError, BadDataError) as exc:
                status = getattr(exc.__cause__, "response_status_code", None)
                if attempt >= self.max_retries or status in _KIOTA_RETRIED:
                    raise
                attempt += 1
                pause = 0.25 * 2 ** (attempt - 1) + random.random() * 0.25
                if loop.time() + pause >= deadline:
                    raise BudgetExceeded(f"{what}: time budget exhausted while retrying") from exc
                await asyncio.sleep(pause)
                continue
            stats = CURRENT_STATS.get()
            if stats is not None:
                stats.pages += 1
            return data

    async def aclose(self) -> None:
        """Close the HTTP client if its loop is the running one (a dead loop's sockets are gone)."""
        http, self._http, self._client, self._adapter = self._http, None, None, None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if http is not None and self._loop is running:
            await http.aclose()
        self._loop = None
