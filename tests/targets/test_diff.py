"""The pure diff: matching and adoption order, who is ours to remove, and incomplete reads."""

from __future__ import annotations

import pytest

from syncd.targets.desired import Desired, DesiredTeam, DesiredUser
from syncd.targets.diff import diff
from syncd.targets.incremental import Touched, plan_changes
from syncd.targets.remote import RemoteGroup, RemoteState, RemoteUser
from syncd.targets.state import Mapped
from tests.targets.helpers import target


def du(lid: str, name: str | None = None, email: str | None = None) -> DesiredUser:
    name = name or f"{lid}@x"
    return DesiredUser(lid, name, f"ext-{lid}", emails=((email or name, "work", True),))


def ru(rid: str, name: str, email: str | None = None, **kw) -> RemoteUser:
    return RemoteUser(rid, name, frozenset([(email or name).casefold()]), **kw)


def desired(*users: DesiredUser, teams: tuple[DesiredTeam, ...] = ()) -> Desired:
    return Desired({u.local_id: u for u in users}, {t.local_id: t for t in teams})


def remote(*users: RemoteUser, groups: tuple[RemoteGroup, ...] = (), complete: bool = True) -> RemoteState:
    return RemoteState(
        {u.id: u for u in users}, {g.id: g for g in groups}, complete, None if complete else "x"
    )


def mapped(*rows: Mapped) -> dict:
    return {(m.kind, m.local_id): m for m in rows}


A, B = du("a"), du("b")
CASES = {
    "empty target: create": (desired(A), remote(), {}, {"create_user": 1}, []),
    "same userName, any case: adopt": (
        desired(A),
        remote(ru("r1", "A@X")),
        {},
        {"adopt": 1},
        [("user", "a", "r1")],
    ),
    "same email, other userName: adopt": (
        desired(A),
        remote(ru("r1", "old-name", email="a@x")),
        {},
        {"adopt": 1, "update_user": 1},
        [("user", "a", "r1")],
    ),
    "externalId first": (
        desired(A),
        remote(ru("r1", "a@x"), ru("r2", "zz", email="zz", external_id="ext-a")),
        {},
        {"adopt": 1, "update_user": 1},
        [("user", "a", "r2")],
    ),
    "mapped and unchanged: nothing": (
        desired(A),
        remote(ru("r1", "a@x")),
        mapped(Mapped("user", "a", "r1", A.digest(), True)),
        {},
        [],
    ),
    "changed since acknowledged: PUT": (
        desired(A),
        remote(ru("r1", "a@x")),
        mapped(Mapped("user", "a", "r1", "old", True)),
        {"update_user": 1},
        [],
    ),
    "deleted behind our back: recreate": (
        desired(A),
        remote(),
        mapped(Mapped("user", "a", "gone", A.digest(), True)),
        {"create_user": 1},
        [],
    ),
    "write-only active: the record wins over the read": (
        desired(A),
        remote(ru("r1", "a@x", active=True)),
        mapped(Mapped("user", "a", "r1", A.digest(), False, True)),
        {"activate_user": 1},
        [],
    ),
    "left: deactivate once": (
        desired(),
        remote(ru("r1", "a@x")),
        mapped(Mapped("user", "a", "r1", A.digest(), True)),
        {"leave_user": 1},
        [],
    ),
    "left and already deactivated: nothing": (
        desired(),
        remote(ru("r1", "a@x")),
        mapped(Mapped("user", "a", "r1", A.digest(), False, True)),
        {},
        [],
    ),
    "not ours: never touched": (desired(), remote(ru("r9", "someone@x")), {}, {}, []),
    "incomplete read: nothing removed": (
        desired(),
        remote(ru("r1", "a@x"), complete=False),
        mapped(Mapped("user", "a", "r1", A.digest(), True)),
        {},
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_users(case: str) -> None:
    d, r, m, counts, adopt = CASES[case]
    plan = diff(d, r, m)
    assert plan.counts() == counts
    assert plan.adopt == adopt


def test_teams_adopted_by_name_and_only_managed_members_removed() -> None:
    t = DesiredTeam("t1", "eng", "g-eng", frozenset({"a"}))
    r = remote(
        ru("ra", "a@x"),
        ru("rb", "b@x"),
        ru("rz", "admin@x"),
        groups=(RemoteGroup("G1", "eng", None, frozenset({"rb", "rz"})),),
    )
    m = mapped(Mapped("user", "a", "ra", A.digest(), True), Mapped("user", "b", "rb", B.digest(), True))
    plan = diff(desired(A, B, teams=(t,)), r, m)
    assert plan.adopt == [("team", "t1", "G1")]
    assert plan.add_members == {"t1": ["a"]}
    assert plan.remove_members == {"t1": ["rb"]}  # rz is not syncd's: left alone
    left = diff(desired(A, teams=(t,)), r, m)
    assert left.leave_users == [("b", "rb")] and "t1" not in left.remove_members  # b keeps its teams
    assert not plan.create_teams


def test_two_remote_users_claim_one_name_none_is_adopted_twice() -> None:
    plan = diff(desired(A, B), remote(ru("r1", "a@x", email="b@x")), {})
    assert plan.adopt == [("user", "a", "r1")] and [u.local_id for u in plan.create_users] == ["b"]


def test_incremental_member_changes_of_one_team_become_one_add_and_one_remove() -> None:
    t = DesiredTeam("t1", "eng", "g", frozenset({"a", "c"}))
    c = du("c")
    m = mapped(
        Mapped("team", "t1", "G1", t.digest()),
        Mapped("user", "a", "ra", A.digest(), True),
        Mapped("user", "b", "rb", B.digest(), True),
        Mapped("user", "c", "rc", c.digest(), True),
    )
    touched = Touched(users={"a", "b", "c"}, teams={"t1"}, members={"t1": {"a", "b", "c"}})
    plan = plan_changes(desired(A, B, c, teams=(t,)), m, touched, target("http://x"))
    assert plan.add_members == {"t1": ["a", "c"]} and plan.remove_members == {"t1": ["rb"]}
    assert plan.counts() == {"add_members": 2, "remove_members": 1}


def test_a_pending_user_that_left_is_found_and_deactivated_not_forgotten() -> None:
    """Its create reached the target before a crash; forgetting it would orphan an active user."""
    m = mapped(Mapped("user", "a", None))
    plan = diff(desired(), remote(ru("r1", "a@x")), m, pending_names={"a": ("a@x", "a@x")})
    assert plan.leave_users == [("a", "r1")] and plan.adopt == [("user", "a", "r1")]
    assert diff(desired(), remote(), m, pending_names={"a": ("a@x", None)}).forget == [("user", "a")]
    assert diff(desired(), remote(complete=False), m, pending_names={"a": ("a@x", None)}).forget == []
