"""The wire under auth0-python's `AsyncHttpClient`: an httpx transport that sends through aiohttp.

auth0-python's request layer (URL building, query encoding, its headers and the bearer token
from the token supplier) runs on an `httpx.AsyncClient`, which takes any transport. Measured
with `bench/snapshot_auth0.py` (10k users, 1k roles, 100k memberships, 1,016 requests): with
httpx's own transport (httpcore over anyio) the client spent ~2.7 s of CPU against ~0.7 s for a
raw aiohttp reader of the same pages, mostly in httpcore's connection pool and anyio's stream
attributes; sending through one aiohttp session keeps everything auth0-python does and removes
most of that (figures in docs/benchmarks.md).

Errors keep httpx's types (`ConnectError`, `ReadTimeout`, `RemoteProtocolError`), so the one
error boundary (`connectors.auth0.errors`) and the circuit breaker see what they expect.
Redirects are not followed; the body is read whole (Management API pages are small).
"""

from __future__ import annotations

import aiohttp
import httpx

_DROP = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends every request through one aiohttp session (at most `connections` sockets)."""

    def __init__(self, *, connections: int, trust_env: bool) -> None:
        self.connections, self.trust_env = connections, trust_env
        self._session: aiohttp.ClientSession | None = None

    def _ready(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                trust_env=self.trust_env,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        t = aiohttp.ClientTimeout(sock_connect=timeout.get("connect"), sock_read=timeout.get("read"))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        body = await request.aread()
        try:
            async with self._ready().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=t,
                allow_redirects=False,
            ) as r:
                content = await r.read()
                kept = [(k, v) for k, v in r.raw_headers if k.decode("latin-1").lower() not in _DROP]
                return httpx.Response(r.status, headers=kept, content=content, request=request)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(f"no answer in time: {exc}", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


def transport(*, connections: int, trust_env: bool = True) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(connections=connections, trust_env=trust_env)
