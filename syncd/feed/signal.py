"""`ChangeSignal`: wakes feed readers when changes may have committed.

Sources, any of which bumps the signal's generation:
- in process: the writer's after-commit hook (`notify_local`) wakes every signal at once;
- across processes on PostgreSQL: a listener thread holding `LISTEN syncd_changes` on one
  dedicated connection (`start()`; reconnects with backoff while the store is away);
- nothing else: readers never trust a signal alone. `wait` returns after at most its
  timeout, and callers re-read the feed then (a poll), which covers SQLite writers in other
  processes and PostgreSQL transactions that release withheld changes without notifying.

A wake-up is a hint, never a promise that a change is readable: a reader always re-reads.
Pass the `generation` read before your last feed read as `since` so a commit that lands
between the read and the wait is not missed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("syncd.feed.signal")

CHANNEL = "syncd_changes"
_live: weakref.WeakSet[ChangeSignal] = weakref.WeakSet()
_live_guard = threading.RLock()


def notify_local() -> None:
    """Wake every ChangeSignal of this process (called after a commit that wrote changes)."""
    with _live_guard:
        signals = list(_live)
    for s in signals:
        s.bump()


_shared: weakref.WeakKeyDictionary[Engine, ChangeSignal] = weakref.WeakKeyDictionary()


def shared_signal(engine: Engine) -> ChangeSignal:
    """The process's one started ChangeSignal for `engine` (one LISTEN connection per engine)."""
    with _live_guard:
        sig = _shared.get(engine)
        if sig is None:
            sig = _shared[engine] = ChangeSignal(engine)
    return sig.start()


def stop_shared(engine: Engine) -> None:
    """Stop the shared signal of `engine` (its LISTEN thread), if one was started."""
    with _live_guard:
        sig = _shared.pop(engine, None)
    if sig is not None:
        sig.stop()


class ChangeSignal:
    """A generation counter readers wait on, in threads (`wait`) or coroutines (`wait_async`)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._gen = 0
        self._async: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        with _live_guard:
            _live.add(self)

    @property
    def generation(self) -> int:
        return self._gen

    def bump(self) -> None:
        with self._cond:
            self._gen += 1
            self._cond.notify_all()
            waiters = list(self._async)
        for loop, ev in waiters:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # the loop closed
                pass

    def wait(self, timeout: float, *, since: int | None = None) -> bool:
        """Block until a bump after `since` (default: now), or `timeout` seconds; True if bumped."""
        with self._cond:
            start = self._gen if since is None else since
            return self._cond.wait_for(lambda: self._gen != start, timeout)

    async def wait_async(self, timeout: float, *, since: int | None = None) -> bool:
        """`wait` for coroutines: holds no thread and no database connection while waiting."""
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        key = (loop, ev)
        with self._cond:
            if since is not None and self._gen != since:
                return True
            self._async.add(key)
        try:
            await asyncio.wait_for(ev.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._cond:
                self._async.discard(key)

    # -- PostgreSQL LISTEN ----------------------------------------------------------------

    def start(self) -> ChangeSignal:
        """Start the LISTEN thread on PostgreSQL (no-op on SQLite or without an engine)."""
        if self.engine is None or self.engine.dialect.name != "postgresql":
            return self
        with self._cond:
            if self._thread is not None:
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen_loop, name="feed-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.cancel_safe()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _listen_loop(self) -> None:
        import psycopg

        assert self.engine is not None
        delay = 0.5
        while not self._stop.is_set():
            try:
                with self.engine.connect() as sa_conn:
                    sa_conn = sa_conn.execution_options(isolation_level="AUTOCOMMIT")
                    conn = sa_conn.connection.driver_connection
                    assert isinstance(conn, psycopg.Connection)
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self.bump()  # anything committed while not listening
                    self._conn = conn
                    while not self._stop.is_set():
                        got = False
                        for _ in conn.notifies(timeout=1.0):
                            got = True
                            break
                        if got:
                            self.bump()
                    sa_conn.invalidate()  # never hand a LISTENing connection back to the pool
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("feed LISTEN lost; retrying", extra={"error": str(exc), "retry_s": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
            finally:
                self._conn = None
