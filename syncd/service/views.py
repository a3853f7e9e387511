"""Read-only queries for listings (the CLI, admin views): users, teams with members, audit.

Every function takes the caller's session and keyword-only filters and returns frozen
dataclasses; none writes. Each listing costs a fixed number of queries whatever its size: one
for the rows, plus one for all the listed rows' emails or members (never one per row).

Directory scope: a directory name, `LOCAL` (rows with no directory, made by hand) or `ALL`.
Timestamps are returned timezone-aware in UTC (SQLite hands them back naive).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, select

from syncd.service.rows import ALL, LOCAL, DirectoryScope, Scope, TeamRow, UserRow  # noqa: F401  (re-exported)
from syncd.store.models import AuditEvent, Membership, ScimToken, Team, User, UserEmail


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    directory: str | None
    actor: str
    action: str
    resource_type: str
    resource_id: str
    sync_run_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    #: the user's userName, team's displayName or token's name, as now stored (else as the event
    #: recorded it, for a row since deleted); None when neither knows
    resource_name: str | None = None


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _scope(column: Any, directory: DirectoryScope) -> ColumnElement[bool] | None:
    if directory is ALL:
        return None
    if directory is LOCAL:
        return column.is_(None)
    return column == directory


def _ids(stmt: Any, id_column: Any) -> Any:
    """The ids `stmt` lists, as a subquery (same filter, order and limit): one query for all."""
    listed = stmt.with_only_columns(id_column).subquery()
    return select(listed.c.id)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def list_users(
    session: Session,
    *,
    directory: DirectoryScope = ALL,
    include_inactive: bool = False,
    limit: int | None = 100,
) -> list[UserRow]:
    """Users ordered by user name (case-insensitively), then directory, then id."""
    _check_limit(limit)
    stmt = select(User).order_by(User.user_name_key, func.coalesce(User.directory, ""), User.id)
    if (cond := _scope(User.directory, directory)) is not None:
        stmt = stmt.where(cond)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    if limit is not None:
        stmt = stmt.limit(limit)
    users = list(session.exec(stmt).all())
    return _user_rows(session, users, _ids(stmt, User.id) if users else None)


def list_users_by_id(session: Session, ids: list[str]) -> list[UserRow]:
    """The users with these ids, ordered like `list_users`; two queries."""
    stmt = (
        select(User).where(User.id.in_(ids)).order_by(User.user_name_key, func.coalesce(User.directory, ""))
    )
    users = list(session.exec(stmt).all())
    return _user_rows(session, users, ids)


def _user_rows(session: Session, users: list[User], ids: Any) -> list[UserRow]:
    emails: dict[str, str] = {}
    if users:
        rows = session.exec(
            select(UserEmail.user_id, UserEmail.value)
            .where(UserEmail.user_id.in_(ids))
            .order_by(UserEmail.user_id, UserEmail.primary.desc(), UserEmail.id)
        ).all()
        for user_id, value in rows:
            emails.setdefault(user_id, value)
    return [
        UserRow(
            id=u.id,
            user_name=u.user_name,
            display_name=u.display_name,
            directory=u.directory,
            external_id=u.external_id,
            active=u.active,
            email=emails.get(u.id),
            version=u.version,
            created_at=_utc(u.created_at),
            updated_at=_utc(u.updated_at),
        )
        for u in users
    ]


def list_teams(
    session: Session,
    *,
    directory: DirectoryScope = ALL,
    with_members: bool = False,
    limit: int | None = None,
) -> list[TeamRow]:
    """Teams ordered by display name; with `with_members`, each team's member user names.

    Members of all listed teams come from one query (a join restricted by the same filter as
    the teams), so the cost does not grow with the number of teams.
    """
    _check_limit(limit)
    stmt = select(Team).order_by(Team.display_name_key, func.coalesce(Team.directory, ""), Team.id)
    if (cond := _scope(Team.directory, directory)) is not None:
        stmt = stmt.where(cond)
    if limit is not None:
        stmt = stmt.limit(limit)
    teams = list(session.exec(stmt).all())
    members: dict[str, list[str]] = defaultdict(list)
    if with_members and teams:
        rows = session.exec(
            select(Membership.team_id, User.user_name)
            .join(User, User.id == Membership.user_id)
            .where(Membership.team_id.in_(_ids(stmt, Team.id)))
            .order_by(Membership.team_id, User.user_name_key)
        ).all()
        for team_id, user_name in rows:
            members[team_id].append(user_name)
    return [
        TeamRow(
            id=t.id,
            display_name=t.display_name,
            directory=t.directory,
            external_id=t.external_id,
            member_count=t.member_count,
            members=tuple(members.get(t.id, ())) if with_members else None,
            version=t.version,
            updated_at=_utc(t.updated_at),
        )
        for t in teams
    ]


def list_audit(
    session: Session,
    *,
    since: datetime | None = None,
    directory: DirectoryScope = ALL,
    limit: int | None = 100,
) -> list[AuditRow]:
    """Audit events at or after `since` (naive means UTC), newest first."""
    _check_limit(limit)
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= _utc(since))
    if (cond := _scope(AuditEvent.directory, directory)) is not None:
        stmt = stmt.where(cond)
    if limit is not None:
        stmt = stmt.limit(limit)
    events = list(session.exec(stmt).all())
    names = _resource_names(session, events)
    return [
        AuditRow(
            id=e.id or 0,
            at=_utc(e.at),
            directory=e.directory,
            actor=e.actor,
            action=e.action,
            resource_type=e.resource_type,
            resource_id=e.resource_id,
            sync_run_id=e.sync_run_id,
            before=e.before,
            after=e.after,
            resource_name=names.get((e.resource_type, e.resource_id)) or _recorded_name(e),
        )
        for e in events
    ]


_NAMED = {
    "user": (User, User.user_name),
    "team": (Team, Team.display_name),
    "token": (ScimToken, ScimToken.name),
}


def _resource_names(session: Session, events: list[AuditEvent]) -> dict[tuple[str, str], str]:
    """Current names of the events' resources: one query per resource type present."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.resource_type in _NAMED:
            wanted[e.resource_type].add(e.resource_id)
    out: dict[tuple[str, str], str] = {}
    for kind, ids in wanted.items():
        model, name = _NAMED[kind]
        for rid, value in session.exec(select(model.id, name).where(model.id.in_(sorted(ids)))).all():
            if value:
                out[(kind, rid)] = value
    return out


def _recorded_name(e: AuditEvent) -> str | None:
    for data in (e.after, e.before):
        if isinstance(data, dict):
            for key in ("userName", "displayName", "name"):
                if isinstance(data.get(key), str) and data[key]:
                    return data[key]
    return None


def _count(session: Session, stmt: Any) -> int:
    return int(session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one())


def count_users(session: Session, *, directory: DirectoryScope = ALL, include_inactive: bool = False) -> int:
    """How many users `list_users` with the same filters and no limit would return."""
    stmt = select(User.id)
    if (cond := _scope(User.directory, directory)) is not None:
        stmt = stmt.where(cond)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return _count(session, stmt)


def count_teams(session: Session, *, directory: DirectoryScope = ALL) -> int:
    stmt = select(Team.id)
    if (cond := _scope(Team.directory, directory)) is not None:
        stmt = stmt.where(cond)
    return _count(session, stmt)


def count_audit(session: Session, *, since: datetime | None = None, directory: DirectoryScope = ALL) -> int:
    stmt = select(AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= _utc(since))
    if (cond := _scope(AuditEvent.directory, directory)) is not None:
        stmt = stmt.where(cond)
    return _count(session, stmt)
