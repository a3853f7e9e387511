"""The audit trail of console actions: one `AuditEvent` per action, actor `Admin.actor`.

Console events name what was acted on with resource types outside the directory state
(`directory`, `sync_run`, `login`, `token` — never `user` or `team`), so they neither enter the
change feed nor move a directory's fingerprint (a console click must not refuse an approval).
Changes the action itself makes (a login sync's memberships, an approval's writes) are audited
by the service layer as usual.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from syncd.console.deps import Admin
from syncd.store import session_scope
from syncd.store.models import AuditEvent

#: resource types of console events (none is a directory-state kind)
KINDS = ("directory", "sync_run", "login", "token")


def record(
    engine: Engine,
    admin: Admin,
    *,
    action: str,
    resource_type: str,
    resource_id: str,
    directory: str | None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write one console audit event in its own transaction."""
    if resource_type not in KINDS:
        raise ValueError(f"console events name a {', '.join(KINDS)}, not a {resource_type}")
    with session_scope(engine) as s:
        s.add(
            AuditEvent(
                directory=directory,
                actor=admin.actor[:256],
                action=action,
                resource_type=resource_type,
                resource_id=str(resource_id)[:64],
                after=after,
            )
        )
