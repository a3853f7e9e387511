"""Writes changes into the feed, in the caller's transaction (the service layer calls it).

`record(session, directory=, actor=, events=)` turns service events (see `kinds.changes_for`)
into `changes` rows with one executemany INSERT, plus one lookup per 20 000 names it lacks.
On PostgreSQL each row gets `xid = pg_current_xact_id()` (the top-level transaction id even
inside a savepoint) and the transaction sends `NOTIFY syncd_changes`, delivered at commit.
Once a session that recorded changes commits, every `ChangeSignal` of this process wakes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, literal_column, text
from sqlalchemy.orm import Session

from syncd.feed import signal as _signal
from syncd.feed.kinds import TEAM_MEMBERS_ADDED, TEAM_MEMBERS_REMOVED, Spec, changes_for
from syncd.store.models import Change, utcnow

CHANGES = Change.__table__  # type: ignore[attr-defined]
CHANNEL = "syncd_changes"
#: ids per name lookup statement (sent as one JSON or array parameter)
LOOKUP = 20_000
_XID = literal_column("pg_current_xact_id()::text::bigint")
_DIRTY = "syncd.feed.dirty"
_MEMBER_KINDS = (TEAM_MEMBERS_ADDED, TEAM_MEMBERS_REMOVED)

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
    team_names = _names(
        session, pg, "teams", "display_name", {s.resource_id for s in specs if s.name is None}
    )
    member_ids = {
        u for s in specs if s.kind in (TEAM_MEMBERS_ADDED, TEAM_MEMBERS_REMOVED) for u in s.data["members"]
    }
    user_names = _names(session, pg, "users", "user_name", member_ids)
    now = at or utcnow()
    rows = [_row(s, directory, actor, now, team_names, user_names) for s in specs]
    if not pg:
        for r in rows:
            r["xid"] = 0
    stmt = insert(CHANGES).values(xid=_XID) if pg else insert(CHANGES)
    session.execute(stmt, rows)
    if pg:
        session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
    session.info[_DIRTY] = True
    return len(rows)


def _row(
    s: Spec, directory: str | None, actor: str, at: datetime, teams: dict[str, str], users: dict[str, str]
) -> dict[str, Any]:
    data = dict(s.data)
    if "members" in data:
        data["members"] = [{"id": u, "userName": users.get(u)} for u in data["members"]]
    return {
        "at": at,
        "directory": directory,
        "kind": s.kind,
        "resource_type": s.resource_type,
        "resource_id": s.resource_id,
        "name": s.name if s.name is not None else teams.get(s.resource_id),
        "data": data,
        "actor": actor[:256],
    }


def _names(session: Session, pg: bool, table: str, column: str, ids: set[str]) -> dict[str, str]:
    """id → name for the given ids of `table`, in one statement per `LOOKUP` ids."""
    out: dict[str, str] = {}
    ordered: Sequence[str] = sorted(ids)
    for i in range(0, len(ordered), LOOKUP):
        part = list(ordered[i : i + LOOKUP])
        if pg:
            sql = (
                f"SELECT t.id, t.{column} FROM unnest(CAST(:ids AS varchar[])) AS x(id) "
                f"JOIN {table} AS t ON t.id = x.id"
            )
            params: dict[str, Any] = {"ids": part}
        else:
            sql = (
                f"SELECT t.id, t.{column} FROM json_each(:ids) AS x "
                f"CROSS JOIN {table} AS t WHERE t.id = x.value"
            )
            params = {"ids": json.dumps(part)}
        out.update(session.execute(text(sql), params).tuples().all())
    return out


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # A flag left by a rolled-back savepoint only costs a spurious wake-up; readers re-check.
    if session.info.pop(_DIRTY, False):
        _signal.notify_local()
