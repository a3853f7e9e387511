"""The daemon's two ASGI apps, one a listener, each wrapped in the request-id and metrics
middlewares:

- the SCIM app (`[server] listen`, faces the IdPs): `/scim/v2`, `/healthz`, `/readyz` and
  nothing else: every other path is a 404, whatever token it carries;
- the admin app (`[server] admin_listen`, private): the console at `/` (and `/static`), the
  admin API `/v1` (with `/v1/docs`), `/metrics`, `/healthz`, `/readyz`.

`build_apps` returns both; when the two addresses are equal, `build_shared_app` serves both
on one listener (SCIM paths go to the SCIM app, the rest to the admin app). The SCIM app
(`syncd.scim.create_app`) is mounted as is, so its auth, body limit and error funnel apply to
SCIM paths only; the admin API answers plain JSON errors; the console answers HTML.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.config import Settings
from syncd.daemon import admin, feed_api, health
from syncd.daemon import logging as dlog
from syncd.daemon.login import LoginService
from syncd.daemon.metrics import HttpMetrics, Metrics
from syncd.daemon.runner import Runner
from syncd.daemon.scheduler import Scheduler

log = logging.getLogger("syncd.daemon.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_QUIET = ("/healthz", "/readyz", "/metrics")
#: Seconds between event-loop heartbeats (what the systemd watchdog checks).
BEAT_S = 1.0


@dataclass
class DaemonState:
    engine: Engine
    settings: Callable[[], Settings]
    metrics: Metrics
    runner: Runner
    scheduler: Scheduler
    login: LoginService
    stopping: bool = False
    beat: float = field(default_factory=time.monotonic)

    def loop_alive(self, within: float) -> bool:
        return time.monotonic() - self.beat < within


class RequestContext:
    """ASGI middleware: a request id (the client's `X-Request-ID` if sane, else a new one) bound
    to every log line of the request and echoed in the response; one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", ())).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        t0 = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        with dlog.bind(request_id=rid, run_id=None):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                path = scope.get("path", "")
                log.log(
                    logging.DEBUG if path in _QUIET else logging.INFO,
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "ms": round((time.perf_counter() - t0) * 1000, 2),
                    },
                )


def _heartbeat_lifespan(state: DaemonState) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def heartbeat() -> None:
            while True:
                state.beat = time.monotonic()
                await asyncio.sleep(BEAT_S)

        task = asyncio.create_task(heartbeat())
        try:
            yield
        finally:
            task.cancel()

    return lifespan


def _scim_app(state: DaemonState, *, public_url: str, max_body_bytes: int) -> FastAPI:
    from syncd.scim import create_app

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.daemon = state
    app.include_router(health.probes)
    app.mount("/", create_app(state.engine, public_url=public_url, max_body_bytes=max_body_bytes))
    return app


def _admin_app(state: DaemonState) -> FastAPI:
    from syncd.console.app import build_console

    app = FastAPI(
        title="syncd daemon",
        description="Admin API, health and metrics of the syncd daemon (the admin listener).",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=_heartbeat_lifespan(state),
    )
    app.state.daemon = state
    app.include_router(health.probes)
    app.include_router(health.metrics_router)
    app.include_router(admin.router)
    app.include_router(feed_api.router)
    app.mount("/", build_console(state))
    return app


@dataclass(frozen=True)
class Apps:
    """The SCIM listener's app and the admin listener's app, each ready to serve."""

    scim: ASGIApp
    admin: ASGIApp


def _wrap(app: ASGIApp, state: DaemonState) -> ASGIApp:
    return RequestContext(HttpMetrics(app, state.metrics))


def build_apps(state: DaemonState, *, public_url: str, max_body_bytes: int) -> Apps:
    """The two listeners' apps. Only the admin app has a lifespan (the event-loop heartbeat)."""
    scim = _scim_app(state, public_url=public_url, max_body_bytes=max_body_bytes)
    return Apps(scim=_wrap(scim, state), admin=_wrap(_admin_app(state), state))


class _ByPath:
    """ASGI: `/scim/...` to the SCIM app, everything else (and lifespan) to the admin app."""

    def __init__(self, scim: ASGIApp, admin: ASGIApp) -> None:
        self.scim, self.admin = scim, admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        target = self.scim if path == "/scim" or path.startswith("/scim/") else self.admin
        await target(scope, receive, send)


def build_shared_app(state: DaemonState, *, public_url: str, max_body_bytes: int) -> ASGIApp:
    """One app for `listen == admin_listen`: SCIM, the console and the admin API together."""
    scim = _scim_app(state, public_url=public_url, max_body_bytes=max_body_bytes)
    return _wrap(_ByPath(scim, _admin_app(state)), state)


def build_app(state: DaemonState, *, public_url: str, max_body_bytes: int) -> ASGIApp:
    """Every path on one app (the shared-listener layout); tests of the admin API use it."""
    return build_shared_app(state, public_url=public_url, max_body_bytes=max_body_bytes)
