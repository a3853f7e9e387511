"""SQLite raw-driver paths of `syncd.service.bulk`: rows written with the sqlite3 cursor's
`executemany` and one prepared INSERT per table, inside the caller's transaction.

What each function writes is what the SQLAlchemy statements of `bulk` would write, column for
column: every value goes through the column type's own bind processor (timestamps, booleans),
and JSON values are the engine's own JSON text (`syncd.store.jsontext.dumps`).

Invariant of `add_memberships`: it returns exactly the pairs it inserted. Pairs of teams with
no member at all (member_count = 0: a team the same run just created) are inserted sorted,
one execution of a prepared statement per team (its user ids one JSON parameter) and no
RETURNING; should any of them exist all the same (a row `member_count` does not account
for) or break a constraint, those inserts are rolled back to their savepoint and every pair
goes through the general `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` path. The caller holds SQLite's
write lock (`BEGIN IMMEDIATE`), so no writer can add a member between the count read here
and the insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from syncd.service.common import AUDIT_COLUMNS as _AUDIT_COLS
from syncd.service.common import CHANGE_COLUMNS as _CHANGE_COLS
from syncd.service.resource import fold
from syncd.store.jsontext import dumps
from syncd.store.models import AuditEvent, Change, Membership, Team, User, UserEmail

USERS = User.__table__  # type: ignore[attr-defined]
EMAILS = UserEmail.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
CHANGES = Change.__table__  # type: ignore[attr-defined]

#: parameters per json_each lookup
LOOKUP = 20_000

_ADD_RETURNING = (
    "INSERT INTO memberships (team_id, user_id, directory, source, created_at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?, ?, ? "
    "FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING team_id, user_id"
)
#: one team's members, its user ids as one JSON array (no Python tuple, bind or statement
#: reset per row). OR IGNORE, not ON CONFLICT DO NOTHING: a statement that writes several rows
#: and may abort part-way (a NOT NULL check aborts by default) gets a statement journal, a
#: temporary file holding a copy of every page it changes that the transaction had already
#: changed; into an index kept through the batch, that is nearly every page, every statement
#: (2.2 GB written for 300k rows at L). With every conflict ignored no statement can abort, so
#: there is no such journal; a row ignored for any reason shows in the row count, and
#: `_insert_fresh` then rolls back and leaves every pair to the general path, whose errors are
#: the per-row ones.
_ADD_TEAM = (
    "INSERT OR IGNORE INTO memberships (team_id, user_id, directory, source, created_at) "
    "SELECT ?, value, ?, ?, ? FROM json_each(?)"
)
_COUNTS = "SELECT t.id, t.member_count FROM json_each(?) AS x CROSS JOIN teams AS t WHERE t.id = x.value"


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _cursor(session: Session) -> Any:
    return session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def stamp(conn: Connection | Session, table: Any, column: str, value: datetime) -> Any:
    """`value` as the driver parameter SQLAlchemy binds for `table.column` (its text form)."""
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    process = table.c[column].type._cached_bind_processor(dialect)
    return process(value) if process else value


def insert_rows(session: Session, table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """One prepared INSERT of `columns` into `table`, executed for each of `rows` (values
    already in driver form); returns the rows written. Constraint errors propagate as
    `sqlite3.IntegrityError`."""
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join('?' * len(columns))})"
    cur = _cursor(session)
    try:
        cur.executemany(sql, rows)
        return int(cur.rowcount)
    finally:
        cur.close()


_USER_COLS = (
    "id",
    "directory",
    "external_id",
    "user_name",
    "user_name_key",
    "display_name",
    "given_name",
    "family_name",
    "active",
    "data",
    "version",
    "created_at",
    "updated_at",
)
_EMAIL_COLS = ("user_id", "value", "value_key", "type", "primary")


def insert_users(
    session: Session,
    directory: str | None,
    ids: Sequence[str],
    datas: Sequence[dict[str, Any]],
    keys: Sequence[str],
    at: datetime,
) -> list[str]:
    """The users and user_emails rows of new users (the columns `bulk._user_row` and
    `users.email_rows` derive from normalised `datas`; `keys`: the folded userNames), version
    1, created and updated `at`. Returns each user's `data` as stored (JSON text), in order.

    Run it in a savepoint the caller rolls back on error: the secondary indexes of either
    table may be rebuilt (`_drop_indexes`), the unique ones failing on a duplicate."""
    ts = stamp(session, USERS, "created_at", at)
    texts = list(map(dumps, datas))
    users = []
    emails = []
    for uid, d, key, text in zip(ids, datas, keys, texts, strict=True):
        name = d.get("name") or {}
        users.append(
            (
                uid,
                directory,
                d.get("externalId"),
                d["userName"],
                key,
                d.get("displayName"),
                name.get("givenName"),
                name.get("familyName"),
                1 if d.get("active", True) else 0,
                text,
                1,
                ts,
                ts,
            )
        )
        for e in d.get("emails") or ():
            if isinstance(e, dict) and isinstance(v := e.get("value"), str):
                emails.append((uid, v, fold(v), e.get("type"), 1 if e.get("primary") else 0))
    cur = _cursor(session)
    try:
        for table, cols, rows in ((USERS, _USER_COLS, users), (EMAILS, _EMAIL_COLS, emails)):
            if rows:
                dropped = _drop_indexes(cur, table.name, len(rows))
                insert_rows(session, table, cols, rows)
                _create_indexes(cur, dropped)
    finally:
        cur.close()
    return texts


def insert_audit(
    session: Session,
    *,
    directory: str | None,
    actor: str,
    sync_run_id: int | None,
    at: datetime,
    events: Sequence[tuple[str, str, str, Any, Any]],
    afters: Sequence[str] | None = None,
) -> None:
    """One audit_events row per (action, resource type, resource id, before, after);
    `afters`, when given, holds `dumps(after)` of each event, in order."""
    ts = stamp(session, AUDIT, "at", at)
    texts = afters if afters is not None else [dumps(e[4]) for e in events]
    insert_rows(
        session,
        AUDIT,
        _AUDIT_COLS,
        (
            (ts, directory, actor, action, rtype, rid, dumps(before), text, sync_run_id)
            for (action, rtype, rid, before, _), text in zip(events, texts, strict=True)
        ),
    )


def insert_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The changes rows `syncd.feed.writer` builds (xid 0: SQLite orders by id alone)."""
    if not rows:
        return
    at = rows[0]["at"]
    ts = stamp(session, CHANGES, "at", at)
    insert_rows(
        session,
        CHANGES,
        _CHANGE_COLS,
        (
            (
                0,
                ts if r["at"] is at else stamp(session, CHANGES, "at", r["at"]),
                r["directory"],
                r["kind"],
                r["resource_type"],
                r["resource_id"],
                r["name"],
                dumps(r["data"]),
                r["actor"],
            )
            for r in rows
        ),
    )


