"""apply_plan against a real store (SQLite and PostgreSQL): snapshot → load → diff → apply
converges in one pass, in any batch size, after a crash between batches, without touching
manual memberships or other directories."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from syncd.reconcile import apply as apply_mod
from syncd.reconcile.apply import apply_plan
from syncd.reconcile.diff import diff
from syncd.reconcile.load import load_view
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser
from syncd.service import bulk, teams, tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership, SyncRun, Team, User

D = "entra"
PULL = Actor("pull", D, D)


def su(ext: str, *, active: bool = True, family: str = "Doe", email: str | None = None) -> SnapshotUser:
    return SnapshotUser(ext, f"{ext}@x", active, email or f"{ext}@x", f"{ext} {family}", ext, family)


def snap(user_list: list[SnapshotUser], groups: dict[str, tuple[str, set[str]]]) -> Snapshot:
    return Snapshot(
        D,
        users={u.external_id: u for u in user_list},
        groups={g: SnapshotGroup(g, name, frozenset(m)) for g, (name, m) in groups.items()},
    )


def sync(engine: Engine, snapshot: Snapshot, actor: Actor = PULL, progress: Any = None) -> dict[str, int]:
    with session_scope(engine, write=False) as s:
        plan = diff(snapshot, load_view(s, D))
    return apply_plan(engine, plan, actor, progress).applied


def pending(engine: Engine, snapshot: Snapshot) -> dict[str, int]:
    with session_scope(engine, write=False) as s:
        return diff(snapshot, load_view(s, D)).counts()


def contents(engine: Engine, directory: str = D) -> dict[str, Any]:
    """The directory as external ids and values (no local ids, no timestamps)."""
    with session_scope(engine, write=False) as s:
        us = s.execute(select(User).where(User.directory == directory)).scalars().all()
        ts = s.execute(select(Team).where(Team.directory == directory)).scalars().all()
        ext = {u.id: u.external_id for u in us} | {t.id: t.external_id for t in ts}
        ms = s.execute(select(Membership).where(Membership.directory == directory)).scalars().all()
        return {
            "users": sorted(
                (u.external_id, u.user_name, u.display_name, u.family_name, u.active) for u in us
            ),
            "teams": sorted((t.external_id, t.display_name, t.archived, t.member_count) for t in ts),
            "members": sorted((ext[m.team_id], ext[m.user_id], m.source) for m in ms),
            "counts_ok": all(t.member_count == sum(m.team_id == t.id for m in ms) for t in ts),
        }


@pytest.fixture
def eng(engine: Engine) -> Engine:
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=D, kind="graph")
        tokens.ensure_directory(s, name="okta", kind="okta")
    return engine


BASE = (
    [su(f"u{i}") for i in range(8)],
    {"g1": ("Eng", {"u0", "u1", "u2"}), "g2": ("Ops", {"u2", "u3"}), "g3": ("Empty", set())},
)


def test_first_sync_creates_everything_and_converges(eng: Engine) -> None:
    s0 = snap(*BASE)
    applied = sync(eng, s0)
    assert applied == {"create_user": 8, "create_team": 3, "add_members": 5}
    c = contents(eng)
    assert [u[0] for u in c["users"]] == [f"u{i}" for i in range(8)]
    assert c["members"] == sorted(
        [
            ("g1", "u0", "pull"),
            ("g1", "u1", "pull"),
            ("g1", "u2", "pull"),
            ("g2", "u2", "pull"),
            ("g2", "u3", "pull"),
        ]
    )
    assert c["counts_ok"]
    assert pending(eng, s0) == {}
    assert sync(eng, s0) == {}  # a no-op re-sync writes nothing


def test_every_change_kind_converges_in_one_run(eng: Engine) -> None:
    sync(eng, snap(*BASE))
    with session_scope(eng, write=False) as s:
        versions = dict(s.execute(select(Team.external_id, Team.version)).tuples().all())
    u = [su(f"u{i}") for i in range(8)]
    u[1] = su("u1", family="Renamed", email="u1.new@x")
    u[2] = su("u2", active=False)
    del u[7]  # left scope: deactivated
    u.append(su("u8"))
    s1 = snap(u, {"g1": ("Engineering", {"u0", "u8"}), "g2": ("Ops", {"u2", "u3"}), "g4": ("New", {"u3"})})
    applied = sync(eng, s1)
    assert applied == {
        "create_user": 1,
        "update_user": 1,
        "deactivate_user": 2,
        "create_team": 1,
        "rename_team": 1,
        "archive_team": 1,
        "add_members": 2,
        "remove_members": 2,
    }
    assert pending(eng, s1) == {}
    c = contents(eng)
    by_ext = {x[0]: x for x in c["users"]}
    assert by_ext["u1"][3] == "Renamed" and not by_ext["u2"][4] and not by_ext["u7"][4]
    assert ("g3", "Empty", True, 0) in c["teams"] and ("g1", "Engineering", False, 2) in c["teams"]
    assert c["counts_ok"]
    with session_scope(eng, write=False) as s:
        after = dict(s.execute(select(Team.external_id, Team.version)).tuples().all())
    assert after["g2"] == versions["g2"]  # unchanged team keeps its version
    assert after["g1"] > versions["g1"]
    # a user who returns gets the old local id back
    with session_scope(eng, write=False) as s:
        old_id = s.execute(select(User.id).where(User.external_id == "u7")).scalar_one()
    sync(eng, snap([*u, su("u7")], {"g1": ("Engineering", {"u0", "u8", "u7"})}))
    with session_scope(eng, write=False) as s:
        row = s.execute(select(User).where(User.external_id == "u7")).scalar_one()
    assert (row.id, row.active) == (old_id, True)


def test_audit_events_belong_to_the_sync_run(eng: Engine) -> None:
    with session_scope(eng) as s:
        run = SyncRun(directory=D, trigger="test")
        s.add(run)
        s.flush()
        run_id = run.id
    sync(eng, snap(*BASE), Actor("pull", D, D, sync_run_id=run_id))
    with session_scope(eng, write=False) as s:
        rows = s.execute(select(AuditEvent.action, AuditEvent.sync_run_id)).all()
    assert {a for a, _ in rows} == {"user.create", "team.create", "team.members"}
    assert {r for _, r in rows} == {run_id}
    assert len(rows) == 8 + 3 + 2  # one per user, one per team, one per team whose members changed


def test_manual_memberships_and_other_directories_are_never_touched(eng: Engine) -> None:
    sync(eng, snap(*BASE))
    okta = Actor("scim", "okta", "t")
    with session_scope(eng) as s:
        ids = dict(s.execute(select(User.external_id, User.id).where(User.directory == D)).tuples().all())
        g1 = s.execute(select(Team.id).where(Team.external_id == "g1")).scalar_one()
        teams.change_members(s, actor=Actor("manual", D, "cli"), team_id=g1, add=[ids["u5"]])
        users.create_user(s, actor=okta, body={"userName": "u0@x", "externalId": "u0"})
        teams.create_team(s, actor=okta, body={"displayName": "Eng", "externalId": "g1"})
    other = contents(eng, "okta")
    s1 = snap(BASE[0], {"g1": ("Eng", set()), "g2": BASE[1]["g2"], "g3": BASE[1]["g3"]})
    sync(eng, s1)
    c = contents(eng)
    assert [m for m in c["members"] if m[0] == "g1"] == [("g1", "u5", "manual")]
    assert c["counts_ok"]
    assert contents(eng, "okta") == other


@pytest.mark.parametrize("batch,member_batch", [(1, 1), (3, 2), (1000, 1000)])
def test_batch_sizes_give_the_same_store(
    eng: Engine, monkeypatch: pytest.MonkeyPatch, batch: int, member_batch: int
) -> None:
    monkeypatch.setattr(apply_mod, "BATCH", batch)
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", member_batch)
    ticks: list[tuple[str, int, int]] = []
    applied = sync(eng, snap(*BASE), progress=lambda *a: ticks.append(a))
    assert applied == {"create_user": 8, "create_team": 3, "add_members": 5}
    assert contents(eng)["counts_ok"] and len(contents(eng)["members"]) == 5
    for phase, total in (("users", 8), ("teams", 3), ("members", 5)):
        done = [d for p, d, t in ticks if p == phase]
        assert done == sorted(done) and done[-1] == total
        assert all(t == total for p, _, t in ticks if p == phase)


def test_a_crash_between_batches_leaves_a_consistent_store_the_next_run_completes(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_mod, "MEMBER_BATCH", 2)
    real = bulk.add_memberships
    calls = {"n": 0}

    def failing(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(bulk, "add_memberships", failing)
    s0 = snap(*BASE)
    with pytest.raises(RuntimeError):
        sync(eng, s0)
    c = contents(eng)
    assert c["counts_ok"] and len(c["members"]) == 2  # the first batch is in, the failed one is not
    assert pending(eng, s0) == {"add_members": 3}
    monkeypatch.setattr(bulk, "add_memberships", real)
    assert sync(eng, s0) == {"add_members": 3}
    assert pending(eng, s0) == {}
    with session_scope(eng, write=False) as s:
        n_audit = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    # users, teams, and one member event per team per committed batch: a team's changes start
    # a new batch rather than share one they do not fit in: [g1 (2 of 3)], then [g1], [g2]
    assert n_audit == 8 + 3 + 1 + 2


def test_empty_plan_opens_no_transaction(eng: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    s0 = snap(*BASE)
    sync(eng, s0)

    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("no store access for an empty plan")

    monkeypatch.setattr(apply_mod, "session_scope", boom)
    assert sync(eng, s0) == {}


def test_a_group_recreated_under_the_name_of_one_that_left_is_created_beside_it(eng: Engine) -> None:
    """The team of a group that left scope is archived, not deleted: it keeps its name, so a new
    group of the same name (deleted and recreated in the IdP: a new object id) must not fail the
    run on the name, in this run or the next."""
    sync(eng, snap(BASE[0], {"g1": ("Eng", {"u0"})}))
    s1 = snap(BASE[0], {"g9": ("Eng", {"u0"})})
    assert sync(eng, s1) == {"create_team": 1, "archive_team": 1, "add_members": 1, "remove_members": 1}
    assert ("g1", "Eng", True, 0) in contents(eng)["teams"]
    assert ("g9", "Eng (g9)", False, 1) in contents(eng)["teams"]
    assert pending(eng, s1) == {}


def test_a_user_whose_email_the_idp_dropped_converges(eng: Engine) -> None:
    sync(eng, snap(*BASE))
    u = list(BASE[0])
    u[0] = SnapshotUser("u0", "u0@x", True, None, "u0 Doe", "u0", "Doe")
    s1 = snap(u, BASE[1])
    assert pending(eng, s1) == {"update_user": 1}
    assert sync(eng, s1) == {"update_user": 1}
    assert pending(eng, s1) == {}
    assert sync(eng, snap(*BASE)) == {"update_user": 1}  # and one the IdP gives back
    assert pending(eng, snap(*BASE)) == {}


def test_a_new_user_under_the_user_name_a_departed_user_still_holds_does_not_fail_the_run(
    eng: Engine,
) -> None:
    """A deactivated user keeps its userName; a new IdP object reusing it (deleted and
    recreated) is left out with a note instead of failing every run of the directory."""
    sync(eng, snap(*BASE))
    u = [*BASE[0][1:], SnapshotUser("u9", "U0@x", True, "u9@x")]
    s1 = snap(u, {"g1": ("Eng", {"u1", "u9"}), "g2": BASE[1]["g2"], "g3": BASE[1]["g3"]})
    with session_scope(eng, write=False) as s:
        plan = diff(s1, load_view(s, D))
    assert any("u9" in n and "U0@x" in n for n in plan.notes)
    assert apply_plan(eng, plan, PULL).applied == {"deactivate_user": 1, "remove_members": 2}
    assert pending(eng, s1) == {}


def test_names_held_by_rows_without_an_external_id_are_avoided_not_fatal(eng: Engine) -> None:
    """A SCIM client may push into a pull directory rows without externalId, which no pull
    manages: a pull's names go around theirs instead of failing every run on them."""
    pushed = Actor("scim", D, "token")
    with session_scope(eng) as s:
        users.create_user(s, actor=pushed, body={"userName": "U0@x"})
        teams.create_team(s, actor=pushed, body={"displayName": "eng"})
    s0 = snap(*BASE)
    with session_scope(eng, write=False) as s:
        plan = diff(s0, load_view(s, D))
    assert plan.notes == ["user u0 not written: userName 'u0@x' is held by user without externalId"]
    assert apply_plan(eng, plan, PULL).applied == {"create_user": 7, "create_team": 3, "add_members": 4}
    with session_scope(eng, write=False) as s:
        names = s.execute(select(Team.display_name).where(Team.directory == D)).scalars().all()
    assert sorted(names) == ["Empty", "Eng (g1)", "Ops", "eng"]
    assert pending(eng, s0) == {}
