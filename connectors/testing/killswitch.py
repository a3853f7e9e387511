"""A TCP proxy in front of a fake IdP that can kill it, as a host dies mid-read.

Until `kill()`, bytes are piped both ways between each client connection and the fake's
uvicorn server. `kill()` resets every open connection (both sides) and from then on every new
connection is accepted and reset at once (a TCP RST: the client sees "connection reset"), and
counted in the `FaultPlan`'s `after_death`. The fake behind it keeps running, unreachable.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

from connectors.testing.faults import FaultPlan
from connectors.testing.server import free_port

_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
    writer.transport.abort()


class KillSwitch:
    """Serves on 127.0.0.1 (`url`) and forwards to `upstream_port` until killed."""

    def __init__(self, upstream_port: int, faults: FaultPlan, *, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.upstream_port = host, free_port(host), upstream_port
        self.faults = faults
        self.dead = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name=f"killswitch:{self.port}"
        )
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> KillSwitch:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, self.port), self._loop
        )
        self._server = fut.result(timeout=10)
        self.faults.on_death(self.kill)
        return self

    def kill(self) -> None:
        """Reset every connection and refuse to forward from now on; returns once done."""
        if threading.current_thread() is self._thread:
            self._kill()
            return
        asyncio.run_coroutine_threadsafe(self._akill(), self._loop).result(timeout=10)

    async def _akill(self) -> None:
        self._kill()

    def _kill(self) -> None:
        self.dead = True
        for w in list(self._conns):
            _reset(w)
        self._conns.clear()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            self._kill()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.dead:
            self.faults.count_after_death()
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            _reset(writer)
            return
        self._conns.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._conns.discard(writer)
        self._conns.discard(up_writer)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while not self.dead:
                data = await src.read(65536)
                if not data or self.dead:
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self.dead:
                try:
                    dst.close()
                except Exception:
                    pass
