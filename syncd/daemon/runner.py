"""Pull runs inside the daemon: scheduled slots, API triggers, and stopping safely.

Invariants:
- One process runs at most one pull of a directory at a time (`AlreadyRunning` for a second
  trigger); across processes and machines `run_sync`'s directory lock makes a concurrent one
  `busy`.
- A scheduled slot is run by one replica (see `scheduler`): the claim (is there a scheduled
  run of this directory that started at or after the slot?) and the run happen under the
  directory's *slot lock* (`slot_lock`), so two replicas cannot both find the slot free.
- Each directory's connector is built once and reused by its runs (`connectors.ConnectorPool`);
  it runs on the pool's event loop, never on a run's own.
- Stopping: once `stop` is set, a fetch in progress is cancelled (nothing is written during a
  fetch) and an apply stops at the next batch boundary (each batch is its own transaction);
  the run row is finished with outcome "abandoned". Rows left "running" by a process that
  died are marked "abandoned" by whoever next takes that directory's lock (`directory_lock`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from connectors.base import Connector, ConnectorError, ProgressCallback, TransientError
from connectors.factory import build_connector
from syncd.config import Schedule, Settings
from syncd.daemon import logging as dlog
from syncd.daemon.connectors import ConnectorPool
from syncd.daemon.metrics import Metrics
from syncd.daemon.scheduler import period_at, slot_of, trigger_for
from syncd.heap import refreeze_startup_heap
from syncd.reconcile.options import run_options
from syncd.reconcile.run import RunResult, run_sync
from syncd.reconcile.snapshot import Snapshot, UserGroups
from syncd.store import session_scope
from syncd.store.locks import LockBusy, slot_lock
from syncd.store.models import SyncRun

log = logging.getLogger("syncd.daemon.runner")

#: How long a trigger waits for its run to start (lock taken, run row written), seconds.
START_WAIT_S = 30.0
#: A slot's run must start at least this long (seconds; a tenth of the period if less) before
#: the next slot, or the slot is skipped: runs start inside the slot they claimed.
LATE_MARGIN_S = 1.0
#: Poll period of a fetch watching for the stop signal, seconds.
STOP_POLL_S = 0.2


class AlreadyRunning(Exception):
    def __init__(self, handle: RunHandle) -> None:
        super().__init__(f"a sync of {handle.directory!r} is already running in this process")
        self.handle = handle


class Abandoned(Exception):
    """Raised between apply batches once the daemon is stopping."""


class Stopped(TransientError):
    """The fetch was cancelled because the daemon is stopping."""


@dataclass
class RunHandle:
    """One pull in this process. `started` is set once its run row exists (or it ended first)."""

    directory: str
    trigger: str
    dry_run: bool = False
    slot: datetime | None = None
    run_id: int | None = None
    result: RunResult | None = None
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Watched(Connector):
    """What a run sees of a pooled connector: the fetch runs on the pool's loop; the run learns
    its id when the fetch starts; the fetch is cancelled when the daemon stops. Closing it
    leaves the pooled connector open (the pool owns it)."""

    def __init__(
        self, inner: Connector, pool: ConnectorPool, on_start: Callable[[], None], stop: threading.Event
    ) -> None:
        super().__init__(inner.directory)
        self.inner, self.pool, self.on_start, self.stop = inner, pool, on_start, stop
        self.kind = inner.kind  # type: ignore[misc]

    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        self.on_start()
        return await asyncio.wrap_future(self.pool.run(self._fetch(cursor, progress)))

    async def _fetch(self, cursor: str | None, progress: ProgressCallback | None) -> Snapshot:
        """On the pool's loop: the fetch, cancelled once the daemon stops."""
        task = asyncio.ensure_future(self.inner.snapshot(cursor=cursor, progress=progress))
        while not task.done():
            if self.stop.is_set():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
                raise Stopped("the daemon is stopping; the fetch was cancelled before anything was written")
            await asyncio.wait({task}, timeout=STOP_POLL_S)
        return task.result()

    async def user_groups(self, user: str) -> UserGroups:
        return await asyncio.wrap_future(self.pool.run(self.inner.user_groups(user)))

    async def aclose(self) -> None:
        pass


