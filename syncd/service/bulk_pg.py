"""PostgreSQL write paths of `syncd.service.bulk`: rows go in with `COPY … FROM STDIN`
(psycopg 3), in the caller's transaction, instead of multi-row INSERT statements.

The stored rows are the ones the INSERT path writes, byte for byte where it matters: JSON
columns hold the text SQLAlchemy's JSON type writes (the engine's serializer,
`syncd.store.jsontext.dumps` for the store's engines, and None as JSON `null` unless the
column says `none_as_null`); identity columns (audit and change ids) come from their
sequences in row order; every `changes` row gets the transaction's `pg_current_xact_id()`,
as the INSERT's column default would give it.

- `insert_unique`: rows into a table with unique indexes; a violation (a concurrent writer
  committed the same name or externalId) is a `Conflict`, the savepoint rolled back.
- `audit`: audit events and their change-feed rows.
- `add_to_empty_teams`: memberships of teams that had none when the batch began (a pull's
  new teams). No ON CONFLICT, no RETURNING: every pair is new unless a concurrent writer
  (an on-login sync) added one meanwhile; then the COPY fails on the primary key, its
  savepoint is rolled back and the caller takes the ON CONFLICT path, so the outcome is the
  same either way. Its foreign keys are checked once per statement where the role may do so
  (`syncd.service.pg_fk`), else per row. The rows go in by user id: each user's per-row
  foreign-key checks then follow one another (its key and row lock found where the last check
  left them) and the (user, team) index is filled in order; for a pull's load that is ~15%
  less server CPU than team order. While that index is dropped for a rebuild
  (`syncd.service.pg_rebuild`), they go in by team instead: the primary key's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import psycopg
from sqlalchemy import JSON, DateTime, Table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from syncd.feed import writer as feed
from syncd.feed.kinds import USER_CREATED
from syncd.service import pg_fk, pg_rebuild
from syncd.service.common import AUDIT_COLUMNS as _AUDIT_COLS
from syncd.service.common import CHANGE_COLUMNS as _CHANGE_COLS
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.service.pg_arrays import text_array
from syncd.store.models import AuditEvent, Change, Membership, Team

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
CHANGES = Change.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]

_MEMBER_COLS_BY_USER = ("user_id", "team_id", "directory", "source", "created_at")
_MEMBER_COLS_BY_TEAM = ("team_id", "user_id", "directory", "source", "created_at")
_UNIQUE = "23505"
#: rows per write of `copy_text`
_LINES = 10_000
_SPECIAL = re.compile(r"[\\\t\n\r]")
_EMPTY_TEAMS = text(
    "SELECT count(*) FROM unnest(CAST(:ids AS varchar[])) AS x(id) JOIN teams AS t ON t.id = x.id "
    "WHERE t.member_count = 0"
)


def copy_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY `rows` (values in `columns` order, JSON columns already serialised) into `table`.
    A driver error is raised as SQLAlchemy's (IntegrityError, OperationalError, …, with
    `.orig`), as an `execute` would raise it (callers retry on its SQLSTATE).

    Timestamp values go as the text psycopg's own dumper writes for them (`str(dt)`), made once
    per distinct value: psycopg's COPY formatting of a datetime costs about 3.4 us, more than
    the rest of a user's row (a batch's rows share one or two timestamps)."""
    stamps = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, DateTime)]
    if stamps:
        rows = _stamped(rows, stamps)
    cols = ", ".join(f'"{c}"' for c in columns)
    stmt = f'COPY "{table.name}" ({cols}) FROM STDIN'
    cur = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cur.copy(stmt) as cp:
            for r in rows:
                cp.write_row(r)
    except psycopg.Error as exc:
        raise DBAPIError.instance(stmt, None, exc, psycopg.Error) from exc
    finally:
        cur.close()


