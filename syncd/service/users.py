"""User operations with SCIM semantics. The caller owns the session and its transaction.

Invariants: a user is visible only to actors of its directory; `version` grows only when the
stored attributes really change; every change writes one audit event; deleting a user removes
its memberships (no user is left listed in a team after DELETE).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syncd.service import audit
from syncd.service.common import (
    Page,
    check_if_match,
    check_unique,
    chunks,
    find_scoped,
    flush_unique,
    get_scoped,
    insert_new,
    list_scoped,
    new_id,
)
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.service.filters import parse_filter, user_condition
from syncd.service.keyed import Key, key_filter, list_by_key, rows_by_key
from syncd.service.patch import apply_patch
from syncd.service.resource import fold, normalize, require
from syncd.service.schema import USER
from syncd.store.models import Membership, Team, User, UserEmail, utcnow

USERS = User.__table__  # type: ignore[attr-defined]
EMAILS = UserEmail.__table__  # type: ignore[attr-defined]

_INSERT_USER = insert_new(USERS, "id")
_INSERT_EMAILS = insert(EMAILS)
#: The attributes a per-directory unique index covers (`keyed`).
KEYS = (Key("username", "user_name_key", fold=True), Key("externalid", "external_id", fold=False))


def get_user(session: Session, *, actor: Actor, user_id: str, for_update: bool = False) -> User:
    return get_scoped(session, User, "User", user_id, actor, for_update=for_update)


def find_user(session: Session, *, actor: Actor, external_id: str) -> User | None:
    return find_scoped(session, User, actor, external_id)


def create_user(session: Session, *, actor: Actor, body: dict[str, Any]) -> User:
    """POST /Users: a new user in the actor's directory; Conflict if userName/externalId is taken.

    The row is one `INSERT … ON CONFLICT DO NOTHING`: the per-directory unique indexes decide
    uniqueness, so a concurrent writer cannot slip between a check and the insert, and no
    savepoint is needed (the transaction stays usable after a Conflict). Only when the insert
    was refused is the taken attribute looked up, to name it. The returned User is not in the
    session (its columns are the inserted values).
    """
    data, values = new_row(actor, body)
    try:
        inserted = session.execute(_INSERT_USER, values).first()
    except IntegrityError as exc:  # not a unique index (e.g. a directory row missing)
        raise Conflict(f"userName {data['userName']!r} already exists") from exc
    if inserted is None:
        raise refused(session, actor, data)
    emails = email_rows(values["id"], data.get("emails"))
    if emails:
        session.execute(_INSERT_EMAILS, emails)
    audit.record(
        session, actor=actor, action="user.create", resource_type="user", resource_id=values["id"], after=data
    )
    return User(**values)


def new_row(actor: Actor, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A create's validated, normalised data and its users row (a new id, version 1)."""
    data = normalize(USER, body)
    require(USER, data)
    now = utcnow()
    values = {"id": new_id(), "directory": actor.directory, **columns(data), "version": 1}
    values["created_at"] = values["updated_at"] = now
    return data, values


def refused(bind: Session | Connection, actor: Actor, data: dict[str, Any]) -> Conflict:
    """The Conflict of a create whose insert a unique index refused: naming the attribute
    (userName, then externalId) another user of the directory holds, raised from here; else
    (its holder has just left) the userName's."""
    _check_unique(bind, actor, data, None)
    return Conflict(f"userName {data['userName']!r} already exists")


def replace_user(
    session: Session, *, actor: Actor, user_id: str, body: dict[str, Any], if_match: str | None = None
) -> User:
    """PUT /Users/{id}: replace every writable attribute; a no-op keeps the version."""
    row = get_user(session, actor=actor, user_id=user_id, for_update=True)
    check_if_match(if_match, row.version)
    data = normalize(USER, body, current_id=row.id)
    require(USER, data)
    return _update(session, actor, row, data, "user.replace")


def patch_user(
    session: Session, *, actor: Actor, user_id: str, operations: Any, if_match: str | None = None
) -> User:
    """PATCH /Users/{id} (RFC 7644 §3.5.2); all operations apply or none.

    `remove` of `active` unassigns it (RFC 7644 §3.5.2.2; readWrite and not required in RFC
    7643 §4.1.1): the user then has no `active` attribute and counts as active.
    """
    row = get_user(session, actor=actor, user_id=user_id, for_update=True)
    check_if_match(if_match, row.version)
    outcome = apply_patch(USER, row.data, operations, current_id=row.id)
    return _update(session, actor, row, outcome.data, "user.patch")


def set_active(session: Session, *, actor: Actor, user_id: str, active: bool) -> User:
    """Deactivate (soft delete) or reactivate a user."""
    row = get_user(session, actor=actor, user_id=user_id, for_update=True)
    data = {**row.data, "active": active}
    return _update(session, actor, row, data, "user.activate" if active else "user.deactivate")


