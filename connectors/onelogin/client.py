"""OneLogin SDK setup, the client-credentials token, and the one request path every read uses.

Layer choice: the SDK (`onelogin` 4.x, OpenAPI-generated, synchronous urllib3) deserialises
every list into pydantic models, validating each user's `state`/`status` against fixed enums
(an unknown code from OneLogin would fail the whole page). Reads here go through the SDK's
`ApiClient.call_api` with no response type: the SDK still builds the URL (path templating,
percent-encoding, query encoding), adds its `Authorization: Bearer <token>` from its
`Configuration` and sends through its urllib3 `RESTClientObject`; the body comes back as text,
parsed once with orjson, with the response headers (the cursor headers live there). The token
comes from the SDK's own `OAuth2Api.generate_token` (`POST /auth/oauth2/v2/token`, client id and
secret as HTTP basic auth, `{"grant_type": "client_credentials"}`).

SDK traps handled: `Configuration.__init__` resets `access_token` to None, so the token is set
after construction; the SDK retries nothing unless `Configuration.retries` is set, and urllib3's
own retries would hide 429s, so urllib3 retries are off (`retries=False`) and retrying is done
here: 429 waits `X-RateLimit-Reset` seconds (refused at once if that is past the time budget),
5xx / timeouts / resets back off 0.5, 1, 2, … s (±20 %), a 401 renews the token once.

Every request of a snapshot (token requests and retries included) passes the run's
`connectors.breaker.Breaker`: once the IdP stopped answering, the read stops within seconds.

The SDK is blocking: each request runs in this client's own thread pool (`connections`
threads, one urllib3 pool of the same size), so `concurrency` requests can be in flight.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3
from onelogin.api.o_auth2_api import OAuth2Api
from onelogin.api_client import ApiClient
from onelogin.configuration import Configuration
from onelogin.exceptions import ApiException
from onelogin.models.generate_token_request import GenerateTokenRequest

from connectors.base import (
    AuthError,
    BudgetExceeded,
    CircuitOpen,
    ThrottledError,
    UnavailableError,
    is_loopback,
)
from connectors.breaker import Breaker
from connectors.breaker import current as current_breaker
from connectors.budget import Deadline, Meter
from connectors.onelogin.errors import from_status, translate

TOKEN_WHAT = "OneLogin token (POST /auth/oauth2/v2/token)"
TOKEN_MARGIN_S = 300.0  # renew a token this long before OneLogin says it expires
T = TypeVar("T")

#: The circuit breaker of the snapshot running in this context (set before its tasks start;
#: tasks copy the context, and `OneLoginApi.get` hands it to the worker thread explicitly).
def _through(breaker: Breaker | None, send: Callable[[], T]) -> T:
    """`send()` guarded by `breaker`: refused once it is open; an HTTP answer of any status is a
    success, no answer at all (refused, reset, timed out) a failure."""
    if breaker is None:
        return send()
    breaker.before()
    try:
        out = send()
    except ApiException:
        breaker.success()
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        breaker.failure(type(exc).__name__)
        raise
    breaker.success()
    return out


@dataclass(frozen=True, slots=True)
class Page:
    """One successful answer: body text and response headers (case-insensitive mapping)."""

    body: str
    headers: Any


def _proxy_for(base_url: str) -> str | None:
    """The proxy from the environment (`HTTPS_PROXY`, `NO_PROXY`, …) for `base_url`, as the
    SDK's urllib3 pool does not read it itself; never for loopback hosts (the test doubles)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if is_loopback(host) or proxy_bypass(host):
        return None
    return getproxies().get(parts.scheme)


