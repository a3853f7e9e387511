"""The per-run circuit breaker every connector puts in front of its HTTP transport.

A read that loses its IdP half-way would otherwise retry every remaining request on its own
against a dead host (minutes of connect timeouts and backoff). Each snapshot gets one
`Breaker`; the connector's lowest HTTP layer calls `before()` ahead of every attempt (retries
and token requests included), then `failure()` when the attempt got no HTTP answer at all
(connection refused, reset or closed, a timeout) or `success()` when any HTTP answer came back,
whatever its status: a 500 or a 429 is a live IdP and is left to the retry policy.

After `threshold` failures in a row the breaker opens: every later `before()` raises
`CircuitOpen` at once without sending, every retry loop gives up on it, and the readers record
one problem (`describe()`) that makes the snapshot incomplete, so the run removes nothing.
The breaker never closes again within its run. Thread-safe (the Google connector sends from
worker threads).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from connectors.base import CircuitOpen, ConfigError
from syncd.reconcile.snapshot import Snapshot

#: connection failures in a row that stop a read (config: `max_connection_failures`)
DEFAULT_THRESHOLD = 5


class Breaker:
    """Counts consecutive connection failures of one run; see the module docstring."""

    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ConfigError("max_connection_failures must be an integer >= 1")
        self.threshold = threshold
        self.streak = 0
        self.refused = 0  # requests not sent because the breaker was open
        self.last_failure = ""
        self._open = False
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self._open

    def before(self) -> None:
        """Raise `CircuitOpen` instead of sending when the breaker is open."""
        if self._open:
            with self._lock:
                self.refused += 1
            raise CircuitOpen(f"not sent: {self.describe()}")

    def failure(self, what: str = "") -> None:
        """An attempt got no HTTP answer (refused, reset, closed, timed out)."""
        with self._lock:
            self.streak += 1
            if what:
                self.last_failure = what
            if self.streak >= self.threshold:
                self._open = True

    def success(self) -> None:
        """An attempt got an HTTP answer (any status)."""
        if self.streak:
            with self._lock:
                self.streak = 0

    def describe(self) -> str:
        last = f" (last: {self.last_failure})" if self.last_failure else ""
        return (
            f"the IdP stopped answering: {self.threshold} connection failures in a row"
            f"{last}; the read was stopped there"
        )

    def problem(self) -> str:
        """The one problem an incomplete snapshot records for an open breaker."""
        return f"{self.describe()} and {self.refused} requests were not sent"


def record(snap: Snapshot, breaker: Breaker) -> None:
    """If `breaker` opened during the read of `snap`: mark it incomplete, its problem first
    (it is why the read stopped; per-read failures before it follow)."""
    if breaker.open:
        snap.complete = False
        snap.problems.insert(0, breaker.problem())


def died_mid_read(exc: BaseException, pages_read: int) -> bool:
    """Whether a list that failed on its first page was cut by the IdP dying after other pages
    of the snapshot were read: the read is then incomplete, not meaningless, and must not
    raise (readers otherwise raise when a first page fails)."""
    return isinstance(exc, CircuitOpen) and pages_read > 0


_CURRENT: ContextVar[Breaker | None] = ContextVar("syncd_breaker", default=None)


@contextmanager
def scope(breaker: Breaker) -> Iterator[None]:
    """Every request of the tasks started inside the block goes through `breaker` (tasks copy
    the context they are started in, so one snapshot's breaker never reaches another's)."""
    token = _CURRENT.set(breaker)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> Breaker | None:
    """The breaker of the snapshot running in this context (None outside a snapshot)."""
    return _CURRENT.get()
