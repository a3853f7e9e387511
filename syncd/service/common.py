"""Helpers shared by the service operations: directory scope, versions/ETags, pages, ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    TextClause,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syncd.service import limits
from syncd.service.context import Actor
from syncd.service.errors import Conflict, NotFound, PreconditionFailed, TooMany

T = TypeVar("T")

#: Largest page a list query returns (advertised as filter.maxResults).
MAX_RESULTS = 1000
DEFAULT_COUNT = 100
#: Ids per IN (...) clause; keeps well under SQLite's bound-parameter limit.
CHUNK = 500


def new_id() -> str:
    return str(uuid.uuid4())


def in_scope(column: Any, actor: Actor) -> ColumnElement[bool]:
    """`column` (a `directory` column) restricted to the actor's directory; None = local rows.

    Written as `coalesce(directory, '') = :d` so that it matches the per-directory unique
    indexes (userName, displayName, externalId) and lookups by them use those indexes. The
    `''` must be an SQL literal: SQLite matches an expression index only to the identical
    expression, and `coalesce(directory, ?)` is not (a full scan: 35 ms at 100k users).
    """
    return func.coalesce(column, literal_column("''")) == (actor.directory or "")


def etag(version: int) -> str:
    """The weak ETag (and SCIM meta.version) of a resource version."""
    return f'W/"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """Raise PreconditionFailed unless `if_match` (an If-Match header value) names `version`."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",") if t.strip()]
    if "*" in tags:
        return
    current = etag(version)
    strong = current[2:]
    if not any(t in (current, strong) for t in tags):
        raise PreconditionFailed(f"version {current} does not match If-Match {if_match}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list query; `start_index` is 1-based as in SCIM."""

    items: Sequence[T]
    total: int
    start_index: int


def page_bounds(start_index: int | None, count: int | None) -> tuple[int, int]:
    """(offset, limit) for SCIM startIndex/count; startIndex < 1 means 1, count < 0 means 0."""
    start = max(1, start_index or 1)
    if count is None:
        count = DEFAULT_COUNT
    if count > MAX_RESULTS:
        raise TooMany(f"count may be at most {MAX_RESULTS}")
    return start - 1, max(0, count)


def chunks(ids: Sequence[str], size: int | None = None) -> list[Sequence[str]]:
    """`ids` in slices of `size` (default: CHUNK, read at call time)."""
    size = size or CHUNK
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def flush_unique(session: Session, what: str) -> None:
    """Flush, turning a unique-index violation (a concurrent writer won) into Conflict."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} already exists") from exc


def get_scoped(
    session: Session, model: Any, label: str, row_id: str, actor: Actor, *, for_update: bool
) -> Any:
    """The `model` row `row_id` in the actor's directory, or NotFound (`label` names the SCIM type).

    With `for_update` the row is locked and, through populate_existing, a copy the session
    already holds (loaded earlier in the transaction, or changed since by a Core statement or
    another transaction) is refreshed from it; otherwise version, count and data would be
    written from stale values. An id no row can have (a control character) is not found.
    """
    if not limits.storable_id(row_id):
        raise NotFound(f"{label} {row_id!r} not found")
    params = {"id": row_id, "scope": actor.directory or ""}
    row = session.execute(_by_id(model, for_update), params).scalars().first()
    if row is None:
        raise NotFound(f"{label} {row_id} not found")
    return row


_BY_ID: dict[tuple[Any, bool], Any] = {}


def _by_id(model: Any, for_update: bool) -> Any:
    """`get_scoped`'s statement, built once per (model, for_update) with its values as
    parameters (a statement built per call costs its construction and its cache-key walk)."""
    stmt = _BY_ID.get((model, for_update))
    if stmt is None:
        scope = func.coalesce(model.directory, literal_column("''"))  # as in_scope
        stmt = select(model).where(model.id == bindparam("id"), scope == bindparam("scope"))
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        _BY_ID[(model, for_update)] = stmt
    return stmt


def find_scoped(session: Session, model: Any, actor: Actor, external_id: str) -> Any:
    """The `model` row with this external id in the actor's directory, or None."""
    if not limits.storable_id(external_id):
        return None
    q = select(model).where(model.external_id == external_id, in_scope(model.directory, actor))
    return session.execute(q).scalars().first()


def check_unique(
    session: Session | Connection,
    model: Any,
    actor: Actor,
    own_id: str | None,
    checks: list[tuple[Any, Any, str]],
) -> None:
    """Raise Conflict(message) for the first (column, value, message) whose value another row of
    the actor's directory holds; a None value is not checked (NULLs never clash)."""
    scope = in_scope(model.directory, actor)
    for column, value, message in checks:
        if value is None:
            continue
        hit = session.execute(select(model.id).where(scope, column == value)).scalars().first()
        if hit is not None and hit != own_id:
            raise Conflict(message)


def list_scoped(
    session: Session, model: Any, actor: Actor, condition: Any, start_index: int | None, count: int | None
) -> Page[Any]:
    """One page of the actor's `model` rows matching `condition` (None: all), ordered by
    creation then id so that pages are stable. The total is counted by a second query only
    when the page cannot tell it: a page that ends short of `count` (the usual answer to a
    filter such as `userName eq`) is the last one, so total = offset + its length."""
    offset, limit = page_bounds(start_index, count)
    cond = in_scope(model.directory, actor)
    if condition is not None:
        cond = cond & condition
    items: Sequence[Any] = []
    if limit:
        q = select(model).where(cond).order_by(model.created_at, model.id).offset(offset).limit(limit)
        items = session.execute(q).scalars().all()
    if limit and len(items) < limit and (items or offset == 0):
        total = offset + len(items)
    else:
        total = session.execute(select(func.count()).select_from(model).where(cond)).scalar_one()
    return Page(items, total, offset + 1)


def insert_new(table: Table, returning: str) -> TextClause:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING <returning>` of one row of `table` (every
    column a parameter named after it): a row a unique index refuses returns nothing.

    Text with the columns' types on its parameters, so values are bound as the ORM binds them
    (JSON, timestamps); the same SQL on SQLite and PostgreSQL, compiled once per engine. The
    dialects' own `insert` constructs have no cache key: SQLAlchemy would compile them on
    every execution.
    """
    names = [c.name for c in table.c]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) "
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )
    return text(sql).bindparams(*(bindparam(c.name, type_=c.type) for c in table.c))


#: the columns, in order, of the audit_events and changes rows the bulk writers send as tuples
#: (`bulk_sqlite` by executemany, `bulk_pg` by COPY)
AUDIT_COLUMNS = (
    "at",
    "directory",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "before",
    "after",
    "sync_run_id",
)
CHANGE_COLUMNS = ("xid", "at", "directory", "kind", "resource_type", "resource_id", "name", "data", "actor")
