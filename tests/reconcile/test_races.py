"""A pull's apply and an on-login sync writing the same user and team, on SQLite and PostgreSQL.

The plan is computed before apply; a login may create a user or team the plan creates, between
plan and apply, at a batch boundary, or (PostgreSQL) inside the other's open transaction. Both
must converge: apply adopts the row (same directory and externalId) and brings it to the plan's
values, the login adopts the pull's row, and a failed run records what it wrote.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from connectors.base import Connector
from syncd.config import parse_config
from syncd.daemon.login import LoginService
from syncd.daemon.metrics import Metrics
from syncd.reconcile import apply as apply_mod
from syncd.reconcile import parallel_members
from syncd.reconcile.apply import apply_plan
from syncd.reconcile.diff import diff
from syncd.reconcile.load import load_view
from syncd.reconcile.plan import Plan
from syncd.reconcile.run import RunOptions, run_sync
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.service import bulk, tokens
from syncd.service.context import Actor
from syncd.service.errors import InvalidValue
from syncd.store import session_scope
from syncd.store.models import Membership, SyncRun, Team, User

#: upper bound for a thread to reach the point a test waits for (not a timing assertion)
PATIENCE_S = 30.0


class StubIdP(Connector):
    """The IdP at the network edge: a fixed snapshot, and each user's groups from it."""

    kind = "graph"

    def __init__(self, snap: Snapshot) -> None:
        super().__init__(snap.directory)
        self.snap = snap

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        return self.snap

    async def user_groups(self, user: str) -> UserGroups:
        u = next((u for u in self.snap.users.values() if user in (u.external_id, u.user_name)), None)
        groups = tuple(g for g in self.snap.groups.values() if u and u.external_id in g.member_ids)
        return UserGroups(self.directory, u, groups)


def idp_state(d: str, n_users: int = 6) -> Snapshot:
    users = {
        f"u{i}": SnapshotUser(f"u{i}", f"u{i}@x", email=f"u{i}@x", display_name=f"U {i}")
        for i in range(n_users)
    }
    groups = {
        "g1": SnapshotGroup("g1", "Eng", frozenset(users)),
        "g2": SnapshotGroup("g2", "Ops", frozenset({"u0", "u5"})),
    }
    return Snapshot(d, users=users, groups=groups)


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, Snapshot, LoginService]]:
    """A fresh directory (a unique name: advisory-lock keys are database-wide), its IdP state,
    and an on-login sync service reading that state."""
    d = f"d-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=d, kind="graph")
    snap = idp_state(d)
    url = engine.url.render_as_string(hide_password=False)
    settings = parse_config(
        f'state_dir = "{tmp_path}"\n[store]\nurl = "{url}"\n'
        f'[directories.{d}]\nkind = "graph"\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\n'
    )
    svc = LoginService(engine, lambda: settings, connector_factory=lambda *_a, **_k: StubIdP(snap))
    yield engine, snap, svc
    svc.close()


def plan_for(engine: Engine, snap: Snapshot) -> Plan:
    with session_scope(engine, write=False) as s:
        return diff(snap, load_view(s, snap.directory))


def pull(snap: Snapshot) -> Actor:
    return Actor("pull", snap.directory, snap.directory)


def assert_store_is(engine: Engine, snap: Snapshot) -> None:
    d = snap.directory
    with session_scope(engine, write=False) as s:
        users = dict(
            s.execute(select(User.external_id, User.user_name).where(User.directory == d)).tuples().all()
        )
        teams = dict(
            s.execute(select(Team.external_id, Team.display_name).where(Team.directory == d)).tuples().all()
        )
        members = set(
            s.execute(
                select(Team.external_id, User.external_id)
                .join(Membership, Membership.team_id == Team.id)
                .join(User, User.id == Membership.user_id)
                .where(Membership.directory == d)
            ).tuples()
        )
        counts = dict(
            s.execute(select(Team.external_id, Team.member_count).where(Team.directory == d)).tuples().all()
        )
    assert users == {e: u.user_name for e, u in snap.users.items()}
    assert teams == {e: g.display_name for e, g in snap.groups.items()}
    assert members == {(g.external_id, u) for g in snap.groups.values() for u in g.member_ids}
    assert counts == {e: len(g.member_ids) for e, g in snap.groups.items()}
    assert plan_for(engine, snap).empty


