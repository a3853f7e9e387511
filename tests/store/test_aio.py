"""`LoopStore`: sync-style store functions awaited on the event loop through psycopg's async
driver: in autocommit, one pool per loop, the loop free while the server works, errors as the
threadpool path raises them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncd.store.aio import LoopStore
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        yield eng


def _add_directory(conn: Connection, name: str) -> str:
    conn.execute(
        text("INSERT INTO directories (name, kind, created_at) VALUES (:n, 'scim', now())"), {"n": name}
    )
    return str(conn.get_execution_options().get("isolation_level"))


def test_a_write_is_its_own_committed_transaction(pg: Engine) -> None:
    store = LoopStore(pg)
    assert asyncio.run(store.run(_add_directory, "a")) == "AUTOCOMMIT"
    with pg.connect() as c:  # another pool, another session: committed
        assert c.execute(text("SELECT count(*) FROM directories WHERE name = 'a'")).scalar() == 1


def test_the_drivers_error_is_raised_as_on_the_threadpool_path(pg: Engine) -> None:
    store = LoopStore(pg)

    async def twice() -> None:
        await store.run(_add_directory, "dup")
        await store.run(_add_directory, "dup")

    with pytest.raises(IntegrityError):
        asyncio.run(twice())


def _pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_one_pool_per_loop_and_each_serves(pg: Engine) -> None:
    store = LoopStore(pg)

    async def burst() -> tuple[AsyncEngine, set[int]]:
        engine = store.engine()
        assert store.engine() is engine  # the same loop: the same engine
        pids = await asyncio.gather(*(store.run(_pid) for _ in range(5)))  # opened concurrently
        return engine, set(pids)

    (first, pids1), (second, pids2) = asyncio.run(burst()), asyncio.run(burst())
    assert first is not second  # a new loop: its own engine (an asyncio connection is its loop's)
    assert not pids1 & pids2  # and its own sessions
    assert all(e is not first for e in store._engines.values())  # the closed loop's pool is gone

    async def dispose() -> None:
        store.engine()
        await store.dispose()
        assert not store._engines

    asyncio.run(dispose())


def test_the_loop_runs_other_work_while_a_statement_waits(pg: Engine) -> None:
    store = LoopStore(pg)
    order: list[str] = []

    def slow(conn: Connection) -> None:
        conn.execute(text("SELECT pg_sleep(0.5)"))
        order.append("statement done")

    async def both() -> None:
        async def other() -> None:
            await asyncio.sleep(0.05)
            order.append("loop ran")

        await asyncio.gather(store.run(slow), other())

    asyncio.run(both())
    assert order == ["loop ran", "statement done"]


def test_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        LoopStore(create_engine("sqlite://"))
