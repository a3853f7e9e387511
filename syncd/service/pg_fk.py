"""A bulk COPY into `memberships` with its foreign keys checked once per statement, where the
PostgreSQL role may do so; otherwise the usual per-row checks.

Each row of a COPY into `memberships` fires two foreign-key triggers (users, teams), each an
SPI query; for a pull's new teams (a million rows at 100k users) they are about 60% of the
COPY's server time. `copy_checked` instead:

1. takes, in one statement per referenced table, the lock each trigger takes (`FOR KEY SHARE`
   on every referenced row) and counts the rows it locked;
2. only if every referenced row was found, runs the COPY with `session_replication_role =
   replica` (which skips ordinary triggers, the foreign-key ones included), then sets it back
   to `origin` before anything else runs in the transaction.

What the per-row checks guarantee still holds when the COPY's rows are committed: every
referenced user and team existed when the COPY ran, and no other transaction could delete it
or change its key before this one ended (the same lock, held to the end of the transaction).
A referenced row that is missing, or deleted meanwhile, sends the COPY down the per-row path,
whose trigger raises the usual foreign-key violation (SQLSTATE 23503).

The statement path is taken only when all of these hold at the time of the COPY; otherwise the
COPY runs with its per-row checks and the same outcome:

- it copies at least `MIN_ROWS` rows (below that, the checks' few statements cost more than
  the triggers they spare: an on-login sync's new teams, a SCIM PATCH);
- the role may set the parameter: a superuser, or on PostgreSQL 15+ a role granted
  `SET ON PARAMETER session_replication_role`;
- the session's `session_replication_role` is `origin`;
- the role may lock rows of `users` and `teams` (UPDATE on them, which a store's role has);
- `memberships` has no trigger but its foreign keys' (none of its own, no deferrable key's:
  replica mode would leave them unfired), and its foreign keys are exactly the two checked
  here: `user_id` → `users.id`, `team_id` → `teams.id`. `memberships` is locked as the COPY
  locks it (ROW EXCLUSIVE) before these are read, so no trigger or key can be added between
  the check and the COPY.

Call it inside a savepoint (or a transaction) that is rolled back if it raises: the rollback
also restores `session_replication_role`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from syncd.service.pg_arrays import text_array

Path = Literal["statement", "row"]

_PRIVILEGE_15 = "has_parameter_privilege('session_replication_role', 'SET')"
_PRIVILEGE_OLD = "current_setting('is_superuser') = 'on'"
#: the checks `copy_checked` replaces: memberships' foreign keys, (column, table, column)
_KEYS = (("user_id", "users", "id"), ("team_id", "teams", "id"))
_ATTNUM = "ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = c.{rel} AND attname = '{name}')]"
_FK_MATCH = " OR ".join(
    f"(c.confrelid = CAST('{table}' AS regclass) AND c.conkey = {_ATTNUM.format(rel='conrelid', name=col)} "
    f"AND c.confkey = {_ATTNUM.format(rel='confrelid', name=ref)})"
    for col, table, ref in _KEYS
)
_CONDITIONS = """
SELECT {privilege},
       has_any_column_privilege('users', 'UPDATE') AND has_any_column_privilege('teams', 'UPDATE'),
       current_setting('session_replication_role') = 'origin',
       NOT EXISTS (
           SELECT 1 FROM pg_trigger t
           WHERE t.tgrelid = CAST('memberships' AS regclass)
             AND NOT (t.tgisinternal AND EXISTS (
                 SELECT 1 FROM pg_constraint c
                 WHERE c.oid = t.tgconstraint AND c.conrelid = t.tgrelid AND c.contype = 'f'))
       ),
       (SELECT count(*) FROM pg_constraint c
        WHERE c.conrelid = CAST('memberships' AS regclass) AND c.contype = 'f') = {keys}
       AND (SELECT count(*) FROM pg_constraint c
            WHERE c.conrelid = CAST('memberships' AS regclass) AND c.contype = 'f' AND ({match})) = {keys}
"""
_LOCK = "SELECT count(*) FROM (SELECT 1 FROM {} WHERE id = ANY(CAST(:ids AS varchar[])) FOR KEY SHARE) AS x"
_INSUFFICIENT_PRIVILEGE = "42501"
log = logging.getLogger("syncd.service.pg_fk")
_told = False  # whether `_allowed` logged why per row, once a process
#: rows of a COPY from which its foreign keys are checked per statement (when allowed)
MIN_ROWS = 2_000


def copy_checked(
    session: Session,
    copy: Callable[[], None],
    *,
    rows: int,
    user_ids: Collection[str],
    team_ids: Collection[str],
) -> Path:
    """Run `copy` (a COPY into `memberships` of `rows` rows referencing only `user_ids` and
    `team_ids`, each given once) with its foreign keys checked per statement if allowed (see
    the module), else per row; returns which. Errors of `copy` are raised as they are."""
    if rows >= MIN_ROWS:
        # the COPY's own lock, taken now: no trigger or key can be added between the check and it
        session.execute(text("LOCK TABLE memberships IN ROW EXCLUSIVE MODE"))
        if _allowed(session) and _lock_all(session, user_ids, team_ids) and _replica(session):
            copy()
            session.execute(text("SET LOCAL session_replication_role = origin"))
            return "statement"
    copy()
    return "row"


def eligible(session: Session) -> bool:
    """Whether `copy_checked` may check per statement in this session now (see the module)."""
    return blocker(session) is None


def _allowed(session: Session) -> bool:
    """`eligible`, logging why not the first time in this process (`syncd db status` shows it too)."""
    global _told
    why = blocker(session)
    if why is not None and not _told:
        _told = True
        log.info("large membership loads check their foreign keys per row (about half as fast): %s", why)
    return why is None


def blocker(session: Session) -> str | None:
    """Why `copy_checked` checks per row in this session now, for an operator; None if it
    may check per statement (a large enough COPY then does)."""
    version = session.get_bind().dialect.server_version_info or (0,)
    modern = version >= (15,)
    sql = _CONDITIONS.format(
        privilege=_PRIVILEGE_15 if modern else _PRIVILEGE_OLD, keys=len(_KEYS), match=_FK_MATCH
    )
    may_set, may_lock, origin, no_triggers, our_keys = session.execute(text(sql)).one()
    if not may_set:
        if modern:
            grant = "GRANT SET ON PARAMETER session_replication_role TO <the store's role>"
        else:
            grant = "PostgreSQL before 15: superuser only"
        return f"the role may not set session_replication_role ({grant})"
    if not may_lock:
        return "the role may not lock rows of users and teams (it needs UPDATE on them)"
    if not origin:
        return "the session's session_replication_role is not origin"
    if not no_triggers:
        return (
            "memberships has triggers besides its foreign keys' (its own, or a deferrable key's), "
            "which replica mode would skip"
        )
    if not our_keys:
        return "memberships has foreign keys other than syncd's two"
    return None


def _lock_all(session: Session, user_ids: Collection[str], team_ids: Collection[str]) -> bool:
    """Lock every referenced row as the foreign-key triggers would; whether all were found."""
    for table, ids in (("users", user_ids), ("teams", team_ids)):
        found = session.execute(text(_LOCK.format(table)), {"ids": text_array(sorted(ids))}).scalar_one()
        if found != len(ids):
            return False
    return True


def _replica(session: Session) -> bool:
    """`SET LOCAL session_replication_role = replica`; False if the role may not (a grant
    revoked since `eligible` looked), the transaction unharmed."""
    try:
        with session.begin_nested():
            session.execute(text("SET LOCAL session_replication_role = replica"))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        return False
    return True
