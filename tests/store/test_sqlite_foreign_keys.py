"""SQLite: a transaction opened with `session_scope(foreign_keys=False)` runs without
foreign-key enforcement on its own connection only; every other transaction, on that pooled
connection afterwards or on any other connection meanwhile, enforces them and cascades."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from syncd.service import bulk, tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from tests.conftest import migrated_store

PULL = Actor("pull", "d", "x", sync_run_id=None)
_ORPHAN = (
    "INSERT INTO memberships VALUES ('no-team', 'no-user', 'd', 'pull', '2026-01-01 00:00:00.000000', NULL)"
)


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("sqlite", tmp_path) as e:
        with session_scope(e) as s:
            tokens.ensure_directory(s, name="d", kind="graph")
        yield e


def _fk(s: object) -> int:
    return s.execute(text("PRAGMA foreign_keys")).scalar()  # type: ignore[attr-defined]


def test_off_only_inside_the_unchecked_transaction(eng: Engine) -> None:
    with session_scope(eng, foreign_keys=False) as s:
        assert _fk(s) == 0
        conn = s.connection().connection.dbapi_connection
    with session_scope(eng) as s:  # the same pooled connection, handed back with keys on
        assert s.connection().connection.dbapi_connection is conn
        assert _fk(s) == 1
        with pytest.raises(IntegrityError):
            s.execute(text(_ORPHAN))
    with session_scope(eng, write=False) as s:
        assert _fk(s) == 1


def test_on_again_after_an_unchecked_transaction_failed(eng: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(eng, foreign_keys=False) as s:
        s.execute(text("SELECT 1"))
        raise RuntimeError("boom")
    with session_scope(eng) as s:
        assert _fk(s) == 1


def test_another_connection_keeps_them_meanwhile(eng: Engine) -> None:
    with session_scope(eng, foreign_keys=False) as s:
        assert _fk(s) == 0
        s.commit()  # release the write lock; the session stays on its connection
        other = sqlite3.connect(eng.url.database or "", isolation_level=None)
        other.execute("PRAGMA foreign_keys=ON")
        with pytest.raises(sqlite3.IntegrityError):
            other.execute(_ORPHAN)
        other.close()


def test_deletes_after_a_bulk_write_cascade(eng: Engine) -> None:
    """Members written without enforcement are still removed with their user (by a writer
    that enforces the keys, as every writer but a bulk batch does)."""
    with session_scope(eng, foreign_keys=False) as s:
        (team,) = bulk.create_teams(s, actor=PULL, bodies=[{"displayName": "eng", "externalId": "g"}])
        uids = bulk.create_users(s, actor=PULL, bodies=[{"userName": "a@x", "externalId": "a"}])
        bulk.add_memberships(s, actor=PULL, pairs=[(team, uids[0])])
    with session_scope(eng) as s:
        users.delete_user(s, actor=PULL, user_id=uids[0])
    with session_scope(eng, write=False) as s:
        assert s.execute(text("SELECT count(*) FROM memberships")).scalar() == 0
