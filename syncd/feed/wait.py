"""Long-poll helpers: read the feed, and if nothing is new wait on a `ChangeSignal` and read
again, until something comes or the time is up. Neither holds a database connection while
waiting. `POLL_S` bounds each wait so that changes no signal announces (another SQLite
process, a PostgreSQL replica without LISTEN, a frontier released by a non-feed commit) are
still seen within that many seconds; `PENDING_POLL_S` while the feed reports committed
changes withheld behind an older transaction (they are released without a signal).
"""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import Engine

from syncd.feed.reader import FeedPage, read
from syncd.feed.signal import ChangeSignal

#: Longest wait between two reads of a waiting reader, seconds.
POLL_S = 0.5
#: The wait while committed changes are withheld behind an older open transaction, seconds.
PENDING_POLL_S = 0.05


def wait_for_changes(
    engine: Engine,
    signal: ChangeSignal,
    *,
    after: str | None,
    limit: int,
    timeout: float,
    directories: set[str] | frozenset[str] | None = None,
    poll: float = POLL_S,
    stop: threading.Event | None = None,
) -> FeedPage:
    """`read`, waiting up to `timeout` seconds for a change when there is none (threads);
    returns early once `stop` is set (bump the signal to wake the wait)."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        gen = signal.generation
        page = read(engine, after=after, limit=limit, directories=directories)
        left = deadline - time.monotonic()
        if page.changes or left <= 0 or (stop is not None and stop.is_set()):
            return page
        after = page.next
        signal.wait(min(left, PENDING_POLL_S if page.pending else poll), since=gen)


async def await_changes(
    engine: Engine,
    signal: ChangeSignal,
    *,
    after: str | None,
    limit: int,
    timeout: float,
    directories: set[str] | frozenset[str] | None = None,
    poll: float = POLL_S,
) -> FeedPage:
    """`wait_for_changes` for coroutines: each read runs in a worker thread."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        gen = signal.generation
        page = await asyncio.to_thread(read, engine, after=after, limit=limit, directories=directories)
        left = deadline - time.monotonic()
        if page.changes or left <= 0:
            return page
        after = page.next
        await signal.wait_async(min(left, PENDING_POLL_S if page.pending else poll), since=gen)
