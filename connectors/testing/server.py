"""Run an ASGI app under a real uvicorn server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """A uvicorn server in a daemon thread; `url` is its base URL once `start` returns."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None,
                 **config: Any) -> None:
        self.host, self.port = host, port or free_port(host)
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "off")
        config.setdefault("timeout_graceful_shutdown", 1)
        self.server = uvicorn.Server(uvicorn.Config(app, host=self.host, port=self.port, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"uvicorn:{self.port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve(app: Any, **kw: Any) -> Iterator[ServerThread]:
    """Context manager: a started `ServerThread` for `app`, stopped on exit."""
    srv = ServerThread(app, **kw).start()
    try:
        yield srv
    finally:
        srv.stop()
