"""List queries by a unique key: `userName eq "x"`, `externalId eq "x"`, Group `displayName eq "x"`.

These are what IdPs send before every create (does the resource exist yet?). Each names a
column that a per-directory unique index covers, so at most one row matches; the answer is
the page of that one-row result, read with a statement built once per (model, column) whose
values are parameters (compiled once, no per-request statement building or cache-key walk).

Invariant: `key_filter` returns a match only for filters whose general translation
(`filters.sql`) is exactly `<column> = <value>` (after casefolding for `*_key` columns), so
`list_by_key` returns the same page, total and order as `common.list_scoped` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, Table, bindparam, func, literal_column, select
from sqlmodel import Session

from syncd.service.common import Page, page_bounds
from syncd.service.context import Actor
from syncd.service.filters import AttrPath, Compare, Filter
from syncd.service.schema import ResourceType


@dataclass(frozen=True, slots=True)
class Key:
    """A filterable attribute held in a uniquely indexed column; `fold`: compare casefolded."""

    attr: str  # the attribute name, lower-case
    column: str
    fold: bool


def key_filter(flt: Filter, rt: ResourceType, keys: tuple[Key, ...]) -> tuple[str, str] | None:
    """(column, value to compare) when `flt` is `<key> eq "<string>"` on the core schema."""
    if not isinstance(flt, Compare) or flt.op != "eq" or not isinstance(flt.value, str):
        return None
    path: AttrPath = flt.path
    if path.sub is not None or (path.urn is not None and path.urn.lower() != rt.core.id.lower()):
        return None
    name = path.attr.lower()
    for key in keys:
        if key.attr == name:
            return key.column, flt.value.casefold() if key.fold else flt.value
    return None


_SELECTS: dict[tuple[Any, str], Select[Any]] = {}


def _select(target: Any, column: str) -> Select[Any]:
    """SELECT of `target` (a model, or its Table) where the row is in scope and `column` equals
    the `value` parameter; built once per (target, column)."""
    stmt = _SELECTS.get((target, column))
    if stmt is None:
        cols = target.c if isinstance(target, Table) else target
        scope = func.coalesce(cols.directory, literal_column("''"))  # as `common.in_scope`
        stmt = select(target).where(scope == bindparam("scope"), getattr(cols, column) == bindparam("value"))
        _SELECTS[(target, column)] = stmt
    return stmt


def _page(rows: Sequence[Any], start_index: int | None, count: int | None) -> Page[Any]:
    offset, limit = page_bounds(start_index, count)
    return Page(list(rows[offset : offset + limit]), len(rows), offset + 1)


def list_by_key(
    session: Session,
    model: Any,
    actor: Actor,
    column: str,
    value: str,
    start_index: int | None,
    count: int | None,
) -> Page[Any]:
    """The page of the actor's `model` rows whose `column` equals `value` (at most one row)."""
    params = {"scope": actor.directory or "", "value": value}
    return _page(session.execute(_select(model, column), params).scalars().all(), start_index, count)


def rows_by_key(
    conn: Connection,
    table: Table,
    actor: Actor,
    column: str,
    value: str,
    start_index: int | None,
    count: int | None,
) -> Page[Row[Any]]:
    """`list_by_key` on a Core connection: the same page, of rows (every column of `table`,
    read by attribute as the model's fields are) instead of model instances."""
    params = {"scope": actor.directory or "", "value": value}
    return _page(conn.execute(_select(table, column), params).all(), start_index, count)
