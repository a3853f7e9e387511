"""One webhook's delivery loop: follow the feed from the webhook's cursor, send each change
it subscribes to, retry with backoff, dead-letter after `max_attempts`, save the cursor.

The cursor row (`feed_cursors`, consumer "webhook:NAME") holds the position of the last
change handled and `attempts`, the failures of the change after it (so a restart keeps
counting). A cursor moves only forward and only after the change was acknowledged (2xx) or
dead-lettered. `WebhookWorker.run` holds the webhook's lock (`directory_lock` keyed
"webhook:NAME") so that one replica delivers; a replica that cannot take it waits.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from syncd import feed
from syncd.config.delivery import WebhookSettings
from syncd.feed import ChangeSignal, FeedChange
from syncd.store import session_scope
from syncd.store.locks import LockBusy, directory_lock
from syncd.store.models import FeedCursor, WebhookDeadLetter, utcnow
from syncd.webhooks.events import event_id, payload
from syncd.webhooks.sender import Outcome, Sender, backoff

log = logging.getLogger("syncd.webhooks")

#: Changes read per feed page.
BATCH = 200
#: Longest wait for new changes before the loop looks at its stop flag again, seconds.
IDLE_WAIT_S = 5.0
#: How often a replica that does not hold a webhook's lock tries to take it, seconds.
LOCK_RETRY_S = 5.0


class Stopped(Exception):
    """The worker was asked to stop in the middle of a backoff wait."""


class Observer(Protocol):
    def delivered(self, webhook: str) -> None: ...
    def failed(self, webhook: str) -> None: ...
    def dead(self, webhook: str) -> None: ...


class _NoMetrics:
    def delivered(self, webhook: str) -> None: ...
    def failed(self, webhook: str) -> None: ...
    def dead(self, webhook: str) -> None: ...


def consumer(name: str) -> str:
    return f"webhook:{name}"


@dataclass
class Delivery:
    """What one `step` did: changes sent (2xx), dead-lettered, skipped (not subscribed)."""

    sent: int = 0
    dead: int = 0
    skipped: int = 0


class WebhookWorker:
    def __init__(
        self,
        engine: Engine,
        name: str,
        settings: WebhookSettings,
        *,
        signal: ChangeSignal,
        sender: Sender | None = None,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
        backoff_unit: float = 1.0,
    ) -> None:
        """`backoff_unit` scales the configured backoff seconds (tests make them short)."""
        self.engine, self.name, self.settings, self.signal = engine, name, settings, signal
        self.sender = sender or Sender(
            settings.url, settings.signing_secret.reveal(), timeout=float(settings.timeout)
        )
        self.observer: Observer = observer or _NoMetrics()
        self.stop = stop or threading.Event()
        self.unit = backoff_unit
        self.consumer = consumer(name)
        self._dirs = frozenset(settings.directories) if settings.directories is not None else None

    # -- the daemon's loop ----------------------------------------------------------------

    def run(self) -> None:
        """Deliver until `stop` is set: take the webhook's lock, then follow the feed."""
        delay = 1.0
        while not self.stop.is_set():
            try:
                with directory_lock(self.engine, self.consumer):
                    delay = 1.0
                    while not self.stop.is_set():
                        self.step(wait=IDLE_WAIT_S)
            except LockBusy:
                self.stop.wait(LOCK_RETRY_S)
            except Stopped:
                return
            except Exception as exc:  # the store went away, or a bug: log, back off, go on
                log.exception(
                    "webhook worker failed; retrying", extra={"webhook": self.name, "error": str(exc)}
                )
                self.stop.wait(delay)
                delay = min(delay * 2, 60.0)

    # -- one step -------------------------------------------------------------------------

    def step(self, *, wait: float = 0.0) -> Delivery:
        """Handle one page of changes after the cursor (waiting up to `wait` seconds for one).

        Raises Stopped when `stop` is set during a backoff wait (the cursor stays before
        the change being retried).
        """
        done = Delivery()
        pos = self.position()
        try:
            page = feed.wait_for_changes(
                self.engine,
                self.signal,
                after=pos,
                limit=BATCH,
                timeout=wait,
                directories=self._dirs,
                stop=self.stop,
            )
        except feed.FeedGone as exc:
            self._skip_gap(exc)
            return done
        for ch in page.changes:
            if self.stop.is_set():
                raise Stopped
            if not self.settings.wants(ch.kind, ch.directory):
                done.skipped += 1
                continue
            if self._deliver(ch):
                done.sent += 1
            else:
                done.dead += 1
        if page.next != pos:
            with session_scope(self.engine) as s:
                row = s.get(FeedCursor, self.consumer, with_for_update=True)
                if row is None or feed.Position.parse(row.position) < feed.Position.parse(page.next):
                    feed.save_cursor(s, self.consumer, page.next)
        return done

    def position(self) -> str:
        """The cursor; a new webhook's is the feed's head (it gets what commits from now on)."""
        with session_scope(self.engine) as s:
            row = s.get(FeedCursor, self.consumer)
            if row is not None:
                return row.position
            head = feed.head(s)
            feed.save_cursor(s, self.consumer, head)
            return head

    def _deliver(self, ch: FeedChange) -> bool:
        """Send `ch` until acknowledged (True) or dead-lettered (False); saves the cursor."""
        msg_id, body = event_id(ch), payload(ch)
        attempts = self._attempts()
        while True:
            out = self.sender.send(msg_id, body)
            if out.ok:
                with session_scope(self.engine) as s:
                    feed.save_cursor(s, self.consumer, ch.position, delivered=1)
                self.observer.delivered(self.name)
                return True
            attempts += 1
            self.observer.failed(self.name)
            if attempts >= self.settings.max_attempts:
                self._dead_letter(ch, msg_id, body, attempts, out)
                return False
            self._record_failure(attempts, out)
            delay = backoff(
                attempts,
                base=self.settings.backoff * self.unit,
                cap=self.settings.max_backoff * self.unit,
                retry_after=out.retry_after * self.unit if out.retry_after is not None else None,
            )
            log.warning(
                "webhook delivery failed; retrying",
                extra={"webhook": self.name, "event": msg_id, "attempt": attempts, "error": out.error},
            )
            if self.stop.wait(delay):
                raise Stopped

    def _attempts(self) -> int:
        with session_scope(self.engine, write=False) as s:
            row = s.get(FeedCursor, self.consumer)
            return row.attempts if row else 0

    def _record_failure(self, attempts: int, out: Outcome) -> None:
        with session_scope(self.engine) as s:
            row = s.get(FeedCursor, self.consumer, with_for_update=True)
            if row is not None:
                row.attempts, row.last_error, row.updated_at = attempts, out.error, utcnow()
                s.add(row)

    def _dead_letter(
        self, ch: FeedChange, msg_id: str, body: dict[str, Any], attempts: int, out: Outcome
    ) -> None:
        with session_scope(self.engine) as s:
            s.add(
                WebhookDeadLetter(
                    webhook=self.name,
                    event_id=msg_id,
                    position=ch.position,
                    kind=ch.kind,
                    resource_type=ch.resource_type,
                    resource_id=ch.resource_id,
                    payload=body,
                    attempts=attempts,
                    error=out.error or "",
                )
            )
            row = feed.save_cursor(s, self.consumer, ch.position)
            row.last_error = f"dead-lettered {msg_id} after {attempts} attempts: {out.error}"
        self.observer.dead(self.name)
        log.error(
            "webhook event dead-lettered",
            extra={"webhook": self.name, "event": msg_id, "attempts": attempts, "error": out.error},
        )

    def _skip_gap(self, exc: feed.FeedGone) -> None:
        with session_scope(self.engine) as s:
            row = feed.save_cursor(s, self.consumer, exc.oldest)
            row.last_error = (
                f"the feed was pruned past this webhook's cursor ({exc.position}); resumed at {exc.oldest}"
            )
        log.error(
            "webhook cursor behind the feed's retention; changes were missed", extra={"webhook": self.name}
        )
