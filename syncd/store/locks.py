"""Directory locks: two pulls of one directory never run at once (DESIGN.md rule 4).

SQLite: an exclusive `flock` on a file beside the database file (`syncd.db.<name>.lock`), so
every process that opens that database agrees on the lock whatever its state directory or
working directory (the unit's `$STATE_DIRECTORY` and an admin shell differ). The database's
directory is writable by anyone who can write the database (SQLite puts its `-wal` and `-shm`
files there). An in-memory database is private to its process: a process-local lock does.
PostgreSQL: a session-level advisory lock keyed by the schema and the lock's name (advisory
locks are database-wide; two deployments in two schemas of one database must not block each
other), held on a dedicated connection (any replica, any machine). Both are released when
the holder exits or dies.

`directory_lock` is the run lock. Whoever takes it also finishes the sync run rows of that
directory still marked "running": only a holder of the lock writes such a row, and holding it
proves that holder is gone (killed, crashed, its store connection lost), so those rows become
"abandoned" (`reap_runs`). `slot_lock` guards a daemon's slot claim and finishes nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select, text, update

from syncd.store.engine import session_scope
from syncd.store.models import SyncRun, utcnow

log = logging.getLogger("syncd.store.locks")

#: The error recorded on a run whose holder died before finishing it.
DEAD_HOLDER = "the process running it stopped before it finished (killed, crashed or lost the store)"


class LockBusy(Exception):
    """Another process holds the lock."""


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"syncd:{name}".encode()).digest()[:8], "big", signed=True)


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (absolute), or None for an in-memory database."""
    db = engine.url.database or ""
    if db.startswith("file:"):  # a URI filename: file:PATH?mode=...
        path, _, query = db[5:].partition("?")
        if not path or path == ":memory:" or "mode=memory" in query:
            return None
        db = path
    if not db or db == ":memory:":
        return None
    return Path(db).expanduser().resolve()


def lock_file(engine: Engine, name: str) -> Path | None:
    """Where the SQLite lock `name` lives: beside the database file (None: in-memory)."""
    db = sqlite_file(engine)
    return None if db is None else db.with_name(f"{db.name}.{name}.lock")


@contextmanager
def directory_lock(engine: Engine, directory: str, *, lock_dir: Path | None = None) -> Iterator[None]:
    """Hold the run lock of `directory` for the block (LockBusy at once if someone else holds it),
    after marking its dead holders' runs abandoned. `lock_dir` is ignored: the lock lives beside
    the database (kept for callers that still pass their state directory)."""
    del lock_dir
    with _hold(engine, directory):
        reap_runs(engine, directory)
        yield


@contextmanager
def slot_lock(engine: Engine, directory: str) -> Iterator[None]:
    """Hold the slot-claim lock of `directory` (see `syncd.daemon.runner`); LockBusy if held.
    Its name holds a ':' so it can never equal a directory's run lock (names are [a-z0-9._-])."""
    with _hold(engine, f"{directory}:slot"):
        yield


def reap_runs(engine: Engine, directory: str) -> int:
    """Mark `directory`'s "running" runs abandoned; call only while holding its run lock.
    Returns how many were marked."""
    stale = (SyncRun.directory == directory) & (SyncRun.outcome == "running")
    with session_scope(engine, write=False) as s:  # the common case writes nothing
        if not s.execute(select(func.count()).select_from(SyncRun).where(stale)).scalar_one():
            return 0
    with session_scope(engine) as s:
        n = s.execute(
            update(SyncRun).where(stale).values(outcome="abandoned", ended_at=utcnow(), error=DEAD_HOLDER)
        )
        count = n.rowcount or 0
    if count:
        log.warning("marked %d run(s) of %s abandoned: their process died", count, directory)
    return count


@contextmanager
def _hold(engine: Engine, name: str) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = _key(f"{conn.execute(text('SELECT current_schema()')).scalar()}:{name}")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not got:
                raise LockBusy(f"a sync of {_label(name)} is already running (PostgreSQL advisory lock)")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    path = lock_file(engine, name)
    if path is None:
        with _local_lock(engine, name):
            yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(f"a sync of {_label(name)} is already running (lock file {path})") from None
        yield
    finally:
        os.close(fd)


_local: dict[tuple[int, str], threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def _local_lock(engine: Engine, name: str) -> Iterator[None]:
    with _local_guard:
        lock = _local.setdefault((id(engine), name), threading.Lock())
    if not lock.acquire(blocking=False):
        raise LockBusy(f"a sync of {_label(name)} is already running in this process")
    try:
        yield
    finally:
        lock.release()


def _label(name: str) -> str:
    directory, _, _ = name.partition(":")
    return repr(directory)
