"""The fingerprint of a directory's state that a kept plan depends on (`syncd runs approve`).

`fingerprint` is the id of the newest audit event of the directory's users and teams (the
service layer records one in the same transaction as every write) and the connector's saved
read cursor. Two equal fingerprints mean no user, team or membership of the directory was
written and no run read the IdP in between. Take it before reading the store view a plan is
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


def fingerprint(session: Session, directory: str) -> dict[str, Any]:
    """{"audit_id": newest audit event id or None, "cursor": saved cursor or None}."""
    audit_id = session.execute(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.directory == directory, AuditEvent.resource_type.in_(STATE_KINDS)
        )
    ).scalar_one()
    cursor = session.get(ConnectorCursor, (directory, "default"))
    return {"audit_id": audit_id, "cursor": cursor.value if cursor else None}
