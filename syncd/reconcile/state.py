"""The fingerprint of a directory's state that a kept plan depends on (`syncd runs approve`).

`fingerprint` is:
- `audit_id`: the id of the newest audit event of the directory's users and teams (the service
  layer records one in the same transaction as every write, memberships included);
- `below`: how many of the directory's audit events, of any kind, have an id up to `audit_id`.
  On PostgreSQL ids come from one sequence shared by every directory, so a write can commit
  after the fingerprint with a lower id than the newest seen, however many ids other
  directories took in between; it then raises this count. SQLite assigns ids in commit order.
  Counted over the index audit_events(directory, id) alone (no other column), so the cost is an
  index range, never a scan of the table;
- `cursor`: the connector's saved read cursor.

Two equal fingerprints mean no user, team or membership of the directory was written and no
run read the IdP in between. Take it before reading the store view a plan is computed against:
a write landing between the two then makes the fingerprint older than the view, so an approval
is refused rather than wrongly allowed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from syncd.store.models import AuditEvent, ConnectorCursor

#: audit resource types whose events change what a plan was computed against
STATE_KINDS = ("user", "team")


def fingerprint(session: Session, directory: str) -> dict[str, Any]:
    """{"audit_id": newest user/team audit event id or None, "below": the directory's events
    with an id up to it, "cursor": saved cursor or None}."""
    audit_id = session.execute(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.directory == directory, AuditEvent.resource_type.in_(STATE_KINDS)
        )
    ).scalar_one()
    cursor = session.get(ConnectorCursor, (directory, "default"))
    return {
        "audit_id": audit_id,
        "below": below(session, directory, audit_id),
        "cursor": cursor.value if cursor else None,
    }


def below(session: Session, directory: str, audit_id: int | None) -> int:
    """How many of the directory's audit events (any kind) have an id up to `audit_id`."""
    if audit_id is None:
        return 0
    return session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.directory == directory, AuditEvent.id <= audit_id)
    ).scalar_one()
