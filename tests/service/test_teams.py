"""Service-layer contract for teams and memberships, run on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from syncd.service import members, teams, users
from syncd.service.context import Actor
from syncd.service.errors import Conflict, InvalidValue, NotFound
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership
from tests.service.helpers import ENTRA, OKTA, make_user, setup_dirs

PULL = Actor("pull", "entra", "entra")
MANUAL = Actor("manual", "entra", "cli")


@pytest.fixture
def eng(engine):
    setup_dirs(engine)
    return engine


def make_team(eng, name: str, member_ids=(), actor: Actor = ENTRA, **extra) -> str:
    body = {"displayName": name, "members": [{"value": m} for m in member_ids], **extra}
    with session_scope(eng) as s:
        return teams.create_team(s, actor=actor, body=body).id


def member_set(eng, team_id: str) -> set[str]:
    with session_scope(eng, write=False) as s:
        return set(members.member_ids(s, team_id))


def team(eng, team_id: str, actor: Actor = ENTRA):
    with session_scope(eng, write=False) as s:
        return teams.get_team(s, actor=actor, team_id=team_id)


def patch(eng, team_id: str, *ops, actor: Actor = ENTRA):
    with session_scope(eng) as s:
        return teams.patch_team(s, actor=actor, team_id=team_id, operations=list(ops))


def test_create_with_members_counts_and_versions(eng) -> None:
    a, b = make_user(eng, "a@x"), make_user(eng, "b@x")
    tid = make_team(eng, "Eng", [a, b], externalId="g1")
    t = team(eng, tid)
    assert (t.member_count, t.version, t.external_id) == (2, 1, "g1")
    assert member_set(eng, tid) == {a, b}


def test_patch_add_remove_members_entra_and_okta_forms(eng) -> None:
    a, b, c = (make_user(eng, f"{n}@x") for n in "abc")
    tid = make_team(eng, "Eng")
    patch(eng, tid, {"op": "Add", "path": "members", "value": [{"$ref": None, "value": a}, {"value": b}]})
    assert member_set(eng, tid) == {a, b}
    patch(eng, tid, {"op": "add", "path": "members", "value": [{"value": c, "display": "c"}]})
    patch(eng, tid, {"op": "Remove", "path": "members", "value": [{"value": a}]})
    patch(eng, tid, {"op": "remove", "path": f'members[value eq "{b}"]'})
    assert member_set(eng, tid) == {c}
    t = team(eng, tid)
    assert t.member_count == 1 and t.version == 5


def test_adding_existing_member_is_a_no_op_keeping_version(eng) -> None:
    a = make_user(eng, "a@x")
    tid = make_team(eng, "Eng", [a])
    patch(eng, tid, {"op": "add", "path": "members", "value": [{"value": a}]})
    patch(eng, tid, {"op": "remove", "path": 'members[value eq "not-a-member"]'})
    t = team(eng, tid)
    assert (t.version, t.member_count) == (1, 1)


def test_unknown_member_fails_whole_patch_and_names_it(eng) -> None:
    a = make_user(eng, "a@x")
    tid = make_team(eng, "Eng")
    with pytest.raises(InvalidValue, match="ghost-1"):
        patch(
            eng,
            tid,
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"value": a}, {"value": "ghost-1"}]},
        )
    t = team(eng, tid)
    assert (t.display_name, t.version, t.member_count) == ("Eng", 1, 0)
    assert member_set(eng, tid) == set()


def test_member_from_another_directory_is_unknown(eng) -> None:
    other = make_user(eng, "o@x", actor=OKTA)
    tid = make_team(eng, "Eng")
    with pytest.raises(InvalidValue):
        patch(eng, tid, {"op": "add", "path": "members", "value": [{"value": other}]})


def test_replace_members_and_put(eng) -> None:
    a, b, c = (make_user(eng, f"{n}@x") for n in "abc")
    tid = make_team(eng, "Eng", [a, b])
    patch(eng, tid, {"op": "replace", "path": "members", "value": [{"value": b}, {"value": c}]})
    assert member_set(eng, tid) == {b, c}
    with session_scope(eng) as s:
        teams.replace_team(s, actor=ENTRA, team_id=tid, body={"id": tid, "displayName": "Eng2"})
    assert member_set(eng, tid) == {b, c}  # PUT without members leaves them
    with session_scope(eng) as s:
        teams.replace_team(
            s, actor=ENTRA, team_id=tid, body={"displayName": "Eng2", "members": [{"value": a}]}
        )
    assert member_set(eng, tid) == {a}
    assert team(eng, tid).member_count == 1


def test_rename_conflict_case_insensitive(eng) -> None:
    make_team(eng, "Eng")
    tid = make_team(eng, "Ops")
    with pytest.raises(Conflict):
        patch(eng, tid, {"op": "replace", "value": {"id": tid, "displayName": "ENG"}})
    make_team(eng, "Eng", actor=OKTA)  # other directory: fine


def test_nested_group_member_refused(eng) -> None:
    inner = make_team(eng, "Inner")
    tid = make_team(eng, "Outer")
    with pytest.raises(InvalidValue, match="nested"):
        patch(eng, tid, {"op": "add", "path": "members", "value": [{"value": inner, "type": "Group"}]})


def test_deleting_a_user_removes_it_from_teams(eng) -> None:
    a, b = make_user(eng, "a@x"), make_user(eng, "b@x")
    tid = make_team(eng, "Eng", [a, b])
    with session_scope(eng) as s:
        users.delete_user(s, actor=ENTRA, user_id=a)
    assert member_set(eng, tid) == {b}
    t = team(eng, tid)
    assert t.member_count == 1 and t.version == 2


def test_sync_feeds_never_remove_manual_memberships(eng) -> None:
    a, b = make_user(eng, "a@x"), make_user(eng, "b@x")
    tid = make_team(eng, "Eng", [a])
    with session_scope(eng) as s:
        teams.change_members(s, actor=MANUAL, team_id=tid, add=[b])
    with session_scope(eng) as s:
        added, removed = teams.change_members(s, actor=PULL, team_id=tid, remove=[a, b])
    assert (added, removed) == ([], [a])
    assert member_set(eng, tid) == {b}
    patch(eng, tid, {"op": "remove", "path": "members"})  # SCIM "remove all" keeps manual ones too
    assert member_set(eng, tid) == {b}
    with session_scope(eng) as s:
        teams.change_members(s, actor=MANUAL, team_id=tid, remove=[b])
    assert member_set(eng, tid) == set()


def test_team_isolation_and_delete(eng) -> None:
    tid = make_team(eng, "Eng")
    with pytest.raises(NotFound):
        team(eng, tid, actor=OKTA)
    with pytest.raises(NotFound), session_scope(eng) as s:
        teams.delete_team(s, actor=OKTA, team_id=tid)
    with session_scope(eng) as s:
        teams.delete_team(s, actor=ENTRA, team_id=tid)
    with pytest.raises(NotFound):
        team(eng, tid)


def test_member_changes_are_audited_with_ids(eng) -> None:
    a = make_user(eng, "a@x")
    tid = make_team(eng, "Eng")
    patch(eng, tid, {"op": "add", "path": "members", "value": [{"value": a}]})
    with session_scope(eng, write=False) as s:
        ev = (
            s.execute(select(AuditEvent).where(AuditEvent.resource_id == tid).order_by(AuditEvent.id.desc()))
            .scalars()
            .first()
        )
    assert ev.action == "team.patch" and ev.after == {"members_added": [a]} and ev.actor == "scim:token:t1"


def test_filter_teams_by_display_name_and_member(eng) -> None:
    a = make_user(eng, "a@x")
    t1 = make_team(eng, "Engineering", [a])
    make_team(eng, "Ops")
    with session_scope(eng, write=False) as s:
        assert [
            t.id for t in teams.list_teams(s, actor=ENTRA, filter='displayName eq "engineering"').items
        ] == [t1]
        assert [t.id for t in teams.list_teams(s, actor=ENTRA, filter=f'members[value eq "{a}"]').items] == [
            t1
        ]


def test_member_count_matches_rows_after_mixed_ops(eng) -> None:
    ids = [make_user(eng, f"u{i}@x") for i in range(6)]
    tid = make_team(eng, "Eng", ids[:3])
    patch(
        eng,
        tid,
        {"op": "add", "path": "members", "value": [{"value": i} for i in ids[2:5]]},
        {"op": "remove", "path": "members", "value": [{"value": ids[0]}, {"value": ids[5]}]},
        {"op": "add", "path": "members", "value": [{"value": ids[0]}]},
    )
    with session_scope(eng, write=False) as s:
        rows = s.execute(
            select(func.count()).select_from(Membership).where(Membership.team_id == tid)
        ).scalar_one()
    assert team(eng, tid).member_count == rows == 5


@pytest.mark.parametrize(
    ("actor", "add", "remove", "expected", "members"),
    [
        # one id at a time (statements built once) and several (the chunked path) agree
        (MANUAL, ["b"], [], (["b"], []), {"a", "m", "b"}),
        (MANUAL, ["a"], [], ([], []), {"a", "m"}),  # already a member
        (MANUAL, [], ["m"], ([], ["m"]), {"a"}),
        (PULL, [], ["m"], ([], []), {"a", "m"}),  # a sync feed keeps manual memberships
        (PULL, [], ["a"], ([], ["a"]), {"m"}),
        (PULL, [], ["nobody"], ([], []), {"a", "m"}),
        (PULL, ["b", "a"], ["m", "a"], (["b"], []), {"a", "m", "b"}),  # a out and back: no net change
    ],
)
def test_one_and_many_member_changes(eng, actor, add, remove, expected, members) -> None:
    ids = {n: make_user(eng, f"{n}@x") for n in ("a", "b", "m")}
    ids["nobody"] = "no-such-user"
    tid = make_team(eng, "Eng", [ids["a"]])
    with session_scope(eng) as s:
        teams.change_members(s, actor=MANUAL, team_id=tid, add=[ids["m"]])
    with session_scope(eng) as s:
        got = teams.change_members(
            s, actor=actor, team_id=tid, add=[ids[n] for n in add], remove=[ids[n] for n in remove]
        )
    assert got == ([ids[n] for n in expected[0]], [ids[n] for n in expected[1]])
    assert member_set(eng, tid) == {ids[n] for n in members}
    assert team(eng, tid).member_count == len(members)


@pytest.mark.parametrize("who", ["unknown", "other-directory"])
def test_one_unknown_member_is_refused(eng, who) -> None:
    uid = "no-such-user" if who == "unknown" else make_user(eng, "o@x", actor=OKTA)
    tid = make_team(eng, "Eng")
    with pytest.raises(InvalidValue, match=uid), session_scope(eng) as s:
        teams.change_members(s, actor=ENTRA, team_id=tid, add=[uid])
    assert member_set(eng, tid) == set()