def test_a_login_between_plan_and_apply_is_adopted(world: Any) -> None:
    engine, snap, logins = world
    plan = plan_for(engine, snap)
    r = logins.sync(snap.directory, "u5@x")  # creates u5, Eng and Ops, and u5's memberships
    assert r.found and {t["external_id"] for t in r.created_teams} == {"g1", "g2"}
    applied = apply_plan(engine, plan, pull(snap)).applied
    assert applied == {"create_user": 6, "create_team": 2, "add_members": 6}  # 8 planned, 2 there
    assert_store_is(engine, snap)


def test_a_login_at_a_batch_boundary_is_adopted(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply is held after its first batch of users (in a thread, as the daemon's login would
    run); the login creates a user of a later batch and both teams the plan creates."""
    engine, snap, logins = world
    monkeypatch.setattr(apply_mod, "BATCH", 2)
    # one connection, so that every later batch is held back (on PostgreSQL user creates are
    # split over connections, each share running these same batches)
    monkeypatch.setattr(parallel_members, "run", functools.partial(parallel_members.run, workers=1))
    plan = plan_for(engine, snap)
    seen: list[tuple[str, int, int]] = []

    def hold(phase: str, done: int, total: int) -> None:
        if not seen:
            box: list[Any] = []
            t = threading.Thread(target=lambda: box.append(logins.sync(snap.directory, "u5")))
            t.start()
            t.join(PATIENCE_S)
            assert box and box[0].found
        seen.append((phase, done, total))

    apply_plan(engine, plan, pull(snap), hold)
    assert_store_is(engine, snap)
    assert [d for p, d, _ in seen if p == "users"] == [2, 4, 6]


def backend_pid(s: Session) -> int:
    return s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def wait_until_blocked_by(engine: Engine, pid: int) -> None:
    """Until some other backend waits for a lock `pid` holds (the other writer reached it)."""
    deadline = time.monotonic() + PATIENCE_S
    with engine.connect() as c:
        while time.monotonic() < deadline:
            q = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
            if c.execute(q, {"pid": pid}).scalar_one():
                return
            c.rollback()
            time.sleep(0.02)
    raise AssertionError("the other writer never reached the lock")


def held_inside(target: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """Wrap `target.name` so that its first call, once done, publishes its backend pid and
    waits (its transaction still open) until the returned event is set."""
    real, release, pids = getattr(target, name), threading.Event(), []

    def wrapper(s: Session, *a: Any, **kw: Any) -> Any:
        out = real(s, *a, **kw)
        if not pids:
            s.flush()
            pids.append(backend_pid(s))
            assert release.wait(PATIENCE_S)
        return out

    monkeypatch.setattr(target, name, wrapper)
    return release, pids


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the test
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, box


def wait_for(pids: list[int]) -> int:
    deadline = time.monotonic() + PATIENCE_S
    while not pids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pids
    return pids[0]


def test_postgres_apply_inserting_a_user_a_login_holds_uncommitted_adopts_it(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, snap, logins = world
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers never interleave (the write lock is taken at BEGIN)")

    plan = plan_for(engine, snap)
    release, pids = held_inside(bulk, "join_teams", monkeypatch)  # the login's teams and memberships
    login, got = in_thread(lambda: logins.sync(snap.directory, "u5"))
    pid = wait_for(pids)
    pulled, result = in_thread(lambda: apply_plan(engine, plan, pull(snap)))
    wait_until_blocked_by(engine, pid)  # apply's INSERT waits on the login's uncommitted u5
    release.set()
    for t in (login, pulled):
        t.join(PATIENCE_S)
    assert not isinstance(result[0], BaseException), result[0]
    assert got[0].found
    assert_store_is(engine, snap)


def test_postgres_login_inserting_a_user_a_pull_holds_uncommitted_adopts_it(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, snap, logins = world
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers never interleave (the write lock is taken at BEGIN)")
    plan = plan_for(engine, snap)
    release, pids = held_inside(bulk, "create_users", monkeypatch)  # the pull's batch of users
    pulled, result = in_thread(lambda: apply_plan(engine, plan, pull(snap)))
    pid = wait_for(pids)
    login, got = in_thread(lambda: logins.sync(snap.directory, "u5"))
    wait_until_blocked_by(engine, pid)  # the login's INSERT waits on the pull's uncommitted u5
    release.set()
    for t in (login, pulled):
        t.join(PATIENCE_S)
    assert not isinstance(got[0], BaseException), got[0]  # before: StoreConflict (HTTP 409, exit 2)
    assert got[0].found and {t["external_id"] for t in got[0].teams} == {"g1", "g2"}
    assert not isinstance(result[0], BaseException), result[0]
    assert_store_is(engine, snap)


def test_a_failed_run_records_what_its_committed_batches_wrote(
    world: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine, snap, _ = world
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", 4)
    # one connection, so "the second batch" is one batch: with two (PostgreSQL's member phase
    # when the plan fills more than one batch) which batch fails first is up to the threads,
    # and the one that succeeded may be told to stop (tests/reconcile/test_parallel_members.py)
    serial = functools.partial(parallel_members.run, workers=1)
    monkeypatch.setattr(parallel_members, "run", serial)
    real, calls = bulk.add_memberships, []

    def failing(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise InvalidValue("refused")
        return real(*a, **kw)

    monkeypatch.setattr(bulk, "add_memberships", failing)
    r = run_sync(engine, StubIdP(snap), RunOptions(lock_dir=tmp_path))
    assert r.outcome == "failed" and "refused" in (r.error or "")
    written = {"create_user": 6, "create_team": 2, "add_members": 4}
    assert r.applied == written
    with session_scope(engine, write=False) as s:
        run = s.get(SyncRun, r.run_id)
        assert run is not None and run.counts == written  # not the plan's 8 member adds
    metrics = Metrics()
    metrics.record_run(r, "cli")  # the changes counter counts what was written, failed or not
    d = snap.directory
    assert metrics.changes.labels(d, "add_members")._value.get() == 4


def test_a_login_names_a_group_whose_name_another_team_holds_as_a_pull_would(world: Any) -> None:
    """Before, the login left such a group out ("another team has its name") until the next pull."""
    engine, snap, logins = world
    d = snap.directory
    only_g1 = Snapshot(d, users=snap.users, groups={"g1": snap.groups["g1"]})
    apply_plan(engine, plan_for(engine, only_g1), pull(snap))
    twin = Snapshot(
        d, users=snap.users, groups={**snap.groups, "g3": SnapshotGroup("g3", "Eng", frozenset({"u5"}))}
    )
    logins.connector_factory = lambda *_a, **_k: StubIdP(twin)
    r = logins.sync(d, "u5")
    assert [t["display_name"] for t in r.created_teams if t["external_id"] == "g3"] == ["Eng (g3)"]
    assert "g3" in {t["external_id"] for t in r.teams} and not r.notes
    plan = plan_for(engine, twin)
    assert [(t.kind, t.external_id, t.display_name) for t in plan.teams] == [
        ("rename_team", "g1", "Eng (g1)")
    ]
    apply_plan(engine, plan, pull(snap))
    assert plan_for(engine, twin).empty


def test_postgres_apply_whose_check_sees_a_login_that_committed_mid_batch_adopts_it(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL statements see rows committed after their transaction began: a login that
    commits between the batch's lookup and its uniqueness check makes the check fail (no unique
    index involved); the batch is tried again and adopts the row."""
    engine, snap, logins = world
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers never interleave (the write lock is taken at BEGIN)")
    plan = plan_for(engine, snap)
    real, reached, gate = bulk.create_users, threading.Event(), threading.Event()

    def paused(s: Session, **kw: Any) -> Any:
        if not reached.is_set():
            reached.set()
            assert gate.wait(PATIENCE_S)
        return real(s, **kw)

    monkeypatch.setattr(bulk, "create_users", paused)
    pulled, result = in_thread(lambda: apply_plan(engine, plan, pull(snap)))
    assert reached.wait(PATIENCE_S)
    assert logins.sync(snap.directory, "u5").found  # committed inside the pull's open batch
    gate.set()
    pulled.join(PATIENCE_S)
    assert not isinstance(result[0], BaseException), result[0]
    assert_store_is(engine, snap)


def test_postgres_login_whose_check_sees_a_pull_that_committed_mid_write_adopts_it(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, snap, logins = world
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers never interleave (the write lock is taken at BEGIN)")
    from syncd.service import users as user_ops

    real, reached, gate = user_ops.create_user, threading.Event(), threading.Event()

    def paused(s: Session, **kw: Any) -> Any:
        if not reached.is_set():
            reached.set()
            assert gate.wait(PATIENCE_S)
        return real(s, **kw)

    monkeypatch.setattr(user_ops, "create_user", paused)
    login, got = in_thread(lambda: logins.sync(snap.directory, "u5"))
    assert reached.wait(PATIENCE_S)  # the login looked u5 up and found none
    apply_plan(engine, plan_for(engine, snap), pull(snap))  # commits u5 (and everything else)
    gate.set()
    login.join(PATIENCE_S)
    assert not isinstance(got[0], BaseException), got[0]  # before: StoreConflict (HTTP 409, exit 2)
    assert got[0].found and {t["external_id"] for t in got[0].teams} == {"g1", "g2"}
    assert_store_is(engine, snap)
