"""The daemon's pull connectors: one per directory, built once, used from one event loop.

Building a connector imports its vendor SDK and makes its clients, which can take seconds on
a loaded machine; a scheduled slot must not pay that (it would start too late to claim its
slot). So the pool builds each directory's connector once (`warm` at start-up, in the
background), hands the same instance to every run of that directory (`lease`), and rebuilds
it only when the directory's settings change (`retire_changed`, on SIGHUP) or after a failed
run (`discard`: a broken session must not outlive the run that met it).

Invariants: connectors run only on the pool's event loop thread (`run`), as the connector
contract requires (SDK clients are bound to a loop). A connector is closed once, on that loop,
and never while a run holds a lease on it (a retired, leased connector is closed when the
lease ends).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectors.base import Connector, ConnectorError

log = logging.getLogger("syncd.daemon.connectors")

T = TypeVar("T")
#: Seconds a connector gets to close (on SIGHUP, a failed run, the daemon's exit).
CLOSE_TIMEOUT_S = 10.0


@dataclass
class _Entry:
    settings: Any
    build_lock: threading.Lock = field(default_factory=threading.Lock)
    connector: Connector | None = None
    leases: int = 0
    retired: bool = False


class ConnectorPool:
    def __init__(self, factory: Callable[[str, Any], Connector]) -> None:
        self.factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pull-loop", daemon=True)
        self._thread.start()
        self._entries: dict[str, _Entry] = {}
        self._guard = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the pool's loop (where the connectors live)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @contextmanager
    def lease(self, name: str, settings: Any) -> Iterator[Connector]:
        """The connector of `name` for `settings` (built now if it is not yet); ConnectorError
        if it cannot be built. The caller uses it only through `run`."""
        entry = self._entry(name, settings)
        with entry.build_lock:
            if entry.connector is None:
                entry.connector = self.factory(name, settings)
                log.info("connector built", extra={"directory": name})
            conn = entry.connector
        with self._guard:
            entry.leases += 1
        try:
            yield conn
        finally:
            with self._guard:
                entry.leases -= 1
                close = entry.retired and entry.leases == 0
            if close:
                self._close(conn)

    def warm(self, directories: Mapping[str, Any]) -> threading.Thread:
        """Build the connectors of the pull `directories` in a background thread (errors are
        logged; a run reports them again)."""

        def build() -> None:
            for name, d in directories.items():
                if getattr(d, "kind", "scim") == "scim":
                    continue
                try:
                    with self.lease(name, d):
                        pass
                except ConnectorError as exc:
                    log.error("cannot build the connector: %s", exc, extra={"directory": name})
                except Exception:
                    log.exception("building the connector crashed", extra={"directory": name})

        t = threading.Thread(target=build, name="connector-warm", daemon=True)
        t.start()
        return t

    def retire_changed(self, directories: Mapping[str, Any]) -> list[str]:
        """Drop the connectors whose directory is gone or whose settings changed; the names."""
        with self._guard:
            gone = [n for n, e in self._entries.items() if directories.get(n) != e.settings]
        for name in gone:
            self.discard(name)
        return gone

    def discard(self, name: str) -> None:
        """Forget `name`'s connector; it is closed now, or when its last lease ends."""
        with self._guard:
            entry = self._entries.pop(name, None)
            if entry is None:
                return
            entry.retired = True
            close = entry.leases == 0
        if close and entry.connector is not None:
            self._close(entry.connector)

    def close(self) -> None:
        with self._guard:
            names = list(self._entries)
        for name in names:
            self.discard(name)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CLOSE_TIMEOUT_S)

    def _entry(self, name: str, settings: Any) -> _Entry:
        old: _Entry | None = None
        with self._guard:
            entry = self._entries.get(name)
            if entry is not None and entry.settings == settings:
                return entry
            if entry is not None:  # the settings changed: retire the old one
                entry.retired = True
                old = entry if entry.leases == 0 else None  # else closed when its lease ends
            entry = self._entries[name] = _Entry(settings)
        if old is not None and old.connector is not None:
            self._close(old.connector)
        return entry

    def _close(self, conn: Connector) -> None:
        if not self._loop.is_running():  # the pool was closed while a run still held it
            return
        try:
            self.run(conn.aclose()).result(timeout=CLOSE_TIMEOUT_S)
        except Exception:
            log.warning("closing a connector failed", exc_info=True, extra={"directory": conn.directory})
