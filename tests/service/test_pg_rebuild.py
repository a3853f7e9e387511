"""`syncd.service.pg_rebuild`: a large load into a small `memberships` drops the table's
secondary index inside the caller's transaction and creates it again, the same, when the block
ends; it does nothing (and holds no lock) when the table is not small, when another
transaction holds a lock on it, or when the role does not own it; an error rolls the drop back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from syncd.service import bulk, pg_rebuild, tokens
from syncd.service.context import Actor
from syncd.store import session_scope
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres

ACTOR = Actor("pull", "d", "pull:d", sync_run_id=None)
_INDEXES = text(
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memberships' "
    "AND schemaname = current_schema() ORDER BY 1"
)


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(pg_rebuild, "MIN_ROWS", 1)  # the tests' few rows are a "large" load
    monkeypatch.setattr(pg_rebuild, "LOCK_WAIT", "200ms")
    with migrated_store("postgres", tmp_path) as eng:
        with session_scope(eng) as s:
            tokens.ensure_directory(s, name="d", kind="graph")
        yield eng


def _indexes(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(_INDEXES)]  # type: ignore[misc]


def _team_and_users(engine: Engine, n: int, team: str) -> tuple[str, list[str]]:
    with session_scope(engine) as s:
        uids = bulk.create_users(s, actor=ACTOR, bodies=[{"userName": f"{team}{i}@x"} for i in range(n)])
        (tid,) = bulk.create_teams(s, actor=ACTOR, bodies=[{"displayName": team}])
    return tid, uids


def _table_locks(s: Session) -> list[str]:
    """The locks this session's transaction holds on `memberships`."""
    q = text(
        "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' "
        "AND relation = CAST('memberships' AS regclass)"
    )
    return list(s.execute(q).scalars())


def _add(s: Session, tid: str, uids: list[str]) -> None:
    bulk.add_memberships(s, actor=ACTOR, pairs=[(tid, u) for u in uids])


def test_a_load_into_an_empty_table_builds_the_index_once_and_the_same(pg: Engine) -> None:
    before = _indexes(pg)
    assert any(name == "ix_memberships_user" for name, _ in before)
    tid, uids = _team_and_users(pg, 5, "eng")
    with session_scope(pg) as s:
        with pg_rebuild.memberships_rebuilt(s, len(uids)) as rebuilt:
            assert rebuilt and pg_rebuild.team_order(s)
            assert s.execute(text("SHOW lock_timeout")).scalar_one() == "0"  # back to the default
            inside = [
                n
                for (n,) in s.execute(
                    text(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'memberships' "
                        "AND schemaname = current_schema()"
                    )
                )
            ]
            assert inside == ["memberships_pkey"]
            _add(s, tid, uids)
        assert not pg_rebuild.team_order(s)
    assert _indexes(pg) == before
    with pg.connect() as c:  # the rebuilt index holds every row
        c.execute(text("SET enable_seqscan = off"))
        q = text("SELECT count(*) FROM memberships WHERE user_id = ANY(:u)")
        assert c.execute(q, {"u": uids}).scalar_one() == 5


def test_a_table_holding_more_rows_than_the_load_is_left_alone(pg: Engine) -> None:
    tid, uids = _team_and_users(pg, 4, "eng")
    with session_scope(pg) as s:
        _add(s, tid, uids[:2])
    with session_scope(pg) as s:
        with pg_rebuild.memberships_rebuilt(s, 1) as rebuilt:
            assert not rebuilt and not pg_rebuild.team_order(s)
            assert _table_locks(s) == []  # the count's share lock went with its savepoint
        with pg_rebuild.memberships_rebuilt(s, 2) as rebuilt:  # as many as it holds: as on SQLite
            assert rebuilt


def test_an_error_in_the_block_rolls_the_drop_back(pg: Engine) -> None:
    before = _indexes(pg)
    with (
        pytest.raises(RuntimeError),
        session_scope(pg) as s,
        pg_rebuild.memberships_rebuilt(s, 10) as rebuilt,
    ):
        assert rebuilt
        raise RuntimeError("boom")
    assert _indexes(pg) == before


def test_a_lock_held_elsewhere_means_no_rebuild_and_a_usable_transaction(pg: Engine) -> None:
    holding, release = threading.Event(), threading.Event()

    def reader() -> None:  # an open transaction that read memberships (ACCESS SHARE)
        with pg.connect() as c, c.begin():
            c.execute(text("SELECT count(*) FROM memberships"))
            holding.set()
            release.wait(10)

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert holding.wait(10)
        tid, uids = _team_and_users(pg, 3, "eng")
        with session_scope(pg) as s:
            timeout = s.execute(text("SHOW lock_timeout")).scalar_one()
            with pg_rebuild.memberships_rebuilt(s, 3) as rebuilt:
                assert not rebuilt
                assert _table_locks(s) == []
            assert s.execute(text("SHOW lock_timeout")).scalar_one() == timeout
            _add(s, tid, uids)  # the transaction goes on as before
    finally:
        release.set()
        t.join()
    with pg.connect() as c:
        assert c.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 3


def test_a_role_that_does_not_own_the_table_writes_row_by_row(pg: Engine, plain_role: str) -> None:
    with session_scope(pg) as s:
        s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
        with pg_rebuild.memberships_rebuilt(s, 10) as rebuilt:
            assert not rebuilt


def test_two_first_loads_at_once_do_not_deadlock(pg: Engine) -> None:
    """The second finds the table locked, gives up within LOCK_WAIT and holds no lock on it, so
    the first goes on; neither waits on the other."""
    tid, uids = _team_and_users(pg, 3, "eng")
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[object] = []

    def first() -> None:
        with session_scope(pg) as s, pg_rebuild.memberships_rebuilt(s, 3) as rebuilt:
            seen.append(rebuilt)
            first_in.set()
            second_done.wait(10)
            _add(s, tid, uids)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert first_in.wait(10)
        with session_scope(pg) as s, pg_rebuild.memberships_rebuilt(s, 3) as rebuilt:
            seen.append(rebuilt)
            seen.append(_table_locks(s))
    finally:
        second_done.set()
        t.join(20)
    assert seen == [True, False, []]
    assert _indexes(pg) and not t.is_alive()
