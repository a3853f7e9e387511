"""The httpx transport under auth0-python's `AsyncHttpClient`: httpx's own, with one cost removed.

Measured (cProfile, `bench/snapshot_auth0.py`): before every request httpcore's pool asks each
idle connection `get_extra_info("is_readable")`, and the anyio backend answers that by building
the stream's whole `extra_attributes` mapping (a `getpeername` syscall and a dozen closures)
to fetch the raw socket — about 1.7 ms of CPU per request with six pooled connections, the
largest share of the connector's overhead over a raw aiohttp reader. The streams here look the
raw socket up once per connection and answer `is_readable` / `socket` from it; everything else
(TLS, timeouts, errors, proxies) is httpcore's anyio backend unchanged.
"""

from __future__ import annotations

import ssl
import typing

import anyio
import httpx
from httpcore import AsyncNetworkStream
from httpcore._backends.anyio import AnyIOBackend, AnyIOStream
from httpcore._utils import is_socket_readable


class _Stream(AnyIOStream):
    def __init__(self, inner: AnyIOStream) -> None:
        super().__init__(inner._stream)
        self._sock = inner._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return is_socket_readable(self._sock)
        if info == "socket":
            return self._sock
        return super().get_extra_info(info)

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        tls = await super().start_tls(ssl_context, server_hostname, timeout)
        return _Stream(tls) if isinstance(tls, AnyIOStream) else tls


class _Backend(AnyIOBackend):
    async def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> AsyncNetworkStream:
        stream = await super().connect_tcp(*args, **kwargs)
        return _Stream(stream) if isinstance(stream, AnyIOStream) else stream


def transport(*, connections: int) -> httpx.AsyncHTTPTransport:
    """httpx's transport with at most `connections` pooled connections, on the backend above."""
    t = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    )
    pool = getattr(t, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):  # else: httpx's default backend
        pool._network_backend = _Backend()
    return t
