"""The store view of a full read, loaded while the IdP is still being read.

A full read of a large tenant spends most of its time waiting on the IdP and in the
connector, and reading the store view (users, teams, a million memberships) takes seconds
more after it. `Preload` reads the directory's fingerprint and then its `StoreView` in a
worker thread, started before the fetch; the database drivers run their queries with the GIL
released, so most of that work lands on another core while the fetch goes on.

Invariant: `take()` returns what a read made after the fetch would return. It takes the
fingerprint again (`syncd.reconcile.state`: equal fingerprints mean no user, team or
membership of the directory was written in between) and, if it moved, reads the fingerprint
and the view again, on the caller's thread. The fingerprint returned is always the one taken
before the view it comes with, as a kept plan's approval requires.

The worker holds one read transaction and one connection while it runs. `close()` waits for it
(a run never leaves a thread reading its directory behind it) and drops what it read.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

from syncd.reconcile.heap import heap_frozen
from syncd.reconcile.load import load_view
from syncd.reconcile.state import fingerprint
from syncd.reconcile.view import StoreView
from syncd.store import session_scope


def read_state(engine: Engine, directory: str) -> tuple[dict[str, Any], StoreView]:
    """(fingerprint, view) of `directory`, the fingerprint taken first, in one read transaction."""
    with heap_frozen(), session_scope(engine, write=False) as s:
        state = fingerprint(s, directory)
        return state, load_view(s, directory)


class Preload:
    """`read_state(engine, directory)` running in a thread from construction on."""

    def __init__(self, engine: Engine, directory: str) -> None:
        self.engine, self.directory = engine, directory
        self._got: tuple[dict[str, Any], StoreView] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"preload-{directory}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._got = read_state(self.engine, self.directory)
        except BaseException as exc:  # handed to the caller by take()
            self._error = exc

    def take(self) -> tuple[dict[str, Any], StoreView]:
        """(fingerprint, view) as a read made now would give them (see the module invariant);
        raises what the worker's read raised."""
        self._thread.join()
        got, error = self._got, self._error
        self._got = self._error = None
        if error is not None:
            raise error
        assert got is not None
        with session_scope(self.engine, write=False) as s:
            now = fingerprint(s, self.directory)
        if now == got[0]:
            return got
        del got  # a write landed meanwhile: read again, without holding two views
        return read_state(self.engine, self.directory)

    def close(self) -> None:
        """Wait for the worker and drop its result (idempotent)."""
        self._thread.join()
        self._got = self._error = None
