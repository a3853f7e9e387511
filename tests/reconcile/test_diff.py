"""Table-driven tests of the pure stages: scope, diff, safety."""

from __future__ import annotations

import pytest

from syncd.reconcile.diff import diff
from syncd.reconcile.safety import SafetyStop, Thresholds, check
from syncd.reconcile.scope import Scope, apply_scope
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser
from syncd.reconcile.view import StoredTeam, StoredUser, StoreView


def su(ext: str, active: bool = True, name: str | None = None, **kw) -> SnapshotUser:
    return SnapshotUser(ext, name or f"{ext}@x", active, email=name or f"{ext}@x", **kw)


def sg(ext: str, name: str, *members: str) -> SnapshotGroup:
    return SnapshotGroup(ext, name, frozenset(members))


def snap(users=(), groups=(), mode="full", complete=True, removed_users=(), removed_groups=()) -> Snapshot:
    return Snapshot(
        "d",
        mode,
        {u.external_id: u for u in users},
        {g.external_id: g for g in groups},
        set(removed_users),
        set(removed_groups),
        complete,
    )


def stored(ext: str, active: bool = True, name: str | None = None) -> StoredUser:
    return StoredUser(f"id-{ext}", ext, name or f"{ext}@x", active, email=name or f"{ext}@x")


def view(users=(), teams=(), members=None, manual=None) -> StoreView:
    return StoreView(
        {u.external_id: u for u in users}, {t.external_id: t for t in teams}, members or {}, manual or {}
    )


T1 = StoredTeam("id-g1", "g1", "Eng")
#: a group whose member set the view holds itself (load_view found the team's members equal)
G1 = sg("g1", "Eng", "a", "b")

CASES = [
    (
        "first sync creates all",
        snap([su("a")], [sg("g1", "Eng", "a")]),
        view(),
        {"create_user": 1, "create_team": 1, "add_members": 1},
    ),
    ("no-op", snap([su("a")], [sg("g1", "Eng", "a")]), view([stored("a")], [T1], {"g1": {"a"}}), {}),
    (
        "no-op, the view holding the group's own member set",
        snap([su("a"), su("b")], [G1]),
        view([stored("a"), stored("b")], [T1], {"g1": G1.member_ids}),
        {},
    ),
    ("rename user is an update", snap([su("a", name="new@x")]), view([stored("a")]), {"update_user": 1}),
    ("given name change", snap([su("a", given_name="Ada")]), view([stored("a")]), {"update_user": 1}),
    ("disabled in IdP", snap([su("a", active=False)]), view([stored("a")]), {"deactivate_user": 1}),
    ("returns", snap([su("a")]), view([stored("a", active=False)]), {"reactivate_user": 1}),
    ("left scope deactivated", snap([]), view([stored("a")]), {"deactivate_user": 1}),
    ("already inactive stays", snap([]), view([stored("a", active=False)]), {}),
    ("rename team", snap([], [sg("g1", "Engineering")]), view([], [T1]), {"rename_team": 1}),
    (
        "team left scope archived with members removed",
        snap([su("a")], []),
        view([stored("a")], [T1], {"g1": {"a"}}),
        {"archive_team": 1, "remove_members": 1},
    ),
    (
        "archived team returns",
        snap([], [sg("g1", "Eng")]),
        view([], [StoredTeam("id-g1", "g1", "Eng", True)]),
        {"restore_team": 1},
    ),
    (
        "member add and remove",
        snap([su("a"), su("b")], [sg("g1", "Eng", "b")]),
        view([stored("a"), stored("b")], [T1], {"g1": {"a"}}),
        {"add_members": 1, "remove_members": 1},
    ),
    (
        "manual membership neither added nor removed",
        snap([su("a")], [sg("g1", "Eng", "a")]),
        view([stored("a")], [T1], {}, {"g1": {"a"}}),
        {},
    ),
    (
        "member not a known user skipped",
        snap([su("a")], [sg("g1", "Eng", "a", "ghost")]),
        view([stored("a")], [T1], {"g1": {"a"}}),
        {},
    ),
    (
        "delta: only named objects compared",
        snap([su("b")], [], mode="delta"),
        view([stored("a"), stored("b", name="old@x")]),
        {"update_user": 1},
    ),
    (
        "delta: removed user deactivated",
        snap([], [], mode="delta", removed_users=["a"]),
        view([stored("a"), stored("b")]),
        {"deactivate_user": 1},
    ),
    (
        "delta: removed group archived",
        snap([], [], mode="delta", removed_groups=["g1"]),
        view([stored("a")], [T1], {"g1": {"a"}}),
        {"archive_team": 1, "remove_members": 1},
    ),
    (
        "delta: group members vs unchanged users",
        snap([], [sg("g1", "Eng", "a", "b")], mode="delta"),
        view([stored("a"), stored("b")], [T1], {"g1": {"a"}}),
        {"add_members": 1},
    ),
]


