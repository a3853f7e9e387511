"""/Users: list, search, create, read, replace, patch, delete (RFC 7644 §3)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from syncd.scim import resources as r
from syncd.scim.deps import Body, Caller, Context, IfMatch, IfNoneMatch, ListQuery, ShapeQuery
from syncd.scim.openapi import json_body
from syncd.scim.render import render_user
from syncd.scim.route import ScimRoute
from syncd.service import users, users_pg
from syncd.service.schema import CORE_USER, USER

KIND = r.Kind(
    rt=USER,
    get=lambda s, a, i: users.get_user(s, actor=a, user_id=i),
    create=lambda s, a, b: users.create_user(s, actor=a, body=b),
    replace=lambda s, a, i, b, m: users.replace_user(s, actor=a, user_id=i, body=b, if_match=m),
    patch=lambda s, a, i, ops, m: users.patch_user(s, actor=a, user_id=i, operations=ops, if_match=m),
    delete=lambda s, a, i, m: users.delete_user(s, actor=a, user_id=i, if_match=m),
    list=lambda s, a, f, start, n: users.list_users(s, actor=a, filter=f, start_index=start, count=n),
    extra_key="groups",
    extra=users.groups_of,
    render=render_user,
    created_bare=True,
    create_pg=lambda c, a, b: users_pg.create_user(c, actor=a, body=b),
    key=users.user_key,
    list_by_key=lambda c, a, col, v, start, n: users.list_users_by_key(
        c, actor=a, column=col, value=v, start_index=start, count=n
    ),
)
EXAMPLE = {"schemas": [CORE_USER], "userName": "bjensen@example.com", "active": True}
BODY = json_body("a User", EXAMPLE, "UserRequest")

router = APIRouter(prefix="/Users", tags=["Users"], route_class=ScimRoute)


@router.get("", summary="List or filter users")
async def list_users(actor: Caller, ctx: Context, q: ListQuery) -> Response:
    return await r.list_resources_awaited(ctx, KIND, actor, q)


@router.post("", status_code=201, summary="Create a user", openapi_extra=BODY)
async def create_user(actor: Caller, ctx: Context, body: Body, shape: ShapeQuery) -> Response:
    return await r.create_resource_awaited(ctx, KIND, actor, body, shape)


@router.get("/{user_id}", summary="Read a user")
def get_user(
    actor: Caller, ctx: Context, user_id: str, shape: ShapeQuery, if_none_match: IfNoneMatch = None
) -> Response:
    return r.get_resource(ctx, KIND, actor, user_id, shape, if_none_match)


@router.put("/{user_id}", summary="Replace a user", openapi_extra=BODY)
def replace_user(
    actor: Caller, ctx: Context, user_id: str, body: Body, shape: ShapeQuery, if_match: IfMatch = None
) -> Response:
    return r.replace_resource(ctx, KIND, actor, user_id, body, shape, if_match)


@router.patch(
    "/{user_id}",
    summary="Patch a user (200 with the resource)",
    openapi_extra=json_body("a PatchOp message", r.PATCH_EXAMPLE, "PatchOp"),
)
def patch_user(
    actor: Caller, ctx: Context, user_id: str, body: Body, shape: ShapeQuery, if_match: IfMatch = None
) -> Response:
    return r.patch_resource(ctx, KIND, actor, user_id, body, shape, if_match, no_content=False)


@router.delete("/{user_id}", status_code=204, summary="Delete a user")
def delete_user(actor: Caller, ctx: Context, user_id: str, if_match: IfMatch = None) -> Response:
    return r.delete_resource(ctx, KIND, actor, user_id, if_match)
