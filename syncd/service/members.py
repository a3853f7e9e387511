"""Team membership writes in O(changed members): never loads a team's member list to add or
remove some members. Only `replace_members` reads the whole list, since it must.

Functions here change rows and return what changed; the caller bumps the team's version and
count once per request (see `teams._touch`) and writes the audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from syncd.service import limits
from syncd.service.common import chunks, in_scope, insert_new
from syncd.service.context import Actor
from syncd.service.errors import InvalidValue
from syncd.store.models import Membership, Team, User, utcnow

MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
_INSERT_MEMBERSHIP = insert_new(MEMBERSHIPS, "user_id")
_DELETE_ONE = {  # by "keeps manual memberships" (every feed but "manual" does)
    keep: delete(Membership)
    .where(
        Membership.team_id == bindparam("team"),  # type: ignore[arg-type]
        Membership.user_id == bindparam("user"),  # type: ignore[arg-type]
        *([Membership.source != "manual"] if keep else []),
    )
    .returning(Membership.user_id)
    for keep in (False, True)
}
_USER_IN_SCOPE = select(User.id).where(
    User.id == bindparam("id"), func.coalesce(User.directory, literal_column("''")) == bindparam("scope")
)


def check_users(session: Session, *, actor: Actor, user_ids: Sequence[str]) -> None:
    """Raise InvalidValue naming every id that is not a user of the actor's directory."""
    ids = [u for u in user_ids if limits.storable_id(u)]
    found: set[str] = set()
    if len(ids) == 1:  # the usual PATCH: a statement built once
        params = {"id": ids[0], "scope": actor.directory or ""}
        found.update(session.execute(_USER_IN_SCOPE, params).scalars())
    else:
        for part in chunks(ids):
            q = select(User.id).where(User.id.in_(part), in_scope(User.directory, actor))  # type: ignore[attr-defined]
            found.update(session.execute(q).scalars())
    missing = [u for u in user_ids if u not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise InvalidValue(f"unknown members (no such user in this directory): {shown}")


def add_members(
    session: Session,
    *,
    actor: Actor,
    team: Team,
    user_ids: Iterable[str],
    displays: Mapping[str, str] | None = None,
) -> list[str]:
    """Insert the memberships that do not exist yet; returns the user ids really added.

    Existing memberships keep their source (a manual membership stays manual) and their
    display. `displays`: the SCIM `display` a client gave with some members (RFC 7643 §2.4:
    immutable, set when the member is added); the others render as their userName.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    check_users(session, actor=actor, user_ids=ids)
    now = utcnow()
    if len(ids) == 1:  # the usual PATCH: a statement compiled once
        row = _membership(team, ids[0], actor, now, displays)
        return list(session.execute(_INSERT_MEMBERSHIP, row).scalars())
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added: list[str] = []
    for part in chunks(ids):
        rows = [_membership(team, u, actor, now, displays) for u in part]
        stmt = insert(MEMBERSHIPS).values(rows).on_conflict_do_nothing().returning(MEMBERSHIPS.c.user_id)
        added.extend(session.execute(stmt).scalars())
    return added


def _membership(
    team: Team, user_id: str, actor: Actor, now: datetime, displays: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "team_id": team.id,
        "user_id": user_id,
        "directory": team.directory,
        "source": actor.source,
        "created_at": now,
        "display": (displays or {}).get(user_id),
    }


def remove_members(session: Session, *, actor: Actor, team: Team, user_ids: Iterable[str]) -> list[str]:
    """Delete the given memberships; returns the user ids really removed.

    A feed other than "manual" never removes a manual membership.
    """
    ids = [u for u in dict.fromkeys(user_ids) if limits.storable_id(u)]  # others are no member
    if len(ids) == 1:  # the usual PATCH: a statement built once
        stmt = _DELETE_ONE[actor.feed != "manual"]
        return list(session.execute(stmt, {"team": team.id, "user": ids[0]}).scalars())
    removed: list[str] = []
    for part in chunks(ids):
        stmt = delete(Membership).where(
            Membership.team_id == team.id,
            Membership.user_id.in_(part),  # type: ignore[attr-defined]
        )
        if actor.feed != "manual":
            stmt = stmt.where(Membership.source != "manual")
        removed.extend(session.execute(stmt.returning(Membership.user_id)).scalars())
    return removed


def relabel(session: Session, *, team: Team, displays: Mapping[str, str | None]) -> list[str]:
    """Set the display of existing memberships of `team` (a replaced member list recreates its
    values, RFC 7644 §3.5.2.3, so each may carry a display anew; None: the userName). Returns
    the user ids whose display really changed."""
    if not displays:
        return []
    have: dict[str, str | None] = {}
    for part in chunks(list(displays)):
        q = select(Membership.user_id, Membership.display).where(
            Membership.team_id == team.id,
            Membership.user_id.in_(part),  # type: ignore[attr-defined]
        )
        have.update(session.execute(q).tuples().all())
    changed = [u for u, d in displays.items() if u in have and have[u] != d]
    for u in changed:
        session.execute(
            update(Membership)
            .where(Membership.team_id == team.id, Membership.user_id == u)  # type: ignore[arg-type]
            .values(display=displays[u])
        )
    return changed


def member_ids(session: Session, team_id: str) -> list[str]:
    q = select(Membership.user_id).where(Membership.team_id == team_id)
    return list(session.execute(q).scalars())


def replace_members(
    session: Session,
    *,
    actor: Actor,
    team: Team,
    user_ids: Iterable[str],
    displays: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Make the member set equal `user_ids` (manual ones kept for sync feeds); (added, removed).
    `displays` as for `add_members`, for the members added (the caller relabels kept ones)."""
    want = list(dict.fromkeys(user_ids))
    check_users(session, actor=actor, user_ids=want)
    have = set(member_ids(session, team.id))
    wanted = set(want)
    removed = remove_members(session, actor=actor, team=team, user_ids=[u for u in have if u not in wanted])
    added = add_members(
        session, actor=actor, team=team, user_ids=[u for u in want if u not in have], displays=displays
    )
    return added, removed


def members_of(session: Session, team_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """For each team id: its members as (user id, display), ordered by userName; the display is
    the one a SCIM client set when adding the member, else the userName."""
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in team_ids}
    for part in chunks(list(team_ids)):
        q = (
            select(Membership.team_id, User.id, func.coalesce(Membership.display, User.user_name))
            .join(User, User.id == Membership.user_id)
            .where(Membership.team_id.in_(part))  # type: ignore[attr-defined]
            .order_by(Membership.team_id, User.user_name_key)
        )
        for tid, uid, name in session.execute(q).all():
            out[tid].append((uid, name))
    return out
