"""Listings read with the database driver alone: `syncd users list` and `teams list` without
importing SQLAlchemy, SQLModel or pydantic (together most of a second of start-up).

`list_users` and `list_teams` return what `syncd.service.views.list_users|list_teams` and
their counts return for the same filters (the same row types, order and values; the same SQL
in plain text), or None when this path cannot answer and the caller must take the full one:
- the config or its store URL is one `cli.fastconfig` does not read (see there);
- the store is missing, unreachable, or not at this code's schema revision (`alembic_version`
  against the head of the migration files);
- `--directory NAME` names no configured directory and no stored one;
- any driver error.
The full path then reports the problem with its usual message and exit code, so falling back
is never visible except in time. Nothing here writes or creates a file.

SQLite is read with the stdlib `sqlite3`; PostgreSQL with `psycopg`, imported only then.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cli.fastconfig import store_config
from syncd.revisions import linear_head
from syncd.service.rows import TeamRow, UserRow

#: as `syncd.store.engine`: how long SQLite waits for a writer, and PostgreSQL to connect
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
#: ids per `IN (...)` list (SQLite allows 32,766 parameters; stay far below)
_CHUNK = 500

T = TypeVar("T")


@dataclass(frozen=True)
class _Db:
    """A DB-API connection and its SQL dialect ("sqlite" or "postgresql")."""

    conn: Any
    dialect: str

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cur = self.conn.cursor()
        try:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()


def list_users(
    config: Path | None,
    *,
    directory: str | None,
    local: bool,
    include_inactive: bool,
    limit: int | None,
) -> tuple[list[UserRow], int] | None:
    """(users as `views.list_users`, how many match without the limit), or None."""

    def query(db: _Db) -> tuple[list[UserRow], int]:
        where, params = _where(directory, local)
        if not include_inactive:
            where.append("active = TRUE")
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        users = db.rows(
            "SELECT id, user_name, display_name, directory, external_id, active, version, created_at,"
            f" updated_at FROM users{cond} ORDER BY user_name_key, coalesce(directory, ''), id"
            + (" LIMIT ?" if limit is not None else ""),
            [*params, *([limit] if limit is not None else [])],
        )
        emails: dict[str, str] = {}
        for chunk in _chunks([u[0] for u in users]):
            for user_id, value in db.rows(
                f"SELECT user_id, value FROM user_emails WHERE user_id IN ({_marks(chunk)})"
                ' ORDER BY user_id, "primary" DESC, id',
                chunk,
            ):
                emails.setdefault(user_id, value)
        rows = [
            UserRow(
                id=uid,
                user_name=name,
                display_name=display,
                directory=d,
                external_id=ext,
                active=bool(active),
                email=emails.get(uid),
                version=version,
                created_at=_utc(created),
                updated_at=_utc(updated),
            )
            for uid, name, display, d, ext, active, version, created, updated in users
        ]
        total = len(rows) if limit is None or len(rows) < limit else _count(db, "users", cond, params)
        return rows, total

    return _read(config, directory, query)


def list_teams(
    config: Path | None,
    *,
    directory: str | None,
    local: bool,
    with_members: bool,
    limit: int | None,
) -> tuple[list[TeamRow], int] | None:
    """(teams as `views.list_teams`, how many match without the limit), or None."""

    def query(db: _Db) -> tuple[list[TeamRow], int]:
        where, params = _where(directory, local)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        teams = db.rows(
            "SELECT id, display_name, directory, external_id, member_count, version, updated_at"
            f" FROM teams{cond} ORDER BY display_name_key, coalesce(directory, ''), id"
            + (" LIMIT ?" if limit is not None else ""),
            [*params, *([limit] if limit is not None else [])],
        )
        members: dict[str, list[str]] = defaultdict(list)
        if with_members:
            for chunk in _chunks([t[0] for t in teams]):
                for team_id, user_name in db.rows(
                    "SELECT m.team_id, u.user_name FROM memberships m JOIN users u ON u.id = m.user_id"
                    f" WHERE m.team_id IN ({_marks(chunk)}) ORDER BY m.team_id, u.user_name_key",
                    chunk,
                ):
                    members[team_id].append(user_name)
        rows = [
            TeamRow(
                id=tid,
                display_name=name,
                directory=d,
                external_id=ext,
                member_count=count,
                members=tuple(members.get(tid, ())) if with_members else None,
                version=version,
                updated_at=_utc(updated),
            )
            for tid, name, d, ext, count, version, updated in teams
        ]
        total = len(rows) if limit is None or len(rows) < limit else _count(db, "teams", cond, params)
        return rows, total

    return _read(config, directory, query)


def _where(directory: str | None, local: bool) -> tuple[list[str], list[Any]]:
    if local:
        return ["directory IS NULL"], []
    if directory is not None:
        return ["directory = ?"], [directory]
    return [], []


def _count(db: _Db, table: str, cond: str, params: list[Any]) -> int:
    return int(db.rows(f"SELECT count(*) FROM {table}{cond}", params)[0][0])


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _utc(value: datetime | str) -> datetime:
    """A stored timestamp, timezone-aware in UTC (SQLite keeps the UTC wall time as text)."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _read(config: Path | None, directory: str | None, query: Callable[[_Db], T]) -> T | None:
    """`query` on the store, at the code's schema revision and knowing `directory`, or None
    (see the module docstring). A driver error anywhere, the query's included, is None."""
    conf = store_config(config)
    connect = _connector(conf.url) if conf is not None else None
    if conf is None or connect is None or conf.url in _unreachable:
        return None
    db: _Db | None = None
    try:
        try:
            db = connect()
        except Exception as exc:
            if conf.url.startswith("postgresql") and _is_driver_error(exc):
                _unreachable[conf.url] = exc
            raise
        head = head_revision()
        current = db.rows("SELECT version_num FROM alembic_version")
        if head is None or [r[0] for r in current] != [head]:
            return None
        known = directory is None or directory in conf.directories
        if not known and not db.rows("SELECT name FROM directories WHERE name = ?", [directory]):
            return None
        return query(db)
    except Exception as exc:
        if _is_driver_error(exc):  # the full path reports it in its own words
            return None
        raise
    finally:
        if db is not None:
            with suppress(Exception):
                db.conn.close()


