"""Engine and session setup; schema upgrade through Alembic.

SQLite (the default): WAL journal, foreign keys on, a busy timeout, and write transactions
started with `BEGIN IMMEDIATE` so two writers queue instead of failing on lock upgrade. A write
transaction opened with `session_scope(..., foreign_keys=False)` runs with SQLite's foreign-key
enforcement off on its own connection only (every other connection keeps it, cascades
included); the connection has it on again before any other transaction starts on it.
PostgreSQL: any `postgresql+psycopg://` URL. The schema is only ever created by migrations.
"""

from __future__ import annotations

import hashlib
import select
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from syncd.revisions import linear_head
from syncd.store import jsontext
from syncd.store.writer_queue import WriterQueue

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: connection info key: foreign keys are off on this SQLite connection
_FK_OFF = "syncd.foreign_keys_off"
_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}
#: how every engine of the store (sync and asyncio) writes and reads its JSON columns
JSON_CODEC: dict[str, Any] = {"json_serializer": jsontext.dumps, "json_deserializer": jsontext.loads}


class StoreError(Exception):
    """The store cannot be used as configured (bad URL, unreachable, schema not current)."""


def make_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> Engine:
    """An engine for `url`; creates the parent directory of a SQLite file.

    PostgreSQL: at most `pool_size` connections, each opened when the load first needs it and
    then kept (no overflow beyond the pool): a connection the pool would close on its return
    costs the server a new backend process at the next burst (fork, authentication, catalog
    caches: measured as most of PostgreSQL's CPU at 32 SCIM clients, 0.9 ms a request where
    it is 0.2 ms at 8, with 10 kept and 10 more opened and closed as the load came and went).

    SQLite file: `pool_size` connections kept and no limit beyond them, so taking one never
    waits: the event loop's thread takes them too (`store.inline`), and a loop waiting for a
    worker thread to return one would stall every request. A connection costs a file handle
    and its PRAGMAs; there are never more than the threads that use the store at once.

    JSON columns are written and read with `syncd.store.jsontext` (compact orjson text)."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}") from exc
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False, "isolation_level": None}}
        if not db or db == ":memory:":
            from sqlalchemy.pool import StaticPool

            kw["poolclass"] = StaticPool
        else:  # a checkout never waits (the event loop takes connections too: `store.inline`)
            kw.update(pool_size=pool_size, max_overflow=-1)
        engine = create_engine(u, echo=echo, **kw, **JSON_CODEC)
        _sqlite_hooks(engine)
        return engine
    if u.get_backend_name() == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        engine = create_engine(u, echo=echo, pool_size=pool_size, max_overflow=0, **JSON_CODEC)
        event.listen(engine, "checkout", closed_by_server)
        return engine
    raise StoreError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")


def closed_by_server(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is handed out only if the server has not closed it.

    An idle connection of the pool receives nothing (it LISTENs to nothing), so a readable
    socket means the server ended the session (restart, `pg_terminate_backend`, idle timeout:
    it sends its FATAL error, then closes): the pool then discards it and hands out a fresh
    one (`DisconnectionError`). This is the pre-ping's check without its round trip (a
    `SELECT 1` per checkout, one of a create's two round trips).
    """
    try:  # the driver's own connection: psycopg's sync or async one (the latter behind an adapter)
        fd = record.driver_connection.fileno()
    except Exception as exc:  # the driver's own error: closed on this side
        raise DisconnectionError("the connection is closed") from exc
    # poll, not select: select() refuses descriptors above FD_SETSIZE (1024), which a daemon
    # with a raised open-files limit and many clients reaches
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # readable, or POLLHUP/POLLERR/POLLNVAL: the session is over
        raise DisconnectionError("the server closed the connection")


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # PRAGMA foreign_keys is a no-op inside a transaction: set before BEGIN
        options = conn.get_execution_options()
        if options.get("sqlite_foreign_keys", True) is False:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.info[_FK_OFF] = True
        elif conn.info.pop(_FK_OFF, False):
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        # straight on the driver connection (autocommit: pysqlite opens no transaction of its
        # own): BEGIN through `exec_driver_sql` costs a full statement execution, ~6% of a
        # one-row write's CPU
        conn.connection.driver_connection.execute(_BEGIN[options.get("sqlite_begin", "DEFERRED")])

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None and record is not None and record.info.pop(_FK_OFF, False):
            dbapi_conn.execute("PRAGMA foreign_keys=ON")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


