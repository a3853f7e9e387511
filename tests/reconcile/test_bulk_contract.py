"""Contract of the pull's write path: `apply_plan` (bulk statements, large-cache transactions,
member batches) leaves the store exactly as applying the same plan through the per-row
service operations does: same users, emails, teams, memberships, versions, member counts,
audit events, change-feed rows, and the same answers to "when did this user join that team?".
Run on SQLite and PostgreSQL.

Two directories are synced from the same snapshots: "bulk" through `apply_plan`, "row" through
`per_row` below (the service's one-object-at-a-time operations, in apply's order). Their
contents are then compared with ids replaced by names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from syncd.reconcile import apply as apply_mod
from syncd.reconcile.apply import _update_ops, apply_plan, user_body
from syncd.reconcile.diff import diff
from syncd.reconcile.load import load_view
from syncd.reconcile.plan import Plan
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser
from syncd.service import audit, bulk, pg_fk, pg_rebuild, teams, tokens, users
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.store import session_scope
from syncd.store.models import Change, Team, User
from tests.service.test_bulk import state

N_USERS = 60

#: The (user, team) index of this test's store (its schema only: a database may hold others).
_USER_INDEX = text(
    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_memberships_user' "
    "AND schemaname = current_schema()"
)


def snapshot(directory: str, round_: int) -> Snapshot:
    """Round 0: the first pull. Round 1: renames, (de/re)activations, member moves, a group
    renamed, one gone, one new."""
    us: dict[str, SnapshotUser] = {}
    for i in range(N_USERS):
        u = SnapshotUser(
            f"u{i}",
            f"user{i}@example.com",
            active=i % 7 != 0,
            email=f"user{i}@example.com" if i % 5 else None,
            display_name=f"User {i}" if i % 3 else None,
            given_name="Ann" if i % 2 else None,
            family_name=f"Doe{i}",
        )
        if round_ == 1 and i % 4 == 0:
            u = replace(u, family_name=f"Renamed{i}", active=not u.active)
        if round_ == 1 and i == 1:
            u = replace(u, email=None, given_name=None)
        us[u.external_id] = u
    if round_ == 1:
        del us["u59"]
        us["new"] = SnapshotUser("new", "new@example.com", email="new@example.com")
    groups: dict[str, SnapshotGroup] = {}
    for g in range(6):
        members = {f"u{i}" for i in range(N_USERS) if i % (g + 2) == 0}
        if round_ == 1:
            members = (members - {f"u{g}", "u59"}) | {f"u{g + 10}", "new"}
        name = f"Team {g}" + (" renamed" if round_ == 1 and g == 1 else "")
        groups[f"g{g}"] = SnapshotGroup(f"g{g}", name, frozenset(members))
    if round_ == 1:
        del groups["g5"]
        groups["g9"] = SnapshotGroup("g9", "Team 9", frozenset({"u3", "new"}))
    return Snapshot(directory, users=us, groups=groups)


def actor(directory: str) -> Actor:
    return Actor("pull", directory, "contract", sync_run_id=None)


def plan_for(engine: Engine, snap: Snapshot) -> Plan:
    with session_scope(engine, write=False) as s:
        view = load_view(s, snap.directory)
    return diff(snap, view)


def per_row(engine: Engine, plan: Plan, a: Actor) -> None:
    """The plan through the per-row service operations, in apply's order, one transaction."""

    def ids(s: Any, model: Any) -> dict[str, str]:
        q = select(model.external_id, model.id).where(model.directory == a.directory)
        return dict(s.execute(q).tuples().all())

    with session_scope(engine) as s:
        for c in plan.users:
            if c.kind == "update_user":
                users.patch_user(
                    s, actor=a, user_id=ids(s, User)[c.external_id], operations=_update_ops(c.user)
                )
        for c in plan.users:
            if c.kind == "create_user":
                users.create_user(s, actor=a, body=user_body(c.user))
            elif c.kind == "reactivate_user":
                users.set_active(s, actor=a, user_id=ids(s, User)[c.external_id], active=True)
        for c in plan.teams:
            tid = ids(s, Team).get(c.external_id)
            if c.kind == "rename_team":
                op = {"op": "replace", "path": "displayName", "value": c.display_name}
                teams.patch_team(s, actor=a, team_id=tid, operations=[op])
        for c in plan.teams:
            tid = ids(s, Team).get(c.external_id)
            if c.kind == "create_team":
                teams.create_team(
                    s, actor=a, body={"displayName": c.display_name, "externalId": c.external_id}
                )
            elif c.kind == "restore_team":
                teams.set_archived(s, actor=a, team_id=tid, archived=False)
        uids, tids = ids(s, User), ids(s, Team)
        for kind in ("add_members", "remove_members"):
            for m in plan.members:
                if m.kind == kind:
                    who = [uids[u] for u in m.user_external_ids if u in uids]
                    arg = {"add": who} if kind == "add_members" else {"remove": who}
                    teams.change_members(s, actor=a, team_id=tids[m.team_external_id], **arg)
        for c in plan.users:
            if c.kind == "deactivate_user":
                users.set_active(s, actor=a, user_id=uids[c.external_id], active=False)
        for c in plan.teams:
            if c.kind == "archive_team":
                teams.set_archived(s, actor=a, team_id=tids[c.external_id], archived=True)


