"""The diff settles userNames among the users that differ from their stored rows only: a user
exactly as stored claims its stored name (as every stored user does) and cannot move, so a
no-op read settles nothing, and a read with one rename settles that one among the stored
names. The plans are those of `test_diff` and `test_renames`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from syncd.reconcile import diff as diff_module
from syncd.reconcile.diff import diff
from syncd.reconcile.names import settle_user_names
from syncd.reconcile.snapshot import Snapshot, SnapshotUser
from syncd.reconcile.view import StoredUser, StoreView


def users(*names: str) -> dict[str, SnapshotUser]:
    return {f"e{i}": SnapshotUser(f"e{i}", n, email=n) for i, n in enumerate(names)}


def view_of(*names: str) -> StoreView:
    return StoreView(
        users={f"e{i}": StoredUser(f"id{i}", f"e{i}", n, True, email=n) for i, n in enumerate(names)}
    )


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    calls: list[dict[str, str]] = []

    def recording(stored: Mapping[str, str], wanted: Mapping[str, str], fixed: Iterable[str] = ()) -> Any:
        calls.append(dict(wanted))
        return settle_user_names(stored, wanted, fixed)

    monkeypatch.setattr(diff_module, "settle_user_names", recording)
    return calls


def test_a_noop_read_settles_no_names(settled: list[dict[str, str]]) -> None:
    plan = diff(Snapshot("d", users=users("a@x", "b@x", "c@x")), view_of("a@x", "b@x", "c@x"))
    assert plan.empty
    assert settled == []


def test_only_the_changed_users_claim_wanted_names(settled: list[dict[str, str]]) -> None:
    snap = Snapshot("d", users={**users("a@x", "c@x", "c@x"), "e3": SnapshotUser("e3", "d@x", email="d@x")})
    plan = diff(snap, view_of("a@x", "b@x", "c@x"))
    assert settled == [{"e1": "c@x", "e3": "d@x"}]
    # e1 wants the name e2 keeps: refused with a note (its email still applies); e3 is created
    assert [(c.kind, c.external_id, c.fields) for c in plan.users] == [
        ("update_user", "e1", ("email",)),
        ("create_user", "e3", ()),
    ]
    assert any("e1" in n and "held by user e2" in n for n in plan.notes)