def _stamped(rows: Iterable[Sequence[Any]], positions: Sequence[int]) -> Iterator[Sequence[Any]]:
    """`rows` with the datetime values at `positions` replaced by their COPY text."""
    texts: dict[tuple[datetime, Any], str] = {}
    for r in rows:
        out = list(r)
        for i in positions:
            v = out[i]
            if isinstance(v, datetime):
                # keyed with the offset: equal datetimes (a fold's two sides) may print apart
                k = (v, v.utcoffset())
                t = texts.get(k)
                if t is None:
                    t = texts[k] = str(v)
                out[i] = t
        yield out


def copy_text(session: Session, table: Table, columns: Sequence[str], lines: Iterable[str]) -> None:
    """COPY `lines` (rows already in COPY text format, see `_copy_text`) into `table`; errors
    as `copy_rows`."""
    cols = ", ".join(f'"{c}"' for c in columns)
    stmt = f'COPY "{table.name}" ({cols}) FROM STDIN'
    cur = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cur.copy(stmt) as cp:
            buf: list[str] = []
            for line in lines:
                buf.append(line)
                if len(buf) >= _LINES:
                    cp.write("".join(buf))
                    buf.clear()
            if buf:
                cp.write("".join(buf))
    except psycopg.Error as exc:
        raise DBAPIError.instance(stmt, None, exc, psycopg.Error) from exc
    finally:
        cur.close()


def copy_dicts(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """COPY `rows` (dicts with the same keys, Python values as the INSERT path binds them);
    returns, per JSON column, the values as written (text, or None for SQL NULL), in row order."""
    if not rows:
        return {}
    columns = list(rows[0])
    dumps = _serializer(session)
    encoded = {
        c: list(map(_json_encoder(table.c[c].type, dumps), (r[c] for r in rows)))
        for c in columns
        if isinstance(table.c[c].type, JSON)
    }
    if not encoded:
        copy_rows(session, table, columns, ([r[c] for c in columns] for r in rows))
        return encoded
    cols = [encoded.get(c) for c in columns]
    copy_rows(
        session,
        table,
        columns,
        (
            [r[c] if e is None else e[i] for c, e in zip(columns, cols, strict=True)]
            for i, r in enumerate(rows)
        ),
    )
    return encoded


def insert_unique(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], what: str
) -> dict[str, list[Any]]:
    """`copy_dicts` in a savepoint (its JSON texts returned); an integrity error (a unique
    index: a concurrent writer won) is Conflict, as in `bulk._insert_unique`."""
    try:
        with session.begin_nested():
            return copy_dicts(session, table, rows)
    except IntegrityError as exc:
        raise Conflict(f"a {what} in this batch already exists") from exc


def audit(
    session: Session,
    actor: Actor,
    now: Any,
    events: list[tuple[str, str, str, Any, Any]],
    *,
    afters: Sequence[str | None] | None = None,
) -> None:
    """One audit event per (action, resource type, resource id, before, after), and the
    change-feed rows they mean (`syncd.feed.writer`), both by COPY. `afters`: the `after`
    values already encoded as the `after` column writes them, in event order."""
    dumps = _serializer(session)
    j_before = _by_identity(_json_encoder(AUDIT.c.before.type, dumps))
    j_after = _by_identity(_json_encoder(AUDIT.c.after.type, dumps))
    d, label, run = actor.directory, actor.label, actor.sync_run_id
    encoded = iter(afters) if afters is not None else None
    copy_rows(
        session,
        AUDIT,
        _AUDIT_COLS,
        (
            (now, d, label, a, rt, rid, j_before(b), j_after(af) if encoded is None else next(encoded), run)
            for a, rt, rid, b, af in events
        ),
    )
    j_data = _json_encoder(CHANGES.c.data.type, dumps)
    if events and all(e[0] == "user.create" for e in events):
        rows = _user_created_rows(events, d, label, now, j_data)
    else:
        rows = [
            (
                r["at"],
                r["directory"],
                r["kind"],
                r["resource_type"],
                r["resource_id"],
                r["name"],
                j_data(r["data"]),
                r["actor"],
            )
            for r in feed.change_rows(session, directory=d, actor=label, events=events, at=now)
        ]
    if not rows:
        return
    xid = session.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    copy_rows(session, CHANGES, _CHANGE_COLS, ((xid, *r) for r in rows))
    feed.mark_recorded(session)


