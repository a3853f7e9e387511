"""Names that change hands within one run, on SQLite and PostgreSQL (property tests).

Whatever the IdP does to group and user names between two runs (swaps, chains and cycles of
renames, creates under freed names, several groups of one name), the second run applies in
one pass together with the unrelated changes, the store then says what the IdP says, a
third diff is empty, and a delta read names every team as a full read does.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from syncd.reconcile.apply import apply_plan
from syncd.reconcile.diff import diff
from syncd.reconcile.load import load_view
from syncd.reconcile.names import base_name
from syncd.reconcile.plan import Plan
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser
from syncd.service import tokens
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User

NAMES = ["Eng", "eng", "Ops", "Sales", "HR", "Eng (g1)", "Data"]
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Groups = dict[str, tuple[str, frozenset[str]]]  # external id → (IdP name, member user ids)
Users = dict[str, str]  # external id → userName


def new_directory(engine: Engine) -> str:
    name = f"d-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=name, kind="graph")
    return name


def snapshot(d: str, users: Users, groups: Groups, **kw: Any) -> Snapshot:
    return Snapshot(
        d,
        users={e: SnapshotUser(e, n, email=n) for e, n in users.items()},
        groups={g: SnapshotGroup(g, name, members) for g, (name, members) in groups.items()},
        **kw,
    )


def plan_for(engine: Engine, snap: Snapshot) -> Plan:
    with session_scope(engine, write=False) as s:
        return diff(snap, load_view(s, snap.directory))


def sync(engine: Engine, snap: Snapshot) -> Plan:
    plan = plan_for(engine, snap)
    apply_plan(engine, plan, Actor("pull", snap.directory, snap.directory))
    return plan


def stored(engine: Engine, d: str) -> tuple[dict[str, tuple[str, bool]], Users, set[tuple[str, str]]]:
    """(teams {ext: (name, archived)}, users {ext: userName}, {(team ext, user ext)})."""
    with session_scope(engine, write=False) as s:
        teams = {
            e: (n, a)
            for e, n, a in s.execute(
                select(Team.external_id, Team.display_name, Team.archived).where(Team.directory == d)
            ).tuples()
        }
        users = dict(
            s.execute(select(User.external_id, User.user_name).where(User.directory == d)).tuples().all()
        )
        members = set(
            s.execute(
                select(Team.external_id, User.external_id)
                .join(Membership, Membership.team_id == Team.id)
                .join(User, User.id == Membership.user_id)
                .where(Membership.directory == d)
            ).tuples()
        )
    return teams, users, members


def assert_teams_named_by_the_rule(teams: dict[str, tuple[str, bool]], groups: Groups) -> None:
    live = {e: n for e, (n, archived) in teams.items() if not archived}
    assert live.keys() == groups.keys()
    held = {n.casefold() for n, archived in teams.values() if archived}
    for e, (idp_name, _) in groups.items():
        assert base_name(live[e], e) == base_name(idp_name, e)
        unique = (
            sum(
                base_name(n, g).casefold() == base_name(idp_name, e).casefold()
                for g, (n, _) in groups.items()
            )
            == 1
        )
        if unique and base_name(idp_name, e).casefold() not in held:
            assert live[e] == base_name(idp_name, e)
    assert len({n.casefold() for n, _ in teams.values()}) == len(teams)


# -- strategies ------------------------------------------------------------------------------


@st.composite
def two_states(draw: st.DrawFn) -> tuple[Users, Groups, Users, Groups]:
    """An IdP state, and the state after renames among its groups and users (permutations,
    chains, cycles), deletions, creates (under free or freed names) and member changes."""
    n_users = draw(st.integers(2, 6))
    uids = [f"u{i}" for i in range(n_users)]
    users0 = {u: f"user{i}@x" for i, u in enumerate(uids)}
    n_groups = draw(st.integers(1, 6))
    gids = [f"g{i}" for i in range(n_groups)]
    members = st.frozensets(st.sampled_from(uids), max_size=3)
    groups0 = {g: (draw(st.sampled_from(NAMES)), draw(members)) for g in gids}
    # groups: permute the names of the survivors, rename some, delete some, create some
    kept = draw(st.lists(st.sampled_from(gids), unique=True, min_size=1))
    names = draw(st.permutations([groups0[g][0] for g in kept]))
    groups1 = {g: (n, groups0[g][1]) for g, n in zip(kept, names, strict=True)}
    for g in draw(st.lists(st.sampled_from(kept), unique=True)):
        groups1[g] = (draw(st.sampled_from(NAMES)), draw(members))
    for i in range(draw(st.integers(0, 3))):
        groups1[f"n{i}"] = (draw(st.sampled_from([*NAMES, *(groups0[g][0] for g in gids)])), draw(members))
    # users: permute the userNames of the survivors; new users take freed or fresh names
    alive = draw(st.lists(st.sampled_from(uids), unique=True, min_size=1))
    unames = draw(st.permutations([users0[u] for u in alive]))
    users1 = dict(zip(alive, unames, strict=True))
    for u in draw(st.lists(st.sampled_from(alive), unique=True, max_size=2)):
        users1[u] = f"moved-{u}@x"  # frees its name for a new user
    freed = sorted(set(users0[u] for u in alive) - set(users1.values()))
    for i, name in enumerate(draw(st.lists(st.sampled_from(freed), unique=True)) if freed else []):
        users1[f"new{i}"] = name
    groups1 = {g: (n, frozenset(m & users1.keys())) for g, (n, m) in groups1.items()}
    return users0, groups0, users1, groups1


# -- properties ------------------------------------------------------------------------------


@PROPERTY
@given(states=two_states())
def test_any_renames_between_two_runs_apply_in_one_pass(engine: Engine, states: Any) -> None:
    users0, groups0, users1, groups1 = states
    d = new_directory(engine)
    sync(engine, snapshot(d, users0, groups0))
    plan = sync(engine, snapshot(d, users1, groups1))
    teams, users, members = stored(engine, d)
    assert_teams_named_by_the_rule(teams, groups1)
    assert {u: users[u] for u in users1} == users1 and not plan.notes
    assert members == {(g, u) for g, (_, m) in groups1.items() for u in m}
    assert plan_for(engine, snapshot(d, users1, groups1)).empty


@PROPERTY
@given(states=two_states())
def test_a_delta_read_names_teams_as_a_full_read_does(engine: Engine, states: Any) -> None:
    users0, groups0, users1, groups1 = states
    full, delta = new_directory(engine), new_directory(engine)
    for d in (full, delta):
        sync(engine, snapshot(d, users0, groups0))
    sync(engine, snapshot(full, users1, groups1))
    changed = {g: v for g, v in groups1.items() if groups0.get(g) != v}
    moved = {u: n for u, n in users1.items() if users0.get(u) != n}
    sync(
        engine,
        snapshot(
            delta,
            moved,
            changed,
            mode="delta",
            removed_users=users0.keys() - users1.keys(),
            removed_groups=groups0.keys() - groups1.keys(),
        ),
    )
    assert stored(engine, delta)[0] == stored(engine, full)[0]
    assert plan_for(engine, snapshot(delta, users1, groups1)).empty


# -- the cases of the report, spelled out ----------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"a": "Eng", "b": "Ops"}, {"a": "Ops", "b": "Eng"}),
        ({"a": "Eng", "b": "Ops"}, {"a": "Ops", "b": "Sales"}),
        ({"a": "Eng"}, {"a": "Eng2", "c": "Eng"}),
        ({"a": "A", "b": "B", "c": "C"}, {"a": "B", "b": "C", "c": "A"}),
    ],
    ids=["swap", "B renamed away while A takes its name", "created under a renamed group's name", "cycle"],
)
def test_a_team_name_clash_no_longer_stops_the_run(
    engine: Engine, before: dict[str, str], after: dict[str, str]
) -> None:
    d = new_directory(engine)
    users = {"u": "u@x"}
    sync(engine, snapshot(d, users, {g: (n, frozenset()) for g, n in before.items()}))
    # with an unrelated change in the same run: u joins every group
    groups1 = {g: (n, frozenset({"u"})) for g, n in after.items()}
    sync(engine, snapshot(d, users, groups1))
    teams, _, members = stored(engine, d)
    assert {e: n for e, (n, archived) in teams.items() if not archived} == after
    assert members == {(g, "u") for g in after}
    assert plan_for(engine, snapshot(d, users, groups1)).empty


def test_a_user_name_swap_applies_with_the_rest_of_the_run(engine: Engine) -> None:
    d = new_directory(engine)
    sync(engine, snapshot(d, {"a": "1@x", "b": "2@x"}, {"g": ("G", frozenset({"a"}))}))
    after = {"a": "2@x", "b": "1@x", "c": "3@x"}
    plan = sync(engine, snapshot(d, after, {"g": ("G", frozenset({"a", "b", "c"}))}))
    assert plan.counts() == {"update_user": 2, "create_user": 1, "add_members": 2}
    _, users, members = stored(engine, d)
    assert users == after and len(members) == 3


def test_a_new_group_sharing_a_name_renames_the_other_in_a_delta_as_in_a_full_read(engine: Engine) -> None:
    """The defect: a delta carrying only the new same-named group suffixed only it, and the
    next full read renamed the other."""
    d = new_directory(engine)
    sync(engine, snapshot(d, {}, {"g1": ("Eng", frozenset())}))
    plan = sync(engine, snapshot(d, {}, {"g2": ("Eng", frozenset())}, mode="delta"))
    assert sorted((t.kind, t.display_name) for t in plan.teams) == [
        ("create_team", "Eng (g2)"),
        ("rename_team", "Eng (g1)"),
    ]
    assert plan_for(engine, snapshot(d, {}, {g: ("Eng", frozenset()) for g in ("g1", "g2")})).empty
    # and when one of them is renamed away, a delta gives the other its plain name back
    sync(engine, snapshot(d, {}, {"g2": ("Ops", frozenset())}, mode="delta"))
    assert {e: n for e, (n, _) in stored(engine, d)[0].items()} == {"g1": "Eng", "g2": "Ops"}


def test_a_cycle_of_renames_is_never_split_over_batches(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.reconcile import apply as apply_mod

    monkeypatch.setattr(apply_mod, "BATCH", 1)
    d = new_directory(engine)
    sync(engine, snapshot(d, {}, {"a": ("A", frozenset()), "b": ("B", frozenset()), "c": ("C", frozenset())}))
    after = {"a": ("B", frozenset()), "b": ("C", frozenset()), "c": ("A", frozenset())}
    assert sync(engine, snapshot(d, {}, after)).counts() == {"rename_team": 3}
    assert {e: n for e, (n, _) in stored(engine, d)[0].items()} == {"a": "B", "b": "C", "c": "A"}


def test_a_failed_rename_batch_leaves_no_parked_name(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parked names live only inside the transaction: a failure rolls the whole swap back."""
    from syncd.service import teams

    d = new_directory(engine)
    sync(engine, snapshot(d, {}, {"a": ("A", frozenset()), "b": ("B", frozenset())}))
    real, calls = teams.patch_team, []

    def failing(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kw)

    monkeypatch.setattr(teams, "patch_team", failing)
    swapped = snapshot(d, {}, {"a": ("B", frozenset()), "b": ("A", frozenset())})
    with pytest.raises(RuntimeError):
        sync(engine, swapped)
    with session_scope(engine, write=False) as s:
        keys = s.execute(select(Team.external_id, Team.display_name_key).where(Team.directory == d)).all()
    assert sorted(keys) == [("a", "a"), ("b", "b")]
    monkeypatch.setattr(teams, "patch_team", real)
    assert sync(engine, swapped).counts() == {"rename_team": 2}


@pytest.mark.parametrize(
    ("live", "held", "names"),
    [
        ({"g1": "Eng", "g2": "Ops"}, [], {"g1": "Eng", "g2": "Ops"}),
        ({"g1": "Eng", "g2": "eng"}, [], {"g1": "Eng (g1)", "g2": "eng (g2)"}),
        ({"g2": "Eng"}, ["Eng"], {"g2": "Eng (g2)"}),
        # a plain name wins over a suffix that would equal it; the suffix then counts on
        (
            {"g1": "Eng", "g2": "Eng", "g3": "Eng (g1)"},
            [],
            {"g1": "Eng (g1 2)", "g2": "Eng (g2)", "g3": "Eng (g1)"},
        ),
        ({"g1": "Eng"}, ["Eng", "Eng (g1)"], {"g1": "Eng (g1 2)"}),
    ],
)
def test_team_names(live: dict[str, str], held: list[str], names: dict[str, str]) -> None:
    from syncd.reconcile.names import team_names

    assert team_names(live, held) == names
    assert {e: base_name(n, e) for e, n in names.items()} == {e: base_name(b, e) for e, b in live.items()}
