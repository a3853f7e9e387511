"""/Groups: list, search, create, read, replace, patch, delete (RFC 7644 §3).

PATCH answers 204 No Content (with the new ETag) unless the request names `attributes` or
`excludedAttributes`: Entra recommends 204 for group PATCH, Okta accepts it, and it spares
rendering a team of 100,000 members on every membership change. With those parameters the
answer is 200 with the projected group (RFC 7644 §3.5.2 allows either).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from syncd.scim import resources as r
from syncd.scim.deps import Body, Caller, Context, IfMatch, IfNoneMatch, ListQuery, ShapeQuery
from syncd.scim.openapi import json_body
from syncd.scim.render import render_group
from syncd.scim.route import ScimRoute
from syncd.service import members, teams
from syncd.service.schema import CORE_GROUP, GROUP

KIND = r.Kind(
    rt=GROUP,
    get=lambda s, a, i: teams.get_team(s, actor=a, team_id=i),
    create=lambda s, a, b: teams.create_team(s, actor=a, body=b),
    replace=lambda s, a, i, b, m: teams.replace_team(s, actor=a, team_id=i, body=b, if_match=m),
    patch=lambda s, a, i, ops, m: teams.patch_team(s, actor=a, team_id=i, operations=ops, if_match=m),
    delete=lambda s, a, i, m: teams.delete_team(s, actor=a, team_id=i, if_match=m),
    list=lambda s, a, f, start, n: teams.list_teams(s, actor=a, filter=f, start_index=start, count=n),
    extra_key="members",
    extra=members.members_of,
    render=render_group,
)
EXAMPLE = {"schemas": [CORE_GROUP], "displayName": "Engineering", "members": []}
BODY = json_body("a Group", EXAMPLE, "GroupRequest")

router = APIRouter(prefix="/Groups", tags=["Groups"], route_class=ScimRoute)


@router.get("", summary="List or filter groups")
def list_groups(actor: Caller, ctx: Context, q: ListQuery) -> Response:
    return r.list_resources(ctx, KIND, actor, q)


@router.post("", status_code=201, summary="Create a group", openapi_extra=BODY)
def create_group(actor: Caller, ctx: Context, body: Body, shape: ShapeQuery) -> Response:
    return r.create_resource(ctx, KIND, actor, body, shape)


@router.get("/{group_id}", summary="Read a group")
def get_group(
    actor: Caller, ctx: Context, group_id: str, shape: ShapeQuery, if_none_match: IfNoneMatch = None
) -> Response:
    return r.get_resource(ctx, KIND, actor, group_id, shape, if_none_match)


@router.put("/{group_id}", summary="Replace a group", openapi_extra=BODY)
def replace_group(
    actor: Caller, ctx: Context, group_id: str, body: Body, shape: ShapeQuery, if_match: IfMatch = None
) -> Response:
    return r.replace_resource(ctx, KIND, actor, group_id, body, shape, if_match)


@router.patch(
    "/{group_id}",
    status_code=204,
    summary="Patch a group (204; 200 with the group when attributes/excludedAttributes are given)",
    openapi_extra=json_body("a PatchOp message", r.PATCH_EXAMPLE, "PatchOp"),
)
def patch_group(
    actor: Caller, ctx: Context, group_id: str, body: Body, shape: ShapeQuery, if_match: IfMatch = None
) -> Response:
    return r.patch_resource(ctx, KIND, actor, group_id, body, shape, if_match, no_content=True)


@router.delete("/{group_id}", status_code=204, summary="Delete a group")
def delete_group(actor: Caller, ctx: Context, group_id: str, if_match: IfMatch = None) -> Response:
    return r.delete_resource(ctx, KIND, actor, group_id, if_match)
