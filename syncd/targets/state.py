"""The id map and delivery state of each target, in the store.

Every function takes an engine and runs its own short transaction, so a crash loses at most
what the target had not acknowledged: a create is first recorded as pending (`remote_id`
NULL), then the target's id is written once it answered. A pending row means "this create may
have happened": the next attempt looks the object up before creating it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, tuple_

from syncd.store.engine import session_scope
from syncd.store.models import TargetObject, TargetState, utcnow

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Mapped:
    kind: str  # user | team
    local_id: str
    remote_id: str | None
    digest: str | None = None
    active: bool | None = None
    left: bool = False


IdMap = dict[tuple[str, str], Mapped]


def _mapped(r: TargetObject) -> Mapped:
    return Mapped(r.kind, r.local_id, r.remote_id, r.digest, r.active, r.left)


def load_map(engine: Engine, target: str) -> IdMap:
    with session_scope(engine, write=False) as s:
        rows = s.execute(select(TargetObject).where(TargetObject.target == target)).scalars()
        return {(r.kind, r.local_id): _mapped(r) for r in rows}


def load_some(engine: Engine, target: str, keys: Iterable[tuple[str, str]]) -> IdMap:
    keys = sorted(set(keys))
    out: IdMap = {}
    with session_scope(engine, write=False) as s:
        for i in range(0, len(keys), _CHUNK):
            q = select(TargetObject).where(
                TargetObject.target == target,
                tuple_(TargetObject.kind, TargetObject.local_id).in_(keys[i : i + _CHUNK]),
            )
            out.update({(r.kind, r.local_id): _mapped(r) for r in s.execute(q).scalars()})
    return out


def owner_of(engine: Engine, target: str, kind: str, remote_id: str) -> str | None:
    """The local id mapped to `remote_id`, if any."""
    with session_scope(engine, write=False) as s:
        return s.execute(
            select(TargetObject.local_id).where(
                TargetObject.target == target, TargetObject.kind == kind, TargetObject.remote_id == remote_id
            )
        ).scalar()


def save(engine: Engine, target: str, rows: Iterable[Mapped]) -> None:
    """Insert or replace these map rows (one transaction)."""
    rows = list(rows)
    if not rows:
        return
    with session_scope(engine) as s:
        for m in rows:
            got = s.get(TargetObject, (target, m.kind, m.local_id))
            if got is None:
                got = TargetObject(target=target, kind=m.kind, local_id=m.local_id)
                s.add(got)
            got.remote_id, got.digest, got.active, got.left = m.remote_id, m.digest, m.active, m.left
            got.updated_at = utcnow()


def forget(engine: Engine, target: str, keys: Iterable[tuple[str, str]]) -> None:
    keys = sorted(set(keys))
    if not keys:
        return
    with session_scope(engine) as s:
        for i in range(0, len(keys), _CHUNK):
            s.execute(
                delete(TargetObject).where(
                    TargetObject.target == target,
                    tuple_(TargetObject.kind, TargetObject.local_id).in_(keys[i : i + _CHUNK]),
                )
            )


def get_state(engine: Engine, target: str) -> TargetState:
    with session_scope(engine, write=False) as s:
        got = s.get(TargetState, target)
        return got if got is not None else TargetState(target=target)


def update_state(engine: Engine, target: str, **values: Any) -> None:
    """Set these columns of the target's state row (created on first use)."""
    with session_scope(engine) as s:
        got = s.get(TargetState, target)
        if got is None:
            got = TargetState(target=target)
            s.add(got)
        for k, v in values.items():
            setattr(got, k, v)
        got.updated_at = utcnow()


def note_error(engine: Engine, target: str, error: str | None, *, at: datetime | None = None) -> None:
    update_state(engine, target, last_error=error, last_error_at=(at or utcnow()) if error else None)