_queues_by_path: dict[str, WriterQueue] = {}  # every engine of one database file shares its queue
_queues: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()
_queues_guard = threading.Lock()


def writer_queue(engine: Engine) -> WriterQueue:
    """The writer queue of a SQLite `engine` (one per database file in this process)."""
    with _queues_guard:
        queue = _queues.get(engine)
        if queue is None:
            db = engine.url.database or ""
            timeout_s = SQLITE_BUSY_TIMEOUT_MS / 1000
            if not db or db == ":memory:" or db.startswith("file:"):
                queue = WriterQueue(None, timeout_s=timeout_s)
            else:
                path = str(Path(db).resolve())
                queue = _queues_by_path.setdefault(path, WriterQueue(path, timeout_s=timeout_s))
            _queues[engine] = queue
        return queue


@contextmanager
def session_scope(engine: Engine, *, write: bool = True, foreign_keys: bool = True) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    `write=True` on SQLite takes the write lock at BEGIN, so read-check-write sequences
    (uniqueness checks, version bumps) never interleave with another writer. Writers queue
    first (`WriterQueue`: threads on a lock, processes on a file lock): SQLite's busy handler
    waits by sleeping in growing steps, which leaves the database idle while waiters doze.

    `foreign_keys=False` (a SQLite write transaction; ignored otherwise): SQLite checks no
    foreign key of what this transaction writes, and its deletes cascade nothing. For bulk
    writers that check every reference they write inside the transaction themselves: the write
    lock, held from BEGIN to COMMIT, keeps what they checked true until their rows are
    committed, and the writers that come after enforce the keys (and cascade) again.
    """
    if write and is_sqlite(engine):
        bind = _sqlite_writer(engine, foreign_keys)
        with writer_queue(engine).turn(), _session(bind) as session:
            yield session
        return
    with _session(engine) as session:
        yield session


#: engine attribute: its SQLite write-transaction engines by `foreign_keys` (an attribute, not
#: a weak mapping: each refers to its engine, so a mapping would keep every engine alive)
_WRITERS = "_syncd_sqlite_writers"


def _sqlite_writer(engine: Engine, foreign_keys: bool) -> Engine:
    """`engine` with the execution options of a SQLite write transaction, made once per
    (engine, foreign_keys): an options engine costs its construction on every call."""
    by_fk: dict[bool, Engine] | None = engine.__dict__.get(_WRITERS)
    if by_fk is None:
        by_fk = engine.__dict__.setdefault(_WRITERS, {})
    bind = by_fk.get(foreign_keys)
    if bind is None:
        options: dict[str, Any] = {"sqlite_begin": "IMMEDIATE"}
        if not foreign_keys:
            options["sqlite_foreign_keys"] = False
        bind = by_fk.setdefault(foreign_keys, engine.execution_options(**options))
    return bind


@contextmanager
def _session(bind: Engine) -> Iterator[Session]:
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(engine: Engine | None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` through the migrations (idempotent). On PostgreSQL
    upgraders queue on an advisory lock (per schema), so replicas starting together, each with
    `db upgrade` before it starts, migrate one after the other instead of colliding."""
    from alembic import command

    try:
        with _migration_lock(engine):
            command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise StoreError(f"cannot reach the store: {exc.orig}") from exc


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":  # SQLite: the migration's write lock serialises it
        yield
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        key = int.from_bytes(
            hashlib.sha256(f"syncd-migrate:{schema}".encode()).digest()[:8], "big", signed=True
        )
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision in the database or None, head revision of this code).

    Reads `alembic_version` with one query and the head from the migration files, without
    importing alembic (a third of a second the CLI would pay on every command).
    """
    head = head_revision()
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None, head
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise StoreError(f"cannot reach the store: {exc.orig}") from exc
    return current, head


def head_revision() -> str:
    """The head revision of the migrations: the one no other migration revises.

    Parsed from each version file's `revision` / `down_revision` lines; on anything but one
    linear head (a merge, a tuple), alembic's own answer.
    """
    return linear_head(MIGRATIONS / "versions") or _alembic_head()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head() or ""


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("users")


__all__ = ["NullPool", "StoreError", "make_engine", "schema_status", "session_scope", "upgrade"]