def add_memberships(
    session: Session,
    *,
    directory: str | None,
    source: str,
    at: datetime,
    by_team: dict[str, list[str]],
    chunk: int,
) -> dict[str, list[str]]:
    """Insert the pairs of `by_team` (team id → distinct user ids) that do not exist yet;
    returns, per team that gained members, the user ids inserted, in the order given (see
    the module docstring)."""
    ts = stamp(session, MEMBERSHIPS, "created_at", at)
    cur = _cursor(session)
    try:
        teams = list(by_team)
        empty: set[str] = set()
        for i in range(0, len(teams), LOOKUP):
            cur.execute(_COUNTS, (orjson.dumps(teams[i : i + LOOKUP]).decode(),))
            empty.update(t for t, n in cur.fetchall() if n == 0)
        out: dict[str, list[str]] = {}
        if empty and _insert_fresh(cur, directory, source, ts, {t: by_team[t] for t in empty}):
            out = {t: us for t, us in by_team.items() if t in empty and us}
            rest = [(t, u) for t, us in by_team.items() if t not in empty for u in us]
        else:
            rest = [(t, u) for t, us in by_team.items() for u in us]
        got: set[tuple[str, str]] = set()
        for i in range(0, len(rest), chunk):
            part = orjson.dumps(rest[i : i + chunk]).decode()
            cur.execute(_ADD_RETURNING, (directory, source, ts, part))
            got.update(map(tuple, cur.fetchall()))
        for t, us in by_team.items():
            if t not in out:
                hit = [u for u in us if (t, u) in got]
                if hit:
                    out[t] = hit
        return {t: out[t] for t in by_team if t in out}
    finally:
        cur.close()


