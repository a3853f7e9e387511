"""The daemon's delivery: one worker thread per target, woken when changes commit.

Each worker runs `push_once` (which holds the target's lock for the pass, so across replicas
one delivers at a time), then waits on the feed's `ChangeSignal` (in process, plus PostgreSQL
LISTEN/NOTIFY) or `POLL_S` seconds, whichever comes first; the poll covers writers in other
processes on SQLite and lock holders on other replicas. After a failed pass it waits with
exponential backoff (capped at `MAX_BACKOFF_S`; a refused token at `REFUSED_WAIT_S`).

Metrics (in the daemon's registry):
    syncd_target_changes_delivered_total{target}
    syncd_target_requests_total{target,method,status}
    syncd_target_passes_total{target,mode,outcome}
    syncd_target_lag_changes{target}, syncd_target_lag_seconds{target}   (from the store, at scrape)
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
from syncd.config.models import ScimTarget

log = logging.getLogger("syncd.targets")

POLL_S = 2.0
MAX_BACKOFF_S = 60.0
REFUSED_WAIT_S = 300.0


class TargetMetrics:
    def __init__(
        self, registry: CollectorRegistry, engine: Engine, targets: Callable[[], dict[str, ScimTarget]]
    ):
        self.delivered = Counter(
            "syncd_target_changes_delivered",
            "Feed changes delivered to a target",
            ["target"],
            registry=registry,
        )
        self.requests = Counter(
            "syncd_target_requests", "Requests to a target", ["target", "method", "status"], registry=registry
        )
        self.passes = Counter(
            "syncd_target_passes", "Delivery passes", ["target", "mode", "outcome"], registry=registry
        )
        registry.register(_Lag(engine, targets))


class _Lag(Collector):
    def __init__(self, engine: Engine, targets: Callable[[], dict[str, ScimTarget]]) -> None:
        self.engine, self.targets = engine, targets

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from syncd import feed
        from syncd.targets.state import get_state

        n = GaugeMetricFamily("syncd_target_lag_changes", "Feed changes not yet delivered", labels=["target"])
        s = GaugeMetricFamily(
            "syncd_target_lag_seconds", "Age of the oldest undelivered change (0: none)", labels=["target"]
        )
        for name, t in self.targets().items():
            try:
                pos = get_state(self.engine, name).position
                if pos is None:
                    continue
                lag = feed.lag(self.engine, after=pos, directories=set(t.sources) if t.sources else None)
            except Exception:  # the store is down: /readyz says so; the scrape still works
                continue
            n.add_metric([name], lag.changes)
            s.add_metric([name], lag.seconds or 0.0)
        yield n
        yield s


class TargetWorker(threading.Thread):
    def __init__(
        self,
        name: str,
        engine: Engine,
        settings: Callable[[], Settings],
        signal: Any,
        metrics: TargetMetrics | None,
    ) -> None:
        super().__init__(name=f"target:{name}", daemon=True)
        self.target, self.engine, self.settings, self.signal, self.metrics = (
            name,
            engine,
            settings,
            signal,
            metrics,
        )
        self.stop = threading.Event()
        self.passes = 0

    def run(self) -> None:
        from syncd.targets.run import make_client, push_once

        failures = 0
        while not self.stop.is_set():
            s = self.settings()
            t = s.targets.get(self.target)
            if t is None:
                return
            gen = self.signal.generation if self.signal is not None else 0

            def on_request(method: str, status: str, _t: str = self.target) -> None:
                if self.metrics is not None:
                    self.metrics.requests.labels(_t, method, status).inc()

            wait = POLL_S
            try:
                with make_client(t, on_request=on_request) as client:
                    outs = push_once(self.engine, self.target, t, lock_dir=s.state_dir, client=client)
                self.passes += 1
                bad = [o for o in outs if o.outcome not in ("applied", "busy")]
                for o in outs:
                    if self.metrics is not None:
                        self.metrics.passes.labels(self.target, o.mode, o.outcome).inc()
                        self.metrics.delivered.labels(self.target).inc(o.changes)
                    if o.outcome not in ("applied", "busy"):
                        log.warning(
                            "delivery failed",
                            extra={"target": self.target, "outcome": o.outcome, "error": o.error},
                        )
                    elif o.changes or o.applied:
                        log.info(
                            "delivered",
                            extra={
                                "target": self.target,
                                "mode": o.mode,
                                "changes": o.changes,
                                "applied": o.applied,
                            },
                        )
                if bad:
                    failures += 1
                    wait = (
                        REFUSED_WAIT_S
                        if any(o.outcome == "refused" for o in bad)
                        else min(MAX_BACKOFF_S, POLL_S * 2**failures)
                    )
                else:
                    failures = 0
            except Exception:  # a bug must not end delivery for good: log, back off, retry
                failures += 1
                wait = min(MAX_BACKOFF_S, POLL_S * 2**failures)
                log.exception("delivery pass crashed", extra={"target": self.target})
            if self.stop.is_set():
                return
            if failures:
                self.stop.wait(wait)
            elif self.signal is not None:
                self.signal.wait(wait, since=gen)
            else:
                self.stop.wait(wait)


class TargetWorkers:
    """One worker per configured target; `apply(settings)` follows config reloads."""

    def __init__(
        self, engine: Engine, settings: Callable[[], Settings], registry: CollectorRegistry | None
    ) -> None:
        self.engine, self.settings = engine, settings
        self.metrics = (
            TargetMetrics(registry, engine, lambda: dict(self.settings().targets))
            if registry is not None
            else None
        )
        self.workers: dict[str, TargetWorker] = {}
        self.signal: Any = None

    def start(self) -> None:
        from syncd.feed.signal import shared_signal

        if self.signal is None:
            self.signal = shared_signal(self.engine)
        self.apply()

    def apply(self) -> None:
        names = set(self.settings().targets)
        for name in list(self.workers):
            if name not in names:
                self.workers.pop(name).stop.set()
        for name in sorted(names - set(self.workers)):
            w = TargetWorker(name, self.engine, self.settings, self.signal, self.metrics)
            self.workers[name] = w
            w.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        for w in self.workers.values():
            w.stop.set()
        if self.signal is not None:
            self.signal.bump()
        for w in self.workers.values():
            w.join(timeout)
