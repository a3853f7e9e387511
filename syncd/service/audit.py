"""Audit events: one per change, written in the same transaction as the change.

Every audit event of a user or team also enters the change feed (`syncd.feed.writer`), in
the same transaction: the feed is exactly the committed changes.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from syncd.feed import writer as feed
from syncd.service.context import Actor
from syncd.store.models import AuditEvent


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
    """Add an audit event to the session's transaction (never committed on its own)."""
    session.add(
        AuditEvent(
            directory=actor.directory,
            actor=actor.label,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            before=before,
            after=after,
            sync_run_id=actor.sync_run_id,
        )
    )
    feed.record(
        session,
        directory=actor.directory,
        actor=actor.label,
        events=[(action, resource_type, resource_id, before, after)],
    )
