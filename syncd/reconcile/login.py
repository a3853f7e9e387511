"""One user's on-login sync, as the reconcile diff over a one-user scope.

`read_user` reads the directory's user of an external id and all the teams it belongs to in
one statement; `read_scope` adds the directory's teams of the user's groups it is not in yet
(one statement for all of them) and, when some group has no team yet, every team of the
directory instead, so that new teams are named as a pull names them (`syncd.reconcile.names`:
the rule depends on all of the directory's teams).

`login_plan` (pure) turns the IdP's answer and that scope into a delta `Snapshot` and a
`StoreView` limited to the one user (the user's groups carry it as their only member; the
teams it belongs to whose group the lookup reports and does not return carry no member), runs
`diff` on them and keeps only what a login may change:

- `create_team`, and `restore_team` of the user's groups (never a rename or an archive: the
  next pull does those);
- `add_members` and `remove_members`, of this user only; a manual membership is never removed
  and never counted as missing (the diff's rule), and a team whose group the lookup cannot
  report is not compared at all.

`apply_login_plan` writes that plan in the caller's transaction through the bulk service
operations, a few statements whatever the number of groups: restores, then `bulk.join_teams`
(the new teams created already holding the user, and the user added to the existing ones),
then `bulk.remove_memberships`; with the rows, versions, audit events and change-feed rows
their per-row counterparts (`teams.create_team` per new team, `teams.change_members` per
team) write. An empty plan writes nothing. A create that meets a team a concurrent writer
just created raises `LostRace`: the caller retries in a new transaction, whose read adopts
that row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session

from syncd.reconcile.diff import diff
from syncd.reconcile.plan import Plan, TeamChange
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.service import bulk, limits
from syncd.service import teams as team_ops
from syncd.service.context import Actor
from syncd.service.errors import Conflict, InvalidValue
from syncd.service.resource import normalize, require
from syncd.service.schema import GROUP
from syncd.store.models import Membership, Team

TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]

_USER_TEAMS = (
    "SELECT t.id, t.external_id, t.display_name, t.directory, t.archived, m.source FROM memberships AS m "
    "JOIN teams AS t ON t.id = m.team_id WHERE m.user_id = {} ORDER BY t.display_name_key"
)
_USER_AND_TEAMS = (
    "SELECT u.id, u.user_name, u.active, t.id, t.external_id, t.display_name, t.directory, t.archived, "
    "m.source FROM users AS u LEFT JOIN memberships AS m ON m.user_id = u.id "
    "LEFT JOIN teams AS t ON t.id = m.team_id "
    "WHERE coalesce(u.directory, '') = {} AND u.external_id = {} ORDER BY t.display_name_key"
)
_BY_EXT_SQLITE = text(
    "SELECT t.id, t.external_id, t.display_name, t.archived FROM json_each(:exts) AS x "
    "CROSS JOIN teams AS t WHERE coalesce(t.directory, '') = :dir AND t.external_id = x.value"
)
_BY_EXT_PG = text(
    "SELECT t.id, t.external_id, t.display_name, t.archived FROM unnest(CAST(:exts AS varchar[])) AS x(v) "
    "JOIN teams AS t ON coalesce(t.directory, '') = :dir AND t.external_id = x.v"
)


class LostRace(Exception):
    """A concurrent writer created a row this login meant to create: retry in a new transaction."""


@dataclass(frozen=True, slots=True)
class HeldTeam:
    """A team the user belongs to, with the source of that membership."""

    id: str
    external_id: str | None
    display_name: str
    directory: str | None
    archived: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The login answer's form of a team the user is in."""
        return {
            "id": self.id,
            "external_id": self.external_id,
            "display_name": self.display_name,
            "source": self.source,
            "directory": self.directory,
        }


@dataclass(slots=True)
class LoginScope:
    """What the store holds for one user of one directory (see `read_scope`)."""

    user: StoredUser
    held: list[HeldTeam]
    teams: dict[str, StoredTeam]
    unmanaged_team_names: set[str] = field(default_factory=set)


