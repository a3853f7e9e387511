"""Writes that read-then-write a row must see its current state: rows already loaded in the
session, and changes other transactions committed meanwhile. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from syncd.service import bulk, teams, users
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User
from tests.service.helpers import ENTRA, make_user, setup_dirs


@pytest.fixture
def eng(engine: Engine) -> Engine:
    setup_dirs(engine)
    return engine


def make_team(eng: Engine, name: str, member_ids: list[str]) -> str:
    with session_scope(eng) as s:
        body = {"displayName": name, "members": [{"value": m} for m in member_ids]}
        return teams.create_team(s, actor=ENTRA, body=body).id


def count_and_rows(eng: Engine, team_id: str) -> tuple[int, int]:
    with session_scope(eng, write=False) as s:
        count = s.execute(select(Team.member_count).where(Team.id == team_id)).scalar_one()
        rows = s.execute(
            select(func.count()).select_from(Membership).where(Membership.team_id == team_id)
        ).scalar_one()
    return count, rows


def test_locked_team_is_reread_when_the_session_already_holds_it(eng: Engine) -> None:
    """A team loaded earlier in the session (as the login sync does), then changed by SQL in the
    same transaction (the bulk operations write through Core), is locked and changed from its
    current row, not from the stale copy in the session."""
    a, b, c = (make_user(eng, f"{n}@x") for n in "abc")
    tid = make_team(eng, "Eng", [a, b])
    with session_scope(eng) as s:
        held = s.execute(select(Team).where(Team.id == tid)).scalars().one()
        assert (held.member_count, held.version) == (2, 1)
        bulk.remove_memberships(s, actor=ENTRA, pairs=[(tid, a)])  # count 1, version 2 (by SQL)
        teams.change_members(s, actor=ENTRA, team_id=tid, add=[c])
    assert count_and_rows(eng, tid) == (2, 2)
    with session_scope(eng, write=False) as s:
        assert teams.get_team(s, actor=ENTRA, team_id=tid).version == 3


def test_locked_user_is_reread_when_the_session_already_holds_it(eng: Engine) -> None:
    a = make_user(eng, "a@x")
    with session_scope(eng) as s:
        held = users.get_user(s, actor=ENTRA, user_id=a)
        assert held.active
        bulk.set_active(s, actor=ENTRA, user_ids=[a], active=False)  # by SQL
        users.patch_user(
            s, actor=ENTRA, user_id=a, operations=[{"op": "replace", "path": "displayName", "value": "A"}]
        )
    with session_scope(eng, write=False) as s:
        row = users.get_user(s, actor=ENTRA, user_id=a)
        assert (row.active, row.display_name, row.version) == (False, "A", 3)


def _after_statement(eng: Engine, match: str, action: Any) -> Any:
    """Run `action` once, in this thread, right after a statement containing `match` ran."""
    me, done = threading.get_ident(), []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not done and threading.get_ident() == me and match in statement:
            done.append(True)
            action()

    event.listen(eng, "after_cursor_execute", hook)
    return hook


def _in_thread(fn: Any) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(timeout=1.5)  # it finishes now, or waits for this thread's transaction
    return t


def test_delete_user_racing_a_member_removal_counts_each_removal_once(eng: Engine) -> None:
    """A concurrent PATCH removes the user from a team while DELETE /Users reads the user's
    teams: the team loses one member, so its count drops by one, not two."""
    a, b = make_user(eng, "a@x"), make_user(eng, "b@x")
    tid = make_team(eng, "Eng", [a, b])
    errors: list[BaseException] = []

    def remove_a() -> None:
        try:
            with session_scope(eng) as s:
                teams.change_members(s, actor=ENTRA, team_id=tid, remove=[a])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads: list[threading.Thread] = []
    hook = _after_statement(eng, "FROM memberships", lambda: threads.append(_in_thread(remove_a)))
    try:
        with session_scope(eng) as s:
            users.delete_user(s, actor=ENTRA, user_id=a)
    finally:
        event.remove(eng, "after_cursor_execute", hook)
    for t in threads:
        t.join(timeout=30)
    assert threads and not errors
    assert count_and_rows(eng, tid) == (1, 1)


def test_bulk_deactivation_keeps_a_concurrent_patch(eng: Engine) -> None:
    """bulk.set_active locks the users it rewrites: a PATCH committed while it waits is kept."""
    if eng.dialect.name == "sqlite":
        pytest.skip("SQLite serialises write transactions: no interleaving to test")
    a = make_user(eng, "a@x")
    errors: list[BaseException] = []
    started = threading.Event()

    def deactivate() -> None:
        try:
            with session_scope(eng) as s:
                started.set()
                bulk.set_active(s, actor=ENTRA, user_ids=[a], active=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with session_scope(eng) as s:
        users.patch_user(
            s, actor=ENTRA, user_id=a, operations=[{"op": "replace", "path": "displayName", "value": "A"}]
        )
        t = threading.Thread(target=deactivate, daemon=True)
        t.start()
        started.wait(5)
        t.join(timeout=1.0)  # it reads (or waits for the lock) while the PATCH is uncommitted
    t.join(timeout=30)
    assert not errors
    with session_scope(eng, write=False) as s:
        row = s.execute(select(User).where(User.id == a)).scalars().one()
        assert (row.active, row.display_name, row.data.get("displayName")) == (False, "A", "A")
        assert row.data["active"] is False