class OneLoginApi:
    """One OneLogin account's SDK client plus the request policy (retries, budget, threads)."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        request_timeout: float,
        max_retries: int,
        connections: int,
    ) -> None:
        cfg = Configuration(host=base_url, username=client_id, password=client_secret)
        cfg.retries = False  # urllib3 would retry 5xx/connect errors out of our sight
        cfg.connection_pool_maxsize = connections
        cfg.proxy = _proxy_for(base_url)
        self._secret = client_secret
        self.cfg = cfg
        self.client = ApiClient(cfg)
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.meter = Meter()
        self._pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="onelogin")
        self._token_lock = threading.Lock()
        self._token_expires = 0.0

    # -- token

    def _fetch_token(
        self,
        *,
        force: bool,
        stale: str | None = None,
        breaker: Breaker | None = None,
        timeout: float | None = None,
    ) -> None:
        with self._token_lock:
            if not force and self.cfg.access_token and time.monotonic() < self._token_expires:
                return
            if force and stale is not None and self.cfg.access_token != stale:
                return  # another thread renewed it already
            self.meter.api_calls += 1
            with translate(TOKEN_WHAT, self._secret, token_endpoint=True):
                tok = _through(
                    breaker,
                    lambda: OAuth2Api(self.client).generate_token(
                        GenerateTokenRequest(grant_type="client_credentials"),
                        _request_timeout=timeout or self.request_timeout,
                    ),
                )
            if not tok.access_token:
                raise AuthError("OneLogin token endpoint answered without an access_token")
            self.cfg.access_token = tok.access_token  # after construction: see module doc
            life = float(tok.expires_in or 36000)
            self._token_expires = time.monotonic() + max(life - TOKEN_MARGIN_S, life / 2)

    # -- one request

    def _get_sync(
        self,
        path: str,
        params: list[tuple[str, Any]],
        path_params: dict[str, Any] | None,
        what: str,
        breaker: Breaker | None = None,
        timeout: float | None = None,
    ) -> Page:
        """One GET in the calling (worker) thread; `timeout` (seconds) caps the HTTP try below
        `request_timeout`, so a thread never outlives its caller's budget by much."""
        timeout = min(self.request_timeout, timeout or self.request_timeout)
        self._fetch_token(force=False, breaker=breaker, timeout=max(timeout, 0.1))
        self.meter.api_calls += 1
        used = self.cfg.access_token
        try:
            with translate(what, self._secret, used):
                res = _through(
                    breaker,
                    lambda: self.client.call_api(
                        path,
                        "GET",
                        path_params or {},
                        list(params),
                        {"Accept": "application/json"},
                        response_types_map={},
                        auth_settings=["OAuth2"],
                        _return_http_data_only=False,
                        _preload_content=True,
                        _request_timeout=max(timeout, 0.1),
                    ),
                )
        except ThrottledError:
            self.meter.throttles += 1
            raise
        except AuthError as exc:
            exc.used_token = used  # type: ignore[attr-defined]  # which token was refused
            raise
        if not 200 <= res.status_code < 300:
            raise from_status(res.status_code, res.raw_data, res.headers, what=what)
        return Page(res.raw_data or "", res.headers)

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in this client's worker threads (for reads batched into one thread hop);
        `fn` gets the current snapshot's breaker through `current_breaker()` before the hop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def get(
        self,
        path: str,
        *,
        what: str,
        deadline: Deadline,
        params: list[tuple[str, Any]] | None = None,
        path_params: dict[str, Any] | None = None,
    ) -> Page:
        """GET `path`, retrying transient failures up to `max_retries` times within `deadline`.

        Raises a `ConnectorError`.
        """
        loop = asyncio.get_running_loop()
        breaker = current_breaker()
        attempt = 0
        renewed = False
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise BudgetExceeded(f"{what}: time budget spent")
            fut = loop.run_in_executor(
                self._pool, self._get_sync, path, params or [], path_params, what, breaker, remaining
            )
            try:
                return await asyncio.wait_for(fut, remaining)
            except TimeoutError as exc:
                raise BudgetExceeded(f"{what}: time budget spent waiting for OneLogin") from exc
            except AuthError as exc:
                if renewed or "HTTP 401" not in str(exc) or str(exc).startswith(TOKEN_WHAT):
                    raise
                renewed = True  # an expired or revoked access token: renew once, then give up
                await loop.run_in_executor(
                    self._pool,
                    functools.partial(
                        self._fetch_token, force=True, breaker=breaker, stale=getattr(exc, "used_token", None)
                    ),
                )
            except CircuitOpen:
                raise  # the IdP stopped answering: no retry
            except (UnavailableError, ThrottledError) as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                wait = getattr(exc, "retry_after", None)
                delay = (
                    wait + random.uniform(0, 0.2)
                    if wait is not None
                    else min(0.5 * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)
                )
                if delay >= deadline.remaining():
                    if isinstance(exc, ThrottledError):
                        raise ThrottledError(
                            f"{exc}; OneLogin asks to wait {delay:.0f} s, past the time budget"
                        ) from exc
                    raise BudgetExceeded(f"{what}: time budget spent while retrying ({exc})") from exc
                await asyncio.sleep(delay)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


__all__ = ["OneLoginApi", "Page"]
