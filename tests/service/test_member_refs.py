"""Referential integrity of memberships on both stores: a membership names an existing user
and team (else an IntegrityError, as a foreign key gives), deleting a user or team deletes its
memberships, and an id that memberships use cannot change. The race tests (PostgreSQL) prove
that a concurrent delete never leaves a membership behind, whichever of the two transactions
comes first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from syncd.service import bulk, tokens
from syncd.service.context import Actor
from syncd.store import session_scope

ACTOR = Actor("pull", "d", "pull:d", sync_run_id=None)
INSERT = text(
    "INSERT INTO memberships (team_id, user_id, directory, source, created_at) "
    "VALUES (:t, :u, 'd', 'pull', CURRENT_TIMESTAMP)"
)


def seed(engine: Engine) -> tuple[list[str], list[str]]:
    """Two users and two teams in directory d; returns (user ids, team ids)."""
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name="d", kind="graph")
        uids = bulk.create_users(
            s, actor=ACTOR, bodies=[{"userName": f"u{i}@x", "externalId": f"u{i}"} for i in range(2)]
        )
        tids = bulk.create_teams(
            s, actor=ACTOR, bodies=[{"displayName": f"t{i}", "externalId": f"t{i}"} for i in range(2)]
        )
    return uids, tids


def members(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as c:
        return {(t, u) for t, u in c.execute(text("SELECT team_id, user_id FROM memberships")).all()}


def test_missing_user_or_team_is_refused(engine: Engine) -> None:
    uids, tids = seed(engine)
    for t, u in ((tids[0], "no-such-user"), ("no-such-team", uids[0])):
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(INSERT, {"t": t, "u": u})
    # a statement of several rows, one of them dangling
    with engine.begin() as c, pytest.raises(IntegrityError), c.begin_nested():
        c.execute(INSERT, [{"t": tids[0], "u": uids[0]}, {"t": tids[1], "u": "no-such-user"}])
    assert members(engine) == set()


def test_deleting_users_and_teams_deletes_their_memberships(engine: Engine) -> None:
    uids, tids = seed(engine)
    with engine.begin() as c:
        c.execute(INSERT, [{"t": t, "u": u} for t in tids for u in uids])
    with engine.begin() as c:
        c.execute(text("DELETE FROM users WHERE id = :u"), {"u": uids[0]})
    assert members(engine) == {(t, uids[1]) for t in tids}
    with engine.begin() as c:
        c.execute(text("DELETE FROM teams WHERE id = :t"), {"t": tids[0]})
    assert members(engine) == {(tids[1], uids[1])}


def test_deleting_a_directory_deletes_its_memberships(engine: Engine) -> None:
    uids, tids = seed(engine)
    with engine.begin() as c:
        c.execute(INSERT, [{"t": t, "u": u} for t in tids for u in uids])
    with engine.begin() as c:  # cascades to the users and teams, and from them to memberships
        c.execute(text("DELETE FROM directories WHERE name = 'd'"))
    assert members(engine) == set()


def test_an_id_in_use_cannot_change(engine: Engine) -> None:
    uids, tids = seed(engine)
    with engine.begin() as c:
        c.execute(INSERT, {"t": tids[0], "u": uids[0]})
    for table, old in (("users", uids[0]), ("teams", tids[0])):
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(text(f"UPDATE {table} SET id = 'moved' WHERE id = :i"), {"i": old})
    assert members(engine) == {(tids[0], uids[0])}


def _blocked(engine: Engine, pid: int) -> None:
    """Return once backend `pid` waits for a lock (polling pg_stat_activity)."""
    deadline = time.monotonic() + 30
    with engine.connect() as c:
        while time.monotonic() < deadline:
            q = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p")
            if c.execute(q, {"p": pid}).scalar() == "Lock":
                return
            c.rollback()
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


def _in_thread(engine: Engine, work: Callable[[Connection], None]) -> tuple[threading.Thread, int, list[Any]]:
    """Run `work(conn)` in a transaction on a thread; returns (thread, backend pid, errors)."""
    conn = engine.connect()
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    conn.rollback()
    errors: list[Any] = []

    def run() -> None:
        try:
            with conn.begin():
                work(conn)
        except DBAPIError as exc:
            errors.append(exc)
        finally:
            conn.close()

    th = threading.Thread(target=run)
    th.start()
    assert isinstance(pid, int)
    return th, pid, errors


def test_delete_racing_an_uncommitted_insert_removes_its_rows(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: concurrent writers")
    uids, tids = seed(engine)
    with engine.connect() as ins:
        with ins.begin():
            ins.execute(INSERT, [{"t": tids[0], "u": uids[0]}, {"t": tids[1], "u": uids[0]}])
            th, pid, errors = _in_thread(
                engine, lambda c: c.execute(text("DELETE FROM users WHERE id = :u"), {"u": uids[0]})
            )
            _blocked(engine, pid)  # the insert's share lock holds the delete back
        th.join()
    assert errors == []
    assert members(engine) == set()


def test_insert_racing_an_uncommitted_delete_fails(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: concurrent writers")
    uids, tids = seed(engine)
    with engine.connect() as dele:
        with dele.begin():
            dele.execute(text("DELETE FROM teams WHERE id = :t"), {"t": tids[0]})
            th, pid, errors = _in_thread(engine, lambda c: c.execute(INSERT, {"t": tids[0], "u": uids[0]}))
            _blocked(engine, pid)
        th.join()
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert members(engine) == set()
