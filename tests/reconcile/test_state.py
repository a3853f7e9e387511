"""The directory fingerprint a kept plan is approved against (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine

from syncd.reconcile.approve import _differences
from syncd.reconcile.state import fingerprint
from syncd.store import session_scope
from syncd.store.models import AuditEvent, ConnectorCursor, Directory


def _event(id: int, directory: str, resource_type: str = "user") -> AuditEvent:
    return AuditEvent(
        id=id,
        directory=directory,
        actor="x",
        action="user.patch",
        resource_type=resource_type,
        resource_id="r",
    )


def _why(engine: Engine, kept: dict) -> list[str]:
    with session_scope(engine, write=False) as s:
        return _differences(kept, fingerprint(s, "d"), s, "d")


def test_only_writes_to_the_directorys_users_and_teams_or_its_cursor_change_it(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add_all([Directory(name="d", kind="graph"), Directory(name="other", kind="graph")])
        s.flush()
        s.add_all([_event(10, "d"), _event(20, "d", "team")])
    with session_scope(engine, write=False) as s:
        kept = fingerprint(s, "d")
    assert kept == {"audit_id": 20, "below": 2, "cursor": None}
    with session_scope(engine) as s:  # another directory, and a token of this one: no change
        s.add_all([_event(30, "other"), _event(31, "d", "token")])
    assert _why(engine, kept) == []
    with session_scope(engine) as s:
        s.add(_event(40, "d"))
    assert _why(engine, kept) == ["1 change(s) were written to its users and teams since"]


def test_a_write_committed_late_with_an_earlier_id_is_seen(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(Directory(name="d", kind="graph"))
        s.flush()
        s.add_all([_event(10, "d"), _event(20, "d")])
    with session_scope(engine, write=False) as s:
        kept = fingerprint(s, "d")
    with session_scope(engine) as s:  # a sequence id handed out before 20, committed after the plan
        s.add(_event(15, "d"))
    assert _why(engine, kept) == ["an audit event with an earlier id was committed after the plan was made"]


def test_a_late_write_is_seen_however_many_ids_other_directories_took_since(engine: Engine) -> None:
    """Ids come from one sequence for every directory: a busy neighbour can take any number of
    them between a write's insert and its commit, so no window of recent ids is enough."""
    with session_scope(engine) as s:
        s.add_all([Directory(name="d", kind="graph"), Directory(name="other", kind="graph")])
        s.flush()
        s.add_all([_event(10, "d"), _event(50_000, "other"), _event(60_000, "d")])
    with session_scope(engine, write=False) as s:
        kept = fingerprint(s, "d")
    with session_scope(engine) as s:
        s.add(_event(11, "d"))
    assert _why(engine, kept) == ["an audit event with an earlier id was committed after the plan was made"]


def test_another_read_of_the_idp_moves_the_cursor(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(Directory(name="d", kind="graph"))
        s.flush()
        s.add(ConnectorCursor(directory="d", value="a"))
    with session_scope(engine, write=False) as s:
        kept = fingerprint(s, "d")
    assert kept == {"audit_id": None, "below": 0, "cursor": "a"}
    with session_scope(engine) as s:
        s.get(ConnectorCursor, ("d", "default")).value = "b"  # type: ignore[union-attr]
    assert _why(engine, kept) == ["another run has read the IdP since (its read cursor moved)"]
