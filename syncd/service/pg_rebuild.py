"""PostgreSQL: a large load of memberships into a small table builds the table's secondary
indexes once, after the rows are in, instead of inserting into them row by row.

A pull's first apply adds a million memberships at L. Each row costs an entry in the primary
key (team, user) and in the (user, team) index, and the rows come in one of those two orders
only, so one of the two B-trees takes a million inserts at random places: measured, about 60%
of the server's time for the whole member phase. `memberships_rebuilt`, inside the caller's
transaction:

1. goes on only if the role owns the table (DROP INDEX needs it) and the table holds at most
   as many rows as the load adds (`REBUILD_RATIO`, as `syncd.service.bulk_sqlite` does on
   SQLite), read in a savepoint rolled back after, so that its share lock is not kept;
2. takes `memberships` in ACCESS EXCLUSIVE mode (as DROP INDEX must), waiting at most
   `LOCK_WAIT` for it (each wait for the table's lock is that short); if another transaction
   holds a lock on the table that long, or PostgreSQL finds a deadlock, nothing is done, no
   lock on the table is kept, and the caller writes row by row as before; under the lock it
   counts again, and needs a secondary index (not unique, not backing a constraint);
3. drops those indexes, lets the caller write (rows in primary-key order: `team_order`), and
   creates each again from its own definition (`pg_get_indexdef`) when the block ends.

Invariants: other transactions never see the table without its indexes (DDL is
transactional; they wait on the lock until the caller commits, and then see the indexes
back); a crash or an error anywhere in the caller's transaction rolls the drop back with the
rows; the primary key and unique indexes are never dropped, so a duplicate still fails the
COPY at once. The cost is that readers of `memberships` (SCIM group reads, on-login syncs)
wait for the caller's commit: in practice a store's first pull, while the table is empty. A
writer that locks a user or team row and then needs `memberships` (a SCIM DELETE of a user,
whose cascade does) can deadlock with the load, which locks those rows after the table; the
caller then gives up the rebuild and writes in batches (`syncd.reconcile.apply._first_load`).
An index is created again from its definition alone: a tablespace, comment or statistics
target set on it by hand is not kept (syncd's own indexes have none).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

log = logging.getLogger("syncd.service.pg_rebuild")

#: memberships a load must add before a rebuild is tried (below, the lock costs more than it saves)
MIN_ROWS = 100_000
#: rebuild when the table holds at most 1/REBUILD_RATIO of the rows the load adds
REBUILD_RATIO = 1
#: longest wait for the table's exclusive lock before writing row by row instead
LOCK_WAIT = "1s"
#: session-info key: the secondary indexes of `memberships` are dropped in this transaction
_DROPPED = "syncd.memberships_rebuilding"
#: lock_not_available (LOCK_WAIT passed), deadlock_detected: no rebuild this time
_NOT_NOW = ("55P03", "40P01")
_SECONDARY = text(
    "SELECT CAST(i.indexrelid AS regclass)::text, pg_get_indexdef(i.indexrelid) "
    "FROM pg_index AS i "
    "WHERE i.indrelid = CAST('memberships' AS regclass) AND NOT i.indisunique AND NOT i.indisprimary "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid) "
    "ORDER BY 1"
)
_OWNER = text(
    "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = CAST('memberships' AS regclass)"
)
_HELD = text("SELECT count(*) FROM (SELECT 1 FROM memberships LIMIT :n) AS x")


class _NotNow(Exception):
    """Rolls the savepoint (and the lock taken in it) back: no rebuild this time."""


@contextmanager
def memberships_rebuilt(session: Session, rows: int) -> Iterator[bool]:
    """Around a load of `rows` memberships in `session`'s transaction (PostgreSQL): yields
    True with the secondary indexes of `memberships` dropped, and creates them again when the
    block ends without an error; yields False, having changed nothing and holding no new lock,
    where a rebuild does not apply (see the module)."""
    indexes = _drop(session, rows)
    if not indexes:
        yield False
        return
    session.info[_DROPPED] = True
    try:
        yield True
    finally:
        session.info.pop(_DROPPED, None)
    for _, ddl in indexes:
        session.execute(text(ddl))


def team_order(session: Session) -> bool:
    """Whether rows go into `memberships` in primary-key order now: its other indexes are
    dropped (`memberships_rebuilt`), so only the primary key is filled as they arrive."""
    return bool(session.info.get(_DROPPED))


def _drop(session: Session, rows: int) -> list[tuple[str, str]]:
    """Lock `memberships`, check the conditions and drop its secondary indexes; their (name,
    DDL), or [] with every savepoint rolled back (so no lock on the table kept) if any
    condition fails. Call it before the transaction has touched `memberships`: a lock the
    transaction already held there would turn the exclusive one into an upgrade, which two
    first loads at once could deadlock on."""
    if rows < MIN_ROWS or not session.execute(_OWNER).scalar_one():
        return []
    bound = rows // REBUILD_RATIO
    if not _small(session, bound):  # the usual case, told without the exclusive lock
        return []
    try:
        with session.begin_nested():
            previous = _wait_at_most(session)
            session.execute(text("LOCK TABLE memberships IN ACCESS EXCLUSIVE MODE"))
            session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": previous})
            if session.execute(_HELD, {"n": bound + 1}).scalar_one() > bound:
                raise _NotNow
            indexes = [(name, ddl) for name, ddl in session.execute(_SECONDARY).tuples()]
            if not indexes:
                raise _NotNow
            for name, _ in indexes:
                session.execute(text(f"DROP INDEX {name}"))
            return indexes
    except _NotNow:
        return []
    except DBAPIError as exc:
        if _sqlstate(exc) not in _NOT_NOW:
            raise
        log.info("memberships is in use: this load updates its indexes row by row")
        return []


def _small(session: Session, bound: int) -> bool:
    """Whether `memberships` holds at most `bound` rows, read in a savepoint that is then rolled
    back (releasing the table's share lock the read took), waiting at most `LOCK_WAIT` for it."""
    sp = session.begin_nested()
    try:
        _wait_at_most(session)
        return session.execute(_HELD, {"n": bound + 1}).scalar_one() <= bound
    except DBAPIError as exc:
        if _sqlstate(exc) not in _NOT_NOW:
            raise
        return False
    finally:
        sp.rollback()


def _wait_at_most(session: Session) -> str:
    """Make lock waits of the transaction end after `LOCK_WAIT`; returns the setting it had."""
    previous = session.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": LOCK_WAIT})
    return str(previous)


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)
