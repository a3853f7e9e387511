"""Audit events of console actions that change no user or team (sign-in, sign-out, a refused
sign-in): `directory` NULL, `resource_type` "console", the admin's `Admin.actor` as actor.

They are not change-feed events (the feed carries user and team changes only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from syncd.store import session_scope
from syncd.store.models import AuditEvent


def record_console_event(
    engine: Engine, *, actor: str, action: str, subject: str, after: dict[str, Any] | None = None
) -> None:
    """Write one audit event in its own transaction (`action` like "console.signin")."""
    with session_scope(engine) as s:
        s.add(
            AuditEvent(
                directory=None,
                actor=actor[:256],
                action=action,
                resource_type="console",
                resource_id=subject[:64],
                after=after,
            )
        )
