"""syncd.service.views on both backends: filters, ordering, and a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from syncd.service.views import ALL, LOCAL, list_audit, list_teams, list_users
from syncd.store.engine import session_scope
from tests.cli.conftest import NOW


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({}, ["admin", "alice@example.com", "Bob@example.com", "dave@example.com"]),
        (
            {"include_inactive": True},
            ["admin", "alice@example.com", "Bob@example.com", "carol@example.com", "dave@example.com"],
        ),
        ({"directory": "entra"}, ["alice@example.com", "Bob@example.com"]),
        (
            {"directory": "entra", "include_inactive": True},
            ["alice@example.com", "Bob@example.com", "carol@example.com"],
        ),
        ({"directory": LOCAL}, ["admin"]),
        ({"directory": "nowhere"}, []),
        ({"directory": ALL, "limit": 2}, ["admin", "alice@example.com"]),
    ],
)
def test_list_users_filters_and_orders_case_insensitively(
    seeded: Engine, kwargs: dict, names: list[str]
) -> None:
    with session_scope(seeded, write=False) as s:
        assert [u.user_name for u in list_users(s, **kwargs)] == names


def test_list_users_picks_the_primary_email_in_one_extra_query(seeded: Engine) -> None:
    with session_scope(seeded, write=False) as s, count_statements(seeded) as statements:
        rows = {u.id: u for u in list_users(s, include_inactive=True, limit=None)}
    assert len(statements) == 2
    assert rows["u1"].email == "alice@example.com"
    assert rows["u2"].email == "bob@example.com"
    assert rows["u5"].email is None
    assert rows["u1"].updated_at.tzinfo is not None


def test_list_teams_with_members_costs_one_query_for_all_teams(seeded: Engine) -> None:
    with session_scope(seeded, write=False) as s, count_statements(seeded) as statements:
        teams = list_teams(s, with_members=True)
    assert len(statements) == 2
    assert [(t.display_name, t.members) for t in teams] == [
        ("design", ("carol@example.com",)),
        ("Empty", ()),
        ("Engineering", ("alice@example.com", "Bob@example.com")),
        ("Ops", ("dave@example.com",)),
    ]


def test_list_teams_limit_applies_to_the_member_query_too(seeded: Engine) -> None:
    with session_scope(seeded, write=False) as s:
        teams = list_teams(s, directory="entra", with_members=True, limit=1)
    assert [(t.display_name, t.members) for t in teams] == [("design", ("carol@example.com",))]


def test_list_teams_without_members_is_one_query(seeded: Engine) -> None:
    with session_scope(seeded, write=False) as s, count_statements(seeded) as statements:
        teams = list_teams(s, directory=LOCAL)
    assert len(statements) == 1
    assert [(t.display_name, t.members, t.member_count) for t in teams] == [("Empty", None, 0)]


@pytest.mark.parametrize(
    ("kwargs", "actions"),
    [
        ({}, ["user.patch", "team.members.add", "user.create", "user.create"]),
        ({"since": NOW - timedelta(hours=1)}, ["user.patch", "team.members.add"]),
        (
            {"since": (NOW - timedelta(hours=3)).replace(tzinfo=None)},
            ["user.patch", "team.members.add", "user.create"],
        ),
        ({"directory": "entra"}, ["team.members.add", "user.create"]),
        ({"directory": LOCAL}, ["user.patch"]),
        ({"limit": 1}, ["user.patch"]),
    ],
)
def test_list_audit_newest_first_with_filters(seeded: Engine, kwargs: dict, actions: list[str]) -> None:
    with session_scope(seeded, write=False) as s:
        assert [e.action for e in list_audit(s, **kwargs)] == actions


@pytest.mark.parametrize("fn", [list_users, list_teams, list_audit])
def test_a_limit_below_one_is_refused(seeded: Engine, fn) -> None:  # type: ignore[no-untyped-def]
    with session_scope(seeded, write=False) as s, pytest.raises(ValueError, match="at least 1"):
        fn(s, limit=0)
