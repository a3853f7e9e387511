"""Audit events: one per change, written in the same transaction as the change.

Every audit event of a user or team also enters the change feed (`syncd.feed.writer`), in
the same transaction: the feed is exactly the committed changes.

Member changes are recorded per team, not per membership: one event of the team lists the
user ids it gained (`after["members_added"]`) and lost (`members_removed`) in that write (a
pull writes one per team per batch, however many members). `membership_history` answers
"when did alice join eng?" from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlmodel import Session

from syncd.feed import writer as feed
from syncd.service.context import Actor
from syncd.store.models import AuditEvent, utcnow

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = insert(AUDIT)  # built once: compiled once per engine


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the session's transaction (never committed on its own).

    The row is one Core INSERT, sent now; ORM changes still pending in the session are
    flushed first, so the event never precedes the rows it describes or refers to (its sync
    run) and audit ids follow the order of the calls.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()
    session.execute(
        _INSERT,
        {
            "at": utcnow(),
            "directory": actor.directory,
            "actor": actor.label,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "before": before,
            "after": after,
            "sync_run_id": actor.sync_run_id,
        },
    )
    feed.record(
        session,
        directory=actor.directory,
        actor=actor.label,
        events=[(action, resource_type, resource_id, before, after)],
    )


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    """One change of one membership, as the audit trail recorded it."""

    at: datetime
    change: Literal["added", "removed"]
    actor: str
    sync_run_id: int | None
    audit_id: int


#: the team fields of an audit event that list user ids, and the change each means
_MEMBER_LISTS = (("members_added", "added"), ("members_removed", "removed"))


def membership_history(session: Session, *, team_id: str, user_id: str) -> list[MembershipEvent]:
    """When `user_id` joined and left team `team_id`, oldest first (e.g. "when did alice join
    eng?": the `at` of the last "added").

    Reads the team's audit events (indexed by resource) and keeps those whose member lists
    name the user; a team created with members lists them as added. The deletion of the user
    (`user.delete` lists the teams it left) or of the team (while the user was in it) counts
    as a removal.
    """
    e = AuditEvent
    q = (
        select(e.id, e.at, e.actor, e.sync_run_id, e.action, e.resource_type, e.after)
        .where(
            ((e.resource_type == "team") & (e.resource_id == team_id))
            | ((e.resource_type == "user") & (e.resource_id == user_id) & (e.action == "user.delete"))
        )
        .order_by(e.id)
    )
    out: list[MembershipEvent] = []
    for audit_id, at, actor, run, action, rtype, after in session.execute(q).all():
        lists = after or {}
        if rtype == "user":
            if team_id in (lists.get("teams_left") or ()):
                out.append(MembershipEvent(at, "removed", actor, run, audit_id))
            continue
        if action == "team.delete":
            if out and out[-1].change == "added":
                out.append(MembershipEvent(at, "removed", actor, run, audit_id))
            continue
        for key, change in _MEMBER_LISTS:
            if user_id in (lists.get(key) or ()):
                out.append(MembershipEvent(at, change, actor, run, audit_id))  # type: ignore[arg-type]
    return out
