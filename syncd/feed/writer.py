"""Writes changes into the feed, in the caller's transaction (the service layer calls it).

`record(session, directory=, actor=, events=)` turns service events (see `kinds.changes_for`)
into `changes` rows with one executemany INSERT (plus one lookup of the team names bulk
member writes do not carry). Member changes store user ids only (`data["members"]`); the
reader adds the userNames, so a bulk write of a million memberships costs one JSON list.
On PostgreSQL each row gets `xid = pg_current_xact_id()` (the top-level transaction id even
inside a savepoint) and the transaction sends `NOTIFY syncd_changes`, delivered at commit.
Once a session that recorded changes commits, every `ChangeSignal` of this process wakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, event, insert, literal_column, text
from sqlalchemy.orm import Session

from syncd.feed import signal as _signal
from syncd.feed.kinds import Spec, changes_for
from syncd.feed.names import names
from syncd.service import bulk_sqlite
from syncd.store.models import Change, utcnow

CHANGES = Change.__table__  # type: ignore[attr-defined]
CHANNEL = "syncd_changes"
_XID = literal_column("pg_current_xact_id()::text::bigint")
_DIRTY = "syncd.feed.dirty"

Event = tuple[str, str, str, Any, Any]  # action, resource type, resource id, before, after


def record(
    session: Session,
    *,
    directory: str | None,
    actor: str,
    events: Iterable[Event],
    at: datetime | None = None,
) -> int:
    """Add the changes `events` mean to the session's transaction; returns how many."""
    specs = [s for ev in events for s in changes_for(*ev)]
    if not specs:
        return 0
    pg = session.get_bind().dialect.name == "postgresql"
    unnamed = {s.resource_id for s in specs if s.name is None}
    team_names = names(session, "teams", "display_name", unnamed) if unnamed else {}
    now = at or utcnow()
    rows = [_row(s, directory, actor, now, team_names) for s in specs]
    if not pg:
        bulk_sqlite.insert_changes(session, rows)
        session.info[_DIRTY] = True
        return len(rows)
    stmt = insert(CHANGES).values(xid=_XID) if pg else insert(CHANGES)
    session.execute(stmt, rows)
    if pg:
        session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
    session.info[_DIRTY] = True
    return len(rows)


def _row(s: Spec, directory: str | None, actor: str, at: datetime, teams: dict[str, str]) -> dict[str, Any]:
    return {
        "at": at,
        "directory": directory,
        "kind": s.kind,
        "resource_type": s.resource_type,
        "resource_id": s.resource_id,
        "name": s.name if s.name is not None else teams.get(s.resource_id),
        "data": s.data,
        "actor": actor[:256],
    }


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # A flag left by a rolled-back savepoint only costs a spurious wake-up; readers re-check.
    if session.info.pop(_DIRTY, False):
        _signal.notify_local()


def change_rows(
    session: Session | Connection,
    *,
    directory: str | None,
    actor: str,
    events: Iterable[Event],
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The `changes` rows `record` would insert for `events`, in order, without `xid`: for a
    writer that inserts them itself (PostgreSQL COPY), then calls `mark_recorded`."""
    specs = [s for ev in events for s in changes_for(*ev)]
    unnamed = {s.resource_id for s in specs if s.name is None}
    team_names = names(session, "teams", "display_name", unnamed) if unnamed else {}
    now = at or utcnow()
    return [_row(s, directory, actor, now, team_names) for s in specs]


def mark_recorded(session: Session) -> None:
    """What `record` does once its rows are in: NOTIFY (PostgreSQL) and the commit wake-up."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
    session.info[_DIRTY] = True
