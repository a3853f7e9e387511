"""PostgreSQL pools keep every connection they open (up to their size): a burst that needed 15
connections finds the same 15 server sessions at the next burst, none closed and reopened (a
new session costs the server a backend process), on the threadpool's pool and on the event
loop's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from syncd.store.aio import LoopStore
from syncd.store.engine import make_engine
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres

BURST = 15  # above the 10 an earlier pool kept, below its 20


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        yield make_engine(eng.url.render_as_string(hide_password=False))


def _pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_the_threadpools_pool_keeps_a_burst_of_connections(pg: Engine) -> None:
    def burst() -> set[int]:
        with ExitStack() as held:  # all checked out at once, then all returned
            return {_pid(held.enter_context(pg.connect())) for _ in range(BURST)}

    try:
        first = burst()
        assert len(first) == BURST
        assert burst() == first
    finally:
        pg.dispose()


def test_the_event_loops_pool_keeps_a_burst_of_connections(pg: Engine) -> None:
    store = LoopStore(pg)

    async def bursts() -> tuple[set[int], set[int]]:
        gate = asyncio.Barrier(BURST)

        def hold(conn: Connection) -> int:
            return _pid(conn)

        async def one() -> int:
            async with store.engine().connect() as conn:  # held until every task has one
                pid = await conn.run_sync(hold)
                await gate.wait()
                return pid

        first = set(await asyncio.gather(*(one() for _ in range(BURST))))
        second = set(await asyncio.gather(*(one() for _ in range(BURST))))
        await store.engine().dispose()
        return first, second

    try:
        first, second = asyncio.run(bursts())
        assert len(first) == BURST
        assert second == first
    finally:
        pg.dispose()
