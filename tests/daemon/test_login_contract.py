"""The on-login sync (diff over a one-user scope, bulk writes) leaves the same store as the
per-row path (`login_per_row`), on SQLite and PostgreSQL: users, teams, versions, member
counts, memberships and their sources, audit events and change-feed rows, and the same answer.

Each case pulls the same IdP state into two directories, then gives the same user's groups to
the login service in one and to the per-row path in the other; rows are compared by external id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from connectors.base import Connector
from syncd.config import parse_config
from syncd.daemon.login import LoginService, _xact_lock
from syncd.reconcile.apply import apply_plan
from syncd.reconcile.diff import diff
from syncd.reconcile.load import load_view
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.service import teams as team_ops
from syncd.service import tokens
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Change, Membership, Team, User
from tests.daemon.login_per_row import sync_per_row

#: upper bound for a thread to reach the point a test waits for (not a timing assertion)
PATIENCE_S = 30.0
U1 = SnapshotUser("u1", "ada@x", email="ada@x", display_name="Ada")
U2 = SnapshotUser("u2", "bob@x", email="bob@x")
G = {
    "g1": SnapshotGroup("g1", "Eng"),
    "g2": SnapshotGroup("g2", "Ops"),
    "g3": SnapshotGroup("g3", "Sales"),
    "g4": SnapshotGroup("g4", "Blind"),
    "g5": SnapshotGroup("g5", "Legal"),
}
#: what the IdP held at the last pull: u1 in g1, g2, g4; u2 in g1, g3
PULLED = {"g1": {"u1", "u2"}, "g2": {"u1"}, "g3": {"u2"}, "g4": {"u1"}}

Setup = Callable[[Engine, str], None]


def pulled(groups: dict[str, set[str]], users: tuple[SnapshotUser, ...] = (U1, U2)) -> Setup:
    def setup(engine: Engine, d: str) -> None:
        snap = Snapshot(
            d,
            users={u.external_id: u for u in users},
            groups={e: replace(G[e], member_ids=frozenset(m)) for e, m in groups.items()},
        )
        with session_scope(engine, write=False) as s:
            plan = diff(snap, load_view(s, d))
        apply_plan(engine, plan, Actor("pull", d, d))

    return setup


def then(*steps: Setup) -> Setup:
    def setup(engine: Engine, d: str) -> None:
        for step in steps:
            step(engine, d)

    return setup


def manual(team: str, user: str) -> Setup:
    def setup(engine: Engine, d: str) -> None:
        with session_scope(engine) as s:
            actor = Actor("manual", d, "admin")
            uid = s.execute(select(User.id).where(User.directory == d, User.external_id == user)).scalar_one()
            t = team_ops.find_team(s, actor=actor, external_id=team)
            assert t is not None
            team_ops.change_members(s, actor=actor, team_id=t.id, add=[uid])

    return setup


def nothing(engine: Engine, d: str) -> None:
    pass


def ug(user: SnapshotUser, *groups: SnapshotGroup | str, **kw: Any) -> Callable[[str], UserGroups]:
    gs = tuple(G[g] if isinstance(g, str) else g for g in groups)
    return lambda d: UserGroups(d, user, gs, **kw)


CASES: dict[str, tuple[Setup, Callable[[str], UserGroups]]] = {
    "new user, nothing stored": (nothing, ug(U1, "g1", "g2", "g4")),
    "new user, some teams stored": (pulled({"g1": {"u2"}, "g3": {"u2"}}, (U2,)), ug(U1, "g1", "g2")),
    "user gains groups": (pulled(PULLED), ug(U1, "g1", "g2", "g3", "g4", "g5")),
    "user loses groups, manual and unseen kept": (
        then(pulled(PULLED), manual("g3", "u1")),
        ug(U1, "g1", unseen=frozenset({"g4"})),
    ),
    "renamed group": (pulled(PULLED), ug(U1, SnapshotGroup("g1", "Engineering"), "g2", "g4")),
    "disabled user": (pulled(PULLED), ug(replace(U1, active=False), "g1", "g2", "g3", "g4")),
    "new disabled user": (nothing, ug(replace(U1, active=False), "g1")),
    "no change": (pulled(PULLED), ug(U1, "g1", "g2", "g4")),
    "archived team comes back": (then(pulled(PULLED), pulled({"g1": {"u1", "u2"}})), ug(U1, "g1", "g2")),
    "new group named as a stored one": (pulled(PULLED), ug(U1, "g1", "g2", "g4", SnapshotGroup("g6", "Eng"))),
    "incomplete lookup removes nothing": (pulled(PULLED), ug(U1, "g1", complete=False)),
}


class Answer(Connector):
    kind = "graph"

    def __init__(self, directory: str, answer: UserGroups) -> None:
        super().__init__(directory)
        self.answer = answer

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        raise NotImplementedError

    async def user_groups(self, user: str) -> UserGroups:
        return self.answer


def store_of(engine: Engine, d: str) -> dict[str, Any]:
    """The directory's rows with local ids replaced by external ids (`@ext`), timestamps dropped."""
    with session_scope(engine, write=False) as s:
        users = s.execute(select(User).where(User.directory == d)).scalars().all()
        teams = s.execute(select(Team).where(Team.directory == d)).scalars().all()
        ext = {u.id: f"@{u.external_id}" for u in users} | {t.id: f"@{t.external_id}" for t in teams}

        def local(v: Any) -> Any:
            if isinstance(v, str):
                return ext.get(v, v)
            if isinstance(v, list):
                return [local(x) for x in v]
            if isinstance(v, dict):
                return {k: local(x) for k, x in v.items()}
            return v

        members = s.execute(
            select(Membership.team_id, Membership.user_id, Membership.source).where(Membership.directory == d)
        ).all()
        audit = s.execute(select(AuditEvent).where(AuditEvent.directory == d)).scalars().all()
        feed = s.execute(select(Change).where(Change.directory == d)).scalars().all()
        return {
            "users": sorted((u.external_id, u.user_name, u.active, u.version, local(u.data)) for u in users),
            "teams": sorted(
                (t.external_id, t.display_name, t.archived, t.version, t.member_count, t.data) for t in teams
            ),
            "members": sorted((local(t), local(u), src) for t, u, src in members),
            "audit": sorted(
                repr((a.actor.split(":")[0], a.action, local(a.resource_id), local(a.before), local(a.after)))
                for a in audit
            ),
            "feed": sorted(
                repr((c.actor.split(":")[0], c.kind, local(c.resource_id), c.name, local(c.data)))
                for c in feed
            ),
        }


