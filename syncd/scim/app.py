"""The SCIM 2.0 app factory: `create_app(engine, public_url=...)` serves `/scim/v2`.

    /scim/v2/Users[/{id}], /Groups[/{id}]            CRUD + PATCH        (token)
    /scim/v2/Users/.search, /Groups/.search, /.search SearchRequest       (token)
    /scim/v2/ServiceProviderConfig, /ResourceTypes[/{name}], /Schemas[/{id}]
                                                      discovery (no token: RFC 7644 §4 allows it;
                                                      nothing in them is tenant data)
    /scim/v2/openapi.json, /scim/v2/docs              the API description

The app is given its engine (the store) and its public URL; it owns HTTP and SCIM JSON only,
every semantic decision is the service layer's. Other routers (the daemon's admin API) may be
added to the returned app; its error funnel then covers them too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.scim import discovery, errors, hot, openapi, routes_groups, routes_users, search
from syncd.scim.deps import SCIM_PREFIX, Context, ScimContext
from syncd.scim.responses import ScimResponse
from syncd.scim.route import ScimRoute
from syncd.service.errors import NotFound

#: Default request body limit. Entra sends whole membership changes in one group PATCH and
#: Okta may PUT a full group; 10 MiB holds ~100,000 member references, and matches the
#: config default `server.max_body_bytes`.
MAX_BODY_BYTES = 10 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, by Content-Length before reading,
    or while reading a body sent without one (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    exc = errors.BodyTooLarge(self.limit)
                    response = errors.error_response(413, str(exc.detail), headers={"Connection": "close"})
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


def _discovery_router() -> APIRouter:
    router = APIRouter(tags=["Discovery"], route_class=ScimRoute)

    @router.get("/ServiceProviderConfig", summary="What this server supports")
    def service_provider_config(ctx: Context) -> Response:
        return ScimResponse(discovery.service_provider_config(ctx.base))

    @router.get("/ResourceTypes", summary="Resource types")
    def resource_types(ctx: Context) -> Response:
        items = discovery.resource_types(ctx.base)
        return ScimResponse(_list(items))

    @router.get("/ResourceTypes/{name}", summary="One resource type")
    def resource_type(ctx: Context, name: str) -> Response:
        rt = discovery.find_resource_type(name)
        if rt is None:
            raise NotFound(f"ResourceType {name} not found")
        return ScimResponse(discovery.resource_type(rt, ctx.base))

    @router.get("/Schemas", summary="Schemas")
    def schemas(ctx: Context) -> Response:
        return ScimResponse(_list(discovery.schemas(ctx.base)))

    @router.get("/Schemas/{schema_id}", summary="One schema")
    def schema(ctx: Context, schema_id: str) -> Response:
        found = discovery.find_schema(schema_id)
        if found is None:
            raise NotFound(f"Schema {schema_id} not found")
        return ScimResponse(discovery.schema(found, ctx.base))

    return router


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    from syncd.scim.render import list_response

    return list_response(items, len(items), 1)


def create_app(engine: Engine, *, public_url: str, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The SCIM app. `public_url`: the URL clients reach this server at (e.g.
    `https://syncd.example.com`); resource locations are `<public_url>/scim/v2/...`."""
    app = FastAPI(
        title="syncd SCIM 2.0",
        description="Inbound SCIM 2.0 (RFC 7643/7644) for Entra ID, Okta, OneLogin and others.",
        version="2.0",
        openapi_url=f"{SCIM_PREFIX}/openapi.json",
        docs_url=f"{SCIM_PREFIX}/docs",
        redoc_url=None,
        default_response_class=ScimResponse,
    )
    app.state.scim = ScimContext(engine, public_url.rstrip("/") + SCIM_PREFIX, max_body_bytes)
    scim = APIRouter(prefix=SCIM_PREFIX)
    # The router tries routes in this order, and the order changes no answer (`/Users/.search`
    # is POST-only, `/Users/{id}` takes no POST): the provisioning traffic's routes come first.
    scim.include_router(routes_users.router)
    scim.include_router(routes_groups.router)
    scim.include_router(search.router)
    scim.include_router(_discovery_router())
    app.include_router(scim)
    errors.install(app)
    openapi.install(app)
    hot.install(app, SCIM_PREFIX, routes_users.router, routes_groups.router)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
