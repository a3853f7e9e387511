"""Store settings for transactions that write many rows at once (a pull's apply batches).

SQLite's page cache defaults to 2 MB. The indexes a large apply writes (memberships, users,
audit events, changes: random UUID keys) are far larger, so with the default cache every
insert reads back a page it evicted moments before, and dirty pages spill to the WAL in the
middle of the transaction. `large_writes` raises the cache of the session's connection for
that transaction; the connection gives the memory back (the default cache) when it returns to
the pool, so an idle daemon does not keep it. PostgreSQL sizes its own buffers: nothing to do.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool
from sqlmodel import Session

#: page cache of a large SQLite write transaction, in KiB (SQLite's own default: 2000)
CACHE_KIB = 128 * 1024
DEFAULT_CACHE_KIB = 2000
_FLAG = "syncd.large_cache"
_hooked: weakref.WeakSet[Pool] = weakref.WeakSet()


def large_writes(session: Session) -> None:
    """Give the transaction `session` is in a page cache of `CACHE_KIB` (SQLite; else nothing)."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    pool = conn.engine.pool
    if pool not in _hooked:
        event.listen(pool, "checkin", _shrink)
        _hooked.add(pool)
    conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.info[_FLAG] = True


def _shrink(dbapi_connection: Any, record: Any) -> None:
    if record is not None and record.info.pop(_FLAG, False):
        dbapi_connection.execute(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
