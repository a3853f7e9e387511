"""Prometheus metrics of one daemon, in its own registry (tests build several side by side).

    syncd_sync_runs_total{directory,trigger,outcome}       pull runs finished by this process
                                                           (outcome "partial": the read was cut short)
    syncd_sync_changes_total{directory,kind}               changes applied (create_user, add_members…)
    syncd_sync_duration_seconds{directory}                 pull run wall time (histogram)
    syncd_idp_api_calls_total{directory}                   IdP HTTP calls (pulls and logins)
    syncd_idp_throttles_total{directory}                   throttled IdP answers
    syncd_seconds_since_last_success{directory}            from the store: any replica's runs count
    syncd_login_sync_duration_seconds{directory,result}    result: fresh | stale | unknown_user
    syncd_scim_requests_total{route,method,status}         route: the route template, not the path
    syncd_scim_request_duration_seconds{route,method}
    syncd_admin_requests_total{route,method,status}

Route labels are templates (`/scim/v2/Users/{user_id}`) or "unmatched", so label sets stay small.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.store import session_scope
from syncd.store.models import SyncRun

RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
LOGIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class LastSuccess(Collector):
    """Seconds since each directory's last applied run, read from the store at scrape time."""

    def __init__(self, engine: Engine, directories: Callable[[], list[str]]) -> None:
        self.engine, self.directories = engine, directories

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "syncd_seconds_since_last_success",
            "Seconds since the directory's last applied pull (by any replica); absent if none yet",
            labels=["directory"],
        )
        try:
            with session_scope(self.engine, write=False) as s:
                q = (
                    select(SyncRun.directory, func.max(SyncRun.ended_at))
                    .where(SyncRun.outcome == "applied")
                    .group_by(SyncRun.directory)
                )
                last = dict(s.execute(q).tuples().all())
        except Exception:  # the store is down: /readyz says so; the scrape still works
            last = {}
        now = time.time()
        for name in self.directories():
            ts = last.get(name)
            if ts is not None:
                epoch = ts.timestamp() if ts.tzinfo else ts.replace(tzinfo=UTC).timestamp()
                g.add_metric([name], max(0.0, now - epoch))
        yield g


class Metrics:
    def __init__(self, engine: Engine | None = None, directories: Callable[[], list[str]] | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "syncd_sync_runs", "Pull runs finished", ["directory", "trigger", "outcome"], registry=r
        )
        self.changes = Counter(
            "syncd_sync_changes", "Changes applied by pulls", ["directory", "kind"], registry=r
        )
        self.run_seconds = Histogram(
            "syncd_sync_duration_seconds", "Pull run duration", ["directory"], buckets=RUN_BUCKETS, registry=r
        )
        self.api_calls = Counter("syncd_idp_api_calls", "IdP API calls", ["directory"], registry=r)
        self.throttles = Counter("syncd_idp_throttles", "Throttled IdP answers", ["directory"], registry=r)
        self.login_seconds = Histogram(
            "syncd_login_sync_duration_seconds",
            "On-login sync latency",
            ["directory", "result"],
            buckets=LOGIN_BUCKETS,
            registry=r,
        )
        self.scim_requests = Counter(
            "syncd_scim_requests", "SCIM requests", ["route", "method", "status"], registry=r
        )
        self.scim_seconds = Histogram(
            "syncd_scim_request_duration_seconds",
            "SCIM request latency",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.admin_requests = Counter(
            "syncd_admin_requests", "Admin API requests", ["route", "method", "status"], registry=r
        )
        if engine is not None and directories is not None:
            r.register(LastSuccess(engine, directories))

    def record_run(self, result: Any, trigger: str) -> None:
        d = result.directory
        self.runs.labels(d, trigger, result.outcome).inc()
        for kind, n in result.applied.items():  # written, whatever the outcome (a failed run's batches)
            self.changes.labels(d, kind).inc(n)
        self.run_seconds.labels(d).observe(result.seconds)
        self.record_calls(d, result.api_calls, result.throttles)

    def record_calls(self, directory: str, calls: int, throttles: int) -> None:
        self.api_calls.labels(directory).inc(calls)
        self.throttles.labels(directory).inc(throttles)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_label(scope: Scope) -> str:
    """The matched route as a template (`/scim/v2/Users/{user_id}`), from the path and its
    path parameters (framework-independent: nested routers keep only relative paths)."""
    if "endpoint" not in scope and "route" not in scope:
        return "unmatched"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    parts = scope.get("path", "").split("/")
    return "/".join("{" + params[p] + "}" if p in params else p for p in parts) or "/"


class HttpMetrics:
    """ASGI middleware: counts and times every request, by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            route, method = route_label(scope), scope.get("method", "")
            if path.startswith("/scim/"):
                self.metrics.scim_requests.labels(route, method, str(status)).inc()
                self.metrics.scim_seconds.labels(route, method).observe(time.perf_counter() - t0)
            elif path.startswith("/v1/"):
                self.metrics.admin_requests.labels(route, method, str(status)).inc()
