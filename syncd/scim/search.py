"""`POST /.search` (RFC 7644 §3.4.3) on /Users, /Groups and at the root.

A SearchRequest carries the list-query parameters in its body (`attributes` and
`excludedAttributes` as lists or comma-separated strings; `startIndex`/`count` as integers).
`sortBy`/`sortOrder` are ignored: sorting is not supported (ServiceProviderConfig says so) and
results keep their stable creation order.

At the root, Users come first, then Groups, as one paged sequence. A filter that names an
attribute one of the two resource types does not have matches nothing of that type; it is an
error only when neither type can evaluate it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from syncd.scim import resources as r
from syncd.scim import routes_groups, routes_users
from syncd.scim.deps import Body, Caller, Context, ListParams
from syncd.scim.openapi import json_body
from syncd.scim.render import Projection, list_response
from syncd.scim.responses import ScimResponse
from syncd.scim.route import ScimRoute
from syncd.service.common import DEFAULT_COUNT
from syncd.service.errors import InvalidFilter
from syncd.store import session_scope

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
EXAMPLE = {"schemas": [SEARCH_REQUEST], "filter": 'userName eq "bjensen"', "startIndex": 1, "count": 10}
OPENAPI = json_body("a SearchRequest message", EXAMPLE, "SearchRequest")

router = APIRouter(tags=["Search"], route_class=ScimRoute)


def search_params(body: dict[str, Any]) -> ListParams:
    low = {str(k).lower(): v for k, v in body.items()}
    return ListParams.make(
        filter=low.get("filter"),
        start_index=low.get("startindex"),
        count=low.get("count"),
        attributes=low.get("attributes"),
        excluded=low.get("excludedattributes"),
    )


@router.post("/Users/.search", summary="Search users", openapi_extra=OPENAPI)
def search_users(actor: Caller, ctx: Context, body: Body) -> Response:
    return r.list_resources(ctx, routes_users.KIND, actor, search_params(body))


@router.post("/Groups/.search", summary="Search groups", openapi_extra=OPENAPI)
def search_groups(actor: Caller, ctx: Context, body: Body) -> Response:
    return r.list_resources(ctx, routes_groups.KIND, actor, search_params(body))


@router.post("/.search", summary="Search users and groups", openapi_extra=OPENAPI)
def search_all(actor: Caller, ctx: Context, body: Body) -> Response:
    q = search_params(body)
    want = DEFAULT_COUNT if q.count is None else q.count
    resources: list[dict[str, Any]] = []
    total = 0
    errors: list[InvalidFilter] = []
    skip = q.start_index - 1  # results to skip over the concatenated sequence
    with session_scope(ctx.reads, write=False) as s:
        for kind in (routes_users.KIND, routes_groups.KIND):
            proj = Projection.parse(kind.rt, q.attributes, q.excluded)
            room = want - len(resources)
            try:
                # a count of 0 still returns the total of this type
                page = kind.list(s, actor, q.filter, skip + 1, room)
            except InvalidFilter as exc:
                errors.append(exc)
                continue
            total += page.total
            skip = max(0, skip - page.total)
            resources.extend(r.render_rows(s, kind, page.items, ctx.base, proj))
    if len(errors) == 2:
        raise errors[0]
    return ScimResponse(list_response(resources, total, q.start_index))