def _unordered(v: Any) -> Any:
    """`v` with the member lists of audit events and feed rows sorted: the per-row removal lists
    its members in the order the store returned them (PostgreSQL: not the order given)."""
    if isinstance(v, dict):
        return {k: sorted(x) if k.startswith("members") else _unordered(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return type(v)(_unordered(x) for x in v)
    return v


def contents(engine: Engine, directory: str) -> dict[str, Any]:
    """`tests.service.test_bulk.state`, member lists compared as sets."""
    st = state(engine, directory)
    st["audit"] = sorted(repr(_unordered(ast.literal_eval(e))) for e in st["audit"])
    return st


def feed_rows(engine: Engine, directory: str) -> list[tuple[Any, ...]]:
    """The directory's change-feed rows, ids replaced by names, in feed order per resource."""
    with session_scope(engine, write=False) as s:
        names = dict(s.execute(select(User.id, User.user_name).where(User.directory == directory)).all())
        names |= dict(s.execute(select(Team.id, Team.display_name).where(Team.directory == directory)).all())
        rows = s.execute(select(Change).where(Change.directory == directory).order_by(Change.id)).scalars()

        def named(v: Any) -> Any:
            if isinstance(v, str):
                return names.get(v, v)
            if isinstance(v, list):
                return [named(x) for x in v]
            if isinstance(v, dict):
                return {k: named(x) for k, x in v.items()}
            return v

        return sorted(
            repr(_unordered((r.kind, r.resource_type, named(r.resource_id), r.name, named(r.data), r.actor)))
            for r in rows
        )


def history(engine: Engine, directory: str, team: str, user: str) -> list[str]:
    with session_scope(engine, write=False) as s:
        tid = s.execute(
            select(Team.id).where(Team.directory == directory, Team.external_id == team)
        ).scalar_one()
        uid = s.execute(
            select(User.id).where(User.directory == directory, User.external_id == user)
        ).scalar_one()
        return [e.change for e in audit.membership_history(s, team_id=tid, user_id=uid)]


@pytest.fixture
def eng(engine: Engine) -> Engine:
    with session_scope(engine) as s:
        for d in ("bulk", "row"):
            tokens.ensure_directory(s, name=d, kind="graph")
    return engine


@pytest.mark.parametrize("fk_per_statement", [False, True], ids=["fk-per-row", "fk-per-statement"])
@pytest.mark.parametrize("member_batch", [7, 200_000])
def test_bulk_apply_and_per_row_operations_leave_identical_stores(
    eng: Engine, monkeypatch: pytest.MonkeyPatch, member_batch: int, fk_per_statement: bool
) -> None:
    # small batches split the users over transactions and make teams start new member batches
    monkeypatch.setattr(apply_mod, "BATCH", 13)
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", member_batch)
    # PostgreSQL: a new team's members by COPY, foreign keys checked per statement or per row
    if fk_per_statement and eng.dialect.name != "postgresql":
        pytest.skip("foreign keys are checked per statement on PostgreSQL only")
    monkeypatch.setattr(pg_fk, "MIN_ROWS", 1 if fk_per_statement else 10**9)
    paths: list[str] = []
    real = pg_fk.copy_checked
    monkeypatch.setattr(pg_fk, "copy_checked", lambda *a, **kw: paths.append(real(*a, **kw)) or paths[-1])
    for round_ in (0, 1):
        bulk_plan = plan_for(eng, snapshot("bulk", round_))
        row_plan = plan_for(eng, snapshot("row", round_))
        assert bulk_plan.counts() == row_plan.counts() and not bulk_plan.empty
        apply_plan(eng, bulk_plan, actor("bulk"))
        per_row(eng, row_plan, actor("row"))
        if member_batch >= 200_000:  # one member event per team and kind, as per-row gives
            assert contents(eng, "bulk") == contents(eng, "row")
        else:  # a team bigger than a batch gets a version and an event per batch; all else is equal
            b, r = contents(eng, "bulk"), contents(eng, "row")
            for st in (b, r):
                del st["audit"]
                st["teams"] = [t[:5] + t[6:] for t in st["teams"]]
            assert b == r
        if member_batch >= 200_000:
            assert feed_rows(eng, "bulk") == feed_rows(eng, "row")
    assert plan_for(eng, snapshot("bulk", 1)).empty and plan_for(eng, snapshot("row", 1)).empty
    if eng.dialect.name == "postgresql":  # the new teams' COPYs took the path under test
        assert paths and set(paths) == {"statement" if fk_per_statement else "row"}


def test_when_a_user_joined_and_left_a_team_is_answered_by_per_team_audit_events(eng: Engine) -> None:
    # u6 is in g0 (every 2nd user) from the first pull; round 1 drops u0 from g0, adds u10 (there
    # already) and "new"; then a third pull takes u6 out of g0.
    apply_plan(eng, plan_for(eng, snapshot("bulk", 0)), actor("bulk"))
    apply_plan(eng, plan_for(eng, snapshot("bulk", 1)), actor("bulk"))
    third = snapshot("bulk", 1)
    g0 = third.groups["g0"]
    third.groups["g0"] = replace(g0, member_ids=g0.member_ids - {"u6"})
    apply_plan(eng, plan_for(eng, third), actor("bulk"))
    assert history(eng, "bulk", "g0", "u6") == ["added", "removed"]
    assert history(eng, "bulk", "g0", "u0") == ["added", "removed"]
    assert history(eng, "bulk", "g0", "new") == ["added"]
    assert history(eng, "bulk", "g0", "u1") == []
    with session_scope(eng, write=False) as s:
        tid = s.execute(
            select(Team.id).where(Team.directory == "bulk", Team.external_id == "g0")
        ).scalar_one()
        uid = s.execute(
            select(User.id).where(User.directory == "bulk", User.external_id == "u6")
        ).scalar_one()
        joined, left = audit.membership_history(s, team_id=tid, user_id=uid)
    assert joined.at <= left.at and joined.audit_id < left.audit_id
    # the answer is the same as the per-row path's, which writes one event per member change
    per_row(eng, plan_for(eng, snapshot("row", 0)), actor("row"))
    per_row(eng, plan_for(eng, snapshot("row", 1)), actor("row"))
    third_row = snapshot("row", 1)
    third_row.groups["g0"] = replace(third_row.groups["g0"], member_ids=g0.member_ids - {"u6"})
    per_row(eng, plan_for(eng, third_row), actor("row"))
    for u in ("u6", "u0", "new", "u1", "u10"):
        assert history(eng, "row", "g0", u) == history(eng, "bulk", "g0", u)


def test_bulk_user_rows_are_what_normalising_the_body_gives(eng: Engine) -> None:
    from syncd.service.resource import normalize
    from syncd.service.schema import USER

    for u in snapshot("bulk", 0).users.values():
        body = user_body(u)
        assert bulk._canonical_user(body)
        assert normalize(USER, body) == body
    # bodies the shortcut cannot vouch for still go through normalisation
    assert not bulk._canonical_user({"userName": "a\x07b", "externalId": "x", "active": True})
    assert not bulk._canonical_user({"userName": "a", "active": "true"})
    assert not bulk._canonical_user({"userName": "a", "emails": [{"value": "a@x", "type": "work"}]})


def rebuilds_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each `pg_rebuild.memberships_rebuilt` of the test yields, in order."""
    taken: list[bool] = []
    real = pg_rebuild.memberships_rebuilt

    @contextmanager
    def spy(s: Any, rows: int) -> Iterator[bool]:
        with real(s, rows) as rebuilt:
            taken.append(rebuilt)
            yield rebuilt

    monkeypatch.setattr(pg_rebuild, "memberships_rebuilt", spy)
    return taken


def test_a_first_load_with_its_index_rebuilt_leaves_the_store_per_row_operations_leave(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: member adds that outnumber the stored memberships go in one transaction with
    the (user, team) index built at its end (`apply._first_load`), in groups of
    FIRST_LOAD_BATCH; the store is the per-row one, and the index is back as it was."""
    if eng.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", 7)  # more adds than a batch: not one transaction
    monkeypatch.setattr(apply_mod, "FIRST_LOAD_BATCH", 40)  # several groups; no team split
    monkeypatch.setattr(pg_rebuild, "MIN_ROWS", 1)
    taken = rebuilds_seen(monkeypatch)
    with eng.connect() as c:
        index = c.execute(_USER_INDEX).all()
    for round_ in (0, 1):
        bulk_plan = plan_for(eng, snapshot("bulk", round_))
        row_plan = plan_for(eng, snapshot("row", round_))
        applied = apply_plan(eng, bulk_plan, actor("bulk")).applied
        per_row(eng, row_plan, actor("row"))
        assert contents(eng, "bulk") == contents(eng, "row")
        assert feed_rows(eng, "bulk") == feed_rows(eng, "row")
        adds = sum(len(c.user_external_ids) for c in bulk_plan.members if c.kind == "add_members")
        assert applied["add_members"] == adds  # counted once, after the one commit
        # round 1 in batches large enough to split no team (its removals have no first load)
        monkeypatch.setattr(apply_mod, "MEMBER_BATCH", 200_000)
    assert taken == [True]  # round 0, into the empty table
    with eng.connect() as c:
        assert c.execute(_USER_INDEX).all() == index


def test_a_first_load_that_loses_a_race_is_written_in_batches(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent writer that wins against the one-transaction load (here: a Conflict from
    its first group) sends the adds down the batch path, which writes them all once."""
    if eng.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", 7)
    monkeypatch.setattr(pg_rebuild, "MIN_ROWS", 1)
    real = bulk.add_memberships
    lost: list[bool] = []

    def racing(s: Any, **kw: Any) -> Any:
        if pg_rebuild.team_order(s) and not lost:
            lost.append(True)
            raise Conflict("a concurrent writer got there first")
        return real(s, **kw)

    monkeypatch.setattr(bulk, "add_memberships", racing)
    taken = rebuilds_seen(monkeypatch)
    bulk_plan = plan_for(eng, snapshot("bulk", 0))
    row_plan = plan_for(eng, snapshot("row", 0))
    applied = apply_plan(eng, bulk_plan, actor("bulk")).applied
    per_row(eng, row_plan, actor("row"))
    assert lost == [True] and taken == [True]  # not tried again: the batches wrote it
    adds = sum(len(c.user_external_ids) for c in bulk_plan.members if c.kind == "add_members")
    assert applied["add_members"] == adds
    b, r = contents(eng, "bulk"), contents(eng, "row")
    for st in (b, r):  # batches of 7 give a big team a version and an event per batch
        del st["audit"]
        st["teams"] = [t[:5] + t[6:] for t in st["teams"]]
    assert b == r