@dataclass(slots=True)
class LoginChanges:
    """What `apply_login_plan` wrote: teams as (id, external id, display name)."""

    created: list[tuple[str, str, str]] = field(default_factory=list)
    added: list[tuple[str, str, str]] = field(default_factory=list)
    removed: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def user_teams(session: Session, user_id: str) -> list[HeldTeam]:
    """Every team the user belongs to (any directory), ordered by name, in one statement.

    Read straight from the driver's cursor on SQLite and PostgreSQL: for a user in hundreds of
    teams, building SQLAlchemy rows costs more than the query."""
    conn = session.connection()
    raw = conn.connection.dbapi_connection
    if conn.dialect.name in ("sqlite", "postgresql") and raw is not None:
        cur = raw.cursor()
        try:
            cur.execute(_USER_TEAMS.format("?" if conn.dialect.name == "sqlite" else "%s"), (user_id,))
            return [HeldTeam(i, e, n, d, bool(a), src) for i, e, n, d, a, src in cur.fetchall()]
        finally:
            cur.close()
    t, m = TEAMS.c, MEMBERSHIPS.c
    q = (
        select(t.id, t.external_id, t.display_name, t.directory, t.archived, m.source)
        .join(MEMBERSHIPS, m.team_id == t.id)
        .where(m.user_id == user_id)
        .order_by(t.display_name_key)
    )
    return [HeldTeam(*row) for row in conn.execute(q).all()]


def read_user(session: Session, directory: str, external_id: str) -> tuple[StoredUser, list[HeldTeam]] | None:
    """The directory's user of this external id and every team it belongs to (as `user_teams`),
    in one statement; None if the store has no such user."""
    if not limits.storable_id(external_id):
        return None
    conn = session.connection()
    raw = conn.connection.dbapi_connection
    if conn.dialect.name in ("sqlite", "postgresql") and raw is not None:
        cur = raw.cursor()
        try:
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            cur.execute(_USER_AND_TEAMS.format(mark, mark), (directory, external_id))
            rows = cur.fetchall()
        finally:
            cur.close()
    else:
        rows = conn.execute(
            text(_USER_AND_TEAMS.format(":d", ":e")), {"d": directory, "e": external_id}
        ).all()
    if not rows:
        return None
    uid, name, active = rows[0][:3]
    held = [HeldTeam(i, e, n, d, bool(a), src) for *_, i, e, n, d, a, src in rows if i is not None]
    return StoredUser(uid, external_id, name, bool(active)), held


def read_scope(
    session: Session,
    directory: str,
    user: StoredUser,
    group_ids: Sequence[str],
    held: list[HeldTeam] | None = None,
) -> LoginScope:
    """The user's memberships (`held`, read here if None) and the directory's teams of
    `group_ids` the user is not in (all of the directory's teams, and the names of those without
    an external id, if some group has no team yet).

    Ids the store cannot hold name no team and are not looked up (PostgreSQL refuses a NUL)."""
    held = user_teams(session, user.id) if held is None else held
    teams = {
        h.external_id: StoredTeam(h.id, h.external_id, h.display_name, h.archived)
        for h in held
        if h.directory == directory and h.external_id is not None
    }
    exts = [e for e in dict.fromkeys(group_ids) if e not in teams and limits.storable_id(e)]
    pg = session.get_bind().dialect.name == "postgresql"
    conn = session.connection()
    if exts:  # the user's groups whose team it is not in yet
        stmt = _BY_EXT_PG if pg else _BY_EXT_SQLITE
        params = {"exts": exts if pg else json.dumps(exts), "dir": directory}
        for tid, ext, name, archived in conn.execute(stmt, params).all():
            teams[ext] = StoredTeam(tid, ext, name, bool(archived))
    unmanaged: set[str] = set()
    if any(e not in teams for e in exts):  # some team will be created: name it against all of them
        t = TEAMS.c
        q = select(t.id, t.external_id, t.display_name, t.archived, t.display_name_key).where(
            t.directory == directory
        )
        for tid, ext, name, archived, key in conn.execute(q).all():
            if ext is None:
                unmanaged.add(key)
            else:
                teams[ext] = StoredTeam(tid, ext, name, bool(archived))
    return LoginScope(user, held, teams, unmanaged)


