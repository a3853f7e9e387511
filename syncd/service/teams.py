"""Team (SCIM Group) operations. The caller owns the session and its transaction.

Invariants: a team is visible only to actors of its directory; `version` grows once per
request that really changes the team's attributes or member set; `member_count` equals the
number of membership rows; member changes never load the member list (except a full
replace); a request either applies all of its member changes or none (it raises before
commit, and the caller rolls back).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from syncd.service import audit, members
from syncd.service.common import (
    Page,
    check_if_match,
    check_unique,
    find_scoped,
    flush_unique,
    get_scoped,
    list_scoped,
    new_id,
)
from syncd.service.context import Actor
from syncd.service.filters import parse_filter, team_condition
from syncd.service.keyed import Key, key_filter, list_by_key
from syncd.service.patch import MemberOp, apply_patch, member_refs
from syncd.service.resource import fold, normalize, require
from syncd.service.schema import GROUP
from syncd.store.models import Membership, Team, utcnow

#: The attributes a per-directory unique index covers (`keyed`).
KEYS = (Key("displayname", "display_name_key", fold=True), Key("externalid", "external_id", fold=False))


def get_team(session: Session, *, actor: Actor, team_id: str, for_update: bool = False) -> Team:
    return get_scoped(session, Team, "Group", team_id, actor, for_update=for_update)


def find_team(session: Session, *, actor: Actor, external_id: str) -> Team | None:
    return find_scoped(session, Team, actor, external_id)


def create_team(session: Session, *, actor: Actor, body: dict[str, Any]) -> Team:
    """POST /Groups; members in the body are added (all must be users of the directory)."""
    data = normalize(GROUP, body)
    require(GROUP, data)
    member_list, displays = _body_members(body)
    _check_unique(session, actor, data, None)
    now = utcnow()
    row = Team(
        id=new_id(),
        directory=actor.directory,
        display_name="",
        display_name_key="",
        created_at=now,
        updated_at=now,
    )
    _write(row, data)
    session.add(row)
    flush_unique(session, f"displayName {data['displayName']!r}")
    added: list[str] = []
    if member_list:
        added = members.add_members(
            session, actor=actor, team=row, user_ids=member_list, displays=dict(displays)
        )
        row.member_count = len(added)
        session.add(row)
    audit.record(
        session,
        actor=actor,
        action="team.create",
        resource_type="team",
        resource_id=row.id,
        after={**data, "members_added": added} if added else data,
    )
    return row


def replace_team(
    session: Session, *, actor: Actor, team_id: str, body: dict[str, Any], if_match: str | None = None
) -> Team:
    """PUT /Groups/{id}: replace attributes; a `members` list in the body replaces the member set.

    A body without `members` leaves the members as they are: clients that read a group with
    `excludedAttributes=members` and PUT it back must not empty the team.
    """
    row = get_team(session, actor=actor, team_id=team_id, for_update=True)
    check_if_match(if_match, row.version)
    data = normalize(GROUP, body, current_id=row.id)
    require(GROUP, data)
    ops = [MemberOp("replace", *_body_members(body))] if _has_members(body) else []
    return _update(session, actor, row, data, ops, "team.replace")[0]


def patch_team(
    session: Session, *, actor: Actor, team_id: str, operations: Any, if_match: str | None = None
) -> Team:
    """PATCH /Groups/{id}: attribute changes and member changes, all or nothing."""
    row = get_team(session, actor=actor, team_id=team_id, for_update=True)
    check_if_match(if_match, row.version)
    outcome = apply_patch(GROUP, row.data, operations, current_id=row.id)
    return _update(session, actor, row, outcome.data, outcome.member_ops, "team.patch")[0]


def change_members(
    session: Session,
    *,
    actor: Actor,
    team_id: str,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """Add and remove some members of a team; returns (added, removed) user ids."""
    row = get_team(session, actor=actor, team_id=team_id, for_update=True)
    ops = [MemberOp("remove", tuple(remove)), MemberOp("add", tuple(add))]
    _, added, removed = _update(session, actor, row, row.data, ops, "team.members")
    return added, removed


def delete_team(session: Session, *, actor: Actor, team_id: str, if_match: str | None = None) -> None:
    row = get_team(session, actor=actor, team_id=team_id, for_update=True)
    check_if_match(if_match, row.version)
    session.execute(delete(Membership).where(Membership.team_id == row.id))
    before = {**row.data, "member_count": row.member_count}
    session.delete(row)
    session.flush()
    audit.record(
        session, actor=actor, action="team.delete", resource_type="team", resource_id=team_id, before=before
    )


def list_teams(
    session: Session,
    *,
    actor: Actor,
    filter: str | None = None,
    start_index: int | None = 1,
    count: int | None = None,
) -> Page[Team]:
    """Teams matching a SCIM filter, ordered by creation then id (stable across pages)."""
    flt = parse_filter(filter) if filter else None
    key = key_filter(flt, GROUP, KEYS) if flt is not None else None
    if key is not None:
        return list_by_key(session, Team, actor, *key, start_index, count)
    return list_scoped(session, Team, actor, team_condition(flt) if flt else None, start_index, count)


# -- internals -------------------------------------------------------------------------------


def _update(
    session: Session, actor: Actor, row: Team, data: dict[str, Any], ops: list[MemberOp], action: str
) -> tuple[Team, list[str], list[str]]:
    """Apply attribute and member changes; returns (team, net added ids, net removed ids)."""
    before = row.data
    changed_attrs = data != before
    if changed_attrs:
        _check_unique(session, actor, data, row.id)
    added: dict[str, None] = {}  # ordered sets of net changes over all ops
    removed: dict[str, None] = {}
    relabeled: dict[str, None] = {}  # kept members whose display a replace changed
    for op in ops:
        if op.kind == "add":
            got = members.add_members(
                session, actor=actor, team=row, user_ids=op.ids, displays=dict(op.displays)
            )
            lost = []
        elif op.kind == "remove":
            got, lost = [], members.remove_members(session, actor=actor, team=row, user_ids=op.ids)
        elif op.kind == "clear":
            got, lost = (
                [],
                members.remove_members(
                    session, actor=actor, team=row, user_ids=members.member_ids(session, row.id)
                ),
            )
        else:
            shown = dict(op.displays)
            got, lost = members.replace_members(
                session, actor=actor, team=row, user_ids=op.ids, displays=shown
            )
            kept = {u: shown.get(u) for u in op.ids if u not in got}
            relabeled.update(dict.fromkeys(members.relabel(session, team=row, displays=kept)))
        for u in got:
            if removed.pop(u, 0) is None:
                continue  # removed earlier in this request, back again: no net change
            added[u] = None
        for u in lost:
            if added.pop(u, 0) is None:
                continue
            removed[u] = None
    net_added = len(added) - len(removed)
    if not changed_attrs and not added and not removed and not relabeled:
        return row, [], []
    if changed_attrs:
        _write(row, data)
    row.member_count += net_added
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    if changed_attrs:
        flush_unique(session, f"displayName {data['displayName']!r}")
    else:  # only count, version and time change: no unique index can refuse it, no savepoint
        session.flush()
    after: dict[str, Any] = dict(data) if changed_attrs else {}
    if added:
        after["members_added"] = list(added)
    if removed:
        after["members_removed"] = list(removed)
    if relabeled:
        after["members_relabeled"] = list(relabeled)
    audit.record(
        session,
        actor=actor,
        action=action,
        resource_type="team",
        resource_id=row.id,
        before=before if changed_attrs else None,
        after=after,
    )
    return row, list(added), list(removed)


def _has_members(body: dict[str, Any]) -> bool:
    return any(str(k).lower() == "members" for k in body)


def _body_members(body: dict[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The member ids of a POST/PUT body and the (id, display) pairs given with them."""
    for k, v in body.items():
        if str(k).lower() == "members" and v is not None:
            return member_refs(v)
    return (), ()


def _check_unique(session: Session, actor: Actor, data: dict[str, Any], own_id: str | None) -> None:
    name, ext = data["displayName"], data.get("externalId")
    check_unique(
        session,
        Team,
        actor,
        own_id,
        [
            (Team.display_name_key, fold(name), f"a group named {name!r} already exists"),
            (Team.external_id, ext, f"externalId {ext!r} is already taken"),
        ],
    )


def _write(row: Team, data: dict[str, Any]) -> None:
    row.data = data
    row.display_name = data["displayName"]
    row.display_name_key = fold(data["displayName"])
    row.external_id = data.get("externalId")


def set_archived(session: Session, *, actor: Actor, team_id: str, archived: bool) -> Team:
    """Archive a team that left the IdP's scope (its members are removed separately) or restore it."""
    row = get_team(session, actor=actor, team_id=team_id, for_update=True)
    if row.archived == archived:
        return row
    row.archived = archived
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="team.archive" if archived else "team.restore",
        resource_type="team",
        resource_id=row.id,
        after={"archived": archived},
    )
    return row
