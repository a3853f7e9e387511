"""The SCIM resource operations shared by /Users and /Groups, over a `Kind` adapter.

Each operation is one transaction (`session_scope`, `write=False` for reads) that calls the
service, renders the answer inside the transaction (the response reflects exactly what was
committed) and returns the response after the commit succeeded. These functions are sync
and run in the threadpool, except as below: the event loop never waits on another writer.

The `*_awaited` forms serve the provisioning traffic's hot routes (filter by a unique key,
create): on PostgreSQL they run the same sync code on the event loop over the async driver
(`ScimContext.on_loop`); on SQLite they call it on the loop's thread (`ScimContext.inline`,
`store.inline`: a create only in a writer turn that is free); either way saving the thread hop.
Any other case hands the sync form to the threadpool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from syncd.scim.deps import ListParams, ScimContext, Shape
from syncd.scim.render import Projection, list_response
from syncd.scim.responses import ScimResponse
from syncd.service.common import Page, etag
from syncd.service.context import Actor
from syncd.service.errors import InvalidSyntax
from syncd.service.schema import ResourceType
from syncd.store import session_scope
from syncd.store.inline import Busy, write_inline

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PATCH_EXAMPLE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
}
Extra = Mapping[str, Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class Kind:
    """How one resource type maps onto its service module (ids are the resource ids)."""

    rt: ResourceType
    get: Callable[[Session, Actor, str], Any]
    create: Callable[[Session, Actor, dict[str, Any]], Any]
    replace: Callable[[Session, Actor, str, dict[str, Any], str | None], Any]
    patch: Callable[[Session, Actor, str, Any, str | None], Any]
    delete: Callable[[Session, Actor, str, str | None], None]
    list: Callable[[Session, Actor, str | None, int, int | None], Page[Any]]
    extra_key: str  # "groups" for users, "members" for groups
    extra: Callable[[Session | Connection, Sequence[str]], Extra]  # called only when extra_key is wanted
    render: Callable[..., dict[str, Any]]  # (row, *, base, <extra_key>=...) -> resource
    #: True when a just-created resource cannot have any `extra` yet (a new user is in no team:
    #: `groups` is read-only), so its create answer skips that query.
    created_bare: bool = False
    #: PostgreSQL only: the create as one statement on a connection in autocommit (the same
    #: rows and answers as `create`, one round trip instead of one per row); needs created_bare.
    create_pg: Callable[[Connection, Actor, dict[str, Any]], Any] | None = None
    #: (column, value) of a filter on a uniquely indexed attribute, else None; with
    #: `list_by_key`, such a list is one SELECT on a Core connection (no ORM session)
    key: Callable[[str], tuple[str, str] | None] | None = None
    list_by_key: Callable[[Connection, Actor, str, str, int, int | None], Page[Any]] | None = None

    def location(self, base: str, resource_id: str) -> str:
        return f"{base}{self.rt.endpoint}/{resource_id}"


def render_rows(
    s: Session | Connection | None,
    kind: Kind,
    rows: Sequence[Any],
    base: str,
    proj: Projection,
    *,
    bare: bool = False,
) -> list[dict[str, Any]]:
    """Rows → projected resources; `groups`/`members` are loaded (one query per 500 rows) only
    when the projection returns them and the rows are not `bare` (known to have none)."""
    want = proj.wants(kind.extra_key)
    extra: Extra = {}
    if want and rows and not bare:
        assert s is not None, "rows that may have extras are rendered in their session"
        extra = kind.extra(s, [r.id for r in rows])
    out = []
    for r in rows:
        kw = {kind.extra_key: extra.get(r.id, [])} if want else {}
        out.append(proj.apply(kind.render(r, base=base, **kw)))
    return out


def _resource(kind: Kind, ctx: ScimContext, row: Any, body: dict[str, Any], status: int = 200) -> Response:
    headers = {"ETag": etag(row.version), "Location": kind.location(ctx.base, row.id)}
    return ScimResponse(body, status_code=status, headers=headers)


def etag_matches(header: str | None, version: int) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2) of an If-None-Match header with `version`."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return "*" in tags or etag(version).removeprefix("W/") in tags


def _by_key(q: ListParams, kind: Kind) -> tuple[str, str] | None:
    """The (column, value) of a list whose filter is one unique key, when `kind` has the
    one-SELECT path for it; else None."""
    if q.filter and kind.key is not None and kind.list_by_key is not None:
        return kind.key(q.filter)
    return None


def _list_by_key(
    conn: Connection,
    kind: Kind,
    actor: Actor,
    key: tuple[str, str],
    q: ListParams,
    base: str,
    proj: Projection,
) -> Response:
    assert kind.list_by_key is not None
    page = kind.list_by_key(conn, actor, *key, q.start_index, q.count)
    resources = render_rows(conn, kind, page.items, base, proj)
    return ScimResponse(list_response(resources, page.total, page.start_index))


def list_resources(ctx: ScimContext, kind: Kind, actor: Actor, q: ListParams) -> Response:
    proj = Projection.parse(kind.rt, q.attributes, q.excluded)
    key = _by_key(q, kind)
    if key is not None:
        with ctx.reads.connect() as conn:  # one read transaction on SQLite, autocommit on PostgreSQL
            return _list_by_key(conn, kind, actor, key, q, ctx.base, proj)
    return _list_filtered(ctx, kind, actor, q, proj)


def _list_filtered(ctx: ScimContext, kind: Kind, actor: Actor, q: ListParams, proj: Projection) -> Response:
    """A list through the service's general filter (no unique key), in one read session."""
    with session_scope(ctx.reads, write=False) as s:
        page = kind.list(s, actor, q.filter, q.start_index, q.count)
        resources = render_rows(s, kind, page.items, ctx.base, proj)
    return ScimResponse(list_response(resources, page.total, page.start_index))


