"""The store: SQLModel tables, engine and session setup, Alembic migrations."""

from syncd.store.engine import StoreError, make_engine, session_scope, upgrade
from syncd.store.models import (
    AuditEvent,
    ConnectorCursor,
    Directory,
    Membership,
    ScimToken,
    SyncRun,
    Team,
    User,
    UserEmail,
)

__all__ = [
    "AuditEvent",
    "ConnectorCursor",
    "Directory",
    "Membership",
    "ScimToken",
    "StoreError",
    "SyncRun",
    "Team",
    "User",
    "UserEmail",
    "make_engine",
    "session_scope",
    "upgrade",
]
