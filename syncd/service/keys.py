"""Rows by the per-directory unique keys, and name keys parked for a permutation of names.

For the reconcile apply path; the caller owns the session and its transaction. Every read and
write is limited to the actor's directory (`coalesce(directory, '')`, as the unique indexes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syncd.service.bulk import PAIRS, TEAMS, USERS, _is_pg
from syncd.service.common import chunks, in_scope
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.service.pg_arrays import text_array
from syncd.service.resource import fold

#: (table, name-key column, name column) per kind of row
_NAMED = {"user": (USERS, "user_name_key", "user_name"), "team": (TEAMS, "display_name_key", "display_name")}
#: prefix of a parked name key (then the row's id: unique, and no real name's key)
PARKED = "\x1fsyncd-parked:"


def find_ids(
    session: Session, *, actor: Actor, kind: Literal["user", "team"], external_ids: Sequence[str]
) -> dict[str, str]:
    """external id → id of the rows of `kind` in the actor's directory that carry one of
    `external_ids` (the ones absent are left out)."""
    table = _NAMED[kind][0]
    return _lookup(session, table, table.c.external_id, actor, list(external_ids))


def name_holders(
    session: Session, *, actor: Actor, kind: Literal["user", "team"], keys: Sequence[str]
) -> dict[str, str]:
    """name key (`fold` of a userName or displayName) → id of the row of `kind` in the actor's
    directory that holds it (keys nobody holds are left out)."""
    table, key, _ = _NAMED[kind]
    return _lookup(session, table, table.c[key], actor, list(keys))


@contextmanager
def parked_names(
    session: Session, *, actor: Actor, kind: Literal["user", "team"], ids: Sequence[str]
) -> Iterator[None]:
    """Free the names of rows `ids` (of the actor's directory) for the block, so that a
    permutation of names among rows (a swap, a chain, a cycle) can be written one row at a time
    through the per-row operations, whose uniqueness checks and unique index see a parked row
    as holding no name.

    Only the name key is parked (to `PARKED` + id, unique per row), so nothing else of the row,
    its version or its audit trail changes; each row is expected to get its new name within the
    block, and any row that did not gets its own name back when the block ends (a Conflict if
    that name was taken meanwhile). The caller owns the transaction: parked keys are never
    committed unless the block ends normally, and then none is left."""
    table, key, name = _NAMED[kind]
    ids = list(dict.fromkeys(ids))
    if not ids:
        yield
        return
    stmt = (
        update(table)
        .where(table.c.id == bindparam("p_id"), in_scope(table.c.directory, actor))
        .values({key: bindparam("p_key")})
    )
    session.flush()
    session.execute(stmt, [{"p_id": i, "p_key": PARKED + i} for i in ids])
    yield
    session.flush()
    left: list[dict[str, Any]] = []
    for part in chunks(ids):
        q = select(table.c.id, table.c[name]).where(
            table.c.id.in_(part), table.c[key].startswith(PARKED, autoescape=True)
        )
        left += [{"p_id": i, "p_key": fold(n)} for i, n in session.execute(q).all()]
    if left:
        try:
            with session.begin_nested():
                session.execute(stmt, left)
        except IntegrityError as exc:
            raise Conflict(f"a {kind} name in this batch is already taken") from exc


def _lookup(session: Session, table: Any, column: Any, actor: Actor, values: list[str]) -> dict[str, str]:
    """value → row id for the `values` present in `column` within the actor's directory (one
    join per `PAIRS` values against the (directory, column) unique index, as `_taken`)."""
    pg = _is_pg(session)
    where = f"coalesce(t.directory, '') = :dir AND t.{column.name} = "
    if pg:  # LATERAL … LIMIT 1: one index probe per value (see `bulk._taken`)
        sql = (
            f"SELECT x.v, t.id FROM unnest(CAST(:vals AS varchar[])) AS x(v) CROSS JOIN LATERAL "
            f"(SELECT t.id FROM {table.name} AS t WHERE "
        )
        stmt = text(sql + where + "x.v LIMIT 1) AS t")
    else:
        sql = f"SELECT x.value, t.id FROM json_each(:vals) AS x CROSS JOIN {table.name} AS t WHERE "
        stmt = text(sql + where + "x.value")
    out: dict[str, str] = {}
    for part in chunks(list(dict.fromkeys(values)), PAIRS):
        vals = text_array(part) if pg else json.dumps(list(part))
        out.update(session.execute(stmt, {"vals": vals, "dir": actor.directory or ""}).tuples().all())
    return out
