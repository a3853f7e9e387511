"""Users: search by userName or email; one user's teams; **Sync this user now**.

    GET  /users?q=&page=        users whose userName or an email contains q (case-insensitive)
    GET  /users/{id}            the user, their emails and teams (with each membership's source)
    POST /users/{id}/sync       form: csrf → the on-login sync of the user (`state.login`), its
                                answer shown on the user's page: fresh or stale, teams added,
                                removed and created; audited as `login.sync` by the admin

Only users of a pull directory can be synced this way: a push directory's IdP writes through
SCIM and a local user has no IdP; the page says so instead of offering the button.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, or_, select

from syncd.console import actions
from syncd.console.audit_rows import audit_rows
from syncd.console.deps import Admin, daemon, require_admin
from syncd.console.notfound import not_found
from syncd.console.pages.teams import search_text
from syncd.console.paging import pager
from syncd.console.render import page
from syncd.daemon.login import LoginError
from syncd.service import limits
from syncd.service.resource import fold
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership, Team, User, UserEmail

router = APIRouter(dependencies=[Depends(require_admin)])

#: audit events of a user shown on their page
USER_EVENTS = 20


@router.get("/users", summary="Users")
def users_page(request: Request) -> Response:
    state = daemon(request)
    q = request.query_params.get("q", "").strip()
    text = search_text(request)
    conds: list[Any] = []
    if text:
        key = fold(text)
        by_email = select(UserEmail.user_id).where(UserEmail.value_key.contains(key, autoescape=True))  # type: ignore[attr-defined]
        conds = [or_(User.user_name_key.contains(key, autoescape=True), User.id.in_(by_email))]  # type: ignore[attr-defined,union-attr]
    rows: list[dict[str, Any]] = []
    total = 0
    if not q or text:
        with session_scope(state.engine, write=False) as s:
            total = s.execute(select(func.count()).select_from(User).where(*conds)).scalar_one()
            p = pager(request, total)
            users = list(
                s.execute(
                    select(User)
                    .where(*conds)
                    .order_by(User.user_name_key, User.id)
                    .offset(p.offset)
                    .limit(p.size)
                ).scalars()
            )
            emails: dict[str, list[str]] = {}
            if users:
                for uid, value in s.execute(
                    select(UserEmail.user_id, UserEmail.value).where(
                        UserEmail.user_id.in_([u.id for u in users])
                    )  # type: ignore[attr-defined]
                ).tuples():
                    emails.setdefault(uid, []).append(value)
            rows = [{"user": u, "emails": emails.get(u.id, [])} for u in users]
    return page(request, "users.html", title="Users", users=rows, q=q, pager=pager(request, total))


def user_page(
    request: Request,
    user_id: str,
    *,
    status_code: int = 200,
    sync: dict[str, Any] | None = None,
    sync_error: str | None = None,
) -> Response:
    state = daemon(request)
    with session_scope(state.engine, write=False) as s:
        user = s.get(User, user_id) if limits.storable_id(user_id) else None
        if user is None:
            return not_found(request, f"There is no user {user_id!r}.", back="/users", back_label="All users")
        emails = list(s.execute(select(UserEmail).where(UserEmail.user_id == user_id)).scalars())
        teams = [
            {"team": t, "source": m.source, "since": m.created_at}
            for m, t in s.execute(
                select(Membership, Team)
                .join(Team, Team.id == Membership.team_id)
                .where(Membership.user_id == user_id)
                .order_by(Team.display_name_key, Team.id)
            ).tuples()
        ]
        trail = or_(
            (AuditEvent.resource_type == "user") & (AuditEvent.resource_id == user_id),
            (AuditEvent.resource_type == "login") & (AuditEvent.resource_id == user_id),
        )
        events = audit_rows(
            s,
            list(
                s.execute(
                    select(AuditEvent).where(trail).order_by(AuditEvent.id.desc()).limit(USER_EVENTS)
                ).scalars()
            ),  # type: ignore[union-attr]
        )
    d = state.settings().directories.get(user.directory) if user.directory else None
    why_not = None
    if user.directory is None:
        why_not = "This is a local user (made by hand): no IdP knows it."
    elif d is None:
        why_not = f"Its directory {user.directory!r} is not in the configuration."
    elif d.kind == "scim":
        why_not = f"Its directory {user.directory!r} is a push directory: its IdP sends changes over SCIM."
    return page(
        request,
        "user.html",
        status_code=status_code,
        title="User",
        user=user,
        emails=emails,
        teams=teams,
        events=events,
        why_not=why_not,
        sync=sync,
        sync_error=sync_error,
    )


@router.get("/users/{user_id}", summary="One user and their teams")
def user_detail(request: Request, user_id: str) -> Response:
    return user_page(request, user_id)


@router.post("/users/{user_id}/sync", summary="Sync this user now (the on-login sync)")
def sync_user(request: Request, user_id: str, admin: Annotated[Admin, Depends(require_admin)]) -> Response:
    state = daemon(request)
    with session_scope(state.engine, write=False) as s:
        user = s.get(User, user_id) if limits.storable_id(user_id) else None
        key = (user.external_id or user.user_name, user.directory) if user is not None else None
    if key is None:
        return user_page(request, user_id)  # the 404 page
    who, directory = key
    if directory is None:
        return user_page(
            request, user_id, status_code=400, sync_error="A local user has no IdP to sync from."
        )
    try:
        result = state.login.sync(directory, who)
    except LoginError as exc:
        actions.record(
            state.engine,
            admin,
            action="login.sync_refused",
            resource_type="login",
            resource_id=user_id,
            directory=directory,
            after={"error": str(exc)},
        )
        return user_page(request, user_id, status_code=exc.status, sync_error=str(exc))
    answer = result.to_dict()
    actions.record(
        state.engine,
        admin,
        action="login.sync",
        resource_type="login",
        resource_id=user_id,
        directory=directory,
        after={
            "result": result.result,
            "added": [t.get("display_name") for t in result.added],
            "removed": [t.get("display_name") for t in result.removed],
            "created_teams": [t.get("display_name") for t in result.created_teams],
            "error": result.error,
        },
    )
    return user_page(request, user_id, sync={**answer, "result": result.result})
