"""The serialised plan: every change carries names and ids, the format is versioned and reads back."""

from __future__ import annotations

import json

import pytest

from syncd.reconcile.diff import diff
from syncd.reconcile.plan import PLAN_FORMAT, Plan, PlanBasis, PlanFormatError
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser
from syncd.reconcile.view import StoredTeam, StoredUser, StoreView


def _case() -> tuple[Snapshot, StoreView]:
    view = StoreView(
        users={
            "u-alice": StoredUser("id-alice", "u-alice", "alice@x", True, "A"),
            "u-bob": StoredUser("id-bob", "u-bob", "bob@x", True, "Bob"),
            "u-carol": StoredUser("id-carol", "u-carol", "carol@x", True, "Carol"),
        },
        teams={
            "g-eng": StoredTeam("id-eng", "g-eng", "eng"),
            "g-old": StoredTeam("id-old", "g-old", "Legacy"),
        },
        members={"g-eng": {"u-alice", "u-bob"}, "g-old": {"u-carol"}},
    )
    snap = Snapshot(
        "entra",
        users={
            "u-alice": SnapshotUser("u-alice", "alice@x", display_name="Alice"),
            "u-bob": SnapshotUser("u-bob", "bob@x", display_name="Bob"),
            "u-dan": SnapshotUser("u-dan", "dan@x", display_name="Dan"),
        },
        groups={
            "g-eng": SnapshotGroup("g-eng", "Engineering", frozenset({"u-alice", "u-dan"})),
            "g-new": SnapshotGroup("g-new", "Production LLM Evals", frozenset({"u-bob"})),
        },
    )
    return snap, view


def _dict() -> dict:
    snap, view = _case()
    plan = diff(snap, view)
    plan.basis = PlanBasis.of(plan, view, {"audit_id": 7, "cursor": None})
    return json.loads(json.dumps(plan.to_dict()))  # plain JSON, as SyncRun.plan keeps it


def test_every_change_names_its_objects_and_carries_their_ids() -> None:
    d = _dict()
    assert d["format"] == PLAN_FORMAT and d["fingerprint"] == {"audit_id": 7, "cursor": None}
    users = {(u["kind"], u["user_name"]): u for u in d["users"]}
    update = users[("update_user", "alice@x")]
    assert update["changes"] == {"displayName": ["A", "Alice"]}
    assert update["store_id"] == "id-alice" and update["external_id"] == "u-alice"
    assert users[("create_user", "dan@x")]["user"]["display_name"] == "Dan"
    assert users[("deactivate_user", "carol@x")]["store_id"] == "id-carol"
    teams = {(t["kind"], t["display_name"]): t for t in d["teams"]}
    assert teams[("rename_team", "Engineering")]["previous_name"] == "eng"
    assert teams[("create_team", "Production LLM Evals")]["store_id"] is None
    assert teams[("archive_team", "Legacy")]["store_id"] == "id-old"
    members = {(m["kind"], m["team_name"]): m for m in d["members"]}
    removed = members[("remove_members", "Engineering")]
    assert removed["users"] == [{"external_id": "u-bob", "store_id": "id-bob", "user_name": "bob@x"}]
    assert removed["team_store_id"] == "id-eng"
    added = members[("add_members", "Engineering")]
    assert added["users"] == [{"external_id": "u-dan", "store_id": None, "user_name": "dan@x"}]
    assert members[("add_members", "Production LLM Evals")]["users"][0]["user_name"] == "bob@x"
    assert members[("remove_members", "Legacy")]["users"][0]["user_name"] == "carol@x"


def test_a_serialised_plan_reads_back_into_the_same_changes() -> None:
    snap, view = _case()
    plan = diff(snap, view)
    back = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert (back.directory, back.complete) == (plan.directory, plan.complete)
    assert back.users == plan.users and back.teams == plan.teams and back.members == plan.members
    assert back.counts() == plan.counts()


@pytest.mark.parametrize(
    "data",
    [
        {"directory": "entra", "users": [], "teams": [], "members": []},  # format 1 (no "format")
        {"format": 99, "directory": "entra"},
        {"format": PLAN_FORMAT, "directory": "entra"},  # damaged: no changes
        [],
    ],
)
def test_another_or_a_damaged_format_is_refused(data: object) -> None:
    with pytest.raises(PlanFormatError):
        Plan.from_dict(data)  # type: ignore[arg-type]


def test_the_basis_keeps_only_the_rows_the_plan_names() -> None:
    snap, view = _case()
    view.users["u-idle"] = StoredUser("id-idle", "u-idle", "idle@x", True)  # unchanged rows
    view.teams["g-idle"] = StoredTeam("id-gi", "g-idle", "Idle")
    snap.users["u-idle"] = SnapshotUser("u-idle", "idle@x")
    snap.groups["g-idle"] = SnapshotGroup("g-idle", "Idle")
    plan = diff(snap, view)
    basis = PlanBasis.of(plan, view)
    assert set(basis.view.users) == {"u-alice", "u-bob", "u-carol"}
    assert set(basis.view.teams) == {"g-eng", "g-old"}


def test_without_removals_keeps_the_basis_for_names() -> None:
    snap, view = _case()
    plan = diff(snap, view)
    plan.basis = PlanBasis(view, None)
    kept = plan.without_removals().to_dict()
    assert {u["user_name"] for u in kept["users"]} == {"alice@x", "dan@x"}