def _user_created_rows(
    events: list[tuple[str, str, str, Any, Any]], directory: str | None, actor: str, now: Any, j_data: Any
) -> list[tuple[Any, ...]]:
    """The change rows (without xid) of "user.create" events, as `feed.change_rows` builds them
    (`syncd.feed.kinds`: one "user.created" per event, named by its userName, data its
    externalId and active flag), without a spec object per event."""
    label = actor[:256]
    return [
        (
            now,
            directory,
            USER_CREATED,
            "user",
            rid,
            af.get("userName"),
            j_data({"externalId": af.get("externalId"), "active": af.get("active", True)}),
            label,
        )
        for _, _, rid, _, af in events
    ]


def add_to_empty_teams(
    session: Session,
    by_team: Mapping[str, Sequence[str]],
    *,
    directory: str | None,
    source: str,
    now: Any,
) -> bool:
    """Insert the memberships of `by_team` (team id → its distinct user ids) by COPY if every
    one of those teams has no member now; returns whether it did. False, with nothing
    written, if a team has members or a concurrent writer added one of the pairs first."""
    team_ids = list(by_team)
    found = session.execute(_EMPTY_TEAMS, {"ids": text_array(team_ids)}).scalar_one()
    if found != len(team_ids):
        return False
    tail = "\t".join(("", _copy_text(directory), _copy_text(source), now.isoformat())) + "\n"
    user_ids = set(chain.from_iterable(by_team.values()))
    esc = {v: _copy_text(v) for v in user_ids}
    lines: list[str] = []
    if pg_rebuild.team_order(session):  # only the primary key is filled: in its order
        columns = _MEMBER_COLS_BY_TEAM
        for t in sorted(by_team):
            head = f"{_copy_text(t)}\t"
            lines += [head + esc[u] + tail for u in sorted(by_team[t])]
    else:  # (user, team) lines sorted as text: by user, then team, with no tuple per pair
        columns = _MEMBER_COLS_BY_USER
        for t, us in by_team.items():
            rest = f"\t{_copy_text(t)}{tail}"
            lines += [esc[u] + rest for u in us]
        lines.sort()
    try:
        with session.begin_nested():
            pg_fk.copy_checked(
                session,
                lambda: copy_text(session, MEMBERSHIPS, columns, lines),
                rows=len(lines),
                user_ids=user_ids,
                team_ids=team_ids,
            )
    except IntegrityError as exc:
        if _sqlstate(exc) != _UNIQUE:
            raise
        return False
    return True


def _copy_text(v: str | None) -> str:
    """`v` as a field of COPY's text format (None: NULL)."""
    if v is None:
        return "\\N"
    if _SPECIAL.search(v) is None:
        return v
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _serializer(session: Session) -> Any:
    return getattr(session.get_bind().dialect, "_json_serializer", None) or json.dumps


def _by_identity(encode: Any) -> Any:
    """`encode`, answering again from memory for an object it has seen (by identity: events
    often share one `before` (None) or `after`). Valid while the objects it saw are alive and
    unchanged, i.e. within one call over a list of events."""
    seen: dict[int, Any] = {}

    def once(v: Any) -> Any:
        k = id(v)
        if k not in seen:
            seen[k] = encode(v)
        return seen[k]

    return once


def _json_encoder(type_: JSON, dumps: Any) -> Any:
    """value → the text SQLAlchemy's JSON type binds for it (None → SQL NULL only if
    `none_as_null`)."""
    if type_.none_as_null:
        return lambda v: None if v is None else dumps(v)
    return dumps
