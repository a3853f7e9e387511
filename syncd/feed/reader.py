"""Reading the feed: pages after a position, the head, the retention horizon, pruning, lag.

Visibility rule (DESIGN safety rule 7). A reader must never pass a change that can still
commit behind it. On SQLite writers are serialised (one write lock held to commit), so id
order is commit order and every committed row is final. On PostgreSQL ids are taken at
insert time, not commit time, so ordering is (xid, id) and a read only exposes rows with
`xid < pg_snapshot_xmin(pg_current_snapshot())`: every transaction below the snapshot's
xmin has ended, and every later transaction gets a larger xid, so no row can ever appear at
or before an exposed position. The `frontier` (the last exposed position) is read first,
and rows are then read up to it; rows at or before it are committed, hence visible to the
later statement too. A long-running writing transaction anywhere in the database holds the
frontier back (its changes, and everything after, wait for it); it never causes a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, text
from sqlalchemy.orm import Session

from syncd.feed.kinds import TEAM_MEMBERS_ADDED, TEAM_MEMBERS_REMOVED
from syncd.feed.names import names
from syncd.feed.position import START, Position
from syncd.store.models import Change, FeedHorizon, utcnow

CHANGES = Change.__table__  # type: ignore[attr-defined]
HORIZON = FeedHorizon.__table__  # type: ignore[attr-defined]
MEMBER_KINDS = (TEAM_MEMBERS_ADDED, TEAM_MEMBERS_REMOVED)
_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

Bind = Engine | Connection | Session


class FeedGone(Exception):
    """The position is older than what the feed keeps: resync, then follow from `resume`."""

    def __init__(self, position: str, oldest: str) -> None:
        super().__init__(
            f"position {position} is older than the oldest change kept (after {oldest}); resync from "
            "GET /v1/users and GET /v1/teams?include=members, then follow the feed from their `position`"
        )
        self.position, self.oldest = position, oldest


@dataclass(frozen=True)
class FeedChange:
    """One change as readers see it. `position` is where a reader that handled it resumes."""

    position: str
    id: int
    at: datetime
    directory: str | None
    kind: str
    resource_type: str
    resource_id: str
    name: str | None
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = ""

    def to_dict(self) -> dict[str, Any]:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        return {
            "position": self.position,
            "kind": self.kind,
            "at": at.isoformat(),
            "directory": self.directory,
            "resource": {"type": self.resource_type, "id": self.resource_id, "name": self.name},
            "data": self.data,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class FeedPage:
    changes: list[FeedChange]
    next: str  # the position to read after next time (the given one if nothing is new)
    #: committed changes are withheld behind an older open transaction (PostgreSQL): they
    #: become readable when it ends, which may send no notification, so poll soon
    pending: bool = False


@dataclass(frozen=True)
class Lag:
    changes: int  # changes readable after the position
    seconds: float | None  # age of the oldest of them; None when there is none


@contextmanager
def _conn(bind: Bind) -> Iterator[Connection | Session]:
    if isinstance(bind, Engine):
        with bind.connect() as c:
            yield c
    else:
        yield bind


def _pg(c: Connection | Session) -> bool:
    return (
        c.get_bind().dialect.name == "postgresql"
        if isinstance(c, Session)
        else c.dialect.name == "postgresql"
    )


def _after(p: Position) -> Any:
    return or_(CHANGES.c.xid > p.xid, and_(CHANGES.c.xid == p.xid, CHANGES.c.id > p.id))


def _upto(p: Position) -> Any:
    return or_(CHANGES.c.xid < p.xid, and_(CHANGES.c.xid == p.xid, CHANGES.c.id <= p.id))


def _frontier(c: Connection | Session) -> Position | None:
    """The last change no uncommitted transaction can precede (None: no change readable)."""
    q = select(CHANGES.c.xid, CHANGES.c.id).order_by(CHANGES.c.xid.desc(), CHANGES.c.id.desc()).limit(1)
    if _pg(c):
        q = q.where(CHANGES.c.xid < text(_XMIN))
    row = c.execute(q).first()
    return Position(row[0], row[1]) if row else None


def _withheld(c: Connection | Session) -> bool:
    q = select(CHANGES.c.id).where(CHANGES.c.xid >= text(_XMIN)).limit(1)
    return c.execute(q).first() is not None


def _horizon(c: Connection | Session) -> Position | None:
    row = c.execute(select(HORIZON.c.xid, HORIZON.c.change_id).where(HORIZON.c.id == 1)).first()
    return Position(row[0], row[1]) if row else None


def read(
    bind: Bind, *, after: str | None, limit: int = 500, directories: set[str] | frozenset[str] | None = None
) -> FeedPage:
    """Up to `limit` changes after `after` (None: from the oldest kept), oldest first.

    `directories` keeps only changes of those directories (local changes have none); `next`
    then also moves past changes it skipped. FeedGone if `after` is behind the horizon;
    BadPosition if it is not a position. Read with an Engine or a session that has not
    written yet: on PostgreSQL a transaction that wrote holds the frontier below itself.
    """
    pos = Position.parse(after)
    with _conn(bind) as c:
        frontier = _frontier(c)
        rows: list[Any] = []
        if frontier is not None and frontier > pos:
            q = select(CHANGES).where(_after(pos), _upto(frontier))
            if directories is not None:
                q = q.where(CHANGES.c.directory.in_(sorted(directories)))
            q = q.order_by(CHANGES.c.xid, CHANGES.c.id).limit(max(1, limit))
            rows = list(c.execute(q).mappings())
        # read after the rows: a prune that committed before them is seen here
        horizon = _horizon(c)
        pending = _pg(c) and len(rows) < max(1, limit) and _withheld(c)
        member_ids = {
            u for r in rows if r["kind"] in MEMBER_KINDS for u in (r["data"] or {}).get("members", ())
        }
        user_names = names(c, "users", "user_name", member_ids) if member_ids else {}
    if horizon is not None and after and pos < horizon:
        raise FeedGone(str(pos), str(horizon))
    changes = [_change(r, user_names) for r in rows]
    if len(rows) >= max(1, limit):
        nxt = Position(rows[-1]["xid"], rows[-1]["id"])
    elif frontier is not None and frontier > pos:
        nxt = frontier
    else:
        nxt = pos
    if horizon is not None and nxt < horizon:
        nxt = horizon
    return FeedPage(changes, str(nxt), pending)


def _change(r: Any, user_names: dict[str, str]) -> FeedChange:
    data = dict(r["data"] or {})
    if r["kind"] in MEMBER_KINDS:
        data["members"] = [{"id": u, "userName": user_names.get(u)} for u in data.get("members", ())]
    return FeedChange(
        position=str(Position(r["xid"], r["id"])),
        id=r["id"],
        at=r["at"],
        directory=r["directory"],
        kind=r["kind"],
        resource_type=r["resource_type"],
        resource_id=r["resource_id"],
        name=r["name"],
        data=data,
        actor=r["actor"],
    )


def head(bind: Bind) -> str:
    """The position after every change committed so far: a resync that starts reading after
    this call and then follows the feed from here misses nothing (it may see some twice)."""
    with _conn(bind) as c:
        frontier = _frontier(c)
        horizon = _horizon(c)
    return str(max(p for p in (frontier, horizon, START) if p is not None))


def oldest_retained(bind: Bind) -> str | None:
    """The horizon: positions before it are gone (None: nothing was ever pruned)."""
    with _conn(bind) as c:
        h = _horizon(c)
    return str(h) if h else None


def lag(bind: Bind, *, after: str | None, directories: set[str] | frozenset[str] | None = None) -> Lag:
    """How many readable changes follow `after`, and the age of the oldest one."""
    pos = Position.parse(after)
    with _conn(bind) as c:
        frontier = _frontier(c)
        if frontier is None or frontier <= pos:
            return Lag(0, None)
        q = select(func.count(), func.min(CHANGES.c.at)).where(_after(pos), _upto(frontier))
        if directories is not None:
            q = q.where(CHANGES.c.directory.in_(sorted(directories)))
        n, oldest = c.execute(q).one()
    if not n:
        return Lag(0, None)
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
    return Lag(int(n), max(0.0, (utcnow() - oldest).total_seconds()))


def prune(session: Session, *, older_than: datetime) -> int:
    """Delete the changes written before `older_than` (and any that precede them in feed
    order), moving the horizon to the last one deleted; returns how many were deleted.

    Call inside a write transaction (`session_scope(engine)`).
    """
    q = select(CHANGES.c.xid, CHANGES.c.id).where(CHANGES.c.at < older_than)
    if _pg(session):
        q = q.where(CHANGES.c.xid < text(_XMIN))
    row = session.execute(q.order_by(CHANGES.c.xid.desc(), CHANGES.c.id.desc()).limit(1)).first()
    if row is None:
        return 0
    cut = Position(row[0], row[1])
    n = session.execute(delete(CHANGES).where(_upto(cut))).rowcount or 0
    current = session.get(FeedHorizon, 1)
    if current is None:
        session.add(FeedHorizon(id=1, xid=cut.xid, change_id=cut.id, pruned_at=utcnow()))
    elif Position(current.xid, current.change_id) < cut:
        current.xid, current.change_id, current.pruned_at = cut.xid, cut.id, utcnow()
        session.add(current)
    return n
