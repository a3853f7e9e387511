"""`WriterQueue`: where the writers of one SQLite database wait for their turn, in this process
and across processes, before `BEGIN IMMEDIATE`.

SQLite lets one writer in at a time; a writer that finds the lock taken waits in SQLite's busy
handler, which sleeps in growing steps (up to 100 ms) and so leaves the database idle while
waiters doze. Writers therefore queue here first:

- threads of one process on a re-entrant lock (a nested write scope in the same thread passes);
- processes (e.g. `syncd serve` workers) on an exclusive `flock` of a sidecar file next to the
  database, `<database>.writer-lock`, taken by the outermost scope of a thread and released
  when it ends. A waiter retries every millisecond at most, so the next writer starts within
  about a millisecond of the previous commit.

The queue only orders writers; SQLite's own lock still guarantees one writer at a time. After
`timeout_s` in the queue a writer goes on to `BEGIN IMMEDIATE` anyway, where SQLite's busy
timeout decides (and its "database is locked" error is what the caller sees), so a holder that
never ends (a stuck process) never blocks anyone for longer than it would without the queue.

The sidecar file is opened once per process (reopened after a fork: flock locks belong to
the open file, which a forked child would share) and is never deleted.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Longest sleep between two tries for the cross-process lock (seconds).
MAX_RETRY_S = 0.001


class WriterQueue:
    """The writer queue of one SQLite file; `path` None: this process's threads only (an
    in-memory database, which no other process can open)."""

    def __init__(self, path: str | None, *, timeout_s: float) -> None:
        self.path = None if path is None else f"{path}.writer-lock"
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0
        self._holds_file = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn; the turn lasts until the block ends."""
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1 and self.path is not None:
                    self._holds_file = self._lock_file()
                yield
            finally:
                self._leave()

    @contextmanager
    def turn_if_free(self) -> Iterator[bool]:
        """This writer's turn if no other writer holds it now (True), else nothing is taken
        (False). Never waits: for a caller that must not block (the event loop). Not fair to
        threads already waiting in `turn`: it may pass them (the event loop holds it for one
        short transaction at a time, so a thread it passed gets it at the loop's next pause).
        Without a usable sidecar file the turn is this process's alone, as in `turn`."""
        if not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            self._depth += 1
            try:
                if self._depth == 1 and self.path is not None:
                    try:
                        fd = self._file()
                    except OSError:  # no sidecar file here: SQLite's lock alone, as in `turn`
                        fd = None
                    if fd is not None:
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            yield False
                            return
                        self._holds_file = True
                yield True
            finally:
                self._leave()
        finally:
            self._lock.release()

    def _leave(self) -> None:
        """End one (possibly nested) turn; the outermost gives the file lock back."""
        self._depth -= 1
        if self._depth == 0 and self._holds_file:
            self._holds_file = False
            fcntl.flock(self._file(), fcntl.LOCK_UN)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _lock_file(self) -> bool:
        """True once this process holds the file lock; False after `timeout_s` of waiting."""
        try:
            fd = self._file()
        except OSError:  # no sidecar file here (e.g. a read-only directory): SQLite's lock alone
            return False
        deadline = time.monotonic() + self.timeout_s
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
            time.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_S)
