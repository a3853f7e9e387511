"""One APScheduler job per pull directory, and the slots that let replicas share a schedule.

A **slot** is one fire time of a directory's schedule, the same on every replica: interval
schedules are aligned to the Unix epoch (every "30m" fires at :00 and :30 UTC everywhere), cron
schedules are UTC. The job fired for slot S runs at S (or, at start-up, in the middle of the
slot that holds "now"), waits its random jitter, then claims the slot (see `runner.Runner`):
under the directory's slot lock, a slot is taken when a scheduled run of that directory
started at or after S. Replicas therefore run each slot once between them. A claim too close
to the next slot is dropped, so every run starts inside the slot it claimed.

Job options: `max_instances=1` (no overlap with itself), `coalesce=True` (missed fire times
collapse into one run), a misfire grace of half the schedule's period (at most 5 minutes).
The first run at start-up (or reload) is a one-off job beside the grid job, so that it never
holds the grid job's only instance when the next slot begins. Jitter is applied by the job,
not by APScheduler, so the job still knows which slot it fired for; it is capped at half the
period, and a start-up run whose jitter would cross into the next slot is skipped at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config.types import Schedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_GRACE_S = 300
_TICK = timedelta(microseconds=1)
_LOOKBACK_LIMIT = timedelta(days=800)
_NOW = "#now"  # id suffix of a directory's one-off run at start-up or reload

log = logging.getLogger("syncd.daemon.scheduler")


class GridTrigger(IntervalTrigger):
    """Every `interval` seconds on the epoch grid (EPOCH + k·interval), whatever fired before.

    APScheduler's IntervalTrigger adds the interval to the previous fire time, so after the
    off-grid start-up run every later fire would keep the daemon's start phase (a daemon started
    at :42 would fire at :42 of every period, and its jitter would push runs past the slot's
    end). Here the next fire time is the first grid point strictly after the previous one.
    """

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            return super().get_next_fire_time(None, now)
        return super().get_next_fire_time(None, previous_fire_time + _TICK)


def trigger_for(schedule: Schedule) -> BaseTrigger:
    if schedule.interval:
        return GridTrigger(seconds=schedule.interval, start_date=EPOCH, timezone=UTC)
    assert schedule.cron is not None
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


def next_after(trigger: BaseTrigger, t: datetime) -> datetime | None:
    """The first fire time strictly after `t`."""
    return trigger.get_next_fire_time(None, t + _TICK)


def slot_of(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The latest fire time at or before `now` (the slot `now` falls in); None if there is none
    within the lookback limit."""
    window = timedelta(seconds=1)
    while True:
        t = trigger.get_next_fire_time(None, now - window)
        if t is not None and t <= now:
            break
        window *= 2
        if window > _LOOKBACK_LIMIT:
            return None
    while (n := next_after(trigger, t)) is not None and n <= now:
        t = n
    return t


def period_at(trigger: BaseTrigger, slot: datetime) -> float:
    """Seconds from `slot` to the next fire time (a cron schedule's period varies)."""
    n = next_after(trigger, slot)
    return (n - slot).total_seconds() if n else float("inf")


def grace_for(schedule: Schedule) -> int:
    trig = trigger_for(schedule)
    now = datetime.now(UTC)
    first = next_after(trig, now)
    period = period_at(trig, first) if first else MAX_GRACE_S * 2
    return max(1, min(MAX_GRACE_S, int(period // 2)))


def job_id(directory: str) -> str:
    return f"pull:{directory}"


class Scheduler:
    """The daemon's BackgroundScheduler; `job(directory, schedule)` is what each job calls."""

    def __init__(self, job: Callable[[str, Schedule], Any], *, max_workers: int = 16) -> None:
        self.job = job
        self.sched = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=max_workers)}
        )

    def apply(self, directories: Mapping[str, Any], *, run_now: bool = True) -> None:
        """Make the jobs match `directories` (pull ones): add new, reschedule changed, drop gone.
        A new or rescheduled directory also runs at once when `run_now` (start-up, reload), as
        a one-off job of its own: a start-up run that lasts into the next slot must not make
        the grid job skip that slot (`max_instances=1`)."""
        wanted = {job_id(n): (n, d) for n, d in directories.items() if getattr(d, "kind", "scim") != "scim"}
        for job in self.sched.get_jobs():
            if job.id.removesuffix(_NOW) not in wanted:
                job.remove()
                log.info("job removed", extra={"job": job.id})
        now = datetime.now(UTC)
        for jid, (name, d) in wanted.items():
            existing = self.sched.get_job(jid)
            if existing is not None and existing.kwargs.get("schedule") == d.schedule:
                continue
            kwargs = {"directory": name, "schedule": d.schedule}
            grace = grace_for(d.schedule)
            self.sched.add_job(
                self.job,
                trigger=trigger_for(d.schedule),
                kwargs=kwargs,
                id=jid,
                name=jid,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace,
            )
            if run_now:
                self.sched.add_job(
                    self.job,
                    trigger=DateTrigger(run_date=now, timezone=UTC),
                    kwargs=kwargs,
                    id=jid + _NOW,
                    name=jid + _NOW,
                    replace_existing=True,
                    misfire_grace_time=grace,
                )
            log.info("job scheduled", extra={"job": jid, "schedule": str(d.schedule)})

    def next_run(self, directory: str) -> datetime | None:
        job = self.sched.get_job(job_id(directory))
        return job.next_run_time if job is not None else None

    def start(self) -> None:
        self.sched.start()

    def pause(self) -> None:
        """Fire nothing more (running jobs go on)."""
        if self.sched.running:
            self.sched.pause()

    def shutdown(self) -> None:
        if self.sched.running:
            self.sched.shutdown(wait=False)
