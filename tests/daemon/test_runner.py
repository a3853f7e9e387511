"""Pull runs in the daemon: slot claims between replicas, one run per directory, safe stops."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.base import Connector
from syncd.config import Schedule
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import AlreadyRunning, Runner
from syncd.reconcile.snapshot import Snapshot, SnapshotUser, UserGroups
from syncd.store import session_scope
from syncd.store.models import SyncRun, User
from tests.daemon.conftest import Env
from tests.daemon.helpers import runs


class Instant(Connector):
    """A connector answering a fixed snapshot; `gate` (if given) holds the fetch open."""

    kind = "graph"

    def __init__(
        self, directory: str, users: int = 3, gate: threading.Event | None = None, on_fetch: Any = None
    ) -> None:
        super().__init__(directory)
        self.users, self.gate, self.on_fetch = users, gate, on_fetch

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        import asyncio

        while self.gate is not None and not self.gate.is_set():
            await asyncio.sleep(0.01)
        if self.on_fetch:
            self.on_fetch()
        users = {f"u{i}": SnapshotUser(f"u{i}", f"user{i}@example.com") for i in range(self.users)}
        return Snapshot(self.directory, users=users)

    async def user_groups(self, user: str) -> UserGroups:
        return UserGroups(self.directory, None)


def runner(env: Env, factory: Any) -> Runner:
    return Runner(env.engine, lambda: env.settings, Metrics(), connector_factory=factory)


def test_two_replicas_firing_for_one_slot_run_it_once(env: Env) -> None:
    gate = threading.Event()
    a = runner(env, lambda name, _d: Instant(name, gate=gate))
    b = runner(env, lambda name, _d: Instant(name, gate=gate))
    every = Schedule.parse("1h")
    threads = [threading.Thread(target=r.scheduled, args=("entra", every)) for r in (a, b)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    # and a replica that fires late for the same slot (after the run ended) finds it taken
    runner(env, lambda name, _d: Instant(name)).scheduled("entra", every)
    rows = runs(env.engine, "entra", "schedule")
    assert [r.outcome for r in rows] == ["applied"]


def test_the_next_slot_runs_again(env: Env) -> None:
    r = runner(env, lambda name, _d: Instant(name))
    r.scheduled("entra", Schedule.parse("1h"))
    with session_scope(env.engine) as s:  # pretend the first run was in the previous slot
        row = s.execute(select(SyncRun)).scalars().one()
        row.started_at = datetime(2000, 1, 1, tzinfo=UTC)
    r.scheduled("entra", Schedule.parse("1h"))
    assert len(runs(env.engine, "entra", "schedule")) == 2


def test_a_second_trigger_while_one_runs_is_refused(env: Env) -> None:
    gate = threading.Event()
    r = runner(env, lambda name, _d: Instant(name, gate=gate))
    first = r.trigger("entra")
    first.started.wait(30)
    try:
        r.trigger("entra")
        raise AssertionError("a second trigger was accepted")
    except AlreadyRunning as exc:
        assert exc.handle is first
    finally:
        gate.set()
    first.done.wait(30)
    assert first.result is not None and first.result.outcome == "applied"
    assert len(runs(env.engine, "entra")) == 1


def test_stopping_during_a_fetch_abandons_it_with_nothing_written(env: Env) -> None:
    gate = threading.Event()  # never opened: the fetch hangs until the stop
    r = runner(env, lambda name, _d: Instant(name, gate=gate))
    h = r.trigger("entra")
    assert h.started.wait(30)
    assert r.shutdown(timeout=30)
    assert h.result is not None and h.result.outcome == "abandoned"
    (row,) = runs(env.engine, "entra")
    assert row.outcome == "abandoned" and row.ended_at is not None
    with session_scope(env.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_stopping_during_apply_stops_between_batches(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from syncd.reconcile import apply

    batch = 500
    monkeypatch.setattr(apply, "BATCH", batch)
    holder: dict[str, Runner] = {}
    r = runner(env, lambda name, _d: Instant(name, users=batch * 2 + 1, on_fetch=holder["r"].stop.set))
    holder["r"] = r
    h = r.trigger("entra")
    assert h.done.wait(60)
    assert h.result is not None and h.result.outcome == "abandoned"
    (row,) = runs(env.engine, "entra")
    assert row.outcome == "abandoned" and row.ended_at is not None
    with session_scope(env.engine, write=False) as s:
        written = s.execute(select(func.count()).select_from(User)).scalar_one()
    # whole batches only, and not all of them: one on SQLite; on PostgreSQL a pull's user creates
    # run on two connections (`parallel_members`), each of which stops after its current batch
    assert written in ({batch, batch * 2} if env.engine.dialect.name == "postgresql" else {batch}), written


def test_a_run_left_running_by_a_dead_process_is_marked_abandoned(env: Env) -> None:
    with session_scope(env.engine) as s:
        from syncd.service import tokens

        tokens.ensure_directory(s, name="entra", kind="graph")
        s.add(SyncRun(directory="entra", trigger="schedule"))
    r = runner(env, lambda name, _d: Instant(name))
    h = r.trigger("entra")
    assert h.done.wait(30)
    dead, fresh = runs(env.engine, "entra")
    assert dead.outcome == "abandoned" and dead.ended_at is not None
    assert fresh.outcome == "applied"
