"""`ScimRoute`: the route class of the SCIM resource routes, which resolves an endpoint's
inputs by hand instead of through FastAPI's dependency solver.

The SCIM endpoints take their inputs from a small fixed vocabulary (`deps.Caller`, `Context`,
`Body`, `ListQuery`, `ShapeQuery`, `IfMatch`, `IfNoneMatch`, and `str` path parameters).
FastAPI's generic solver costs about a third of a cheap request's CPU (it validates every
parameter through pydantic and walks the dependency tree on each call); a resolver per
parameter, built once from the endpoint's signature, does the same work directly.

Invariants, the same as under FastAPI's solver:
- parameters are resolved in the endpoint's order, so `caller` (listed first) refuses a
  request without a valid token (401) before its body is read;
- query parameters and headers are read exactly as FastAPI reads a `str | None` parameter
  (`QueryParams.get`: the last of repeated names; `Headers.get`: the first);
- every exception a resolver or the endpoint raises reaches the app's one error funnel
  (`errors.install`), because the handler runs inside the route's exception wrapper;
- a sync endpoint runs in the threadpool, so the event loop never waits on the store; an async
  endpoint is awaited, and awaits the store itself (`ScimContext.on_loop`), calls it on the
  loop's thread where it cannot wait on another writer (`ScimContext.inline`), or awaits the
  threadpool.

The OpenAPI description still comes from the endpoint's signature. An endpoint with any other
kind of parameter is handled by FastAPI's own solver (`APIRoute.get_route_handler`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from syncd.scim import deps

Resolver = Callable[[Request], Awaitable[Any]]


async def _context(request: Request) -> Any:
    return request.app.state.scim


async def _caller(request: Request) -> Any:
    return await deps.caller(request.app.state.scim, request.headers.get("authorization"))


async def _body(request: Request) -> Any:
    return await deps.json_body(request)


async def _list_query(request: Request) -> Any:
    q = request.query_params
    return await deps.list_query(
        filter=q.get("filter"),
        start_index=q.get("startIndex"),
        count=q.get("count"),
        attributes=q.get("attributes"),
        excluded=q.get("excludedAttributes"),
    )


async def _shape(request: Request) -> Any:
    q = request.query_params
    return deps.Shape(q.get("attributes"), q.get("excludedAttributes"))


def _header(name: str) -> Resolver:
    async def resolve(request: Request) -> Any:
        return request.headers.get(name)

    return resolve


def _path(name: str) -> Resolver:
    async def resolve(request: Request) -> Any:
        return request.path_params[name]

    return resolve


#: The annotations the hand resolver knows, each with its resolver.
_BY_ANNOTATION: dict[Any, Resolver] = {
    deps.Context: _context,
    deps.Caller: _caller,
    deps.Body: _body,
    deps.ListQuery: _list_query,
    deps.ShapeQuery: _shape,
    deps.IfMatch: _header("if-match"),
    deps.IfNoneMatch: _header("if-none-match"),
}


def resolvers(endpoint: Callable[..., Any], path_params: set[str]) -> list[tuple[str, Resolver]] | None:
    """(parameter name, resolver) for each parameter of `endpoint` in order, or None when one
    of them is outside the hand resolver's vocabulary."""
    hints = get_type_hints(endpoint, include_extras=True)
    out: list[tuple[str, Resolver]] = []
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        found = next((r for a, r in _BY_ANNOTATION.items() if hint == a), None)
        if found is None and hint is str and name in path_params:
            found = _path(name)
        if found is None:
            return None
        out.append((name, found))
    return out


class ScimRoute(APIRoute):
    """An APIRoute whose handler resolves the endpoint's inputs by hand (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.hand_handler() or super().get_route_handler()

    def hand_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
        """The handler resolving the endpoint's inputs by hand, or None when it cannot."""
        found = resolvers(self.endpoint, set(self.param_convertors))
        if found is None:
            return None
        endpoint = self.endpoint
        plan = tuple(found)

        if inspect.iscoroutinefunction(endpoint):

            async def awaiting(request: Request) -> Response:
                kwargs = {name: await resolve(request) for name, resolve in plan}
                response: Response = await endpoint(**kwargs)
                return response

            return awaiting

        async def handler(request: Request) -> Response:
            kwargs = {name: await resolve(request) for name, resolve in plan}
            response: Response = await run_in_threadpool(endpoint, **kwargs)
            return response

        return handler
