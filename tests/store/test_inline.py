"""`store.inline.write_inline`: SQLite writes on the event loop's thread, only in a writer turn
that is free, never sleeping in the queue on the loop; over a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from syncd.store import session_scope
from syncd.store.engine import make_engine, writer_queue
from syncd.store.inline import WAIT_S, Busy, write_inline
from syncd.store.writer_queue import WriterQueue


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'inline.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    yield eng
    eng.dispose()


def insert(engine: Engine, v: int) -> int:
    """A write transaction of its own (its turn nests in `write_inline`'s); the loop's thread."""
    with session_scope(engine) as s:
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
    return threading.get_ident()


def values(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT v FROM t ORDER BY v"))]


def held(turn_of: WriterQueue, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Another thread holding `turn_of`'s turn for `seconds`; the event is set once it holds it."""
    holding = threading.Event()

    def hold() -> None:
        with turn_of.turn():
            holding.set()
            threading.Event().wait(seconds)

    t = threading.Thread(target=hold)
    t.start()
    holding.wait(5)
    return t, holding


def test_a_free_turn_runs_the_write_on_the_loops_thread(engine: Engine) -> None:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await write_inline(engine, insert, engine, 1)

    loop_thread, ran_in = asyncio.run(main())
    assert ran_in == loop_thread
    assert values(engine) == [1]


def test_a_turn_held_by_a_thread_is_not_waited_for_on_the_loop(engine: Engine) -> None:
    """The loop polls without blocking (another task keeps running) and gives up after
    `WAIT_S`, having run nothing; the caller then queues in a worker thread."""
    holder, _ = held(writer_queue(engine), WAIT_S * 6)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def main() -> None:
        task = asyncio.create_task(ticker())
        try:
            with pytest.raises(Busy):
                await write_inline(engine, insert, engine, 2)
        finally:
            task.cancel()

    asyncio.run(main())
    holder.join()
    assert values(engine) == []
    assert ticks >= 5  # the loop went on while the write waited


def test_a_turn_released_meanwhile_is_taken(engine: Engine) -> None:
    holder, _ = held(writer_queue(engine), WAIT_S / 5)

    async def main() -> int:
        return await write_inline(engine, insert, engine, 3)

    assert asyncio.run(main()) == threading.get_ident()  # asyncio.run's loop: this thread
    holder.join()
    assert values(engine) == [3]


def test_another_process_holding_the_file_lock_is_not_waited_for(engine: Engine) -> None:
    """A second queue on the same file stands for another `syncd serve` worker: its flock is
    on an open file of its own, as another process's would be."""
    path = engine.url.database
    assert path
    other = WriterQueue(str(Path(path).resolve()), timeout_s=1)
    holder, _ = held(other, WAIT_S * 4)

    async def main() -> None:
        await write_inline(engine, insert, engine, 4)

    with pytest.raises(Busy):
        asyncio.run(main())
    holder.join()
    asyncio.run(main())  # released: now it runs
    assert values(engine) == [4]


def test_a_failing_write_releases_the_turn(engine: Engine) -> None:
    def fail() -> None:
        with session_scope(engine) as s:
            s.execute(text("INSERT INTO t (v) VALUES (5)"))
            raise RuntimeError("boom")

    async def main() -> None:
        await write_inline(engine, fail)

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(main())
    assert values(engine) == []  # rolled back
    got: list[bool] = []

    def probe() -> None:
        with writer_queue(engine).turn_if_free() as free:
            got.append(free)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert got == [True]


def test_a_connection_is_never_waited_for(engine: Engine) -> None:
    """Threads may hold any number of connections: the loop's own checkout still returns at
    once (a bounded pool would make it wait, on the loop, for a thread to give one back)."""
    with contextlib.ExitStack() as held_conns:
        for _ in range(40):  # more than any pool's size, as the threadpool's 40 threads could
            held_conns.enter_context(engine.connect())
        t0 = time.monotonic()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert time.monotonic() - t0 < 5  # a wait for a connection lasts the pool's 30 s


def test_without_a_usable_lock_file_the_turn_is_this_process_alone(tmp_path: Path) -> None:
    """As `turn` does: a sidecar that cannot be opened (a directory that is not there, or a
    file another user owns) leaves the order to this process's lock and SQLite's."""
    queue = WriterQueue(str(tmp_path / "missing" / "x.db"), timeout_s=1)
    with queue.turn_if_free() as free:
        assert free
    with queue.turn():
        pass


def test_writes_waiting_on_the_loop_take_the_turn_in_order_of_arrival(engine: Engine) -> None:
    """Later arrivals retry sooner (their pause has not grown yet); were each to poll, the turn
    would go to whichever woke first after the release, not to the write that waited longest."""
    holder, _ = held(writer_queue(engine), WAIT_S * 0.6)

    async def main() -> None:
        tasks = []
        for v in range(1, 7):
            tasks.append(asyncio.create_task(write_inline(engine, insert, engine, v)))
            await asyncio.sleep(WAIT_S * 0.08)  # the last arrives just before the release
        await asyncio.gather(*tasks)

    asyncio.run(main())
    holder.join()
    assert values_in_order(engine) == [1, 2, 3, 4, 5, 6]


def values_in_order(engine: Engine) -> list[int]:
    """The values in the order they were written."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT v FROM t ORDER BY rowid"))]


def test_writes_behind_a_head_that_gave_up_go_to_the_threads_at_once(engine: Engine) -> None:
    """A turn held long (a pull) costs the line one `WAIT_S`, not one per write in it."""
    holder, _ = held(writer_queue(engine), WAIT_S * 20)

    async def main() -> tuple[list[BaseException | int], float]:
        start = time.monotonic()
        tasks = [asyncio.create_task(write_inline(engine, insert, engine, v)) for v in range(10)]
        got = await asyncio.gather(*tasks, return_exceptions=True)
        return got, time.monotonic() - start

    got, took = asyncio.run(main())
    holder.join()
    assert all(isinstance(g, Busy) for g in got)
    assert took < WAIT_S * 5  # one after the other: 10 x WAIT_S
    assert values(engine) == []


def test_a_stalled_line_polls_again_once_wait_s_has_passed(engine: Engine) -> None:
    """After a head gave up, the line sends writes to the threads for `WAIT_S`, no longer: a
    write after that polls again, and takes the turn when it comes free."""
    holder, _ = held(writer_queue(engine), WAIT_S * 3)

    async def main() -> int:
        with pytest.raises(Busy):
            await write_inline(engine, insert, engine, 1)  # gives up after WAIT_S
        await asyncio.sleep(WAIT_S * 1.6)  # the stall has passed; the turn is still held
        return await write_inline(engine, insert, engine, 2)  # polls, and gets it

    asyncio.run(main())
    holder.join()
    assert values(engine) == [2]
