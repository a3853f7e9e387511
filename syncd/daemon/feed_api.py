"""The feed's admin API under `/v1` (admin-token auth, as `syncd.daemon.admin`).

    GET /v1/changes?after=&limit=&wait=&directory=   changes after a position, oldest first,
                                                     and `next`; long-polls up to `wait`
                                                     ("30s", at most 5m) when there is none;
                                                     410 when `after` is older than retention
    GET /v1/users?directory=&limit=&cursor=          every user, paged by `next` cursors
    GET /v1/teams?directory=&include=members&...     every team (with members), paged

A consumer that starts (or got 410) resyncs: it pages through /v1/users and /v1/teams, then
follows /v1/changes from the `position` of the first listing it started. Each listing's
`position` is the feed's head when its first page was read, so every change committed
after it is replayed (some may repeat what the listing showed: apply them idempotently).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from syncd import feed
from syncd.config.types import parse_duration
from syncd.daemon.admin import admin_token
from syncd.service.members import members_of
from syncd.store import session_scope
from syncd.store.models import Team, User

MAX_LIMIT = 1000
MAX_WAIT_S = 300
RESYNC = ["/v1/users", "/v1/teams?include=members"]

router = APIRouter(prefix="/v1", tags=["Feed"], dependencies=[Depends(admin_token)])


def _wait_seconds(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        secs = float(raw) if raw.replace(".", "", 1).isdigit() else float(parse_duration(raw))
    except ValueError:
        raise HTTPException(400, f"wait={raw!r}: expected seconds or a duration like '30s'") from None
    if secs > MAX_WAIT_S:
        raise HTTPException(400, f"wait={raw!r}: at most {MAX_WAIT_S}s")
    return secs


@router.get("/changes", summary="Changes after a feed position (long-poll with wait)")
async def changes(
    request: Request,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    wait: str | None = None,
    directory: Annotated[list[str] | None, Query()] = None,
) -> Any:
    state = request.app.state.daemon
    timeout = 0.0 if state.stopping else _wait_seconds(wait)
    dirs = frozenset(directory) if directory else None
    try:
        page = await feed.await_changes(
            state.engine,
            feed.shared_signal(state.engine),
            after=after,
            limit=limit,
            timeout=timeout,
            directories=dirs,
        )
    except feed.BadPosition as exc:
        raise HTTPException(400, str(exc)) from None
    except feed.FeedGone as exc:
        return JSONResponse(
            {"detail": str(exc), "position": exc.position, "oldest": exc.oldest, "resync": RESYNC},
            status_code=410,
        )
    return {"changes": [c.to_dict() for c in page.changes], "next": page.next}


# -- resync listings --------------------------------------------------------------------------


def _encode(position: str, last_id: str) -> str:
    raw = json.dumps([position, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str]:
    try:
        position, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        feed.Position.parse(position)
        if not isinstance(last_id, str):
            raise ValueError
    except (ValueError, TypeError):
        raise HTTPException(400, "cursor: not a cursor of this listing (use `next` as given)") from None
    return position, last_id


def _page(
    request: Request, model: Any, directory: str | None, limit: int, cursor: str | None, *, members: bool
) -> tuple[Any, ...]:
    """(rows, position, next cursor, members by team id) of one page keyed by id."""
    state = request.app.state.daemon
    with session_scope(state.engine, write=False) as s:
        if cursor:
            position, last_id = _decode(cursor)
        else:
            position, last_id = feed.head(s), ""  # before the rows: nothing after it is lost
        q = select(model).where(model.id > last_id).order_by(model.id).limit(limit)
        if directory is not None:
            q = q.where(model.directory == directory)
        rows = list(s.execute(q).scalars())
        extra = members_of(s, [r.id for r in rows]) if members else {}
    nxt = _encode(position, rows[-1].id) if len(rows) == limit else None
    return rows, position, nxt, extra


@router.get("/users", summary="Every user, paged (for a resync of the feed)")
def list_users(
    request: Request,
    directory: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
    cursor: str | None = None,
) -> dict[str, Any]:
    rows, position, nxt, _ = _page(request, User, directory, limit, cursor, members=False)
    users = [
        {**r.data, "id": r.id, "directory": r.directory, "active": r.active, "version": r.version}
        for r in rows
    ]
    return {"users": users, "position": position, "next": nxt}


@router.get("/teams", summary="Every team, with members on include=members, paged")
def list_teams(
    request: Request,
    directory: str | None = None,
    include: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    if include not in (None, "", "members"):
        raise HTTPException(400, f"include={include!r}: only 'members' is supported")
    want = include == "members"
    rows, position, nxt, members = _page(request, Team, directory, limit, cursor, members=want)
    out = []
    for r in rows:
        item = {
            **r.data,
            "id": r.id,
            "directory": r.directory,
            "archived": r.archived,
            "memberCount": r.member_count,
            "version": r.version,
        }
        if want:
            item["members"] = [{"id": u, "userName": n} for u, n in members.get(r.id, [])]
        out.append(item)
    return {"teams": out, "position": position, "next": nxt}
