"""Interval schedules fire on the epoch grid, whenever the daemon started; replicas started
late in a period still run every slot once between them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syncd.config import Schedule
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.daemon.scheduler import Scheduler, trigger_for
from tests.daemon.conftest import settings_for
from tests.daemon.helpers import PATIENCE_S, runs
from tests.daemon.test_runner import Instant


@pytest.mark.parametrize("offset", [0.001, 17.5, 42.0, 59.999])
def test_after_the_start_up_fire_an_interval_trigger_returns_to_the_grid(offset: float) -> None:
    trig = trigger_for(Schedule.parse("60s"))
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC) + timedelta(seconds=offset)  # the start-up run
    fires = [start]
    for _ in range(3):
        fires.append(trig.get_next_fire_time(fires[-1], fires[-1]))
    assert fires[1:] == [datetime(2026, 1, 1, 10, m, tzinfo=UTC) for m in (1, 2, 3)]


@pytest.mark.parametrize("offset", [0.3, 0.8])
def test_a_scheduler_started_mid_period_fires_at_once_then_on_the_grid(offset: float) -> None:
    period = 2
    fired: list[datetime] = []
    both = threading.Event()

    def job(directory: str, schedule: Schedule) -> None:
        fired.append(datetime.now(UTC))
        if len(fired) == 2:
            both.set()

    class D:
        kind, schedule = "graph", Schedule.parse(f"{period}s")

    _sleep_to_phase(period, offset)
    sched = Scheduler(job)
    sched.apply({"x": D()})
    sched.start()
    try:
        assert both.wait(PATIENCE_S)
        nxt = sched.next_run("x")
    finally:
        sched.shutdown()
    assert nxt is not None and nxt.timestamp() % period == 0  # the phase is the epoch's ...
    assert int(fired[1].timestamp()) % period == 0  # ... from the first fire after start-up on


def test_two_replicas_started_late_in_a_period_run_every_later_slot_once(
    engine: Engine, tmp_path: Path
) -> None:
    """Before the grid fix, replicas fired at their start phase plus jitter and missed most
    slots "too late"; now each whole slot is run exactly once between them."""
    period, jitter, slots = 3, 1.5, 4
    name = f"s-{uuid.uuid4().hex[:10]}"
    toml = f"""
[directories.{name}]
kind = "graph"
tenant_id = "t"
client_id = "c"
client_secret = "s"
schedule = "{period}s"
jitter = "{int(jitter * 2)}s"
"""
    settings = settings_for(engine, tmp_path, toml)  # jitter is capped at half the period
    replicas: list[tuple[Runner, Scheduler]] = []
    try:
        for offset in (0.75, 0.9):  # late in the start slot: start phase + jitter crosses its end
            _sleep_to_phase(period, offset)
            r = Runner(engine, lambda: settings, Metrics(), connector_factory=lambda n, _d: Instant(n))
            sched = Scheduler(r.scheduled)
            sched.apply(settings.directories)
            sched.start()
            replicas.append((r, sched))
        first_whole = (int(time.time()) // period + 1) * period
        time.sleep(max(0.0, first_whole + slots * period + jitter + 1 - time.time()))
    finally:
        for r, sched in replicas:
            sched.shutdown()
            r.shutdown(timeout=PATIENCE_S)
            r.close()
    rows = [r for r in runs(engine, name, "schedule") if r.started_at.timestamp() >= first_whole]
    per_slot = Counter(int(r.started_at.timestamp()) // period * period for r in rows)
    wanted = [first_whole + i * period for i in range(slots)]
    assert [per_slot[s] for s in wanted] == [1] * slots, (wanted, per_slot)
    assert all(r.outcome == "applied" for r in rows)


def _sleep_to_phase(period: int, fraction: float) -> None:
    """Sleep until `fraction` of the way into the next slot (or this one, if still ahead)."""
    now = time.time()
    target = now // period * period + fraction * period
    if target < now:
        target += period
    time.sleep(target - now)
