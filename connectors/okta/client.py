"""Okta SDK setup and the one request path every read goes through.

Layer choice (measured, see `bench/snapshot_okta.py` and the report): the SDK's generated
methods (`client.list_group_users(...)`) validate arguments with pydantic and deserialise every
page into `User` models, which dominates a large read (member pages carry whole user objects).
This module keeps every SDK layer *below* the models:

- `ApiClient.param_serialize` builds the URL (path templating and percent-encoding, query
  encoding);
- `RequestExecutor.create_request` adds the SDK's default headers (`Authorization: SSWS <token>`,
  User-Agent) or, in private-key mode, the OAuth access token (JWT client assertion to
  `{org}/oauth2/v1/token`, cached and renewed by the SDK);
- `RequestExecutor.fire_request_helper` sends it through the SDK's `HTTPClient` (aiohttp) and
  performs the SDK's rate-limit retry (waits `X-Rate-Limit-Reset - Date + 1` s, adds the
  `X-Okta-Retry-For/-Count` headers);

and reads the answer as text (parsed once with orjson by the caller), with every `Link` header
value (the SDK's `ApiResponse` collapses repeated headers into a dict that keeps only the last).

Two SDK behaviours are narrowed in a `RequestExecutor` subclass (an extension point the SDK
offers through the `requestExecutor` setting): its rate-limit retry applies only to 429 (the
SDK also treats 503/504 as rate limits and would sleep until the rate-limit window resets,
up to a minute, on any 5xx), and its waits are refused past the snapshot's time budget.
Other transient failures (5xx, timeouts, resets) are retried here with exponential backoff.

Configuration is passed explicitly; the SDK's merging of `OKTA_*` environment variables and
`~/.okta/okta.yaml` / `./okta.yaml` is switched off while the client is built.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from okta.client import Client as OktaClient
from okta.config import config_setter as _config_setter
from okta.http_client import HTTPClient
from okta.jwt import JWT
from okta.logger import LOG_FORMAT
from okta.request_executor import RequestExecutor

from connectors.base import (
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    ThrottledError,
    UnavailableError,
    is_loopback,
)
from connectors.breaker import current as current_breaker
from connectors.budget import Deadline, Meter
from connectors.okta.errors import from_sdk_error, from_status, redact, translate

_ENV_LOCK = threading.Lock()
_NOWHERE = os.path.join(os.sep, "nonexistent", "syncd-okta", "okta.yaml")


@dataclass(frozen=True, slots=True)
class Page:
    """One successful answer: status, body text, every `Link` header value, server time (s)."""

    status: int
    body: str
    links: tuple[str, ...]
    server_time: float | None


@dataclass(frozen=True)
class Credentials:
    """Either an API token, or an OAuth service app (client id + private key PEM/JWK)."""

    token: str | None = None
    client_id: str | None = None
    private_key: str | None = None
    scopes: tuple[str, ...] = ("okta.users.read", "okta.groups.read", "okta.logs.read")
    kid: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def check(self) -> None:
        if self.token and (self.client_id or self.private_key):
            raise ConfigError("give either an API token or client_id + private_key, not both")
        if not self.token and not (self.client_id and self.private_key):
            raise ConfigError("Okta needs an API token, or client_id + private_key (OAuth)")
        if not self.token and not self.scopes:
            raise ConfigError("OAuth mode needs at least one scope")


@contextmanager
def _isolated_sdk_settings(disable_https_check: bool) -> Iterator[None]:
    """Build the SDK client from our settings only: hide OKTA_* variables and okta.yaml files.

    The SDK's https check can only be lifted through its environment or YAML settings; it is
    lifted here for loopback http URLs (already vetted by `check_base_url`), never otherwise.
    """
    with _ENV_LOCK:
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OKTA_")}
        paths = (_config_setter._GLOBAL_YAML_PATH, _config_setter._LOCAL_YAML_PATH)
        _config_setter._GLOBAL_YAML_PATH = _config_setter._LOCAL_YAML_PATH = _NOWHERE
        if disable_https_check:
            os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
        try:
            yield
        finally:
            os.environ.pop("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", None)
            os.environ.update(saved)
            _config_setter._GLOBAL_YAML_PATH, _config_setter._LOCAL_YAML_PATH = paths


def _make_http_client(meter: Meter, loopback: bool) -> type[HTTPClient]:
    class MeteredHTTPClient(HTTPClient):
        """The SDK's aiohttp transport, counting every call; no env proxy for loopback."""

        def __init__(self, http_config: dict[str, Any]) -> None:
            super().__init__(http_config)
            if loopback:
                self._proxy = None

        async def send_request(self, request: dict[str, Any]) -> Any:
            breaker = current_breaker()
            if breaker is not None:
                breaker.before()  # raised out of the SDK; `translate` passes it through
            meter.api_calls += 1
            out = await super().send_request(request)
            if breaker is not None:
                if out[1] is None:  # no HTTP answer: refused, reset, closed, timed out
                    breaker.failure(type(out[3]).__name__)
                else:
                    breaker.success()
            if out[1] is not None and out[1].status == 429:
                meter.throttles += 1
            return out

    return MeteredHTTPClient


