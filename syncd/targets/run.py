"""One delivery pass of one target, as `push --once` and the daemon's worker run it.

Under the target's lock (the directory lock mechanism, keyed `target:NAME`, so one replica
delivers): a full reconcile when asked (`full`), on first connect (no cursor yet), when the
feed no longer holds the cursor, or when `full_reconcile` is due; then incremental delivery of
every change after the cursor. The feed's head is taken before a full reconcile reads the
store, and becomes the cursor if there was none, so nothing committed meanwhile is missed.

Failures are reported in the returned outcomes and in the target's state (`last_error`),
never raised: refused (401/403, licence) → "refused"; nothing answering, or throttling/5xx
past the retries → "unreachable"; a safety stop → "stopped" (nothing written).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from syncd import feed
from syncd.config.models import ScimTarget
from syncd.store.locks import LockBusy, directory_lock
from syncd.targets import state as st
from syncd.targets.client import ScimClient
from syncd.targets.deliver import deliver
from syncd.targets.errors import Refused, TargetError
from syncd.targets.reconcile import Outcome, full_reconcile
from syncd.targets.safety import TargetSafetyStop


def make_client(
    settings: ScimTarget,
    *,
    transport: httpx.BaseTransport | None = None,
    on_request: Callable[[str, str], None] | None = None,
    **kw: Any,
) -> ScimClient:
    return ScimClient(
        settings.url,
        settings.secret.reveal(),
        transport=transport,
        timeout=float(settings.timeout),
        on_request=on_request,
        max_connections=max(4, settings.concurrency * 2),
        **kw,
    )


def lock_key(name: str) -> str:
    return f"target:{name}"


def full_due(settings: ScimTarget, last_full_at: datetime | None, *, now: datetime | None = None) -> bool:
    """Whether the target's `full_reconcile` schedule has fired since `last_full_at`."""
    if last_full_at is None:
        return True
    now = now or datetime.now(UTC)
    last = last_full_at if last_full_at.tzinfo else last_full_at.replace(tzinfo=UTC)
    sched = settings.full_reconcile
    if sched.interval is not None:
        return (now - last).total_seconds() >= sched.interval
    from datetime import timedelta

    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(sched.cron or "", timezone="UTC")
    fire = trigger.get_next_fire_time(None, last + timedelta(seconds=1))
    return fire is not None and fire <= now


class _Outcomes(list[Outcome]):
    """Outcomes of one pass, each stamped with its share of the client's request counts."""

    def __init__(self, client: ScimClient) -> None:
        super().__init__()
        self.client = client
        self.seen: tuple[int, int, Counter[str]] = (0, 0, Counter())

    def append(self, o: Outcome) -> None:
        stats = self.client.stats
        requests, writes, by_status = self.seen
        o.requests, o.writes = stats.requests - requests, stats.writes - writes
        o.by_status = dict(stats.by_status - by_status)
        self.seen = (stats.requests, stats.writes, Counter(stats.by_status))
        super().append(o)


def push_once(
    engine: Engine,
    name: str,
    settings: ScimTarget,
    *,
    full: bool = False,
    dry_run: bool = False,
    allow_deletes: bool = False,
    lock_dir: Path | None = None,
    client: ScimClient | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    max_pages: int | None = None,
) -> list[Outcome]:
    own = client is None
    client = client or make_client(settings)
    outcomes: list[Outcome] = _Outcomes(client)
    try:
        with directory_lock(engine, lock_key(name), lock_dir=lock_dir):
            _pass(
                engine,
                name,
                settings,
                client,
                outcomes,
                full=full,
                dry_run=dry_run,
                allow_deletes=allow_deletes,
                on_progress=on_progress,
                max_pages=max_pages,
            )
    except LockBusy as exc:
        outcomes.append(Outcome(name, "incremental", outcome="busy", error=str(exc)))
    finally:
        if own:
            client.close()
    return outcomes


def _pass(
    engine: Engine,
    name: str,
    settings: ScimTarget,
    client: ScimClient,
    outcomes: list[Outcome],
    *,
    full: bool,
    dry_run: bool,
    allow_deletes: bool,
    on_progress: Any,
    max_pages: int | None,
) -> None:
    state = st.get_state(engine, name)
    mode = "full"
    try:
        if dry_run:
            outcomes.append(
                full_reconcile(
                    engine,
                    name,
                    settings,
                    client,
                    dry_run=True,
                    allow_deletes=allow_deletes,
                    on_progress=on_progress,
                )
            )
            return
        stale = False
        if state.position is not None:
            try:
                feed.read(engine, after=state.position, limit=1)
            except feed.FeedGone:
                stale = True
        if full or stale or state.position is None or full_due(settings, state.last_full_at):
            head = feed.head(engine)
            outcomes.append(
                full_reconcile(
                    engine, name, settings, client, allow_deletes=allow_deletes, on_progress=on_progress
                )
            )
            if state.position is None or stale:
                st.update_state(engine, name, position=head)
        mode = "incremental"
        outcomes.append(deliver(engine, name, settings, client, on_progress=on_progress, max_pages=max_pages))
    except TargetSafetyStop as exc:
        outcomes.append(Outcome(name, mode, outcome="stopped", plan=exc.plan, error=str(exc)))
        st.note_error(engine, name, f"safety stop: {exc}")
    except TargetError as exc:
        outcomes.append(
            Outcome(
                name,
                mode,
                outcome="refused" if isinstance(exc, Refused) else "unreachable",
                error=exc.message,
            )
        )
        st.note_error(engine, name, exc.message)
    for o in outcomes:
        if o.errors and o.outcome == "applied":
            st.note_error(engine, name, o.errors[0])
