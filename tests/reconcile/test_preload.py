"""A full read's store view, loaded while the IdP is read, is the view a read after the fetch
would give: a write landing during the fetch is seen, an untouched directory is read once, and
a failed fetch leaves no reader behind. On SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.base import Connector, TransientError
from syncd.reconcile import preload as preload_mod
from syncd.reconcile.load import load_view
from syncd.reconcile.run import RunOptions, run_sync
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.service import teams
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User

#: upper bound for the preload thread to finish its read (not a timing assertion)
PATIENCE_S = 30.0


class DuringFetch(Connector):
    """The IdP at the network edge: waits until the store view has been read in the background,
    runs `meanwhile` (a write, a failure), then answers a fixed full snapshot."""

    kind = "graph"

    def __init__(self, snap: Snapshot, loaded: threading.Event, meanwhile: Any = None) -> None:
        super().__init__(snap.directory)
        self.snap, self.loaded, self.meanwhile = snap, loaded, meanwhile

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        assert self.loaded.wait(PATIENCE_S), "the view was not read during the fetch"
        if self.meanwhile is not None:
            self.meanwhile()
        return self.snap

    async def user_groups(self, user: str) -> UserGroups:
        raise NotImplementedError("not used by a pull")


def tenant(d: str) -> Snapshot:
    users = {f"u{i}": SnapshotUser(f"u{i}", f"u{i}@x", email=f"u{i}@x") for i in range(4)}
    groups = {
        "g1": SnapshotGroup("g1", "Eng", frozenset(users)),
        "g2": SnapshotGroup("g2", "Ops", frozenset({"u0"})),
    }
    return Snapshot(d, users=users, groups=groups)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[str]]:
    """(set once a view was read, the thread names of every view read)."""
    loaded, reads = threading.Event(), []

    def spy(session: Any, directory: str) -> Any:
        view = load_view(session, directory)
        reads.append(threading.current_thread().name)
        loaded.set()
        return view

    monkeypatch.setattr(preload_mod, "load_view", spy)
    return loaded, reads


def members(engine: Engine, d: str) -> set[tuple[str, str]]:
    with session_scope(engine, write=False) as s:
        q = (
            select(Team.external_id, User.external_id)
            .join(Membership, Membership.team_id == Team.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.directory == d)
        )
        return set(s.execute(q).tuples())


def initial(engine: Engine, snap: Snapshot, tmp_path: Any) -> None:
    loaded = threading.Event()
    loaded.set()
    r = run_sync(engine, DuringFetch(snap, loaded), RunOptions(lock_dir=tmp_path))
    assert r.outcome == "applied", r.error


def test_a_write_during_the_fetch_is_in_the_view_the_plan_is_made_against(
    engine: Engine, tmp_path: Any, counted: tuple[threading.Event, list[str]]
) -> None:
    d = f"d-{uuid.uuid4().hex[:10]}"
    snap = tenant(d)
    initial(engine, snap, tmp_path)
    loaded, reads = counted
    loaded.clear()
    reads.clear()

    def scim_removes_u1_from_eng() -> None:
        with session_scope(engine) as s:
            team = s.execute(
                select(Team.id).where(Team.directory == d, Team.external_id == "g1")
            ).scalar_one()
            user = s.execute(
                select(User.id).where(User.directory == d, User.external_id == "u1")
            ).scalar_one()
            teams.change_members(s, actor=Actor("scim", d, "t"), team_id=team, remove=[user])

    r = run_sync(engine, DuringFetch(snap, loaded, scim_removes_u1_from_eng), RunOptions(lock_dir=tmp_path))
    assert r.outcome == "applied", r.error
    # read in the background before the write, then again after it on the run's own thread
    assert len(reads) == 2 and reads[0].startswith("preload-") and not reads[1].startswith("preload-")
    assert r.plan is not None and [
        (c.kind, c.team_external_id, c.user_external_ids) for c in r.plan.members
    ] == [("add_members", "g1", ("u1",))]
    assert members(engine, d) == {("g1", u) for u in snap.users} | {("g2", "u0")}


def test_an_untouched_directory_is_read_once_in_the_background(
    engine: Engine, tmp_path: Any, counted: tuple[threading.Event, list[str]]
) -> None:
    d = f"d-{uuid.uuid4().hex[:10]}"
    snap = tenant(d)
    initial(engine, snap, tmp_path)
    loaded, reads = counted
    loaded.clear()
    reads.clear()
    r = run_sync(engine, DuringFetch(snap, loaded), RunOptions(lock_dir=tmp_path))
    assert r.outcome == "applied" and r.plan is not None and r.plan.empty
    assert len(reads) == 1 and reads[0].startswith("preload-")


def test_a_failed_fetch_leaves_no_preload_thread_behind(
    engine: Engine, tmp_path: Any, counted: tuple[threading.Event, list[str]]
) -> None:
    d = f"d-{uuid.uuid4().hex[:10]}"
    loaded, _ = counted

    def idp_down() -> None:
        raise TransientError("IdP down")

    r = run_sync(engine, DuringFetch(tenant(d), loaded, idp_down), RunOptions(lock_dir=tmp_path))
    assert r.outcome == "failed" and r.unreachable
    assert not [t for t in threading.enumerate() if t.name == f"preload-{d}"]
