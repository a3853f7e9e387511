"""Per-request inputs shared by the routes: the app context, the caller, the JSON body,
paging and projection parameters, and the conditional-request headers.

FastAPI resolves an endpoint's dependencies in the order of its parameters; every endpoint
that needs a token lists `caller` first, so a request without a valid token gets 401 before
its body is read or validated.

Every dependency here is `async def` and does no blocking I/O on the event loop: FastAPI runs
each sync dependency in its threadpool, a thread hop (and GIL hand-over) per dependency per
request. The only one that may touch the store, `caller`, does so in the threadpool, and only
when the token cache has no live entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Query, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from syncd.scim import auth
from syncd.scim.errors import UnsupportedMediaType
from syncd.service.common import MAX_RESULTS
from syncd.service.context import Actor
from syncd.service.errors import InvalidSyntax, InvalidValue
from syncd.store.aio import LoopStore

SCIM_PREFIX = "/scim/v2"
#: Largest startIndex/count accepted (a 32-bit signed integer, what every store can bind).
MAX_INT = 2**31 - 1


@dataclass(frozen=True)
class ScimContext:
    """What the app was built with. `base` is the absolute URL of `/scim/v2` (no trailing /).

    `reads` is the engine of read-only requests (list, get, search). On PostgreSQL it runs in
    autocommit: at the store's READ COMMITTED isolation every statement takes its own snapshot
    inside a transaction or not, so the answers are the same, without a BEGIN and a COMMIT
    round trip per request. On SQLite it is `engine` (a read transaction there gives all its
    statements one snapshot, and BEGIN costs no round trip).

    `autocommit` is that PostgreSQL autocommit engine, also for a write sent as one statement
    (its own transaction); None on SQLite.

    `on_loop` runs the same autocommit work on the event loop through the async driver
    (`store.aio.LoopStore`), for the routes that await the store instead of a worker thread;
    None on SQLite (its driver has no async form).

    `inline` (SQLite): those routes call the sync work on the loop's own thread instead, a
    create only when the writer turn is free (`store.inline`).
    """

    engine: Engine
    base: str
    max_body_bytes: int
    reads: Engine = field(init=False, repr=False, compare=False)
    autocommit: Engine | None = field(init=False, repr=False, compare=False)
    on_loop: LoopStore | None = field(init=False, repr=False, compare=False)
    inline: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        autocommit = on_loop = None
        if self.engine.dialect.name == "postgresql":
            autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            on_loop = LoopStore(self.engine)
        object.__setattr__(self, "autocommit", autocommit)
        object.__setattr__(self, "on_loop", on_loop)
        object.__setattr__(self, "inline", self.engine.dialect.name == "sqlite")
        object.__setattr__(self, "reads", autocommit or self.engine)


async def context(request: Request) -> ScimContext:
    return request.app.state.scim  # type: ignore[no-any-return]


Context = Annotated[ScimContext, Depends(context)]


async def caller(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The Actor of the request's bearer token: from the token cache on the event loop, else
    read from the store in the threadpool."""
    actor = auth.cached(ctx.engine, auth.bearer_secret(authorization))
    if actor is not None:
        return actor
    return await run_in_threadpool(auth.authenticate, ctx.engine, authorization)


Caller = Annotated[Actor, Depends(caller)]


def _json_content_type(value: str | None) -> bool:
    if not value:
        return True  # clients that send no Content-Type: parse the body as JSON anyway
    mime = value.split(";", 1)[0].strip().lower()
    return mime in ("application/json", "application/scim+json") or mime.endswith("+json")


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; InvalidSyntax for bad JSON or a non-object."""
    ctype = request.headers.get("content-type")
    if not _json_content_type(ctype):
        raise UnsupportedMediaType(ctype or "")
    raw = await request.body()
    if not raw.strip():
        raise InvalidSyntax("the request body is empty; a JSON object is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntax(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    return body


Body = Annotated[dict[str, Any], Depends(json_body)]


def parse_int(name: str, value: Any) -> int | None:
    """An integer query/search parameter; InvalidValue when it is not one."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        try:
            n = int(str(value).strip())
        except ValueError:
            raise InvalidValue(f"{name} must be an integer, got {value!r}") from None
    if abs(n) > MAX_INT:
        raise InvalidValue(f"{name} must be at most {MAX_INT} in size")
    return n


@dataclass(frozen=True)
class ListParams:
    """A list query: filter, paging (RFC 7644 §3.4.2.4) and projection parameters."""

    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    attributes: str | list[str] | None = None
    excluded: str | list[str] | None = None

    @classmethod
    def make(
        cls,
        *,
        filter: str | None,
        start_index: Any,
        count: Any,
        attributes: Any = None,
        excluded: Any = None,
    ) -> ListParams:
        """startIndex < 1 means 1 and a negative count means 0 (RFC 7644 §3.4.2.4); a count
        above MAX_RESULTS is clamped to it (the RFC lets a provider return fewer)."""
        start = parse_int("startIndex", start_index)
        n = parse_int("count", count)
        if n is not None:
            n = min(max(n, 0), MAX_RESULTS)
        if filter is not None and not isinstance(filter, str):
            raise InvalidValue("filter must be a string")
        for name, v in (("attributes", attributes), ("excludedAttributes", excluded)):
            if v is not None and not isinstance(v, str | list):
                raise InvalidValue(f"{name} must be a string or a list of strings")
        return cls(filter or None, max(start or 1, 1), n, attributes, excluded)


async def list_query(
    filter: Annotated[str | None, Query(description="SCIM filter (RFC 7644 §3.4.2.2)")] = None,
    start_index: Annotated[str | None, Query(alias="startIndex", description="1-based")] = None,
    count: Annotated[str | None, Query(description=f"page size, at most {MAX_RESULTS}")] = None,
    attributes: Annotated[str | None, Query()] = None,
    excluded: Annotated[str | None, Query(alias="excludedAttributes")] = None,
) -> ListParams:
    return ListParams.make(
        filter=filter, start_index=start_index, count=count, attributes=attributes, excluded=excluded
    )


ListQuery = Annotated[ListParams, Depends(list_query)]


@dataclass(frozen=True)
class Shape:
    """`attributes` / `excludedAttributes` of a request on one resource."""

    attributes: str | None = None
    excluded: str | None = None


async def shape(
    attributes: Annotated[str | None, Query()] = None,
    excluded: Annotated[str | None, Query(alias="excludedAttributes")] = None,
) -> Shape:
    return Shape(attributes, excluded)


ShapeQuery = Annotated[Shape, Depends(shape)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match")]