def connect_failure(url: str) -> Exception | None:
    """The driver error of this process's failed attempt to connect to the PostgreSQL store at
    `url`, if there was one: the full path reports it instead of waiting for the same timeout
    a second time (an unreachable host costs `PG_CONNECT_TIMEOUT_S` once, not twice)."""
    return _unreachable.get(url)


#: store URL -> the error of a failed connection attempt in this process (PostgreSQL only)
_unreachable: dict[str, Exception] = {}


def _is_driver_error(exc: Exception) -> bool:
    """Whether `exc` is a DB-API error (sqlite3 or psycopg), not a bug in this module."""
    import sqlite3

    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.Error) or (psycopg is not None and isinstance(exc, psycopg.Error))


def _connector(url: str) -> Callable[[], _Db] | None:
    """How to open `url` read-only in spirit (nothing here writes), or None for a URL this
    path does not parse the way SQLAlchemy would (query strings, in-memory, other drivers)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if scheme in ("sqlite", "sqlite+pysqlite"):
        if not rest.startswith("/") or any(c in rest for c in "?#%"):
            return None
        file = Path(rest[1:]).expanduser()
        if not rest[1:] or rest[1:] == ":memory:" or rest[1:].startswith("file:") or not file.is_file():
            return None
        return lambda: _sqlite(file)
    if scheme in ("postgresql", "postgresql+psycopg"):
        return lambda: _postgresql("postgresql://" + rest)
    return None


def _sqlite(file: Path) -> _Db:
    import sqlite3

    conn = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    return _Db(conn, "sqlite")


def _postgresql(url: str) -> _Db:
    import psycopg

    parts = urlsplit(url)
    if "connect_timeout=" not in parts.query:
        url += ("&" if parts.query else "?") + f"connect_timeout={PG_CONNECT_TIMEOUT_S}"
    return _Db(psycopg.connect(url, autocommit=True), "postgresql")


def head_revision() -> str | None:
    """The single head of the migration files (as `syncd.store.engine.head_revision`), or None
    when they are not one linear history (the full path asks alembic)."""
    spec = find_spec("syncd")
    if spec is None or not spec.submodule_search_locations:
        return None
    return linear_head(
        Path(next(iter(spec.submodule_search_locations))) / "store" / "migrations" / "versions"
    )
