"""The socket layer under python-keycloak's connection manager: aiohttp in place of httpx.

`KeycloakOpenIDConnection` (and the `KeycloakOpenID` it gets tokens with) keep everything that
makes them the SDK: the client credentials grant, the `Authorization` header, renewal at 90 %
of the token's lifetime and once more on a 401, URL joining and parameter filtering. They send
through `self.async_s`, an `httpx.AsyncClient`, calling only `get(url, params=, headers=,
timeout=)`, `request(method=, url=, params=, data=|content=, headers=, timeout=)` and
`aclose()`, and reading `status_code`, `content`, `headers` and `json()` of the answer.
`AiohttpClient` offers exactly that over one `aiohttp.ClientSession`.

Why (measured, `bench/snapshot_keycloak.py`): httpx costs ~1.6 ms of CPU per request against
~0.5 ms for aiohttp on this workload, and a realm read is thousands of small pages, so the
httpx transport alone made a snapshot ~3 times its aiohttp fetch floor. Exceptions raised here
(aiohttp errors, timeouts, `CircuitOpen` from the breaker) are wrapped by the SDK into
`KeycloakConnectionError` as httpx's were; `errors` unwraps them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy


class Reply:
    """The part of `httpx.Response` the SDK and this package read."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, content: bytes, headers: CIMultiDictProxy[str]) -> None:
        self.status_code, self.content, self.headers = status_code, content, headers

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


class AiohttpClient:
    """An `httpx.AsyncClient` stand-in for python-keycloak's `ConnectionManager.async_s`.

    `before` is awaited ahead of every request (the meter and the breaker; it may raise to
    refuse sending), `after` with each answer's status. The session is created on first use, in
    the running loop."""

    def __init__(
        self,
        *,
        connections: int,
        trust_env: bool,
        verify: bool,
        before: Callable[[], Awaitable[None]],
        after: Callable[[int], Awaitable[None]],
    ) -> None:
        self.connections, self.trust_env, self.verify = connections, trust_env, verify
        self.before, self.after = before, after
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, ssl=None if self.verify else False),
                trust_env=self.trust_env,
                auto_decompress=True,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        data: Any = None,
        content: str | bytes | None = None,
    ) -> Reply:
        await self.before()
        session = self._open()
        body: Any = (
            content
            if content is not None
            else (
                {k: "" if v is None else str(v) for k, v in data.items()} if isinstance(data, dict) else data
            )
        )
        async with session.request(
            method,
            url,
            params=_params(params),
            headers=dict(headers or {}),
            data=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as r:
            raw = await r.read()
            reply = Reply(r.status, raw, r.headers)
        await self.after(reply.status_code)
        return reply

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        return await self.request("GET", url, params=params, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)  # let the connector's transports close in this loop
        self._session = None
