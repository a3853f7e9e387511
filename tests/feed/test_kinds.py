"""`changes_for`: which changes one service event means (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.feed.kinds import KINDS, changes_for

U = {"userName": "ann@x", "active": True}
T = {"displayName": "eng"}

CASES: list[tuple[str, str, Any, Any, list[tuple[str, str | None, dict[str, Any]]]]] = [
    (
        "user.create",
        "user",
        None,
        {**U, "externalId": "e"},
        [("user.created", "ann@x", {"externalId": "e", "active": True})],
    ),
    (
        "user.patch",
        "user",
        U,
        {**U, "displayName": "Ann"},
        [("user.updated", "ann@x", {"changed": ["displayName"]})],
    ),
    (
        "user.replace",
        "user",
        U,
        {"userName": "ada@x", "active": True},
        [("user.updated", "ada@x", {"changed": ["userName"], "previous_userName": "ann@x"})],
    ),
    ("user.deactivate", "user", U, {**U, "active": False}, [("user.deactivated", "ann@x", {})]),
    ("user.activate", "user", {**U, "active": False}, U, [("user.reactivated", "ann@x", {})]),
    (
        "user.patch",
        "user",
        U,
        {**U, "active": False, "title": "x"},
        [("user.updated", "ann@x", {"changed": ["title"]}), ("user.deactivated", "ann@x", {})],
    ),
    ("user.patch", "user", {"userName": "ann@x"}, {**U, "active": True}, []),  # absent active is active
    ("user.delete", "user", U, {"teams_left": ["t1"]}, [("user.deleted", "ann@x", {"team_ids": ["t1"]})]),
    ("team.create", "team", None, T, [("team.created", "eng", {"externalId": None})]),
    (
        "team.create",
        "team",
        None,
        {**T, "members_added": ["u1"]},
        [("team.created", "eng", {"externalId": None}), ("team.members_added", "eng", {"members": ["u1"]})],
    ),
    (
        "team.patch",
        "team",
        T,
        {"displayName": "core", "externalId": "g", "members_removed": ["u2"]},
        [
            ("team.renamed", "core", {"previous_displayName": "eng"}),
            ("team.updated", "core", {"changed": ["externalId"]}),
            ("team.members_removed", "core", {"members": ["u2"]}),
        ],
    ),
    # bulk member writes: no before, no name (the writer looks it up)
    (
        "team.members",
        "team",
        None,
        {"members_added": ["u1", "u2"]},
        [("team.members_added", None, {"members": ["u1", "u2"]})],
    ),
    ("team.archive", "team", None, {"archived": True}, [("team.archived", None, {})]),
    ("team.restore", "team", None, {"archived": False}, [("team.unarchived", None, {})]),
    ("team.delete", "team", {**T, "member_count": 3}, None, [("team.deleted", "eng", {})]),
    ("token.create", "token", None, {"kind": "admin"}, []),
]


@pytest.mark.parametrize(("action", "rtype", "before", "after", "expected"), CASES)
def test_changes_for(action: str, rtype: str, before: Any, after: Any, expected: list[Any]) -> None:
    got = changes_for(action, rtype, "id1", before, after)
    assert [(s.kind, s.name, s.data) for s in got] == expected
    assert all(s.kind in KINDS and s.resource_id == "id1" for s in got)
