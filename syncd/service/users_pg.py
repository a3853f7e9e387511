"""POST /Users on PostgreSQL as one statement, in its own (implicit) transaction.

`create_user` in `users` sends a create's rows one statement at a time inside a session's
transaction: BEGIN, user, emails, audit event, change, NOTIFY, COMMIT, a round trip each. Here
they are one writable CTE sent in autocommit: the user row is `INSERT … ON CONFLICT DO NOTHING
RETURNING id`, and the emails, the audit event, the change (with `xid =
pg_current_xact_id()`) and `pg_notify` are each fed from that RETURNING, so a refused user
writes nothing else. One statement is one transaction: all of it commits or none.

Invariants, the same as `users.create_user` (a test compares the rows of both paths):
- the rows written and their values (`email_rows`, `audit.record`'s event, `feed`'s change
  rows), the Conflict on a taken userName/externalId (named by the same lookup), and the
  returned User;
- the same validation before anything is sent (`users.new_row`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from syncd.feed import signal
from syncd.feed import writer as feed
from syncd.service import users
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.store import jsontext
from syncd.store.models import AuditEvent, Change, User, UserEmail, utcnow

_PG = postgresql.dialect()
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_CHANGES = Change.__table__  # type: ignore[attr-defined]
_EMAILS = UserEmail.__table__  # type: ignore[attr-defined]
_EMAIL_COLUMNS = ("value", "value_key", "type", "primary")


def _sql_type(table: Table, name: str) -> str:
    """The column's PostgreSQL type without a length: an explicit CAST to `VARCHAR(n)` would
    cut a longer value silently, where the column itself refuses it (DataError, as the
    row-by-row path answers)."""
    compiled = str(table.c[name].type.compile(dialect=_PG))
    return "VARCHAR" if compiled.startswith("VARCHAR") else compiled


def _typed(table: Table, prefix: str, names: tuple[str, ...]) -> tuple[str, list[Any]]:
    """`CAST(:<prefix><name> AS <type>)` for each column, and their typed bind parameters
    (bound as the ORM binds them: JSON serialised, timestamps as timestamps)."""
    exprs, params = [], []
    for name in names:
        col = table.c[name]
        exprs.append(f"CAST(:{prefix}{name} AS {_sql_type(table, name)})")
        params.append(bindparam(prefix + name, type_=col.type))
    return ", ".join(exprs), params


def _statement() -> TextClause:
    user_cols = [c.name for c in users.USERS.c]
    audit_cols = ("at", "directory", "actor", "action", "resource_type", "resource_id", "before", "after")
    change_cols = ("at", "directory", "kind", "resource_type", "resource_id", "name", "data", "actor")
    audit_exprs, audit_params = _typed(_AUDIT, "a_", audit_cols)
    change_exprs, change_params = _typed(_CHANGES, "c_", change_cols)
    email_types = ", ".join(f'"{n}" {_sql_type(_EMAILS, n)}' for n in _EMAIL_COLUMNS)
    email_cols = ", ".join(f'"{n}"' for n in _EMAIL_COLUMNS)
    sql = (
        f"WITH u AS (INSERT INTO users ({', '.join(user_cols)}) "
        f"VALUES ({', '.join(':' + n for n in user_cols)}) ON CONFLICT DO NOTHING RETURNING id), "
        f"e AS (INSERT INTO user_emails (user_id, {email_cols}) "
        f"SELECT u.id, {', '.join('x.' + c for c in email_cols.split(', '))} "
        f"FROM u, json_to_recordset(CAST(:emails AS json)) AS x({email_types})), "
        f"a AS (INSERT INTO audit_events ({', '.join(audit_cols)}, sync_run_id) "
        f"SELECT {audit_exprs}, CAST(:a_sync_run_id AS {_sql_type(_AUDIT, 'sync_run_id')}) FROM u), "
        f"c AS (INSERT INTO changes ({', '.join(change_cols)}, xid) "
        f"SELECT {change_exprs}, pg_current_xact_id()::text::bigint FROM u) "
        f"SELECT u.id, pg_notify(:channel, '') FROM u"
    )
    params = [bindparam(c.name, type_=c.type) for c in users.USERS.c]
    return text(sql).bindparams(*params, *audit_params, *change_params)


_CREATE = _statement()


def create_user(conn: Connection, *, actor: Actor, body: dict[str, Any]) -> User:
    """POST /Users in one statement on `conn` (a PostgreSQL connection in autocommit)."""
    data, values = users.new_row(actor, body)
    user_id = values["id"]
    audit_at = utcnow()  # before the change's `at`, as `audit.record` then `feed.record`
    events = [("user.create", "user", user_id, None, data)]
    changes = feed.change_rows(conn, directory=actor.directory, actor=actor.label, events=events)
    if len(changes) != 1:  # user.create means exactly one change (`feed.kinds`)
        raise AssertionError(f"user.create meant {len(changes)} changes")
    params: dict[str, Any] = dict(values)
    emails = users.email_rows(user_id, data.get("emails"))
    params["emails"] = jsontext.dumps([{k: e[k] for k in _EMAIL_COLUMNS} for e in emails])
    params.update(
        {
            "a_at": audit_at,
            "a_directory": actor.directory,
            "a_actor": actor.label,
            "a_action": "user.create",
            "a_resource_type": "user",
            "a_resource_id": user_id,
            "a_before": None,
            "a_after": data,
            "a_sync_run_id": actor.sync_run_id,
            "channel": feed.CHANNEL,
        }
    )
    params.update({f"c_{k}": v for k, v in changes[0].items()})
    try:
        inserted = conn.execute(_CREATE, params).first()
    except IntegrityError as exc:  # not a unique index (e.g. a directory row missing)
        raise Conflict(f"userName {data['userName']!r} already exists") from exc
    if inserted is None:
        raise users.refused(conn, actor, data)
    signal.notify_local()
    return User(**values)