#: a table's secondary indexes (memberships: (user, team); users: names, externalIds; emails)
#: are rebuilt rather than updated row by row when a batch adds at least this many times the
#: rows the table holds (a sort beats random inserts)
REBUILD_RATIO = 1
#: page cache (and so sort memory) while rebuilding them, as PRAGMA cache_size (-KiB)
SORT_CACHE = -32 * 1024


def _insert_fresh(
    cur: Any, directory: str | None, source: str, ts: Any, by_team: dict[str, list[str]]
) -> bool:
    """Insert every pair of `by_team` (teams without members), in key order; False (and
    nothing written) if any already existed.

    The secondary indexes of `memberships` may be rebuilt (`_drop_indexes`), in the same savepoint.
    """
    n = sum(map(len, by_team.values()))
    indexes: list[tuple[str, str]] = []
    cur.execute("SAVEPOINT bulk_fresh_members")
    try:
        indexes = _drop_indexes(cur, "memberships", n)
        rows = ((t, directory, source, ts, dumps(sorted(by_team[t]))) for t in sorted(by_team))
        cur.executemany(_ADD_TEAM, rows)
        if cur.rowcount != n:  # a row ignored (it existed, or broke a constraint): the general path
            cur.execute("ROLLBACK TO bulk_fresh_members")
            return False
        _create_indexes(cur, indexes)
        return True
    except BaseException:
        cur.execute("ROLLBACK TO bulk_fresh_members")
        raise
    finally:
        cur.execute("RELEASE bulk_fresh_members")


def _drop_indexes(cur: Any, table: str, n: int) -> list[tuple[str, str]]:
    """Drop the secondary indexes of `table` when `n` rows about to be inserted outnumber the
    rows it holds (`REBUILD_RATIO`; counted up to that bound only): a sort then beats `n`
    random inserts into each. Returns the (name, DDL) of those dropped, for `_create_indexes`.

    The caller creates them again before its savepoint or transaction ends, and rolls that back
    on any error: other connections see the indexes before and after, never without (WAL
    readers keep their snapshot; the writer holds SQLite's write lock). A unique index created
    again over duplicate rows fails as the insert itself would have (`sqlite3.IntegrityError`).
    """
    bound = n // REBUILD_RATIO
    cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT ?)", (bound + 1,))
    if cur.fetchone()[0] > bound:
        return []
    cur.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL ORDER BY name",
        (table,),
    )
    indexes: list[tuple[str, str]] = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    return indexes


def _create_indexes(cur: Any, indexes: list[tuple[str, str]]) -> None:
    """Create the indexes `_drop_indexes` dropped, with `SORT_CACHE` of sort memory."""
    if not indexes:
        return
    # the sort of CREATE INDEX takes up to cache_size of memory besides the cache
    cur.execute("PRAGMA cache_size")
    cache = cur.fetchone()[0]
    cur.execute(f"PRAGMA cache_size={SORT_CACHE}")
    try:
        for _, sql in indexes:
            cur.execute(sql)
    finally:
        cur.execute(f"PRAGMA cache_size={int(cache)}")
