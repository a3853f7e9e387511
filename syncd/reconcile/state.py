"""The fingerprint of a directory's state that a kept plan depends on (`syncd runs approve`).

`fingerprint` is the id of the newest audit event of the directory's users and teams (the
service layer records one in the same transaction as every write), how many of the directory's
events lie just below it (see `WINDOW`), and the connector's saved read cursor. Two equal
fingerprints mean no user, team or membership of the directory was written and no run read the
IdP in between. Take it before reading the store view a plan is
computed against: a write landing between the two then makes the fingerprint older than the
view, so an approval is refused rather than wrongly allowed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from syncd.store.models import AuditEvent, ConnectorCursor

#: audit resource types whose events change what a plan was computed against
STATE_KINDS = ("user", "team")
#: ids below the newest that are recounted: on PostgreSQL ids come from a sequence, so a write
#: can commit after the fingerprint with a lower id than the newest seen; it lands in this window
#: (or raises the newest id) and changes the count. SQLite assigns ids in commit order.
WINDOW = 10_000


def fingerprint(session: Session, directory: str) -> dict[str, Any]:
    """{"audit_id": newest audit event id or None, "recent": events of the directory among the
    `WINDOW` ids up to it, "cursor": saved cursor or None}."""
    kinds = (AuditEvent.directory == directory, AuditEvent.resource_type.in_(STATE_KINDS))
    audit_id = session.execute(select(func.max(AuditEvent.id)).where(*kinds)).scalar_one()
    recent = 0
    if audit_id is not None:
        recent = session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(*kinds, AuditEvent.id > audit_id - WINDOW, AuditEvent.id <= audit_id)
        ).scalar_one()
    cursor = session.get(ConnectorCursor, (directory, "default"))
    return {"audit_id": audit_id, "recent": recent, "cursor": cursor.value if cursor else None}


def recount(session: Session, directory: str, audit_id: int | None) -> int:
    """`recent` for the same ids as a fingerprint taken at `audit_id`, counted now."""
    if audit_id is None:
        return 0
    return session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.directory == directory,
            AuditEvent.resource_type.in_(STATE_KINDS),
            AuditEvent.id > audit_id - WINDOW,
            AuditEvent.id <= audit_id,
        )
    ).scalar_one()
