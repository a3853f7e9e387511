"""`transitive_users`: nested groups, cycles and unread groups, table-driven."""

from __future__ import annotations

import pytest

from connectors.google.expand import transitive_users

CASES = [
    # (direct users, direct nested groups, expected transitive users)
    ({"a": {"u1"}}, {}, {"a": {"u1"}}),
    ({"a": {"u1"}, "b": {"u2"}}, {"a": ["b"]}, {"a": {"u1", "u2"}, "b": {"u2"}}),
    ({"a": set(), "b": {"u2"}, "c": {"u3"}}, {"a": ["b"], "b": ["c"]},
     {"a": {"u2", "u3"}, "b": {"u2", "u3"}, "c": {"u3"}}),
    # a cycle: every group in it has the union
    ({"a": {"u1"}, "b": {"u2"}, "c": {"u3"}}, {"a": ["b"], "b": ["a", "c"]},
     {"a": {"u1", "u2", "u3"}, "b": {"u1", "u2", "u3"}, "c": {"u3"}}),
    # a group that contains itself
    ({"a": {"u1"}}, {"a": ["a"]}, {"a": {"u1"}}),
    # a nested group never read contributes nothing
    ({"a": {"u1"}}, {"a": ["unread"]}, {"a": {"u1"}}),
    # diamond
    ({"a": set(), "b": {"u1"}, "c": {"u2"}, "d": {"u3"}}, {"a": ["b", "c"], "b": ["d"], "c": ["d"]},
     {"a": {"u1", "u2", "u3"}, "b": {"u1", "u3"}, "c": {"u2", "u3"}, "d": {"u3"}}),
]


@pytest.mark.parametrize(("users", "groups", "expected"), CASES)
def test_transitive_users_follow_nesting_and_cycles(users: dict, groups: dict,
                                                    expected: dict) -> None:
    for frozen in (False, True):
        given = {g: (frozenset(u) if frozen else set(u)) for g, u in users.items()}
        got = transitive_users(given, groups)
        assert got == {g: frozenset(u) for g, u in expected.items()}
        assert all(type(s) is frozenset for s in got.values())


def test_group_without_nested_groups_gets_its_frozen_set_without_a_copy() -> None:
    own = frozenset({"u1", "u2"})
    mutable = {"u3"}
    got = transitive_users({"a": own, "b": mutable, "c": frozenset({"u4"})}, {"c": ["a"]})
    assert got["a"] is own
    assert got["b"] == {"u3"} and got["b"] is not mutable
    assert got["c"] == {"u1", "u2", "u4"}
