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

Across processes the oldest writer goes first. A writer that failed to take the turn marks its
arrival time in the sidecar: its process holds a shared `fcntl` record lock on the byte at that
time's offset (one per process, its oldest writer's; the kernel drops it with the process;
`flock` and `fcntl` locks do not interact on Linux, both are advisory; on the BSDs they do,
and syncd runs on Linux). Before each try, a writer tests for a mark of another process older
than its own process's oldest queued writer by more than `STARVING_S` (a write lock over the
offsets before it is refused); while there is one, it lets that writer go first, for at most
`YIELD_MAX_S`. Without this, the process that just committed wins almost every race for the
free lock (its next writer is already running, the other's is asleep between tries), and the
other process's writers wait out long streaks: at 32 SCIM clients on two `syncd serve`
workers, one worker took twice the other's writes and one write in ten waited 50 ms. Smaller
differences of age are left to the race, which keeps the lock busy: each hand-over costs the
other process's wake-up.

The queue only orders writers; SQLite's own lock still guarantees one writer at a time. After
`timeout_s` in the queue a writer goes on to `BEGIN IMMEDIATE` anyway, where SQLite's busy
timeout decides (and its "database is locked" error is what the caller sees), so a holder that
never ends (a stuck process) never blocks anyone for longer than it would without the queue.

The sidecar file is opened once per process (reopened after a fork: flock locks belong to
the open file, which a forked child would share) and is never deleted.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Longest sleep between two tries for the cross-process lock (seconds).
MAX_RETRY_S = 0.001
#: How much older than a writer another process's waiting writer must be to go first (seconds).
STARVING_S = 0.005
#: Longest time a writer lets an older writer of another process go first (seconds).
YIELD_MAX_S = 0.005
#: How long a process does not let older writers go first after one did not take the free
#: turn within `YIELD_MAX_S` (seconds): a mark whose writer is not trying (its process busy
#: elsewhere, or stopped) costs at most `YIELD_MAX_S` in every `IGNORE_S`.
IGNORE_S = 0.05

#: What a refused record lock sets errno to: another process holds a conflicting one.
_HELD = (errno.EAGAIN, errno.EACCES)
#: Nanoseconds of the monotonic clock (the system's, the same in every process) per byte of
#: the sidecar's waiting marks.
_MARK_NS = 100_000


def _at(t_ns: int) -> int:
    """The sidecar offset of the waiting mark for an arrival at `t_ns`."""
    return 1 + max(t_ns, 0) // _MARK_NS


class WriterQueue:
    """The writer queue of one SQLite file; `path` None: this process's threads only (an
    in-memory database, which no other process can open)."""

    def __init__(self, path: str | None, *, timeout_s: float) -> None:
        self.path = None if path is None else f"{path}.writer-lock"
        self.timeout_s = timeout_s
        self._lock = threading.RLock()  # the turn within this process
        self._depth = 0
        self._holds_file = False
        # Under `_lock`: since when this process has let an older writer go first, and until
        # when it does not, having waited for one in vain.
        self._yield_since: float | None = None
        self._heed_after = 0.0
        # Under `_mu`: the sidecar file; the arrival times (monotonic ns) of this process's
        # writers that failed to take the turn and are still queued, and the offset of its
        # waiting mark.
        self._mu = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._waiting: dict[int, int] = {}
        self._mark_at: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn; the turn lasts until the block ends."""
        since = time.monotonic_ns()
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1 and self.path is not None:
                    self._holds_file = self._lock_file(since)
                yield
            finally:
                self._leave()

    @contextmanager
    def turn_if_free(self, since: int | None = None) -> Iterator[bool]:
        """This writer's turn if no other writer holds it now (True), else nothing is taken
        (False). Never waits: for a caller that must not block (the event loop). Not fair to
        threads already waiting in `turn`: it may pass them (the event loop holds it for one
        short transaction at a time, so a thread it passed gets it at the loop's next pause).
        False too while an older writer of another process goes first (older than `since`, the
        caller's arrival in `time.monotonic_ns`, by `STARVING_S`; `since` None: now). A caller
        that tries again marks its arrival with `waiting`. Without a usable sidecar file the
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
                        if not self._try_file(fd, time.monotonic_ns() if since is None else since):
                            yield False
                            return
                        self._holds_file = True
                yield True
            finally:
                self._leave()
        finally:
            self._lock.release()

    @contextmanager
    def waiting(self, since: int | None = None) -> Iterator[Callable[[], None]]:
        """One writer's stay in the queue, from `since` (`time.monotonic_ns`; None: now). Call
        the function it yields after each try that failed: from the first call until the block
        ends, other processes see its arrival (as their own writers' tries do in `turn`)."""
        arrived = time.monotonic_ns() if since is None else since
        key = object()

        def failed() -> None:
            if self.path is not None:
                self._note_waiter(id(key), arrived)

        try:
            yield failed
        finally:
            if self.path is not None and id(key) in self._waiting:
                self._note_waiter(id(key), None)

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
                self._waiting, self._mark_at = {}, None  # record locks are not inherited
            return self._fd

    def _try_file(self, fd: int, since: int) -> bool:
        """One try for the file lock, never waiting (under `_lock`), for a writer that arrived
        at `since`. False when another process holds it, or while an older writer of another
        process goes first: for at most `YIELD_MAX_S`, and not again for `IGNORE_S` when that
        writer did not take the free turn meanwhile (its process is busy elsewhere, or
        stopped)."""
        now = time.monotonic()
        if now >= self._heed_after and self._older_elsewhere(fd, since):
            if self._yield_since is None:
                self._yield_since = now
            if now - self._yield_since < YIELD_MAX_S:
                return False
            self._heed_after = now + IGNORE_S
        self._yield_since = None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _older_elsewhere(self, fd: int, since: int) -> bool:
        """Whether another process marks a writer that arrived `STARVING_S` before this
        process's oldest queued writer (or `since`, if older): a write lock over the marks'
        offsets up to that time is refused. (Against the oldest: a writer of this process that
        waits behind the one trying now, e.g. on the loop while a thread holds the turn's lock,
        is what another process's writers compare themselves with.) Put back this process's
        own mark, which the write lock replaced if it lay in that range."""
        with self._mu:
            oldest = min(since, min(self._waiting.values(), default=since))
            end = _at(oldest - int(STARVING_S * 1e9))
            if end <= 1:
                return False
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, end - 1, 1)
            except OSError as exc:
                return exc.errno in _HELD  # e.g. ENOLCK: no record locks here, no order
            fcntl.lockf(fd, fcntl.LOCK_UN, end - 1, 1)
            if self._mark_at is not None and self._mark_at < end:
                at, self._mark_at = self._mark_at, None
                self._mark(fd, at)
            return False

    def _note_waiter(self, key: int, arrived: int | None) -> None:
        """Record (or with None forget) the queued writer `key` and its arrival; move this
        process's waiting mark to its oldest queued writer's arrival (none: no mark)."""
        try:
            fd = self._file()
        except OSError:
            return
        with self._mu:
            if arrived is None:
                self._waiting.pop(key, None)
            else:
                self._waiting[key] = arrived
            oldest = min(self._waiting.values(), default=None)
            at = None if oldest is None else _at(oldest)
            if at != self._mark_at:
                if self._mark_at is not None:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, self._mark_at)
                    self._mark_at = None
                if at is not None:
                    self._mark(fd, at)

    def _mark(self, fd: int, at: int) -> None:
        """Set this process's waiting mark at offset `at` (under `_mu`, none set). A mark
        refused for a moment (another process testing for marks) is set at a later failed try."""
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, at)
        except OSError:
            return
        self._mark_at = at

    def _lock_file(self, since: int) -> bool:
        """True once this process holds the file lock; False after `timeout_s` of waiting."""
        try:
            fd = self._file()
        except OSError:  # no sidecar file here (e.g. a read-only directory): SQLite's lock alone
            return False
        deadline = time.monotonic() + self.timeout_s
        pause = 0.0001
        with self.waiting(since) as failed:
            while True:
                if self._try_file(fd, since):
                    return True
                failed()
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_S)
