"""The daemon's webhook workers: one thread per configured webhook, following config reloads,
plus the webhook metrics (registered in the daemon's Prometheus registry):

    syncd_webhook_deliveries_total{webhook,outcome}   outcome: delivered | failed | dead_letter
    syncd_webhook_dead_letters{webhook}               dead letters kept (from the store)
    syncd_webhook_lag_changes{webhook}                changes after the webhook's cursor
    syncd_webhook_lag_seconds{webhook}                age of the oldest of them
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from syncd.config import Settings
from syncd.config.delivery import WebhookSettings
from syncd.feed import ChangeSignal
from syncd.store import session_scope
from syncd.webhooks.status import statuses
from syncd.webhooks.worker import WebhookWorker

log = logging.getLogger("syncd.webhooks")


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry, engine: Engine, webhooks: Callable[[], dict[str, Any]]):
        self.deliveries = Counter(
            "syncd_webhook_deliveries", "Webhook delivery attempts", ["webhook", "outcome"], registry=registry
        )
        registry.register(_StoreGauges(engine, webhooks))

    def delivered(self, webhook: str) -> None:
        self.deliveries.labels(webhook, "delivered").inc()

    def failed(self, webhook: str) -> None:
        self.deliveries.labels(webhook, "failed").inc()

    def dead(self, webhook: str) -> None:
        self.deliveries.labels(webhook, "dead_letter").inc()


class _StoreGauges(Collector):
    def __init__(self, engine: Engine, webhooks: Callable[[], dict[str, Any]]) -> None:
        self.engine, self.webhooks = engine, webhooks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        dead = GaugeMetricFamily(
            "syncd_webhook_dead_letters", "Dead-lettered webhook events", labels=["webhook"]
        )
        lag = GaugeMetricFamily(
            "syncd_webhook_lag_changes", "Changes after the webhook's cursor", labels=["webhook"]
        )
        age = GaugeMetricFamily(
            "syncd_webhook_lag_seconds", "Age of the oldest undelivered change", labels=["webhook"]
        )
        hooks = self.webhooks()
        if hooks:
            try:
                with session_scope(self.engine, write=False) as s:
                    rows = statuses(s, hooks)
            except Exception:  # the store is down: /readyz says so; the scrape still works
                rows = []
            for st in rows:
                dead.add_metric([st.name], st.dead_letters)
                lag.add_metric([st.name], st.lag_changes)
                age.add_metric([st.name], st.lag_seconds or 0.0)
        yield from (dead, lag, age)


class Webhooks:
    """Runs a `WebhookWorker` thread per webhook of the settings in force."""

    def __init__(
        self,
        engine: Engine,
        settings: Callable[[], Settings],
        *,
        signal: ChangeSignal,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine, self.settings, self.signal = engine, settings, signal
        self.metrics = (
            WebhookMetrics(registry, engine, lambda: dict(self.settings().webhooks)) if registry else None
        )
        self._lock = threading.Lock()
        self._running: dict[str, tuple[WebhookSettings, WebhookWorker, threading.Thread]] = {}

    def apply(self) -> None:
        """Start workers of new or changed webhooks, stop those of removed or changed ones."""
        want = dict(self.settings().webhooks)
        with self._lock:
            for name in list(self._running):
                cfg, _worker, _thread = self._running[name]
                if want.get(name) != cfg:
                    self._stop_one(name)
            for name, cfg in want.items():
                if name not in self._running:
                    worker = WebhookWorker(self.engine, name, cfg, signal=self.signal, observer=self.metrics)
                    thread = threading.Thread(target=worker.run, name=f"webhook-{name}", daemon=True)
                    self._running[name] = (cfg, worker, thread)
                    thread.start()
                    log.info("webhook worker started", extra={"webhook": name})

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            for _cfg, worker, _thread in self._running.values():
                worker.stop.set()
            self.signal.bump()
            for name in list(self._running):
                self._stop_one(name, timeout)

    def _stop_one(self, name: str, timeout: float = 10.0) -> None:
        _cfg, worker, thread = self._running.pop(name)
        worker.stop.set()
        self.signal.bump()
        thread.join(timeout)
        worker.sender.close()