def delete_user(session: Session, *, actor: Actor, user_id: str, if_match: str | None = None) -> None:
    """DELETE /Users/{id}: remove the row and its memberships (team counts and versions follow)."""
    row = get_user(session, actor=actor, user_id=user_id, for_update=True)
    check_if_match(if_match, row.version)
    candidates = (
        session.execute(select(Membership.team_id).where(Membership.user_id == row.id)).scalars().all()
    )
    team_ids: list[str] = []
    if candidates:
        # Lock the teams first (as member changes do: team, then memberships), then count only
        # the memberships this DELETE really removed: one that a concurrent PATCH removed after
        # the read above must not be subtracted from its team's count a second time.
        session.execute(
            select(Team.id)
            .where(Team.id.in_(sorted(candidates)))  # type: ignore[attr-defined]
            .order_by(Team.id)
            .with_for_update()
        )
        removed = delete(Membership).where(Membership.user_id == row.id).returning(Membership.team_id)
        team_ids = list(session.execute(removed).scalars())
    if team_ids:
        session.execute(
            update(Team)
            .where(Team.id.in_(team_ids))  # type: ignore[attr-defined]
            .values(member_count=Team.member_count - 1, version=Team.version + 1, updated_at=utcnow())
        )
    before = row.data
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.delete",
        resource_type="user",
        resource_id=user_id,
        before=before,
        after={"teams_left": list(team_ids)} if team_ids else None,
    )


def list_users(
    session: Session,
    *,
    actor: Actor,
    filter: str | None = None,
    start_index: int | None = 1,
    count: int | None = None,
) -> Page[User]:
    """Users matching a SCIM filter, ordered by creation then id (stable across pages)."""
    flt = parse_filter(filter) if filter else None
    key = key_filter(flt, USER, KEYS) if flt is not None else None
    if key is not None:
        return list_by_key(session, User, actor, *key, start_index, count)
    return list_scoped(session, User, actor, user_condition(flt) if flt else None, start_index, count)


def user_key(filter: str) -> tuple[str, str] | None:
    """(column, value) when `filter` is `userName eq "…"` or `externalId eq "…"` (`keyed`)."""
    return key_filter(parse_filter(filter), USER, KEYS)


def list_users_by_key(
    conn: Connection, *, actor: Actor, column: str, value: str, start_index: int | None, count: int | None
) -> Page[Any]:
    """`list_users` of a `user_key` filter on a Core connection (the same page, as rows)."""
    return rows_by_key(conn, USERS, actor, column, value, start_index, count)


def groups_of(session: Session | Connection, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """For each user id: its teams as (team id, display name); one query per 500 users."""
    out: dict[str, list[tuple[str, str]]] = {u: [] for u in user_ids}
    for part in chunks(list(user_ids)):
        q = (
            select(Membership.user_id, Team.id, Team.display_name)
            .join(Team, Team.id == Membership.team_id)
            .where(Membership.user_id.in_(part))  # type: ignore[attr-defined]
            .order_by(Team.display_name)
        )
        for uid, tid, name in session.execute(q).all():
            out[uid].append((tid, name))
    return out


# -- internals -------------------------------------------------------------------------------


def _update(session: Session, actor: Actor, row: User, data: dict[str, Any], action: str) -> User:
    before = row.data
    if data == before:
        return row
    _check_unique(session, actor, data, row.id)
    _write(row, data)
    _sync_emails(session, row.id, before.get("emails"), data.get("emails"))
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    flush_unique(session, f"userName {data['userName']!r}")
    audit.record(
        session,
        actor=actor,
        action=action,
        resource_type="user",
        resource_id=row.id,
        before=before,
        after=data,
    )
    return row


def _check_unique(
    session: Session | Connection, actor: Actor, data: dict[str, Any], own_id: str | None
) -> None:
    name, ext = data["userName"], data.get("externalId")
    check_unique(
        session,
        User,
        actor,
        own_id,
        [
            (User.user_name_key, fold(name), f"userName {name!r} is already taken"),
            (User.external_id, ext, f"externalId {ext!r} is already taken"),
        ],
    )


def columns(data: dict[str, Any]) -> dict[str, Any]:
    """The user columns stored for `data`: the data itself and the query columns derived from it."""
    name = data.get("name") or {}
    return {
        "data": data,
        "user_name": data["userName"],
        "user_name_key": fold(data["userName"]),
        "external_id": data.get("externalId"),
        "display_name": data.get("displayName"),
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "active": data.get("active", True),
    }


def _write(row: User, data: dict[str, Any]) -> None:
    """Store `data` and derive the query columns from it."""
    for key, value in columns(data).items():
        setattr(row, key, value)


def email_rows(user_id: str, emails: Any) -> list[dict[str, Any]]:
    """The UserEmail rows of an `emails` attribute (entries without a string value have none)."""
    return [
        {
            "user_id": user_id,
            "value": e["value"],
            "value_key": fold(e["value"]),
            "type": e.get("type"),
            "primary": bool(e.get("primary")),
        }
        for e in emails or []
        if isinstance(e, dict) and isinstance(e.get("value"), str)
    ]


def _sync_emails(session: Session, user_id: str, old: Any, new: Any) -> None:
    """Keep the user's UserEmail rows equal to its `emails` attribute."""
    if old == new:
        return
    if old:
        session.execute(delete(UserEmail).where(UserEmail.user_id == user_id))
    rows = email_rows(user_id, new)
    if rows:
        session.execute(_INSERT_EMAILS, rows)