def login_plan(ug: UserGroups, kept: Sequence[SnapshotGroup], scope: LoginScope) -> Plan:
    """The changes this login makes (pure): `diff` over the one-user scope, kept to the kinds a
    login writes (module docstring). `kept`: the user's groups within the directory's scope."""
    assert ug.user is not None
    ext = scope.user.external_id
    directory = ug.directory
    me = frozenset({ext})
    groups = {g.external_id: SnapshotGroup(g.external_id, g.display_name, me) for g in kept}
    view = StoreView(
        users={ext: scope.user}, teams=dict(scope.teams), unmanaged_team_names=scope.unmanaged_team_names
    )
    for h in scope.held:
        if h.directory != directory or h.external_id is None:
            continue
        (view.manual if h.source == "manual" else view.members)[h.external_id] = {ext}
        if h.external_id not in groups and ug.reports(h.external_id):
            groups[h.external_id] = SnapshotGroup(h.external_id, h.display_name)
    user = SnapshotUser(ext, scope.user.user_name, scope.user.active)
    snapshot = Snapshot(directory, mode="delta", users={ext: user}, groups=groups)
    full = diff(snapshot, view)
    mine = {g.external_id for g in kept}
    plan = Plan(directory, complete=ug.complete, notes=full.notes)
    plan.teams = [
        c
        for c in full.teams
        if c.kind == "create_team" or (c.kind == "restore_team" and c.external_id in mine)
    ]
    plan.members = [c for c in full.members if c.kind in ("add_members", "remove_members")]
    return plan


def apply_login_plan(session: Session, actor: Actor, plan: Plan, scope: LoginScope) -> LoginChanges:
    """Write `plan` (from `login_plan` over `scope`) in the caller's transaction.

    A team whose body the service refuses is not created (a note says why) and gets no member.
    Raises LostRace if a team to create was created meanwhile by another writer."""
    out = LoginChanges()
    if plan.empty:
        return out
    names = {t.id: (t.id, t.external_id, t.display_name) for t in scope.teams.values()}
    for c in plan.teams:
        if c.kind == "restore_team" and c.store_id is not None:
            row = team_ops.set_archived(session, actor=actor, team_id=c.store_id, archived=False)
            names[row.id] = (row.id, c.external_id, row.display_name)
    session.flush()  # the bulk statements bump versions in SQL: the ORM rows must be written first
    creates = [c for c in plan.teams if c.kind == "create_team"]
    adds = [c for c in plan.members if c.kind == "add_members"]
    # every group a login creates a team for is one of the user's: the plan adds the user to it
    assert {c.external_id for c in creates} <= {c.team_external_id for c in adds}
    joins = sorted({c.team_store_id for c in adds if c.team_store_id is not None})
    if creates or joins:
        try:
            try:
                new, joined = _join(session, actor, scope.user.id, creates, joins)
            except InvalidValue:  # some group is beyond the service's limits even cleaned (nothing
                creates = _valid(creates, out.notes)  # was written): create the others
                new, joined = _join(session, actor, scope.user.id, creates, joins)
        except Conflict as exc:  # the view was read before a concurrent writer's commit
            raise LostRace(exc.detail) from exc
        for c, tid in zip(creates, new, strict=True):
            names[tid] = (tid, c.external_id, c.display_name)
            out.created.append(names[tid])
        out.added.extend(names[t] for t in sorted((*new, *joined)))
    removes = sorted(
        {c.team_store_id for c in plan.members if c.kind == "remove_members" and c.team_store_id is not None}
    )
    if removes:
        left = bulk.remove_memberships(session, actor=actor, pairs=[(t, scope.user.id) for t in removes])
        out.removed.extend(names[t] for t in sorted(left))
    return out


def _join(
    session: Session, actor: Actor, user_id: str, creates: list[TeamChange], joins: list[str]
) -> tuple[list[str], list[str]]:
    return bulk.join_teams(
        session, actor=actor, user_id=user_id, bodies=[_body(c) for c in creates], team_ids=joins
    )


def _body(c: TeamChange) -> dict[str, Any]:
    return {"displayName": c.display_name, "externalId": c.external_id}


def _valid(creates: list[TeamChange], notes: list[str]) -> list[TeamChange]:
    """The creates whose body the service accepts; a note for each of the others."""
    out = []
    for c in creates:
        try:
            require(GROUP, normalize(GROUP, _body(c)))
        except InvalidValue as exc:
            notes.append(f"group {c.external_id!r} not created: {exc.detail}")
            continue
        out.append(c)
    return out
