"""Read-only detail views for one user or one team (`syncd users show`, `syncd teams show`).

A user or team is found by its local id, or by its name compared case-insensitively (userName
for users, displayName for teams), within a directory scope. Names are unique per directory
only, so a lookup returns every match and the caller decides what an ambiguity means.
Memberships carry their source (scim, pull, login, manual) and when they were made (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from syncd.service.views import ALL, DirectoryScope, UserRow, _scope, _utc, list_users_by_id
from syncd.store.models import Membership, Team, User, UserEmail


@dataclass(frozen=True)
class UserTeam:
    team_id: str
    display_name: str
    directory: str | None
    archived: bool
    source: str
    since: datetime


@dataclass(frozen=True)
class UserDetail:
    user: UserRow
    given_name: str | None
    family_name: str | None
    emails: tuple[str, ...]
    teams: tuple[UserTeam, ...]


@dataclass(frozen=True)
class TeamMember:
    user_id: str
    user_name: str
    display_name: str | None
    active: bool
    source: str
    since: datetime


@dataclass(frozen=True)
class TeamDetail:
    id: str
    display_name: str
    directory: str | None
    external_id: str | None
    archived: bool
    member_count: int
    version: int
    created_at: datetime
    updated_at: datetime
    members: tuple[TeamMember, ...]  # by user name; at most the `limit` asked for
    sources: dict[str, int]  # memberships per source, over all members


def find_users(session: Session, *, user: str, directory: DirectoryScope = ALL) -> list[UserDetail]:
    """Users whose id is `user` or whose userName equals it case-insensitively; three queries."""
    stmt = select(User.id).where(or_(User.id == user, User.user_name_key == user.casefold()))
    if (cond := _scope(User.directory, directory)) is not None:
        stmt = stmt.where(cond)
    ids = list(session.exec(stmt).all())
    if not ids:
        return []
    rows = list_users_by_id(session, ids)
    names = {
        uid: (given, family)
        for uid, given, family in session.exec(
            select(User.id, User.given_name, User.family_name).where(User.id.in_(ids))
        ).all()
    }
    emails: dict[str, list[str]] = {}
    for uid, value in session.exec(
        select(UserEmail.user_id, UserEmail.value)
        .where(UserEmail.user_id.in_(ids))
        .order_by(UserEmail.user_id, UserEmail.primary.desc(), UserEmail.id)
    ).all():
        emails.setdefault(uid, []).append(value)
    teams: dict[str, list[UserTeam]] = {}
    for uid, tid, name, tdir, archived, source, since in session.exec(
        select(
            Membership.user_id,
            Team.id,
            Team.display_name,
            Team.directory,
            Team.archived,
            Membership.source,
            Membership.created_at,
        )
        .join(Team, Team.id == Membership.team_id)
        .where(Membership.user_id.in_(ids))
        .order_by(Team.display_name_key, Team.id)
    ).all():
        teams.setdefault(uid, []).append(UserTeam(tid, name, tdir, archived, source, _utc(since)))
    return [
        UserDetail(
            user=r,
            given_name=names[r.id][0],
            family_name=names[r.id][1],
            emails=tuple(emails.get(r.id, ())),
            teams=tuple(teams.get(r.id, ())),
        )
        for r in rows
    ]


def find_teams(
    session: Session, *, team: str, directory: DirectoryScope = ALL, member_limit: int | None = 50
) -> list[TeamDetail]:
    """Teams whose id is `team` or whose displayName equals it case-insensitively, each with its
    first `member_limit` members by user name (None: all) and its membership count per source."""
    stmt = select(Team).where(or_(Team.id == team, Team.display_name_key == team.casefold()))
    if (cond := _scope(Team.directory, directory)) is not None:
        stmt = stmt.where(cond)
    stmt = stmt.order_by(func.coalesce(Team.directory, ""), Team.id)
    return [_team_detail(session, t, member_limit) for t in session.exec(stmt).all()]


def _team_detail(session: Session, t: Team, limit: int | None) -> TeamDetail:
    q: Any = (
        select(
            User.id, User.user_name, User.display_name, User.active, Membership.source, Membership.created_at
        )
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.team_id == t.id)
        .order_by(User.user_name_key, User.id)
    )
    if limit is not None:
        q = q.limit(limit)
    members = tuple(
        TeamMember(uid, name, disp, active, source, _utc(since))
        for uid, name, disp, active, source, since in session.exec(q).all()
    )
    sources = dict(
        session.exec(
            select(Membership.source, func.count())
            .where(Membership.team_id == t.id)
            .group_by(Membership.source)
            .order_by(Membership.source)
        ).all()
    )
    return TeamDetail(
        id=t.id,
        display_name=t.display_name,
        directory=t.directory,
        external_id=t.external_id,
        archived=t.archived,
        member_count=sum(sources.values()),
        version=t.version,
        created_at=_utc(t.created_at),
        updated_at=_utc(t.updated_at),
        members=members,
        sources=sources,
    )
