"""The daemon keeps one connector per directory: built once, reused by every run on one event
loop, rebuilt when the directory's settings change or after a failed run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from connectors.base import UnavailableError
from syncd.config import Schedule
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.reconcile.snapshot import Snapshot
from syncd.store import session_scope
from syncd.store.models import SyncRun
from tests.daemon.conftest import Env, settings_for
from tests.daemon.helpers import runs
from tests.daemon.test_runner import Instant


class Counted(Instant):
    """Records the loop of every fetch and whether it was closed; `fail` makes fetches fail."""

    def __init__(self, directory: str, built: list[Counted]) -> None:
        super().__init__(directory)
        self.loops: list[int] = []
        self.closed = False
        self.fail = False
        built.append(self)

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        assert not self.closed, "a closed connector was used"
        self.loops.append(id(asyncio.get_running_loop()))
        if self.fail:
            raise UnavailableError("the IdP is down")
        return await super().snapshot(cursor=cursor, progress=progress)

    async def aclose(self) -> None:
        self.closed = True


def _runner(env: Env, built: list[Counted], settings: list[Any]) -> Runner:
    return Runner(
        env.engine, lambda: settings[0], Metrics(), connector_factory=lambda n, _d: Counted(n, built)
    )


def _forget_slot(env: Env) -> None:
    with session_scope(env.engine) as s:  # pretend earlier runs were in an earlier slot
        for row in s.execute(select(SyncRun)).scalars():
            row.started_at = datetime(2000, 1, 1, tzinfo=UTC)


def test_runs_of_a_directory_share_one_connector_on_one_loop(env: Env) -> None:
    built: list[Counted] = []
    r = _runner(env, built, [env.settings])
    try:
        for _ in range(2):
            r.scheduled("entra", Schedule.parse("1h"))
            _forget_slot(env)
        h = r.trigger("entra", dry_run=True)
        assert h.done.wait(30)
    finally:
        r.close()
    assert [row.outcome for row in runs(env.engine, "entra")] == ["applied", "applied", "planned"]
    (conn,) = built
    assert len(conn.loops) == 3 and len(set(conn.loops)) == 1
    assert conn.closed  # by close(), not between runs


def test_a_changed_directory_gets_a_new_connector_and_the_old_one_is_closed(env: Env) -> None:
    built: list[Counted] = []
    current = [env.settings]
    r = _runner(env, built, current)
    try:
        r.warm(env.settings.directories)
        r.trigger("entra").done.wait(30)
        r.reload(env.settings.directories)  # unchanged: kept
        assert len(built) == 1 and not built[0].closed
        changed = settings_for(env.engine, env.tmp, env.fakes.toml.replace('"3s"', '"4s"'))
        assert changed.directories["entra"] != env.settings.directories["entra"]
        current[0] = changed
        r.reload(changed.directories)
        assert built[0].closed
        assert r.trigger("entra").done.wait(30)
    finally:
        r.close()
    assert len(built) == 2 and len(built[1].loops) == 1


def test_a_failed_run_drops_its_connector(env: Env) -> None:
    built: list[Counted] = []
    r = _runner(env, built, [env.settings])
    try:
        r.warm(env.settings.directories)
        h = r.trigger("entra")
        assert h.done.wait(30) and h.result is not None and h.result.outcome == "applied"
        built[0].fail = True
        h = r.trigger("entra")
        assert h.done.wait(30) and h.result is not None and h.result.outcome == "failed"
        assert built[0].closed
        h = r.trigger("entra")
        assert h.done.wait(30) and h.result is not None and h.result.outcome == "applied"
    finally:
        r.close()
    assert len(built) == 2