#: The deadline of the read running in this task (each asyncio task has its own context).
_DEADLINE: ContextVar[Deadline | None] = ContextVar("okta_deadline", default=None)
#: The circuit breaker of the snapshot running in this context (set before its tasks start).
class _Executor(RequestExecutor):
    """RequestExecutor with the SDK's rate-limit retry kept for 429 only, bounded by the
    current task's deadline, and without the response cache (disabled anyway; its check
    JSON-parses every GET page)."""

    async def fire_request(self, request: dict[str, Any]) -> Any:
        return await self.fire_request_helper(request, 0, time.time())

    def is_retryable_status(self, status: Any) -> bool:
        return status == 429

    async def pause_for_backoff(self, backoff_time: Any) -> None:
        wait = float(backoff_time)
        deadline = _DEADLINE.get()
        if deadline is not None and wait >= deadline.remaining():
            err = ThrottledError(f"rate limited; Okta asks to wait {wait:.0f} s, past the budget")
            err.retry_after = wait  # type: ignore[attr-defined]
            raise err
        await asyncio.sleep(wait)


class OktaApi:
    """One org's SDK client plus the request policy (retries, budget, concurrency of sockets).

    Bound to the event loop it was first used in; a new loop gets a fresh SDK client.
    """

    def __init__(self, *, base_url: str, credentials: Credentials, request_timeout: float,
                 max_retries: int, connections: int) -> None:
        credentials.check()
        self.base_url = base_url
        self.creds = credentials
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.connections = connections
        self.meter = Meter()
        self.loopback = is_loopback(urlsplit(base_url).hostname or "")
        self._sdk: OktaClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk = self._build()  # fail fast on settings the SDK refuses

    def _build(self) -> OktaClient:
        c = self.creds
        cfg: dict[str, Any] = {
            "orgUrl": self.base_url,
            "requestTimeout": float(self.request_timeout),
            "rateLimit": {"maxRetries": self.max_retries},
            "cache": {"enabled": False},
            "logging": {"enabled": False},
            "requestExecutor": _Executor,
            "httpClient": _make_http_client(self.meter, self.loopback),
        }
        if c.token:
            cfg.update(authorizationMode="SSWS", token=c.token)
        else:
            cfg.update(authorizationMode="PrivateKey", clientId=c.client_id,
                       privateKey=c.private_key, scopes=list(c.scopes))
            if c.kid:
                cfg["kid"] = c.kid
        plain_http = urlsplit(self.base_url).scheme == "http"
        with translate("Okta client settings", c.token, c.private_key), \
                _isolated_sdk_settings(disable_https_check=plain_http and self.loopback):
            client = OktaClient(cfg)
        _drop_repeated_sdk_handlers()
        if c.private_key:
            with translate("Okta private key", c.private_key):
                try:  # the SDK would find a bad key only at the first token request
                    JWT.get_PEM_JWK(c.private_key)
                except Exception as exc:  # jwcrypto / cryptography raise many kinds
                    raise ConfigError("the private key is not a usable RSA key (PEM or JWK)") \
                        from exc
        return client

    async def _ready(self) -> OktaClient:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._session is None or self._session.closed:
            if self._loop is not None:
                self._sdk = self._build()
            self._loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections), trust_env=False)
            assert self._sdk is not None
            self._sdk.get_request_executor().set_session(self._session)
        assert self._sdk is not None
        return self._sdk

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def url(self, path: str, params: dict[str, Any] | None = None,
            path_params: dict[str, str] | None = None) -> str:
        """Absolute URL for `path` (`{name}` filled, percent-encoded, from `path_params`) and
        query `params`, built by the SDK's serializer."""
        assert self._sdk is not None
        _, url, _, _, _ = self._sdk.param_serialize(
            method="GET", resource_path=path, path_params=path_params,
            query_params=list((params or {}).items()), header_params={},
            auth_settings=["apiToken", "oauth2"])
        return url

    def check_link(self, url: str) -> str:
        """A next link is followed only inside this org: the token is never sent elsewhere."""
        if not url.startswith(self.base_url + "/"):
            raise UnavailableError(redact(f"Okta sent a next link outside the org: {url[:120]}"))
        return url

    async def get(self, url: str, *, what: str, deadline: Deadline,
                  window: bool = False) -> Page:
        """GET `url`, retrying transient failures up to `max_retries` times within `deadline`.

        429s are retried by the SDK (honouring `X-Rate-Limit-Reset`) and not again here;
        5xx, timeouts and resets back off 0.5, 1, 2, … s (±20 %). Raises a `ConnectorError`.
        """
        attempt = 0
        while True:
            try:
                return await self._once(url, what=what, deadline=deadline, window=window)
            except CircuitOpen:
                raise  # the IdP stopped answering: no retry, no wait
            except (UnavailableError, ThrottledError) as exc:
                attempt += 1
                wait = getattr(exc, "retry_after", None)
                sdk_retried = isinstance(exc, ThrottledError) and wait is not None
                if attempt > self.max_retries or (sdk_retried and self.max_retries > 0):
                    raise
                delay = wait if wait is not None else \
                    min(0.5 * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)
                if delay >= deadline.remaining():
                    raise BudgetExceeded(f"{what}: time budget spent while retrying ({exc})") \
                        from exc
                await asyncio.sleep(delay)

    async def _once(self, url: str, *, what: str, deadline: Deadline, window: bool) -> Page:
        sdk = await self._ready()
        executor: _Executor = sdk.get_request_executor()
        _DEADLINE.set(deadline)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise BudgetExceeded(f"{what}: time budget spent")
        try:
            async with asyncio.timeout(remaining):
                with translate(what, self.creds.token, self.creds.private_key):
                    request, err = await executor.create_request(
                        "GET", url, None, {"Accept": "application/json"})
                    if err is not None:
                        raise from_sdk_error(err, None, None, what=f"{what} (OAuth token)",
                                             token_endpoint=True)
                    _, res, body, err = await executor.fire_request(request)
        except TimeoutError as exc:
            raise BudgetExceeded(f"{what}: time budget spent waiting for Okta") from exc
        if err is not None and not (res is not None and res.status == 429):
            raise from_sdk_error(err, res, body, what=what, window=window)
        if res is None:
            raise UnavailableError(f"{what}: no answer")
        if not 200 <= res.status < 300:
            raise from_status(res.status, body, res.headers, what=what, window=window)
        return Page(res.status, body or "", tuple(res.headers.getall("Link", ())),
                    _server_time(res.headers.get("Date")))


def _drop_repeated_sdk_handlers() -> None:
    """Every SDK client adds one more stream handler to the (disabled) SDK logger: keep one."""
    sdk_log = logging.getLogger("okta-sdk-python")
    ours = [h for h in sdk_log.handlers if type(h) is logging.StreamHandler
            and h.formatter is not None and h.formatter._fmt == LOG_FORMAT]
    for h in ours[1:]:
        sdk_log.removeHandler(h)


def _server_time(date: str | None) -> float | None:
    if not date:
        return None
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


__all__ = ["ConnectorError", "Credentials", "OktaApi", "Page"]