@pytest.mark.parametrize("case", list(CASES))
def test_the_login_leaves_the_store_the_per_row_path_leaves(
    engine: Engine, tmp_path: Path, case: str
) -> None:
    setup, answer = CASES[case]
    fast, rows = "fast", "rows"
    for d in (fast, rows):
        with session_scope(engine) as s:
            tokens.ensure_directory(s, name=d, kind="graph")
        setup(engine, d)
    settings = parse_config(
        f'state_dir = "{tmp_path}"\n[directories.{fast}]\nkind = "graph"\ntenant_id = "t"\n'
        'client_id = "c"\nclient_secret = "s"\n'
    )
    svc = LoginService(
        engine, lambda: settings, connector_factory=lambda name, d, **kw: Answer(name, answer(name))
    )
    try:
        r = svc.sync(fast, "u1")
    finally:
        svc.close()
    expected = sync_per_row(engine, rows, answer(rows))
    assert r.found and r.error is None
    got = {
        "created": sorted(t["external_id"] for t in r.created_teams),
        "added": sorted(t["external_id"] for t in r.added),
        "removed": sorted(t["external_id"] for t in r.removed),
        "teams": sorted(t["external_id"] or "" for t in r.teams),
    }
    assert got == expected
    assert store_of(engine, fast) == store_of(engine, rows)


def statements_of_a_login(engine: Engine, tmp_path: Path, d: str, answer: UserGroups) -> list[str]:
    settings = parse_config(
        f'state_dir = "{tmp_path}"\n[directories.{d}]\nkind = "graph"\ntenant_id = "t"\n'
        'client_id = "c"\nclient_secret = "s"\n'
    )
    svc = LoginService(
        engine, lambda: settings, connector_factory=lambda name, _d, **kw: Answer(name, answer)
    )
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert svc.sync(d, "u1").found
    finally:
        event.remove(engine, "before_cursor_execute", count)
        svc.close()
    return seen


def test_a_first_login_sends_as_many_statements_for_100_groups_as_for_3(
    engine: Engine, tmp_path: Path
) -> None:
    """Team creates, member adds, their audit events and feed rows: one statement each, whatever
    the number of groups (and a login that changes nothing writes none)."""
    sizes = {}
    for n in (3, 100):
        d = f"n{n}"
        gs = [SnapshotGroup(f"g{i}", f"group {i}") for i in range(n)]
        answer = UserGroups(d, U1, tuple(gs))
        sizes[n] = len(statements_of_a_login(engine, tmp_path, d, answer))
        with session_scope(engine, write=False) as s:
            assert (
                s.execute(select(func.count()).select_from(Team).where(Team.directory == d)).scalar_one() == n
            )
        again = statements_of_a_login(engine, tmp_path, d, answer)
        assert not [q for q in again if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert sizes[3] == sizes[100]


def test_an_unchanged_login_answers_while_a_writer_holds_the_store(engine: Engine, tmp_path: Path) -> None:
    """The common login only reads: it neither waits for another writer (SQLite: a pull's batch
    holds the write lock; PostgreSQL: another login of the user holds its lock) nor writes."""
    d = "held"
    answer = UserGroups(d, U1, (G["g1"], G["g2"]))
    statements_of_a_login(engine, tmp_path, d, answer)  # the first login writes
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with session_scope(engine) as s:
            _xact_lock(s, d, U1.external_id)
            tokens.ensure_directory(s, name=d, kind="graph")
            holding.set()
            assert release.wait(PATIENCE_S)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert holding.wait(PATIENCE_S)
        box: list[list[str]] = []
        login = threading.Thread(
            target=lambda: box.append(statements_of_a_login(engine, tmp_path, d, answer))
        )
        login.start()
        login.join(PATIENCE_S)
        assert box, "the login waited for the writer"
        assert not [q for q in box[0] if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    finally:
        release.set()
        t.join(PATIENCE_S)
