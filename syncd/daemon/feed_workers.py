"""The daemon's feed readers in one place: the webhook workers and the feed's pruner.

`FeedWorkers(engine, settings, registry)` registers the webhook metrics (no thread yet);
`start()` runs them, `reload()` follows a new config, `stop()` ends them and the feed's
LISTEN thread.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from syncd import feed
from syncd.config import Settings
from syncd.feed.retention import Pruner
from syncd.webhooks.supervisor import Webhooks


class FeedWorkers:
    def __init__(self, engine: Engine, settings: Callable[[], Settings], registry: CollectorRegistry) -> None:
        self.engine = engine
        self.signal = feed.ChangeSignal(engine)
        self.webhooks = Webhooks(engine, settings, signal=self.signal, registry=registry)
        self.pruner = Pruner(engine, lambda: settings().feed)
        self._started = False

    def start(self) -> None:
        self.signal.start()
        self.webhooks.apply()
        self.pruner.start()
        self._started = True

    def reload(self) -> None:
        if self._started:
            self.webhooks.apply()

    def stop(self) -> None:
        if self._started:
            self.webhooks.stop()
            self.pruner.stop()
        self.signal.stop()
        feed.stop_shared(self.engine)
        self._started = False
