"""Short SQLite work run on the event loop's own thread, without a threadpool hop.

On SQLite a unique-key lookup or a one-user create takes a few hundred microseconds of CPU, all
of it under the GIL: a worker thread does not run it beside the loop, it only adds two thread
switches and the GIL changing hands (measured on the SCIM filter+create pairs at 8 clients, one
worker: 1.27 ms of server CPU per request through the threadpool, 0.77 ms inline).

Invariants:
- a write runs inline only in a writer turn taken without blocking (`WriterQueue.turn_if_free`):
  the loop never sleeps in the queue while another writer (a pull in a worker thread, another
  `syncd serve` worker) holds it;
- the loop's writes wait in one line, in order of arrival; only the write at its head polls the
  queue, yielding to the loop between tries, for at most `WAIT_S` (and not past `LINE_MAX_S`
  from its arrival, beyond one try); then the caller hands the work to a worker thread, which
  queues as any writer does, and for `WAIT_S` so do the writes behind it after one try each,
  unless one runs.
  (When every waiting write polled, the turn went to whichever woke first: at 32 SCIM clients
  on two workers, one write in ten lost that lottery for the full `WAIT_S`.);
- `fn` runs to its end without awaiting (it is sync code): the turn, a re-entrant lock held by
  the loop's thread, is never held across an await, so no other task on the loop can enter it
  as the same thread;
- reads run inline only for lookups bounded by an index (the caller's choice): in WAL mode a
  reader never waits for a writer;
- SQLite's own lock is free once the queue's turn is ours, unless a writer outside syncd's queue
  holds it (an operator's `sqlite3` shell): the loop then waits in SQLite's busy handler, as a
  worker thread would, up to the busy timeout.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from syncd.store.engine import writer_queue
from syncd.store.writer_queue import MAX_RETRY_S, WriterQueue

P = ParamSpec("P")
T = TypeVar("T")

#: longest time a write at the head of the loop's line polls for a free turn before going to a
#: worker thread (s)
WAIT_S = 0.05
#: time from a write's arrival after which it gets one try at the head of the line, no more (s);
#: the wait before the head is bounded by the writes ahead (each at most `WAIT_S`, and the
#: first to give up stalls the line, so the rest try once each)
LINE_MAX_S = 2 * WAIT_S


class Busy(Exception):
    """No writer turn came free in the time `write_inline` allows: nothing was run."""


async def write_inline(engine: Engine, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
    """`fn(*args, **kw)` on this thread (the event loop's) inside a writer turn of the SQLite
    `engine`; raises `Busy` when no turn was free within `WAIT_S` of this write reaching the
    head of the loop's line or `LINE_MAX_S` of its arrival, or after one try at the head while
    the line is stalled (a head gave up less than `WAIT_S` ago and no write has run since).
    `fn` opens its own write transaction (`session_scope`), whose turn nests in this one."""
    queue = writer_queue(engine)
    loop = asyncio.get_running_loop()
    line = _line(queue, loop)
    arrived, latest = time.monotonic_ns(), loop.time() + LINE_MAX_S
    async with line.lock:
        head = loop.time()
        given_up = head + (0 if head < line.stalled_until else WAIT_S)
        pause = MAX_RETRY_S / 10  # as a thread queued in `WriterQueue.turn` retries
        with queue.waiting(arrived) as failed:
            while True:
                with queue.turn_if_free(arrived) as free:
                    if free:
                        line.stalled_until = 0.0
                        return fn(*args, **kw)
                now = loop.time()
                if now >= given_up or now >= latest:
                    if now >= given_up:
                        line.stalled_until = now + WAIT_S
                    raise Busy("the SQLite writer turn stayed taken")
                failed()
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_S)


class _Line:
    """Where the loop's writes to one writer queue wait for their turn, first come first served
    (`asyncio.Lock` wakes its waiters in order): only the head polls the writer queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)
        self.lock = asyncio.Lock()
        # a head gave up at the full `WAIT_S` (the turn is held long, e.g. by a pull): until
        # then, heads try once and go to the threads
        self.stalled_until = 0.0


#: Each writer queue's line on the event loop that last used it.
_LINES: weakref.WeakKeyDictionary[WriterQueue, _Line] = weakref.WeakKeyDictionary()


def _line(queue: WriterQueue, loop: asyncio.AbstractEventLoop) -> _Line:
    line = _LINES.get(queue)
    if line is None or line.loop() is not loop:
        line = _LINES[queue] = _Line(loop)
    return line