@pytest.mark.parametrize(("snapshot", "store", "counts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diff(snapshot: Snapshot, store: StoreView, counts: dict[str, int]) -> None:
    assert diff(snapshot, store).counts() == counts


def test_keep_policies_remove_nothing() -> None:
    p = diff(snap([], []), view([stored("a")], [T1], {"g1": {"a"}}), users_left="keep", teams_left="keep")
    assert p.counts() == {}


def test_duplicate_group_names_get_distinct_team_names() -> None:
    p = diff(snap([], [sg("g1", "Eng"), sg("g2", "eng")]), view())
    assert sorted(t.display_name for t in p.teams) == ["Eng (g1)", "eng (g2)"]


def test_matching_is_by_external_id_not_name() -> None:
    p = diff(snap([su("new", name="a@x")]), view([stored("a")]))
    # not an update of "a"; "new" waits with a note while "a" (deactivated) holds the userName
    assert p.counts() == {"deactivate_user": 1} and p.notes


def test_incomplete_snapshot_never_removes() -> None:
    p = diff(snap([su("b")], [], complete=False), view([stored("a")], [T1], {"g1": {"a"}}))
    safe = check(p, view([stored("a")], [T1], {"g1": {"a"}}), Thresholds())
    assert safe.counts() == {"create_user": 1}
    assert any("incomplete" in n for n in safe.notes)


@pytest.mark.parametrize(
    ("n_users", "n_gone", "thresholds", "stops"),
    [
        (100, 10, Thresholds(max_count=500, max_percent=20), False),
        (100, 30, Thresholds(max_count=500, max_percent=20), True),
        (10, 9, Thresholds(max_count=500, max_percent=20, min_base=20), False),  # tiny directory
        (1000, 60, Thresholds(max_count=50, max_percent=90), True),
    ],
    ids=["10% ok", "30% stops", "small base", "count stops"],
)
def test_thresholds(n_users: int, n_gone: int, thresholds: Thresholds, stops: bool) -> None:
    store = view([stored(f"u{i}") for i in range(n_users)])
    p = diff(snap([su(f"u{i}") for i in range(n_gone, n_users)]), store)
    assert p.counts() == {"deactivate_user": n_gone}
    if stops:
        with pytest.raises(SafetyStop) as err:
            check(p, store, thresholds)
        assert err.value.plan.counts() == {"deactivate_user": n_gone}
        assert check(p, store, thresholds, allow_deletes=True).counts() == {"deactivate_user": n_gone}
    else:
        assert check(p, store, thresholds).counts() == {"deactivate_user": n_gone}


@pytest.mark.parametrize(
    ("scope", "groups", "users"),
    [
        (Scope(), {"g1", "g2", "g3"}, {"a", "b", "c"}),
        (Scope(include=("eng-*",)), {"g1", "g2"}, {"a", "b", "c"}),
        (Scope(include=("re:^ENG",)), set(), {"a", "b", "c"}),
        (Scope(include=("re:(?i)^eng",)), {"g1", "g2"}, {"a", "b", "c"}),
        (Scope(exclude=("g3",)), {"g1", "g2"}, {"a", "b", "c"}),
        (Scope(include=("eng-*",), users="members"), {"g1", "g2"}, {"a", "b"}),
    ],
    ids=["all", "glob", "regex case", "regex flag", "exclude id", "members only"],
)
def test_scope(scope: Scope, groups: set[str], users: set[str]) -> None:
    s = snap(
        [su("a"), su("b"), su("c")],
        [sg("g1", "eng-core", "a"), sg("g2", "eng-web", "b"), sg("g3", "ops", "c")],
    )
    out = apply_scope(s, scope)
    assert set(out.groups) == groups and set(out.users) == users


@pytest.mark.parametrize("mode", ["full", "delta"])
def test_a_stored_team_that_left_keeps_its_name_from_a_new_group(mode: str) -> None:
    """Archived (or kept) teams still hold their names in the directory."""
    removed = ["g1"] if mode == "delta" else []
    p = diff(snap([], [sg("g2", "eng")], mode=mode, removed_groups=removed), view([], [T1]))
    assert [(t.kind, t.display_name) for t in p.teams] == [
        ("create_team", "eng (g2)"),
        ("archive_team", "Eng"),
    ]


def test_a_user_name_held_by_another_stored_user_is_neither_created_nor_taken_by_a_rename() -> None:
    store = view([stored("a", name="A@x"), stored("b")])
    p = diff(snap([su("b", name="a@x"), su("c", name="a@X")]), store, users_left="keep")
    # b keeps its userName (a holds it) but its other attributes (here the email) still apply
    assert [(c.kind, c.external_id, c.fields, c.user and c.user.user_name) for c in p.users] == [
        ("update_user", "b", ("email",), "b@x")
    ]
    assert len(p.notes) == 2 and all("held by user a" in n for n in p.notes)


USER_NAMES = [
    ("swap", {"a": "1@x", "b": "2@x"}, {"a": "2@x", "b": "1@x"}, set()),
    ("cycle of three", {"a": "1", "b": "2", "c": "3"}, {"a": "2", "b": "3", "c": "1"}, set()),
    ("chain", {"a": "1", "b": "2"}, {"a": "2", "b": "3"}, set()),
    ("create under a freed name", {"a": "1"}, {"a": "2", "n": "1"}, set()),
    ("create under a held name", {"a": "1"}, {"n": "1"}, {"n"}),
    ("rename onto a departed user's name", {"a": "1", "b": "2"}, {"a": "2"}, {"a"}),
    ("two moves onto one free name", {"a": "1", "b": "2"}, {"a": "3", "b": "3"}, {"a", "b"}),
    # b is refused (a keeps its name), so c cannot have b's name either
    ("refusal cascades", {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "1", "c": "2"}, {"b", "c"}),
    ("case-only change is no move", {"a": "Ab"}, {"a": "aB", "n": "x"}, set()),
]


@pytest.mark.parametrize(
    ("stored_names", "wanted", "refused"), [c[1:] for c in USER_NAMES], ids=[c[0] for c in USER_NAMES]
)
def test_user_names_that_change_hands_within_a_run(
    stored_names: dict[str, str], wanted: dict[str, str], refused: set[str]
) -> None:
    store = view([stored(e, name=n) for e, n in stored_names.items()])
    p = diff(snap([su(e, name=n) for e, n in wanted.items()]), store, users_left="keep")
    written = {c.external_id: c.user.user_name for c in p.users if c.user is not None}
    final = {**stored_names, **written}
    assert {e for e in wanted if final.get(e) != wanted[e]} == refused
    assert len({n.casefold() for n in final.values()}) == len(final)  # unique after the plan
    assert len(p.notes) == len(refused)
