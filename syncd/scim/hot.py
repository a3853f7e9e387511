"""`HotPaths`: the SCIM app router's entry, which sends a request for an exact collection
path (`GET|POST /Users`, `GET|POST /Groups`) straight to its route's handler.

FastAPI matches a request by walking the included routers and trying each route's pattern in
turn (about a tenth of a filter GET's CPU); the provisioning traffic is almost all on these
paths, and a path without parameters needs no pattern: a dict lookup by (method, path) finds
its route.

Invariants:
- only routes whose handler `ScimRoute` resolves by hand are listed, and each is called the
  way the router would call it: inside the same exception wrapper (the app's one error funnel,
  `errors.install`), with the same scope keys (`route`, `endpoint`, `path_params`);
- anything else (other methods, other paths, a trailing slash, a path under a root_path the
  table does not know) goes to the router unchanged, so its answer (404, 405, redirect) is
  the router's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import get_route_path, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.scim.route import ScimRoute


class HotPaths:
    """ASGI: (method, route path) → the hand-resolved route; else `fallback`."""

    def __init__(self, fallback: ASGIApp, table: dict[tuple[str, str], tuple[ScimRoute, ASGIApp]]) -> None:
        self.fallback, self.table = fallback, table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hit = self.table.get((scope["method"], get_route_path(scope)))
            if hit is not None:
                route, app = hit
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await app(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


def table(prefix: str, *routers: APIRouter) -> dict[tuple[str, str], tuple[ScimRoute, Any]]:
    """The exact-path routes of `routers` (as included under `prefix`) with a hand handler."""
    out: dict[tuple[str, str], tuple[ScimRoute, Any]] = {}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, ScimRoute) or route.param_convertors:
                continue
            handler = route.hand_handler()
            if handler is None:
                continue
            app = request_response(handler)
            for method in route.methods or ():
                out[(method, prefix + route.path)] = (route, app)
    return out


def install(app: Any, prefix: str, *routers: APIRouter) -> None:
    """Put `HotPaths` in front of `app`'s router (inside its exception middleware)."""
    app.router.middleware_stack = HotPaths(app.router.middleware_stack, table(prefix, *routers))
