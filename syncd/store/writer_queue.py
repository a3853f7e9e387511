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

No process waits out another's streak of turns. A process that took the last turn (each
holder writes a token of its own into the sidecar) and finds that a writer of another process
has waited `STARVING_S` lets that process go first: it does not try the lock again until
another process has taken a turn, or for at most `YIELD_MAX_S`. Without this, the process that
just committed wins almost every race for the free lock (its next writer is already running,
the other's is asleep between tries), and the other process's writers wait out long streaks:
at 32 SCIM clients on two `syncd serve` workers, one worker took twice the other's writes and
one write in ten waited 50 ms. A process is waiting from the moment one of its writers has
waited `STARVING_S`, counted from its arrival or from its process's last turn, until the
process takes a turn or has no writer queued. It says so with a shared `fcntl` record lock on
the sidecar's first byte, which the kernel drops with the process (`flock` and `fcntl` locks
do not interact on Linux; both are advisory). Shorter waits are left to the race, which keeps
the lock busy: a hand-over costs the other process's wake-up.

The queue only orders writers; SQLite's own lock still guarantees one writer at a time. After
`timeout_s` in the queue a writer goes on to `BEGIN IMMEDIATE` anyway, where SQLite's busy
timeout decides (and its "database is locked" error is what the caller sees), so a holder that
never ends (a stuck process) never blocks anyone for longer than it would without the queue.

The sidecar file is opened once per process (reopened after a fork: flock locks belong to
the open file, which a forked child would share) and is never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Longest sleep between two tries for the cross-process lock (seconds).
MAX_RETRY_S = 0.001
#: How long a writer waits before the process that took the last turn lets its process go
#: first (seconds).
STARVING_S = 0.005
#: Longest time the process that took the last turn lets a waiting process go first (seconds).
YIELD_MAX_S = 0.005

#: What a refused record lock sets errno to: another process holds a conflicting one.
_HELD = (errno.EAGAIN, errno.EACCES)
#: Where in the sidecar file the process that took the last turn writes its token.
_HOLDER_AT = 8


class WriterQueue:
    """The writer queue of one SQLite file; `path` None: this process's threads only (an
    in-memory database, which no other process can open)."""

    def __init__(self, path: str | None, *, timeout_s: float) -> None:
        self.path = None if path is None else f"{path}.writer-lock"
        self.timeout_s = timeout_s
        self._lock = threading.RLock()  # the turn within this process
        self._depth = 0
        self._holds_file = False
        # Under `_lock`: since when this process, which ended the last turn, has let a waiting
        # process go first.
        self._yield_since: float | None = None
        # Under `_mu`: the sidecar file; this process's writers that failed to take the turn and
        # are still queued, whether its waiting mark is set, and when it last took the turn.
        self._mu = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._waiters = 0
        self._announced = False
        self._turn_at = 0.0
        self._token = b""  # written into the sidecar by each turn of this queue in this process

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
        False too while this process lets another process's waiting writer go first. A caller
        that tries again announces itself with `waiting`. Without a usable sidecar file the
        turn is this process's alone, as in `turn`."""
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
                        if not self._try_file(fd):
                            yield False
                            return
                        self._holds_file = True
                yield True
            finally:
                self._leave()
        finally:
            self._lock.release()

    @contextmanager
    def waiting(self) -> Iterator[Callable[[], None]]:
        """One writer's stay in the queue. Call the function it yields after each try that
        failed: once this writer has waited `STARVING_S` since it came and since its process's
        last turn, other processes know this one waits, until the process takes a turn or no
        writer of it waits any more (and the one that took the last turn lets it go first)."""
        counted = False
        since = time.monotonic()

        def failed() -> None:
            nonlocal counted
            if self.path is not None:
                self._note_waiter(since, 0 if counted else 1)
                counted = True

        try:
            yield failed
        finally:
            if counted:
                self._note_waiter(since, -1)

    def _leave(self) -> None:
        """End one (possibly nested) turn; the outermost gives the file lock back."""
        self._depth -= 1
        if self._depth == 0 and self._holds_file:
            self._holds_file = False
            fcntl.flock(self._file(), fcntl.LOCK_UN)

    def _file(self) -> int:
        with self._mu:
            if self._fd is None or self._pid != os.getpid():
                assert self.path is not None
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
                self._waiters, self._announced = 0, False  # record locks are not inherited
                self._token = os.urandom(8)
            return self._fd

    def _try_file(self, fd: int) -> bool:
        """One try for the file lock, never waiting (under `_lock`). False when another process
        holds it, or while this process, which ended the last turn, lets a waiting process go
        first (for at most `YIELD_MAX_S`)."""
        mine = self._had_last_turn(fd)
        if mine and self._others_waiting(fd):
            now = time.monotonic()
            if self._yield_since is None:
                self._yield_since = now
            if now - self._yield_since < YIELD_MAX_S:
                return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._yield_since = None  # someone else's turn now
            return False
        self._yield_since = None
        if not mine:
            with contextlib.suppress(OSError):  # a full disk: no alternation, the turn is ours
                os.pwrite(fd, self._token, _HOLDER_AT)
        with self._mu:
            self._turn_at = time.monotonic()
            self._mark(fd, False)
        return True

    def _had_last_turn(self, fd: int) -> bool:
        """Whether the last turn taken was this queue's, in this process (each holder writes its
        token)."""
        try:
            return os.pread(fd, len(self._token), _HOLDER_AT) == self._token
        except OSError:
            return False

    def _others_waiting(self, fd: int) -> bool:
        """Whether another process holds its waiting mark: this one's write lock on the first
        byte is refused. The mark this process may hold itself is put back at once."""
        with self._mu:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            except OSError as exc:
                return exc.errno in _HELD  # e.g. ENOLCK: no record locks here, no alternation
            fcntl.lockf(fd, fcntl.LOCK_SH if self._announced else fcntl.LOCK_UN, 1, 0)
            return False

    def _note_waiter(self, since: float, delta: int) -> None:
        """Count this process's queued writers by `delta`; set its waiting mark when a writer
        queued at `since` has now waited `STARVING_S` since this process's last turn, and clear
        it when none is queued."""
        try:
            fd = self._file()
        except OSError:
            return
        with self._mu:
            self._waiters += delta
            if self._waiters == 0:
                self._mark(fd, False)
            elif delta >= 0 and time.monotonic() - max(since, self._turn_at) >= STARVING_S:
                self._mark(fd, True)

    def _mark(self, fd: int, waiting: bool) -> None:
        """Set or clear this process's waiting mark, a shared record lock on the first byte
        (under `_mu`). A mark refused for a moment (another process testing for marks) is set at
        a later failed try."""
        if waiting == self._announced:
            return
        try:
            fcntl.lockf(fd, (fcntl.LOCK_SH | fcntl.LOCK_NB) if waiting else fcntl.LOCK_UN, 1, 0)
        except OSError:
            return
        self._announced = waiting

    def _lock_file(self) -> bool:
        """True once this process holds the file lock; False after `timeout_s` of waiting."""
        try:
            fd = self._file()
        except OSError:  # no sidecar file here (e.g. a read-only directory): SQLite's lock alone
            return False
        deadline = time.monotonic() + self.timeout_s
        pause = 0.0001
        with self.waiting() as failed:
            while True:
                if self._try_file(fd):
                    return True
                failed()
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_S)
