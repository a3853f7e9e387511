"""Teams: search by name; one team's members (with each membership's source) and audit trail.

GET /teams?q=&page=                 teams whose displayName contains q (case-insensitive)
GET /teams/{id}?page=&audit_page=   the team, its members (50 a page, `page`) and its
                                    audit events, newest first (50 a page, `audit_page`)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from syncd.console.audit_rows import audit_rows
from syncd.console.deps import daemon, require_admin
from syncd.console.notfound import not_found
from syncd.console.paging import pager
from syncd.console.render import page
from syncd.service import limits
from syncd.service.resource import fold
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership, Team, User

router = APIRouter(dependencies=[Depends(require_admin)])


def search_text(request: Request) -> str | None:
    """`?q=` stripped, or None when empty or unsearchable (nothing stored can contain it)."""
    q = request.query_params.get("q", "").strip()
    return q if q and limits.storable_id(q) else None


@router.get("/teams", summary="Teams")
def teams_page(request: Request) -> Response:
    state = daemon(request)
    q = request.query_params.get("q", "").strip()
    text = search_text(request)
    conds = [Team.display_name_key.contains(fold(text), autoescape=True)] if text else []  # type: ignore[attr-defined]
    rows: list[Team] = []
    total = 0
    if not q or text:
        with session_scope(state.engine, write=False) as s:
            total = s.execute(select(func.count()).select_from(Team).where(*conds)).scalar_one()
            p = pager(request, total)
            rows = list(
                s.execute(
                    select(Team)
                    .where(*conds)
                    .order_by(Team.display_name_key, Team.id)
                    .offset(p.offset)
                    .limit(p.size)
                ).scalars()
            )
    return page(request, "teams.html", title="Teams", teams=rows, q=q, pager=pager(request, total))


@router.get("/teams/{team_id}", summary="One team: members and audit trail")
def team_page(request: Request, team_id: str) -> Response:
    state = daemon(request)
    with session_scope(state.engine, write=False) as s:
        team = s.get(Team, team_id) if limits.storable_id(team_id) else None
        if team is None:
            return not_found(request, f"There is no team {team_id!r}.", back="/teams", back_label="All teams")
        n_members = s.execute(
            select(func.count()).select_from(Membership).where(Membership.team_id == team_id)
        ).scalar_one()
        mp = pager(request, n_members)
        members: list[dict[str, Any]] = [
            {"user": u, "source": m.source, "directory": m.directory, "since": m.created_at}
            for m, u in s.execute(
                select(Membership, User)
                .join(User, User.id == Membership.user_id)
                .where(Membership.team_id == team_id)
                .order_by(User.user_name_key, User.id)
                .offset(mp.offset)
                .limit(mp.size)
            ).tuples()
        ]
        trail = (AuditEvent.resource_type == "team", AuditEvent.resource_id == team_id)
        n_events = s.execute(select(func.count()).select_from(AuditEvent).where(*trail)).scalar_one()
        ap = pager(request, n_events, param="audit_page")
        events = audit_rows(
            s,
            list(
                s.execute(
                    select(AuditEvent)
                    .where(*trail)
                    .order_by(AuditEvent.id.desc())
                    .offset(ap.offset)
                    .limit(ap.size)  # type: ignore[union-attr]
                ).scalars()
            ),
        )
    return page(
        request,
        "team.html",
        title="Team",
        team=team,
        members=members,
        pager=mp,
        events=events,
        audit_pager=ap,
    )
