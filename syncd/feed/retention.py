"""Retention: a thread that prunes changes older than `[feed] retention`, every
`prune_every` seconds (first shortly after start). Replicas prune in turn under one lock;
a prune is one transaction, so readers see the horizon move and the rows go at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from syncd.config.delivery import FeedSettings
from syncd.feed.reader import prune
from syncd.store import session_scope
from syncd.store.locks import LockBusy, directory_lock
from syncd.store.models import utcnow

log = logging.getLogger("syncd.feed")

#: Seconds after start before the first prune.
FIRST_PRUNE_S = 30.0
LOCK_NAME = "feed.prune"


def prune_once(engine: Engine, settings: FeedSettings) -> int:
    """Prune now (skipped if another replica is pruning); returns the changes deleted."""
    try:
        with directory_lock(engine, LOCK_NAME), session_scope(engine) as s:
            n = prune(s, older_than=utcnow() - timedelta(seconds=settings.retention))
    except LockBusy:
        return 0
    if n:
        log.info("feed pruned", extra={"deleted": n, "retention_s": settings.retention})
    return n


class Pruner:
    def __init__(self, engine: Engine, settings: Callable[[], FeedSettings]) -> None:
        self.engine, self.settings = engine, settings
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Pruner:
        self._thread = threading.Thread(target=self._run, name="feed-prune", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        wait = FIRST_PRUNE_S
        while not self.stop_event.wait(wait):
            try:
                prune_once(self.engine, self.settings())
            except Exception as exc:  # the store is away: try at the next period
                log.warning("feed prune failed", extra={"error": str(exc)})
            wait = float(self.settings().prune_every)
