"""Serving the SCIM app under uvicorn on a socket bound by the caller: in this process, or in
`workers` processes that share the socket (the kernel hands each connection to one of them).

Workers are spawned (not forked) by uvicorn's supervisor, which restarts one that dies and, on
SIGINT/SIGTERM, stops them all gracefully and returns. Each worker builds its own app and its
own engine from an `AppFactory` (a picklable value), so no database connection crosses a
process boundary. On SQLite the workers' writers queue on a file lock next to the database
(`store.writer_queue`), and reads run in parallel (WAL); an in-memory SQLite database is one
process's own, so callers refuse `workers > 1` there (`check_workers`). What a worker caches
stays correct across processes: a token revoked elsewhere is refused within
`tokens.CACHE_TTL_S`, as for a revocation by the CLI, and feed readers poll for changes that
other processes committed (`feed.signal`).

Used by `syncd serve`; the daemon may call `serve` the same way for its SCIM listener.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from syncd.heap import freeze_startup_heap

#: Idle keep-alive (seconds): longer than the 60 s idle timeout of common load balancers, so
#: the balancer, not syncd, closes idle connections (no request lost on a race).
KEEP_ALIVE_S = 75
#: Time in-flight requests get to finish on SIGTERM (seconds).
GRACEFUL_S = 10
#: How long (seconds) a worker may take to answer the supervisor's health ping, starting up
#: included (imports alone take seconds on a busy machine) before it is replaced.
WORKER_HEALTHCHECK_S = 60


class Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM end it normally (exit 0) once in-flight
    requests finished; uvicorn would re-raise the signal after the graceful shutdown, so the
    process would die of it (status -15) instead of exiting 0."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass(frozen=True)
class AppFactory:
    """Builds the SCIM app over a new engine of `store_url`; called once in each worker."""

    store_url: str
    public_url: str
    max_body_bytes: int

    def __call__(self) -> ASGIApp:
        from syncd.daemon.health import with_healthz
        from syncd.scim.app import create_app
        from syncd.store.engine import make_engine

        engine = make_engine(self.store_url)
        app = create_app(engine, public_url=self.public_url, max_body_bytes=self.max_body_bytes)
        served = with_healthz(app)
        freeze_startup_heap()  # each worker builds its app here, before its first request
        return served


def check_workers(workers: int, store_url: str) -> str | None:
    """Why `workers` processes cannot serve this store, or None when they can."""
    if workers > 1 and store_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        db = make_url(store_url).database or ""
        if not db or db == ":memory:" or "mode=memory" in db:
            return (
                f"[server] workers = {workers} needs a store the workers can share: an in-memory "
                "SQLite database belongs to one process"
            )
    return None


def serve(
    app: ASGIApp | AppFactory, sock: socket.socket, *, workers: int = 1, log_level: str = "info"
) -> bool:
    """Serve on `sock` until SIGINT/SIGTERM; True when it started serving. With `workers` > 1,
    `app` must be an AppFactory (each worker builds its own)."""
    options: dict[str, Any] = {
        "log_level": log_level,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": GRACEFUL_S,
        "server_header": False,
        "proxy_headers": True,
        "lifespan": "off",
    }
    if workers > 1:
        if not isinstance(app, AppFactory):
            raise TypeError("several workers need an AppFactory, not an app")
        from uvicorn.config import STARTUP_FAILURE
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config(
            app, factory=True, workers=workers, timeout_worker_healthcheck=WORKER_HEALTHCHECK_S, **options
        )
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()  # returns once a worker failed to start, or on SIGINT/SIGTERM
        return all(p.exitcode != STARTUP_FAILURE for p in supervisor.processes)
    if isinstance(app, AppFactory):
        app = app()  # freezes its startup heap
    else:
        freeze_startup_heap()
    server = Server(uvicorn.Config(app, **options))
    server.run(sockets=[sock])
    return bool(server.started)