def get_resource(
    ctx: ScimContext, kind: Kind, actor: Actor, resource_id: str, shape: Shape, if_none_match: str | None
) -> Response:
    proj = Projection.parse(kind.rt, shape.attributes, shape.excluded)
    with session_scope(ctx.reads, write=False) as s:
        row = kind.get(s, actor, resource_id)
        if etag_matches(if_none_match, row.version):
            return Response(status_code=304, headers={"ETag": etag(row.version)})
        body = render_rows(s, kind, [row], ctx.base, proj)[0]
    return _resource(kind, ctx, row, body)


def create_resource(
    ctx: ScimContext, kind: Kind, actor: Actor, body: dict[str, Any], shape: Shape
) -> Response:
    proj = Projection.parse(kind.rt, shape.attributes, shape.excluded)
    if kind.create_pg is not None and kind.created_bare and ctx.autocommit is not None:
        with ctx.autocommit.connect() as conn:
            row = kind.create_pg(conn, actor, body)
        return _created_bare(ctx, kind, row, proj)
    with session_scope(ctx.engine) as s:
        row = kind.create(s, actor, body)
        out = render_rows(s, kind, [row], ctx.base, proj, bare=kind.created_bare)[0]
    return _resource(kind, ctx, row, out, 201)


def _created_bare(ctx: ScimContext, kind: Kind, row: Any, proj: Projection) -> Response:
    out = render_rows(None, kind, [row], ctx.base, proj, bare=True)[0]
    return _resource(kind, ctx, row, out, 201)


async def list_resources_awaited(ctx: ScimContext, kind: Kind, actor: Actor, q: ListParams) -> Response:
    """`list_resources` for an async route: a unique-key filter is one indexed SELECT, awaited
    on the event loop on PostgreSQL, called on the loop's thread on SQLite (a WAL reader never
    waits for a writer); any other list runs in the threadpool."""
    if ctx.on_loop is None:
        if ctx.inline and _by_key(q, kind) is not None:
            return list_resources(ctx, kind, actor, q)  # one indexed SELECT, never waits
        return await run_in_threadpool(list_resources, ctx, kind, actor, q)
    proj = Projection.parse(kind.rt, q.attributes, q.excluded)  # first, as `list_resources`
    key = _by_key(q, kind)
    if key is not None:
        return await ctx.on_loop.run(_list_by_key, kind, actor, key, q, ctx.base, proj)
    return await run_in_threadpool(_list_filtered, ctx, kind, actor, q, proj)


async def create_resource_awaited(
    ctx: ScimContext, kind: Kind, actor: Actor, body: dict[str, Any], shape: Shape
) -> Response:
    """`create_resource` for an async route: a create that is one statement on PostgreSQL
    (`Kind.create_pg`) is awaited on the event loop; on SQLite the create runs on the loop's
    thread when the writer turn is free (`write_inline`); any other runs in the threadpool."""
    if kind.create_pg is not None and kind.created_bare and ctx.on_loop is not None:
        proj = Projection.parse(kind.rt, shape.attributes, shape.excluded)
        row = await ctx.on_loop.run(kind.create_pg, actor, body)
        return _created_bare(ctx, kind, row, proj)
    if ctx.inline:
        with contextlib.suppress(Busy):
            return await write_inline(ctx.engine, create_resource, ctx, kind, actor, body, shape)
    return await run_in_threadpool(create_resource, ctx, kind, actor, body, shape)


def replace_resource(
    ctx: ScimContext,
    kind: Kind,
    actor: Actor,
    resource_id: str,
    body: dict[str, Any],
    shape: Shape,
    if_match: str | None,
) -> Response:
    proj = Projection.parse(kind.rt, shape.attributes, shape.excluded)
    with session_scope(ctx.engine) as s:
        row = kind.replace(s, actor, resource_id, body, if_match)
        out = render_rows(s, kind, [row], ctx.base, proj)[0]
    return _resource(kind, ctx, row, out)


def patch_operations(body: dict[str, Any]) -> Any:
    """The `Operations` of a PatchOp body (key matched case-insensitively)."""
    for key, value in body.items():
        if str(key).lower() == "operations":
            return value
    raise InvalidSyntax(f"a PATCH body is a {PATCH_OP} message with an Operations list")


def patch_resource(
    ctx: ScimContext,
    kind: Kind,
    actor: Actor,
    resource_id: str,
    body: dict[str, Any],
    shape: Shape,
    if_match: str | None,
    *,
    no_content: bool,
) -> Response:
    """PATCH; `no_content`: answer 204 (with the new ETag) unless the request named
    `attributes`/`excludedAttributes`, in which case 200 with the projected resource."""
    proj = Projection.parse(kind.rt, shape.attributes, shape.excluded)
    ops = patch_operations(body)
    with session_scope(ctx.engine) as s:
        row = kind.patch(s, actor, resource_id, ops, if_match)
        if no_content and not proj.given:
            return Response(status_code=204, headers={"ETag": etag(row.version)})
        out = render_rows(s, kind, [row], ctx.base, proj)[0]
    return _resource(kind, ctx, row, out)


def delete_resource(
    ctx: ScimContext, kind: Kind, actor: Actor, resource_id: str, if_match: str | None
) -> Response:
    with session_scope(ctx.engine) as s:
        kind.delete(s, actor, resource_id, if_match)
    return Response(status_code=204)