class Runner:
    def __init__(
        self,
        engine: Engine,
        settings: Callable[[], Settings],
        metrics: Metrics,
        *,
        connector_factory: Callable[[str, Any], Connector] = build_connector,
    ) -> None:
        self.engine, self.settings, self.metrics = engine, settings, metrics
        self.pool = ConnectorPool(connector_factory)
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, RunHandle] = {}

    # -- entry points ---------------------------------------------------------------------

    def scheduled(self, directory: str, schedule: Schedule) -> None:
        """The scheduler's job for one fire: find the slot, wait the jitter, claim, run."""
        trig = trigger_for(schedule)
        slot = slot_of(trig, datetime.now(UTC))
        if slot is None or self.stop.is_set():
            return
        d = self.settings().directories.get(directory)
        if d is None:
            return
        period = period_at(trig, slot)
        jitter = min(float(d.jitter), period / 2)
        late_after = slot.timestamp() + period - min(LATE_MARGIN_S, period / 10)
        delay = random.uniform(0, jitter) if jitter > 0 else 0.0
        if datetime.now(UTC).timestamp() + delay >= late_after:  # a start-up run late in its slot
            log.info(
                "slot skipped: its jitter would start it in the next slot", extra={"slot": slot.isoformat()}
            )
            return
        if delay and self.stop.wait(delay):
            return
        with dlog.bind(directory=directory):
            try:
                # the connector first (built at start-up; a slow build must not follow the claim)
                with self.pool.lease(directory, d) as connector, slot_lock(self.engine, directory):
                    if self._slot_taken(directory, slot):
                        log.info("slot already run", extra={"slot": slot.isoformat()})
                        return
                    if datetime.now(UTC).timestamp() >= late_after:  # the run would start in the next slot
                        log.warning("slot missed: too late to start it", extra={"slot": slot.isoformat()})
                        return
                    handle = self._claim(directory, "schedule", dry_run=False)
                    handle.slot = slot
                    log.info("scheduled sync starting", extra={"slot": slot.isoformat()})
                    self._run(handle, allow_deletes=False, connector=connector)
            except ConnectorError as exc:
                log.error("cannot build the connector: %s", exc)
            except LockBusy:
                log.info("slot is being run by another process", extra={"slot": slot.isoformat()})
            except AlreadyRunning as exc:
                log.info("scheduled sync skipped: %s", exc, extra={"slot": slot.isoformat()})

    def trigger(self, directory: str, *, dry_run: bool = False, allow_deletes: bool = False) -> RunHandle:
        """Start a pull in a thread (AlreadyRunning if one of `directory` runs here)."""
        handle = self._claim(directory, "api", dry_run=dry_run)
        t = threading.Thread(
            target=self._run,
            args=(handle,),
            kwargs={"allow_deletes": allow_deletes},
            name=f"sync:{directory}",
            daemon=True,
        )
        t.start()
        return handle

    def warm(self, directories: Mapping[str, Any]) -> None:
        """Build the connectors of `directories` in the background (start-up)."""
        self.pool.warm(directories)

    def reload(self, directories: Mapping[str, Any]) -> None:
        """Follow a new config: rebuild (in the background) the connectors whose settings
        changed, close those of directories gone."""
        changed = self.pool.retire_changed(directories)
        if changed:
            log.info("connectors rebuilt after the config changed", extra={"directories": changed})
        self.pool.warm({n: d for n, d in directories.items() if n in changed})

    def close(self) -> None:
        """Close every connector (after `shutdown`)."""
        self.pool.close()

    def running(self, directory: str) -> RunHandle | None:
        with self._lock:
            return self._active.get(directory)

    def shutdown(self, timeout: float) -> bool:
        """Stop every run at its next safe point; True when all ended within `timeout` seconds."""
        self.stop.set()
        with self._lock:
            handles = list(self._active.values())
        deadline = _monotonic() + timeout
        return all(h.done.wait(max(0.0, deadline - _monotonic())) for h in handles)

    # -- internals ------------------------------------------------------------------------

    def _claim(self, directory: str, trigger: str, *, dry_run: bool) -> RunHandle:
        with self._lock:
            if directory in self._active:
                raise AlreadyRunning(self._active[directory])
            handle = self._active[directory] = RunHandle(directory, trigger, dry_run)
            return handle

    def _slot_taken(self, directory: str, slot: datetime) -> bool:
        with session_scope(self.engine, write=False) as s:
            q = select(func.count()).where(
                SyncRun.directory == directory, SyncRun.trigger == "schedule", SyncRun.started_at >= slot
            )
            return bool(s.execute(q).scalar_one())

    def _run(
        self, handle: RunHandle, *, allow_deletes: bool, connector: Connector | None = None
    ) -> RunResult:
        name = handle.directory
        with dlog.bind(directory=name, run_id=None, request_id=None) as ctx:
            try:
                result = self._run_locked(handle, ctx, allow_deletes, connector)
            except Exception as exc:  # a bug: logged with its traceback, the daemon goes on
                log.exception("sync crashed")
                result = RunResult(ctx.run_id, name, "failed", error=f"{type(exc).__name__}: {exc}")
            handle.result = result
            self.metrics.record_run(result, handle.trigger)
            kept = result.plan is not None and result.outcome in ("stopped", "planned")
            counts = result.plan.counts() if kept and result.plan else result.applied
            log.log(
                logging.WARNING
                if result.outcome in ("failed", "stopped", "abandoned", "partial")
                else logging.INFO,
                "sync finished",
                extra={
                    "trigger": handle.trigger,
                    "outcome": result.outcome,
                    "mode": result.mode,
                    "complete": result.complete,
                    "changes": counts,
                    "api_calls": result.api_calls,
                    "throttles": result.throttles,
                    "seconds": round(result.seconds, 3),
                    "error": result.error,
                },
            )
        with self._lock:
            self._active.pop(name, None)
        handle.started.set()
        handle.done.set()
        refreeze_startup_heap()  # the run's stages handed the SCIM server's startup heap back
        return result

    def _run_locked(
        self, handle: RunHandle, ctx: dlog.LogContext, allow_deletes: bool, inner: Connector | None
    ) -> RunResult:
        settings = self.settings()
        name = handle.directory
        d = settings.directories.get(name)
        if d is None or d.kind == "scim":
            return RunResult(None, name, "failed", error=f"{name!r} is not a configured pull directory")
        if inner is None:
            try:
                with self.pool.lease(name, d) as leased:
                    return self._run_locked(handle, ctx, allow_deletes, leased)
            except ConnectorError as exc:
                return RunResult(None, name, "failed", error=f"{type(exc).__name__}: {exc}")

        def on_start() -> None:
            ctx.run_id = handle.run_id = self._current_run_id(name)
            handle.started.set()
            slot = handle.slot.isoformat() if handle.slot else None
            log.info(
                "sync started", extra={"trigger": handle.trigger, "dry_run": handle.dry_run, "slot": slot}
            )

        def on_apply(_phase: str, _done: int, _total: int) -> None:
            if self.stop.is_set():
                raise Abandoned("the daemon is stopping; abandoned between batches")

        opts = run_options(d, trigger=handle.trigger, dry_run=handle.dry_run, allow_deletes=allow_deletes)
        try:
            result = run_sync(
                self.engine, Watched(inner, self.pool, on_start, self.stop), opts, on_apply=on_apply
            )
        except Abandoned as exc:
            result = RunResult(ctx.run_id, name, "abandoned", error=str(exc))
            self._mark_abandoned(ctx.run_id, str(exc))
            return result
        if result.outcome == "failed" and (result.error or "").startswith(Stopped.__name__):
            result.outcome = "abandoned"
            self._mark_abandoned(result.run_id, result.error or "")
        elif result.outcome == "failed":  # a fresh connector next time: no broken session kept
            self.pool.discard(name)
        return result

    def _current_run_id(self, directory: str) -> int | None:
        """The run row `run_sync` just wrote: the newest running one (it holds the lock)."""
        with session_scope(self.engine, write=False) as s:
            q = select(func.max(SyncRun.id)).where(
                SyncRun.directory == directory, SyncRun.outcome == "running"
            )
            return s.execute(q).scalar_one()

    def _mark_abandoned(self, run_id: int | None, error: str) -> None:
        if run_id is None:
            return
        with session_scope(self.engine) as s:
            s.execute(update(SyncRun).where(SyncRun.id == run_id).values(outcome="abandoned", error=error))


def _monotonic() -> float:
    import time

    return time.monotonic()
