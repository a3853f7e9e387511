"""Readers' saved positions (`feed_cursors`), keyed by consumer, e.g. "webhook:alerts"."""

from __future__ import annotations

from sqlalchemy.orm import Session

from syncd.store.models import FeedCursor, utcnow


def load_cursor(session: Session, consumer: str) -> str | None:
    """The consumer's saved position, or None if it never saved one."""
    row = session.get(FeedCursor, consumer)
    return row.position if row else None


def save_cursor(session: Session, consumer: str, position: str, *, delivered: int = 0) -> FeedCursor:
    """Save the position (in the caller's transaction); clears the failure state."""
    row = session.get(FeedCursor, consumer, with_for_update=True)
    now = utcnow()
    if row is None:
        row = FeedCursor(consumer=consumer, position=position, updated_at=now)
    row.position, row.updated_at = position, now
    row.attempts, row.last_error = 0, None
    if delivered:
        row.delivered += delivered
        row.last_success_at = now
    session.add(row)
    return row
