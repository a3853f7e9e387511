"""`LoopStore`: a PostgreSQL store's sync-style code run on the event loop, through psycopg's
async driver, instead of in a worker thread.

A request handed to the threadpool pays for two thread switches and the GIL changing hands
under load (measured: 50-100 µs of CPU a hop, far more when the loop and eight threads contend).
`run(fn, *args)` calls `fn(conn, *args)` with a SQLAlchemy `Connection` in autocommit whose
statements are awaited on the loop (SQLAlchemy's asyncio bridge: `fn` runs in a greenlet and
each statement yields to the loop while the server works), so the same service functions serve
both ways and none is written twice.

Invariants:
- one `AsyncEngine` (pool) per event loop: an asyncio connection belongs to the loop it was
  opened on, and a test may run several loops over one store; the pool of a loop that has
  closed is dropped when another loop first asks (`dispose` closes the running loop's);
- the pool is the sync engine's in kind: its URL, its size (connections kept once opened, no
  overflow: `make_engine`), and the checkout's closed-by-server check
  (`engine.closed_by_server`);
- a write sent through `run` is one statement in its own transaction, so a `run` cancelled
  midway (uvicorn cancels a request only at a forced shutdown) leaves it committed whole or
  not at all;
- `fn` must not block on anything but its statements (it runs on the loop's thread).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from syncd.store.engine import JSON_CODEC, closed_by_server

P = ParamSpec("P")
T = TypeVar("T")


class LoopStore:
    """Runs store functions on the running event loop; for a PostgreSQL `engine` only."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("LoopStore needs a PostgreSQL engine")
        size = engine.pool.size()  # type: ignore[attr-defined]
        self._url = engine.url
        self._pool_kw = {"pool_size": size, "max_overflow": 0}
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )

    def engine(self) -> AsyncEngine:
        """The running loop's engine (made on first use), in autocommit."""
        loop = asyncio.get_running_loop()
        found = self._engines.get(loop)
        if found is None:
            for gone in [old for old in self._engines if old.is_closed()]:
                # its pool holds the loop (asyncio locks), so the weak key alone never frees
                # it; dropped, its connections close as they are collected
                del self._engines[gone]
            made = create_async_engine(self._url, **self._pool_kw, **JSON_CODEC)
            event.listen(made.sync_engine, "checkout", closed_by_server)
            found = self._engines[loop] = made.execution_options(isolation_level="AUTOCOMMIT")
        return found

    async def dispose(self) -> None:
        """Close the running loop's pool (its connections), if it has one."""
        found = self._engines.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.dispose()

    async def run(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """`fn(conn, *args, **kw)` on a pooled connection in autocommit, on this loop."""
        async with self.engine().connect() as conn:
            return await conn.run_sync(fn, *args, **kw)
