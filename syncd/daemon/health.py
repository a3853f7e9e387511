"""`/healthz` (the process answers), `/readyz` (store reachable, schema current, not stopping)
and `/metrics` (Prometheus text format). None needs a token: they hold no tenant data.

`probes` (healthz, readyz) is served on both listeners; `metrics_router` on the admin
listener only (metric labels name directories and targets)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.store.engine import StoreError, schema_status

probes = APIRouter(tags=["Health"])
metrics_router = APIRouter(tags=["Health"])


@probes.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz", summary="Readiness: the store is reachable and its schema current")
def readyz(request: Request) -> Any:
    state = request.app.state.daemon
    if state.stopping:
        return JSONResponse({"status": "stopping"}, status_code=503)
    try:
        current, head = schema_status(state.engine)
    except StoreError as exc:
        return JSONResponse({"status": "store unreachable", "detail": str(exc)}, status_code=503)
    except Exception as exc:  # a driver error schema_status does not map
        return JSONResponse({"status": "store error", "detail": type(exc).__name__}, status_code=503)
    if current != head:
        return JSONResponse(
            {
                "status": "schema not current",
                "current": current,
                "head": head,
                "fix": "run `syncd db upgrade`",
            },
            status_code=503,
        )
    return {"status": "ready", "schema": current}


@metrics_router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    return Response(request.app.state.daemon.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def with_healthz(app: ASGIApp) -> ASGIApp:
    """`app`, plus `GET /healthz` answered before it (what `syncd serve` adds to SCIM)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") == "/healthz"
            and scope.get("method") in ("GET", "HEAD")
        ):
            await JSONResponse({"status": "ok"})(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped
